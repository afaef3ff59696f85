"""Unit tests of the optimizer contract: lecture boxes, state, dtypes and bad input."""
from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

import nnopt
from nnopt import surfaces

ALL = sorted(nnopt.OPTIMIZERS)


def _params(dtype=np.float64, kind="dict", seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"W": rng.normal(size=(4, 3)).astype(dtype), "b": rng.normal(size=3).astype(dtype)}
    return arrays if kind == "dict" else list(arrays.values())


def _grads_like(params, seed=1):
    rng = np.random.default_rng(seed)
    if isinstance(params, dict):
        return {k: rng.normal(size=v.shape).astype(v.dtype) for k, v in params.items()}
    return [rng.normal(size=v.shape).astype(v.dtype) for v in params]


def _snapshot(opt, params):
    return copy.deepcopy(opt.state_dict()), copy.deepcopy(params)


def _assert_unchanged(opt, params, snap):
    state, old = snap
    new_state = opt.state_dict()
    assert new_state["t"] == state["t"]
    if state["state"] is None:
        assert new_state["state"] is None
    else:
        for a, b in zip(new_state["state"], state["state"]):
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
    values = params.values() if isinstance(params, dict) else params
    old_values = old.values() if isinstance(old, dict) else old
    for a, b in zip(values, old_values):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ lecture boxes
def _alg2_momentum(grad, theta, lr, alpha, steps):
    v = np.zeros_like(theta)
    for _ in range(steps):
        v = alpha * v - lr * grad(theta)
        theta = theta + v
    return theta


def _alg3_nesterov(grad, theta, lr, alpha, steps):
    """The box as written: gradient at the interim point theta + alpha v."""
    v = np.zeros_like(theta)
    interim = []
    for _ in range(steps):
        interim.append(theta + alpha * v)
        v = alpha * v - lr * grad(theta + alpha * v)
        theta = theta + v
    return theta, v, np.array(interim)


def _alg6_rmsprop_nesterov(grad, theta, lr, alpha, rho, eps, steps):
    v, r = np.zeros_like(theta), np.zeros_like(theta)
    for _ in range(steps):
        g = grad(theta + alpha * v)
        r = rho * r + (1 - rho) * g * g
        v = alpha * v - lr / np.sqrt(eps + r) * g
        theta = theta + v
    return theta, v


QUAD = surfaces.Quadratic(condition=20, angle=30)


def test_momentum_is_alg2_on_a_quadratic():
    x0 = np.array([1.5, -1.0])
    p = x0.copy()
    opt = nnopt.Momentum(lr=0.04, momentum=0.8)
    for _ in range(60):
        opt.step([p], [QUAD.grad(p)])
    np.testing.assert_allclose(p, _alg2_momentum(QUAD.grad, x0, 0.04, 0.8, 60), rtol=1e-12, atol=1e-14)


