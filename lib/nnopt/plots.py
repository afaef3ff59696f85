r"""Matplotlib figures for the lecture; every ``plot_*`` function returns its Figure.

=========================  ===============================================================
function                   shows
=========================  ===============================================================
``plot_trajectories``      optimizer paths over the contour plot of a 2-D surface (and
                           :math:`f(x_k) - f^*` or the gradient norm per step)
``plot_history``           loss / accuracy curves of :func:`nnopt.train.fit` runs
``plot_lr_sweep``          final loss against the learning rate (log axis), divergence marked
``plot_schedules``         learning-rate schedules :math:`\epsilon_t` against the step t
``plot_grad_norms``        gradient-norm traces (log axis) with a clipping threshold
``plot_spectrum``          Hessian eigenvalues and the condition number
                           :math:`\kappa = |\lambda|_{max} / |\lambda|_{min}`
=========================  ===============================================================

Figures are created through pyplot (so whatever backend is active is set up, including the
inline backend's display hook) and then detached with ``plt.close(fig)``. In Jupyter a
returned figure therefore appears exactly once, as the value of the cell, and making many
figures in loops, tests or widgets does not pile up open figures. Every function also
takes ``ax=`` (or ``axes=``) to draw into an existing figure instead.

:class:`TrajectoryPlot` draws a surface's contour once and then only moves line data;
:mod:`nnopt.widgets` uses it to redraw trajectories within milliseconds.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .optimizers import OPTIMIZERS
from .surfaces import Path, Surface, get as get_surface

__all__ = ["new_figure", "optimizer_color", "display_name", "log_levels", "TrajectoryPlot",
           "plot_trajectories", "plot_history", "plot_lr_sweep", "plot_schedules",
           "plot_grad_norms", "plot_spectrum", "condition_number", "schedule_values"]

# One fixed colour per optimizer, so "Adam" looks the same in every figure of the lecture.
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#b8860b"]
_OPTIMIZER_COLORS = {**dict(zip(OPTIMIZERS, _PALETTE)),                       # "adam" and
                     **{cls.__name__.lower(): c for cls, c in zip(OPTIMIZERS.values(), _PALETTE)}}  # "Adam"
DIVERGED_COLOR = "crimson"


# --------------------------------------------------------------------------- helpers
def new_figure(figsize: tuple[float, float] = (6.4, 4.8)) -> Figure:
    """An empty Figure with constrained layout, already closed in pyplot (see the module doc)."""
    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def _fig_ax(ax: Optional[Axes], figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new detached figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def optimizer_color(name: str, index: int = 0) -> str:
    """The lecture's colour for an optimizer name (``"adam"``); other labels cycle by ``index``."""
    return _OPTIMIZER_COLORS.get(str(name).lower(), _PALETTE[index % len(_PALETTE)])


def display_name(name: str) -> str:
    """``"rmsprop_nesterov"`` -> ``"RMSPropNesterov"`` (the class name); other labels unchanged."""
    cls = OPTIMIZERS.get(str(name).lower())
    return cls.__name__ if cls is not None else str(name)


def _labelled(items: Any, label_of: Callable[[Any, int], str]) -> list[tuple[str, Any]]:
    """``(label, item)`` pairs from a mapping, a sequence, or a single item."""
    if isinstance(items, Mapping):
        return [(str(k), v) for k, v in items.items()]
    if isinstance(items, (list, tuple)):
        return [(label_of(item, i), item) for i, item in enumerate(items)]
    return [(label_of(items, 0), items)]


def _diverged_note(ax: Axes, lines: Sequence[str]) -> None:
    """A red note in the upper left corner of ``ax`` (nothing if ``lines`` is empty)."""
    if lines:
        ax.text(0.02, 0.98, "\n".join(lines), transform=ax.transAxes, ha="left", va="top",
                color=DIVERGED_COLOR, fontsize=9, zorder=10,
                bbox=dict(facecolor="white", alpha=0.85, edgecolor=DIVERGED_COLOR, boxstyle="round"))


