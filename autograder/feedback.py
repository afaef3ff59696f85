"""What students get back: no hidden tests, nothing of their outputs that could run script.

* :class:`StripHiddenTests` -- nbgrader restores hidden tests into the autograded notebook
  (that is how they run) and its feedback shows that notebook. Here each hidden region is
  replaced by a one-line note and **every output of a cell holding hidden tests is dropped**
  (replaced by a note): the student's own code runs inside those tests, so anything it
  prints or raises there (hyperparameters, surfaces, reference values the hidden tests pass
  to it) would otherwise reach the student. The cell's score is still shown. Outputs of
  *other* cells that quote a line of the hidden tests (``print(In)``, a read of the notebook
  file, a traceback) are dropped too. What remains possible: a submission that stores the
  arguments the hidden tests pass to its code and prints them, encoded, from a later cell of
  its own; vary the hidden inputs between rounds if resubmission is allowed.
* No script, two layers (both are tested in Chromium, ``tests/test_sandbox_feedback.py``):
  nbconvert's sanitizer (``SanitizeHTML`` on markdown cells, ``HTMLExporter.sanitize_html``
  on outputs: ``<script>``, ``on*=`` handlers and ``javascript:`` links are escaped,
  JavaScript, widget and SVG outputs dropped), and a ``Content-Security-Policy`` in the page
  (:class:`FeedbackHTMLExporter`) that allows no script at all, no external request and no
  form, so whatever the sanitizer missed cannot run either. Math still shows: the page's
  formulas are typeset into inline SVG when it is written (:mod:`autograder.offline_math`),
  so the student's browser runs no MathJax.
"""
from __future__ import annotations

import re
from typing import Any

from nbformat.notebooknode import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import ClearHiddenTests

from autograder.offline_math import TypesetHTMLExporter, after_open_tag

NOTE = "# (hidden tests ran here; they are not shown)"
OUTPUT_NOTE = "(The output of the hidden tests is not shown. The score of this cell is above.)\n"
QUOTE_NOTE = "(An output was removed from the feedback: it quoted the hidden tests.)\n"
#: Lines of hidden tests shorter than this (after squashing) are too common to look for.
MIN_QUOTE = 12
#: No script of any kind, no request leaving the page; inline styles and embedded images only.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'none'; object-src 'none'; "
                           "style-src 'unsafe-inline'; img-src data:; font-src data:; "
                           "base-uri 'none'; form-action 'none'; frame-src 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'


class StripHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` for feedback: a note where the tests were, no output of them."""

    enforce_metadata = False

    def preprocess(self, nb: NotebookNode, resources: Any):
        self._hidden_lines = hidden_test_lines(nb, self)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        if cell.cell_type != "code":
            return cell, resources
        if self.begin_test_delimeter not in cell.source:
            cell.outputs = [new_output("stream", name="stdout", text=QUOTE_NOTE)
                            if self._quotes_hidden(out) else out for out in cell.outputs]
            return cell, resources
        cell.source = "\n".join(NOTE if self.begin_test_delimeter in line else line
                                for line in _split_region(cell.source.split("\n"), self)[0])
        cell.outputs = [new_output("stream", name="stdout", text=OUTPUT_NOTE)]
        return cell, resources

    def _quotes_hidden(self, output: NotebookNode) -> bool:
        return quotes_hidden(_output_text(output), getattr(self, "_hidden_lines", []))


def hidden_test_lines(nb: NotebookNode, delims: ClearHiddenTests | None = None) -> list[str]:
    """The lines of ``nb``'s hidden tests worth looking for in outputs (squashed, see below)."""
    delims = delims or ClearHiddenTests()
    return [line for cell in nb.cells if cell.cell_type == "code"
            for line in map(_squash, _split_region(cell.source.split("\n"), delims)[1])
            if len(line) >= MIN_QUOTE]


def quotes_hidden(text: str, lines: list[str]) -> bool:
    """Whether ``text`` contains one of ``lines`` (from :func:`hidden_test_lines`), ignoring
    whitespace, quotes and backslashes (so that a ``repr`` or an HTML page still matches)."""
    squashed = _squash(text)
    return any(line in squashed for line in lines)


def _squash(text: str) -> str:
    """``text`` without whitespace, quotes and backslashes (so that a ``repr`` still matches)."""
    return re.sub(r"[\s'\"\\]", "", text)


def _output_text(output: NotebookNode) -> str:
    parts = [output.get("text", ""), output.get("ename", ""), output.get("evalue", ""),
             *output.get("traceback", []), *(v for v in output.get("data", {}).values() if isinstance(v, str))]
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def _split_region(lines: list[str], delims: ClearHiddenTests) -> tuple[list[str], list[str]]:
    """(the lines outside hidden regions, each BEGIN line kept as the marker for NOTE;
    the lines inside them)."""
    kept, hidden, inside = [], [], False
    for line in lines:
        if delims.begin_test_delimeter in line:
            inside = True
            kept.append(line)
        elif delims.end_test_delimeter in line:
            inside = False
        else:
            (hidden if inside else kept).append(line)
    return kept, hidden


def strip_notebook(nb: NotebookNode) -> NotebookNode:
    """Apply :class:`StripHiddenTests` to ``nb`` (in place) and return it."""
    StripHiddenTests().preprocess(nb, {})
    return nb


def with_csp(html: str) -> str:
    """``html`` with :data:`CSP_META` as the first element of its ``<head>`` (before any
    content that could hold script; a page without ``<head>`` gets one)."""
    at = after_open_tag(html, "head")
    if at is None:
        return f"<head>{CSP_META}</head>\n{html}"
    return html[:at] + "\n" + CSP_META + html[at:]


class FeedbackHTMLExporter(TypesetHTMLExporter):
    """nbgrader's feedback HTML (``GenerateFeedback.exporter_class``): formulas typeset offline,
    then the CSP as the first element of the page's head."""

    def from_notebook_node(self, nb: NotebookNode, resources: dict | None = None, **kw: Any):
        output, resources = super().from_notebook_node(nb, resources, **kw)
        return with_csp(output), resources
