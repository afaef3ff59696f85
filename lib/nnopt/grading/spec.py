"""A check as data: its kind and its arguments, the same in the kernel, in the reference
process and in the trusted grader.

A test cell states a check as one call with literal arguments, e.g.::

    grading.check_trajectory(Momentum, "momentum", {"lr": 0.05, "momentum": 0.9},
                             surface="quadratic", steps=50)

The first argument is the student's answer (a class, a function, a figure...); every other
argument is a literal -- numbers, strings, lists, dicts, ``range(...)`` or
``grading.schedule(...)`` -- so the grader can read the same check from the cell's source
with :mod:`ast`, without running anything (:mod:`nnopt.grading.cells`). :func:`bind` turns
a call into ``(answer, Spec)``; :meth:`Spec.key` is the canonical JSON both sides compare.
"""
from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Schedules a check may pass to an optimizer as its ``lr`` (names of ``nnopt.schedules``).
SCHEDULE_NAMES = ("constant", "step_decay", "inverse_time", "exponential", "linear_decay",
                  "cosine", "warmup")


class GradingError(AssertionError):
    """A check failed; the message explains what differs and, if it can, names the bug."""


@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule of ``nnopt.schedules`` by name, given to an optimizer as ``lr``.

    The student's optimizer gets a plain function ``t -> lr`` (a table of the schedule's
    values), so a check of ``SGD`` with a schedule does not depend on the student's own
    schedule code; the reference gets the real ``nnopt.schedules`` object.
    """

    name: str
    kwargs: tuple[tuple[str, float], ...]

    def to_json(self) -> dict[str, Any]:
        return {"schedule": self.name, **dict(self.kwargs)}

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.kwargs)})"


def schedule(name: str, **kwargs: float) -> ScheduleSpec:
    """A schedule for a check's hyperparameters, e.g. ``schedule("exponential", lr0=0.1, k=0.02)``."""
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"Invalid schedule: {name!r} (expected one of {', '.join(SCHEDULE_NAMES)})")
    for key, value in kwargs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"Invalid schedule argument {key}: {value!r} (expected a finite number)")
    return ScheduleSpec(name, tuple(sorted(kwargs.items())))


def canonical(value: Any, where: str = "argument") -> Any:
    """``value`` as plain JSON data (lists, dicts with sorted string keys, numbers, strings).

    Schedules become ``{"schedule": name, ...}``, ranges and tuples lists; anything else (an
    array, an object) is refused: a check's arguments must be literals the grader can read.
    """
    if isinstance(value, ScheduleSpec):
        return value.to_json()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Invalid {where}: {value!r} (expected a finite number)")
        return float(value)
    if isinstance(value, (list, tuple, range)):
        return [canonical(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): canonical(v, where) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    raise ValueError(f"Invalid {where}: a {type(value).__name__} (expected a literal: numbers, "
                     "strings, lists, dicts, range(...) or grading.schedule(...))")


@dataclass(frozen=True)
class Spec:
    """One check: ``kind`` (``"trajectory"``, ``"schedule"``...) and its canonical arguments.

    ``why`` is the sentence a visible check shows to say what is expected in words; it is
    not part of :meth:`key` (two checks differing only in wording are the same check).
    """

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    why: str = ""

    def key(self) -> str:
        return json.dumps({"kind": self.kind, "args": self.args}, sort_keys=True)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "args": self.args, "why": self.why}

    @classmethod
    def from_json(cls, data: Any) -> "Spec":
        """A spec read back from a record or a request; ValueError if it is malformed."""
        if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str) \
                or not isinstance(data.get("args"), Mapping):
            raise ValueError("Invalid check: expected {'kind': str, 'args': dict, 'why': str}")
        return cls(data["kind"], canonical(dict(data["args"])), str(data.get("why", "")))

    def describe(self) -> str:
        """A short human label: ``momentum(lr=0.05, momentum=0.9) on quadratic, 50 steps``."""
        a = self.args
        if "reference" in a and "hp" in a:
            text = call_label(a["reference"], a["hp"])
            if "surface" in a:
                surface = call_label(a["surface"], a["surface_kw"]) if a.get("surface_kw") else a["surface"]
                start = "" if a.get("x0") is None else f" from {a['x0']}"
                text += f" on {surface}{start}, {a['steps']} steps"
            elif "grads" in a:
                text += f" fed {len(a['grads'])} given gradient(s) from {a['x0']} ({a['dtype']})"
            return text
        if self.kind == "schedule":
            return f"{call_label(a['reference'], a['kwargs'])} at {len(a['ts'])} values of t"
        if self.kind == "matrix_function":
            return f"{call_label(a['reference'], a['kwargs'] or {})} on {len(a['cases'])} matrix case(s) ({a['dtype']})"
        if self.kind == "clipping":
            return f"{a['reference']} on {len(a['cases'])} case(s) ({a['dtype']})"
        shown = {k: v for k, v in a.items() if not isinstance(v, (list, dict)) or len(str(v)) < 60}
        return call_label(self.kind, shown)


def call_label(name: str, kwargs: Mapping[str, Any]) -> str:
    """``name(k=v, ...)``, with schedules shown as calls too."""
    def show(v: Any) -> str:
        if isinstance(v, Mapping) and "schedule" in v:
            return call_label(v["schedule"], {a: b for a, b in v.items() if a != "schedule"})
        return repr(v)
    return f"{name}({', '.join(f'{k}={show(v)}' for k, v in kwargs.items())})"


def bind(fn: Callable[..., Any], kind: str, args: tuple, kwargs: Mapping[str, Any],
         n_answers: int = 1) -> tuple[Any, Spec]:
    """Bind a call of the check function ``fn`` to its signature: ``(answer, Spec)``.

    The first ``n_answers`` parameters are the student's objects (with more than one, ``answer``
    is their tuple); ``why`` is the optional wording; every other argument, defaults
    included, goes canonically into the spec. A call that does not fit the signature raises
    TypeError, as calling ``fn`` would.
    """
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    objects = tuple(arguments.pop(name) for name in list(arguments)[:n_answers])
    answer = objects[0] if n_answers == 1 else objects
    why = str(arguments.pop("why", "") or "")
    spec = Spec(kind, {k: canonical(v, f"argument {k!r} of check_{kind}") for k, v in arguments.items()}, why)
    return answer, spec
