"""The grading sandbox itself (autograder/sandbox.py), one small notebook at a time:
withheld files made absent or replaced, the kernel's environment, refusing to grade when
the sandbox cannot start, the loud opt-out, and grading as an unprivileged user."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder import make_samples, pipeline
from autograder.preprocessors import EXECUTOR_TRAITS, SandboxedExecute
from autograder.sandbox import Sandbox, SandboxUnavailable
from conftest import REPO_ROOT

LAB1 = make_samples.LAB1
SITE = Path(sysconfig.get_path("purelib"))


def _executor() -> dict:
    pp = SandboxedExecute(timeout=60)
    return {name: getattr(pp, name) for name in EXECUTOR_TRAITS}


def _run(box: Sandbox, *sources: str, lab: str = LAB1, **kw) -> list[str]:
    """Run cells in ``box``; return the text each printed (fails with the log if the job failed)."""
    nb = new_notebook(cells=[new_code_cell(s) for s in sources],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    result = box.run(nb, lab=lab, name="probe.ipynb", executor=_executor(), **kw)
    assert result.status == "ok", f"{result.reason}\n{result.log}"
    return ["".join(o.get("text", "") or json.dumps(o.get("data", {})) for o in cell["outputs"])
            for cell in result.notebook["cells"]]


@pytest.fixture
def withheld_module(monkeypatch):
    """``autograder.withheld`` with its ``mounts`` replaced: the sandbox gets what the test puts
    in ``.plan`` (``(hidden, {target: source})``, a ``Mounts``-like object, or a function of
    ``(lab, workdir)`` returning either) and ``.calls`` records what the sandbox asked."""
    from types import SimpleNamespace

    from autograder import withheld
    fake = SimpleNamespace(plan=([], {}), calls=[])

    def mounts(lab, workdir):
        fake.calls.append((lab, workdir, workdir.is_dir()))
        plan = fake.plan(lab, workdir) if callable(fake.plan) else fake.plan
        if hasattr(plan, "hide"):
            return plan
        hidden, replaced = plan
        return withheld.Mounts(lab, tuple(Path(h) for h in hidden),
                               tuple(withheld.Replacement(Path(t), Path(s)) for t, s in replaced.items()))
    monkeypatch.setattr(withheld, "mounts", mounts)
    return fake


@pytest.mark.slow
def test_withheld_paths_are_absent_and_replacements_are_read_only(withheld_module):
    """The mechanism issue 16 drives: a package made absent (not empty) by the hook, a module
    hidden by the caller, a file replaced by one the hook wrote, read-only; siblings stay."""
    import nnopt
    torch, pyplot, target = SITE / "torch", SITE / "matplotlib" / "pyplot.py", Path(nnopt.__file__)

    def plan(lab, workdir):
        (workdir / "replacement.py").write_text("REPLACED_BY_HOOK = 1\n")
        return [torch], {target: workdir / "replacement.py"}
    withheld_module.plan = plan
    printed = _run(Sandbox(), f"""
import importlib.util, os
print(importlib.util.find_spec("torch"), os.path.exists({str(torch)!r}), os.path.exists({str(pyplot)!r}))
print("numpy" in os.listdir({str(SITE)!r}), "torch" in os.listdir({str(SITE)!r}))
print(open({str(target)!r}).read().strip())
try:
    open({str(target)!r}, "w")
except OSError as exc:
    print(type(exc).__name__)
""", lab="lab2_adaptive", hidden=[pyplot])
    assert printed[0].split("\n")[:4] == ["None False False", "True False", "REPLACED_BY_HOOK = 1", "OSError"]
    assert torch.exists() and pyplot.exists() and "REPLACED" not in target.read_text()   # outside: untouched


@pytest.mark.slow
def test_the_hook_may_return_issue_16s_mounts_object(withheld_module):
    """``withheld.mounts`` of issue 16 returns ``Mounts(lab, hide, replace, env)`` whose
    replacements are ``Replacement(target, source)`` -- a stub folder over a whole package
    among them -- and the kernel variables of the grading contract."""
    from types import SimpleNamespace
    torch = SITE / "torch"

    def plan(lab, workdir):
        (workdir / "torch").mkdir()
        (workdir / "torch" / "__init__.py").write_text("raise ImportError('withheld while grading')\n")
        return SimpleNamespace(lab=lab, hide=(SITE / "sklearn",),
                               replace=(SimpleNamespace(target=torch, source=workdir / "torch"),),
                               env={"NNOPT_WITHHELD_TEST": lab})
    withheld_module.plan = plan
    printed = _run(Sandbox(), """
