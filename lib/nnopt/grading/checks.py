"""The checks test cells call: run the student's code, record its numbers, give the verdict.

Every ``check_<kind>(answer, <literal arguments>...)`` does the same three things:

1. run the student's ``answer`` on inputs built from the literal arguments (in the kernel,
   with copies, see :mod:`.answers`) and turn what it returns into numbers;
2. **record** them (:mod:`.record`): a display_data output of the test cell, which is what
   the trusted grader scores at autograde;
3. in student mode, ask the reference process for the verdict (:mod:`.client`): print a
   one-line "passed" or raise :class:`GradingError` with the explanation (and the bug it
   matches, if any). An exception of the student's code is re-raised unchanged, so its
   traceback points at the student's line. At autograde (``NNOPT_GRADING_MODE=record``)
   step 3 is skipped: the kernel has no verdict to give.

``compare_<kind>(...)`` runs the same check and returns ``(ok, message)`` instead (student
mode; useful in experiments and tests). A test cell must not end in a value: nbgrader reads
a number there as partial credit, so ``check_*`` return None.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from . import answers, client, record
from .spec import GradingError, Spec, bind

Produce = Callable[[Any, dict[str, Any]], dict[str, Any]]
PASS, FAIL = "\u2713", "\u2717"


def run_check(fn: Callable[..., Any], kind: str, produce: Produce, args: tuple, kwargs: Mapping[str, Any],
              n_answers: int = 1) -> tuple[dict[str, Any] | None, BaseException | None, Spec]:
    """Bind, produce the answer, record it; in student mode also get the verdict.

    ``n_answers``: how many leading arguments are the student's objects (see :func:`.spec.bind`).
    Returns ``(verdict or None in record mode, the student's exception or None, spec)``.
    """
    answer_obj, spec = bind(fn, kind, args, kwargs, n_answers)
    raised: BaseException | None = None
    try:
        rec = record.make(spec, produce(answer_obj, spec.args))
    except GradingError as exc:
        rec = record.make(spec, error=str(exc))
    except Exception as exc:  # noqa: BLE001 -- any bug in the answer is the student's to see
        raised = exc
        rec = record.make(spec, error=f"your code raised {type(exc).__name__}: {exc}")
    if record.recording_only():
        record.publish(rec, f"recorded for grading: {spec.describe()}")
        return None, raised, spec
    verdict = client.ask(rec)
    first = verdict.get("message", "").split("\n")[0]
    record.publish(rec, f"{PASS if verdict.get('ok') else FAIL} {first}")
    return verdict, raised, spec


def check(fn: Callable[..., Any], kind: str, produce: Produce, args: tuple, kwargs: Mapping[str, Any],
          n_answers: int = 1) -> None:
    verdict, raised, _ = run_check(fn, kind, produce, args, kwargs, n_answers)
    if verdict is None or verdict.get("ok"):
        return
    if raised is not None:
        raise raised
    raise GradingError(verdict.get("message", "the check failed"))


def compare(fn: Callable[..., Any], kind: str, produce: Produce, args: tuple,
            kwargs: Mapping[str, Any]) -> tuple[bool, str]:
    verdict, _, spec = run_check(fn, kind, produce, args, kwargs)
    if verdict is None:
        return False, f"recorded for grading (no verdict in record mode): {spec.describe()}"
    return bool(verdict.get("ok")), str(verdict.get("message", ""))


# ----------------------------------------------------------------- optimizers on surfaces / sequences
def _trajectory_answer(make: Callable[..., Any], a: dict[str, Any]) -> dict[str, Any]:
    from .. import surfaces
    surf = surfaces.get(a["surface"], **(a["surface_kw"] or {}))
    start = answers.as_array(surf.start if a["x0"] is None else a["x0"], "x0", (2,))
    with answers.references_blocked(), answers.quiet_numerics():
        opt = answers.new_optimizer(make, answers.student_hp(a["hp"], a["steps"]))
        path, dtype = answers.run_optimizer(opt, start, lambda k, x: surf.grad(x), a["steps"])
    return {"path": record.encode(path), "dtype": dtype}


def check_trajectory(make: Callable[..., Any], reference: str, hp: Mapping[str, Any],
                     surface: str = "rosenbrock", steps: int = 50, x0: Sequence[float] | None = None,
                     surface_kw: Mapping[str, Any] | None = None, why: str = "") -> None:
    """Run the student's ``make(**hp)`` for ``steps`` steps on ``surface`` from ``x0`` (default:
    the surface's start) and compare every point with ``nnopt``'s ``reference`` optimizer.
    A schedule in ``hp`` (``grading.schedule(...)``) reaches the student as ``t -> lr``."""
    check(check_trajectory, "trajectory", _trajectory_answer, (make, reference, hp, surface, steps, x0,
                                                               surface_kw, why), {})


def compare_trajectory(*args: Any, **kwargs: Any) -> tuple[bool, str]:
    """:func:`check_trajectory` returning ``(ok, message)``."""
    return compare(check_trajectory, "trajectory", _trajectory_answer, args, kwargs)


def _sequence_answer(make: Callable[..., Any], a: dict[str, Any]) -> dict[str, Any]:
    dt = np.dtype(a["dtype"])
    start = answers.as_array(a["x0"], "x0").astype(dt)
    gs = [answers.as_array(g, "a test gradient", start.shape).astype(dt) for g in a["grads"]]
    with answers.references_blocked(), answers.quiet_numerics():
        opt = answers.new_optimizer(make, answers.student_hp(a["hp"], len(gs)))
        path, dtype = answers.run_optimizer(opt, start, lambda k, x: gs[k - 1], len(gs))
    return {"path": record.encode(path), "dtype": dtype}


def check_sequence(make: Callable[..., Any], reference: str, hp: Mapping[str, Any], x0: Sequence[float],
                   grads: Iterable[Sequence[float]], dtype: str = "float64", why: str = "") -> None:
    """Feed a fixed sequence of gradients (zeros, a huge one, ...) of ``dtype`` to the student's
    optimizer and to the reference from ``x0``; compare the parameters after every step."""
    check(check_sequence, "sequence", _sequence_answer, (make, reference, hp, x0, grads, dtype, why), {})


def compare_sequence(*args: Any, **kwargs: Any) -> tuple[bool, str]:
    """:func:`check_sequence` returning ``(ok, message)``."""
    return compare(check_sequence, "sequence", _sequence_answer, args, kwargs)


# ----------------------------------------------------------------- schedules
def _schedule_answer(fn: Callable[..., Any], a: dict[str, Any]) -> dict[str, Any]:
    with answers.references_blocked(), answers.quiet_numerics():
        lr = fn(**a["kwargs"])
        if not callable(lr):
            raise GradingError(f"{getattr(fn, '__name__', 'your function')}(...) must return a "
                               f"function t -> learning rate; it returned a {type(lr).__name__}")
        values = [answers.as_array(lr(t), f"the schedule at t={t}", ()).item() for t in a["ts"]]
    return {"values": record.encode(values)}


def check_schedule(fn: Callable[..., Any], reference: str, kwargs: Mapping[str, float],
                   ts: Iterable[int] = range(100), why: str = "") -> None:
    """The student's schedule factory ``fn(**kwargs)`` must give the learning rates of
    ``nnopt.schedules.<reference>(**kwargs)`` at every ``t`` in ``ts``."""
    check(check_schedule, "schedule", _schedule_answer, (fn, reference, kwargs, ts, why), {})


def compare_schedule(*args: Any, **kwargs: Any) -> tuple[bool, str]:
    """:func:`check_schedule` returning ``(ok, message)``."""
    return compare(check_schedule, "schedule", _schedule_answer, args, kwargs)


# ----------------------------------------------------------------- clipping
def _clipping_answer(fn: Callable[..., Any], a: dict[str, Any]) -> dict[str, Any]:
    dt = np.dtype(a["dtype"])
    results, modified, dtype = [], False, "float64"
    for i, (arrays, threshold) in enumerate(a["cases"]):
        grads = [np.array(x, dtype=dt) for x in arrays]
        before = answers.snapshot(grads)
        with answers.references_blocked(), answers.quiet_numerics():
            out = fn(grads, threshold)
        modified = modified or not answers.copies_unchanged(grads, before)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise GradingError(f"case {i}: return a pair (clipped, norm); got a {type(out).__name__}")
        clipped, norm = out
        if not isinstance(clipped, (list, tuple)):
            raise GradingError(f"case {i}: clipped must be a list of arrays; got a {type(clipped).__name__}")
        if any(answers.dtype_name(c) == "float32" for c in clipped):
            dtype = "float32"
        results.append({"clipped": [record.encode(answers.as_array(c, f"case {i}: clipped array"))
                                    for c in clipped],
                        "norm": record.encode(answers.as_array(norm, f"case {i}: the norm", ()))})
    return {"results": results, "modified": modified, "dtype": dtype}


def check_clipping(fn: Callable[..., Any], reference: str, cases: Sequence[Any], dtype: str = "float64",
                   why: str = "") -> None:
    """Call the student's ``fn(grads, max_norm)`` for every case ``(arrays, max_norm)`` (arrays
    as nested lists, made ``dtype`` arrays) and compare ``(clipped, norm)`` with
    ``nnopt.clipping.<reference>``; the input arrays must be left unchanged."""
    check(check_clipping, "clipping", _clipping_answer, (fn, reference, cases, dtype, why), {})


def compare_clipping(*args: Any, **kwargs: Any) -> tuple[bool, str]:
    """:func:`check_clipping` returning ``(ok, message)``."""
    return compare(check_clipping, "clipping", _clipping_answer, args, kwargs)
