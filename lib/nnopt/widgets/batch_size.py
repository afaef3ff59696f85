"""The batch-size explorer: minibatch gradients scattered around the full-batch gradient, and
their noise against the batch size (``batch_size_explorer``, ``plot_batch_size_experiment``);
the statistics are :class:`nnopt.experiments.GradientNoise`."""
from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any, Optional

import ipywidgets as W
import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from ..data import DataLike, cached_digits, training_set
from ..experiments import GradientNoise, minibatch_gradient_noise
from .view import STYLE, WIDE, Explorer, View, checked_controls, explorer_figure, initial_values, static_figure

__all__ = ["batch_size_explorer", "plot_batch_size_experiment"]


class _BatchSizeView(View):
    """Left: minibatch gradients around the full gradient; right: noise vs batch size.

    Everything that depends only on the model state (axes limits, the noise curve, legends)
    is drawn once per state; a new batch size moves the cloud, the ellipse and the marker.
    """

    def __init__(self, figure: Figure, data: DataLike | None = None):
        super().__init__(figure)
        self.data = data
        self.ax_cloud, self.ax_noise = figure.subplots(1, 2)
        self._noises: dict[int, GradientNoise] = {}
        self._state: Optional[tuple[int, int]] = None          # (epochs_trained, draws) drawn

    def _noise(self, epochs_trained: int) -> GradientNoise:
        """Per-example gradients are computed once per training state (digits: once per session)."""
        if epochs_trained not in self._noises:
            self._noises[epochs_trained] = minibatch_gradient_noise(self.data, epochs_trained)
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
                               data: DataLike | None = None) -> Figure:
    """Minibatch gradients of the MLP on ``data`` (default: digits) for one batch size, drawn
    around the full-batch gradient, and the relative noise against the batch size."""
    return static_figure(_BatchSizeView, dict(batch_size=batch_size, epochs_trained=epochs_trained, draws=draws),
                   data=data)


def batch_size_explorer(data: DataLike | None = None, **initial: Any) -> Explorer:
    """Noise of the minibatch gradient vs the batch size (keyword arguments as in
    :func:`plot_batch_size_experiment`)."""
    d = initial_values(plot_batch_size_experiment, initial)
    n = len(training_set(cached_digits() if data is None else data)[1])
    sizes = sorted({*(2 ** i for i in range(int(math.log2(n)) + 1)), n, int(d["batch_size"])})
    controls = checked_controls(initial, lambda: {
        "batch_size": W.SelectionSlider(options=sizes, value=int(d["batch_size"]), description="batch size B (log)",
                                        style=STYLE, layout=WIDE),
        "epochs_trained": W.Dropdown(options=sorted({0, 1, 5, 20, int(d["epochs_trained"])}),
                                     value=int(d["epochs_trained"]), description="epochs trained before",
                                     style=STYLE),
        "draws": W.IntSlider(value=d["draws"], min=10, max=1000, step=10, description="minibatches drawn",
                             style=STYLE, layout=WIDE, continuous_update=False),
    })
    explorer = Explorer(_BatchSizeView(explorer_figure(_BatchSizeView.figsize), data), controls)
    explorer.update()
    return explorer

