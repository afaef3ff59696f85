"""Argument checks shared by the whole package, with one message style::

    Invalid <name>: <value> (expected <what would have been accepted>)

Every check returns the value normalised (``check_number`` -> ``float``, ``check_int`` ->
``int``, ...) or raises ``ValueError`` with that message, so a caller writes
``self.rho = check_unit("rho", rho)`` and a student reads, e.g.,
``Invalid rho: 1.0 (expected a number in [0, 1))``. Booleans are never accepted as numbers.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["invalid", "show", "Described", "check_number", "check_nonneg", "check_positive", "check_unit", "check_int",
           "check_flag", "check_choice", "check_names", "check_arguments", "check_float_dtype", "FLOAT_DTYPES"]

#: The floating-point types the kit computes in (float16 rounds eps to 0 and overflows norms).
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_MAX_SHOWN = 80


class Described(str):
    """A description standing in for the value in a message, shown without quotes
    (``invalid("grads", Described("2 arrays"), "3")``)."""

    def __repr__(self) -> str:
        return str(self)


def show(value: Any) -> str:
    """A short ``repr`` of ``value`` for a message (dtypes by name, arrays by shape and dtype)."""
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, np.ndarray) and value.size > 4:
        return f"array of shape {value.shape}, dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 3] + "..."


def invalid(name: str, value: Any, expected: str) -> ValueError:
    """The error for a bad ``value`` of ``name``: ``Invalid <name>: <value> (expected ...)``."""
    return ValueError(f"Invalid {name}: {show(value)} (expected {expected})")


def _is_number(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    """``"a finite number >= 0"``, ``"a number in [0, 1)"``, ``"a finite number <= 1"``, ..."""
    if math.isinf(high) and math.isinf(low):
        return "a finite number"
    if math.isinf(high):
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float if it is a finite number in the interval from ``low`` to ``high``
    (closed ends unless ``low_open``/``high_open``), else ValueError."""
    ok = _is_number(value) and math.isfinite(value)
    if ok:
        value = float(value)
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        raise invalid(name, value, _interval(low, high, low_open, high_open))
    return value


def check_nonneg(name: str, value: Any) -> float:
    """A finite number >= 0 (eps, weight decay, a learning rate, ...)."""
    return check_number(name, value, 0.0)


def check_positive(name: str, value: Any) -> float:
    """A finite number > 0 (a threshold, a tolerance, ...)."""
    return check_number(name, value, 0.0, low_open=True)


def check_unit(name: str, value: Any) -> float:
    """A decay rate or momentum coefficient: 0 <= value < 1."""
    return check_number(name, value, 0.0, 1.0, high_open=True)


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an int if it is an integer >= ``minimum`` (counts, sizes, seeds)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise invalid(name, value, f"an integer >= {minimum}")
    return int(value)


def check_flag(name: str, value: Any) -> bool:
    """True or False (no truthy stand-ins such as ``"yes"`` or 1)."""
    if not isinstance(value, bool):
        raise invalid(name, value, "True or False")
    return value


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    try:
        ok = value in choices
    except TypeError:                                   # unhashable value, dict choices
        ok = False
    if not ok:
        raise invalid(name, value, f"one of {list(choices)}")
    return value


def check_names(name: str, given: Iterable[str], allowed: Collection[str]) -> None:
    """Every name in ``given`` is one of ``allowed`` (keyword arguments, control names, ...)."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise invalid(name, unknown, f"names among {sorted(allowed)}")


def check_arguments(name: str, fn: Callable, kwargs: Mapping[str, Any]) -> None:
    """``fn(**kwargs)`` would bind: every keyword is a parameter of ``fn`` and the required ones
    are there (a message listing them instead of Python's TypeError naming some inner class)."""
    signature = inspect.signature(fn)
    try:
        signature.bind(**kwargs)
    except TypeError:
        required = [n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty]
        raise invalid(name, dict(kwargs), f"keyword arguments among {list(signature.parameters)}"
                      + (f", with {required} required" if required else "")) from None


def check_float_dtype(name: str, dtype: Any) -> np.dtype:
    """``np.dtype(dtype)`` if it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise invalid(name, dtype if dt is None else dt, "float32 or float64")
    return dt
