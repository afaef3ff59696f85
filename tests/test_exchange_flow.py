"""The course cycle through nbgrader's exchange, as on the class's JupyterHub machine.

One grading account and three students, each a real Unix user with a private home (created
as ``autograder/deploy/DEPLOY.md`` says), all using the exchange settings of
``autograder/deploy/exchange/``::

    grader:   generate_assignment, release_assignment
    students: fetch_assignment, fill in (a sample submission), submit
    grader:   collect, autograde, generate_feedback, release_feedback
    students: fetch_feedback

Then: every student holds exactly their own feedback, and no student can read another's
submission (in the exchange, in a home, in the cache) or the course folder. Unix permissions
only mean something between unprivileged users, so the flow needs root to create them (CI
runs as root); elsewhere it is skipped with the reason.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO_ROOT

LAB = "lab1_sgd_momentum"
DEPLOY = REPO_ROOT / "autograder" / "deploy"
KIT_BIN = Path(sys.executable).parent
SAMPLES = REPO_ROOT / "autograder" / "samples"
#: What each simulated student hands in: a sample submission (full marks, partial, syntax error).
STUDENT_SAMPLES = {"alice": "alice_lab1_sgd_momentum.ipynb", "bob": "bob_lab1.ipynb", "carol": "carol_lab1.ipynb"}

# --------------------------------------------------------------------------- the machine


def _world_executable(path: Path) -> bool:
    """Whether any user may run (or enter) ``path``: it and every folder above it have o+x."""
    path = path.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _tools_for_everyone(base: Path) -> tuple[Path, dict[str, str]]:
    """A ``bin/`` folder with ``python`` and the kit's commands that every user may run, and
    the environment variables it needs.

    On a class server the kit lives in a world-readable place (``/opt/nnopt``): that is its
    ``.venv/bin``. On a developer machine or CI the kit's interpreter may be private to its
    owner (pyenv under ``/root``); then this copies that interpreter (binary, libpython and the
    standard library, ~60 MB) under ``base``, with a ``.pth`` file that loads the kit's
    site-packages: the same Python build and the same packages, runnable by everyone.
    """
    if _world_executable(Path(sys.executable)):
        return KIT_BIN, {}
    home, runtime = Path(sys.base_prefix), base / "python"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    shutil.copytree(home / "lib" / version, runtime / "lib" / version, symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "test", "idlelib", "tkinter",
                                                  "turtledemo", "ensurepip", "config-*"))
    for lib in (home / "lib").glob("libpython*"):
        shutil.copy2(lib, runtime / "lib", follow_symlinks=False)
    (runtime / "bin").mkdir()
    shutil.copy2(home / "bin" / version, runtime / "bin" / version)
    (runtime / "bin" / "python").symlink_to(version)
    site_dir = runtime / "lib" / version / "site-packages"
    site_dir.mkdir()
    (site_dir / "nnopt_kit.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    python = runtime / "bin" / "python"
    for tool in KIT_BIN.iterdir():     # the kit's commands (nbgrader, alembic, ...) for that python
        first, _, rest = tool.read_bytes().partition(b"\n")
        if tool.is_file() and first.startswith(f"#!{KIT_BIN}/python".encode()):
            (runtime / "bin" / tool.name).write_bytes(f"#!{python}\n".encode() + rest)
            (runtime / "bin" / tool.name).chmod(0o755)
    # the copied binary still names the private libpython folder (RUNPATH): point it to the copy
    return runtime / "bin", {"LD_LIBRARY_PATH": str(runtime / "lib")}


@dataclass(frozen=True)
class Account:
    """A Unix user of the simulated class server."""

    name: str
    home: Path


class Machine:
    """A scratch "class server": Unix users with private homes and an nbgrader exchange.

    Everything lives under one temporary folder; :meth:`close` deletes the users and it.
    """

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="nnopt-class-"))
        self.base.chmod(0o755)                     # users must reach their homes below
        self.exchange = self.base / "exchange"     # DEPLOY.md: mkdir, chmod 1777
        self.exchange.mkdir(mode=0o1777)
        self.exchange.chmod(0o1777)
        (self.base / "home").mkdir(mode=0o755)
        self.prefix = f"nx{secrets.token_hex(2)}"  # unique user names for this run
        self.bin, self.tool_env = _tools_for_everyone(self.base)
        self.accounts: list[Account] = []

    def add_user(self, role: str) -> Account:
        """Create a user with a private (0700) home, as DEPLOY.md does for a real class."""
        name = f"{self.prefix}-{role}"
        home = self.base / "home" / name
        account = Account(name, home)
        self.accounts.append(account)
        subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash",
                        "--user-group", "-K", "HOME_MODE=0700", name], check=True, capture_output=True)
        return account

    def env(self, account: Account) -> dict[str, str]:
        """The clean environment of a login of ``account`` on a kit server."""
        return {
            "HOME": str(account.home), "USER": account.name, "LOGNAME": account.name,
            "PATH": f"{self.bin}:/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
            "JUPYTER_CONFIG_PATH": str(DEPLOY / "exchange"),
            "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter"),   # nbconvert templates
            "NNOPT_EXCHANGE_ROOT": str(self.exchange),
            **self.tool_env,
        }

    def _env_args(self, account: Account) -> list[str]:
        return [f"{k}={v}" for k, v in self.env(account).items()]

    def run(self, account: Account, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run ``args`` as ``account`` (``runuser``) in its clean environment; fail with the log."""
        cmd = ["runuser", "-u", account.name, "--", "env", "-i", *self._env_args(account), *args]
        proc = subprocess.run(cmd, cwd=cwd or account.home, capture_output=True, text=True, timeout=600)
        if proc.returncode:
            pytest.fail(f"{account.name}: {' '.join(args)} exited {proc.returncode}\n"
                        f"{proc.stdout}\n{proc.stderr}")
        return proc

    def can_read(self, account: Account, path: Path) -> bool:
        """Whether ``account`` may list the folder / read the file ``path``."""
        probe = ("import os, sys\np = sys.argv[1]\n"
                 "try:\n    os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read()\n"
                 "except PermissionError:\n    sys.exit(13)\n")
        cmd = ["runuser", "-u", account.name, "--", "env", "-i", *self._env_args(account),
               str(self.bin / "python"), "-c", probe, str(path)]
        code = subprocess.run(cmd, capture_output=True, text=True).returncode
        assert code in (0, 13), f"probe of {path} as {account.name} failed with exit code {code}"
        return code == 0

    def close(self) -> None:
        for account in self.accounts:
            subprocess.run(["userdel", "--remove", account.name], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def _unusable_reason() -> str | None:
    """Why this machine cannot simulate the class server, or None."""
    if os.geteuid() != 0:
        return "needs root to create the Unix users of the simulated class (CI runs as root)"
    missing = [tool for tool in ("useradd", "userdel", "runuser") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} to simulate the class's Unix users"
    private = [str(p) for p in (DEPLOY, REPO_ROOT / "lib", Path(sysconfig.get_path("purelib")))
               if not (_world_executable(p) and p.stat().st_mode & stat.S_IROTH)]
    if private:
        return (f"other users cannot read {', '.join(private)} (a folder above lacks o+x): "
                "the simulated students could not run the kit")
    return None


# --------------------------------------------------------------------------- the course cycle


@dataclass
class CourseRun:
    """What the cycle left behind, for the assertions."""

    machine: Machine
    grader: Account
    course: Path                     # the grader's checkout of the kit
    students: dict[str, Account]     # sample name -> account
    inbound: dict[str, Path]         # sample name -> that student's submission in the exchange

    @property
    def autograder(self) -> Path:
        return self.course / "autograder"


def _install_course(machine: Machine, grader: Account) -> Path:
    """The grader's own copy of the kit's course folders (DEPLOY.md: a git clone), 0700."""
    course = grader.home / "nnopt"
    course.mkdir()
    for folder in ("solutions", "labs"):
        shutil.copytree(REPO_ROOT / folder / LAB, course / folder / LAB)
    shutil.copytree(REPO_ROOT / "autograder", course / "autograder",
                    ignore=shutil.ignore_patterns("deploy", "samples", "attacks", "submitted", "autograded",
                                                  "feedback", "grades", "gradebook.db", "__pycache__"))
    subprocess.run(["chown", "-R", f"{grader.name}:{grader.name}", str(course)], check=True)
    course.chmod(0o700)
    return course


def _fill_in(machine: Machine, student: Account, sample: Path) -> None:
    """The student replaces the fetched notebook by their work (a sample submission)."""
    mine = machine.base / "handouts" / f"{student.name}.ipynb"
    mine.parent.mkdir(exist_ok=True, mode=0o755)
    shutil.copyfile(sample, mine)
    mine.chmod(0o644)
    machine.run(student, "cp", str(mine), str(student.home / LAB / f"{LAB}.ipynb"))


@pytest.fixture(scope="module")
def course_run() -> Iterator[CourseRun]:
    reason = _unusable_reason()
    if reason:
        pytest.skip(reason)
    machine = Machine()
    try:
        grader = machine.add_user("grader")
        students = {name: machine.add_user(name) for name in STUDENT_SAMPLES}
        course = _install_course(machine, grader)
        autograder = course / "autograder"
        # the grading account runs with the kit's tools, from its course folder
        machine.run(grader, "nbgrader", "generate_assignment", LAB, "--force", cwd=autograder)
        machine.run(grader, "nbgrader", "release_assignment", LAB, cwd=autograder)
        for name, student in students.items():
            machine.run(student, "nbgrader", "fetch_assignment", LAB)
            _fill_in(machine, student, SAMPLES / STUDENT_SAMPLES[name])
            machine.run(student, "nbgrader", "submit", LAB)
        inbound_dir = machine.exchange / "nnopt" / "inbound"
        inbound = {name: next(inbound_dir.glob(f"{student.name}+{LAB}+*"))
                   for name, student in students.items()}
        for step in ("collect", "autograde", "generate_feedback", "release_feedback"):
            machine.run(grader, "nbgrader", step, LAB, cwd=autograder)
        for student in students.values():
            machine.run(student, "nbgrader", "fetch_feedback", LAB)
        yield CourseRun(machine, grader, course, students, inbound)
    finally:
        machine.close()


# --------------------------------------------------------------------------- tests


def _fetched_feedback(student: Account) -> list[Path]:
    return sorted((student.home / LAB / "feedback").glob(f"*/{LAB}.html"))


@pytest.mark.slow
def test_each_student_fetches_exactly_their_own_feedback(course_run: CourseRun) -> None:
    generated = {name: course_run.autograder / "feedback" / student.name / LAB / f"{LAB}.html"
                 for name, student in course_run.students.items()}
    contents = {name: path.read_bytes() for name, path in generated.items()}
    assert len(set(contents.values())) == len(contents), "the samples must give distinct feedback"
    for name, student in course_run.students.items():
        fetched = _fetched_feedback(student)
        assert len(fetched) == 1, f"{name} fetched {fetched}"
        body = fetched[0].read_bytes()
        assert body == contents[name], f"{name} did not receive the feedback generated for them"
        assert fetched[0].stat().st_uid == pwd.getpwnam(student.name).pw_uid


def _expected_scores() -> dict[str, float]:
    """Autograded points of each student's sample, as ``autograder/make_samples.py`` lists them."""
    from autograder import make_samples
    by_file = {sample.path: sample.auto_score for sample in make_samples.SAMPLES}
    return {name: by_file[path] for name, path in STUDENT_SAMPLES.items()}


@pytest.mark.slow
def test_autograded_scores_are_those_of_the_samples(course_run: CourseRun) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_run.autograder / 'gradebook.db'}") as gb:
        scores = {name: gb.find_submission(LAB, student.name).code_score
                  for name, student in course_run.students.items()}
    assert scores == pytest.approx(_expected_scores())


