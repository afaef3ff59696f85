r"""Gradient clipping: the lecture's remedy for cliffs and exploding gradients.

* by value: :math:`g_i \leftarrow \max(-c, \min(c, g_i))` -- each entry separately; cheap,
  but it changes the *direction* of the gradient.
* by global norm: if :math:`\|g\| > v` then :math:`g \leftarrow g\, v / \|g\|`, with
  :math:`\|g\|^2 = \sum_{\text{arrays}} \sum_i g_i^2` -- keeps the direction, bounds the step
  (``torch.nn.utils.clip_grad_norm_``).

Both take a list or dict of arrays and return a new one of the same structure (the input
is not modified), so they slot in between backprop and ``optimizer.step``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Union

import numpy as np

from .validation import Described, check_positive, invalid

Grads = Union[Sequence[np.ndarray], Mapping[str, np.ndarray]]
#: How trainers take clipping: None, ``("norm", max_norm)``, ``("value", c)`` or a callable grads -> grads.
ClipSpec = Union[None, tuple[str, float], Callable[[Grads], Grads]]

__all__ = ["clip_by_value", "clip_by_global_norm", "global_norm", "clipper", "ClipSpec"]


def _items(grads: Grads) -> list[tuple[object, np.ndarray]]:
    """(label, array) pairs of a list/dict of float arrays; ValueError naming a bad entry."""
    if isinstance(grads, Mapping):
        items = list(grads.items())
    elif isinstance(grads, Sequence) and not isinstance(grads, (str, bytes)):
        items = list(enumerate(grads))
    else:
        raise invalid("grads", Described(type(grads).__name__), "a list or dict of numpy arrays")
    for label, g in items:
        if not isinstance(g, np.ndarray) or not np.issubdtype(g.dtype, np.floating):
            raise invalid(f"grads[{label!r}]", getattr(g, "dtype", Described(type(g).__name__)),
                          "a float numpy array")
    return items


def _like(grads: Grads, arrays: list[np.ndarray]) -> Grads:
    """``arrays`` in the structure (list or dict) of ``grads``."""
    return dict(zip(grads.keys(), arrays)) if isinstance(grads, Mapping) else arrays


def global_norm(grads: Grads) -> float:
    r""":math:`\sqrt{\sum_j \|g_j\|_2^2}` over all arrays, accumulated in float64."""
    return math.sqrt(math.fsum(float(np.dot(v, v)) for v in
                               (g.reshape(-1).astype(np.float64, copy=False) for _, g in _items(grads))))


def clip_by_value(grads: Grads, c: float) -> Grads:
    """Clip every entry to ``[-c, c]``; returns new arrays."""
    c = check_positive("c", c)
    return _like(grads, [np.clip(g, -c, c) for _, g in _items(grads)])


def clip_by_global_norm(grads: Grads, max_norm: float) -> tuple[Grads, float]:
    """Rescale all arrays together so their global norm is at most ``max_norm``.

    Returns ``(clipped, norm)`` where ``norm`` is the norm *before* clipping (what
    training logs plot). A non-finite norm cannot be rescaled meaningfully: the arrays
    are returned unchanged (copied), so the optimizer's non-finite check reports them.
    """
    max_norm = check_positive("max_norm", max_norm)
    norm = global_norm(grads)
    scale = max_norm / norm if math.isfinite(norm) and norm > max_norm else 1.0
    return _like(grads, [g * g.dtype.type(scale) for _, g in _items(grads)]), norm


def clipper(spec: ClipSpec) -> Callable[[Grads], tuple[Grads, float]] | None:
    """``grads -> (clipped grads, global norm before clipping)`` for a clip ``spec`` (checked
    now), or None for ``spec=None``. The one reading of a clip spec, for :func:`nnopt.train.fit`
    and :func:`nnopt.surfaces.run`."""
    if spec is None:
        return None
    if callable(spec):
        return lambda g: (spec(g), global_norm(g))
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] in ("norm", "value"):
        kind, c = spec[0], check_positive("clip threshold", spec[1])
        if kind == "norm":
            return lambda g: clip_by_global_norm(g, c)
        return lambda g: (clip_by_value(g, c), global_norm(g))
    raise invalid("clip", spec, "None, ('norm', max_norm), ('value', c) or a callable grads -> grads")
