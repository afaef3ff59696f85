r"""Adam's relatives that the lecture mentions but does not box: Adamax, AdamW, Nadam, AMSGrad.

Each follows its paper and matches ``torch.optim`` exactly (tested against it); the defaults
are torch's, so ``nnopt.AdamW()`` == ``torch.optim.AdamW(params)``. As in
:mod:`nnopt.optimizers`, ``_update`` is the readable update and ``_update_inplace`` the fast
one ``step`` runs.
"""
from __future__ import annotations

import math

import numpy as np

from .inplace import axpy_, ema_, rms_
from .optimizer_base import LearningRate, Optimizer
from .optimizers import Adam, denominator
from .validation import check_nonneg, check_unit

__all__ = ["Adamax", "AdamW", "Nadam", "AMSGrad"]


class _Betas(Optimizer):
    """The hyperparameters Adamax and Nadam share with Adam: beta1, beta2, eps."""

    def _init_betas(self, beta1: float, beta2: float, eps: float) -> None:
        self.beta1 = check_unit("beta1", beta1)
        self.beta2 = check_unit("beta2", beta2)
        self.eps = check_nonneg("eps", eps)


class Adamax(_Betas):
    r"""Adamax (Kingma & Ba 2015, Alg. 2): Adam with the infinity norm.

    .. math::
        s \leftarrow \beta_1 s + (1-\beta_1) g,\quad
        u \leftarrow \max(\beta_2 u, |g| + \delta),\quad
        \theta \leftarrow \theta - \frac{\epsilon}{1-\beta_1^t}\, \frac{s}{u}

    No box in the lecture. Deviation from the paper (which has no :math:`\delta`): the
    ``+ eps`` inside the max, as ``torch.optim.Adamax``, avoids 0/0 for entries whose
    gradient has always been 0. Matches ``torch.optim.Adamax`` exactly (same defaults).
    """

    name = "adamax"
    slots = ("s", "u")

    def __init__(self, lr: LearningRate = 2e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, *, nonfinite: str = "raise"):
        self._init_betas(beta1, beta2, eps)
        super().__init__(lr, nonfinite=nonfinite)

    def _coefficients(self, lr):
        return {"lr": lr, "step": lr / (1.0 - self.beta1 ** self.t)}

    def _update(self, p, g, state, c):
        s, u, b1 = state["s"], state["u"], self.beta1
        s[...] = b1 * s + (1 - b1) * g                           # s <- b1 s + (1 - b1) g
        u[...] = np.maximum(self.beta2 * u, np.abs(g) + self.eps)    # u <- max(b2 u, |g| + delta)
        p -= c["lr"] / (1 - b1 ** self.t) * s / u                # theta <- theta - eps/(1 - b1^t) s/u

    def _update_inplace(self, p, g, state, c, tmp):
        s, u = state["s"], state["u"]
        ema_(s, g, self.beta1)
        u *= self.beta2
        np.abs(g, out=tmp)
        tmp += self.eps
        np.maximum(u, tmp, out=u)
        np.divide(s, u, out=tmp)
        axpy_(-c["step"], tmp, p)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``.

    .. math:: \theta \leftarrow \theta (1 - \epsilon\lambda), \text{ then the Adam step}

    Defaults are torch's (weight_decay=1e-2, eps *outside* the root), so
    ``AdamW(lr, weight_decay=w)`` == ``torch.optim.AdamW(lr, weight_decay=w)``. The decay adds
    to the curvature the step sees, so Adam's stability limit does not apply.
    """

    name = "adamw"
    limit_formula = None

    def __init__(self, lr: LearningRate = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 1e-2, eps_inside_sqrt: bool = False, *,
                 nonfinite: str = "raise"):
        self.weight_decay = check_nonneg("weight_decay", weight_decay)
        super().__init__(lr, beta1, beta2, eps, eps_inside_sqrt, nonfinite=nonfinite)

    def _update(self, p, g, state, c):
        p *= 1 - c["lr"] * self.weight_decay                     # theta <- theta (1 - eps lambda)
        super()._update(p, g, state, c)                          # the Adam step

    def _update_inplace(self, p, g, state, c, tmp):
        p *= 1.0 - c["lr"] * self.weight_decay
        super()._update_inplace(p, g, state, c, tmp)


class Nadam(_Betas):
    r"""Nadam (Dozat 2016) exactly as ``torch.optim.NAdam``: Adam with Nesterov momentum
    and the momentum schedule :math:`\mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi})`.

    .. math::
        s \leftarrow \beta_1 s + (1-\beta_1) g,\quad
        r \leftarrow \beta_2 r + (1-\beta_2) g\odot g,\quad
        \theta \leftarrow \theta - \epsilon\Big[\frac{1-\mu_t}{1-\prod_{i\le t}\mu_i}\, g
          + \frac{\mu_{t+1}}{1-\prod_{i\le t+1}\mu_i}\, s\Big] \Big/
          \Big(\sqrt{r/(1-\beta_2^t)} + \delta\Big)

    Not in the lecture; defaults are torch's (lr=2e-3, momentum_decay :math:`\psi` = 4e-3).
    """

    name = "nadam"
    slots = ("s", "r")

    def __init__(self, lr: LearningRate = 2e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, momentum_decay: float = 4e-3, *, nonfinite: str = "raise"):
        self._init_betas(beta1, beta2, eps)
        self.momentum_decay = check_nonneg("momentum_decay", momentum_decay)
        super().__init__(lr, nonfinite=nonfinite)

    def _initial_scalars(self):
        return {"mu_product": 1.0}

    def _mu(self, t: int) -> float:
        return self.beta1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def _coefficients(self, lr):
        mu, mu_next = self._mu(self.t), self._mu(self.t + 1)
        prod = self._scalars["mu_product"] = self._scalars["mu_product"] * mu
        b2 = 1.0 - self.beta2 ** self.t
        g_coef, s_coef = (1.0 - mu) / (1.0 - prod), mu_next / (1.0 - prod * mu_next)
        return {"lr": lr, "g_coef": g_coef, "s_coef": s_coef, "eps": self.eps * math.sqrt(b2),
                "g_step": lr * g_coef * math.sqrt(b2), "s_step": lr * s_coef * math.sqrt(b2)}

    def _update(self, p, g, state, c):
        s, r, b2 = state["s"], state["r"], self.beta2
        s[...] = self.beta1 * s + (1 - self.beta1) * g           # s <- b1 s + (1 - b1) g
        r[...] = b2 * r + (1 - b2) * g * g                       # r <- b2 r + (1 - b2) g * g
        r_hat = r / (1 - b2 ** self.t)
        s_hat = c["g_coef"] * g + c["s_coef"] * s                # (1-mu_t)/(1-prod_t) g + mu_t+1/(1-prod_t+1) s
        p -= c["lr"] * s_hat / denominator(r_hat, self.eps, inside=False)

    def _update_inplace(self, p, g, state, c, tmp):
        s, r = state["s"], state["r"]
        ema_(s, g, self.beta1)
        ema_(r, np.multiply(g, g, out=tmp), self.beta2)
        num = np.multiply(g, c["g_step"], out=self._scratch_for(p, 1))
        axpy_(c["s_step"], s, num)                               # numerator: a g + b s
        rms_(r, c["eps"], inside=False, out=tmp)                 # sqrt(r) + eps sqrt(b2)
        np.divide(num, tmp, out=tmp)
        p -= tmp


class AMSGrad(Adam):
    r"""AMSGrad (Reddi et al. 2018): Adam whose denominator uses the running maximum
    :math:`r_{\max} \leftarrow \max(r_{\max}, r)`, so the effective step never grows.

    Not in the lecture. Defaults are torch's (eps outside the root):
    ``AMSGrad(...)`` == ``torch.optim.Adam(..., amsgrad=True)``.
    """

    name = "amsgrad"
    slots = ("s", "r", "r_max")

    def __init__(self, lr: LearningRate = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, eps_inside_sqrt: bool = False, *, nonfinite: str = "raise"):
        super().__init__(lr, beta1, beta2, eps, eps_inside_sqrt, nonfinite=nonfinite)

    def _update(self, p, g, state, c):
        s, r, r_max, rho1, rho2 = state["s"], state["r"], state["r_max"], self.beta1, self.beta2
        s[...] = rho1 * s + (1 - rho1) * g                       # s <- rho1 s + (1 - rho1) g
        r[...] = rho2 * r + (1 - rho2) * g * g                   # r <- rho2 r + (1 - rho2) g * g
        r_max[...] = np.maximum(r_max, r)                        # r_max <- max(r_max, r)
        s_hat = s / (1 - rho1 ** self.t)
        p -= c["lr"] * s_hat / self._denominator(state)          # theta -= eps s_hat/(sqrt(r_max_hat) + delta)

    def _denominator(self, state):
        return denominator(state["r_max"] / (1 - self.beta2 ** self.t), self.eps, self.eps_inside_sqrt)

    def _second_moment(self, r, state):
        return np.maximum(state["r_max"], r, out=state["r_max"])
