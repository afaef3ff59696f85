r"""Curvature of the kit's numpy networks: Hessian-vector products and Hessian eigenvalues.

The Hessian :math:`H = \nabla^2 L(w)` of an MLP with :math:`n` parameters has :math:`n^2`
entries (23 million for the default 64-64-10 network), but :math:`Hv` costs about as much as
one gradient. Everything here is built on :math:`Hv`:

==============================  ==============================================================
:class:`HessianOperator`        :math:`v \mapsto H v` at fixed parameters and data (exact,
                                Pearlmutter's R-operator); a ``scipy`` ``LinearOperator``
:func:`hvp`, :func:`hvp_fd`     one product; the finite-difference version is only a check
:func:`power_iteration`         the eigenvalue of largest magnitude, :math:`v \leftarrow Hv/\|Hv\|`
:func:`lanczos`                 a few largest (or smallest) eigenvalues and their vectors
:func:`hessian_matrix`          the full Hessian from :math:`n` products (small models)
:func:`spectrum`                all eigenvalues (``numpy.linalg.eigvalsh``), e.g. softmax
                                regression on digits (650 parameters)
:func:`sharpness`               :math:`\lambda_{max}(H)`, the largest eigenvalue
==============================  ==============================================================

**The R-operator (forward-over-backward).** Write :math:`\mathcal R\{f\} = \frac{d}{dr}
f(w + r v)\big|_{r=0}` for the directional derivative along :math:`v`. Backprop computes
:math:`\nabla L(w)`; applying :math:`\mathcal R` to every line of the forward *and* the
backward pass gives :math:`\mathcal R\{\nabla L\} = H v` exactly (Pearlmutter 1994). With the
notation of :mod:`nnopt.models` (:math:`Z_l = A_{l-1} W_l + b_l`, :math:`A_l = \phi(Z_l)`,
:math:`P = \mathrm{softmax}(Z_L)`) and :math:`V_l, c_l` the parts of :math:`v` for
:math:`W_l, b_l`::

    forward    R{A_0} = 0
               R{Z_l} = R{A_{l-1}} W_l + A_{l-1} V_l + c_l
               R{A_l} = phi'(Z_l) * R{Z_l}
    top        R{dZ_L} = P * (R{Z_L} - rowsum(P * R{Z_L})) / N          (softmax Jacobian)
    backward   R{dW_l} = R{A_{l-1}}^T dZ_l + A_{l-1}^T R{dZ_l}           (+ l2 V_l)
               R{db_l} = sum_n R{dZ_l}
               R{dA_{l-1}} = R{dZ_l} W_l^T + dZ_l V_l^T
               R{dZ_{l-1}} = phi'(Z_{l-1}) * R{dA_{l-1}} + dA_{l-1} * phi''(Z_{l-1}) * R{Z_{l-1}}

(``*`` elementwise; :math:`\phi'' = 0` for relu, :math:`-2\tanh(1-\tanh^2)` for tanh). The
quantities of the plain forward/backward pass (:math:`A_l, Z_l, P, dZ_l, dA_l`) do not depend on
:math:`v`, so :class:`HessianOperator` computes them once; each further product then costs two
matrix products per weight matrix in the forward sweep and up to four in the backward sweep --
about 1-2 gradients (``benchmarks/hvp_cost.py`` measures it). Every formula also works with a
leading batch axis, so :meth:`HessianOperator.matmat` multiplies many vectors at once.

Parameters are flat vectors in the order of :meth:`nnopt.models.MLP.get_flat`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator

from .data import check_xy
from .validation import Described, check_choice, check_int, check_number, check_positive, invalid
from .models import MLP, flatten, softmax_cross_entropy

__all__ = ["HessianOperator", "Eigen", "hvp", "hvp_fd", "hessian_matrix", "power_iteration", "lanczos",
           "spectrum", "sharpness", "min_eigenvalue", "preconditioned", "SECOND_DERIVATIVES"]

#: phi''(Z) of each activation as a function of (Z, A = phi(Z)); None where it is 0.
SECOND_DERIVATIVES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None] = {
    "relu": None,                                    # piecewise linear (0 except at the kink)
    "tanh": lambda Z, A: -2.0 * A * (1.0 - A * A),   # d/dz (1 - tanh^2) = -2 tanh (1 - tanh^2)
}

MatrixLike = np.ndarray | LinearOperator


def _T(M: np.ndarray) -> np.ndarray:
    """Transpose of the last two axes (a batch of matrices, or one matrix)."""
    return M.swapaxes(-1, -2)


class HessianOperator(LinearOperator):
    r"""The Hessian of ``model``'s objective on ``(X, y)`` at its *current* parameters, as a
    linear operator: ``H @ v``, ``H.matvec(v)`` (``v`` of shape ``(n,)``) and ``H.matmat(V)``
    (``V`` of shape ``(n, m)``) compute exact products by the R-operator (module docstring).

    The parameters are copied when the operator is built, so training the model afterwards
    does not change it. ``loss`` is the objective at that point and ``n_params`` its size.
    The objective includes the model's L2 term, whose Hessian is ``l2`` on the weights.

    Cost: building = one forward + one backward pass (without the weight gradients); each
    product = one R-forward + one R-backward sweep.
    """

    def __init__(self, model: MLP, X, y):
        if not isinstance(model, MLP):
            raise invalid("model", Described(type(model).__name__), "an nnopt.models.MLP or SoftmaxRegression")
        if model.act.name not in SECOND_DERIVATIVES:
            raise invalid("activation", model.act.name, f"one whose second derivative is known: "
                                                        f"{sorted(SECOND_DERIVATIVES)}")
        X, y = check_xy(X, y, n_classes=model.n_classes, n_features=model.n_features)
        if len(y) == 0:
            raise invalid("X", Described("0 samples"), "at least one sample")
        X = X.astype(model.dtype, copy=False)
        n = model.n_params
        super().__init__(dtype=model.dtype, shape=(n, n))
        self.n_params = n
        self.act, self.l2, self.n_layers = model.act, model.l2, model.n_layers
        self.shapes = [p.shape for p in model.params.values()]
        self.W = [model.params[f"W{l}"].copy() for l in range(1, self.n_layers + 1)]
        cache = model.forward(X)
        self.A, self.Z = cache.activations, cache.preacts
        with np.errstate(over="ignore", invalid="ignore"):
            self.loss, dZ = softmax_cross_entropy(cache.logits, y)
        self.loss += 0.5 * self.l2 * sum(float(np.vdot(W, W)) for W in self.W)
        self.P = dZ * len(y)                              # P - onehot(y)
        self.P[np.arange(len(y)), y] += 1.0               # back to P
        self.n_samples = len(y)
        # backward pass, keeping dZ_l and the curvature term S_l = dA_l * phi''(Z_l) of each layer
        self.dZ: list[np.ndarray] = [dZ]                  # dZ_L, dZ_{L-1}, ..., dZ_1
        self.S: list[np.ndarray | None] = []              # S_{L-1}, ..., S_1
        second = SECOND_DERIVATIVES[self.act.name]
        for l in range(self.n_layers, 1, -1):
            dA = dZ @ self.W[l - 1].T
            Z, A = self.Z[l - 2], self.A[l - 1]
            dZ = self.act.backward(dA, Z, A)
            self.dZ.append(dZ)
            self.S.append(None if second is None else dA * second(Z, A))

    def __repr__(self) -> str:
        return (f"HessianOperator({self.n_params} params, {self.n_samples} samples, "
                f"{self.act.name}, l2={self.l2:g}, {np.dtype(self.dtype).name})")

    # --------------------------------------------------------------- flat <-> layers
    def _split(self, V: np.ndarray) -> list[np.ndarray]:
        """``V`` of shape ``(n,)`` or ``(m, n)`` -> per parameter views ``(*shape)`` or ``(m, *shape)``."""
        lead, parts, offset = V.shape[:-1], [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            parts.append(V[..., offset:offset + size].reshape(*lead, *shape))
            offset += size
        return parts

    def _check_vectors(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V)
        if not np.issubdtype(V.dtype, np.number):
            raise invalid("vector dtype", V.dtype, "numbers")
        if not np.isfinite(V).all():
            raise invalid("vector", Described("NaN or inf values"), "finite values")
        return V.astype(self.dtype, copy=False)

    # --------------------------------------------------------------- products
    def _matvec(self, v: np.ndarray) -> np.ndarray:
        return self._r_op(self._check_vectors(v).ravel())

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        V = self._check_vectors(V)
        return self._r_op(np.ascontiguousarray(V.T)).T

    def _adjoint(self) -> "HessianOperator":
        return self                                       # H is symmetric

    def _r_op(self, V: np.ndarray) -> np.ndarray:
        """``H v`` for ``V = v`` of shape ``(n,)``, or for each row of ``V`` of shape ``(m, n)``."""
        parts = self._split(V)
        VW, Vb = parts[0::2], [c[..., None, :] for c in parts[1::2]]  # biases broadcast over samples
        L, act = self.n_layers, self.act
        # R-forward: R{Z_l}, R{A_l} for l = 1..L (R{A_0} = 0)
        RZ, RA = [], [None]
        for l in range(1, L + 1):
            Rz = self.A[l - 1] @ VW[l - 1] + Vb[l - 1]
            if RA[-1] is not None:
                Rz += RA[-1] @ self.W[l - 1]
            RZ.append(Rz)
            if l < L:
                RA.append(act.backward(Rz, self.Z[l - 1], self.A[l]))        # phi'(Z_l) * R{Z_l}
        # top: the softmax Jacobian applied to R{Z_L}, divided by N
        P = self.P
        RdZ = P * (RZ[-1] - (P * RZ[-1]).sum(axis=-1, keepdims=True)) / self.n_samples
        # R-backward, layer L down to 1
        out: list[np.ndarray] = [None] * (2 * L)
        for l in range(L, 0, -1):
            dZ = self.dZ[L - l]
            RdW = _T(self.A[l - 1]) @ RdZ
            if RA[l - 1] is not None:
                RdW += _T(RA[l - 1]) @ dZ
            if self.l2:
                RdW += self.l2 * VW[l - 1]
            out[2 * l - 2], out[2 * l - 1] = RdW, RdZ.sum(axis=-2)
            if l > 1:
                RdA = RdZ @ self.W[l - 1].T + dZ @ _T(VW[l - 1])
                RdZ = act.backward(RdA, self.Z[l - 2], self.A[l - 1])
                S = self.S[L - l]
                if S is not None:
                    RdZ += S * RZ[l - 2]
        return np.concatenate([o.reshape(*V.shape[:-1], -1) for o in out], axis=-1)


def hvp(model: MLP, X, y, v) -> np.ndarray:
    """Exact Hessian-vector product ``H v`` of ``model``'s objective on ``(X, y)`` (flat ``v``)."""
    return HessianOperator(model, X, y).matvec(v)


