"""nnopt.models: backprop vs finite differences and vs torch autograd, dtypes, flat views, Hessian."""
import numpy as np
import pytest
import torch

from nnopt import models

RNG = np.random.default_rng(0)
X = RNG.standard_normal((9, 5))
Y = RNG.integers(0, 4, size=9)



def random_biases(model):
    """Give the biases random values: with zero biases a sample whose relu inputs are all dead
    has a pre-activation of exactly 0, a kink where finite differences are one-sided."""
    for name, p in model.params.items():
        if name[0] == "b":
            p[...] = RNG.normal(0, 0.1, p.shape)
    return model


MODELS = {
    "softmax": lambda: models.SoftmaxRegression(5, 4, init="xavier", seed=1),
    "softmax_l2": lambda: models.SoftmaxRegression(5, 4, l2=0.3, init="xavier", seed=1),
    "relu_1": lambda: random_biases(models.MLP(5, (7,), 4, "relu", seed=2)),
    "relu_3_l2": lambda: random_biases(models.MLP(5, (6, 5, 4), 4, "relu", l2=0.05, seed=3)),
    "tanh_1": lambda: random_biases(models.MLP(5, (7,), 4, "tanh", seed=4)),
    "tanh_2_l2_he": lambda: random_biases(models.MLP(5, (6, 3), 4, "tanh", init="he", l2=0.1, seed=5)),
}


def numeric_gradient(model, X, y, h=1e-6):
    """Central differences (f(w + h e_i) - f(w - h e_i)) / 2h over the flat parameter vector."""
    w = model.get_flat()
    g = np.empty_like(w)
    for i in range(len(w)):
        e = np.zeros_like(w)
        e[i] = h
        model.set_flat(w + e)
        up = model.loss(X, y)
        model.set_flat(w - e)
        g[i] = (up - model.loss(X, y)) / (2 * h)
    model.set_flat(w)
    return g


@pytest.mark.parametrize("name", MODELS)
def test_backprop_matches_finite_differences(name):
    model = MODELS[name]()
    loss, grads = model.loss_and_grads(X, Y)
    assert list(grads) == list(model.params)
    analytic = models.flatten(grads)
    numeric = numeric_gradient(model, X, Y)
    rel = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    assert rel < 1e-6, rel
    assert loss == pytest.approx(model.loss(X, Y), abs=0)


def torch_reference(model, X, y):
    """Same network in torch (float64): logits, objective and parameter gradients."""
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    A = torch.tensor(X)
    for l in range(1, model.n_layers + 1):
        A = A @ tparams[f"W{l}"] + tparams[f"b{l}"]
        if l < model.n_layers:
            A = torch.relu(A) if model.act.name == "relu" else torch.tanh(A)
    loss = torch.nn.functional.cross_entropy(A, torch.tensor(y))
    loss = loss + 0.5 * model.l2 * sum((tparams[k] ** 2).sum() for k in tparams if k[0] == "W")
    loss.backward()
    return A.detach().numpy(), loss.item(), {k: t.grad.numpy() for k, t in tparams.items()}


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_match_torch(name):
    model = MODELS[name]()
    Xb = RNG.standard_normal((33, 5)) * 3
    yb = RNG.integers(0, 4, size=33)
    logits, loss_ref, grads_ref = torch_reference(model, Xb, yb)
    loss, grads = model.loss_and_grads(Xb, yb)
    np.testing.assert_allclose(model.forward(Xb).logits, logits, rtol=0, atol=1e-10)
    assert abs(loss - loss_ref) < 1e-10
    for k in grads:
        np.testing.assert_allclose(grads[k], grads_ref[k], rtol=0, atol=1e-10, err_msg=k)


def test_float32_model_stays_float32_and_matches_float64():
    m64 = models.MLP(5, (8,), 4, "tanh", dtype=np.float64, seed=7)
    m32 = models.MLP(5, (8,), 4, "tanh", dtype=np.float32, seed=7)
    for k in m64.params:                                   # same seed -> same starting point
        np.testing.assert_allclose(m32.params[k], m64.params[k], rtol=1e-6)
    loss32, grads32 = m32.loss_and_grads(X, Y)             # float64 input is cast to the model dtype
    loss64, grads64 = m64.loss_and_grads(X, Y)
    assert all(g.dtype == np.float32 for g in grads32.values())
    assert m32.predict_proba(X).dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for k in grads64:
        np.testing.assert_allclose(grads32[k], grads64[k], rtol=1e-4, atol=1e-6)


