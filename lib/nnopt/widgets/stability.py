r"""The stability explorer: full-batch training just below and above the limit
:math:`2/\lambda_{max}` (``stability_explorer`` and its static twin
``plot_stability_experiment``; the problems, sweeps and tracking are :mod:`nnopt.stability`)."""
from __future__ import annotations

from typing import Any

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure

from .. import plots
from ..optimizer_base import OPTIMIZERS
from ..stability import PROBLEM_NAMES, TrackedRun, get_problem, limit_label, limit_lr, lr_sweep, train_tracked
from ..validation import check_choice, check_positive
from .view import STYLE, WIDE, Explorer, View, checked_controls, explorer_figure, initial_values, static_figure

__all__ = ["stability_explorer", "plot_stability_experiment", "EXPLORER_OPTIMIZERS"]

#: The optimizers offered by the explorer (their limits are on the plain Hessian).
EXPLORER_OPTIMIZERS = ("sgd", "momentum", "nesterov")
LAMBDA0 = r"$\lambda_{max}(w_0)$"


class _StabilityView(View):
    """Left: final loss vs lr with the limit line; middle: loss curve; right: sharpness vs limit."""

    figsize = (14.0, 4.4)

    def __init__(self, figure: Figure):
        super().__init__(figure)
        self.ax_sweep, self.ax_loss, self.ax_sharp = figure.subplots(1, 3)
        self.run: TrackedRun | None = None

    def _show(self, problem, optimizer, lr_ratio):
        check_choice("optimizer", optimizer, EXPLORER_OPTIMIZERS)
        lr_ratio = check_positive("lr_ratio", lr_ratio)
        p = get_problem(problem)
        lr_star = limit_lr(problem, optimizer)
        lr = lr_ratio * lr_star
        self.run = run = train_tracked(p.model, (p.X, p.y), optimizer, p.steps, every=max(p.steps // 30, 1),
                                       lr=lr, label=f"lr = {lr:.3g}")
        outcome = run.message.split(":")[0] if run.diverged else "no divergence"
        for ax in (self.ax_sweep, self.ax_loss, self.ax_sharp):
            ax.clear()
        lrs, finals = lr_sweep(problem, optimizer)
        excess = "loss - $L^*$" if p.floor else "loss"
        # the excess loss can round to 0 or below when converged: keep it on the log axis
        plots.plot_lr_sweep(lrs, np.maximum(finals - p.floor, 1e-15), ax=self.ax_sweep,
                            ylabel=f"{excess} after {p.steps} steps",
                            title=f"{problem}: {plots.display_name(optimizer)}, lr sweep")
        formula = limit_label(OPTIMIZERS[optimizer], LAMBDA0)
        self.limit_line = self.ax_sweep.axvline(lr_star, color="black", ls="--",
                                                label=f"limit: lr = {formula} = {lr_star:.3g}")
        self.ax_sweep.axvline(lr, color=plots.DIVERGED_COLOR if run.diverged else "C2", lw=2,
                              label=f"this run: lr = {lr:.3g}")
        self.ax_sweep.legend(fontsize=7)
        plots.draw_loss(self.ax_loss, [run], title=f"lr = {lr_ratio:.3g} x limit: {outcome}", floor=p.floor)
        self.ax_loss.title.set_color(plots.DIVERGED_COLOR if run.diverged else "black")
        plots.draw_sharpness(self.ax_sharp, [run], title=r"sharpness $\lambda_{max}$ vs the limit")


def plot_stability_experiment(problem: str = "quadratic-like", optimizer: str = "sgd", lr_ratio: float = 1.1) -> Figure:
    r"""Full-batch training of a :func:`nnopt.stability.get_problem` with ``lr = lr_ratio`` times
    the limit at the start (:func:`nnopt.stability.limit_lr`, e.g. :math:`2/\lambda_{max}` for SGD).
    Left: the loss after the run for a sweep of learning rates, the limit as a dashed line;
    middle: this run's loss ("diverged at step k" in red when it does); right: its sharpness
    against the limit."""
    return static_figure(_StabilityView, dict(problem=problem, optimizer=optimizer, lr_ratio=lr_ratio))


def stability_explorer(**initial: Any) -> Explorer:
    r""":func:`plot_stability_experiment` with a problem menu, optimizer buttons and an lr slider
    in units of the limit (1.0 = exactly :math:`2/\lambda_{max}` for SGD); keyword arguments set
    the initial values and are checked like every explorer's."""
    d = initial_values(plot_stability_experiment, initial)
    controls = checked_controls(initial, lambda: {
        "problem": W.Dropdown(options=list(PROBLEM_NAMES), value=d["problem"], description="problem", style=STYLE),
        "optimizer": W.ToggleButtons(options=list(EXPLORER_OPTIMIZERS), value=d["optimizer"],
                                     description="optimizer", style=STYLE),
        "lr_ratio": W.FloatSlider(value=d["lr_ratio"], min=0.05, max=10.0, step=0.05, style=STYLE, layout=WIDE,
                                  description="lr / limit", readout_format=".2f", continuous_update=False),
    })
    explorer = Explorer(_StabilityView(explorer_figure(_StabilityView.figsize)), controls)
    explorer.update()
    return explorer
