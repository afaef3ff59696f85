"""Training curves drawn in place: :func:`nnopt.plots.plot_history`'s panels built once, then
updated on every frame (``Line2D.set_data``, snapped limits, one legend) -- so a training
explorer's frame is a blit of a few lines over cached axes, not a new figure."""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from .. import plots
from ..train import History
from ..validation import check_names
from .view import decade_limits

__all__ = ["LiveCurves"]

#: The panels of plot_history that show one History field (the field is the panel's name).
CURVES = tuple(name for name, (fields, _) in plots.METRICS.items() if fields == (name,))

class LiveCurves:
    """One panel per metric (``"train_loss"``, ``"val_acc"``, ...); lines for ``slots`` runs
    (more are added when a frame shows more runs).

    ``x="step"``: optimizer steps on the x axis and the noisy minibatch loss (faint) under the
    per-epoch training loss; ``x="epoch"``: epochs. Losses on a log axis (whole decades),
    accuracies on [0, 1]. A diverged run ends with a red cross and a note
    "label: diverged at step k" in the first panel.
    """

    def __init__(self, axes: Sequence[Axes], metrics: Sequence[str], slots: int = 0, x: str = "epoch"):
        check_names("metrics", metrics, CURVES)
        self.axes, self.metrics, self.x = list(axes), list(metrics), x
        self.runs: list[dict[str, list[Line2D]]] = []
        self._add_runs(slots)
        for ax, metric in zip(self.axes, self.metrics):
            loss = "loss" in metric
            if loss:
                ax.set_yscale("log")
            else:
                ax.set_ylim(0.0, 1.02)
            ax.set_xlabel("optimizer step" if x == "step" else "epoch")
            ax.set_ylabel(plots.METRICS[metric][1] + (" (log scale)" if loss else ""))
            ax.grid(alpha=0.3)
        self.note = self.axes[0].text(0.02, 0.98, "", transform=self.axes[0].transAxes, ha="left", va="top",
                                      color=plots.DIVERGED_COLOR, fontsize=9, zorder=10, visible=False,
                                      bbox=dict(facecolor="white", alpha=0.85, edgecolor=plots.DIVERGED_COLOR,
                                                boxstyle="round"))

    def _add_runs(self, n: int) -> None:
        """Lines for ``n`` more runs: minibatch loss (``x="step"``), per-epoch curve, divergence cross."""
        for _ in range(n):
            run: dict[str, list[Line2D]] = {"step": [], "epoch": [], "cross": []}
            for ax, metric in zip(self.axes, self.metrics):
                if self.x == "step" and metric == "train_loss":
                    run["step"].append(ax.plot([], [], alpha=0.25, lw=0.7)[0])
                run["epoch"].append(ax.plot([], [], marker=".")[0])
                run["cross"].append(ax.plot([], [], "x", ms=10, mew=2, color=plots.DIVERGED_COLOR)[0])
            self.runs.append(run)

    def update(self, histories: Mapping[str, History], x_max: float, grow: bool = False) -> Hashable:
        """Show ``histories`` (label -> History, possibly still growing) on x in [0, ``x_max``];
        returns the axes' limits (the figure's background changes only when they do).
        ``grow``: an intermediate frame -- loss axes only widen (no redrawn axes while curves grow)."""
        self._add_runs(len(histories) - len(self.runs))
        notes, handles, ys = [], [], {i: [] for i in range(len(self.axes))}
        for i, run in enumerate(self.runs):
            label, h = list(histories.items())[i] if i < len(histories) else (None, None)
            color = plots.optimizer_color(label.split("(")[0], i) if label else "k"
            if h is not None:
                handles.append(Line2D([], [], color=color, lw=2, label=label))
                if h.diverged:
                    notes.append(f"{label}: {h.message.split(':')[0]}")
            xs = np.asarray(h.epoch_steps if self.x == "step" else np.arange(len(h.train_loss)), dtype=float) \
                if h is not None else np.empty(0)
            for k, metric in enumerate(self.metrics):
                epoch, cross = run["epoch"][k], run["cross"][k]
                values = np.asarray(getattr(h, metric), dtype=float) if h is not None else np.empty(0)
                shown = h is not None and values.size > 0 and bool(np.isfinite(values).any())
                epoch.set_data(xs[:values.size], values)
                epoch.set(color=color, visible=shown)
                ys[k].append(values)
                if self.x == "step" and metric == "train_loss":
                    noisy = np.asarray(h.step_loss if h is not None else [], dtype=float)
                    run["step"][0].set_data(np.arange(1, noisy.size + 1), noisy)
                    run["step"][0].set(color=color, visible=h is not None)
                    ys[k].append(noisy)
                crossed = h is not None and h.diverged and values.size > 0
                cross.set_data(xs[values.size - 1:values.size] if crossed else [],
                               values[-1:] if crossed else [])
                cross.set_visible(crossed)
        self.note.set_text("\n".join(notes))
        self.note.set_visible(bool(notes))
        limits = []
        for k, (ax, metric) in enumerate(zip(self.axes, self.metrics)):
            ax.set_xlim(-0.02 * x_max if self.x == "step" else -0.2, x_max * 1.02 if self.x == "step" else x_max + 0.2)
            if "loss" in metric:
                lo, hi = decade_limits(np.concatenate(ys[k]) if ys[k] else [])
                if grow:
                    lo, hi = min(lo, ax.get_ylim()[0]), max(hi, ax.get_ylim()[1])
                ax.set_ylim(lo, hi)
            if handles:
                ax.legend(handles=handles, fontsize=8)
            elif ax.get_legend() is not None:
                ax.get_legend().remove()
            limits.append((ax.get_xlim(), ax.get_ylim()))
        return len(self.runs), tuple(limits)

    def artists(self) -> list[Artist]:
        """Everything :meth:`update` changes (drawn over the cached axes)."""
        lines = [line for run in self.runs for group in run.values() for line in group]
        legends = [ax.get_legend() for ax in self.axes if ax.get_legend() is not None]
        return [*lines, *legends, self.note]
