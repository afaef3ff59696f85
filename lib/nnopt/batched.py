r"""Train several models as one computation: :func:`fit_batched` is ``fit`` for a list of models.

``fit_batched(models, optimizers, data, ...)`` gives every model, optimizer and
:class:`~nnopt.train.History` what ``[fit(m, o, data, ...) for m, o in zip(models,
optimizers)]`` gives (the tests check each model against its own ``fit`` to 1e-10 in float64),
but the models are stacked on a leading axis (:class:`~nnopt.stacked.StackedMLP`) and each
step is one forward and backward pass for all of them:

* **the same minibatches**: each model's minibatch order is ``fit``'s for its seed (models with
  equal seeds share one minibatch, which then broadcasts over the model axis);
* **the optimizers' own math**: models whose optimizers differ only in the learning rate
  (same class, hyperparameters and step count) form a *group*, stepped at once by the
  readable ``_update(p, g, state, c)`` of the optimizer, on the group's slice of the stack
  with ``c["lr"]`` of shape (M, 1, 1) -- one learning rate (or schedule value) per model.
  A new optimizer plugs in unchanged: whether its ``_update`` broadcasts over the model axis
  is checked once, numerically (:func:`steps_a_stack`); if not, its model is stepped alone
  by its own ``step`` on views into the stack (so is an optimizer with ``nonfinite="skip"``);
* **divergence is per model**: ``fit``'s rule (:func:`nnopt.train.explosion`: a minibatch or
  training loss that is NaN/inf or above ``divergence_factor`` times the initial one, or a
  non-finite gradient) ends that model's run; it leaves the stack there, with the parameters
  and optimizer state ``fit`` would leave, and the others go on untouched.

Bad input is refused before anything changes (one validation style); an error during training
restores every optimizer's state, and models are written only when the run ends.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from .clipping import ClipSpec, clipper
from .data import DataLike, check_batch_size, minibatches
from .models import MLP
from .optimizer_base import Optimizer
from .stacked import StackedMLP
from .train import History, evaluation_point, explosion, explosion_limit, resolve_data
from .validation import Described, check_int, check_number, invalid

__all__ = ["fit_batched", "has_eval_point", "steps_a_stack"]

EpochCallback = Callable[[list[History], int], None]
#: A minibatch-order seed: an integer, None (fresh entropy) or a Generator (continues its sequence).
Seed = int | None | np.random.Generator
_PROBED: dict[tuple, bool] = {}


def steps_a_stack(optimizer: Optimizer, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether ``optimizer``'s readable ``_update`` steps two stacked models (parameters of
    ``shapes``, a bias as a (1, H) row, ``c["lr"]`` of shape (2, 1, 1)) exactly as two separate
    optimizers of its kind step them: three steps on random gradients, cached per optimizer
    class, hyperparameters and shapes. True for every optimizer whose update is elementwise;
    False without probing for one whose state is shaped per parameter (``state_shapes``)."""
    if type(optimizer).state_shapes is not Optimizer.state_shapes:
        return False                      # state shaped per parameter (Muon, Adafactor): steps alone
    hyper = {k: v for k, v in optimizer.hyperparams().items() if k != "lr"}
    key = (type(optimizer), repr(sorted(hyper.items())), tuple(shapes.items()))
    if key not in _PROBED:
        rng = np.random.default_rng(0)
        lrs = (1e-2, 3e-2)
        rows = {n: (1, *s) if len(s) == 1 else s for n, s in shapes.items()}
        P = {n: rng.standard_normal((2, *rows[n])) for n in shapes}
        alone = [({n: P[n][i].reshape(s) for n, s in shapes.items()}, type(optimizer)(**{**hyper, "lr": lr}))
                 for i, lr in enumerate(lrs)]
        P = {n: p.copy() for n, p in P.items()}
        stepper = type(optimizer)(**{**hyper, "lr": 1.0})
        state = {n: {slot: np.zeros_like(p) for slot in stepper.slots} for n, p in P.items()}
        try:
            for _ in range(3):
                G = {n: rng.standard_normal(p.shape) for n, p in P.items()}
                for i, (params, opt) in enumerate(alone):
                    opt.step(params, {n: G[n][i].reshape(s) for n, s in shapes.items()})
                stepper.t += 1
                c = stepper._coefficients(np.array(lrs).reshape(-1, 1, 1))
                for n in P:
                    stepper._update(P[n], G[n], state[n], c)
            _PROBED[key] = all(np.allclose(P[n][i].reshape(shapes[n]), params[n], rtol=1e-9, atol=1e-12)
                               for i, (params, _) in enumerate(alone) for n in shapes)
        except (TypeError, ValueError, IndexError):   # an update that cannot take an array of rates
            _PROBED[key] = False
    return _PROBED[key]


