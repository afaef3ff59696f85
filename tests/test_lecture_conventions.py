"""Teaching conventions of the lecture notebooks, checked on the committed files (no execution).

* no code cell over 20 lines (a student reads a cell at a glance);
* exercises have answers a student must expand: every ``<details>`` block is closed and not
  ``open`` by default, and a cell whose source is hidden also hides its output (an answer check
  must not print the answer under the question);
* every notebook has exercises with folded answers.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

LECTURES = Path(__file__).resolve().parents[1] / "lectures"
NOTEBOOKS = sorted(LECTURES.glob("[0-9]*.ipynb"))
MAX_CODE_LINES = 20


def _cells(path: Path):
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_code_cells_are_short(path: Path):
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(_cells(path))
            if c.cell_type == "code" and len(c.source.splitlines()) > MAX_CODE_LINES]
    assert not long, f"{path.name}: code cells over {MAX_CODE_LINES} lines (index, lines): {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_answers_are_folded(path: Path):
    cells = _cells(path)
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    opened, closed = len(re.findall(r"<details\b", text)), text.count("</details>")
    assert opened and opened == closed, f"{path.name}: {opened} <details> blocks, {closed} closed"
    assert not re.search(r"<details\s+open", text), f"{path.name}: an answer block is open by default"
    leaky = [i for i, c in enumerate(cells) if c.metadata.get("jupyter", {}).get("source_hidden")
             and not c.metadata.get("jupyter", {}).get("outputs_hidden")]
    assert not leaky, f"{path.name}: hidden answer cells whose output is still shown: {leaky}"


def test_the_checks_can_fail(tmp_path: Path):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    bad = new_notebook(cells=[new_markdown_cell("<details open><summary>Answer</summary>42"),
                              new_code_cell("\n".join(["x = 1"] * (MAX_CODE_LINES + 1)))])
    bad.cells.append(new_code_cell("print(42)", metadata={"jupyter": {"source_hidden": True}}))
    path = tmp_path / "99_bad.ipynb"
    nbformat.write(bad, path)
    with pytest.raises(AssertionError, match="over 20 lines"):
        test_code_cells_are_short(path)
    with pytest.raises(AssertionError, match="1 <details> blocks, 0 closed"):
        test_answers_are_folded(path)