# --------------------------------------------------------------------------- surfaces
def log_levels(values: np.ndarray, n: int = 20, span: float = 1e-4) -> np.ndarray:
    r"""``n`` contour levels spaced geometrically above the minimum of ``values``:
    :math:`f_{min} + (f_{max} - f_{min})\, s^{1 - i/(n-1)}`, :math:`i = 0..n-1`, with
    :math:`s` = ``span``. Dense near the minimum, where the interesting valleys are."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError("cannot choose contour levels: the surface has no finite values on the grid")
    lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:                                   # flat surface: any two levels will do
        hi = lo + 1.0
    return lo + (hi - lo) * np.geomspace(span, 1.0, n)


_SURFACE_CMAP = ListedColormap(plt.get_cmap("Greys")(np.linspace(0.03, 0.45, 256)))


@dataclass
class _Trace:
    """The artists of one path: line, start and end markers; its curve and divergence cross
    in the value panel (``None`` without one)."""

    line: Line2D
    start: Line2D
    end: Line2D
    curve: Optional[Line2D] = None
    cross: Optional[Line2D] = None

    def artists(self) -> list[Line2D]:
        return [a for a in (self.line, self.start, self.end, self.curve, self.cross) if a is not None]


_VALUE_LABELS = {"gap": r"$f(x_k) - f^*$ (log scale)", "grad_norm": r"gradient norm $\|\nabla f(x_k)\|$ (log scale)"}


class TrajectoryPlot:
    r"""Contour plot of a surface (drawn once) with trajectories whose data can be replaced,
    and optionally a second panel with a quantity along each path against the step:
    ``value="gap"`` (:math:`f(x_k) - f^*`, :math:`f^*` the lowest known minimum) or
    ``"grad_norm"`` (:math:`\|\nabla f(x_k)\|`, before any clipping).

    ``set_paths`` reuses the artists of labels it has seen, so moving a slider only changes
    line data -- the contour is never recomputed. Axis limits are fixed (the surface's
    domain; for the value panel, the range of the quantity over that domain): a diverging
    path leaves the picture, clipped by the axes, instead of zooming the contour away, and a
    note "diverged at step k" says what happened. Fixed limits also keep the axes still
    while a slider moves, which is what lets :mod:`nnopt.widgets` redraw only the lines.
    """

    def __init__(self, ax: Axes, surface: Union[Surface, str], value_ax: Optional[Axes] = None,
                 value: str = "gap", resolution: int = 160, n_levels: int = 20, title: Optional[str] = None):
        if value not in _VALUE_LABELS:
            raise ValueError(f"value must be one of {sorted(_VALUE_LABELS)}, got {value!r}")
        self.ax, self.value_ax, self.value = ax, value_ax, value
        self.surface = get_surface(surface) if isinstance(surface, str) else surface
        (x0, x1), (y0, y1) = self.surface.domain
        grid = np.stack(np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)))
        with np.errstate(over="ignore", invalid="ignore"):
            Z = np.asarray(self.surface.value(grid), dtype=float)
        levels = log_levels(Z, n_levels)
        ax.contourf(*grid, Z, levels=levels, cmap=_SURFACE_CMAP, extend="max",
                    norm=BoundaryNorm(levels, _SURFACE_CMAP.N, extend="max"))
        ax.contour(*grid, Z, levels=levels, colors="0.55", linewidths=0.4)
        self._markers = []
        for kind, points, marker in (("minimum", self.surface.minima, "*"),
                                     ("saddle point", getattr(self.surface, "saddles", []), "X")):
            if len(points):
                pts = np.asarray(points, dtype=float)
                self._markers += ax.plot(pts[:, 0], pts[:, 1], ls="none", marker=marker, ms=13, color="gold",
                                         mec="black", mew=0.8, zorder=4, label=kind)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_autoscale_on(False)
        ax.set_xlabel("$x$")
        ax.set_ylabel("$y$")
        ax.set_title(title if title is not None else f"{self.surface!r}: optimizer trajectories")
        self.fstar = min((self.surface.value(m) for m in self.surface.minima), default=float(np.nanmin(Z)))
        if value_ax is not None:
            self._setup_value_axes(grid, Z)
        self._traces: dict[str, _Trace] = {}
        self.note = ax.text(0.02, 0.98, "", transform=ax.transAxes, ha="left", va="top",
                            color=DIVERGED_COLOR, fontsize=9, zorder=10, visible=False,
                            bbox=dict(facecolor="white", alpha=0.85, edgecolor=DIVERGED_COLOR,
                                      boxstyle="round"))

    def _setup_value_axes(self, grid: np.ndarray, Z: np.ndarray) -> None:
        """Log y axis with limits from the quantity's range over the domain."""
        vax = self.value_ax
        with np.errstate(over="ignore", invalid="ignore"):
            if self.value == "gap":
                top, bottom = float(np.nanmax(Z)) - self.fstar, 1e-12
            else:
                top = float(np.nanmax(np.hypot(*self.surface.grad(grid))))
                bottom = top * 1e-7
        vax.set_yscale("log")
        vax.set_ylim(bottom, 10 * max(top, bottom))
        vax.set_xlim(0, 1)
        vax.set_autoscale_on(False)
        vax.set_xlabel("step $k$")
        vax.set_ylabel(_VALUE_LABELS[self.value])
        vax.set_title("distance to the optimum" if self.value == "gap" else "gradient norm along the path")
        vax.grid(alpha=0.3)

    @property
    def lines(self) -> dict[str, Line2D]:
        """The trajectory line of each label currently shown."""
        return {label: trace.line for label, trace in self._traces.items()}

    @property
    def curves(self) -> dict[str, Line2D]:
        """The value-panel curve of each label currently shown (empty without a value panel)."""
        return {label: trace.curve for label, trace in self._traces.items() if trace.curve is not None}

    def dynamic_artists(self) -> list[Any]:
        """Everything :meth:`set_paths` changes without touching the legend or the limits."""
        return [a for trace in self._traces.values() for a in trace.artists()] + [self.note]

    def background_key(self) -> tuple:
        """Changes exactly when something other than :meth:`dynamic_artists` changed."""
        xlim = tuple(self.value_ax.get_xlim()) if self.value_ax is not None else None
        return (id(self), tuple(self._traces), xlim)

    def set_paths(self, paths: Sequence[Path], labels: Optional[Sequence[str]] = None,
                  colors: Optional[Sequence[str]] = None, styles: Optional[Sequence[dict]] = None,
                  steps: Optional[int] = None) -> None:
        """Show ``paths`` (replacing the previous ones). ``labels`` default to the optimizer
        names; ``colors`` to the lecture's optimizer colours; ``styles`` are extra Line2D
        properties per path (e.g. ``{"alpha": 0.4, "ls": "--"}`` for a reference path);
        ``steps`` is the x range of the value panel (default: the longest path)."""
        labels = list(labels) if labels is not None else [display_name(p.optimizer_name) for p in paths]
        if len(labels) != len(paths) or len(set(labels)) != len(labels):
            raise ValueError(f"need one distinct label per path, got {labels!r} for {len(paths)} paths")
        colors = list(colors) if colors is not None else \
            [optimizer_color(p.optimizer_name, i) for i, p in enumerate(paths)]
        styles = list(styles) if styles is not None else [{}] * len(paths)
        old = list(self._traces)
        for label in set(old) - set(labels):
            for artist in self._traces.pop(label).artists():
                artist.remove()
        notes = []
        for path, label, color, style in zip(paths, labels, colors, styles):
            trace = self._trace(label)
            xy = path.xy
            trace.line.set_data(xy[:, 0], xy[:, 1])
            trace.start.set_data(xy[:1, 0], xy[:1, 1])
            trace.end.set_data(xy[-1:, 0], xy[-1:, 1])
            for artist in trace.artists():
                artist.set_color(color)
            trace.line.set(**{"alpha": 1.0, "ls": "-", **style})
            if trace.curve is not None:
                ys = path.values - self.fstar if self.value == "gap" else path.grad_norms
                ys = np.maximum(ys, 1e-300)                  # round-off can dip just below f*
                trace.curve.set_data(np.arange(len(ys)), ys)
                trace.curve.set(**{"alpha": 1.0, "ls": "-", **style})
                trace.cross.set_data([len(ys) - 1], ys[-1:])
                trace.cross.set_color(DIVERGED_COLOR)
                trace.cross.set_visible(path.diverged_at is not None)
            if path.diverged_at is not None:
                notes.append(f"{label}: {path.message}" if len(paths) > 1 else path.message)
        self.note.set_text("\n".join(notes))
        self.note.set_visible(bool(notes))
        if self.value_ax is not None:
            longest = max((len(p.xy) - 1 for p in paths), default=0)
            self.value_ax.set_xlim(0, max(steps if steps is not None else longest, 1))
        if labels != old or not labels:
            self._legend(labels)

    def _trace(self, label: str) -> _Trace:
        if label not in self._traces:
            (line,) = self.ax.plot([], [], lw=1.6, marker=".", ms=3, zorder=5, label=label)
            (start,) = self.ax.plot([], [], ls="none", marker="o", ms=7, mfc="white", zorder=6)
            (end,) = self.ax.plot([], [], ls="none", marker="s", ms=6, mec="black", mew=0.6, zorder=6)
            trace = _Trace(line, start, end)
            if self.value_ax is not None:
                (trace.curve,) = self.value_ax.plot([], [], lw=1.5, label=label)
                (trace.cross,) = self.value_ax.plot([], [], ls="none", marker="x", ms=10, mew=2)
            self._traces[label] = trace
        return self._traces[label]

    def _legend(self, labels: Sequence[str]) -> None:
        handles = [self._traces[label].line for label in labels] + self._markers
        handles += [Line2D([], [], ls="none", marker="o", mfc="white", mec="0.3", label="start"),
                    Line2D([], [], ls="none", marker="s", mfc="0.3", mec="black", label="end")]
        self.ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)


