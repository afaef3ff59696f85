"""Honest samples and attack submissions graded together, through both entry points.

* **the pipeline** (``python -m autograder.pipeline grade``): ``autograder/samples`` and
  ``autograder/attacks`` in one batch with 2 workers: every sample keeps its exact score
  (``make_samples.SAMPLES``), every attack gets its outcome (``make_attacks.ATTACKS``);
* **nbgrader autograde** run from the course folder with the kit's nbgrader_config.py (what
  formgrader and the README's instructor cycle run): the attacks plus a probe notebook that
  records, from inside the autograded notebook, what the sandbox lets it do.

After each batch: no ``LEAKED:`` line anywhere, no process of a submission alive, the
gradebook and the machine unchanged.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest

from autograder import feedback, intake, make_attacks, make_samples, offline_math, pipeline
from autograder.course import NBGRADER_MAIN, db_url, nbgrader_environment
from conftest import REPO_ROOT

#: Two batches of ~60 notebooks: minutes on an idle machine, far longer on a loaded one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

LAB1 = make_samples.LAB1
SAMPLES = REPO_ROOT / "autograder" / "samples"
ATTACKS = REPO_ROOT / "autograder" / "attacks"
#: Full marks of Lab 1 as the samples define them (the lab's tests may change; this follows).
FULL = next(s.auto_score for s in make_samples.SAMPLES if s.path == "alice_lab1_sgd_momentum.ipynb")
CELL_TIMEOUT = 90          # a 200 MB print takes ~20 s, Lab 3's Theano cell ~9 s idle, several times that loaded
WALL_LIMIT = 600           # seconds per notebook: scores are checked here, never speed
PROBE_TOKEN = "nnopt-probe-child-7f3a"


def _survivors() -> list[str]:
    """Command lines of processes left by a submission (marked, or inside a sandbox)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["status"] != psutil.STATUS_ZOMBIE and (
                make_attacks.SURVIVOR in cmd or PROBE_TOKEN in cmd or "/sandbox/runner/" in cmd):
            found.append(cmd[:200])
    return found


