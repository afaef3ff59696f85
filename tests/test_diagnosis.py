"""Feedback that names the bug: every labelled wrong variant of nnopt.grading.variants, written
as a student would, is named in the message of the lab's test cell, and the class report counts
it. The cells run in record mode in this process and are decided by the trusted grader's code
(``autograder.verdicts.decide``), as at autograde."""
from __future__ import annotations

import textwrap

import nbformat
import numpy as np
import pytest

from autograder import class_report, make_samples, pipeline, verdicts
from nnopt.grading import record, variants, variants_beyond
from nnopt.grading.outcome import Context

LAB1, LAB2 = make_samples.LAB1, make_samples.LAB2

SGD_FROM_1 = """
class SGD:
    def __init__(self, lr):
        self.lr, self.t = lr, 0
    def step(self, theta, grad):
        self.t += 1                                   # incremented before use: starts at lr(1)
        lr = self.lr(self.t) if callable(self.lr) else self.lr
        return theta - lr * grad
"""
SGD_FROZEN = """
class SGD:
    def __init__(self, lr):
        self.lr, self.t = lr, 0
    def step(self, theta, grad):
        lr = self.lr(self.t) if callable(self.lr) else self.lr   # t never incremented
        return theta - lr * grad
"""
VELOCITY = """
class {name}:
    def __init__(self, lr, momentum=0.9):
        self.lr, self.a, self.t, self.v = lr, momentum, 0, None
    def step(self, theta, grad):
        if self.v is None:
            self.v = np.zeros_like(theta)
        lr = self.lr(self.t) if callable(self.lr) else self.lr
        self.t += 1
        {body}
"""
ADAGRAD = """
class AdaGrad:
    def __init__(self, lr=0.01, eps=1e-7):
        self.lr, self.eps, self.r = lr, eps, None
    def step(self, theta, grad):
        if self.r is None:
            self.r = np.zeros_like(theta)
        {body}
"""
RMSPROP = """
class RMSProp:
    def __init__(self, lr=0.001, rho=0.9, eps=1e-6):
        self.lr, self.rho, self.eps, self.r = lr, rho, eps, None
    def step(self, theta, grad):
        if self.r is None:
            self.r = np.zeros_like(theta)
        {body}
"""
ADAM = """
class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps
        self.t, self.s, self.r = {t0}, None, None
    def step(self, theta, grad):
        if self.s is None:
            self.s, self.r = np.zeros_like(theta), np.zeros_like(theta)
        {before}
        self.s = self.b1 * self.s + (1 - self.b1) * grad
        self.r = self.b2 * self.r + (1 - self.b2) * grad * grad
        s_hat, r_hat = {hats}
        {after}
        return theta - self.lr * s_hat / {denominator}
"""
GOOD_ADAM = ADAM.format(t0=0, before="self.t += 1", after="", denominator="np.sqrt(r_hat + self.eps)",
                        hats="self.s / (1 - self.b1 ** self.t), self.r / (1 - self.b2 ** self.t)")
ADAMW = GOOD_ADAM + """
class AdamW(Adam):
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(lr, beta1, beta2, eps)
        self.wd = weight_decay
    def step(self, theta, grad):
        {body}
"""
CLIP = """
def clip_by_global_norm(grads, max_norm):
    norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))
    {body}
"""


def _m(body: str) -> str:
    return VELOCITY.format(name="Momentum", body=body)


def _n(body: str) -> str:
    return VELOCITY.format(name="Nesterov", body=body)


def _adam(**kw: str) -> str:
    parts = dict(t0="0", before="self.t += 1", after="", denominator="np.sqrt(r_hat + self.eps)",
                 hats="self.s / (1 - self.b1 ** self.t), self.r / (1 - self.b2 ** self.t)")
    return ADAM.format(**{**parts, **kw})


