"""The machinery every explorer shares: a :class:`View` draws one figure from plain
parameters, an :class:`Explorer` binds controls to a view and pushes frames, and small
builders for controls and figures (see :mod:`nnopt.widgets` for the anatomy and the redraw).
"""
from __future__ import annotations

import base64
import inspect
import io
import math
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, Optional

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from traitlets import TraitError

from .. import plots
from ..experiments import GOOD_LRS
from ..optimizer_base import OPTIMIZERS
from ..validation import Described, check_names, invalid

__all__ = ["View", "Explorer", "STYLE", "WIDE", "optimizer_names", "static_figure", "explorer_figure", "initial_values",
           "checked_controls", "log_slider", "steps_slider", "set_range", "decade_limits", "nice_ceiling"]

#: Layout of the controls: descriptions in full, sliders wide enough to read.
STYLE = {"description_width": "initial"}
WIDE = W.Layout(width="380px")
#: An update expected to take longer than this (seconds) shows an intermediate frame at once ...
LONG_UPDATE = 0.06
#: ... and then at most one every FRAME_INTERVAL seconds (or every 3 frame costs, when drawing
#: is slow: at most a quarter of a long update goes to intermediate frames) until the complete one.
FRAME_INTERVAL = 0.3
#: An animation (the race's run button: curves growing live) starts with a frame at once and
#: then shows one every ANIMATION_INTERVAL seconds (same 3-frame-cost rule): ~10 frames per
#: second, so a short run is not slowed down by frames nobody could see.
ANIMATION_INTERVAL = 0.1


def optimizer_names() -> tuple[str, ...]:
    """The optimizers the explorers offer: every registered optimizer with a learning rate in
    :data:`nnopt.experiments.GOOD_LRS` (the lecture's Alg. 1-8, Adamax, and any added there)."""
    return tuple(name for name in GOOD_LRS if name in OPTIMIZERS)


class View:
    """Owns the artists of one figure; :meth:`show` redraws them from plain parameters."""

    figsize: tuple[float, float] = (11.0, 4.6)

    def __init__(self, figure: Figure):
        self.figure = figure
        self.frames: Optional["Explorer"] = None      # the explorer showing this view, if any
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

    def progress(self, remaining: float, draw: Callable[[], None], animation: bool = False) -> None:
        """Partway through a long computation (``remaining``: estimated seconds of work left):
        if the explorer showing this view wants an intermediate frame now (:meth:`Explorer.frame_due`;
        ``animation``: paced as an animation, such as the race's run button),
        ``draw()`` it and push it. A static figure never does: it only shows the end."""
        if self.frames is not None and self.frames.frame_due(remaining, animation):
            self.frames.intermediate_frame(draw)

    # ----- fast redraw protocol (see Explorer.png)
    def background_key(self) -> Optional[Hashable]:
        """A value that changes whenever anything except :meth:`dynamic_artists` changed;
        ``None`` (the default) means: always redraw the whole figure."""
        return None

    def dynamic_artists(self) -> list[Artist]:
        """The artists an ordinary update changes (drawn over a cached background)."""
        return []

    def blit_artists(self) -> list[Artist]:
        return [artist for artist in (*self.dynamic_artists(), self._error) if artist is not None]


def static_figure(view_cls: type[View], params: dict[str, Any], **view_kwargs: Any) -> Figure:
    """The static twin: ``view_cls`` on a new (pyplot-detached) figure, shown once."""
    fig = plots.new_figure(view_cls.figsize)
    view_cls(fig, **view_kwargs).show(**params)
    return fig


def explorer_figure(figsize: tuple[float, float]) -> Figure:
    """A figure for an explorer: ipympl's widget canvas if that backend is active, else Agg."""
    with plt.ioff():
        fig = plt.figure(figsize=figsize, layout="constrained")
    if isinstance(fig.canvas, W.DOMWidget):          # ipympl: the canvas is a widget
        fig.canvas.header_visible = False
        return fig
    plt.close(fig)                                   # not managed by pyplot, never auto-shown
    FigureCanvasAgg(fig)                             # render off-screen whatever the backend
    return fig


def initial_values(fn: Callable, initial: dict[str, Any]) -> dict[str, Any]:
    """The static twin ``fn``'s keyword defaults (the single source of an explorer's initial
    values) overridden by ``initial``; unknown names raise ValueError."""
    defaults = {name: p.default for name, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}
    check_names(f"argument(s) of {fn.__name__}", initial, defaults)
    return {**defaults, **initial}


def _bounds(control: W.Widget) -> tuple[float, float]:
    if isinstance(control, W.FloatLogSlider):
        return control.base ** control.min, control.base ** control.max
    return control.min, control.max