import os
try:
    import torch
    print("imported")
except ImportError as exc:
    print(exc)
print(os.environ["NNOPT_WITHHELD_TEST"], os.environ["NNOPT_GRADING_MODE"], os.path.exists(%r))
print(sorted(os.listdir(%r)))
""" % (str(SITE / "sklearn"), str(torch)), lab="lab2_adaptive")
    assert printed[0].splitlines() == ["withheld while grading", "lab2_adaptive record False", "['__init__.py']"]
    assert (torch / "optim").is_dir()                                   # outside: untouched


@pytest.mark.slow
def test_the_hook_is_called_with_the_lab_and_a_private_folder(withheld_module):
    assert _run(Sandbox(), "import os; print(os.environ['NNOPT_GRADING_MODE'], os.environ['NNOPT_LAB'])",
                lab="lab3_handson") == ["record lab3_handson\n"]
    [(lab, workdir, existed)] = withheld_module.calls
    assert lab == "lab3_handson" and existed and not workdir.exists()   # removed after the job


@pytest.mark.slow
def test_the_limits_are_the_configured_ones():
    """CPU seconds, file size, processes and memory, set lower than the defaults."""
    box = Sandbox(cpu_limit=2, file_size_limit=1 << 20, max_processes=40, memory_limit=1 << 30, disk_limit=8 << 20)
    printed = _run(box, """
import os, subprocess, sys, numpy as np
spin = subprocess.run([sys.executable, "-c", "while True: pass"])
print("cpu", spin.returncode)
try:
    open("big.bin", "wb").write(b"0" * (2 << 20))
except OSError as exc:
    print("file", exc.errno)
children = []
try:
    for _ in range(100):
        children.append(subprocess.Popen(["sleep", "60"]))
except OSError as exc:
    print("processes", len(children), exc.errno)
try:
    np.ones(1 << 30, dtype=np.uint8)
except MemoryError:
    print("memory refused")
try:
    for i in range(20):
        open(f"/tmp/part{i}", "wb").write(b"0" * (1 << 20))
except OSError as exc:
    print("disk", exc.errno, i)
