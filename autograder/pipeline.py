"""The instructor's pipeline for the nnopt labs, on top of nbgrader 0.9.

::

    python -m autograder.pipeline release                # solutions/ -> labs/   (make release)
    python -m autograder.pipeline grade SUBMISSIONS      # a folder or a zip    (make grade-demo)
           [--workers 2] [--wall-limit 300] [--cell-timeout 60] [--course autograder]

``grade`` runs, and can be re-run at any time (idempotent: the latest submission of a student
replaces the previous one, nothing else is touched):

1. **intake** (``intake.py``): find every file, tell student and lab from its path, copy valid
   notebooks to ``submitted/<student>/<lab>/`` (putting back deleted test cells), report empty
   files, non-notebooks and unmatched names; **scan** (``scan.py``) flags code that tampers
   with grading.
2. **gradebook**: ``generate_assignment`` from ``solutions/`` into a scratch folder so the
   gradebook holds the current tests (``labs/`` is not touched; a stale ``labs/`` is reported).
3. **autograde** every submission in its own ``nbgrader autograde --student`` process with a
   per-cell timeout and a wall-clock limit (the process tree is killed when it is exceeded),
   ``--workers`` at a time. Each process writes to a private copy of the gradebook; this
   process alone merges the results into ``gradebook.db`` (sqlite is not safe for concurrent
   writers), keeping manual grades.
4. **feedback**: nbgrader's HTML plus the executed notebook, both with hidden tests stripped
   (``feedback.py``); a short HTML page for submissions that could not be graded.
5. **report**: ``grades/grades.csv`` rebuilt from the whole gradebook plus the status of every
   submission (``grades/status.json``), one histogram per lab (``grades/<lab>_histogram.png``),
   the class report beside it (``report.py``: ``grades/<lab>_report.md/.json/.png``, each
   test's pass rate and the diagnosed bugs) and a log per run (``grades/logs/<lab>/<student>.log``).
"""
from __future__ import annotations

import argparse
import csv
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import psutil

from . import feedback, intake, report, scan

HERE = Path(__file__).resolve().parent

DEFAULT_WALL_LIMIT = 300.0
# ``nbgrader`` as a command. jsonschema imports the optional ``rfc3987_syntax`` when it is
# installed, which builds a grammar at import time (~2 s of CPU, a third of an autograde
# process's start-up); nbgrader never validates URIs, so it is blocked.
NBGRADER_MAIN = ("import sys; sys.modules['rfc3987_syntax'] = None; "
                 "from nbgrader.apps.nbgraderapp import main; sys.exit(main())")
CSV_COLUMNS = ["lab", "student_id", "score", "max_score", "auto_score", "auto_max",
               "needs_manual_grade", "status", "flags"]


# --------------------------------------------------------------------------- course layout
@dataclass(frozen=True)
class Course:
    """Paths of one course folder (``autograder/`` with ``../solutions`` and ``../labs``)."""

    root: Path

    @property
    def solutions(self) -> Path:
        return (self.root / "../solutions").resolve()

    @property
    def labs_dir(self) -> Path:
        return (self.root / "../labs").resolve()

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    @property
    def autograded(self) -> Path:
        return self.root / "autograded"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback"

    @property
    def grades(self) -> Path:
        return self.root / "grades"

    @property
    def db(self) -> Path:
        return self.root / "gradebook.db"

    def labs(self) -> list[str]:
        """Lab names: folders ``solutions/<lab>/`` holding ``<lab>.ipynb``."""
        return sorted(p.name for p in self.solutions.iterdir() if (p / f"{p.name}.ipynb").is_file())

    def released(self, lab: str) -> Path:
        return self.labs_dir / lab / f"{lab}.ipynb"

    def copy_to(self, root: Path) -> "Course":
        """A private course under ``root``: solutions/, labs/ and the autograder's code,
        no grading data (for tests and benchmarks that must not touch this one)."""
        shutil.copytree(self.solutions, root / "solutions")
        shutil.copytree(self.labs_dir, root / "labs")
        (root / "autograder").mkdir()
        for path in self.root.glob("*.py"):
            shutil.copy(path, root / "autograder")
        return Course(root / "autograder")


