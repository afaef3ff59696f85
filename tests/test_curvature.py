"""nnopt.curvature: exact Hessian-vector products (vs finite differences, the closed-form softmax
Hessian and torch double backward) and the eigenvalue solvers (vs numpy.linalg.eigvalsh)."""
import numpy as np
import pytest
import torch

from nnopt import curvature as cv
from nnopt.data import load_digits
from nnopt.models import MLP, SoftmaxRegression, flatten

RNG = np.random.default_rng(0)
X = RNG.standard_normal((12, 5))
Y = RNG.integers(0, 4, size=12)


def random_biases(model, seed=0):
    """Non-zero biases, so no relu input sits exactly on the kink (finite differences are one-sided there)."""
    rng = np.random.default_rng(seed)
    for name, p in model.params.items():
        if name[0] == "b":
            p[...] = rng.normal(0, 0.1, p.shape)
    return model


MODELS = {
    "softmax": lambda: SoftmaxRegression(5, 4, init="xavier", seed=1),
    "softmax_l2": lambda: SoftmaxRegression(5, 4, l2=0.3, init="xavier", seed=1),
    "relu_1": lambda: random_biases(MLP(5, (7,), 4, "relu", seed=2)),
    "relu_3_l2": lambda: random_biases(MLP(5, (6, 5, 4), 4, "relu", l2=0.05, seed=3)),
    "tanh_1": lambda: random_biases(MLP(5, (7,), 4, "tanh", seed=4)),
    "tanh_3_l2": lambda: random_biases(MLP(5, (6, 5, 3), 4, "tanh", init="he", l2=0.1, seed=5)),
}


@pytest.fixture(scope="module")
def digits():
    d = load_digits(dtype=np.float64)
    return d.X_train, d.y_train


@pytest.fixture(scope="module")
def softmax_digits(digits):
    """Softmax regression on digits at a random (non-symmetric) point, with weight decay."""
    model = SoftmaxRegression(64, 10, l2=1e-3)
    model.params["W1"][...] = np.random.default_rng(1).normal(0, 0.1, (64, 10))
    return model


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# ----------------------------------------------------------------- Hessian-vector products
@pytest.mark.parametrize("name", MODELS)
def test_hvp_matches_finite_differences(name):
    model = MODELS[name]()
    for seed in range(3):
        v = np.random.default_rng(seed).standard_normal(model.n_params)
        exact = cv.hvp(model, X, Y, v)
        assert exact.shape == (model.n_params,) and exact.dtype == np.float64
        assert rel_err(exact, cv.hvp_fd(model, X, Y, v)) < 1e-6


# relu: with 1257 samples some pre-activations lie within the default step of the kink, where the
# difference quotient jumps; a smaller step (still far above roundoff) stays on one side.
@pytest.mark.parametrize("activation, eps", [("tanh", None), ("relu", 1e-7)])
def test_hvp_matches_finite_differences_on_digits(digits, activation, eps):
    model = random_biases(MLP(64, (32, 16), 10, activation, l2=1e-3, seed=0))
    v = np.random.default_rng(7).standard_normal(model.n_params)
    assert rel_err(cv.hvp(model, *digits, v), cv.hvp_fd(model, *digits, v, eps=eps)) < 1e-6


def test_hvp_matches_closed_form_softmax_hessian(digits, softmax_digits):
    H = softmax_digits.hessian(*digits)
    op = cv.HessianOperator(softmax_digits, *digits)
    for seed in range(3):
        v = np.random.default_rng(seed).standard_normal(op.n_params)
        assert rel_err(op.matvec(v), H @ v) < 1e-12
    dense = cv.hessian_matrix(softmax_digits, *digits)
    np.testing.assert_allclose(dense, H, rtol=0, atol=1e-13 * np.abs(H).max())
    np.testing.assert_allclose(cv.spectrum(softmax_digits, *digits), np.linalg.eigvalsh(H), atol=1e-12)


def torch_hvp(model, X, y, v):
    """H v by double backward through the same network in torch (float64)."""
    names = list(model.params)
    tparams = [torch.tensor(model.params[k], requires_grad=True) for k in names]
    A = torch.tensor(X)
    for l in range(1, model.n_layers + 1):
        A = A @ tparams[2 * l - 2] + tparams[2 * l - 1]
        if l < model.n_layers:
            A = torch.relu(A) if model.act.name == "relu" else torch.tanh(A)
    loss = torch.nn.functional.cross_entropy(A, torch.tensor(y))
    loss = loss + 0.5 * model.l2 * sum((p * p).sum() for k, p in zip(names, tparams) if k[0] == "W")
    grads = torch.autograd.grad(loss, tparams, create_graph=True)
    offsets = np.cumsum([0] + [p.numel() for p in tparams])
    tv = [torch.tensor(v[a:b].reshape(p.shape)) for a, b, p in zip(offsets[:-1], offsets[1:], tparams)]
    dot = sum((g * t).sum() for g, t in zip(grads, tv))
    return np.concatenate([h.detach().numpy().ravel() for h in torch.autograd.grad(dot, tparams)])


