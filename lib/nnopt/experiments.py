"""The seed experiments: compare optimizers, sweep learning rates, compare schedules and batch
sizes, train a small ensemble -- each over several seeds, with tidy tables for the plots.

Every study builds a list of :class:`Config` (labels + optimizer factory + fit options) and
hands it to :func:`run`, which trains one fresh model per (config, seed) with
:func:`nnopt.train.fit`. For a given seed every config starts from the **same
initialisation** and sees the **same minibatch sequence**, so differences come from the
optimizer alone. The :class:`Results` it returns give

* ``rows()`` -- one dict per run and epoch (``kind="step"``: per step), the labels as columns;
* ``summary()`` -- one dict per config: final metrics as mean and std over seeds (std is the
  sample standard deviation, 0 for one seed), computed over the runs that did not diverge,
  plus the number of runs that diverged;
* ``curve(metric)`` / ``series(x, metric)`` -- arrays ready for ``plt.plot`` /
  :func:`nnopt.plots.plot_lr_sweep`.

A run takes about 0.1-0.2 s on one core with the defaults (digits, 64-unit MLP, batch 32, 5
epochs). Also here, for the explorers: :func:`race` (optimizers trained side by side as one
batched computation, :mod:`nnopt.race`) and :class:`GradientNoise` (the statistics of minibatch
gradients).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .data import Dataset, DataLike, cached_digits, check_batch_size, load_digits, training_set
from .models import MLP, default_mlp, flatten
from .optimizer_base import OPTIMIZERS, Optimizer, make_optimizer
from .race import race
from .schedules import default_schedules
from .train import History, fit, progress_enabled
from .validation import Described, check_choice, check_int, invalid

__all__ = ["LR_GRID", "RMSPROP_LR_GRID", "GOOD_LRS", "DEFAULT_OPTIMIZERS", "Config", "Run", "Results",
           "optimizer_factory", "default_model", "run", "compare_optimizers", "lr_sweep", "default_schedules",
           "schedule_comparison", "batch_size_study", "Ensemble", "ensemble", "race", "GradientNoise",
           "minibatch_gradient_noise"]

#: Learning rates of the seed experiments (in their order); sweeps run them sorted.
LR_GRID = (1e-4, 5e-3, 3e-3, 1e-3, 1e-2)
#: RMSProp's grid in the seed experiments (it needs much smaller rates).
RMSPROP_LR_GRID = (1e-5, 5e-5, 1e-4, 5e-4)

#: Learning rates that work for the default MLP on digits with batch 32 (see the LR sweeps of
#: lecture 06): the one table the comparisons, the training race and its explorer start from.
#: Lecture 09's optimizers (last five): the best rates of ``benchmarks/good_lrs.py``'s sweep
#: (results/good_lrs.md: 10 rates 1e-4..3, 3 seeds, 5 epochs, other hyperparameters at default).
GOOD_LRS: dict[str, float] = {"sgd": 0.1, "momentum": 0.03, "nesterov": 0.03, "adagrad": 0.03, "rmsprop": 1e-3,
                              "adam": 3e-3, "rmsprop_nesterov": 1e-3, "adadelta": 1.0, "adamax": 2e-3,
                              "lion": 1e-3, "schedulefree_sgd": 1.0, "schedulefree_adamw": 1e-2, "muon": 1e-2,
                              "adafactor": 3e-2}
#: The comparison's optimizers (label -> spec): the lecture's main six at their GOOD_LRS.
DEFAULT_OPTIMIZERS: dict[str, tuple[str, dict[str, float]]] = {
    label: (name, {"lr": GOOD_LRS[name]}) for label, name in (
        ("SGD", "sgd"), ("momentum", "momentum"), ("Nesterov", "nesterov"), ("AdaGrad", "adagrad"),
        ("RMSProp", "rmsprop"), ("Adam", "adam"))
}
SEEDS = (0, 1, 2)
EPOCHS = 5
BATCH_SIZE = 32
OptimizerSpec = str | tuple[str, Mapping[str, Any]] | Callable[[], Optimizer]
ModelFn = Callable[[Dataset, int], MLP]
FINAL_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "best_val_acc", "wall_time", "steps")


def optimizer_factory(spec: OptimizerSpec) -> Callable[[], Optimizer]:
    """A zero-argument function building a fresh optimizer from ``spec``: a name (``"adam"``,
    default hyperparameters), ``(name, {"lr": 1e-3, ...})`` or a callable returning an
    optimizer (needed for schedules: ``lambda: nnopt.SGD(lr=schedules.cosine(0.1, 500))``).
    The spec is checked now by building one optimizer."""
    if isinstance(spec, str):
        factory = lambda: make_optimizer(spec)  # noqa: E731
    elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], Mapping):
        factory = lambda: make_optimizer(spec[0], **spec[1])  # noqa: E731
    elif callable(spec) and not isinstance(spec, Optimizer):
        factory = spec
    else:
        raise invalid("optimizer spec", spec, "a name, (name, hyperparameters) or a function returning a fresh "
                                              "optimizer (not an optimizer instance, whose state runs would share)")
    probe = factory()
    if not isinstance(probe, Optimizer):
        raise invalid("optimizer factory result", probe, "an nnopt optimizer")
    return factory


def _label(spec: OptimizerSpec, factory: Callable[[], Optimizer]) -> str:
    """A readable default label: the name, ``name(lr=...)`` for a tuple spec, else the repr."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, tuple):
        return f"{spec[0]}(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in spec[1].items()) + ")"
    return repr(factory())


