"""The executor that runs INSIDE the sandbox: one notebook, one kernel, one result.

``sandbox.py`` starts it in bubblewrap as::

    python -E -s /sandbox/runner/sandbox_exec.py /sandbox/in/job.json  < notebook

where ``/sandbox/runner`` holds only this file and ``output_limits.py`` (the rest of
``autograder/`` is not mounted) and ``/sandbox/in`` is the job folder, read-only. The
notebook comes on stdin and is never written to disk inside: it holds the hidden tests,
and student code could read the file. Steps:

1. close every inherited descriptor but 0-2; keep the original stdout as the private
   **result channel** (a pipe read by the grader)
   and point fds 1 and 2 at the log pipe, so that nothing the kernel or its children write
   can reach the result; mark this process non-dumpable (no ``ptrace`` or
   ``/proc/<pid>/mem`` from student processes, which run as the same user);
2. apply the job's **limits** (``setrlimit``, inherited by the kernel and everything it
   starts): address space, CPU seconds per process, file size, number of tasks of this user
   in this sandbox (``RLIMIT_NPROC``; counted per user namespace, so every job has its own
   budget), no core files; and ``oom_score_adj = 1000`` so that, should the machine run out
   of memory, the kernel OOM killer takes a submission's process first;
3. copy the files the lab ships into the private, size-limited ``/sandbox/work`` and start
   the kernel there;
4. execute the notebook with nbclient (nbgrader's ``Execute`` settings, passed in the job),
   capping outputs per cell and per notebook **while it runs** (``output_limits``), so a
   200 MB ``print`` never accumulates here;
5. write ``{"status": "ok"|"error", "reason", "notebook", ...}`` as JSON to the result
   channel and exit; bubblewrap then kills every process left in the sandbox.

Only the standard library, nbformat, nbclient and this folder are imported.
"""
from __future__ import annotations

import ctypes
import faulthandler
import json
import os
import resource
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__:                  # imported as autograder.sandbox_exec (tests)
    from . import output_limits
else:                            # run as a script in the sandbox: the file next to this one
    import output_limits

# jsonschema (through nbformat) imports the optional rfc3987_syntax when installed, which
# builds a grammar at import time (~2 s of CPU per job); notebook validation never needs it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
PR_SET_DUMPABLE = 4
#: Seconds to wait for the rest of a cell's output once the kernel has replied (nbgrader's
#: default is 4): a 200 MB print takes longer than that to cross; the wall limit still holds.
IOPUB_FLOOR = 30
#: The error output nbgrader's Execute adds when the execute reply reports an error that
#: the cell's outputs do not show (mirrors ``nbgrader.preprocessors.Execute.on_cell_executed``).
SILENT_ERROR_TRACEBACK = "ERROR: An error occurred while showtraceback was disabled"


def _limit(which: int, soft: int, hard: int | None = None) -> None:
    resource.setrlimit(which, (soft, soft if hard is None else hard))


def apply_limits(limits: dict[str, int]) -> None:
    """setrlimit for this process and everything it starts (see the module docstring)."""
    _limit(resource.RLIMIT_AS, limits["memory"])
    _limit(resource.RLIMIT_CPU, limits["cpu_seconds"], limits["cpu_seconds"] + 5)
    _limit(resource.RLIMIT_FSIZE, limits["file_size"])
    _limit(resource.RLIMIT_NPROC, limits["processes"])
    _limit(resource.RLIMIT_CORE, 0)
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError as exc:
        print(f"sandbox_exec: could not raise oom_score_adj: {exc}", file=sys.stderr)


def _not_dumpable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy regular files and folders only (the grader staged them; no links are followed)."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in sorted(src.iterdir()):
        if item.is_symlink():
            continue
        if item.is_dir():
            _copy_tree(item, dest / item.name)
        elif item.is_file():
            shutil.copyfile(item, dest / item.name)


def _prepare_home(job_dir: Path, env: dict[str, str]) -> None:
    """Matplotlib's font list from the grader (or built now, outside the notebook), so that no
    cell prints "building the font cache" on stderr, which would cost a test cell its points."""
    config = Path(env["MPLCONFIGDIR"])
    config.mkdir(parents=True, exist_ok=True)
    cached = sorted((job_dir / "mpl").glob("fontlist-*.json")) if (job_dir / "mpl").is_dir() else []
    for path in cached:
        shutil.copyfile(path, config / path.name)
    if not cached:
        import matplotlib.font_manager  # noqa: F401 -- builds the cache in MPLCONFIGDIR