#: (variant key, lab, test cell, the student's buggy code)
CASES = [
    ("schedule_from_1", LAB1, "test_inverse_time", "def inverse_time(lr0, k):\n    return lambda t: lr0 / (1 + k * (t + 1))"),
    ("schedule_from_1", LAB1, "test_sgd_schedule", SGD_FROM_1),
    ("schedule_precedence", LAB1, "test_inverse_time", "def inverse_time(lr0, k):\n    return lambda t: lr0 / 1 + k * t"),
    ("schedule_frozen", LAB1, "test_sgd_schedule", SGD_FROZEN),
    ("momentum_no_velocity", LAB1, "test_momentum", _m("self.v = self.a * self.v - lr * grad\n        return theta - lr * grad")),
    ("momentum_sign", LAB1, "test_momentum", _m("self.v = self.a * self.v - lr * grad\n        return theta - self.v")),
    ("momentum_dampening", LAB1, "test_momentum", _m("self.v = self.a * self.v + (1 - self.a) * grad\n        return theta - lr * self.v")),
    ("momentum_torch_form", LAB1, "test_momentum_more", _m("self.v = self.a * self.v + grad\n        return theta - lr * self.v")),
    ("nesterov_classical", LAB1, "test_nesterov", _n("self.v = self.a * self.v - lr * grad\n        return theta + self.v")),
    ("nesterov_no_gradient_term", LAB1, "test_nesterov",
     _n("self.v = self.a * self.v - lr * grad\n        return theta + self.a * self.v")),
    ("float32", LAB1, "test_momentum", _m("if self.v.dtype != np.float32:\n            self.v = self.v.astype(np.float32)\n"
                                         "        self.v *= self.a\n        self.v -= lr * grad\n        return theta + self.v")),
    ("adagrad_eps_inside", LAB2, "test_adagrad", ADAGRAD.format(body="self.r = self.r + grad * grad\n        return theta - self.lr * grad / np.sqrt(self.r + self.eps)")),
    ("adagrad_no_accumulation", LAB2, "test_adagrad", ADAGRAD.format(body="self.r = grad * grad\n        return theta - self.lr * grad / (self.eps + np.sqrt(self.r))")),
    ("rmsprop_eps_outside", LAB2, "test_rmsprop", RMSPROP.format(body="self.r = self.rho * self.r + (1 - self.rho) * grad ** 2\n        return theta - self.lr * grad / (self.eps + np.sqrt(self.r))")),
    ("rmsprop_no_one_minus_rho", LAB2, "test_rmsprop", RMSPROP.format(body="self.r = self.rho * self.r + grad ** 2\n        return theta - self.lr * grad / np.sqrt(self.eps + self.r)")),
    ("adam_no_bias_correction", LAB2, "test_adam", _adam(hats="self.s, self.r")),
    ("adam_t_plus_one", LAB2, "test_adam_first_step", _adam(t0="1")),
    ("adam_t_zero", LAB2, "test_adam_first_step", _adam(before="", after="self.t += 1")),
    ("adam_eps_outside", LAB2, "test_adam", _adam(denominator="(np.sqrt(r_hat) + self.eps)")),
    ("adamw_coupled", LAB2, "test_adamw", ADAMW.format(body="return super().step(theta, grad + self.wd * theta)")),
    ("adamw_decay_without_lr", LAB2, "test_adamw", ADAMW.format(body="return super().step(theta * (1 - self.wd), grad)")),
    ("clip_norm_after", LAB2, "test_clip", CLIP.format(body="scale = min(1.0, max_norm / norm) if norm else 1.0\n"
                                                            "    return [g * scale for g in grads], min(norm, max_norm)")),
    ("clip_per_array", LAB2, "test_clip", CLIP.format(body="out = [g * min(1.0, max_norm / n) if (n := float(np.linalg.norm(g))) else g for g in grads]\n"
                                                           "    return out, norm")),
    ("clip_always", LAB2, "test_clip", CLIP.format(body="return [g * (max_norm / norm) for g in grads], norm")),
    ("clip_in_place", LAB2, "test_clip", CLIP.format(body="scale = min(1.0, max_norm / norm) if norm else 1.0\n"
                                                           "    for g in grads:\n        g *= scale\n    return grads, norm")),
    ("float32", LAB2, "test_adagrad", ADAGRAD.format(body="self.r = self.r.astype(np.float32) + (grad * grad).astype(np.float32)\n"
                                                          "        return theta - self.lr * grad / (self.eps + np.sqrt(self.r))")),
]


