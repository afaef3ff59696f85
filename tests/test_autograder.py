"""The instructor pipeline (autograder/): intake, tamper scan, feedback stripping, and the
whole run end to end on autograder/samples (scores, CSV, feedback, re-runs, limits)."""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]

from autograder import feedback, intake, make_samples, pipeline, scan

LAB1 = "lab1_sgd_momentum"
COURSE = pipeline.Course(REPO / "autograder")
RELEASES = {lab: COURSE.released(lab) for lab in COURSE.labs()}


def _grade_ids(nb) -> list[str]:
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


# ----------------------------------------------------------------- intake
def test_intake_sorts_every_file_and_never_raises(tmp_path):
    src = tmp_path / "in"
    (src / "zoe").mkdir(parents=True)
    nb = make_samples.filled(LAB1)
    nbformat.write(nb, str(src / "amy_lab1.ipynb"))
    nbformat.write(nb, str(src / "zoe" / "lab1_sgd_momentum.ipynb"))
    nbformat.write(nb, str(src / "bo-2_lab2_adaptive.ipynb"))
    (src / "cy_lab1.ipynb").write_bytes(b"")
    (src / "cy_lab1_v2.ipynb").write_text("{not json")           # supersedes the empty one
    (src / "dee_lab1.pdf").write_bytes(b"%PDF-1.4")
    (src / "notes.txt").write_text("hello")
    (src / "eve_lab9.ipynb").write_text("{}")
    (src / ".hidden_lab1.ipynb").write_text("{}")
    entries = {e.source: e for e in intake.collect(src, tmp_path / "submitted", RELEASES)}
    assert set(entries) == {"amy_lab1.ipynb", "zoe/lab1_sgd_momentum.ipynb", "bo-2_lab2_adaptive.ipynb",
                            "cy_lab1.ipynb", "cy_lab1_v2.ipynb", "dee_lab1.pdf", "notes.txt",
                            "eve_lab9.ipynb"}
    assert (entries["amy_lab1.ipynb"].student, entries["amy_lab1.ipynb"].lab) == ("amy", LAB1)
    assert entries["zoe/lab1_sgd_momentum.ipynb"].student == "zoe"
    assert entries["bo-2_lab2_adaptive.ipynb"].lab == "lab2_adaptive"
    assert entries["cy_lab1.ipynb"].status == "superseded"
    assert entries["cy_lab1_v2.ipynb"].status == "not a notebook"
    assert entries["dee_lab1.pdf"].status == "not a notebook" and ".pdf" in entries["dee_lab1.pdf"].detail
    assert entries["notes.txt"].status == entries["eve_lab9.ipynb"].status == "unmatched"
    copied = sorted(p.relative_to(tmp_path / "submitted").as_posix()
                    for p in (tmp_path / "submitted").rglob("*.ipynb"))
    assert copied == ["amy/lab1_sgd_momentum/lab1_sgd_momentum.ipynb",
                      "bo-2/lab2_adaptive/lab2_adaptive.ipynb",
                      "zoe/lab1_sgd_momentum/lab1_sgd_momentum.ipynb"]


def test_intake_reads_zips_and_ignores_paths_escaping_them(tmp_path):
    archive = tmp_path / "subs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/amy_lab1.ipynb", nbformat.writes(make_samples.filled(LAB1)))
        zf.writestr("export/bo_lab1.ipynb", nbformat.writes(make_samples.filled(LAB1)))
        zf.writestr("../../evil_lab1.ipynb", "{}")
        zf.writestr("__MACOSX/._amy_lab1.ipynb", "junk")
    entries = intake.collect(archive, tmp_path / "submitted", RELEASES)
    assert [(e.source, e.student, e.status) for e in entries] == [
        ("export/amy_lab1.ipynb", "amy", "ok"), ("export/bo_lab1.ipynb", "bo", "ok")]
    assert not (tmp_path.parent / "evil_lab1.ipynb").exists()
    bogus = tmp_path / "subs.txt"
    bogus.write_text("not a zip")
    with pytest.raises(ValueError, match="neither a folder nor a zip"):
        intake.collect(bogus, tmp_path / "submitted", RELEASES)


