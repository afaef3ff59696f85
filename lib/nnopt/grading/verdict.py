"""The verdict on one record: does the student's answer agree with the reference, and if not,
why -- with the known wrong variant it matches, if any.

:func:`judge` is the one function that decides. The reference process calls it for instant
feedback; at autograde the trusted grader (``autograder.verdicts``) calls it in its own
process, after execution, on the records it found in the executed notebook and only for the
checks it parsed from the trusted test-cell source. Its input is data (a record), never an
object from the student's kernel.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import compare, record, reference, variants
from .outcome import AnswerError, Context, Verdict, numbers, with_tolerance
from .spec import Spec


Judge = Callable[[Spec, dict[str, Any], Context], Verdict]


def _judges() -> dict[str, Judge]:
    from . import figures, matrices, symbolic, training
    return {"trajectory": _judge_path, "sequence": _judge_path, "schedule": _judge_schedule,
            "clipping": _judge_clipping, **figures.JUDGES, **training.JUDGES, **symbolic.JUDGES,
            **matrices.JUDGES}


def judge(payload: Any, context: Context | None = None, expected: Spec | None = None) -> Verdict:
    """The verdict on one record payload (see :mod:`nnopt.grading.record`).

    ``expected``: the check as the grader parsed it from the trusted test-cell source; the
    record must be for that check and is judged with it (its wording included).
    """
    try:
        spec, answer, error = record.parse(payload)
    except ValueError as exc:
        return Verdict(False, f"malformed record ({exc}): it scores 0")
    if expected is not None:
        if spec.key() != expected.key():
            return Verdict(False, f"the record is for another check than {expected.describe()}")
        spec = expected
    if error is not None:
        return Verdict(False, f"{spec.describe()}: {error}")
    judges = _judges()
    if spec.kind not in judges:
        return Verdict(False, f"unknown check {spec.kind!r}", grader_error=True)
    try:
        return judges[spec.kind](spec, answer, context or Context())
    except AnswerError as exc:
        return Verdict(False, f"{spec.describe()}: the recorded answer is malformed ({exc}): it scores 0")
    except Exception as exc:  # noqa: BLE001 -- the reference's failure, reported as such
        from .client import REFERENCE_FAILURE
        return Verdict(False, f"{REFERENCE_FAILURE} for {spec.describe()}: {type(exc).__name__}: {exc}",
                       grader_error=True)


# ----------------------------------------------------------------- optimizers (Labs 1 and 2)
def _judge_path(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    args = spec.args
    dtype = args.get("dtype", "float64")
    tol = compare.tolerance(dtype)
    points = numbers(answer, "path")                        # (steps + 1, *shape of theta)
    mine = list(points) if points.ndim >= 2 else []
    start = reference.start_of(args)
    if not mine or mine[0].shape != start.shape:
        raise AnswerError(f"points of shape {mine[0].shape if mine else None}, expected {start.shape}")
    expected = reference.path(args)
    grad = reference.gradients(args)
    label = spec.describe() + (f" -- {spec.why}" if spec.why else "")

    def context_line(k: int) -> str:
        g = grad(k, expected[k - 1])
        return f"  {'gradient there' if 'surface' in args else f'gradient of step {k}'}: {compare.fmt(g)}\n"

    ok, message = compare.explain_paths(label, mine, expected, tol, context_line)
    answer_dtype = str(answer.get("dtype", "float64"))
    if ok and answer_dtype == "float32" and dtype == "float64":
        ok, message = False, f"{label}: your step returns float32 arrays for float64 inputs"
    if ok:
        return Verdict(True, message)
    bugs = _diagnose_path(args, mine, tol)
    return Verdict(False, with_tolerance(_add_diagnosis(message, args["reference"], bugs), tol, answer_dtype),
                   [b.key for b in bugs])


def _diagnose_path(args: Mapping[str, Any], mine: list[np.ndarray], tol: compare.Tolerance) -> list[variants.Variant]:
    expected = reference.path(args)
    found = []
    for v in variants.applicable(args["reference"], args):
        try:
            other = reference.path(args, variants.rule(args["reference"], args["hp"], v.key))
        except (ArithmeticError, ValueError):
            continue
        if compare.agree(other, expected, tol):
            continue                                   # indistinguishable here: not a cause
        if v.key == "float32":
            if _float32_match(mine, other, expected):
                found.append(v)
        elif compare.agree(mine, other, tol):
            found.append(v)
    specific = [v for v in found if v.key != "float32"]
    return specific or found              # float32 precision is the weaker explanation


def _float32_match(mine: list[np.ndarray], f32: list[np.ndarray], expected: list[np.ndarray]) -> bool:
    """Within float32 precision of the float32 run (and close to the exact one) -- two float32
    codes with different operation orders agree only to ~1e-6."""
    loose = compare.Tolerance("float32", 1e-4, 1e-6)
    rough = compare.Tolerance("float64", 1e-3, 1e-6)
    return compare.agree(mine, f32, loose) and compare.agree(mine, expected, rough)


def _add_diagnosis(message: str, ref_name: str, bugs: list[variants.Variant]) -> str:
    what = reference.NAMES.get(ref_name, ref_name)
    lines = [f"  Diagnosis: {b.sentence(what)}" for b in bugs]
    return "\n".join([message, *lines])


def _judge_schedule(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    args = spec.args
    tol = compare.tolerance("float64")
    mine = numbers(answer, "values", ndim=1)
    ref = reference.schedule_values(args)
    if mine.shape != ref.shape:
        raise AnswerError(f"{mine.size} values for {ref.size} values of t")
    bad = np.flatnonzero(~tol.close(mine, ref))
    label = spec.describe() + (f" -- {spec.why}" if spec.why else "")
    if not bad.size:
        return Verdict(True, f"{label}: all {ref.size} values agree")
    i, ts = int(bad[0]), args["ts"]
    message = (f"{label}: at t={ts[i]} the learning rate should be {ref[i]!r}, yours is {mine[i]!r} "
               "(the first step is t=0)")
    bugs = [v for v in variants.applicable(args["reference"], args)
            if (alt := variants.schedule(v.key, args["kwargs"], ts)) is not None and tol.close(mine, alt).all()]
    return Verdict(False, with_tolerance(_add_diagnosis(message, args["reference"], bugs), tol),
                   [b.key for b in bugs])


def _judge_clipping(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    args = spec.args
    tol = compare.tolerance(args["dtype"])
    label = spec.describe() + (f" -- {spec.why}" if spec.why else "")
    if answer.get("modified"):
        bug = variants.BY_KEY["clip_in_place"]
        return Verdict(False, _add_diagnosis(f"{label}: your function modified its input in place",
                                             args["reference"], [bug]), [bug.key])
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != len(args["cases"]):
        raise AnswerError(f"expected {len(args['cases'])} results")
    for i, (case, mine) in enumerate(zip(args["cases"], results)):
        clipped, norm = _clip_answer(mine)
        ref, ref_norm = reference.clipping_case(args["reference"], case, args["dtype"])
        problem = _clip_difference(clipped, norm, ref, ref_norm, tol)
        if problem:
            bugs = _diagnose_clip(case, args["dtype"], clipped, norm, tol)
            message = f"{label}, case {i} (max_norm={case[1]}): {problem}"
            return Verdict(False, with_tolerance(_add_diagnosis(message, args["reference"], bugs), tol,
                                                 str(answer.get("dtype", args["dtype"]))), [b.key for b in bugs])
    return Verdict(True, f"{label}: all {len(args['cases'])} cases agree")


def _clip_answer(mine: Any) -> tuple[list[np.ndarray], np.ndarray]:
    if not isinstance(mine, Mapping) or not isinstance(mine.get("clipped"), list):
        raise AnswerError("a clipping result must hold 'clipped' and 'norm'")
    return [numbers({"a": a}, "a") for a in mine["clipped"]], numbers(mine, "norm", ndim=0)


def _clip_difference(clipped, norm, ref, ref_norm, tol) -> str:
    if [a.shape for a in clipped] != [r.shape for r in ref]:
        return (f"the clipped arrays have shapes {[a.shape for a in clipped]}, expected "
                f"{[r.shape for r in ref]}")
    if not tol.close(norm, ref_norm).all():
        return f"the norm should be {ref_norm!r} (before clipping), yours is {float(norm)!r}"
    for j, (a, r) in enumerate(zip(clipped, ref)):
        if not tol.close(a, r).all():
            return f"array {j} should be {compare.fmt(r)}, yours is {compare.fmt(a)}"
    return ""


def _diagnose_clip(case: list, dtype: str, clipped, norm, tol) -> list[variants.Variant]:
    arrays, max_norm = reference.case_arrays(case, dtype)
    ref, ref_norm = reference.clipping_case("clip_by_global_norm", case, dtype)

    def same(arrs: list, n: float | None, other: list, other_norm: float) -> bool:
        return (n is None or tol.close(other_norm, n).all()) and [a.shape for a in arrs] == [
            o.shape for o in other] and all(tol.close(o, a).all() for o, a in zip(other, arrs))

    found = []
    for v in variants.applicable("clip_by_global_norm", {}):
        guess = variants.clipping(v.key, arrays, max_norm)
        # a variant explains the answer if it matches it and differs from the reference here
        if guess is not None and same(*guess, clipped, float(norm)) and not same(*guess, ref, ref_norm):
            found.append(v)
    return found