def hvp_fd(model: MLP, X, y, v, eps: float | None = None) -> np.ndarray:
    r"""Finite-difference check of :func:`hvp` from two gradients (central difference)::

        H v  ~  (g(w + h v) - g(w - h v)) / (2 h),    h = eps * max(1, |w|) / |v|

    Error :math:`O(h^2)` from the third derivative plus roundoff :math:`O(\text{machine eps}
    / h)`; the default ``eps`` = (machine eps)^(1/3) balances both (about 1e-8 relative error
    in float64; float32 is too coarse for a useful check). Near a relu kink the difference
    quotient straddles the kink and disagrees with the (one-sided) exact product.
    """
    v = np.asarray(v, dtype=model.dtype)
    if v.shape != (model.n_params,):
        raise invalid("v shape", v.shape, f"({model.n_params},)")
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm) or norm == 0.0:
        raise invalid("v", v, "a finite, non-zero vector")
    eps = float(np.finfo(model.dtype).eps) ** (1 / 3) if eps is None else check_positive("eps", eps)
    w = model.get_flat()
    h = eps * max(1.0, float(np.linalg.norm(w))) / norm
    probe = model.copy()
    grads = []
    for sign in (1.0, -1.0):
        probe.set_flat(w + sign * h * v)
        grads.append(flatten(probe.loss_and_grads(X, y)[1]))
    return (grads[0] - grads[1]) / (2.0 * h)