def test_init_scales_and_seeding():
    he = models.MLP(400, (300,), 10, "relu", seed=0)
    assert he.params["W1"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    xavier = models.MLP(400, (300,), 10, "tanh", seed=0)
    assert xavier.init == "xavier"
    assert xavier.params["W1"].std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    assert not xavier.params["b1"].any()
    np.testing.assert_array_equal(models.MLP(4, (3,), 2, seed=1).params["W1"], models.MLP(4, (3,), 2, seed=1).params["W1"])
    assert not np.array_equal(models.MLP(4, (3,), 2, seed=1).params["W1"], models.MLP(4, (3,), 2, seed=2).params["W1"])
    assert not models.SoftmaxRegression(4, 3).get_flat().any()


def test_flat_view_round_trip_in_place():
    model = MODELS["relu_3_l2"]()
    arrays = list(model.params.values())
    w = model.get_flat()
    assert w.shape == (model.n_params,) == (5 * 6 + 6 + 6 * 5 + 5 + 5 * 4 + 4 + 4 * 4 + 4,)
    model.set_flat(np.arange(model.n_params, dtype=float))
    assert all(a is b for a, b in zip(arrays, model.params.values()))   # optimizers keep their references
    assert model.params["W1"][0, 1] == 1 and model.params["b1"][0] == 30
    np.testing.assert_array_equal(model.get_flat(), np.arange(model.n_params))
    with pytest.raises(ValueError, match=r"shape: \(3,\) \(expected \(115,\)\)"):
        model.set_flat(np.zeros(3))


def test_copy_is_independent():
    model = MODELS["tanh_1"]()
    twin = model.copy()
    twin.params["W1"] += 1
    assert not np.array_equal(twin.params["W1"], model.params["W1"])


def test_softmax_hessian_matches_finite_differences_of_gradient():
    model = MODELS["softmax_l2"]()
    H = model.hessian(X, Y)
    w, h = model.get_flat(), 1e-6
    numeric = np.empty_like(H)
    for i in range(len(w)):
        e = np.zeros_like(w)
        e[i] = h
        model.set_flat(w + e)
        up = models.flatten(model.loss_and_grads(X, Y)[1])
        model.set_flat(w - e)
        numeric[:, i] = (up - models.flatten(model.loss_and_grads(X, Y)[1])) / (2 * h)
    model.set_flat(w)
    np.testing.assert_allclose(H, numeric, atol=1e-8)
    np.testing.assert_allclose(H, H.T, atol=1e-15)
    # Convex, and strictly so except along one direction: the same shift of every class's bias
    # leaves the softmax unchanged, and L2 covers W only. (Asserting min > 0 failed by round-off:
    # that eigenvalue is 0 to 1e-17, of either sign.)
    eig, vec = np.linalg.eigh(H)
    shift = models.flatten({"W1": np.zeros_like(model.params["W1"]), "b1": np.ones_like(model.params["b1"])})
    assert abs(eig[0]) < 1e-12 and eig[1] > 0.1, eig[:3]
    np.testing.assert_allclose(H @ shift, 0.0, atol=1e-12)
    assert abs(vec[:, 0] @ shift) == pytest.approx(np.linalg.norm(shift))


def test_predictions_probabilities_accuracy():
    model = MODELS["relu_1"]()
    P = model.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1)
    np.testing.assert_array_equal(model.predict(X), P.argmax(axis=1))
    assert model.accuracy(X, Y) == np.mean(P.argmax(axis=1) == Y)
    loss, acc = model.evaluate(X, Y)
    assert loss == pytest.approx(-np.mean(np.log(P[np.arange(len(Y)), Y])))


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]])
    loss, dlogits = models.softmax_cross_entropy(logits, np.array([1, 1]))
    assert loss == pytest.approx(1e4 / 2)
    assert np.isfinite(dlogits).all()
    np.testing.assert_allclose(dlogits, [[0.5, -0.5, 0], [0, 0, 0]], atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_in=0), "n_in"), (dict(n_out=1), "n_out"), (dict(hidden=(4, -1)), "hidden"),
    (dict(activation="sigmoid"), "activation"), (dict(init="orthogonal"), "init"),
    (dict(l2=-0.1), "l2"), (dict(l2=np.inf), "l2"), (dict(l2="0.1"), "l2"), (dict(dtype=np.int64), "dtype"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.MLP(**{"n_in": 4, "hidden": (3,), "n_out": 2, **kwargs})


@pytest.mark.parametrize("Xb, yb, match", [
    (np.zeros((3, 4)), np.zeros(3, int), r"Invalid X: 4 features per sample \(expected 5\)"),
    (np.zeros((3, 5)), np.array([0, 1, 4]), r"Invalid labels: values in \[0, 4\] \(expected labels in \[0, 3\]\)"),
    (np.zeros((3, 5)), np.array([0, 1, -1]), r"Invalid labels"),
    (np.zeros((3, 5)), np.zeros(2, int), r"Invalid y: 2 labels \(expected one per sample: X has 3 samples\)"),
    (np.zeros((0, 5)), np.zeros(0, int), "at least one sample"),
])
def test_bad_batches_raise(Xb, yb, match):
    model = MODELS["relu_1"]()
    before = model.get_flat()
    with pytest.raises(ValueError, match=match):
        model.loss_and_grads(Xb, yb)
    np.testing.assert_array_equal(model.get_flat(), before)


def test_predict_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"Invalid X: 3 features per sample \(expected 5\)"):
        MODELS["relu_1"]().predict(np.zeros((2, 3)))
