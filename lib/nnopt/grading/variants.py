r"""Known wrong variants: when an answer is wrong, which classic mistake does it match?

Each :class:`Variant` is a labelled bug with a hint pointing at the lecture's box. When a
check fails, the grader recomputes the check's expected values with each applicable variant
and compares them with the student's numbers (same tolerance as the check): a match names
the bug, e.g. *"your Adam matches Adam without bias correction: see Alg. 8, 'correct the
biases'"*. The variants are written in the lab protocol (``step(theta, g) -> new theta``)
as the buggy line would be written; :func:`rule` builds them. Like :mod:`.reference`, this
module is not installed in the grading sandbox.

The table (``VARIANTS``) covers Labs 1 and 2:

==========================  =========================  ========================================
key                         applies to                 the bug
==========================  =========================  ========================================
schedule_from_1             schedules, any lr schedule the first step uses lr(1)
schedule_precedence         inverse_time               ``lr0 / 1 + k*t``
schedule_frozen             any lr schedule            every step uses lr(0)
momentum_no_velocity        momentum                   the step ignores v (plain SGD)
momentum_sign               momentum                   ``theta - v`` (velocity sign flipped)
momentum_dampening          momentum                   ``v <- a v + (1-a) g``
momentum_torch_form         momentum (schedules)       ``v <- a v + g; theta - lr_t v``
nesterov_classical          nesterov                   gradient at theta (classical momentum)
nesterov_no_gradient_term   nesterov                   ``phi + alpha v`` (no ``- eps g``)
adagrad_eps_inside          adagrad                    ``sqrt(r + delta)``
adagrad_no_accumulation     adagrad                    ``r <- g*g``
rmsprop_eps_outside         rmsprop                    ``delta + sqrt(r)``
rmsprop_no_one_minus_rho    rmsprop                    ``r <- rho r + g*g``
adam_no_bias_correction     adam, adamw                ``s_hat = s, r_hat = r``
adam_t_plus_one             adam, adamw                first step uses t = 2
adam_t_zero                 adam, adamw                first step uses t = 0
adam_eps_outside            adam, adamw                ``s_hat / (sqrt(r_hat) + delta)``
adamw_coupled               adamw                      ``g <- g + lambda theta`` (L2, coupled)
adamw_decay_without_lr      adamw                      ``theta (1 - lambda)``
clip_norm_after             clip_by_global_norm        returns the norm after clipping
clip_per_array              clip_by_global_norm        clips each array by its own norm
clip_always                 clip_by_global_norm        rescales even below max_norm
clip_in_place               clip_by_global_norm        modifies its input
float32                     every optimizer            float32 accumulation
==========================  =========================  ========================================

Lab 4's variants (Lion, Newton-Schulz, Muon) are listed in :mod:`.variants_beyond` and added
to the table here.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .reference import Step, learning_rate
from .variants_beyond import TABLE as BEYOND_ADAM, lion_rule, muon_rule, newton_schulz_variant

State = dict[str, Any]


@dataclass(frozen=True)
class Variant:
    """A labelled wrong variant. ``references``: the reference names it applies to."""

    key: str
    label: str
    hint: str
    references: tuple[str, ...]

    def sentence(self, what: str) -> str:
        return f'your {what} matches "{self.label}"; {self.hint}'



_ADAMS = ("adam", "adamw")
_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
_BIAS = "see Alg. 8, 'correct the biases': s_hat = s/(1 - rho1^t), r_hat = r/(1 - rho2^t)"
VARIANTS: tuple[Variant, ...] = (
    Variant("schedule_from_1", "the schedule indexed from 1 (the first step used lr(1))",
            "count steps from t = 0: the first step uses lr(0), then t <- t + 1 (see Alg. 1)", _OPTIMIZERS + ("inverse_time",)),
    Variant("schedule_precedence", "lr0 / 1 + k*t (missing parentheses)",
            "the rate is lr0 / (1 + k*t) (see Task 1)", ("inverse_time",)),
    Variant("schedule_frozen", "a schedule that never advances (every step used lr(0))",
            "increment self.t in every step and call lr(self.t) (see Alg. 1)", _OPTIMIZERS),
    Variant("momentum_no_velocity", "plain SGD: the step ignores the velocity",
            "see Alg. 2: theta <- theta + v, with the new v", ("momentum",)),
    Variant("momentum_sign", "momentum with the velocity's sign flipped (theta - v)",
            "see Alg. 2: v <- alpha v - eps g, then theta <- theta + v", ("momentum",)),
    Variant("momentum_dampening", "momentum as an average, v <- alpha v + (1 - alpha) g",
            "see Alg. 2, which has no (1 - alpha): v <- alpha v - eps g", ("momentum",)),
    Variant("momentum_torch_form", "PyTorch's form v <- alpha v + g, theta <- theta - eps_t v",
            "with a schedule it rescales the whole velocity by the current rate; see Alg. 2, "
            "which keeps eps_t inside v: v <- alpha v - eps_t g", ("momentum",)),
    Variant("nesterov_classical", "classical momentum (the gradient taken at theta, not at the "
            "look-ahead point)", "see Alg. 3: g is taken at theta + alpha v; in the look-ahead "
            "form return phi + alpha v - eps g with the new v", ("nesterov",)),
    Variant("nesterov_no_gradient_term", "a look-ahead step without its gradient term (phi + alpha v)",
            "see Task 4: return phi + alpha v - eps g, with the new v", ("nesterov",)),
    Variant("adagrad_eps_inside", "AdaGrad with delta inside the root, sqrt(r + delta)",
            "see Alg. 4: divide by delta + sqrt(r)", ("adagrad",)),
    Variant("adagrad_no_accumulation", "AdaGrad without accumulation (r <- g*g)",
            "see Alg. 4: r <- r + g*g (a running sum)", ("adagrad",)),
    Variant("rmsprop_eps_outside", "RMSProp with delta outside the root, delta + sqrt(r)",
            "see Alg. 5: divide by sqrt(delta + r)", ("rmsprop",)),
    Variant("rmsprop_no_one_minus_rho", "RMSProp without the (1 - rho), r <- rho r + g*g",
            "see Alg. 5: r <- rho r + (1 - rho) g*g", ("rmsprop",)),
    Variant("adam_no_bias_correction", "Adam without bias correction", _BIAS, _ADAMS),
    Variant("adam_t_plus_one", "Adam with t off by one (the first step used t = 2)",
            "start at t = 0 and increment before the corrections (" + _BIAS + ")", _ADAMS),
    Variant("adam_t_zero", "Adam with t off by one (the first step used t = 0: 1 - rho^0 = 0)",
            "increment t before the corrections (" + _BIAS + ")", _ADAMS),
    Variant("adam_eps_outside", "Adam with delta outside the root, s_hat / (sqrt(r_hat) + delta)",
            "see Alg. 8, 'compute the update': divide by sqrt(r_hat + delta)", _ADAMS),
    Variant("adamw_coupled", "coupled weight decay (L2: g <- g + lambda theta before Adam)",
            "see Task 4: AdamW decouples it, theta <- theta (1 - eps lambda), then the Adam step with g", ("adamw",)),
    Variant("adamw_decay_without_lr", "weight decay without the learning rate, theta (1 - lambda)",
            "see Task 4: the decoupled decay is theta <- theta (1 - eps lambda)", ("adamw",)),
    Variant("clip_norm_after", "clipping that returns the norm after clipping",
            "see Task 5: return the global norm before clipping", ("clip_by_global_norm",)),
    Variant("clip_per_array", "clipping each array by its own norm",
            "see Task 5: the norm is global, the root of the sum of squares over all arrays", ("clip_by_global_norm",)),
    Variant("clip_always", "clipping that rescales even when the norm is below max_norm",
            "see Task 5: rescale only if norm > max_norm", ("clip_by_global_norm",)),
    Variant("clip_in_place", "clipping in place (it modified the input arrays)",
            "see Task 5: return new arrays, e.g. [g * scale for g in grads]", ("clip_by_global_norm",)),
    Variant("float32", "the reference computed in float32 (float32 accumulation)",
            "some state or result is float32 (np.zeros(..., dtype=np.float32), astype(np.float32)); "
            "keep the dtype of theta and grad", _OPTIMIZERS),
    *(Variant(*row) for row in BEYOND_ADAM),
)
BY_KEY = {v.key: v for v in VARIANTS}


# ----------------------------------------------------------------- the rules, as a student writes them
def _lr(value: Any, how: str) -> Callable[[int], float]:
    """``t -> lr``; ``how`` shifts a schedule: "from_1" uses lr(t+1), "frozen" lr(0)."""
    lr = learning_rate(value)
    if not callable(lr):
        return lambda t: float(lr)
    return {"from_1": lambda t: lr(t + 1), "frozen": lambda t: lr(0)}.get(how, lr)


def _momentum(s: State, th, g, lr, hp, bug):
    a = hp.get("momentum", 0.9)
    v = s.get("v", np.zeros_like(th))
    if bug == "momentum_no_velocity":
        s["v"] = a * v - lr * g
        return th - lr * g
    if bug in ("momentum_dampening", "momentum_torch_form"):
        s["v"] = a * v + ((1 - a) * g if bug == "momentum_dampening" else g)
        return th - lr * s["v"]
    s["v"] = a * v - lr * g
    return th - s["v"] if bug == "momentum_sign" else th + s["v"]


def _nesterov(s: State, th, g, lr, hp, bug):
    a = hp.get("momentum", 0.9)
    s["v"] = a * s.get("v", np.zeros_like(th)) - lr * g
    if bug == "nesterov_classical":
        return th + s["v"]
    return th + a * s["v"] - (0 if bug == "nesterov_no_gradient_term" else lr * g)


def _adagrad(s: State, th, g, lr, hp, bug):
    eps = hp.get("eps", 1e-7)
    s["r"] = g * g if bug == "adagrad_no_accumulation" else s.get("r", np.zeros_like(th)) + g * g
    return th - lr * g / (np.sqrt(s["r"] + eps) if bug == "adagrad_eps_inside" else eps + np.sqrt(s["r"]))


def _rmsprop(s: State, th, g, lr, hp, bug):
    rho, eps = hp.get("rho", 0.9), hp.get("eps", 1e-6)
    s["r"] = rho * s.get("r", np.zeros_like(th)) + (1 if bug == "rmsprop_no_one_minus_rho" else 1 - rho) * g * g
    return th - lr * g / (eps + np.sqrt(s["r"]) if bug == "rmsprop_eps_outside" else np.sqrt(eps + s["r"]))


def _adam(s: State, th, g, lr, hp, bug):
    b1, b2, eps = hp.get("beta1", 0.9), hp.get("beta2", 0.999), hp.get("eps", 1e-8)
    wd = hp.get("weight_decay", 0.0)
    if bug == "adamw_coupled":
        g = g + wd * th
    elif wd:
        th = th * (1 - (1 if bug == "adamw_decay_without_lr" else lr) * wd)
    s["t"] = s.get("t", 0) + 1
    t = s["t"] + {"adam_t_plus_one": 1, "adam_t_zero": -1}.get(bug, 0)
    s["s"] = b1 * s.get("s", np.zeros_like(th)) + (1 - b1) * g
    s["r"] = b2 * s.get("r", np.zeros_like(th)) + (1 - b2) * g * g
    if bug == "adam_no_bias_correction":
        s_hat, r_hat = s["s"], s["r"]
    else:
        with np.errstate(all="ignore"):
            s_hat, r_hat = s["s"] / (1 - b1 ** t), s["r"] / (1 - b2 ** t)
    denom = np.sqrt(r_hat) + eps if bug == "adam_eps_outside" else np.sqrt(r_hat + eps)
    return th - lr * s_hat / denom


_RULES = {"sgd": lambda s, th, g, lr, hp, bug: th - lr * g, "momentum": _momentum,
          "nesterov": _nesterov, "adagrad": _adagrad, "rmsprop": _rmsprop, "adam": _adam, "adamw": _adam,
          "lion": lion_rule, "muon": muon_rule}


def rule(reference: str, hp: Mapping[str, Any], bug: str | None = None) -> Step:
    """The optimizer ``reference(**hp)`` written with the bug ``bug`` (None: no bug).

    ``float32`` runs the correct rule with theta, g and the state in float32.
    """
    update = _RULES[reference]
    lr = _lr(hp.get("lr", 1e-3), {"schedule_from_1": "from_1", "schedule_frozen": "frozen"}.get(bug or "", ""))
    state: State = {"k": 0}

    def step(theta: np.ndarray, g: np.ndarray) -> np.ndarray:
        if bug == "float32":
            theta, g = theta.astype(np.float32), g.astype(np.float32)
        rate = lr(state["k"])
        state["k"] += 1
        return update(state, theta, g, rate, hp, bug)

    return step


def applicable(reference: str, args: Mapping[str, Any]) -> list[Variant]:
    """Variants that could explain a wrong answer to a check of ``reference`` with ``args``:
    schedule variants only when ``lr`` is a schedule."""
    scheduled = isinstance(args.get("hp", {}).get("lr"), Mapping)
    out = []
    for v in VARIANTS:
        if reference not in v.references:
            continue
        if v.key in ("schedule_frozen", "momentum_torch_form") and not scheduled:
            continue
        if v.key == "schedule_from_1" and reference != "inverse_time" and not scheduled:
            continue
        out.append(v)
    return out


def schedule(bug: str, kwargs: Mapping[str, Any], ts: list[int]) -> np.ndarray | None:
    """The values of a student's ``inverse_time(**kwargs)`` written with ``bug`` (None if the
    bug is not a schedule bug)."""
    lr0, k = kwargs.get("lr0", 0.0), kwargs.get("k", 0.01)
    if bug == "schedule_from_1":
        return np.array([lr0 / (1 + k * (t + 1)) for t in ts])
    if bug == "schedule_precedence":
        return np.array([lr0 / 1 + k * t for t in ts])
    return None


def matrix_function(bug: str, G: np.ndarray, kwargs: Mapping[str, Any]) -> np.ndarray | None:
    """The result of a matrix function written with ``bug`` (None if ``bug`` is not one of its bugs)."""
    return newton_schulz_variant(bug, G, kwargs)


def clipping(bug: str, arrays: list[np.ndarray], max_norm: float) -> tuple[list[np.ndarray], float | None] | None:
    """``(clipped, norm)`` of clipping by the global norm written with ``bug`` (norm None: the
    bug does not say what norm is returned); None if ``bug`` is not a clipping bug."""
    total = float(np.sqrt(sum(float(np.sum(np.square(a, dtype=float))) for a in arrays)))
    scale = max_norm / total if total > max_norm else 1.0
    if bug == "clip_norm_after":
        return [a * scale for a in arrays], min(total, max_norm)
    if bug == "clip_per_array":
        norms = [float(np.linalg.norm(a)) for a in arrays]
        return [a * (max_norm / n) if n > max_norm else a for a, n in zip(arrays, norms)], None
    if bug == "clip_always" and total > 0:
        return [a * (max_norm / total) for a in arrays], total
    return None
