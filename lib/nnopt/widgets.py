r"""Interactive explorers (ipywidgets 8) for the lecture, each with a static twin.

=========================  ===============================  =====================================
explorer                   static twin (same figure)        what it shows
=========================  ===============================  =====================================
``lr_explorer``            ``plot_lr_experiment``           trajectories on a surface vs the lr
``schedule_explorer``      ``plot_schedule_experiment``     a schedule's lr curve and its training
``momentum_explorer``      ``plot_momentum_experiment``     momentum vs the condition number
``clipping_explorer``      ``plot_clipping_experiment``     the cliff: no clipping / by value / norm
``batch_size_explorer``    ``plot_batch_size_experiment``   noise of the minibatch gradient
``training_race``          ``plot_training_race``           optimizers training the MLP on digits
=========================  ===============================  =====================================

Show an explorer by making it the last expression of a cell (``nnopt.widgets.lr_explorer()``).

**Anatomy.** A *view* owns the artists of one figure and redraws them with
``view.show(**params)``. The static twin is that view on a fresh figure, shown once; the
explorer is the same view whose ``show`` runs after every control change. So the widget and
the static figure are the same code, and a lecture reads well on GitHub/nbviewer too. An
:class:`Explorer` has ``.controls`` (dict of widgets, named like the twin's keyword
arguments), ``.figure``, ``.update()`` (recompute and redraw -- what a control change
triggers) and ``.widget`` (the box to display); ``with explorer.hold(): ...`` changes several
controls with a single update. A bad combination of values shows its error message in the
figure; a diverging run shows "diverged at step k" in the plot.

**Redraw.** With the inline backend (JupyterLab's default, and any headless run) the figure
is a plain Agg figure, not managed by pyplot; every update renders it to PNG and puts the
bytes into an ``ipywidgets.Image``. We prefer this to ``Output`` + ``clear_output(wait=True)``
+ ``display(fig)`` because it never flickers or leaves an empty output between frames, does
not depend on IPython's figure formatters, pushes frames while the kernel is busy (the
training race's live curves), and runs identically without a kernel -- so the tests and
benchmarks/widget_latency.py exercise the real redraw path. With ipympl
(``%matplotlib widget``) the figure's canvas is itself a widget with pan/zoom; it goes into
the layout and updates call ``canvas.draw_idle()``. The choice is made from the canvas type of
a figure created under the active backend. When displayed, an explorer also offers the
current frame as ``image/png``: renderers without widget support (static viewers, untrusted
notebooks, nbclient runs) show that picture instead of a blank.

**Speed.** Contours are drawn once per surface (:class:`nnopt.plots.TrajectoryPlot`); a
slider only changes line data; frames are PNG-encoded with fast compression.
"""
from __future__ import annotations

import base64
import inspect
import io
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Optional, Union

import ipywidgets as W
import PIL.Image
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from traitlets import TraitError

from . import plots, schedules
from .data import Dataset, check_batch_size, load_digits
from .models import MLP, SoftmaxRegression, flatten
from .optimizers import make_optimizer
from .surfaces import SURFACES, Cliff, Path, Quadratic, Surface, get as get_surface, run
from .train import History, fit

__all__ = ["Explorer", "lr_explorer", "schedule_explorer", "momentum_explorer", "clipping_explorer",
           "batch_size_explorer", "training_race", "plot_lr_experiment", "plot_schedule_experiment",
           "plot_momentum_experiment", "plot_clipping_experiment", "plot_batch_size_experiment",
           "plot_training_race", "build_schedule", "minibatch_gradient_noise", "race"]

_STYLE = {"description_width": "initial"}
_WIDE = W.Layout(width="380px")


# =========================================================================== machinery
class View:
    """Owns the artists of one figure; :meth:`show` redraws them from plain parameters."""

    figsize: tuple[float, float] = (11.0, 4.6)
    freeze_layout = True          # lay the figure out at the first frame only (see Explorer.png)

    def __init__(self, figure: Figure):
        self.figure = figure
        self._error = figure.text(0.5, 0.5, "", ha="center", va="center", fontsize=12, wrap=True,
                                  color=plots.DIVERGED_COLOR, zorder=100, visible=False,
                                  bbox=dict(facecolor="white", edgecolor=plots.DIVERGED_COLOR, boxstyle="round"))

    def show(self, **params: Any) -> None:
        """Redraw for ``params``; ValueError (with a clear message) for impossible values."""
        self._error.set_visible(False)
        self._show(**params)

    def show_error(self, message: str) -> None:
        """Write ``message`` across the figure (the explorer's answer to a bad combination)."""
        self._error.set_text(f"cannot draw this: {message}")
        self._error.set_visible(True)

    def _show(self, **params: Any) -> None:
        raise NotImplementedError

    # ----- fast redraw protocol (see Explorer.png)
    def background_key(self) -> Optional[Hashable]:
        """A value that changes whenever anything except :meth:`dynamic_artists` changed;
        ``None`` (the default) means: always redraw the whole figure."""
        return None

    def dynamic_artists(self) -> list[Artist]:
        """The artists an ordinary update changes (drawn over a cached background)."""
        return []

    def blit_artists(self) -> list[Artist]:
        return [*self.dynamic_artists(), self._error]


def _static(view_cls: type[View], params: dict[str, Any], **view_kwargs: Any) -> Figure:
    """The static twin: ``view_cls`` on a new (pyplot-detached) figure, shown once."""
    fig = plots.new_figure(view_cls.figsize)
    view_cls(fig, **view_kwargs).show(**params)
    return fig


