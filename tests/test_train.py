"""nnopt.train.fit: accuracy on digits, History bookkeeping, divergence, early stopping,
clipping, callbacks, progress bar and input checks."""
import math
import warnings

import numpy as np
import pytest

import nnopt
from nnopt import data, models, schedules
from nnopt.train import History, StepInfo, fit


@pytest.fixture(scope="module")
def digits():
    return data.load_digits(seed=0)


@pytest.fixture(scope="module")
def moons():
    return data.moons(n=200, seed=0)


def small_model(seed=0):
    return models.MLP(2, (8,), 2, "tanh", seed=seed)


@pytest.mark.parametrize("optimizer", [nnopt.Adam(lr=3e-3), nnopt.Momentum(lr=0.03)], ids=["adam", "momentum"])
def test_default_mlp_reaches_95_percent_on_digits(digits, optimizer):
    model = models.default_mlp(seed=0)
    history = fit(model, optimizer, digits, epochs=5, batch_size=32, seed=0, progress=False)
    assert history.val_acc[-1] >= 0.95, history.val_acc
    assert history.train_loss[-1] < 0.2 * history.train_loss[0]
    assert model.accuracy(digits.X_val, digits.y_val) == history.val_acc[-1]
    assert not history.diverged and history.message == "completed 5 epochs (200 steps)"


def test_history_lengths_and_rows(moons):
    history = fit(small_model(), nnopt.SGD(lr=0.1), moons, epochs=3, batch_size=50, progress=False)
    steps_per_epoch = math.ceil(len(moons.train) / 50)
    assert history.n_steps == 3 * steps_per_epoch == len(history.step_lr) == len(history.step_grad_norm)
    assert history.n_epochs == 3 and len(history.val_acc) == 4
    assert history.epoch_steps == [0, steps_per_epoch, 2 * steps_per_epoch, 3 * steps_per_epoch]
    assert history.epoch_time[0] <= history.epoch_time[-1] <= history.wall_time
    assert history.optimizer == "SGD(lr=0.1)"
    assert all(g > 0 for g in history.step_grad_norm) and history.step_lr == [0.1] * history.n_steps
    rows = history.to_rows(seed=7)
    assert len(rows) == 4 and rows[-1]["epoch"] == 3 and rows[-1]["seed"] == 7
    assert rows[-1]["val_acc"] == history.val_acc[-1] and rows[0]["step"] == 0
    steps = history.to_rows("step", optimizer="sgd")
    assert len(steps) == history.n_steps and set(steps[0]) == {"optimizer", "step", "loss", "lr", "grad_norm"}
    summary = history.summary()
    assert summary["val_acc"] == history.val_acc[-1] and summary["best_val_acc"] == max(history.val_acc)
    with pytest.raises(ValueError, match="kind"):
        history.to_rows("batch")


