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
from functools import lru_cache
from typing import Union

import numpy as np
import sklearn.datasets
from sklearn.model_selection import train_test_split

from .validation import Described, check_float_dtype, check_int, check_nonneg, check_number, invalid

__all__ = ["Split", "Dataset", "check_int", "check_x", "check_xy", "check_batch_size", "load_digits", "spirals",
           "moons", "minibatches", "splits_of", "training_set", "cached_digits", "DataLike"]

SeedLike = int | np.random.Generator | None
#: What the trainers accept as data: a Dataset, a Split, ``(X, y)`` or ``(X_train, y_train, X_val, y_val)``.
DataLike = Union["Dataset", "Split", tuple, list]


def check_x(X, n_features: int | None = None) -> np.ndarray:
    """Validate a design matrix: a finite 2-D float array (N, D), with D = ``n_features`` if given."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise invalid("X shape", X.shape, "2-D (n_samples, n_features)")
    if not np.issubdtype(X.dtype, np.floating):
        raise invalid("X dtype", X.dtype, "floats")
    if not np.isfinite(X).all():
        raise invalid("X", Described("NaN or inf values"), "finite values")
    if n_features is not None and X.shape[1] != n_features:
        raise invalid("X", Described(f"{X.shape[1]} features per sample"), f"{n_features}")
    return X


def check_xy(X, y, n_classes: int | None = None, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a design matrix and its labels; return them as arrays (no copy if possible).

    ``X`` as in :func:`check_x`, ``y`` a 1-D array of N integer class labels in
    ``[0, n_classes)``. Raises ``ValueError`` saying what is wrong.
    """
    X = check_x(X, n_features)
    y = np.asarray(y)
    if y.ndim != 1:
        raise invalid("y shape", y.shape, "1-D (n_samples,)")
    if len(y) != len(X):
        raise invalid("y", Described(f"{len(y)} labels"), f"one per sample: X has {len(X)} samples")
    if len(y) and not np.issubdtype(y.dtype, np.integer):
        raise invalid("y dtype", y.dtype, "integer class labels")
    if len(y) and n_classes is not None:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            raise invalid("labels", Described(f"values in [{lo}, {hi}]"), f"labels in [0, {n_classes - 1}]")
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
    check_number("val_fraction", val_fraction, 0.0, 1.0, low_open=True, high_open=True)
    check_number("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    if val_fraction + test_fraction >= 1.0:
        raise invalid("val_fraction + test_fraction", val_fraction + test_fraction, "a sum < 1")


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


def _check_toy_args(n: int, noise: float) -> None:
    check_int("n", n, 10)
    check_nonneg("noise", noise)


def load_digits(seed: int = 0, dtype=np.float32, val_fraction: float = 0.15,
                test_fraction: float = 0.15, standardize: bool = True) -> Dataset:
    """sklearn's 8x8 digits (1797 images, 64 pixel features in 0..16, 10 classes).

    The split is stratified and fixed by ``seed`` (default 70/15/15 %). With
    ``standardize=True`` each pixel becomes ``(x - mean_train) / std_train``; pixels that are
    constant on the training set keep scale 1.
    """
    X, y = sklearn.datasets.load_digits(return_X_y=True)
    return _split(X, y, n_classes=10, name="digits", seed=seed, dtype=check_float_dtype("dtype", dtype),
                  val_fraction=val_fraction, test_fraction=test_fraction, standardize=standardize)


@lru_cache(maxsize=1)
def cached_digits() -> Dataset:
    """:func:`load_digits` with its defaults, loaded once per session and shared by the
    explorers and experiments that default to digits (read it, do not modify its arrays)."""
    return load_digits()


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
    return _split(X, y, n_classes=n_classes, name="spirals", seed=seed, dtype=check_float_dtype("dtype", dtype),
                  val_fraction=val_fraction, test_fraction=test_fraction, standardize=False)


def moons(n: int = 600, noise: float = 0.15, seed: int = 0, dtype=np.float64,
          val_fraction: float = 0.2, test_fraction: float = 0.2) -> Dataset:
    """Two interleaving half circles (sklearn's ``make_moons``), ``n`` points in total."""
    _check_toy_args(n, noise)
    X, y = sklearn.datasets.make_moons(n_samples=n, noise=noise, random_state=seed)
    return _split(X, y, n_classes=2, name="moons", seed=seed, dtype=check_float_dtype("dtype", dtype),
                  val_fraction=val_fraction, test_fraction=test_fraction, standardize=False)


def check_batch_size(batch_size: int | None) -> int | None:
    """Return a valid batch size (an integer >= 1, or None for the full batch) or raise ValueError."""
    return None if batch_size is None else check_int("batch_size (or None for the full batch)", batch_size, 1)


def splits_of(data: DataLike) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray | None, np.ndarray | None]]:
    """``((X_train, y_train), (X_val, y_val))`` of a Dataset, a Split (no validation part:
    ``(None, None)``), an ``(X, y)`` pair or an ``(X_train, y_train, X_val, y_val)`` tuple.
    The kit's one reading of "data"; the arrays are not validated here (:func:`check_xy`)."""
    if isinstance(data, Dataset):
        return (data.X_train, data.y_train), (data.X_val, data.y_val)
    if isinstance(data, Split):
        return (data.X, data.y), (None, None)
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        return (data[0], data[1]), ((data[2], data[3]) if len(data) == 4 else (None, None))
    raise invalid("data", Described(type(data).__name__),
                  "a nnopt.data.Dataset, a Split, (X, y) or (X_train, y_train, X_val, y_val)")


def training_set(data: DataLike) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of the training part of ``data`` (see :func:`splits_of`), as arrays."""
    X, y = splits_of(data)[0]
    return np.asarray(X), np.asarray(y)


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