def _explorer_figure(figsize: tuple[float, float]) -> Figure:
    """A figure for an explorer: ipympl's widget canvas if that backend is active, else Agg."""
    with plt.ioff():
        fig = plt.figure(figsize=figsize, layout="constrained")
    if isinstance(fig.canvas, W.DOMWidget):          # ipympl: the canvas is a widget
        fig.canvas.header_visible = False
        return fig
    plt.close(fig)                                   # not managed by pyplot, never auto-shown
    FigureCanvasAgg(fig)                             # render off-screen whatever the backend
    return fig


def _defaults(fn: Callable) -> dict[str, Any]:
    """Keyword defaults of a static twin: the single source of the explorers' initial values."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _initial(fn: Callable, initial: dict[str, Any]) -> dict[str, Any]:
    """The static twin's defaults overridden by ``initial``; unknown names raise ValueError."""
    defaults = _defaults(fn)
    unknown = sorted(set(initial) - set(defaults))
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; {fn.__name__} takes {sorted(defaults)}")
    return {**defaults, **initial}


def _bounds(control: W.Widget) -> tuple[float, float]:
    if isinstance(control, W.FloatLogSlider):
        return control.base ** control.min, control.base ** control.max
    return control.min, control.max


def _checked(requested: dict[str, Any], build: Callable[[], dict[str, W.ValueWidget]]) -> dict[str, W.ValueWidget]:
    """Build the controls; a requested initial value they cannot show is a ValueError.

    (ipywidgets would raise a TraitError for an unknown option and silently clamp a number
    outside a slider's range -- the explorer would then show something else than asked.)
    """
    try:
        controls = build()
    except TraitError as err:
        raise ValueError(f"invalid initial value: {err}") from None
    for name, value in requested.items():
        control = controls.get(name)
        if control is not None and hasattr(control, "min") and not isinstance(value, bool) \
                and isinstance(value, (int, float, np.number)) and not math.isclose(control.value, value, rel_tol=1e-9):
            lo, hi = _bounds(control)
            raise ValueError(f"{name}={value!r} is outside the explorer's range [{lo:g}, {hi:g}]")
    return controls


class Explorer:
    """Controls + a view + a display area. See the module docstring."""

    def __init__(self, view: View, controls: dict[str, W.ValueWidget], *, auto: bool = True,
                 panel: Optional[W.Widget] = None):
        """``auto``: update on every control change (else only via :meth:`update`); ``panel``:
        the box of controls to show (default: the controls in two columns)."""
        self.view = view
        self.figure = view.figure
        self.controls = controls
        self._holding = False
        self._background_key: Optional[Hashable] = None
        self._background = None
        self._interactive = isinstance(self.figure.canvas, W.DOMWidget)
        self.image = None if self._interactive else W.Image(format="png")
        if panel is None:
            half = (len(controls) + 1) // 2
            widgets = list(controls.values())
            panel = W.HBox([W.VBox(widgets[:half]), W.VBox(widgets[half:])])
        self.widget = W.VBox([panel, self.figure.canvas if self._interactive else self.image])
        if auto:
            for control in controls.values():
                control.observe(self._on_change, names="value")

    # ----- values
    def params(self) -> dict[str, Any]:
        """The controls' values as keyword arguments of the view (and of the static twin)."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values: Any) -> "Explorer":
        """Set several controls at once (one update); unknown names raise ValueError."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; this explorer has {sorted(self.controls)}")
        with self.hold():
            for name, value in values.items():
                self.controls[name].value = value
        return self

    @contextmanager
    def hold(self) -> Iterator["Explorer"]:
        """Suspend updates while changing several controls; update once at the end."""
        outer = self._holding
        self._holding = True
        try:
            yield self
        finally:
            self._holding = outer
        if not outer:
            self.update()

    def _on_change(self, change: dict) -> None:
        if not self._holding:
            self.update()

    # ----- drawing
    def update(self) -> None:
        """Recompute the figure from the controls and redraw it."""
        try:
            self.view.show(**self.params())
        except ValueError as err:
            self.view.show_error(str(err))
        self.redraw()

    def redraw(self, *, now: bool = False) -> None:
        """Push the current figure to the display (``now``: even while the kernel is busy)."""
        if not self._interactive:
            self.image.value = self.png()
        elif now:
            self.figure.canvas.draw()                # ipympl sends the frame right away
        else:
            self.figure.canvas.draw_idle()

    def png(self) -> bytes:
        """Render the figure and return it as PNG bytes.

        Runs on every slider move, so it does as little as possible: when the view's
        ``background_key`` is unchanged, the cached background (contours, axes, ticks,
        legends) is restored and only the view's dynamic artists (lines, markers, notes,
        titles) are drawn over it -- blitting; otherwise one full Agg draw (``savefig`` would
        lay out and draw twice). The constrained layout is computed at the first frame and then
        frozen (unless the view says otherwise): it costs more than the drawing, blitting needs
        the axes to stay put, and the axes do not jump between frames. Fast PNG compression.
        """
        canvas = self.figure.canvas
        key = None if self._interactive else self.view.background_key()   # ipympl draws everything itself
        dynamic = self.view.blit_artists() if key is not None else []
        for artist in dynamic:
            artist.set_animated(True)                # left out of full draws, drawn below
        if key is None or key != self._background_key:
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox) if key is not None else None
            self._background_key = key
        else:
            canvas.restore_region(self._background)
        for artist in dynamic:
            self.figure.draw_artist(artist)
        if self.view.freeze_layout and self.figure.get_layout_engine() is not None:
            self.figure.set_layout_engine("none")
        rgb = np.asarray(canvas.buffer_rgba())[..., :3]
        buf = io.BytesIO()
        PIL.Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="png", compress_level=1)
        return buf.getvalue()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        frame = self.image.value if self.image is not None else self.png()
        bundle["image/png"] = base64.b64encode(frame).decode("ascii")
        return bundle


