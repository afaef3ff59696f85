r"""Grading helpers for the labs' nbgrader test cells.

A test cell asks one question -- *does the student's code reproduce nnopt's reference?* --
in one line, for example::

    from nnopt import grading
    grading.check_trajectory(Momentum, "momentum", {"lr": 0.002, "momentum": 0.9},
                             surface="rosenbrock", steps=40)

builds the student's ``Momentum(lr=0.002, momentum=0.9)``, runs its ``step(theta, grad)`` for
40 steps on the Rosenbrock surface and compares every point with ``nnopt.Momentum`` on the
same surface. On a mismatch it raises :class:`GradingError` (an ``AssertionError``, so
nbgrader scores the cell 0) with a message written for the student: the first step that
differs, the point and gradient before it, and both results. ``compare_*`` functions return
``(ok, message)`` instead of raising; ``check_*`` functions return ``None`` (a test cell must
not end in a value: nbgrader reads a number there as partial credit).

The student-side protocol is the lab's: an optimizer object has ``step(theta, grad)`` that
returns the new parameters (a NumPy array of the same shape); ``lr`` may be a schedule
(``t -> float``, the first step uses ``lr(0)``). Nesterov-type optimizers store the
look-ahead point, exactly as :class:`nnopt.Nesterov` does.

Threat model. nbgrader runs the student's code in the same kernel as the tests, so the
student can redefine anything in it. What this module does about it:

* **References are computed in a separate, fresh interpreter** (``python -I -m nnopt.grading``,
  started by the lab's locked setup cell through :func:`connect`, i.e. before any student
  code runs; see :func:`evaluate`): redefining ``nnopt.Momentum``, ``nnopt.surfaces.run`` or
  ``np.allclose`` in the notebook cannot change the expected values; ``-I`` also ignores
  the working directory and ``PYTHON*`` variables, so a ``numpy.py`` dropped next to the
  notebook is not imported. The comparison and the verdict are made there too.
* **Answers are numbers, not objects**: they are converted with the ``np.asarray`` captured
  when this module was imported (the lab's first, locked cell) to float64 arrays and sent as
  JSON, so an object whose ``__eq__`` is always true, or a redefined ``np.asarray``, gains
  nothing. Arguments are passed as copies, so an answer that modifies its input in place
  cannot corrupt the record.
* **The reference is switched off while the answer runs** (:func:`references_blocked`):
  calling ``nnopt.Adam``, ``nnopt.clip_by_global_norm`` ... from an answer raises
  :class:`GradingError` with a clear message instead of passing.

What it cannot do: code running in the kernel can in principle rewrite this module itself
(``nnopt.grading.check_trajectory = ...``), ``sys.modules`` or IPython's machinery. nbgrader
restores edited test cells, and the autograder's static scan (``autograder/scan.py``) flags
submissions whose code touches ``nnopt.grading``, ``sys.modules``, builtins, IPython hooks,
``exec``/``eval`` and similar for manual review. Grade untrusted code in a container.
"""
from __future__ import annotations

import json
import math
import select
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "GradingError", "ScheduleSpec", "schedule", "references_blocked", "trajectory", "student_path",
    "compare_trajectory", "check_trajectory", "compare_path", "check_path",
    "compare_sequence", "check_sequence", "compare_schedule", "check_schedule",
    "compare_function", "check_function", "compare_training", "check_training", "check_figure",
    "evaluate", "theano_path", "connect",
    "REFERENCE_FAILURE",
]

# Captured when the lab's first (locked) cell imports this module, i.e. before any
# student code runs: later reassignments of these names in the notebook do not reach us.
_asarray = np.asarray
_isfinite = np.isfinite
_FLOAT = np.dtype(np.float64)
_Popen = subprocess.Popen
_PIPE, _DEVNULL = subprocess.PIPE, subprocess.DEVNULL
_select = select.select
_dumps, _loads = json.dumps, json.loads
_PYTHON = sys.executable

#: Default tolerances: answers agree if ``|yours - ref| <= ATOL + RTOL * |ref|`` everywhere.
RTOL, ATOL = 1e-6, 1e-9
#: Same divergence rule as :func:`nnopt.surfaces.run`.
BOUND = 1e6
#: Seconds the reference process may take for one answer.
REFERENCE_TIMEOUT = 60
#: Start of the message when the reference itself could not be computed (not the
#: student's fault; the autograder reports such cells as grader errors).
REFERENCE_FAILURE = "The reference check could not run"

_REFERENCE_FUNCTIONS = ("clip_by_global_norm", "clip_by_value", "global_norm")


