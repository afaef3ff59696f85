"""Step time of every nnopt optimizer vs torch.optim (foreach, CPU), plus memory behaviour.

For n = 1e5, 1e6, 1e7 float32 parameters (split over 4 arrays, like a small network) it
measures, with 1 and with 2 threads (numpy/BLAS via threadpoolctl, torch via
set_num_threads):

* the median step time of nnopt and of the torch.optim peer with the same math
  (torch-matching flags, e.g. ``eps_inside_sqrt=False``) and their ratio;
* the achieved bandwidth: the bytes an ideal single-pass update must move,
  ``(3 + 2*slots) * 4 * n`` (read p and g, write p, read+write each state array),
  divided by the step time, as a fraction of a measured ``np.copyto`` bandwidth;
* the peak memory a step allocates after warm-up (tracemalloc; numpy reports its
  buffers to it): it must stay a fixed, small amount, not grow with n.

Target (issue 3): ratio <= 1.5 at n >= 1e6. Usage:
``python benchmarks/optimizer_step.py [--sizes 1e5 1e6 1e7] [--out benchmarks/results]``
"""
from __future__ import annotations

import statistics
import tracemalloc

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import nnopt
from _bench import interleaved, machine, parser, write_results

# name -> (nnopt kwargs, torch factory). Hyperparameters chosen so both do the same math.
PEERS = {
    "sgd": ({"lr": 1e-3}, lambda p: torch.optim.SGD(p, lr=1e-3, foreach=True)),
    "momentum": ({"lr": 1e-3}, lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, foreach=True)),
    "nesterov": ({"lr": 1e-3}, lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, nesterov=True,
                                                         foreach=True)),
    "adagrad": ({"lr": 1e-2, "eps": 1e-10}, lambda p: torch.optim.Adagrad(p, lr=1e-2, foreach=True)),
    "rmsprop": ({"lr": 1e-3, "rho": 0.99, "eps": 1e-8, "eps_inside_sqrt": False},
                lambda p: torch.optim.RMSprop(p, lr=1e-3, foreach=True)),
    "rmsprop_nesterov": ({"lr": 1e-3, "rho": 0.99, "eps": 1e-8, "eps_inside_sqrt": False},
                         lambda p: torch.optim.RMSprop(p, lr=1e-3, momentum=0.9, foreach=True)),
    "adadelta": ({"lr": 1.0, "rho": 0.9}, lambda p: torch.optim.Adadelta(p, foreach=True)),
    "adam": ({"lr": 1e-3, "eps_inside_sqrt": False}, lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
    "adamax": ({}, lambda p: torch.optim.Adamax(p, foreach=True)),
    "adamw": ({}, lambda p: torch.optim.AdamW(p, foreach=True)),
    "nadam": ({}, lambda p: torch.optim.NAdam(p, foreach=True)),
    "amsgrad": ({}, lambda p: torch.optim.Adam(p, amsgrad=True, foreach=True)),
}
PEER_NOTE = {"rmsprop_nesterov": "peer: torch RMSprop(momentum=0.9) (heavy-ball; no Nesterov variant)"}


def _split(n: int) -> list[int]:
    sizes = [n // 2, n // 4, n // 8]
    return sizes + [n - sum(sizes)]


def copy_bandwidth(n: int, reps: int) -> float:
    """Bytes/s of np.copyto on n float32 (read n*4 + write n*4 bytes)."""
    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    return 8 * n / statistics.median(interleaved({"copy": lambda: np.copyto(dst, src)}, reps, warmup=2)["copy"])


def measure(name: str, n: int, threads: int, reps: int) -> dict:
    hp, factory = PEERS[name]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(k, dtype=np.float32) for k in _split(n)]
    grads = [rng.standard_normal(k, dtype=np.float32) * np.float32(1e-3) for k in _split(n)]
    opt = nnopt.make_optimizer(name, **hp)
    tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.from_numpy(g.copy())
    topt = factory(tparams)
    torch.set_num_threads(threads)
    with threadpool_limits(threads), torch.no_grad():
        times = interleaved({"ours": lambda: opt.step(params, grads), "torch": topt.step}, reps, warmup=2)
    return {"ours": statistics.median(times["ours"]), "torch": statistics.median(times["torch"]),
            "slots": len(opt.slots)}


