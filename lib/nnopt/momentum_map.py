r"""The momentum map: how fast momentum converges on a quadratic, over the (lr, alpha) plane.

This is the analysis of Polyak (1964) as drawn by Goh, "Why Momentum Really Works" (Distill, 2017),
in the notation of the lecture's Alg. 2 and Alg. 3 (learning rate :math:`\epsilon`, momentum
:math:`\alpha`). Goh writes the same method as :math:`z \leftarrow \beta z + \nabla f`,
:math:`w \leftarrow w - \alpha z`; his step size :math:`\alpha` is our :math:`\epsilon`, his
:math:`\beta` our :math:`\alpha`, and :math:`z = -v/\epsilon` (for a constant learning rate).

On :math:`J(\theta) = \tfrac12 (\theta - \theta^*)^\top H (\theta - \theta^*)` every eigen-direction of
:math:`H` (eigenvalue :math:`\lambda`, error :math:`x`, velocity :math:`v`) evolves on its own. With
:math:`h = \epsilon\lambda`, Alg. 2 (:math:`v' = \alpha v - h x`, :math:`x' = x + v'`) is

.. math::

    \begin{pmatrix} x' \\ v' \end{pmatrix} = M(h, \alpha) \begin{pmatrix} x \\ v \end{pmatrix}, \qquad
    M = \begin{pmatrix} 1 - h & \alpha \\ -h & \alpha \end{pmatrix},
    \quad \operatorname{tr} M = 1 + \alpha - h, \quad \det M = \alpha,

and Alg. 3 (gradient at :math:`x + \alpha v`) has
:math:`M_N = \begin{pmatrix} 1 - h & \alpha(1 - h) \\ -h & \alpha(1 - h) \end{pmatrix}`,
:math:`\operatorname{tr} = (1 + \alpha)(1 - h)`, :math:`\det = \alpha(1 - h)`.

The error of that direction shrinks per step, asymptotically, by the spectral radius
:math:`\rho(M)`, the larger modulus of the roots of :math:`z^2 - \operatorname{tr}\, z + \det = 0`.
When the roots are complex (:math:`\operatorname{tr}^2 < 4\det`) both have modulus
:math:`\sqrt{\det}` and the error oscillates; when they are real it decays without oscillating.
The boundary :math:`\operatorname{tr}^2 = 4 \det` is **critical damping**: for momentum
:math:`\alpha = (1 - \sqrt h)^2`, the smallest momentum at which the direction's two roots merge,
with rate :math:`1 - \sqrt h` (plain gradient descent, :math:`\alpha = 0`, has rate :math:`|1 - h|`).
The whole problem converges at the worst rate over the spectrum,
:math:`\max_i \rho(M(\epsilon\lambda_i, \alpha))`; Polyak's tuning

.. math::

    \epsilon = \frac{4}{(\sqrt{\lambda_\max} + \sqrt{\lambda_\min})^2}, \qquad
    \alpha = \Big(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\Big)^2

minimises it, with rate :math:`\sqrt\alpha = (\sqrt\kappa - 1)/(\sqrt\kappa + 1)`.

With gradient noise of variance :math:`\sigma^2` (:math:`g = \lambda x + \xi`), the stationary
variance of :math:`x` (the noise floor) solves the discrete Lyapunov equation
:math:`C = M C M^\top + \epsilon^2\sigma^2 b b^\top`, :math:`b = (1, 1)^\top`; for momentum it is

.. math::

    \mathbb E[x^2]_\infty = \frac{\epsilon\sigma^2}{\lambda}\,
    \frac{1 + \alpha}{(1 - \alpha)\,\big(2(1 + \alpha) - h\big)},

which for :math:`\alpha = 0` is the noise floor :math:`\epsilon\sigma^2/\lambda(2 - h)` of SGD, and for
small :math:`h` is that of SGD with the *effective* learning rate :math:`\epsilon/(1 - \alpha)`.
"""
from __future__ import annotations

from typing import Union

import numpy as np
import scipy.linalg

from .validation import check_int, invalid

ArrayLike = Union[float, np.ndarray]

__all__ = ["iteration_matrix", "trace_det", "spectral_radius", "convergence_rate", "rate_map",
           "critical_momentum", "polyak_parameters", "eigencomponent_errors", "noise_floor",
           "noise_floor_lyapunov"]


def _check_alpha(alpha: ArrayLike) -> np.ndarray:
    a = np.asarray(alpha, dtype=float)
    if not np.all((a >= 0) & (a < 1)):
        raise invalid("alpha", alpha, "0 <= alpha < 1")
    return a


def _check_positive(value: ArrayLike, name: str) -> np.ndarray:
    v = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(v) & (v > 0)):
        raise invalid(name, value, "finite values > 0")
    return v


def iteration_matrix(h: float, alpha: float, nesterov: bool = False) -> np.ndarray:
    r"""The 2x2 matrix :math:`M(h, \alpha)` (or :math:`M_N`) acting on (error, velocity) per step."""
    _check_alpha(alpha)
    if nesterov:
        return np.array([[1 - h, alpha * (1 - h)], [-h, alpha * (1 - h)]])
    return np.array([[1 - h, alpha], [-h, alpha]])


