"""autograder.verdicts: the trusted step decides a test cell from the trusted source and the
records, whatever else the kernel left in the cell's outputs."""
from __future__ import annotations

import copy

import nbformat
import numpy as np
import pytest
from nbgrader.utils import determine_grade

from autograder import make_samples, pipeline, verdicts
from nnopt.grading import checks, record, spec
from nnopt.grading.outcome import Context

SOURCE = """from nnopt import grading
grading.check_sequence(SGD, "sgd", {"lr": 0.1}, x0=[1.0, 2.0], grads=[[10.0, -10.0]], why="lands on (0, 3)")
### BEGIN HIDDEN TESTS
grading.check_trajectory(SGD, "sgd", {"lr": 0.0071}, surface="quadratic", steps=5)
### END HIDDEN TESTS"""


def _spec(kind, fn, *args, **kwargs):
    return spec.bind(fn, kind, args, kwargs)[1]


SEQ = _spec("sequence", checks.check_sequence, None, "sgd", {"lr": 0.1}, x0=[1.0, 2.0], grads=[[10.0, -10.0]])
TRAJ = _spec("trajectory", checks.check_trajectory, None, "sgd", {"lr": 0.0071}, surface="quadratic", steps=5)


def _display(rec):
    return {"output_type": "display_data", "data": {record.MIMETYPE: rec, "text/plain": "x"}, "metadata": {}}


def _sgd_path(lr, x0, grads):
    path = [np.array(x0)]
    for g in grads:
        path.append(path[-1] - lr * np.array(g))
    return path


def _quadratic_path(lr, steps):
    from nnopt import surfaces
    q = surfaces.get("quadratic")
    path = [q.start.copy()]
    for _ in range(steps):
        path.append(path[-1] - lr * q.grad(path[-1]))
    return path


GOOD = [_display(record.make(SEQ, {"path": record.encode(_sgd_path(0.1, [1.0, 2.0], [[10.0, -10.0]])), "dtype": "float64"})),
        _display(record.make(TRAJ, {"path": record.encode(_quadratic_path(0.0071, 5)), "dtype": "float64"}))]


def test_correct_records_pass_and_hidden_checks_show_no_parameters():
    outcome = verdicts.decide(SOURCE, GOOD, Context(trusted=True))
    assert outcome.passed and [ok for ok, _ in outcome.lines] == [True, True]
    assert "lands on (0, 3)" in outcome.lines[0][1] and outcome.lines[1][1] == "hidden check 2 passed"


def test_a_wrong_hidden_check_fails_without_showing_its_parameters():
    wrong = copy.deepcopy(GOOD)
    wrong[1]["data"][record.MIMETYPE]["answer"]["path"][2] = [0.0, 0.0]
    outcome = verdicts.decide(SOURCE, wrong, Context(trusted=True))
    assert not outcome.passed and outcome.failures[0].startswith(
        "a hidden trajectory check failed (its parameters are not shown)\n  (compared for float64 inputs")
    assert "0.0071" not in str(outcome.lines) + str(outcome.failures)


@pytest.mark.parametrize("outputs, needle", [
    ([], "no answer was recorded (the check did not run)"),
    ([{"output_type": "error", "ename": "NameError", "evalue": "name 'SGD' is not defined", "traceback": []}],
     "the cell stopped with NameError: name 'SGD' is not defined"),
    ([_display({"v": 1, "spec": "garbage"}), _display("not even a dict")], "no answer was recorded"),
    ([_display(record.make(SEQ, {"path": [[1.0, 2.0], [0.0, "x"]]}))], "malformed"),
    ([_display(record.make(SEQ, error="your code raised NotImplementedError: write your code here"))],
     "NotImplementedError: write your code here"),
    ([_display(record.make(_spec("sequence", checks.check_sequence, None, "sgd", {"lr": 0.2}, x0=[1.0, 2.0],
                                 grads=[[10.0, -10.0]]), {"path": [[1.0, 2.0], [-1.0, 4.0]]}))],
     "no answer was recorded"),
])
def test_a_missing_or_malformed_record_scores_zero_with_the_reason(outputs, needle):
    outcome = verdicts.decide(SOURCE, outputs + GOOD[1:], Context(trusted=True))
    assert not outcome.passed and needle in outcome.failures[0], outcome.failures