def test_intake_takes_the_student_from_the_top_folder_only(tmp_path):
    """mallory/alice_lab1.ipynb is Mallory's work, reported; Alice's own submission stays hers."""
    src = tmp_path / "in"
    for rel in ("alice/lab1.ipynb", "mallory/alice_lab1.ipynb", "mallory/extra/bob_lab2_adaptive.ipynb"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(make_samples.filled(LAB1), str(src / rel))
    entries = {e.source: e for e in intake.collect(src, tmp_path / "submitted", RELEASES)}
    assert entries["alice/lab1.ipynb"].student == "alice" and entries["alice/lab1.ipynb"].flags == []
    forged = entries["mallory/alice_lab1.ipynb"]
    assert (forged.student, forged.lab, forged.status) == ("mallory", LAB1, "ok")
    assert forged.flags == ["the file name claims student 'alice', but it was in 'mallory''s folder: "
                            "graded as 'mallory''s"]
    assert entries["mallory/extra/bob_lab2_adaptive.ipynb"].student == "mallory"
    assert sorted(p.relative_to(tmp_path / "submitted").parts[0]
                  for p in (tmp_path / "submitted").rglob("*.ipynb")) == ["alice", "mallory", "mallory"]
    alone = tmp_path / "alone"                    # a single student folder is not a wrapper
    (alone / "mallory").mkdir(parents=True)
    nbformat.write(make_samples.filled(LAB1), str(alone / "mallory" / "alice_lab1.ipynb"))
    [entry] = intake.collect(alone, tmp_path / "submitted2", RELEASES)
    assert entry.student == "mallory" and entry.flags


def test_repair_puts_deleted_locked_cells_back_before_the_next_surviving_cell():
    release = make_samples.released(LAB1)
    nb = make_samples.deletes_cells()
    restored = intake.repair(nb, release)
    assert restored == ["test_inverse_time", "test_sgd_schedule", "test_nesterov_more"]
    ids = _grade_ids(nb)
    mine = next(i for i, c in enumerate(nb.cells) if "def inverse_time" in c.source)
    assert mine < ids.index("test_inverse_time") < ids.index("sgd")
    assert ids.index("test_sgd_constant") < ids.index("test_sgd_schedule") < ids.index("momentum")
    assert intake.repair(nb, release) == []          # idempotent
    nbformat.validate(nb)


# ----------------------------------------------------------------- scan
def _nb(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


@pytest.mark.parametrize("code, needle", [
    ("np.allclose = lambda *a, **k: True", "assigns np.allclose"),
    ("nnopt.OPTIMIZERS['sgd'] = Mine", "assigns nnopt.OPTIMIZERS['sgd']"),
    ("import sys\nsys.modules['nnopt.grading'] = fake", "uses sys.modules"),
    ("setattr(grading, 'check_trajectory', print)", "setattr on grading"),
    ("get_ipython().set_custom_exc((Exception,), h)", "uses get_ipython"),
    ("exec('x = 1')", "runs code dynamically (exec)"),
    ("from nnopt import Adam", "imports nnopt's reference Adam"),
    ("class A:\n    def step(self, t, g):\n        return nnopt.Adam(0.1)", "uses nnopt's reference nnopt.Adam"),
    ("grading = None", "rebinds the name grading"),
    ("import ctypes", "imports ctypes"),
    ("%time x = grading._asarray", "uses grading internals"),
    ("def f(:\n  pass", "syntax error"),
    ("!rm -rf ~", "runs a shell command"),
    ("%%capture out\nnp.testing.assert_allclose = print", "assigns np.testing.assert_allclose"),
])
def test_scan_flags_tampering(code, needle):
    flags = scan.scan_notebook(_nb("x = 1", code))
    assert any(needle in f for f in flags), flags
    assert all(f.startswith("cell 1: ") for f in flags)


def test_scan_does_not_flag_honest_solutions_and_respects_the_labs_policy():
    assert scan.scan_notebook(_nb("%matplotlib inline\n%time y = np.sqrt(2.0)")) == []
    for lab, release in RELEASES.items():
        nb = make_samples.filled(lab)
        assert scan.scan_notebook(nb, nbformat.read(str(release), as_version=4)) == [], lab
    uses_nnopt = _nb("opt = nnopt.make_optimizer('adam', lr=0.1)")
    assert scan.scan_notebook(uses_nnopt)
    lab3 = nbformat.read(str(RELEASES["lab3_handson"]), as_version=4)
    assert scan.scan_notebook(uses_nnopt, lab3) == []


def test_scan_reports_edited_read_only_cells():
    release = make_samples.released(LAB1)
    flags = scan.scan_notebook(make_samples.edits_tests(), release)
    assert "edited the read-only cell setup (restored for grading)" in flags
    assert "changed the points of test_momentum_more (restored for grading)" in flags


# ----------------------------------------------------------------- feedback
def test_strip_notebook_removes_hidden_tests_and_their_tracebacks():
    src = nbformat.read(str(COURSE.solutions / LAB1 / f"{LAB1}.ipynb"), as_version=4)
    cell = next(c for c in src.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_momentum_more")
    cell.outputs = [nbformat.v4.new_output("error", ename="GradingError", evalue="step 2 differs",
                                           traceback=["  grading.check_trajectory(Momentum, {'lr': 1e-4})",
                                                      "GradingError: step 2 differs"])]
    feedback.strip_notebook(src)
    text = nbformat.writes(src)
    assert "HIDDEN TESTS" not in text and "1e-4" not in text
    assert feedback.NOTE in cell.source
    assert [o.text for o in cell.outputs] == [feedback.OUTPUT_NOTE]      # not even the message


def test_grader_rejects_bad_settings():
    with pytest.raises(ValueError, match="Invalid workers: 0"):
        pipeline.Grader(COURSE, workers=0)
    with pytest.raises(ValueError, match="Invalid wall_limit: 0"):
        pipeline.Grader(COURSE, wall_limit=0)


def test_grade_sh_reports_bad_arguments():
    import subprocess
    script = REPO / "autograder" / "grade.sh"
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    usage = subprocess.run([str(script)], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    missing = subprocess.run([str(script), "/no/such/folder"], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_a_stale_labs_folder_is_reported_when_grading(tmp_path):
    course = _course_copy(tmp_path)
    release = course.released(LAB1)
    release.write_text(release.read_text().replace("Lab 1", "Lab One"))
    warnings = pipeline.sync_gradebook(course, course.labs())
    assert len(warnings) == 1 and "labs/lab1_sgd_momentum differs" in warnings[0]
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course.db}") as gb:            # the gradebook has every lab
        assert sorted(a.name for a in gb.assignments) == course.labs()


# ----------------------------------------------------------------- end to end
# (samples and attacks graded through both entry points: tests/test_sandbox_batch.py)
def test_samples_are_up_to_date(tmp_path):
    built = make_samples.build(tmp_path / "samples")
    for path in built:
        committed = REPO / "autograder" / "samples" / path.relative_to(tmp_path / "samples")
        assert committed.read_bytes() == path.read_bytes(), \
            f"{committed} is stale: run `python -m autograder.make_samples` and commit"


def _course_copy(root: Path) -> pipeline.Course:
    """A private course: solutions/, labs/ and the autograder's code (no grading data)."""
    return pipeline.Course(REPO / "autograder").copy_to(root)


#: Each runaway starts a child marked with its token, to check afterwards that none survives.
PIDS = {"sam": "nnopt-runaway-sam", "uma": "nnopt-runaway-uma"}
DEAF = """import signal, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {token!r}])
signal.signal(signal.SIGINT, signal.SIG_IGN)      # ignores nbgrader's interrupt
while True:
    pass
"""
SLOW = """import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {token!r}])
time.sleep(20)
"""


def _gone(token: str) -> bool:
    return not any(token in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))


@pytest.mark.slow
def test_runaway_submissions_are_stopped_and_the_batch_goes_on(tmp_path):
    """A loop that ignores the interrupt fails its run; a run that is slow in every cell
    (each under the cell timeout) hits the sandbox's wall limit and is killed, with every
    process it started."""
    course = _course_copy(tmp_path / "course")
    deaf = make_samples.filled(LAB1, inverse_time=DEAF.format(token=PIDS["sam"]))
    slow = make_samples.filled(LAB1, **{gid: SLOW.format(token=PIDS["uma"]) + src
                                        for gid, src in make_samples.solution_code(LAB1).items()})
    # Two runs, each with limits that leave the other outcome no chance on a loaded machine:
    # sam's loop (first graded cell) against a 20 s cell timeout and a wall limit it never
    # nears; uma's five code cells of 20 s each (100 s) under a 60 s cell timeout, against a
    # 50 s wall limit. The empty file in the first run is graded on, whatever sam did.
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    nbformat.write(deaf, str(first / "sam_lab1.ipynb"))
    (first / "tom_lab1.ipynb").write_bytes(b"")
    nbformat.write(slow, str(second / "uma_lab1.ipynb"))
    pipeline.grade(course, first, workers=1, cell_timeout=20, wall_limit=600, log=lambda *a: None)
    report = pipeline.grade(course, second, workers=1, cell_timeout=60, wall_limit=50, log=lambda *a: None)
    rows = {r["student_id"]: r for r in report.rows}
    assert rows["sam"]["status"].startswith("grading error: the kernel stopped answering: a cell ran past "
                                            "its time limit (20 s)")
    assert "ignored the interrupt" in pipeline.load_status(course)[LAB1]["sam"].detail
    assert float(rows["sam"]["score"]) == 0
    assert rows["uma"]["status"] == "grading error: wall limit exceeded: the notebook ran longer than 50 s " \
                                    "and was stopped" and float(rows["uma"]["score"]) == 0
    assert rows["tom"]["status"] == "empty"
    assert _gone(PIDS["sam"]) and _gone(PIDS["uma"])
    assert "wall limit exceeded" in (course.feedback / "uma" / LAB1 / f"{LAB1}.html").read_text()