def has_eval_point(optimizer: Optimizer) -> bool:
    """Whether ``optimizer`` evaluates elsewhere than at its iterate (Schedule-Free's x): such a
    model steps alone, so its optimizer's own state says where to evaluate it."""
    return type(optimizer).eval_point is not Optimizer.eval_point


def _group_key(optimizer: Optimizer, shapes: dict[str, tuple[int, ...]], index: int) -> tuple:
    """Models whose optimizers have equal keys are stepped as one group (see the module docstring)."""
    if optimizer.nonfinite != "raise" or has_eval_point(optimizer) or not steps_a_stack(optimizer, shapes):
        return ("alone", index)
    saved = optimizer.state_dict()
    hyper = {k: v for k, v in optimizer.hyperparams().items() if k != "lr"}
    return ("group", type(optimizer), repr(sorted(hyper.items())), saved["t"], repr(sorted(saved["scalars"].items())))


def _check_pairs(models: list[MLP], optimizers: list[Optimizer]) -> None:
    if len(optimizers) != len(models):
        raise invalid("optimizers", Described(f"{len(optimizers)} optimizers"), f"{len(models)}, one per model")
    for what, items in (("models", models), ("optimizers", optimizers)):
        seen: dict[int, int] = {}
        for i, item in enumerate(items):
            if id(item) in seen:
                raise invalid(what, Described(f"the same object at positions {seen[id(item)]} and {i}"),
                              "a separate one per run (runs in one batch share no state)")
            seen[id(item)] = i
    for i, opt in enumerate(optimizers):
        if not isinstance(opt, Optimizer):
            raise invalid(f"optimizers[{i}]", opt, "an nnopt optimizer such as nnopt.Adam(lr=1e-3)")


def _seeds(seed: Seed | Sequence[Seed], n: int) -> list[Seed]:
    one = lambda s: s is None or isinstance(s, np.random.Generator) or isinstance(s, (int, np.integer))  # noqa: E731
    if one(seed) and not isinstance(seed, bool):
        seeds = [seed] * n
    elif isinstance(seed, Sequence) and not isinstance(seed, str) and len(seed) == n and all(map(one, seed)):
        seeds = list(seed)
    else:
        raise invalid("seed", seed, f"an integer, None, a numpy Generator, or a sequence of {n} of them "
                                    "(one per model)")
    return [check_int("seed", s) if isinstance(s, (int, np.integer)) else s for s in seeds]