@pytest.mark.slow
def test_students_cannot_read_each_others_work(course_run: CourseRun) -> None:
    m, alice, bob = course_run.machine, course_run.students["alice"], course_run.students["bob"]
    submission = course_run.inbound["alice"]
    private = {
        "the exchange's inbound folder (listing)": submission.parent,
        "alice's submitted notebook in the exchange": submission / f"{LAB}.ipynb",
        "alice's submission secret (key to her feedback)": submission / "submission_secret.txt",
        "the released feedback folder (listing)": m.exchange / "nnopt" / "feedback",
        "alice's home": alice.home,
        "alice's working copy": alice.home / LAB / f"{LAB}.ipynb",
        "alice's feedback": _fetched_feedback(alice)[0],
        "the course folder (solutions, hidden tests, gradebook)": course_run.course,
    }
    readable = [what for what, path in private.items() if m.can_read(bob, path)]
    assert readable == [], f"bob can read {readable}"
    # the same probe succeeds where access is meant to be granted
    assert m.can_read(alice, submission / f"{LAB}.ipynb")
    assert m.can_read(alice, _fetched_feedback(alice)[0])
    assert m.can_read(course_run.grader, submission / f"{LAB}.ipynb")
    assert m.can_read(bob, m.exchange / "nnopt" / "outbound" / LAB / f"{LAB}.ipynb")


