"""The lecture notebooks: committed clean, and executed top to bottom headless.

Every ``lectures/*.ipynb`` is picked up automatically. For each notebook:

* the committed file is stripped (no outputs, no execution counts), uses the ``python3``
  kernel and starts with a level-1 markdown title;
* it executes with nbclient (cwd = ``lectures/``, a per-cell timeout); a failing cell fails
  the test with the cell's error;
* no output is a traceback or stderr text (warnings count: a lecture must run clean);
* every cell tagged ``widget`` produced an image (the explorer's figure), so widgets also
  render in a headless run and on static viewers.

The wall-clock time of each notebook is printed (``pytest -s``) and attached to the test
report as the ``seconds`` property; it is never asserted (see benchmarks/ for speed targets).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest

LECTURES = Path(__file__).resolve().parents[1] / "lectures"
NOTEBOOKS = sorted(LECTURES.glob("*.ipynb"))
CELL_TIMEOUT = 300          # seconds per cell; a notebook should need < 2 min in total
KERNEL = "python3"
_TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex")


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _cell_label(index: int, cell) -> str:
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return f"cell {index} ({first[:60]!r})"


def test_lectures_exist():
    numbered = [p for p in NOTEBOOKS if p.name[:2].isdigit()]
    assert len(numbered) >= 4, f"expected the numbered lecture notebooks in {LECTURES}, found {NOTEBOOKS}"
    assert (LECTURES / "README.md").is_file(), "lectures/README.md (order, goals, time) is missing"


def test_readme_lists_every_notebook():
    readme = (LECTURES / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in NOTEBOOKS if p.name not in readme]
    assert not missing, f"lectures/README.md does not mention {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_is_clean(path: Path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL, f"{path.name}: kernelspec must be {KERNEL!r}"
    dirty = [_cell_label(i, c) for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: strip outputs before committing; cells with outputs: {dirty}"
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert markdown and markdown[0].source.lstrip().startswith("# "), \
        f"{path.name}: the first markdown cell must start with a level-1 title ('# ...')"


def _problems(nb: nbformat.NotebookNode) -> list[str]:
    """Tracebacks, stderr output and widget cells without an image, in an executed notebook."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        label = _cell_label(i, cell)
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"{label}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"{label} wrote to stderr: {out.text.strip()[:300]!r}")
            data = out.get("data", {})
            text = out.get("text", "") + "".join(str(data.get(kind, "")) for kind in _TEXT_TYPES)
            if "Traceback" in text:
                problems.append(f"{label} printed a traceback")
        if "widget" in cell.metadata.get("tags", []):
            if not any("image/png" in out.get("data", {}) for out in cell.outputs):
                problems.append(f"{label} is tagged 'widget' but produced no image")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_executes(path: Path, record_property):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = _read(path)
    # jupyter_client starts the "python3" kernel with sys.executable (its argv[0] is "python"),
    # so the kernel runs in the interpreter that runs pytest (the project's .venv); it inherits
    # MPLBACKEND=Agg from conftest.py, so nothing tries to open a window.
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL, allow_errors=False,
                            resources={"metadata": {"path": str(LECTURES)}})
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed to execute:\n{err}", pytrace=False)
    seconds = time.perf_counter() - start
    record_property("seconds", round(seconds, 1))
    print(f"\n{path.name}: executed in {seconds:.1f} s ({sys.executable})")
    problems = _problems(nb)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_problem_detector_flags_errors_stderr_and_widgets_without_image():
    """The checks above must be able to fail: feed them an executed notebook with each defect."""
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    def cell(outputs, tags=()):
        c = new_code_cell("x = 1", outputs=outputs)
        c.metadata["tags"] = list(tags)
        return c

    clean = new_notebook(cells=[
        cell([new_output("stream", name="stdout", text="fine\n")]),
        cell([new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})],
             tags=["widget"]),
    ])
    assert _problems(clean) == []
    broken = new_notebook(cells=[
        cell([new_output("error", ename="ValueError", evalue="bad", traceback=[])]),
        cell([new_output("stream", name="stderr", text="UserWarning: careful\n")]),
        cell([new_output("stream", name="stdout", text="Traceback (most recent call last):\n")]),
        cell([new_output("display_data", data={"text/plain": "VBox(...)"})], tags=["widget"]),
    ])
    problems = _problems(broken)
    assert len(problems) == 4, problems
    assert "ValueError: bad" in problems[0] and "stderr" in problems[1]
    assert "traceback" in problems[2] and "no image" in problems[3]
