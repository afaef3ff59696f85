"""Autograding speed: seconds per submission per lab, and throughput with 1 and 2 workers.

In a private copy of the course (nothing in the repo is touched) it grades, with
``python -m autograder.pipeline``:

* ``per_lab``: the full-marks sample of each lab, ``--reps`` times, one at a time; per
  submission the wall seconds of its ``nbgrader autograde`` process and, as a peer measured
  in the same run, the seconds to simply execute the same notebook (hidden tests included)
  with nbclient -- the ratio is nbgrader's and the pipeline's overhead;
* ``throughput``: ``--n`` copies of Lab 1's full-marks sample with 1 and then 2 workers:
  submissions per minute of the autograde phase and of the whole run (intake, gradebook,
  feedback, CSV included), and CPU seconds per submission (children's rusage, 1 worker).

The machine is shared, so the CPU seconds are the stable number; wall times vary with load.
Target (issue 7): under 20 s per Lab 1/2 submission. Usage:
``python benchmarks/autograde.py [--reps 3] [--n 20] [--out benchmarks/results]``
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(REPO))    # the autograder package, when run as a script
from autograder import make_samples, pipeline  # noqa: E402

TARGET_SECONDS = 20.0
LABS = (make_samples.LAB1, make_samples.LAB2, make_samples.LAB3)


def _course(root: Path) -> pipeline.Course:
    return pipeline.Course(REPO / "autograder").copy_to(root)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _execute_seconds(lab: str, workdir: Path) -> float:
    """Peer: run the graded notebook (tests restored) with nbclient alone."""
    nb = make_samples.filled(lab)
    source = nbformat.read(str(REPO / "solutions" / lab / f"{lab}.ipynb"), as_version=4)
    tests = {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in tests and not cell.metadata.nbgrader.get("solution"):
            cell.source = tests[gid]
    start = time.perf_counter()
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(workdir)}}).execute()
    return time.perf_counter() - start


def per_lab(root: Path, reps: int) -> dict[str, dict[str, float]]:
    for key, value in pipeline._environment().items():   # the kernels' environment
        os.environ[key] = value
    out = {}
    for lab in LABS:
        grade, execute = [], []
        for rep in range(reps):
            course = _course(root / f"{lab}-{rep}")
            subs = root / f"subs-{lab}-{rep}"
            subs.mkdir()
            nbformat.write(make_samples.filled(lab), str(subs / f"s{rep}_{lab}.ipynb"))
            pipeline.grade(course, subs, log=lambda *a: None)
            grade.append(pipeline.load_status(course)[lab][f"s{rep}"].seconds)
            execute.append(_execute_seconds(lab, subs))
        g, e = statistics.median(grade), statistics.median(execute)
        out[lab] = {"autograde_s": round(g, 2), "execute_only_s": round(e, 2),
                    "overhead_ratio": round(g / e, 2), "runs": grade}
    return out


def throughput(root: Path, n: int) -> dict[str, dict[str, float]]:
    subs = root / "throughput"
    subs.mkdir()
    nb = make_samples.filled(make_samples.LAB1)
    for i in range(n):
        nbformat.write(nb, str(subs / f"student{i:02d}_lab1.ipynb"))
    out = {}
    for workers in (1, 2):
        course = _course(root / f"workers{workers}")
        cpu = _children_cpu()
        report = pipeline.grade(course, subs, workers=workers, log=lambda *a: None)
        cpu = _children_cpu() - cpu
        assert all(r["status"] == "graded" and float(r["auto_score"]) == 14 for r in report.rows)
        out[f"{workers} worker(s)"] = {
            "autograde_s": round(report.autograde_seconds, 1), "total_s": round(report.seconds, 1),
            "per_minute": round(60 * n / report.autograde_seconds, 1),
            "per_minute_total": round(60 * n / report.seconds, 1),
            "cpu_s_per_submission": round(cpu / n, 2)}
    one, two = out["1 worker(s)"], out["2 worker(s)"]
    out["speedup_2_vs_1"] = round(one["autograde_s"] / two["autograde_s"], 2)
    return out


def _markdown(res: dict) -> str:
    lines = ["# Autograding speed (benchmarks/autograde.py)", "",
             f"Load average at start: {res['loadavg']}; target < {TARGET_SECONDS:g} s per Lab 1/2 submission.", "",
             "| lab | autograde (s, median) | notebook alone (s) | overhead | meets target |",
             "|---|---|---|---|---|"]
    for lab, r in res["per_lab"].items():
        ok = "n/a (Lab 3)" if lab == make_samples.LAB3 else ("yes" if r["autograde_s"] < TARGET_SECONDS else "NO")
        lines.append(f"| {lab} | {r['autograde_s']} | {r['execute_only_s']} | {r['overhead_ratio']}x | {ok} |")
    t = res["throughput"]
    lines += ["", f"{res['n']} Lab 1 submissions:", "",
              "| workers | autograde phase (s) | whole run (s) | submissions/min (autograde) | "
              "submissions/min (whole run) | CPU s per submission |", "|---|---|---|---|---|---|"]
    for key in ("1 worker(s)", "2 worker(s)"):
        r = t[key]
        lines.append(f"| {key.split()[0]} | {r['autograde_s']} | {r['total_s']} | {r['per_minute']} | "
                     f"{r['per_minute_total']} | {r['cpu_s_per_submission']} |")
    lines += ["", f"Speed-up with 2 workers: {t['speedup_2_vs_1']}x.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    res = {"loadavg": [round(x, 2) for x in os.getloadavg()], "n": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        res["per_lab"] = per_lab(Path(tmp), args.reps)
        res["throughput"] = throughput(Path(tmp), args.n)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "autograde.json").write_text(json.dumps(res, indent=1))
    (args.out / "autograde.md").write_text(_markdown(res))
    print(_markdown(res))


if __name__ == "__main__":
    main()