def _outputs(path: Path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def _hidden_lines() -> list[str]:
    source = nbformat.read(str(REPO_ROOT / "solutions" / LAB1 / f"{LAB1}.ipynb"), as_version=4)
    return feedback.hidden_test_lines(source)


def _batch(root: Path, *extra: Path) -> Path:
    folder = root / "submissions"
    shutil.copytree(SAMPLES, folder)
    for attack in make_attacks.ATTACKS:
        shutil.copytree(ATTACKS / attack.student, folder / attack.student)
    for path in extra:
        shutil.copytree(path, folder / path.name)
    return folder


def test_attacks_are_up_to_date(tmp_path):
    for path in make_attacks.build(tmp_path / "attacks"):
        committed = ATTACKS / path.relative_to(tmp_path / "attacks")
        assert committed.read_bytes() == path.read_bytes(), \
            f"{committed} is stale: run `python -m autograder.make_attacks` and commit"
    assert len(make_attacks.ATTACKS) >= 20


# ================================================================ the pipeline
@pytest.fixture(scope="module")
def piped(tmp_path_factory):
    root = tmp_path_factory.mktemp("piped")
    course = pipeline.Course(REPO_ROOT / "autograder").copy_to(root / "course")
    lines: list[str] = []
    report = pipeline.grade(course, _batch(root), workers=2, cell_timeout=CELL_TIMEOUT, wall_limit=WALL_LIMIT,
                            log=lines.append)
    return course, report, _survivors(), lines


def _rows(course: pipeline.Course) -> dict[str, dict[str, str]]:
    with open(course.grades / "grades.csv", newline="") as fh:
        return {f"{r['lab']}/{r['student_id']}": r for r in csv.DictReader(fh)}


def test_every_sample_keeps_its_exact_score(piped):
    course, report, _, _ = piped
    rows = _rows(course)
    for key, want in make_samples.expected().items():
        row = rows[key]
        assert float(row["auto_score"]) == want["auto_score"], (key, row, want["why"])
        assert row["status"].split(":")[0] == want["status"], (key, row)
        assert bool(row["flags"]) == want["flagged"], (key, row["flags"])
    alice = rows[f"{LAB1}/alice"]
    assert alice["needs_manual_grade"] == "True" and float(alice["max_score"]) == 18
    assert "assigns np.allclose" in rows[f"{LAB1}/mallory"]["flags"]


def test_cheats_score_zero_on_the_items_they_cheat_and_bugs_are_named(piped):
    """Issue 16 through the pipeline, item by item: every cheat sample scores 0 on what it
    cheats, and the bugs a sample is labelled with are named in its verdicts."""
    from nbgrader.api import Gradebook
    course, _, _, _ = piped
    chosen = [s for s in make_samples.SAMPLES if s.fails or s.bugs]
    assert len(chosen) >= 8
    with Gradebook(db_url(course.db)) as gb:
        for s in chosen:
            scores = {g.name: g.auto_score for g in gb.find_submission_notebook(s.lab, s.lab, s.student).grades}
            assert all(scores[grade_id] == 0 for grade_id in s.fails), (s.student, s.why, scores)
            nb = nbformat.read(str(course.autograded / s.student / s.lab / f"{s.lab}.ipynb"), as_version=4)
            found = {b for c in nb.cells for b in c.metadata.get("nnopt", {}).get("verdict", {}).get("bugs", [])}
            assert set(s.bugs) <= found, (s.student, found)


def test_every_attack_gets_its_outcome(piped):
    course, _, _, _ = piped
    rows = _rows(course)
    for attack in make_attacks.ATTACKS:
        row = rows[f"{LAB1}/{attack.student}"]
        status = pipeline.load_status(course)[LAB1][attack.student]
        if attack.status == "graded":
            want = 0.0 if attack.unfilled else FULL
            assert row["status"] == "graded" and float(row["auto_score"]) == want, (attack.student, row)
        else:
            assert row["status"].startswith("grading error: ") and attack.explains(status.detail), \
                (attack.student, row["status"])
            assert float(row["auto_score"]) == 0
        assert row["sandbox"].startswith("bwrap:"), row


def test_no_attack_leaked_anything_or_left_a_process(piped):
    course, _, survivors, _ = piped
    assert survivors == []
    for nb in course.autograded.glob(f"*/{LAB1}/{LAB1}.ipynb"):
        assert "LEAKED" not in _outputs(nb), nb
    for page in course.feedback.glob("*/*/*.ipynb"):
        assert "LEAKED" not in _outputs(page), page
    for page in course.feedback.glob("*/*/*.html"):                     # its source says "LEAKED:"
        assert "LEAKED: " not in page.read_text(errors="replace"), page


def test_the_gradebook_the_kit_and_the_machine_are_untouched(piped):
    from nbgrader.api import Gradebook
    course, _, _, _ = piped
    with Gradebook(db_url(course.db)) as gb:
        for sub in gb.assignment_submissions(LAB1):
            for nb in sub.notebooks:
                assert all(not g.extra_credit for g in nb.grades), sub.student.id
    planted = [Path(p) / "sitecustomize.py" for p in site.getsitepackages()]
    import nnopt
    planted += [Path(nnopt.__file__).parent / "planted.py", Path(sys.prefix) / "bin" / "planted"]
    assert not [p for p in planted if p.exists()]
    assert not list(Path("/tmp").glob("fill*.bin")) and not list(course.root.rglob("fill*.bin"))
    assert not list(Path("/tmp").glob("rootlink"))


def test_floods_are_cut_to_the_byte_limits(piped):
    course, _, _, _ = piped
    for attack in (a for a in make_attacks.ATTACKS if a.capped):
        path = course.autograded / attack.student / LAB1 / f"{LAB1}.ipynb"
        assert path.stat().st_size < 3 * 1024**2, attack.student       # 1 MiB per cell
        assert "output truncated" in _outputs(path), attack.student


def test_a_file_claiming_another_student_is_reported_not_reattributed(piped):
    course, report, _, lines = piped
    rows = _rows(course)
    assert float(rows[f"{LAB1}/alice"]["auto_score"]) == FULL
    assert "claims student 'alice'" in rows[f"{LAB1}/mallory-intake"]["flags"]
    assert any("claims student 'alice'" in w for w in report.warnings)


def test_feedback_shows_no_hidden_tests_and_no_live_script(piped):
    course, _, _, _ = piped
    hidden = _hidden_lines()
    pages = list(course.feedback.glob(f"*/{LAB1}/{LAB1}.*"))
    assert len(pages) > 30
    for page in pages:
        text = page.read_text(errors="replace")
        assert not feedback.quotes_hidden(text, hidden), page
        assert "HIDDEN TESTS" not in text, page
    html = (course.feedback / "script-in-feedback" / LAB1 / f"{LAB1}.html").read_text()
    assert feedback.CSP_META in html[:html.index("<title>")]
    assert "PWNED" in html                                            # shown as text ...
    assert not re.search(r"<script[^>]*>[^<]*PWNED", html)            # ... never as script
    assert not re.search(r"<[a-z]+[^>]*\son[a-z]+\s*=", html, re.IGNORECASE)
    tex = (course.feedback / "tex-in-feedback" / LAB1 / f"{LAB1}.html").read_text()   # typeset by MathJax
    assert feedback.CSP_META in tex[:tex.index("<title>")]
    assert not re.search(r"(href|src)\s*=\s*[\"']?\s*(javascript|data:text|http)", tex, re.IGNORECASE)
    assert not re.search(r"<[a-z]+[^>]*\son[a-z]+\s*=", tex, re.IGNORECASE)
    flood = (course.feedback / "math-flood" / LAB1 / f"{LAB1}.html").read_text()     # not typeset: a note
    assert offline_math.TOO_MANY.format(limit=offline_math.MAX_FORMULAS) in flood and "x_{49999}" in flood
    assert feedback.CSP_META in flood[:flood.index("<title>")]


def test_the_csv_and_the_log_name_the_sandbox(piped):
    course, report, _, lines = piped
    assert report.sandbox.startswith("bwrap: 2 GiB memory/process, 64 tasks")
    assert "sandbox: bwrap" in lines[0]
    assert {r["sandbox"] for r in _rows(course).values()} == {report.sandbox}


def test_histograms_and_logs(piped):
    course, _, _, _ = piped
    for lab in course.labs():
        assert (course.grades / f"{lab}_histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "grading error: the kernel died" in (course.grades / "logs" / LAB1 / "oscar.log").read_text()


def test_a_rerun_keeps_the_gradebook_and_manual_grades(piped, tmp_path):
    from nbgrader.api import Gradebook
    course, _, _, _ = piped
    before = _rows(course)
    with Gradebook(db_url(course.db)) as gb:                       # the instructor grades
        gb.find_grade("written_answer", LAB1, LAB1, "alice").manual_score = 3
        gb.db.commit()
    archive = tmp_path / "resubmissions.zip"                      # alice and bob again
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("alice_lab1_sgd_momentum.ipynb", "bob_lab1.ipynb"):
            zf.write(SAMPLES / name, name)
    pipeline.grade(course, archive, workers=1, cell_timeout=CELL_TIMEOUT, log=lambda *a: None)
    after = _rows(course)
    assert set(after) == set(before), "no duplicate or lost rows"
    assert float(after[f"{LAB1}/alice"]["score"]) == FULL + 3, "the manual grade survives"
    for key in before:
        if key != f"{LAB1}/alice":
            assert (after[key]["score"], after[key]["status"]) == (before[key]["score"], before[key]["status"]), key


# ================================================================ nbgrader autograde
PROBE = '''import json, os, resource, socket, subprocess, sys
import numpy as np
facts = {{"course_root": {course_root!r}}}
try:
    os.listdir({course_root!r})
    facts["listed"] = True
except OSError as exc:
    facts["listed"] = type(exc).__name__
facts["root_entries"] = sorted(os.listdir("/"))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3).close()
    facts["socket"] = "connected"
except OSError as exc:
    facts["socket"] = str(exc)
try:
    block = np.ones(3 << 30, dtype=np.uint8)
    facts["alloc_3g"] = "allocated"
except MemoryError:
    facts["alloc_3g"] = "MemoryError"
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(10**6)", {token!r}],
                         start_new_session=True)
facts["child_alive"] = child.poll() is None
facts["uid"] = os.getuid()
facts["address_space"] = resource.getrlimit(resource.RLIMIT_AS)[0]
facts["env"] = {{k: os.environ.get(k) for k in ("NNOPT_GRADING_MODE", "NNOPT_LAB", "HOME")}}
print("PROBE " + json.dumps(facts))
'''


def _probe(folder: Path, course: pipeline.Course) -> Path:
    nb = make_samples.filled(LAB1)
    source = PROBE.format(course_root=str(course.root), token=PROBE_TOKEN)
    nb.cells.append(nbformat.v4.new_code_cell(source, id="probe"))
    (folder / "zz-probe").mkdir(parents=True)
    nbformat.write(nb, str(folder / "zz-probe" / f"{LAB1}.ipynb"))
    return folder / "zz-probe"


@pytest.fixture(scope="module")
def nbgraded(tmp_path_factory):
    """The attacks and the probe collected into submitted/ and autograded by two
    ``nbgrader autograde`` processes (disjoint students, each its own gradebook copy)."""
    root = tmp_path_factory.mktemp("nbgraded")
    course = pipeline.Course(REPO_ROOT / "autograder").copy_to(root / "course")
    pipeline.sync_gradebook(course, [LAB1])
    folder = root / "submissions"
    for attack in make_attacks.ATTACKS:
        shutil.copytree(ATTACKS / attack.student, folder / attack.student)
    _probe(folder, course)
    entries = intake.collect(folder, course.submitted, {LAB1: course.released(LAB1)})
    assert all(e.status == "ok" for e in entries)
    procs, dbs = [], []
    for part, pattern in enumerate(("[a-l]*", "[m-z]*")):
        db = root / f"gradebook{part}.db"
        shutil.copyfile(course.db, db)
        log = open(root / f"autograde{part}.log", "w")
        procs.append((subprocess.Popen(
            [sys.executable, "-c", NBGRADER_MAIN, "autograde", LAB1, f"--student={pattern}", "--force",
             f"--CourseDirectory.db_url={db_url(db)}", f"--ExecutePreprocessor.timeout={CELL_TIMEOUT}"],
            cwd=course.root, env=nbgrader_environment(), stdout=log, stderr=subprocess.STDOUT), log))
        dbs.append(db)
    for proc, log in procs:
        proc.wait(timeout=3600)
        log.close()
    logs = "".join((root / f"autograde{part}.log").read_text() for part in range(2))
    return course, dbs, logs, _survivors()


def _scores(dbs: list[Path]) -> dict[str, float | None]:
    from nbgrader.api import Gradebook, MissingEntry
    scores = {}
    for db in dbs:
        with Gradebook(db_url(db)) as gb:
            for sub in gb.assignment_submissions(LAB1):
                try:
                    scores[sub.student.id] = sub.code_score
                except MissingEntry:
                    continue
    return scores


def test_nbgrader_autograde_with_the_kit_config_gives_every_attack_its_outcome(nbgraded):
    course, dbs, logs, survivors = nbgraded
    scores = _scores(dbs)
    assert survivors == []
    for attack in make_attacks.ATTACKS:
        autograded = course.autograded / attack.student / LAB1 / f"{LAB1}.ipynb"
        if attack.status == "graded":
            assert autograded.is_file(), (attack.student, logs[-3000:])
            assert scores[attack.student] == (0.0 if attack.unfilled else FULL), attack.student
            assert "LEAKED" not in _outputs(autograded), attack.student
        else:
            assert not autograded.exists(), attack.student
            assert "grading error: " in logs and attack.explains(logs), attack.student
    assert scores["zz-probe"] == FULL


def test_the_sandbox_seen_from_inside_an_autograded_notebook(nbgraded):
    course, _, _, survivors = nbgraded
    nb = nbformat.read(str(course.autograded / "zz-probe" / LAB1 / f"{LAB1}.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    facts = json.loads(printed.split("PROBE ", 1)[1])
    assert facts["listed"] == "FileNotFoundError"                     # the course root is not there
    assert not {"home", "srv", "var", "run", "mnt"} & set(facts["root_entries"])
    assert "unreachable" in facts["socket"].lower()                    # no network at all
    assert facts["alloc_3g"] == "MemoryError" and facts["address_space"] == 2 * 1024**3
    assert facts["child_alive"] and facts["uid"] == 1000
    assert facts["env"] == {"NNOPT_GRADING_MODE": "record", "NNOPT_LAB": LAB1, "HOME": "/sandbox/home"}
    assert survivors == []                                            # its child died with the job
