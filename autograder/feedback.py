"""Strip hidden tests from what students get back (nbgrader leaves them in the feedback).

nbgrader restores hidden tests into the autograded notebook -- that is how they run -- and
its feedback HTML shows that notebook, hidden tests included, along with tracebacks that
quote their lines. :class:`StripHiddenTests` (used by ``GenerateFeedback`` through
``nbgrader_config.py``) replaces each hidden region by a one-line note and reduces the error
output of such cells to its last line (``GradingError: <message for the student>``).
"""
from __future__ import annotations

from typing import Any

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests

NOTE = "# (hidden tests ran here; they are not shown)"


class StripHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` for feedback: keeps a note where tests were and hides tracebacks."""

    enforce_metadata = False

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        if cell.cell_type != "code" or self.begin_test_delimeter not in cell.source:
            return cell, resources
        cell.source = "\n".join(NOTE if self.begin_test_delimeter in line else line
                                for line in _mark_region(cell.source.split("\n"), self))
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                out.traceback = [f"{out.ename}: {out.evalue}"]
        return cell, resources


def _mark_region(lines: list[str], delims: ClearHiddenTests) -> list[str]:
    """Drop the lines of hidden regions, keeping each BEGIN line as the marker for NOTE."""
    kept, inside = [], False
    for line in lines:
        if delims.begin_test_delimeter in line:
            inside = True
            kept.append(line)
        elif delims.end_test_delimeter in line:
            inside = False
        elif not inside:
            kept.append(line)
    return kept


def strip_notebook(nb: NotebookNode) -> NotebookNode:
    """Apply :class:`StripHiddenTests` to every cell of ``nb`` (in place) and return it."""
    pp = StripHiddenTests()
    for i, cell in enumerate(nb.cells):
        pp.preprocess_cell(cell, {}, i)
    return nb