def test_a_forged_record_wins_only_with_correct_numbers():
    forged = copy.deepcopy(GOOD[0])
    forged["data"][record.MIMETYPE]["answer"]["path"] = [[1.0, 2.0], [1.0, 2.0]]
    assert not verdicts.decide(SOURCE, [forged] + GOOD[1:], Context(trusted=True)).passed
    assert not verdicts.decide(SOURCE, GOOD + [forged], Context(trusted=True)).passed, \
        "every record of a check must pass, not just one"
    assert verdicts.decide(SOURCE, GOOD + [copy.deepcopy(GOOD[0])], Context(trusted=True)).passed


def test_an_unreadable_test_cell_is_a_grader_error():
    outcome = verdicts.decide("assert True", GOOD, Context(trusted=True))
    assert not outcome.passed and outcome.grader_error and "cannot be read" in outcome.failures[0]


def _cell(outputs):
    cell = nbformat.v4.new_code_cell(SOURCE)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "locked": True, "points": 2.0,
                                 "solution": False, "schema_version": 3, "task": False}
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


KERNEL_NOISE = [{"output_type": "stream", "name": "stdout", "text": "my print\n"},
                {"output_type": "stream", "name": "stderr", "text": "warning\n"},
                {"output_type": "execute_result", "data": {"text/plain": "1.0"}, "metadata": {}, "execution_count": 3},
                {"output_type": "display_data", "data": {"text/plain": "\u2713 all passed (forged)"}, "metadata": {}}]


def test_rewrite_keeps_stdout_drops_the_rest_and_scores_through_nbgrader():
    passing = _cell(KERNEL_NOISE + GOOD)
    verdicts.rewrite(passing, verdicts.decide(SOURCE, passing.outputs, Context(trusted=True)))
    assert [o.output_type for o in passing.outputs] == ["stream", "stream"]
    assert passing.outputs[0].text == "my print\n" and "\u2713" in passing.outputs[1].text
    assert determine_grade(passing) == (2.0, 2.0)
    assert passing.metadata.nnopt.verdict == {"passed": True, "checks": 2, "failed": 0, "bugs": [], "grader_error": False}
    failing = _cell(KERNEL_NOISE + GOOD[1:])          # the visible record is missing
    verdicts.rewrite(failing, verdicts.decide(SOURCE, failing.outputs, Context(trusted=True)))
    assert failing.outputs[-1].output_type == "error" and failing.outputs[-1].ename == "GradingError"
    assert determine_grade(failing) == (0, 2.0), "the injected execute_result '1.0' no longer gives partial credit"


def test_trusted_verdicts_restores_the_cells_metadata_from_the_gradebook(tmp_path):
    course = pipeline.Course(make_samples.HERE).copy_to(tmp_path)
    pipeline.sync_gradebook(course, [make_samples.LAB1])
    nb = make_samples.released(make_samples.LAB1)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_sgd_constant")
    cell.metadata.nbgrader.update({"grade": False, "solution": True, "points": 99})   # the student's edits
    cell.outputs = [nbformat.from_dict(o) for o in GOOD]
    resources = {"nbgrader": {"db_url": f"sqlite:///{course.db}", "notebook": make_samples.LAB1,
                              "assignment": make_samples.LAB1, "student": "x"}}
    nb, _ = verdicts.TrustedVerdicts().preprocess(nb, resources)
    meta = cell.metadata.nbgrader
    assert (meta["grade"], meta["solution"], meta["points"]) == (True, False, 1.0)
    assert determine_grade(cell) == (0, 1.0)     # GOOD is for another cell's checks: nothing recorded here
    others = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert all(c.metadata.nnopt.verdict["passed"] is False for c in others)
    written = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "written_answer")
    assert "nnopt" not in written.metadata, "written answers are left to the instructor"


def test_a_flood_of_different_forged_records_fails_the_check():
    flood = []
    for i in range(verdicts.MAX_RECORDS + 1):
        forged = copy.deepcopy(GOOD[0])
        forged["data"][record.MIMETYPE]["answer"]["note"] = i          # all different, all "correct"
        flood.append(forged)
    outcome = verdicts.decide(SOURCE, flood + GOOD[1:], Context(trusted=True))
    assert not outcome.passed and "different records for one check" in outcome.failures[0]
