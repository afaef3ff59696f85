"""Small classification data sets and a minibatch iterator.

Everything here is generated or ships with scikit-learn, so it works offline:

* :func:`load_digits` -- sklearn's bundled 8x8 handwritten digits (1797 images, 10 classes)
  with a fixed stratified train/val/test split, standardized with statistics of the
  *training* part only (the validation and test images never leak into the scaler);
* :func:`spirals` and :func:`moons` -- seeded 2-D toy sets whose decision boundaries can be
  drawn;
* :func:`minibatches` -- one epoch of shuffled ``(X_batch, y_batch)`` pairs.

A data set is a :class:`Dataset` of three :class:`Split` s (``train``, ``val``, ``test``);
``ds.X_train``, ``ds.y_val``, ... are shortcuts.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import sklearn.datasets
from sklearn.model_selection import train_test_split

__all__ = ["Split", "Dataset", "check_int", "check_x", "check_xy", "check_batch_size", "load_digits", "spirals", "moons", "minibatches"]

SeedLike = int | np.random.Generator | None


def check_int(name: str, value, minimum: int = 0) -> int:
    """``value`` as an int if it is an integer >= ``minimum`` (bools excluded), else ValueError
    naming ``name``. The kit's one check for counts, sizes and seeds."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_x(X, n_features: int | None = None) -> np.ndarray:
    """Validate a design matrix: a finite 2-D float array (N, D), with D = ``n_features`` if given."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"X must hold floats, got dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or inf values")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features per sample, expected {n_features}")
    return X


def check_xy(X, y, n_classes: int | None = None, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a design matrix and its labels; return them as arrays (no copy if possible).

    ``X`` as in :func:`check_x`, ``y`` a 1-D array of N integer class labels in
    ``[0, n_classes)``. Raises ``ValueError`` saying what is wrong.
    """
    X = check_x(X, n_features)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (n_samples,), got shape {y.shape}")
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels")
    if len(y) and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    if len(y) and n_classes is not None:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"labels must lie in [0, {n_classes - 1}], got values in [{lo}, {hi}]")
    return X, y


@dataclass(frozen=True)
class Split:
    """One part of a data set: inputs ``X`` (N, D) and integer labels ``y`` (N,)."""

    X: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        check_xy(self.X, self.y)

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    """A classification data set with fixed ``train``/``val``/``test`` splits.

    ``mean`` and ``scale`` are the per-feature standardization statistics (fitted on the
    training split) when the inputs were standardized, so ``X * scale + mean`` recovers
    the raw features (e.g. to show digit images); ``None`` otherwise.
    """

    train: Split
    val: Split
    test: Split
    n_classes: int
    name: str = "dataset"
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        for part in (self.train, self.val, self.test):
            check_xy(part.X, part.y, self.n_classes, self.n_features)

    @property
    def n_features(self) -> int:
        return self.train.X.shape[1]

    X_train = property(lambda self: self.train.X, doc="training inputs")
    y_train = property(lambda self: self.train.y, doc="training labels")
    X_val = property(lambda self: self.val.X, doc="validation inputs")
    y_val = property(lambda self: self.val.y, doc="validation labels")
    X_test = property(lambda self: self.test.X, doc="test inputs")
    y_test = property(lambda self: self.test.y, doc="test labels")

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)}, n_features={self.n_features}, n_classes={self.n_classes}, "
                f"dtype={self.train.X.dtype})")


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < frac < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {frac}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}")


def _split(X: np.ndarray, y: np.ndarray, *, n_classes: int, name: str, seed: int, dtype,
           val_fraction: float, test_fraction: float, standardize: bool) -> Dataset:
    """Stratified train/val/test split (fixed by ``seed``), optionally standardized on train."""
    _check_fractions(val_fraction, test_fraction)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_fraction, stratify=y, random_state=seed)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_fraction / (1.0 - test_fraction), stratify=y_rest, random_state=seed)
    mean = scale = None
    if standardize:
        mean = X_train.mean(axis=0)
        scale = X_train.std(axis=0)
        scale[scale == 0.0] = 1.0          # constant pixels (digit borders) stay 0 after centring
        X_train, X_val, X_test = ((A - mean) / scale for A in (X_train, X_val, X_test))
    cast = lambda A: np.ascontiguousarray(A, dtype=dtype)  # noqa: E731
    labels = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    return Dataset(
        train=Split(cast(X_train), labels(y_train)),
        val=Split(cast(X_val), labels(y_val)),
        test=Split(cast(X_test), labels(y_test)),
        n_classes=n_classes, name=name,
        mean=None if mean is None else cast(mean), scale=None if scale is None else cast(scale))