def default_model(data: Dataset, seed: int) -> MLP:
    """The kit's default MLP sized for ``data`` (64 relu units, He init, data dtype)."""
    return default_mlp(data.n_features, data.n_classes, dtype=data.X_train.dtype, seed=seed)


@dataclass(frozen=True)
class Config:
    """One setting of a study: ``labels`` (the table columns identifying it), how to build a
    fresh optimizer, and extra keyword arguments for :func:`nnopt.train.fit`."""

    labels: dict[str, Any]
    optimizer: Callable[[], Optimizer]
    fit_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """One trained model: its config's labels, the seed, the :class:`History` and the model."""

    labels: dict[str, Any]
    seed: int
    history: History
    model: MLP


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan, math.nan
    return float(values.mean()), (float(values.std(ddof=1)) if values.size > 1 else 0.0)


@dataclass
class Results:
    """All runs of a study, in config order then seed order."""

    runs: list[Run]

    def _groups(self) -> list[tuple[dict[str, Any], list[Run]]]:
        groups: dict[tuple, tuple[dict[str, Any], list[Run]]] = {}
        for r in self.runs:
            key = tuple(r.labels.items())
            groups.setdefault(key, (r.labels, []))[1].append(r)
        return list(groups.values())

    def rows(self, kind: str = "epoch") -> list[dict[str, Any]]:
        """Tidy table: one dict per run and epoch (or step), with the labels and the seed."""
        return [row for r in self.runs for row in r.history.to_rows(kind, **r.labels, seed=r.seed)]

    def summary(self) -> list[dict[str, Any]]:
        """One dict per config: ``runs``, ``diverged`` and ``<metric>_mean``/``<metric>_std`` of
        the final values over the seeds whose run did not diverge."""
        table = []
        for labels, runs in self._groups():
            finals = [r.history.summary() for r in runs if not r.history.diverged]
            row = {**labels, "runs": len(runs), "diverged": len(runs) - len(finals)}
            for metric in FINAL_METRICS:
                row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std([f[metric] for f in finals])
            table.append(row)
        return table

    def histories(self, **labels: Any) -> list[History]:
        """The histories of the runs whose labels include ``labels`` (e.g. ``optimizer="adam"``)."""
        return [r.history for r in self.runs if all(r.labels.get(k) == v for k, v in labels.items())]

    def curve(self, metric: str = "val_acc", **labels: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std over seeds of a per-epoch (``"val_acc"``, ``"train_loss"``, ...) or
        per-step (``"step_loss"``, ...) metric for the runs matching ``labels``. Runs that
        stopped early or diverged are padded with NaN (ignored by the mean)."""
        series = [getattr(h, metric) for h in self.histories(**labels)]
        if not series:
            raise invalid("labels", labels, "the labels of at least one run (no run matches)")
        length = max(map(len, series))
        stacked = np.full((len(series), length), np.nan)
        for i, s in enumerate(series):
            stacked[i, :len(s)] = s
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN column: no run reached that epoch
            return np.nanmean(stacked, axis=0), np.nanstd(stacked, axis=0)

    def series(self, x: str, metric: str = "val_loss_mean", by: str | None = None
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Pivot :meth:`summary` for plotting: sorted values of label ``x`` and, per value of label
        ``by`` (one unnamed curve if None), the ``metric`` column aligned with them (NaN where
        every run diverged). E.g. ``lrs, losses = res.series("lr", "train_loss_mean", by="optimizer")``."""
        table = self.summary()
        xs = np.array(sorted({row[x] for row in table}), dtype=float)
        curves: dict[str, np.ndarray] = {}
        for row in table:
            curve = curves.setdefault("" if by is None else str(row[by]), np.full(len(xs), np.nan))
            curve[np.searchsorted(xs, row[x])] = row[metric]
        return xs, curves


def run(configs: Sequence[Config], data: Dataset | None = None, seeds: Sequence[int] = SEEDS,
        model_fn: ModelFn = default_model, epochs: int = EPOCHS, batch_size: int | None = BATCH_SIZE,
        progress: bool | None = None, **fit_kwargs: Any) -> Results:
    """Train one fresh model per (config, seed) and collect the histories.

    ``data`` defaults to :func:`nnopt.data.load_digits`; ``model_fn(data, seed)`` builds the
    model (the seed fixes its initialisation, and ``fit`` uses it for the minibatch order);
    ``fit_kwargs`` (e.g. ``clip``, ``patience``) apply to every run, a config's own
    ``fit_kwargs`` override them. ``progress`` shows one bar over all runs (auto in Jupyter).
    """
    data = load_digits() if data is None else data
    if not isinstance(data, Dataset):
        raise invalid("data", Described(type(data).__name__), "a nnopt.data.Dataset, e.g. nnopt.data.load_digits()")
    seeds = [check_int("seed", s, 0) for s in seeds]
    if not seeds:
        raise invalid("seeds", seeds, "a non-empty sequence of integers")
    if not configs:
        raise invalid("configs", configs, "at least one config")
    check_batch_size(batch_size)
    bar = None
    if progress_enabled(progress):
        from tqdm.auto import tqdm
        bar = tqdm(total=len(configs) * len(seeds), desc="runs", leave=False)
    runs = []
    for config in configs:
        for seed in seeds:
            options = {"epochs": epochs, "batch_size": batch_size, **fit_kwargs, **config.fit_kwargs}
            model = model_fn(data, seed)
            history = fit(model, config.optimizer(), data, seed=seed, progress=False, **options)
            runs.append(Run(dict(config.labels), seed, history, model))
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return Results(runs)


def compare_optimizers(optimizers: Mapping[str, OptimizerSpec] | Sequence[OptimizerSpec] | None = None,
                       data: Dataset | None = None, **kwargs: Any) -> Results:
    """Several optimizers on the same data, initialisations and minibatches.

    ``optimizers``: a dict label -> spec (default :data:`DEFAULT_OPTIMIZERS`), or a list of
    specs (labelled automatically); see
    :func:`optimizer_factory` for specs. ``kwargs`` go to :func:`run` (``seeds``, ``epochs``,
    ``batch_size``, ``model_fn``, fit options). Labels: ``optimizer``.
    """
    optimizers = DEFAULT_OPTIMIZERS if optimizers is None else optimizers
    specs = optimizers.items() if isinstance(optimizers, Mapping) else [(None, spec) for spec in optimizers]
    configs = []
    for label, spec in specs:
        factory = optimizer_factory(spec)
        configs.append(Config({"optimizer": label or _label(spec, factory)}, factory))
    return run(configs, data, **kwargs)


def lr_sweep(optimizer: str | Sequence[str] = "adam", lrs: Sequence[float] | None = None,
             data: Dataset | None = None, hyperparams: Mapping[str, Any] | None = None, **kwargs: Any) -> Results:
    """Learning-rate sweep of one or several optimizers (by name; ``hyperparams`` fixes the
    others). ``lrs`` defaults to the seed experiments' grid: :data:`RMSPROP_LR_GRID` for
    RMSProp, :data:`LR_GRID` otherwise. Labels: ``optimizer``, ``lr``. Too large a rate shows
    up as ``diverged`` in the summary, not as an error.
    """
    names = [optimizer] if isinstance(optimizer, str) else list(optimizer)
    configs = []
    for name in names:
        key = check_choice("optimizer", name.lower(), sorted(OPTIMIZERS))
        grid = lrs if lrs is not None else RMSPROP_LR_GRID if key == "rmsprop" else LR_GRID
        grid = sorted(float(lr) for lr in grid)
        if not grid or not all(lr > 0 and math.isfinite(lr) for lr in grid):
            raise invalid("lrs", lrs, "a non-empty sequence of positive finite numbers")
        for lr in grid:
            spec = (key, {**(hyperparams or {}), "lr": lr})
            configs.append(Config({"optimizer": key, "lr": lr}, optimizer_factory(spec)))
    return run(configs, data, **kwargs)


def schedule_comparison(schedules: Mapping[str, Callable[[int], float]] | None = None, optimizer: str = "sgd",
                        lr0: float = 0.1, data: Dataset | None = None, hyperparams: Mapping[str, Any] | None = None,
                        **kwargs: Any) -> Results:
    """One optimizer (by name) under several learning-rate schedules. ``schedules`` defaults to
    :func:`default_schedules` (``lr0``, sized to the run's number of steps). Labels: ``schedule``.
    """
    data = load_digits() if data is None else data
    if schedules is None:
        batch = kwargs.get("batch_size", BATCH_SIZE) or len(data.train)
        steps = kwargs.get("epochs", EPOCHS) * math.ceil(len(data.train) / batch)
        schedules = default_schedules(lr0, max(steps, 1))
    bad = [label for label, s in schedules.items() if not callable(s)]
    if bad:
        raise invalid("schedules", bad, "callables t -> lr (these are not)")
    configs = [Config({"schedule": label},
                      optimizer_factory(lambda s=s: make_optimizer(optimizer, **{**(hyperparams or {}), "lr": s})))
               for label, s in schedules.items()]
    return run(configs, data, **kwargs)


def batch_size_study(batch_sizes: Sequence[int | None] = (8, 32, 128, None), optimizer: OptimizerSpec = ("sgd", {"lr": 0.1}),
                     data: Dataset | None = None, **kwargs: Any) -> Results:
    """The same optimizer with several minibatch sizes (``None`` = full batch). Labels:
    ``batch_size`` (the full batch as its number of samples). Per epoch small batches take
    more, noisier steps; compare the curves against ``step`` and ``time`` too (``rows()``)."""
    data = load_digits() if data is None else data
    factory = optimizer_factory(optimizer)
    configs = []
    for bs in batch_sizes:
        check_batch_size(bs)
        size = len(data.train) if bs is None else int(bs)
        configs.append(Config({"batch_size": size}, factory, {"batch_size": size}))
    return run(configs, data, **kwargs)


@dataclass
class Ensemble:
    """Independently initialised models whose predicted probabilities are averaged."""

    members: list[MLP]
    histories: list[History]

    def predict_proba(self, X) -> np.ndarray:
        return np.mean([m.predict_proba(X) for m in self.members], axis=0)

    def accuracy(self, X, y) -> float:
        return float(np.mean(self.predict_proba(X).argmax(axis=1) == np.asarray(y)))

    def rows(self, data: Dataset) -> list[dict[str, Any]]:
        """Validation and test accuracy of each member, their mean +/- std over members, and the
        ensemble's; every row has the columns ``model, val_acc, val_std, test_acc, test_std``
        (std is NaN for a single model)."""
        def row(name: str, model) -> dict[str, Any]:
            return {"model": name, "val_acc": model.accuracy(data.X_val, data.y_val), "val_std": math.nan,
                    "test_acc": model.accuracy(data.X_test, data.y_test), "test_std": math.nan}

        rows = [row(f"member {i}", m) for i, m in enumerate(self.members)]
        summary = {"model": f"members mean ({len(rows)})"}
        for split in ("val", "test"):
            summary[f"{split}_acc"], summary[f"{split}_std"] = _mean_std([r[f"{split}_acc"] for r in rows])
        return rows + [summary, row("ensemble (averaged probabilities)", self)]


def ensemble(n_models: int = 5, optimizer: OptimizerSpec = ("adam", {"lr": 3e-3}), data: Dataset | None = None,
             **kwargs: Any) -> Ensemble:
    """Train ``n_models`` models with seeds ``0 .. n_models-1`` (different initialisations and
    minibatch orders) and return them as an :class:`Ensemble`; ``kwargs`` go to :func:`run`."""
    check_int("n_models", n_models, 1)
    factory = optimizer_factory(optimizer)
    results = run([Config({"optimizer": _label(optimizer, factory)}, factory)], data, seeds=range(n_models),
                  **kwargs)
    return Ensemble([r.model for r in results.runs], [r.history for r in results.runs])


# --------------------------------------------------------------------------- the explorers' networks
def _mlp_for(data: DataLike, hidden: Sequence[int], seed: int) -> MLP:
    """A relu MLP with ``hidden`` layers sized for the training set of ``data``."""
    X, y = training_set(data)
    return MLP(X.shape[1], tuple(hidden), getattr(data, "n_classes", None) or int(y.max()) + 1, seed=seed)


# --------------------------------------------------------------------------- minibatch gradient noise
class GradientNoise:
    r"""Per-example gradients :math:`g_n` of a model on a data set, and the statistics of
    minibatch gradients :math:`g_B = \frac1B \sum_{n \in B} g_n` (B examples drawn without
    replacement) around the full-batch gradient :math:`g = \frac1N \sum_n g_n`:

    .. math:: \mathbb E\,\|g_B - g\|^2 = \frac{\operatorname{tr}\Sigma}{B}\,\frac{N-B}{N-1},
              \qquad \operatorname{tr}\Sigma = \frac1N \sum_n \|g_n - g\|^2

    -- the noise shrinks like :math:`1/\sqrt B` and vanishes at the full batch :math:`B=N`.
    """

    def __init__(self, model: Any, X: np.ndarray, y: np.ndarray):
        self.G = np.stack([flatten(model.loss_and_grads(X[n:n + 1], y[n:n + 1])[1])
                           for n in range(len(y))]).astype(np.float64)       # (N, P)
        self.N = len(y)
        self.g = self.G.mean(axis=0)
        centred = self.G - self.g
        self.trace = float(np.einsum("ij,ij->", centred, centred)) / self.N
        # the plane shown: the gradient direction and the noisiest direction orthogonal to it
        u1 = self.g / np.linalg.norm(self.g)
        rest = centred - np.outer(centred @ u1, u1)
        u2 = np.random.default_rng(0).standard_normal(self.G.shape[1])
        for _ in range(50):                                   # power iteration on rest^T rest
            u2 = rest.T @ (rest @ u2)
            u2 -= (u2 @ u1) * u1
            u2 /= np.linalg.norm(u2)
        self.basis = np.stack([u1, u2], axis=1)               # (P, 2), orthonormal
        self.projected = self.G @ self.basis                  # (N, 2)

    def _finite_population(self, batch_size) -> np.ndarray:     # (N - B) / (N - 1): without replacement
        return (self.N - np.asarray(batch_size, dtype=float)) / max(self.N - 1, 1)

    def expected_noise(self, batch_size: int | np.ndarray) -> np.ndarray:
        r""":math:`\sqrt{\mathbb E\|g_B - g\|^2} / \|g\|` (the relative noise) for batch sizes B."""
        var = self.trace / np.asarray(batch_size, dtype=float) * self._finite_population(batch_size)
        return np.sqrt(np.maximum(var, 0.0)) / np.linalg.norm(self.g)

    def sample(self, batch_size: int, draws: int, seed: int = 0) -> np.ndarray:
        """``draws`` minibatch gradients projected on the plane, in units of ``|g|``, shape (draws, 2)."""
        if not 1 <= check_int("batch size", batch_size, 1) <= self.N:
            raise invalid("batch size", batch_size, f"an integer in [1, {self.N}] (the training set size)")
        rng = np.random.default_rng(seed)
        idx = np.argsort(rng.random((check_int("draws", draws, 1), self.N)), axis=1)[:, :batch_size]
        return self.projected[idx].mean(axis=1) / np.linalg.norm(self.g)

    def covariance(self, batch_size: int) -> np.ndarray:
        """Covariance of the projected minibatch gradient (units of ``|g|``), shape (2, 2)."""
        centred = (self.projected - self.projected.mean(axis=0)) / np.linalg.norm(self.g)
        return centred.T @ centred / self.N / batch_size * self._finite_population(batch_size)


@lru_cache(maxsize=8)
def _noise_of_digits(epochs_trained: int, hidden: tuple[int, ...], seed: int) -> GradientNoise:
    return minibatch_gradient_noise(cached_digits(), epochs_trained, hidden, seed)


def minibatch_gradient_noise(data: DataLike | None = None, epochs_trained: int = 0, hidden: Sequence[int] = (64,),
                             seed: int = 0) -> GradientNoise:
    """:class:`GradientNoise` of the MLP (``hidden`` layer widths, relu) on ``data`` (default:
    digits, computed once per setting and session), after ``epochs_trained`` epochs of Adam
    (lr 1e-3, batch 32) from the seeded initialisation."""
    check_int("epochs_trained", epochs_trained)
    if data is None:
        return _noise_of_digits(epochs_trained, tuple(hidden), seed)
    model = _mlp_for(data, hidden, seed)
    if epochs_trained:
        fit(model, make_optimizer("adam", lr=1e-3), data, epochs=epochs_trained, batch_size=32, seed=seed,
            progress=False)
    return GradientNoise(model, *training_set(data))
