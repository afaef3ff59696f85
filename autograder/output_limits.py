"""Byte caps on what a graded notebook prints: per cell and per notebook, in order.

nbgrader's own ``LimitOutput`` counts *lines*: one ``print("x" * 200_000_000)`` is one line,
and 200 MB reach the autograded notebook, the feedback and the gradebook's disk. Here every
output is measured in bytes (its JSON encoding) and a cell keeps, in the original order,

1. the outputs that decide points, never dropped: ``error`` outputs (nbgrader scores the cell
   0), ``stderr`` streams (also 0), ``execute_result`` (partial credit) and outputs carrying
   one of ``keep_mimetypes`` (the answers that test cells record for the trusted verdict,
   ``application/vnd.nnopt.answer+json``). Errors, stderr and results are shortened to a stub
   of at most :data:`STUB_BYTES` when the budget is short; a recorded answer is kept whole or,
   if it alone is over the budget, replaced by the note;
2. then every other output, first come first kept, while the cell's budget lasts; the output
   that crosses the line is cut (streams) or dropped (anything else).

Where something was cut or dropped, one ``stdout`` note says how many bytes and which limit.
The budget of a cell is ``min(cell_limit, what is left of notebook_limit)``, but never below
:data:`STUB_BYTES`, so that a cell after a flood still shows its own error.

This module has no dependencies beyond the standard library: the sandboxed executor
(``sandbox_exec.py``) applies it while the notebook runs, and the grader's preprocessor
(``preprocessors.LimitOutputBytes``) applies it again to what comes back.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

#: The answer records of the trusted verdict (issue 16): never dropped while they fit.
ANSWER_MIMETYPE = "application/vnd.nnopt.answer+json"
#: The largest stub left of an error, a stderr stream or a result when the budget is short.
STUB_BYTES = 2048
#: Start of the note added where output was cut (tests and tools look for it).
NOTE_PREFIX = "[nnopt autograder: output truncated"
NOTE_PATTERN = re.compile(r"^\n\[nnopt autograder: output truncated: (\d+) bytes over")
#: Room kept for that note when something is cut.
NOTE_BYTES = 256

Output = MutableMapping[str, Any]


def output_bytes(output: Output) -> int:
    """Size of one output as stored in the notebook (UTF-8 JSON)."""
    return len(json.dumps(output, ensure_ascii=False, default=str).encode("utf-8", "replace"))


def rough_bytes(output: Output) -> int:
    """A cheap lower bound of :func:`output_bytes`: the characters of its strings (a 200 MB
    print is measured without encoding it)."""
    def chars(value: Any) -> int:
        if isinstance(value, str):
            return len(value)
        if isinstance(value, dict):
            return sum(len(str(k)) + chars(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return sum(chars(v) for v in value)
        return 8
    return chars(output)


def _trimmed(output: Output, limit: int) -> Output:
    """``output`` with each string cut to ``limit`` characters when that is certainly over
    the budget anyway (so that the exact measure below stays cheap)."""
    if rough_bytes(output) <= 4 * limit:
        return output

    def cut(value: Any) -> Any:
        if isinstance(value, str):
            return value[:limit + 1]
        if isinstance(value, dict):
            return {k: cut(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cut(v) for v in value[:limit + 1]]
        return value
    return cut(output)


def _as_text(value: Any) -> str:
    """A stream's or traceback's text, which nbformat also allows as a list of strings."""
    if isinstance(value, list):
        return "".join(map(str, value))
    return value if isinstance(value, str) else str(value)


def _cut_text(value: Any, limit: int) -> str:
    """``value`` as text, cut to at most ``limit`` UTF-8 bytes (never inside a character)."""
    text = _as_text(value)
    raw = text.encode("utf-8", "replace")
    return text if len(raw) <= limit else raw[:max(limit, 0)].decode("utf-8", "ignore")


def _decides_points(output: Output, keep_mimetypes: Iterable[str]) -> bool:
    kind = output.get("output_type")
    if kind in ("error", "execute_result"):
        return True
    if kind == "stream":
        return output.get("name") == "stderr"
    data = output.get("data") or {}
    return any(m in data for m in keep_mimetypes)


def _stub(output: Output, limit: int) -> Output:
    """A shortened copy of an error, stderr stream or result that fits in ``limit`` bytes."""
    kind, limit = output.get("output_type"), max(limit, 64)
    if kind == "stream":
        return {**output, "text": _cut_text(output.get("text", ""), limit - 64) or "\n"}
    if kind == "error":
        lines = [_cut_text(line, limit // 4) for line in (output.get("traceback") or [])]
        stub = {**output, "ename": _cut_text(output.get("ename", ""), 128),
                "evalue": _cut_text(output.get("evalue", ""), limit // 4),
                "traceback": lines[:2] + (["..."] if len(lines) > 3 else []) + lines[-1:] if len(lines) > 2 else lines}
        while output_bytes(stub) > limit and stub["traceback"]:
            stub["traceback"] = stub["traceback"][:-1]
        return stub
    text = _cut_text((output.get("data") or {}).get("text/plain", ""), limit - 256)
    return {**output, "data": {"text/plain": text}, "metadata": {}}


def note(dropped: int, limit: int, scope: str) -> dict[str, Any]:
    """The ``stdout`` note that replaces ``dropped`` bytes of output."""
    return {"output_type": "stream", "name": "stdout",
            "text": f"\n{NOTE_PREFIX}: {dropped} bytes over the limit of {limit} bytes per {scope}]\n"}


def _earlier_cut(output: Output) -> int | None:
    """The bytes an earlier pass's note says it cut, if ``output`` is such a note."""
    if output.get("output_type") != "stream":
        return None
    match = NOTE_PATTERN.match(_as_text(output.get("text", "")))
    return int(match.group(1)) if match else None


