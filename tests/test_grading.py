"""nnopt.grading: the checks the lab test cells call, and their defences against cheating."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import nnopt  # noqa: E402
from nnopt import grading  # noqa: E402
from nnopt.grading import GradingError  # noqa: E402


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


class WrongMomentum(Momentum):
    def step(self, theta, grad):          # forgets the momentum term
        return theta - self.lr * grad


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
        s_hat = self.s / (1 - self.b1 ** self.t)
        r_hat = self.r / (1 - self.b2 ** self.t)
        return theta - self.lr * s_hat / np.sqrt(r_hat + self.eps)


def inverse_time(lr0, k):
    return lambda t: lr0 / (1 + k * t)


def clip(grads, max_norm):
    norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))
    scale = max_norm / norm if norm > max_norm else 1.0
    return [g * scale for g in grads], norm


# ----------------------------------------------------------------- correct answers pass
def test_trajectory_of_a_correct_answer_agrees():
    ok, msg = grading.compare_trajectory(Momentum, "momentum", {"lr": 0.05, "momentum": 0.9},
                                         surface="quadratic", steps=40)
    assert ok, msg
    assert "all 40 steps agree" in msg


def test_trajectory_with_a_schedule_gives_the_student_a_plain_function():
    seen = []

    class Probe(Momentum):
        def step(self, theta, grad):
            seen.append(self.lr(self.t))
            return super().step(theta, grad)

    spec = grading.schedule("inverse_time", lr0=0.05, k=0.1)
    ok, msg = grading.compare_trajectory(Probe, "momentum", {"lr": spec, "momentum": 0.5},
                                         surface="quadratic", steps=10)
    assert ok, msg
    assert seen == pytest.approx([0.05 / (1 + 0.1 * t) for t in range(10)])
    assert repr(spec) == "inverse_time(k=0.1, lr0=0.05)"


def test_sequence_schedule_function_and_path_checks_pass_for_correct_answers():
    grading.check_sequence(Adam, "adam", {"lr": 0.01}, x0=[1.0, -2.0, 0.5],
                           grads=[[1e-3, 1.0, -1e3], [0.0, 0.0, 0.0], [2.0, -1.0, 0.0]])
    grading.check_schedule(inverse_time, "inverse_time", {"lr0": 0.3, "k": 0.01}, ts=range(0, 500, 7))
    grading.check_function(clip, "clip_by_global_norm",
                           [([np.ones(3), np.full((2, 2), 2.0)], 1.0), ([np.zeros(4)], 1.0),
                            ([np.array([3.0, 4.0], dtype=np.float32)], 10.0)])
    path = grading.student_path(Adam, {"lr": 0.05}, "rosenbrock", steps=30)
    assert path.shape == (31, 2)
    grading.check_path(path, "adam", {"lr": 0.05}, "rosenbrock", steps=30)


def test_both_diverging_counts_as_agreement_but_diverging_alone_does_not():
    ok, msg = grading.compare_trajectory(Momentum, "momentum", {"lr": 0.5, "momentum": 0.9},
                                         surface="quadratic", steps=100)
    assert ok and "both diverge" in msg, msg

    class Damped(Momentum):          # never diverges: caps the step
        def step(self, theta, grad):
            return np.clip(super().step(theta, grad), -10, 10)

    ok, msg = grading.compare_trajectory(Damped, "momentum", {"lr": 0.5, "momentum": 0.9},
                                         surface="quadratic", steps=100)
    assert not ok


# ----------------------------------------------------------------- wrong answers fail, clearly
def test_a_wrong_answer_is_reported_at_the_first_differing_step():
    ok, msg = grading.compare_trajectory(WrongMomentum, "momentum", {"lr": 0.05, "momentum": 0.9},
                                         surface="quadratic", steps=20)
    assert not ok
    # step 1 agrees (v = 0 makes momentum's first step plain SGD); step 2 does not
    assert "step 2 differs" in msg and "expected after step 2" in msg and "gradient at that point" in msg
    with pytest.raises(GradingError, match="step 2 differs"):
        grading.check_trajectory(WrongMomentum, "momentum", {"lr": 0.05, "momentum": 0.9},
                                 surface="quadratic", steps=20)


def test_schedule_off_by_one_is_explained():
    ok, msg = grading.compare_schedule(lambda lr0, k: (lambda t: lr0 / (1 + k * (t + 1))),
                                       "inverse_time", {"lr0": 0.5, "k": 0.1})
    assert not ok and "t=0" in msg


@pytest.mark.parametrize("bad_step, needle", [
    (lambda self, theta, grad: None, "forget a `return`"),
    (lambda self, theta, grad: np.zeros(3), "shape (3,)"),
    (lambda self, theta, grad: "theta", "not an array of numbers"),
])
def test_malformed_returns_get_a_message(bad_step, needle):
    cls = type("Bad", (Momentum,), {"step": bad_step})
    ok, msg = grading.compare_trajectory(cls, "momentum", {"lr": 0.1}, surface="quadratic", steps=3)
    assert not ok and needle in msg, msg


def test_check_lets_the_students_exception_through_and_compare_reports_it():
    class Stub:
        def __init__(self, lr, momentum=0.9):
            raise NotImplementedError("write your code here")

    with pytest.raises(NotImplementedError, match="write your code here"):
        grading.check_trajectory(Stub, "momentum", {"lr": 0.1})
    ok, msg = grading.compare_trajectory(Stub, "momentum", {"lr": 0.1})
    assert not ok and msg == "your code raised NotImplementedError: write your code here"


def test_a_function_that_modifies_its_input_fails():
    def in_place(grads, max_norm):
        grads[0] *= 0.5
        return grads, 1.0

    ok, msg = grading.compare_function(in_place, "clip_by_global_norm", [([np.ones(3)], 1.0)])
    assert not ok and "modified its input" in msg


def test_schedule_table_rejects_steps_outside_the_check():
    lr = grading.schedule("constant", lr=0.1).table(5)
    assert lr(4) == 0.1
    with pytest.raises(GradingError, match="0..4"):
        lr(5)
    with pytest.raises(ValueError):
        grading.schedule("no_such_schedule", lr0=1.0)


# ----------------------------------------------------------------- cheating does not pay
def test_calling_the_reference_from_an_answer_fails_and_is_restored_afterwards():
    class Wrapper:
        def __init__(self, lr, momentum=0.9):
            self.opt = nnopt.Momentum(lr, momentum)

        def step(self, theta, grad):
            self.opt.step([theta], [grad])
            return theta

    ok, msg = grading.compare_trajectory(Wrapper, "momentum", {"lr": 0.05}, surface="quadratic")
    assert not ok and "reference" in msg and "implement it yourself" in msg
    ok, msg = grading.compare_function(lambda g, m: nnopt.clip_by_global_norm(g, m),
                                       "clip_by_global_norm", [([np.ones(2)], 1.0)])
    assert not ok and "clip_by_global_norm" in msg
    p = np.ones(2)                               # everything works again outside the check
    nnopt.Momentum(0.1).step([p], [np.ones(2)])
    assert p == pytest.approx([0.9, 0.9])
    assert nnopt.clip_by_global_norm([np.ones(4)], 1.0)[1] == 2.0


def test_overwriting_nnopt_and_numpy_in_the_kernel_does_not_change_the_verdict(monkeypatch):
    monkeypatch.setattr(nnopt, "Momentum", WrongMomentum)
    monkeypatch.setitem(nnopt.OPTIMIZERS, "momentum", WrongMomentum)
    monkeypatch.setattr(nnopt.optimizers, "make_optimizer", lambda name, **hp: WrongMomentum(**hp))
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(np.testing, "assert_allclose", lambda *a, **k: None)
    ok, msg = grading.compare_trajectory(WrongMomentum, "momentum", {"lr": 0.05}, surface="quadratic")
    assert not ok, "the reference must come from a fresh interpreter"
    ok, msg = grading.compare_trajectory(Momentum, "momentum", {"lr": 0.05}, surface="quadratic")
    assert ok, msg


def test_answers_are_converted_with_numpy_captured_at_import(monkeypatch):
    monkeypatch.setattr(np, "asarray", lambda *a, **k: np.zeros(2))
    assert grading._as_array([1, 2, 3], "x").tolist() == [1.0, 2.0, 3.0]


def test_answers_are_compared_as_numbers_not_with_their_eq():
    class AlwaysEqual(np.ndarray):
        def __eq__(self, other):
            return True

        __ne__ = lambda self, other: False  # noqa: E731

    class Liar(Momentum):
        def step(self, theta, grad):
            return np.zeros_like(theta).view(AlwaysEqual)

    ok, msg = grading.compare_trajectory(Liar, "momentum", {"lr": 0.05}, surface="quadratic", steps=5)
    assert not ok and "step 1 differs" in msg


def test_the_reference_process_is_restarted_if_it_dies():
    grading.connect()
    grading._REFERENCE.proc.kill()
    grading._REFERENCE.proc.wait()
    grading.check_schedule(inverse_time, "inverse_time", {"lr0": 0.5, "k": 0.1}, ts=range(3))


def test_reference_process_reports_bad_requests_and_keeps_serving():
    ok, msg = grading._ask({"kind": "no such kind"})
    assert not ok and msg.startswith(grading.REFERENCE_FAILURE)
    grading.check_schedule(inverse_time, "inverse_time", {"lr0": 0.5, "k": 0.1}, ts=range(3))
    with pytest.raises(ValueError, match="reference must be one of"):
        grading.check_function(clip, "not_a_reference", [([np.ones(2)], 1.0)])


# ----------------------------------------------------------------- figures
def _figure(lines=3, title="paths", xlabel="x", ylabel="y"):
    fig, ax = plt.subplots()
    for i in range(lines):
        ax.plot([0, 1], [i, i + 1], label=f"line {i}")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def test_check_figure_accepts_a_complete_figure_and_names_what_is_missing():
    grading.check_figure(_figure(), min_lines=3)
    with pytest.raises(GradingError, match="no title"):
        grading.check_figure(_figure(title=""))
    with pytest.raises(GradingError, match="no y label"):
        grading.check_figure(_figure(ylabel=""))
    with pytest.raises(GradingError, match="at least 3 labelled lines"):
        grading.check_figure(_figure(lines=2), min_lines=3)
    with pytest.raises(GradingError, match="expected a matplotlib Figure"):
        grading.check_figure("fig")
    plt.close("all")


# ----------------------------------------------------------------- training runs (Lab 3)
def test_a_reported_training_result_must_be_reproducible():
    from nnopt.data import load_digits
    from nnopt.models import default_mlp
    from nnopt.train import fit
    strategy = {"optimizer": "adam", "hp": {"lr": 0.01}, "batch_size": 64}
    h = fit(default_mlp(seed=1), nnopt.make_optimizer("adam", lr=0.01), load_digits(seed=0),
            epochs=2, batch_size=64, seed=1, progress=False)
    row = {"train_loss": h.train_loss[-1], "val_acc": h.val_acc[-1]}
    grading.check_training(row, strategy, epochs=2, seed=1)
    ok, msg = grading.compare_training({**row, "val_acc": 0.999}, strategy, epochs=2, seed=1)
    assert not ok and "validation accuracy should be" in msg
    ok, msg = grading.compare_training(row, strategy, epochs=2, seed=0)     # another seed
    assert not ok
    ok, msg = grading.compare_training({"val_acc": 0.9}, strategy, epochs=2)
    assert not ok and "train_loss" in msg
    ok, msg = grading.compare_training(row, {"optimizer": "adam"}, epochs=2)
    assert not ok and "'hp'" in msg


# ----------------------------------------------------------------- Theano (Lab 3), own process
THEANO_SCRIPT = r'''
import numpy as np
from nnopt import grading
from nnopt.theano_compat import theano, T

def adam_updates(cost, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, correct=True):
    t = theano.shared(np.float64(0.0))
    t1 = t + 1
    updates = [(t, t1)]
    for p, g in zip(params, T.grad(cost, params)):
        s = theano.shared(np.zeros_like(p.get_value()))
        r = theano.shared(np.zeros_like(p.get_value()))
        s1, r1 = beta1 * s + (1 - beta1) * g, beta2 * r + (1 - beta2) * g * g
        sh, rh = (s1 / (1 - beta1 ** t1), r1 / (1 - beta2 ** t1)) if correct else (s1, r1)
        updates += [(s, s1), (r, r1), (p, p - lr * sh / T.sqrt(rh + eps))]
    return updates

hp = {"lr": 0.05}
path = grading.theano_path(adam_updates, hp, surface="rosenbrock", steps=20)
grading.check_path(path, "adam", hp, surface="rosenbrock", steps=20)
bad = grading.theano_path(lambda c, p, **kw: adam_updates(c, p, correct=False, **kw), hp,
                          surface="quadratic", steps=5)
ok, msg = grading.compare_path(bad, "adam", hp, surface="quadratic", steps=5)
assert not ok and "step 1 differs" in msg, msg
print("THEANO OK")
'''


@pytest.mark.slow
def test_theano_updates_are_checked_against_the_reference():
    import os
    import subprocess
    import sys
    env = {**os.environ, "THEANO_FLAGS": "cxx="}      # Python ops: no minute-long C compile
    out = subprocess.run([sys.executable, "-c", THEANO_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and "THEANO OK" in out.stdout, out.stderr[-2000:]
    assert out.stderr == "", "Theano must not write to stderr (nbgrader scores it 0)"
