r"""Optimizers that treat a matrix as a matrix: Muon (orthogonalized momentum) and
Adafactor (factored second moment).

Both keep per-parameter state whose shape depends on the parameter's shape (Muon: a
momentum matrix for matrices, AdamW's two moments for everything else; Adafactor: one row
and one column vector for a matrix instead of a full second moment). They say so through the
base class's hook :meth:`~nnopt.optimizer_base.Optimizer.state_shapes`, from which ``step``
creates the state and ``load_state_dict``/``step`` check it; ``_update`` tells the cases apart
by the state's keys. The contract is the same as for every optimizer (``step(params, grads)``
in place, ``t``, ``state_dict``/``load_state_dict``/``reset``, every check before anything
changes), and so are the two paths: ``_update`` the box in plain numpy (broadcasting over
models stacked on leading axes: Newton-Schulz multiplies stacks of matrices), and
``_update_inplace`` the fast path ``step`` runs, tested equal to it.

===================  ======================================  ==================================
class                paper                                   oracle (float64, tests)
===================  ======================================  ==================================
:class:`Muon`        Jordan et al. 2024 (blog + code)        ``torch.optim.Muon`` (2.13) on the
                                                             matrices, ``torch.optim.AdamW`` on
                                                             the rest
:class:`Adafactor`   Shazeer & Stern 2018, Alg. 4/5          ``torch.optim.Adafactor`` (2.13)
===================  ======================================  ==================================

Neither has a curvature limit or a diagonal preconditioner in the sense of
:mod:`nnopt.stability` (``limit_formula = None``, ``preconditioned = False``): both normalise
the size of their step (Muon's singular values near 1, Adafactor's relative and clipped step).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .adam_variants import AdamW
from .inplace import axpy_, ema_, sum_of_squares
from .optimizer_base import Array, LearningRate, Optimizer, Shape, model_axes
from .validation import Described, check_choice, check_flag, check_int, check_nonneg, check_number, check_unit, invalid

__all__ = ["Muon", "Adafactor", "newton_schulz", "state_shapes", "NS_COEFFICIENTS"]

#: Muon's quintic Newton-Schulz coefficients (a, b, c) (Jordan et al. 2024; torch's defaults).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def state_shapes(optimizer: Optimizer, shape: Shape) -> dict[str, Shape]:
    """Names and shapes of the state arrays ``optimizer`` keeps for a parameter of ``shape``
    (:meth:`~nnopt.optimizer_base.Optimizer.state_shapes`, as a function for tables over
    optimizers, e.g. the optimizer-state memory of a model)."""
    return optimizer.state_shapes(shape)


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
    ``G`` may be a stack of matrices (the last two axes; one norm per matrix). Returns a new
    array of ``G``'s shape and dtype; ``torch.optim.Muon`` does the same in bfloat16.
    """
    if G.ndim < 2:
        raise invalid("newton_schulz input", Described(f"an array of shape {G.shape}"),
                      "a matrix (or a stack of matrices on the last two axes)")
    a, b, c = coefficients
    tall = G.shape[-2] > G.shape[-1]
    X = G.swapaxes(-1, -2) if tall else G                        # the wide way round
    X = X / np.maximum(np.linalg.norm(X, axis=(-2, -1), keepdims=True), eps)   # ||X||_2 <= ||X||_F = 1
    for _ in range(steps):
        A = X @ X.swapaxes(-1, -2)                               # A = X X^T
        X = a * X + (b * A + c * A @ A) @ X                      # X <- a X + (b A + c A^2) X
    return X.swapaxes(-1, -2) if tall else X


