r"""Optimizers that treat a matrix as a matrix: Muon (orthogonalized momentum) and
Adafactor (factored second moment).

Both keep per-parameter state whose shape depends on the parameter's shape (Muon: a
momentum matrix for matrices, AdamW's two moments for everything else; Adafactor: one row
and one column vector for a matrix instead of a full second moment), so
:meth:`state_shapes` replaces the fixed ``slots`` of :mod:`nnopt.optimizers`; the contract
is the same (``step(params, grads)`` in place, ``t``, ``state_dict``/``load_state_dict``/
``reset``, every check before anything changes). :func:`state_shapes` answers for any
optimizer, e.g. to compute the optimizer-state memory of a model.

===================  ======================================  ==================================
class                paper                                   oracle (float64, tests)
===================  ======================================  ==================================
:class:`Muon`        Jordan et al. 2024 (blog + code)        ``torch.optim.Muon`` (2.13) on the
                                                             matrices, ``torch.optim.AdamW`` on
                                                             the rest
:class:`Adafactor`   Shazeer & Stern 2018, Alg. 4/5          ``torch.optim.Adafactor`` (2.13)
===================  ======================================  ==================================
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

# Coupling to nnopt.optimizers: the base class, its type aliases, and these private helpers
# (hyperparameter checks, in-place BLAS axpy / moving average, sum of squares).
from .optimizers import Array, LearningRate, Optimizer
from .optimizers import _axpy, _check_number, _ema, _flag, _nonneg, _sum_of_squares, _unit

__all__ = ["Muon", "Adafactor", "newton_schulz", "state_shapes", "NS_COEFFICIENTS"]

Shape = tuple[int, ...]

#: Muon's quintic Newton-Schulz coefficients (a, b, c) (Jordan et al. 2024; torch's defaults).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def state_shapes(optimizer: Optimizer, shape: Shape) -> dict[str, Shape]:
    """Names and shapes of the state arrays ``optimizer`` keeps for a parameter of ``shape``:
    :meth:`_ShapedState.state_shapes` here, one array the shape of the parameter per slot
    for the optimizers of :mod:`nnopt.optimizers`."""
    shape = tuple(int(n) for n in shape)
    if isinstance(optimizer, _ShapedState):
        return optimizer.state_shapes(shape)
    return {name: shape for name in optimizer.slots}


class _ShapedState(Optimizer):
    """Base of optimizers whose state arrays depend on the parameter's shape.

    ``slots`` stays empty, so the base class creates an empty state dict per parameter;
    :meth:`_state_of` fills it on the parameter's first update (after every check has
    passed). Structure checks and ``load_state_dict`` compare against :meth:`state_shapes`.
    """

    slots = ()

    def state_shapes(self, shape: Shape) -> dict[str, Shape]:
        """Names and shapes of the state arrays kept for a parameter of ``shape``."""
        raise NotImplementedError

    def _state_of(self, p: Array, state: dict[str, Array]) -> dict[str, Array]:
        if not state:
            state.update({k: np.zeros(s, p.dtype) for k, s in self.state_shapes(p.shape).items()})
        return state

    def _check_matches_state(self, labels, ps):
        if self._state is None:
            return
        if labels != self._labels:
            raise ValueError(f"params changed structure since the first step: {labels} vs {self._labels}")
        if len(self._state) != len(ps):
            raise ValueError(f"the optimizer state has {len(self._state)} entries for {len(ps)} parameters; "
                             "call reset() first")
        for label, p, s in zip(labels, ps, self._state):
            have = {k: a.shape for k, a in s.items()}
            if have != self.state_shapes(p.shape) or any(a.dtype != p.dtype for a in s.values()):
                raise ValueError(f"{label} has shape {p.shape}, dtype {p.dtype} but the optimizer state "
                                 f"for it is {have} of dtype {[str(a.dtype) for a in s.values()]}; "
                                 "call reset() first")

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """As :meth:`Optimizer.load_state_dict`; each state entry must be a dict of arrays
        (their shapes are checked against the parameters at the next step)."""
        state = d.get("state")
        if state is not None:
            if not isinstance(state, (list, tuple)):
                raise ValueError(f"state_dict state must be a list of dicts of arrays, got {type(state).__name__}")
            for i, s in enumerate(state):
                if not isinstance(s, Mapping) or not s or not all(isinstance(a, np.ndarray) for a in s.values()):
                    raise ValueError(f"state_dict state[{i}] must be a non-empty dict of arrays, got {s!r:.80}")
        super().load_state_dict({**d, "state": None})
        self._state = None if state is None else [{k: v.copy() for k, v in s.items()} for s in state]


# --------------------------------------------------------------------------- Muon
def newton_schulz(G: Array, steps: int = 5, coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                  eps: float = 1e-7) -> Array:
    r"""Orthogonalize a matrix approximately: :math:`G = U\Sigma V^\top \mapsto \approx U V^\top`.

    .. math::
        X \leftarrow G / \max(\|G\|_F, \varepsilon), \qquad
        \text{repeat } k \text{ times: } A = X X^\top,\;
        X \leftarrow a X + (b A + c A^2)\, X

    Each iteration maps every singular value :math:`\sigma` of :math:`X` to
    :math:`a\sigma + b\sigma^3 + c\sigma^5` (the singular vectors stay). Dividing by the
    Frobenius norm first puts all :math:`\sigma` in :math:`[0, 1]`; the quintic with
    :math:`(a,b,c)` = (3.4445, -4.7750, 2.0315) has a steep slope at 0 (:math:`a`), and
    after 5 steps every :math:`\sigma` above about :math:`1.5\cdot10^{-3}` (after the
    normalisation) lies in :math:`[0.68, 1.21]` rather than at exactly 1, which does not
    hurt training (Jordan et al. 2024); much smaller ones stay small. A wide matrix is
    iterated as it is and a tall one transposed, so :math:`A` is the smaller Gram matrix.
    Returns a new array of ``G``'s shape and dtype; ``torch.optim.Muon`` does the same in
    bfloat16.
    """
    if G.ndim != 2:
        raise ValueError(f"newton_schulz needs a matrix, got an array of shape {G.shape}")
    a, b, c = coefficients
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / max(float(np.linalg.norm(X)), eps)                   # ||X||_2 <= ||X||_F = 1
    k = X.shape[0]
    A, B, BX = np.empty((k, k), X.dtype), np.empty((k, k), X.dtype), np.empty_like(X)
    for _ in range(steps):                                       # (out=: no new arrays per step)
        np.matmul(X, X.T, out=A)                                 # A = X X^T, the smaller Gram matrix
        np.matmul(A, A, out=B)
        B *= c
        B += np.multiply(A, b, out=A)                            # B = b A + c A^2
        np.matmul(B, X, out=BX)
        X *= a
        X += BX                                                  # X <- a X + B X
    return X.T if tall else X


_LR_ADJUSTMENTS = ("original", "match_rms_adamw")


class Muon(_ShapedState):
    r"""Muon, "MomentUm Orthogonalized by Newton-Schulz" (Jordan et al. 2024), exactly
    ``torch.optim.Muon`` for matrices, and AdamW for every parameter that is not a matrix.

    For a matrix :math:`\theta` (``ndim == 2``):

    .. math::
        m \leftarrow \mu m + (1-\mu)\, g,\qquad
        u = (1-\mu)\, g + \mu m \;\;(\text{Nesterov; else } u = m),\qquad
        O = \mathrm{NS}_k(u),\\
        \theta \leftarrow \theta(1 - \epsilon\lambda) - \epsilon\, s(\text{shape})\, O

    with :func:`newton_schulz` (NS, 5 steps) and the shape-dependent scale
    :math:`s = \sqrt{\max(1, \text{rows}/\text{cols})}` (``adjust_lr_fn="original"``, Keller
    Jordan's) or :math:`s = 0.2\sqrt{\max(\text{rows}, \text{cols})}` (``"match_rms_adamw"``,
    Moonshot's: the update then has AdamW's RMS and can reuse AdamW's ``lr`` and decay).
    The update's singular values are all close to 1: every direction of the matrix moves
    by a similar amount, however unequal the gradient's singular values were. (Torch's box
    writes the momentum as :math:`B \leftarrow \mu B + g`; its code, and Jordan's, use the
    average above. NS removes the scale, so both give the same step.)

    For every other parameter (biases, scalars, tensors with ``ndim != 2``), as in practice
    (Jordan's ``MuonWithAuxAdam``, torch's docs): AdamW with ``adamw_lr`` (``None``: the
    same rate as the matrices), ``adamw_beta1/2``, ``adamw_eps``, ``adamw_weight_decay``.

    Defaults are torch's: ``Muon`` (lr=1e-3, weight_decay=0.1, momentum=0.95,
    nesterov=True, ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5,
    adjust_lr_fn="original", which is torch's ``None``) and ``AdamW`` (betas 0.9/0.999,
    eps=1e-8, weight_decay=0.01). Same arguments == ``torch.optim.Muon`` on the matrices +
    ``torch.optim.AdamW`` on the rest, except that torch runs NS in **bfloat16** (for GPUs)
    and we in the parameter's dtype: equal to 1e-10 in float64 with torch's cast removed,
    and to bfloat16's precision with it. Weight decay uses the unscaled ``lr`` (torch).
    Jordan's own defaults differ: lr=0.02, weight_decay=0; his auxiliary Adam: lr=3e-4,
    betas (0.9, 0.95), eps=1e-10, no decay.
    """

    name = "muon"

    def __init__(self, lr: LearningRate = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                 eps: float = 1e-7, ns_steps: int = 5, adjust_lr_fn: str = "original",
                 adamw_lr: float | None = None, adamw_beta1: float = 0.9, adamw_beta2: float = 0.999,
                 adamw_eps: float = 1e-8, adamw_weight_decay: float = 0.01, *, nonfinite: str = "raise"):
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        self.momentum = _unit("momentum", momentum)
        self.nesterov = _flag("nesterov", nesterov)
        if not isinstance(ns_coefficients, (tuple, list)) or len(ns_coefficients) != 3:
            raise ValueError(f"ns_coefficients must be three numbers (a, b, c), got {ns_coefficients!r}")
        self.ns_coefficients = tuple(_check_number("ns_coefficients", x, low=-math.inf, high=math.inf,
                                                   high_open=True) for x in ns_coefficients)
        self.eps = _nonneg("eps", eps)
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, (int, np.integer)) or not 0 <= ns_steps < 100:
            raise ValueError(f"ns_steps must be an integer in [0, 100), got {ns_steps!r}")
        self.ns_steps = int(ns_steps)
        if adjust_lr_fn not in _LR_ADJUSTMENTS:
            raise ValueError(f"adjust_lr_fn must be one of {_LR_ADJUSTMENTS}, got {adjust_lr_fn!r}")
        self.adjust_lr_fn = adjust_lr_fn
        self.adamw_lr = None if adamw_lr is None else _nonneg("adamw_lr", adamw_lr)
        self.adamw_beta1 = _unit("adamw_beta1", adamw_beta1)
        self.adamw_beta2 = _unit("adamw_beta2", adamw_beta2)
        self.adamw_eps = _nonneg("adamw_eps", adamw_eps)
        self.adamw_weight_decay = _nonneg("adamw_weight_decay", adamw_weight_decay)
        super().__init__(lr, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"weight_decay": self.weight_decay, "momentum": self.momentum, "nesterov": self.nesterov,
                "ns_coefficients": self.ns_coefficients, "eps": self.eps, "ns_steps": self.ns_steps,
                "adjust_lr_fn": self.adjust_lr_fn, "adamw_lr": self.adamw_lr, "adamw_beta1": self.adamw_beta1,
                "adamw_beta2": self.adamw_beta2, "adamw_eps": self.adamw_eps,
                "adamw_weight_decay": self.adamw_weight_decay}

    def state_shapes(self, shape):
        if len(shape) == 2:
            return {"m": shape}                                  # momentum of a matrix
        return {"s": shape, "r": shape}                          # AdamW's moments

    def lr_scale(self, shape: Shape) -> float:
        """The shape-dependent factor s of the matrix update (see the class docstring)."""
        rows, cols = shape
        if self.adjust_lr_fn == "original":
            return math.sqrt(max(1.0, rows / cols))
        return 0.2 * math.sqrt(max(rows, cols))

    def _coefficients(self, lr):
        adamw_lr = lr if self.adamw_lr is None else self.adamw_lr
        b1 = 1.0 - self.adamw_beta1 ** self.t                    # AdamW's bias corrections
        b2 = 1.0 - self.adamw_beta2 ** self.t
        return {"lr": lr, "adamw_lr": adamw_lr, "adamw_step": adamw_lr * math.sqrt(b2) / b1,
                "adamw_eps": self.adamw_eps * math.sqrt(b2)}

    def _update(self, p, g, state, c, tmp):
        state = self._state_of(p, state)
        if p.ndim != 2:
            self._adamw_update(p, g, state, c, tmp)
            return
        m, mu = state["m"], self.momentum
        _ema(m, g, mu)                                           # m <- mu m + (1-mu) g
        u = m
        if self.nesterov:
            u = np.multiply(g, 1.0 - mu, out=tmp)
            _axpy(mu, m, u)                                      # u = (1-mu) g + mu m
        O = newton_schulz(u, self.ns_steps, self.ns_coefficients, self.eps)
        p *= 1.0 - c["lr"] * self.weight_decay                   # theta <- theta (1 - eps lambda)
        p += np.multiply(O, -c["lr"] * self.lr_scale(p.shape), out=tmp)  # ... - eps s O

    def _adamw_update(self, p: Array, g: Array, state: dict[str, Array], c: dict[str, float],
                      tmp: Array) -> None:
        """AdamW (eps outside the root, as ``torch.optim.AdamW``) for a non-matrix."""
        s, r = state["s"], state["r"]
        p *= 1.0 - c["adamw_lr"] * self.adamw_weight_decay       # decoupled decay
        _ema(s, g, self.adamw_beta1)                             # s <- b1 s + (1-b1) g
        _ema(r, np.multiply(g, g, out=tmp), self.adamw_beta2)    # r <- b2 r + (1-b2) g*g
        np.sqrt(r, out=tmp)
        tmp += c["adamw_eps"]
        np.divide(s, tmp, out=tmp)                               # s_hat / (sqrt(r_hat) + delta)
        _axpy(-c["adamw_step"], tmp, p)


# --------------------------------------------------------------------------- Adafactor
def _rms(x: Array) -> float:
    """Root mean square of all entries (0 for an empty array)."""
    return math.sqrt(_sum_of_squares(x) / max(x.size, 1))


class Adafactor(_ShapedState):
    r"""Adafactor (Shazeer & Stern 2018) exactly as ``torch.optim.Adafactor``: a second
    moment stored as one row and one column average per matrix, a relative step size,
    update clipping, and no first moment.

    .. math::
        \hat\beta_{2,t} = 1 - t^{\tau},\quad
        \rho_t = \min(\epsilon, 1/\sqrt t),\quad
        \alpha_t = \max(\delta_2, \mathrm{RMS}(\theta))\,\rho_t,\quad
        \theta \leftarrow \theta(1 - \epsilon\lambda),\\
        \text{matrix } n\times m:\;
        R \leftarrow \hat\beta_{2,t} R + (1-\hat\beta_{2,t})\,\mathrm{mean}_{\text{cols}}(g\odot g),\;
        C \leftarrow \hat\beta_{2,t} C + (1-\hat\beta_{2,t})\,\mathrm{mean}_{\text{rows}}(g\odot g),\;
        \hat V = \frac{R\, C}{\max(\mathrm{mean}(R), \delta_1)},\\
        \text{otherwise: } \hat V \leftarrow \hat\beta_{2,t}\hat V + (1-\hat\beta_{2,t})\, g\odot g,\\
        U = \frac{g}{\sqrt{\max(\hat V, \delta_1^2)}},\quad
        \theta \leftarrow \theta - \frac{\alpha_t}{\max(1, \mathrm{RMS}(U)/d)}\, U

    :math:`R C` is the outer product of the row averages (n x 1) and the column averages
    (1 x m): the rank-1 matrix closest to the full second moment in the paper's
    I-divergence, stored in :math:`n + m` numbers instead of :math:`nm`. Tensors with more
    than two dimensions are factored over their last two (torch). :math:`\hat\beta_{2,t}`
    grows towards 1 (:math:`\tau` = ``beta2_decay``), so the average has no bias to correct.
    The step is relative: :math:`\alpha_t` scales with the parameter's RMS.

    Defaults are torch's: lr=1e-2, beta2_decay=-0.8, eps1=None (the dtype's machine
    epsilon), eps2=1e-3, d=1, weight_decay=0; ``Adafactor(lr, beta2_decay, eps1, eps2, d,
    weight_decay)`` == ``torch.optim.Adafactor(lr, beta2_decay, (eps1, eps2), d,
    weight_decay)`` exactly. Differences from the paper (all torch's): ``lr`` caps
    :math:`\rho_t` (the paper's constant is 0.01 = torch's default lr) and scales the
    decoupled weight decay (the paper has none); :math:`\delta_1` clamps :math:`\hat V` and
    the row mean instead of being added to :math:`g\odot g` (paper: :math:`10^{-30}`);
    means instead of the paper's sums (the same :math:`\hat V`); no first moment (the
    paper's optional :math:`\beta_1`).
    """

    name = "adafactor"

    def __init__(self, lr: LearningRate = 1e-2, beta2_decay: float = -0.8, eps1: float | None = None,
                 eps2: float = 1e-3, d: float = 1.0, weight_decay: float = 0.0, *, nonfinite: str = "raise"):
        self.beta2_decay = _check_number("beta2_decay", beta2_decay, low=-math.inf, high=0.0)
        self.eps1 = None if eps1 is None else _nonneg("eps1", eps1)
        self.eps2 = _nonneg("eps2", eps2)
        self.d = _check_number("d", d, low=1.0, high=math.inf, high_open=True)
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        super().__init__(lr, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"beta2_decay": self.beta2_decay, "eps1": self.eps1, "eps2": self.eps2, "d": self.d,
                "weight_decay": self.weight_decay}

    def state_shapes(self, shape):
        if len(shape) >= 2:
            return {"r_row": shape[:-1] + (1,), "r_col": shape[:-2] + (1, shape[-1])}
        return {"r": shape}

    def _coefficients(self, lr):
        return {"lr": lr, "beta2": 1.0 - self.t ** self.beta2_decay, "rho": min(lr, 1.0 / math.sqrt(self.t))}

    def _update(self, p, g, state, c, tmp):
        state = self._state_of(p, state)
        eps1 = np.finfo(p.dtype).eps if self.eps1 is None else self.eps1
        alpha = max(self.eps2, _rms(p)) * c["rho"]               # relative step size
        if self.weight_decay:
            p *= 1.0 - c["lr"] * self.weight_decay               # decoupled decay
        gg = np.multiply(g, g, out=tmp)
        if p.ndim >= 2:
            R, C = state["r_row"], state["r_col"]
            _ema(R, gg.mean(axis=-1, keepdims=True), c["beta2"])  # row averages of g*g
            _ema(C, gg.mean(axis=-2, keepdims=True), c["beta2"])  # column averages
            V = np.multiply(R, C, out=tmp)                       # rank-1 estimate R C ...
            V /= np.maximum(R.mean(axis=-2, keepdims=True), eps1)  # ... / mean(R)
        else:
            _ema(state["r"], gg, c["beta2"])
            V = tmp
            np.copyto(V, state["r"])
        np.maximum(V, eps1 * eps1, out=V)
        np.sqrt(V, out=V)
        U = np.divide(g, V, out=V)                               # U = g / sqrt(V_hat)
        _axpy(-alpha / max(1.0, _rms(U) / self.d), U, p)         # clipped: RMS(step) <= d alpha
