r"""Lab 3, Part B: a Theano optimizer and a softmax regression trained with it.

In the kernel, :func:`check_theano_updates` compiles ``theano.function([], cost,
updates=adam_updates(cost, [theta], **hp))`` for a surface and records the points it
visits, plus what the graph shows (the gradient came from ``T.grad``, every parameter is
updated); :func:`check_softmax_theano` calls ``train_softmax_theano`` and records ``W, b``.

The grader decides with what it can trust: the answer's source, read outside the kernel
(:mod:`.sourcecheck`: symbolic, ``T.grad``, ``theano.function`` with ``adam_updates``), and
numbers it recomputes itself: the points with ``nnopt``'s Adam, and ``W, b`` with a numpy
softmax regression trained by the same Adam on the same minibatches in the same order.
Tolerance for ``W, b``: :data:`SOFTMAX_TOL` (Theano and numpy sum in different orders).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import compare, record, sourcecheck
from .answers import BOUND, as_array, quiet_numerics, references_blocked
from . import checks
from .checks import check
from .outcome import AnswerError, Context, Verdict, numbers, with_tolerance
from .spec import GradingError, Spec
from .training import digits

SOFTMAX_TOL = compare.Tolerance("float64", 1e-6, 1e-9)


def _symbolic_surface(surface: Any, p: Any) -> Any:
    """The surface's value as a Theano expression of the 2-vector ``p``."""
    from ..surfaces import Quadratic, Rosenbrock
    x, y = p[0], p[1]
    if isinstance(surface, Rosenbrock):
        return (surface.a - x) ** 2 + surface.b * (y - x ** 2) ** 2
    if isinstance(surface, Quadratic):
        H = surface.H
        return 0.5 * (H[0, 0] * x * x + 2 * H[0, 1] * x * y + H[1, 1] * y * y)
    raise ValueError(f"Invalid surface: {surface.name!r} (expected quadratic or rosenbrock)")


def _graph_facts(updates: Any, params: list, grads: list) -> dict[str, Any]:
    """What the updates graph shows (for the message; the grader trusts the source instead)."""
    from theano.graph.basic import ancestors
    try:
        pairs = list(updates.items()) if isinstance(updates, Mapping) else [tuple(u) for u in updates]
    except (TypeError, ValueError):
        raise GradingError("adam_updates must return a list of (shared variable, new value) pairs") from None
    targets = {id(var): expr for var, expr in pairs}
    param_exprs = [targets.get(id(p)) for p in params]
    grad_vars = {id(g) for g in grads}
    uses_grad = bool(grads) and all(e is not None and any(id(a) in grad_vars for a in ancestors([e]))
                                    for e in param_exprs)
    return {"grad_calls": len(grads), "params_updated": all(e is not None for e in param_exprs),
            "updates_use_grad": uses_grad, "state_updates": len(pairs) - sum(e is not None for e in param_exprs)}


