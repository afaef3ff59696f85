"""The instructor's pipeline for the nnopt labs, on top of nbgrader 0.9.

::

    python -m autograder.pipeline release                # solutions/ -> labs/   (make release)
    python -m autograder.pipeline grade SUBMISSIONS      # a folder or a zip    (make grade-demo)
           [--workers 2] [--wall-limit 300] [--cell-timeout 60] [--course autograder]
           [--memory-limit 2G] [--max-processes 64] [--cpu-limit 300] [--disk-limit 256M]
           [--no-sandbox]

``grade`` runs, and can be re-run at any time (idempotent: the latest submission of a student
replaces the previous one, nothing else is touched):

0. **sandbox**: the course's autograde chain must run ``SandboxedExecute`` and a trial sandbox
   must start (``sandbox.py``); otherwise it refuses, naming the fix. ``--no-sandbox``
   (trusted classroom only) grades without, and says so loudly in the log, the report and
   the CSV's ``sandbox`` column.
1. **intake** (``intake.py``): find every file, tell student and lab from its path, copy valid
   notebooks to ``submitted/<student>/<lab>/`` (putting back deleted test cells), report empty
   files, non-notebooks, unmatched names and names that claim another student; **scan**
   (``scan.py``) flags code that tampers with grading.
2. **gradebook**: ``generate_assignment`` from ``solutions/`` into a scratch folder so the
   gradebook holds the current tests (``labs/`` is not touched; a stale ``labs/`` is reported).
3. **autograde** (``grader.py``) every submission in its own ``nbgrader autograde --student``
   process, its notebook executed in the sandbox, ``--workers`` at a time.
4. **feedback**: nbgrader's HTML plus the executed notebook, both with hidden tests and their
   outputs stripped and no script (``feedback.py``); a short page for submissions that could
   not be graded.
5. **report**: ``grades/grades.csv`` rebuilt from the whole gradebook plus the status of every
   submission (``grades/status.json``; ``grading error: <reason>`` for one that could not be
   graded), one histogram per lab (``grades/<lab>_histogram.png``), the class report beside it
   (``class_report.py``: ``grades/<lab>_report.md/.json/.png``, each test's pass rate and the
   diagnosed bugs) and a log per run (``grades/logs/<lab>/<student>.log``).
   The CSV and the report are written whatever happened to single submissions.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import class_report, intake, scan
from .course import Course, api, release, sync_gradebook
from .grader import DEFAULT_WALL_LIMIT, Grader, Job
from .report import (GRADING_ERROR, Status, grade_rows, load_status, save_status, write_csv, write_feedback,
                     write_histograms)
from .sandbox import OPT_OUT_WARNING, Sandbox, SandboxUnavailable

HERE = Path(__file__).resolve().parent
__all__ = ["Course", "Grader", "Report", "Status", "grade", "load_status", "main", "release",
           "sandbox_for", "sync_gradebook"]


def sandbox_for(course: Course, settings: Mapping[str, object]) -> Sandbox:
    """The course's ``Sandbox`` (nbgrader_config.py) with this run's ``settings`` on top."""
    from traitlets import TraitError

    cfg = course.config()
    for name, value in settings.items():
        cfg.Sandbox[name] = value
    try:
        return Sandbox(config=cfg)
    except TraitError as exc:
        raise ValueError(str(exc)) from None


def require_sandbox(course: Course, box: Sandbox) -> None:
    """Refuse to grade unless the course's autograde chain is sandboxed and the sandbox starts."""
    chain = course.config().Autograde.get("autograde_preprocessors", [])
    if not any(getattr(pp, "__name__", str(pp)).endswith("SandboxedExecute") for pp in chain):
        raise SandboxUnavailable(
            f"{course.root / 'nbgrader_config.py'} does not run SandboxedExecute in "
            "c.Autograde.autograde_preprocessors: student code would run without the sandbox. "
            "Fix: use the kit's nbgrader_config.py, or --no-sandbox for a trusted classroom.")
    box.check()


@dataclass
class Report:
    rows: list[dict[str, object]]
    entries: list[intake.Entry]
    warnings: list[str]
    seconds: float                  # the whole run
    autograde_seconds: float = 0.0  # the autograde phase (all workers)
    sandbox: str = ""               # Sandbox.describe() of this run


