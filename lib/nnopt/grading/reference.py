"""Expected values, computed with nnopt's own implementations (never in the student's kernel).

Runs in the reference process (student mode) and in the trusted grader (autograde). During
autograde this module and nnopt's graded implementations are not installed in the sandbox
(``autograder.withheld``), so nothing in it can be reached from the student's code.

The reference names a check may use are nnopt's optimizer names (``nnopt.make_optimizer``)
with one lab convention: **"adamw"** is Lab 2's Adam (δ inside the root, as Alg. 8) with
decoupled weight decay, i.e. ``nnopt.AdamW(..., eps_inside_sqrt=True)``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .compare import diverged

#: Flags fixed by a reference name (see the module docstring).
LAB_FLAGS = {"adamw": {"eps_inside_sqrt": True}}
#: Display names of the references, for messages ("your Adam matches ...").
NAMES = {"sgd": "SGD", "momentum": "Momentum", "nesterov": "Nesterov", "adagrad": "AdaGrad",
         "rmsprop": "RMSProp", "adam": "Adam", "adamw": "AdamW", "inverse_time": "inverse_time",
         "clip_by_global_norm": "clip_by_global_norm", "lion": "Lion", "muon": "Muon",
         "newton_schulz": "Newton-Schulz", "schedulefree_sgd": "ScheduleFreeSGD"}
#: Matrix functions a ``matrix_function`` check may name (Lab 4), in ``nnopt.optimizers_matrix``.
MATRIX_FUNCTIONS = ("newton_schulz",)

Step = Callable[[np.ndarray, np.ndarray], np.ndarray]   # (theta, grad) -> new theta


def learning_rate(value: Any) -> Any:
    """A canonical ``lr``: a number, or ``{"schedule": name, ...}`` -> an nnopt schedule."""
    if isinstance(value, Mapping) and "schedule" in value:
        from ..schedules import make_schedule
        return make_schedule(value["schedule"], **{k: v for k, v in value.items() if k != "schedule"})
    return value


def optimizer(name: str, hp: Mapping[str, Any]) -> Step:
    """The reference optimizer ``name(**hp)`` in the lab protocol: ``step(theta, g) -> new``."""
    from ..optimizers import NonFiniteGradient, make_optimizer
    opt = make_optimizer(name, **LAB_FLAGS.get(name, {}),
                         **{k: learning_rate(v) if k == "lr" else v for k, v in hp.items()})

    def step(theta: np.ndarray, g: np.ndarray) -> np.ndarray:
        p = theta.copy()
        try:
            opt.step([p], [g])
        except NonFiniteGradient:
            return np.full_like(p, np.nan)
        return p

    return step


def follow(step: Step, x0: np.ndarray, grad: Callable[[int, np.ndarray], np.ndarray],
           steps: int) -> list[np.ndarray]:
    """Points ``x0, x1, ...`` of ``step``; ends at the first diverged point (included), as the
    kernel's runner does with the student's optimizer."""
    x = x0.copy()
    path = [x.copy()]
    with np.errstate(all="ignore"):
        for k in range(1, steps + 1):
            x = np.asarray(step(x.copy(), grad(k, x)), dtype=x0.dtype)
            path.append(x.copy())
            if diverged(x):
                break
    return path


def surface_of(args: Mapping[str, Any]):
    from .. import surfaces
    return surfaces.get(args["surface"], **(args.get("surface_kw") or {}))


def start_of(args: Mapping[str, Any]) -> np.ndarray:
    if "grads" in args:
        return np.array(args["x0"], dtype=args["dtype"])
    start = surface_of(args).start if args.get("x0") is None else args["x0"]
    return np.array(start, dtype=np.float64)


def gradients(args: Mapping[str, Any]) -> Callable[[int, np.ndarray], np.ndarray]:
    """The gradient fed at step ``k`` (1-based): the surface's, or the given sequence's."""
    if "grads" in args:
        gs = [np.array(g, dtype=args["dtype"]) for g in args["grads"]]
        return lambda k, x: gs[k - 1]
    surf = surface_of(args)
    return lambda k, x: surf.grad(x)


def steps_of(args: Mapping[str, Any]) -> int:
    return len(args["grads"]) if "grads" in args else int(args["steps"])


def path(args: Mapping[str, Any], step: Step | None = None) -> list[np.ndarray]:
    """The trajectory a ``trajectory``/``sequence`` check expects (or ``step``'s, for variants)."""
    step = step or optimizer(args["reference"], args["hp"])
    return follow(step, start_of(args), gradients(args), steps_of(args))


def schedule_values(args: Mapping[str, Any]) -> np.ndarray:
    from ..schedules import make_schedule
    sched = make_schedule(args["reference"], **args["kwargs"])
    return np.array([sched(t) for t in args["ts"]], dtype=float)


def clipping_case(reference: str, case: list, dtype: str) -> tuple[list[np.ndarray], float]:
    """The reference's ``(clipped arrays, norm)`` for one case ``[arrays, max_norm]``."""
    from .. import clipping
    arrays, threshold = case_arrays(case, dtype)
    clipped, norm = getattr(clipping, reference)(arrays, threshold)
    return [np.asarray(c, dtype=float) for c in clipped], float(norm)


def matrix_function(name: str, G: np.ndarray, kwargs: Mapping[str, Any]) -> np.ndarray:
    """``nnopt``'s matrix function ``name(G, **kwargs)`` (Lab 4: Newton-Schulz)."""
    from .. import optimizers_matrix
    if name not in MATRIX_FUNCTIONS:
        raise ValueError(f"Invalid matrix function: {name!r} (expected one of {', '.join(MATRIX_FUNCTIONS)})")
    fn = getattr(optimizers_matrix, name)
    if "coefficients" in kwargs:
        kwargs = {**kwargs, "coefficients": tuple(kwargs["coefficients"])}
    with np.errstate(all="ignore"):
        return np.asarray(fn(G, **kwargs), dtype=float)


def case_arrays(case: list, dtype: str) -> tuple[list[np.ndarray], float]:
    """A clipping case ``[[nested lists...], max_norm]`` as arrays of ``dtype``."""
    arrays, threshold = case
    return [np.array(a, dtype=dtype) for a in arrays], float(threshold)