@pytest.mark.parametrize("name", ["relu_3_l2", "tanh_3_l2", "softmax_l2"])
def test_hvp_matches_torch_double_backward(name):
    model = MODELS[name]()
    v = np.random.default_rng(3).standard_normal(model.n_params)
    assert rel_err(cv.hvp(model, X, Y, v), torch_hvp(model, X, Y, v)) < 1e-12


def test_operator_is_symmetric_linear_and_batched():
    model = MODELS["tanh_3_l2"]()
    op = cv.HessianOperator(model, X, Y)
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, op.n_params))
    assert u @ op.matvec(v) == pytest.approx(v @ op.matvec(u), rel=1e-12)
    np.testing.assert_allclose(op.matvec(2 * u - 3 * v), 2 * op.matvec(u) - 3 * op.matvec(v), atol=1e-12)
    V = rng.standard_normal((op.n_params, 4))
    np.testing.assert_allclose(op.matmat(V), np.column_stack([op.matvec(c) for c in V.T]), atol=1e-13)
    np.testing.assert_allclose(op @ u, op.matvec(u))
    assert op.loss == pytest.approx(model.loss(X, Y), rel=1e-14)
    assert "HessianOperator" in repr(op) and "tanh" in repr(op)


def test_operator_is_a_snapshot_and_leaves_the_model_alone():
    model = MODELS["relu_1"]()
    before = model.get_flat()
    op = cv.HessianOperator(model, X, Y)
    v = np.random.default_rng(1).standard_normal(model.n_params)
    first = op.matvec(v)
    cv.hvp_fd(model, X, Y, v)
    np.testing.assert_array_equal(model.get_flat(), before)
    for p in model.params.values():
        p *= 3.0                                       # training moves on; the operator does not
    np.testing.assert_array_equal(op.matvec(v), first)


def test_float32_model_gives_float32_products_close_to_float64():
    m64 = MODELS["tanh_1"]()
    m32 = MLP(5, (7,), 4, "tanh", dtype=np.float32, seed=4)
    m32.set_flat(m64.get_flat().astype(np.float32))
    v = np.random.default_rng(2).standard_normal(m64.n_params)
    h32 = cv.hvp(m32, X, Y, v)
    assert h32.dtype == np.float32
    assert rel_err(h32.astype(np.float64), cv.hvp(m64, X, Y, v)) < 1e-5


# ----------------------------------------------------------------- eigenvalues
def test_power_iteration_matches_eigvalsh_on_softmax_regression(digits, softmax_digits):
    top = np.linalg.eigvalsh(softmax_digits.hessian(*digits))[-1]
    eig = cv.power_iteration(cv.HessianOperator(softmax_digits, *digits))
    assert eig.converged
    assert abs(eig.value - top) / top < 1e-6
    assert np.linalg.norm(eig.vector) == pytest.approx(1.0)


def test_lanczos_matches_eigvalsh_at_both_ends(digits):
    model = random_biases(MLP(64, (8,), 10, "tanh", seed=3))
    evals = np.linalg.eigvalsh(cv.hessian_matrix(model, *digits))
    assert evals[0] < 0 < evals[-1]                   # an MLP at init is not convex
    op = cv.HessianOperator(model, *digits)
    top = cv.lanczos(op, k=3)
    bottom = cv.lanczos(op, k=2, which="smallest")
    assert top.converged and bottom.converged
    np.testing.assert_allclose(top.values, evals[::-1][:3], rtol=1e-8)
    np.testing.assert_allclose(bottom.values, evals[:2], rtol=1e-8)
    for lam, vec in zip(top.values, top.vectors.T):
        assert np.linalg.norm(op.matvec(vec) - lam * vec) < 1e-6 * abs(lam)
    assert top.n_matvec < op.n_params                 # far fewer products than a dense Hessian
    assert cv.sharpness(model, *digits) == pytest.approx(evals[-1], rel=1e-8)
    assert cv.min_eigenvalue(model, *digits) == pytest.approx(evals[0], rel=1e-8)


def test_power_iteration_finds_the_largest_magnitude_and_shift_finds_the_top():
    A = np.diag([-5.0, 1.0, 2.0, 0.5])
    assert cv.power_iteration(A).value == pytest.approx(-5.0, rel=1e-10)
    assert cv.power_iteration(A, shift=-5.0).value == pytest.approx(2.0, rel=1e-10)