""")
    lines = printed[0].splitlines()
    import errno, signal
    assert lines[0] == f"cpu {-signal.SIGXCPU}" or lines[0] == f"cpu {-signal.SIGKILL}"
    assert lines[1] == f"file {errno.EFBIG}"
    count, code = map(int, lines[2].split()[1:])
    assert code == errno.EAGAIN and 10 < count < 40
    assert lines[3] == "memory refused"
    assert lines[4].startswith(f"disk {errno.ENOSPC} ") and 4 <= int(lines[4].split()[2]) <= 8


def test_a_broken_withheld_hook_stops_grading(withheld_module):
    withheld_module.plan = (["relative/path"], {})
    with pytest.raises(ValueError, match=r"Invalid hidden path: .*relative/path.* \(expected an absolute path\)"):
        _run(Sandbox(), "1")


def test_without_bubblewrap_grading_is_refused_with_the_fix(tmp_path, capsys):
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        Sandbox(bwrap=str(tmp_path / "no-bwrap")).check()
    course = pipeline.Course(REPO_ROOT / "autograder").copy_to(tmp_path / "course")
    config = course.root / "nbgrader_config.py"
    config.write_text(config.read_text() + f"\nc.Sandbox.bwrap = {str(tmp_path / 'no-bwrap')!r}\n")
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(REPO_ROOT / "autograder" / "samples" / "bob_lab1.ipynb", subs)
    assert pipeline.main(["--course", str(course.root), "grade", str(subs)]) == 3
    err = capsys.readouterr().err
    assert "refusing to grade" in err and "apt-get install bubblewrap" in err and "--no-sandbox" in err
    assert not course.submitted.exists() and not (course.grades / "grades.csv").exists()


@pytest.mark.slow
def test_nbgrader_autograde_stops_at_once_without_the_sandbox(tmp_path):
    """The instructor cycle's own command: no student is graded unsandboxed, one message."""
    from autograder import intake
    from autograder.course import NBGRADER_MAIN, nbgrader_environment
    course = pipeline.Course(REPO_ROOT / "autograder").copy_to(tmp_path / "course")
    pipeline.sync_gradebook(course, [LAB1])
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("bob_lab1.ipynb", "carol_lab1.ipynb"):
        shutil.copy(REPO_ROOT / "autograder" / "samples" / name, subs)
    intake.collect(subs, course.submitted, {LAB1: course.released(LAB1)})
    proc = subprocess.run([sys.executable, "-c", NBGRADER_MAIN, "autograde", LAB1, "--force",
                           f"--Sandbox.bwrap={tmp_path / 'no-bwrap'}"], cwd=course.root,
                          env=nbgrader_environment(), capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert proc.stdout.count("SandboxUnavailable") + proc.stderr.count("SandboxUnavailable") >= 1
    assert "apt-get install bubblewrap" in proc.stderr + proc.stdout
    assert not list(course.autograded.glob(f"*/{LAB1}/{LAB1}.ipynb"))


@pytest.mark.slow
def test_the_opt_out_is_loud_and_recorded_in_the_csv(tmp_path, capsys):
    course = pipeline.Course(REPO_ROOT / "autograder").copy_to(tmp_path / "course")
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(REPO_ROOT / "autograder" / "samples" / "bob_lab1.ipynb", subs)
    assert pipeline.main(["--course", str(course.root), "grade", str(subs), "--no-sandbox",
                          "--cell-timeout", "60"]) == 0
    out = capsys.readouterr()
    assert out.out.count("GRADING WITHOUT A SANDBOX") >= 2 and "GRADING WITHOUT A SANDBOX" in out.err
    rows = (course.grades / "grades.csv").read_text()
    assert "OFF (trusted classroom opt-out)" in rows
    bob = next(r for r in pipeline.grade_rows(course, pipeline.load_status(course)) if r["student_id"] == "bob")
    assert bob["auto_score"] == next(s.auto_score for s in make_samples.SAMPLES if s.student == "bob")


# --------------------------------------------------------------------------- an unprivileged grader
def _world_readable(path: Path) -> bool:
    path = path.resolve()
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [path, *path.parents])


@pytest.mark.slow
def test_the_sandbox_works_for_an_unprivileged_grader():
    """On a class server the grading account (JupyterHub's formgrader) is not root: the same
    sandbox, then made by bubblewrap in a user namespace of that account."""
    if os.geteuid() != 0:
        assert _run(Sandbox(), "import os; print(os.getuid())") == ["1000\n"]   # we are that grader
        return
    if shutil.which("useradd") is None or not _world_readable(REPO_ROOT / "autograder"):
        pytest.skip("needs useradd and a kit every user can read to create an unprivileged grader")
    from test_exchange_flow import Machine
    machine = Machine()
    try:
        grader = machine.add_user("sbx")
        script = (f"import json, sys; sys.path.insert(0, {str(REPO_ROOT)!r})\n"
                  "from autograder.sandbox import Sandbox\n"
                  "from autograder.preprocessors import EXECUTOR_TRAITS, SandboxedExecute\n"
                  "from nbformat.v4 import new_code_cell, new_notebook\n"
                  "pp = SandboxedExecute(timeout=60)\n"
                  "nb = new_notebook(cells=[new_code_cell('import os, numpy, nnopt; print(os.getuid(), "
                  "sorted(os.listdir(\"/\")))')], metadata={'kernelspec': {'name': 'python3', "
                  "'display_name': 'P', 'language': 'python'}})\n"
                  f"box = Sandbox(extra_env={json.dumps(machine.tool_env)})\n"
                  f"r = box.run(nb, lab={LAB1!r}, name='p.ipynb', "
                  "executor={t: getattr(pp, t) for t in EXECUTOR_TRAITS})\n"
                  "print(json.dumps([r.status, r.reason, r.notebook and r.notebook['cells'][0]['outputs'], r.log[-2000:]]))\n")
        proc = machine.run(grader, str(machine.bin / "python"), "-c", script)
        status, reason, outputs, log = json.loads(proc.stdout.strip().splitlines()[-1])
        assert status == "ok", f"{reason}\n{log}"
        uid, listing = outputs[0]["text"].split(" ", 1)
        assert uid == "1000" and not {"home", "srv", "var"} & set(ast.literal_eval(listing))
    finally:
        machine.close()
