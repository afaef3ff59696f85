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
``plot_tracked``           loss and sharpness :math:`\lambda_{max}` against its stability limit
=========================  ===============================================================

Figures are created through pyplot (so whatever backend is active is set up, including the
inline backend's display hook) and then detached with ``plt.close(fig)``. In Jupyter a
returned figure therefore appears exactly once, as the value of the cell, and making many
figures in loops, tests or widgets does not pile up open figures. Every function also
takes ``ax=`` (or ``axes=``) to draw into an existing figure instead.

The trajectory figures live in :mod:`nnopt.surface_plots` (:class:`TrajectoryPlot` draws a
surface's contour once and then only moves line data), the shared colours and names in
:mod:`nnopt.figures`; both are importable from here too. :func:`draw_loss`,
:func:`draw_sharpness` and :func:`plot_tracked` draw the sharpness runs of :mod:`nnopt.stability`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figures import (DIVERGED_COLOR, diverged_note, display_name, figure_and_axes, log_scale_if_positive,
                      new_figure, optimizer_color)
from .surface_plots import TrajectoryPlot, log_levels, plot_trajectories
from .validation import Described, check_choice, check_int, check_names, invalid

__all__ = ["new_figure", "optimizer_color", "display_name", "DIVERGED_COLOR", "log_levels", "TrajectoryPlot",
           "plot_trajectories", "plot_history", "plot_lr_sweep", "plot_schedules", "plot_grad_norms",
           "plot_spectrum", "condition_number", "schedule_values", "draw_loss", "draw_sharpness", "plot_tracked"]


def _labelled(items: Any, label_of: Callable[[Any, int], str]) -> list[tuple[str, Any]]:
    """``(label, item)`` pairs from a mapping, a sequence, or a single item."""
    if isinstance(items, Mapping):
        return [(str(k), v) for k, v in items.items()]
    if isinstance(items, (list, tuple)):
        return [(label_of(item, i), item) for i, item in enumerate(items)]
    return [(label_of(items, 0), items)]


def _finish(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels (the y label says "log scale" when it is), title, grid and legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


# --------------------------------------------------------------------------- training curves
def _short_optimizer(history: Any, i: int) -> str:
    """``"Adam(lr=0.0031622776601683794, beta1=...)"`` -> ``"Adam(lr=0.00316)"`` (3 significant digits)."""
    text = getattr(history, "optimizer", "") or f"run {i}"
    match = re.match(r"\s*(\w+)\(lr=([^,)]*)", text)
    if not match:
        return text
    try:
        lr = f"{float(match.group(2)):.3g}"
    except ValueError:                                  # a schedule: its own short form
        lr = match.group(2)
    return f"{match.group(1)}(lr={lr})"


#: panel name -> (History fields drawn, y label); training solid, validation dashed
METRICS = {"loss": (("train_loss", "val_loss"), "loss (cross-entropy)"),
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
    check_choice("x", x, ("epoch", "step"))
    check_names("metrics", metrics, METRICS)
    if not metrics:
        raise invalid("metrics", metrics, f"a non-empty selection of {list(METRICS)}")
    runs = _labelled(histories, _short_optimizer)
    if axes is None:
        fig = new_figure((5.2 * len(metrics), 4.0))
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    elif len(axes) != len(metrics):
        raise invalid("axes", Described(f"{len(axes)} axes"), f"one axes per metric ({len(metrics)})")
    notes = []
    for i, (label, h) in enumerate(runs):
        color = optimizer_color(label.split("(")[0], i)
        xs = np.asarray(h.epoch_steps if x == "step" else np.arange(len(h.train_loss)), dtype=float)
        for ax, metric in zip(axes, metrics):
            fields, _ = METRICS[metric]
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
        fields, ylabel = METRICS[metric]
        ax.set_xlabel("optimizer step" if x == "step" else "epoch")
        if "loss" in metric:
            log_scale_if_positive(ax)
        ax.set_ylabel(ylabel + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.grid(alpha=0.3)
        styles = [Line2D([], [], color="0.4", ls="-", marker=".", label="training"),
                  Line2D([], [], color="0.4", ls="--", label="validation")] if len(fields) == 2 else []
        if handles:
            ax.legend(handles=handles + styles, fontsize=8)
        ax.set_title(title or f"{ylabel} during training")
    diverged_note(axes[0], notes)
    return axes[0].figure


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
        raise invalid("lrs", lrs, "a non-empty 1-D sequence of positive numbers")
    curves = list(final_losses.items()) if isinstance(final_losses, Mapping) else [("", final_losses)]
    flags = {} if diverged is None else dict(diverged.items()) if isinstance(diverged, Mapping) \
        else {"": diverged}
    fig, ax = figure_and_axes(ax, (6.4, 4.4))
    any_diverged = False
    for i, (label, values) in enumerate(curves):
        values = np.asarray(values, dtype=float)
        if values.shape != lrs.shape:
            raise invalid(label or "final_losses", Described(f"{values.size} values"),
                          f"one per learning rate: {lrs.size} learning rates")
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
    log_scale_if_positive(ax)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def _schedule_label(schedule: Any, i: int) -> str:
    """A function's name, else its ``str`` (nnopt schedules: their parameters to 3 digits)."""
    return getattr(schedule, "__name__", str(schedule))


def schedule_values(schedule: Union[Callable[[int], float], float], steps: int) -> np.ndarray:
    """``[lr(0), ..., lr(steps-1)]`` of a schedule (a constant is repeated)."""
    check_int("steps", steps, 1)
    if not callable(schedule):
        return np.full(steps, float(schedule))
    values = getattr(schedule, "values", None)
    return np.asarray(values(steps) if values else [schedule(t) for t in range(steps)], dtype=float)


def plot_schedules(schedules: Any, steps: int = 1000, *, ax: Optional[Axes] = None, log: bool = False,
                   title: str = "learning-rate schedules") -> Figure:
    r"""Learning rate :math:`\epsilon_t` against the step t for one or several schedules
    (callables ``t -> lr`` such as :mod:`nnopt.schedules`; a dict gives the labels)."""
    fig, ax = figure_and_axes(ax, (6.4, 4.0))
    for i, (label, schedule) in enumerate(_labelled(schedules, _schedule_label)):
        ax.plot(np.arange(steps), schedule_values(schedule, steps), lw=1.8, label=label, color=f"C{i}")
    if log:
        log_scale_if_positive(ax)
    _finish(ax, "step $t$", r"learning rate $\epsilon_t$", title)
    return fig


# --------------------------------------------------------------------------- gradients, curvature
def _norm_series(item: Any) -> np.ndarray:
    """Gradient norms of a History (per step), a Path (per point) or an array."""
    for attr in ("step_grad_norm", "grad_norms"):
        if hasattr(item, attr):
            return np.asarray(getattr(item, attr), dtype=float)
    values = np.asarray(item, dtype=float)
    if values.ndim != 1:
        raise invalid("gradient norms shape", values.shape, "1-D")
    return values


def plot_grad_norms(norms: Any, *, clip: Optional[float] = None, ax: Optional[Axes] = None,
                    colors: Optional[Sequence[str]] = None, title: str = "gradient norm per step") -> Figure:
    r""":math:`\|g_t\|` per step (log axis) for a History, a Path, an array, or a dict of
    them; ``clip`` draws the clipping threshold; ``colors`` override the optimizer colours.
    Non-finite norms are marked as divergence."""
    fig, ax = figure_and_axes(ax, (6.4, 4.0))
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
    log_scale_if_positive(ax)
    _finish(ax, "step", r"gradient norm $\|g\|$", title)
    diverged_note(ax, notes)
    return fig


def _eigenvalues(item: Any) -> np.ndarray:
    """Eigenvalues of a symmetric matrix, or a 1-D array taken as eigenvalues already."""
    arr = np.asarray(item, dtype=float)
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1]:
        if not np.isfinite(arr).all():
            raise invalid("matrix", Described("NaN or inf values"), "finite values")
        return np.linalg.eigvalsh(0.5 * (arr + arr.T))
    if arr.ndim == 1 and arr.size and np.isfinite(arr).all():
        return arr
    raise invalid("eigenvalues shape", arr.shape, "a square (Hessian) matrix or a 1-D array of eigenvalues")


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


# --------------------------------------------------------------------------- sharpness runs (nnopt.stability)
def draw_loss(ax: Axes, runs: Sequence[Any], title: str = "full-batch training loss", floor: float = 0.0) -> None:
    """Loss per step (log axis) of each :class:`nnopt.stability.TrackedRun`, minus ``floor``
    (the minimum, if known); a red cross where a run diverged."""
    for i, run in enumerate(runs):
        loss = np.asarray(run.history.step_loss, dtype=float) - floor
        ax.plot(np.arange(len(loss)), loss, color=f"C{i}", lw=1.2, label=run.label)
        if run.diverged and len(loss):
            ax.plot(len(loss) - 1, loss[-1], marker="x", ms=10, mew=2, color=DIVERGED_COLOR)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(("training loss - $L^*$" if floor else "training loss") + " (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def draw_sharpness(ax: Axes, runs: Sequence[Any], title: str = r"sharpness $\lambda_{max}$ vs its limit",
                   ylabel: str = r"$\lambda_{max}$") -> None:
    """Each run's sharpness trace (solid, dots) and its optimizer's stability limit (dashed)."""
    for i, run in enumerate(runs):
        ax.plot(run.steps, run.sharpness, marker=".", color=f"C{i}", lw=1.5, label=run.label)
        ax.plot(run.steps, run.limits, ls="--", color=f"C{i}", lw=1.2, label=f"limit {run.limit_label} = "
                f"{run.limits[-1]:.3g}" if len(run.limits) else "limit")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_tracked(runs: Any, title: str | None = None) -> Figure:
    """Two panels for runs of :func:`nnopt.stability.train_tracked` (one or a list): the loss per
    step, and the sharpness with each run's stability limit -- the edge-of-stability picture
    when the two meet."""
    runs = [runs] if hasattr(runs, "sharpness") else list(runs)
    if not runs:
        raise invalid("runs", runs, "at least one TrackedRun")
    fig = new_figure((11.0, 4.2))
    ax_loss, ax_sharp = fig.subplots(1, 2)
    draw_loss(ax_loss, runs)
    pre = any(run.preconditioned for run in runs)
    ylabel = r"$\lambda_{max}(D^{-1}H)$ (preconditioned)" if pre else r"$\lambda_{max}(H)$"
    draw_sharpness(ax_sharp, runs, ylabel=ylabel)
    if title:
        fig.suptitle(title)
    return fig
