"""Explorers on the 2-D surfaces: the learning rate (``lr_explorer``), momentum against the
condition number (``momentum_explorer``) and gradient clipping on the cliff
(``clipping_explorer``), each with its static twin ``plot_*_experiment``."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any, Optional, Union

import ipywidgets as W
import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from .. import plots
from ..optimizer_base import make_optimizer
from ..surfaces import SURFACES, Cliff, Path, Quadratic, Surface, get as get_surface, run
from ..validation import check_choice
from .view import (STYLE, WIDE, Explorer, View, checked_controls, explorer_figure, initial_values, log_slider,
                   optimizer_names, set_range, static_figure, steps_slider)

__all__ = ["lr_explorer", "momentum_explorer", "clipping_explorer", "plot_lr_experiment", "plot_momentum_experiment",
           "plot_clipping_experiment", "LRExplorer"]


def _start(surface: Surface, x0: Optional[float], y0: Optional[float]) -> np.ndarray:
    """The start point: ``(x0, y0)``, each defaulting to the surface's own start."""
    start = np.array(surface.start, dtype=float)
    return np.array([start[0] if x0 is None else x0, start[1] if y0 is None else y0], dtype=float)



_REMEMBERED_RUNS = 64


class _SurfaceView(View):
    """Left: trajectories on a surface; right: a quantity per step (see TrajectoryPlot)."""

    value = "gap"

    def __init__(self, figure: Figure):
        super().__init__(figure)
        # Titles at a fixed height: the automatic one (which dodges decorations above the axes;
        # these have none) measures every tick label again in each full draw, ~15% of it.
        with matplotlib.rc_context({"axes.titley": 1.0}):
            self.ax_path, self.ax_value = figure.subplots(1, 2, width_ratios=[1.15, 1])
        self.trajectories: Optional[plots.TrajectoryPlot] = None
        self._runs: OrderedDict[tuple, Path] = OrderedDict()

    def run(self, name: str, hyperparams: dict[str, float], start: Optional[np.ndarray], steps: int,
            clip: Optional[tuple[str, float]] = None) -> Path:
        """:func:`nnopt.surfaces.run` of a fresh optimizer on the current surface, remembered
        for the last few settings: moving one slider recomputes only the paths it affects
        (e.g. the unclipped reference path does not depend on the clipping threshold)."""
        surface = self.trajectories.surface
        key = (surface, name, tuple(sorted(hyperparams.items())),      # the object: its id stays unique
               None if start is None else tuple(start), steps, clip)
        if key not in self._runs:
            self._runs[key] = run(surface, make_optimizer(name, **hyperparams), start, steps, clip=clip)
            if len(self._runs) > _REMEMBERED_RUNS:
                self._runs.popitem(last=False)
        self._runs.move_to_end(key)
        return self._runs[key]

    def _use(self, surface: Union[str, Surface]) -> Surface:
        """The surface to show (by name or instance); only the contour is redrawn when it changes."""
        current = self.trajectories.surface if self.trajectories else None
        if isinstance(surface, str):
            if current is not None and current.name == surface:
                return current
            surface = get_surface(surface)
        if current is None:
            self.trajectories = plots.TrajectoryPlot(self.ax_path, surface, self.ax_value, value=self.value)
        elif surface is not current:
            self.trajectories.set_surface(surface)
        return surface

    def background_key(self) -> Optional[Hashable]:
        return self.trajectories.background_key() if self.trajectories else None

    def dynamic_artists(self) -> list[Artist]:
        return [*self.trajectories.dynamic_artists(), self.ax_path.title, self.ax_value.title]


# =========================================================================== learning rate on surfaces
class _LRView(_SurfaceView):
    def _show(self, surface, optimizers, lr, steps, x0, y0):
        surface = self._use(surface)
        start = _start(surface, x0, y0)
        paths = [self.run(name, {"lr": lr}, start, steps) for name in optimizers]
        self.trajectories.set_paths(paths, steps=steps)
        self.ax_path.set_title(f"{surface!r}: lr = {lr:.3g}, {steps} steps")