def plot_trajectories(surface: Union[Surface, str], paths: Union[Path, Sequence[Path]],
                      labels: Optional[Sequence[str]] = None, *, value: Optional[str] = None,
                      ax: Optional[Axes] = None, value_ax: Optional[Axes] = None,
                      title: Optional[str] = None, resolution: int = 160, n_levels: int = 20) -> Figure:
    r"""Contour plot of ``surface`` (log-spaced levels above the minimum) with one or several
    optimizer paths from :func:`nnopt.surfaces.run`; start = circle, end = square, minima =
    stars; a path that diverged gets the note "diverged at step k".

    ``value="gap"`` adds a panel with :math:`f(x_k) - f^*` per step, ``value="grad_norm"``
    one with the gradient norm (both on log axes), drawn into ``value_ax`` if given."""
    paths = [paths] if isinstance(paths, Path) else list(paths)
    if ax is None:
        fig = new_figure((11.0, 4.6) if value else (6.4, 5.2))
        ax, value_ax = fig.subplots(1, 2, width_ratios=[1.15, 1]) if value else (fig.add_subplot(), None)
    elif value and value_ax is None:
        raise ValueError("pass value_ax (the axes for the value panel) together with ax")
    view = TrajectoryPlot(ax, surface, value_ax=value_ax if value else None, value=value or "gap",
                          resolution=resolution, n_levels=n_levels, title=title)
    view.set_paths(paths, labels)
    return ax.figure


