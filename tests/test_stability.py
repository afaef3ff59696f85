"""nnopt.stability: the step-size limits, the sharpness tracker, the 2/lambda_max threshold on a
quadratic-like model, the edge of stability on the MLP, and the explorer (headless)."""
import math

import numpy as np
import pytest

import nnopt
from nnopt import curvature as cv
from nnopt import stability as st
from nnopt.data import spirals
from nnopt.models import MLP, SoftmaxRegression, flatten
from nnopt.train import fit

RNG = np.random.default_rng(0)
X = RNG.standard_normal((40, 5))
Y = RNG.integers(0, 3, size=40)


# ----------------------------------------------------------------- the limits
def _grows_on_quadratic(optimizer, lam: float, steps: int = 400) -> bool:
    """Run the nnopt optimizer on f(x) = lam x^2 / 2 from x = 1; True if |x| ends above 1."""
    x = np.array([1.0])
    for _ in range(steps):
        optimizer.step([x], [lam * x])
    return abs(x[0]) > 1.0


@pytest.mark.parametrize("name, hp", [("sgd", {}), ("momentum", {"momentum": 0.9}), ("momentum", {"momentum": 0.5}),
                                      ("nesterov", {"momentum": 0.9}), ("nesterov", {"momentum": 0.3})])
def test_limit_separates_convergence_from_divergence_on_a_quadratic(name, hp):
    limit = st.stability_limit(nnopt.make_optimizer(name, lr=0.1, **hp))
    assert not _grows_on_quadratic(nnopt.make_optimizer(name, lr=0.1, **hp), 0.98 * limit)
    assert _grows_on_quadratic(nnopt.make_optimizer(name, lr=0.1, **hp), 1.02 * limit)


def test_limit_formulas():
    assert st.stability_limit(nnopt.SGD(0.1)) == pytest.approx(20.0)
    assert st.stability_limit(nnopt.Momentum(0.1, momentum=0.9)) == pytest.approx(38.0)
    assert st.stability_limit(nnopt.Nesterov(0.1, momentum=0.9)) == pytest.approx(3.8 / 0.28)
    assert st.stability_limit(nnopt.RMSProp(0.1)) == pytest.approx(20.0)
    assert st.stability_limit(nnopt.Adam(0.01)) == pytest.approx(3800.0)          # 38 / lr
    assert st.stability_limit(nnopt.SGD(nnopt.schedules.step_decay(0.1, 0.5, 10))) == pytest.approx(20.0)
    assert not st.is_preconditioned(nnopt.Momentum(0.1)) and st.is_preconditioned(nnopt.Adam())


def test_adam_limit_is_where_frozen_preconditioner_adam_becomes_unstable():
    """Adam with a frozen denominator on the preconditioned quadratic lam x^2 / 2:
    m' = b m + (1 - b) lam x,  x' = x - lr m'.  Spectral radius of the iteration crosses 1 at the limit."""
    lr, b = 0.01, 0.9
    limit = st.stability_limit(nnopt.Adam(lr, beta1=b))

    def radius(lam):
        M = np.array([[1 - lr * (1 - b) * lam, -lr * b], [(1 - b) * lam, b]])     # acting on (x, m)
        return max(abs(np.linalg.eigvals(M)))

    assert radius(0.99 * limit) < 1 < radius(1.01 * limit)


@pytest.mark.parametrize("make", [lambda: nnopt.RMSProp(0.01), lambda: nnopt.RMSProp(0.01, eps_inside_sqrt=False),
                                  lambda: nnopt.AdaGrad(0.1), lambda: nnopt.Adam(0.01),
                                  lambda: nnopt.Adam(0.01, eps_inside_sqrt=False), lambda: nnopt.AMSGrad(0.01)])
