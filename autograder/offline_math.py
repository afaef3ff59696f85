"""Feedback that shows its formulas offline: the TeX is typeset when the page is generated.

nbgrader's feedback page loads MathJax 2.7.7 from a CDN, so on an offline or exam server every
formula of the returned lab stays raw ``$$...$$``; JupyterLab also opens HTML files without
running their scripts, so even online a student sees raw TeX until they press "Trust HTML".
:class:`TypesetHTMLExporter` (``c.GenerateFeedback.exporter_class`` in
``autograder/nbgrader_config.py``) writes nbgrader's page, then lets the kit's MathJax (the
``mathjax`` npm package the lecture site also serves) turn every formula into inline SVG and
drop the CDN loader (``deploy/hub/typeset.js``). The page then needs no network, no
server and no script: it can be opened from the exchange, JupyterLab, a zip or an e-mail.

Needs ``node`` and the kit's npm packages (``make web-deps``): in the kit that runs nbgrader, or
in the kit that provides the ``nnopt`` package (the grading account's clone of the course uses
the server's kit, see DEPLOY.md). If either is missing, feedback generation fails with a message
that says what to install; it never falls back to the CDN silently.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

from nbconvert.exporters import HTMLExporter

#: ``typeset.js`` and the npm packages (``make web-deps``), beside the hub's configuration.
HERE = Path(__file__).resolve().parent / "deploy" / "hub"
SCRIPT = "typeset.js"
#: Where ``npm ci`` puts MathJax, relative to a folder holding ``typeset.js``.
MATHJAX = Path("node_modules") / "mathjax" / "es5"
#: Seconds one page may take (a lab's feedback takes ~1.5 s, most of it node starting).
TIMEOUT = 120


class OfflineMathError(RuntimeError):
    """The formulas of a page could not be typeset (tools missing, or MathJax failed)."""


def candidate_dirs() -> list[Path]:
    """Folders that may hold ``typeset.js`` with MathJax installed: this kit's ``deploy/hub``,
    then the one of the kit whose ``nnopt`` package is importable (found without importing it):
    a grading clone without ``npm ci``, or without ``deploy/``, uses the server's kit."""
    dirs = [HERE]
    spec = importlib.util.find_spec("nnopt")
    if spec and spec.origin:
        kit_hub = Path(spec.origin).resolve().parents[2] / "autograder" / "deploy" / "hub"
        if kit_hub != HERE:
            dirs.append(kit_hub)
    return dirs


def tools_dir() -> Path:
    """The first of :func:`candidate_dirs` with MathJax installed; ``OfflineMathError`` otherwise."""
    for folder in candidate_dirs():
        if (folder / SCRIPT).is_file() and (folder / MATHJAX / "node-main.js").is_file():
            return folder
    looked = ", ".join(str(d / MATHJAX) for d in candidate_dirs())
    raise OfflineMathError(f"the kit's MathJax is not installed (looked in {looked}): "
                           "run `make web-deps` in the kit (npm ci)")


def typeset(html: str, timeout: float = TIMEOUT) -> str:
    """``html`` with every formula typeset as SVG and MathJax loaders removed."""
    node = shutil.which("node")
    if node is None:
        raise OfflineMathError("node is not on PATH: install Node.js (Debian: apt-get install nodejs), "
                               "it typesets the formulas of the feedback")
    folder = tools_dir()
    try:
        done = subprocess.run([node, str(folder / SCRIPT)], input=html, capture_output=True,
                              text=True, timeout=timeout, cwd=folder)
    except subprocess.TimeoutExpired as err:
        raise OfflineMathError(f"MathJax took more than {timeout:g} s to typeset the page") from err
    if done.returncode != 0 or "<html" not in done.stdout:
        raise OfflineMathError(f"MathJax failed (exit code {done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


class TypesetHTMLExporter(HTMLExporter):
    """``HTMLExporter`` whose pages carry their formulas typeset (no MathJax to load)."""

    def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> tuple[str, Any]:
        output, resources = super().from_notebook_node(nb, resources, **kw)
        return typeset(output), resources