def preconditioned(H: LinearOperator, d) -> LinearOperator:
    r"""The symmetric operator :math:`D^{-1/2} H D^{-1/2}` for a positive diagonal :math:`D =
    \mathrm{diag}(d)`. It has the eigenvalues of :math:`D^{-1} H`, the curvature that a
    preconditioned method :math:`w \leftarrow w - \epsilon D^{-1} g` (RMSProp, Adam) sees."""
    d = np.asarray(d, dtype=float)
    if d.shape != (H.shape[0],):
        raise invalid("preconditioner shape", d.shape, f"({H.shape[0]},)")
    if not (np.isfinite(d).all() and (d > 0).all()):
        raise invalid("preconditioner", d, "finite and positive values")
    s = 1.0 / np.sqrt(d)
    return LinearOperator(H.shape, dtype=np.float64, matvec=lambda v: s * H.matvec(s * np.ravel(v)),
                          matmat=lambda V: s[:, None] * H.matmat(s[:, None] * V))


# ------------------------------------------------------------------- eigenvalue solvers
@dataclass
class Eigen:
    r"""Eigenpairs from an iterative solver: ``values`` (k,), unit ``vectors`` (n, k) as columns,
    ``residuals`` :math:`\|Hv - \lambda v\|` per pair, the number of products ``n_matvec``
    used, and whether every residual met the tolerance."""

    values: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray
    n_matvec: int
    converged: bool

    @property
    def value(self) -> float:
        """The first eigenvalue (the only one for power iteration)."""
        return float(self.values[0])

    @property
    def vector(self) -> np.ndarray:
        return self.vectors[:, 0]


