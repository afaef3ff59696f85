r"""Lab 4's matrix functions: a check of a function ``G -> f(G)`` on given matrices, and its judge.

A test cell states it with literal matrices (nested lists), e.g.::

    grading.check_matrix_function(newton_schulz, "newton_schulz", [[[3.0, 0.0], [0.0, 0.5]]],
                                  kwargs={"steps": 5})

The kernel side (:func:`check_matrix_function`) calls the student's ``fn(G, **kwargs)`` on a
copy of every matrix (``dtype`` arrays) and records the results; the judge
(:func:`judge_matrix_function`, in the reference process or the trusted grader) computes
``nnopt``'s ``reference`` itself (:func:`nnopt.grading.reference.matrix_function`) and, when
an answer differs, which known wrong variant it matches (Newton-Schulz without the
normalisation, with the cubic coefficients, a tall matrix returned transposed, ...).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import answers, compare, record
from .checks import check, compare as compare_check
from .outcome import AnswerError, Context, Verdict, numbers, with_tolerance
from .spec import GradingError, Spec


def _matrix_answer(fn: Callable[..., Any], a: dict[str, Any]) -> dict[str, Any]:
    dt = np.dtype(a["dtype"])
    outputs, dtype = [], "float64"
    for i, case in enumerate(a["cases"]):
        G = answers.as_array(case, f"case {i}").astype(dt)
        if G.ndim != 2:
            raise GradingError(f"case {i} is not a matrix (shape {G.shape}): the check is miswritten")
        with answers.references_blocked(), answers.quiet_numerics():
            out = fn(G.copy(), **(a["kwargs"] or {}))
        if answers.dtype_name(out) == "float32":
            dtype = "float32"
        outputs.append(record.encode(answers.as_array(out, f"case {i}: your function")))
    return {"outputs": outputs, "dtype": dtype}


def check_matrix_function(fn: Callable[..., Any], reference: str, cases: Sequence[Any],
                          kwargs: Mapping[str, Any] | None = None, dtype: str = "float64",
                          why: str = "") -> None:
    """Call the student's ``fn(G, **kwargs)`` on every matrix ``G`` of ``cases`` (nested lists,
    made ``dtype`` arrays) and compare each result with ``nnopt``'s ``reference(G, **kwargs)``
    (shape included)."""
    check(check_matrix_function, "matrix_function", _matrix_answer, (fn, reference, cases, kwargs, dtype, why), {})


def compare_matrix_function(*args: Any, **kwargs: Any) -> tuple[bool, str]:
    """:func:`check_matrix_function` returning ``(ok, message)``."""
    return compare_check(check_matrix_function, "matrix_function", _matrix_answer, args, kwargs)


# ----------------------------------------------------------------- the judge (reference side)
def _difference(mine: np.ndarray, ref: np.ndarray, tol: compare.Tolerance) -> str:
    if mine.shape != ref.shape:
        return f"your result has shape {mine.shape}, expected {ref.shape} (the input's shape)"
    bad = ~tol.close(mine, ref)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        return (f"entry {i} should be {ref[i]!r}, yours is {mine[i]!r}\n"
                f"  expected: {compare.fmt(ref)}\n  yours:    {compare.fmt(mine)}")
    return ""


def judge_matrix_function(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    from . import reference, variants
    args = spec.args
    tol = compare.tolerance(args["dtype"])
    label = spec.describe() + (f" -- {spec.why}" if spec.why else "")
    outputs = answer.get("outputs")
    if not isinstance(outputs, list) or len(outputs) != len(args["cases"]):
        raise AnswerError(f"expected {len(args['cases'])} results")
    kwargs = args["kwargs"] or {}
    for i, case in enumerate(args["cases"]):
        mine = numbers({"a": outputs[i]}, "a")
        G = np.array(case, dtype=args["dtype"])
        ref = reference.matrix_function(args["reference"], G, kwargs)
        problem = _difference(mine, ref, tol)
        if not problem:
            continue
        bugs = [v for v in variants.applicable(args["reference"], args)
                if (alt := variants.matrix_function(v.key, G, kwargs)) is not None
                and not _difference(mine, alt, tol) and _difference(ref, alt, tol)]
        name = reference.NAMES.get(args["reference"], args["reference"])
        lines = [f"{label}, case {i} (a {G.shape[0]}x{G.shape[1]} matrix): {problem}",
                 *[f"  Diagnosis: {b.sentence(name)}" for b in bugs]]
        return Verdict(False, with_tolerance("\n".join(lines), tol, str(answer.get("dtype", "float64"))),
                       [b.key for b in bugs])
    return Verdict(True, f"{label}: all {len(args['cases'])} matrices agree")


JUDGES = {"matrix_function": judge_matrix_function}
