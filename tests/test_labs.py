"""The labs: labs/ is what solutions/ generates, leaks nothing, states its points, and
runs as promised (released: a clear NotImplementedError at the first task; solutions: full
marks on every test cell, hidden tests included)."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.utils import determine_grade, is_grade, is_solution

REPO = Path(__file__).resolve().parents[1]

from autograder import pipeline

COURSE = pipeline.Course(REPO / "autograder")
LABS = COURSE.labs()
REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.DOTALL)


def _source(lab: str) -> nbformat.NotebookNode:
    return nbformat.read(str(COURSE.solutions / lab / f"{lab}.ipynb"), as_version=4)


def _released(lab: str) -> nbformat.NotebookNode:
    return nbformat.read(str(COURSE.released(lab)), as_version=4)


def test_there_are_three_labs():
    assert LABS == ["lab1_sgd_momentum", "lab2_adaptive", "lab3_handson"]
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
    """The kernels' environment in the autograder (pure-Python Theano, no progress bars)."""
    for key, value in pipeline._environment().items():
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
