"""Learning-rate schedules and gradient clipping."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nnopt
from nnopt import schedules as S


def test_schedule_formulas():
    assert S.constant(0.1).values(3).tolist() == [0.1, 0.1, 0.1]
    assert S.step_decay(1.0, drop=0.1, every=3).values(7).tolist() == pytest.approx(
        [1, 1, 1, 0.1, 0.1, 0.1, 0.01])
    assert S.inverse_time(1.0, k=0.5)(4) == pytest.approx(1 / 3)
    assert S.exponential(2.0, k=0.1)(10) == pytest.approx(2 * math.exp(-1))
    lin = S.linear_decay(1.0, 0.01, tau=100)
    assert lin(0) == 1.0 and lin(50) == pytest.approx(0.505) and lin(100) == lin(10_000) == 0.01
    cos = S.cosine(1.0, total_steps=10, lr_min=0.1)
    assert cos(0) == 1.0 and cos(5) == pytest.approx(0.55) and cos(10) == cos(99) == pytest.approx(0.1)
    w = S.warmup(S.exponential(0.5, k=0.1), steps=4)
    assert w.values(6).tolist() == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.5, 0.5 * math.exp(-0.1)])


def test_inverse_time_meets_robbins_monro_numerically():
    lr = S.inverse_time(1.0, k=1.0).values(200_000)
    assert lr.sum() > 10 and (lr**2).sum() < 2      # sum diverges (log), sum of squares converges


@pytest.mark.parametrize("build, culprit", [
    (lambda: S.constant(-1), "lr"),
    (lambda: S.step_decay(1.0, drop=0.0), "drop"),
    (lambda: S.step_decay(1.0, every=0), "every"),
    (lambda: S.inverse_time(float("nan")), "lr0"),
    (lambda: S.exponential(1.0, k=-1), "k"),
    (lambda: S.linear_decay(1.0, 0.1, tau=2.5), "tau"),
    (lambda: S.cosine(1.0, total_steps=0), "total_steps"),
    (lambda: S.warmup(0.1, steps=0), "steps"),
    (lambda: S.make_schedule("triangle"), "Invalid schedule: 'triangle'"),
    (lambda: S.make_schedule("cosine", lr0=1.0), "total_steps"),
    (lambda: S.constant(0.1)(-1), "step t"),
])
def test_bad_schedule_arguments(build, culprit):
    with pytest.raises(ValueError, match=culprit):
        build()


def test_schedule_repr_is_readable():
    assert repr(S.cosine(0.1, 100)) == "cosine(lr0=0.1, total_steps=100, lr_min=0.0)"
    assert S.make_schedule("step_decay", lr0=0.1) == S.step_decay(0.1)


def test_clip_by_value_and_norm():
    grads = {"a": np.array([3.0, -4.0]), "b": np.array([[12.0]])}
    clipped, norm = nnopt.clip_by_global_norm(grads, 6.5)
    assert norm == pytest.approx(13.0)
    np.testing.assert_allclose(clipped["a"], [1.5, -2.0])
    np.testing.assert_allclose(clipped["b"], [[6.0]])
    assert grads["a"][0] == 3.0                                 # input untouched
    same, n = nnopt.clip_by_global_norm([np.array([0.3, 0.4], dtype=np.float32)], 1.0)
    assert n == pytest.approx(0.5) and same[0].dtype == np.float32 and same[0][1] == np.float32(0.4)
    v = nnopt.clip_by_value([np.array([5.0, -0.2, -9.0])], 1.0)
    np.testing.assert_array_equal(v[0], [1.0, -0.2, -1.0])


def test_clip_by_norm_keeps_direction_value_does_not():
    g = [np.array([10.0, 1.0])]
    by_norm, _ = nnopt.clip_by_global_norm(g, 1.0)
    by_value = nnopt.clip_by_value(g, 1.0)
    cos = lambda u: float(u @ g[0] / np.linalg.norm(u) / np.linalg.norm(g[0]))
    assert cos(by_norm[0]) == pytest.approx(1.0) and cos(by_value[0]) < 0.8


def test_clipping_bad_input():
    with pytest.raises(ValueError, match="max_norm"):
        nnopt.clip_by_global_norm([np.ones(2)], 0.0)
    with pytest.raises(ValueError, match="Invalid c: nan"):
        nnopt.clip_by_value([np.ones(2)], float("nan"))
    with pytest.raises(ValueError, match=r"grads\[0\]"):
        nnopt.clip_by_value([np.ones(2, dtype=int)], 1.0)
    nan_grads = [np.array([np.nan, 1.0])]
    out, norm = nnopt.clip_by_global_norm(nan_grads, 1.0)
    assert math.isnan(norm) and np.isnan(out[0][0])             # left for the optimizer to report


def test_build_schedule():
    s = S.build_schedule("linear_decay", 0.5, final_ratio=0.01, horizon=100)
    assert s(0) == 0.5 and s(100) == pytest.approx(0.005)
    w = S.build_schedule("cosine", 1.0, horizon=10, warmup_steps=5)
    assert isinstance(w, S.warmup) and w(0) == pytest.approx(0.2) and w(5) == 1.0
    with pytest.raises(ValueError, match="Invalid schedule: 'cyclic'"):
        S.build_schedule("cyclic", 0.1)
