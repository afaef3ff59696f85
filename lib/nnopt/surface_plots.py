r"""Optimizer trajectories over the contour plot of a 2-D surface: :class:`TrajectoryPlot`
draws the contour once and then only moves line data (what makes the surface explorers of
:mod:`nnopt.widgets` redraw within milliseconds); :func:`plot_trajectories` is the one-off figure."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figures import DIVERGED_COLOR, display_name, new_figure, optimizer_color
from .surfaces import Surface, get as get_surface
from .trajectory import Trajectory
from .validation import Described, check_choice, invalid

__all__ = ["log_levels", "TrajectoryPlot", "plot_trajectories"]
def log_levels(values: np.ndarray, n: int = 20, span: float = 1e-4) -> np.ndarray:
    r"""``n`` contour levels spaced geometrically above the minimum of ``values``:
    :math:`f_{min} + (f_{max} - f_{min})\, s^{1 - i/(n-1)}`, :math:`i = 0..n-1`, with
    :math:`s` = ``span``. Dense near the minimum, where the interesting valleys are."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise invalid("surface values", Described("no finite values on the grid"),
                      "finite values to choose contour levels from")
    lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:                                   # flat surface: any two levels will do
        hi = lo + 1.0
    return lo + (hi - lo) * np.geomspace(span, 1.0, n)


_SURFACE_CMAP = ListedColormap(plt.get_cmap("Greys")(np.linspace(0.03, 0.45, 256)))


@dataclass
class _PathArtists:
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
    r"""Contour plot of a surface (drawn once per surface, see :meth:`set_surface`) with
    trajectories whose data can be replaced, and optionally a second panel with a quantity
    along each path against the step:
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
        check_choice("value", value, sorted(_VALUE_LABELS))
        self.ax, self.value_ax, self.value = ax, value_ax, value
        self.resolution, self.n_levels = resolution, n_levels
        self._markers = {kind: ax.plot([], [], ls="none", marker=marker, ms=13, color="gold", mec="black", mew=0.8,
                                       zorder=4, label=kind)[0]
                         for kind, marker in (("minimum", "*"), ("saddle point", "X"))}
        self._contours: list[ContourSet] = []
        self._surfaces_drawn = 0
        ax.set_autoscale_on(False)
        ax.set_xlabel("$x$")
        ax.set_ylabel("$y$")
        if value_ax is not None:
            value_ax.set_yscale("log")
            value_ax.set_xlim(0, 1)
            value_ax.set_autoscale_on(False)
            value_ax.set_xlabel("step $k$")
            value_ax.set_ylabel(_VALUE_LABELS[value])
            value_ax.set_title("distance to the optimum" if value == "gap" else "gradient norm along the path")
            value_ax.grid(alpha=0.3)
        self._traces: dict[str, _PathArtists] = {}
        self.note = ax.text(0.02, 0.98, "", transform=ax.transAxes, ha="left", va="top",
                            color=DIVERGED_COLOR, fontsize=9, zorder=10, visible=False,
                            bbox=dict(facecolor="white", alpha=0.85, edgecolor=DIVERGED_COLOR,
                                      boxstyle="round"))
        self.set_surface(surface, title)

    def set_surface(self, surface: Union[Surface, str], title: Optional[str] = None) -> None:
        """Show ``surface`` (an instance or a name): its contour replaces the previous one, with
        its minima and saddle points, its domain as the limits and (value panel) the range of
        the quantity over it. The axes, their ticks and the trajectory artists are kept, so a
        new surface costs one contour, not a new figure."""
        self.surface = get_surface(surface) if isinstance(surface, str) else surface
        (x0, x1), (y0, y1) = self.surface.domain
        grid = np.stack(np.meshgrid(np.linspace(x0, x1, self.resolution), np.linspace(y0, y1, self.resolution)))
        with np.errstate(over="ignore", invalid="ignore"):
            Z = np.asarray(self.surface.value(grid), dtype=float)
        levels = log_levels(Z, self.n_levels)
        for artist in self._contours:
            artist.remove()
        self._contours = [            # contourpy's "serial": the same contours as the default, ~25% faster
            self.ax.contourf(*grid, Z, levels=levels, cmap=_SURFACE_CMAP, extend="max", algorithm="serial",
                             norm=BoundaryNorm(levels, _SURFACE_CMAP.N, extend="max")),
            self.ax.contour(*grid, Z, levels=levels, colors="0.55", linewidths=0.4, algorithm="serial")]
        self._surfaces_drawn += 1
        for kind, points in (("minimum", self.surface.minima), ("saddle point", getattr(self.surface, "saddles", []))):
            pts = np.asarray(points, dtype=float).reshape(-1, 2)
            self._markers[kind].set_data(pts[:, 0], pts[:, 1])
        self.ax.set_xlim(x0, x1)
        self.ax.set_ylim(y0, y1)
        self.ax.set_title(title if title is not None else f"{self.surface!r}: optimizer trajectories")
        self.fstar = min((self.surface.value(m) for m in self.surface.minima), default=float(np.nanmin(Z)))
        if self.value_ax is not None:
            self._value_limits(grid, Z)
        self._legend(list(self._traces))

    def _value_limits(self, grid: np.ndarray, Z: np.ndarray) -> None:
        """Log y limits from the quantity's range over the domain."""
        vax = self.value_ax
        with np.errstate(over="ignore", invalid="ignore"):
            if self.value == "gap":
                top, bottom = float(np.nanmax(Z)) - self.fstar, 1e-12
            else:
                top = float(np.nanmax(np.hypot(*self.surface.grad(grid))))
                bottom = top * 1e-7
        vax.set_ylim(bottom, 10 * max(top, bottom))

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
        return (id(self), self._surfaces_drawn, tuple(self._traces), xlim)

    def set_paths(self, paths: Sequence[Trajectory], labels: Optional[Sequence[str]] = None,
                  colors: Optional[Sequence[str]] = None, styles: Optional[Sequence[dict]] = None,
                  steps: Optional[int] = None) -> None:
        """Show ``paths`` (replacing the previous ones). ``labels`` default to the optimizer
        names; ``colors`` to the lecture's optimizer colours; ``styles`` are extra Line2D
        properties per path (e.g. ``{"alpha": 0.4, "ls": "--"}`` for a reference path);
        ``steps`` is the x range of the value panel (default: the longest path)."""
        labels = list(labels) if labels is not None else [display_name(p.optimizer_name) for p in paths]
        if len(labels) != len(paths) or len(set(labels)) != len(labels):
            raise invalid("labels", labels, f"one distinct label per path ({len(paths)} paths)")
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

    def _trace(self, label: str) -> _PathArtists:
        if label not in self._traces:
            (line,) = self.ax.plot([], [], lw=1.6, marker=".", ms=3, zorder=5, label=label)
            (start,) = self.ax.plot([], [], ls="none", marker="o", ms=7, mfc="white", zorder=6)
            (end,) = self.ax.plot([], [], ls="none", marker="s", ms=6, mec="black", mew=0.6, zorder=6)
            trace = _PathArtists(line, start, end)
            if self.value_ax is not None:
                (trace.curve,) = self.value_ax.plot([], [], lw=1.5, label=label)
                (trace.cross,) = self.value_ax.plot([], [], ls="none", marker="x", ms=10, mew=2)
            self._traces[label] = trace
        return self._traces[label]

    def _legend(self, labels: Sequence[str]) -> None:
        handles = [self._traces[label].line for label in labels]
        handles += [marker for marker in self._markers.values() if len(marker.get_xdata())]
        handles += [Line2D([], [], ls="none", marker="o", mfc="white", mec="0.3", label="start"),
                    Line2D([], [], ls="none", marker="s", mfc="0.3", mec="black", label="end")]
        self.ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)


