"""nnopt.tuning: grids widened until their best rate is inside, and the learning-rate range test."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nnopt
from nnopt import tuning
from nnopt.data import load_digits
from nnopt.models import default_mlp


def _parabola(best: float):
    """A score with its minimum at lr = best (in log space), recording every call."""
    calls: list[float] = []

    def score(lr: float) -> float:
        calls.append(lr)
        return (math.log10(lr) - math.log10(best)) ** 2

    return score, calls


def test_interior_grid_is_not_widened():
    score, calls = _parabola(1e-2)
    search = tuning.widen_until_interior(score, [1e-3, 1e-2, 1e-1])
    assert search.best_lr == 1e-2 and search.interior and search.added == ()
    assert sorted(calls) == [1e-3, 1e-2, 1e-1]                      # each rate evaluated once


@pytest.mark.parametrize("best, direction", [(10.0, "up"), (1e-6, "down")])
def test_widens_towards_the_edge_holding_the_best(best, direction):
    score, calls = _parabola(best)
    search = tuning.widen_until_interior(score, np.array([1e-3, 1e-2, 1e-1]), factor=10.0, max_added=10)
    assert search.interior and math.isclose(search.best_lr, best, rel_tol=1e-9)
    assert list(search.lrs) == sorted(search.lrs) and len(calls) == len(set(calls)) == len(search.lrs)
    added = np.array(search.added)
    assert np.all(np.diff(added) > 0) if direction == "up" else np.all(np.diff(added) < 0)
    # one rate beyond the best, and no more
    assert (search.lrs[-1] if direction == "up" else search.lrs[0]) == pytest.approx(
        best * 10 if direction == "up" else best / 10)


def test_margin_two_looks_past_a_second_dip():
    scores = {1.0: 5.0, 10.0: 1.0, 30.0: 3.0, 300.0: 0.5}        # a local dip at 10, the real one at 300

    def bumpy(lr):
        return scores.get(lr, 9.0)

    one = tuning.widen_until_interior(bumpy, [1.0, 10.0, 30.0], factor=10.0, margin=1)
    two = tuning.widen_until_interior(bumpy, [1.0, 10.0, 30.0], factor=10.0, margin=2)
    assert one.best_lr == 10.0 and one.interior and one.added == ()
    assert two.best_lr == 300.0 and two.interior and two.margin == 2
    assert two.added == pytest.approx((0.1, 300.0, 3000.0, 30000.0))    # two rates below the best, too
    i = two.lrs.index(300.0)
    assert i >= 2 and len(two.lrs) - 1 - i >= 2


def test_diverged_rates_never_win_and_stop_the_widening():
    search = tuning.widen_until_interior(lambda lr: math.inf if lr > 0.05 else -lr, [1e-3, 1e-2], factor=10.0)
    assert search.best_lr == 1e-2 and search.interior and search.added == (0.1,)
    assert math.isinf(search.scores[-1])
    nan = tuning.widen_until_interior(lambda lr: math.nan, [1e-3, 1e-2], max_added=3)
    assert not nan.interior and nan.added == ()


def test_limits_max_added_and_bounds():
    score, _ = _parabola(1e6)
    capped = tuning.widen_until_interior(score, [1e-3, 1e-2], factor=10.0, max_added=2)
    assert capped.added == pytest.approx((0.1, 1.0)) and not capped.interior
    bounded = tuning.widen_until_interior(score, [1e-3, 1e-2], factor=10.0, bounds=(0.0, 0.5))
    assert bounded.added == pytest.approx((0.1,)) and not bounded.interior


def test_ties_go_to_the_smallest_rate():
    search = tuning.widen_until_interior(lambda lr: 0.0 if lr >= 1e-2 else 1.0, [1e-3, 1e-2, 1e-1, 1.0])
    assert search.best_lr == 1e-2 and search.interior


@pytest.mark.parametrize("kwargs, message", [
    ({"grid": []}, "Invalid grid"),
    ({"grid": "abc"}, "Invalid grid"),
    ({"grid": [[1e-3, 1e-2]]}, "Invalid grid"),
    ({"grid": [1e-3, -1.0]}, "Invalid grid entry"),
    ({"grid": [1e-3, math.nan]}, "Invalid grid entry"),
    ({"grid": [1e-3], "factor": 1.0}, "Invalid factor"),
    ({"grid": [1e-3], "factor": "2"}, "Invalid factor"),
    ({"grid": [1e-3], "max_added": -1}, "Invalid max_added"),
    ({"grid": [1e-3], "margin": 0}, "Invalid margin"),
    ({"grid": [1e-3], "bounds": (1.0, 0.5)}, "Invalid bounds"),
])
def test_bad_arguments_are_rejected_before_any_evaluation(kwargs, message):
    calls = []
    with pytest.raises(ValueError, match=message):
        tuning.widen_until_interior(lambda lr: calls.append(lr) or 0.0, **kwargs)
    assert calls == []
    with pytest.raises(ValueError, match="Invalid score"):
        tuning.widen_until_interior("not callable", [1e-3])


def test_exponential_ramp_spans_the_range_and_then_stays():
    ramp = tuning.exponential_ramp(1e-4, 1.0, 5)
    assert [ramp(t) for t in range(5)] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert ramp(10) == pytest.approx(1.0)
    for args, message in [((1.0, 1e-4, 5), "Invalid lr_max"), ((0.0, 1.0, 5), "Invalid lr_min"),
                          ((1e-4, 1.0, 1), "Invalid steps"), ((1e-4, math.inf, 5), "Invalid lr_max")]:
        with pytest.raises(ValueError, match=message):
            tuning.exponential_ramp(*args)


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def test_range_test_finds_the_useful_rates_and_leaves_the_model_alone(digits):
    model = default_mlp(seed=0)
    before = model.get_flat().copy()
    test = tuning.lr_range_test(model, "sgd", (digits.X_train, digits.y_train), lr_min=1e-5, lr_max=10.0, steps=150)
    assert np.array_equal(model.get_flat(), before)
    assert 5 < len(test.lrs) <= 150 and np.all(np.diff(test.lrs) > 0)
    assert test.lrs[0] == pytest.approx(1e-5) and test.lrs[-1] <= 10.0
    assert "stopped" in test.message                              # the loss blew up before lr_max
    assert test.smoothed[-1] > 4 * test.smoothed.min()
    assert 1e-2 < test.suggestion < 1.0 and test.suggestion == pytest.approx(test.lr_at_min / 10)
    assert test.smoothed.min() < 0.5 * test.losses[0]              # the useful range lowered the loss


def test_range_test_accepts_an_optimizer_factory_and_a_dataset(digits):
    test = tuning.lr_range_test(default_mlp(seed=0), lambda ramp: nnopt.Adam(lr=ramp), digits, steps=60)
    assert len(test.lrs) <= 60 and test.lrs[1] / test.lrs[0] == pytest.approx((10.0 / 1e-5) ** (1 / 59))


def test_range_test_runs_to_lr_max_when_nothing_blows_up(digits):
    test = tuning.lr_range_test(default_mlp(seed=0), "sgd", (digits.X_train, digits.y_train), lr_min=1e-6,
                                lr_max=1e-4, steps=30)
    assert len(test.lrs) == 30 and test.message == "reached lr_max after 30 steps"
    assert test.lrs[-1] == pytest.approx(1e-4)


def test_range_test_rejects_bad_input(digits):
    data = (digits.X_train, digits.y_train)
    with pytest.raises(ValueError, match="Invalid stop_factor"):
        tuning.lr_range_test(default_mlp(seed=0), "sgd", data, stop_factor=1.0)
    with pytest.raises(ValueError, match="Invalid optimizer"):
        tuning.lr_range_test(default_mlp(seed=0), lambda ramp: "not an optimizer", data)
    with pytest.raises(ValueError, match="Invalid optimizer: .no-such-optimizer"):
        tuning.lr_range_test(default_mlp(seed=0), "no-such-optimizer", data)
