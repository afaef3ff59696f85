r"""A trajectory :math:`x_0, x_1, \dots` of an iterative method on a function, and the kit's
one divergence rule for such runs.

:class:`Trajectory` is what :func:`nnopt.surfaces.run` (a first-order optimizer on a 2-D
surface) and the second-order methods of :mod:`nnopt.second_order` return, so a Newton run
and an Adam run plot, tabulate and compare the same way. (``surfaces.Path`` and
``second_order.Result`` are the same class under the names the lectures use.)

**Divergence.** A run has diverged at step :math:`k` when the point :math:`x_k` or its value
is not finite (NaN, inf), or a coordinate exceeds :data:`BOUND` in magnitude
(:func:`diverged`); it stops there and ``diverged_at = k``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .validation import Described, invalid

__all__ = ["BOUND", "diverged", "Trajectory"]

#: A coordinate beyond this magnitude counts as divergence.
BOUND = 1e6


def diverged(x: np.ndarray, value: float, grad: Optional[np.ndarray] = None) -> bool:
    """The divergence rule: ``x`` or ``value`` (or ``grad``, when the method needs it at ``x``)
    is not finite, or ``max |x_i| > BOUND``."""
    finite = np.isfinite(x).all() and math.isfinite(value) and (grad is None or np.isfinite(grad).all())
    return not finite or float(np.abs(x).max(initial=0.0)) > BOUND


@dataclass
class Trajectory:
    """The iterates of one run: ``xy[k]`` is the point after ``k`` steps (``xy[0]`` the start),
    ``values[k]`` and ``grad_norms[k]`` the function value and gradient norm there.

    ``method`` names what ran (an optimizer's name such as ``"adam"``, or e.g. ``"newton"``);
    ``diverged_at`` is the step that produced a diverged point (not kept in ``xy``), else None;
    ``n_evals`` counts function evaluations (value and gradient together), ``converged`` says
    whether a stopping test was met, ``message`` why the run ended.
    """

    xy: np.ndarray
    values: np.ndarray
    grad_norms: np.ndarray
    diverged_at: Optional[int]
    method: str
    n_evals: int = 0
    converged: bool = False
    message: str = ""

    def __post_init__(self) -> None:
        if not self.message and self.diverged_at is not None:
            self.message = f"diverged at step {self.diverged_at}"

    @property
    def steps(self) -> int:
        """Steps taken (``len(xy) - 1``)."""
        return len(self.xy) - 1

    n_iter = steps

    @property
    def x(self) -> np.ndarray:
        """The final iterate."""
        return self.xy[-1]

    @property
    def path(self) -> np.ndarray:
        """The iterates (the name second-order results use for ``xy``)."""
        return self.xy

    @property
    def optimizer_name(self) -> str:
        """``method`` (the name surface runs use)."""
        return self.method

    def to_path(self) -> "Trajectory":
        """This trajectory, checked to be 2-D (for the surface plots of :mod:`nnopt.plots`)."""
        if self.xy.shape[1] != 2:
            raise invalid("trajectory", Described(f"{self.xy.shape[1]} dimensions"), "a 2-D problem for a surface plot")
        return self
