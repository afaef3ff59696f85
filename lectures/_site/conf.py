"""Sphinx configuration of the lecture site (``make site``): lectures/ and the labs' task text.

Sphinx + MyST-NB + sphinx-book-theme (the engine and look of Jupyter Book 1) because every part
of it works offline: the theme, its fonts and icons ship in the wheels, MyST-NB executes the
notebooks with the local kernel, and MathJax comes from the kit's npm packages (no CDN).
Jupyter Book 2 (mystmd) downloads its HTML theme at build time; nbconvert templates alone give
no table of contents, navigation or cross-links.

``make site`` copies ``index.md`` (this folder), ``lectures/`` and ``labs/`` into
``build/site-src/`` (copies, not links: MyST resolves links by real path) and runs
``sphinx-build -c lectures/_site`` on it into ``build/site/``. Lectures are executed (cached in ``build/site-cache/`` until a notebook
changes); labs are shown as released to students, unexecuted: never ``solutions/``.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KIT = HERE.parents[1]
sys.path.insert(0, str(HERE))          # the nnopt_site extension beside this file

project = "nnopt: optimization for neural networks"
author = "the nnopt course kit"
copyright = "the nnopt course kit authors"

extensions = ["myst_nb", "sphinx.ext.mathjax", "nnopt_site"]
root_doc = "index"
exclude_patterns = ["**/.ipynb_checkpoints"]
suppress_warnings = ["mystnb.unknown_mime_type"]

# --- notebooks -----------------------------------------------------------------------------------
nb_execution_mode = "cache"
nb_execution_cache_path = str(KIT / "build" / "site-cache")
nb_execution_excludepatterns = ["labs/*/*.ipynb"]   # a lab's cells wait for the student's code
nb_execution_timeout = 300                          # seconds per cell, as tests/test_lectures.py
nb_execution_raise_on_error = True                  # a failing lecture fails the build
nb_execution_show_tb = True
nb_merge_streams = True
# An explorer offers a widget view and its current frame as a PNG: the static site shows the
# PNG (a widget view would need a kernel), and loads no widget JavaScript from a CDN.
nb_mime_priority_overrides = [
    ("html", "application/vnd.jupyter.widget-view+json", None),
    ("html", "application/vnd.jupyter.widget-state+json", None),
    ("html", "application/javascript", None),
]
nb_ipywidgets_js = {}
nb_render_markdown_format = "myst"                  # $math$ in Markdown outputs (tables) too
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3                            # [text](02_challenges.ipynb#saddle-points)

# --- math: the kit's MathJax 3, copied into _static/mathjax by nnopt_site ---------------------------
mathjax_path = "mathjax/tex-chtml.js"

# --- HTML ------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "nnopt — optimization for neural networks"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,          # the notebook (.ipynb) of every page
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
html_copy_source = True
html_show_sourcelink = False