class GradingError(AssertionError):
    """A test failed; the message explains what differs and how to find the bug."""


# --------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule named by ``nnopt.schedules`` and its arguments.

    Passed as ``lr`` in the hyperparameters of a check: the reference gets the real
    ``nnopt.schedules`` object, the student's optimizer a plain function ``t -> lr``
    (so testing ``SGD`` with a schedule does not depend on the student's schedule code).
    """

    name: str
    kwargs: tuple[tuple[str, float], ...]

    def build(self):
        from . import schedules
        return schedules.make_schedule(self.name, **dict(self.kwargs))

    def table(self, n: int) -> Callable[[int], float]:
        """``t -> lr`` for ``t < n``, precomputed so the student's code never calls nnopt."""
        values = [float(v) for v in self.build().values(n)]
        label = repr(self)

        def lr(t: int) -> float:
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < n:
                raise GradingError(f"the schedule {label} was called with t={t!r}; during this "
                                   f"check t must be an integer in 0..{n - 1} (the step counter, "
                                   "starting at 0 for the first step)")
            return values[int(t)]

        lr.__name__ = lr.__qualname__ = label
        return lr

    def to_json(self) -> dict[str, Any]:
        return {"schedule": self.name, **dict(self.kwargs)}

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.kwargs)})"


def schedule(name: str, **kwargs: float) -> ScheduleSpec:
    """A schedule for a check's hyperparameters, e.g. ``schedule("inverse_time", lr0=0.5, k=0.1)``."""
    spec = ScheduleSpec(name, tuple(sorted(kwargs.items())))
    spec.build()  # validate now: a typo in a test is the instructor's bug, say so early
    return spec


def _hp_json(hp: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.to_json() if isinstance(v, ScheduleSpec) else v for k, v in hp.items()}


def _hp_student(hp: Mapping[str, Any], steps: int) -> dict[str, Any]:
    return {k: v.table(max(steps, 1)) if isinstance(v, ScheduleSpec) else v for k, v in hp.items()}


def _hp_reference(hp: Mapping[str, Any]) -> dict[str, Any]:
    from . import schedules
    out = {}
    for k, v in hp.items():
        if isinstance(v, Mapping) and "schedule" in v:
            kw = {a: b for a, b in v.items() if a != "schedule"}
            v = schedules.make_schedule(v["schedule"], **kw)
        out[k] = v
    return out


def _describe(name: str, hp: Mapping[str, Any]) -> str:
    """``momentum(lr=0.01, momentum=0.9)``; JSON schedules shown as ``inverse_time(k=.., lr0=..)``."""
    def show(v: Any) -> str:
        if isinstance(v, Mapping) and "schedule" in v:
            return _describe(v["schedule"], {a: b for a, b in v.items() if a != "schedule"})
        return repr(v)
    return f"{name}({', '.join(f'{k}={show(v)}' for k, v in hp.items())})"


# --------------------------------------------------------------------------- the student side
@contextmanager
def references_blocked() -> Iterator[None]:
    """While active, nnopt's reference optimizers and clipping functions raise GradingError.

    Student answers run inside it, so an answer that simply calls ``nnopt.Adam`` (or keeps
    one from earlier) fails with a message saying why. Everything is restored on exit.
    """
    from . import clipping, optimizers
    import nnopt

    def tripwire(name: str) -> Callable[..., Any]:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            raise GradingError(f"your answer calls nnopt's reference {name}; the lab asks you to "
                               "implement it yourself, so the reference is switched off while "
                               "your code is graded")
        return blocked

    targets = [(optimizers.Optimizer, "step", "optimizers (Optimizer.step)")]
    for module in (clipping, nnopt):
        targets += [(module, fn, fn) for fn in _REFERENCE_FUNCTIONS if hasattr(module, fn)]
    saved = [(obj, attr, obj.__dict__[attr]) for obj, attr, _ in targets]
    try:
        for obj, attr, label in targets:
            setattr(obj, attr, tripwire(label))
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)