def theano_path(updates_fn: Callable[..., Any], hp: Mapping[str, Any], surface: str = "rosenbrock",
                steps: int = 50, x0: Sequence[float] | None = None,
                surface_kw: Mapping[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Trajectory of a symbolic optimizer, ``updates_fn(cost, [theta], **hp)`` returning the
    ``updates`` of ``theano.function``, and what its graph shows."""
    import theano.gradient as gradient
    from .. import surfaces
    from ..theano_compat import theano
    surf = surfaces.get(surface, **dict(surface_kw or {}))
    start = as_array(surf.start if x0 is None else x0, "x0", (2,))
    theta = theano.shared(start.copy(), name="theta")
    cost = _symbolic_surface(surf, theta)
    real, made = gradient.grad, []

    def spy(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        made.extend(out if isinstance(out, (list, tuple)) else [out])
        return out

    holders = [m for m in (theano, theano.tensor, gradient) if getattr(m, "grad", None) is real]
    with references_blocked(), quiet_numerics():
        for m in holders:
            m.grad = spy
        try:
            updates = updates_fn(cost, [theta], **hp)
        finally:
            for m in holders:
                m.grad = real
        facts = _graph_facts(updates, [theta], made)
        try:
            step = theano.function([], cost, updates=updates)
        except Exception as exc:  # noqa: BLE001
            raise GradingError(f"theano.function(..., updates=your_updates) failed: "
                               f"{type(exc).__name__}: {exc}") from None
        path = [start.copy()]
        for k in range(1, steps + 1):
            step()
            x = as_array(theta.get_value(), f"theta after step {k}", (2,))
            path.append(x)
            if not np.isfinite(x).all() or np.abs(x).max() > BOUND:
                break
    return np.array(path), facts


def _source(fn: Any) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def _theano_answer(updates_fn: Any, a: dict[str, Any]) -> dict[str, Any]:
    path, facts = theano_path(updates_fn, a["hp"], a["surface"], a["steps"], a["x0"], a["surface_kw"])
    return {"path": record.encode(path), "dtype": "float64", "facts": facts, "source": _source(updates_fn)[:20000],
            "name": getattr(updates_fn, "__name__", "")}


def check_theano_updates(updates_fn: Callable[..., Any], reference: str, hp: Mapping[str, Any],
                         surface: str = "quadratic", steps: int = 30, x0: Sequence[float] | None = None,
                         surface_kw: Mapping[str, Any] | None = None, why: str = "") -> None:
    """The student's symbolic ``updates_fn`` (e.g. ``adam_updates``) on a surface: its points
    must be ``nnopt``'s ``reference`` optimizer's, and its source symbolic (``T.grad``)."""
    check(check_theano_updates, "theano_updates", _theano_answer,
          (updates_fn, reference, hp, surface, steps, x0, surface_kw, why), {})


def compare_theano_updates(*args: Any, **kwargs: Any) -> tuple[bool, str]:
    """:func:`check_theano_updates` returning ``(ok, message)``."""
    return checks.compare(check_theano_updates, "theano_updates", _theano_answer, args, kwargs)


def _softmax_answer(train: Any, a: dict[str, Any]) -> dict[str, Any]:
    with quiet_numerics():
        out = train(digits(), epochs=a["epochs"], batch_size=a["batch_size"], lr=a["lr"], seed=a["seed"])
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise GradingError(f"train_softmax_theano must return (W, b); it returned a {type(out).__name__}")
    W, b = as_array(out[0], "W", (64, 10)), as_array(out[1], "b", (10,))
    return {"W": record.encode(W), "b": record.encode(b), "source": _source(train)[:20000],
            "name": getattr(train, "__name__", "")}


def check_softmax_theano(train: Callable[..., Any], epochs: int, batch_size: int = 64, lr: float = 0.01,
                         seed: int = 0, min_val_acc: float = 0.9, why: str = "") -> None:
    """Call ``train(data, epochs=..., batch_size=..., lr=..., seed=...)``; ``(W, b)`` must be the
    grader's softmax regression trained by Adam on the same minibatches, and reach
    ``min_val_acc`` on the validation split."""
    check(check_softmax_theano, "softmax_theano", _softmax_answer,
          (train, epochs, batch_size, lr, seed, min_val_acc, why), {})


# ----------------------------------------------------------------- on the grader's side
def softmax_reference(epochs: int, batch_size: int, lr: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression (W, b zeros, float64) trained by the lab's Adam on the minibatches
    of ``minibatches(X, y, batch_size, seed=np.random.default_rng(seed))``, epoch after epoch."""
    from ..data import minibatches
    from ..models import softmax_cross_entropy
    from . import reference                 # not installed in the grading sandbox
    step = reference.optimizer("adam", {"lr": lr})
    data = digits()
    W, b = np.zeros((data.train.X.shape[1], data.n_classes)), np.zeros(data.n_classes)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for X, y in minibatches(data.train.X, data.train.y, batch_size, seed=rng):
            X = X.astype(np.float64)
            _, dlogits = softmax_cross_entropy(X @ W + b, y)
            flat = step(np.concatenate([W.ravel(), b]), np.concatenate([(X.T @ dlogits).ravel(), dlogits.sum(0)]))
            W, b = flat[:W.size].reshape(W.shape), flat[W.size:]
    return W, b


def _static(spec: Spec, answer: Mapping[str, Any], context: Context, name: str) -> str:
    """Problems of the answer's source: the notebook's (trusted) if the grader gave it, else
    the kernel's (student mode)."""
    if context.problems:
        return "; ".join(context.problems)
    if context.trusted:
        source, defined = context.sources.get(name), name
    else:
        source, defined = answer.get("source"), str(answer.get("name") or name)
    if not isinstance(source, str) or not source:
        return f"the source of {name} could not be read"
    return "; ".join(sourcecheck.problems(source, name, defined))


def _judge_theano_updates(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    args = spec.args
    label = spec.describe() + " in Theano" + (f" -- {spec.why}" if spec.why else "")
    problem = _static(spec, answer, context, "adam_updates")
    if problem:
        return Verdict(False, f"{label}: not accepted as a symbolic answer: {problem}")
    facts = answer.get("facts")
    if not isinstance(facts, Mapping):
        raise AnswerError("no 'facts'")
    if not (facts.get("params_updated") and facts.get("updates_use_grad")):
        return Verdict(False, f"{label}: every parameter's update must be computed from T.grad(cost, params) "
                       f"(the graph shows {dict(facts)})")
    from . import reference
    tol = compare.tolerance("float64")
    mine = list(numbers(answer, "path", ndim=2))
    expected = reference.path(args)
    ok, message = compare.explain_paths(label, mine, expected, tol, lambda k: "")
    return Verdict(ok, message if ok else with_tolerance(message, tol))


def _judge_softmax(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    a = spec.args
    label = f"train_softmax_theano(data, epochs={a['epochs']}, batch_size={a['batch_size']}, lr={a['lr']}, seed={a['seed']})"
    problem = _static(spec, answer, context, "train_softmax_theano")
    if not problem and context.trusted:                 # it trains with adam_updates: that too
        problem = _static(spec, answer, context, "adam_updates")
    if problem:
        return Verdict(False, f"{label}: not accepted as a Theano answer: {problem}")
    W, b = numbers(answer, "W", ndim=2), numbers(answer, "b", ndim=1)
    if W.shape != (64, 10) or b.shape != (10,):
        raise AnswerError(f"W, b have shapes {W.shape}, {b.shape}")
    W_ref, b_ref = softmax_reference(a["epochs"], a["batch_size"], a["lr"], a["seed"])
    for what, mine, ref in (("W", W, W_ref), ("b", b, b_ref)):
        bad = np.argwhere(~SOFTMAX_TOL.close(mine, ref))
        if bad.size:
            i = tuple(int(v) for v in bad[0])
            return Verdict(False, with_tolerance(
                f"{label}: {what}{list(i)} should be {ref[i]!r} (softmax regression from zeros, trained by "
                f"the lab's Adam on minibatches(..., seed=np.random.default_rng({a['seed']}))), yours is "
                f"{mine[i]!r}", SOFTMAX_TOL))
    data = digits()
    acc = float(np.mean(np.argmax(data.val.X.astype(float) @ W + b, axis=1) == data.val.y))
    if acc < a["min_val_acc"]:
        return Verdict(False, f"{label}: validation accuracy {acc:.3f} < {a['min_val_acc']}")
    return Verdict(True, f"{label}: W and b agree with the grader's training (validation accuracy {acc:.3f})")


JUDGES = {"theano_updates": _judge_theano_updates, "softmax_theano": _judge_softmax}
