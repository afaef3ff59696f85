"""nnopt.momentum_map: the closed forms against matrices, simulations and nnopt's optimizers."""
from __future__ import annotations

import numpy as np
import pytest

import nnopt
from nnopt import momentum_map as mm

HS = np.linspace(0.01, 4.5, 120)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9, 0.99])
def test_spectral_radius_is_that_of_the_matrix(alpha, nesterov):
    closed = mm.spectral_radius(HS, alpha, nesterov)
    direct = [np.abs(np.linalg.eigvals(mm.iteration_matrix(h, alpha, nesterov))).max() for h in HS]
    assert np.allclose(closed, direct, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_eigencomponent_errors_follow_the_optimizer(nesterov):
    lam = np.array([0.5, 3.0, 20.0])
    H, x0 = np.diag(lam), np.array([1.0, -2.0, 0.5])
    lr, alpha, steps = 0.04, 0.7, 30
    opt = (nnopt.Nesterov if nesterov else nnopt.Momentum)(lr=lr, momentum=alpha)
    theta, trace = x0.copy(), [x0.copy()]
    for _ in range(steps):
        opt.step([theta], [H @ theta])
        v = opt.state_dict()["state"][0]["v"]
        trace.append(theta - alpha * v if nesterov else theta.copy())     # Nesterov stores theta + alpha v
    assert np.allclose(mm.eigencomponent_errors(lr, alpha, lam, x0, steps, nesterov), trace, rtol=1e-10, atol=1e-13)


def test_gradient_descent_and_critical_damping():
    assert np.allclose(mm.spectral_radius(HS, 0.0), np.abs(1 - HS))
    h = np.linspace(0.01, 1.0, 50)
    alpha = mm.critical_momentum(h)
    tr, det = mm.trace_det(h, alpha)
    assert np.allclose(tr ** 2, 4 * det)                                   # the two roots merge
    assert np.allclose(mm.spectral_radius(h, alpha), 1 - np.sqrt(h))
    for hi, ai in zip(h[::7], alpha[::7]):                                  # the fastest alpha for that h
        grid = np.linspace(0, 0.999, 2000)
        assert mm.spectral_radius(hi, grid).min() >= mm.spectral_radius(hi, ai) - 1e-9


def test_polyak_tuning_minimises_the_map():
    lam = np.linspace(1.0, 100.0, 30)
    lr, alpha, rate = mm.polyak_parameters(lam.min(), lam.max())
    assert np.isclose(mm.convergence_rate(lr, alpha, lam), rate) and np.isclose(rate, np.sqrt(alpha))
    lrs, alphas = np.linspace(0.002, 0.06, 120), np.linspace(0, 0.95, 120)
    assert mm.rate_map(lrs, alphas, lam).min() >= rate - 1e-9
    assert mm.rate_map(lrs, alphas, lam).shape == (len(alphas), len(lrs))


@pytest.mark.parametrize("lr, alpha", [(0.1, 0.0), (0.02, 0.9), (0.3, 0.5)])
def test_noise_floor_closed_form_lyapunov_and_simulation(lr, alpha):
    lam, sigma = 2.0, 1.0
    closed = mm.noise_floor(lr, alpha, lam, sigma)
    assert np.isclose(closed, mm.noise_floor_lyapunov(lr, alpha, lam, sigma), rtol=1e-10)
    rng, chains = np.random.default_rng(0), 4000
    x, v, samples = np.zeros(chains), np.zeros(chains), []
    for k in range(3000):
        v = alpha * v - lr * (lam * x + sigma * rng.standard_normal(chains))
        x = x + v
        if k >= 1000 and k % 50 == 0:
            samples.append(np.mean(x ** 2))
    assert abs(np.mean(samples) / closed - 1) < 0.05


def test_noise_floor_is_infinite_outside_the_stability_region():
    assert np.isinf(mm.noise_floor(1.0, 0.5, 4.0, 1.0))                  # h = 4 > 2(1 + 0.5)
    assert np.isinf(mm.noise_floor_lyapunov(1.0, 0.5, 4.0, 1.0))


@pytest.mark.parametrize("call, message", [
    (lambda: mm.spectral_radius(0.5, 1.0), "Invalid alpha: 1.0"),
    (lambda: mm.rate_map([0.1], [-0.1], [1.0]), "Invalid alpha"),
    (lambda: mm.convergence_rate(0.1, 0.5, [1.0, -2.0]), "Invalid eigenvalues"),
    (lambda: mm.critical_momentum(2.0), "Invalid h: 2.0"),
    (lambda: mm.polyak_parameters(10.0, 1.0), "Invalid lam_min: 10.0"),
    (lambda: mm.eigencomponent_errors(0.1, 0.5, [1.0], 1.0, -1), "Invalid steps: -1"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
