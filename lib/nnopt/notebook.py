"""Display helpers the lecture notebooks share: source code and small tables as Markdown.

``show_source(nnopt.Adam._update)`` puts the real implementation next to its algorithm
box; ``markdown_table(header, rows)`` renders computed numbers as a table, so no number
in a lecture is typed by hand.
"""
from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from IPython.display import Markdown, display

from .validation import Described, invalid

__all__ = ["show_source", "markdown_table", "format_table"]


def show_source(*objects: Any) -> None:
    """Display the source code of functions, methods or classes as one highlighted block."""
    if not objects:
        raise invalid("objects", objects, "at least one function, method or class to show")
    source = "\n".join(inspect.getsource(o) for o in objects)
    display(Markdown(f"```python\n{source}```"))


def format_table(header: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "{:.3g}") -> str:
    """Rows of values as Markdown table text; floats are formatted with ``fmt``."""
    header = list(header)
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + " --- |" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise invalid(f"row {i}", Described(f"{len(row)} values"), f"{len(header)}, one per column")
        cells = (fmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "{:.3g}") -> None:
    """Display :func:`format_table` as rendered Markdown."""
    display(Markdown(format_table(header, rows, fmt)))