def cap_outputs(outputs: Sequence[Output], budget: int, scope: str = "cell",
                keep_mimetypes: Iterable[str] = (ANSWER_MIMETYPE,)) -> tuple[list[Output], int]:
    """``outputs`` limited to ``budget`` bytes as the module docstring says.

    Returns ``(kept, dropped)``: the outputs to store, in their original order (with one
    note where anything was cut, counting what earlier passes cut), and how many bytes were
    cut now. Outputs that fit, notes included, are returned as they are.
    """
    keep_mimetypes = tuple(keep_mimetypes)
    rough = [rough_bytes(o) for o in outputs]
    if sum(rough) <= budget // 8 or sum(rough) <= budget and sum(map(output_bytes, outputs)) <= budget:
        return list(outputs), 0
    earlier = [_earlier_cut(o) for o in outputs]
    rough = [r for r, e in zip(rough, earlier) if e is None]
    outputs = [o for o, e in zip(outputs, earlier) if e is None]
    budget = max(budget, STUB_BYTES)
    room_for = budget - NOTE_BYTES                        # the note must fit too
    outputs = [_trimmed(o, budget) for o in outputs]
    sizes = [output_bytes(o) for o in outputs]
    essential = [_decides_points(o, keep_mimetypes) for o in outputs]
    # 1. reserve room for the outputs that decide points (whole if possible, else a stub)
    chosen: dict[int, Output] = {}
    used = 0
    for i, out in enumerate(outputs):
        if not essential[i]:
            continue
        is_record = out.get("output_type") not in ("error", "execute_result", "stream")
        if used + sizes[i] <= room_for:
            chosen[i], used = out, used + sizes[i]
        elif not is_record:
            stub = _stub(out, min(STUB_BYTES, max(room_for - used, 0)))
            first_of_kind = not any(c.get("output_type") == out.get("output_type") for c in chosen.values())
            if used + output_bytes(stub) <= room_for or first_of_kind:
                chosen[i], used = stub, used + output_bytes(stub)
    # 2. the rest, in order, while the budget lasts; the stream crossing the line is cut
    for i, out in enumerate(outputs):
        if essential[i]:
            continue
        room = room_for - used
        if sizes[i] <= room:
            chosen[i], used = out, used + sizes[i]
        elif out.get("output_type") == "stream" and room > 256:
            cut = {**out, "text": _cut_text(out.get("text", ""), room - 128)}
            chosen[i], used = cut, used + output_bytes(cut)
    dropped = sum(max(sizes[i], rough[i]) - (output_bytes(chosen[i]) if i in chosen else 0)
                  for i in range(len(outputs)))
    kept = [chosen[i] for i in sorted(chosen)]
    total = dropped + sum(e for e in earlier if e is not None)
    if total > 0:
        cut_at = [i for i, o in enumerate(outputs) if chosen.get(i) is not o]
        position = sum(1 for i in chosen if i <= cut_at[0]) if cut_at else len(kept)
        kept.insert(position, note(total, budget, scope))
    return kept, max(dropped, 0)


class NotebookBudget:
    """Caps the cells of one notebook in turn: ``cell_limit`` each, ``notebook_limit`` in all."""

    def __init__(self, cell_limit: int, notebook_limit: int,
                 keep_mimetypes: Iterable[str] = (ANSWER_MIMETYPE,)):
        for name, value in (("cell_limit", cell_limit), ("notebook_limit", notebook_limit)):
            if not isinstance(value, int) or value < STUB_BYTES:
                raise ValueError(f"Invalid {name}: {value!r} (expected an integer >= {STUB_BYTES} bytes)")
        self.cell_limit, self.notebook_limit = cell_limit, notebook_limit
        self.keep_mimetypes = tuple(keep_mimetypes)
        self.used = 0
        self.truncated_cells: list[int] = []

    def budget(self) -> tuple[int, str]:
        """Bytes the next cell may use and the limit that decides it."""
        left = self.notebook_limit - self.used
        if left < self.cell_limit:
            return max(left, STUB_BYTES), "notebook"
        return self.cell_limit, "cell"

    def cap(self, index: int, outputs: Sequence[Output]) -> list[Output]:
        """Cap the outputs of cell ``index`` and charge them to the notebook."""
        budget, scope = self.budget()
        kept, dropped = cap_outputs(outputs, budget, scope, self.keep_mimetypes)
        if dropped or any(_earlier_cut(o) for o in kept):
            self.truncated_cells.append(index)
        self.used += sum(output_bytes(o) for o in kept)
        return kept
