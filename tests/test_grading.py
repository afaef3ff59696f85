"""nnopt.grading in student mode: the checks give instant verdicts from a separate reference
process, record numbers, and resist what a kernel can do to numpy and nnopt."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import nnopt  # noqa: E402
from nnopt import grading  # noqa: E402
from nnopt.grading import GradingError, answers, cells, checks, client, record, spec  # noqa: E402
from nnopt.grading.outcome import Context  # noqa: E402
from nnopt.grading.verdict import judge  # noqa: E402


# ----------------------------------------------------------------- student-style answers
class Momentum:
    def __init__(self, lr, momentum=0.9):
        self.lr, self.momentum, self.t, self.v = lr, momentum, 0, None

    def step(self, theta, grad):
        if self.v is None:
            self.v = np.zeros_like(theta)
        lr = self.lr(self.t) if callable(self.lr) else self.lr
        self.t += 1
        self.v = self.momentum * self.v - lr * grad
        return theta + self.v


class Adam:
    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps
        self.t, self.s, self.r = 0, None, None

    def step(self, theta, grad):
        if self.s is None:
            self.s, self.r = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        self.s = self.b1 * self.s + (1 - self.b1) * grad
        self.r = self.b2 * self.r + (1 - self.b2) * grad * grad
        return theta - self.lr * (self.s / (1 - self.b1 ** self.t)) / np.sqrt(self.r / (1 - self.b2 ** self.t) + self.eps)


def inverse_time(lr0, k):
    return lambda t: lr0 / (1 + k * t)


def clip(grads, max_norm):
    norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))
    scale = max_norm / norm if norm > max_norm else 1.0
    return [g * scale for g in grads], norm


# ----------------------------------------------------------------- correct answers pass
def test_every_kind_of_check_passes_a_correct_answer(capsys):
    grading.check_trajectory(Momentum, "momentum", {"lr": 0.05, "momentum": 0.9}, surface="quadratic", steps=40)
    grading.check_sequence(Adam, "adam", {"lr": 0.01}, x0=[1.0, -2.0, 0.5],
                           grads=[[1e-3, 1.0, -1e3], [0.0, 0.0, 0.0], [2.0, -1.0, 0.0]])
    grading.check_sequence(Adam, "adam", {"lr": 0.01}, x0=[1.0, -2.0], grads=[[1.0, 3.0]], dtype="float32")
    grading.check_schedule(inverse_time, "inverse_time", {"lr0": 0.3, "k": 0.01}, ts=range(0, 500, 7))
    grading.check_clipping(clip, "clip_by_global_norm", [([[1.0, 1.0, 1.0], [[2.0, 2.0], [2.0, 2.0]]], 1.0),
                                                         ([[0.0, 0.0]], 1.0)])
    grading.check_clipping(clip, "clip_by_global_norm", [([[3.0, 4.0]], 10.0)], dtype="float32")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and all(ln.startswith("\u2713 ") for ln in lines), lines
    assert "all 40 steps agree" in lines[0]


def test_a_schedule_reaches_the_student_as_a_plain_table():
    seen = []

    class Probe(Momentum):
        def step(self, theta, grad):
            seen.append(self.lr(self.t))
            return super().step(theta, grad)

    ok, msg = grading.compare_trajectory(Probe, "momentum",
                                         {"lr": grading.schedule("exponential", lr0=0.05, k=0.1), "momentum": 0.5},
                                         surface="quadratic", steps=10)
    assert ok, msg
    assert seen == pytest.approx([0.05 * np.exp(-0.1 * t) for t in range(10)])
    lr = answers.schedule_table({"schedule": "constant", "lr": 0.1}, 5)
    assert lr(4) == 0.1
    with pytest.raises(GradingError, match="0..4"):
        lr(5)
    with pytest.raises(ValueError, match="Invalid schedule"):
        grading.schedule("no_such_schedule", lr0=1.0)


def test_both_diverging_counts_as_agreement_but_diverging_alone_does_not():
    ok, msg = grading.compare_trajectory(Momentum, "momentum", {"lr": 0.5, "momentum": 0.9},
                                         surface="quadratic", steps=100)
    assert ok and "both diverge" in msg, msg

    class Damped(Momentum):
        def step(self, theta, grad):
            return np.clip(super().step(theta, grad), -10, 10)

    ok, msg = grading.compare_trajectory(Damped, "momentum", {"lr": 0.5, "momentum": 0.9},
                                         surface="quadratic", steps=100)
    assert not ok, msg


# ----------------------------------------------------------------- wrong answers fail, clearly
def test_a_wrong_answer_is_reported_at_the_first_differing_step_with_tolerance_and_dtype():
    class NoVelocity(Momentum):
        def step(self, theta, grad):
            return theta - self.lr * grad

    ok, msg = grading.compare_trajectory(NoVelocity, "momentum", {"lr": 0.05, "momentum": 0.9},
                                         surface="quadratic", steps=20)
    assert not ok
    # step 1 agrees (v = 0 makes momentum's first step plain SGD); step 2 does not
    assert "step 2 differs" in msg and "expected after step 2" in msg and "gradient there" in msg
    assert "1e-09*|expected|" in msg and "float64" in msg
    with pytest.raises(GradingError, match="step 2 differs"):
        grading.check_trajectory(NoVelocity, "momentum", {"lr": 0.05, "momentum": 0.9}, surface="quadratic", steps=20)


def test_the_why_of_a_visible_check_is_in_its_message():
    class Frozen(Momentum):
        def step(self, theta, grad):
            return theta.copy()

    ok, msg = grading.compare_sequence(Frozen, "momentum", {"lr": 0.1, "momentum": 0.5}, x0=[1.0, 1.0],
                                       grads=[[1.0, -2.0]], why="the first step lands on (0.9, 1.2)")
    assert not ok and "the first step lands on (0.9, 1.2)" in msg and "expected after step 1: [0.9, 1.2]" in msg


@pytest.mark.parametrize("bad_step, needle", [
    (lambda self, theta, grad: None, "forget a `return`"),
    (lambda self, theta, grad: np.zeros(3), "shape (3,)"),
    (lambda self, theta, grad: "theta", "not an array of numbers"),
])
def test_malformed_returns_get_a_message(bad_step, needle):
    cls = type("Bad", (Momentum,), {"step": bad_step})
    ok, msg = grading.compare_trajectory(cls, "momentum", {"lr": 0.1}, surface="quadratic", steps=3)
    assert not ok and needle in msg, msg


def test_check_lets_the_students_exception_through_and_records_it(capsys):
    class Stub:
        def __init__(self, lr, momentum=0.9):
            raise NotImplementedError("write your code here")

    with pytest.raises(NotImplementedError, match="write your code here"):
        grading.check_trajectory(Stub, "momentum", {"lr": 0.1})
    ok, msg = grading.compare_trajectory(Stub, "momentum", {"lr": 0.1})
    assert not ok and "your code raised NotImplementedError: write your code here" in msg


def test_a_clipping_function_that_modifies_its_input_fails():
    def in_place(grads, max_norm):
        grads[0] *= 0.5
        return grads, 1.0

    ok, msg = grading.compare_clipping(in_place, "clip_by_global_norm", [([[1.0, 1.0, 1.0]], 1.0)])
    assert not ok and "modified its input" in msg


def test_float32_answers_pass_only_for_float32_inputs():
    class Float32Adam(Adam):
        def step(self, theta, grad):
            return super().step(theta.astype(np.float32), grad.astype(np.float32))

    ok, msg = grading.compare_sequence(Float32Adam, "adam", {"lr": 0.01}, x0=[1.0, -1.0],
                                       grads=[[0.5, -2.0], [1.0, 1.0]], dtype="float32")
    assert ok, msg
    ok, msg = grading.compare_trajectory(Float32Adam, "adam", {"lr": 0.05}, surface="quadratic", steps=20)
    assert not ok and "float32" in msg


# ----------------------------------------------------------------- cheating does not pay
def test_calling_the_reference_from_an_answer_fails_and_everything_is_restored():
    class Wrapper:
        def __init__(self, lr, momentum=0.9):
            self.opt = nnopt.Momentum(lr, momentum)

        def step(self, theta, grad):
            self.opt.step([theta], [grad])
            return theta

    ok, msg = grading.compare_trajectory(Wrapper, "momentum", {"lr": 0.05}, surface="quadratic")
    assert not ok and "implement it yourself" in msg
    ok, msg = grading.compare_clipping(lambda g, m: nnopt.clip_by_global_norm(g, m), "clip_by_global_norm",
                                       [([[1.0, 1.0]], 1.0)])
    assert not ok and "clip_by_global_norm" in msg
    p = np.ones(2)
    nnopt.Momentum(0.1).step([p], [np.ones(2)])
    assert p == pytest.approx([0.9, 0.9])
    assert nnopt.clip_by_global_norm([np.ones(4)], 1.0)[1] == 2.0


def test_overwriting_nnopt_and_numpy_in_the_kernel_does_not_change_the_verdict(monkeypatch):
    class Wrong(Momentum):
        def step(self, theta, grad):
            return theta - self.lr * grad

    monkeypatch.setattr(nnopt, "Momentum", Wrong)
    monkeypatch.setitem(nnopt.OPTIMIZERS, "momentum", Wrong)
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    ok, _ = grading.compare_trajectory(Wrong, "momentum", {"lr": 0.05}, surface="quadratic")
    assert not ok, "the reference must come from a fresh interpreter"
    ok, msg = grading.compare_trajectory(Momentum, "momentum", {"lr": 0.05}, surface="quadratic")
    assert ok, msg


def test_answers_are_numbers_converted_with_numpy_captured_at_import(monkeypatch):
    class AlwaysEqual(np.ndarray):
        def __eq__(self, other):
            return True

    class Liar(Momentum):
        def step(self, theta, grad):
            return np.zeros_like(theta).view(AlwaysEqual)

    ok, msg = grading.compare_trajectory(Liar, "momentum", {"lr": 0.05}, surface="quadratic", steps=5)
    assert not ok and "step 1 differs" in msg
    monkeypatch.setattr(np, "asarray", lambda *a, **k: np.zeros(2))
    assert answers.as_array([1, 2, 3], "x").tolist() == [1.0, 2.0, 3.0]


def test_the_reference_process_is_restarted_if_it_dies_and_reports_bad_requests():
    grading.connect()
    client.REFERENCE.proc.kill()
    client.REFERENCE.proc.wait()
    grading.check_schedule(inverse_time, "inverse_time", {"lr0": 0.5, "k": 0.1}, ts=range(3))
    verdict = client.ask({"v": 1, "spec": {"kind": "no such kind", "args": {}}, "answer": {}})
    assert not verdict["ok"] and verdict["grader_error"]
    assert not client.ask({"garbage": True})["ok"]


# ----------------------------------------------------------------- record mode (autograde)
def test_in_record_mode_checks_only_record(monkeypatch, capsys):
    monkeypatch.setenv("NNOPT_GRADING_MODE", "record")
    published = []
    monkeypatch.setattr(record, "publish", lambda rec, text: published.append((rec, text)))

    class Wrong(Momentum):
        def step(self, theta, grad):
            return theta

    grading.check_trajectory(Wrong, "momentum", {"lr": 0.05}, surface="quadratic", steps=3)   # no raise
    grading.connect()                                                                       # no process
    (rec, text), = published
    assert text.startswith("recorded for grading") and rec["spec"]["kind"] == "trajectory"
    assert len(rec["answer"]["path"]) == 4
    verdict = judge(rec)                       # what the grader does with it
    assert not verdict.ok and "step 1 differs" in verdict.message


def test_records_encode_non_finite_numbers_and_refuse_garbage():
    encoded = record.encode([1.0, np.nan, np.inf, -np.inf])
    assert encoded == [1.0, "nan", "inf", "-inf"]
    decoded = record.decode(encoded)
    assert np.isnan(decoded[1]) and decoded[2] == np.inf
    for bad in (["x"], [[1.0], [1.0, 2.0]], [True], {"a": 1}):
        with pytest.raises(ValueError, match="Invalid"):
            record.decode(bad)
    with pytest.raises(ValueError, match="Invalid record"):
        record.parse({"v": 99})
    assert "malformed record" in judge({"v": 1, "spec": "nope"}).message


# ----------------------------------------------------------------- the same spec on both sides
def test_a_test_cell_parses_to_the_spec_the_kernel_records():
    source = ('from nnopt import grading\n'
              'grading.check_trajectory(Momentum, "momentum", {"lr": grading.schedule("exponential", lr0=0.1, k=0.5),'
              ' "momentum": 0.9}, surface="quadratic", steps=5, why="in words")\n'
              'grading.check_schedule(inverse_time, "inverse_time", {"lr0": 0.5, "k": -0.1}, ts=range(0, 9, 3))\n'
              'pass\n')
    parsed = cells.expected_checks(source)
    assert [e.answers for e in parsed] == [("Momentum",), ("inverse_time",)]
    _, kernel = spec.bind(checks.check_trajectory, "trajectory",
                          (Momentum, "momentum", {"lr": grading.schedule("exponential", k=0.5, lr0=0.1),
                                                  "momentum": 0.9}), {"surface": "quadratic", "steps": 5})
    assert parsed[0].spec.key() == kernel.key() and parsed[0].spec.why == "in words"
    assert parsed[1].spec.args["ts"] == [0, 3, 6]


@pytest.mark.parametrize("source, needle", [
    ("assert x == 1", "may only import grading"),
    ("grading.check_trajectory(Momentum, 'momentum', {'lr': lr})", "not a literal"),
    ("grading.check_trajectory(Momentum, 'momentum', {'lr': 0.1})\n"
     "grading.check_trajectory(Momentum, 'momentum', {'lr': 0.1})", "twice"),
    ("grading.check_nothing(Momentum)", "may only import grading"),
    ("grading.check_trajectory(Momentum, 'momentum', {'lr': 0.1}, colour='red')", "unexpected keyword"),
    ("grading.check_trajectory(*args)", "answer argument"),
    ("def f(:", "does not parse"),
])
def test_test_cells_outside_the_grammar_are_refused(source, needle):
    with pytest.raises(cells.CellError, match=needle):
        cells.expected_checks(source)


def test_a_check_argument_must_be_a_literal_in_the_kernel_too():
    with pytest.raises(ValueError, match="expected a literal"):
        grading.check_sequence(Momentum, "momentum", {"lr": 0.1}, x0=np.zeros(2), grads=[[1.0, 1.0]])


# ----------------------------------------------------------------- figures
def _trajectory_figure(title="paths"):
    fig, ax = plt.subplots()
    for name, make in (("SGD", lambda: nnopt.SGD(0.1)), ("Momentum", lambda: nnopt.Momentum(0.1, 0.8))):
        path = nnopt.surfaces.run(nnopt.surfaces.get("quadratic"), make(), steps=10).xy
        ax.plot(path[:, 0], path[:, 1], label=name)
    ax.set_title(title)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return fig


def test_figures_are_checked_by_their_plotted_data():
    runs = [["sgd", {"lr": 0.1}], ["momentum", {"lr": 0.1, "momentum": 0.8}]]
    grading.check_trajectory_figure(_trajectory_figure(), "quadratic", 10, runs)
    ok_no_title = checks.compare(grading.check_trajectory_figure, "trajectory_figure",
                                 lambda f, a: grading.figures.figure_data(f), (_trajectory_figure(""), "quadratic", 10, runs), {})
    assert not ok_no_title[0] and "no title" in ok_no_title[1]
    fig, ax = plt.subplots()
    for i in range(2):
        ax.plot([0, 1], [i, i + 1], label=f"line {i}")
    ax.set_title("t"), ax.set_xlabel("x"), ax.set_ylabel("y")
    with pytest.raises(GradingError, match="no labelled line of the figure shows sgd"):
        grading.check_trajectory_figure(fig, "quadratic", 10, runs)
    with pytest.raises(GradingError, match="expected a matplotlib Figure"):
        grading.check_trajectory_figure("fig", "quadratic", 10, runs)
    plt.close("all")


# ----------------------------------------------------------------- training rows (Lab 3)
def _row(strategy, epochs, seed, **changes):
    from nnopt.data import load_digits
    from nnopt.models import default_mlp
    from nnopt.train import fit
    h = fit(default_mlp(seed=seed), nnopt.make_optimizer(strategy["optimizer"], **strategy["hp"]),
            load_digits(seed=0), epochs=epochs, batch_size=strategy["batch_size"], seed=seed, progress=False)
    row = {"name": "a", "strategy": strategy, "epochs": epochs, "seed": seed, "train_loss": h.train_loss[-1],
           "val_acc": h.val_acc[-1], "curve": list(h.val_acc), "seconds": 1.0}
    return {**row, **changes}


def test_a_reported_training_row_must_be_reproducible():
    strategy = {"optimizer": "adam", "hp": {"lr": 0.01}, "batch_size": 64}

    def run(s, data, epochs, seed=0, **changes):
        return _row({k: v for k, v in s.items() if k != "name"}, epochs, seed, **changes)

    grading.check_run_strategy(run, "a", strategy, epochs=2, seed=1)
    ok, msg = grading.compare_run_strategy(lambda *a, **k: run(*a, **k, val_acc=0.999), "a", strategy, epochs=2)
    assert not ok and "the validation accuracy is" in msg
    ok, msg = grading.compare_run_strategy(lambda s, d, e, seed=0: run(s, d, e, seed=seed + 1), "a", strategy, epochs=2)
    assert not ok and "'seed' should be 0" in msg
    ok, msg = grading.compare_run_strategy(lambda s, d, e, seed=0: {"val_acc": 0.9}, "a", strategy, epochs=2)
    assert not ok and "has no" in msg and "train_loss" in msg


def test_a_context_caches_re_trainings():
    from nnopt.grading.training import retrain
    ctx = Context()
    strategy = {"optimizer": "sgd", "hp": {"lr": 0.1}, "batch_size": None}
    first = retrain(ctx, strategy, 2, 0)
    assert retrain(ctx, strategy, 2, 0) is first and len(first["curve"]) == 3


def _recorded(monkeypatch, check, *args, **kwargs):
    """The record a check publishes in record mode (what the grader reads)."""
    monkeypatch.setenv("NNOPT_GRADING_MODE", "record")
    published = []
    monkeypatch.setattr(record, "publish", lambda rec, text: published.append(rec))
    check(*args, **kwargs)
    (rec,) = published
    return rec


def test_instant_feedback_re_runs_the_best_row_and_says_the_grader_re_runs_every_row(monkeypatch):
    strategies = {"gd": {"optimizer": "sgd", "hp": {"lr": 0.5}, "batch_size": None},
                  "sgd": {"optimizer": "sgd", "hp": {"lr": 0.05}, "batch_size": 64},
                  "mom": {"optimizer": "momentum", "hp": {"lr": 0.02, "momentum": 0.9}, "batch_size": 64},
                  "adagrad": {"optimizer": "adagrad", "hp": {"lr": 0.05}, "batch_size": 64},
                  "adam": {"optimizer": "adam", "hp": {"lr": 0.01}, "batch_size": 64}}
    rows = [_row(s, 1, 0, name=n) for n, s in strategies.items()]
    rows[0] = {**rows[0], "train_loss": rows[0]["train_loss"] * 0.5}      # invented, not the best row
    assert max(range(5), key=lambda i: rows[i]["val_acc"]) != 0
    fig, ax = plt.subplots()
    for r in rows:
        ax.plot(range(2), r["curve"], label=r["name"])
    ax.set(title="curves", xlabel="epoch", ylabel="val acc")
    rows[0] = {**rows[0], "curve": [rows[0]["curve"][0], rows[0]["curve"][1] - 0.2]}
    ax.lines[0].set_ydata(rows[0]["curve"])                                 # a curve the grader cannot reproduce
    bench = _recorded(monkeypatch, grading.check_benchmark, rows, epochs=1, min_rows=5, min_best_acc=0.0, rerun="all")
    curves = _recorded(monkeypatch, grading.check_curves_figure, fig, rows, epochs=1, rerun=True)
    plt.close(fig)
    instant = Context()                                     # the reference process's context
    for rec in (bench, curves):
        verdict = judge(rec, instant)
        assert verdict.ok and "only the best row was re-run now" in verdict.message
        assert "the other 4 rows were not re-run" in verdict.message and "at grading every row is re-run" in verdict.message
    trusted = Context(trusted=True)                        # autograde: every row
    verdict = judge(bench, trusted)
    assert not verdict.ok and "row 0 'gd'" in verdict.message and "final training loss" in verdict.message
    assert "instant feedback" not in verdict.message
    verdict = judge(curves, trusted)
    assert not verdict.ok and "'gd'" in verdict.message and "re-run of its settings" in verdict.message


def test_the_reference_process_trains_each_setting_once_per_notebook(monkeypatch, capsys):
    import io
    import json

    import nnopt.train
    from nnopt.grading import __main__ as reference_process
    strategy = {"optimizer": "sgd", "hp": {"lr": 0.1}, "batch_size": None}
    rec = _recorded(monkeypatch, grading.check_run_strategy,
                    lambda s, d, e, seed=0: _row(strategy, e, seed, name="a"), "a", strategy, epochs=1)
    calls, fit = [], nnopt.train.fit
    monkeypatch.setattr(nnopt.train, "fit", lambda *a, **k: calls.append(1) or fit(*a, **k))
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(rec) + "\n" + json.dumps(rec) + "\n"))
    reference_process.main()
    verdicts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [v["ok"] for v in verdicts] == [True, True] and len(calls) == 1
