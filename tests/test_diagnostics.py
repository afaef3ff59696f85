"""nnopt.diagnostics: the smoothed loss, its relative scatter, and the update-to-weight ratio."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nnopt
from nnopt import diagnostics
from nnopt.data import load_digits
from nnopt.models import default_mlp
from nnopt.train import fit


def test_ema_is_bias_corrected():
    assert np.allclose(diagnostics.ema([3.0] * 10, beta=0.9), 3.0, rtol=1e-12)   # a constant is exact from step 1
    values = np.arange(1.0, 6.0)
    expected, m = [], 0.0
    for t, v in enumerate(values, start=1):
        m = 0.5 * m + 0.5 * v
        expected.append(m / (1 - 0.5**t))
    assert np.allclose(diagnostics.ema(values, beta=0.5), expected, rtol=1e-12)
    assert np.array_equal(diagnostics.ema(values, beta=0.0), values)


def test_wiggle_measures_relative_scatter_in_the_second_half():
    rng = np.random.default_rng(0)
    trend = np.linspace(2.0, 1.0, 4000)
    small = diagnostics.wiggle(trend * (1 + 0.01 * rng.standard_normal(4000)), beta=0.99)
    large = diagnostics.wiggle(trend * (1 + 0.1 * rng.standard_normal(4000)), beta=0.99)
    assert small == pytest.approx(0.01, rel=0.2) and large == pytest.approx(0.1, rel=0.2)
    assert diagnostics.wiggle(np.ones(10)) < 1e-15


@pytest.mark.parametrize("bad, message", [([], "Invalid values"), ([[1.0, 2.0]], "Invalid values")])
def test_ema_rejects_bad_series(bad, message):
    with pytest.raises(ValueError, match=message):
        diagnostics.ema(bad)


@pytest.mark.parametrize("beta", [1.0, -0.1, math.nan, True, "0.9"])
def test_bad_beta_is_rejected(beta):
    with pytest.raises(ValueError, match="Invalid beta"):
        diagnostics.ema([1.0, 2.0], beta=beta)


def test_wiggle_needs_a_few_values():
    with pytest.raises(ValueError, match="Invalid losses"):
        diagnostics.wiggle([1.0, 2.0, 3.0])


def test_update_ratio_equals_lr_grad_over_weights_for_sgd():
    data = load_digits(seed=0)
    model = default_mlp(seed=0)
    start = {k: v.copy() for k, v in model.params.items()}
    tracker = diagnostics.UpdateRatio(model)
    first_grads = []
    lr = 0.05

    def grads_of_first_step(info):
        if info.step == 0:
            first_grads.append({k: (start[k] - info.model.params[k]) / lr for k in start})

    fit(model, nnopt.SGD(lr), data, epochs=1, progress=False, callbacks=[tracker, grads_of_first_step])
    assert set(tracker.ratios) == set(model.params) and all(len(r) == 40 for r in tracker.ratios.values())
    g = first_grads[0]
    for name in ("W1", "W2"):
        expected = lr * np.linalg.norm(g[name]) / np.linalg.norm(start[name])
        assert tracker.ratios[name][0] == pytest.approx(expected, rel=1e-5)
    assert 0 < tracker.median("W1") < 1 and tracker.median("W1", start=20) > 0


def test_update_ratio_reports_nan_for_all_zero_weights_and_checks_arguments():
    model = default_mlp(seed=0)
    model.params["b1"][...] = 0.0                                   # biases start at zero: no scale
    tracker = diagnostics.UpdateRatio(model)
    data = load_digits(seed=0)
    fit(model, nnopt.SGD(0.1), data, epochs=1, progress=False, callbacks=[tracker])
    assert math.isnan(tracker.ratios["b1"][0]) and math.isfinite(tracker.ratios["b1"][1])
    with pytest.raises(ValueError, match="Invalid name"):
        tracker.median("W9")
    with pytest.raises(ValueError, match="Invalid start"):
        tracker.median("W1", start=10_000)
    with pytest.raises(ValueError, match="Invalid model"):
        diagnostics.UpdateRatio(object())