def test_nesterov_lookahead_form_is_alg3_evaluated_at_the_interim_point():
    x0 = np.array([1.5, -1.0])
    phi = x0.copy()
    opt = nnopt.Nesterov(lr=0.04, momentum=0.8)
    stored = []
    for _ in range(60):
        stored.append(phi.copy())
        opt.step([phi], [QUAD.grad(phi)])
    theta, v, interim = _alg3_nesterov(QUAD.grad, x0, 0.04, 0.8, 60)
    # every stored point is the box's interim point theta + alpha v, where the box takes g
    np.testing.assert_allclose(np.array(stored), interim, rtol=1e-12, atol=1e-14)
    # and theta is recovered from the stored point and the velocity
    np.testing.assert_allclose(phi - 0.8 * opt.state_dict()["state"][0]["v"], theta, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(opt.state_dict()["state"][0]["v"], v, rtol=1e-12, atol=1e-14)


def test_rmsprop_nesterov_is_alg6_with_delta():
    x0 = np.array([1.5, -1.0])
    phi = x0.copy()
    opt = nnopt.RMSPropNesterov(lr=0.01, rho=0.9, momentum=0.7, eps=1e-6)
    for _ in range(80):
        opt.step([phi], [QUAD.grad(phi)])
    theta, v = _alg6_rmsprop_nesterov(QUAD.grad, x0, 0.01, 0.7, 0.9, 1e-6, 80)
    np.testing.assert_allclose(phi, theta + 0.7 * v, rtol=1e-11, atol=1e-13)


def test_adam_box_first_step_uses_t_equal_1():
    # with t = 1 the bias corrections make s_hat = g and r_hat = g*g exactly
    g = np.array([0.3, -2.0, 1e-3])
    p = np.zeros(3)
    nnopt.Adam(lr=0.1, eps=1e-8).step([p], [g.copy()])
    np.testing.assert_allclose(p, -0.1 * g / np.sqrt(g * g + 1e-8), rtol=1e-12)


def test_adagrad_and_adadelta_boxes():
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    p = np.zeros(2)
    opt = nnopt.AdaGrad(lr=0.1, eps=1e-7)
    opt.step([p], [g1.copy()])
    opt.step([p], [g2.copy()])
    r = g1**2 + g2**2
    expected = -0.1 * g1 / (1e-7 + np.abs(g1)) - 0.1 * g2 / (1e-7 + np.sqrt(r))
    np.testing.assert_allclose(p, expected, rtol=1e-12)

    p = np.zeros(2)
    opt = nnopt.AdaDelta(rho=0.95, eps=1e-6)
    opt.step([p], [g1.copy()])
    r = 0.05 * g1**2
    step = np.sqrt(0 + 1e-6) / np.sqrt(r + 1e-6) * g1   # u = 0: moves only thanks to delta
    np.testing.assert_allclose(p, -step, rtol=1e-12)
    assert np.all(p != 0)


def test_adamax_and_amsgrad_first_step():
    g = np.array([0.5, -4.0])
    p = np.zeros(2)
    nnopt.Adamax(lr=0.01).step([p], [g.copy()])
    np.testing.assert_allclose(p, -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    p = np.zeros(2)
    nnopt.AMSGrad(lr=0.01).step([p], [g.copy()])
    np.testing.assert_allclose(p, -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-9)


def test_amsgrad_denominator_never_shrinks():
    p_ams, p_adam = np.zeros(1), np.zeros(1)
    ams, adam = nnopt.AMSGrad(lr=0.1), nnopt.Adam(lr=0.1, eps_inside_sqrt=False)
    for g in [10.0] * 5 + [0.1] * 50:
        ams.step([p_ams], [np.array([g])])
        adam.step([p_adam], [np.array([g])])
    assert ams.state_dict()["state"][0]["r_max"][0] >= ams.state_dict()["state"][0]["r"][0]
    assert abs(p_ams[0]) < abs(p_adam[0])


@pytest.mark.parametrize("name", ALL)
def test_converges_on_a_convex_quadratic(name):
    lr = {"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adadelta": 1.0, "adagrad": 0.5}.get(name, 0.05)
    path = surfaces.run(surfaces.Quadratic(condition=10), nnopt.make_optimizer(name, lr=lr), steps=3000)
    assert path.diverged_at is None
    assert path.values[-1] < 1e-3 * path.values[0], name


# ------------------------------------------------------------------ contract
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("kind", ["dict", "list"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_dtype_and_structure(name, kind, dtype):
    params = _params(dtype, kind)
    ids = [id(a) for a in (params.values() if kind == "dict" else params)]
    before = copy.deepcopy(params)
    opt = nnopt.make_optimizer(name, lr=0.01)
    opt.step(params, _grads_like(params))
    arrays = list(params.values()) if kind == "dict" else params
    assert [id(a) for a in arrays] == ids                 # same objects: updated in place
    assert all(a.dtype == dtype for a in arrays)          # no upcasting
    old = list(before.values()) if kind == "dict" else before
    assert any(np.any(a != b) for a, b in zip(arrays, old))
    assert opt.t == 1
    for s in opt.state_dict()["state"]:
        assert all(v.dtype == dtype for v in s.values())


@pytest.mark.parametrize("name", ALL)
def test_float32_follows_float64(name):
    p32, p64 = _params(np.float32, "list"), _params(np.float64, "list")
    o32, o64 = nnopt.make_optimizer(name, lr=0.01), nnopt.make_optimizer(name, lr=0.01)
    for k in range(20):
        g64 = _grads_like(p64, seed=k)
        o64.step(p64, g64)
        o32.step(p32, [g.astype(np.float32) for g in g64])
    for a, b in zip(p32, p64):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip_resumes_the_identical_trajectory(name):
    grads = [_grads_like(_params(), seed=k) for k in range(30)]
    full = _params()
    opt = nnopt.make_optimizer(name, lr=nnopt.schedules.inverse_time(0.05, 0.1))
    for g in grads:
        opt.step(full, g)

    part = _params()
    first = nnopt.make_optimizer(name, lr=nnopt.schedules.inverse_time(0.05, 0.1))
    for g in grads[:12]:
        first.step(part, g)
    saved = pickle.loads(pickle.dumps(first.state_dict()))   # survives serialisation
    resumed = nnopt.make_optimizer(name, lr=nnopt.schedules.inverse_time(0.05, 0.1))
    resumed.load_state_dict(saved)
    for g in grads[12:]:
        resumed.step(part, g)
    assert resumed.t == opt.t == 30
    for k in full:
        np.testing.assert_array_equal(part[k], full[k])


def test_state_dict_is_a_copy_and_reset_forgets():
    p = _params()
    opt = nnopt.Adam()
    opt.step(p, _grads_like(p))
    d = opt.state_dict()
    d["state"][0]["s"][:] = 123.0
    assert not np.any(opt.state_dict()["state"][0]["s"] == 123.0)
    opt.reset()
    assert opt.t == 0 and opt.state_dict()["state"] is None


def test_load_state_dict_rejects_foreign_or_mismatched_state():
    p = _params()
    adam = nnopt.Adam()
    adam.step(p, _grads_like(p))
    with pytest.raises(ValueError, match=r"state_dict optimizer: 'adam' \(expected 'rmsprop'\)"):
        nnopt.RMSProp().load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="beta1"):
        nnopt.Adam(beta1=0.5).load_state_dict(adam.state_dict())
    other = nnopt.Adam()
    other.load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="shape"):
        other.step({"W": np.zeros((2, 2)), "b": np.zeros(3)}, {"W": np.zeros((2, 2)), "b": np.zeros(3)})


def test_schedule_drives_the_learning_rate():
    sched = nnopt.schedules.step_decay(0.1, drop=0.5, every=2)
    opt = nnopt.SGD(lr=sched)
    p = np.zeros(1)
    seen = []
    for _ in range(5):
        seen.append(opt.current_lr())
        opt.step([p], [np.ones(1)])
    assert seen == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert p[0] == pytest.approx(-sum(seen))


def test_make_optimizer_names_and_errors():
    assert isinstance(nnopt.make_optimizer("RMSProp", lr=1e-4), nnopt.RMSProp)
    assert isinstance(nnopt.make_optimizer("rmsprop+nesterov"), nnopt.RMSPropNesterov)
    with pytest.raises(ValueError, match="Invalid optimizer: 'adamm'"):
        nnopt.make_optimizer("adamm")
    with pytest.raises(ValueError, match="Invalid hyperparameters for 'sgd'"):
        nnopt.make_optimizer("sgd", lr=0.1, beta1=0.9)
    assert "beta2=0.999" in repr(nnopt.Adam())


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name, kwargs, culprit", [
    ("sgd", {"lr": -0.1}, "lr"),
    ("sgd", {"lr": float("nan")}, "lr"),
    ("sgd", {"lr": float("inf")}, "lr"),
    ("sgd", {"lr": "0.1"}, "lr"),
    ("momentum", {"lr": 0.1, "momentum": 1.0}, "momentum"),
    ("nesterov", {"lr": 0.1, "momentum": -0.1}, "momentum"),
    ("rmsprop", {"rho": 1.0}, "rho"),
    ("rmsprop", {"rho": -0.5}, "rho"),
    ("rmsprop", {"eps": float("nan")}, "eps"),
    ("rmsprop", {"eps_inside_sqrt": "yes"}, "eps_inside_sqrt"),
    ("adadelta", {"rho": 1.5}, "rho"),
    ("adam", {"beta1": float("nan")}, "beta1"),
    ("adam", {"beta2": 1.0}, "beta2"),
    ("adam", {"eps": -1e-8}, "eps"),
    ("adagrad", {"eps": -1.0}, "eps"),
    ("adamw", {"weight_decay": -0.1}, "weight_decay"),
    ("adamax", {"beta2": 2}, "beta2"),
    ("nadam", {"momentum_decay": float("inf")}, "momentum_decay"),
])
def test_bad_hyperparameters_name_the_culprit(name, kwargs, culprit):
    with pytest.raises(ValueError, match=culprit):
        nnopt.make_optimizer(name, **kwargs)