class _Run:
    """One :func:`fit_batched` call: the stack, its optimizer groups, and the histories."""

    def __init__(self, models: list[MLP], optimizers: list[Optimizer], seeds: list[Seed]):
        self.stack = StackedMLP(models)                         # checks the architectures
        keys = [_group_key(opt, self.stack.shapes, i) for i, opt in enumerate(optimizers)]
        first = {key: i for i, key in reversed(list(enumerate(keys)))}
        order = sorted(range(len(models)), key=lambda i: first[keys[i]])      # a group's models side by side
        self.stack.select(order)
        self.models, self.optimizers, self.seeds = models, optimizers, seeds
        self.members = order                                   # stack position -> model index
        self.group = [first[keys[i]] for i in order]           # stack position -> group id
        self.steppers: dict[int, Optimizer | None] = {}
        self.state: dict[int, dict[str, dict[str, np.ndarray]]] = {}
        self.first_t: dict[int, int] = {}
        for gid in dict.fromkeys(self.group):
            lead = optimizers[gid]
            if keys[gid][0] == "alone":
                self.steppers[gid] = None                      # steps itself (public step) on views
                continue
            saved = lead.state_dict()
            stepper = self.steppers[gid] = type(lead)(**lead.hyperparams())
            stepper.load_state_dict({**saved, "labels": None, "state": None})
            self.first_t[gid] = stepper.t
            self.state[gid] = self._stacked_state(gid, stepper.slots)
        self.histories = [History(optimizer=repr(opt)) for opt in optimizers]
        self.final_params: dict[int, dict[str, np.ndarray]] = {}
        self.final_state: dict[int, dict[str, Any]] = {}
        self.start = time.perf_counter()

    # ----------------------------------------------------------------- the optimizer groups
    def _labels(self) -> list[str]:
        return [f"params[{name!r}]" for name in self.stack.shapes]        # as Optimizer.step names dict entries

    def _stacked_state(self, gid: int, slots: tuple[str, ...]) -> dict[str, dict[str, np.ndarray]]:
        """The group's optimizer state, stacked like the parameters (zeros for a fresh optimizer)."""
        members = [i for i, g in zip(self.members, self.group) if g == gid]
        saved = [self.optimizers[i].state_dict() for i in members]
        for i, sd in zip(members, saved):
            if sd["state"] is not None and sd["labels"] != self._labels():
                raise invalid(f"optimizers[{i}] state", sd["labels"], f"the arrays of this model, {self._labels()}; "
                                                                      "call reset() to start over")
        return {name: {slot: np.stack([np.zeros(self.stack.row_shape(name), self.stack.dtype) if sd["state"] is None
                                       else sd["state"][k][slot].reshape(self.stack.row_shape(name)) for sd in saved])
                       for slot in slots} for k, name in enumerate(self.stack.shapes)}

    def _runs(self) -> list[tuple[int, int, int]]:
        """``(group id, first, last + 1)`` of each group's positions in the stack."""
        runs: list[tuple[int, int, int]] = []
        for j, gid in enumerate(self.group):
            if runs and runs[-1][0] == gid:
                runs[-1] = (gid, runs[-1][1], j + 1)
            else:
                runs.append((gid, j, j + 1))
        return runs

    def step(self, grads: dict[str, np.ndarray], lrs: list[float]) -> None:
        """One optimizer step of every model in the stack (``lrs``: their learning rates now)."""
        for gid, lo, hi in self._runs():
            stepper = self.steppers[gid]
            if stepper is None:                                 # alone: the optimizer's own step
                shapes = self.stack.shapes
                self.optimizers[self.members[lo]].step(self.stack.model_params(lo),
                                                       {n: g[lo].reshape(shapes[n]) for n, g in grads.items()})
                continue
            stepper.t += 1
            c = stepper._coefficients(np.array(lrs[lo:hi], dtype=self.stack.dtype).reshape(-1, 1, 1))
            for name, P in self.stack.params.items():
                stepper._update(P[lo:hi], grads[name][lo:hi], self.state[gid][name], c)
            for i in self.members[lo:hi]:
                self.optimizers[i].t += 1                       # keeps current_lr() (schedules) in step

    def _optimizer_state(self, j: int) -> dict[str, Any] | None:
        """The state dict of stack position ``j``'s optimizer (None: its own state is the result)."""
        gid = self.group[j]
        stepper = self.steppers[gid]
        if stepper is None or stepper.t == self.first_t[gid]:
            return None                                         # unchanged since the start
        k = [p for p, g in enumerate(self.group) if g == gid].index(j)
        saved = self.optimizers[self.members[j]].state_dict()
        state = [{slot: a[k].reshape(shape).copy() for slot, a in self.state[gid][name].items()}
                 for name, shape in self.stack.shapes.items()]
        return {**saved, "t": stepper.t, "scalars": stepper.state_dict()["scalars"], "labels": self._labels(),
                "shapes": [list(shape) for shape in self.stack.shapes.values()], "state": state}

    # ----------------------------------------------------------------- ending runs
    def end(self, j: int, message: str, diverged: bool = True) -> None:
        """Stack position ``j``'s run ends: keep its results (written when the batch ends)."""
        i = self.members[j]
        h = self.histories[i]
        h.message, h.diverged = message, diverged
        h.diverged_at = h.n_steps if diverged else None
        h.wall_time = time.perf_counter() - self.start
        self.final_params[i] = {name: p.copy() for name, p in self.stack.model_params(j).items()}
        self.final_state[i] = self._optimizer_state(j)

    def leave(self, ended: np.ndarray) -> np.ndarray:
        """Remove the positions where ``ended`` is True from the stack; return the mask kept."""
        keep = ~ended
        for gid, lo, hi in self._runs():
            if gid in self.state:
                self.state[gid] = {name: {slot: a[keep[lo:hi]] for slot, a in slots.items()}
                                   for name, slots in self.state[gid].items()}
        self.stack.select(keep)
        self.members = [i for i, k in zip(self.members, keep) if k]
        self.group = [g for g, k in zip(self.group, keep) if k]
        return keep

    def finish(self, epochs: int) -> list[History]:
        """Write every model and optimizer; the histories in the models' order."""
        for j, i in enumerate(self.members):
            h = self.histories[i]
            self.end(j, f"completed {epochs} epochs ({h.n_steps} steps)", diverged=False)
        for i, model in enumerate(self.models):
            for name, p in self.final_params[i].items():
                model.params[name][...] = p
            if self.final_state[i] is not None:
                self.optimizers[i].load_state_dict(self.final_state[i])
        return self.histories


