r"""Second-order methods: Newton, damped Newton, saddle-free Newton and L-BFGS.

They minimise any *objective* with ``value(x)``, ``grad(x)`` (and, for the Newton family,
``hessian(x)``) on a flat vector ``x``: the 2-D :mod:`nnopt.surfaces`, or a model on a data
set through :class:`ModelObjective` (e.g. softmax regression, whose exact Hessian is known).

Each method steps :math:`x \leftarrow x + \alpha p` with (:math:`\mu` = ``damping``):

* :func:`newton` -- :math:`p = -(H + \mu I)^{-1} g`; :math:`\mu = 0` is pure Newton,
  :math:`\mu > 0` damped Newton (Levenberg); ``line_search=True`` picks :math:`\alpha` by
  Armijo backtracking, else :math:`\alpha = 1`. Needs the Hessian.
* :func:`saddle_free_newton` -- :math:`p = -(|H| + \mu I)^{-1} g` with
  :math:`|H| = V |\Lambda| V^\top` from the eigendecomposition :math:`H = V \Lambda V^\top`
  (Dauphin et al., 2014). Needs the Hessian.
* :func:`lbfgs` -- :math:`p = -\tilde H_k g` by the two-loop recursion over the last
  ``memory`` pairs :math:`(s, y)`; :math:`\alpha` from a strong-Wolfe line search. Needs
  gradients only.

Why saddle-free: near a saddle Newton's step :math:`-H^{-1} g` points *towards* the
critical point along negative-curvature directions (the sign of :math:`\lambda_i` flips the
step), so Newton is attracted to saddles. Using :math:`|\lambda_i|` keeps the Newton scaling
but always descends. :func:`scipy_lbfgs` runs ``scipy.optimize.minimize(method="L-BFGS-B")``
and records its iterates the same way, as the reference.

Every method returns a :class:`~nnopt.trajectory.Trajectory` (iterates, values, gradient norms,
evaluation count, ``converged``/``diverged_at``/``message``; also known here as ``Result``) and
never raises on divergence (the rule of :func:`nnopt.trajectory.diverged`).
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize

from .data import check_xy
from .models import MLP, flatten
from .trajectory import BOUND, Trajectory, diverged
from .validation import check_int, check_nonneg, invalid

__all__ = ["Result", "BOUND", "ModelObjective", "newton", "saddle_free_newton", "lbfgs", "scipy_lbfgs", "METHODS",
           "compare"]

#: A method's run: iterates ``path`` (= ``xy``), values, gradient norms, evaluations, verdict.
Result = Trajectory


class ModelObjective:
    """A model's training objective on fixed data as a function of the flat parameter vector
    ``w`` (order of :meth:`nnopt.models.MLP.get_flat`); ``hessian`` exists for
    :class:`~nnopt.models.SoftmaxRegression`. It evaluates on a private copy of ``model``
    (``self.model``), so the caller's model is never changed: set the solution with
    ``model.set_flat(result.x)``."""

    def __init__(self, model: MLP, X, y):
        X, self.y = check_xy(X, y, model.n_classes, model.n_features)
        self.model, self.X = model.copy(), X.astype(model.dtype, copy=False)   # validated and cast once
        if hasattr(model, "hessian"):
            self.hessian = self._hessian

    def value(self, w: np.ndarray) -> float:
        self.model.set_flat(w)
        return self.model.loss(self.X, self.y)

    def grad(self, w: np.ndarray) -> np.ndarray:
        self.model.set_flat(w)
        return flatten(self.model.loss_and_grads(self.X, self.y)[1])

    def value_and_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        """Both from one forward/backward pass."""
        self.model.set_flat(w)
        loss, grads = self.model.loss_and_grads(self.X, self.y)
        return loss, flatten(grads)

    def _hessian(self, w: np.ndarray) -> np.ndarray:
        self.model.set_flat(w)
        return self.model.hessian(self.X, self.y)

    def __repr__(self) -> str:
        return f"ModelObjective({self.model!r}, {len(self.y)} samples)"


def _value_and_grad(f) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``x -> (f(x), grad f(x))``, in one pass when the objective offers it."""
    if hasattr(f, "value_and_grad"):
        return f.value_and_grad
    return lambda x: (float(f.value(x)), np.asarray(f.grad(x), dtype=float))


