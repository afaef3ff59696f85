"""Lab 3, Part A: training rows that must be reproducible, and the benchmark built from them.

A *row* is what the student's ``run_strategy`` returns: ``name``, ``strategy``
(``{"optimizer", "hp", "batch_size"}``), ``epochs``, ``seed``, ``train_loss``, ``val_acc``,
``curve`` (validation accuracy per epoch) and ``seconds``. In the kernel a check only copies
a row's settings and numbers into the record. The grader **re-runs** the stated settings the
lab's way -- ``default_mlp(seed=seed)`` trained by ``nnopt.train.fit(..., epochs, batch_size,
seed=seed)`` on ``load_digits(seed=0)`` -- and compares: a reported number counts only if it
is reproducible. Tolerances: accuracies within :data:`ACC_TOL`, the final training loss
within :data:`LOSS_RTOL` relative (float32 training, possibly another BLAS thread count).

``check_benchmark(..., rerun="best")`` (the visible test) re-runs the best row only, so
running the notebook stays fast; ``rerun="all"`` (the hidden test) re-runs every row at
autograde (a trusted :class:`~.outcome.Context`). When the notebook runs with instant
feedback (the reference process, an untrusted context), ``rerun="all"`` re-runs only the
spot-check row (:func:`spot_check`, the best row) and its message says that every row is
re-run at grading. To keep grading affordable the lab limits a benchmark to
:data:`MAX_ROWS` rows and batch sizes to ``None`` or at least :data:`MIN_BATCH`.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from . import record
from .answers import as_array, quiet_numerics
from .checks import check, compare
from .outcome import AnswerError, Context, Verdict, numbers
from .spec import GradingError, Spec, canonical

ACC_TOL, LOSS_RTOL = 0.01, 1e-3
MAX_ROWS, MIN_BATCH = 12, 16
ADAPTIVE = ("adagrad", "rmsprop", "adadelta", "adam", "adamax")
_DATA: dict[str, Any] = {}


def digits() -> Any:
    """``nnopt.data.load_digits(seed=0)``, loaded once per process."""
    if "digits" not in _DATA:
        from ..data import load_digits
        _DATA["digits"] = load_digits(seed=0)
    return _DATA["digits"]


# ----------------------------------------------------------------- in the kernel
def row_numbers(row: Any, what: str = "the row") -> dict[str, Any]:
    """A row's settings and numbers as record data; GradingError naming what is missing."""
    if not isinstance(row, Mapping):
        raise GradingError(f"{what} must be a dict, got a {type(row).__name__}")
    missing = [k for k in ("name", "strategy", "epochs", "seed", "train_loss", "val_acc", "curve")
               if k not in row]
    if missing:
        raise GradingError(f"{what} has no {missing} (keys: {sorted(map(str, row))})")
    s = row["strategy"]
    if not isinstance(s, Mapping) or not {"optimizer", "hp", "batch_size"} <= set(s):
        raise GradingError(f"{what}: 'strategy' must be a dict with 'optimizer', 'hp' and 'batch_size'")
    try:
        strategy = canonical({"optimizer": str(s["optimizer"]), "hp": dict(s["hp"]),
                              "batch_size": s["batch_size"]}, f"{what}['strategy']")
    except ValueError as exc:
        raise GradingError(str(exc)) from None
    return {"name": str(row["name"])[:100], "strategy": strategy,
            "epochs": as_array(row["epochs"], f"{what}['epochs']", ()).item(),
            "seed": as_array(row["seed"], f"{what}['seed']", ()).item(),
            "train_loss": record.encode(as_array(row["train_loss"], f"{what}['train_loss']", ())),
            "val_acc": record.encode(as_array(row["val_acc"], f"{what}['val_acc']", ())),
            "curve": record.encode(as_array(row["curve"], f"{what}['curve']").reshape(-1))}


def rows_numbers(results: Any) -> list[dict[str, Any]]:
    if not isinstance(results, Sequence) or isinstance(results, (str, bytes)):
        raise GradingError(f"results must be a list of rows, got a {type(results).__name__}")
    if len(results) > MAX_ROWS:
        raise GradingError(f"the benchmark has {len(results)} rows; at most {MAX_ROWS} (the grader "
                           "re-runs every one)")
    return [row_numbers(r, f"row {i}") for i, r in enumerate(results)]


def _run_strategy_answer(run_strategy: Any, a: dict[str, Any]) -> dict[str, Any]:
    strategy = {"name": a["name"], **json.loads(json.dumps(a["strategy"]))}
    with quiet_numerics():
        row = run_strategy(strategy, digits(), a["epochs"], seed=a["seed"])
    return {"row": row_numbers(row)}


