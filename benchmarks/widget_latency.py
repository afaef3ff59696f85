"""Latency of the nnopt.widgets explorers: time from a control change to a finished redraw.

A control change runs, synchronously, the explorer's whole update: recompute (optimizer runs,
training, ...), redraw the figure (Agg; blitted over a cached background when only lines
moved) and encode the PNG frame the display receives. For every explorer we change one
control ``--reps`` times, cycling through a few values, and record per change:

* wall time (``perf_counter``) and the process's CPU time (``process_time``; on a shared
  machine wall time also counts waiting for a core, so both are reported, with the load);
* its split into compute (``view.show``) and render+encode (``explorer.png``), measured on the
  same values in a second pass;
* the time to the *first* frame pushed to the display: a long update (the training explorers)
  shows its curves as they grow, so the first frame can come well before the complete one;
* the peer: the static twin (``plot_*_experiment``: a new figure drawn from scratch, then
  ``savefig`` to PNG) for the same values, i.e. what a naive "re-plot on every change"
  widget would cost. ratio = explorer / peer (lower is better).

Targets: issue 5, median < 100 ms for the surface explorers (lr, momentum, clipping) at 200
steps; issue 15, every control of every explorer < 150 ms to a complete frame and < 100 ms to
the first frame (the training explorers train their variants as one batch,
:mod:`nnopt.batched`; the race remembers its lanes, so a lane's slider trains that lane alone). Usage: ``python benchmarks/widget_latency.py [--reps 15] [--out benchmarks/results]``
"""
from __future__ import annotations

import io
import os
import time
from itertools import cycle, islice

import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import numpy as np  # noqa: E402

from _bench import machine, median_ms, p90_ms, parser, ratio, timed, write_results  # noqa: E402
from nnopt import widgets  # noqa: E402

TARGET_MS = 100.0
COMPLETE_MS, FIRST_MS = 150.0, 100.0          # issue 15, every explorer
RACE_LRS = {"sgd": 0.1, "adam": 1e-3}
SURFACE_STEPS = 200

# (row name, surface explorer?, explorer factory, static twin, control, values: a list to cycle
# through or n -> n distinct values, so that no change repeats a setting the explorer remembers)
CASES = [
    ("lr_explorer: lr (3 optimizers)", True, lambda: widgets.lr_explorer(steps=SURFACE_STEPS),
     widgets.plot_lr_experiment, "lr", lambda n: np.geomspace(1e-4, 1e-3, n)),   # no run diverges: 3 x 200 steps
    ("lr_explorer: start x", True, lambda: widgets.lr_explorer(steps=SURFACE_STEPS),
     widgets.plot_lr_experiment, "x0", lambda n: np.linspace(-1.8, -0.5, n)),
    ("lr_explorer: steps (full redraw)", False, lambda: widgets.lr_explorer(steps=SURFACE_STEPS),
     widgets.plot_lr_experiment, "steps", lambda n: 150 + 10 * np.arange(n)),
    ("lr_explorer: surface (new contour)", False, lambda: widgets.lr_explorer(steps=SURFACE_STEPS),
     widgets.plot_lr_experiment, "surface", ["beale", "himmelblau", "rosenbrock", "saddle"]),
    ("momentum_explorer: momentum", True, lambda: widgets.momentum_explorer(steps=SURFACE_STEPS),
     widgets.plot_momentum_experiment, "momentum", lambda n: np.linspace(0.3, 0.9, n)),
    ("momentum_explorer: condition (new contour)", False, lambda: widgets.momentum_explorer(steps=SURFACE_STEPS),
     widgets.plot_momentum_experiment, "condition", lambda n: np.geomspace(20.0, 200.0, n)),
    ("clipping_explorer: threshold", True, lambda: widgets.clipping_explorer(steps=SURFACE_STEPS),
     widgets.plot_clipping_experiment, "threshold", lambda n: np.geomspace(0.3, 5.0, n)),
    ("schedule_explorer: lr0 (2 x 15 epochs)", False, widgets.schedule_explorer,
     widgets.plot_schedule_experiment, "lr0", lambda n: np.geomspace(0.5, 2.0, n)),
    ("batch_size_explorer: batch size", False, widgets.batch_size_explorer,
     widgets.plot_batch_size_experiment, "batch_size", [1, 8, 64, 512]),
]
SLOW = {"schedule_explorer: lr0 (2 x 15 epochs)": 4, "batch_size_explorer: batch size": 6}   # fewer reps


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def change(explorer, control: str, value) -> tuple[float, float, float]:
    """Wall and CPU seconds of one control change to the complete frame, and wall seconds to the
    first frame pushed (the explorer's ``redraw``)."""
    first: list[float] = []
    push = explorer.redraw

    def redraw(**kw):
        push(**kw)
        first.append(first[0] if first else time.perf_counter())
    explorer.redraw = redraw
    start = time.perf_counter()
    try:
        wall, cpu = timed(lambda: setattr(explorer.controls[control], "value", value))
    finally:
        del explorer.redraw
    return wall, cpu, first[0] - start


