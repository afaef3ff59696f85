"""nnopt.data: digits split and standardization, toy sets, minibatch iterator, input checks."""
import numpy as np
import pytest
import sklearn.datasets

from nnopt import data


@pytest.fixture(scope="module")
def digits():
    return data.load_digits(seed=0)


def test_digits_split_sizes_dtype_and_stratification(digits):
    sizes = [len(digits.train), len(digits.val), len(digits.test)]
    assert sum(sizes) == 1797 and sizes == [1257, 270, 270]
    assert digits.n_classes == 10 and digits.n_features == 64
    assert digits.X_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    full = np.bincount(sklearn.datasets.load_digits().target) / 1797
    for part in (digits.train, digits.val, digits.test):
        share = np.bincount(part.y, minlength=10) / len(part)
        np.testing.assert_allclose(share, full, atol=0.01)      # stratified


def test_digits_standardized_on_train_only(digits):
    X = digits.X_train.astype(np.float64)
    varying = X.std(axis=0) > 0
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0)[varying], 1, atol=1e-4)
    assert np.all(X[:, ~varying] == 0)
    # validation statistics are NOT forced to 0/1 (no leak), but the raw pixels come back exactly
    assert abs(digits.X_val.mean(axis=0)).max() > 1e-3
    raw = data.load_digits(seed=0, dtype=np.float64, standardize=False)
    np.testing.assert_allclose(digits.X_val * digits.scale + digits.mean, raw.X_val, atol=1e-4)
    assert raw.mean is None and raw.X_train.max() == 16.0


def test_digits_split_is_fixed_by_seed():
    a, b, c = data.load_digits(seed=0), data.load_digits(seed=0), data.load_digits(seed=1)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train)
    assert data.load_digits(dtype=np.float64).X_train.dtype == np.float64


@pytest.mark.parametrize("make", [data.spirals, data.moons])
def test_toy_sets_are_seeded_balanced_2d(make):
    ds = make(n=300, noise=0.1, seed=3)
    assert ds.n_features == 2 and ds.n_classes == 2
    assert len(ds.train) + len(ds.val) + len(ds.test) == 300
    assert abs(np.mean(ds.y_train) - 0.5) < 0.02
    np.testing.assert_array_equal(ds.X_train, make(n=300, noise=0.1, seed=3).X_train)
    assert not np.array_equal(ds.X_train, make(n=300, noise=0.1, seed=4).X_train)


def test_spirals_geometry_without_noise():
    ds = data.spirals(n=400, noise=0.0, n_classes=3, turns=1.0)
    X = np.concatenate([ds.X_train, ds.X_val, ds.X_test])
    r = np.linalg.norm(X, axis=1)
    assert ds.n_classes == 3 and 0.19 < r.min() and r.max() <= 4.0
    # each arm is a curve: the angle (unwrapped along the radius) grows linearly with the radius
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    arm = X[y == 0][np.argsort(r[y == 0])]
    angle = np.unwrap(np.arctan2(arm[:, 1], arm[:, 0]))
    np.testing.assert_allclose(angle - angle[0], 2 * np.pi * (np.sort(r[y == 0]) - r[y == 0].min()) / 4, atol=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=5), "Invalid n: 5"), (dict(noise=-1.0), "noise"), (dict(noise=np.nan), "noise"),
    (dict(dtype=np.int32), "dtype"), (dict(val_fraction=0.0), "val_fraction"),
    (dict(val_fraction=0.5, test_fraction=0.5), "< 1"),
])
def test_toy_set_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.moons(**kwargs)


def test_spirals_needs_two_classes():
    with pytest.raises(ValueError, match="n_classes"):
        data.spirals(n_classes=1)


def test_minibatches_cover_every_sample_once():
    X = np.arange(20, dtype=float).reshape(10, 2)
    y = np.arange(10)
    batches = list(data.minibatches(X, y, 4, seed=0))
    assert [len(b) for _, b in batches] == [4, 4, 2]
    ys = np.concatenate([b for _, b in batches])
    assert sorted(ys) == list(range(10)) and not np.array_equal(ys, y)
    for Xb, yb in batches:                      # rows stay paired with their labels
        np.testing.assert_array_equal(Xb[:, 0], 2 * yb)
    assert [len(b) for _, b in data.minibatches(X, y, 4, seed=0, drop_last=True)] == [4, 4]
    assert [len(b) for _, b in data.minibatches(X, y, None)] == [10]


def test_minibatches_order_seeding():
    X, y = np.zeros((50, 1)), np.arange(50)
    order = lambda **kw: np.concatenate([b for _, b in data.minibatches(X, y, 8, **kw)])  # noqa: E731
    np.testing.assert_array_equal(order(shuffle=False), y)
    np.testing.assert_array_equal(order(seed=5), order(seed=5))
    rng = np.random.default_rng(5)
    first, second = order(seed=rng), order(seed=rng)          # a Generator advances: new epoch order
    np.testing.assert_array_equal(first, order(seed=5))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "8"])
def test_minibatches_bad_batch_size_raises_at_call(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        data.minibatches(np.zeros((4, 2)), np.zeros(4, dtype=int), batch_size)


@pytest.mark.parametrize("X, y, match", [
    (np.zeros(4), np.zeros(4, int), "2-D"),
    (np.zeros((4, 2), int), np.zeros(4, int), "floats"),
    (np.full((4, 2), np.nan), np.zeros(4, int), "NaN"),
    (np.zeros((4, 2)), np.zeros((4, 1), int), "1-D"),
    (np.zeros((4, 2)), np.zeros(3, int), r"Invalid y: 3 labels \(expected one per sample: X has 4 samples\)"),
    (np.zeros((4, 2)), np.zeros(4), "integer class labels"),
])
def test_check_xy_errors(X, y, match):
    with pytest.raises(ValueError, match=match):
        data.check_xy(X, y)


def test_check_xy_label_range_and_dataset_validation():
    with pytest.raises(ValueError, match=r"Invalid labels: values in \[0, 3\] \(expected labels in \[0, 2\]\)"):
        data.check_xy(np.zeros((4, 2)), np.array([0, 1, 2, 3]), n_classes=3)
    with pytest.raises(ValueError, match="features"):
        data.check_xy(np.zeros((4, 2)), np.zeros(4, int), n_features=3)
    good = data.Split(np.zeros((2, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="Invalid labels"):
        data.Dataset(good, good, data.Split(np.zeros((1, 2)), np.array([5])), n_classes=2)
