r"""Learning-rate schedules: callables ``t -> lr`` for ``t = 0, 1, 2, ...``.

Pass one as ``lr=`` to any optimizer; the optimizer calls it with its step counter
``t`` (the number of steps already taken), so step ``k`` (counting from 0) uses ``lr(k)``.

=====================  ==================================================================
schedule               :math:`\epsilon_t`
=====================  ==================================================================
``constant(lr)``        :math:`\epsilon_0`
``step_decay``          :math:`\epsilon_0\, \gamma^{\lfloor t / s \rfloor}` (drop by
                        :math:`\gamma` every :math:`s` steps)
``inverse_time``        :math:`\epsilon_0 / (1 + k t)`
``exponential``         :math:`\epsilon_0\, e^{-k t}`
``linear_decay``        :math:`(1-\alpha)\epsilon_0 + \alpha\epsilon_\tau`, :math:`\alpha =
                        t/\tau`, then :math:`\epsilon_\tau` for :math:`t \ge \tau` (the lecture's
                        rule; it suggests :math:`\epsilon_\tau \approx \epsilon_0/100`)
``cosine``              :math:`\epsilon_{min} + \tfrac12(\epsilon_0-\epsilon_{min})(1+\cos(\pi
                        \min(t,T)/T))`
``warmup(base, w)``     :math:`\text{base}(0)\,(t+1)/w` for :math:`t < w`, then
                        :math:`\text{base}(t - w)`
=====================  ==================================================================

Every schedule validates its arguments (``ValueError`` naming the culprit), has a readable
``repr`` and a ``values(n)`` method returning the first ``n`` learning rates for plots.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Union

import numpy as np

__all__ = ["Schedule", "constant", "step_decay", "inverse_time", "exponential", "linear_decay",
           "cosine", "warmup", "SCHEDULES", "make_schedule"]


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _rate(name: str, value: Any) -> float:
    """A finite number >= 0."""
    _require(not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
             and math.isfinite(value) and value >= 0, f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    """An integer >= 1."""
    _require(not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 1,
             f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


class Schedule:
    """Base class: validates ``t`` and gives ``repr`` and ``values``."""

    def __call__(self, t: int) -> float:
        _require(not isinstance(t, bool) and isinstance(t, (int, np.integer)) and t >= 0,
                 f"step t must be an integer >= 0, got {t!r}")
        return float(self._value(int(t)))

    def _value(self, t: int) -> float:
        raise NotImplementedError

    def values(self, n: int) -> np.ndarray:
        """The learning rates of steps ``0 .. n-1``."""
        return np.array([self(t) for t in range(n)], dtype=float)

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{type(self).__name__.lstrip('_')}({args})"


@dataclass(frozen=True, repr=False)
class constant(Schedule):
    """The same learning rate at every step."""

    lr: float

    def __post_init__(self):
        object.__setattr__(self, "lr", _rate("lr", self.lr))

    def _value(self, t):
        return self.lr


@dataclass(frozen=True, repr=False)
class step_decay(Schedule):
    """Multiply by ``drop`` every ``every`` steps: ``lr0 * drop ** (t // every)``."""

    lr0: float
    drop: float = 0.5
    every: int = 100

    def __post_init__(self):
        object.__setattr__(self, "lr0", _rate("lr0", self.lr0))
        _require(_rate("drop", self.drop) > 0 and self.drop <= 1, f"drop must be in (0, 1], got {self.drop!r}")
        _count("every", self.every)

    def _value(self, t):
        return self.lr0 * self.drop ** (t // self.every)


@dataclass(frozen=True, repr=False)
class _RateDecay(Schedule):
    """Shared fields of the two continuous decays: initial rate ``lr0`` and decay rate ``k``."""

    lr0: float
    k: float = 0.01

    def __post_init__(self):
        object.__setattr__(self, "lr0", _rate("lr0", self.lr0))
        _rate("k", self.k)


@dataclass(frozen=True, repr=False)
class inverse_time(_RateDecay):
    """``lr0 / (1 + k t)``: the 1/t decay that satisfies sum lr = inf, sum lr^2 < inf."""

    def _value(self, t):
        return self.lr0 / (1.0 + self.k * t)


@dataclass(frozen=True, repr=False)
class exponential(_RateDecay):
    """``lr0 * exp(-k t)``."""

    def _value(self, t):
        return self.lr0 * math.exp(-self.k * t)


@dataclass(frozen=True, repr=False)
class linear_decay(Schedule):
    """The lecture's rule: linear from ``lr0`` to ``lr_tau`` over ``tau`` steps, then constant."""

    lr0: float
    lr_tau: float
    tau: int

    def __post_init__(self):
        object.__setattr__(self, "lr0", _rate("lr0", self.lr0))
        object.__setattr__(self, "lr_tau", _rate("lr_tau", self.lr_tau))
        _count("tau", self.tau)

    def _value(self, t):
        alpha = min(t / self.tau, 1.0)
        return (1.0 - alpha) * self.lr0 + alpha * self.lr_tau


@dataclass(frozen=True, repr=False)
class cosine(Schedule):
    """Cosine annealing from ``lr0`` to ``lr_min`` over ``total_steps``, then ``lr_min``."""

    lr0: float
    total_steps: int
    lr_min: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "lr0", _rate("lr0", self.lr0))
        object.__setattr__(self, "lr_min", _rate("lr_min", self.lr_min))
        _count("total_steps", self.total_steps)

    def _value(self, t):
        progress = min(t, self.total_steps) / self.total_steps
        return self.lr_min + 0.5 * (self.lr0 - self.lr_min) * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True, repr=False)
class warmup(Schedule):
    """Linear warm-up to ``base(0)`` over ``steps`` steps, then ``base`` (restarted at 0).

    ``base`` is a schedule or a constant learning rate.
    """

    base: Union[Callable[[int], float], float]
    steps: int

    def __post_init__(self):
        if not callable(self.base):
            object.__setattr__(self, "base", constant(self.base))
        _count("steps", self.steps)

    def _value(self, t):
        if t < self.steps:
            return self.base(0) * (t + 1) / self.steps
        return self.base(t - self.steps)


SCHEDULES: dict[str, type[Schedule]] = {
    cls.__name__: cls for cls in (constant, step_decay, inverse_time, exponential, linear_decay,
                                  cosine, warmup)
}


def make_schedule(name: str, **kwargs: Any) -> Schedule:
    """Build a schedule by name, e.g. ``make_schedule("cosine", lr0=0.1, total_steps=500)``."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    try:
        return SCHEDULES[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for schedule {name!r}: {err}") from None