def check_run_strategy(run_strategy: Any, name: str, strategy: Mapping[str, Any], epochs: int,
                       seed: int = 0, why: str = "") -> None:
    """Call ``run_strategy({"name": name, **strategy}, data, epochs, seed=seed)`` and have the
    grader re-train the same strategy: the row must state it and reproduce its numbers."""
    check(check_run_strategy, "run_strategy", _run_strategy_answer,
          (run_strategy, name, strategy, epochs, seed, why), {})


def compare_run_strategy(*args: Any, **kwargs: Any) -> tuple[bool, str]:
    """:func:`check_run_strategy` returning ``(ok, message)``."""
    return compare(check_run_strategy, "run_strategy", _run_strategy_answer, args, kwargs)


def check_benchmark(results: Any, epochs: int, min_rows: int = 6, min_best_acc: float = 0.95,
                    rerun: str = "best", why: str = "") -> None:
    """The benchmark rows: coverage of the strategies the lab asks for, ``epochs`` each, the
    best reaching ``min_best_acc``; the grader re-runs the ``"best"`` row or ``"all"`` rows."""
    check(check_benchmark, "benchmark", lambda res, a: {"rows": rows_numbers(res)},
          (results, epochs, min_rows, min_best_acc, rerun, why), {})


# ----------------------------------------------------------------- on the grader's side
def retrain(context: Context, strategy: Mapping[str, Any], epochs: int, seed: int) -> dict[str, Any]:
    """The lab's training run for these settings (cached per grading context)."""
    key = json.dumps(["train", strategy, epochs, seed], sort_keys=True)
    if key not in context.cache:
        from ..models import default_mlp
        from ..optimizers import make_optimizer
        from ..train import fit
        with quiet_numerics():
            h = fit(default_mlp(seed=seed), make_optimizer(strategy["optimizer"], **strategy["hp"]), digits(),
                    epochs=epochs, batch_size=strategy["batch_size"], seed=seed, progress=False)
        context.cache[key] = {"train_loss": float(h.train_loss[-1]), "val_acc": float(h.val_acc[-1]),
                              "curve": [float(v) for v in h.val_acc]}
    return context.cache[key]


def strategy_problem(strategy: Any) -> str:
    """Why the grader cannot re-run ``strategy`` (empty if it can)."""
    from ..optimizers import OPTIMIZERS
    if not isinstance(strategy, Mapping) or str(strategy.get("optimizer")) not in OPTIMIZERS:
        return f"the optimizer must be one of {sorted(OPTIMIZERS)}"
    hp = strategy.get("hp")
    if not isinstance(hp, Mapping) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in hp.values()):
        return "'hp' must map hyperparameter names to numbers"
    bs = strategy.get("batch_size")
    if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < MIN_BATCH):
        return f"batch_size must be None (full batch) or an integer >= {MIN_BATCH}"
    return ""


