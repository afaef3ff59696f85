"""nnopt.experiments: same init/minibatches per seed, tidy tables, mean +/- std, sweeps, ensemble."""
import math

import numpy as np
import pytest

import nnopt
from nnopt import data, experiments as ex, models


@pytest.fixture(scope="module")
def moons():
    return data.moons(n=160, seed=0)


def tiny_model(d, seed):
    return models.MLP(d.n_features, (6,), d.n_classes, "tanh", seed=seed)


TINY = dict(model_fn=tiny_model, epochs=2, batch_size=32, progress=False)


def test_compare_optimizers_same_start_per_seed_and_tables(moons):
    res = ex.compare_optimizers({"sgd": ("sgd", {"lr": 0.5}), "adam": ("adam", {"lr": 0.01})}, moons,
                                seeds=(0, 1), **TINY)
    assert [(r.labels["optimizer"], r.seed) for r in res.runs] == [("sgd", 0), ("sgd", 1), ("adam", 0), ("adam", 1)]
    sgd0, sgd1, adam0, adam1 = (r.history for r in res.runs)
    assert sgd0.train_loss[0] == adam0.train_loss[0] != sgd1.train_loss[0]      # same init for a seed
    assert sgd1.train_loss[0] == adam1.train_loss[0]
    rows = res.rows()
    assert len(rows) == 4 * 3 and rows[0] == {**sgd0.to_rows()[0], "optimizer": "sgd", "seed": 0}
    assert len(res.rows("step")) == 4 * sgd0.n_steps
    summary = res.summary()
    assert [row["optimizer"] for row in summary] == ["sgd", "adam"]
    adam = summary[1]
    finals = [adam0.val_acc[-1], adam1.val_acc[-1]]
    assert adam["runs"] == 2 and adam["diverged"] == 0
    assert adam["val_acc_mean"] == pytest.approx(np.mean(finals))
    assert adam["val_acc_std"] == pytest.approx(np.std(finals, ddof=1))
    assert adam["steps_mean"] == adam0.n_steps


def test_default_optimizers_and_list_specs_are_labelled(moons):
    res = ex.compare_optimizers(data=moons, seeds=(0,), **{**TINY, "epochs": 0})
    assert [row["optimizer"] for row in res.summary()] == list(ex.DEFAULT_OPTIMIZERS)
    res = ex.compare_optimizers(["adam", ("momentum", {"lr": 0.05})], moons, seeds=(0,), **{**TINY, "epochs": 0})
    assert [row["optimizer"] for row in res.summary()] == ["adam", "momentum(lr=0.05)"]


def test_same_seed_reproduces_exactly(moons):
    a = ex.compare_optimizers(["adam"], moons, seeds=(3,), **TINY)
    b = ex.compare_optimizers(["adam"], moons, seeds=(3,), **TINY)
    assert a.runs[0].history.step_loss == b.runs[0].history.step_loss


def test_lr_sweep_grids_divergence_and_series(moons):
    res = ex.lr_sweep("rmsprop", data=moons, seeds=(0,), **{**TINY, "epochs": 0})
    assert [row["lr"] for row in res.summary()] == sorted(ex.RMSPROP_LR_GRID)
    res = ex.lr_sweep("adam", data=moons, seeds=(0,), **{**TINY, "epochs": 0})
    assert [row["lr"] for row in res.summary()] == sorted(ex.LR_GRID) == [1e-4, 1e-3, 3e-3, 5e-3, 1e-2]
    res = ex.lr_sweep(["sgd", "momentum"], lrs=[1e4, 0.1], data=moons, seeds=(0, 1), **TINY)
    huge = [row for row in res.summary() if row["lr"] == 1e4]
    assert all(row["diverged"] == 2 and math.isnan(row["val_loss_mean"]) for row in huge)
    lrs, curves = res.series("lr", "train_loss_mean", by="optimizer")
    np.testing.assert_array_equal(lrs, [0.1, 1e4])
    assert set(curves) == {"sgd", "momentum"} and np.isnan(curves["sgd"][1]) and curves["sgd"][0] < 0.7
    assert res.histories(optimizer="sgd", lr=1e4)[0].diverged


