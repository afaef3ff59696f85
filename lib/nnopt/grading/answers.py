"""Running the student's code in the kernel and turning what it returns into numbers.

Everything here runs *inside* the student's kernel, so it trusts nothing the student can
reach: answers are converted with the ``np.asarray`` captured when this module was first
imported (the lab's locked setup cell), inputs are passed as copies, and whatever the
student returns becomes a fresh float64 array (an object whose ``==`` is always true is
just a number here). None of this decides points -- the grader does, from the numbers.

The lab protocol: an optimizer object has ``step(theta, grad)`` returning the new
parameters; ``lr`` may be a schedule ``t -> lr`` whose first step uses ``lr(0)``.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .spec import SCHEDULE_NAMES, GradingError

# Captured when the lab's first (locked) cell imports nnopt.grading, before student code runs.
_asarray = np.asarray
_isfinite = np.isfinite
_FLOAT = np.dtype(np.float64)
_dumps = json.dumps

#: A trajectory stops at the first point that is non-finite or beyond this bound (as
#: :func:`nnopt.surfaces.run`), and the reference's must stop at the same step.
BOUND = 1e6
#: nnopt functions an answer may not call while it is checked (clear message at once;
#: during autograde they are absent altogether, see ``autograder.withheld``).
REFERENCE_FUNCTIONS = ("clip_by_global_norm", "clip_by_value", "global_norm", "newton_schulz")


@contextmanager
def quiet_numerics() -> Iterator[None]:
    """No numpy warnings on stderr while student code runs; the values are checked instead."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def references_blocked() -> Iterator[None]:
    """While active, nnopt's optimizers and clipping functions raise GradingError.

    Instant feedback for an answer that simply calls ``nnopt.Adam``: the same answer scores
    0 at autograde, where the lab's references are not installed at all.
    """
    import nnopt
    from .. import clipping, optimizers, optimizers_matrix

    def tripwire(name: str) -> Callable[..., Any]:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            raise GradingError(f"your answer calls nnopt's reference {name}; the lab asks you to "
                               "implement it yourself (while your work is graded, nnopt's "
                               "implementation is not installed at all)")
        return blocked

    targets = [(optimizers.Optimizer, "step", "optimizers (Optimizer.step)")]
    for module in (clipping, optimizers_matrix, nnopt):
        targets += [(module, fn, fn) for fn in REFERENCE_FUNCTIONS if fn in vars(module)]
    saved = [(obj, attr, vars(obj)[attr]) for obj, attr, _ in targets]
    try:
        for obj, attr, label in targets:
            setattr(obj, attr, tripwire(label))
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)


def as_array(value: Any, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` as a fresh float64 array, or GradingError saying what is wrong with it."""
    if value is None:
        raise GradingError(f"{what} returned None; it must return the new values as a NumPy array "
                           "(did you forget a `return`?)")
    try:
        arr = _asarray(value, dtype=_FLOAT)
    except (TypeError, ValueError) as err:
        raise GradingError(f"{what} returned a {type(value).__name__}, which is not an array of "
                           f"numbers ({err})") from None
    if shape is not None and arr.shape != shape:
        raise GradingError(f"{what} returned an array of shape {arr.shape}; expected shape {shape}")
    return arr.copy()


def dtype_name(value: Any) -> str:
    """``"float32"`` for a float32 array (or scalar), else ``"float64"``: what the student's
    arithmetic was done in, as far as the result shows."""
    dt = getattr(value, "dtype", None)
    return "float32" if dt is not None and str(dt) in ("float32", "float16") else "float64"


def schedule_table(spec: Mapping[str, Any], n: int) -> Callable[[int], float]:
    """A schedule ``{"schedule": name, ...}`` as a plain function ``t -> lr`` for ``t < n``.

    Precomputed with ``nnopt.schedules`` so the student's optimizer never calls into nnopt.
    """
    from ..schedules import make_schedule
    name = spec["schedule"]
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"Invalid schedule: {name!r} (expected one of {', '.join(SCHEDULE_NAMES)})")
    values = [float(v) for v in make_schedule(name, **{k: v for k, v in spec.items() if k != "schedule"}).values(n)]
    label = f"{name}({', '.join(f'{k}={v!r}' for k, v in spec.items() if k != 'schedule')})"

    def lr(t: int) -> float:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < n:
            raise GradingError(f"the schedule {label} was called with t={t!r}; during this check "
                               f"t must be an integer in 0..{n - 1} (the step counter, starting at 0)")
        return values[int(t)]

    lr.__name__ = lr.__qualname__ = label
    return lr


def student_hp(hp: Mapping[str, Any], steps: int) -> dict[str, Any]:
    """Hyperparameters for the student's constructor: schedules become plain tables, one
    entry longer than the check needs (so a schedule read from t = 1 shows as that bug, not
    as an error)."""
    return {k: schedule_table(v, steps + 1) if isinstance(v, Mapping) and "schedule" in v else v
            for k, v in hp.items()}


def new_optimizer(make: Callable[..., Any], hp: Mapping[str, Any]) -> Any:
    opt = make(**hp)
    if not callable(getattr(opt, "step", None)):
        raise GradingError(f"{getattr(make, '__name__', make)!r}(...) returned an object without a "
                           "step(theta, grad) method")
    return opt


def run_optimizer(opt: Any, x0: np.ndarray, grad: Callable[[int, np.ndarray], np.ndarray],
                  steps: int) -> tuple[list[np.ndarray], str]:
    """Points ``x0, x1, ...`` visited by ``opt.step`` (copies in, fresh arrays out) and the
    dtype of its results; stops after a non-finite point or one beyond :data:`BOUND`."""
    x, dtype = x0.copy(), "float64"
    path = [x.copy()]
    for k in range(1, steps + 1):
        out = opt.step(x.copy(), grad(k, x).copy())
        if dtype_name(out) == "float32":
            dtype = "float32"
        x = as_array(out, f"step {k}: step(theta, grad)", x0.shape).astype(x0.dtype)
        path.append(x.copy())
        if not _isfinite(x).all() or np.abs(x).max() > BOUND:
            break
    return path, dtype


def trajectory(optimizer: Any, surface: Any = "rosenbrock", steps: int = 50,
               x0: Sequence[float] | None = None) -> np.ndarray:
    """Points visited by ``optimizer.step(theta, grad)`` on a surface (an ``nnopt.surfaces``
    object or name), shape ``(n, 2)`` with the start first; for plots and experiments.
    Stops early at a non-finite point or one beyond ``1e6`` (that point included)."""
    from .. import surfaces
    surf = surfaces.get(surface) if isinstance(surface, str) else surface
    start = as_array(surf.start if x0 is None else x0, "x0", (2,))
    path, _ = run_optimizer(optimizer, start, lambda k, x: surf.grad(x), steps)
    return _asarray(path, dtype=_FLOAT)


def copies_unchanged(args: Any, original: str) -> bool:
    """True if the (JSON-encoded) arguments still equal ``original`` (no in-place change)."""
    return _dumps(_encode_args(args)) == original


def _encode_args(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"a": value.tolist(), "d": value.dtype.str}
    if isinstance(value, (list, tuple)):
        return [_encode_args(v) for v in value]
    return value


def snapshot(args: Any) -> str:
    """JSON text of arguments, to tell later whether a call modified them."""
    return _dumps(_encode_args(args))
