"""nnopt.batched.fit_batched and nnopt.stacked: every model of a batch is what nnopt.train.fit
makes of it alone (same seed, same hyperparameters) -- parameters, History and optimizer state --
including divergence, non-finite gradients and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import nnopt
from nnopt import data, models, schedules
from nnopt.batched import fit_batched, steps_a_stack
from nnopt.optimizer_base import Optimizer
from nnopt.stacked import StackedMLP, stacked_cross_entropy
from nnopt.train import fit

TOL = 1e-10
CLASSIC = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_nesterov", "adadelta", "adam", "adamax",
           "adamw", "nadam", "amsgrad"]
HISTORY_EXACT = ("epoch_steps", "diverged", "diverged_at", "message", "stopped_early", "optimizer")
HISTORY_CLOSE = ("step_loss", "step_lr", "step_grad_norm", "train_loss", "train_acc", "val_loss", "val_acc")


@pytest.fixture(scope="module")
def small() -> data.Dataset:
    """300 training / 100 validation digits in float64."""
    ds = data.load_digits(dtype=np.float64)
    return data.Dataset(train=data.Split(ds.X_train[:300], ds.y_train[:300]),
                        val=data.Split(ds.X_val[:100], ds.y_val[:100]), test=ds.test, n_classes=10, name="small")


def mlp(seed: int = 0, hidden=(16,), **kw) -> models.MLP:
    return models.MLP(64, hidden, 10, dtype=np.float64, seed=seed, **kw)


def assert_same_run(batched_model, batched_opt, h, fit_model, fit_opt, h_fit, tol=TOL):
    """A model of a batch against the same model trained alone by fit."""
    for name in HISTORY_EXACT:
        assert getattr(h, name) == getattr(h_fit, name), name
    for name in HISTORY_CLOSE:
        np.testing.assert_allclose(getattr(h, name), getattr(h_fit, name), rtol=tol, atol=tol, err_msg=name)
    for name, p in fit_model.params.items():
        np.testing.assert_allclose(batched_model.params[name], p, rtol=tol, atol=tol, err_msg=name)
    mine, theirs = batched_opt.state_dict(), fit_opt.state_dict()
    assert (mine["t"], mine["labels"], mine["skipped_steps"]) == (theirs["t"], theirs["labels"], theirs["skipped_steps"])
    np.testing.assert_allclose(list(mine["scalars"].values()), list(theirs["scalars"].values()), rtol=tol)
    for a, b in zip(mine["state"] or [], theirs["state"] or []):
        for slot in b:
            np.testing.assert_allclose(a[slot], b[slot], rtol=tol, atol=tol, err_msg=slot)


def fit_each(specs, ds, model_fn=mlp, **kw):
    """fit, one model at a time: the reference."""
    out = []
    for spec in specs:
        model, opt = model_fn(), spec()
        out.append((model, opt, fit(model, opt, ds, progress=False, **kw)))
    return out


# ----------------------------------------------------------------------------- equal to fit
def test_every_classic_optimizer_matches_fit_alone(small):
    specs = [lambda n=n, lr=lr: nnopt.make_optimizer(n, lr=lr) for n in CLASSIC
             for lr in ([1e-3, 3e-3] if n not in ("sgd", "adadelta") else [0.05, 0.5])]
    ms, opts = [mlp() for _ in specs], [s() for s in specs]
    histories = fit_batched(ms, opts, small, epochs=3, batch_size=32)
    for m, o, h, (fm, fo, fh) in zip(ms, opts, histories, fit_each(specs, small, epochs=3, batch_size=32)):
        assert_same_run(m, o, h, fm, fo, fh)
        assert h.message == "completed 3 epochs (30 steps)"


def test_the_newer_optimizers_match_fit_alone_schedule_free_evaluated_at_x(small):
    """Lion, Schedule-Free (evaluated at its average x, as fit does: it steps alone), Muon and
    Adafactor in one batch with an Adam lane: every model as fit leaves it."""
    from nnopt.batched import has_eval_point
    names = ["lion", "schedulefree_sgd", "schedulefree_adamw", "muon", "adafactor", "adam"]
    specs = [lambda n=n: nnopt.make_optimizer(n, lr=nnopt.experiments.GOOD_LRS[n]) for n in names]
    ms, opts = [mlp() for _ in specs], [s() for s in specs]
    histories = fit_batched(ms, opts, small, epochs=2, batch_size=32)
    for m, o, h, (fm, fo, fh) in zip(ms, opts, histories, fit_each(specs, small, epochs=2, batch_size=32)):
        assert_same_run(m, o, h, fm, fo, fh)
    assert [has_eval_point(o) for o in opts] == [False, True, True, False, False, False]


def test_schedules_hyperparameters_l2_and_deeper_networks(small):
    cos = schedules.cosine(0.1, 40)
    specs = [lambda: nnopt.SGD(lr=schedules.linear_decay(0.5, 0.005, 25)), lambda: nnopt.SGD(lr=cos),
             lambda: nnopt.Momentum(lr=0.02, momentum=0.5), lambda: nnopt.Momentum(lr=0.02, momentum=0.9),
             lambda: nnopt.Adam(lr=schedules.warmup(schedules.constant(3e-3), 5), eps_inside_sqrt=False)]
    model_fn = lambda: mlp(hidden=(12, 8), activation="tanh", l2=1e-2)  # noqa: E731
    ms, opts = [model_fn() for _ in specs], [s() for s in specs]
    histories = fit_batched(ms, opts, small, epochs=2, batch_size=50)
    for m, o, h, ref in zip(ms, opts, histories, fit_each(specs, small, model_fn=model_fn, epochs=2, batch_size=50)):
        assert_same_run(m, o, h, *ref)
    assert histories[0].step_lr[:2] == [0.5, schedules.linear_decay(0.5, 0.005, 25)(1)]


def test_own_seeds_own_minibatches_and_initialisations(small):
    seeds = [0, 1, 2, 1]
    ms = [mlp(seed=s) for s in seeds]
    opts = [nnopt.Adam(lr=3e-3) for _ in seeds]
    histories = fit_batched(ms, opts, small, epochs=2, batch_size=40, seed=seeds)
    refs = []
    for s in seeds:
        model, opt = mlp(seed=s), nnopt.Adam(lr=3e-3)
        refs.append((model, opt, fit(model, opt, small, epochs=2, batch_size=40, seed=s, progress=False)))
    for m, o, h, ref in zip(ms, opts, histories, refs):
        assert_same_run(m, o, h, *ref)
    assert histories[1].step_loss == histories[3].step_loss != histories[2].step_loss


def test_full_batch_no_shuffle_drop_last_and_clipping(small):
    for kw in ({"batch_size": None, "shuffle": False}, {"batch_size": 64, "drop_last": True},
               {"batch_size": 32, "clip": ("norm", 0.5)}, {"batch_size": 32, "clip": ("value", 0.01)}):
        specs = [lambda: nnopt.SGD(lr=0.3), lambda: nnopt.RMSProp(lr=1e-3)]
        ms, opts = [mlp(), mlp()], [s() for s in specs]
        histories = fit_batched(ms, opts, small, epochs=2, **kw)
        for m, o, h, ref in zip(ms, opts, histories, fit_each(specs, small, epochs=2, **kw)):
            assert_same_run(m, o, h, *ref)


def test_training_continues_like_fit(small):
    """After a batch, the optimizers hold fit's state: fit can continue each run exactly."""
    m, o = mlp(), nnopt.Nadam(lr=2e-3)
    fit_batched([m, mlp(seed=3)], [o, nnopt.Nadam(lr=1e-3)], small, epochs=1)
    m2, o2 = mlp(), nnopt.Nadam(lr=2e-3)
    fit(m2, o2, small, epochs=1, progress=False)
    h = fit(m, o, small, epochs=1, seed=5, progress=False)
    h2 = fit(m2, o2, small, epochs=1, seed=5, progress=False)
    assert_same_run(m, o, h, m2, o2, h2)
    # and a batch resumes optimizers that have state already
    h = fit_batched([m, mlp()], [o, nnopt.Nadam(lr=2e-3)], small, epochs=1, seed=6)[0]
    h2 = fit(m2, o2, small, epochs=1, seed=6, progress=False)
    assert_same_run(m, o, h, m2, o2, h2)


