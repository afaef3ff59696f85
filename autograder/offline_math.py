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
import re
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
#: Formulas one page may ask for. A lab's feedback has fewer than 100 (the lectures up to ~520);
#: each costs ~2.4 ms and ~1 KB of SVG, so a written answer of 50,000 formulas would hold the
#: grader for two minutes and write 50 MB. Beyond it the page keeps its TeX as text, with a note.
MAX_FORMULAS = 2000
#: Heap of the node process (MiB): typesetting runs outside the sandbox, on students' TeX.
NODE_HEAP_MB = 1024
TOO_MANY = ('<p class="nnopt-math-note">(This page has more than {limit} formulas: they are shown '
            'as TeX, not typeset.)</p>')


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


def formula_bound(html: str) -> int:
    """An upper bound of the formulas MathJax finds in ``html``: every pair of ``$``, every
    ``\\(``, ``\\[`` and ``\\begin{`` (it counts some that are not formulas, never fewer)."""
    return html.count("$") // 2 + html.count("\\(") + html.count("\\[") + html.count("\\begin{")


def after_open_tag(html: str, tag: str) -> int | None:
    """Index just after the first ``<tag ...>`` of ``html``; None without one."""
    match = re.search(rf"<{tag}(\s[^>]*)?>", html, re.IGNORECASE)
    return match.end() if match else None


def with_note(html: str, note: str) -> str:
    """``html`` with ``note`` first in its ``<body>`` (or first of all without one)."""
    at = after_open_tag(html, "body") or 0
    return html[:at] + note + html[at:]


def typeset(html: str, timeout: float = TIMEOUT, max_formulas: int = MAX_FORMULAS) -> str:
    """``html`` with every formula typeset as SVG and MathJax loaders removed; a page with more
    than ``max_formulas`` (:func:`formula_bound`) is returned as it is, with a note."""
    if formula_bound(html) > max_formulas:
        return with_note(html, TOO_MANY.format(limit=max_formulas))
    node = shutil.which("node")
    if node is None:
        raise OfflineMathError("node is not on PATH: install Node.js (Debian: apt-get install nodejs), "
                               "it typesets the formulas of the feedback")
    folder = tools_dir()
    try:
        done = subprocess.run([node, f"--max-old-space-size={NODE_HEAP_MB}", str(folder / SCRIPT)],
                              input=html, capture_output=True, text=True, timeout=timeout, cwd=folder)
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
