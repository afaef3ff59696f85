"""The training race: several optimizers training the MLP side by side, live
(``training_race`` and its static twin ``plot_training_race``; the training is
:func:`nnopt.experiments.race`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import ipywidgets as W
from matplotlib.figure import Figure

from .. import plots
from ..data import DataLike, check_batch_size
from ..experiments import DEFAULT_OPTIMIZERS, GOOD_LRS, race
from ..train import History
from ..validation import check_names
from .view import LANES, STYLE, WIDE, Explorer, View, checked_controls, explorer_figure, log_slider, static_figure

__all__ = ["training_race", "plot_training_race", "TrainingRace"]

#: The race's default lanes: the comparison's optimizers at their good learning rates.
_RACE_DEFAULT_LRS = {name: hp["lr"] for name, hp in DEFAULT_OPTIMIZERS.values()}


class _RaceView(View):
    """Training loss and validation accuracy of every lane."""

    freeze_layout = False         # the first frame is empty; tick labels change as curves arrive

    def __init__(self, figure: Figure, data: DataLike | None = None, hidden: Sequence[int] = (64,)):
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


def plot_training_race(lrs: Optional[Mapping[str, float]] = None, epochs: int = 10, batch_size: int = 32,
                       data: DataLike | None = None, hidden: Sequence[int] = (64,)) -> Figure:
    """Race several optimizers (``lrs``: name -> learning rate; default: SGD, momentum,
    Nesterov, AdaGrad, RMSProp, Adam) training the MLP on ``data`` (default: digits)."""
    return static_figure(_RaceView, dict(lrs=lrs, epochs=epochs, batch_size=batch_size), data=data, hidden=hidden)


class TrainingRace(Explorer):
    """:func:`plot_training_race` with a lane (checkbox + log lr slider) per optimizer and a run
    button; the curves grow live, one epoch of every lane at a time."""

    def __init__(self, lrs: Optional[Mapping[str, float]] = None, epochs: int = 10, batch_size: int = 32,
                 data: DataLike | None = None, hidden: Sequence[int] = (64,), lanes: Sequence[str] = LANES):
        lrs = dict(lrs if lrs is not None else _RACE_DEFAULT_LRS)
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
                                         layout=WIDE)
        controls["batch_size"] = W.Dropdown(options=sorted({1, 8, 32, 128, 512, batch_size}), value=batch_size,
                                            description="batch size", style=STYLE)
        checked_controls({**{f"{name}_lr": lr for name, lr in lrs.items()}, "epochs": epochs}, lambda: controls)
        self.lanes = tuple(lanes)
        self.button = W.Button(description="run race", icon="play", button_style="success")
        self.status = W.Label("press 'run race' to train")
        half = (len(rows) + 1) // 2
        panel = W.VBox([W.HBox([W.VBox(rows[:half]), W.VBox(rows[half:])]),
                        W.HBox([controls["epochs"], controls["batch_size"], self.button, self.status])])
        view = _RaceView(explorer_figure(_RaceView.figsize), data, hidden)
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
                  data: DataLike | None = None, hidden: Sequence[int] = (64,)) -> TrainingRace:
    """Several optimizers training the MLP on digits side by side, a learning rate per optimizer,
    a run button and live curves (arguments as in :func:`plot_training_race`)."""
    return TrainingRace(lrs, epochs, batch_size, data, hidden)