def _environment() -> dict[str, str]:
    """Environment for nbgrader and the students' kernels.

    * this Python's ``bin`` first on PATH (nbgrader runs ``alembic`` from PATH);
    * ``NNOPT_PROGRESS=0``: no progress bars from ``nnopt.train.fit``;
    * ``THEANO_FLAGS`` plus ``cxx=`` unless set: Theano runs its Python implementations
      instead of compiling each new graph to C (a cold compile takes ~40 s, more than the
      per-cell timeout, and parallel workers would wait on Theano's compile lock).
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["NNOPT_PROGRESS"] = "0"
    flags = env.get("THEANO_FLAGS", "")
    if "cxx" not in {pair.split("=")[0].strip() for pair in flags.split(",") if "=" in pair}:
        env["THEANO_FLAGS"] = ",".join(part for part in (flags.strip(","), "cxx=") if part)
    return env


def _api(course: Course, **config: dict):
    """nbgrader's Python API for ``course`` with its nbgrader_config.py (+ overrides)."""
    sys.modules.setdefault("rfc3987_syntax", None)   # as in NBGRADER_MAIN, for this process
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    os.environ["PATH"] = _environment()["PATH"]
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course.root)).load_config()
    cfg.CourseDirectory.root = str(course.root)
    cfg.CourseDirectory.db_url = f"sqlite:///{course.db}"
    cfg.merge(Config(config))
    return NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)


def _db_url(path: Path) -> str:
    return f"sqlite:///{path}"


# --------------------------------------------------------------------------- release
def release(course: Course, into: Path | None = None, labs: Sequence[str] | None = None,
            use_db: bool = False) -> list[Path]:
    """``generate_assignment`` for ``labs`` (default all) into ``into`` (default ``labs/``).

    With ``use_db`` the gradebook records the cells too (needed before grading).
    Raises RuntimeError with nbgrader's log if a lab fails.
    """
    target = course.labs_dir if into is None else Path(into)
    api = _api(course, CourseDirectory={"release_directory": str(target)},
               GenerateAssignment={"no_database": not use_db}, SaveCells={"enabled": use_db})
    out = []
    for lab in labs or course.labs():
        result = api.generate_assignment(lab, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"generate_assignment {lab} failed:\n{result.get('log', '')}"
                               f"\n{result.get('error', '')}")
        out.append(target / lab / f"{lab}.ipynb")
    return out


def sync_gradebook(course: Course, labs: Sequence[str]) -> list[str]:
    """Record the current ``solutions/`` in the gradebook; return warnings (stale ``labs/``)."""
    warnings = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in release(course, into=Path(tmp), labs=labs, use_db=True):
            lab = path.parent.name
            committed = course.released(lab)
            if not committed.is_file() or committed.read_bytes() != path.read_bytes():
                warnings.append(f"labs/{lab} differs from what solutions/ generates: students may "
                                "have an outdated version (run `make release`)")
    return warnings


# --------------------------------------------------------------------------- status records
@dataclass
class Status:
    """What happened to one student's submission of one lab (persisted in status.json)."""

    status: str                     # graded | empty | not a notebook | wall limit exceeded | ...
    detail: str = ""
    flags: list[str] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0
    updated: str = ""


def load_status(course: Course) -> dict[str, dict[str, Status]]:
    path = course.grades / "status.json"
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    return {lab: {s: Status(**v) for s, v in per.items()} for lab, per in raw.items()}


def save_status(course: Course, status: dict[str, dict[str, Status]]) -> None:
    course.grades.mkdir(parents=True, exist_ok=True)
    data = {lab: {s: asdict(v) for s, v in sorted(per.items())} for lab, per in sorted(status.items())}
    tmp = course.grades / "status.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(course.grades / "status.json")