def test_step_records_match_a_manual_loop(moons):
    """fit = the textbook loop: same minibatches (same seed), same losses, same parameters."""
    model, twin = small_model(), small_model()
    history = fit(model, nnopt.Momentum(lr=0.05), moons, epochs=2, batch_size=64, seed=3, progress=False)
    opt, rng, losses, norms = nnopt.Momentum(lr=0.05), np.random.default_rng(3), [], []
    for _ in range(2):
        for Xb, yb in data.minibatches(moons.X_train, moons.y_train, 64, seed=rng):
            loss, grads = twin.loss_and_grads(Xb, yb)
            losses.append(loss)
            norms.append(math.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
            opt.step(twin.params, grads)
    np.testing.assert_allclose(history.step_loss, losses, rtol=1e-12)
    np.testing.assert_allclose(history.step_grad_norm, norms, rtol=1e-10)
    np.testing.assert_array_equal(model.get_flat(), twin.get_flat())


def test_same_seed_same_run_and_schedule_is_recorded(moons):
    lr = schedules.step_decay(0.2, 0.5, 4)
    runs = [fit(small_model(), nnopt.SGD(lr=lr), moons, epochs=2, batch_size=40, progress=False) for _ in range(2)]
    assert runs[0].step_loss == runs[1].step_loss
    assert runs[0].step_lr == [lr(t) for t in range(runs[0].n_steps)]
    assert runs[0].step_lr[0] == 0.2 and runs[0].step_lr[4] == 0.1


def test_full_batch_and_zero_epochs(moons):
    history = fit(small_model(), nnopt.SGD(lr=0.1), moons, epochs=4, batch_size=None, progress=False)
    assert history.n_steps == 4 and history.step_loss[0] == pytest.approx(history.train_loss[0])
    untouched = small_model()
    history = fit(untouched, nnopt.SGD(lr=0.1), moons, epochs=0, progress=False)
    assert history.n_steps == 0 and len(history.train_loss) == 1
    np.testing.assert_array_equal(untouched.get_flat(), small_model().get_flat())


def test_pairs_without_validation_and_float32(digits):
    model = models.default_mlp(seed=1, dtype=np.float32)
    history = fit(model, nnopt.Adam(lr=1e-3), (digits.X_train.astype(np.float64), digits.y_train), epochs=1,
                  progress=False)
    assert model.params["W1"].dtype == np.float32          # float64 data was cast once, not the model
    assert math.isnan(history.val_acc[-1]) and history.train_acc[-1] > 0.5


def test_divergence_is_a_result_not_a_crash(digits):
    model = models.default_mlp(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # no numpy overflow warnings leak out
        history = fit(model, nnopt.SGD(lr=50.0), digits, epochs=3, progress=False)
    assert history.diverged and history.diverged_at == history.n_steps < 5
    assert history.message.startswith(f"diverged at step {history.diverged_at}: the minibatch loss became")
    assert history.n_epochs == 0                          # the partial epoch is not evaluated


def test_nan_loss_is_divergence_even_without_explosion_threshold(moons):
    model = models.MLP(2, (8,), 2, "relu", seed=0)
    history = fit(model, nnopt.SGD(lr=1e30), moons, epochs=5, batch_size=10, divergence_factor=None,
                  progress=False)
    assert history.diverged and history.message == "diverged at step 10: the minibatch loss became nan"
    assert max(history.step_loss) > 1e100                 # finite but huge losses alone did not stop it


class NaNGradModel:
    """A duck-typed model whose gradient turns NaN at the third call (loss stays finite)."""

    n_classes = 2

    def __init__(self):
        self.params = {"w": np.zeros(2)}
        self.calls = 0

    def loss_and_grads(self, X, y):
        self.calls += 1
        return 1.0, {"w": np.full(2, np.nan if self.calls == 3 else 1.0)}

    def evaluate(self, X, y):
        return 1.0, 0.5


def test_non_finite_gradient_stops_without_touching_params(moons):
    model = NaNGradModel()
    history = fit(model, nnopt.SGD(lr=0.5), moons, epochs=1, batch_size=40, progress=False)
    assert history.diverged and history.diverged_at == 2 and history.n_steps == 2
    assert "gradient became non-finite" in history.message
    np.testing.assert_array_equal(model.params["w"], [-1.0, -1.0])     # two good steps, the NaN one refused


def test_early_stopping_restores_best(moons):
    model = small_model()
    history = fit(model, nnopt.SGD(lr=2.0), moons, epochs=30, batch_size=8, patience=2, monitor="val_acc",
                  progress=False)
    assert history.stopped_early and history.n_epochs < 30
    assert history.val_acc[history.best_epoch] == max(history.val_acc)
    assert history.n_epochs == history.best_epoch + 2                  # patience: 2 epochs without a gain
    assert model.accuracy(moons.X_val, moons.y_val) == max(history.val_acc)
    assert "early stopping" in history.message and f"epoch {history.best_epoch}" in history.message


def test_early_stopping_patience_counts_epochs(moons):
    history = fit(small_model(), nnopt.SGD(lr=0.0), moons, epochs=10, patience=3, monitor="train_loss",
                  progress=False)
    assert history.n_epochs == 3 and history.best_epoch == 0 and history.stopped_early


@pytest.mark.parametrize("clip", [("norm", 1e-3), ("value", 1e-4)])
def test_clipping_bounds_the_step(moons, clip):
    model = small_model()
    before = model.get_flat()
    history = fit(model, nnopt.SGD(lr=1.0), moons, epochs=1, batch_size=None, clip=clip, progress=False)
    step = np.linalg.norm(model.get_flat() - before)
    bound = 1e-3 if clip[0] == "norm" else 1e-4 * np.sqrt(model.n_params)
    assert step <= bound * (1 + 1e-9)
    assert history.step_grad_norm[0] > 1e-2                # the log keeps the unclipped norm


def test_clip_callable(moons):
    model = small_model()
    before = model.get_flat()
    fit(model, nnopt.SGD(lr=1.0), moons, epochs=1, batch_size=None,
        clip=lambda grads: {k: np.zeros_like(g) for k, g in grads.items()}, progress=False)
    np.testing.assert_array_equal(model.get_flat(), before)


def test_callbacks_see_each_step_and_can_stop(moons):
    seen = []

    def record(info: StepInfo):
        seen.append((info.step, info.epoch, info.loss, info.lr))
        info.history.extra.setdefault("grad_norm_x2", []).append(2 * info.grad_norm)
        return info.step == 5

    history = fit(small_model(), nnopt.SGD(lr=0.1), moons, epochs=3, batch_size=20, callbacks=[record],
                  progress=False)
    assert [s[0] for s in seen] == list(range(6)) and history.n_steps == 6
    assert seen[0][2] == history.step_loss[0] and seen[-1][1] == 1
    assert history.extra["grad_norm_x2"] == [2 * g for g in history.step_grad_norm]
    assert history.stopped_early and history.message == "stopped by a callback after step 5"


def test_progress_bar(moons, capsys, monkeypatch):
    fit(small_model(), nnopt.SGD(lr=0.1), moons, epochs=2, progress=True)
    assert "SGD" in capsys.readouterr().err
    monkeypatch.delenv("NNOPT_PROGRESS", raising=False)
    fit(small_model(), nnopt.SGD(lr=0.1), moons, epochs=2)           # auto: off outside Jupyter
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("NNOPT_PROGRESS", "1")
    fit(small_model(), nnopt.SGD(lr=0.1), moons, epochs=2)
    assert "epoch" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=-1), "epochs"), (dict(epochs=1.5), "epochs"), (dict(batch_size=0), "batch_size"),
    (dict(optimizer="adam"), "Invalid optimizer: 'adam' \\(expected an nnopt optimizer"),
    (dict(data=[1, 2, 3]), "Invalid data"),
    (dict(data=(np.zeros((4, 3)), np.zeros(4, int))), r"Invalid X: 3 features per sample \(expected 2\)"),
    (dict(data=(np.zeros((4, 2)), np.array([0, 1, 2, 0]))), r"Invalid labels: values in \[0, 2\] \(expected labels in \[0, 1\]\)"),
    (dict(data=(np.zeros((0, 2)), np.zeros(0, int))), "empty"),
    (dict(clip=("norm", -1.0)), "clip threshold"), (dict(clip=("value", np.nan)), "clip threshold"), (dict(clip=("l1", 1.0)), "Invalid clip"),
    (dict(patience=0), "patience"), (dict(patience=2, monitor="val_f1"), "monitor"),
    (dict(patience=2, min_delta=-0.1), "min_delta"),
    (dict(divergence_factor=0.5), "divergence_factor"), (dict(callbacks=[1]), "callables"),
])
def test_bad_arguments_raise_before_training(moons, kwargs, match):
    model = small_model()
    args = {"optimizer": nnopt.SGD(lr=0.1), "data": moons, **kwargs}
    with pytest.raises(ValueError, match=match):
        fit(model, args.pop("optimizer"), args.pop("data"), progress=False, **args)
    np.testing.assert_array_equal(model.get_flat(), small_model().get_flat())