def peak_step_allocation(name: str, n: int) -> int:
    """Peak bytes allocated during one step after warm-up (tracemalloc)."""
    hp, _ = PEERS[name]
    params = [np.ones(k, np.float32) for k in _split(n)]
    grads = [np.full(k, 1e-3, np.float32) for k in _split(n)]
    opt = nnopt.make_optimizer(name, **hp)
    opt.step(params, grads)
    opt.step(params, grads)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    opt.step(params, grads)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    ap.add_argument("--optimizers", nargs="+", default=list(PEERS))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes]
    rows = []
    bandwidth = {n: copy_bandwidth(n, 30 if n < 5e6 else 8) for n in sizes}
    for n in sizes:
        reps = 40 if n <= 1e5 else 15 if n <= 1e6 else 5
        for name in args.optimizers:
            row = {"optimizer": name, "n": n}
            for threads in (1, 2):
                m = measure(name, n, threads, reps)
                row[f"ours_ms_{threads}t"] = 1e3 * m["ours"]
                row[f"torch_ms_{threads}t"] = 1e3 * m["torch"]
                row[f"ratio_{threads}t"] = m["ours"] / m["torch"]
                if threads == 1:
                    ideal_bytes = (3 + 2 * m["slots"]) * 4 * n
                    row["achieved_GBps"] = ideal_bytes / m["ours"] / 1e9
                    row["copy_fraction"] = ideal_bytes / m["ours"] / bandwidth[n]
            row["peak_step_alloc_bytes"] = peak_step_allocation(name, n)
            rows.append(row)
            print(f"{name:17s} n={n:>9,d}  1t: {row['ours_ms_1t']:8.2f} ms vs torch "
                  f"{row['torch_ms_1t']:8.2f} ms (x{row['ratio_1t']:.2f})  2t: x{row['ratio_2t']:.2f}  "
                  f"peak alloc {row['peak_step_alloc_bytes']:,d} B", flush=True)
    write(rows, bandwidth, args.out)


def write(rows: list[dict], bandwidth: dict, out) -> None:
    meta = machine(torch=torch.__version__, copyto_GBps={str(n): b / 1e9 for n, b in bandwidth.items()})
    columns = [("optimizer", "optimizer", "{}"), ("n", "n", "{:.0e}"), ("nnopt ms 1t", "ours_ms_1t", "{:.2f}"),
               ("torch ms 1t", "torch_ms_1t", "{:.2f}"), ("ratio 1t", "ratio_1t", "{:.2f}"),
               ("nnopt ms 2t", "ours_ms_2t", "{:.2f}"), ("torch ms 2t", "torch_ms_2t", "{:.2f}"),
               ("ratio 2t", "ratio_2t", "{:.2f}"), ("GB/s", "achieved_GBps", "{:.1f}"),
               ("of copy", "copy_fraction", "{:.0%}"), ("peak alloc B", "peak_step_alloc_bytes", "{:,d}")]
    notes = ["np.copyto bandwidth: " + ", ".join(f"n={n:,d}: {b / 1e9:.1f} GB/s" for n, b in bandwidth.items()),
             "ratio = nnopt time / torch time, medians of interleaved steps (lower is better; target <= 1.5 at "
             "n >= 1e6). 'of copy' = ideal single-pass traffic / time, relative to np.copyto. 'peak alloc' = "
             "bytes a step allocates after warm-up (tracemalloc)."]
    write_results("optimizer_step", out, rows, title="Optimizer step: nnopt vs torch.optim (foreach, CPU, float32)",
                  columns=columns, meta=meta, notes=notes, footer=[f"* {k}: {v}" for k, v in PEER_NOTE.items()])


if __name__ == "__main__":
    main()