def _check(f, x0, steps: int, tol: float, need_hessian: bool) -> np.ndarray:
    for attr in ("value", "grad") + (("hessian",) if need_hessian else ()):
        if not callable(getattr(f, attr, None)):
            raise invalid("objective", f, f"an object with a {attr}(x) method, e.g. a nnopt.surfaces surface or a "
                                          "ModelObjective")
    check_int("steps", steps, 0)
    check_nonneg("tol", tol)
    x0 = getattr(f, "start", None) if x0 is None else x0
    if x0 is None:
        raise invalid("x0", None, "a start point: this objective has no default start")
    x = np.array(x0, dtype=float)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise invalid("x0", x0, "a finite 1-D vector")
    return x


class _Recorder:
    """Collects iterates and decides when to stop (converged, diverged or out of steps)."""

    def __init__(self, method: str, x: np.ndarray, value: float, grad: np.ndarray, tol: float):
        self.method, self.tol = method, tol
        self.path, self.values, self.grad_norms = [x.copy()], [value], [float(np.linalg.norm(grad))]
        self.n_evals = 1
        self.diverged_at: int | None = None
        self.message = ""
        self.verdict: bool | None = None   # set when the solver's own stopping test decides

    @property
    def converged(self) -> bool:
        return self.verdict if self.verdict is not None else self.grad_norms[-1] <= self.tol

    def add(self, x: np.ndarray, value: float, grad: np.ndarray) -> bool:
        """Record the next iterate; return True to continue iterating."""
        k = len(self.path)
        if diverged(x, value, grad):
            self.diverged_at = k
            self.message = f"diverged at step {k}"
            return False
        self.path.append(x.copy())
        self.values.append(value)
        self.grad_norms.append(float(np.linalg.norm(grad)))
        return not self.converged

    def stop(self, message: str, converged: bool | None = None) -> None:
        self.message = message
        self.verdict = converged

    def result(self) -> Trajectory:
        if not self.message:
            self.message = (f"converged in {len(self.path) - 1} steps (|g| = {self.grad_norms[-1]:.2e})"
                            if self.converged else f"stopped after {len(self.path) - 1} steps")
        return Trajectory(np.array(self.path), np.array(self.values), np.array(self.grad_norms), self.diverged_at,
                          self.method, self.n_evals, self.converged and self.diverged_at is None, self.message)


def _backtrack(fg, x, value, grad, p, trace: _Recorder, c1: float = 1e-4, shrink: float = 0.5,
               max_halvings: int = 40):
    """Armijo backtracking: the largest ``alpha = shrink^j`` with
    ``f(x + alpha p) <= f(x) + c1 alpha g.p``; returns ``(x_new, f, g)`` or None."""
    slope = float(grad @ p)
    if slope >= 0:               # not a descent direction: no step length helps
        return None
    alpha = 1.0
    for _ in range(max_halvings):
        x_new = x + alpha * p
        f_new, g_new = fg(x_new)
        trace.n_evals += 1
        if f_new <= value + c1 * alpha * slope:
            return x_new, f_new, g_new
        alpha *= shrink
    return None