def checked_controls(requested: dict[str, Any],
                     build: Callable[[], dict[str, W.ValueWidget]]) -> dict[str, W.ValueWidget]:
    """Build the controls; a requested initial value they cannot show is a ValueError.

    (ipywidgets would raise a TraitError for an unknown option and silently clamp a number
    outside a slider's range -- the explorer would then show something else than asked.)
    """
    try:
        controls = build()
    except TraitError as err:
        text = str(err)
        raise invalid("initial value", Described(text[:1].lower() + text[1:]), "one the control offers") from None
    for name, value in requested.items():
        control = controls.get(name)
        if control is not None and hasattr(control, "min") and not isinstance(value, bool) \
                and isinstance(value, (int, float, np.number)) and not math.isclose(control.value, value, rel_tol=1e-9):
            lo, hi = _bounds(control)
            raise invalid(name, value, f"a value in the explorer's range [{lo:g}, {hi:g}]")
    return controls


class Explorer:
    """Controls + a view + a display area. See the module docstring."""

    def __init__(self, view: View, controls: dict[str, W.ValueWidget], *, auto: bool = True,
                 panel: Optional[W.Widget] = None):
        """``auto``: update on every control change (else only via :meth:`update`); ``panel``:
        the box of controls to show (default: the controls in two columns)."""
        self.view = view
        view.frames = self
        self.figure = view.figure
        self._last_frame: Optional[float] = None      # when the last intermediate frame was pushed
        self._frame_cost = 0.0                         # and how long drawing and pushing it took
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
        check_names("control(s)", values, self.controls)
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
        self._last_frame = None
        try:
            self.view.show(**self.params())
        except ValueError as err:
            self.view.show_error(str(err))
        self.redraw()

    def frame_due(self, remaining: float, animation: bool = False) -> bool:
        """Whether a long update should show an intermediate frame now: the first one at once
        when ``remaining`` (estimated seconds) exceeds LONG_UPDATE (an ``animation``: always),
        then every FRAME_INTERVAL (ANIMATION_INTERVAL), or three frame costs if longer, unless
        the work left is shorter than a frame (the complete frame comes next anyway)."""
        if self._last_frame is None:
            return animation or remaining > LONG_UPDATE
        interval = ANIMATION_INTERVAL if animation else FRAME_INTERVAL
        return remaining > self._frame_cost and \
            time.perf_counter() - self._last_frame >= max(interval, 3 * self._frame_cost)

    def intermediate_frame(self, draw: Callable[[], None]) -> None:
        """``draw()`` the figure partway through an update and push it now (timed, see :meth:`frame_due`)."""
        start = time.perf_counter()
        draw()
        self.redraw(now=True)
        self._last_frame = time.perf_counter()
        self._frame_cost = self._last_frame - start

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
        frozen: it costs more than the drawing, blitting needs
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
        if self.figure.get_layout_engine() is not None:
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


def log_slider(value: float, lo: float, hi: float, description: str) -> W.FloatLogSlider:
    """A base-10 log slider over ``[lo, hi]`` (exponents in steps of 0.1)."""
    return W.FloatLogSlider(value=value, base=10, min=math.log10(lo), max=math.log10(hi), step=0.1,
                            description=description, readout_format=".3g", style=STYLE, layout=WIDE)


def steps_slider(value: int) -> W.IntSlider:
    """0 to 10 000 optimizer steps (the readout can be typed into for exact values)."""
    return W.IntSlider(value=value, min=0, max=10_000, step=10, description="steps", style=STYLE, layout=WIDE,
                       continuous_update=False)


def set_range(slider: W.FloatSlider, lo: float, hi: float, value: float) -> None:
    """Move a slider's range (in an order ipywidgets accepts) and its value."""
    if lo > slider.max:
        slider.max, slider.min = hi, lo
    else:
        slider.min, slider.max = lo, hi
    slider.step = (hi - lo) / 200
    slider.value = value


def decade_limits(values: Any) -> tuple[float, float]:
    """Log-axis limits: the whole decades around the finite positive ``values`` ((0.1, 10) if
    none). Snapped limits change rarely, so a live figure keeps its cached axes (blitting)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return 0.1, 10.0
    lo, hi = math.floor(math.log10(v.min())), math.ceil(math.log10(v.max()))
    return 10.0 ** lo, 10.0 ** max(hi, lo + 1)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k at least ``value`` (> 0): a linear axis's snapped top."""
    if not (value > 0 and math.isfinite(value)):
        return 1.0
    base = 10.0 ** math.floor(math.log10(value))
    return next(m * base for m in (1, 2, 5, 10) if m * base >= value * (1 - 1e-12))
