"""Learning rates for ``nnopt.experiments.GOOD_LRS``: a sweep on the kit's default task.

Task: the default MLP (:func:`nnopt.experiments.default_model`) on the digits, minibatches of
32, 5 epochs, seeds 0, 1, 2 -- the settings of :func:`nnopt.experiments.run`, on which
``GOOD_LRS`` is used (comparisons, the training race and its explorer). Each optimizer keeps
every default except ``lr``, which runs over a half-decade grid from 1e-4 to 3 (Schedule-Free
evaluated at its average x, as ``fit`` does). The chosen rate is the one with the lowest mean
validation loss over the seeds among the rates at which no seed diverged; the table also shows
its neighbours' losses (a flat valley means the choice matters little).

Adam, whose row was chosen earlier from lecture 06's sweeps, is run too as a check of the
protocol. ``tests/test_experiments.py`` checks that ``GOOD_LRS`` holds the chosen rates of
``results/good_lrs.json`` for the optimizers swept here. Usage:
``python benchmarks/good_lrs.py [--optimizers lion muon ...] [--out benchmarks/results]``
(about 200 short training runs: 1-3 minutes).
"""
from __future__ import annotations

import math

from _bench import machine, parser, write_results

from nnopt import experiments

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
OPTIMIZERS = ("adam", "lion", "schedulefree_sgd", "schedulefree_adamw", "muon", "adafactor")


def best_rate(rows: list[dict]) -> dict:
    """The row of lowest mean validation loss among rates where no seed diverged."""
    ok = [r for r in rows if r["diverged"] == 0 and math.isfinite(r["val_loss_mean"])]
    return min(ok, key=lambda r: r["val_loss_mean"])


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    args = ap.parse_args()
    sweep = experiments.lr_sweep(args.optimizers, lrs=GRID, progress=False)
    table = sweep.summary()
    rows = []
    for name in args.optimizers:
        mine = sorted((r for r in table if r["optimizer"] == name), key=lambda r: r["lr"])
        best = best_rate(mine)
        i = mine.index(best)
        rows.append({"optimizer": name, "best_lr": best["lr"], "good_lr": experiments.GOOD_LRS.get(name),
                     "val_loss_mean": best["val_loss_mean"], "val_loss_std": best["val_loss_std"],
                     "val_acc_mean": best["val_acc_mean"],
                     "val_loss_lower_lr": mine[i - 1]["val_loss_mean"] if i > 0 else None,
                     "val_loss_higher_lr": mine[i + 1]["val_loss_mean"] if i + 1 < len(mine) else None,
                     "diverged_rates": [r["lr"] for r in mine if r["diverged"]],
                     "grid": [r["lr"] for r in mine], "val_loss_by_lr": [r["val_loss_mean"] for r in mine]})
        print(f"{name:20s} best lr {best['lr']:g}  val loss {best['val_loss_mean']:.4f}", flush=True)
    columns = [("optimizer", "optimizer", "{}"), ("best lr", "best_lr", "{:g}"), ("GOOD_LRS", "good_lr", "{:g}"),
               ("val loss (mean)", "val_loss_mean", "{:.4f}"), ("std", "val_loss_std", "{:.4f}"),
               ("val acc", "val_acc_mean", "{:.3f}"), ("val loss at lr / 3.3", "val_loss_lower_lr", "{:.4f}"),
               ("val loss at lr x 3.3", "val_loss_higher_lr", "{:.4f}"), ("diverged at", "diverged_rates", "{}")]
    notes = [f"grid {list(GRID)}; seeds {list(experiments.SEEDS)}, {experiments.EPOCHS} epochs, batch "
             f"{experiments.BATCH_SIZE}, default MLP on digits; every other hyperparameter at its default. "
             "'best lr' = lowest mean validation loss among rates where no seed diverged; 'GOOD_LRS' = the "
             "table's value when this ran (it must equal 'best lr' for the optimizers of issue 14)."]
    write_results("good_lrs", args.out, rows, title="Learning rates for GOOD_LRS (sweep on the digits MLP)",
                  columns=columns, meta=machine(), notes=notes)


if __name__ == "__main__":
    main()
