"""Minibatch training loop: :func:`fit` trains a model with an optimizer and returns a :class:`History`.

One step of ``fit`` is the lecture's inner loop::

    X_b, y_b  <- next minibatch (reshuffled every epoch)
    loss, g   <- model.loss_and_grads(X_b, y_b)        # backprop
    g         <- clip(g)                               # optional
    optimizer.step(model.params, g)                    # in place

``History`` records per step the minibatch loss, the learning rate used and the gradient
norm (before clipping), and per epoch the loss and accuracy on the whole training and
validation sets (entry 0 is the untrained model), plus wall-clock time. Evaluations run at
the optimizer's evaluation point (:func:`evaluation_point`): the parameters themselves,
except for Schedule-Free, whose model is the average x while gradients are taken at y; the
parameters are back at the training point after each evaluation (and after ``fit``).

Divergence is a result, not a crash: when the loss becomes NaN/inf, the gradient becomes
non-finite, or the loss explodes past ``divergence_factor`` times its initial value, the run
stops and ``History`` says so (``diverged``, ``diverged_at``, ``message``).
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .clipping import ClipSpec, clipper, global_norm
from .data import DataLike, check_batch_size, check_xy, minibatches, splits_of
from .validation import Described, check_choice, check_int, check_nonneg, check_number, invalid

__all__ = ["History", "StepInfo", "fit", "evaluation_point", "resolve_data", "explosion_limit", "explosion"]

MONITORS = ("val_loss", "val_acc", "train_loss", "train_acc")


@dataclass
class History:
    """Everything :func:`fit` measured. Step lists have one entry per optimizer step; epoch
    lists have ``1 + epochs completed`` entries, entry 0 being the model before training.

    Attributes
    ----------
    optimizer : ``repr`` of the optimizer (hyperparameters included).
    step_loss : objective on the minibatch, before the step.
    step_lr : learning rate the step used (follows a schedule).
    step_grad_norm : global L2 norm of the minibatch gradient, before clipping.
    train_loss, train_acc, val_loss, val_acc : per-epoch evaluation on the full splits
        (``nan`` when no validation data was given).
    epoch_steps : optimizer steps done at each evaluation (x axis to overlay on step curves).
    epoch_time : wall seconds since the start of ``fit`` at each evaluation.
    wall_time : total wall seconds of ``fit``.
    diverged, diverged_at, message : whether the run diverged and the index of the step at
        which that was detected (= the number of steps completed before it); ``message`` says
        why the run ended (e.g. ``"diverged at step 17: the minibatch loss became nan"``).
    stopped_early, best_epoch : early stopping (or a callback) ended the run; the epoch with
        the best monitored value.
    extra : free-form per-run records that callbacks may add (e.g. Hessian eigenvalues).
    """

    optimizer: str = ""
    step_loss: list[float] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)
    step_grad_norm: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epoch_steps: list[int] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    diverged: bool = False
    diverged_at: int | None = None
    message: str = ""
    stopped_early: bool = False
    best_epoch: int | None = None
    extra: dict[str, list] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return len(self.step_loss)

    @property
    def n_epochs(self) -> int:
        """Completed epochs."""
        return max(len(self.train_loss) - 1, 0)

    def summary(self) -> dict[str, Any]:
        """One row describing the run's outcome (final epoch values, best validation accuracy)."""
        final = lambda xs: xs[-1] if xs else math.nan  # noqa: E731
        return {
            "optimizer": self.optimizer, "epochs": self.n_epochs, "steps": self.n_steps,
            "train_loss": final(self.train_loss), "train_acc": final(self.train_acc),
            "val_loss": final(self.val_loss), "val_acc": final(self.val_acc),
            "best_val_acc": max(self.val_acc, default=math.nan),
            "wall_time": self.wall_time, "diverged": self.diverged, "diverged_at": self.diverged_at,
            "stopped_early": self.stopped_early, "message": self.message,
        }

    def to_rows(self, kind: str = "epoch", **labels: Any) -> list[dict[str, Any]]:
        """A tidy table: one dict per epoch (``kind="epoch"``) or per step (``kind="step"``),
        each carrying ``labels`` (e.g. ``optimizer="adam", seed=0``) as extra columns."""
        if kind == "epoch":
            return [{**labels, "epoch": e, "step": s, "time": t, "train_loss": tl, "train_acc": ta,
                     "val_loss": vl, "val_acc": va}
                    for e, (s, t, tl, ta, vl, va) in enumerate(zip(
                        self.epoch_steps, self.epoch_time, self.train_loss, self.train_acc,
                        self.val_loss, self.val_acc))]
        if kind == "step":
            return [{**labels, "step": i, "loss": l, "lr": r, "grad_norm": g}
                    for i, (l, r, g) in enumerate(zip(self.step_loss, self.step_lr, self.step_grad_norm))]
        raise invalid("kind", kind, "'epoch' or 'step'")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable unless callbacks stored arrays in ``extra``)."""
        return asdict(self)

    def extend(self, more: "History") -> None:
        """Append the run ``more``, a continuation from where this one ended (``fit`` called
        again on the same model and optimizer), as if both had been one ``fit`` call."""
        steps, seconds = self.n_steps, self.wall_time
        for name in ("step_loss", "step_lr", "step_grad_norm"):
            getattr(self, name).extend(getattr(more, name))
        for name in ("train_loss", "train_acc", "val_loss", "val_acc"):      # entry 0 repeats our last
            getattr(self, name).extend(getattr(more, name)[1:])
        self.epoch_steps.extend(s + steps for s in more.epoch_steps[1:])
        self.epoch_time.extend(t + seconds for t in more.epoch_time[1:])
        self.wall_time += more.wall_time
        self.diverged, self.stopped_early = more.diverged, more.stopped_early
        if more.diverged:
            self.diverged_at = steps + more.diverged_at
            reason = more.message.split(":", 1)[1] if ":" in more.message else ""
            self.message = f"diverged at step {self.diverged_at}:{reason}"
        else:
            self.message = more.message if more.stopped_early else \
                f"completed {self.n_epochs} epochs ({self.n_steps} steps)"


@dataclass
class StepInfo:
    """What a callback sees after each optimizer step. ``step`` is 0-based within this
    ``fit`` call, ``epoch`` 1-based; ``batch`` is the minibatch ``(X_b, y_b)`` just used.
    A callback returning ``True`` stops training (``History.stopped_early``)."""

    step: int
    epoch: int
    loss: float
    lr: float
    grad_norm: float
    model: Any
    optimizer: Any
    history: History
    batch: tuple[np.ndarray, np.ndarray]


def resolve_data(data: DataLike, model) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(X_train, y_train, X_val, y_val)`` of ``data`` (:func:`nnopt.data.splits_of`),
    validated against the model and cast to its dtype once."""
    dtype = getattr(model, "dtype", None)
    out = []
    for X, y in splits_of(data):
        if X is not None:
            X, y = check_xy(X, y, getattr(model, "n_classes", None), getattr(model, "n_features", None))
            X = X.astype(dtype, copy=False) if dtype is not None else X
        out += [X, y]
    if len(out[1]) == 0:
        raise invalid("training data", Described("0 samples"), "at least one sample (the data is empty)")
    return tuple(out)


