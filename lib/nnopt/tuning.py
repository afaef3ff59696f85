r"""Choosing a learning rate: a grid widened until its best value is inside, and the
learning-rate range test.

**A grid must contain its optimum.** A sweep over a fixed grid answers "which of *these*
rates is best". When the winner is the smallest or the largest rate on offer, the true
optimum probably lies outside, and a comparison of optimizers at their grid winners compares
the grids as much as the optimizers. :func:`widen_until_interior` evaluates a starting grid
and, while the best score sits at an edge (fewer than ``margin`` = :math:`m` rates beyond it),
adds one rate beyond that edge (a factor ``factor`` further out) and evaluates it:

.. math::
    i^* = \arg\min_i \text{score}(\epsilon_i), \qquad
    i^* < m \Rightarrow \text{add } \epsilon_0 / \text{factor}, \qquad
    i^* > n-1-m \Rightarrow \text{add } \epsilon_{n-1} \cdot \text{factor},

until at least ``margin`` evaluated rates lie on each side of :math:`i^*` (``interior``; a
``margin`` of 2 guards against a bumpy score curve with a second dip just past the edge),
or ``max_added`` rates were added, or the next rate would leave ``bounds``. Ties go to the
smallest rate (``argmin`` returns the first), and a non-finite score (a diverged run) never
wins unless every score is non-finite.

**The range test.** Smith (2017, *Cyclical learning rates for training neural networks*,
section 3.3) raises the rate *linearly* over a few epochs and watches the accuracy; fast.ai's
``lr_find`` made the faster variant implemented here popular: train *once*, for a few
hundred steps at most, while the rate grows exponentially,

.. math:: \epsilon_t = \epsilon_{\min} \Big(\frac{\epsilon_{\max}}{\epsilon_{\min}}\Big)^{t/(T-1)},
    \qquad t = 0, \dots, T-1,

records the minibatch loss of every step, smooths it with a bias-corrected exponential
moving average (:func:`nnopt.diagnostics.ema`), and stops early once the smoothed loss exceeds
``stop_factor`` times its minimum (the rate has become far too large). Read the curve: the
loss is flat while the rate is too small to matter, falls where the rate is useful, and
turns up where it becomes unstable. :attr:`RangeTest.lr_at_min` is the rate of the lowest
smoothed loss -- already at the edge of instability -- so the usual suggestion is about ten
times smaller (:attr:`RangeTest.suggestion`). One short run instead of a sweep, but it
measures the rate that is best *in the first steps*, not after a full training run.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .diagnostics import ema
from .optimizers import Optimizer, make_optimizer
from .train import StepInfo, fit
from .validation import check_int, check_positive, invalid

__all__ = ["GridSearch", "widen_until_interior", "RangeTest", "lr_range_test", "exponential_ramp"]


# --------------------------------------------------------------------------- widened grids
@dataclass(frozen=True)
class GridSearch:
    """The evaluated rates (sorted), their scores (lower is better), the rates added by
    widening (in the order they were tried) and where the best one lies."""

    lrs: tuple[float, ...]
    scores: tuple[float, ...]
    added: tuple[float, ...]
    margin: int = 1

    @property
    def best_index(self) -> int:
        """Index of the lowest finite score (the smallest rate among ties)."""
        scores = np.array([s if math.isfinite(s) else np.inf for s in self.scores])
        return int(np.argmin(scores))

    @property
    def best_lr(self) -> float:
        return self.lrs[self.best_index]

    @property
    def best_score(self) -> float:
        return self.scores[self.best_index]

    @property
    def interior(self) -> bool:
        """True when the best rate has ``margin`` evaluated rates on each side and a finite score."""
        i = self.best_index
        return self.margin <= i < len(self.lrs) - self.margin and math.isfinite(self.best_score)


def widen_until_interior(score: Callable[[float], float], grid: Sequence[float] | np.ndarray, *,
                         factor: float = math.sqrt(10.0), max_added: int = 8,
                         margin: int = 1, bounds: tuple[float, float] = (0.0, math.inf)) -> GridSearch:
    """Evaluate ``score(lr)`` on ``grid`` and widen the grid until its best rate is inside.

    ``score`` returns a number where lower is better (``inf`` or ``nan`` for a failed run).
    See the module docstring for the rule. Each rate is evaluated once.
    """
    if not callable(score):
        raise invalid("score", score, "a function lr -> number")
    try:
        array = np.asarray(grid, dtype=float)
    except (TypeError, ValueError):
        array = np.empty((0, 0))
    if isinstance(grid, (str, bytes)) or array.ndim != 1 or array.size == 0:
        raise invalid("grid", grid, "a non-empty 1-D sequence of learning rates")
    rates = sorted({check_positive("grid entry", lr) for lr in array})
    factor = check_positive("factor", factor)
    if factor <= 1:
        raise invalid("factor", factor, "a number > 1")
    max_added = check_int("max_added", max_added, 0)
    margin = check_int("margin", margin, 1)
    low, high = bounds
    if not (0 <= low < high):
        raise invalid("bounds", bounds, "0 <= low < high")
    results = {lr: float(score(lr)) for lr in rates}
    added: list[float] = []
    while len(added) < max_added:
        search = GridSearch(tuple(results), tuple(results.values()), tuple(added), margin)
        if search.interior or not any(math.isfinite(s) for s in search.scores):
            break
        below = search.best_index < margin                     # too few rates below the best
        new = search.lrs[0] / factor if below else search.lrs[-1] * factor
        if not low <= new <= high:
            break
        results[new] = float(score(new))
        results = dict(sorted(results.items()))
        added.append(new)
    return GridSearch(tuple(results), tuple(results.values()), tuple(added), margin)


# --------------------------------------------------------------------------- range test
def exponential_ramp(lr_min: float, lr_max: float, steps: int) -> Callable[[int], float]:
    """The schedule ``t -> lr_min (lr_max/lr_min)^(t/(steps-1))`` (constant after ``steps``)."""
    lr_min, lr_max = check_positive("lr_min", lr_min), check_positive("lr_max", lr_max)
    if lr_max <= lr_min:
        raise invalid("lr_max", lr_max, f"a number > lr_min = {lr_min!r}")
    steps = check_int("steps", steps, 2)
    ratio = lr_max / lr_min

    def ramp(t: int) -> float:
        return lr_min * ratio ** (min(t, steps - 1) / (steps - 1))

    return ramp


@dataclass(frozen=True)
class RangeTest:
    """One range test: the rate and minibatch loss of every step taken, the smoothed loss,
    and why it stopped."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    message: str

    @property
    def lr_at_min(self) -> float:
        """The rate at the lowest smoothed loss."""
        return float(self.lrs[int(np.argmin(self.smoothed))])

    @property
    def suggestion(self) -> float:
        """A tenth of :attr:`lr_at_min` (the usual rule of thumb)."""
        return self.lr_at_min / 10