# --------------------------------------------------------------------------- training curves
def _short_optimizer(history: Any, i: int) -> str:
    """``"Adam(lr=0.001, beta1=...)"`` -> ``"Adam(lr=0.001)"``."""
    text = getattr(history, "optimizer", "") or f"run {i}"
    match = re.match(r"\s*(\w+\(lr=[^,)]*)", text)
    return f"{match.group(1)})" if match else text


# panel name -> (History fields drawn, y label); training solid, validation dashed
_METRICS = {"loss": (("train_loss", "val_loss"), "loss (cross-entropy)"),
            "accuracy": (("train_acc", "val_acc"), "accuracy"),
            "train_loss": (("train_loss",), "training loss"), "val_loss": (("val_loss",), "validation loss"),
            "train_acc": (("train_acc",), "training accuracy"), "val_acc": (("val_acc",), "validation accuracy")}


def plot_history(histories: Any, metrics: Sequence[str] = ("loss", "accuracy"), *, x: str = "epoch",
                 axes: Optional[Sequence[Axes]] = None, title: Optional[str] = None) -> Figure:
    """Training curves of one or several :class:`nnopt.train.History` objects.

    ``histories``: a History, a list of them (labelled by optimizer) or a dict label ->
    History. One panel per metric: ``"loss"`` (log axis) and ``"accuracy"`` show training
    (solid) and validation (dashed); ``"train_loss"``, ``"val_loss"``, ``"train_acc"``,
    ``"val_acc"`` show one of them. ``x="step"`` puts optimizer steps on the x axis and adds
    the noisy minibatch loss (faint) to training-loss panels. Diverged runs end with a red
    cross and a note "label: diverged at step k".
    """
    if x not in ("epoch", "step"):
        raise ValueError(f"x must be 'epoch' or 'step', got {x!r}")
    unknown = [m for m in metrics if m not in _METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty selection of {list(_METRICS)}, got {list(metrics)!r}")
    runs = _labelled(histories, _short_optimizer)
    if axes is None:
        fig = new_figure((5.2 * len(metrics), 4.0))
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    elif len(axes) != len(metrics):
        raise ValueError(f"need one axes per metric ({len(metrics)}), got {len(axes)}")
    notes = []
    for i, (label, h) in enumerate(runs):
        color = optimizer_color(label.split("(")[0], i)
        xs = np.asarray(h.epoch_steps if x == "step" else np.arange(len(h.train_loss)), dtype=float)
        for ax, metric in zip(axes, metrics):
            fields, _ = _METRICS[metric]
            if x == "step" and "train_loss" in fields and h.step_loss:
                ax.plot(np.arange(1, h.n_steps + 1), h.step_loss, color=color, alpha=0.25, lw=0.7)
            for field in fields:
                ys = np.asarray(getattr(h, field), dtype=float)
                if ys.size and np.isfinite(ys).any():
                    dashed = len(fields) == 2 and field.startswith("val")
                    ax.plot(xs, ys, color=color, marker=None if dashed else ".", ls="--" if dashed else "-")
            if h.diverged and len(xs):
                ax.plot(xs[-1:], np.asarray(getattr(h, fields[0]), dtype=float)[-1:], "x", ms=10, mew=2,
                        color=DIVERGED_COLOR)
        if h.diverged:
            notes.append(f"{label}: {h.message.split(':')[0]}")
    handles = [Line2D([], [], color=optimizer_color(label.split("(")[0], i), lw=2, label=label)
               for i, (label, _) in enumerate(runs)]
    for ax, metric in zip(axes, metrics):
        fields, ylabel = _METRICS[metric]
        ax.set_xlabel("optimizer step" if x == "step" else "epoch")
        if "loss" in metric:
            _log_if_positive(ax)
        ax.set_ylabel(ylabel + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.grid(alpha=0.3)
        styles = [Line2D([], [], color="0.4", ls="-", marker=".", label="training"),
                  Line2D([], [], color="0.4", ls="--", label="validation")] if len(fields) == 2 else []
        if handles:
            ax.legend(handles=handles + styles, fontsize=8)
        ax.set_title(title or f"{ylabel} during training")
    _diverged_note(axes[0], notes)
    return axes[0].figure


def _log_if_positive(ax: Axes) -> None:
    """Log y axis when every plotted y value is positive (losses), linear otherwise."""
    ys = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()] or [np.ones(1)])
    ys = ys[np.isfinite(ys)]
    if ys.size and ys.min() > 0:
        ax.set_yscale("log")