def test_bad_schedule_value_is_rejected_before_any_change():
    p = _params()
    opt = nnopt.SGD(lr=lambda t: 0.1 if t == 0 else -1.0)
    opt.step(p, _grads_like(p))
    snap = _snapshot(opt, p)
    with pytest.raises(ValueError, match="schedule"):
        opt.step(p, _grads_like(p))
    _assert_unchanged(opt, p, snap)


def _bad_grads(params):
    """(description, grads, expected message fragment) for one params dict."""
    good = _grads_like(params)
    nan = copy.deepcopy(good)
    nan["b"][1] = np.nan
    inf = copy.deepcopy(good)
    inf["W"][0, 0] = -np.inf
    return [
        ("missing key", {"W": good["W"]}, "missing"),
        ("extra key", {**good, "c": good["b"]}, "unexpected"),
        ("list for dict", list(good.values()), "both be dicts"),
        ("wrong shape", {**good, "W": good["W"].T.copy()}, r"grads\['W'\] shape: \(3, 4\) \(expected \(4, 3\)"),
        ("wrong dtype", {**good, "b": good["b"].astype(np.float32)}, r"grads\['b'\] dtype: float32"),
        ("integer grads", {**good, "b": np.ones(3, dtype=np.int64)}, r"grads\['b'\] dtype: int64"),
        ("not an array", {**good, "b": [1.0, 2.0, 3.0]}, r"grads\['b'\]: \[1.0, 2.0, 3.0\] \(expected a numpy array"),
        ("nan", nan, r"grads\['b'\]"),
        ("inf", inf, r"grads\['W'\]"),
    ]


