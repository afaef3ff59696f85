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

from .validation import check_arguments, check_choice, check_int, check_nonneg, check_number

__all__ = ["Schedule", "constant", "step_decay", "inverse_time", "exponential", "linear_decay",
           "cosine", "warmup", "SCHEDULES", "make_schedule", "build_schedule", "SCHEDULE_PARAMETERS",
           "default_schedules"]


def _rate(schedule: "Schedule", name: str) -> None:
    """Check the field ``name`` is a finite number >= 0 and store it as a float."""
    object.__setattr__(schedule, name, check_nonneg(name, getattr(schedule, name)))


class Schedule:
    """Base class: validates ``t`` and gives ``repr``, a short ``str`` (3 significant digits,
    for legends) and ``values``."""

    def __call__(self, t: int) -> float:
        return float(self._value(check_int("step t", t)))

    def _value(self, t: int) -> float:
        raise NotImplementedError

    def values(self, n: int) -> np.ndarray:
        """The learning rates of steps ``0 .. n-1``."""
        return np.array([self(t) for t in range(n)], dtype=float)

    def _text(self, fmt: Callable[[Any], str]) -> str:
        args = ", ".join(f"{f.name}={fmt(getattr(self, f.name))}" for f in fields(self))
        return f"{type(self).__name__.lstrip('_')}({args})"

    def __repr__(self) -> str:
        return self._text(repr)

    def __str__(self) -> str:
        return self._text(lambda v: f"{v:.3g}" if isinstance(v, float) else str(v))


@dataclass(frozen=True, repr=False)
class constant(Schedule):
    """The same learning rate at every step."""

    lr: float

    def __post_init__(self):
        _rate(self, "lr")

    def _value(self, t):
        return self.lr


@dataclass(frozen=True, repr=False)
class step_decay(Schedule):
    """Multiply by ``drop`` every ``every`` steps: ``lr0 * drop ** (t // every)``."""

    lr0: float
    drop: float = 0.5
    every: int = 100

    def __post_init__(self):
        _rate(self, "lr0")
        object.__setattr__(self, "drop", check_number("drop", self.drop, 0.0, 1.0, low_open=True))
        check_int("every", self.every, 1)

    def _value(self, t):
        return self.lr0 * self.drop ** (t // self.every)


@dataclass(frozen=True, repr=False)
class _RateDecay(Schedule):
    """Shared fields of the two continuous decays: initial rate ``lr0`` and decay rate ``k``."""

    lr0: float
    k: float = 0.01

    def __post_init__(self):
        _rate(self, "lr0")
        _rate(self, "k")


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
        _rate(self, "lr0")
        _rate(self, "lr_tau")
        check_int("tau", self.tau, 1)

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
        _rate(self, "lr0")
        _rate(self, "lr_min")
        check_int("total_steps", self.total_steps, 1)

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
        check_int("steps", self.steps, 1)

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
    cls = SCHEDULES[check_choice("schedule", name, sorted(SCHEDULES))]
    check_arguments(f"arguments for schedule {name!r}", cls, kwargs)
    return cls(**kwargs)


#: The parameters :func:`build_schedule` uses for each kind (the others are ignored).
SCHEDULE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "constant": (), "step_decay": ("drop", "every"), "inverse_time": ("k",), "exponential": ("k",),
    "linear_decay": ("final_ratio", "horizon"), "cosine": ("final_ratio", "horizon")}


def build_schedule(kind: str, lr0: float, *, drop: float = 0.5, every: int = 100, k: float = 0.01,
                   final_ratio: float = 0.01, horizon: int = 400, warmup_steps: int = 0) -> Schedule:
    r"""One schedule from one flat set of parameters (what the schedule explorer's controls set):
    ``step_decay(lr0, drop, every)``, ``inverse_time(lr0, k)``, ``exponential(lr0, k)``,
    ``linear_decay(lr0, final_ratio*lr0, horizon)``, ``cosine(lr0, horizon, final_ratio*lr0)`` or
    ``constant(lr0)``, wrapped in ``warmup(..., warmup_steps)`` when ``warmup_steps > 0``."""
    makers = {
        "constant": lambda: constant(lr0),
        "step_decay": lambda: step_decay(lr0, drop, every),
        "inverse_time": lambda: inverse_time(lr0, k),
        "exponential": lambda: exponential(lr0, k),
        "linear_decay": lambda: linear_decay(lr0, final_ratio * lr0, horizon),
        "cosine": lambda: cosine(lr0, horizon, final_ratio * lr0),
    }
    base = makers[check_choice("schedule", kind, list(makers))]()
    return warmup(base, warmup_steps) if check_int("warmup_steps", warmup_steps) else base


def default_schedules(lr0: float, total_steps: int) -> dict[str, Callable[[int], float]]:
    """The lecture's schedules, each starting at ``lr0`` and tuned to ``total_steps`` steps."""
    tenth = max(total_steps // 10, 1)
    return {
        "constant": constant(lr0),
        "step decay": step_decay(lr0, drop=0.5, every=max(total_steps // 4, 1)),
        "inverse time": inverse_time(lr0, k=10.0 / total_steps),
        "exponential": exponential(lr0, k=3.0 / total_steps),
        "linear decay": linear_decay(lr0, lr0 / 100, tau=total_steps),
        "cosine": cosine(lr0, total_steps),
        "warmup + cosine": warmup(cosine(lr0, total_steps - tenth), tenth),
    }