def _check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_toy_args(n: int, noise: float) -> None:
    check_int("n", n, 10)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")


def load_digits(seed: int = 0, dtype=np.float32, val_fraction: float = 0.15,
                test_fraction: float = 0.15, standardize: bool = True) -> Dataset:
    """sklearn's 8x8 digits (1797 images, 64 pixel features in 0..16, 10 classes).

    The split is stratified and fixed by ``seed`` (default 70/15/15 %). With
    ``standardize=True`` each pixel becomes ``(x - mean_train) / std_train``; pixels that are
    constant on the training set keep scale 1.
    """
    X, y = sklearn.datasets.load_digits(return_X_y=True)
    return _split(X, y, n_classes=10, name="digits", seed=seed, dtype=_check_dtype(dtype),
                  val_fraction=val_fraction, test_fraction=test_fraction, standardize=standardize)


def spirals(n: int = 600, noise: float = 0.2, seed: int = 0, n_classes: int = 2, turns: float = 1.5,
            dtype=np.float64, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Dataset:
    """Interleaved spirals in the plane, one arm per class (``n`` points in total).

    Point i of arm k sits at radius ``r = 4 t`` and angle ``2 pi (turns * t + k / n_classes)``
    with ``t`` uniform in (0.05, 1) (so ``turns`` revolutions, arms rotated evenly), plus
    Gaussian noise of standard deviation ``noise``. Not linearly separable: softmax regression
    fails, an MLP succeeds.
    """
    _check_toy_args(n, noise)
    check_int("n_classes", n_classes, 2)
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    t = rng.uniform(0.05, 1.0, size=n)
    angle = 2 * np.pi * (turns * t + y / n_classes)
    X = 4.0 * t[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    X += noise * rng.standard_normal(X.shape)
    return _split(X, y, n_classes=n_classes, name="spirals", seed=seed, dtype=_check_dtype(dtype),
                  val_fraction=val_fraction, test_fraction=test_fraction, standardize=False)


def moons(n: int = 600, noise: float = 0.15, seed: int = 0, dtype=np.float64,
          val_fraction: float = 0.2, test_fraction: float = 0.2) -> Dataset:
    """Two interleaving half circles (sklearn's ``make_moons``), ``n`` points in total."""
    _check_toy_args(n, noise)
    X, y = sklearn.datasets.make_moons(n_samples=n, noise=noise, random_state=seed)
    return _split(X, y, n_classes=2, name="moons", seed=seed, dtype=_check_dtype(dtype),
                  val_fraction=val_fraction, test_fraction=test_fraction, standardize=False)


def check_batch_size(batch_size: int | None) -> int | None:
    """Return a valid batch size (an integer >= 1, or None for the full batch) or raise ValueError."""
    return None if batch_size is None else check_int("batch_size (or None for the full batch)", batch_size, 1)


def minibatches(X, y, batch_size: int | None, seed: SeedLike = None, drop_last: bool = False,
                shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield one epoch of ``(X_batch, y_batch)`` pairs.

    ``batch_size=None`` gives the full batch (batch gradient descent). With ``shuffle`` the
    samples are permuted once per call using ``seed`` (an int for a reproducible order, or a
    ``np.random.Generator`` that advances, so successive epochs differ); the permuted copy is
    made once per epoch and batches are contiguous slices of it. The last, smaller batch is
    kept unless ``drop_last``.
    """
    X, y = check_xy(X, y)
    n = len(y)
    batch_size = check_batch_size(batch_size) or max(n, 1)
    if shuffle:
        order = np.random.default_rng(seed).permutation(n)
        X, y = X[order], y[order]
    stop = n - n % batch_size if drop_last else n
    # a generator expression, so bad arguments raise above, at the call, not at the first next()
    return ((X[start:start + batch_size], y[start:start + batch_size]) for start in range(0, stop, batch_size))
