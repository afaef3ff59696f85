"""One training epoch of the kit's default MLP on digits: nnopt (numpy) vs an identical torch model.

Both sides: 64 -> 64 relu -> 10 softmax, float32, the same initial weights, the same
minibatch order (batch 32, 1257 training images = 40 steps), the same optimizer math
(nnopt flags chosen to match ``torch.optim``), 1 thread (numpy/BLAS via threadpoolctl,
torch via ``set_num_threads``). Two modes:

* ``loop`` -- the bare inner loop: minibatch, forward, backward, optimizer step;
* ``fit``  -- :func:`nnopt.train.fit` for one epoch, against a torch loop doing the same
  bookkeeping (per-step loss, learning rate and gradient norm; train and validation
  loss/accuracy at the end of the epoch).

Before timing, one epoch from the same start checks that both sides really compute the same
thing (largest parameter difference afterwards, float32 round-off only).

Target (issue 4): ratio = nnopt time / torch time <= 1.5. Writes
``benchmarks/results/train_epoch.md`` and ``train_epoch.json``. Usage:
``python benchmarks/train_epoch.py [--optimizers sgd momentum adam] [--reps 15] [--out DIR]``
"""
from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import nnopt
from _bench import interleaved, machine, median_ms, parser, ratio, write_results
from nnopt import data, models
from nnopt.train import fit

BATCH = 32
TARGET = 1.5