def plot_lr_experiment(surface: Union[str, Surface] = "rosenbrock",
                       optimizers: Sequence[str] = ("sgd", "momentum", "adam"), lr: float = 1e-3,
                       steps: int = 200, x0: Optional[float] = None, y0: Optional[float] = None) -> Figure:
    """Run each optimizer with the same ``lr`` for ``steps`` steps from ``(x0, y0)`` (default:
    the surface's start) and draw the trajectories and :math:`f(x_k) - f^*` per step."""
    return static_figure(_LRView, dict(surface=surface, optimizers=tuple(optimizers), lr=lr, steps=steps, x0=x0, y0=y0))


class LRExplorer(Explorer):
    """:func:`plot_lr_experiment` with controls; picking a surface moves the start sliders."""

    def __init__(self, **initial: Any):
        d = initial_values(plot_lr_experiment, initial)
        surface = get_surface(d["surface"]) if isinstance(d["surface"], str) else d["surface"]
        start = _start(surface, d["x0"], d["y0"])
        (xlo, xhi), (ylo, yhi) = surface.domain
        controls = checked_controls(initial, lambda: {
            "surface": W.Dropdown(options=list(SURFACES), value=surface.name, description="surface", style=STYLE),
            "optimizers": W.SelectMultiple(options=[(plots.display_name(n), n) for n in optimizer_names()],
                                           value=tuple(d["optimizers"]), rows=5,
                                           description="optimizers (ctrl-click)", style=STYLE),
            "lr": log_slider(d["lr"], 1e-6, 10.0, "learning rate (log)"),
            "steps": steps_slider(d["steps"]),
            "x0": W.FloatSlider(value=start[0], min=xlo, max=xhi, step=(xhi - xlo) / 200,
                                description="start x", style=STYLE, layout=WIDE),
            "y0": W.FloatSlider(value=start[1], min=ylo, max=yhi, step=(yhi - ylo) / 200,
                                description="start y", style=STYLE, layout=WIDE),
        })
        super().__init__(_LRView(explorer_figure(_LRView.figsize)), controls)
        self.update()

    def _on_change(self, change: dict) -> None:
        if change["owner"] is not self.controls["surface"] or self._holding:
            return super()._on_change(change)
        surface = get_surface(change["new"])          # a new surface: start at its start point
        (xlo, xhi), (ylo, yhi) = surface.domain
        with self.hold():
            set_range(self.controls["x0"], xlo, xhi, float(surface.start[0]))
            set_range(self.controls["y0"], ylo, yhi, float(surface.start[1]))


def lr_explorer(**initial: Any) -> LRExplorer:
    """Pick a surface, optimizers, a log-scale learning rate, the number of steps and the start
    point; the trajectories redraw. Keyword arguments set initial values (see
    :func:`plot_lr_experiment`)."""
    return LRExplorer(**initial)


# =========================================================================== momentum
class _MomentumView(_SurfaceView):
    def _show(self, condition, momentum, lr, steps, nesterov):
        current = self.trajectories.surface if self.trajectories else None
        self._use(current if current is not None and current.condition == condition
                  else Quadratic(condition=condition))
        runs = [("sgd", {})] + [(name, {"momentum": momentum}) for name in ("momentum", "nesterov")
                                if name == "momentum" or nesterov]
        paths = [self.run(name, {"lr": lr, **hp}, None, steps) for name, hp in runs]
        labels = ["SGD (no momentum)"] + [plots.display_name(name) for name, _ in runs[1:]]
        self.trajectories.set_paths(paths, labels, steps=steps)
        self.ax_path.set_title(f"quadratic, $\\kappa$ = {condition:.3g}: momentum $\\alpha$ = {momentum:.2f}, "
                               f"lr = {lr:.3g}, {steps} steps", fontsize=10)
        self.ax_value.set_title(f"SGD stable iff lr < 2/$\\kappa$ = {2 / condition:.3g}; momentum iff "
                                f"lr < 2(1+$\\alpha$)/$\\kappa$ = {2 * (1 + momentum) / condition:.3g}", fontsize=9)


def plot_momentum_experiment(condition: float = 50.0, momentum: float = 0.5, lr: float = 0.038,
                             steps: int = 100, nesterov: bool = False) -> Figure:
    r"""SGD and heavy-ball momentum (:math:`v \leftarrow \alpha v - \epsilon g`) with the same lr
    on the quadratic with Hessian eigenvalues 1 and :math:`\kappa`: SGD zig-zags across the
    narrow valley once :math:`\epsilon\kappa > 1` and crawls along it; momentum averages the
    zig-zag away and speeds up along the valley. ``nesterov`` adds Nesterov momentum."""
    return static_figure(_MomentumView, dict(condition=condition, momentum=momentum, lr=lr, steps=steps,
                                       nesterov=nesterov))


