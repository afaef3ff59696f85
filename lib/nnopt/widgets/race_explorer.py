"""The training race: several optimizers training the MLP side by side (``training_race`` and
its static twin ``plot_training_race``). The training is a :class:`nnopt.race.Race`, which
remembers its lanes: moving one lane's slider trains that lane alone, fewer epochs cut the runs
already made, more epochs continue them; a long computation shows its curves as they grow."""
from __future__ import annotations

import math
import time
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Optional

import ipywidgets as W
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from .. import plots
from ..data import DataLike, check_batch_size
from ..experiments import DEFAULT_OPTIMIZERS, GOOD_LRS
from ..race import Race
from ..train import History
from ..validation import check_names
from .live import LiveCurves
from .view import (STYLE, WIDE, Explorer, View, checked_controls, explorer_figure, log_slider, optimizer_names,
                   static_figure)

__all__ = ["training_race", "plot_training_race", "TrainingRace"]

#: The race's default lanes: the comparison's optimizers at their good learning rates.
_RACE_DEFAULT_LRS = {name: hp["lr"] for name, hp in DEFAULT_OPTIMIZERS.values()}


class _RaceView(View):
    """Training loss and validation accuracy of every lane; built once, the curves updated in
    place (see :class:`~nnopt.widgets.live.LiveCurves`)."""

    def __init__(self, figure: Figure, data: DataLike | None = None, hidden: Sequence[int] = (64,)):
        super().__init__(figure)
        self.race = Race(data, hidden)
        self.axes = figure.subplots(1, 2)
        self.curves = LiveCurves(self.axes, ["train_loss", "val_acc"], slots=len(_RACE_DEFAULT_LRS))
        hidden_text = "-".join(map(str, self.race.hidden)) or "none"
        for ax, name in zip(self.axes, ("training loss", "validation accuracy")):
            ax.set_title(f"{name} (MLP, hidden {hidden_text}, relu)")
        self.histories: dict[str, History] = {}
        self.step_cost = 1e-4     # seconds per model and minibatch step: a first guess, then measured
        self._limits: Hashable = None

    def background_key(self) -> Optional[Hashable]:
        return (id(self), self._limits)

    def dynamic_artists(self) -> list[Artist]:
        return self.curves.artists()

    def draw(self, histories: Mapping[str, History], lrs: Mapping[str, float], epochs: int,
             grow: bool = False) -> None:
        """Curves of ``histories`` (possibly still growing: ``grow``) on an x axis of ``epochs`` epochs."""
        labelled = {f"{plots.display_name(n)}(lr={lrs[n]:.3g})": h for n, h in histories.items()}
        self._limits = self.curves.update(labelled, max(epochs, 1), grow)

    def _show(self, lrs, epochs, batch_size, live=False):
        lrs = dict(lrs if lrs is not None else _RACE_DEFAULT_LRS)
        if live:                                          # the run button: every lane trained again, live
            self.race = Race(self.race.data, self.race.hidden, self.race.seed)
        steps = math.ceil(self.race.n_samples / (check_batch_size(batch_size) or self.race.n_samples))
        work = self.race.pending(lrs, epochs, batch_size) * steps          # model-steps to train
        start = time.perf_counter()

        def on_epoch(histories: dict[str, History], epoch: int) -> None:
            self.histories = histories
            remaining = work * self.step_cost - (time.perf_counter() - start)
            self.progress(remaining, lambda: self.draw(histories, lrs, epochs, grow=True), animation=live)

        self.histories = self.race.run(lrs, epochs, batch_size, on_epoch=on_epoch)
        if work:
            self.step_cost = (time.perf_counter() - start) / work
        self.draw(self.histories, lrs, epochs)


def plot_training_race(lrs: Optional[Mapping[str, float]] = None, epochs: int = 10, batch_size: int = 32,
                       data: DataLike | None = None, hidden: Sequence[int] = (64,)) -> Figure:
    """Race several optimizers (``lrs``: name -> learning rate; default: SGD, momentum,
    Nesterov, AdaGrad, RMSProp, Adam) training the MLP on ``data`` (default: digits)."""
    return static_figure(_RaceView, dict(lrs=lrs, epochs=epochs, batch_size=batch_size), data=data, hidden=hidden)