def _newton_family(method: str, direction: Callable[[np.ndarray, np.ndarray], np.ndarray], f, x0, steps: int,
                   tol: float, line_search: bool) -> Trajectory:
    """Shared loop: ``x <- x + p`` with ``p = direction(H, g)`` (optionally backtracked)."""
    fg = _value_and_grad(f)
    x = x0
    value, grad = fg(x)
    trace = _Recorder(method, x, value, grad, tol)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, steps + 1):
            if trace.converged:
                break
            try:
                p = direction(np.asarray(f.hessian(x), dtype=float), grad)
            except np.linalg.LinAlgError:
                trace.stop(f"stopped at step {k}: the (damped) Hessian is singular; add damping")
                break
            if line_search:
                accepted = _backtrack(fg, x, value, grad, p, trace)
                if accepted is None:
                    trace.stop(f"stopped at step {k}: no descent along the Newton direction "
                               "(the Hessian is not positive definite here; try saddle_free_newton)")
                    break
                x, value, grad = accepted
            else:
                x = x + p
                value, grad = fg(x)
                trace.n_evals += 1
            if not trace.add(x, value, grad):
                break
    return trace.result()


def newton(f, x0=None, steps: int = 50, damping: float = 0.0, line_search: bool = False,
           tol: float = 1e-10) -> Trajectory:
    r"""Newton's method :math:`x \leftarrow x - \alpha (H + \mu I)^{-1} g`.

    ``damping`` :math:`\mu \ge 0` (Levenberg) shortens steps and regularises an
    ill-conditioned :math:`H`; ``line_search=True`` picks :math:`\alpha` by Armijo
    backtracking from 1 (it stops with a message where the step is not a descent
    direction). Pure Newton (the defaults) jumps to the critical point of the local
    quadratic model -- a minimum, a maximum or a saddle. Stops when :math:`|g| \le` ``tol``.
    """
    x = _check(f, x0, steps, tol, need_hessian=True)
    lam = check_nonneg("damping", damping)
    name = "newton" + (f" (damping {lam:g})" if lam else "") + (" + line search" if line_search else "")
    return _newton_family(name, lambda H, g: -np.linalg.solve(H + lam * np.eye(len(g)), g), f, x, steps, tol,
                          line_search)


def saddle_free_newton(f, x0=None, steps: int = 50, damping: float = 1e-2, line_search: bool = False,
                       tol: float = 1e-10) -> Trajectory:
    r"""Saddle-free Newton: :math:`x \leftarrow x - \alpha V (|\Lambda| + \mu I)^{-1} V^\top g`.

    :math:`H = V \Lambda V^\top` by ``numpy.linalg.eigh``; replacing each eigenvalue by its
    absolute value turns the step along negative-curvature directions around, away from
    saddles and maxima. ``damping`` :math:`\mu > 0` bounds the step where
    :math:`|\lambda_i| \approx 0` (an inflection of the curvature).
    """
    x = _check(f, x0, steps, tol, need_hessian=True)
    lam = check_nonneg("damping", damping)

    def direction(H: np.ndarray, g: np.ndarray) -> np.ndarray:
        eigvals, V = np.linalg.eigh(H)
        scale = np.abs(eigvals) + lam
        if scale.min() == 0:
            raise np.linalg.LinAlgError("zero eigenvalue")
        return -V @ ((V.T @ g) / scale)

    name = f"saddle-free newton (damping {lam:g})" + (" + line search" if line_search else "")
    return _newton_family(name, direction, f, x, steps, tol, line_search)


def _two_loop(g: np.ndarray, pairs: deque) -> np.ndarray:
    r"""L-BFGS two-loop recursion: :math:`\tilde H g` from the stored pairs
    :math:`(s_i, y_i, \rho_i = 1 / y_i^\top s_i)`, oldest first, with the initial inverse
    Hessian :math:`\gamma I`, :math:`\gamma = s^\top y / y^\top y` of the newest pair."""
    q = g.copy()
    alphas = []
    for s, y, rho in reversed(pairs):                 # newest to oldest
        a = rho * (s @ q)
        q -= a * y
        alphas.append(a)
    s, y, _ = pairs[-1]
    r = (s @ y) / (y @ y) * q
    for (s, y, rho), a in zip(pairs, reversed(alphas)):   # oldest to newest
        b = rho * (y @ r)
        r += (a - b) * s
    return r


