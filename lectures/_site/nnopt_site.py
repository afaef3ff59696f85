"""Sphinx extension of the lecture site: offline MathJax, and notes where a page is not the live notebook.

* MathJax 3 comes from the kit's npm packages (``make web-deps``): its ``es5`` folder is
  copied to ``_static/mathjax`` (``conf.mathjax_path`` points there). The build stops with a
  message if it is not installed: a site that loads MathJax from a CDN shows raw TeX offline.
* Every explorer (a code cell tagged ``widget``) is shown as its first frame, a static PNG;
  a note under it says that the figure is interactive in JupyterLab and how to get there.
* Every lab page starts with a note: this is the lab as released to students, how to do it.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

KIT = Path(__file__).resolve().parents[2]
MATHJAX = KIT / "autograder" / "deploy" / "hub" / "node_modules" / "mathjax" / "es5"
EXPLORER = re.compile(r"nnopt\.widgets\.(\w+)\(")
WIDGET_NOTE = ("Interactive explorer{name}: above is its first frame. In a live notebook its sliders "
               "recompute the figure. Run it: ``make lab`` in the kit (or log in to the course's "
               "JupyterHub), open ``{path}`` and run the cells.")
LAB_NOTE = ("This is the lab as students receive it (no solutions, no hidden tests), not executed. "
            "To do it, fetch it from the *Assignments* tab of the course's JupyterHub, or open "
            "``{path}`` with ``make lab``; run every cell and press *Validate* before you submit.")


def check_mathjax(app: Sphinx) -> None:
    """Stop the build before any notebook runs if the kit's MathJax is missing."""
    if not (MATHJAX / "tex-chtml.js").is_file():
        raise ExtensionError(f"MathJax is not installed in {MATHJAX}: run `make web-deps` "
                             "(npm ci), or `make site`, which does it")


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        shutil.copytree(MATHJAX, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def _note(text: str) -> nodes.note:
    """A note admonition whose text may use ``literal`` and *emphasis* (reST inline markup)."""
    from docutils.core import publish_doctree

    paragraph = publish_doctree(text).next_node(nodes.paragraph)
    return nodes.note("", paragraph.deepcopy())


def add_notes(app: Sphinx, doctree: nodes.document) -> None:
    """The widget and lab notes of one page (``doctree-read``: before the pages are written)."""
    docname = app.env.docname
    source = f"{docname}.ipynb"
    if docname.startswith("labs/"):
        section = doctree.next_node(nodes.section)
        if section is not None:
            title = section.next_node(nodes.title)
            title.parent.insert(title.parent.index(title) + 1, _note(LAB_NOTE.format(path=source)))
    for cell in list(doctree.findall(nodes.container)):
        if "tag_widget" not in cell.get("classes", []):
            continue
        code = cell.next_node(nodes.literal_block)
        found = EXPLORER.search(code.astext()) if code is not None else None
        name = f" ``{found[1]}``" if found else ""
        cell.parent.insert(cell.parent.index(cell) + 1, _note(WIDGET_NOTE.format(name=name, path=source)))


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", check_mathjax)
    app.connect("doctree-read", add_notes)
    app.connect("build-finished", copy_mathjax)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
