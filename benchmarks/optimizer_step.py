"""Step time of every nnopt optimizer vs torch.optim (foreach, CPU), plus memory behaviour.

For n = 1e5, 1e6, 1e7 float32 parameters (split over 4 arrays, like a small network) it
measures, with 1 and with 2 threads (numpy/BLAS via threadpoolctl, torch via
set_num_threads):

* the median step time of nnopt and of the torch.optim peer with the same math
  (torch-matching flags, e.g. ``eps_inside_sqrt=False``) and their ratio;
* the achieved bandwidth: the bytes an ideal single-pass update must move,
  ``(3 n + 2 s) * 4`` with ``s`` state entries (read p and g, write p, read+write the
  state), divided by the step time, as a fraction of a measured ``np.copyto`` bandwidth;
* the peak memory a step allocates after warm-up (tracemalloc; numpy reports its
  buffers to it): it must stay a fixed, small amount, not grow with n.

Target (issue 3): ratio <= 1.5 at n >= 1e6. Usage:
``python benchmarks/optimizer_step.py [--sizes 1e5 1e6 1e7] [--optimizers muon ...] [--out benchmarks/results]
[--name optimizer_step]``

The optimizers of 2023-2025 (issue 14): Muon and Adafactor against ``torch.optim.Muon`` and
``torch.optim.Adafactor`` (target: ratio <= 1.5 at 1e6, 1 thread), on four matrices of
about n entries in total (they treat matrices differently from vectors). Torch's Muon runs
Newton-Schulz in bfloat16, which on a CPU without bfloat16 units is ~40x slower than
float32, so its peer is torch's own Muon with that cast removed (the same float32 math as
ours); torch as shipped is measured once per size <= 1e6 and listed below the table. Muon is
measured up to 2e6 parameters (Newton-Schulz is O(d^3): one step at 1e7 takes seconds).
Lion and Schedule-Free AdamW/SGD, which torch does not have, against their reference
packages (``lion_pytorch``'s foreach Lion, ``schedulefree`` with its default foreach=True).
"""
from __future__ import annotations

import contextlib
import os
import statistics
import tracemalloc

import numpy as np
import schedulefree
import torch
from lion_pytorch.foreach import Lion as LionForeach
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
    "lion": ({"lr": 1e-4}, lambda p: LionForeach(p, lr=1e-4)),
    "schedulefree_sgd": ({"lr": 1.0}, lambda p: _train_mode(schedulefree.SGDScheduleFree(p, lr=1.0))),
    "schedulefree_adamw": ({}, lambda p: _train_mode(schedulefree.AdamWScheduleFree(p))),
    "muon": ({}, lambda p: torch.optim.Muon(p)),
    "adafactor": ({}, lambda p: torch.optim.Adafactor(p, foreach=True)),
}
PEER_NOTE = {
    "rmsprop_nesterov": "peer: torch RMSprop(momentum=0.9) (heavy-ball; no Nesterov variant)",
    "lion": "peer: lion_pytorch 0.2.5 foreach Lion (torch.optim has no Lion)",
    "schedulefree_sgd": "peer: schedulefree 1.4.1 SGDScheduleFree (foreach)",
    "schedulefree_adamw": "peer: schedulefree 1.4.1 AdamWScheduleFree (foreach)",
    "muon": "peer: torch.optim.Muon with Newton-Schulz in float32 (its bfloat16 cast removed: the same "
            "math as nnopt); four matrices (2d x d, d x d, d x d, d x 2d); compute-bound (matrix products), "
            "so no bandwidth figures; Newton-Schulz runs in scratch buffers kept by the optimizer (a step "
            "allocates a fixed ~70 kB whatever n); measured up to n = 2e6 (one step at 1e7 takes seconds)",
    "adafactor": "peer: torch.optim.Adafactor(foreach=True); four matrices as for muon (factored moments)",
}
#: optimizers measured on matrices (their state and update depend on the shape)
ON_MATRICES = ("muon", "adafactor")
COMPUTE_BOUND = ("muon",)
#: Newton-Schulz costs O(d^3) per matrix: at 1e7 parameters one Muon step takes seconds
MAX_N = {"muon": 2e6}