# --------------------------------------------------------------------------- deployment files
# (no users needed: these run everywhere)


def _load_config(path: Path):
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


@pytest.fixture
def roster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A roster folder for ``jupyterhub_config.py`` (``NNOPT_SRV``)."""
    (tmp_path / "students.txt").write_text("# class of 2025\nalice\nbob   # late enrolment\n\ncarol\n")
    (tmp_path / "instructors.txt").write_text("prof_x\n")
    monkeypatch.setenv("NNOPT_SRV", str(tmp_path))
    monkeypatch.delenv("NNOPT_EXCHANGE_ROOT", raising=False)
    return tmp_path


def test_jupyterhub_config_reads_the_roster(roster: Path) -> None:
    c = _load_config(DEPLOY / "jupyterhub_config.py")
    assert c.Authenticator.allowed_users == {"alice", "bob", "carol", "prof_x"}
    assert c.Authenticator.admin_users == {"prof_x"}
    assert c.JupyterHub.load_groups == {"formgrade-nnopt": ["prof_x"]}
    assert c.Spawner.environment["NNOPT_EXCHANGE_ROOT"] == str(roster / "exchange")


def test_jupyterhub_config_agrees_with_the_exchange_settings(roster: Path) -> None:
    hub = _load_config(DEPLOY / "jupyterhub_config.py")
    course_id = _load_config(DEPLOY / "exchange" / "nbgrader_config.py").CourseDirectory.course_id
    service = next(s for s in hub.JupyterHub.services if s.get("user") == f"grader-{course_id}")
    assert service["name"] == course_id          # nbgrader finds the formgrader by the course id
    role = next(r for r in hub.JupyterHub.load_roles if r["name"] == f"formgrade-{course_id}")
    assert f"access:services!service={course_id}" in role["scopes"]
    path_of = hub.Spawner.environment["JUPYTER_CONFIG_PATH"]

    class Spawner:                               # what JupyterHub passes to the callable
        def __init__(self, name: str) -> None:
            self.user = type("User", (), {"name": name})()

    student = [Path(p) for p in path_of(Spawner("bob")).split(os.pathsep)]
    instructor = [Path(p) for p in path_of(Spawner("prof_x")).split(os.pathsep)]
    grader = [Path(p) for p in service["environment"]["JUPYTER_CONFIG_PATH"].split(os.pathsep)]
    assert student == [DEPLOY / "students", DEPLOY / "exchange"]
    assert instructor == grader == [DEPLOY / "exchange"]
    assert (DEPLOY / "exchange" / "nbgrader_config.py").is_file()


@pytest.mark.parametrize("students, message", [
    ("alice\nBob Smith\n", r"students.txt:2: 'Bob Smith' is not a valid user name"),
    ("alice\nalice\n", r"students.txt:2: 'alice' is listed twice"),
    ("prof_x\n", r"listed as both student and instructor: prof_x"),
    ("grader-nnopt\n", r"grader-nnopt is the grading account"),
])
def test_jupyterhub_config_refuses_a_bad_roster(roster: Path, students: str, message: str) -> None:
    (roster / "students.txt").write_text(students)
    with pytest.raises(ValueError, match=message):
        _load_config(DEPLOY / "jupyterhub_config.py")


def test_jupyterhub_config_names_a_missing_roster(roster: Path) -> None:
    (roster / "instructors.txt").unlink()
    with pytest.raises(FileNotFoundError, match="instructors.txt not found"):
        _load_config(DEPLOY / "jupyterhub_config.py")


def test_students_config_hides_the_instructor_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager
    from jupyterlab_server.config import get_page_config

    def active(config_path: str) -> tuple[dict[str, bool], set[str]]:
        monkeypatch.setenv("JUPYTER_CONFIG_PATH", config_path)
        server = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()
        return server, set(get_page_config([]).get("disabledExtensions", []))   # a list of names

    server, disabled = active(os.pathsep.join([str(DEPLOY / "students"), str(DEPLOY / "exchange")]))
    assert not server["nbgrader.server_extensions.formgrader"]
    assert not server["nbgrader.server_extensions.course_list"]
    assert server["nbgrader.server_extensions.assignment_list"]
    assert server["nbgrader.server_extensions.validate_assignment"]
    assert {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
            "@jupyter/nbgrader:course-list"} <= disabled
    assert not {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment"} & disabled
    # an instructor's server keeps them
    server, disabled = active(str(DEPLOY / "exchange"))
    assert server["nbgrader.server_extensions.formgrader"] and not disabled & {"@jupyter/nbgrader:formgrader"}
