"""Figure checks: the plotted *data* is compared, not only the number of labelled lines.

In the kernel a figure becomes data (:func:`figure_data`): every axes' title and axis labels
and every line's label and points. The grader then looks for the lines the task asks for:

* Lab 1, :func:`check_trajectory_figure`: each requested optimizer's trajectory on the
  surface, as the reference computes it, must be one labelled line (points within
  :data:`PLOT_TOL`, the precision of plotting);
* Lab 3, :func:`check_curves_figure`: each benchmark row's validation curve must be the line
  labelled with the row's name; with ``rerun=True`` the curve is the grader's re-run of the
  row's settings, so invented rows with matching invented lines do not pass. At autograde
  (a trusted context) every row is re-run; with instant feedback only the best row is (the
  others are checked against their own 'curve'), and the message says so.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import compare, record
from .checks import check
from .outcome import AnswerError, Context, Verdict, numbers
from .spec import GradingError, Spec, call_label
from .training import ACC_TOL, MAX_ROWS, retrain, rows_numbers, spot_check, spot_check_note, strategy_problem

PLOT_TOL = compare.Tolerance("float64", 1e-6, 1e-9)
MAX_LINES, MAX_POINTS = 60, 5000


def figure_data(fig: Any) -> dict[str, Any]:
    """Titles, axis labels and labelled lines of a matplotlib figure (colorbars skipped)."""
    from matplotlib.figure import Figure
    if not isinstance(fig, Figure):
        raise GradingError(f"expected a matplotlib Figure, got {type(fig).__name__} "
                           "(use `fig, ax = plt.subplots()` and keep `fig`)")
    axes = []
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        lines = [{"label": str(ln.get_label())[:100],
                  "x": record.encode(np.asarray(ln.get_xdata(), dtype=float)[:MAX_POINTS]),
                  "y": record.encode(np.asarray(ln.get_ydata(), dtype=float)[:MAX_POINTS])}
                 for ln in ax.get_lines() if not str(ln.get_label()).startswith("_")][:MAX_LINES]
        axes.append({"title": ax.get_title()[:200], "xlabel": ax.get_xlabel()[:200],
                     "ylabel": ax.get_ylabel()[:200], "lines": lines})
    return {"axes": axes}


def check_trajectory_figure(fig: Any, surface: str, steps: int, runs: Sequence[Any], why: str = "") -> None:
    """``fig`` shows, as labelled lines, the trajectory of every ``[reference, hp]`` in ``runs``
    for ``steps`` steps on ``surface`` from its start; its axes have a title and axis labels."""
    check(check_trajectory_figure, "trajectory_figure", lambda f, a: figure_data(f),
          (fig, surface, steps, runs, why), {})


def check_curves_figure(fig: Any, results: Any, epochs: int, rerun: bool = False, why: str = "") -> None:
    """``fig`` shows every benchmark row of ``results`` (trained ``epochs`` epochs) as a line
    labelled with the row's name, whose points are the row's validation curve (epoch 0, 1,
    ...); with ``rerun`` the curve the grader gets by re-running the row's settings."""
    check(check_curves_figure, "curves_figure",
          lambda answer, a: {**figure_data(answer[0]), "rows": rows_numbers(answer[1])},
          (fig, results, epochs, rerun, why), {}, n_answers=2)


# ----------------------------------------------------------------- on the grader's side
def _lines(answer: Mapping[str, Any]) -> tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """(problem with titles/labels or '', [(label, x, y)]) of a recorded figure."""
    axes = answer.get("axes")
    if not isinstance(axes, list) or len(axes) > MAX_LINES:
        raise AnswerError("'axes' must be a list")
    if not axes:
        return "the figure has no axes", []
    lines = []
    for i, ax in enumerate(axes):
        if not isinstance(ax, Mapping) or not isinstance(ax.get("lines"), list):
            raise AnswerError(f"axes {i} is malformed")
        for part in ("title", "xlabel", "ylabel"):
            if not str(ax.get(part, "")).strip():
                return f"axes {i} of the figure has no {part.replace('label', ' label')}", []
        for ln in ax["lines"][:MAX_LINES]:
            if not isinstance(ln, Mapping):
                raise AnswerError("a line is malformed")
            x, y = numbers(ln, "x", ndim=1), numbers(ln, "y", ndim=1)
            lines.append((str(ln.get("label", ""))[:100], x, y))
    return "", lines