def grade(course: Course, submissions: str | Path, workers: int = 1,
          wall_limit: float = DEFAULT_WALL_LIMIT, cell_timeout: int | None = None,
          sandbox: Mapping[str, object] | None = None, log=print) -> Report:
    """Collect, autograde, give feedback and export: the ``grade`` command.

    ``sandbox``: ``Sandbox`` settings for this run (``{"enabled": False}`` is the opt-out).
    Raises SandboxUnavailable (before touching anything) if the sandbox cannot be used.
    """
    start = time.monotonic()
    labs = course.labs()
    settings = {"wall_limit": wall_limit, **dict(sandbox or {})}
    box = sandbox_for(course, settings)
    if box.enabled:
        require_sandbox(course, box)
    else:
        log(OPT_OUT_WARNING)
    course.grades.mkdir(parents=True, exist_ok=True)
    warnings = [] if box.enabled else [OPT_OUT_WARNING]
    warnings += sync_gradebook(course, labs)
    entries = intake.collect(submissions, course.submitted,
                             {lab: course.released(lab) for lab in labs})
    status = load_status(course)
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    jobs = []
    for e in entries:
        if e.status in ("unmatched", "superseded"):
            if e.status == "unmatched":
                warnings.append(f"{e.source}: {e.detail}; skipped")
            continue
        st = Status(e.status, e.detail, flags=list(e.flags), source=e.source, updated=now,
                    sandbox=box.describe())
        if e.status == "ok":
            nb = nbformat.read(str(course.submitted / e.student / e.lab / f"{e.lab}.ipynb"), as_version=4)
            st.flags += scan.scan_notebook(nb, nbformat.read(str(course.released(e.lab)), as_version=4))
            if e.restored:
                st.flags.append(f"deleted cells put back: {', '.join(e.restored)}")
            jobs.append(Job(e.lab, e.student))
        status.setdefault(e.lab, {})[e.student] = st
    warnings += [f"{e.source}: {flag}" for e in entries for flag in e.flags]
    log(f"{len(jobs)} notebooks to grade ({len(entries)} files) with {workers} worker(s); "
        f"sandbox: {box.describe()}")
    phase = time.monotonic()
    try:
        results = Grader(course, wall_limit, cell_timeout, workers, settings).run(jobs)
    finally:
        phase = time.monotonic() - phase
    for (lab, student), result in results.items():
        st = status[lab][student]
        st.status, st.detail, st.seconds = result.status, result.detail, result.seconds
        log(f"  {lab} {student}: {st.label()} ({st.seconds:.1f} s)")
    _feedback(course, status, now, log)
    save_status(course, status)
    rows = grade_rows(course, status)
    write_csv(course.grades / "grades.csv", rows)
    write_histograms(course, rows)
    class_report.write_reports(course, status)
    for w in warnings:
        log(f"warning: {w}")
    return Report(rows, entries, warnings, time.monotonic() - start, phase, box.describe())


def _feedback(course: Course, status: dict[str, dict[str, Status]], now: str, log) -> None:
    """Feedback for every submission of this run; a failure is that submission's alone."""
    nbgrader_api = api(course)
    for lab, per in status.items():
        for student, st in per.items():
            if st.updated != now:
                continue
            try:
                write_feedback(course, lab, student, st, nbgrader_api)
            except Exception as exc:  # noqa: BLE001 -- report it, go on with the others
                st.status, st.detail = GRADING_ERROR, f"feedback failed: {type(exc).__name__}: {exc}"
                log(f"  {lab} {student}: {st.label()}")


SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"2G"``, ``"512M"``, ``"64KiB"`` or plain bytes -> bytes."""
    m = SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"Invalid size: {text!r} (expected e.g. 2G, 512M or bytes)")
    return int(float(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()])


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
                   help="seconds one notebook may take in all (default %(default)s)")
    g.add_argument("--cell-timeout", type=int, default=None,
                   help="seconds per cell (default: nbgrader_config.py's)")
    g.add_argument("--memory-limit", type=parse_size, help="address space per process (e.g. 2G)")
    g.add_argument("--max-processes", type=int, help="processes + threads per submission")
    g.add_argument("--cpu-limit", type=int, help="CPU seconds per process")
    g.add_argument("--disk-limit", type=parse_size, help="size of the private work folder + /tmp")
    g.add_argument("--no-sandbox", action="store_true",
                   help="run student code WITHOUT the sandbox (trusted classroom only)")
    args = parser.parse_args(argv)
    course = Course(args.course.resolve())
    if args.command == "release":
        for path in release(course):
            print(f"wrote {path}")
        return 0
    if not args.submissions.exists():
        parser.error(f"{args.submissions} does not exist")
    settings = {name: value for name, value in (
        ("memory_limit", args.memory_limit), ("max_processes", args.max_processes),
        ("cpu_limit", args.cpu_limit), ("disk_limit", args.disk_limit)) if value is not None}
    if args.no_sandbox:
        settings["enabled"] = False
    try:
        report = grade(course, args.submissions, args.workers, args.wall_limit, args.cell_timeout,
                       settings)
    except SandboxUnavailable as exc:
        print(f"error: refusing to grade: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:
        parser.error(str(exc))
    print(f"graded in {report.seconds:.0f} s; wrote {course.grades / 'grades.csv'}")
    if args.no_sandbox:
        print(OPT_OUT_WARNING, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
