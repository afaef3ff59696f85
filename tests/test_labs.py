"""The labs: labs/ is what solutions/ generates, leaks nothing, states its points, and
runs as promised (released: a clear NotImplementedError at the first task; solutions: full
marks on every test cell, hidden tests included), both when a student runs it (verdicts in the
kernel) and at autograde (record mode, references withheld, verdicts by the trusted grader),
and the two agree."""
from __future__ import annotations

import copy
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.utils import determine_grade, is_grade, is_solution

REPO = Path(__file__).resolve().parents[1]

from autograder import make_samples, pipeline, verdicts, withheld
from nnopt.grading import cells
from nnopt.grading.outcome import Context

COURSE = pipeline.Course(REPO / "autograder")
LABS = COURSE.labs()
REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.DOTALL)


def _source(lab: str) -> nbformat.NotebookNode:
    return nbformat.read(str(COURSE.solutions / lab / f"{lab}.ipynb"), as_version=4)


def _released(lab: str) -> nbformat.NotebookNode:
    return nbformat.read(str(COURSE.released(lab)), as_version=4)


def test_there_are_four_labs():
    assert LABS == ["lab1_sgd_momentum", "lab2_adaptive", "lab3_handson", "lab4_beyond_adam"]
    assert all(COURSE.released(lab).is_file() for lab in LABS)


def test_labs_are_what_solutions_generate(tmp_path):
    generated = pipeline.release(COURSE, into=tmp_path)
    for path in generated:
        committed = COURSE.released(path.parent.name)
        assert path.read_bytes() == committed.read_bytes(), \
            f"{committed} is stale: run `make release` and commit labs/"


def _secret_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Lines of the source's solution / hidden-test regions that appear nowhere else in it."""
    secret, public = set(), []
    for cell in nb.cells:
        text = cell.source + "\n"
        secret |= {ln.strip() for m in REGION.finditer(text) for ln in m.group(2).splitlines()}
        public.append(REGION.sub("", text))
    public_text = "\n".join(public)
    return {ln for ln in secret if len(ln) >= 12 and ln not in public_text}


@pytest.mark.parametrize("lab", LABS)
def test_no_solution_or_hidden_test_text_in_labs(lab):
    secrets = _secret_lines(_source(lab))
    assert len(secrets) > 10
    for path in (COURSE.labs_dir / lab).rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
            leaked = [ln for ln in secrets if ln in text]
            assert not leaked, f"{path} contains solution/hidden-test lines: {leaked[:3]}"


@pytest.mark.parametrize("lab", LABS)
def test_the_notebook_states_its_points(lab):
    nb = _released(lab)
    grades = [c for c in nb.cells if is_grade(c)]
    auto = sum(c.metadata.nbgrader["points"] for c in grades if not is_solution(c))
    manual = sum(c.metadata.nbgrader["points"] for c in grades if is_solution(c))
    header = nb.cells[0].source
    m = re.search(r"\*\*total\*\* \| \*\*(\d+)\*\* \((\d+) autograded \+ (\d+) by hand\)", header)
    assert m, "the first cell must state the total points"
    assert (int(m[1]), int(m[2]), int(m[3])) == (auto + manual, auto, manual)
    table = [int(p) for p in re.findall(r"^\| \w+ \|[^|]*\| (\d+) \|$", header, re.MULTILINE)]
    assert sum(table) == auto + manual, "the task table's points must add up to the total"


@pytest.fixture
def kernel_env(monkeypatch):
    """The kernels' environment in the autograder (pure-Python Theano, no progress bars, one
    BLAS thread), as a student runs the lab: without the grading sandbox's record mode."""
    from autograder.sandbox import Sandbox
    for key, value in Sandbox().grading_variables("lab").items():
        if key not in ("NNOPT_GRADING_MODE", "NNOPT_LAB", "NBGRADER_EXECUTION"):
            monkeypatch.setenv(key, value)


