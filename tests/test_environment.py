"""The installable kit: exact pins, the running environment, the Makefile, the README."""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import yaml
from packaging.utils import canonicalize_name

from conftest import REPO_ROOT

PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAKE = shutil.which("make")


def read_pins(lines: list[str], source: str) -> dict[str, str]:
    """``{canonical name: version}`` of requirement lines; anything but ``name==version``
    (after stripping comments and ``-r``/``-e`` includes) is an error."""
    pins: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(("-r ", "-e ")):
            continue
        match = PIN.fullmatch(line)
        assert match, f"{source}: not an exact pin: {raw!r}"
        name = canonicalize_name(match["name"])
        assert name not in pins, f"{source}: {name} is pinned twice"
        pins[name] = match["version"]
    return pins


def requirement_pins(filename: str) -> dict[str, str]:
    return read_pins((REPO_ROOT / filename).read_text().splitlines(), filename)


RUNTIME = requirement_pins("requirements.txt")
TEST_EXTRAS = requirement_pins("requirements-test.txt")


# --- pins ------------------------------------------------------------------------------------

def test_runtime_pins_cover_what_a_student_needs():
    for name in ("numpy", "theano-pymc", "jupyterlab", "notebook", "nbgrader", "ipywidgets",
                 "ipympl", "matplotlib", "scipy", "scikit-learn", "tqdm"):
        assert name in RUNTIME, f"requirements.txt does not pin {name}"
    assert RUNTIME["numpy"] == "1.23.5"
    assert "torch" not in RUNTIME and "pytest" not in RUNTIME


def test_test_extras_include_the_runtime_pins_and_add_torch_and_pytest():
    lines = (REPO_ROOT / "requirements-test.txt").read_text().splitlines()
    assert "-r requirements.txt" in lines
    assert TEST_EXTRAS["torch"] == "2.13.0"
    assert {"pytest", "pytest-timeout", "playwright"} <= set(TEST_EXTRAS)
    assert not set(TEST_EXTRAS) & set(RUNTIME), "a package is pinned in both files"


def test_environment_yml_mirrors_requirements_txt():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    conda_deps = [dep for dep in env["dependencies"] if isinstance(dep, str)]
    pip_sections = [dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict)]
    assert "python=3.11" in conda_deps and "pip" in conda_deps
    assert len(pip_sections) == 1
    assert read_pins(pip_sections[0], "environment.yml") == RUNTIME
    assert "-e ." in pip_sections[0]


# --- the running environment -----------------------------------------------------------------

def test_python_is_3_11():
    assert sys.version_info[:2] == (3, 11)


def test_numpy_is_the_pinned_1_23_5():
    assert np.__version__ == RUNTIME["numpy"] == "1.23.5"


def test_installed_versions_match_the_pins():
    """Catches drift: a package upgraded by hand, or pins edited without reinstalling."""
    wrong = {}
    for name, pinned in {**RUNTIME, **TEST_EXTRAS}.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed.split("+")[0] != pinned:  # torch's wheel is 2.13.0+cpu
            wrong[name] = f"pinned {pinned}, installed {installed}"
    assert not wrong, f"run `make test` to resync the environment: {wrong}"


def test_pip_check_is_clean():
    done = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_nnopt_is_imported_from_this_repository():
    import nnopt

    assert Path(nnopt.__file__).resolve().is_relative_to(REPO_ROOT / "lib")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert nnopt.__version__ == project["version"] == metadata.version("nnopt")


def test_jupyterlab_extensions_are_enabled_and_compatible():
    """The extensions `make lab` checks load in this JupyterLab (not flagged incompatible)."""
    wanted = re.search(r"^LAB_EXTENSIONS := (.+)$", (REPO_ROOT / "Makefile").read_text(),
                       re.MULTILINE)[1].split()
    jupyter = Path(sys.executable).parent / "jupyter"
    done = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True,
                          text=True, timeout=300)
    listing = ANSI.sub("", done.stdout + done.stderr)
    for ext in wanted:
        line = next((ln for ln in listing.splitlines() if f" {ext} v" in ln), "")
        assert " enabled OK" in line, f"{ext} not enabled and compatible:\n{listing}"


# --- Makefile --------------------------------------------------------------------------------

def run_make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([MAKE, "--no-print-directory", "-C", str(REPO_ROOT), *args],
                          capture_output=True, text=True, env=env, timeout=600,
                          stdin=subprocess.DEVNULL)


def test_make_targets_exist():
    done = run_make("-n", "lab", "test", "bench", "release", "grade-demo", "strip", "clean")
    assert done.returncode == 0, done.stderr
    assert "jupyter lab" in done.stdout and "pytest" in done.stdout


def test_make_help_lists_the_two_commands():
    done = run_make("help")
    assert done.returncode == 0
    assert re.search(r"^lab\s", done.stdout, re.MULTILINE)
    assert re.search(r"^test\s", done.stdout, re.MULTILINE)


def _write_script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def ready_venv(tmp_path: Path) -> Path:
    """A stand-in .venv whose set-up stamps are up to date and whose python is this one."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    _write_script(venv / "bin" / "python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for stamp in (".installed", ".installed-test"):
        (venv / stamp).touch()
    return venv


def _make_test(venv: Path, pytest_args: str) -> subprocess.CompletedProcess:
    return run_make("test", f"VENV={venv}", f"PYTEST_ARGS={pytest_args} -p no:cacheprovider")


def test_make_test_passes_and_prints_the_pytest_summary(ready_venv: Path, tmp_path: Path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_ok.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    done = _make_test(ready_venv, str(tmp_path / "t"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"=+ 1 passed", done.stdout)


def test_make_test_fails_when_a_test_fails(ready_venv: Path, tmp_path: Path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_bad.py").write_text("def test_bad():\n    assert 1 + 1 == 3\n")
    done = _make_test(ready_venv, str(tmp_path / "t"))
    assert done.returncode != 0
    assert "1 failed" in done.stdout


def test_make_test_treats_no_tests_as_a_failure(ready_venv: Path, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    done = _make_test(ready_venv, str(tmp_path / "empty"))
    assert done.returncode != 0
    assert "collected no tests" in done.stderr


def test_make_explains_how_to_get_python_3_11(tmp_path: Path):
    """A machine whose only python3 is 3.10: a clear error, and no half-made .venv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _write_script(bin_dir / "python3", '#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.10.12"'
                                       ' && exit 0\nexit 1\n')
    venv = tmp_path / "venv"
    done = run_make("test", f"VENV={venv}", env={**os.environ, "PATH": str(bin_dir)})
    assert done.returncode != 0
    assert "Python 3.11 is needed" in done.stderr
    assert "python3.11 is not installed and python3 is Python 3.10.12" in done.stderr
    assert "environment.yml" in done.stderr and "pyenv install 3.11" in done.stderr
    assert not venv.exists()


# --- README and CI ---------------------------------------------------------------------------

def test_readme_gives_the_two_commands_and_a_tour_of_the_folders():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    for folder in ("lib/nnopt", "lectures/", "labs/", "solutions/", "autograder/", "tests/",
                   "benchmarks/"):
        assert folder in readme, f"README.md does not present {folder}"


def test_readme_presents_every_nnopt_module():
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [p.name for p in sorted((REPO_ROOT / "lib" / "nnopt").glob("[!_]*.py"))
               if f"| `{p.name}` |" not in readme]
    assert not missing, f"add these modules to the lib/nnopt table of README.md: {missing}"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.DOTALL)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})


def test_ci_script_runs_make_test_strictly():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in script
    assert re.search(r"^make test$", script, re.MULTILINE)