# --------------------------------------------------------------------------- learning rates
def plot_lr_sweep(lrs: Sequence[float], final_losses: Any, *, diverged: Any = None,
                  ax: Optional[Axes] = None, ylabel: str = "final loss",
                  title: str = "learning-rate sweep") -> Figure:
    """Final loss against the learning rate (log x axis) for one or several optimizers.

    ``final_losses``: an array with one value per lr, or a dict label -> array. A run counts
    as diverged where its value is NaN/inf or where ``diverged`` (same shape/keys, booleans)
    is True; diverged runs are drawn as red crosses at the top of the axes. The best lr of
    each curve is marked with a star and named in the legend.
    """
    lrs = np.asarray(lrs, dtype=float)
    if lrs.ndim != 1 or lrs.size == 0 or not (np.isfinite(lrs).all() and (lrs > 0).all()):
        raise ValueError(f"lrs must be a non-empty 1-D sequence of positive numbers, got {lrs!r}")
    curves = list(final_losses.items()) if isinstance(final_losses, Mapping) else [("", final_losses)]
    flags = {} if diverged is None else dict(diverged.items()) if isinstance(diverged, Mapping) \
        else {"": diverged}
    fig, ax = _fig_ax(ax, (6.4, 4.4))
    any_diverged = False
    for i, (label, values) in enumerate(curves):
        values = np.asarray(values, dtype=float)
        if values.shape != lrs.shape:
            raise ValueError(f"{label or 'final_losses'} has {values.size} values for {lrs.size} learning rates")
        bad = ~np.isfinite(values)
        if label in flags:
            bad |= np.asarray(flags[label], dtype=bool)
        color = optimizer_color(label, i)
        ok = ~bad
        text = display_name(label) if label else "final loss"
        if ok.any():
            best = np.flatnonzero(ok)[np.argmin(values[ok])]
            ax.plot(lrs[ok], values[ok], marker="o", color=color,
                    label=f"{text} (best lr {lrs[best]:.3g})")
            ax.plot(lrs[best], values[best], marker="*", ms=15, color=color, mec="black", ls="none")
        if bad.any():
            any_diverged = True
            ax.plot(lrs[bad], np.full(bad.sum(), 0.97), ls="none", marker="x", ms=10, mew=2,
                    color=color, transform=ax.get_xaxis_transform(), clip_on=False)
    if any_diverged:
        ax.plot([], [], ls="none", marker="x", ms=10, mew=2, color="0.3", label="diverged")
    ax.set_xscale("log")
    _log_if_positive(ax)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def _schedule_label(schedule: Any, i: int) -> str:
    """A function's name, else the repr (nnopt schedules print their parameters)."""
    return getattr(schedule, "__name__", repr(schedule))