def _log_slider(value: float, lo: float, hi: float, description: str) -> W.FloatLogSlider:
    """A base-10 log slider over ``[lo, hi]`` (exponents in steps of 0.1)."""
    return W.FloatLogSlider(value=value, base=10, min=math.log10(lo), max=math.log10(hi), step=0.1,
                            description=description, readout_format=".3g", style=_STYLE, layout=_WIDE)


def _steps_slider(value: int) -> W.IntSlider:
    """0 to 10 000 optimizer steps (the readout can be typed into for exact values)."""
    return W.IntSlider(value=value, min=0, max=10_000, step=10, description="steps", style=_STYLE, layout=_WIDE,
                       continuous_update=False)


def _set_range(slider: W.FloatSlider, lo: float, hi: float, value: float) -> None:
    """Move a slider's range (in an order ipywidgets accepts) and its value."""
    if lo > slider.max:
        slider.max, slider.min = hi, lo
    else:
        slider.min, slider.max = lo, hi
    slider.step = (hi - lo) / 200
    slider.value = value


def _start(surface: Surface, x0: Optional[float], y0: Optional[float]) -> np.ndarray:
    """The start point: ``(x0, y0)``, each defaulting to the surface's own start."""
    start = np.array(surface.start, dtype=float)
    return np.array([start[0] if x0 is None else x0, start[1] if y0 is None else y0], dtype=float)


# =========================================================================== learning rate on surfaces
_REMEMBERED_RUNS = 64


class _SurfaceView(View):
    """Left: trajectories on a surface; right: a quantity per step (see TrajectoryPlot)."""

    value = "gap"

    def __init__(self, figure: Figure):
        super().__init__(figure)
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
        """The surface to show (by name or instance); the contour is redrawn only when it changes."""
        current = self.trajectories.surface if self.trajectories else None
        if isinstance(surface, str):
            if current is not None and current.name == surface:
                return current
            surface = get_surface(surface)
        if surface is not current:
            self.ax_path.clear()
            self.ax_value.clear()
            self.trajectories = plots.TrajectoryPlot(self.ax_path, surface, self.ax_value, value=self.value)
        return surface

    def background_key(self) -> Optional[Hashable]:
        return self.trajectories.background_key() if self.trajectories else None

    def dynamic_artists(self) -> list[Artist]:
        return [*self.trajectories.dynamic_artists(), self.ax_path.title, self.ax_value.title]


# the optimizers offered by the explorers: the lecture's (Alg. 1-8) plus Adamax
_LANES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_nesterov", "adadelta", "adam", "adamax")


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
    return _static(_LRView, dict(surface=surface, optimizers=tuple(optimizers), lr=lr, steps=steps, x0=x0, y0=y0))


class LRExplorer(Explorer):
    """:func:`plot_lr_experiment` with controls; picking a surface moves the start sliders."""

    def __init__(self, **initial: Any):
        d = _initial(plot_lr_experiment, initial)
        surface = get_surface(d["surface"]) if isinstance(d["surface"], str) else d["surface"]
        start = _start(surface, d["x0"], d["y0"])
        (xlo, xhi), (ylo, yhi) = surface.domain
        controls = _checked(initial, lambda: {
            "surface": W.Dropdown(options=list(SURFACES), value=surface.name, description="surface", style=_STYLE),
            "optimizers": W.SelectMultiple(options=[(plots.display_name(n), n) for n in _LANES],
                                           value=tuple(d["optimizers"]), rows=5,
                                           description="optimizers (ctrl-click)", style=_STYLE),
            "lr": _log_slider(d["lr"], 1e-6, 10.0, "learning rate (log)"),
            "steps": _steps_slider(d["steps"]),
            "x0": W.FloatSlider(value=start[0], min=xlo, max=xhi, step=(xhi - xlo) / 200,
                                description="start x", style=_STYLE, layout=_WIDE),
            "y0": W.FloatSlider(value=start[1], min=ylo, max=yhi, step=(yhi - ylo) / 200,
                                description="start y", style=_STYLE, layout=_WIDE),
        })
        super().__init__(_LRView(_explorer_figure(_LRView.figsize)), controls)
        self.update()

    def _on_change(self, change: dict) -> None:
        if change["owner"] is not self.controls["surface"] or self._holding:
            return super()._on_change(change)
        surface = get_surface(change["new"])          # a new surface: start at its start point
        (xlo, xhi), (ylo, yhi) = surface.domain
        with self.hold():
            _set_range(self.controls["x0"], xlo, xhi, float(surface.start[0]))
            _set_range(self.controls["y0"], ylo, yhi, float(surface.start[1]))


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
    return _static(_MomentumView, dict(condition=condition, momentum=momentum, lr=lr, steps=steps,
                                       nesterov=nesterov))


def momentum_explorer(**initial: Any) -> Explorer:
    """Momentum vs the condition number of a quadratic: zig-zag vs smooth (see
    :func:`plot_momentum_experiment` for the keyword arguments)."""
    d = _initial(plot_momentum_experiment, initial)
    controls = _checked(initial, lambda: {
        "condition": _log_slider(d["condition"], 1.0, 1000.0, "condition number κ (log)"),
        "momentum": W.FloatSlider(value=d["momentum"], min=0.0, max=0.99, step=0.01, description="momentum α",
                                  style=_STYLE, layout=_WIDE),
        "lr": _log_slider(d["lr"], 1e-6, 10.0, "learning rate (log)"),
        "steps": _steps_slider(d["steps"]),
        "nesterov": W.Checkbox(value=d["nesterov"], description="also Nesterov", style=_STYLE),
    })
    explorer = Explorer(_MomentumView(_explorer_figure(_MomentumView.figsize)), controls)
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
        if clip not in _CLIP_MODES:
            raise ValueError(f"clip must be one of {list(_CLIP_MODES)}, got {clip!r}")
        mode = _CLIP_MODES[clip]
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
    return _static(_ClippingView, dict(clip=clip, threshold=threshold, lr=lr, steps=steps))