class Muon(Optimizer):
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
    (Jordan's ``MuonWithAuxAdam``, torch's docs): :class:`~nnopt.adam_variants.AdamW` with
    ``adamw_lr`` (``None``: the same rate as the matrices), ``adamw_beta1/2``, ``adamw_eps``,
    ``adamw_weight_decay``.

    Defaults are torch's: ``Muon`` (lr=1e-3, weight_decay=0.1, momentum=0.95,
    nesterov=True, ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5,
    adjust_lr_fn="original", which is torch's ``None``) and ``AdamW`` (betas 0.9/0.999,
    eps=1e-8, weight_decay=0.01). Same arguments == ``torch.optim.Muon`` on the matrices +
    ``torch.optim.AdamW`` on the rest, except that torch runs NS in **bfloat16** (for GPUs)
    and we in the parameter's dtype: equal to 1e-10 in float64 with torch's cast removed,
    and to bfloat16's precision with it. Weight decay uses the unscaled ``lr`` (torch).
    Jordan's own defaults differ: lr=0.02, weight_decay=0; his auxiliary Adam: lr=3e-4,
    betas (0.9, 0.95), eps=1e-10, no decay.

    The fast path runs NS in scratch buffers kept by the optimizer and computes both
    :math:`X X^\top` and :math:`A^2 = A A^\top` (:math:`A` is symmetric) as a matrix times
    its own transpose, which numpy hands to BLAS ``syrk``: half the work of a general product.
    """

    name = "muon"
    limit_formula = None        # the orthogonalized step has singular values near 1 whatever the curvature
    preconditioned = False

    def __init__(self, lr: LearningRate = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                 eps: float = 1e-7, ns_steps: int = 5, adjust_lr_fn: str = "original",
                 adamw_lr: float | None = None, adamw_beta1: float = 0.9, adamw_beta2: float = 0.999,
                 adamw_eps: float = 1e-8, adamw_weight_decay: float = 0.01, *, nonfinite: str = "raise"):
        self.weight_decay = check_nonneg("weight_decay", weight_decay)
        self.momentum = check_unit("momentum", momentum)
        self.nesterov = check_flag("nesterov", nesterov)
        if not isinstance(ns_coefficients, (tuple, list)) or len(ns_coefficients) != 3:
            raise invalid("ns_coefficients", ns_coefficients, "three numbers (a, b, c)")
        self.ns_coefficients = tuple(check_number("ns_coefficients", x) for x in ns_coefficients)
        self.eps = check_nonneg("eps", eps)
        if check_int("ns_steps", ns_steps) >= 100:
            raise invalid("ns_steps", ns_steps, "an integer in [0, 100)")
        self.ns_steps = int(ns_steps)
        self.adjust_lr_fn = check_choice("adjust_lr_fn", adjust_lr_fn, ("original", "match_rms_adamw"))
        self.adamw_lr = None if adamw_lr is None else check_nonneg("adamw_lr", adamw_lr)
        self.adamw_beta1 = check_unit("adamw_beta1", adamw_beta1)
        self.adamw_beta2 = check_unit("adamw_beta2", adamw_beta2)
        self.adamw_eps = check_nonneg("adamw_eps", adamw_eps)
        self.adamw_weight_decay = check_nonneg("adamw_weight_decay", adamw_weight_decay)
        # AdamW's math for the non-matrices (its lr is passed per step, through _coefficients)
        self._adamw = AdamW(0.0, self.adamw_beta1, self.adamw_beta2, self.adamw_eps, self.adamw_weight_decay)
        super().__init__(lr, nonfinite=nonfinite)

    def state_shapes(self, shape):
        shape = tuple(int(n) for n in shape)
        if len(shape) == 2:
            return {"m": shape}                                  # momentum of a matrix
        return self._adamw.state_shapes(shape)                   # AdamW's moments s and r

    def lr_scale(self, shape: Shape) -> float:
        """The shape-dependent factor s of the matrix update (see the class docstring)."""
        rows, cols = shape[-2:]
        if self.adjust_lr_fn == "original":
            return math.sqrt(max(1.0, rows / cols))
        return 0.2 * math.sqrt(max(rows, cols))

    def _coefficients(self, lr):
        self._adamw.t = self.t                                   # AdamW's bias corrections at this step
        return {"lr": lr, "adamw": self._adamw._coefficients(lr if self.adamw_lr is None else self.adamw_lr)}

    def _update(self, p, g, state, c):
        if "m" not in state:                                     # not a matrix: AdamW's step
            self._adamw._update(p, g, state, c["adamw"])
            return
        m, mu = state["m"], self.momentum
        m[...] = mu * m + (1 - mu) * g                           # m <- mu m + (1 - mu) g
        u = (1 - mu) * g + mu * m if self.nesterov else m        # u = (1 - mu) g + mu m  (Nesterov)
        O = newton_schulz(u, self.ns_steps, self.ns_coefficients, self.eps)    # O = NS_k(u) ~ U V^T
        p *= 1 - c["lr"] * self.weight_decay                     # theta <- theta (1 - eps lambda)
        p -= c["lr"] * self.lr_scale(p.shape) * O                # theta <- theta - eps s O

    def _update_inplace(self, p, g, state, c, tmp):
        if "m" not in state:
            self._adamw._update_inplace(p, g, state, c["adamw"], tmp)
            return
        m = state["m"]
        ema_(m, g, self.momentum)
        u = m
        if self.nesterov:
            u = np.multiply(g, 1.0 - self.momentum, out=tmp)
            axpy_(self.momentum, m, u)
        O = self._newton_schulz_(u, p)
        if self.weight_decay:
            p *= 1.0 - c["lr"] * self.weight_decay
        p += np.multiply(O, -c["lr"] * self.lr_scale(p.shape), out=tmp)

    def _buffer(self, p: Array, index: int, shape: Shape) -> Array:
        """Scratch buffer ``index`` (``p``'s dtype, at least ``p.size`` long) viewed as ``shape``."""
        return self._scratch_for(p, index).reshape(-1)[: math.prod(shape)].reshape(shape)

    def _newton_schulz_(self, u: Array, p: Array) -> Array:
        """:func:`newton_schulz` of the matrix ``u`` in four scratch buffers (no allocation)."""
        a, b, c = self.ns_coefficients
        G = u.T if u.shape[0] > u.shape[1] else u
        k, n = G.shape
        X, Y = self._buffer(p, 1, (k, n)), self._buffer(p, 2, (k, n))
        A, B = self._buffer(p, 3, (k, k)), self._buffer(p, 4, (k, k))
        np.multiply(G, 1.0 / max(math.sqrt(sum_of_squares(u)), self.eps), out=X)
        for _ in range(self.ns_steps):
            np.matmul(X, X.T, out=A)                             # A = X X^T (syrk)
            np.matmul(A, A.T, out=B)                             # A^2 = A A^T (syrk)
            B *= c
            B += np.multiply(A, b, out=A)                        # B = b A + c A^2
            np.matmul(B, X, out=Y)
            Y += np.multiply(X, a, out=X)                        # a X + B X
            X, Y = Y, X
        return X.T if G is not u else X


# --------------------------------------------------------------------------- Adafactor
def _rms(x: Array, axes: tuple[int, ...] | None = None) -> Any:
    """Root mean square over ``axes`` (kept as size 1; all of ``x`` by default, as a float
    from one BLAS pass, 0 for an empty array)."""
    if axes is None:
        return math.sqrt(sum_of_squares(x) / max(x.size, 1))
    return np.sqrt(np.mean(x * x, axis=axes, keepdims=True))


class Adafactor(Optimizer):
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
    limit_formula = None        # relative, clipped step: its size does not follow lr / curvature
    preconditioned = False

    def __init__(self, lr: LearningRate = 1e-2, beta2_decay: float = -0.8, eps1: float | None = None,
                 eps2: float = 1e-3, d: float = 1.0, weight_decay: float = 0.0, *, nonfinite: str = "raise"):
        self.beta2_decay = check_number("beta2_decay", beta2_decay, high=0.0)
        self.eps1 = None if eps1 is None else check_nonneg("eps1", eps1)
        self.eps2 = check_nonneg("eps2", eps2)
        self.d = check_number("d", d, 1.0)
        self.weight_decay = check_nonneg("weight_decay", weight_decay)
        super().__init__(lr, nonfinite=nonfinite)

    def state_shapes(self, shape):
        shape = tuple(int(n) for n in shape)
        if len(shape) >= 2:                                      # factored over the last two axes
            return {"r_row": shape[:-1] + (1,), "r_col": shape[:-2] + (1, shape[-1])}
        return {"r": shape}

    def _coefficients(self, lr):
        return {"lr": lr, "beta2": 1.0 - self.t ** self.beta2_decay, "rho": np.minimum(lr, 1.0 / math.sqrt(self.t))}

    def _eps1(self, p: Array) -> float:
        return np.finfo(p.dtype).eps if self.eps1 is None else self.eps1

    def _update(self, p, g, state, c):
        axes, b2, eps1 = model_axes(p, c["lr"]), c["beta2"], self._eps1(p)     # (axes: one model's entries)
        alpha = np.maximum(self.eps2, _rms(p, axes)) * c["rho"]  # alpha_t = max(delta2, RMS(theta)) rho_t
        p *= 1 - c["lr"] * self.weight_decay                     # theta <- theta (1 - eps lambda)
        if "r_row" in state:                                     # factored: a matrix (of a stack)
            R, C = state["r_row"], state["r_col"]
            R[...] = b2 * R + (1 - b2) * np.mean(g * g, axis=-1, keepdims=True)   # R <- row means of g*g
            C[...] = b2 * C + (1 - b2) * np.mean(g * g, axis=-2, keepdims=True)   # C <- column means
            V = R * C / np.maximum(np.mean(R, axis=-2, keepdims=True), eps1)      # V_hat = R C / mean(R)
        else:
            V = state["r"]
            V[...] = b2 * V + (1 - b2) * g * g                   # V_hat <- b2 V_hat + (1 - b2) g*g
        U = g / np.sqrt(np.maximum(V, eps1 * eps1))              # U = g / sqrt(V_hat)
        p -= alpha / np.maximum(1, _rms(U, axes) / self.d) * U   # theta <- theta - alpha_t/max(1, RMS(U)/d) U

    def _update_inplace(self, p, g, state, c, tmp):
        eps1 = self._eps1(p)
        alpha = max(self.eps2, _rms(p)) * c["rho"]
        if self.weight_decay:
            p *= 1.0 - c["lr"] * self.weight_decay
        gg = np.multiply(g, g, out=tmp)
        if "r_row" in state:
            R, C = state["r_row"], state["r_col"]
            ema_(R, gg.mean(axis=-1, keepdims=True), c["beta2"])
            ema_(C, gg.mean(axis=-2, keepdims=True), c["beta2"])
            V = np.multiply(R, C, out=tmp)
            V /= np.maximum(R.mean(axis=-2, keepdims=True), eps1)
        else:
            ema_(state["r"], gg, c["beta2"])
            np.copyto(tmp, state["r"])
            V = tmp
        np.maximum(V, eps1 * eps1, out=V)
        np.sqrt(V, out=V)
        U = np.divide(g, V, out=V)
        axpy_(-alpha / max(1.0, _rms(U) / self.d), U, p)