def explosion_limit(initial_loss: float, divergence_factor: float | None) -> float:
    """The loss above which a run has diverged: ``divergence_factor * max(initial training
    loss, 1)``, or ``inf`` when ``divergence_factor`` is None (then only NaN/inf count)."""
    return math.inf if divergence_factor is None else divergence_factor * max(initial_loss, 1.0)


def explosion(loss: float, limit: float, what: str) -> str | None:
    """The divergence rule of :func:`fit` on a loss: None while ``loss < limit``, else why the
    run ends (``what`` names the loss), e.g. ``"the minibatch loss became nan"``."""
    if loss < limit:                                      # False for NaN
        return None
    why = "" if not math.isfinite(loss) else f" (above {limit:.4g}, the explosion threshold)"
    return f"{what} became {loss:.4g}{why}"


def progress_enabled(progress: bool | None) -> bool:
    """``progress=None`` means: on inside a Jupyter kernel, off elsewhere; the environment
    variable ``NNOPT_PROGRESS=0``/``1`` overrides the automatic choice."""
    if progress is not None:
        return bool(progress)
    env = os.environ.get("NNOPT_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    return _in_jupyter_kernel()


def _in_jupyter_kernel() -> bool:
    """True inside a running Jupyter kernel (merely importing ipykernel, as some libraries
    do, does not count)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


class _Monitor:
    """Early stopping bookkeeping: best value of one metric and epochs without improvement."""

    def __init__(self, metric: str, patience: int, min_delta: float, params: dict[str, np.ndarray]):
        self.metric, self.patience, self.min_delta = metric, patience, min_delta
        self.sign = 1.0 if metric.endswith("loss") else -1.0     # minimise losses, maximise accuracies
        self.params = params
        self.best = math.inf
        self.best_params: dict[str, np.ndarray] | None = None
        self.bad_epochs = 0

    def update(self, history: History) -> bool:
        """Record the newest epoch; return True when training should stop."""
        value = self.sign * getattr(history, self.metric)[-1]
        if value < self.best - self.min_delta:
            self.best, self.bad_epochs = value, 0
            history.best_epoch = len(history.train_loss) - 1
            self.best_params = {k: v.copy() for k, v in self.params.items()}
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self) -> None:
        for name, p in self.params.items():
            p[...] = self.best_params[name]


def evaluation_point(optimizer, params: dict[str, np.ndarray]) -> AbstractContextManager:
    """The optimizer's ``eval_point(params)`` hook (:meth:`nnopt.optimizer_base.Optimizer.eval_point`):
    ``params`` hold the point to evaluate inside it and the training point again after; a
    no-op for optimizers without the hook (e.g. a student's own class)."""
    hook = getattr(optimizer, "eval_point", None)
    return hook(params) if hook is not None else nullcontext()


def fit(model, optimizer, data, epochs: int = 10, batch_size: int | None = 32, *, seed: int | None = 0,
        shuffle: bool = True, drop_last: bool = False, clip: ClipSpec = None, patience: int | None = None,
        monitor: str = "val_loss", min_delta: float = 0.0, restore_best: bool = True,
        divergence_factor: float | None = 100.0, callbacks: Sequence[Callable[[StepInfo], bool | None]] = (),
        progress: bool | None = None) -> History:
    """Train ``model`` in place with ``optimizer`` for ``epochs`` passes over the training data.

    Parameters
    ----------
    model : an object with ``params`` (dict of arrays), ``loss_and_grads(X, y)`` and
        ``evaluate(X, y) -> (loss, accuracy)``, e.g. :class:`nnopt.models.MLP`.
    optimizer : an :mod:`nnopt.optimizers` instance (its step counter continues across calls).
    data : a :class:`~nnopt.data.Dataset` (trains on ``train``, evaluates on ``train`` and
        ``val``), a ``Split``, ``(X, y)`` or ``(X_train, y_train, X_val, y_val)``.
    epochs : passes over the training data (0 only evaluates the initial model).
    batch_size : minibatch size; ``None`` for full-batch gradient descent.
    seed : seeds the shuffling, so runs with the same seed see the same minibatch sequence.
    clip : ``None``, ``("norm", max_norm)``, ``("value", c)`` or a callable ``grads -> grads``.
    patience : early stopping: stop after ``patience`` epochs in which ``monitor``
        (``"val_loss"``, ``"val_acc"``, ``"train_loss"``, ``"train_acc"``) did not improve by
        more than ``min_delta``; with ``restore_best`` the best epoch's parameters are put back.
    divergence_factor : stop as diverged when a minibatch loss exceeds
        ``divergence_factor * max(initial training loss, 1)``; ``None`` checks only NaN/inf.
    callbacks : callables receiving a :class:`StepInfo` after each step; returning ``True`` stops.
    progress : tqdm progress bar over epochs; ``None`` = automatic (on in Jupyter, off
        elsewhere; ``NNOPT_PROGRESS=0`` silences it everywhere).

    Cost: one epoch is ``ceil(N / batch_size)`` forward+backward passes plus one forward pass
    over the training and validation sets (about 20 ms for the default MLP on digits).
    """
    if not (hasattr(optimizer, "step") and hasattr(optimizer, "current_lr")):
        raise invalid("optimizer", optimizer, "an nnopt optimizer such as nnopt.Adam(lr=1e-3) or "
                                              "nnopt.make_optimizer(name, lr=...)")
    check_int("epochs", epochs, 0)
    X, y, X_val, y_val = resolve_data(data, model)
    check_batch_size(batch_size)
    clip_step = clipper(clip)
    if divergence_factor is not None:
        check_number("divergence_factor", divergence_factor, 1.0, low_open=True)
    early = None
    if patience is not None:
        check_int("patience", patience, 1)
        check_choice("monitor", monitor, MONITORS)
        check_nonneg("min_delta", min_delta)
        if monitor.startswith("val") and X_val is None:
            raise invalid("monitor", monitor, "'train_loss' or 'train_acc' without validation data; "
                                              f"{monitor!r} needs validation data: pass a Dataset")
        early = _Monitor(monitor, patience, min_delta, model.params)
    callbacks = list(callbacks)
    if not all(callable(cb) for cb in callbacks):
        raise invalid("callbacks", callbacks, "a sequence of callables taking a StepInfo")

    history = History(optimizer=repr(optimizer))
    start = time.perf_counter()

    def evaluate() -> None:
        with evaluation_point(optimizer, model.params):     # Schedule-Free: its average x, not y
            loss, acc = model.evaluate(X, y)
            val_loss, val_acc = model.evaluate(X_val, y_val) if X_val is not None else (math.nan, math.nan)
        for name, value in (("train_loss", loss), ("train_acc", acc), ("val_loss", val_loss), ("val_acc", val_acc),
                            ("epoch_steps", history.n_steps), ("epoch_time", time.perf_counter() - start)):
            getattr(history, name).append(value)

    def end(reason: str, *, diverged: bool = False, early_stop: bool = False) -> None:
        history.message = reason
        history.diverged = diverged
        history.diverged_at = history.n_steps if diverged else None
        history.stopped_early = early_stop

    def exploded(loss: float, what: str) -> bool:
        """End the run as diverged if ``loss`` is NaN/inf or above the explosion threshold."""
        reason = explosion(loss, limit, what)
        if reason is not None:
            end(f"diverged at step {history.n_steps}: {reason}", diverged=True)
        return reason is not None

    rng = np.random.default_rng(seed)
    bar = None
    # Overflow to inf/NaN is detected and reported as divergence; numpy's warnings about it
    # would only add noise (and any stderr output fails an nbgrader test cell).
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        evaluate()
        if early is not None:
            early.update(history)                         # the untrained model is the first baseline
        limit = explosion_limit(history.train_loss[0], divergence_factor)
        if progress_enabled(progress) and epochs:
            from tqdm.auto import tqdm
            bar = tqdm(total=epochs, desc=type(optimizer).__name__, unit="epoch", leave=False)
        for epoch in range(1, epochs + 1):
            for batch in minibatches(X, y, batch_size, seed=rng, drop_last=drop_last, shuffle=shuffle):
                loss, grads = model.loss_and_grads(*batch)
                if exploded(loss, "the minibatch loss"):
                    break
                norm = None
                if clip_step is not None:
                    grads, norm = clip_step(grads)
                lr = optimizer.current_lr()
                try:
                    optimizer.step(model.params, grads)
                except FloatingPointError as err:      # nnopt.NonFiniteGradient
                    end(f"diverged at step {history.n_steps}: the gradient became non-finite ({err})", diverged=True)
                    break
                if norm is None:                        # the optimizer measured it while checking finiteness
                    norm = getattr(optimizer, "last_grad_norm", None)
                    norm = global_norm(grads) if norm is None else norm
                history.step_loss.append(loss)
                history.step_lr.append(lr)
                history.step_grad_norm.append(norm)
                if callbacks:
                    info = StepInfo(history.n_steps - 1, epoch, loss, lr, norm, model, optimizer, history, batch)
                    if any([bool(cb(info)) for cb in callbacks]):      # a list: every callback runs
                        end(f"stopped by a callback after step {history.n_steps - 1}", early_stop=True)
                        break
            if history.message:
                break
            evaluate()
            if bar is not None:
                bar.update()
                bar.set_postfix(loss=f"{history.train_loss[-1]:.4f}", val_acc=f"{history.val_acc[-1]:.3f}")
            if exploded(history.train_loss[-1], "the training loss"):
                break
            if early is not None and early.update(history):
                end(f"early stopping after epoch {epoch}: {monitor} did not improve for {patience} epochs",
                    early_stop=True)
                break
    if bar is not None:
        bar.close()
    if not history.message:
        history.message = f"completed {epochs} epochs ({history.n_steps} steps)"
    if early is not None and restore_best and early.best_params is not None and not history.diverged:
        early.restore()
        history.message += f"; restored the parameters of epoch {history.best_epoch}"
    history.wall_time = time.perf_counter() - start
    return history
