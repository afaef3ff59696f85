"""A class on a real JupyterHub, in Chromium, the way its people use it (``make hub-demo``).

The kit's ``autograder/deploy/jupyterhub_config.py`` runs on a scratch class server
(:mod:`hub_classroom`: the kit where everyone can read it, Unix accounts with passwords, the
exchange, the grading account's course with the kit's ``nbgrader_config.py``, so autograde runs
in whatever sandbox the kit configures). Then, in Chromium (:mod:`hub_people`):

1. the instructor logs in, opens formgrader and presses Generate and Release for Lab 1;
2. each student logs in, fetches Lab 1 from the Assignments tab, types answers into the cells,
   saves, validates and submits: alice the full answers, bob a partial lab, carol one task plus
   code that tries to read alice's work (her home, her submission in the exchange);
3. the instructor presses Collect, Autograde for each submission, Generate Feedback and
   Release Feedback;
4. each student presses Fetch Feedback and opens the page: their own score, formulas typeset.

Screenshots of every stage go to ``build/browser/hub/``. Needs root (Unix users) and Chromium;
it fails, never skips, when something it needs is missing: ``make hub-demo`` (or ``make
test-browser``) installs Chromium, the node tools and the course's Python packages.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from conftest import CHROMIUM, REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LAB = "lab1_sgd_momentum"
RELEASED = REPO_ROOT / "labs" / LAB / f"{LAB}.ipynb"
SAMPLES = REPO_ROOT / "autograder" / "samples"
#: Who reads another student's work: the probe carol types above her first answer. It prints
#: one line per target (path: ``read`` or the error) and never uses what it reads.
PROBE = '''import os
victim = {victim!r}
homes = os.path.dirname(os.path.expanduser("~"))
targets = [os.path.join(homes, victim, "{lab}", "{lab}.ipynb"),
           os.path.join(os.environ.get("NNOPT_EXCHANGE_ROOT", "/srv/nbgrader/exchange"), "nnopt", "inbound")]
for target in targets:
    try:
        os.listdir(target) if os.path.isdir(target) else open(target).read()
        print(f"PROBE {{target}}: read")
    except OSError as err:
        print(f"PROBE {{target}}: {{type(err).__name__}}")

'''


def solution_cells(nb: nbformat.NotebookNode) -> dict[str, int]:
    """``grade_id -> cell index`` of the cells a student writes in."""
    return {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells)
            if c.metadata.get("nbgrader", {}).get("solution")}


def points(nb: nbformat.NotebookNode, solved: set[str] | None = None) -> float:
    """Autograded points of ``nb``: all of them, or those of the test cells following a solved
    task (``grade_id`` of solution cells)."""
    total, task = 0.0, None
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            task = meta["grade_id"]
        elif meta.get("grade") and cell.cell_type == "code" and (solved is None or task in solved):
            total += meta.get("points", 0)
    return total


@dataclass
class Student:
    """What a simulated student types, and the autograded score that must come back."""

    role: str
    answers: dict[int, str]           # cell index -> source typed into it
    expected: float
    feedback: str = ""
    validation: str = ""
    account: object = None
    probe: list[str] = field(default_factory=list)


def plan_students(victim: str) -> list[Student]:
    """alice: full answers (alice's sample); bob: his partial sample; carol: the first task
    (alice's answer) preceded by :data:`PROBE` against ``victim``, the other tasks left."""
    from autograder import make_samples

    released = nbformat.read(str(RELEASED), as_version=4)
    cells = solution_cells(released)

    def answers_of(sample: str) -> dict[int, str]:
        nb = nbformat.read(str(SAMPLES / sample), as_version=4)
        return {cells[gid]: nb.cells[i].source for gid, i in solution_cells(nb).items() if gid in cells}

    bob_score = next(s.auto_score for s in make_samples.SAMPLES if s.path == "bob_lab1.ipynb")
    alice = answers_of("alice_lab1_sgd_momentum.ipynb")
    first = min(cells, key=cells.get)
    carol = {cells[first]: PROBE.format(victim=victim, lab=LAB) + alice[cells[first]]}
    return [Student("alice", alice, points(released)),
            Student("bob", answers_of("bob_lab1.ipynb"), bob_score),
            Student("carol", carol, points(released, {first}))]


# --------------------------------------------------------------------------- fixtures


def _missing() -> list[str]:
    needs = {"root (the class's Unix users)": os.geteuid() == 0,
             f"{CHROMIUM} (make chromium)": CHROMIUM.exists(),
             "node and the kit's proxy (make web-deps)":
                 shutil.which("node") is not None and
                 (REPO_ROOT / "autograder/deploy/hub/node_modules/.bin/configurable-http-proxy").exists()}
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        needs["JupyterHub (make course-deps)"] = False
    return [what for what, ok in needs.items() if not ok]


@pytest.fixture(scope="module")
def browser(request):
    missing = _missing()
    if missing:
        pytest.fail(f"the hub test needs {', '.join(missing)}: run it with `make hub-demo` as root")
    return request.getfixturevalue("shared_chromium")


@dataclass
class ClassRun:
    server: object
    students: list[Student]
    course: Path
    timings: dict[str, float]


@pytest.fixture(scope="module")
def class_run(browser) -> Iterator[ClassRun]:
    from hub_classroom import ClassServer
    from hub_people import Formgrader, StudentLab, login, shot, write_lab_settings

    timings: dict[str, float] = {}
    start = time.monotonic()

    def lap(stage: str) -> None:
        timings[stage] = round(time.monotonic() - start, 1)
        print(f"[hub] {stage}: {timings[stage]} s", flush=True)

    server = ClassServer()
    try:
        grader, prof = server.add_user("grader"), server.add_user("prof")
        students = plan_students(victim=f"{server.prefix}-alice")
        for student in students:
            student.account = server.add_user(student.role)
            write_lab_settings(student.account.home)
            subprocess.run(["chown", "-R", f"{student.account.name}:", str(student.account.home / ".jupyter")],
                           check=True)
        course = server.install_course(grader)
        hub = server.start_hub(grader, [prof], [s.account for s in students], course)
        lap("hub up")

        formgrader = Formgrader.log_in(browser, hub.url, prof.name, server.passwords[prof.name])
        formgrader.assignment_action(LAB, "assign", "01_grader_generate")
        formgrader.assignment_action(LAB, "release", "02_grader_release")
        lap("released")

        for student in students:
            spage = login(browser, hub.url, student.account.name, server.passwords[student.account.name])
            lab = StudentLab(spage, f"03_{student.role}")
            lab.fetch(LAB)
            lab.open_notebook(LAB)
            for index, source in student.answers.items():
                lab.type_into_cell(index, source)
            if student.role == "carol":                   # she runs her probe
                student.probe = lab.run_cell(min(student.answers), expect="PROBE", lines=2)
            lab.save()
            shot(spage, f"03_{student.role}_answered")
            student.validation = lab.validate()
            lab.submit(LAB)
            spage.context.close()
            lap(f"{student.role} submitted")

        formgrader.assignment_action(LAB, "collect", "04_grader_collect")
        formgrader.autograde_all(LAB, [s.account.name for s in students], "05_grader_autograde")
        formgrader.assignment_action(LAB, "generate-feedback", "06_grader_generate_feedback")
        formgrader.assignment_action(LAB, "release-feedback", "07_grader_release_feedback")
        lap("feedback released")

        for student in students:
            spage = login(browser, hub.url, student.account.name, server.passwords[student.account.name])
            student.feedback = StudentLab(spage, f"08_{student.role}").fetch_feedback(LAB)
            spage.context.close()
        lap("feedback fetched")
        (REPO_ROOT / "build" / "browser" / "hub" / "timings.json").write_text(json.dumps(timings, indent=1))
        yield ClassRun(server, students, course, timings)
    except Exception:
        print(server.log_tail(), flush=True)
        raise
    finally:
        server.close()


# --------------------------------------------------------------------------- tests


def _score(text: str) -> float:
    """The total score nbgrader's feedback page states: ``Score: <got> / <max>``."""
    import re

    found = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", text)
    assert found, f"no score on the feedback page:\n{text[:500]}"
    return float(found[1])


def test_each_student_sees_exactly_their_own_score(class_run: ClassRun) -> None:
    scores = {s.role: _score(s.feedback) for s in class_run.students}
    assert scores == {s.role: pytest.approx(s.expected) for s in class_run.students}
    assert len(set(scores.values())) == len(scores), "the three submissions must score differently"


def test_validate_said_what_each_notebook_deserves(class_run: ClassRun) -> None:
    by_role = {s.role: s.validation for s in class_run.students}
    assert "Success! Your notebook passes all the tests." in by_role["alice"]
    assert "Success" not in by_role["bob"] and "Success" not in by_role["carol"]


def test_a_student_cannot_read_another_students_work(class_run: ClassRun) -> None:
    carol = next(s for s in class_run.students if s.role == "carol")
    assert len(carol.probe) == 2, carol.probe
    assert all(line.endswith("PermissionError") for line in carol.probe), carol.probe
    alice = next(s for s in class_run.students if s.role == "alice")
    released = nbformat.read(str(RELEASED), as_version=4)
    shown = "\n".join([*carol.answers.values(), *(c.source for c in released.cells)])   # hers anyway
    alices_own = {line.strip() for index, src in alice.answers.items() if index not in carol.answers
                  for line in src.splitlines() if len(line.strip()) > 20 and line.strip() not in shown}
    assert alices_own, "alice's answers should have lines of their own to look for"
    stolen = [line for line in alices_own if line in carol.feedback]
    assert stolen == [], f"alice's answers appear in carol's feedback: {stolen[:3]}"


def test_feedback_formulas_are_typeset_and_hidden_tests_absent(class_run: ClassRun) -> None:
    for student in class_run.students:
        assert "$$" not in student.feedback and "\\frac" not in student.feedback, student.role
        assert "BEGIN HIDDEN TESTS" not in student.feedback, student.role
