"""Student-side run time of each lab: today's kit against the kit before trusted verdicts.

Issue 16 moved the points out of the student's kernel: a check now records the student's
numbers and, for instant feedback, asks a reference process (``nnopt.grading.client``) for
the verdict. Its acceptance: a student's run of a lab stays within 10 % of what it was.

"Today's kit" is ``HEAD`` as committed (uncommitted edits are not measured). What a student
runs is the released notebook with their answers: here each lab's source
notebook (``solutions/``) with the hidden tests removed, executed top to bottom by nbclient
in a fresh kernel (as "Restart and run all" or nbgrader's Validate do). The peer is the same
notebook of ``--baseline`` (default: the commit before the first commit of issue 16). Each
side gets a venv of its own that sees this .venv's packages and its own ``lib/`` (see
:func:`interpreter`); a fresh process of it runs the notebook, and the two sides alternate
round by round. Lab 4 did not exist at the baseline and is timed alone (no ratio).

Usage: ``python benchmarks/student_runtime.py [--reps 5] [--baseline REV] [--out benchmarks/results]``
"""
from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests

from _bench import interleaved, machine, parser, ratio, write_results

REPO = Path(__file__).resolve().parents[1]
BASELINE = "ba8838c"        # the parent of f94ccc5, issue 16's first commit
LABS = ("lab1_sgd_momentum", "lab2_adaptive", "lab3_handson", "lab4_beyond_adam")
TARGET = 1.10


def checkout(rev: str, dest: Path) -> Path:
    """``lib/`` and ``solutions/`` of ``rev`` extracted into ``dest`` (no worktree, nothing touched)."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "lib", "solutions"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def student_notebook(source: Path) -> nbformat.NotebookNode:
    """The source notebook as a student who answered everything has it: hidden tests removed
    (nbgrader's own ``ClearHiddenTests``, as in ``autograder.feedback``)."""
    return ClearHiddenTests().preprocess(nbformat.read(source, as_version=4), {})[0]


RUN = """import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.stdin, as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": sys.argv[1]}}).execute()
"""


def interpreter(tree: Path) -> Path:
    """A venv in ``tree`` whose site-packages are this .venv's but whose ``nnopt`` is ``tree/lib``.

    The reference process of the checks runs ``python -I -m nnopt.grading`` (isolated: no
    ``PYTHONPATH``), so each tree needs an interpreter of its own; a ``.pth`` line is not a site
    directory, so this .venv's ``.pth`` files (the one that points at the checkout's ``lib/``)
    are not read."""
    venv = tree / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "kit.pth").write_text(f"{tree / 'lib'}\n{sysconfig.get_paths()['purelib']}\n")
    return venv / "bin" / "python"


def runner(tree: Path, python: Path, lab: str) -> Callable[[], None]:
    """A function that runs ``lab`` of ``tree`` once: a fresh process of ``python`` runs the
    notebook with nbclient (its kernel is that interpreter: the spec's argv starts with "python")."""
    folder = tree / "solutions" / lab
    source = nbformat.writes(student_notebook(folder / f"{lab}.ipynb"))
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("PYTHONPATH", None)

    def run() -> None:
        done = subprocess.run([str(python), "-c", RUN, str(folder)], input=source, text=True, env=env,
                              capture_output=True)
        if done.returncode:
            raise RuntimeError(f"{lab} failed in {tree.name}:\n{done.stderr[-3000:]}")
    return run


def main() -> None:
    ap = parser(__doc__, reps=5)
    ap.add_argument("--baseline", default=BASELINE, help="the commit to compare against")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        now = checkout("HEAD", Path(tmp) / "now")
        before = checkout(args.baseline, Path(tmp) / "before")
        now_python, before_python = interpreter(now), interpreter(before)
        for lab in LABS:
            fns = {"now": runner(now, now_python, lab)}
            if (before / "solutions" / lab).is_dir():
                fns["before"] = runner(before, before_python, lab)
            times = interleaved(fns, args.reps)
            row = {"lab": lab, "now_s": min(times["now"]), "now_median_s": statistics.median(times["now"])}
            if "before" in times:
                row.update(before_s=min(times["before"]), before_median_s=statistics.median(times["before"]),
                           ratio=ratio(times, "now", "before"))
                row["met"] = "yes" if row["ratio"] <= TARGET else "NO"
            rows.append(row)
    write_results(
        "student_runtime", args.out, rows, title="Student-side run time of the labs (benchmarks/student_runtime.py)",
        meta=machine(reps=args.reps, baseline=args.baseline, head=subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()),
        notes=["Each lab's source notebook without its hidden tests, run top to bottom by nbclient in a fresh "
               "kernel (kernel start included), today's kit and the baseline's alternating round by round. "
               f"Target (issue 16): ratio of the medians <= {TARGET:.2f}."],
        columns=[("lab", "lab", "{}"), ("now, median (s)", "now_median_s", "{:.2f}"), ("now, fastest (s)", "now_s", "{:.2f}"),
                 ("baseline, median (s)", "before_median_s", "{:.2f}"), ("baseline, fastest (s)", "before_s", "{:.2f}"),
                 ("ratio (medians)", "ratio", "{:.3f}"), ("target met", "met", "{}")])


if __name__ == "__main__":
    main()