def row_of(name: str, surface: bool, reps: int, changes, compute, render, peer) -> dict:
    wall, cpu, first = ([c[k] for c in changes] for k in range(3))
    row = {"case": name, "surface_explorer": surface, "reps": reps,
           "median_ms": median_ms(wall), "p90_ms": p90_ms(wall), "cpu_median_ms": median_ms(cpu),
           "first_ms": median_ms(first), "compute_ms": median_ms(compute) if compute else None,
           "render_ms": median_ms(render) if render else None, "peer_ms": median_ms(peer),
           "ratio": ratio({"explorer": wall, "peer": peer}, "explorer", "peer")}
    if surface:
        row["meets_target"] = row["median_ms"] < TARGET_MS
    row["issue15"] = "met" if row["median_ms"] < COMPLETE_MS and row["first_ms"] < FIRST_MS else "MISSED"
    row["issue15_cpu"] = "met" if row["cpu_median_ms"] < COMPLETE_MS else "MISSED"
    return row


def measure(name, surface, make, twin, control, values, reps: int) -> dict:
    explorer = make()
    values = [v.item() if isinstance(v, np.generic) else v
              for v in (values(reps + 1) if callable(values) else islice(cycle(values), reps + 1))]
    explorer.controls[control].value = values[0]                   # warm-up (caches, first layout)
    changes = [change(explorer, control, v) for v in values[1:]]
    compute, render, peer = [], [], []
    explorer = make()                                               # a fresh one: nothing remembered
    explorer.controls[control].value = values[0]
    for v in values[1:]:
        params = {**explorer.params(), control: v}
        compute.append(timed(lambda: explorer.view.show(**params))[0])
        render.append(timed(explorer.png)[0])
        peer.append(timed(lambda: _png(twin(**params)))[0])
    return row_of(name, surface, reps, changes, compute, render, peer)


def measure_race(reps: int) -> list[dict]:
    """The race (2 lanes x 10 epochs): a lane's lr slider (that lane trained anew, the other
    remembered), the epochs slider (fewer: cut; more: continued), and the run button (every lane
    trained again, live). Peer: the static twin for the same lanes."""
    rows = []
    for label, control, values in [("sgd lr (1 lane x 10 epochs trained)", "sgd_lr", np.geomspace(0.05, 0.2, reps + 1)),
                                   ("epochs (remembered lanes cut / continued)", "epochs", [10, 6, 12, 8, 14, 9, 15])]:
        race = widgets.training_race(lrs=RACE_LRS, epochs=10)
        values = [v.item() if isinstance(v, np.generic) else v for v in islice(cycle(values), reps + 1)]
        race.controls[control].value = values[0]
        changes = [change(race, control, v) for v in values[1:]]
        peer = [timed(lambda: _png(widgets.plot_training_race({k: v for k, v in race.params()["lrs"].items()},
                                                              race.params()["epochs"])))[0] for _ in range(reps)]
        rows.append(row_of(f"training_race: {label}", False, reps, changes, [], [], peer))
    race = widgets.training_race(lrs=RACE_LRS, epochs=10)
    runs = []
    for _ in range(reps):
        first: list[float] = []
        push = race.redraw
        race.redraw = lambda **kw: (push(**kw), first.append(time.perf_counter()))
        start = time.perf_counter()
        wall, cpu = timed(race.button.click)
        del race.redraw
        runs.append((wall, cpu, first[0] - start))
    peer = [timed(lambda: _png(widgets.plot_training_race(RACE_LRS, 10)))[0] for _ in range(reps)]
    rows.append(row_of("training_race: run button (2 lanes x 10 epochs, live)", False, reps, runs, [], [], peer))
    return rows


def write(rows: list[dict], meta: dict, out) -> None:
    for r in rows:
        r["target"] = {True: "met", False: "MISSED"}.get(r.get("meets_target"), "")
    notes = [f"Target: median < {TARGET_MS:.0f} ms for the surface explorers at {SURFACE_STEPS} steps. "
             "'compute' = the view's recomputation, 'render' = draw (blitted when only lines move) + PNG encode, "
             "'peer' = the static twin drawn from scratch + savefig (a naive re-plot), ratio = median / peer. "
             "Values never repeat, so the explorers' memory of recent paths never helps here (worst case). "
             f"'first' = wall time to the first frame pushed; 'issue 15' = complete frame < {COMPLETE_MS:.0f} ms and "
             f"first frame < {FIRST_MS:.0f} ms (wall), 'CPU' = the same on CPU time (an idle core)."]
    columns = [("case", "case", "{}"), ("median ms", "median_ms", "{:.1f}"), ("p90 ms", "p90_ms", "{:.1f}"),
               ("CPU ms", "cpu_median_ms", "{:.1f}"), ("first ms", "first_ms", "{:.1f}"), ("compute ms", "compute_ms", "{:.1f}"),
               ("render ms", "render_ms", "{:.1f}"), ("peer ms", "peer_ms", "{:.1f}"), ("ratio", "ratio", "{:.2f}"),
               ("target", "target", "{}"), ("issue 15", "issue15", "{}"), ("issue 15 (CPU)", "issue15_cpu", "{}")]
    write_results("widget_latency", out, rows, title="Widget latency: control change -> finished redraw (Agg, "
                  "PNG frame)", columns=columns, meta=meta, notes=notes,
                  footer=["Wall time includes waiting for a core when the machine is shared; the CPU column does not."])


def main() -> None:
    args = parser(__doc__, reps=15).parse_args()
    load_before = os.getloadavg()[0]
    rows = [measure(*case, reps=min(args.reps, SLOW.get(case[0], args.reps))) for case in CASES]
    rows += measure_race(reps=min(args.reps, 5))
    meta = machine(matplotlib=matplotlib.__version__, ipywidgets=ipywidgets.__version__,
                   load_before=round(load_before, 2))
    write(rows, meta, args.out)


if __name__ == "__main__":
    main()