def clipping_explorer(**initial: Any) -> Explorer:
    """The cliff surface with clipping off / by value / by norm (keyword arguments as in
    :func:`plot_clipping_experiment`)."""
    d = _initial(plot_clipping_experiment, initial)
    controls = _checked(initial, lambda: {
        "clip": W.ToggleButtons(options=list(_CLIP_MODES), value=d["clip"], description="clipping", style=_STYLE),
        "threshold": _log_slider(d["threshold"], 1e-2, 1e2, "threshold c (log)"),
        "lr": _log_slider(d["lr"], 1e-6, 10.0, "learning rate (log)"),
        "steps": _steps_slider(d["steps"]),
    })
    explorer = Explorer(_ClippingView(_explorer_figure(_ClippingView.figsize)), controls)
    explorer.update()
    return explorer


# =========================================================================== training data (shared)
@lru_cache(maxsize=2)
def _digits() -> Dataset:
    return load_digits()


def _data(data: Optional[Any]) -> Any:
    """The training data of the data-driven explorers: sklearn digits unless given."""
    return _digits() if data is None else data


def _train_xy(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(X_train, y_train)`` of a Dataset, a Split or an ``(X, y[, X_val, y_val])`` tuple."""
    if isinstance(data, Dataset):
        return data.X_train, data.y_train
    if hasattr(data, "X") and hasattr(data, "y"):
        return data.X, data.y
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        return np.asarray(data[0]), np.asarray(data[1])
    raise ValueError(f"data must be a Dataset, a Split, (X, y) or (X, y, X_val, y_val), got {type(data).__name__}")


def _n_classes(data: Any, y: np.ndarray) -> int:
    return getattr(data, "n_classes", None) or int(y.max()) + 1


# =========================================================================== schedules
_SCHEDULE_KINDS = ("constant", "step_decay", "inverse_time", "exponential", "linear_decay", "cosine")
_SCHEDULE_PARAMS = {"constant": (), "step_decay": ("drop", "every"), "inverse_time": ("k",),
                    "exponential": ("k",), "linear_decay": ("final_ratio", "horizon"),
                    "cosine": ("final_ratio", "horizon")}


def build_schedule(kind: str, lr0: float, *, drop: float = 0.5, every: int = 100, k: float = 0.01,
                   final_ratio: float = 0.01, horizon: int = 400, warmup_steps: int = 0) -> schedules.Schedule:
    r"""One of :mod:`nnopt.schedules` from the explorer's parameters: ``step_decay(lr0, drop,
    every)``, ``inverse_time(lr0, k)``, ``exponential(lr0, k)``, ``linear_decay(lr0,
    final_ratio*lr0, horizon)``, ``cosine(lr0, horizon, final_ratio*lr0)`` or ``constant(lr0)``,
    wrapped in ``warmup(..., warmup_steps)`` when ``warmup_steps > 0``."""
    makers = {
        "constant": lambda: schedules.constant(lr0),
        "step_decay": lambda: schedules.step_decay(lr0, drop, every),
        "inverse_time": lambda: schedules.inverse_time(lr0, k),
        "exponential": lambda: schedules.exponential(lr0, k),
        "linear_decay": lambda: schedules.linear_decay(lr0, final_ratio * lr0, horizon),
        "cosine": lambda: schedules.cosine(lr0, horizon, final_ratio * lr0),
    }
    if kind not in makers:
        raise ValueError(f"unknown schedule {kind!r}; choose one of {list(makers)}")
    base = makers[kind]()
    return schedules.warmup(base, warmup_steps) if warmup_steps else base


_SCHEDULE_L2 = 1e-2     # a regularised minimum: the minibatch noise does not vanish there


class _ScheduleView(View):
    """Left: lr per step (schedule vs constant lr0); right: the training loss of both runs."""

    def __init__(self, figure: Figure, data: Any = None):
        super().__init__(figure)
        self.data = _data(data)
        self.ax_lr, self.ax_loss = figure.subplots(1, 2)

    def _show(self, schedule, lr0, drop, every, k, final_ratio, horizon, warmup_steps, epochs, batch_size):
        sched = build_schedule(schedule, lr0, drop=drop, every=every, k=k, final_ratio=final_ratio,
                               horizon=horizon, warmup_steps=warmup_steps)
        runs = {f"constant lr0 = {lr0:.3g}": schedules.constant(lr0), schedule: sched}
        X, y = _train_xy(self.data)
        histories = {}
        for label, lr in runs.items():
            model = SoftmaxRegression(X.shape[1], _n_classes(self.data, y), l2=_SCHEDULE_L2)
            histories[label] = fit(model, make_optimizer("sgd", lr=lr), self.data, epochs=epochs,
                                   batch_size=batch_size, seed=0, progress=False)
        total = max(max(h.n_steps for h in histories.values()), 1)
        self.ax_lr.clear()
        plots.plot_schedules(list(runs.values()), total, ax=self.ax_lr, title="learning rate per step")
        self.ax_loss.clear()
        plots.plot_history(histories, metrics=("train_loss",), x="step", axes=[self.ax_loss],
                           title=f"SGD on softmax regression (L2 {_SCHEDULE_L2:g}), batch {batch_size}")


def plot_schedule_experiment(schedule: str = "linear_decay", lr0: float = 1.0, drop: float = 0.5,
                             every: int = 100, k: float = 0.01, final_ratio: float = 0.01,
                             horizon: int = 400, warmup_steps: int = 0, epochs: int = 15,
                             batch_size: int = 32, data: Any = None) -> Figure:
    """Train L2-regularised softmax regression on ``data`` (default: digits) with minibatch SGD
    twice -- with the schedule (see :func:`build_schedule`) and with the constant ``lr0`` -- and
    draw the learning rates and the training-loss curves. The minibatch gradient stays noisy at
    the minimum, so a constant lr leaves SGD bouncing on a noise floor; a decaying lr lets it
    settle."""
    return _static(_ScheduleView, dict(schedule=schedule, lr0=lr0, drop=drop, every=every, k=k,
                                       final_ratio=final_ratio, horizon=horizon, warmup_steps=warmup_steps,
                                       epochs=epochs, batch_size=batch_size), data=data)


class ScheduleExplorer(Explorer):
    """:func:`plot_schedule_experiment` with controls; parameters the chosen schedule does
    not use are disabled."""

    def __init__(self, data: Any = None, **initial: Any):
        d = _initial(plot_schedule_experiment, initial)
        controls = _checked(initial, lambda: {
            "schedule": W.Dropdown(options=_SCHEDULE_KINDS, value=d["schedule"], description="schedule",
                                   style=_STYLE),
            "lr0": _log_slider(d["lr0"], 1e-4, 10.0, "initial lr ε₀ (log)"),
            "drop": W.FloatSlider(value=d["drop"], min=0.05, max=1.0, step=0.05, description="drop factor γ",
                                  style=_STYLE, layout=_WIDE),
            "every": W.IntSlider(value=d["every"], min=1, max=1000, description="drop every (steps)",
                                 style=_STYLE, layout=_WIDE, continuous_update=False),
            "k": _log_slider(d["k"], 1e-5, 1.0, "decay rate k (per step, log)"),
            "final_ratio": _log_slider(d["final_ratio"], 1e-4, 1.0, "final lr ε_τ / ε₀ (log)"),
            "horizon": W.IntSlider(value=d["horizon"], min=1, max=5000, description="horizon τ (steps)",
                                   style=_STYLE, layout=_WIDE, continuous_update=False),
            "warmup_steps": W.IntSlider(value=d["warmup_steps"], min=0, max=1000,
                                        description="warm-up (steps, 0 = none)", style=_STYLE, layout=_WIDE,
                                        continuous_update=False),
            "epochs": W.IntSlider(value=d["epochs"], min=0, max=100, description="epochs", style=_STYLE,
                                  layout=_WIDE, continuous_update=False),
            "batch_size": W.Dropdown(options=[1, 8, 32, 128, 512], value=d["batch_size"], description="batch size",
                                     style=_STYLE),
        })
        super().__init__(_ScheduleView(_explorer_figure(_ScheduleView.figsize), data), controls)
        controls["schedule"].observe(lambda change: self._enable(), names="value")
        self._enable()
        self.update()

    def _enable(self) -> None:
        used = _SCHEDULE_PARAMS[self.controls["schedule"].value]
        for name in ("drop", "every", "k", "final_ratio", "horizon"):
            self.controls[name].disabled = name not in used


def schedule_explorer(data: Any = None, **initial: Any) -> ScheduleExplorer:
    """Choose a schedule and its parameters; see its lr curve and its effect on training
    (keyword arguments as in :func:`plot_schedule_experiment`)."""
    return ScheduleExplorer(data, **initial)


# =========================================================================== batch size
class GradientNoise:
    r"""Per-example gradients :math:`g_n` of a model on a data set, and the statistics of
    minibatch gradients :math:`g_B = \frac1B \sum_{n \in B} g_n` (B examples drawn without
    replacement) around the full-batch gradient :math:`g = \frac1N \sum_n g_n`:

    .. math:: \mathbb E\,\|g_B - g\|^2 = \frac{\operatorname{tr}\Sigma}{B}\,\frac{N-B}{N-1},
              \qquad \operatorname{tr}\Sigma = \frac1N \sum_n \|g_n - g\|^2

    -- the noise shrinks like :math:`1/\sqrt B` and vanishes at the full batch :math:`B=N`.
    """

    def __init__(self, model: Any, X: np.ndarray, y: np.ndarray):
        self.G = np.stack([flatten(model.loss_and_grads(X[n:n + 1], y[n:n + 1])[1])
                           for n in range(len(y))]).astype(np.float64)       # (N, P)
        self.N = len(y)
        self.g = self.G.mean(axis=0)
        centred = self.G - self.g
        self.trace = float(np.einsum("ij,ij->", centred, centred)) / self.N
        # the plane shown: the gradient direction and the noisiest direction orthogonal to it
        u1 = self.g / np.linalg.norm(self.g)
        rest = centred - np.outer(centred @ u1, u1)
        u2 = np.random.default_rng(0).standard_normal(self.G.shape[1])
        for _ in range(50):                                   # power iteration on rest^T rest
            u2 = rest.T @ (rest @ u2)
            u2 -= (u2 @ u1) * u1
            u2 /= np.linalg.norm(u2)
        self.basis = np.stack([u1, u2], axis=1)               # (P, 2), orthonormal
        self.projected = self.G @ self.basis                  # (N, 2)

    def expected_noise(self, batch_size: Union[int, np.ndarray]) -> np.ndarray:
        r""":math:`\sqrt{\mathbb E\|g_B - g\|^2} / \|g\|` (the relative noise) for batch sizes B."""
        b = np.asarray(batch_size, dtype=float)
        var = self.trace / b * (self.N - b) / max(self.N - 1, 1)
        return np.sqrt(np.maximum(var, 0.0)) / np.linalg.norm(self.g)

    def sample(self, batch_size: int, draws: int, seed: int = 0) -> np.ndarray:
        """``draws`` minibatch gradients projected on the plane, in units of ``|g|``, shape (draws, 2)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or not 1 <= batch_size <= self.N:
            raise ValueError(f"batch size must be an integer in [1, {self.N}] (the training set size), "
                             f"got {batch_size!r}")
        rng = np.random.default_rng(seed)
        idx = np.argsort(rng.random((draws, self.N)), axis=1)[:, :batch_size]   # without replacement
        return self.projected[idx].mean(axis=1) / np.linalg.norm(self.g)

    def covariance(self, batch_size: int) -> np.ndarray:
        """Covariance of the projected minibatch gradient (units of ``|g|``), shape (2, 2)."""
        centred = (self.projected - self.projected.mean(axis=0)) / np.linalg.norm(self.g)
        return centred.T @ centred / self.N / batch_size * (self.N - batch_size) / max(self.N - 1, 1)


