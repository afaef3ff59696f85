"""nnopt.notebook: the display helpers the lectures share."""
from __future__ import annotations

import numpy as np
import pytest

import nnopt
from nnopt import notebook


def test_format_table_formats_floats_and_checks_widths():
    text = notebook.format_table(["name", "value"], [["adam", np.float64(0.123456)], ["sgd", 3]])
    assert text.splitlines() == ["| name | value |", "| --- | --- |", "| adam | 0.123 |", "| sgd | 3 |"]
    assert "1.23e+04" in notebook.format_table(["x"], [[12345.6]])
    with pytest.raises(ValueError, match=r"Invalid row 1: 1 values \(expected 2, one per column\)"):
        notebook.format_table(["a", "b"], [[1, 2], [3]])


def test_show_source_displays_the_real_code(monkeypatch):
    shown = []
    monkeypatch.setattr(notebook, "display", shown.append)
    notebook.show_source(nnopt.SGD._update)
    assert shown[0].data.startswith("```python\n    def _update(") and "p -= c[\"lr\"] * g" in shown[0].data
    with pytest.raises(ValueError, match="at least one"):
        notebook.show_source()