def _execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    NotebookClient(nb, timeout=120, allow_errors=True, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"
            or (o.output_type == "stream" and o.name == "stderr")]


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_released_lab_runs_until_a_clear_not_implemented_error(lab, tmp_path, kernel_env):
    nb = _execute(_released(lab), tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = next(i for i, c in enumerate(code) if _errors(c))
    assert first > 0 and all(not _errors(c) for c in code[:first])
    err = _errors(code[first])[0]
    assert err.output_type == "error" and err.ename == "NotImplementedError", err
    assert "write your code here" in err.evalue


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_released_lab_scores_zero_once_its_hidden_tests_are_back(lab, tmp_path, kernel_env):
    tests = {c.metadata.nbgrader["grade_id"]: c.source for c in _source(lab).cells
             if is_grade(c) and not is_solution(c)}
    nb = _released(lab)
    for cell in nb.cells:                      # what nbgrader's autograde runs
        if is_grade(cell) and not is_solution(cell):
            cell.source = tests[cell.metadata.nbgrader["grade_id"]]
    nb = _execute(nb, tmp_path)
    scores = [determine_grade(c)[0] for c in nb.cells if is_grade(c) and not is_solution(c)]
    assert len(scores) == len(tests) and all(s == 0 for s in scores)


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_solution_gets_full_marks_on_every_test_cell(lab, tmp_path, kernel_env):
    nb = _execute(_source(lab), tmp_path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not _errors(cell), (cell.metadata.get("nbgrader", {}).get("grade_id"), _errors(cell))
        if is_grade(cell) and not is_solution(cell):
            score, points = determine_grade(cell)
            assert score == points > 0


@pytest.mark.parametrize("lab", LABS)
def test_every_test_cell_is_read_by_the_grader_and_says_what_it_expects(lab):
    released = {c.metadata.nbgrader["grade_id"]: c.source for c in _released(lab).cells
                if is_grade(c) and not is_solution(c)}
    for cell in _source(lab).cells:
        if not (is_grade(cell) and not is_solution(cell)):
            continue
        everything = cells.expected_checks(cell.source)
        visible = cells.expected_checks(released[cell.metadata.nbgrader["grade_id"]])
        assert everything, f"{cell.metadata.nbgrader['grade_id']} states no check"
        assert not visible or any(e.spec.why for e in visible), \
            f"{cell.metadata.nbgrader['grade_id']}: a visible check must say in words what is expected"


def _autograde(nb: nbformat.NotebookNode, lab: str, tmp_path: Path, monkeypatch) -> dict[str, verdicts.CellVerdict]:
    """What autograde does, without nbgrader: execute in record mode with the lab's graded
    implementations withheld, then decide every test cell from its trusted source."""
    for key, value in withheld.overlay(lab, tmp_path / "overlay").items():
        monkeypatch.setenv(key, value)
    nb = _execute(nb, tmp_path)
    trusted = {c.metadata.nbgrader["grade_id"]: c.source for c in _source(lab).cells
               if is_grade(c) and not is_solution(c)}
    context = verdicts.notebook_context(nb, ["adam_updates", "train_softmax_theano"]) if lab == LABS[2] \
        else Context(trusted=True)
    return {gid: verdicts.decide(trusted[gid], c.outputs, context)
            for c in nb.cells if (gid := c.metadata.get("nbgrader", {}).get("grade_id")) in trusted}


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_at_autograde_the_solution_passes_and_the_release_fails(lab, tmp_path, kernel_env, monkeypatch):
    outcomes = _autograde(_source(lab), lab, tmp_path / "solution", monkeypatch)
    assert outcomes and all(o.passed for o in outcomes.values()), \
        {g: o.failures for g, o in outcomes.items() if not o.passed}
    tests = {c.metadata.nbgrader["grade_id"]: c.source for c in _source(lab).cells
             if is_grade(c) and not is_solution(c)}
    nb = _released(lab)
    for cell in nb.cells:
        if is_grade(cell) and not is_solution(cell):
            cell.source = tests[cell.metadata.nbgrader["grade_id"]]
    outcomes = _autograde(nb, lab, tmp_path / "release", monkeypatch)
    assert len(outcomes) == len(tests) and not any(o.passed for o in outcomes.values())


@pytest.mark.slow
def test_the_students_instant_feedback_is_the_graders_verdict(tmp_path, kernel_env, monkeypatch):
    """A notebook with classic bugs, run by the student (visible tests, verdicts in the kernel)
    and graded on the visible tests (record mode, trusted verdicts): the same cells fail."""
    lab = LABS[1]
    nb = make_samples.classic_bugs()
    (tmp_path / "student").mkdir()
    student = _execute(copy.deepcopy(nb), tmp_path / "student")
    failed_for_student = {c.metadata.nbgrader["grade_id"] for c in student.cells
                          if is_grade(c) and not is_solution(c) and determine_grade(c)[0] == 0}
    visible = {c.metadata.nbgrader["grade_id"]: c.source for c in _released(lab).cells
               if is_grade(c) and not is_solution(c) and cells.expected_checks(c.source)}
    for key, value in withheld.overlay(lab, tmp_path / "overlay").items():
        monkeypatch.setenv(key, value)
    (tmp_path / "graded").mkdir()
    graded = _execute(nb, tmp_path / "graded")
    failed_for_grader = {gid for c in graded.cells if (gid := c.metadata.get("nbgrader", {}).get("grade_id")) in visible
                         and not verdicts.decide(visible[gid], c.outputs, Context(trusted=True)).passed}
    assert failed_for_grader == failed_for_student & set(visible) == {
        "test_adagrad", "test_adam", "test_adam_first_step", "test_adamw", "test_clip"}