def _trusted_source(lab: str, grade_id: str) -> str:
    nb = nbformat.read(str(pipeline.Course(make_samples.HERE).solutions / lab / f"{lab}.ipynb"), as_version=4)
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def run_cell(code: str, source: str, monkeypatch) -> list[dict]:
    """Run the student's ``code`` and then the test cell in record mode, in this process;
    return the cell's outputs as a notebook would hold them."""
    from nnopt import grading
    monkeypatch.setenv("NNOPT_GRADING_MODE", "record")
    outputs: list[dict] = []
    monkeypatch.setattr(record, "publish", lambda rec, text: outputs.append(
        {"output_type": "display_data", "data": {record.MIMETYPE: rec, "text/plain": text}, "metadata": {}}))
    namespace = {"np": np, "grading": grading}
    exec(textwrap.dedent(code), namespace)                 # noqa: S102 -- test code
    exec(source, namespace)                                # noqa: S102 -- the lab's own test cell
    return outputs


@pytest.mark.parametrize("key, lab, grade_id, code", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_the_message_names_the_bug(key, lab, grade_id, code, monkeypatch):
    source = _trusted_source(lab, grade_id)
    outcome = verdicts.decide(source, run_cell(code, source, monkeypatch), Context(trusted=True))
    assert not outcome.passed
    assert key in outcome.bugs, (outcome.bugs, outcome.failures)
    label = variants.BY_KEY[key].label
    assert any(label in f for f in outcome.failures), outcome.failures
    assert set(outcome.bugs) <= {key, "float32"} | ({"schedule_from_1"} if key == "schedule_frozen" else set())


def test_the_table_is_covered_and_correct_answers_name_no_bug(monkeypatch):
    lab4 = {row[0] for row in variants_beyond.TABLE}          # Lab 4's: tests/test_lab4.py
    assert {k for k, *_ in CASES} == set(variants.BY_KEY) - lab4, "every labelled variant has a case above"
    assert len(variants.VARIANTS) >= 8
    source = _trusted_source(LAB2, "test_adam")
    outcome = verdicts.decide(source, run_cell(GOOD_ADAM, source, monkeypatch), Context(trusted=True))
    assert outcome.passed and outcome.bugs == []


def test_the_class_report_counts_every_diagnosed_bug(tmp_path, monkeypatch):
    course = pipeline.Course(make_samples.HERE).copy_to(tmp_path)
    pipeline.sync_gradebook(course, [LAB1, LAB2])
    status: dict[str, dict[str, pipeline.Status]] = {LAB1: {}, LAB2: {}}
    for i, (key, lab, grade_id, code) in enumerate(CASES):
        student = f"s{i:02d}"
        nb = make_samples.released(lab)
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
        source = _trusted_source(lab, grade_id)
        verdicts.rewrite(cell, verdicts.decide(source, run_cell(code, source, monkeypatch), Context(trusted=True)))
        path = course.autograded / student / lab / f"{lab}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, str(path))
        status[lab][student] = pipeline.Status("graded")
    expected = {lab: {} for lab in status}
    for key, lab, *_ in CASES:
        expected[lab][key] = expected[lab].get(key, 0) + 1
    paths = class_report.write_reports(course, status)
    for lab in status:
        r = class_report.lab_report(course, lab, status[lab])
        counts = {b.key: b.students for b in r.bugs}
        assert {k: counts.get(k) for k in expected[lab]} == expected[lab], counts
        text = (course.grades / f"{lab}_report.md").read_text()
        assert all(variants.BY_KEY[k].label in text for k in expected[lab])
        assert [t.grade_id for t in r.tests][:2] in (["test_inverse_time", "test_sgd_constant"],
                                                     ["test_adagrad", "test_adagrad_edge"])
    assert {p.suffix for p in paths} == {".md", ".json", ".png"}
    png = course.grades / f"{LAB2}_report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