def test_preconditioner_is_the_denominator_of_the_last_step(make):
    model = MLP(5, (4,), 3, seed=0)
    opt = make()
    for _ in range(3):
        fit(model, opt, (X, Y), epochs=1, batch_size=None, progress=False)
    before = model.get_flat()
    _, grads = model.loss_and_grads(X, Y)
    opt.step(model.params, grads)
    step = model.get_flat() - before
    d = st.preconditioner(opt)
    if isinstance(opt, nnopt.Adam):                      # the numerator is the bias-corrected momentum
        numerator = np.concatenate([s["s"].ravel() for s in opt.state_dict()["state"]]) / (1 - opt.beta1 ** opt.t)
    else:
        numerator = flatten(grads)
    np.testing.assert_allclose(step, -opt.lr * numerator / d, rtol=1e-9, atol=1e-15)


def test_limit_errors():
    with pytest.raises(ValueError, match="AdaDelta"):
        st.stability_limit(nnopt.AdaDelta())
    with pytest.raises(ValueError, match="> 0"):
        st.stability_limit(nnopt.SGD(0.0))
    with pytest.raises(ValueError, match="expected one that preconditions its steps"):
        st.preconditioner(nnopt.SGD(0.1))
    with pytest.raises(ValueError, match="expected one that has taken a step"):
        st.preconditioner(nnopt.Adam())
    assert not st.is_preconditioned(nnopt.AdaDelta())


# ----------------------------------------------------------------- acceptance: 2/lambda_max on a quadratic-like model
def test_gradient_descent_diverges_above_and_converges_below_two_over_lambda_max():
    p = st.get_problem("quadratic-like")
    lam = cv.power_iteration(cv.HessianOperator(p.model, p.X, p.y)).value
    assert lam == pytest.approx(p.sharpness0, rel=1e-6)
    assert lam > p.model.l2                             # the penalty's curvature plus the cross-entropy's
    above = fit(p.model.copy(), nnopt.SGD(2.2 / lam), (p.X, p.y), epochs=200, batch_size=None, progress=False)
    assert above.diverged and above.message.startswith("diverged at step")
    model = p.model.copy()
    g0 = np.linalg.norm(flatten(model.loss_and_grads(p.X, p.y)[1]))
    below = fit(model, nnopt.SGD(1.8 / lam), (p.X, p.y), epochs=200, batch_size=None, progress=False)
    assert not below.diverged
    assert np.linalg.norm(flatten(model.loss_and_grads(p.X, p.y)[1])) < 1e-3 * g0
    assert below.train_loss[-1] - p.floor < 1e-6


# ----------------------------------------------------------------- tracking
def test_tracker_records_every_k_steps_at_the_current_parameters():
    model = SoftmaxRegression(5, 3, l2=0.1, init="xavier", seed=1)
    tracker = st.SharpnessTracker(X, Y, every=5, tol=1e-10)
    tracker.record(model, nnopt.SGD(0.5))
    history = fit(model, nnopt.SGD(0.5), (X, Y), epochs=10, batch_size=None, progress=False, callbacks=[tracker])
    assert tracker.steps == [0, 5, 10]
    assert history.extra["steps"] == [5, 10]
    assert history.extra["sharpness"] == tracker.sharpness[1:]
    assert tracker.sharpness[-1] == pytest.approx(np.linalg.eigvalsh(model.hessian(X, Y))[-1], rel=1e-8)
    assert tracker.limits == pytest.approx([4.0, 4.0, 4.0])
    assert "3 records" in repr(tracker)


def test_tracker_measures_preconditioned_sharpness_for_adam():
    model = SoftmaxRegression(5, 3, l2=0.1, init="xavier", seed=1)
    opt = nnopt.Adam(0.05)
    tracker = st.SharpnessTracker(X, Y, every=4, tol=1e-10)
    fit(model, opt, (X, Y), epochs=8, batch_size=None, progress=False, callbacks=[tracker])
    H, d = model.hessian(X, Y), st.preconditioner(opt)
    assert tracker.steps == [4, 8]
    assert tracker.sharpness[-1] == pytest.approx(np.max(np.linalg.eigvals(H / d[:, None]).real), rel=1e-8)
    assert tracker.limits[-1] == pytest.approx(38 / 0.05)