def _train_mode(opt):
    """schedulefree's optimizers refuse to step before ``train()``."""
    opt.train()
    return opt


@contextlib.contextmanager
def _float32_newton_schulz():
    """Run torch.optim.Muon's Newton-Schulz in the parameter dtype instead of bfloat16."""
    cast = torch.Tensor.bfloat16
    torch.Tensor.bfloat16 = lambda self: self.clone()
    try:
        yield
    finally:
        torch.Tensor.bfloat16 = cast


def _split(n: int) -> list[int]:
    sizes = [n // 2, n // 4, n // 8]
    return sizes + [n - sum(sizes)]


def _matrices(n: int) -> list[tuple[int, int]]:
    """Four matrices of about n entries: 2d x d, d x d, d x d, d x 2d (6 d^2 = n)."""
    d = max(1, round((n / 6) ** 0.5))
    return [(2 * d, d), (d, d), (d, d), (d, 2 * d)]


def shapes_for(name: str, n: int) -> list[tuple[int, ...]]:
    return _matrices(n) if name in ON_MATRICES else [(k,) for k in _split(n)]


def state_numel(name: str, shapes: list[tuple[int, ...]]) -> int:
    """Entries of optimizer state for these parameter shapes (nnopt's layout)."""
    opt = nnopt.make_optimizer(name, **PEERS[name][0])
    return sum(int(np.prod(s)) for shape in shapes for s in opt.state_shapes(shape).values())


def copy_bandwidth(n: int, reps: int) -> float:
    """Bytes/s of np.copyto on n float32 (read n*4 + write n*4 bytes)."""
    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    return 8 * n / statistics.median(interleaved({"copy": lambda: np.copyto(dst, src)}, reps, warmup=2)["copy"])


def measure(name: str, n: int, threads: int, reps: int, shipped: bool = False) -> dict:
    """Median step times of nnopt and its peer, interleaved (``shipped``: torch's Muon with
    its bfloat16 cast, timed alone)."""
    hp, factory = PEERS[name]
    rng = np.random.default_rng(0)
    shapes = shapes_for(name, n)
    params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) * np.float32(1e-3) for s in shapes]
    opt = nnopt.make_optimizer(name, **hp)
    tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    for tp, g in zip(tparams, grads):
        tp.grad = torch.from_numpy(g.copy())
    topt = factory(tparams)
    peer_math = contextlib.nullcontext if shipped or name != "muon" else _float32_newton_schulz

    def peer() -> None:
        with peer_math():
            topt.step()

    torch.set_num_threads(threads)
    with threadpool_limits(threads), torch.no_grad():
        fns = {"torch": peer} if shipped else {"ours": lambda: opt.step(params, grads), "torch": peer}
        times = interleaved(fns, reps, warmup=2)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_step_allocation(name: str, n: int) -> int:
    """Peak bytes allocated during one step after warm-up (tracemalloc)."""
    hp, _ = PEERS[name]
    params = [np.ones(s, np.float32) for s in shapes_for(name, n)]
    grads = [np.full(s, 1e-3, np.float32) for s in shapes_for(name, n)]
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
    ap.add_argument("--name", default="optimizer_step", help="results file name (e.g. for a subset)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes]
    load_start = round(os.getloadavg()[0], 2)      # other work on the machine makes every timing noisier
    rows = []
    bandwidth = {n: copy_bandwidth(n, 30 if n < 5e6 else 8) for n in sizes}
    for n in sizes:
        for name in args.optimizers:
            if n > MAX_N.get(name, n):
                continue
            shapes = shapes_for(name, n)
            size = sum(int(np.prod(s)) for s in shapes)
            reps = 40 if size <= 1e5 else 15 if size <= 1.5e6 else 5 if name not in COMPUTE_BOUND else 3
            row = {"optimizer": name, "n": size, "shapes": shapes}
            for threads in (1, 2):
                m = measure(name, n, threads, reps)
                row[f"ours_ms_{threads}t"] = 1e3 * m["ours"]
                row[f"torch_ms_{threads}t"] = 1e3 * m["torch"]
                row[f"ratio_{threads}t"] = m["ours"] / m["torch"]
            if name not in COMPUTE_BOUND:      # (compute-bound updates spend their time in matrix products)
                ideal_bytes = (3 * size + 2 * state_numel(name, shapes)) * 4
                row["achieved_GBps"] = ideal_bytes / (row["ours_ms_1t"] / 1e3) / 1e9
                row["copy_fraction"] = ideal_bytes / (row["ours_ms_1t"] / 1e3) / bandwidth[n]
            if name == "muon" and size <= 1.5e6:
                row["torch_shipped_ms_1t"] = 1e3 * measure(name, n, 1, 2, shipped=True)["torch"]
            row["peak_step_alloc_bytes"] = peak_step_allocation(name, n)
            rows.append(row)
            print(f"{name:18s} n={size:>9,d}  1t: {row['ours_ms_1t']:8.2f} ms vs torch "
                  f"{row['torch_ms_1t']:8.2f} ms (x{row['ratio_1t']:.2f})  2t: x{row['ratio_2t']:.2f}  "
                  f"peak alloc {row['peak_step_alloc_bytes']:,d} B", flush=True)
    write(rows, bandwidth, args.out, load_start, args.name)


def write(rows: list[dict], bandwidth: dict, out, load_start: float, name: str = "optimizer_step") -> None:
    meta = machine(torch=torch.__version__, load_average_start=load_start,
                   copyto_GBps={str(n): b / 1e9 for n, b in bandwidth.items()})
    columns = [("optimizer", "optimizer", "{}"), ("n", "n", "{:.2e}"), ("nnopt ms 1t", "ours_ms_1t", "{:.2f}"),
               ("torch ms 1t", "torch_ms_1t", "{:.2f}"), ("ratio 1t", "ratio_1t", "{:.2f}"),
               ("nnopt ms 2t", "ours_ms_2t", "{:.2f}"), ("torch ms 2t", "torch_ms_2t", "{:.2f}"),
               ("ratio 2t", "ratio_2t", "{:.2f}"), ("GB/s", "achieved_GBps", "{:.1f}"),
               ("of copy", "copy_fraction", "{:.0%}"), ("peak alloc B", "peak_step_alloc_bytes", "{:,d}")]
    notes = ["np.copyto bandwidth: " + ", ".join(f"n={n:,d}: {b / 1e9:.1f} GB/s" for n, b in bandwidth.items()),
             f"load average {load_start} at the start and {meta['load_average']} at the end on {meta['cpus']} "
             "CPUs (above the CPU count, other processes share the cores and 2-thread timings suffer most)",
             "ratio = nnopt time / torch time, medians of interleaved steps (lower is better; target <= 1.5 at "
             "n >= 1e6). 'of copy' = ideal single-pass traffic / time, relative to np.copyto. 'peak alloc' = "
             "bytes a step allocates after warm-up (tracemalloc)."]
    names = {r["optimizer"] for r in rows}
    footer = [f"* {k}: {v}" for k, v in PEER_NOTE.items() if k in names]
    footer += [f"* muon at n={r['n']:,d}: torch.optim.Muon as shipped (bfloat16 Newton-Schulz) "
               f"{r['torch_shipped_ms_1t']:.0f} ms per step with 1 thread, "
               f"{r['torch_shipped_ms_1t'] / r['ours_ms_1t']:.0f}x nnopt's time" for r in rows if "torch_shipped_ms_1t" in r]
    write_results(name, out, rows, title="Optimizer step: nnopt vs torch.optim (foreach, CPU, float32)",
                  columns=columns, meta=meta, notes=notes, footer=footer)


if __name__ == "__main__":
    main()
