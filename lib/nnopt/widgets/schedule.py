"""The schedule explorer: a learning-rate schedule's curve and what it does to minibatch SGD
(``schedule_explorer`` and its static twin ``plot_schedule_experiment``). Both runs -- the
schedule and the constant lr0 -- are trained as one batched computation
(:func:`nnopt.batched.fit_batched`, equal to two calls of ``fit``); a long one shows its
curves as they grow."""
from __future__ import annotations

import math
import time
from typing import Any

from collections.abc import Hashable
from typing import Optional

import ipywidgets as W
import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from .. import plots, schedules
from ..batched import fit_batched
from ..data import Dataset, cached_digits
from ..models import SoftmaxRegression
from ..optimizers import SGD
from ..train import History
from .live import LiveCurves
from .view import (STYLE, WIDE, Explorer, View, checked_controls, explorer_figure, initial_values, log_slider,
                   nice_ceiling, static_figure)

__all__ = ["schedule_explorer", "plot_schedule_experiment", "ScheduleExplorer"]


_SCHEDULE_L2 = 1e-2     # a regularised minimum: the minibatch noise does not vanish there
_REMEMBERED = 32        # trained settings a view keeps (a slider moved back answers at once)


def _softmax_regression(data: Dataset, seed: int) -> SoftmaxRegression:
    return SoftmaxRegression(data.n_features, data.n_classes, l2=_SCHEDULE_L2)


class _ScheduleView(View):
    """Left: lr per step (schedule vs constant lr0); right: the training loss of both runs.
    Built once; a change updates the lines in place (see :class:`~nnopt.widgets.live.LiveCurves`)."""

    def __init__(self, figure: Figure, data: Dataset | None = None):
        super().__init__(figure)
        self.data = cached_digits() if data is None else data
        self.ax_lr, self.ax_loss = figure.subplots(1, 2)
        self.lr_lines = [self.ax_lr.plot([], [], lw=1.8, color=f"C{i}")[0] for i in range(2)]
        self.ax_lr.set(xlabel="step $t$", ylabel=r"learning rate $\epsilon_t$", title="learning rate per step")
        self.ax_lr.grid(alpha=0.3)
        self.curves = LiveCurves([self.ax_loss], ["train_loss"], slots=2, x="step")
        self.step_cost = 2e-4     # seconds per minibatch step of both runs: a first guess, then measured
        self._limits: Hashable = None
        self.known: dict[tuple, list[History]] = {}    # runs already trained, by their settings (newest last)

    def background_key(self) -> Optional[Hashable]:
        return (id(self), self._limits)

    def dynamic_artists(self) -> list[Artist]:
        return [*self.lr_lines, self.ax_lr.get_legend(), self.ax_loss.title, *self.curves.artists()]

    def _show(self, schedule, lr0, drop, every, k, final_ratio, horizon, warmup_steps, epochs, batch_size):
        sched = schedules.build_schedule(schedule, lr0, drop=drop, every=every, k=k, final_ratio=final_ratio,
                                         horizon=horizon, warmup_steps=warmup_steps)
        runs = {f"constant(lr={lr0:.3g})": schedules.constant(lr0), str(sched): sched}
        total = max(epochs * math.ceil(len(self.data.train) / (batch_size or len(self.data.train))), 1)
        top = 0.0
        for line, (label, s) in zip(self.lr_lines, runs.items()):
            values = plots.schedule_values(s, total)
            line.set_data(np.arange(total), values)
            line.set_label(label)
            top = max(top, float(np.nanmax(values, initial=0.0)))
        self.ax_lr.set_xlim(-0.02 * total, total * 1.02)
        self.ax_lr.set_ylim(0.0, nice_ceiling(top * 1.05))
        self.ax_lr.legend(fontsize=8)
        self.ax_loss.set_title(f"SGD on softmax regression (L2 {_SCHEDULE_L2:g}), batch {batch_size}")
        start = time.perf_counter()

        def draw(histories: list[History], grow: bool = False) -> None:
            """The loss curves as far as they got, on the x range of the whole run."""
            limits = self.curves.update(dict(zip(runs, histories)), total, grow)
            self._limits = (limits, self.ax_lr.get_xlim(), self.ax_lr.get_ylim())

        def on_epoch(histories: list[History], epoch: int) -> None:
            if epoch < epochs:                             # the remaining time, from the pace so far
                remaining = (total - histories[0].n_steps) * self.step_cost - (time.perf_counter() - start)
                self.progress(remaining, lambda: draw(histories, grow=True))

        key = (repr(sched), lr0, epochs, batch_size)
        histories = self.known.pop(key, None)
        if histories is None:
            models = [_softmax_regression(self.data, 0) for _ in runs]
            histories = fit_batched(models, [SGD(lr=s) for s in runs.values()], self.data, epochs, batch_size,
                                    seed=0, on_epoch=on_epoch)
            if histories[0].n_steps:
                self.step_cost = (time.perf_counter() - start) / histories[0].n_steps
        self.known[key] = histories
        while len(self.known) > _REMEMBERED:
            del self.known[next(iter(self.known))]
        draw(histories)