def _row(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise AnswerError(f"{what} is not a dict")
    out = {k: raw.get(k) for k in ("name", "strategy", "epochs", "seed")}
    for k in ("train_loss", "val_acc"):
        out[k] = float(numbers(raw, k, ndim=0))
    out["curve"] = numbers(raw, "curve", ndim=1).tolist()
    return out


def reproduce(context: Context, row: Mapping[str, Any], what: str) -> str:
    """Re-run a row's stated settings; '' if its numbers are reproduced, else why not."""
    problem = strategy_problem(row["strategy"])
    seed = row["seed"]
    if not problem and (isinstance(seed, bool) or not isinstance(seed, (int, float)) or seed != int(seed)):
        problem = "its seed must be an integer"
    if problem:
        return f"{what} cannot be re-run: {problem}"
    try:
        ref = retrain(context, row["strategy"], int(row["epochs"]), int(seed))
    except ValueError as exc:                       # e.g. a hyperparameter the optimizer lacks
        return f"{what} cannot be re-run: {exc}"
    label = f"{what} ({row['strategy']['optimizer']}, {row['strategy']['hp']}, batch_size={row['strategy']['batch_size']}, seed {int(seed)})"
    if not abs(row["val_acc"] - ref["val_acc"]) <= ACC_TOL:
        return f"{label}: re-run by the grader, the validation accuracy is {ref['val_acc']:.4f}, the row says {row['val_acc']!r}"
    if not abs(row["train_loss"] - ref["train_loss"]) <= LOSS_RTOL * abs(ref["train_loss"]):
        return f"{label}: re-run by the grader, the final training loss is {ref['train_loss']:.6g}, the row says {row['train_loss']!r}"
    if len(row["curve"]) != len(ref["curve"]) or any(abs(a - b) > ACC_TOL for a, b in zip(row["curve"], ref["curve"])):
        return f"{label}: re-run by the grader, the curve is {[round(v, 4) for v in ref['curve']]}, the row says {[round(v, 4) for v in row['curve']]}"
    return ""


TOLERANCE_NOTE = f"(re-run by the grader: accuracies within +-{ACC_TOL}, the loss within {LOSS_RTOL:.1%})"


def _judge_run_strategy(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    a = spec.args
    row = _row(answer.get("row"), "the row")
    label = f"run_strategy({a['name']!r}, {a['strategy']}, epochs={a['epochs']}, seed={a['seed']})"
    for key, want in (("name", a["name"]), ("strategy", a["strategy"]), ("epochs", a["epochs"]), ("seed", a["seed"])):
        if row[key] != want:
            return Verdict(False, f"{label}: the row's {key!r} should be {want!r}, it is {row[key]!r}")
    if len(row["curve"]) != a["epochs"] + 1:
        return Verdict(False, f"{label}: 'curve' needs {a['epochs'] + 1} entries (the untrained network "
                       f"plus one per epoch), it has {len(row['curve'])}")
    problem = reproduce(context, row, "the row")
    if problem:
        return Verdict(False, f"{label}: {problem}\n  {TOLERANCE_NOTE}")
    return Verdict(True, f"{label}: the row is reproduced by the grader {TOLERANCE_NOTE}")


def _coverage(rows: list[dict[str, Any]], a: Mapping[str, Any]) -> str:
    names = [r["name"] for r in rows]
    opts = {str((r["strategy"] or {}).get("optimizer")) for r in rows}
    sgd_batches = {(r["strategy"] or {}).get("batch_size") for r in rows if (r["strategy"] or {}).get("optimizer") == "sgd"}
    rules = [(len(rows) >= a["min_rows"], f"benchmark at least {a['min_rows']} strategies, found {len(rows)}"),
             (len(set(names)) == len(names), f"strategy names must be distinct: {names}"),
             (None in sgd_batches, "include full-batch gradient descent (optimizer 'sgd', batch_size None)"),
             (bool(sgd_batches - {None}), "include minibatch SGD (optimizer 'sgd' with a batch size)"),
             (bool(opts & {"momentum", "nesterov"}), "include momentum or Nesterov momentum"),
             (len(opts & set(ADAPTIVE)) >= 2, f"include at least two adaptive methods of {ADAPTIVE}, found "
              f"{sorted(opts & set(ADAPTIVE))}"),
             (all(r["epochs"] == a["epochs"] for r in rows), f"train every strategy for {a['epochs']} epochs (EPOCHS)"),
             (all(0.0 <= r["val_acc"] <= 1.0 for r in rows), "accuracies lie in [0, 1]")]
    return next((text for ok, text in rules if not ok), "")


def _judge_benchmark(spec: Spec, answer: dict[str, Any], context: Context) -> Verdict:
    a = spec.args
    raw = answer.get("rows")
    if not isinstance(raw, list) or len(raw) > MAX_ROWS:
        raise AnswerError(f"'rows' must be a list of at most {MAX_ROWS} rows")
    rows = [_row(r, f"row {i}") for i, r in enumerate(raw)]
    problem = _coverage(rows, a)
    if problem:
        return Verdict(False, f"the benchmark: {problem}")
    best = spot_check(rows)
    every = a["rerun"] == "all" and context.trusted
    note = spot_check_note(len(rows)) if a["rerun"] == "all" and not every else ""
    for i in range(len(rows)) if every else [best]:
        problem = reproduce(context, rows[i], f"row {i} {rows[i]['name']!r}")
        if problem:
            return Verdict(False, f"the benchmark: {problem}\n  {TOLERANCE_NOTE}{note}")
    if rows[best]["val_acc"] < a["min_best_acc"]:
        return Verdict(False, f"the benchmark: the best strategy ({rows[best]['name']!r}) reaches only "
                       f"{rows[best]['val_acc']:.3f}; at least {a['min_best_acc']} is expected")
    which = "every row" if every else f"the best row ({rows[best]['name']!r})"
    return Verdict(True, f"the benchmark covers the strategies asked for; {which} reproduced by the grader "
                   f"{TOLERANCE_NOTE}{note}")


def spot_check(rows: Sequence[Mapping[str, Any]]) -> int:
    """The row re-run when not every row is: the best validation accuracy (the first if tied)."""
    return max(range(len(rows)), key=lambda i: float(rows[i]["val_acc"]))


def spot_check_note(n_rows: int) -> str:
    """What an instant-feedback verdict of an every-row check did not check."""
    return (f"\n  (instant feedback: only the best row was re-run now; the other {n_rows - 1} rows were "
            "not re-run, so their numbers are not yet checked against the grader's training -- at "
            "grading every row is re-run)")


JUDGES = {"run_strategy": _judge_run_strategy, "benchmark": _judge_benchmark}