#: BLAS threads only spin on the small products of a stacked minibatch step: one thread is faster
#: (and leaves the other core to the figure), so :func:`fit_batched` runs with one.
_BLAS = ThreadpoolController()


def fit_batched(models: Sequence[MLP], optimizers: Sequence[Optimizer], data: DataLike, epochs: int = 10,
                batch_size: int | None = 32, *, seed: Seed | Sequence[Seed] = 0, shuffle: bool = True,
                drop_last: bool = False, clip: ClipSpec = None, divergence_factor: float | None = 100.0,
                on_epoch: EpochCallback | None = None) -> list[History]:
    """Train each model with its optimizer, as :func:`nnopt.train.fit` would, as one computation.

    ``models``: :class:`~nnopt.models.MLP` s of one architecture (L2 strengths may differ),
    trained in place; ``optimizers``: one fresh (or resumed) nnopt optimizer per model. ``seed``
    is one seed for all or one per model (each model sees ``fit``'s minibatches for its seed; a
    ``np.random.Generator`` is advanced in place, so a later call continues the sequence).
    ``epochs``, ``batch_size``, ``shuffle``, ``drop_last``, ``clip``, ``divergence_factor``: as
    in ``fit``. ``on_epoch(histories, epoch)`` runs after the evaluation of epoch 0 (the
    untrained models) and of every epoch (live curves; histories in the models' order).

    Returns one :class:`~nnopt.train.History` per model; times are those of the whole batch.
    """
    models, optimizers = list(models), list(optimizers)
    _check_pairs(models, optimizers)
    check_int("epochs", epochs)
    check_batch_size(batch_size)
    clip_step = clipper(clip)
    if divergence_factor is not None:
        check_number("divergence_factor", divergence_factor, 1.0, low_open=True)
    if on_epoch is not None and not callable(on_epoch):
        raise invalid("on_epoch", on_epoch, "a function (histories, epoch) -> None")
    seeds = _seeds(seed, len(models))
    run = _Run(models, optimizers, seeds)
    data = resolve_data(data, models[0])
    saved = [opt.state_dict() for opt in optimizers]
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"), \
                _BLAS.limit(limits=1, user_api="blas"):
            _train(run, data, epochs, batch_size, shuffle, drop_last, clip_step, divergence_factor, on_epoch)
    except BaseException:
        for opt, state in zip(optimizers, saved):       # nothing half-done survives an error
            opt.load_state_dict(state)
        raise
    return run.finish(epochs)


def _evaluate(run: _Run, X, y, X_val, y_val) -> None:
    """Append the epoch's evaluation to every running model's history, each model at its
    optimizer's evaluation point (:func:`nnopt.train.evaluation_point`), as ``fit`` does."""
    with ExitStack() as points:
        for j, i in enumerate(run.members):
            if has_eval_point(run.optimizers[i]):
                points.enter_context(evaluation_point(run.optimizers[i], run.stack.model_params(j)))
        losses, accs = run.stack.evaluate(X, y)
        val_losses, val_accs = run.stack.evaluate(X_val, y_val) if X_val is not None else ([math.nan] * len(losses),) * 2
    now = time.perf_counter() - run.start
    for j, i in enumerate(run.members):
        h = run.histories[i]
        for name, value in (("train_loss", losses[j]), ("train_acc", accs[j]), ("val_loss", val_losses[j]),
                            ("val_acc", val_accs[j]), ("epoch_steps", h.n_steps), ("epoch_time", now)):
            getattr(h, name).append(float(value) if name != "epoch_steps" else value)