class TrainingRace(Explorer):
    """:func:`plot_training_race` with a lane (checkbox + log lr slider) per optimizer of
    :func:`~nnopt.widgets.view.optimizer_names`; every change answers at once (lanes already run are
    remembered), and the run button trains all lanes again with the curves growing live."""

    def __init__(self, lrs: Optional[Mapping[str, float]] = None, epochs: int = 10, batch_size: int = 32,
                 data: DataLike | None = None, hidden: Sequence[int] = (64,), lanes: Optional[Sequence[str]] = None):
        lrs = dict(lrs if lrs is not None else _RACE_DEFAULT_LRS)
        lanes = optimizer_names() if lanes is None else tuple(lanes)
        check_names("lanes of lrs", lrs, lanes)
        check_batch_size(batch_size)
        controls: dict[str, W.ValueWidget] = {}
        rows = []
        for name in lanes:
            on = W.Checkbox(value=name in lrs, description=plots.display_name(name), indent=False,
                            layout=W.Layout(width="160px"))
            lr = log_slider(lrs.get(name, GOOD_LRS.get(name, 1e-3)), 1e-5, 10.0, "learning rate (log)")
            controls[f"{name}_on"], controls[f"{name}_lr"] = on, lr
            rows.append(W.HBox([on, lr]))
        controls["epochs"] = W.IntSlider(value=epochs, min=0, max=100, description="epochs", style=STYLE,
                                         layout=WIDE, continuous_update=False)
        controls["batch_size"] = W.Dropdown(options=sorted({1, 8, 32, 128, 512, batch_size}), value=batch_size,
                                            description="batch size", style=STYLE)
        checked_controls({**{f"{name}_lr": lr for name, lr in lrs.items()}, "epochs": epochs}, lambda: controls)
        self.lanes = tuple(lanes)
        self.button = W.Button(description="run race", icon="play", button_style="success")
        self.status = W.Label("")
        self._live = False
        half = (len(rows) + 1) // 2
        panel = W.VBox([W.HBox([W.VBox(rows[:half]), W.VBox(rows[half:])]),
                        W.HBox([controls["epochs"], controls["batch_size"], self.button, self.status])])
        super().__init__(_RaceView(explorer_figure(_RaceView.figsize), data, hidden), controls, panel=panel)
        self.button.on_click(lambda _: self.run())
        self.update()

    def params(self) -> dict[str, Any]:
        lrs = {n: self.controls[f"{n}_lr"].value for n in self.lanes if self.controls[f"{n}_on"].value}
        return {"lrs": lrs, "epochs": self.controls["epochs"].value,
                "batch_size": self.controls["batch_size"].value, "live": self._live}

    def run(self) -> None:
        """Train every lane again from the start, the curves growing live (the run button: a frame
        at once, then about ten a second, see ANIMATION_INTERVAL)."""
        self._live = True
        try:
            self.update()
        finally:
            self._live = False

    def update(self) -> None:
        """Show the race for the current lanes (training what is not known yet)."""
        self.button.disabled = True
        self.status.value = "training ..."
        try:
            super().update()
        finally:
            self.button.disabled = False
        histories = getattr(self.view, "histories", {})
        self.status.value = "; ".join(f"{plots.display_name(n)}: {h.message}" for n, h in histories.items())

    @property
    def histories(self) -> dict[str, History]:
        """The last race's History per optimizer."""
        return getattr(self.view, "histories", {})


def training_race(lrs: Optional[Mapping[str, float]] = None, epochs: int = 10, batch_size: int = 32,
                  data: DataLike | None = None, hidden: Sequence[int] = (64,)) -> TrainingRace:
    """Several optimizers training the MLP on digits side by side, a learning rate per optimizer,
    a run button and live curves (arguments as in :func:`plot_training_race`)."""
    return TrainingRace(lrs, epochs, batch_size, data, hidden)
