r"""Comparing numbers: dtype-aware tolerances and step-by-step messages.

**Tolerance.** Two values agree if :math:`|y - e| \le a + r\,|e|` elementwise (``e`` the
expected value), with ``(r, a)`` chosen by the dtype of the check's *inputs*:

=========  ===========  ==========  ==========================================================
inputs     ``rtol``     ``atol``    why
=========  ===========  ==========  ==========================================================
float64    1e-9         1e-12       ~10^7 float64 ulps: any order of the same float64 algebra
                                    passes (in place, reordered, folded bias correction), but
                                    float32 arithmetic (relative error ~1e-7) never does
float32    2e-5         1e-6        ~100 float32 ulps: a float32 answer to float32 inputs passes
=========  ===========  ==========  ==========================================================

So **float32 answers pass only when the check feeds float32**: the labs' inputs are float64,
and an answer that drops to float32 somewhere (``np.zeros(shape, dtype=np.float32)`` for a
state, ``astype(np.float32)``) fails with the diagnosis "float32 accumulation". Every
message states the tolerance and the dtypes (:meth:`Tolerance.describe`).

**Trajectories** are lists of points, the start first. A point is *diverged* if it is
non-finite or beyond :data:`~nnopt.grading.answers.BOUND`; a trajectory ends at its first
diverged point. Two trajectories agree if they have the same length and agree point by point,
diverged points agreeing with each other whatever their values.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .answers import BOUND


@dataclass(frozen=True)
class Tolerance:
    """``|yours - expected| <= atol + rtol * |expected|``, for inputs of ``dtype``."""

    dtype: str
    rtol: float
    atol: float

    def close(self, mine: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Elementwise agreement; a non-finite value agrees only with the same one (NaN with NaN,
        +inf with +inf): the bound ``atol + rtol*|inf|`` would let anything agree with infinity."""
        mine, ref = np.asarray(mine, dtype=float), np.asarray(ref, dtype=float)
        with np.errstate(invalid="ignore", over="ignore"):
            ok = np.isfinite(ref) & (np.abs(mine - ref) <= self.atol + self.rtol * np.abs(ref))
        return ok | (np.isnan(mine) & np.isnan(ref)) | (np.isinf(mine) & (mine == ref))

    def describe(self, answer_dtype: str | None = None) -> str:
        yours = "" if answer_dtype is None else f"; your results are {answer_dtype}"
        return (f"compared for {self.dtype} inputs: |yours - expected| <= {self.atol:g} + "
                f"{self.rtol:g}*|expected|{yours}")


TOLERANCES = {"float64": Tolerance("float64", 1e-9, 1e-12), "float32": Tolerance("float32", 2e-5, 1e-6)}


def tolerance(dtype: str) -> Tolerance:
    if dtype not in TOLERANCES:
        raise ValueError(f"Invalid dtype: {dtype!r} (expected one of {sorted(TOLERANCES)})")
    return TOLERANCES[dtype]


def fmt(v: object) -> str:
    return np.array2string(np.asarray(v, dtype=float), precision=10, separator=", ")


def diverged(point: np.ndarray) -> bool:
    return not np.isfinite(point).all() or float(np.abs(point).max(initial=0.0)) > BOUND


def _diverged_rows(points: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return ~np.isfinite(points).all(axis=1) | (np.abs(points).max(axis=1, initial=0.0) > BOUND)


def first_difference(mine: Sequence[np.ndarray], ref: Sequence[np.ndarray], tol: Tolerance) -> int | None:
    """Index of the first point where two trajectories disagree (a missing point counts),
    or None if they agree."""
    n = min(len(mine), len(ref))
    shapes = {np.shape(p) for p in list(mine[:n]) + list(ref[:n])}
    if len(shapes) > 1:
        return next(k for k in range(n) if np.shape(mine[k]) != np.shape(ref[k]))
    if n:
        a = np.asarray(mine[:n], dtype=float).reshape(n, -1)
        b = np.asarray(ref[:n], dtype=float).reshape(n, -1)
        da, db = _diverged_rows(a), _diverged_rows(b)
        bad = ~(da & db) & ((da != db) | ~tol.close(a, b).all(axis=1))
        if bad.any():
            return int(np.flatnonzero(bad)[0])
    return None if len(mine) == len(ref) else n


def agree(mine: Sequence[np.ndarray], ref: Sequence[np.ndarray], tol: Tolerance) -> bool:
    return first_difference(mine, ref, tol) is None


def explain_paths(label: str, mine: Sequence[np.ndarray], ref: Sequence[np.ndarray], tol: Tolerance,
                  context: Callable[[int], str]) -> tuple[bool, str]:
    """``(ok, message)`` for two trajectories: the first differing step, the point before it
    (where they still agree), ``context(k)`` (e.g. the gradient there) and both results."""
    k = first_difference(mine, ref, tol)
    if k is None:
        tail = f" (both diverge at step {len(ref) - 1})" if ref and diverged(ref[-1]) else ""
        return True, f"{label}: all {len(ref) - 1} steps agree with the reference{tail}"
    if k == 0:
        return False, f"{label}: your trajectory does not start at x0 = {fmt(ref[0])}"
    if k >= len(mine):
        return False, (f"{label}: your trajectory stops after {len(mine) - 1} steps (a non-finite or "
                       f"huge value); the reference makes {len(ref) - 1} steps")
    if k >= len(ref):
        return False, (f"{label}: the reference diverges at step {len(ref) - 1} (a non-finite or huge "
                       f"value) but yours goes on")
    status = " (diverged)" if diverged(mine[k]) and not diverged(ref[k]) else ""
    return False, (f"{label}: step {k} differs from the reference.\n"
                   f"  before step {k} (you agree up to here): theta = {fmt(ref[k - 1])}\n"
                   f"{context(k)}"
                   f"  expected after step {k}: {fmt(ref[k])}\n"
                   f"  yours after step {k}:    {fmt(mine[k])}{status}")