def test_schedule_comparison_records_each_schedule(moons):
    res = ex.schedule_comparison(data=moons, seeds=(0,), lr0=0.2, **TINY)
    labels = [row["schedule"] for row in res.summary()]
    assert labels == list(ex.default_schedules(0.2, 10))
    total = res.runs[0].history.n_steps
    for r in res.runs:
        schedule = ex.default_schedules(0.2, total)[r.labels["schedule"]]
        assert r.history.step_lr == [schedule(t) for t in range(total)]
    lr = res.histories(schedule="cosine")[0].step_lr
    assert lr[0] == 0.2 and lr == sorted(lr, reverse=True) and lr[-1] < 0.1 * lr[0]


def test_batch_size_study_steps(moons):
    res = ex.batch_size_study((8, 50, None), ("sgd", {"lr": 0.1}), moons, seeds=(0,), **TINY)
    n = len(moons.train)
    assert [row["batch_size"] for row in res.summary()] == [8, 50, n]
    assert [r.history.n_steps for r in res.runs] == [2 * math.ceil(n / 8), 2 * math.ceil(n / 50), 2]


def test_curve_mean_std_and_padding(moons):
    res = ex.lr_sweep("sgd", lrs=[0.1], data=moons, seeds=(0, 1, 2), **TINY)
    mean, std = res.curve("val_acc")
    stacked = np.array([h.val_acc for h in res.histories()])
    np.testing.assert_allclose(mean, stacked.mean(axis=0))
    np.testing.assert_allclose(std, stacked.std(axis=0))
    res.runs[0].history.val_acc.pop()                 # as if run 0 had stopped an epoch early
    mean, _ = res.curve("val_acc")
    assert mean[-1] == pytest.approx(stacked[1:, -1].mean())
    with pytest.raises(ValueError, match="no run matches"):
        res.curve("val_acc", optimizer="adam")


def test_ensemble_beats_its_average_member():
    digits = data.load_digits()
    ens = ex.ensemble(3, ("adam", {"lr": 3e-3}), digits, epochs=2, progress=False)
    assert len(ens.members) == 3 and len({m.params["W1"][0, 0] for m in ens.members}) == 3
    np.testing.assert_allclose(ens.predict_proba(digits.X_val),
                               np.mean([m.predict_proba(digits.X_val) for m in ens.members], axis=0))
    rows = ens.rows(digits)
    assert [r["model"] for r in rows][-2:] == ["members mean (3)", "ensemble (averaged probabilities)"]
    members, ensemble = rows[-2], rows[-1]
    assert members["val_acc"] == pytest.approx(np.mean([r["val_acc"] for r in rows[:3]]))
    assert ensemble["val_acc"] >= members["val_acc"] and ensemble["test_acc"] >= members["test_acc"]
    assert ens.histories[0].val_acc[-1] == rows[0]["val_acc"]


@pytest.mark.parametrize("call, match", [
    (lambda d: ex.compare_optimizers([nnopt.Adam()], d), "not an optimizer instance"),
    (lambda d: ex.compare_optimizers([lambda: "adam"], d), "expected an nnopt optimizer"),
    (lambda d: ex.compare_optimizers(["sgd"], d), "Invalid hyperparameters"),
    (lambda d: ex.lr_sweep("lbfgs", data=d), "Invalid optimizer: 'lbfgs'"),
    (lambda d: ex.lr_sweep("adam", lrs=[-1e-3], data=d), "positive"),
    (lambda d: ex.compare_optimizers(["adam"], d, seeds=()), "seeds"),
    (lambda d: ex.compare_optimizers(["adam"], (d.X_train, d.y_train)), "Dataset"),
    (lambda d: ex.schedule_comparison({"x": 0.1}, data=d), "callables"),
    (lambda d: ex.batch_size_study((0,), data=d), "batch_size"),
    (lambda d: ex.ensemble(0, data=d), "n_models"),
])
def test_bad_arguments(moons, call, match):
    with pytest.raises(ValueError, match=match):
        call(moons)


