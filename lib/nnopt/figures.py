"""What every figure of the kit shares: detached figures, one colour and one display name per
optimizer (so "Adam" looks the same everywhere), and how divergence is shown."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .optimizer_base import OPTIMIZERS

__all__ = ["new_figure", "figure_and_axes", "optimizer_color", "display_name", "diverged_note",
           "log_scale_if_positive", "DIVERGED_COLOR", "PALETTE"]

# One fixed colour per optimizer, in the order of nnopt.OPTIMIZERS: the lecture's twelve, then
# Muon, Adafactor, Lion, Schedule-Free SGD and AdamW (all distinct, none close to DIVERGED_COLOR).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#b8860b",
           "#000080", "#8fbc8f", "#ff00ff", "#00ced1", "#556b2f"]
DIVERGED_COLOR = "crimson"


def _optimizer_colors() -> dict[str, str]:
    """``"adam"`` and ``"Adam"`` -> the same colour (optimizers registered later cycle on)."""
    colors = {}
    for i, (name, cls) in enumerate(OPTIMIZERS.items()):
        colors[name] = colors[cls.__name__.lower()] = PALETTE[i % len(PALETTE)]
    return colors


def new_figure(figsize: tuple[float, float] = (6.4, 4.8)) -> Figure:
    """An empty Figure with constrained layout, already closed in pyplot (see :mod:`nnopt.plots`)."""
    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def figure_and_axes(ax: Optional[Axes], figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new detached figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def optimizer_color(name: str, index: int = 0) -> str:
    """The lecture's colour for an optimizer name (``"adam"``); other labels cycle by ``index``."""
    return _optimizer_colors().get(str(name).lower(), PALETTE[index % len(PALETTE)])


def display_name(name: str) -> str:
    """``"rmsprop_nesterov"`` -> ``"RMSPropNesterov"`` (the class name); other labels unchanged."""
    cls = OPTIMIZERS.get(str(name).lower())
    return cls.__name__ if cls is not None else str(name)


def diverged_note(ax: Axes, lines: Sequence[str]) -> None:
    """A red note in the upper left corner of ``ax`` (nothing if ``lines`` is empty)."""
    if lines:
        ax.text(0.02, 0.98, "\n".join(lines), transform=ax.transAxes, ha="left", va="top",
                color=DIVERGED_COLOR, fontsize=9, zorder=10,
                bbox=dict(facecolor="white", alpha=0.85, edgecolor=DIVERGED_COLOR, boxstyle="round"))


def log_scale_if_positive(ax: Axes) -> None:
    """Log y axis when every plotted y value is positive (losses), linear otherwise."""
    ys = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()] or [np.ones(1)])
    ys = ys[np.isfinite(ys)]
    if ys.size and ys.min() > 0:
        ax.set_yscale("log")