# ----------------------------------------------------------------------------- divergence
def test_a_diverging_model_does_not_poison_the_others(small):
    lrs = [0.01, 3.0, 0.1, 30.0, 1e3, 0.3]
    specs = [lambda lr=lr: nnopt.SGD(lr=lr) for lr in lrs]
    ms, opts = [mlp() for _ in specs], [s() for s in specs]
    epochs = []
    histories = fit_batched(ms, opts, small, epochs=4, batch_size=32, on_epoch=lambda hs, e: epochs.append(e))
    refs = fit_each(specs, small, epochs=4, batch_size=32)
    for m, o, h, ref in zip(ms, opts, histories, refs):
        assert_same_run(m, o, h, *ref)
    diverged = [h.diverged for h in histories]
    assert diverged == [False, True, False, True, True, False]
    assert len({h.diverged_at for h in histories if h.diverged}) > 1          # at different steps
    assert "diverged at step" in histories[3].message and "became" in histories[3].message
    assert epochs == [0, 1, 2, 3, 4]
    assert all(np.isfinite(p).all() for m in ms for p in m.params.values())


def test_a_nonfinite_gradient_ends_only_that_run(small):
    """Subnormal hidden activations and huge output weights: the loss is finite, the gradient is not."""
    def broken():
        model = mlp()
        model.params["W1"][:] = 0.0
        model.params["b1"][:] = 1e-310                       # a tiny (subnormal) activation: small logits
        W2 = model.params["W2"]
        W2[:] = np.where(np.arange(W2.size).reshape(W2.shape) % 3, 1e308, -1e308)
        return model
    specs = [lambda: nnopt.Adam(lr=1e-3), lambda: nnopt.SGD(lr=0.1),
             lambda: nnopt.Adam(lr=1e-3, nonfinite="skip")]
    builders = [mlp, broken, broken]
    ms, opts = [b() for b in builders], [s() for s in specs]
    loud = (small.X_train * 1e3, small.y_train, small.X_val * 1e3, small.y_val)    # dW1 = X^T dZ1 overflows
    histories = fit_batched(ms, opts, loud, epochs=2, batch_size=32)
    for m, o, h, spec, build in zip(ms, opts, histories, specs, builders):
        model, opt = build(), spec()
        assert_same_run(m, o, h, model, opt, fit(model, opt, loud, epochs=2, batch_size=32, progress=False))
    assert histories[1].diverged_at == 0
    assert histories[1].message.startswith("diverged at step 0: the gradient became non-finite (Invalid grads['W1']")
    assert not histories[2].diverged and opts[2].skipped_steps == 20 and opts[2].t == 0
    assert not histories[0].diverged and histories[0].train_loss[-1] < histories[0].train_loss[0]