def test_tracker_measures_the_plain_hessian_for_optimizers_without_a_known_limit():
    model = SoftmaxRegression(5, 3, l2=0.1, init="xavier", seed=1)
    tracker = st.SharpnessTracker(X, Y, every=3, tol=1e-10)
    fit(model, nnopt.AdaDelta(), (X, Y), epochs=3, batch_size=None, progress=False, callbacks=[tracker])
    assert tracker.steps == [3] and math.isnan(tracker.limits[0])
    assert tracker.sharpness[0] == pytest.approx(np.linalg.eigvalsh(model.hessian(X, Y))[-1], rel=1e-8)


def test_tracker_records_nan_for_diverged_parameters_and_rejects_bad_settings():
    model = MLP(5, (4,), 3, seed=0)
    for p in model.params.values():
        p *= 1e160
    assert math.isnan(st.SharpnessTracker(X, Y).measure(model))
    with pytest.raises(ValueError, match="every"):
        st.SharpnessTracker(X, Y, every=0)
    with pytest.raises(ValueError, match="tol"):
        st.SharpnessTracker(X, Y, tol=2.0)
    with pytest.raises(ValueError, match="max_iter"):
        st.SharpnessTracker(X, Y, max_iter=0)


def test_train_tracked_leaves_the_model_alone_and_checks_its_arguments():
    model = MLP(5, (4,), 3, seed=0)
    before = model.get_flat()
    run = st.train_tracked(model, (X, Y), "momentum", steps=6, every=3, lr=0.1, momentum=0.5)
    np.testing.assert_array_equal(model.get_flat(), before)
    assert list(run.steps) == [0, 3, 6] and run.limits[0] == pytest.approx(30.0)
    assert run.history.n_steps == 6 and not run.preconditioned
    adam = st.train_tracked(model, (X, Y), nnopt.Adam(0.01), steps=4, every=2)
    assert list(adam.steps) == [2, 4] and adam.preconditioned       # D exists only after a step
    with pytest.raises(ValueError, match="AdaDelta"):
        st.train_tracked(model, (X, Y), "adadelta", steps=2)
    with pytest.raises(ValueError, match="optimizer name"):
        st.train_tracked(model, (X, Y), nnopt.SGD(0.1), steps=2, lr=0.2)
    with pytest.raises(ValueError, match="Invalid data"):
        st.train_tracked(model, X, "sgd", steps=2, lr=0.1)
    with pytest.raises(ValueError, match="steps"):
        st.train_tracked(model, (X, Y), "sgd", steps=-1, lr=0.1)


def test_gradient_descent_on_the_mlp_sharpens_up_to_two_over_lr():
    """Progressive sharpening and the edge of stability: lambda_max starts below 2/lr, rises to
    it, and training goes on instead of diverging."""
    data = spirals(n=600, noise=0.2, seed=0)
    model = MLP(2, (32, 32), 2, activation="tanh", dtype=np.float64, seed=0)
    run = st.train_tracked(model, data, "sgd", steps=150, every=10, lr=0.4)
    limit = 2 / 0.4
    assert run.sharpness[0] < 0.7 * limit
    assert run.sharpness.max() > limit
    assert not run.diverged


def test_plot_tracked_draws_loss_sharpness_and_limit():
    run = st.train_tracked(MLP(5, (4,), 3, seed=0), (X, Y), "sgd", steps=5, every=1, lr=0.1, label="GD")
    fig = st.plot_tracked([run], title="demo")
    ax_loss, ax_sharp = fig.axes
    assert ax_loss.get_title() and ax_loss.get_xlabel() == "step" and ax_sharp.get_ylabel()
    limit_line = [line for line in ax_sharp.lines if line.get_linestyle() == "--"][0]
    np.testing.assert_allclose(limit_line.get_ydata(), 20.0)
    with pytest.raises(ValueError, match="at least one"):
        st.plot_tracked([])
