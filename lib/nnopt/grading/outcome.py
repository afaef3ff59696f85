"""What a judge returns and works with: :class:`Verdict`, :class:`Context`, answer decoding.

Kept apart from :mod:`.verdict` (which needs the references) so the modules that run in the
student's kernel can import these names while the references are not installed.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import compare, record


@dataclass
class Verdict:
    """``ok``; ``message`` for the student; ``bugs``: keys of the diagnosed wrong variants;
    ``grader_error``: the reference itself could not be computed (not the student's fault)."""

    ok: bool
    message: str
    bugs: list[str] = field(default_factory=list)
    grader_error: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "bugs": list(self.bugs),
                "grader_error": self.grader_error}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Verdict":
        return cls(bool(data.get("ok")), str(data.get("message", "")), [str(b) for b in data.get("bugs", [])],
                   bool(data.get("grader_error")))


class Context:
    """What the judge knows besides the record.

    ``trusted``: the grader built this context from the notebook (autograde); then
    ``sources`` (answer name -> the source of the cell defining it) and ``problems`` (what
    makes the notebook's Theano part untrustworthy, e.g. a rebound ``T``) replace what the
    kernel recorded. ``cache`` holds expensive references (re-trainings) shared by the
    checks of one notebook.
    """

    def __init__(self, sources: Mapping[str, str] | None = None, problems: Sequence[str] = (),
                 trusted: bool = False) -> None:
        self.sources = dict(sources or {})
        self.problems = list(problems)
        self.trusted = trusted
        self.cache: dict[str, Any] = {}


class AnswerError(ValueError):
    """The recorded answer does not have the shape its check produces."""


def numbers(answer: Mapping[str, Any], key: str, ndim: int | None = None) -> np.ndarray:
    """The array ``answer[key]``; AnswerError if it is missing or malformed."""
    if key not in answer:
        raise AnswerError(f"no {key!r}")
    try:
        arr = record.decode(answer[key], key)
    except ValueError as exc:
        raise AnswerError(str(exc)) from None
    if ndim is not None and arr.ndim != ndim:
        raise AnswerError(f"{key!r} has {arr.ndim} dimensions, expected {ndim}")
    return arr


def with_tolerance(message: str, tol: compare.Tolerance, answer_dtype: str | None = None) -> str:
    return f"{message}\n  ({tol.describe(answer_dtype)})"
