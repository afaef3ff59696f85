"""Autograding speed: the sandbox's cost per submission, seconds per lab, 1 vs 2 workers.

In private copies of the course (nothing in the repo is touched), with
``python -m autograder.pipeline``'s ``grade``:

* ``sandbox_cost``: the fixed cost of the sandbox -- a one-cell notebook run by
  ``Sandbox.run`` (bubblewrap, the executor's start-up, staging, the result pipe) against the
  same notebook run by nbclient in this process (kernel start included in both);
* ``per_lab``: the full-marks sample of each lab, ``--reps`` times, graded with the sandbox and,
  as the peer measured in the same run, without it (``--no-sandbox``), alternating; per
  submission the seconds of its ``nbgrader autograde`` process (median) and the median of the
  paired differences -- the sandbox's cost on a real lab (target: <= 1 s);
* ``throughput``: ``--n`` copies of Lab 1's full-marks sample with 1 and then 2 workers:
  submissions per minute of the autograde phase and of the whole run, CPU seconds per
  submission (children's rusage) and the machine's load, which bounds what 2 workers can gain
  on 2 shared cores (target >= 1.7x; the profile says where the rest goes).

Usage: ``python benchmarks/autograde.py [--reps 3] [--n 16] [--out benchmarks/results]``
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
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(REPO))    # the autograder package, when run as a script
from autograder import make_samples, pipeline  # noqa: E402
from autograder.preprocessors import EXECUTOR_TRAITS, SandboxedExecute  # noqa: E402
from autograder.sandbox import Sandbox  # noqa: E402

TARGET_COST = 1.0
TARGET_SPEEDUP = 1.7
LABS = (make_samples.LAB1, make_samples.LAB2, make_samples.LAB3)
FULL = {s.lab: s.auto_score for s in make_samples.SAMPLES if s.student == "alice"}


def _course(root: Path) -> pipeline.Course:
    return pipeline.Course(REPO / "autograder").copy_to(root)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def sandbox_cost(reps: int) -> dict[str, float]:
    """A trivial notebook in the sandbox (as Lab 1: its references withheld) vs with nbclient
    here (both start a kernel)."""
    nb = new_notebook(cells=[new_code_cell("x = 1")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    executor = {t: getattr(SandboxedExecute(), t) for t in EXECUTOR_TRAITS}
    box, inside, alone, inner = Sandbox(), [], [], []
    box.check()
    for _ in range(reps):
        start = time.perf_counter()
        result = box.run(nb, lab=make_samples.LAB1, name="bench.ipynb", executor=executor)
        inside.append(time.perf_counter() - start)
        inner.append(result.inner_seconds)
        assert result.status == "ok", result.reason
        start = time.perf_counter()
        NotebookClient(nbformat.from_dict(nb), timeout=60).execute()
        alone.append(time.perf_counter() - start)
    return {"sandboxed_s": round(statistics.median(inside), 3), "nbclient_s": round(statistics.median(alone), 3),
            "cost_s": round(statistics.median(a - b for a, b in zip(inside, alone)), 3),
            "executor_inside_s": round(statistics.median(inner), 3)}


PEAKS = """import json, os, re
def status(pid):
    text = open(f"/proc/{pid}/status").read()
    return {k: int(re.search(k + r":\\s+(\\d+)", text).group(1)) for k in ("VmPeak", "VmHWM", "Threads")}