def test_val_monitor_needs_val_data(moons):
    with pytest.raises(ValueError, match="needs validation data"):
        fit(small_model(), nnopt.SGD(lr=0.1), (moons.X_train, moons.y_train), patience=2, progress=False)


def test_history_dict_round_trip(moons):
    history = fit(small_model(), nnopt.SGD(lr=0.1), moons, epochs=1, progress=False)
    assert History(**history.to_dict()) == history


def test_history_extend_continues_a_run_and_renumbers_divergence(moons):
    model, opt = small_model(), nnopt.SGD(lr=0.1)
    history = fit(model, opt, moons, epochs=1, batch_size=50, progress=False)
    history.extend(fit(model, opt, moons, epochs=2, batch_size=50, progress=False))
    once = fit(small_model(), nnopt.SGD(lr=0.1), moons, epochs=0, progress=False)
    assert history.n_epochs == 3 and history.epoch_steps == [0, 3, 6, 9] and history.train_loss[0] == once.train_loss[0]
    assert history.message == "completed 3 epochs (9 steps)" and history.n_steps == len(history.step_lr) == 9
    wild = nnopt.SGD(lr=1e30)
    history.extend(fit(model, wild, moons, epochs=5, batch_size=10, progress=False))
    assert history.diverged and history.diverged_at > 9
    assert history.message.startswith(f"diverged at step {history.diverged_at}:")