@lru_cache(maxsize=8)
def _noise_of_digits(epochs_trained: int) -> GradientNoise:
    return minibatch_gradient_noise(None, epochs_trained)


def minibatch_gradient_noise(data: Any = None, epochs_trained: int = 0, hidden: Sequence[int] = (64,),
                             seed: int = 0) -> GradientNoise:
    """:class:`GradientNoise` of the MLP (``hidden`` layer widths, relu) on ``data`` (default:
    digits), after ``epochs_trained`` epochs of Adam (lr 1e-3, batch 32) from the seeded init."""
    data = _data(data)
    X, y = _train_xy(data)
    model = MLP(X.shape[1], tuple(hidden), _n_classes(data, y), seed=seed)
    if epochs_trained:
        fit(model, make_optimizer("adam", lr=1e-3), data, epochs=epochs_trained, batch_size=32, seed=seed,
            progress=False)
    return GradientNoise(model, X, y)


class _BatchSizeView(View):
    """Left: minibatch gradients around the full gradient; right: noise vs batch size.

    Everything that depends only on the model state (axes limits, the noise curve, legends)
    is drawn once per state; a new batch size moves the cloud, the ellipse and the marker.
    """

    def __init__(self, figure: Figure, data: Any = None):
        super().__init__(figure)
        self.data = data
        self.ax_cloud, self.ax_noise = figure.subplots(1, 2)
        self._noises: dict[int, GradientNoise] = {}
        self._state: Optional[tuple[int, int]] = None          # (epochs_trained, draws) drawn

    def _noise(self, epochs_trained: int) -> GradientNoise:
        """Per-example gradients are computed once per training state (digits: once per session)."""
        if epochs_trained not in self._noises:
            self._noises[epochs_trained] = _noise_of_digits(epochs_trained) if self.data is None \
                else minibatch_gradient_noise(self.data, epochs_trained)
        return self._noises[epochs_trained]

    def background_key(self) -> Optional[Hashable]:
        return (id(self), self._state)

    def dynamic_artists(self) -> list[Artist]:
        return [self.cloud, self.ellipse, self.marker, self.reading, self.ax_cloud.title]

    def _draw_state(self, noise: GradientNoise, epochs_trained: int, draws: int) -> None:
        """The parts that depend on the model state only."""
        ax = self.ax_cloud
        ax.clear()
        self.cloud = ax.scatter([], [], s=8, alpha=0.5, color="C0", label=f"{draws} minibatch gradients $g_B$")
        self.ellipse = Ellipse((1.0, 0.0), 0.0, 0.0, fill=False, color="C3", lw=1.5,
                               label="2σ ellipse predicted by the formula")
        ax.add_patch(self.ellipse)
        ax.plot([0, 1], [0, 0], color="black", lw=2, marker=">", markevery=[1], label="full-batch gradient g")
        reach = max(3 * math.sqrt(max(noise.covariance(1).diagonal().max(), 0)), 1.5)
        ax.set_xlim(1 - reach, 1 + reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("component along g  (units of ‖g‖)")
        ax.set_ylabel("noisiest direction orthogonal to g  (units of ‖g‖)")
        ax.legend(fontsize=7, loc="upper left")
        ax = self.ax_noise
        ax.clear()
        sizes = np.unique(np.geomspace(1, noise.N - 1, 60).astype(int))
        ax.plot(sizes, noise.expected_noise(sizes), color="C0", label=r"$\sqrt{E\|g_B-g\|^2}/\|g\|$ (exact)")
        ax.plot(sizes, noise.expected_noise(1) / np.sqrt(sizes), color="0.5", ls=":", label=r"$\propto 1/\sqrt{B}$")
        ax.axhline(1.0, color="black", lw=0.8, ls="--", label="noise = signal")
        (self.marker,) = ax.plot([], [], "o", ms=10, color="C3")
        self.reading = ax.text(0.97, 0.04, "", transform=ax.transAxes, ha="right", va="bottom", color="C3")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size B (log scale)")
        ax.set_ylabel(r"relative noise $\sqrt{E\|g_B-g\|^2}\,/\,\|g\|$ (log scale)")
        ax.set_title(f"minibatch gradient noise, N = {noise.N} (MLP, {epochs_trained} epochs trained)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
        self._state = (epochs_trained, draws)

    def _show(self, batch_size, epochs_trained, draws):
        noise = self._noise(epochs_trained)
        cloud = noise.sample(batch_size, draws)                 # validates batch_size
        if self._state != (epochs_trained, draws):
            self._draw_state(noise, epochs_trained, draws)
        self.cloud.set_offsets(cloud)
        vals, vecs = np.linalg.eigh(noise.covariance(batch_size))
        self.ellipse.set_width(4 * math.sqrt(max(vals[1], 0.0)))           # 2 sigma on either side
        self.ellipse.set_height(4 * math.sqrt(max(vals[0], 0.0)))
        self.ellipse.set_angle(math.degrees(math.atan2(vecs[1, 1], vecs[0, 1])))
        current = float(noise.expected_noise(batch_size))
        self.marker.set_data([batch_size] if batch_size < noise.N else [], [current] if batch_size < noise.N else [])
        self.reading.set_text(f"B = {batch_size}: noise = {current:.3g} ‖g‖" if batch_size < noise.N
                              else f"B = N = {noise.N}: full batch, no noise")
        self.ax_cloud.set_title(f"minibatch gradients, B = {batch_size} of N = {noise.N}\n"
                                f"(projection onto 2 of {noise.G.shape[1]} dimensions)", fontsize=10)


def plot_batch_size_experiment(batch_size: int = 32, epochs_trained: int = 0, draws: int = 200,
                               data: Any = None) -> Figure:
    """Minibatch gradients of the MLP on ``data`` (default: digits) for one batch size, drawn
    around the full-batch gradient, and the relative noise against the batch size."""
    return _static(_BatchSizeView, dict(batch_size=batch_size, epochs_trained=epochs_trained, draws=draws),
                   data=data)


def batch_size_explorer(data: Any = None, **initial: Any) -> Explorer:
    """Noise of the minibatch gradient vs the batch size (keyword arguments as in
    :func:`plot_batch_size_experiment`)."""
    d = _initial(plot_batch_size_experiment, initial)
    n = len(_train_xy(_data(data))[1])
    sizes = sorted({*(2 ** i for i in range(int(math.log2(n)) + 1)), n, int(d["batch_size"])})
    controls = _checked(initial, lambda: {
        "batch_size": W.SelectionSlider(options=sizes, value=int(d["batch_size"]), description="batch size B (log)",
                                        style=_STYLE, layout=_WIDE),
        "epochs_trained": W.Dropdown(options=sorted({0, 1, 5, 20, int(d["epochs_trained"])}),
                                     value=int(d["epochs_trained"]), description="epochs trained before",
                                     style=_STYLE),
        "draws": W.IntSlider(value=d["draws"], min=10, max=1000, step=10, description="minibatches drawn",
                             style=_STYLE, layout=_WIDE, continuous_update=False),
    })
    explorer = Explorer(_BatchSizeView(_explorer_figure(_BatchSizeView.figsize), data), controls)
    explorer.update()
    return explorer


# =========================================================================== training race
def _extend(history: History, more: History) -> None:
    """Append the run ``more`` (a continuation from where ``history`` ended) to ``history``."""
    steps, seconds = history.n_steps, history.wall_time
    for name in ("step_loss", "step_lr", "step_grad_norm"):
        getattr(history, name).extend(getattr(more, name))
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):      # entry 0 repeats our last
        getattr(history, name).extend(getattr(more, name)[1:])
    history.epoch_steps.extend(s + steps for s in more.epoch_steps[1:])
    history.epoch_time.extend(t + seconds for t in more.epoch_time[1:])
    history.wall_time += more.wall_time
    history.diverged = more.diverged
    if more.diverged:
        history.diverged_at = steps + more.diverged_at
        reason = more.message.split(":", 1)[1] if ":" in more.message else ""
        history.message = f"diverged at step {history.diverged_at}:{reason}"


def race(lrs: Mapping[str, float], data: Any = None, epochs: int = 10, batch_size: int = 32,
         hidden: Sequence[int] = (64,), seed: int = 0,
         on_epoch: Optional[Callable[[dict[str, History], int], None]] = None) -> dict[str, History]:
    """Train one MLP per optimizer (``lrs``: name -> learning rate), all from the same seeded
    initialisation and seeing the same minibatches, one epoch each in turn; ``on_epoch(histories,
    epoch)`` runs after every round (live curves). Diverged runs drop out of the race."""
    if not lrs:
        raise ValueError("choose at least one optimizer for the race")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    data = _data(data)
    X, y = _train_xy(data)
    lanes = {name: (MLP(X.shape[1], tuple(hidden), _n_classes(data, y), seed=seed), make_optimizer(name, lr=lr))
             for name, lr in lrs.items()}
    histories = {name: fit(model, opt, data, epochs=0, progress=False) for name, (model, opt) in lanes.items()}
    for epoch in range(1, epochs + 1):
        for name, (model, opt) in lanes.items():
            if not histories[name].diverged:
                _extend(histories[name], fit(model, opt, data, epochs=1, batch_size=batch_size,
                                             seed=seed * 100_003 + epoch, progress=False))
        if on_epoch is not None:
            on_epoch(histories, epoch)
    for h in histories.values():
        if not h.diverged:
            h.message = f"completed {h.n_epochs} epochs ({h.n_steps} steps)"
    return histories


class _RaceView(View):
    """Training loss and validation accuracy of every lane."""

    freeze_layout = False         # the first frame is empty; tick labels change as curves arrive

    def __init__(self, figure: Figure, data: Any = None, hidden: Sequence[int] = (64,)):
        super().__init__(figure)
        self.data, self.hidden = data, tuple(hidden)
        self.axes = figure.subplots(1, 2)

    def draw(self, histories: Mapping[str, History], lrs: Mapping[str, float], epochs: int) -> None:
        """Curves of ``histories`` (possibly still growing) on an x axis of ``epochs`` epochs."""
        for ax in self.axes:
            ax.clear()
        labelled = {f"{plots.display_name(n)}(lr={lrs[n]:.3g})": h for n, h in histories.items()}
        plots.plot_history(labelled, metrics=("train_loss", "val_acc"), axes=self.axes)
        for ax, name in zip(self.axes, ("training loss", "validation accuracy")):
            ax.set_xlim(-0.2, max(epochs, 1) + 0.2)
            ax.set_title(f"{name} (MLP, hidden {'-'.join(map(str, self.hidden)) or 'none'}, relu)")

    def _show(self, lrs, epochs, batch_size, on_epoch=None):
        lrs = dict(lrs if lrs is not None else _RACE_DEFAULT_LRS)
        self.histories = {}

        def live(histories: dict[str, History], epoch: int) -> None:
            self.draw(histories, lrs, epochs)
            if on_epoch is not None:
                on_epoch(histories, epoch)

        self.histories = race(lrs, self.data, epochs, batch_size, self.hidden, on_epoch=live)
        self.draw(self.histories, lrs, epochs)


_RACE_DEFAULT_LRS = {"sgd": 0.1, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.05, "rmsprop": 1e-3,
                     "adam": 1e-3}
_LANE_LRS = {**_RACE_DEFAULT_LRS, "rmsprop_nesterov": 1e-3, "adadelta": 1.0, "adamax": 2e-3}


def plot_training_race(lrs: Optional[Mapping[str, float]] = None, epochs: int = 10, batch_size: int = 32,
                       data: Any = None, hidden: Sequence[int] = (64,)) -> Figure:
    """Race several optimizers (``lrs``: name -> learning rate; default: SGD, momentum,
    Nesterov, AdaGrad, RMSProp, Adam) training the MLP on ``data`` (default: digits)."""
    return _static(_RaceView, dict(lrs=lrs, epochs=epochs, batch_size=batch_size), data=data, hidden=hidden)


class TrainingRace(Explorer):
    """:func:`plot_training_race` with a lane (checkbox + log lr slider) per optimizer and a run
    button; the curves grow live, one epoch of every lane at a time."""

    def __init__(self, lrs: Optional[Mapping[str, float]] = None, epochs: int = 10, batch_size: int = 32,
                 data: Any = None, hidden: Sequence[int] = (64,), lanes: Sequence[str] = _LANES):
        lrs = dict(lrs if lrs is not None else _RACE_DEFAULT_LRS)
        unknown = sorted(set(lrs) - set(lanes))
        if unknown:
            raise ValueError(f"no lane for {unknown}; lanes are {list(lanes)}")
        check_batch_size(batch_size)
        controls: dict[str, W.ValueWidget] = {}
        rows = []
        for name in lanes:
            on = W.Checkbox(value=name in lrs, description=plots.display_name(name), indent=False,
                            layout=W.Layout(width="160px"))
            lr = _log_slider(lrs.get(name, _LANE_LRS.get(name, 1e-3)), 1e-5, 10.0, "learning rate (log)")
            controls[f"{name}_on"], controls[f"{name}_lr"] = on, lr
            rows.append(W.HBox([on, lr]))
        controls["epochs"] = W.IntSlider(value=epochs, min=0, max=100, description="epochs", style=_STYLE,
                                         layout=_WIDE)
        controls["batch_size"] = W.Dropdown(options=sorted({1, 8, 32, 128, 512, batch_size}), value=batch_size,
                                            description="batch size", style=_STYLE)
        _checked({**{f"{name}_lr": lr for name, lr in lrs.items()}, "epochs": epochs}, lambda: controls)
        self.lanes = tuple(lanes)
        self.button = W.Button(description="run race", icon="play", button_style="success")
        self.status = W.Label("press 'run race' to train")
        half = (len(rows) + 1) // 2
        panel = W.VBox([W.HBox([W.VBox(rows[:half]), W.VBox(rows[half:])]),
                        W.HBox([controls["epochs"], controls["batch_size"], self.button, self.status])])
        view = _RaceView(_explorer_figure(_RaceView.figsize), data, hidden)
        super().__init__(view, controls, auto=False, panel=panel)
        self.button.on_click(lambda _: self.update())
        view.draw({}, {}, epochs)
        self.redraw()

    def params(self) -> dict[str, Any]:
        lrs = {n: self.controls[f"{n}_lr"].value for n in self.lanes if self.controls[f"{n}_on"].value}
        return {"lrs": lrs, "epochs": self.controls["epochs"].value,
                "batch_size": self.controls["batch_size"].value, "on_epoch": self._live}

    def _live(self, histories: dict[str, History], epoch: int) -> None:
        self.status.value = f"epoch {epoch}/{self.controls['epochs'].value}"
        self.redraw(now=True)

    def update(self) -> None:
        """Run the race with the current lanes (the run button calls this)."""
        self.button.disabled = True
        self.status.value = "training ..."
        try:
            super().update()
        finally:
            self.button.disabled = False
        histories = getattr(self.view, "histories", {})
        self.status.value = "; ".join(f"{plots.display_name(n)}: {h.message}" for n, h in histories.items()) \
            or self.status.value

    @property
    def histories(self) -> dict[str, History]:
        """The last race's History per optimizer."""
        return getattr(self.view, "histories", {})


def training_race(lrs: Optional[Mapping[str, float]] = None, epochs: int = 10, batch_size: int = 32,
                  data: Any = None, hidden: Sequence[int] = (64,)) -> TrainingRace:
    """Several optimizers training the MLP on digits side by side, a learning rate per optimizer,
    a run button and live curves (arguments as in :func:`plot_training_race`)."""
    return TrainingRace(lrs, epochs, batch_size, data, hidden)