def _as_operator(A: MatrixLike) -> LinearOperator:
    """A square symmetric matrix (checked) or a square LinearOperator."""
    if not isinstance(A, LinearOperator):
        arr = np.asarray(A, dtype=float)
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise invalid("matrix shape", arr.shape, "a square matrix or a LinearOperator")
        if not np.isfinite(arr).all():
            raise invalid("matrix", Described("NaN or inf values"), "finite values")
        A = LinearOperator(arr.shape, matvec=lambda v: arr @ np.ravel(v), matmat=lambda V: arr @ V, dtype=float)
    if A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise invalid("operator shape", A.shape, "a non-empty square operator")
    return A


def _apply(op: LinearOperator, v: np.ndarray) -> np.ndarray:
    """``op @ v`` in float64, refusing non-finite results (e.g. a diverged network)."""
    w = np.asarray(op.matvec(v), dtype=np.float64)
    if not np.isfinite(w).all():
        raise FloatingPointError("the matrix-vector product contains NaN or inf (diverged parameters?)")
    return w


def _start_vector(n: int, v0, rng: np.random.Generator) -> np.ndarray:
    if v0 is None:
        v = rng.standard_normal(n)
    else:
        v = np.array(v0, dtype=np.float64)
        if v.shape != (n,) or not np.isfinite(v).all() or not v.any():
            raise invalid("v0", v0, f"a finite non-zero vector of shape ({n},)")
    return v / np.linalg.norm(v)


def _check_solver_args(max_iter: int, tol: float) -> None:
    check_int("max_iter", max_iter, minimum=1)
    check_number("tol", tol, 0.0, 1.0, low_open=True, high_open=True)


def power_iteration(A: MatrixLike, max_iter: int = 1000, tol: float = 1e-6, v0=None, seed: int = 0,
                    shift: float = 0.0) -> Eigen:
    r"""The eigenvalue of largest magnitude of the symmetric ``A`` by power iteration::

        v <- (A - shift I) v / |(A - shift I) v|,     lambda = v^T A v   (Rayleigh quotient)

    stopping when the residual :math:`\|Av - \lambda v\| \le` ``tol`` :math:`|\lambda|`. The
    error shrinks like :math:`|\lambda_2/\lambda_1|^{2k}` for the Rayleigh quotient (twice as
    fast as for the vector). If the dominant eigenvalue is negative (a saddle), a ``shift``
    equal to it makes the largest (algebraic) eigenvalue dominant instead.
    """
    op = _as_operator(A)
    _check_solver_args(max_iter, tol)
    v = _start_vector(op.shape[0], v0, np.random.default_rng(seed))
    lam, res = 0.0, math.inf
    for it in range(1, max_iter + 1):
        w = _apply(op, v) - shift * v
        lam = float(v @ w)
        res = float(np.linalg.norm(w - lam * v))
        norm = float(np.linalg.norm(w))
        if res <= tol * abs(lam) or norm == 0.0:
            break
        v = w / norm
    return Eigen(np.array([lam + shift]), v[:, None], np.array([res]), it, res <= tol * abs(lam))


