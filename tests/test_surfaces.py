"""Surfaces: derivatives by finite differences, minima, and the run() driver."""
from __future__ import annotations

import numpy as np
import pytest

import nnopt
from nnopt import surfaces

ALL = [surfaces.get(name) for name in surfaces.SURFACES] + [
    surfaces.Quadratic(condition=100, angle=25), surfaces.Rosenbrock(a=0.5, b=10),
    surfaces.Cliff(height=5, sharpness=8), surfaces.Plateau(width=1.3)]


def _probe_points(s, n=12, seed=0):
    (x0, x1), (y0, y1) = s.domain
    rng = np.random.default_rng(seed)
    pts = np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])
    return [*pts, s.start, *s.minima]


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1.0)


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_gradient_matches_central_differences(s):
    h = 1e-6
    for p in _probe_points(s):
        fd = np.array([(s.value(p + h * e) - s.value(p - h * e)) / (2 * h) for e in np.eye(2)])
        assert _rel(s.grad(p), fd) < 1e-6, (p, s.grad(p), fd)


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_hessian_matches_differences_of_the_gradient(s):
    h = 1e-6
    for p in _probe_points(s):
        fd = np.column_stack([(s.grad(p + h * e) - s.grad(p - h * e)) / (2 * h) for e in np.eye(2)])
        H = s.hessian(p)
        np.testing.assert_array_equal(H, H.T)
        assert _rel(H, fd) < 1e-6, (p, H, fd)


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_known_minima_are_stationary_with_positive_definite_hessian(s):
    assert s.minima
    for m in s.minima:
        assert np.linalg.norm(s.grad(m)) < 1e-8
        assert np.all(np.linalg.eigvalsh(s.hessian(m)) > 0)
    for q in s.saddles:
        eig = np.linalg.eigvalsh(s.hessian(q))
        assert np.linalg.norm(s.grad(q)) < 1e-12 and eig[0] < 0 < eig[1]


def test_value_accepts_grids_and_rejects_bad_points():
    s = surfaces.Himmelblau()
    X, Y = np.meshgrid(np.linspace(-5, 5, 7), np.linspace(-5, 5, 5))
    Z = s.value(np.stack([X, Y]))
    assert Z.shape == (5, 7) and Z[2, 3] == pytest.approx(s.value([0.0, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        s.value([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="Invalid surface: 'banana'"):
        surfaces.get("banana")
    with pytest.raises(ValueError, match="condition"):
        surfaces.Quadratic(condition=0.5)


def test_quadratic_condition_number_and_the_2_over_lambda_limit():
    s = surfaces.Quadratic(condition=25, angle=40)
    eig = np.linalg.eigvalsh(s.hessian([0.3, 0.1]))
    assert eig[-1] / eig[0] == pytest.approx(25)
    lam = eig[-1]
    assert surfaces.run(s, nnopt.SGD(1.9 / lam), steps=2000).values[-1] < 1e-8
    assert surfaces.run(s, nnopt.SGD(2.1 / lam), steps=2000).diverged_at is not None


def test_run_records_the_path_and_reports_divergence():
    s = surfaces.Quadratic(condition=10)
    path = surfaces.run(s, nnopt.SGD(0.05), steps=30)
    assert path.xy.shape == (31, 2) and path.values.shape == (31,) and path.grad_norms.shape == (31,)
    np.testing.assert_array_equal(path.xy[0], s.start)
    assert path.diverged_at is None and path.message == ""
    bad = surfaces.run(s, nnopt.SGD(10.0), steps=10_000)
    assert bad.diverged_at is not None and bad.message == f"diverged at step {bad.diverged_at}"
    assert len(bad.xy) == bad.diverged_at and np.all(np.isfinite(bad.xy))
    assert surfaces.run(s, nnopt.SGD(0.05), steps=0).xy.shape == (1, 2)
    with pytest.raises(ValueError, match="steps"):
        surfaces.run(s, nnopt.SGD(0.05), steps=-1)


def test_clipping_tames_the_cliff():
    cliff = surfaces.Cliff()
    wild = surfaces.run(cliff, nnopt.SGD(0.5), steps=40)
    tame = surfaces.run(cliff, nnopt.SGD(0.5), steps=40, clip=("norm", 1.0))
    jumps = lambda p: np.max(np.linalg.norm(np.diff(p.xy, axis=0), axis=1))
    assert jumps(wild) > 2.0          # flung off the cliff
    assert jumps(tame) <= 0.5 + 1e-12  # clipped: step <= lr * max_norm
    assert surfaces.run(cliff, nnopt.SGD(0.5), steps=40, clip=("value", 0.5)).diverged_at is None
    with pytest.raises(ValueError, match="clip"):
        surfaces.run(cliff, nnopt.SGD(0.5), clip=("median", 1.0))


def test_adaptive_methods_cross_the_plateau_sgd_does_not():
    s = surfaces.Plateau()
    sgd = surfaces.run(s, nnopt.SGD(0.1), steps=300)
    adam = surfaces.run(s, nnopt.Adam(lr=0.05), steps=300)
    assert sgd.values[-1] > 0.99 and adam.values[-1] < 0.01