# ----------------------------------------------------------------------------- new optimizers plug in
class MatrixNormalized(Optimizer):
    """A shape-aware update (like Muon's): each matrix step has unit Frobenius norm, biases plain SGD.
    Its ``_update`` does not broadcast over a model axis. (No ``name``: a named subclass would
    register itself in ``nnopt.OPTIMIZERS`` for every later test.)"""

    def _update(self, p, g, state, c):
        p -= c["lr"] * (g / np.linalg.norm(g) if p.ndim == 2 else g)


def test_an_update_that_does_not_broadcast_is_stepped_model_by_model(small):
    shapes = {name: a.shape for name, a in mlp().params.items()}
    assert steps_a_stack(nnopt.Adam(lr=1e-3), shapes) and steps_a_stack(nnopt.AdaDelta(), shapes)
    assert not steps_a_stack(MatrixNormalized(lr=0.1), shapes)
    specs = [lambda: MatrixNormalized(lr=0.1), lambda: nnopt.Adam(lr=1e-3), lambda: MatrixNormalized(lr=0.3)]
    ms, opts = [mlp() for _ in specs], [s() for s in specs]
    histories = fit_batched(ms, opts, small, epochs=2)
    for m, o, h, ref in zip(ms, opts, histories, fit_each(specs, small, epochs=2)):
        assert_same_run(m, o, h, *ref)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_and_changes_nothing(small):
    m, o = mlp(), nnopt.Adam(lr=1e-3)
    before = {k: v.copy() for k, v in m.params.items()}
    bad_X = small.X_train.copy()
    bad_X[0, 0] = np.nan
    cases = [
        (([m, mlp(hidden=(8,))], [o, nnopt.SGD(lr=0.1)], small), r"Invalid models\[1\]: MLP\(64 -> 8 -> 10"),
        (([m], [o, nnopt.SGD(lr=0.1)], small), r"Invalid optimizers: 2 optimizers \(expected 1, one per model\)"),
        (([m, mlp()], [o, o], small), r"Invalid optimizers: the same object at positions 0 and 1"),
        (([m, m], [o, nnopt.SGD(lr=0.1)], small), r"Invalid models: the same object at positions 0 and 1"),
        (([m], ["adam"], small), r"Invalid optimizers\[0\]: 'adam' \(expected an nnopt optimizer"),
        (([m, models.SoftmaxRegression(64, 10)], [o, nnopt.SGD(lr=0.1)], small), r"Invalid models\[1\]"),
        (([], [], small), r"Invalid models: \[\] \(expected at least one model\)"),
        (([m], [o], (bad_X, small.y_train)), r"Invalid X: NaN or inf values \(expected finite values\)"),
        (([m], [o], (small.X_train, small.y_train + 10)), r"Invalid labels"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            fit_batched(*args, epochs=1)
    for kw, message in [({"epochs": -1}, "Invalid epochs: -1"), ({"batch_size": 0}, "Invalid batch_size"),
                        ({"seed": [0, 1]}, "Invalid seed: \\[0, 1\\] \\(expected an integer, None, a numpy Generator, or a sequence of 1"),
                        ({"clip": ("norm",)}, "Invalid clip"), ({"divergence_factor": 0.5}, "Invalid divergence_factor"),
                        ({"on_epoch": 3}, "Invalid on_epoch: 3")]:
        with pytest.raises(ValueError, match=message):
            fit_batched([m], [o], small, **kw)
    assert o.t == 0 and o.state_dict()["state"] is None
    for k, v in before.items():
        np.testing.assert_array_equal(m.params[k], v)


def test_an_error_during_training_restores_the_optimizers(small):
    def bad_schedule(t):
        return 0.1 if t < 5 else float("nan")
    m1, m2 = mlp(), mlp()
    o1, o2 = nnopt.Adam(lr=1e-3), nnopt.SGD(lr=bad_schedule)
    before = {k: v.copy() for k, v in m1.params.items()}
    with pytest.raises(ValueError, match="Invalid lr at t=5"):
        fit_batched([m1, m2], [o1, o2], small, epochs=1)
    assert o1.t == o2.t == 0 and o1.state_dict()["state"] is None
    for k, v in before.items():
        np.testing.assert_array_equal(m1.params[k], v)


# ----------------------------------------------------------------------------- the stack itself
def test_stacked_cross_entropy_is_the_models_per_model():
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(3, 7, 5)) * 30, rng.integers(0, 5, size=(3, 7))
    losses, dlogits = stacked_cross_entropy(logits, y)
    for m in range(3):
        loss, d = models.softmax_cross_entropy(logits[m].copy(), y[m])
        assert losses[m] == pytest.approx(loss, rel=1e-14)
        np.testing.assert_allclose(dlogits[m], d, rtol=1e-13, atol=1e-16)


def test_stacked_mlp_gradients_and_evaluation_are_each_models(small):
    ms = [mlp(seed=s, hidden=(8, 6), l2=l2) for s, l2 in ((0, 0.0), (1, 0.1), (2, 1e-3))]
    stack = StackedMLP(ms)
    assert stack.params["W1"].shape == (3, 64, 8) and stack.params["b1"].shape == (3, 1, 8)
    X, y = small.X_train[:20], small.y_train[:20]
    losses, grads = stack.loss_and_grads(X, y)
    val_losses, accs = stack.evaluate(small.X_val, small.y_val)
    for m, model in enumerate(ms):
        loss, g = model.loss_and_grads(X, y)
        assert losses[m] == pytest.approx(loss, rel=1e-13)
        for name in g:
            np.testing.assert_allclose(grads[name][m].reshape(g[name].shape), g[name], rtol=1e-12, atol=1e-15)
        assert (val_losses[m], accs[m]) == pytest.approx(model.evaluate(small.X_val, small.y_val), rel=1e-13)


# ----------------------------------------------------------------------------- the race remembers its lanes
def assert_same_history(h, ref):
    for name in HISTORY_EXACT:
        assert getattr(h, name) == getattr(ref, name), name
    for name in HISTORY_CLOSE:
        np.testing.assert_allclose(getattr(h, name), getattr(ref, name), rtol=TOL, atol=TOL, err_msg=name)


def test_race_lanes_are_fit_alone_and_remembered_lanes_are_cut_or_continued(small):
    from nnopt.race import Race
    lrs = {"sgd": 30.0, "adam": 3e-3, "momentum": 0.05}           # sgd diverges in the first epoch

    def alone(name, lr, epochs):
        return fit(mlp(hidden=(8,)), nnopt.make_optimizer(name, lr=lr), small, epochs=epochs, batch_size=32,
                   progress=False)

    race = Race(small, hidden=(8,))
    assert race.pending(lrs, 3, 32) == 9
    seen = []
    histories = race.run(lrs, 3, 32, on_epoch=lambda hs, e: seen.append(e))
    assert seen == [0, 1, 2, 3] and histories["sgd"].diverged
    for name, lr in lrs.items():
        assert_same_history(histories[name], alone(name, lr, 3))
    assert race.pending(lrs, 2, 32) == 0 and race.pending(lrs, 5, 32) == 4     # sgd ended: nothing to continue
    for epochs in (2, 5, 1):                                         # cut, continued, cut again
        histories = race.run(lrs, epochs, 32)
        for name, lr in lrs.items():
            assert_same_history(histories[name], alone(name, lr, epochs))
    moved = {**lrs, "adam": 1e-3}                                   # one lane's slider: that lane alone trains
    assert race.pending(moved, 5, 32) == 5
    assert_same_history(race.run(moved, 5, 32)["adam"], alone("adam", 1e-3, 5))
