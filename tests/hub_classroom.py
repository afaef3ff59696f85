"""A scratch class server with a running JupyterHub, set up as ``autograder/deploy/DEPLOY.md`` says.

Built on :class:`test_exchange_flow.Machine` (Unix users with unique random names and private
homes, the exchange with mode 1777), plus:

* **the kit where every user can read it** (DEPLOY's ``/opt/nnopt``): ``<base>/opt/nnopt`` with
  ``lib/``, ``autograder/`` (the hub's configuration and node tools) and a ``.venv`` holding this
  Python (binary, libpython, standard library) and the kit's packages, hard-linked where the
  file system allows (copied otherwise). It works wherever the developer's checkout and
  interpreter live (pyenv under ``/root``, a private CI folder), and has no ``solutions/``;
* **accounts with passwords**: the grading account (runs the formgrader service), an
  instructor and students, who log in through PAM like real users;
* **the grading account's course** (``~/nnopt``: solutions, labs and the autograder folder with
  the kit's ``nbgrader_config.py``, so autograde uses whatever sandbox the kit configures);
* **JupyterHub** started as root with ``autograder/deploy/jupyterhub_config.py`` of that kit, on
  free 127.0.0.1 ports, with the roster, cookie secret and database in ``<base>/srv``.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from conftest import REPO_ROOT
from test_exchange_flow import Account, Machine

VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
#: Packages of the test extras: students and the grader never import them.
TEST_ONLY = ("torch", "torchgen", "functorch", "playwright", "sympy", "mpmath", "networkx",
             "pytest", "_pytest", "pluggy", "iniconfig", "greenlet", "fsspec")
#: What the kit copy of the hub's own folders leaves out (course data, caches).
COURSE_DATA = ("submitted", "autograded", "feedback", "grades", "gradebook.db", "samples",
               "__pycache__", ".ipynb_checkpoints")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` if everyone may read it (instant on one file system, and the
    original stays as it is); otherwise, or across file systems, a copy that everyone may read."""
    mode = os.stat(src).st_mode
    if mode & stat.S_IROTH:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)
    os.chmod(dst, mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0))


def _tree(src: Path, dst: Path, *ignore: str, top_level_only: bool = False) -> None:
    """``src`` laid out at ``dst`` for everyone: new folders 0755, files as :func:`_link_or_copy`,
    without the names matching ``ignore`` (anywhere, or only directly in ``src``)."""
    skip = shutil.ignore_patterns(*ignore)
    shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy, dirs_exist_ok=True,
                    ignore=lambda folder, names: skip(folder, names)
                    if not top_level_only or Path(folder) == Path(src) else set())
    for folder, _, _ in os.walk(dst):
        os.chmod(folder, 0o755)


def install_kit(dest: Path) -> Path:
    """Lay out the kit at ``dest`` so that every user can run it; return its ``.venv/bin``."""
    _tree(REPO_ROOT / "lib", dest / "lib", "__pycache__", "*.egg-info")
    _tree(REPO_ROOT / "autograder", dest / "autograder", *COURSE_DATA)
    venv, home = dest / ".venv", Path(sys.base_prefix)
    _tree(home / "lib" / VERSION, venv / "lib" / VERSION, "site-packages", "test", "idlelib",
          "tkinter", "turtledemo", "ensurepip", "config-*")
    for lib in (home / "lib").glob("libpython*"):
        shutil.copy2(lib, venv / "lib", follow_symlinks=False)
    site = venv / "lib" / VERSION / "site-packages"
    _tree(Path(sysconfig.get_path("purelib")), site, *[f"{name}*" for name in TEST_ONLY],
          "__editable__*nnopt*", "*.egg-link", top_level_only=True)     # numpy has _pytesttester.py
    (site / "nnopt_kit.pth").write_text(f"{dest / 'lib'}\n")          # pip install -e . of this copy
    for folder in ("share", "etc"):
        if (Path(sys.prefix) / folder).is_dir():
            _tree(Path(sys.prefix) / folder, venv / folder)
    bin_dir = venv / "bin"
    bin_dir.mkdir()
    shutil.copy2(home / "bin" / VERSION, bin_dir / VERSION)
    for alias in ("python", "python3"):
        (bin_dir / alias).symlink_to(VERSION)
    kit_bin = Path(sys.executable).parent
    for tool in kit_bin.iterdir():     # jupyterhub, nbgrader, ...: the same scripts for this python
        first, _, rest = tool.read_bytes().partition(b"\n") if tool.is_file() else (b"", b"", b"")
        if first.startswith(f"#!{kit_bin}/python".encode()) and not (bin_dir / tool.name).exists():
            (bin_dir / tool.name).write_bytes(f"#!{bin_dir / 'python'}\n".encode() + rest)
            (bin_dir / tool.name).chmod(0o755)
    for folder in (dest, dest.parent):
        folder.chmod(0o755)
    return bin_dir