@pytest.mark.parametrize("name", ALL)
def test_bad_grads_raise_and_change_nothing(name):
    params = _params()
    opt = nnopt.make_optimizer(name, lr=0.01)
    opt.step(params, _grads_like(params))            # state exists: it must survive too
    for what, grads, message in _bad_grads(params):
        snap = _snapshot(opt, params)
        error = nnopt.NonFiniteGradient if what in ("nan", "inf") else ValueError
        with pytest.raises(error, match=message):
            opt.step(params, grads)
        _assert_unchanged(opt, params, snap)


def test_nonfinite_gradient_is_a_floating_point_error_and_skip_mode():
    assert issubclass(nnopt.NonFiniteGradient, FloatingPointError)
    p = _params()
    opt = nnopt.Adam(nonfinite="skip")
    g = _grads_like(p)
    g["W"][1, 1] = np.nan
    snap = _snapshot(opt, p)
    opt.step(p, g)
    _assert_unchanged(opt, p, snap)
    assert opt.skipped_steps == 1 and opt.t == 0
    with pytest.raises(ValueError, match="nonfinite"):
        nnopt.Adam(nonfinite="ignore")


def test_huge_but_finite_gradient_is_not_called_non_finite():
    p = [np.zeros(2, dtype=np.float32)]
    opt = nnopt.SGD(lr=1e-20)
    opt.step(p, [np.array([1e20, 1.0], dtype=np.float32)])   # g.g overflows float32
    assert p[0][0] == pytest.approx(-1.0)
    assert math.isinf(opt.last_grad_norm)


def test_integer_or_readonly_params_are_rejected():
    with pytest.raises(ValueError, match=r"params\[0\] dtype: int64 \(expected float32 or float64"):
        nnopt.SGD(0.1).step([np.zeros(3, dtype=int)], [np.zeros(3)])
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nnopt.SGD(0.1).step([ro], [np.zeros(3)])
    with pytest.raises(ValueError, match="list or dict"):
        nnopt.SGD(0.1).step(np.zeros(3), np.zeros(3))


def test_non_contiguous_params_are_updated_in_place():
    base = np.zeros((4, 6))
    view = base[:, ::2]
    nnopt.Adam(lr=0.1).step([view], [np.ones((4, 3))])
    assert np.all(base[:, ::2] < 0) and np.all(base[:, 1::2] == 0)