def _strong_wolfe(phi: Callable[[float], tuple[float, float]], f0: float, d0: float, alpha: float,
                  c1: float = 1e-4, c2: float = 0.9, max_evals: int = 30) -> float | None:
    r"""A step length satisfying the strong Wolfe conditions (Nocedal & Wright, Alg. 3.5)::

        phi(a) <= phi(0) + c1 a phi'(0)      (sufficient decrease)
        |phi'(a)| <= c2 |phi'(0)|            (curvature)

    ``phi(a) -> (f(x + a p), grad f(x + a p) . p)`` and ``d0 = phi'(0) < 0``. Doubles ``alpha``
    until an interval brackets acceptable steps, then :func:`_zoom` s into it. Returns None
    if no acceptable step was found within ``max_evals`` evaluations.
    """
    prev = (0.0, f0, d0)
    for i in range(max_evals):
        f_a, d_a = phi(alpha)
        if not math.isfinite(f_a) or f_a > f0 + c1 * alpha * d0 or (i > 0 and f_a >= prev[1]):
            return _zoom(phi, prev, (alpha, f_a), f0, d0, c1, c2, max_evals - i - 1)
        if abs(d_a) <= -c2 * d0:
            return alpha
        if d_a >= 0:                                  # past the minimiser along p
            return _zoom(phi, (alpha, f_a, d_a), prev[:2], f0, d0, c1, c2, max_evals - i - 1)
        prev = (alpha, f_a, d_a)
        alpha *= 2.0
    return None


def _zoom(phi, lo: tuple[float, float, float], hi: tuple[float, float], f0: float, d0: float, c1: float,
          c2: float, max_evals: int) -> float | None:
    """Nocedal & Wright, Alg. 3.6: shrink the bracket between ``lo = (a, f, phi')`` (the best
    step so far with sufficient decrease) and ``hi = (a, f)`` until a step satisfies the strong
    Wolfe conditions. Trial steps minimise the quadratic through ``f(lo)``, ``phi'(lo)`` and
    ``f(hi)``, safeguarded to the inner 80 % of the bracket (else bisection)."""
    for _ in range(max_evals):
        (a_lo, f_lo, d_lo), (a_hi, f_hi) = lo, hi
        width = a_hi - a_lo
        curvature = f_hi - f_lo - d_lo * width                 # > 0 iff the quadratic has a minimum
        alpha = a_lo - d_lo * width * width / (2 * curvature) if curvature > 0 else a_lo + width / 2
        inner = sorted((a_lo + 0.1 * width, a_hi - 0.1 * width))
        if not inner[0] <= alpha <= inner[1]:
            alpha = a_lo + width / 2
        f_a, d_a = phi(alpha)
        if not math.isfinite(f_a) or f_a > f0 + c1 * alpha * d0 or f_a >= f_lo:
            hi = (alpha, f_a)
            continue
        if abs(d_a) <= -c2 * d0:
            return alpha
        if d_a * width >= 0:
            hi = (a_lo, f_lo)
        lo = (alpha, f_a, d_a)
    return None


