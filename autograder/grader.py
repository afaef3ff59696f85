"""Autograde submissions, each in its own ``nbgrader autograde --student`` process.

Each process runs the course's autograde chain (``nbgrader_config.py``), whose
``SandboxedExecute`` executes the notebook in the sandbox, and writes to a private copy of
the gradebook; this process alone merges the results into ``gradebook.db`` (sqlite must not
have two writers), keeping manual grades. ``workers`` processes run at a time.

A submission's outcome comes from the line ``SandboxedExecute`` appends to the job's report
file (status and reason of the sandboxed execution), from nbgrader's exit code, and from
whether the autograded notebook was written. Whatever happens to one submission -- its
sandbox killed, nbgrader failing, this process's own merge failing -- becomes that
submission's ``grading error: <reason>``; the others are graded.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from .course import NBGRADER_MAIN, Course, db_url, nbgrader_environment
from .report import GRADING_ERROR, Status
from .sandbox import stop

DEFAULT_WALL_LIMIT = 300.0
#: Seconds an nbgrader process may take beyond the sandbox's wall limit (its own start-up,
#: sanitising, saving grades) before it is killed.
PROCESS_MARGIN = 120.0


def diagnose(log: str) -> str:
    """A one-line reason from nbgrader's log of a failed autograde without a sandbox record."""
    if "DeadKernelError" in log or "Kernel died" in log:
        return "kernel died (the notebook crashed or killed its Python process)"
    if "UnresponsiveKernelError" in log or "Timeout waiting for IOPub output" in log:
        return ("the kernel stopped answering: a cell ran past its time limit and ignored the "
                "interrupt (e.g. an infinite loop that blocks SIGINT)")
    errors = [ln for ln in log.splitlines() if "ERROR" in ln or "Error" in ln]
    return errors[-1].strip()[:300] if errors else "nbgrader failed (see the log)"


def merge_submission(src_db: Path, dst_db: Path, lab: str, student: str) -> None:
    """Copy one submission's automatic results from ``src_db`` into ``dst_db``.

    Auto scores and auto comments are replaced; manual scores/comments in ``dst_db`` are
    kept (and, as nbgrader does after a re-autograde, flagged for review again).
    """
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    with Gradebook(db_url(src_db)) as src, Gradebook(db_url(dst_db)) as dst, \
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


def sandbox_records(report_file: Path) -> list[dict]:
    """The lines ``SandboxedExecute`` wrote (one per notebook), unreadable lines skipped."""
    if not report_file.is_file():
        return []
    records = []
    for line in report_file.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


@dataclass
class Job:
    lab: str
    student: str


class Grader:
    """Runs ``nbgrader autograde`` per submission, ``workers`` at a time.

    ``sandbox``: ``Sandbox`` settings for this run (e.g. ``{"memory_limit": 2**31}``,
    ``{"enabled": False}``), passed to nbgrader on its command line; ``wall_limit`` is the
    sandbox's limit per notebook.
    """

    def __init__(self, course: Course, wall_limit: float = DEFAULT_WALL_LIMIT,
                 cell_timeout: int | None = None, workers: int = 1,
                 sandbox: Mapping[str, object] | None = None):
        if workers < 1:
            raise ValueError(f"Invalid workers: {workers} (expected an integer >= 1)")
        if wall_limit <= 0:
            raise ValueError(f"Invalid wall_limit: {wall_limit} (expected seconds > 0)")
        self.course, self.wall_limit, self.cell_timeout, self.workers = (
            course, wall_limit, cell_timeout, workers)
        self.sandbox = {"wall_limit": wall_limit, **dict(sandbox or {})}
        self._db_lock = threading.Lock()

    def run(self, jobs: Sequence[Job]) -> dict[tuple[str, str], Status]:
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            results = list(pool.map(self.grade_one, jobs))
        return {(j.lab, j.student): r for j, r in zip(jobs, results)}

    def _command(self, job: Job, db: Path, report_file: Path) -> list[str]:
        cmd = [sys.executable, "-c", NBGRADER_MAIN, "autograde", job.lab, "--student", job.student,
               "--force", f"--CourseDirectory.db_url={db_url(db)}",
               f"--SandboxedExecute.report_file={report_file}"]
        cmd += [f"--Sandbox.{name}={value}" for name, value in sorted(self.sandbox.items())]
        if self.cell_timeout is not None:
            cmd.append(f"--ExecutePreprocessor.timeout={int(self.cell_timeout)}")
        return cmd

    def grade_one(self, job: Job) -> Status:
        """Autograde one submission; never raises (a failure is that submission's status)."""
        start = time.monotonic()
        try:
            status = self._grade(job)
        except Exception as exc:  # noqa: BLE001 -- the batch goes on whatever happens here
            status = Status(GRADING_ERROR, f"the grader failed on this submission: {type(exc).__name__}: {exc}")
        status.seconds = round(time.monotonic() - start, 2)
        return status

    def _grade(self, job: Job) -> Status:
        logdir = self.course.grades / "logs" / job.lab
        logdir.mkdir(parents=True, exist_ok=True)
        logfile = logdir / f"{job.student}.log"
        with tempfile.TemporaryDirectory(prefix="nnopt-grade-") as tmp:
            db, report_file = Path(tmp) / "gradebook.db", Path(tmp) / "sandbox.jsonl"
            with self._db_lock:
                shutil.copyfile(self.course.db, db)
            with open(logfile, "w") as log:
                proc = psutil.Popen(self._command(job, db, report_file), cwd=self.course.root,
                                    env=nbgrader_environment(), stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
                try:
                    proc.wait(timeout=self.wall_limit + PROCESS_MARGIN)
                    timed_out = False
                except psutil.TimeoutExpired:
                    stop(proc)
                    timed_out = True
            records = [r for r in sandbox_records(report_file)
                       if (r.get("lab"), r.get("student")) == (job.lab, job.student)]
            with self._db_lock:
                merge_submission(db, self.course.db, job.lab, job.student)
        done = (self.course.autograded / job.student / job.lab / f"{job.lab}.ipynb").is_file()
        failed = [r for r in records if r.get("status") != "ok"]
        if timed_out:
            shutil.rmtree(self.course.autograded / job.student / job.lab, ignore_errors=True)
            return Status(GRADING_ERROR, f"nbgrader did not finish within "
                          f"{self.wall_limit + PROCESS_MARGIN:g} s and was stopped")
        if failed:
            return Status(GRADING_ERROR, failed[-1].get("reason") or "the sandboxed execution failed")
        if proc.returncode == 0 and done:
            return Status("graded")
        return Status(GRADING_ERROR, diagnose(logfile.read_text(errors="replace")))
