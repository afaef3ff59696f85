"""nnopt.second_order: Newton vs saddle-free Newton at a saddle, L-BFGS vs scipy, softmax regression."""
from collections import deque

import numpy as np
import pytest

from nnopt import data, models, surfaces
from nnopt import second_order as so


class Concave:
    """f(x) = -|x|^2 / 2 on R^2: every method that descends must run away (to divergence)."""

    start = np.array([0.3, -0.2])

    def value(self, x):
        return -0.5 * float(x @ x)

    def grad(self, x):
        return -np.asarray(x, dtype=float)

    def hessian(self, x):
        return -np.eye(2)


class Trough:
    """f(x) = x0^2: the Hessian diag(2, 0) is singular."""

    def value(self, x):
        return float(x[0] ** 2)

    def grad(self, x):
        return np.array([2 * x[0], 0.0])

    def hessian(self, x):
        return np.diag([2.0, 0.0])


def test_newton_converges_to_the_saddle_saddle_free_newton_escapes():
    saddle = surfaces.Saddle()
    plain = so.newton(saddle)
    assert plain.converged and np.linalg.norm(plain.x - saddle.saddles[0]) < 1e-8
    assert np.linalg.eigvalsh(saddle.hessian(plain.x)).min() < 0          # it stopped at a saddle point
    free = so.saddle_free_newton(saddle)
    assert free.converged
    assert min(np.linalg.norm(free.x - m) for m in saddle.minima) < 1e-8
    assert free.values[-1] == pytest.approx(-0.25, abs=1e-15)
    assert saddle.value(saddle.saddles[0]) == 0.0


def test_newton_on_a_quadratic_takes_one_step():
    quad = surfaces.Quadratic(condition=50.0, angle=30.0)
    result = so.newton(quad)
    assert result.n_iter == 1 and np.allclose(result.x, 0, atol=1e-14)


def test_damped_newton_step_formula():
    quad = surfaces.Quadratic(condition=10.0, angle=20.0)
    x0 = np.array([1.0, -0.5])
    result = so.newton(quad, x0, steps=1, damping=3.0)
    expected = x0 - np.linalg.solve(quad.H + 3.0 * np.eye(2), quad.grad(x0))
    np.testing.assert_allclose(result.x, expected, rtol=1e-14)
    assert result.method == "newton (damping 3)"


def test_newton_line_search_decreases_monotonically_on_rosenbrock():
    result = so.newton(surfaces.Rosenbrock(), np.array([-1.2, 1.0]), line_search=True)
    assert result.converged and np.all(np.diff(result.values) <= 0)
    np.testing.assert_allclose(result.x, [1, 1], atol=1e-10)


def test_newton_line_search_stops_where_newton_is_not_a_descent_direction():
    result = so.newton(surfaces.Saddle(), line_search=True)
    assert not result.converged and "not positive definite" in result.message


@pytest.mark.parametrize("x0", [None, [-1.2, 1.0], [2.0, -1.0]])
def test_lbfgs_reaches_rosenbrock_minimum_within_twice_scipy_iterations(x0):
    rosen = surfaces.Rosenbrock()
    ours = so.lbfgs(rosen, x0)
    ref = so.scipy_lbfgs(rosen, x0)
    assert ours.converged and np.linalg.norm(ours.x - rosen.minima[0]) < 1e-8
    assert np.linalg.norm(ref.x - rosen.minima[0]) < 1e-8
    assert ours.n_iter <= 2 * ref.n_iter, (ours.n_iter, ref.n_iter)
    assert len(ref.path) == ref.n_iter + 1 and np.all(np.isfinite(ref.path))


def test_two_loop_recursion_equals_the_bfgs_inverse_hessian():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 5))
    A = A @ A.T + 5 * np.eye(5)                      # y = A s gives s.y > 0
    pairs = deque()
    for _ in range(3):
        s = rng.standard_normal(5)
        y = A @ s
        pairs.append((s, y, 1.0 / (s @ y)))
    s, y, _ = pairs[-1]
    H = (s @ y) / (y @ y) * np.eye(5)
    for s, y, rho in pairs:                          # H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T
        V = np.eye(5) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    g = rng.standard_normal(5)
    np.testing.assert_allclose(so._two_loop(g, pairs), H @ g, rtol=1e-12)


@pytest.fixture(scope="module")
def softmax_problem():
    ds = data.load_digits(dtype=np.float64)
    idx = np.arange(0, len(ds.train), 3)            # 419 images keep the test quick
    model = models.SoftmaxRegression(64, 10, l2=0.05)
    return model, so.ModelObjective(model, ds.X_train[idx], ds.y_train[idx])