def momentum_explorer(**initial: Any) -> Explorer:
    """Momentum vs the condition number of a quadratic: zig-zag vs smooth (see
    :func:`plot_momentum_experiment` for the keyword arguments)."""
    d = initial_values(plot_momentum_experiment, initial)
    controls = checked_controls(initial, lambda: {
        "condition": log_slider(d["condition"], 1.0, 1000.0, "condition number κ (log)"),
        "momentum": W.FloatSlider(value=d["momentum"], min=0.0, max=0.99, step=0.01, description="momentum α",
                                  style=STYLE, layout=WIDE),
        "lr": log_slider(d["lr"], 1e-6, 10.0, "learning rate (log)"),
        "steps": steps_slider(d["steps"]),
        "nesterov": W.Checkbox(value=d["nesterov"], description="also Nesterov", style=STYLE),
    })
    explorer = Explorer(_MomentumView(explorer_figure(_MomentumView.figsize)), controls)
    explorer.update()
    return explorer


# =========================================================================== clipping
_CLIP_MODES = {"off": None, "by value": "value", "by norm": "norm"}


class _ClippingView(_SurfaceView):
    """The cliff with the unclipped path (dashed) and the clipped one; gradient norms per step."""

    value = "grad_norm"

    def __init__(self, figure: Figure):
        super().__init__(figure)
        self._use(Cliff())
        self.threshold = self.ax_value.axhline(1.0, color="black", ls="--", lw=1)

    def dynamic_artists(self) -> list[Artist]:
        return [*super().dynamic_artists(), self.threshold]

    def _show(self, clip, threshold, lr, steps):
        mode = _CLIP_MODES[check_choice("clip", clip, list(_CLIP_MODES))]
        surface = self.trajectories.surface
        paths = [self.run("sgd", {"lr": lr}, None, steps)]
        labels, colors, styles = ["SGD, no clipping"], ["#1f77b4"], [{}]
        if mode:
            paths.append(self.run("sgd", {"lr": lr}, None, steps, clip=(mode, threshold)))
            labels.append(f"SGD, clipped {clip}")
            colors.append("#d62728")
            styles = [{"alpha": 0.45, "ls": "--"}, {}]
        self.trajectories.set_paths(paths, labels, colors=colors, styles=styles, steps=steps)
        self.threshold.set_ydata([threshold, threshold])
        self.threshold.set_visible(bool(mode))
        self.ax_path.set_title(f"{surface!r}: lr = {lr:.3g}, {steps} steps"
                               + (f", clip {clip} at c = {threshold:.3g}" if mode else ""), fontsize=10)
        self.ax_value.set_title("gradient norm before clipping" + (" (dashed: c)" if mode else ""))


def plot_clipping_experiment(clip: str = "by norm", threshold: float = 1.0, lr: float = 0.4,
                             steps: int = 100) -> Figure:
    r"""SGD on the cliff surface with and without gradient clipping (``clip`` = ``"off"``,
    ``"by value"``: each component to :math:`[-c, c]`, ``"by norm"``: :math:`g \leftarrow g\,
    c/\|g\|` if :math:`\|g\| > c`, with :math:`c` = ``threshold``)."""
    return static_figure(_ClippingView, dict(clip=clip, threshold=threshold, lr=lr, steps=steps))


def clipping_explorer(**initial: Any) -> Explorer:
    """The cliff surface with clipping off / by value / by norm (keyword arguments as in
    :func:`plot_clipping_experiment`)."""
    d = initial_values(plot_clipping_experiment, initial)
    controls = checked_controls(initial, lambda: {
        "clip": W.ToggleButtons(options=list(_CLIP_MODES), value=d["clip"], description="clipping", style=STYLE),
        "threshold": log_slider(d["threshold"], 1e-2, 1e2, "threshold c (log)"),
        "lr": log_slider(d["lr"], 1e-6, 10.0, "learning rate (log)"),
        "steps": steps_slider(d["steps"]),
    })
    explorer = Explorer(_ClippingView(explorer_figure(_ClippingView.figsize)), controls)
    explorer.update()
    return explorer