def _judge_trajectory_figure(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    from . import reference                 # not installed in the grading sandbox
    a = spec.args
    problem, lines = _lines(answer)
    if problem:
        return Verdict(False, problem)
    surf = call_label(a["surface"], {})
    for name, hp in a["runs"]:
        expected = np.array(reference.path({"reference": name, "hp": hp, "surface": a["surface"],
                                            "surface_kw": None, "x0": None, "steps": a["steps"]}))
        if not any(x.shape == y.shape == expected[:, 0].shape and PLOT_TOL.close(x, expected[:, 0]).all()
                   and PLOT_TOL.close(y, expected[:, 1]).all() for _, x, y in lines):
            return Verdict(False, f"no labelled line of the figure shows {call_label(name, hp)}'s "
                           f"{a['steps']} steps on {surf} (from {compare.fmt(expected[0])}; the reference "
                           f"ends at {compare.fmt(expected[-1])}); pass label=... to plot and plot "
                           f"path[:, 0] against path[:, 1]\n  ({PLOT_TOL.describe()})")
    return Verdict(True, f"the figure shows the {len(a['runs'])} trajectories, labelled, with a title and axis labels")


def _judge_curves_figure(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    problem, lines = _lines(answer)
    if problem:
        return Verdict(False, problem)
    rows = answer.get("rows")
    if not isinstance(rows, list) or not rows or len(rows) > MAX_ROWS:
        raise AnswerError(f"'rows' must be a list of 1 to {MAX_ROWS} rows")
    by_label = {}
    for label, x, y in lines:
        by_label.setdefault(label, []).append((x, y))
    if not all(isinstance(raw, Mapping) for raw in rows):
        raise AnswerError("a row is malformed")
    rerun = set(range(len(rows)))
    note = ""
    if spec.args["rerun"] and not context.trusted:
        rerun = {spot_check([{"val_acc": float(numbers(r, "val_acc", ndim=0))} for r in rows])}
        note = spot_check_note(len(rows))
    for i, raw in enumerate(rows):
        name = str(raw.get("name"))
        curve = numbers(raw, "curve", ndim=1)
        tol = 1e-9
        if spec.args["rerun"] and i in rerun:
            seed = raw.get("seed")
            problem = strategy_problem(raw.get("strategy")) or (
                "" if isinstance(seed, (int, float)) and not isinstance(seed, bool) and seed == int(seed)
                else "its seed must be an integer") or (
                "" if raw.get("epochs") == spec.args["epochs"] else f"it must train {spec.args['epochs']} epochs")
            if problem:
                return Verdict(False, f"row {i} {name!r} cannot be re-run: {problem}")
            try:
                curve = np.array(retrain(context, raw["strategy"], spec.args["epochs"], int(seed))["curve"])
            except ValueError as exc:
                return Verdict(False, f"row {i} {name!r} cannot be re-run: {exc}")
            tol = ACC_TOL
        want_x = np.arange(len(curve), dtype=float)
        if not any(x.shape == y.shape == curve.shape and np.abs(x - want_x).max(initial=0) <= 1e-9
                   and np.abs(y - curve).max(initial=0) <= tol for x, y in by_label.get(name, [])):
            source = "the grader's re-run of its settings" if spec.args["rerun"] and i in rerun else "its 'curve'"
            return Verdict(False, f"no line labelled {name!r} plots row {i}'s validation accuracy "
                           f"against the epoch 0..{len(curve) - 1} ({source}: "
                           f"{[round(float(v), 4) for v in curve]}; tolerance {tol:g}){note}")
    return Verdict(True, f"the figure plots the {len(rows)} validation curves, labelled, with a title and "
                   f"axis labels{note}")


JUDGES = {"trajectory_figure": _judge_trajectory_figure, "curves_figure": _judge_curves_figure}