def test_model_objective_leaves_the_callers_model_alone_and_trusts_scipys_verdict(softmax_problem):
    model, objective = softmax_problem
    before = model.get_flat().copy()
    ref = so.scipy_lbfgs(objective, np.zeros(model.n_params), tol=1e-4)
    np.testing.assert_array_equal(model.get_flat(), before)
    # scipy stops on the max-norm of the gradient; its 2-norm may still exceed tol
    assert ref.converged and "CONVERGENCE" in ref.message and ref.grad_norms[-1] > 1e-4


def test_softmax_regression_newton_and_lbfgs_agree_with_scipy(softmax_problem):
    model, objective = softmax_problem
    w0 = np.zeros(model.n_params)
    newton = so.newton(objective, w0, tol=1e-9)
    ours = so.lbfgs(objective, w0, tol=1e-7)
    ref = so.scipy_lbfgs(objective, w0, tol=1e-7)
    assert newton.converged and ours.converged and newton.n_iter <= 10 < ours.n_iter
    assert newton.values[-1] == pytest.approx(ref.values[-1], abs=1e-10)
    assert ours.values[-1] == pytest.approx(ref.values[-1], abs=1e-10)
    assert ours.n_iter <= 2 * ref.n_iter

    def probabilities(w):
        # the logits' bias can shift by a constant for all classes without changing the loss,
        # so compare what the model predicts, not the raw weights
        model.set_flat(w)
        return model.predict_proba(objective.X)

    np.testing.assert_allclose(probabilities(newton.x), probabilities(ref.x), atol=1e-5)
    np.testing.assert_allclose(probabilities(ours.x), probabilities(ref.x), atol=1e-5)


def test_model_objective_value_grad_hessian_consistent(softmax_problem):
    model, objective = softmax_problem
    w = np.random.default_rng(1).normal(0, 0.01, model.n_params)
    value, grad = objective.value_and_grad(w)
    assert value == objective.value(w) and np.array_equal(grad, objective.grad(w))
    e = np.zeros_like(w)
    e[7] = 1e-6
    np.testing.assert_allclose(objective.hessian(w)[:, 7], (objective.grad(w + e) - objective.grad(w - e)) / 2e-6,
                               atol=1e-7)
    mlp_objective = so.ModelObjective(models.MLP(64, (4,), 10), objective.X, objective.y)
    assert not hasattr(mlp_objective, "hessian")
    with pytest.raises(ValueError, match="hessian"):
        so.newton(mlp_objective, np.zeros(mlp_objective.model.n_params))


def test_divergence_is_reported_not_raised():
    result = so.saddle_free_newton(Concave(), steps=100)
    assert result.diverged_at is not None and not result.converged
    assert result.message == f"diverged at step {result.diverged_at}" and np.abs(result.path).max() <= so.BOUND


def test_singular_hessian_stops_with_a_message():
    result = so.newton(Trough(), np.array([1.0, 1.0]))
    assert "singular" in result.message and result.n_iter == 0
    damped = so.newton(Trough(), np.array([1.0, 1.0]), damping=1.0, steps=200)
    assert damped.converged


def test_result_to_path_and_compare_table():
    saddle = surfaces.Saddle()
    path = so.saddle_free_newton(saddle).to_path()
    assert isinstance(path, surfaces.Path) and path.xy.shape[1] == 2 and path.diverged_at is None
    rows = so.compare(surfaces.Rosenbrock(), methods=("newton", "lbfgs", "scipy_lbfgs"))
    assert [r["method"].split(" ")[0] for r in rows] == ["newton", "l-bfgs", "scipy"]
    assert all(r["distance"] < 1e-8 and r["converged"] for r in rows)
    with pytest.raises(ValueError, match=r"Invalid methods: \['adam'\]"):
        so.compare(saddle, methods=("adam",))
    with pytest.raises(ValueError, match="2-D"):
        so.lbfgs(Concave(), np.ones(3), steps=0).to_path()


@pytest.mark.parametrize("call, match", [
    (lambda: so.newton(object(), [0.0, 0.0]), "value"),
    (lambda: so.newton(surfaces.Saddle(), steps=-1), "steps"),
    (lambda: so.newton(surfaces.Saddle(), damping=-1.0), "damping"),
    (lambda: so.saddle_free_newton(surfaces.Saddle(), damping=np.nan), "damping"),
    (lambda: so.lbfgs(surfaces.Saddle(), memory=0), "memory"),
    (lambda: so.lbfgs(surfaces.Saddle(), [np.nan, 0.0]), "finite"),
    (lambda: so.lbfgs(surfaces.Saddle(), tol=-1), "tol"),
    (lambda: so.lbfgs(Trough()), "Invalid x0: None \\(expected a start point"),
    (lambda: so.ModelObjective(models.SoftmaxRegression(2, 2), np.zeros((3, 2)), np.array([0, 1, 2])), "labels"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