def lr_range_test(model: Any, optimizer: str | Callable[[Callable[[int], float]], Optimizer], data: Any, *,
                  lr_min: float = 1e-5, lr_max: float = 10.0, steps: int = 100, batch_size: int | None = 32,
                  seed: int = 0, beta: float = 0.9, stop_factor: float = 4.0, **hyperparams: Any) -> RangeTest:
    """Train a *copy* of ``model`` for at most ``steps`` steps while the rate grows from
    ``lr_min`` to ``lr_max`` (see the module docstring); ``model`` itself is not changed.

    ``optimizer`` is a name for :func:`nnopt.make_optimizer` (with ``hyperparams``), or a
    function ``schedule -> optimizer``. ``data`` is anything :func:`nnopt.train.fit` accepts.
    """
    ramp = exponential_ramp(lr_min, lr_max, steps)
    ema([0.0], beta)                                            # checks beta before any training
    stop_factor = check_positive("stop_factor", stop_factor)
    if stop_factor <= 1:
        raise invalid("stop_factor", stop_factor, "a number > 1")
    opt = make_optimizer(optimizer, lr=ramp, **hyperparams) if isinstance(optimizer, str) else optimizer(ramp)
    if not isinstance(opt, Optimizer):
        raise invalid("optimizer", optimizer, "a name or a function schedule -> optimizer")
    lrs: list[float] = []
    losses: list[float] = []
    reason = [f"reached lr_max after {steps} steps"]

    def record(info: StepInfo) -> bool:
        lrs.append(info.lr)
        losses.append(info.loss)
        smooth = ema(losses, beta)
        if len(losses) > 5 and smooth[-1] > stop_factor * smooth.min():
            reason[0] = f"stopped at step {len(losses)}: the smoothed loss exceeded {stop_factor:g} x its minimum"
            return True
        return len(losses) >= steps

    # at least one step per epoch, so `steps` epochs always suffice; `record` ends the run
    history = fit(model.copy(), opt, data, epochs=steps, batch_size=batch_size, seed=seed,
                  divergence_factor=None, callbacks=[record], progress=False)
    if history.diverged:
        reason[0] = history.message
    if not losses:
        raise ValueError(f"the range test took no step ({history.message})")
    return RangeTest(np.array(lrs), np.array(losses), ema(losses, beta), reason[0])

