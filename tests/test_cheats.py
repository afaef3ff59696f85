"""Issue 16's acceptance through plain ``nbgrader autograde`` with the kit's config (what an
instructor runs in ``autograder/``; the pipeline is tested in test_autograder.py): every cheat
sample scores 0 on the items it cheats, the classic bugs are diagnosed and counted by the class
report, and correct-but-different answers keep full marks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import class_report, make_samples, pipeline
from autograder.course import NBGRADER_MAIN, nbgrader_environment

REPO = Path(__file__).resolve().parents[1]
CHOSEN = [s for s in make_samples.SAMPLES
          if callable(s.make) and (s.fails or s.bugs or "correct but different" in s.why)]


@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    """The chosen samples autograded by ``nbgrader autograde <lab>`` (one run per lab)."""
    course = pipeline.Course(REPO / "autograder").copy_to(tmp_path_factory.mktemp("course"))
    labs = sorted({s.lab for s in CHOSEN})
    pipeline.sync_gradebook(course, labs)
    for s in CHOSEN:
        path = course.submitted / s.student / s.lab / f"{s.lab}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(s.make(), str(path))
    logs = {}
    for lab in labs:
        out = subprocess.run([sys.executable, "-c", NBGRADER_MAIN, "autograde", lab, "--force",
                              "--ExecutePreprocessor.timeout=120"], cwd=course.root, env=nbgrader_environment(),
                             capture_output=True, text=True, timeout=3000)
        logs[lab] = out.stdout + out.stderr
        assert out.returncode == 0, logs[lab][-3000:]
    return course, logs


def _scores(course: pipeline.Course, lab: str, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course.db}") as gb:
        nb = gb.find_submission_notebook(lab, lab, student)
        return {g.name: g.auto_score for g in nb.grades if g.name != "written_answer"}


def _param(sample: make_samples.Sample):
    return pytest.param(sample, id=f"{sample.lab}/{sample.student}")


@pytest.mark.slow
@pytest.mark.parametrize("sample", [_param(s) for s in CHOSEN])
def test_each_sample_scores_as_expected_item_by_item(sample, autograded):
    course, logs = autograded
    scores = _scores(course, sample.lab, sample.student)
    assert sum(scores.values()) == sample.auto_score, (scores, sample.why)
    for grade_id in sample.fails:
        assert scores[grade_id] == 0, (grade_id, scores)
    nb = nbformat.read(str(course.autograded / sample.student / sample.lab / f"{sample.lab}.ipynb"), as_version=4)
    found = {b for c in nb.cells for b in c.get("metadata", {}).get("nnopt", {}).get("verdict", {}).get("bugs", [])}
    assert set(sample.bugs) <= found, found


@pytest.mark.slow
def test_delegation_fails_with_a_message_that_says_why(autograded):
    course, _ = autograded
    text = (course.autograded / "dave" / make_samples.LAB1 / f"{make_samples.LAB1}.ipynb").read_text()
    assert "is not installed while lab1_sgd_momentum is autograded" in text
    assert "the reference is absent (not merely switched off)" in text


@pytest.mark.slow
def test_the_class_report_counts_the_diagnosed_bugs(autograded):
    course, _ = autograded
    status = {lab: {s.student: pipeline.Status("graded") for s in CHOSEN if s.lab == lab}
              for lab in {s.lab for s in CHOSEN}}
    class_report.write_reports(course, status)
    lab2 = class_report.lab_report(course, make_samples.LAB2, status[make_samples.LAB2])
    counts = {lab: {b.key: b.students for b in class_report.lab_report(course, lab, status[lab]).bugs} for lab in status}
    for sample in CHOSEN:
        for bug in sample.bugs:
            assert counts[sample.lab].get(bug, 0) >= 1, (bug, counts[sample.lab])
    rates = {t.grade_id: (t.passed, t.graded) for t in lab2.tests}
    assert rates["test_rmsprop"] == (lab2.graded, lab2.graded), "everybody's RMSProp is right"
    assert rates["test_clip"][0] < lab2.graded
    md = (course.grades / f"{make_samples.LAB2}_report.md").read_text()
    assert "Adam without bias correction" in md and "pass rate" in md
