r"""Babysitting a training run (after cs231n's "Neural Networks Part 3"): the numbers to
watch while a network trains, and what they say about the learning rate.

**Update-to-weight ratio.** For each parameter array :math:`W`, the size of one step
relative to the size of the weights,

.. math:: \rho_t = \frac{\lVert W_{t} - W_{t-1} \rVert}{\lVert W_{t-1} \rVert}
    \qquad (\text{for SGD } = \epsilon \lVert g \rVert / \lVert W \rVert).

cs231n's rule of thumb: around :math:`10^{-3}`; much smaller and the rate is probably too
low, much larger and it is probably too high. :class:`UpdateRatio` is a callback for
:func:`nnopt.train.fit` that records :math:`\rho_t` for every array at every step, measured on
the real step, so it works for any optimizer (momentum, Adam, ...).

**A noisy per-step loss.** The minibatch loss :math:`\ell_t` scatters around the trend. The
trend is a bias-corrected exponential moving average (:func:`ema`, as in Adam's bias
correction),

.. math:: m_t = \beta m_{t-1} + (1-\beta)\,\ell_t,\quad m_0 = 0, \qquad
    \hat m_t = \frac{m_t}{1-\beta^t},

and the relative scatter around it (:func:`wiggle`) is the standard deviation of
:math:`(\ell_t - \hat m_t)/\hat m_t` over the second half of the run. It shrinks as the batch
grows (a minibatch mean of :math:`B` losses has a standard deviation :math:`\propto 1/\sqrt B`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .validation import Described, check_unit, invalid

__all__ = ["ema", "wiggle", "UpdateRatio"]


def _series(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise invalid(name, array, "a non-empty 1-D sequence")
    return array


def ema(values: Sequence[float], beta: float = 0.9) -> np.ndarray:
    r"""Bias-corrected exponential moving average :math:`\hat m_t` of ``values`` (see above)."""
    values = _series("values", values)
    beta = check_unit("beta", beta)
    out = np.empty_like(values)
    m = 0.0
    for t, value in enumerate(values, start=1):
        m = beta * m + (1 - beta) * value
        out[t - 1] = m / (1 - beta**t)
    return out


def wiggle(losses: Sequence[float], beta: float = 0.9) -> float:
    r"""Relative scatter of a per-step loss around its :func:`ema` trend, over the second half."""
    losses = _series("losses", losses)
    if losses.size < 4:
        raise invalid("losses", Described(f"{losses.size} values"), "at least 4")
    trend = ema(losses, beta)
    half = losses.size // 2
    return float(np.std((losses[half:] - trend[half:]) / trend[half:]))


class UpdateRatio:
    r"""A :func:`nnopt.train.fit` callback recording :math:`\lVert\Delta W\rVert/\lVert W\rVert`
    per parameter array at every step.

    Build it with the model *before* training (it keeps a copy of the current weights to
    measure the first step), pass it in ``callbacks=[...]``, then read ``ratios[name]``
    (one value per step; ``nan`` where the weights were all zero before the step).
    """

    def __init__(self, model: Any) -> None:
        params = getattr(model, "params", None)
        if not isinstance(params, dict) or not params:
            raise invalid("model", model, "an object with a dict of parameter arrays")
        self._previous = {name: np.array(p, dtype=float) for name, p in params.items()}
        self.ratios: dict[str, list[float]] = {name: [] for name in params}

    def __call__(self, info: Any) -> None:
        for name, before in self._previous.items():
            after = info.model.params[name]
            scale = float(np.linalg.norm(before))
            step = float(np.linalg.norm(after - before))
            self.ratios[name].append(step / scale if scale > 0 else math.nan)
            np.copyto(before, after)

    def median(self, name: str, start: int = 0) -> float:
        """Median ratio of array ``name`` over the steps from ``start`` on."""
        if name not in self.ratios:
            raise invalid("name", name, f"one of {sorted(self.ratios)}")
        values = np.array(self.ratios[name][start:], dtype=float)
        if values.size == 0:
            raise invalid("start", start, f"less than the {len(self.ratios[name])} steps recorded")
        return float(np.nanmedian(values))