# ------------------------------------------------------------------ readable path == fast path
def _run(name, dtype, inplace, steps=200, kind="dict"):
    params = _params(dtype, kind)
    opt = nnopt.make_optimizer(name, lr=nnopt.schedules.inverse_time(0.01, 0.01))
    opt.inplace = inplace
    for k in range(steps):
        opt.step(params, _grads_like(params, seed=k))
    return params, opt


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-4)])
def test_readable_update_equals_the_in_place_path(name, dtype, rtol):
    """step runs _update_inplace; _update (the box, plain numpy) gives the same numbers."""
    fast, fast_opt = _run(name, dtype, inplace=True)
    readable, readable_opt = _run(name, dtype, inplace=False)
    scale = max(np.abs(a).max() for a in fast.values())
    for k in fast:
        assert readable[k].dtype == dtype
        np.testing.assert_allclose(readable[k], fast[k], rtol=rtol, atol=rtol * scale, err_msg=f"{name} {k}")
    for a, b in zip(readable_opt.state_dict()["state"], fast_opt.state_dict()["state"]):
        for slot in a:
            np.testing.assert_allclose(a[slot], b[slot], rtol=rtol, atol=rtol * np.abs(b[slot]).max(), err_msg=slot)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(4, 3), (5,)], ids=["matrix", "vector"])
def test_readable_update_steps_a_stack_of_models_with_one_lr_each(name, shape):
    """The readable path broadcasts: M models stacked on a leading axis, c["lr"] of shape (M, 1, ...),
    the state from zero_state(P, stack=1), step exactly like M separate optimizers (what a batched
    trainer relies on; Muon and Adafactor treat the matrix and the vector differently)."""
    lrs = np.array([0.003, 0.01, 0.03])
    singles = [nnopt.make_optimizer(name, lr=float(lr)) for lr in lrs]
    params = [{"W": np.full(shape, 0.5)} for _ in lrs]
    batched = nnopt.make_optimizer(name, lr=1.0)
    P = np.full((len(lrs), *shape), 0.5)
    state = batched.zero_state(P, stack=1)
    assert {k: a.shape[1:] for k, a in state.items()} == batched.state_shapes(shape)
    rng = np.random.default_rng(0)
    for _ in range(25):
        G = rng.normal(size=P.shape)
        for opt, p, g in zip(singles, params, G):
            opt.step(p, {"W": g.copy()})
        batched.t += 1
        batched._update(P, G, state, batched._coefficients(lrs.reshape(-1, *[1] * len(shape))))
    for i, p in enumerate(params):
        np.testing.assert_allclose(P[i], p["W"], rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ review fixes (issue 14, item 4)
def _misaligned(n: int, dtype=np.float64) -> np.ndarray:
    """A C-contiguous, writeable, but misaligned array (odd byte offset): BLAS would work on a copy."""
    a = np.frombuffer(bytearray(n * np.dtype(dtype).itemsize + 1), dtype=dtype, count=n, offset=1)
    assert a.flags.c_contiguous and a.flags.writeable and not a.flags.aligned
    return a


@pytest.mark.parametrize("name", ALL)
def test_misaligned_parameters_are_updated(name):
    p, q = _misaligned(5), np.zeros(5)
    p[:] = 0.0
    g = np.linspace(-1.0, 1.0, 5)
    a, b = nnopt.make_optimizer(name, lr=0.1), nnopt.make_optimizer(name, lr=0.1)
    for _ in range(3):
        a.step([p], [g.copy()])
        b.step([q], [g.copy()])
    assert np.any(p != 0)
    np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ALL)
def test_zero_size_parameter_is_skipped_not_an_error(name):
    params = {"W": np.ones((2, 2)), "empty": np.zeros((0, 3)), "b": np.ones(2)}
    grads = {"W": np.ones((2, 2)), "empty": np.zeros((0, 3)), "b": np.ones(2)}
    opt = nnopt.make_optimizer(name, lr=0.1)
    opt.step(params, grads)
    opt.step(params, grads)
    assert opt.t == 2 and np.all(params["W"] != 1) and np.all(params["b"] != 1)
    assert params["empty"].shape == (0, 3)


