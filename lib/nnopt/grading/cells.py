"""Reading the checks of a test cell from its source, without running it (the trusted side).

A lab's test cell may only contain::

    from nnopt import grading
    grading.check_<kind>(<answer>, <literal>, ..., key=<literal>, ...)     # one per line
    pass

with comments anywhere. ``<answer>`` is any expression (the student's class, function,
figure or results: evaluated only in the kernel); the other arguments are literals --
numbers, strings, ``None``/``True``/``False``, lists, tuples, dicts, ``range(...)`` and
``grading.schedule(...)`` with literal arguments. :func:`expected_checks` turns the cell into
the list of :class:`Expected` checks, binding each call to the check's own signature exactly
as the kernel does (:func:`nnopt.grading.spec.bind`), so both sides compute the same
:meth:`Spec.key <nnopt.grading.spec.Spec.key>`. Anything else in a test cell (an ``assert``,
another call) is the lab author's mistake and raises :class:`CellError`.
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import checks, figures, matrices, symbolic, training
from .spec import Spec, bind, schedule

#: check kind -> (check function, number of leading arguments that are the student's objects)
CHECKS: dict[str, tuple[Callable[..., Any], int]] = {
    "trajectory": (checks.check_trajectory, 1), "sequence": (checks.check_sequence, 1),
    "schedule": (checks.check_schedule, 1), "clipping": (checks.check_clipping, 1),
    "run_strategy": (training.check_run_strategy, 1), "benchmark": (training.check_benchmark, 1),
    "trajectory_figure": (figures.check_trajectory_figure, 1),
    "curves_figure": (figures.check_curves_figure, 2),
    "theano_updates": (symbolic.check_theano_updates, 1), "softmax_theano": (symbolic.check_softmax_theano, 1),
    "matrix_function": (matrices.check_matrix_function, 1),
}


class CellError(ValueError):
    """A test cell the grader cannot read (it must follow the grammar above)."""


@dataclass(frozen=True)
class Expected:
    """One check of a test cell: its spec and the source text of its answer argument(s)."""

    spec: Spec
    answers: tuple[str, ...]
    line: int


def literal(node: ast.AST) -> Any:
    """The value of a literal argument (see the module docstring); CellError otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal(e) for e in node.elts]
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {literal(k): literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Call) and not any(k.arg is None for k in node.keywords):
        name = ast.unparse(node.func)
        args, kwargs = [literal(a) for a in node.args], {k.arg: literal(k.value) for k in node.keywords}
        if name == "range" and not kwargs and all(isinstance(a, int) for a in args):
            return list(range(*args))
        if name == "grading.schedule" and len(args) == 1:
            return schedule(*args, **kwargs)
    raise CellError(f"line {getattr(node, 'lineno', '?')}: {ast.unparse(node)[:80]!r} is not a literal "
                    "(numbers, strings, lists, dicts, range(...), grading.schedule(...))")


def _check_call(node: ast.Expr) -> tuple[str, ast.Call] | None:
    call = node.value
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
            and isinstance(call.func.value, ast.Name) and call.func.value.id == "grading" \
            and call.func.attr.startswith("check_"):
        return call.func.attr[len("check_"):], call
    return None


def expected_checks(source: str) -> list[Expected]:
    """The checks a test cell's source states, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise CellError(f"the test cell does not parse (line {exc.lineno})") from None
    found: list[Expected] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.ImportFrom) and stmt.module == "nnopt"
                                          and [a.name for a in stmt.names] == ["grading"]):
            continue
        hit = _check_call(stmt) if isinstance(stmt, ast.Expr) else None
        if hit is None or hit[0] not in CHECKS:
            raise CellError(f"line {stmt.lineno}: a test cell may only import grading and call "
                            f"grading.check_<kind>(...) with <kind> in {sorted(CHECKS)}")
        kind, call = hit
        fn, n_answers = CHECKS[kind]
        if len(call.args) < n_answers or any(isinstance(a, ast.Starred) for a in call.args) \
                or any(k.arg is None for k in call.keywords):
            raise CellError(f"line {stmt.lineno}: check_{kind} takes {n_answers} answer argument(s) first, "
                            "then literal arguments (no *args / **kwargs)")
        answers = tuple(ast.unparse(a) for a in call.args[:n_answers])
        args = [object()] * n_answers + [literal(a) for a in call.args[n_answers:]]
        kwargs = {k.arg: literal(k.value) for k in call.keywords}
        try:
            _, spec = bind(fn, kind, tuple(args), kwargs, n_answers)
        except (TypeError, ValueError) as exc:
            raise CellError(f"line {stmt.lineno}: check_{kind}: {exc}") from None
        if any(e.spec.key() == spec.key() for e in found):
            raise CellError(f"line {stmt.lineno}: the same check appears twice in one cell")
        found.append(Expected(spec, answers, stmt.lineno))
    return found