def test_runs_keep_their_trained_model_and_progress_bar(moons, capsys):
    res = ex.compare_optimizers(["adam"], moons, seeds=(0, 1), **{**TINY, "progress": True})
    assert "runs" in capsys.readouterr().err
    for r in res.runs:
        assert r.model.accuracy(moons.X_val, moons.y_val) == r.history.val_acc[-1]
    assert res.runs[0].model is not res.runs[1].model


def test_gradient_noise_formula_matches_sampling(tiny_digits):
    noise = ex.minibatch_gradient_noise(tiny_digits, hidden=(8,))
    X, y = tiny_digits.X_train, tiny_digits.y_train
    assert noise.G.shape[0] == 120
    full = nnopt.models.MLP(64, (8,), 10, seed=0).loss_and_grads(X, y)[1]
    np.testing.assert_allclose(noise.g, nnopt.models.flatten(full), rtol=1e-4, atol=1e-6)
    rng = np.random.default_rng(1)
    for b in (1, 10, 60):
        draws = [noise.G[rng.choice(120, b, replace=False)].mean(axis=0) for _ in range(3000)]
        empirical = np.sqrt(np.mean(np.sum((np.array(draws) - noise.g) ** 2, axis=1))) / np.linalg.norm(noise.g)
        assert empirical == pytest.approx(noise.expected_noise(b), rel=0.05)
    assert noise.expected_noise(120) == 0.0


def test_batch_size_bad_value(tiny_digits):
    noise = ex.minibatch_gradient_noise(tiny_digits, hidden=(4,))
    with pytest.raises(ValueError, match=r"Invalid batch size: 0 \(expected an integer >= 1\)"):
        noise.sample(0, draws=5)
    with pytest.raises(ValueError, match=r"Invalid batch size: 121 \(expected an integer in \[1, 120\]"):
        noise.sample(121, draws=5)


def test_race_histories_continue_across_epochs(tiny_digits):
    histories = ex.race({"sgd": 0.1, "adam": 1e-3}, tiny_digits, epochs=3, batch_size=32, hidden=(8,))
    for h in histories.values():
        assert h.n_epochs == 3 and h.n_steps == 12 and h.epoch_steps == [0, 4, 8, 12]
        assert len(h.train_loss) == len(h.val_acc) == len(h.epoch_time) == 4
        assert np.all(np.diff(h.epoch_time) >= 0) and h.message == "completed 3 epochs (12 steps)"
    assert histories["adam"].train_loss[-1] < histories["adam"].train_loss[0]
    with pytest.raises(ValueError, match="at least one optimizer for the race"):
        ex.race({}, tiny_digits)


def test_one_table_of_good_learning_rates():
    from nnopt.widgets import race_explorer
    assert {name: hp["lr"] for name, hp in ex.DEFAULT_OPTIMIZERS.values()} == \
        {name: ex.GOOD_LRS[name] for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")}
    race = race_explorer.TrainingRace(epochs=0)
    for name in race.lanes:                              # every lane of the race starts at the table's rate
        assert race.controls[f"{name}_lr"].value == pytest.approx(ex.GOOD_LRS[name], rel=0.13)


def test_good_lrs_of_lecture_09_come_from_the_committed_sweep():
    """GOOD_LRS's rows for Lion, Schedule-Free, Muon and Adafactor are the best rates of
    benchmarks/good_lrs.py (lowest mean validation loss where no seed diverged), not guesses."""
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "good_lrs.json"
    rows = {r["optimizer"]: r for r in json.loads(path.read_text())["rows"]}
    for name in ("lion", "schedulefree_sgd", "schedulefree_adamw", "muon", "adafactor"):
        row = rows[name]
        ok = [(loss, lr) for lr, loss in zip(row["grid"], row["val_loss_by_lr"]) if lr not in row["diverged_rates"]]
        assert ex.GOOD_LRS[name] == row["best_lr"] == min(ok)[1], name