def test_lanczos_continues_after_an_invariant_subspace():
    # from one start vector the Krylov space of diag(3, 3, 3, 1) has dimension 2 (one vector per
    # distinct eigenvalue); asking for 3 eigenvalues forces a restart that finds 3 again
    A = np.diag([3.0, 3.0, 3.0, 1.0])
    np.testing.assert_allclose(cv.lanczos(A, k=2).values, [3.0, 1.0], rtol=1e-12)   # documented limitation
    eig = cv.lanczos(A, k=3)
    np.testing.assert_allclose(eig.values, [3.0, 3.0, 1.0], rtol=1e-12)
    assert eig.converged
    np.testing.assert_allclose(eig.vectors.T @ eig.vectors, np.eye(3), atol=1e-12)


def test_saddle_point_has_zero_gradient_and_a_negative_eigenvalue():
    # tanh MLP with all weights 0 and output biases = log class frequencies: an exact critical point
    model = MLP(5, (6,), 4, "tanh", init="zeros")
    freq = np.bincount(Y, minlength=4) / len(Y)
    model.params["b2"][...] = np.log(freq)
    _, grads = model.loss_and_grads(X, Y)
    assert np.abs(flatten(grads)).max() < 1e-15
    lam_min = cv.min_eigenvalue(model, X, Y)
    assert lam_min < -1e-3
    assert lam_min == pytest.approx(np.linalg.eigvalsh(cv.hessian_matrix(model, X, Y))[0], rel=1e-8)


def test_preconditioned_operator_has_the_eigenvalues_of_inverse_D_times_H(digits, softmax_digits):
    H = softmax_digits.hessian(*digits)
    d = np.random.default_rng(0).uniform(0.5, 2.0, len(H))
    op = cv.preconditioned(cv.HessianOperator(softmax_digits, *digits), d)
    expected = np.max(np.linalg.eigvals(H / d[:, None]).real)
    assert cv.lanczos(op).value == pytest.approx(expected, rel=1e-8)


# ----------------------------------------------------------------- bad input
def test_bad_input_is_rejected_clearly():
    model = MODELS["relu_1"]()
    op = cv.HessianOperator(model, X, Y)
    with pytest.raises(ValueError, match="Invalid model: object"):
        cv.HessianOperator(object(), X, Y)
    with pytest.raises(ValueError, match="features"):
        cv.HessianOperator(model, X[:, :3], Y)
    with pytest.raises(ValueError, match="labels"):
        cv.HessianOperator(model, X, Y[:5])
    with pytest.raises(ValueError, match="at least one sample"):
        cv.HessianOperator(model, X[:0], Y[:0])
    with pytest.raises(ValueError, match="dimension mismatch"):
        op.matvec(np.ones(3))
    with pytest.raises(ValueError, match="NaN or inf"):
        op.matvec(np.full(op.n_params, np.nan))
    with pytest.raises(ValueError, match="shape"):
        cv.hvp_fd(model, X, Y, np.ones(3))
    with pytest.raises(ValueError, match="non-zero"):
        cv.hvp_fd(model, X, Y, np.zeros(op.n_params))
    with pytest.raises(ValueError, match="eps"):
        cv.hvp_fd(model, X, Y, np.ones(op.n_params), eps=-1.0)
    with pytest.raises(ValueError, match="Invalid k: 0"):
        cv.lanczos(op, k=0)
    with pytest.raises(ValueError, match="at most"):
        cv.lanczos(op, k=op.n_params + 1)
    with pytest.raises(ValueError, match="which"):
        cv.lanczos(op, which="middle")
    with pytest.raises(ValueError, match="tol"):
        cv.power_iteration(op, tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        cv.power_iteration(op, max_iter=0)
    with pytest.raises(ValueError, match="v0"):
        cv.power_iteration(op, v0=np.zeros(op.n_params))
    with pytest.raises(ValueError, match="square"):
        cv.lanczos(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        cv.lanczos(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="max_params"):
        cv.hessian_matrix(model, X, Y, max_params=10)
    with pytest.raises(ValueError, match="positive"):
        cv.preconditioned(op, np.zeros(op.n_params))
    with pytest.raises(ValueError, match="shape"):
        cv.preconditioned(op, np.ones(2))


def test_unknown_activation_is_rejected(monkeypatch):
    model = MODELS["tanh_1"]()
    monkeypatch.setattr(model, "act", model.act.__class__("softsign", np.tanh, lambda dA, Z, A: dA, "xavier"))
    with pytest.raises(ValueError, match="softsign"):
        cv.HessianOperator(model, X, Y)


def test_diverged_parameters_raise_instead_of_returning_nan():
    model = MODELS["relu_1"]()
    for p in model.params.values():
        p *= 1e160                                     # logits overflow to inf
    with np.errstate(all="ignore"):
        op = cv.HessianOperator(model, X, Y)
        with pytest.raises(FloatingPointError, match="NaN or inf"):
            cv.lanczos(op)
