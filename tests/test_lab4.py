"""Lab 4 ("Beyond Adam"): every labelled wrong variant of Lion, Newton-Schulz and Muon, written
as a student would, is named in the message of the lab's test cell (decided by the trusted
grader's code, as at autograde); correct-but-different answers name no bug and pass; the matrix
check refuses malformed answers and states its tolerance."""
from __future__ import annotations

import nbformat
import numpy as np
import pytest

from autograder import make_samples, pipeline, verdicts
from autograder import sample_answers_lab4 as answers
from nnopt.grading import matrices, record, variants, variants_beyond
from nnopt.grading.outcome import Context
from nnopt.grading.spec import Spec
from test_diagnosis import run_cell

LAB4 = make_samples.LAB4
SOLUTION = make_samples.solution_code(LAB4)
GOOD_NS = SOLUTION["newton_schulz"] + "\n"

CASES = [
    ("lion_no_sign", "test_lion", answers.NO_SIGN_LION),
    ("lion_betas_swapped", "test_lion", answers.SWAPPED_BETAS_LION),
    ("lion_momentum_first", "test_lion", answers.MOMENTUM_FIRST_LION),
    ("lion_coupled_decay", "test_lion_decay", answers.COUPLED_DECAY_LION),
    ("lion_decay_without_lr", "test_lion_decay", answers.LION.format(body='''        c = self.beta1 * self.m + (1 - self.beta1) * grad
        self.m = self.beta2 * self.m + (1 - self.beta2) * grad
        return theta * (1 - self.weight_decay) - self.lr * np.sign(c)''')),
    ("lion_sign_zero", "test_lion", answers.LION.format(body='''        c = self.beta1 * self.m + (1 - self.beta1) * grad
        self.m = self.beta2 * self.m + (1 - self.beta2) * grad
        return theta - self.lr * (np.where(c >= 0, 1.0, -1.0) + self.weight_decay * theta)''')),
    ("ns_no_normalisation", "test_newton_schulz", answers.UNNORMALISED_NS),
    ("ns_cubic", "test_newton_schulz", answers.CUBIC_NS),
    ("ns_no_transpose_back", "test_newton_schulz", answers.NO_TRANSPOSE_BACK_NS),
    ("ns_no_eps", "test_newton_schulz_edge", answers.NS.format(body='''    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / np.linalg.norm(X)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X''')),
    ("muon_no_orthogonalization", "test_muon", GOOD_NS + answers.NO_ORTHOGONALIZATION_MUON),
    ("muon_no_nesterov", "test_muon", GOOD_NS + answers.NO_NESTEROV_MUON),
    ("muon_no_scale", "test_muon_shapes", GOOD_NS + answers.UNSCALED_MUON),
    ("muon_scale_inverted", "test_muon", GOOD_NS + answers.MUON.format(body='''        self.m = self.mu * self.m + (1 - self.mu) * grad
        u = (1 - self.mu) * grad + self.mu * self.m if self.nesterov else self.m
        scale = max(1.0, theta.shape[1] / theta.shape[0]) ** 0.5
        return theta * (1 - self.lr * self.wd) - self.lr * scale * newton_schulz(u, self.k)''')),
    ("muon_coupled_decay", "test_muon_decay", GOOD_NS + answers.COUPLED_DECAY_MUON),
]
#: On the tall matrices of test_muon_shapes both use s = 1 (see nnopt.grading.variants_beyond).
COINCIDE = {"muon_no_scale": {"muon_scale_inverted"}}
HONEST = [("test_lion", answers.IN_PLACE_LION), ("test_lion_momentum", answers.IN_PLACE_LION),
          ("test_newton_schulz", answers.RIGHT_GRAM_NS), ("test_newton_schulz_edge", answers.RIGHT_GRAM_NS),
          ("test_muon", GOOD_NS + answers.LERP_MUON), ("test_muon_shapes", answers.RIGHT_GRAM_NS + "\n" + answers.LERP_MUON)]


def trusted_source(grade_id: str) -> str:
    """The test cell as the grader reads it: from the solutions (hidden tests included)."""
    nb = nbformat.read(str(pipeline.Course(make_samples.HERE).solutions / LAB4 / f"{LAB4}.ipynb"), as_version=4)
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def decide(grade_id: str, code: str, monkeypatch) -> verdicts.CellVerdict:
    source = trusted_source(grade_id)
    return verdicts.decide(source, run_cell(code, source, monkeypatch), Context(trusted=True))


@pytest.mark.parametrize("key, grade_id, code", CASES, ids=[c[0] for c in CASES])
def test_the_message_names_the_bug(key, grade_id, code, monkeypatch):
    outcome = decide(grade_id, code, monkeypatch)
    assert not outcome.passed
    assert key in outcome.bugs and set(outcome.bugs) <= {key} | COINCIDE.get(key, set()), (outcome.bugs, outcome.failures)
    assert any(variants.BY_KEY[key].label in f for f in outcome.failures), outcome.failures
    assert any("compared for float64 inputs" in f for f in outcome.failures), "the message states the tolerance"


def test_every_lab4_variant_has_a_case_and_is_in_the_table():
    keys = [row[0] for row in variants_beyond.TABLE]
    assert sorted(keys) == sorted(k for k, *_ in CASES)
    assert all(k in variants.BY_KEY for k in keys) and len(keys) >= 8


@pytest.mark.parametrize("grade_id, code", HONEST, ids=[f"{g}-{i}" for i, (g, _) in enumerate(HONEST)])
def test_correct_but_different_answers_pass_and_name_no_bug(grade_id, code, monkeypatch):
    outcome = decide(grade_id, code, monkeypatch)
    assert outcome.passed and outcome.bugs == [], outcome.failures


def test_the_solution_passes_every_lab4_test_cell(monkeypatch):
    code = "\n".join(SOLUTION[g] for g in ("lion", "newton_schulz", "muon"))
    for grade_id in make_samples.LAB4_TESTS:
        outcome = decide(grade_id, code, monkeypatch)
        assert outcome.passed, (grade_id, outcome.failures)


def _judge(outputs: list, cases: list) -> str:
    spec = Spec("matrix_function", {"reference": "newton_schulz", "cases": cases, "kwargs": None, "dtype": "float64"})
    return matrices.judge_matrix_function(spec, {"outputs": outputs, "dtype": "float64"}, Context()).message


def test_the_matrix_judge_compares_shapes_and_values():
    G = [[3.0, 0.0], [0.0, 0.5], [1.0, 1.0]]
    from nnopt.optimizers_matrix import newton_schulz
    good = newton_schulz(np.array(G))
    assert "all 1 matrices agree" in _judge([record.encode(good)], [G])
    assert "shape (2, 3), expected (3, 2)" in _judge([record.encode(good.T)], [G])
    off = good.copy()
    off[1, 0] += 1e-6
    message = _judge([record.encode(off)], [G])
    assert "entry (1, 0)" in message and "1e-09" in message


def test_a_malformed_matrix_record_scores_zero(monkeypatch):
    source = trusted_source("test_newton_schulz")
    outputs = run_cell(GOOD_NS, source, monkeypatch)
    outputs[0]["data"][record.MIMETYPE]["answer"]["outputs"] = "not a list"
    outcome = verdicts.decide(source, outputs, Context(trusted=True))
    assert not outcome.passed and any("malformed" in f for f in outcome.failures), outcome.failures