# name -> (nnopt optimizer, torch optimizer factory) with the same update rule.
PEERS = {
    "sgd": (lambda: nnopt.SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "momentum": (lambda: nnopt.Momentum(lr=0.03, momentum=0.9),   # v <- 0.9 v - lr g == torch's form for fixed lr
                 lambda p: torch.optim.SGD(p, lr=0.03, momentum=0.9)),
    "adam": (lambda: nnopt.Adam(lr=3e-3, eps_inside_sqrt=False), lambda p: torch.optim.Adam(p, lr=3e-3)),
}


class TorchRun:
    """The torch peer: same architecture and weights as an nnopt MLP, one epoch per call."""

    def __init__(self, model: models.MLP, ds: data.Dataset, make_optimizer):
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
        with torch.no_grad():
            for layer, l in ((self.net[0], 1), (self.net[2], 2)):
                layer.weight.copy_(torch.from_numpy(model.params[f"W{l}"].T.copy()))
                layer.bias.copy_(torch.from_numpy(model.params[f"b{l}"]))
        self.opt = make_optimizer(self.net.parameters())
        self.loss = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.from_numpy(ds.X_train), torch.from_numpy(ds.y_train)
        self.Xv, self.yv = torch.from_numpy(ds.X_val), torch.from_numpy(ds.y_val)

    def epoch(self, rng: np.random.Generator, log: bool) -> dict:
        order = torch.from_numpy(rng.permutation(len(self.y)))
        X, y = self.X[order], self.y[order]
        record = {"loss": [], "lr": [], "grad_norm": []}
        for start in range(0, len(y), BATCH):
            self.opt.zero_grad()
            loss = self.loss(self.net(X[start:start + BATCH]), y[start:start + BATCH])
            loss.backward()
            if log:
                record["loss"].append(loss.item())
                record["lr"].append(self.opt.param_groups[0]["lr"])
                record["grad_norm"].append(torch.sqrt(sum((p.grad ** 2).sum() for p in self.net.parameters())).item())
            self.opt.step()
        if log:
            with torch.no_grad():
                for name, (A, b) in {"train": (self.X, self.y), "val": (self.Xv, self.yv)}.items():
                    out = self.net(A)
                    record[name] = (self.loss(out, b).item(), (out.argmax(1) == b).float().mean().item())
        return record

    def flat(self) -> np.ndarray:
        net = self.net
        return np.concatenate([t.detach().numpy().ravel() for t in
                               (net[0].weight.T, net[0].bias, net[2].weight.T, net[2].bias)])


def nnopt_loop(model: models.MLP, optimizer, ds: data.Dataset, rng: np.random.Generator) -> None:
    for Xb, yb in data.minibatches(ds.X_train, ds.y_train, BATCH, seed=rng):
        _, grads = model.loss_and_grads(Xb, yb)
        optimizer.step(model.params, grads)


def same_math_check(name: str, ds: data.Dataset) -> float:
    """Largest |parameter difference| after one identical epoch (nnopt fit vs torch)."""
    make_ours, make_theirs = PEERS[name]
    model = models.default_mlp(seed=0)
    peer = TorchRun(model, ds, make_theirs)
    fit(model, make_ours(), ds, epochs=1, batch_size=BATCH, seed=0, progress=False)
    peer.epoch(np.random.default_rng(0), log=False)          # fit's first epoch uses this permutation
    return float(np.abs(model.get_flat() - peer.flat()).max())


def measure(name: str, ds: data.Dataset, reps: int) -> list[dict]:
    make_ours, make_theirs = PEERS[name]
    model = models.default_mlp(seed=0)
    peer = TorchRun(model, ds, make_theirs)
    optimizer = make_ours()
    rng_ours, rng_theirs = np.random.default_rng(1), np.random.default_rng(1)
    modes = {
        "loop": (lambda: nnopt_loop(model, optimizer, ds, rng_ours), lambda: peer.epoch(rng_theirs, log=False)),
        "fit": (lambda: fit(model, optimizer, ds, epochs=1, batch_size=BATCH, seed=rng_ours, progress=False),
                lambda: peer.epoch(rng_theirs, log=True)),
    }
    rows = []
    for mode, (ours, theirs) in modes.items():
        times = interleaved({"nnopt": ours, "torch": theirs}, reps)
        rows.append({"optimizer": name, "mode": mode, "nnopt_ms": median_ms(times["nnopt"]),
                     "torch_ms": median_ms(times["torch"]), "ratio": ratio(times, "nnopt", "torch")})
    return rows


def main() -> None:
    ap = parser(__doc__, reps=15)
    ap.add_argument("--optimizers", nargs="+", default=list(PEERS), choices=list(PEERS))
    args = ap.parse_args()
    ds = data.load_digits(seed=0, dtype=np.float32)
    torch.set_num_threads(1)
    rows = []
    with threadpool_limits(1):
        for name in args.optimizers:
            diff = same_math_check(name, ds)
            for row in measure(name, ds, args.reps):
                row["max_param_diff_after_epoch"] = diff
                rows.append(row)
                print(f"{name:9s} {row['mode']:5s} nnopt {row['nnopt_ms']:6.2f} ms  torch {row['torch_ms']:6.2f} ms"
                      f"  ratio {row['ratio']:.2f}  (max |dtheta| after one epoch {diff:.1e})", flush=True)
    write(rows, args.out)


def write(rows: list[dict], out) -> None:
    steps = -(-1257 // BATCH)
    meta = machine(torch=torch.__version__, threads=1, batch_size=BATCH, steps_per_epoch=steps,
                   model="64-64(relu)-10, float32", target_ratio=TARGET)
    notes = [f"Default MLP 64-64-10 (relu), batch {BATCH}, {steps} steps per epoch, median of repeated epochs "
             "(nnopt and torch alternating).",
             f"ratio = nnopt time / torch time (lower is better; target <= {TARGET}). `loop`: minibatch + forward + "
             "backward + step only; `fit`: nnopt.train.fit vs a torch loop with the same logging and end-of-epoch "
             "evaluation. `max |dθ|`: largest parameter difference after one epoch from the same start "
             "(same math, float32 round-off)."]
    columns = [("optimizer", "optimizer", "{}"), ("mode", "mode", "{}"), ("nnopt ms", "nnopt_ms", "{:.2f}"),
               ("torch ms", "torch_ms", "{:.2f}"), ("ratio", "ratio", "{:.2f}"),
               ("max \\|dθ\\|", "max_param_diff_after_epoch", "{:.1e}")]
    write_results("train_epoch", out, rows, title="One training epoch on digits: nnopt (numpy) vs torch "
                  "(CPU, 1 thread, float32)", columns=columns, meta=meta, notes=notes)


if __name__ == "__main__":
    main()
