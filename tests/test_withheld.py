"""autograder.withheld: a lab's graded implementations are absent from its grading kernel,
and delegating to them fails with a message that says why."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import make_samples, withheld

REPO = Path(__file__).resolve().parents[1]
NNOPT = REPO / "lib" / "nnopt"
LAB1, LAB2, LAB3, LAB4 = make_samples.LAB1, make_samples.LAB2, make_samples.LAB3, make_samples.LAB4

PROBE = r'''
import json, sys
results = {}
for name, code in json.loads(sys.argv[1]).items():
    try:
        value = eval(code)
        results[name] = "ok: " + repr(value)[:80]
    except BaseException as exc:
        results[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(results))
'''
ATTEMPTS = {
    "momentum": "__import__('nnopt').Momentum(0.1)",
    "make_optimizer": "__import__('nnopt').make_optimizer('sgd', lr=0.1)",
    "adam": "__import__('nnopt').Adam(lr=0.1)",
    "inverse_time": "__import__('nnopt').schedules.inverse_time(0.5, 0.1)",
    "clip": "__import__('nnopt').clip_by_global_norm([__import__('numpy').ones(2)], 1.0)",
    "reference": "__import__('nnopt.grading.reference')",
    "variants": "__import__('nnopt.grading.variants')",
    "torch": "__import__('torch')",
    "sklearn_sgd": "__import__('sklearn.neural_network._stochastic_optimizers')",
    "exponential": "__import__('nnopt').schedules.exponential(0.5, 0.1)(2)",
    "checks": "__import__('nnopt.grading').grading.check_trajectory.__name__",
    "surfaces": "__import__('nnopt.surfaces').surfaces.get('quadratic').grad([1.0, 1.0]).tolist()",
    "mode": "__import__('os').environ['NNOPT_GRADING_MODE']",
    "lion": "__import__('nnopt').Lion(lr=0.1)",
    "muon": "__import__('nnopt').Muon(lr=0.1)",
    "newton_schulz": "__import__('nnopt.optimizers_matrix').optimizers_matrix.newton_schulz(__import__('numpy').eye(2))",
    "schedulefree_sgd": "__import__('nnopt').ScheduleFreeSGD(lr=0.1)",
    "variants_beyond": "__import__('nnopt.grading.variants_beyond')",
    "lion_pytorch": "__import__('lion_pytorch')",
    "schedulefree": "__import__('schedulefree')",
    "matrix_check": "__import__('nnopt.grading').grading.check_matrix_function.__name__",
}


def _probe(argv_prefix: list[str], env: dict[str, str]) -> dict[str, str]:
    import json
    out = subprocess.run([*argv_prefix, sys.executable, "-c", PROBE, json.dumps(ATTEMPTS)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_withheld(results: dict[str, str], lab: str, names: list[str]) -> None:
    for name in names:
        assert "not installed while " + lab in results[name] and "reference is absent" in results[name], \
            (name, results[name])


def test_a_stub_keeps_the_names_but_not_the_code(monkeypatch):
    from nnopt import optimizer_base
    monkeypatch.setattr(optimizer_base, "OPTIMIZERS", {})   # the stub's classes register their names again
    source = (NNOPT / "optimizers.py").read_text()
    stub = withheld.stub_source(source, ("Momentum", "denominator"), "nnopt.optimizers", LAB1)
    namespace: dict = {"__name__": "nnopt.optimizers", "__package__": "nnopt"}     # its relative imports work
    exec(compile(stub, "stub", "exec"), namespace)                       # noqa: S102 -- generated code
    assert namespace["Momentum"].name == "momentum" and namespace["Momentum"].slots == ("v",)
    assert issubclass(namespace["Momentum"], namespace["Optimizer"])
    with pytest.raises(namespace["WithheldError"], match="nnopt.optimizers.Momentum is not installed while lab1"):
        namespace["Momentum"](0.1)
    with pytest.raises(namespace["WithheldError"], match="denominator"):
        namespace["denominator"](1.0, 1e-8, True)
    assert namespace["SGD"](0.1).lr == 0.1, "classes not listed keep their code"
    momentum = stub[stub.index("class Momentum"):stub.index("class _LookAhead")]
    assert "_update" not in momentum and "v *=" not in momentum, momentum
    whole = withheld.stub_source("x = 1", None, "nnopt.grading.reference", LAB2)
    with pytest.raises(ImportError, match="nnopt.grading.reference is not installed while lab2"):
        exec(whole, {})                                                  # noqa: S102
    with pytest.raises(ValueError, match="Invalid withheld names"):
        withheld.stub_source(source, ("NoSuchClass",), "nnopt.optimizers", LAB1)


def test_every_lab_has_a_list_and_unknown_labs_are_refused(tmp_path):
    assert sorted(withheld.WITHHELD) == sorted(p.name for p in (REPO / "solutions").iterdir())
    with pytest.raises(ValueError, match="Invalid lab: 'lab9'"):
        withheld.mounts("lab9", tmp_path)


@pytest.mark.parametrize("lab", [LAB1, LAB2, LAB3, LAB4])
def test_mounts_name_what_to_replace_and_hide(lab, tmp_path):
    m = withheld.mounts(lab, tmp_path)
    targets = {r.target: r.source for r in m.replace}
    assert all(src.is_file() or (src / "__init__.py").is_file() for src in targets.values())
    assert all(t.exists() for t in targets), "only existing paths are replaced"
    assert NNOPT / "grading" / "reference.py" in targets and NNOPT / "grading" / "variants.py" in targets
    assert (NNOPT / "optimizers.py" in targets) == (lab in (LAB1, LAB2)), "Lab 3's Part A uses nnopt's optimizers"
    for newer in ("optimizers_modern.py", "optimizers_matrix.py"):
        # Lab 4 grades Lion, Muon and Newton-Schulz; in Labs 1-2 they stand for the graded optimizers
        # (Schedule-Free SGD with momentum 1e-300 is SGD: sample sven)
        assert (NNOPT / newer in targets) == (lab != LAB3), newer
    assert any(t.name == "torch" for t in targets)
    hide = set(m.hide)
    assert {REPO / "solutions", REPO / "tests", REPO / "lectures", REPO / "autograder", REPO / ".git"} <= hide
    assert NNOPT / "grading" / "__pycache__" in hide or not (NNOPT / "grading" / "__pycache__").exists()
    assert REPO / "lib" not in hide and REPO / ".venv" not in hide
    assert m.env == {"NNOPT_GRADING_MODE": "record", "NNOPT_LAB": lab}
    args = m.bwrap_args()
    assert args[:3] == ["--ro-bind", str(m.replace[0].source), str(m.replace[0].target)]
    assert "--tmpfs" in args and "/dev/null" in args


def test_without_a_sandbox_the_overlay_withholds_what_is_imported(tmp_path):
    lab1 = _probe([], {**os.environ, **withheld.overlay(LAB1, tmp_path / "1")})
    _assert_withheld(lab1, LAB1, ["momentum", "make_optimizer", "adam", "inverse_time", "reference", "variants",
                                  "torch", "sklearn_sgd"])
    assert lab1["exponential"].startswith("ok") and lab1["checks"] == "ok: 'check_trajectory'"
    assert lab1["surfaces"].startswith("ok") and lab1["clip"].startswith("ok") and lab1["mode"] == "ok: 'record'"
    lab2 = _probe([], {**os.environ, **withheld.overlay(LAB2, tmp_path / "2")})
    _assert_withheld(lab2, LAB2, ["clip", "adam", "reference"])
    assert lab2["inverse_time"].startswith("ok")
    lab3 = _probe([], {**os.environ, **withheld.overlay(LAB3, tmp_path / "3")})
    assert lab3["adam"].startswith("ok") and lab3["make_optimizer"].startswith("ok"), "Part A trains with them"
    _assert_withheld(lab3, LAB3, ["reference", "torch"])


def test_lab4_withholds_lion_muon_newton_schulz_and_their_packages(tmp_path):
    lab4 = _probe([], {**os.environ, **withheld.overlay(LAB4, tmp_path / "4")})
    _assert_withheld(lab4, LAB4, ["lion", "muon", "newton_schulz", "schedulefree_sgd", "make_optimizer", "reference",
                                  "variants", "variants_beyond", "torch", "lion_pytorch", "schedulefree"])
    assert lab4["adam"].startswith("ok") and lab4["momentum"].startswith("ok"), "Lab 4 does not grade Labs 1-2's"
    assert lab4["matrix_check"] == "ok: 'check_matrix_function'" and lab4["mode"] == "ok: 'record'"


def _bwrap() -> str:
    exe = shutil.which("bwrap")
    if exe is None:
        pytest.skip("bubblewrap is not installed (the grading sandbox needs it; see issue 12)")
    probe = subprocess.run([exe, "--ro-bind", "/", "/", "--dev", "/dev", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"bubblewrap cannot create a sandbox here: {probe.stderr.strip()}")
    return exe


def test_in_a_bwrap_sandbox_the_originals_are_gone(tmp_path):
    exe = _bwrap()
    m = withheld.mounts(LAB1, tmp_path)
    sandbox = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",   # read-only: /tmp may hold the kit
               *m.bwrap_args(), "--"]
    results = _probe(sandbox, {**os.environ, **m.env})
    _assert_withheld(results, LAB1, ["momentum", "make_optimizer", "inverse_time", "reference", "torch", "sklearn_sgd"])
    assert results["surfaces"].startswith("ok") and results["mode"] == "ok: 'record'"
    # what a kernel could read by path instead of importing
    script = ("import os, pathlib; p = pathlib.Path(os.environ['NNOPT_DIR']); "
              "print('v *= self.momentum' in (p / 'optimizers.py').read_text(), "
              "sorted(os.listdir(p / '__pycache__')) if (p / '__pycache__').exists() else [], "
              "os.listdir(os.environ['REPO_DIR'] + '/solutions'), os.path.exists(os.environ['REPO_DIR'] + '/.git/HEAD'))")
    out = subprocess.run([*sandbox, sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "NNOPT_DIR": str(NNOPT), "REPO_DIR": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "[]", "[]", "False"], out.stdout
