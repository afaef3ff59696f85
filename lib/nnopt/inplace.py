r"""In-place array kernels of the optimizers' fast path (``Optimizer._update_inplace``).

Each writes into an existing array (trailing ``_``, as torch's in-place ops) and allocates
nothing that grows with the parameters: ``out=`` ufuncs and BLAS ``axpy``. The readable
``_update`` of each optimizer writes the same math as plain numpy expressions; the tests
check that both paths give the same numbers.

=====================  ===================================================================
``axpy_(a, x, y)``      :math:`y \leftarrow y + a x` (one BLAS pass when it can)
``ema_(avg, new, b)``   :math:`avg \leftarrow b\, avg + (1-b)\, new`
``rms_(r, eps, ...)``   :math:`\sqrt{r + \delta}` or :math:`\sqrt{r} + \delta` into ``out``
``sum_of_squares(g)``   :math:`g \cdot g` in one pass (the finiteness test and the norm)
=====================  ===================================================================
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import blas

__all__ = ["axpy_", "ema_", "rms_", "sum_of_squares"]

_BLAS_AXPY = {np.dtype(np.float32): blas.saxpy, np.dtype(np.float64): blas.daxpy}


def _blas_ready(a: np.ndarray) -> bool:
    """BLAS works on ``a`` itself (not on a copy scipy makes silently): contiguous and aligned."""
    return a.flags.c_contiguous and a.flags.aligned and a.size > 0


def axpy_(a: float, x: np.ndarray, y: np.ndarray) -> None:
    """``y += a * x`` in place: one BLAS pass, no temporary; the ufunc form otherwise.

    scipy hands BLAS a *copy* of an array that is not contiguous or not aligned (e.g. a
    float64 view at an odd byte offset) and returns the result in the copy, so ``y`` would
    silently stay unchanged: such arrays take the ufunc path, and the BLAS result is checked
    to be ``y``'s own memory.
    """
    axpy = _BLAS_AXPY.get(y.dtype)
    if axpy is None or x.dtype != y.dtype or not (_blas_ready(x) and _blas_ready(y)):
        y += a * x
        return
    flat = y.reshape(-1)
    result = axpy(x.reshape(-1), flat, a=a)
    if result is not flat:                               # BLAS worked on a copy after all
        flat[...] = result


def ema_(avg: np.ndarray, new: np.ndarray, decay: float) -> None:
    r"""Exponential moving average in place: ``avg <- decay*avg + (1-decay)*new``."""
    avg *= decay
    axpy_(1.0 - decay, new, avg)


def rms_(r: np.ndarray, eps: float, inside: bool, out: np.ndarray) -> np.ndarray:
    r"""Denominator ``sqrt(r + eps)`` (``inside``) or ``sqrt(r) + eps`` into ``out``."""
    if inside:
        np.add(r, eps, out=out)
        np.sqrt(out, out=out)
    else:
        np.sqrt(r, out=out)
        out += eps
    return out


def sum_of_squares(g: np.ndarray) -> float:
    """``g . g`` with one BLAS pass (no temporary) for contiguous arrays."""
    flat = g.reshape(-1) if g.flags.c_contiguous else np.ravel(g)
    return float(np.dot(flat, flat))
