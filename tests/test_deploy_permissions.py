"""Who can read what on a class server installed as DEPLOY.md says (autograder/deploy/install.sh),
checked with real Unix users: students get the kit without solutions (nor the solved samples,
nor the git history that holds both) and cannot read the instructors' course folder; the
source folder is a setting (a private repository of the instructors)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from autograder import pipeline
from conftest import REPO_ROOT

INSTALL = REPO_ROOT / "autograder" / "deploy" / "install.sh"
LAB = "lab1_sgd_momentum"
#: A solution or hidden-test region in a notebook or source file (what install.sh also refuses).
MARKERS = re.compile(r"^[ #\"]*### BEGIN (SOLUTION|HIDDEN TESTS)", re.MULTILINE)


def _unusable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create the Unix users of the simulated class (CI runs as root)"
    if not all(shutil.which(t) for t in ("useradd", "runuser", "git")):
        return "needs useradd, runuser and git"
    if subprocess.run(["git", "-c", "safe.directory=*", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                      capture_output=True).returncode:
        return "the kit is not a git checkout (install.sh exports its committed files)"
    return None


@pytest.fixture(scope="module")
def server():
    reason = _unusable()
    if reason:
        pytest.skip(reason)
    from test_exchange_flow import Machine
    machine = Machine()
    try:
        student, grader = machine.add_user("stu"), machine.add_user("grader")
        kit = machine.base / "opt" / "nnopt"
        subprocess.run([str(INSTALL), "student-kit", str(REPO_ROOT), str(kit)], check=True, capture_output=True)
        course = grader.home / "nnopt"
        subprocess.run([str(INSTALL), "course", str(REPO_ROOT), grader.name, str(course)],
                       check=True, capture_output=True)
        # what grading leaves in the course folder
        for rel in ("autograder/gradebook.db", f"autograder/submitted/{student.name}/{LAB}/{LAB}.ipynb"):
            (course / rel).parent.mkdir(parents=True, exist_ok=True)
            (course / rel).write_text("{}")
        subprocess.run(["chown", "-R", f"{grader.name}:{grader.name}", str(course)], check=True)
        yield machine, student, grader, kit, course
    finally:
        machine.close()


@pytest.mark.slow
def test_the_students_kit_holds_no_solution(server):
    _, _, _, kit, _ = server
    assert (kit / "labs" / LAB / f"{LAB}.ipynb").is_file() and (kit / "lib" / "nnopt").is_dir()
    for absent in ("solutions", ".git", "autograder/samples", "autograder/attacks", "tests"):
        assert not (kit / absent).exists(), absent
    holding = [p for p in kit.rglob("*") if p.is_file() and MARKERS.search(p.read_text(errors="ignore"))]
    assert holding == []
    assert all(p.stat().st_uid == 0 and not p.stat().st_mode & 0o022 for p in [kit, *kit.rglob("*")])


@pytest.mark.slow
def test_students_read_the_kit_but_not_the_course(server):
    machine, student, grader, kit, course = server
    assert machine.can_read(student, kit / "labs" / LAB / f"{LAB}.ipynb")
    assert machine.can_read(student, kit / "lib" / "nnopt" / "__init__.py")
    secret = {"the course folder": course, "the solutions": course / "solutions" / LAB / f"{LAB}.ipynb",
              "the gradebook": course / "autograder" / "gradebook.db",
              "the submissions": course / "autograder" / "submitted",
              "the grader's home": grader.home}
    assert [what for what, path in secret.items() if machine.can_read(student, path)] == []
    assert machine.can_read(grader, course / "solutions" / LAB / f"{LAB}.ipynb")
    assert oct(course.stat().st_mode & 0o777) == "0o700" and oct(grader.home.stat().st_mode & 0o777) == "0o700"


def test_the_kit_refuses_to_install_a_leaking_tree(tmp_path):
    if _unusable():
        pytest.skip(_unusable())
    repo = tmp_path / "repo"
    (repo / "labs").mkdir(parents=True)
    leaking = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 0\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION")])
    nbformat.write(leaking, str(repo / "labs" / "lab.ipynb"))
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, capture_output=True)
    proc = subprocess.run([str(INSTALL), "student-kit", str(repo), str(tmp_path / "kit")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "labs/lab.ipynb" in proc.stderr and not (tmp_path / "kit").exists()


def test_the_source_folder_is_a_setting(tmp_path, monkeypatch):
    private = tmp_path / "private-solutions"
    shutil.copytree(REPO_ROOT / "solutions", private)
    monkeypatch.setenv("NNOPT_SOURCE_DIR", str(private))
    course = pipeline.Course(REPO_ROOT / "autograder")
    assert course.solutions == private and course.labs() == sorted(p.name for p in private.iterdir())
    assert str(private) == course.config().CourseDirectory.source_directory