print("PEAKS " + json.dumps({"kernel": status("self"), "executor": status(os.getppid())}))
"""


def memory_peaks() -> dict[str, dict[str, float]]:
    """Peak address space (what RLIMIT_AS limits) and peak RSS of each lab's kernel and of the
    executor in the sandbox, after the whole lab ran (numpy, Theano, matplotlib loaded)."""
    executor = {t: getattr(SandboxedExecute(), t) for t in EXECUTOR_TRAITS}
    out = {}
    for lab in LABS:
        nb = make_samples.filled(lab)
        nb.cells.append(new_code_cell(PEAKS))
        result = Sandbox().run(nb, lab=lab, name=f"{lab}.ipynb", executor=executor)
        assert result.status == "ok", result.reason
        text = "".join(o.get("text", "") for o in result.notebook["cells"][-1]["outputs"])
        peaks = json.loads(text.split("PEAKS ", 1)[1])
        out[lab] = {f"{who}_{key}": round(value / 1024, 1) if key != "Threads" else value
                    for who, values in peaks.items() for key, value in values.items()}
    return out


def _grade_once(root: Path, lab: str, tag: str, sandboxed: bool) -> float:
    course = _course(root / tag)
    subs = root / f"subs-{tag}"
    subs.mkdir()
    nbformat.write(make_samples.filled(lab), str(subs / f"s_{lab}.ipynb"))
    report = pipeline.grade(course, subs, sandbox=None if sandboxed else {"enabled": False}, log=lambda *a: None)
    row = report.rows[0]
    assert row["status"] == "graded" and float(row["auto_score"]) == FULL[lab], row
    return pipeline.load_status(course)[lab]["s"].seconds


def per_lab(root: Path, reps: int) -> dict[str, dict[str, object]]:
    out = {}
    for lab in LABS:
        boxed, bare = [], []
        for rep in range(reps):
            boxed.append(_grade_once(root, lab, f"{lab}-box-{rep}", True))
            bare.append(_grade_once(root, lab, f"{lab}-bare-{rep}", False))
        out[lab] = {"autograde_s": round(statistics.median(boxed), 2),      # sandboxed (DEPLOY.md's sizing)
                    "no_sandbox_s": round(statistics.median(bare), 2),
                    "cost_s": round(statistics.median(a - b for a, b in zip(boxed, bare)), 2),
                    "runs_sandboxed": boxed, "runs_no_sandbox": bare}
    return out


def throughput(root: Path, n: int) -> dict[str, object]:
    """``n`` Lab 1 submissions with 1 and 2 workers, and the profile of the difference.

    The autograde phase's speed-up factors exactly into
    ``speedup = (busy_2 / busy_1) * (per_sub_1 / per_sub_2)``, where ``per_sub`` is the mean
    seconds of one submission's ``nbgrader autograde`` process and ``busy`` the mean number of
    such processes running (their seconds summed over the phase's seconds, at most the worker
    count): what 2 workers lose is either idle slots (the batch's serial parts, the last
    submission alone) or each submission running slower next to the other (the same CPU
    seconds over a longer wall time = cores taken by the other worker and by other users).
    """
    subs = root / "throughput"
    subs.mkdir()
    nb = make_samples.filled(make_samples.LAB1)
    for i in range(n):
        nbformat.write(nb, str(subs / f"student{i:02d}_lab1.ipynb"))
    out: dict[str, object] = {}
    for workers in (1, 2):
        course = _course(root / f"workers{workers}")
        cpu, load = _children_cpu(), os.getloadavg()[0]
        report = pipeline.grade(course, subs, workers=workers, log=lambda *a: None)
        cpu = _children_cpu() - cpu
        assert all(r["status"] == "graded" and float(r["auto_score"]) == FULL[make_samples.LAB1] for r in report.rows)
        per_sub = [st.seconds for st in pipeline.load_status(course)[make_samples.LAB1].values()]
        out[f"{workers} worker(s)"] = {
            "autograde_s": round(report.autograde_seconds, 1), "total_s": round(report.seconds, 1),
            "per_minute": round(60 * n / report.autograde_seconds, 1),
            "per_minute_total": round(60 * n / report.seconds, 1),
            "cpu_s_per_submission": round(cpu / n, 2),
            "submission_s": round(statistics.mean(per_sub), 2),
            "busy_workers": round(sum(per_sub) / report.autograde_seconds, 2),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
            # CPU the run's child processes used per second of the run: 2.0 = both cores
            "cores_used": round(cpu / report.seconds, 2)}
    one, two = out["1 worker(s)"], out["2 worker(s)"]
    out["speedup_2_vs_1"] = round(one["autograde_s"] / two["autograde_s"], 2)
    out["profile"] = {
        "busy_ratio": round(two["busy_workers"] / one["busy_workers"], 2),       # ideal 2.0
        "per_submission_slowdown": round(two["submission_s"] / one["submission_s"], 2),   # ideal 1.0
        "cpu_per_submission_ratio": round(two["cpu_s_per_submission"] / one["cpu_s_per_submission"], 2),
        "cpus": os.cpu_count()}
    return out


def _markdown(res: dict) -> str:
    c = res["sandbox_cost"]
    lines = ["# Autograding speed (benchmarks/autograde.py)", "",
             f"Machine: {os.cpu_count()} cores shared with other users; load average at start "
             f"{res['loadavg']}. Wall times vary with that load; the differences are paired.", "",
             "## The sandbox's cost per submission (target <= 1 s)", "",
             "| one-cell notebook | seconds (median) |", "|---|---|",
             f"| `Sandbox.run` (bwrap + executor + kernel) | {c['sandboxed_s']} |",
             f"| nbclient in the grader's process (kernel) | {c['nbclient_s']} |",
             f"| **cost of the sandbox** (paired difference) | **{c['cost_s']}** |",
             f"| of which the executor's own time inside | {c['executor_inside_s']} |", "",
             "| lab | autograde, sandboxed (s) | autograde, --no-sandbox (s) | sandbox cost (s, paired median) |",
             "|---|---|---|---|"]
    for lab, r in res["per_lab"].items():
        lines.append(f"| {lab} | {r['autograde_s']} | {r['no_sandbox_s']} | {r['cost_s']} |")
    lines += ["", "## Memory: peaks after the whole lab, in the sandbox (MiB; limit: 2048 MiB of address "
              "space per process)", "",
              "| lab | kernel: address space | kernel: resident | kernel threads | executor: address space | "
              "executor: resident |", "|---|---|---|---|---|---|"]
    for lab, m in res["memory"].items():
        lines.append(f"| {lab} | {m['kernel_VmPeak']} | {m['kernel_VmHWM']} | {m['kernel_Threads']} | "
                     f"{m['executor_VmPeak']} | {m['executor_VmHWM']} |")
    t = res["throughput"]
    lines += ["", f"## Throughput: {res['n']} Lab 1 submissions (target >= {TARGET_SPEEDUP}x with 2 workers)", "",
              "| workers | autograde phase (s) | whole run (s) | submissions/min (autograde) | "
              "submissions/min (whole run) | CPU s per submission | cores used | load before -> after |",
              "|---|---|---|---|---|---|---|---|"]
    for key in ("1 worker(s)", "2 worker(s)"):
        r = t[key]
        lines.append(f"| {key.split()[0]} | {r['autograde_s']} | {r['total_s']} | {r['per_minute']} | "
                     f"{r['per_minute_total']} | {r['cpu_s_per_submission']} | {r['cores_used']} | "
                     f"{r['load_before']} -> {r['load_after']} |")
    p = t["profile"]
    lines += ["", f"Speed-up with 2 workers: **{t['speedup_2_vs_1']}x** = {p['busy_ratio']} (busy workers, "
              f"ideal 2) / {p['per_submission_slowdown']} (each submission's seconds next to the other "
              f"worker, ideal 1). CPU seconds per submission changed {p['cpu_per_submission_ratio']}x, so a "
              "slowdown with the same CPU seconds is time spent waiting for a core "
              f"({p['cpus']} cores; compare the load average, which counts the other users).", "",
              "| workers | seconds per submission (mean) | busy workers (mean) |", "|---|---|---|"]
    for key in ("1 worker(s)", "2 worker(s)"):
        lines.append(f"| {key.split()[0]} | {t[key]['submission_s']} | {t[key]['busy_workers']} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    res = {"loadavg": [round(x, 2) for x in os.getloadavg()], "n": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        res["sandbox_cost"] = sandbox_cost(2 * args.reps + 1)
        res["memory"] = memory_peaks()
        res["per_lab"] = per_lab(Path(tmp), args.reps)
        res["throughput"] = throughput(Path(tmp), args.n)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "autograde.json").write_text(json.dumps(res, indent=1))
    (args.out / "autograde.md").write_text(_markdown(res))
    print(_markdown(res))


if __name__ == "__main__":
    main()