def lanczos(A: MatrixLike, k: int = 1, which: str = "largest", tol: float = 1e-8, max_iter: int | None = None,
            v0=None, seed: int = 0) -> Eigen:
    r"""The ``k`` largest (``which="largest"``) or smallest (``"smallest"``) eigenvalues of the
    symmetric ``A`` by the Lanczos method with full reorthogonalization.

    Lanczos builds an orthonormal basis :math:`Q_j = [q_1..q_j]` of the Krylov space
    :math:`\mathrm{span}\{v, Av, .., A^{j-1}v\}` in which :math:`T_j = Q_j^\top A Q_j` is
    tridiagonal (three-term recurrence :math:`\beta_j q_{j+1} = Aq_j - \alpha_j q_j -
    \beta_{j-1} q_{j-1}`). The eigenvalues :math:`\theta` of :math:`T_j` (Ritz values) converge
    first at both ends of the spectrum, much faster than power iteration; the residual of
    Ritz pair :math:`(\theta_i, Q_j s_i)` is :math:`\beta_j |s_{ji}|`, and the run stops when
    the wanted ones are below ``tol`` times the largest :math:`|\theta|`. Reorthogonalizing
    each :math:`q` against all previous ones (costs :math:`O(jn)`, cheap next to a Hessian
    product) prevents the spurious copies of eigenvalues that plain Lanczos produces.
    ``max_iter`` defaults to ``min(n, 300)`` products.
    """
    op = _as_operator(A)
    n = op.shape[0]
    if check_int("k", k, minimum=1) > n:
        raise invalid("k", k, f"at most the size of the matrix, {n}")
    check_choice("which", which, ("largest", "smallest"))
    max_iter = min(n, 300) if max_iter is None else max_iter
    _check_solver_args(max_iter, tol)
    max_iter = min(max_iter, n)
    rng = np.random.default_rng(seed)
    Q = [_start_vector(n, v0, rng)]
    alphas: list[float] = []
    betas: list[float] = []
    while True:
        j = len(Q) - 1
        w = _apply(op, Q[j])
        alphas.append(float(Q[j] @ w))
        w -= alphas[-1] * Q[j] + (betas[-1] * Q[j - 1] if j else 0.0)
        basis = np.array(Q)
        for _ in range(2):                                # "twice is enough" (Kahan, Parlett)
            w -= basis.T @ (basis @ w)
        beta = float(np.linalg.norm(w))
        theta, S = scipy.linalg.eigh_tridiagonal(np.array(alphas), np.array(betas))
        pick = np.arange(len(theta))[::-1][:k] if which == "largest" else np.arange(len(theta))[:k]
        residuals = beta * np.abs(S[-1, pick])
        scale = max(float(np.abs(theta).max()), np.finfo(float).tiny)
        done = len(pick) == k and bool((residuals <= tol * scale).all())
        if done or len(Q) == max_iter:
            break
        if beta <= 1e-12 * scale:                         # invariant subspace: continue with a fresh direction
            w = rng.standard_normal(n)
            for _ in range(2):
                w -= basis.T @ (basis @ w)
            beta_next, w = 0.0, w / np.linalg.norm(w)
        else:
            beta_next, w = beta, w / beta
        betas.append(beta_next)
        Q.append(w)
    vectors = np.array(Q).T @ S[:, pick]
    return Eigen(theta[pick], vectors, residuals, len(Q), done)


# ------------------------------------------------------------------- model-level helpers
def hessian_matrix(model: MLP, X, y, max_params: int = 6000) -> np.ndarray:
    """The full Hessian (float64, shape (n, n)) from products with the unit vectors, taken in
    blocks by :meth:`HessianOperator.matmat`; symmetrized against roundoff. Refuses models with
    more than ``max_params`` parameters (memory grows as n^2: 6000 -> 288 MB)."""
    if model.n_params > max_params:
        raise invalid("model", Described(f"{model.n_params} parameters"), f"at most max_params = {max_params}: a "
                      f"dense Hessian needs {8 * model.n_params ** 2 / 1e6:.0f} MB; use lanczos() for a few "
                      "eigenvalues, or raise max_params")
    op = HessianOperator(model, X, y)
    n = op.n_params
    widest = max(model.sizes)
    block = max(1, min(n, (1 << 22) // (op.n_samples * widest)))   # ~32 MB of intermediates per block
    H = np.empty((n, n))
    eye = np.eye(n, dtype=op.dtype)
    for start in range(0, n, block):
        H[:, start:start + block] = op.matmat(eye[:, start:start + block])
    return 0.5 * (H + H.T)


def spectrum(model: MLP, X, y, max_params: int = 6000) -> np.ndarray:
    """All Hessian eigenvalues, ascending (``numpy.linalg.eigvalsh`` of :func:`hessian_matrix`)."""
    return np.linalg.eigvalsh(hessian_matrix(model, X, y, max_params))


def sharpness(model: MLP, X, y, **lanczos_kw) -> float:
    r""":math:`\lambda_{max}(H)`, the largest Hessian eigenvalue ("sharpness"). Gradient descent
    with step :math:`\epsilon` is stable near a minimum only if :math:`\epsilon < 2/\lambda_{max}`."""
    return lanczos(HessianOperator(model, X, y), k=1, which="largest", **lanczos_kw).value


def min_eigenvalue(model: MLP, X, y, **lanczos_kw) -> float:
    r""":math:`\lambda_{min}(H)`; negative at a saddle point (or anywhere the loss curves down)."""
    return lanczos(HessianOperator(model, X, y), k=1, which="smallest", **lanczos_kw).value
