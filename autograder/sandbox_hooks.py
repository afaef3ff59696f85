"""The grader's hook into every job (issue 16): what a lab withholds from its kernel.

A course may provide ``autograder/withheld.py`` with

* ``mounts(lab, workdir)``: called once per sandboxed job, with a private ``workdir`` (removed
  after the job) for the files it generates. It returns an object with ``hide`` (absolute
  paths made absent in the sandbox), ``replace`` (items with ``target`` and ``source``, or
  pairs: a file or folder bound read-only over the target) and optionally ``env`` (kernel
  variables), or a tuple ``(hide, {target: source})`` / ``(hide, {target: source}, env)``;
* ``overlay(lab, workdir)``: kernel variables for the opt-out (no sandbox).

Without that module nothing is withheld. A failing hook stops grading (it is the grader's code).
"""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

MODULE = "autograder.withheld"


def _module() -> ModuleType | None:
    if importlib.util.find_spec(MODULE) is None:
        return None
    return importlib.import_module(MODULE)


def withheld(lab: str, workdir: Path) -> tuple[list, dict, dict[str, str]]:
    """``(paths to make absent, {target: replacement}, {kernel variable: value})`` of one job."""
    module = _module()
    if module is None:
        return [], {}, {}
    result = module.mounts(lab, workdir)
    if hasattr(result, "hide"):
        hidden, replaced, env = result.hide, getattr(result, "replace", ()), getattr(result, "env", {})
    else:
        hidden, replaced, env = (*result, {})[:3]
    if not isinstance(replaced, Mapping):
        replaced = dict((r.target, r.source) if hasattr(r, "target") else tuple(r) for r in replaced)
    return list(hidden), dict(replaced), {str(k): str(v) for k, v in dict(env or {}).items()}


def overlay(lab: str, workdir: Path) -> dict[str, str]:
    """Kernel variables that withhold the lab's files without a sandbox (empty without a hook)."""
    module = _module()
    hook = getattr(module, "overlay", None) if module is not None else None
    return {} if hook is None else {str(k): str(v) for k, v in hook(lab, workdir).items()}
