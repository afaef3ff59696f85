"""What every benchmark shares: timing, the machine's state, and writing results.

A benchmark imports it as ``from _bench import ...`` (``python benchmarks/x.py`` puts this
folder first on ``sys.path``; files starting with ``_`` are not run by ``make bench``)::

    args = parser(__doc__, reps=15).parse_args()           # --out and --reps for free
    times = interleaved({"ours": ours, "peer": peer}, args.reps)
    rows.append({"case": "adam", "ours_ms": median_ms(times["ours"]), "ratio": ratio(times, "ours", "peer")})
    write_results("my_bench", args.out, rows, title="...", notes=["..."],
                  columns=[("case", "case", "{}"), ("ours ms", "ours_ms", "{:.2f}"), ("ratio", "ratio", "{:.2f}")],
                  meta=machine(torch=torch.__version__))

Timing rules, the same everywhere: one warm-up call per function, then the functions
*alternate* within each round (a load spike on the shared machine hits all of them alike),
``perf_counter`` for wall time and ``process_time`` for CPU time; a result is a ratio against a
peer measured in the same run, never a bare wall-clock number.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
#: A table column: (header, key of the row dict, format such as "{:.2f}"; a missing value prints empty).
Column = tuple[str, str, str]


def parser(doc: str, **defaults: Any) -> argparse.ArgumentParser:
    """An argument parser described by the first line of ``doc``, with ``--out`` (default
    ``benchmarks/results``) and, when ``reps`` is given, ``--reps``."""
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for the .json and .md results")
    if "reps" in defaults:
        ap.add_argument("--reps", type=int, default=defaults["reps"], help="timed repetitions")
    return ap


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds of one call of ``fn``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(fns: Mapping[str, Callable[[], Any]], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall seconds of ``reps`` calls of each function, round-robin after ``warmup`` calls each."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(timed(fn)[0])
    return times


def median_ms(seconds: Sequence[float]) -> float:
    return 1e3 * statistics.median(seconds)


def fastest_ms(seconds: Sequence[float]) -> float:
    """The least disturbed run (what ``timeit`` recommends on a busy machine)."""
    return 1e3 * min(seconds)


def p90_ms(seconds: Sequence[float]) -> float:
    return 1e3 * float(np.percentile(seconds, 90))


def ratio(times: Mapping[str, Sequence[float]], ours: str, peer: str) -> float:
    """Median of ``ours`` over median of ``peer`` (lower is better)."""
    return statistics.median(times[ours]) / statistics.median(times[peer])


def machine(**versions: Any) -> dict[str, Any]:
    """Python, numpy, CPU count and load average now, plus the given versions/settings."""
    return {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 2), **versions}


def markdown_table(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The rows as Markdown table lines (text columns left-aligned, numbers right-aligned)."""
    rows = list(rows)
    numeric = [all(isinstance(r.get(key), (int, float)) for r in rows if r.get(key) is not None)
               for _, key, _ in columns]
    lines = ["| " + " | ".join(title for title, _, _ in columns) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for r in rows:
        cells = ["" if r.get(key) is None else fmt.format(r[key]) for _, key, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_results(name: str, out: Path, rows: list[dict[str, Any]], *, title: str, columns: Sequence[Column],
                  meta: Mapping[str, Any], notes: Sequence[str] = (), footer: Sequence[str] = ()) -> Path:
    """Write ``<out>/<name>.json`` (``{"meta", "rows"}``) and ``<out>/<name>.md`` (title, the
    notes as paragraphs, the table, the footer); print the Markdown; return its path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"meta": dict(meta), "rows": rows}, indent=1) + "\n")
    facts = ", ".join(f"{k} {v}" for k, v in meta.items() if isinstance(v, (str, int, float)))
    lines = [f"# {title}", "", facts, ""]
    for note in notes:
        lines += [note, ""]
    lines += markdown_table(columns, rows)
    if footer:
        lines += ["", *footer]
    text = "\n".join(lines) + "\n"
    path = out / f"{name}.md"
    path.write_text(text)
    print(text)
    return path