# --------------------------------------------------------------------------- autograding
def _kill_tree(pid: int) -> None:
    """Kill a process and all its descendants (the kernel runs in its own session)."""
    try:
        parent = psutil.Process(pid)
        procs = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


def _diagnose(log: str) -> str:
    """A one-line reason from nbgrader's log of a failed autograde."""
    if "DeadKernelError" in log or "Kernel died" in log:
        return "kernel died (the notebook crashed or killed its Python process)"
    if "UnresponsiveKernelError" in log or "Timeout waiting for IOPub output" in log:
        return ("a cell ran past the time limit and the kernel ignored the interrupt "
                "(e.g. an infinite loop that blocks SIGINT)")
    errors = [ln for ln in log.splitlines() if "ERROR" in ln or "Error" in ln]
    return errors[-1].strip()[:300] if errors else "nbgrader failed (see the log)"


def merge_submission(src_db: Path, dst_db: Path, lab: str, student: str) -> None:
    """Copy one submission's automatic results from ``src_db`` into ``dst_db``.

    Auto scores and auto comments are replaced; manual scores/comments in ``dst_db`` are
    kept (and, as nbgrader does after a re-autograde, flagged for review again).
    """
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    with Gradebook(_db_url(src_db)) as src, Gradebook(_db_url(dst_db)) as dst, \
            warnings.catch_warnings():
        # nbgrader's own update_or_create_submission triggers SQLAlchemy autoflush notices
        warnings.simplefilter("ignore", SAWarning)
        try:
            sub = src.find_submission(lab, student)
        except MissingEntry:
            return
        dst.update_or_create_student(student)
        dst.update_or_create_submission(lab, student, timestamp=sub.timestamp)
        for nb in sub.notebooks:
            for g in nb.grades:
                d = dst.find_grade(g.name, nb.name, lab, student)
                d.auto_score = g.auto_score
                d.needs_manual_grade = d.manual_score is not None or g.auto_score is None
            for c in nb.comments:
                dst.find_comment(c.name, nb.name, lab, student).auto_comment = c.auto_comment
        dst.db.commit()


@dataclass
class Job:
    lab: str
    student: str