def plot_trajectories(surface: Union[Surface, str], paths: Union[Trajectory, Sequence[Trajectory]],
                      labels: Optional[Sequence[str]] = None, *, value: Optional[str] = None,
                      ax: Optional[Axes] = None, value_ax: Optional[Axes] = None,
                      title: Optional[str] = None, resolution: int = 160, n_levels: int = 20) -> Figure:
    r"""Contour plot of ``surface`` (log-spaced levels above the minimum) with one or several
    optimizer paths from :func:`nnopt.surfaces.run`; start = circle, end = square, minima =
    stars; a path that diverged gets the note "diverged at step k".

    ``value="gap"`` adds a panel with :math:`f(x_k) - f^*` per step, ``value="grad_norm"``
    one with the gradient norm (both on log axes), drawn into ``value_ax`` if given."""
    paths = [paths] if isinstance(paths, Trajectory) else list(paths)
    if ax is None:
        fig = new_figure((11.0, 4.6) if value else (6.4, 5.2))
        ax, value_ax = fig.subplots(1, 2, width_ratios=[1.15, 1]) if value else (fig.add_subplot(), None)
    elif value and value_ax is None:
        raise invalid("value_ax", None, "the axes for the value panel, given together with ax")
    view = TrajectoryPlot(ax, surface, value_ax=value_ax if value else None, value=value or "gap",
                          resolution=resolution, n_levels=n_levels, title=title)
    view.set_paths(paths, labels)
    return ax.figure