@contextmanager
def _quiet_numerics() -> Iterator[None]:
    """No numpy warnings on stderr (nbgrader scores any stderr 0); values are checked instead."""
    import warnings
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _as_array(value: Any, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
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


def _new_optimizer(make: Callable[..., Any], hp: Mapping[str, Any]) -> Any:
    opt = make(**hp)
    if not callable(getattr(opt, "step", None)):
        raise GradingError(f"{getattr(make, '__name__', make)!r}(...) returned an object without a "
                           "step(theta, grad) method")
    return opt


def _run_student(opt: Any, x0: np.ndarray, grads: Callable[[int, np.ndarray], np.ndarray],
                 steps: int) -> list[list[float]]:
    """Points ``x0, x1, ...``; stops at a non-finite point or one beyond ``BOUND``."""
    x = x0.copy()
    path = [x.tolist()]
    for k in range(1, steps + 1):
        out = opt.step(x.copy(), grads(k, x).copy())
        x = _as_array(out, f"step {k}: step(theta, grad)", x0.shape)
        if not _isfinite(x).all() or np.abs(x).max() > BOUND:
            path.append(x.tolist())   # the reference stops here too; compared as a divergence
            break
        path.append(x.tolist())
    return path


def trajectory(optimizer: Any, surface: Any = "rosenbrock", steps: int = 50,
               x0: Sequence[float] | None = None) -> np.ndarray:
    """Points visited by ``optimizer.step(theta, grad)`` on a surface (an ``nnopt.surfaces``
    object or name), shape ``(n, 2)`` with the start first; for plots and experiments.
    Stops early at a non-finite point or one beyond ``1e6`` (that point included)."""
    from . import surfaces
    surf = surfaces.get(surface) if isinstance(surface, str) else surface
    start = _as_array(surf.start if x0 is None else x0, "x0", (2,))
    return _asarray(_run_student(optimizer, start, lambda k, x: surf.grad(x), steps), dtype=_FLOAT)


def student_path(make: Callable[..., Any], hp: Mapping[str, Any], surface: str = "rosenbrock",
                 steps: int = 50, x0: Sequence[float] | None = None,
                 surface_kw: Mapping[str, Any] | None = None) -> np.ndarray:
    """The student's trajectory on an ``nnopt.surfaces`` surface, shape ``(n, 2)``.

    ``make(**hp)`` builds the optimizer (schedules in ``hp`` become plain functions).
    """
    from . import surfaces
    surf = surfaces.get(surface, **dict(surface_kw or {}))
    with references_blocked(), _quiet_numerics():
        return trajectory(_new_optimizer(make, _hp_student(hp, steps)), surf, steps, x0)


# --------------------------------------------------------------------------- asking the reference
class _ReferenceProcess:
    """A fresh ``python -I -m nnopt.grading`` that answers one JSON request per line.

    Started by :func:`connect` (the labs' locked setup cell calls it, before any student
    code runs) or by the first check; restarted if it dies. Any interruption during a
    request (nbgrader's timeout) discards the process, so answers never get out of step.
    """

    def __init__(self) -> None:
        self.proc: Any = None

    def start(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = _Popen([_PYTHON, "-I", "-m", "nnopt.grading"], stdin=_PIPE, stdout=_PIPE,
                               stderr=_DEVNULL)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def ask(self, request: dict[str, Any]) -> tuple[bool, str]:
        for _attempt in range(2):              # one retry with a fresh process if it died
            self.start()
            try:
                self.proc.stdin.write(_dumps(request).encode() + b"\n")
                self.proc.stdin.flush()
                ready, _, _ = _select([self.proc.stdout], [], [], REFERENCE_TIMEOUT)
                line = self.proc.stdout.readline() if ready else b""
            except BrokenPipeError:
                line = b""
            except BaseException:
                self.close()
                raise
            if line:
                verdict = _loads(line.decode())
                return bool(verdict["ok"]), str(verdict["message"])
            self.close()
        return False, f"{REFERENCE_FAILURE}: the reference process did not answer"


_REFERENCE = _ReferenceProcess()


def connect() -> None:
    """Start the reference process now (the labs' setup cell does, before student code runs)."""
    _REFERENCE.start()


def _ask(request: dict[str, Any]) -> tuple[bool, str]:
    return _REFERENCE.ask(request)


# --------------------------------------------------------------------------- public checks
# Each kind of check has a ``_<kind>_request`` that runs the student's code and packs its
# numbers into a request for the reference. ``check_*`` lets an exception from the student's
# code propagate unchanged (its traceback points at the student's line, e.g. the lab's
# NotImplementedError stub); ``compare_*`` turns it into ``(False, message)``.

def _compare(build: Callable[[], dict[str, Any]]) -> tuple[bool, str]:
    try:
        request = build()
    except GradingError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 -- any bug in the answer is the student's to see
        return False, f"your code raised {type(exc).__name__}: {exc}"
    return _ask(request)


def _check(build: Callable[[], dict[str, Any]]) -> None:
    ok, message = _ask(build())
    if not ok:
        raise GradingError(message)


def _trajectory_request(make, reference, hp, surface="rosenbrock", steps=50, x0=None,
                        surface_kw=None, rtol=RTOL, atol=ATOL) -> dict[str, Any]:
    xy = student_path(make, hp, surface, steps, x0, surface_kw)
    return _path_request(xy, reference, hp, surface, steps, x0, surface_kw, rtol, atol)


def compare_trajectory(make: Callable[..., Any], reference: str, hp: Mapping[str, Any],
                       surface: str = "rosenbrock", steps: int = 50,
                       x0: Sequence[float] | None = None,
                       surface_kw: Mapping[str, Any] | None = None,
                       rtol: float = RTOL, atol: float = ATOL) -> tuple[bool, str]:
    """Run the student's optimizer ``make(**hp)`` and ``nnopt.make_optimizer(reference, **hp)``
    on ``surface`` for ``steps`` steps from ``x0`` (default: the surface's start) and compare
    every point. Returns ``(ok, message)``; ``KeyboardInterrupt`` (nbgrader's timeout)
    propagates.
    """
    return _compare(lambda: _trajectory_request(make, reference, hp, surface, steps, x0,
                                                surface_kw, rtol, atol))


def check_trajectory(*args: Any, **kwargs: Any) -> None:
    """:func:`compare_trajectory` for a test cell: raises :class:`GradingError` on a mismatch."""
    _check(lambda: _trajectory_request(*args, **kwargs))


def _path_request(xy, reference, hp, surface="rosenbrock", steps=50, x0=None, surface_kw=None,
                  rtol=RTOL, atol=ATOL) -> dict[str, Any]:
    path = _as_array(xy, "your trajectory")
    if path.ndim != 2 or path.shape[1] != 2:
        raise GradingError(f"a trajectory must have shape (steps + 1, 2); yours has shape {path.shape}")
    return {"kind": "trajectory", "reference": reference, "hp": _hp_json(hp),
            "surface": surface, "surface_kw": dict(surface_kw or {}), "steps": steps,
            "x0": None if x0 is None else [float(v) for v in x0],
            "student": path.tolist(), "rtol": rtol, "atol": atol}


def compare_path(xy: Any, reference: str, hp: Mapping[str, Any], surface: str = "rosenbrock",
                 steps: int = 50, x0: Sequence[float] | None = None,
                 surface_kw: Mapping[str, Any] | None = None,
                 rtol: float = RTOL, atol: float = ATOL) -> tuple[bool, str]:
    """Compare an already computed trajectory ``xy`` (``steps + 1`` points, the start first)
    with the reference's -- e.g. one produced by a Theano ``updates`` list."""
    return _compare(lambda: _path_request(xy, reference, hp, surface, steps, x0, surface_kw,
                                          rtol, atol))


def check_path(*args: Any, **kwargs: Any) -> None:
    """:func:`compare_path` for a test cell: raises :class:`GradingError` on a mismatch."""
    _check(lambda: _path_request(*args, **kwargs))


def _sequence_request(make, reference, hp, x0, grads, rtol=RTOL, atol=ATOL) -> dict[str, Any]:
    start = _as_array(x0, "x0")
    gs = [_as_array(g, "a test gradient", start.shape) for g in grads]
    with references_blocked(), _quiet_numerics():
        opt = _new_optimizer(make, _hp_student(hp, len(gs)))
        path = _run_student(opt, start, lambda k, x: gs[k - 1], len(gs))
    return {"kind": "sequence", "reference": reference, "hp": _hp_json(hp),
            "x0": start.tolist(), "grads": [g.tolist() for g in gs], "student": path,
            "rtol": rtol, "atol": atol}


def compare_sequence(make: Callable[..., Any], reference: str, hp: Mapping[str, Any],
                     x0: Sequence[float], grads: Iterable[Sequence[float]],
                     rtol: float = RTOL, atol: float = ATOL) -> tuple[bool, str]:
    """Feed a fixed sequence of gradients (e.g. all zeros, or one huge one) to the student's
    optimizer and to the reference, starting from ``x0``; compare the parameters after
    every step. This is how edge cases are tested (zero gradient, the first Adam step)."""
    return _compare(lambda: _sequence_request(make, reference, hp, x0, grads, rtol, atol))


def check_sequence(*args: Any, **kwargs: Any) -> None:
    """:func:`compare_sequence` for a test cell: raises :class:`GradingError` on a mismatch."""
    _check(lambda: _sequence_request(*args, **kwargs))


def _schedule_request(fn, reference, kwargs, ts=range(100), rtol=RTOL, atol=ATOL) -> dict[str, Any]:
    ts = [int(t) for t in ts]
    with references_blocked(), _quiet_numerics():
        lr = fn(**kwargs)
        if not callable(lr):
            raise GradingError(f"{getattr(fn, '__name__', 'your function')}(...) must return a "
                               f"function t -> learning rate; it returned a {type(lr).__name__}")
        values = [_as_array(lr(t), f"the schedule at t={t}", ()).item() for t in ts]
    return {"kind": "schedule", "reference": reference, "kwargs": dict(kwargs), "ts": ts,
            "student": values, "rtol": rtol, "atol": atol}


def compare_schedule(fn: Callable[..., Callable[[int], float]], reference: str,
                     kwargs: Mapping[str, float], ts: Iterable[int] = range(100),
                     rtol: float = RTOL, atol: float = ATOL) -> tuple[bool, str]:
    """The student's schedule factory ``fn(**kwargs)`` must give the learning rates of
    ``nnopt.schedules.<reference>(**kwargs)`` at every ``t`` in ``ts``."""
    return _compare(lambda: _schedule_request(fn, reference, kwargs, ts, rtol, atol))


def check_schedule(*args: Any, **kwargs: Any) -> None:
    """:func:`compare_schedule` for a test cell: raises :class:`GradingError` on a mismatch."""
    _check(lambda: _schedule_request(*args, **kwargs))


def _encode(value: Any, what: str) -> Any:
    """Arguments/results as JSON: arrays -> {"array": ..., "dtype": ...}, sequences -> lists."""
    if isinstance(value, np.ndarray):
        return {"array": _asarray(value, dtype=_FLOAT).tolist(), "dtype": value.dtype.str}
    if isinstance(value, (list, tuple)):
        return [_encode(v, what) for v in value]
    if isinstance(value, Mapping):
        return {"dict": {str(k): _encode(v, what) for k, v in value.items()}}
    return _as_array(value, what, ()).item()


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict) and "array" in value:
        return np.array(value["array"], dtype=np.dtype(value["dtype"]))
    if isinstance(value, dict) and "dict" in value:
        return {k: _decode(v) for k, v in value["dict"].items()}
    return value


def _function_request(fn, reference, cases, rtol=RTOL, atol=ATOL) -> dict[str, Any]:
    if reference not in _REFERENCE_FUNCTIONS:
        raise ValueError(f"reference must be one of {_REFERENCE_FUNCTIONS}, got {reference!r}")
    encoded = [_encode(list(c), "a test case") for c in cases]
    results = []
    for i, case in enumerate(encoded):
        args = _decode(case)                          # fresh copies for the student
        with references_blocked(), _quiet_numerics():
            result = fn(*args)
        if _dumps(_encode(args, "an argument")) != _dumps(case):
            raise GradingError(f"case {i}: your function modified its input in place; it must "
                               "return new arrays and leave its arguments unchanged")
        results.append(_encode(result, f"case {i}: your result"))
    return {"kind": "function", "reference": reference, "cases": encoded, "student": results,
            "rtol": rtol, "atol": atol}


def compare_function(fn: Callable[..., Any], reference: str, cases: Iterable[Sequence[Any]],
                     rtol: float = RTOL, atol: float = ATOL) -> tuple[bool, str]:
    """Call the student's ``fn(*case)`` and ``nnopt.<reference>(*case)`` for every case
    (arguments: numbers, arrays, lists of arrays) and compare the results, which may be
    nested tuples/lists of arrays and numbers. The student's function gets copies and must
    not modify them."""
    return _compare(lambda: _function_request(fn, reference, cases, rtol, atol))


def check_function(*args: Any, **kwargs: Any) -> None:
    """:func:`compare_function` for a test cell: raises :class:`GradingError` on a mismatch."""
    _check(lambda: _function_request(*args, **kwargs))


def _training_request(row, strategy, epochs, seed=0, acc_tol=0.01, loss_rtol=1e-3) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise GradingError(f"a result row must be a dict, got a {type(row).__name__}")
    missing = [k for k in ("train_loss", "val_acc") if k not in row]
    if missing:
        raise GradingError(f"the result row has no {missing} (keys: {sorted(row)})")
    values = {k: _as_array(row[k], f"row[{k!r}]", ()).item() for k in ("train_loss", "val_acc")}
    return {"kind": "training", "strategy": _strategy_json(strategy), "epochs": int(epochs),
            "seed": int(seed), "student": values, "acc_tol": acc_tol, "loss_rtol": loss_rtol}


def _strategy_json(strategy: Any) -> dict[str, Any]:
    if not isinstance(strategy, Mapping) or not {"optimizer", "hp", "batch_size"} <= set(strategy):
        raise GradingError("a strategy must be a dict with keys 'optimizer', 'hp' and 'batch_size'; "
                           f"got {strategy!r}")
    return {"optimizer": str(strategy["optimizer"]), "hp": _hp_json(dict(strategy["hp"])),
            "batch_size": None if strategy["batch_size"] is None else int(strategy["batch_size"])}


def compare_training(row: Mapping[str, Any], strategy: Mapping[str, Any], epochs: int,
                     seed: int = 0, acc_tol: float = 0.01, loss_rtol: float = 1e-3) -> tuple[bool, str]:
    """Re-train ``strategy`` (``{"optimizer", "hp", "batch_size"}``) the lab's way --
    ``nnopt.models.default_mlp(seed=seed)`` on ``nnopt.data.load_digits(seed=0)`` with
    ``nnopt.train.fit(..., epochs, batch_size, seed=seed)`` -- and compare the final training
    loss and validation accuracy with the student's ``row``: a reported number must be
    reproducible from its configuration."""
    return _compare(lambda: _training_request(row, strategy, epochs, seed, acc_tol, loss_rtol))


def check_training(*args: Any, **kwargs: Any) -> None:
    """:func:`compare_training` for a test cell: raises :class:`GradingError` on a mismatch."""
    _check(lambda: _training_request(*args, **kwargs))


def check_figure(fig: Any, min_lines: int = 1) -> None:
    """A matplotlib figure with at least one axes, each titled with labelled axes, and at
    least ``min_lines`` labelled lines in total (the legend entries)."""
    from matplotlib.figure import Figure
    if not isinstance(fig, Figure):
        raise GradingError(f"expected a matplotlib Figure, got {type(fig).__name__} "
                           "(use `fig, ax = plt.subplots()` and keep `fig`)")
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    if not axes:
        raise GradingError("the figure has no axes")
    for i, ax in enumerate(axes):
        for part, text in (("title", ax.get_title()), ("x label", ax.get_xlabel()),
                           ("y label", ax.get_ylabel())):
            if not text.strip():
                raise GradingError(f"axes {i} of the figure has no {part}")
    labelled = [ln for ax in axes for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    if len(labelled) < min_lines:
        raise GradingError(f"the figure must show at least {min_lines} labelled lines (pass label=... "
                           f"to plot and call legend()); found {len(labelled)}")


# --------------------------------------------------------------------------- Theano (Lab 3)
def _symbolic_surface(surface: Any, p: Any) -> Any:
    """The surface's value as a Theano expression of the 2-vector ``p``."""
    from .surfaces import Quadratic, Rosenbrock
    x, y = p[0], p[1]
    if isinstance(surface, Rosenbrock):
        return (surface.a - x) ** 2 + surface.b * (y - x ** 2) ** 2
    if isinstance(surface, Quadratic):
        H = surface.H
        return 0.5 * (H[0, 0] * x * x + 2 * H[0, 1] * x * y + H[1, 1] * y * y)
    raise ValueError(f"theano_path supports the quadratic and rosenbrock surfaces, not {surface.name!r}")


def theano_path(updates_fn: Callable[..., Any], hp: Mapping[str, Any], surface: str = "rosenbrock",
                steps: int = 50, x0: Sequence[float] | None = None,
                surface_kw: Mapping[str, Any] | None = None) -> np.ndarray:
    """Trajectory of a student's symbolic optimizer: ``updates_fn(cost, [theta], **hp)`` must
    return the ``updates`` list for ``theano.function``. Compare it with :func:`check_path`."""
    from . import surfaces
    from .theano_compat import theano
    surf = surfaces.get(surface, **dict(surface_kw or {}))
    start = _as_array(surf.start if x0 is None else x0, "x0", (2,))
    theta = theano.shared(start.copy(), name="theta")
    cost = _symbolic_surface(surf, theta)
    with references_blocked(), _quiet_numerics():
        updates = updates_fn(cost, [theta], **hp)
        try:
            step = theano.function([], cost, updates=updates)
        except Exception as exc:  # noqa: BLE001
            raise GradingError(f"theano.function(..., updates=your_updates) failed: "
                               f"{type(exc).__name__}: {exc}") from None
        path = [start.tolist()]
        for k in range(1, steps + 1):
            step()
            x = _as_array(theta.get_value(), f"theta after step {k}", (2,))
            path.append(x.tolist())
            if not _isfinite(x).all() or np.abs(x).max() > BOUND:
                break
    return _asarray(path, dtype=_FLOAT)


# --------------------------------------------------------------------------- the reference side
def _fmt(v: Any) -> str:
    return np.array2string(np.asarray(v, dtype=float), precision=8, separator=", ")


def _mismatch(mine: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Boolean mask of entries that differ (NaN never agrees)."""
    return ~(np.abs(mine - ref) <= atol + rtol * np.abs(ref))


def _compare_points(label: str, student: np.ndarray, ref: np.ndarray, ref_diverged: bool,
                    explain: Callable[[int], str], rtol: float, atol: float) -> tuple[bool, str]:
    """Compare two sequences of points (start first) step by step."""
    n = min(len(student), len(ref))
    bad = np.flatnonzero(_mismatch(student[:n], ref[:n], rtol, atol).reshape(n, -1).any(axis=1))
    if bad.size:
        k = int(bad[0])
        if k == 0:
            return False, f"{label}: your trajectory does not start at x0 = {_fmt(ref[0])}"
        return False, (f"{label}: step {k} differs from the reference.\n"
                       f"  before step {k} (you agree up to here): theta = {_fmt(ref[k - 1])}\n"
                       f"{explain(k)}"
                       f"  expected after step {k}: {_fmt(ref[k])}\n"
                       f"  yours after step {k}:    {_fmt(student[k])}")
    if len(student) < len(ref):
        return False, (f"{label}: your trajectory stops after {len(student) - 1} steps (a non-finite "
                       f"or huge value); the reference makes {len(ref) - 1} steps")
    if len(student) > len(ref) and not ref_diverged:
        return False, f"{label}: your trajectory has {len(student) - 1} steps; expected {len(ref) - 1}"
    if len(student) > len(ref):   # the reference diverged at step len(ref); so must the student
        k = len(ref)
        if _isfinite(student[k]).all() and np.abs(student[k]).max() <= BOUND:
            return False, f"{label}: the reference diverges at step {k} but yours stays finite"
    tail = f" (both diverge at step {len(ref)})" if ref_diverged else ""
    return True, f"{label}: all {len(ref) - 1} steps agree with the reference{tail}"


def _reference_trajectory(req: Mapping[str, Any]) -> tuple[bool, str]:
    from . import surfaces
    from .optimizers import make_optimizer
    hp = _hp_reference(req["hp"])
    surf = surfaces.get(req["surface"], **req["surface_kw"])
    path = surfaces.run(surf, make_optimizer(req["reference"], **hp), req["x0"], req["steps"])
    start = surf.start if req["x0"] is None else req["x0"]
    label = f"{_describe(req['reference'], req['hp'])} on {surf!r} from {_fmt(start)}"
    ref = path.xy

    def explain(k: int) -> str:
        return f"  gradient at that point: {_fmt(surf.grad(ref[k - 1]))}\n"

    return _compare_points(label, np.array(req["student"], dtype=float), ref,
                           path.diverged_at is not None, explain, req["rtol"], req["atol"])


def _reference_sequence(req: Mapping[str, Any]) -> tuple[bool, str]:
    from .optimizers import NonFiniteGradient, make_optimizer
    opt = make_optimizer(req["reference"], **_hp_reference(req["hp"]))
    p = np.array(req["x0"], dtype=float)
    grads = [np.array(g, dtype=float) for g in req["grads"]]
    ref, diverged = [p.copy()], False
    with np.errstate(all="ignore"):
        for g in grads:
            try:
                opt.step([p], [g])
            except NonFiniteGradient:
                diverged = True
                break
            ref.append(p.copy())
    label = f"{_describe(req['reference'], req['hp'])} fed {len(grads)} given gradient(s)"

    def explain(k: int) -> str:
        return f"  gradient of step {k}: {_fmt(grads[k - 1])}\n"

    student = np.array(req["student"], dtype=float)
    return _compare_points(label, student, np.array(ref), diverged, explain,
                           req["rtol"], req["atol"])


def _reference_schedule(req: Mapping[str, Any]) -> tuple[bool, str]:
    from .schedules import make_schedule
    sched = make_schedule(req["reference"], **req["kwargs"])
    ts = req["ts"]
    ref = np.array([sched(t) for t in ts])
    mine = np.array(req["student"], dtype=float)
    bad = np.flatnonzero(_mismatch(mine, ref, req["rtol"], req["atol"]))
    label = _describe(req["reference"], req["kwargs"])
    if bad.size:
        i = int(bad[0])
        return False, (f"{label}: at t={ts[i]} the learning rate should be {ref[i]!r}, yours is "
                       f"{mine[i]!r} (remember: the first step is t=0)")
    return True, f"{label}: all {len(ts)} values agree"


def _flatten(tree: Any, path: str = "result") -> list[tuple[str, np.ndarray]]:
    """Leaves of a nested result as (location, float array); mappings by sorted key."""
    if isinstance(tree, dict) and "array" in tree:
        return [(path, np.array(tree["array"], dtype=float))]
    if isinstance(tree, dict) and "dict" in tree:
        return [leaf for k in sorted(tree["dict"]) for leaf in _flatten(tree["dict"][k], f"{path}[{k!r}]")]
    if isinstance(tree, list):
        return [leaf for i, v in enumerate(tree) for leaf in _flatten(v, f"{path}[{i}]")]
    return [(path, np.array(tree, dtype=float))]


def _reference_function(req: Mapping[str, Any]) -> tuple[bool, str]:
    from . import clipping
    fn = getattr(clipping, req["reference"])
    for i, (case, mine) in enumerate(zip(req["cases"], req["student"])):
        ref = _encode(fn(*_decode(case)), "reference")
        label = f"{req['reference']} case {i}"
        ref_leaves, my_leaves = _flatten(ref), _flatten(mine)
        if [(p, a.shape) for p, a in ref_leaves] != [(p, a.shape) for p, a in my_leaves]:
            return False, (f"{label}: the result has the wrong structure: expected "
                           f"{[(p, a.shape) for p, a in ref_leaves]}, got "
                           f"{[(p, a.shape) for p, a in my_leaves]}")
        for (where, r), (_, m) in zip(ref_leaves, my_leaves):
            if _mismatch(m, r, req["rtol"], req["atol"]).any():
                return False, f"{label}: {where} should be {_fmt(r)}, yours is {_fmt(m)}"
    return True, f"{req['reference']}: all {len(req['cases'])} cases agree"


def _reference_training(req: Mapping[str, Any]) -> tuple[bool, str]:
    from .data import load_digits
    from .models import default_mlp
    from .optimizers import make_optimizer
    from .train import fit
    s = req["strategy"]
    history = fit(default_mlp(seed=req["seed"]), make_optimizer(s["optimizer"], **_hp_reference(s["hp"])),
                  load_digits(seed=0), epochs=req["epochs"], batch_size=s["batch_size"],
                  seed=req["seed"], progress=False)
    ref = {"train_loss": history.train_loss[-1], "val_acc": history.val_acc[-1]}
    mine = req["student"]
    label = (f"{_describe(s['optimizer'], s['hp'])}, batch_size={s['batch_size']}, "
             f"{req['epochs']} epochs, seed {req['seed']}")
    if not abs(mine["val_acc"] - ref["val_acc"]) <= req["acc_tol"]:
        return False, (f"{label}: the validation accuracy should be {ref['val_acc']:.4f}, the row says "
                       f"{mine['val_acc']!r}")
    if not abs(mine["train_loss"] - ref["train_loss"]) <= req["loss_rtol"] * abs(ref["train_loss"]):
        return False, (f"{label}: the final training loss should be {ref['train_loss']:.6g}, the row "
                       f"says {mine['train_loss']!r}")
    return True, f"{label}: reproduced (val_acc {ref['val_acc']:.4f})"


_HANDLERS = {"trajectory": _reference_trajectory, "sequence": _reference_sequence,
             "schedule": _reference_schedule, "function": _reference_function,
             "training": _reference_training}


def evaluate(request: Mapping[str, Any]) -> dict[str, Any]:
    """Compute the reference for ``request`` and compare the student's numbers with it:
    ``{"ok": bool, "message": str}``. Runs in the reference process (see :func:`main`)."""
    kind = request.get("kind")
    if kind not in _HANDLERS:
        raise ValueError(f"unknown request kind {kind!r}; expected one of {sorted(_HANDLERS)}")
    ok, message = _HANDLERS[kind](request)
    return {"ok": bool(ok), "message": message}


def main() -> None:
    """The reference process: one JSON request per line on stdin, one verdict per line out."""
    for line in sys.stdin:
        try:
            verdict = evaluate(json.loads(line))
        except Exception as exc:  # noqa: BLE001 -- report, keep serving
            verdict = {"ok": False, "message": f"{REFERENCE_FAILURE}: {type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(verdict) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