def _end_exploded(run: _Run, losses: np.ndarray, limits: np.ndarray, what: str) -> np.ndarray:
    """End (``fit``'s rule) the runs whose loss exploded; their mask."""
    ended = ~(losses < limits)                          # NaN counts
    for j in np.flatnonzero(ended):
        h = run.histories[run.members[j]]
        run.end(j, f"diverged at step {h.n_steps}: {explosion(float(losses[j]), float(limits[j]), what)}")
    return ended


def _train(run: _Run, data, epochs, batch_size, shuffle, drop_last, clip_step, factor, on_epoch) -> None:
    X, y, X_val, y_val = data
    _evaluate(run, X, y, X_val, y_val)
    limits = np.array([explosion_limit(run.histories[i].train_loss[0], factor) for i in run.members])
    seeds = list(dict.fromkeys(run.seeds))
    rngs = [np.random.default_rng(s) for s in seeds]
    if on_epoch is not None:
        on_epoch(run.histories, 0)
    for epoch in range(1, epochs + 1):
        if not run.members:
            break
        epoch_batches = [minibatches(X, y, batch_size, seed=rng, drop_last=drop_last, shuffle=shuffle) for rng in rngs]
        for batches in zip(*epoch_batches):
            if len(seeds) == 1:
                Xb, yb = batches[0]
            else:                                       # each model its own minibatch: (M, B, D)
                which = [seeds.index(run.seeds[i]) for i in run.members]
                Xb, yb = np.stack([batches[k][0] for k in which]), np.stack([batches[k][1] for k in which])
            losses, grads = run.stack.loss_and_grads(Xb, yb)
            ended = _end_exploded(run, losses, limits, "the minibatch loss")
            norms = np.zeros(len(losses))
            if clip_step is not None:
                for j in np.flatnonzero(~ended):
                    clipped, norms[j] = clip_step({n: g[j].reshape(run.stack.shapes[n]) for n, g in grads.items()})
                    for n, g in clipped.items():
                        grads[n][j] = g.reshape(grads[n][j].shape)
            squares = sum(np.einsum("mij,mij->m", g, g) for g in grads.values())
            if clip_step is None:
                norms = np.sqrt(squares)
            for j in np.flatnonzero(~ended & ~np.isfinite(squares)):
                ended[j] = _end_nonfinite(run, j, grads)
            if ended.any():
                keep = run.leave(ended)
                losses, norms, limits = losses[keep], norms[keep], limits[keep]
                grads = {n: g[keep] for n, g in grads.items()}
                if not run.members:
                    break
            lrs = [run.optimizers[i].current_lr() for i in run.members]
            run.step(grads, lrs)
            for j, i in enumerate(run.members):
                h = run.histories[i]
                h.step_loss.append(float(losses[j]))
                h.step_lr.append(lrs[j])
                h.step_grad_norm.append(float(norms[j]))
        if not run.members:
            break
        _evaluate(run, X, y, X_val, y_val)
        train_losses = np.array([run.histories[i].train_loss[-1] for i in run.members])
        ended = _end_exploded(run, train_losses, limits, "the training loss")
        if ended.any():
            limits = limits[run.leave(ended)]
        if on_epoch is not None:
            on_epoch(run.histories, epoch)


def _end_nonfinite(run: _Run, j: int, grads: dict[str, np.ndarray]) -> bool:
    """Position ``j`` has a non-finite gradient norm: end its run as ``fit`` does, with the
    error its optimizer raises (asked of a fresh copy, so nothing is touched) -- unless the
    gradient is finite and only its square overflowed, or the optimizer skips such steps."""
    optimizer = run.optimizers[run.members[j]]
    mine = {n: g[j].reshape(run.stack.shapes[n]) for n, g in grads.items()}
    if optimizer.nonfinite != "raise" or all(np.isfinite(g).all() for g in mine.values()):
        return False
    fresh = copy.deepcopy(optimizer)
    try:
        fresh.step({n: p.copy() for n, p in run.stack.model_params(j).items()}, mine)
    except FloatingPointError as err:                  # nnopt.NonFiniteGradient
        h = run.histories[run.members[j]]
        run.end(j, f"diverged at step {h.n_steps}: the gradient became non-finite ({err})")
        return True
    raise RuntimeError(f"{optimizer!r} accepted a non-finite gradient")