def lbfgs(f, x0=None, steps: int = 200, memory: int = 10, tol: float = 1e-10) -> Trajectory:
    r"""Limited-memory BFGS with the two-loop recursion and a strong-Wolfe line search.

    Keeps the last ``memory`` pairs :math:`s_k = x_{k+1} - x_k`, :math:`y_k = g_{k+1} - g_k`
    (only if :math:`s^\top y > 0`, which the Wolfe conditions guarantee), i.e.
    :math:`O(m d)` memory instead of the :math:`d \times d` (inverse) Hessian. The first
    step is steepest descent with length :math:`\min(1, 1/|g|)`. Needs only ``value`` and
    ``grad``.
    """
    x = _check(f, x0, steps, tol, need_hessian=False)
    check_int("memory", memory, 1)
    fg = _value_and_grad(f)
    value, grad = fg(x)
    trace = _Recorder(f"l-bfgs (m={memory})", x, value, grad, tol)
    pairs: deque = deque(maxlen=memory)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, steps + 1):
            if trace.converged:
                break
            p = -_two_loop(grad, pairs) if pairs else -grad
            trials: dict[float, tuple[np.ndarray, float, np.ndarray]] = {}

            def phi(alpha: float) -> tuple[float, float]:
                """f and its slope along p at x + alpha p (kept, to reuse the accepted one)."""
                x_a = x + alpha * p
                f_a, g_a = fg(x_a)
                trace.n_evals += 1
                trials[alpha] = (x_a, f_a, g_a)
                return f_a, float(g_a @ p)

            alpha0 = 1.0 if pairs else min(1.0, 1.0 / max(trace.grad_norms[-1], 1e-300))
            alpha = _strong_wolfe(phi, value, float(grad @ p), alpha0)
            if alpha is None:
                trace.stop(f"stopped at step {k}: the line search found no acceptable step")
                break
            x_new, value, grad_new = trials[alpha]
            s, y = x_new - x, grad_new - grad
            if s @ y > 1e-12 * np.linalg.norm(s) * np.linalg.norm(y):
                pairs.append((s, y, 1.0 / (s @ y)))
            x, grad = x_new, grad_new
            if not trace.add(x, value, grad):
                break
    return trace.result()


def scipy_lbfgs(f, x0=None, steps: int = 200, memory: int = 10, tol: float = 1e-10) -> Trajectory:
    """The reference: ``scipy.optimize.minimize(method="L-BFGS-B")`` (no bounds) with the same
    memory and gradient tolerance, its iterates recorded through ``callback``."""
    x = _check(f, x0, steps, tol, need_hessian=False)
    fg = _value_and_grad(f)
    value, grad = fg(x)
    trace = _Recorder(f"scipy L-BFGS-B (m={memory})", x, value, grad, tol)
    if not trace.converged and steps:
        res = scipy.optimize.minimize(lambda z: fg(z), x, jac=True, method="L-BFGS-B",
                                      callback=lambda z: trace.add(np.array(z), *fg(z)),
                                      options={"maxcor": memory, "gtol": tol, "ftol": 0.0, "maxiter": steps})
        trace.n_evals += int(res.nfev)
        if not trace.converged:   # scipy's gtol tests the max-norm, ours the 2-norm: trust scipy
            trace.stop(f"scipy: {res.message}", converged=bool(res.success))
    return trace.result()


METHODS: dict[str, Callable[..., Result]] = {
    "newton": newton, "saddle_free_newton": saddle_free_newton, "lbfgs": lbfgs, "scipy_lbfgs": scipy_lbfgs,
}


def compare(f, x0=None, methods=("newton", "saddle_free_newton", "lbfgs", "scipy_lbfgs"),
            reference: np.ndarray | None = None, **kwargs) -> list[dict[str, Any]]:
    """Run several methods from the same start; one row per method (a tidy table).

    ``reference`` (default: the objective's nearest known minimum, if any) gives the
    ``distance`` column; ``kwargs`` (e.g. ``steps``, ``tol``) go to every method.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise invalid("methods", unknown, f"names among {sorted(METHODS)}")
    rows = []
    for name in methods:
        result = METHODS[name](f, x0, **kwargs)
        minima = [reference] if reference is not None else getattr(f, "minima", [])
        distance = min((float(np.linalg.norm(result.x - m)) for m in minima), default=math.nan)
        rows.append({"method": result.method, "iterations": result.n_iter, "evaluations": result.n_evals,
                     "value": float(result.values[-1]), "grad_norm": float(result.grad_norms[-1]),
                     "distance": distance, "converged": result.converged, "message": result.message})
    return rows