def test_load_state_dict_checks_everything_before_changing_anything():
    p = _params()
    saved = nnopt.Adam().state_dict()
    src = nnopt.Adam()
    src.step(p, _grads_like(p))
    good = src.state_dict()
    target = nnopt.Adam()
    target.step(p, _grads_like(p, seed=5))
    target.step(p, _grads_like(p, seed=6))
    before = copy.deepcopy(target.state_dict())
    broken = [
        ({**good, "skipped_steps": "many"}, "skipped_steps"),
        ({**good, "scalars": {"mystery": 1.0}}, "scalars"),
        ({**good, "state": good["state"][:1]}, r"1 entries \(expected 2"),     # shorter than the parameters
        ({**good, "state": [good["state"][0], {"s": 1.0}]}, r"state\[1\]"),
        ({**good, "labels": None}, "state without labels"),
        ({**good, "t": -1}, "t: -1"),
        ({**good, "hyperparams": {**good["hyperparams"], "lr": -1.0}}, "lr"),
    ]
    for bad, message in broken:
        with pytest.raises(ValueError, match=message):
            target.load_state_dict(bad)
        after = target.state_dict()
        assert after["t"] == before["t"] == 2 and after["skipped_steps"] == 0 and after["labels"] == before["labels"]
        for a, b in zip(after["state"], before["state"]):
            np.testing.assert_array_equal(a["s"], b["s"])
    target.load_state_dict(saved)                       # a fresh state (nothing stepped yet) loads
    assert target.t == 0 and target.state_dict()["state"] is None


def test_load_state_dict_restores_a_stored_lr_like_torch_and_keeps_a_schedule():
    src = nnopt.SGD(lr=0.5)
    dst = nnopt.SGD(lr=0.1)
    dst.load_state_dict(src.state_dict())
    assert dst.lr == 0.5                                # torch.optim restores param_groups' lr too
    schedule = nnopt.schedules.constant(0.2)
    scheduled = nnopt.SGD(lr=schedule)
    scheduled.load_state_dict(nnopt.SGD(lr=schedule).state_dict())   # schedules are not stored
    assert scheduled.lr is schedule


@pytest.mark.parametrize("name", ALL)
def test_float16_is_rejected_clearly_and_changes_nothing(name):
    p = [np.ones(3, dtype=np.float16)]
    opt = nnopt.make_optimizer(name, lr=0.1)
    with pytest.raises(ValueError, match=r"Invalid params\[0\] dtype: float16 \(expected float32 or float64"):
        opt.step(p, [np.ones(3, dtype=np.float16)])
    assert opt.t == 0 and np.all(p[0] == 1)


def test_dict_grads_may_list_the_keys_in_another_order():
    a, b = _params(), _params()
    g = _grads_like(a)
    opt_a, opt_b = nnopt.Adam(lr=0.1), nnopt.Adam(lr=0.1)
    opt_a.step(a, g)
    opt_b.step(b, dict(reversed(list(g.items()))))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_messages_keep_the_key_names():
    params = {"params_W": np.zeros(2), "params_b": np.zeros(2)}
    with pytest.raises(nnopt.NonFiniteGradient, match=r"grads\['params_b'\]"):
        nnopt.SGD(0.1).step(params, {"params_W": np.zeros(2), "params_b": np.array([np.nan, 0.0])})
    with pytest.raises(ValueError, match=r"missing \['params_b'\], unexpected \['grads_b'\]"):
        nnopt.SGD(0.1).step(params, {"params_W": np.zeros(2), "grads_b": np.zeros(2)})


def test_make_optimizer_names_the_missing_hyperparameter_not_a_private_class():
    with pytest.raises(ValueError, match=r"Invalid hyperparameters for 'nesterov': \{\} \(expected .*\['lr'\] required"
                       ) as err:
        nnopt.make_optimizer("nesterov")
    assert "_LookAhead" not in str(err.value)
    assert isinstance(nnopt.make_optimizer("NAG", lr=0.1), nnopt.Nesterov)


def test_optimizer_names_are_registered_once():
    with pytest.raises(ValueError, match="optimizer name: 'sgd'"):
        type("Again", (nnopt.Optimizer,), {"name": "sgd"})
    assert list(nnopt.OPTIMIZERS)[:8] == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_nesterov",
                                          "adadelta", "adam"]