@dataclass(frozen=True)
class Hub:
    """A running JupyterHub: its public URL, process and log file."""

    url: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ClassServer(Machine):
    """A :class:`Machine` with the kit installed for everyone, passwords and a JupyterHub."""

    def __init__(self) -> None:
        super().__init__()
        self.kit = self.base / "opt" / "nnopt"
        self.bin = install_kit(self.kit)
        self.tool_env = {"LD_LIBRARY_PATH": str(self.kit / ".venv" / "lib")}
        self.srv = self.base / "srv"
        self.srv.mkdir(mode=0o755)
        self.passwords: dict[str, str] = {}
        self.hub: Hub | None = None

    def add_user(self, role: str) -> Account:
        """A user as :meth:`Machine.add_user`, with a random password (PAM logins)."""
        account = super().add_user(role)
        self.passwords[account.name] = secrets.token_urlsafe(12)
        subprocess.run(["chpasswd"], input=f"{account.name}:{self.passwords[account.name]}\n",
                       text=True, check=True, capture_output=True)
        return account

    def install_course(self, grader: Account) -> Path:
        """The grading account's course (DEPLOY.md: a clone of the kit), private to it; returns
        its autograder folder, where nbgrader and formgrader run."""
        course = grader.home / "nnopt"
        for folder, ignore in (("solutions", ()), ("labs", ()), ("autograder", COURSE_DATA + ("node_modules",))):
            shutil.copytree(REPO_ROOT / folder, course / folder,     # copies: chown must not reach the kit
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", *ignore))
        subprocess.run(["chown", "-R", f"{grader.name}:{grader.name}", str(course)], check=True)
        course.chmod(0o700)
        return course / "autograder"

    def start_hub(self, grader: Account, instructors: list[Account], students: list[Account],
                  course_dir: Path, timeout: float = 180) -> Hub:
        """Start JupyterHub (as root) with the kit's configuration and wait until it answers."""
        (self.srv / "students.txt").write_text("".join(f"{a.name}\n" for a in students))
        (self.srv / "instructors.txt").write_text("".join(f"{a.name}\n" for a in instructors))
        url = f"http://127.0.0.1:{free_port()}"
        env = {"PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(self.srv),
               "NNOPT_SRV": str(self.srv), "NNOPT_EXCHANGE_ROOT": str(self.exchange),
               "NNOPT_COURSE_DIR": str(course_dir), "NNOPT_GRADER": grader.name, "NNOPT_HUB_URL": url,
               "NNOPT_HUB_API_URL": f"http://127.0.0.1:{free_port()}",
               "NNOPT_PROXY_API_URL": f"http://127.0.0.1:{free_port()}",
               "NNOPT_SERVICE_PORT": str(free_port()), **self.tool_env}
        log = self.base / "jupyterhub.log"
        config = self.kit / "autograder" / "deploy" / "jupyterhub_config.py"
        with log.open("w") as out:
            process = subprocess.Popen([str(self.bin / "jupyterhub"), "-f", str(config)], cwd=self.srv,
                                       env=env, stdout=out, stderr=subprocess.STDOUT)
        self.hub = Hub(url, process, log)
        if not self._wait_until_up(timeout):
            raise RuntimeError(f"JupyterHub exited with {process.returncode}:\n{self.log_tail()}")
        return self.hub

    def _wait_until_up(self, timeout: float) -> bool:
        """True when the hub answers; False if it exited; RuntimeError if it hangs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.hub.process.poll() is not None:
                return False
            try:
                urllib.request.urlopen(f"{self.hub.url}/hub/health", timeout=5)
                return True
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"JupyterHub did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 6000) -> str:
        return self.hub.log.read_text(errors="replace")[-chars:] if self.hub else ""

    def close(self) -> None:
        if self.hub is not None:
            self.hub.stop()
        self.kill_leftovers()
        super().close()

    def kill_leftovers(self) -> None:
        """Kill, by PID, every process of this class: run by one of its accounts, or from its
        kit copy (the hub, its proxy and services run as root from there)."""
        uids = {pwd.getpwnam(a.name).pw_uid for a in self.accounts if _exists(a.name)}
        for proc in psutil.process_iter(["uids", "cmdline"]):
            mine = proc.info["uids"] and proc.info["uids"].real in uids
            if (mine or str(self.kit) in " ".join(proc.info["cmdline"] or [])) and proc.pid != os.getpid():
                try:
                    proc.kill()
                except psutil.NoSuchProcess:
                    pass


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False
