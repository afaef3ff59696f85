"""The training race: several optimizers training the same network side by side, one *lane*
each, as one batched computation (:func:`nnopt.batched.fit_batched`).

Every lane starts from the same seeded initialisation and sees the same minibatches: lane
``name`` with learning rate ``lr`` is exactly ``fit(MLP(..., seed=seed), make_optimizer(name,
lr=lr), data, epochs, batch_size, seed=seed)``. A :class:`Race` remembers its lanes, which is
what lets the race explorer answer at once: a lane already run is reused -- cut to fewer epochs
(a run of ``fit`` is a prefix of a longer one with the same seed) or continued for more --
and only new lanes are trained, together, in one batch.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .batched import fit_batched
from .data import DataLike, cached_digits, check_batch_size, training_set
from .models import MLP
from .optimizer_base import Optimizer, make_optimizer
from .train import History, explosion, explosion_limit
from .validation import check_int, invalid

__all__ = ["race", "Race", "first_epochs"]

LaneCallback = Callable[[dict[str, History], int], None]
#: Lanes a Race remembers (the least recently used are forgotten first).
REMEMBERED_LANES = 64


def first_epochs(history: History, epochs: int, divergence_factor: float | None = 100.0) -> History:
    """``history`` (of ``fit`` with this ``divergence_factor``) as it would have ended after
    ``epochs`` epochs -- ``fit(..., epochs=n)`` is a prefix of a longer run with the same seed:
    a copy, cut there unless the run ended earlier."""
    check_int("epochs", epochs)
    limit = explosion_limit(history.train_loss[0], divergence_factor)
    exploded_at_evaluation = history.diverged and history.diverged_at == history.epoch_steps[-1] and \
        explosion(history.train_loss[-1], limit, "the training loss") is not None
    if epochs > history.n_epochs or epochs == history.n_epochs and (not history.diverged or exploded_at_evaluation):
        return copy.deepcopy(history)
    steps = history.epoch_steps[epochs]
    cut = History(optimizer=history.optimizer, wall_time=history.epoch_time[epochs],
                  message=f"completed {epochs} epochs ({steps} steps)")
    for name in ("step_loss", "step_lr", "step_grad_norm"):
        setattr(cut, name, getattr(history, name)[:steps])
    for name in ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_steps", "epoch_time"):
        setattr(cut, name, getattr(history, name)[:epochs + 1])
    return cut


@dataclass
class _Lane:
    """A lane as far as it was run: its History, model, optimizer and minibatch generator."""

    history: History
    model: MLP
    optimizer: Optimizer
    rng: np.random.Generator

    def open(self, epochs: int) -> bool:
        """Whether ``epochs`` epochs need more training than this lane has had."""
        return epochs > self.history.n_epochs and not self.history.diverged


class Race:
    """Lanes on ``data`` (default: digits) with a relu MLP of ``hidden`` widths, initialised and
    shuffled with ``seed``; :meth:`run` trains what is missing and remembers it."""

    def __init__(self, data: DataLike | None = None, hidden: Sequence[int] = (64,), seed: int = 0):
        self.data = cached_digits() if data is None else data
        X, y = training_set(self.data)
        self.n_features = X.shape[1]
        self.n_classes = getattr(self.data, "n_classes", None) or int(y.max()) + 1
        self.n_samples, self.dtype = len(y), X.dtype
        self.hidden = tuple(check_int("hidden layer width", h, 1) for h in hidden)
        self.seed = check_int("seed", seed)
        self._lanes: OrderedDict[tuple, _Lane] = OrderedDict()

    def model(self) -> MLP:
        """A lane's network at the start (the same for every lane)."""
        return MLP(self.n_features, self.hidden, self.n_classes, dtype=self.dtype, seed=self.seed)

    def _key(self, name: str, lr: float, batch_size: int | None) -> tuple:
        return name, float(lr), batch_size

    def pending(self, lrs: Mapping[str, float], epochs: int, batch_size: int | None) -> int:
        """Model-epochs :meth:`run` would train for these lanes (0: all remembered)."""
        total = 0
        for name, lr in lrs.items():
            lane = self._lanes.get(self._key(name, lr, batch_size))
            total += epochs if lane is None else max(epochs - lane.history.n_epochs, 0) * lane.open(epochs)
        return total

    def run(self, lrs: Mapping[str, float], epochs: int = 10, batch_size: int | None = 32,
            on_epoch: LaneCallback | None = None) -> dict[str, History]:
        """Each lane's History after ``epochs`` epochs (``lrs``: optimizer name -> learning rate).
        Lanes not yet run as far are trained in one batch per starting epoch; ``on_epoch(histories,
        epoch)`` sees all lanes (remembered ones complete) after each epoch of that training."""
        if not lrs:
            raise invalid("lrs", dict(lrs), "at least one optimizer for the race")
        check_int("epochs", epochs)
        check_batch_size(batch_size)
        keys = {name: self._key(name, lr, batch_size) for name, lr in lrs.items()}
        new = {name: make_optimizer(name, lr=lr) for name, lr in lrs.items() if keys[name] not in self._lanes}
        for name, opt in new.items():                    # (all checked before anything is trained)
            self._lanes[keys[name]] = _Lane(History(), self.model(), opt, np.random.default_rng(self.seed))
        waiting: dict[int, list[str]] = {}
        for name, key in keys.items():
            self._lanes.move_to_end(key)
            lane = self._lanes[key]
            if lane.open(epochs) or name in new:
                waiting.setdefault(lane.history.n_epochs if name not in new else -1, []).append(name)
        while len(self._lanes) > max(REMEMBERED_LANES, len(keys)):
            self._lanes.popitem(last=False)

        def now(partial: dict[str, History]) -> dict[str, History]:
            """The lanes so far: those being trained from ``partial``, the others as run (if at all)."""
            return {name: partial.get(name) or first_epochs(self._lanes[key].history, epochs)
                    for name, key in keys.items() if name in partial or self._lanes[key].history.train_loss}

        for _, names in sorted(waiting.items()):
            self._advance([keys[n] for n in names], names, epochs, batch_size, now, on_epoch)
        return now({})

    def _advance(self, keys: list[tuple], names: list[str], epochs: int, batch_size: int | None,
                 now: Callable[[dict[str, History]], dict[str, History]], on_epoch: LaneCallback | None) -> None:
        """Train the lanes ``keys`` (all run equally far) up to ``epochs`` epochs, in one batch."""
        lanes = [self._lanes[key] for key in keys]
        done = lanes[0].history.n_epochs if lanes[0].history.train_loss else 0
        rng = copy.deepcopy(lanes[0].rng)                # lanes run equally far: equal generators
        before = [copy.deepcopy(lane.history) for lane in lanes]

        def joined(histories: list[History]) -> dict[str, History]:
            out = {}
            for name, old, more in zip(names, before, histories):
                out[name] = copy.deepcopy(old) if old.train_loss else more
                if old.train_loss:
                    out[name].extend(more)
            return out

        callback = None if on_epoch is None else lambda hs, e: on_epoch(now(joined(hs)), done + e)
        histories = fit_batched([lane.model for lane in lanes], [lane.optimizer for lane in lanes], self.data,
                                epochs - done, batch_size, seed=rng, on_epoch=callback)
        for lane, history in zip(lanes, joined(histories).values()):
            lane.history, lane.rng = history, copy.deepcopy(rng)


def race(lrs: Mapping[str, float], data: DataLike | None = None, epochs: int = 10, batch_size: int = 32,
         hidden: Sequence[int] = (64,), seed: int = 0, on_epoch: LaneCallback | None = None) -> dict[str, History]:
    """Train one MLP per optimizer (``lrs``: name -> learning rate) on ``data`` (default: digits),
    all from the same seeded initialisation and seeing the same minibatches, as one batched
    computation; ``on_epoch(histories, epoch)`` runs after the initial evaluation and after
    every epoch (live curves). Diverged runs drop out of the race."""
    return Race(data, hidden, seed).run(lrs, epochs, batch_size, on_epoch)
