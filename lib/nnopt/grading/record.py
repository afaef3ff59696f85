"""Records: the student's answers as numbers, left in the outputs of the test cell that made them.

Every check publishes one ``display_data`` output with the mimetype :data:`MIMETYPE`::

    {"v": 1, "spec": {"kind": ..., "args": ..., "why": ...},
     "answer": {...numbers...}}            # or "error": "what went wrong"

plus a ``text/plain`` line for people (JupyterLab shows that one). At autograde the trusted
grader (``autograder.verdicts``) reads these records back from the executed notebook, matches
them with the checks it parsed from the trusted test-cell source and decides the points
itself: a record is only ever *data*, and a forged one wins nothing unless its numbers are
right.

Two modes, chosen by the environment of the kernel:

* ``NNOPT_GRADING_MODE=record`` (set by the grading sandbox, with ``NNOPT_LAB=<lab>``):
  checks only record; no verdict in the kernel (the references are absent there).
* anything else (a student running or validating the notebook): checks record *and* give
  the verdict at once, computed by a separate reference process.

Numbers are JSON: non-finite values are written as the strings ``"nan"``, ``"inf"``,
``"-inf"`` (JSON has no NaN), see :func:`encode`.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .spec import Spec

MIMETYPE = "application/vnd.nnopt.answer+json"
VERSION = 1
#: Limits on what the grader reads back from an untrusted record.
MAX_NUMBERS = 200_000
MAX_TEXT = 4_000
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def recording_only() -> bool:
    """True inside the grading sandbox: record, give no verdict (``NNOPT_GRADING_MODE=record``)."""
    return os.environ.get("NNOPT_GRADING_MODE", "") == "record"


def encode(value: Any) -> Any:
    """Numbers (scalars, arrays, nested lists) as JSON lists of floats; non-finite as strings."""
    arr = np.asarray(value, dtype=np.float64)
    flat = [float(x) if math.isfinite(x) else ("nan" if math.isnan(x) else "inf" if x > 0 else "-inf")
            for x in arr.reshape(-1).tolist()]
    return np.array(flat, dtype=object).reshape(arr.shape).tolist() if arr.ndim else flat[0]


def decode(value: Any, what: str = "a recorded value") -> np.ndarray:
    """The float64 array of an :func:`encode`-d value; ValueError if it is not one."""
    count = [0]

    def number(x: Any) -> float:
        count[0] += 1
        if count[0] > MAX_NUMBERS:
            raise ValueError(f"Invalid {what}: more than {MAX_NUMBERS} numbers")
        if isinstance(x, bool) or not isinstance(x, (int, float, str)):
            raise ValueError(f"Invalid {what}: {type(x).__name__} (expected numbers)")
        if isinstance(x, str):
            if x not in _NONFINITE:
                raise ValueError(f"Invalid {what}: {x[:20]!r} (expected a number)")
            return _NONFINITE[x]
        return float(x)

    def walk(x: Any) -> Any:
        return [walk(v) for v in x] if isinstance(x, list) else number(x)

    try:
        return np.array(walk(value), dtype=np.float64)
    except (ValueError, TypeError) as exc:     # ragged lists
        raise ValueError(f"Invalid {what}: {exc}") from None


def make(spec: Spec, answer: Mapping[str, Any] | None = None, error: str | None = None) -> dict[str, Any]:
    """The record of one check: its spec and either the answer or the error."""
    out: dict[str, Any] = {"v": VERSION, "spec": spec.to_json()}
    if error is not None:
        out["error"] = str(error)[:MAX_TEXT]
    else:
        out["answer"] = dict(answer or {})
    return out


def publish(rec: Mapping[str, Any], text: str) -> None:
    """Put ``rec`` in the current cell's outputs (a display_data with a text/plain line);
    outside IPython (a script), just print the line."""
    from IPython.core.interactiveshell import InteractiveShell
    if not InteractiveShell.initialized():
        print(text)
        return
    from IPython.display import display
    display({MIMETYPE: dict(rec), "text/plain": text}, raw=True)


def in_outputs(outputs: Iterable[Any]) -> list[Any]:
    """The raw record payloads among a cell's outputs (anything with our mimetype)."""
    found = []
    for out in outputs:
        if isinstance(out, Mapping) and out.get("output_type") in ("display_data", "execute_result"):
            data = out.get("data") or {}
            if isinstance(data, Mapping) and MIMETYPE in data:
                found.append(data[MIMETYPE])
    return found


def parse(payload: Any) -> tuple[Spec, dict[str, Any] | None, str | None]:
    """``(spec, answer, error)`` of a record payload; ValueError if it is malformed."""
    if not isinstance(payload, Mapping) or payload.get("v") != VERSION:
        raise ValueError(f"Invalid record: expected a dict with v={VERSION}")
    spec = Spec.from_json(payload.get("spec"))
    if "error" in payload:
        return spec, None, str(payload["error"])[:MAX_TEXT]
    answer = payload.get("answer")
    if not isinstance(answer, Mapping):
        raise ValueError("Invalid record: no answer and no error")
    return spec, dict(answer), None
