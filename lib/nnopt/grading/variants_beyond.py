r"""Known wrong variants of Lab 4 ("Beyond Adam"): Lion, Newton-Schulz and Muon.

The same idea as :mod:`.variants` (which adds these to its table): each bug written as a
student would write it, in the lab protocol ``step(theta, g) -> new theta`` (rules called by
:func:`nnopt.grading.variants.rule`) or, for Newton-Schulz, as a function of the matrix.
Like :mod:`.variants`, this module is not installed in the grading sandbox.

=============================  =============  ===================================================
key                            applies to     the bug
=============================  =============  ===================================================
lion_no_sign                   lion           steps along c itself, not sign(c)
lion_betas_swapped             lion           beta1 and beta2 swapped
lion_momentum_first            lion           m updated before c is formed (c from the new m)
lion_coupled_decay             lion           ``g <- g + lambda theta`` (L2, coupled)
lion_decay_without_lr          lion           ``theta (1 - lambda)``
lion_sign_zero                 lion           sign(0) = +1 (``np.where(c >= 0, 1, -1)``)
ns_no_normalisation            newton_schulz  X = G, not G / ||G||_F
ns_cubic                       newton_schulz  the cubic iteration 1.5 X - 0.5 A X
ns_no_transpose_back           newton_schulz  a tall matrix returned transposed
ns_no_eps                      newton_schulz  divides by ||G||_F without max(., eps)
muon_no_orthogonalization      muon           the momentum itself is the update (no NS)
muon_no_nesterov               muon           u = m (no Nesterov) although nesterov=True
muon_no_scale                  muon           no shape-dependent scale (s = 1)
muon_scale_inverted            muon           s = sqrt(max(1, cols/rows))
muon_coupled_decay             muon           ``g <- g + lambda theta`` (L2, coupled)
=============================  =============  ===================================================
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..optimizers_matrix import NS_COEFFICIENTS, newton_schulz

State = dict[str, Any]
_LION = "see Task 1: c = beta1 m + (1 - beta1) g; theta <- theta - lr (sign(c) + lambda theta); then m <- beta2 m + (1 - beta2) g"
_NS = "see Task 2: X = G / max(||G||_F, eps), five times X <- a X + (b A + c A^2) X with A = X X^T"
_MUON = ("see Task 3: m <- mu m + (1 - mu) g; u = (1 - mu) g + mu m; "
         "theta <- theta (1 - lr lambda) - lr s NS(u), s = sqrt(max(1, rows/cols))")

#: ``(key, label, hint, references)`` of each variant; :mod:`.variants` makes them Variants.
TABLE: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("lion_no_sign", "Lion without the sign (it steps along c itself)", _LION, ("lion",)),
    ("lion_betas_swapped", "Lion with beta1 and beta2 swapped", _LION, ("lion",)),
    ("lion_momentum_first", "Lion that updates m before forming c", _LION, ("lion",)),
    ("lion_coupled_decay", "coupled weight decay (L2: g <- g + lambda theta)", _LION, ("lion",)),
    ("lion_decay_without_lr", "weight decay without the learning rate, theta (1 - lambda)", _LION, ("lion",)),
    ("lion_sign_zero", "a sign with sign(0) = +1", "np.sign(0) is 0: an entry whose c is 0 does not "
     "move (np.where(c >= 0, 1, -1) moves it)", ("lion",)),
    ("ns_no_normalisation", "Newton-Schulz without the normalisation by the Frobenius norm", _NS, ("newton_schulz",)),
    ("ns_cubic", "the cubic Newton-Schulz iteration (1.5 X - 0.5 A X)", _NS + " and (a, b, c) = (3.4445, -4.7750, 2.0315)",
     ("newton_schulz",)),
    ("ns_no_transpose_back", "a tall matrix transposed but not transposed back",
     "iterate on G^T when G is tall, and return the transpose of the result (the shape of G)", ("newton_schulz",)),
    ("ns_no_eps", "Newton-Schulz dividing by ||G||_F without the eps (0/0 on a zero matrix)", _NS, ("newton_schulz",)),
    ("muon_no_orthogonalization", "Muon without Newton-Schulz (the momentum is the update)", _MUON, ("muon",)),
    ("muon_no_nesterov", "Muon without Nesterov (u = m)", _MUON, ("muon",)),
    ("muon_no_scale", "Muon without the shape-dependent scale (s = 1)", _MUON, ("muon",)),
    ("muon_scale_inverted", "the shape scale inverted, sqrt(max(1, cols/rows))", _MUON, ("muon",)),
    ("muon_coupled_decay", "coupled weight decay (L2: g <- g + lambda theta)", _MUON, ("muon",)),
)


def lion_rule(s: State, th: np.ndarray, g: np.ndarray, lr: float, hp: Mapping[str, Any], bug: str | None) -> np.ndarray:
    """Lion's step (Chen et al. 2023, Alg. 2), with ``bug``."""
    b1, b2, wd = hp.get("beta1", 0.9), hp.get("beta2", 0.99), hp.get("weight_decay", 0.0)
    if bug == "lion_betas_swapped":
        b1, b2 = b2, b1
    if bug == "lion_coupled_decay":
        g = g + wd * th
    m = s.get("m", np.zeros_like(th))
    if bug == "lion_momentum_first":
        m = b2 * m + (1 - b2) * g
    c = b1 * m + (1 - b1) * g
    d = c if bug == "lion_no_sign" else np.where(c >= 0, 1.0, -1.0) if bug == "lion_sign_zero" else np.sign(c)
    s["m"] = m if bug == "lion_momentum_first" else b2 * m + (1 - b2) * g
    if bug == "lion_coupled_decay":
        return th - lr * d
    if bug == "lion_decay_without_lr":
        return th * (1 - wd) - lr * d
    return th - lr * (d + wd * th)