class Grader:
    """Runs ``nbgrader autograde`` per submission, ``workers`` at a time."""

    def __init__(self, course: Course, wall_limit: float = DEFAULT_WALL_LIMIT,
                 cell_timeout: int | None = None, workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if wall_limit <= 0:
            raise ValueError(f"wall_limit must be > 0 seconds, got {wall_limit}")
        self.course, self.wall_limit, self.cell_timeout, self.workers = (
            course, wall_limit, cell_timeout, workers)
        self._db_lock = threading.Lock()

    def run(self, jobs: Sequence[Job]) -> dict[tuple[str, str], Status]:
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            results = list(pool.map(self.grade_one, jobs))
        return {(j.lab, j.student): r for j, r in zip(jobs, results)}

    def _command(self, job: Job, db: Path) -> list[str]:
        cmd = [sys.executable, "-c", NBGRADER_MAIN, "autograde", job.lab, "--student", job.student,
               "--force", f"--CourseDirectory.db_url={_db_url(db)}"]
        if self.cell_timeout is not None:
            cmd.append(f"--ExecutePreprocessor.timeout={int(self.cell_timeout)}")
        return cmd

    def grade_one(self, job: Job) -> Status:
        logdir = self.course.grades / "logs" / job.lab
        logdir.mkdir(parents=True, exist_ok=True)
        logfile = logdir / f"{job.student}.log"
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "gradebook.db"
            with self._db_lock:
                shutil.copyfile(self.course.db, db)
            start = time.monotonic()
            with open(logfile, "w") as log:
                proc = psutil.Popen(self._command(job, db), cwd=self.course.root, env=_environment(),
                                    stdout=log, stderr=log, stdin=subprocess.DEVNULL)
                try:
                    proc.wait(timeout=self.wall_limit)
                    timed_out = False
                except psutil.TimeoutExpired:
                    _kill_tree(proc.pid)
                    timed_out = True
            seconds = round(time.monotonic() - start, 2)
            with self._db_lock:
                merge_submission(db, self.course.db, job.lab, job.student)
        done = (self.course.autograded / job.student / job.lab / f"{job.lab}.ipynb").is_file()
        if timed_out:
            shutil.rmtree(self.course.autograded / job.student / job.lab, ignore_errors=True)
            return Status("wall limit exceeded", f"grading took more than {self.wall_limit:g} s "
                          "and was stopped", seconds=seconds)
        if proc.returncode == 0 and done:
            return Status("graded", seconds=seconds)
        return Status("grading error", _diagnose(logfile.read_text(errors="replace")), seconds=seconds)


# --------------------------------------------------------------------------- feedback
_FAILURE_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{lab}: not graded</title></head>
<body><h1>{lab}</h1><p>Your submission (<code>{source}</code>) could not be graded:
<strong>{status}</strong>.</p><p>{detail}</p>
<p>Please contact the teaching team if you think this is wrong.</p></body></html>
"""


def write_feedback(course: Course, lab: str, student: str, status: Status, api=None) -> None:
    """Feedback for one submission: nbgrader's HTML and the executed notebook with hidden
    tests stripped, or a short page explaining why it was not graded. ``api``: an
    nbgrader API for ``course`` to reuse (one is made if not given)."""
    dest = course.feedback / student / lab
    autograded = course.autograded / student / lab / f"{lab}.ipynb"
    if status.status == "graded" and autograded.is_file():
        result = (api or _api(course)).generate_feedback(lab, student, force=True)
        if result["success"]:
            nb = feedback.strip_notebook(nbformat.read(str(autograded), as_version=4))
            nbformat.write(nb, str(dest / f"{lab}.ipynb"))
            return
        status.detail = "feedback generation failed (see the log)"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / f"{lab}.html").write_text(_FAILURE_PAGE.format(
        lab=html.escape(lab), source=html.escape(status.source), status=html.escape(status.status),
        detail=html.escape(status.detail)))


# --------------------------------------------------------------------------- report
def grade_rows(course: Course, status: dict[str, dict[str, Status]]) -> list[dict[str, object]]:
    """One row per (lab, student) known to the gradebook or to ``status``."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = {}
    with Gradebook(_db_url(course.db)) as gb:
        for lab in course.labs():
            try:
                assignment = gb.find_assignment(lab)
            except MissingEntry:
                continue
            for sub in gb.assignment_submissions(lab):
                st = status.get(lab, {}).get(sub.student.id, Status("graded"))
                rows[lab, sub.student.id] = {
                    "lab": lab, "student_id": sub.student.id, "score": round(sub.score, 3),
                    "max_score": sub.max_score, "auto_score": round(sub.code_score, 3),
                    "auto_max": sub.max_code_score, "needs_manual_grade": sub.needs_manual_grade,
                    "status": st.status, "flags": "; ".join(st.flags)}
            for student, st in status.get(lab, {}).items():
                if (lab, student) not in rows:          # never reached the gradebook
                    rows[lab, student] = {
                        "lab": lab, "student_id": student, "score": 0.0,
                        "max_score": assignment.max_score, "auto_score": 0.0,
                        "auto_max": assignment.max_code_score, "needs_manual_grade": False,
                        "status": st.status, "flags": "; ".join(st.flags)}
    return [rows[k] for k in sorted(rows)]


def write_csv(path: Path, rows: Iterable[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def write_histograms(course: Course, rows: Sequence[dict[str, object]]) -> list[Path]:
    """``grades/<lab>_histogram.png``: distribution of total scores per lab."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = []
    for lab in sorted({r["lab"] for r in rows}):
        scores = np.array([r["score"] for r in rows if r["lab"] == lab], dtype=float)
        top = max(float(r["max_score"]) for r in rows if r["lab"] == lab)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(scores, bins=np.arange(0, top + 2) - 0.5, color="tab:blue", edgecolor="white")
        ax.axvline(scores.mean(), color="tab:red", linestyle="--", label=f"mean {scores.mean():.1f}")
        ax.set_title(f"{lab}: {len(scores)} submissions (max {top:g} points)")
        ax.set_xlabel("score (points)")
        ax.set_ylabel("students")
        ax.legend()
        fig.tight_layout()
        path = course.grades / f"{lab}_histogram.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out.append(path)
    return out


# --------------------------------------------------------------------------- the whole run
@dataclass
class Report:
    rows: list[dict[str, object]]
    entries: list[intake.Entry]
    warnings: list[str]
    seconds: float                  # the whole run
    autograde_seconds: float = 0.0  # the autograde phase (all workers)


def grade(course: Course, submissions: str | Path, workers: int = 1,
          wall_limit: float = DEFAULT_WALL_LIMIT, cell_timeout: int | None = None,
          log=print) -> Report:
    """Collect, autograde, give feedback and export: the ``grade`` command."""
    start = time.monotonic()
    labs = course.labs()
    course.grades.mkdir(parents=True, exist_ok=True)
    warnings = sync_gradebook(course, labs)
    entries = intake.collect(submissions, course.submitted,
                             {lab: course.released(lab) for lab in labs})
    status = load_status(course)
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    jobs = []
    for e in entries:
        if e.status == "unmatched":
            warnings.append(f"{e.source}: {e.detail}; skipped")
            continue
        if e.status == "superseded":
            continue
        st = Status(e.status, e.detail, source=e.source, updated=now)
        if e.status == "ok":
            nb = nbformat.read(str(course.submitted / e.student / e.lab / f"{e.lab}.ipynb"), as_version=4)
            st.flags = scan.scan_notebook(nb, nbformat.read(str(course.released(e.lab)), as_version=4))
            if e.restored:
                st.flags.append(f"deleted cells put back: {', '.join(e.restored)}")
            jobs.append(Job(e.lab, e.student))
        status.setdefault(e.lab, {})[e.student] = st
    log(f"{len(jobs)} notebooks to grade ({len(entries)} files) with {workers} worker(s)")
    phase = time.monotonic()
    results = Grader(course, wall_limit, cell_timeout, workers).run(jobs)
    phase = time.monotonic() - phase
    for (lab, student), result in results.items():
        st = status[lab][student]
        st.status, st.detail, st.seconds = result.status, result.detail, result.seconds
        log(f"  {lab} {student}: {st.status} in {st.seconds:.1f} s {st.detail}")
    api = _api(course)
    for lab, per in status.items():
        for student, st in per.items():
            if st.updated == now:
                write_feedback(course, lab, student, st, api)
    save_status(course, status)
    rows = grade_rows(course, status)
    write_csv(course.grades / "grades.csv", rows)
    write_histograms(course, rows)
    report.write_reports(course, status)
    for w in warnings:
        log(f"warning: {w}")
    return Report(rows, entries, warnings, time.monotonic() - start, phase)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.pipeline",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, default=HERE,
                        help="the autograder folder (with nbgrader_config.py); default: this one")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("release", help="generate labs/ from solutions/")
    g = sub.add_parser("grade", help="collect, autograde, feedback, CSV and histograms")
    g.add_argument("submissions", type=Path, help="a folder or a .zip of submissions")
    g.add_argument("--workers", type=int, default=1, help="parallel autograde processes")
    g.add_argument("--wall-limit", type=float, default=DEFAULT_WALL_LIMIT,
                   help="seconds one submission may take in total (default %(default)s)")
    g.add_argument("--cell-timeout", type=int, default=None,
                   help="seconds per cell (default: nbgrader_config.py's)")
    args = parser.parse_args(argv)
    course = Course(args.course.resolve())
    if args.command == "release":
        for path in release(course):
            print(f"wrote {path}")
        return 0
    if not args.submissions.exists():
        parser.error(f"{args.submissions} does not exist")
    try:
        report = grade(course, args.submissions, args.workers, args.wall_limit, args.cell_timeout)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"graded in {report.seconds:.0f} s; wrote {course.grades / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