@pytest.mark.parametrize("name", ["schedulefree_sgd", "schedulefree_adamw"])
def test_schedule_free_is_evaluated_at_its_average_x(moons, name):
    """fit records the losses at the evaluation point x (eval_point), and params are y after."""
    model, opt = small_model(), nnopt.make_optimizer(name, lr=0.05)
    history = fit(model, opt, moons, epochs=3, batch_size=16, seed=0, progress=False)
    y = {k: v.copy() for k, v in model.params.items()}
    assert opt.mode == "train" and history.n_epochs == 3
    at_y = model.evaluate(moons.train.X, moons.train.y)
    opt.eval(model.params)
    at_x, val_at_x = model.evaluate(moons.train.X, moons.train.y), model.evaluate(moons.val.X, moons.val.y)
    opt.train(model.params)
    assert (history.train_loss[-1], history.train_acc[-1]) == pytest.approx(at_x, rel=1e-12)
    assert (history.val_loss[-1], history.val_acc[-1]) == pytest.approx(val_at_x, rel=1e-12)
    assert abs(at_x[0] - at_y[0]) > 1e-6                      # the two points differ: the test can fail
    assert all(np.allclose(model.params[k], y[k], rtol=1e-12, atol=1e-15) for k in y)   # back at y


def test_other_optimizers_are_evaluated_at_params(moons):
    """The default eval_point moves nothing: fit's record equals evaluating params directly,
    also for an optimizer without the hook (duck-typed)."""
    model, opt = small_model(), nnopt.Adam(lr=0.01)
    history = fit(model, opt, moons, epochs=2, batch_size=16, seed=0, progress=False)
    assert history.train_loss[-1] == pytest.approx(model.evaluate(moons.train.X, moons.train.y)[0], rel=1e-12)

    class PlainSGD:
        lr = 0.1

        def current_lr(self):
            return self.lr

        def step(self, params, grads):
            for k in params:
                params[k] -= self.lr * grads[k]

    model = small_model()
    history = fit(model, PlainSGD(), moons, epochs=2, batch_size=16, seed=0, progress=False)
    assert history.train_loss[-1] == pytest.approx(model.evaluate(moons.train.X, moons.train.y)[0], rel=1e-12)