def muon_rule(s: State, th: np.ndarray, g: np.ndarray, lr: float, hp: Mapping[str, Any], bug: str | None) -> np.ndarray:
    """Muon's step on a matrix (as :class:`nnopt.Muon`, ``adjust_lr_fn="original"``), with ``bug``."""
    mu, wd = hp.get("momentum", 0.95), hp.get("weight_decay", 0.1)
    if bug == "muon_coupled_decay":
        g = g + wd * th
    s["m"] = m = mu * s.get("m", np.zeros_like(th)) + (1 - mu) * g
    u = (1 - mu) * g + mu * m
    if not hp.get("nesterov", True) or bug == "muon_no_nesterov":
        u = m
    O = u if bug == "muon_no_orthogonalization" else newton_schulz(
        u, hp.get("ns_steps", 5), tuple(hp.get("ns_coefficients", NS_COEFFICIENTS)), hp.get("eps", 1e-7))
    rows, cols = th.shape[-2:]
    scale = {"muon_no_scale": 1.0, "muon_scale_inverted": math.sqrt(max(1.0, cols / rows))}.get(
        bug or "", math.sqrt(max(1.0, rows / cols)))
    decayed = th if bug == "muon_coupled_decay" else th * (1 - lr * wd)
    return decayed - lr * scale * O


def newton_schulz_variant(bug: str, G: np.ndarray, kwargs: Mapping[str, Any]) -> np.ndarray | None:
    """Newton-Schulz of ``G`` written with ``bug`` (None if ``bug`` is not a Newton-Schulz bug)."""
    steps, eps = int(kwargs.get("steps", 5)), float(kwargs.get("eps", 1e-7))
    a, b, c = kwargs.get("coefficients", NS_COEFFICIENTS)
    if bug == "ns_cubic":
        return newton_schulz(G, steps, (1.5, -0.5, 0.0), eps)
    if bug == "ns_no_transpose_back":
        return newton_schulz(G.T, steps, (a, b, c), eps) if G.shape[0] > G.shape[1] else None
    if bug not in ("ns_no_normalisation", "ns_no_eps"):
        return None
    X = G.T if G.shape[0] > G.shape[1] else G
    with np.errstate(all="ignore"):
        if bug == "ns_no_eps":
            X = X / np.linalg.norm(X)
        for _ in range(steps):
            A = X @ X.T
            X = a * X + (b * A + c * A @ A) @ X
    return X.T if G.shape[0] > G.shape[1] else X