def plot_schedule_experiment(schedule: str = "linear_decay", lr0: float = 1.0, drop: float = 0.5,
                             every: int = 100, k: float = 0.01, final_ratio: float = 0.01,
                             horizon: int = 400, warmup_steps: int = 0, epochs: int = 15,
                             batch_size: int = 32, data: Dataset | None = None) -> Figure:
    """Train L2-regularised softmax regression on ``data`` (default: digits) with minibatch SGD
    twice -- with the schedule (see :func:`nnopt.schedules.build_schedule`) and with the constant ``lr0`` -- and
    draw the learning rates and the training-loss curves. The minibatch gradient stays noisy at
    the minimum, so a constant lr leaves SGD bouncing on a noise floor; a decaying lr lets it
    settle."""
    return static_figure(_ScheduleView, dict(schedule=schedule, lr0=lr0, drop=drop, every=every, k=k,
                                       final_ratio=final_ratio, horizon=horizon, warmup_steps=warmup_steps,
                                       epochs=epochs, batch_size=batch_size), data=data)


class ScheduleExplorer(Explorer):
    """:func:`plot_schedule_experiment` with controls; parameters the chosen schedule does
    not use are disabled."""

    def __init__(self, data: Dataset | None = None, **initial: Any):
        d = initial_values(plot_schedule_experiment, initial)
        controls = checked_controls(initial, lambda: {
            "schedule": W.Dropdown(options=list(schedules.SCHEDULE_PARAMETERS), value=d["schedule"],
                                   description="schedule", style=STYLE),
            "lr0": log_slider(d["lr0"], 1e-4, 10.0, "initial lr ε₀ (log)"),
            "drop": W.FloatSlider(value=d["drop"], min=0.05, max=1.0, step=0.05, description="drop factor γ",
                                  style=STYLE, layout=WIDE),
            "every": W.IntSlider(value=d["every"], min=1, max=1000, description="drop every (steps)",
                                 style=STYLE, layout=WIDE, continuous_update=False),
            "k": log_slider(d["k"], 1e-5, 1.0, "decay rate k (per step, log)"),
            "final_ratio": log_slider(d["final_ratio"], 1e-4, 1.0, "final lr ε_τ / ε₀ (log)"),
            "horizon": W.IntSlider(value=d["horizon"], min=1, max=5000, description="horizon τ (steps)",
                                   style=STYLE, layout=WIDE, continuous_update=False),
            "warmup_steps": W.IntSlider(value=d["warmup_steps"], min=0, max=1000,
                                        description="warm-up (steps, 0 = none)", style=STYLE, layout=WIDE,
                                        continuous_update=False),
            "epochs": W.IntSlider(value=d["epochs"], min=0, max=100, description="epochs", style=STYLE,
                                  layout=WIDE, continuous_update=False),
            "batch_size": W.Dropdown(options=[1, 8, 32, 128, 512], value=d["batch_size"], description="batch size",
                                     style=STYLE),
        })
        super().__init__(_ScheduleView(explorer_figure(_ScheduleView.figsize), data), controls)
        controls["schedule"].observe(lambda change: self._enable(), names="value")
        self._enable()
        self.update()

    def _enable(self) -> None:
        used = schedules.SCHEDULE_PARAMETERS[self.controls["schedule"].value]
        for name in ("drop", "every", "k", "final_ratio", "horizon"):
            self.controls[name].disabled = name not in used


def schedule_explorer(data: Dataset | None = None, **initial: Any) -> ScheduleExplorer:
    """Choose a schedule and its parameters; see its lr curve and its effect on training
    (keyword arguments as in :func:`plot_schedule_experiment`)."""
    return ScheduleExplorer(data, **initial)