def schedule_values(schedule: Union[Callable[[int], float], float], steps: int) -> np.ndarray:
    """``[lr(0), ..., lr(steps-1)]`` of a schedule (a constant is repeated)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not callable(schedule):
        return np.full(steps, float(schedule))
    values = getattr(schedule, "values", None)
    return np.asarray(values(steps) if values else [schedule(t) for t in range(steps)], dtype=float)


def plot_schedules(schedules: Any, steps: int = 1000, *, ax: Optional[Axes] = None, log: bool = False,
                   title: str = "learning-rate schedules") -> Figure:
    r"""Learning rate :math:`\epsilon_t` against the step t for one or several schedules
    (callables ``t -> lr`` such as :mod:`nnopt.schedules`; a dict gives the labels)."""
    fig, ax = _fig_ax(ax, (6.4, 4.0))
    for i, (label, schedule) in enumerate(_labelled(schedules, _schedule_label)):
        ax.plot(np.arange(steps), schedule_values(schedule, steps), lw=1.8, label=label, color=f"C{i}")
    if log:
        _log_if_positive(ax)
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"learning rate $\epsilon_t$" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# --------------------------------------------------------------------------- gradients, curvature
def _norm_series(item: Any) -> np.ndarray:
    """Gradient norms of a History (per step), a Path (per point) or an array."""
    for attr in ("step_grad_norm", "grad_norms"):
        if hasattr(item, attr):
            return np.asarray(getattr(item, attr), dtype=float)
    values = np.asarray(item, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"gradient norms must be 1-D, got shape {values.shape}")
    return values


def plot_grad_norms(norms: Any, *, clip: Optional[float] = None, ax: Optional[Axes] = None,
                    colors: Optional[Sequence[str]] = None, title: str = "gradient norm per step") -> Figure:
    r""":math:`\|g_t\|` per step (log axis) for a History, a Path, an array, or a dict of
    them; ``clip`` draws the clipping threshold; ``colors`` override the optimizer colours.
    Non-finite norms are marked as divergence."""
    fig, ax = _fig_ax(ax, (6.4, 4.0))
    notes = []
    several = isinstance(norms, (list, tuple)) and len(norms) > 0 and not np.isscalar(norms[0])
    runs = _labelled(norms if several or isinstance(norms, Mapping) else [norms],
                     lambda v, i: _short_optimizer(v, i) if hasattr(v, "optimizer")
                     else getattr(v, "optimizer_name", f"run {i}"))
    for i, (label, item) in enumerate(runs):
        values = _norm_series(item)
        bad = np.flatnonzero(~np.isfinite(values))
        shown = values[:bad[0]] if bad.size else values
        color = colors[i] if colors is not None else optimizer_color(getattr(item, "optimizer_name", label), i)
        ax.plot(np.arange(len(shown)), shown, lw=1.2, label=display_name(label), color=color)
        if bad.size:
            notes.append(f"{display_name(label)}: non-finite gradient at step {bad[0]}")
    if clip is not None:
        ax.axhline(clip, color="black", ls="--", lw=1, label=f"clip threshold {clip:g}")
    _log_if_positive(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(r"gradient norm $\|g\|$" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _diverged_note(ax, notes)
    return fig


def _eigenvalues(item: Any) -> np.ndarray:
    """Eigenvalues of a symmetric matrix, or a 1-D array taken as eigenvalues already."""
    arr = np.asarray(item, dtype=float)
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1]:
        if not np.isfinite(arr).all():
            raise ValueError("the matrix contains NaN or inf")
        return np.linalg.eigvalsh(0.5 * (arr + arr.T))
    if arr.ndim == 1 and arr.size and np.isfinite(arr).all():
        return arr
    raise ValueError(f"expected a square (Hessian) matrix or a 1-D array of eigenvalues, got shape {arr.shape}")


def condition_number(item: Any) -> float:
    r""":math:`\kappa = |\lambda|_{max} / |\lambda|_{min}` of a symmetric matrix (or of given
    eigenvalues); ``inf`` if an eigenvalue is 0. For a positive definite Hessian this is the
    ratio that limits gradient descent: with the best fixed lr it shrinks the error by
    :math:`(\kappa-1)/(\kappa+1)` per step."""
    mags = np.abs(_eigenvalues(item))
    return math.inf if mags.min() == 0 else float(mags.max() / mags.min())


def plot_spectrum(matrices: Any, *, axes: Optional[Sequence[Axes]] = None,
                  title: str = "Hessian eigenvalues") -> Figure:
    r"""Left: the sorted eigenvalue magnitudes :math:`|\lambda_i|` (log axis) of one or several
    Hessians (or eigenvalue arrays; a dict gives the labels) -- negative eigenvalues, i.e.
    directions of negative curvature at a saddle, are drawn as red triangles. Right: the
    condition number :math:`\kappa` of each (log axis)."""
    items = [(label, _eigenvalues(m)) for label, m in
             _labelled(matrices, lambda v, i: "Hessian" if i == 0 else f"Hessian {i}")]
    if axes is None:
        fig = new_figure((10.4, 4.0))
        axes = fig.subplots(1, 2, width_ratios=[2, 1])
    fig = axes[0].figure
    ax, bar_ax = axes
    kappas, negative_shown = [], False
    for i, (label, eig) in enumerate(items):
        order = np.argsort(-np.abs(eig))
        mags, neg = np.abs(eig[order]), eig[order] < 0
        idx = np.arange(1, eig.size + 1)
        kappa = math.inf if mags.min() == 0 else mags.max() / mags.min()
        kappas.append(kappa)
        ax.plot(idx, np.where(mags > 0, mags, np.nan), marker="o", ms=4, color=f"C{i}",
                label=f"{label} ($\\kappa$ = {kappa:.3g})")
        if neg.any():
            ax.plot(idx[neg], mags[neg], ls="none", marker="v", ms=8, color=DIVERGED_COLOR,
                    label=None if negative_shown else "negative eigenvalue")
            negative_shown = True
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue index (sorted by magnitude)")
    ax.set_ylabel(r"$|\lambda_i|$ (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    finite = [k if math.isfinite(k) else np.nan for k in kappas]
    positions = np.arange(len(items))
    bar_ax.bar(positions, finite, color=[f"C{i}" for i in positions])
    for pos, k in zip(positions, kappas):
        bar_ax.annotate(f"{k:.3g}", (pos, k if math.isfinite(k) else 1.0), ha="center", va="bottom",
                        fontsize=9, xytext=(0, 2), textcoords="offset points")
    bar_ax.set_xticks(positions, [label for label, _ in items], rotation=20)
    bar_ax.set_yscale("log")
    bar_ax.set_ylabel(r"condition number $\kappa$ (log scale)")
    bar_ax.set_title(r"$\kappa = |\lambda|_{max} / |\lambda|_{min}$")
    return fig