def _make_client(nb, job: dict[str, Any], workdir: Path):
    from nbclient import NotebookClient
    from nbformat import NotebookNode

    limits = job["output"]
    budget = output_limits.NotebookBudget(limits["cell_bytes"], limits["notebook_bytes"],
                                          limits["keep_mimetypes"])
    compact_at = 2 * limits["cell_bytes"]

    class CappedClient(NotebookClient):
        """nbclient with nbgrader's reply-error rule and byte caps applied as outputs arrive."""

        pending = 0
        kernel_process = None

        async def async_start_new_kernel(self, **kwargs):
            await super().async_start_new_kernel(**kwargs)
            self.kernel_process = getattr(getattr(self.km, "provisioner", None), "process", None)

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None:
                self.pending += output_limits.rough_bytes(out)
                if self.pending > compact_at:     # keep memory bounded during a flood
                    outs[:], _ = output_limits.cap_outputs(outs, limits["cell_bytes"], "cell",
                                                           budget.keep_mimetypes)
                    self.clear_display_id_mapping(cell_index)
                    self.pending = sum(map(output_limits.rough_bytes, outs))
            return out

        def on_cell_executed(self, **kwargs):          # replaces nbclient's hook trait
            cell, reply = kwargs["cell"], kwargs["execute_reply"]
            content = (reply or {}).get("content", {})
            if content.get("status") == "error" and not any(
                    o.get("output_type") == "error" and o.get("ename") == content.get("ename")
                    for o in cell.outputs):
                cell.outputs.append(NotebookNode(
                    output_type="error", ename=content.get("ename", ""), evalue=content.get("evalue", ""),
                    traceback=content.get("traceback") or [SILENT_ERROR_TRACEBACK]))
            cell.outputs = [NotebookNode(o) for o in budget.cap(kwargs["cell_index"], cell.outputs)]
            self.pending = 0

    options = {k: v for k, v in job["executor"].items() if v is not None}
    options["iopub_timeout"] = max(options.get("iopub_timeout") or 0, IOPUB_FLOOR)
    client = CappedClient(nb, resources={"metadata": {"path": str(workdir)}}, store_widget_state=False,
                          shutdown_kernel="immediate",
                          **options)
    return client, budget


def _kernel_exit(client) -> str:
    """How the kernel process ended, if it did (e.g. 'killed by SIGKILL')."""
    code = client.kernel_process.poll() if client.kernel_process is not None else None
    if code is None:
        return ""
    if code < 0:
        name = signal.Signals(-code).name
        hint = {"SIGKILL": " (out of memory, or killed by the notebook)",
                "SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)",
                "SIGSEGV": " (crashed)"}.get(name, "")
        return f"killed by {name}{hint}"
    return f"exited with code {code}"


def execute(job_dir: Path, notebook: str) -> dict[str, Any]:
    """Run ``notebook`` (JSON) as ``job_dir/job.json`` says; return the result record."""
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    job = json.loads((job_dir / "job.json").read_text())
    workdir, start = Path(job["workdir"]), time.monotonic()
    _copy_tree(job_dir / "files", workdir)
    _prepare_home(job_dir, job["env"])
    nb = nbformat.reads(notebook, as_version=4)
    client, budget = _make_client(nb, job, workdir)
    status, reason = "ok", ""
    try:
        client.execute()
    except DeadKernelError:
        status, reason = "error", ", ".join(filter(None, ["the kernel died", _kernel_exit(client)]))
    except CellTimeoutError as exc:
        status = "error"
        reason = (f"the kernel stopped answering: a cell ran past its time limit ({job['executor'].get('timeout')} s) "
                  "and ignored the interrupt, broke its connection, or printed more than could be read in time"
                  if "IOPub" in str(exc) else f"cell timeout: {str(exc).splitlines()[0][:200]}")
    except Exception as exc:  # noqa: BLE001 -- any failure is this submission's, reported
        status, reason = "error", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
        traceback.print_exc()
    return {"status": status, "reason": reason, "notebook": nb if status == "ok" else None,
            "truncated_cells": budget.truncated_cells, "output_bytes": budget.used,
            "seconds": round(time.monotonic() - start, 3)}


def main(argv: list[str]) -> int:
    os.closerange(3, 1 << 16)        # e.g. bwrap's option files: nothing of the grader's is left
    result_fd = os.dup(1)            # non-inheritable: the kernel never gets it
    os.dup2(2, 1)
    job_dir = Path(argv[1]).parent
    notebook = sys.stdin.read()
    limits = json.loads((job_dir / "job.json").read_text())["limits"]
    apply_limits(limits)
    # a job about to hit the wall limit leaves the executor's stacks in the grader's log
    faulthandler.dump_traceback_later(max(limits["wall_seconds"] - 3, 1), exit=False)
    _not_dumpable()                  # after oom_score_adj: /proc/self is root's once it is set
    try:
        result = execute(job_dir, notebook)
    except Exception as exc:  # noqa: BLE001 -- the grader turns this into a grading error
        traceback.print_exc()
        result = {"status": "error", "reason": f"sandbox executor failed: {type(exc).__name__}: {exc}"[:400],
                  "notebook": None}
    data = json.dumps(result).encode("utf-8")
    with os.fdopen(result_fd, "wb") as channel:
        channel.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