def trace_det(h: ArrayLike, alpha: ArrayLike, nesterov: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Trace and determinant of the iteration matrix, broadcast over arrays of h and alpha."""
    h, a = np.asarray(h, dtype=float), _check_alpha(alpha)
    if nesterov:
        return (1 + a) * (1 - h), a * (1 - h)
    return 1 + a - h, a + 0 * h


def spectral_radius(h: ArrayLike, alpha: ArrayLike, nesterov: bool = False) -> np.ndarray:
    r"""Largest root modulus of :math:`z^2 - \operatorname{tr} z + \det = 0` (broadcast, closed form)."""
    tr, det = trace_det(h, alpha, nesterov)
    disc = tr ** 2 - 4 * det
    root = np.sqrt(np.abs(disc))
    real = np.maximum(np.abs(tr + root), np.abs(tr - root)) / 2            # two real roots
    return np.where(disc >= 0, real, np.sqrt(np.abs(det)))                  # complex pair: |z| = sqrt(det)


def convergence_rate(lr: ArrayLike, alpha: ArrayLike, eigenvalues, nesterov: bool = False) -> np.ndarray:
    r"""Worst rate over the spectrum, :math:`\max_i \rho(M(\epsilon\lambda_i, \alpha))` (broadcast)."""
    lam = _check_positive(eigenvalues, "eigenvalues").ravel()
    lr = np.asarray(lr, dtype=float)[..., None]
    return spectral_radius(lr * lam, np.asarray(alpha, dtype=float)[..., None], nesterov).max(axis=-1)


def rate_map(lrs, alphas, eigenvalues, nesterov: bool = False) -> np.ndarray:
    r"""The momentum map: ``rate[i, j]`` is the convergence rate at ``alphas[i]``, ``lrs[j]``."""
    lrs = _check_positive(lrs, "lrs")
    alphas = _check_alpha(alphas)
    return convergence_rate(lrs[None, :], alphas[:, None], eigenvalues, nesterov)


def critical_momentum(h: ArrayLike) -> np.ndarray:
    r"""Critical damping :math:`\alpha = (1 - \sqrt h)^2` for :math:`0 < h \le 1`: the roots of
    :math:`M(h, \alpha)` merge, the rate is :math:`1 - \sqrt h`, the fastest for that direction."""
    values = _check_positive(h, "h")
    if np.any(values > 1):
        raise invalid("h", h, "0 < h <= 1")
    return (1 - np.sqrt(values)) ** 2


def polyak_parameters(lam_min: float, lam_max: float) -> tuple[float, float, float]:
    r"""Polyak's heavy-ball tuning for eigenvalues in [lam_min, lam_max]: (lr, alpha, rate)."""
    lam_min, lam_max = float(_check_positive(lam_min, "lam_min")), float(_check_positive(lam_max, "lam_max"))
    if lam_min > lam_max:
        raise invalid("lam_min", lam_min, f"<= lam_max = {lam_max}")
    root_kappa = np.sqrt(lam_max / lam_min)
    lr = 4 / (np.sqrt(lam_max) + np.sqrt(lam_min)) ** 2
    rate = (root_kappa - 1) / (root_kappa + 1)
    return lr, rate ** 2, rate


def eigencomponent_errors(lr: float, alpha: float, eigenvalues, x0, steps: int,
                          nesterov: bool = False) -> np.ndarray:
    r"""Error :math:`x_i^k` of each eigen-component for k = 0..steps, shape (steps + 1, n).

    Starts with zero velocity; row k is the first entry of :math:`M(\epsilon\lambda_i, \alpha)^k (x_i^0, 0)`.
    """
    lam = _check_positive(eigenvalues, "eigenvalues").ravel()
    x0 = np.broadcast_to(np.asarray(x0, dtype=float), lam.shape)
    steps = check_int("steps", steps, 0)
    state = np.stack([x0, np.zeros_like(x0)])               # (2, n): error and velocity
    mats = [iteration_matrix(lr * l, alpha, nesterov) for l in lam]
    out = [state[0].copy()]
    for _ in range(int(steps)):
        state = np.stack([m @ state[:, i] for i, m in enumerate(mats)], axis=1)
        out.append(state[0].copy())
    return np.array(out)


def noise_floor(lr: ArrayLike, alpha: ArrayLike, lam: float, sigma: float) -> np.ndarray:
    r"""Stationary :math:`\mathbb E[x^2]` of heavy-ball momentum with gradient noise (closed form above).

    Finite only inside the stability region :math:`0 < h < 2(1 + \alpha)`; ``inf`` outside it.
    """
    lr, a = np.asarray(lr, dtype=float), _check_alpha(alpha)
    h = lr * lam
    stable = (h > 0) & (h < 2 * (1 + a))
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = lr * sigma ** 2 / lam * (1 + a) / ((1 - a) * (2 * (1 + a) - h))
    return np.where(stable, floor, np.inf)


def noise_floor_lyapunov(lr: float, alpha: float, lam: float, sigma: float, nesterov: bool = False) -> float:
    r"""The same stationary :math:`\mathbb E[x^2]`, from :math:`C = M C M^\top + \epsilon^2 \sigma^2 b b^\top`.

    For Nesterov the noisy gradient enters both lines the same way, so ``b`` is again (1, 1)."""
    M = iteration_matrix(lr * lam, alpha, nesterov)
    if np.max(np.abs(np.linalg.eigvals(M))) >= 1:
        return float("inf")
    b = np.array([[1.0], [1.0]])
    C = scipy.linalg.solve_discrete_lyapunov(M, (lr * sigma) ** 2 * (b @ b.T))
    return float(C[0, 0])
