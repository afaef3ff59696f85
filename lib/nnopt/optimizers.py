r"""The lecture's optimizers, one class per algorithm box (Alg. 1-8).

Notation (the lecture's): :math:`\theta` parameters, :math:`g` gradient, :math:`\epsilon`
learning rate (``lr``, a float or a schedule ``t -> float``), :math:`\delta` the small
constant (``eps``), :math:`\odot` element-wise product; every square root and division
is element-wise.

=====  ==============================  =========================
Alg.   algorithm                       class
=====  ==============================  =========================
1      SGD (with a schedule)           :class:`SGD`
2      momentum                        :class:`Momentum`
3      Nesterov momentum               :class:`Nesterov`
4      AdaGrad                         :class:`AdaGrad`
5      RMSProp                         :class:`RMSProp`
6      RMSProp + Nesterov momentum     :class:`RMSPropNesterov`
7      AdaDelta                        :class:`AdaDelta`
8      Adam                            :class:`Adam`
--     Adamax, AdamW, Nadam, AMSGrad   :mod:`nnopt.adam_variants` (papers / ``torch.optim``)
=====  ==============================  =========================

How to read a class: ``_update(p, g, state, c)`` **is the box**, line by line, in plain
numpy (the comment on each line is the box's line); ``c["lr"]`` is :math:`\epsilon` of this
step. ``_update_inplace`` beside it is the same math written for speed -- ``out=`` ufuncs,
BLAS ``axpy`` (:mod:`nnopt.inplace`) and a scratch buffer, so a step allocates nothing that
grows with the parameters -- and is what ``step`` runs; the tests check both give the same
numbers. Everything the algorithms share (input checks, the finiteness test, the step counter
``t``, per-parameter state "slots") is in :class:`nnopt.optimizer_base.Optimizer`.
"""
from __future__ import annotations

import math

import numpy as np

from .inplace import axpy_, ema_, rms_
from .optimizer_base import OPTIMIZERS, Array, LearningRate, NonFiniteGradient, Optimizer, make_optimizer
from .validation import check_flag, check_nonneg, check_unit

__all__ = ["Optimizer", "NonFiniteGradient", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp",
           "RMSPropNesterov", "AdaDelta", "Adam", "OPTIMIZERS", "make_optimizer", "denominator"]

def denominator(r: Array, eps: float, inside: bool) -> Array:
    r""":math:`\sqrt{r + \delta}` (the boxes, ``inside``) or :math:`\sqrt{r} + \delta` (torch, Keras)."""
    return np.sqrt(r + eps) if inside else np.sqrt(r) + eps


# --------------------------------------------------------------------------- Alg. 1-3
class SGD(Optimizer):
    r"""Stochastic gradient descent (Alg. 1).

    .. math:: \theta \leftarrow \theta - \epsilon_k\, g

    ``lr`` may be a schedule (:mod:`nnopt.schedules`), e.g. the lecture's linear decay
    until :math:`\tau`. Matches ``torch.optim.SGD(lr)`` exactly.
    """

    name = "sgd"
    limit_formula = "2/{x}"

    def _update(self, p, g, state, c):
        p -= c["lr"] * g                                         # theta <- theta - eps g

    def _update_inplace(self, p, g, state, c, tmp):
        axpy_(-c["lr"], g, p)

    def _stability_limit(self, lr):
        return 2.0 / lr


class Momentum(Optimizer):
    r"""SGD with momentum (Alg. 2), the lecture's velocity form.

    .. math::
        v \leftarrow \alpha v - \epsilon g, \qquad \theta \leftarrow \theta + v

    ``torch.optim.SGD(lr, momentum=a)`` keeps ``b <- a b + g`` and steps ``-lr b``;
    with a constant ``lr`` that is ``v = -lr b``: the same trajectory (tested to 1e-10).
    With a schedule they differ: here past steps keep the lr they were taken with.
    """

    name = "momentum"
    slots = ("v",)
    limit_formula = r"2(1+$\alpha$)/{x}"

    def __init__(self, lr: LearningRate, momentum: float = 0.9, *, nonfinite: str = "raise"):
        self.momentum = check_unit("momentum", momentum)
        super().__init__(lr, nonfinite=nonfinite)

    def _update(self, p, g, state, c):
        v = state["v"]
        v[...] = self.momentum * v - c["lr"] * g                 # v <- alpha v - eps g
        p += v                                                   # theta <- theta + v

    def _update_inplace(self, p, g, state, c, tmp):
        v = state["v"]
        v *= self.momentum
        axpy_(-c["lr"], g, v)
        p += v

    def _stability_limit(self, lr):
        return 2.0 * (1.0 + self.momentum) / lr


class _LookAhead(Optimizer):
    r"""Nesterov's look-ahead, shared by Alg. 3 and Alg. 6.

    The boxes evaluate the gradient at the interim point :math:`\tilde\theta = \theta +
    \alpha v`. Code that owns the gradient computation prefers the gradient at the stored
    parameters, so we store :math:`\phi = \theta + \alpha v` instead of :math:`\theta`.
    Then ``g`` is exactly the box's gradient, and with :math:`v' = \alpha v + d` (``d``
    the box's step, e.g. :math:`-\epsilon g`):

    .. math::
        \phi' = \theta' + \alpha v' = \phi - \alpha v + v' + \alpha v' = \phi + \alpha v' + d

    Same trajectory as the box (the stored point is always the next interim point; after
    the last step :math:`\theta = \phi - \alpha v`). Subclasses give the box's step ``d`` in
    ``_step_direction``; the fast path asks for it as ``(a, x)`` with ``d = a * x``, so plain
    Nesterov needs no temporary at all.
    """

    slots = ("v",)

    def __init__(self, lr: LearningRate, momentum: float = 0.9, *, nonfinite: str = "raise"):
        self.momentum = check_unit("momentum", momentum)
        super().__init__(lr, nonfinite=nonfinite)

    def _step_direction(self, g: Array, state: dict[str, Array], c: dict) -> Array:
        raise NotImplementedError

    def _direction_inplace(self, g: Array, state: dict[str, Array], c: dict, tmp: Array) -> tuple[float, Array]:
        raise NotImplementedError

    def _update(self, p, g, state, c):
        v = state["v"]
        d = self._step_direction(g, state, c)                    # the box's step, e.g. -eps g
        v[...] = self.momentum * v + d                           # v <- alpha v + d
        p += self.momentum * v + d                               # phi <- phi + alpha v + d

    def _update_inplace(self, p, g, state, c, tmp):
        v = state["v"]
        a, x = self._direction_inplace(g, state, c, tmp)        # d = a x
        v *= self.momentum
        axpy_(a, x, v)
        axpy_(self.momentum, v, p)
        axpy_(a, x, p)


class Nesterov(_LookAhead):
    r"""SGD with Nesterov momentum (Alg. 3), in the look-ahead form of :class:`_LookAhead`.

    .. math::
        \tilde\theta = \theta + \alpha v,\quad g = \nabla L(\tilde\theta),\quad
        v \leftarrow \alpha v - \epsilon g,\quad \theta \leftarrow \theta + v

    ``params`` hold :math:`\tilde\theta`; ``g`` is the gradient there. This is exactly
    ``torch.optim.SGD(lr, momentum=a, nesterov=True)`` for a constant ``lr``.
    """

    name = "nesterov"
    aliases = ("nag",)
    limit_formula = r"(2+2$\alpha$)/((1+2$\alpha$) {x})"

    def _step_direction(self, g, state, c):
        return -c["lr"] * g                                      # d = -eps g

    def _direction_inplace(self, g, state, c, tmp):
        return -c["lr"], g

    def _stability_limit(self, lr):
        return (2.0 + 2.0 * self.momentum) / ((1.0 + 2.0 * self.momentum) * lr)


# --------------------------------------------------------------------------- Alg. 4-6
class AdaGrad(Optimizer):
    r"""AdaGrad (Alg. 4).

    .. math::
        r \leftarrow r + g \odot g, \qquad
        \theta \leftarrow \theta - \frac{\epsilon}{\delta + \sqrt{r}} \odot g

    Default :math:`\delta = 10^{-7}` (the box). Same formula as ``torch.optim.Adagrad``
    (whose default eps is 1e-10): ``AdaGrad(lr, eps=e)`` == ``Adagrad(lr, eps=e)``.
    """

    name = "adagrad"
    slots = ("r",)
    limit_formula = "2/{x}"
    preconditioned = True

    def __init__(self, lr: LearningRate = 1e-2, eps: float = 1e-7, *, nonfinite: str = "raise"):
        self.eps = check_nonneg("eps", eps)
        super().__init__(lr, nonfinite=nonfinite)

    def _update(self, p, g, state, c):
        r = state["r"]
        r += g * g                                               # r <- r + g * g
        p -= c["lr"] / (self.eps + np.sqrt(r)) * g               # theta <- theta - eps/(delta + sqrt(r)) g

    def _denominator(self, state):
        return self.eps + np.sqrt(state["r"])

    def _update_inplace(self, p, g, state, c, tmp):
        r = state["r"]
        r += np.multiply(g, g, out=tmp)
        rms_(r, self.eps, inside=False, out=tmp)
        np.divide(g, tmp, out=tmp)
        axpy_(-c["lr"], tmp, p)

    def _stability_limit(self, lr):
        return 2.0 / lr


class _RMSMixin:
    """Shared hyperparameters of the RMSProp family (rho, eps and where eps goes)."""

    def _init_rms(self, rho: float, eps: float, eps_inside_sqrt: bool) -> None:
        self.rho = check_unit("rho", rho)
        self.eps = check_nonneg("eps", eps)
        self.eps_inside_sqrt = check_flag("eps_inside_sqrt", eps_inside_sqrt)

    def _denominator(self, state: dict[str, Array]) -> Array:
        return denominator(state["r"], self.eps, self.eps_inside_sqrt)

    def _scaled_gradient(self, g: Array, r: Array, tmp: Array) -> Array:
        r"""In place: ``r <- rho r + (1-rho) g*g``; return ``g / rms(r)`` in ``tmp``."""
        ema_(r, np.multiply(g, g, out=tmp), self.rho)
        rms_(r, self.eps, self.eps_inside_sqrt, out=tmp)
        return np.divide(g, tmp, out=tmp)


class RMSProp(_RMSMixin, Optimizer):
    r"""RMSProp (Alg. 5).

    .. math::
        r \leftarrow \rho r + (1-\rho)\, g \odot g, \qquad
        \theta \leftarrow \theta - \frac{\epsilon}{\sqrt{\delta + r}} \odot g

    Defaults follow the box: :math:`\rho = 0.9`, :math:`\delta = 10^{-6}` *inside* the
    square root. ``torch.optim.RMSprop`` (and Keras) add eps *outside*:
    ``RMSProp(lr, rho=a, eps=e, eps_inside_sqrt=False)`` == ``RMSprop(lr, alpha=a, eps=e)``
    exactly (torch's defaults: alpha=0.99, eps=1e-8).
    """

    name = "rmsprop"
    slots = ("r",)
    limit_formula = "2/{x}"
    preconditioned = True

    def __init__(self, lr: LearningRate = 1e-3, rho: float = 0.9, eps: float = 1e-6,
                 eps_inside_sqrt: bool = True, *, nonfinite: str = "raise"):
        self._init_rms(rho, eps, eps_inside_sqrt)
        super().__init__(lr, nonfinite=nonfinite)

    def _update(self, p, g, state, c):
        r = state["r"]
        r[...] = self.rho * r + (1 - self.rho) * g * g           # r <- rho r + (1 - rho) g * g
        p -= c["lr"] / denominator(r, self.eps, self.eps_inside_sqrt) * g   # theta <- theta - eps/sqrt(delta + r) g

    def _update_inplace(self, p, g, state, c, tmp):
        axpy_(-c["lr"], self._scaled_gradient(g, state["r"], tmp), p)

    def _stability_limit(self, lr):
        return 2.0 / lr


class RMSPropNesterov(_RMSMixin, _LookAhead):
    r"""RMSProp with Nesterov momentum (Alg. 6), look-ahead form (see :class:`_LookAhead`).

    .. math::
        \tilde\theta = \theta + \alpha v,\; g = \nabla L(\tilde\theta),\;
        r \leftarrow \rho r + (1-\rho) g\odot g,\;
        v \leftarrow \alpha v - \frac{\epsilon}{\sqrt{\delta + r}} \odot g,\;
        \theta \leftarrow \theta + v

    Deviation: the box divides by :math:`\sqrt{r}` with no :math:`\delta`, which divides
    by zero wherever a gradient entry has always been 0; we add ``eps`` like Alg. 5.
    No ``torch.optim`` equivalent (torch's ``RMSprop(momentum=...)`` is heavy-ball,
    not Nesterov); tested against a direct transcription of the box.
    """

    name = "rmsprop_nesterov"
    aliases = ("rmspropnesterov", "rmsprop+nesterov", "rmsprop-nesterov")
    slots = ("v", "r")

    def __init__(self, lr: LearningRate = 1e-3, rho: float = 0.9, momentum: float = 0.9,
                 eps: float = 1e-6, eps_inside_sqrt: bool = True, *, nonfinite: str = "raise"):
        self._init_rms(rho, eps, eps_inside_sqrt)
        super().__init__(lr, momentum, nonfinite=nonfinite)

    def _step_direction(self, g, state, c):
        r = state["r"]
        r[...] = self.rho * r + (1 - self.rho) * g * g           # r <- rho r + (1 - rho) g * g
        return -c["lr"] / denominator(r, self.eps, self.eps_inside_sqrt) * g    # d = -eps/sqrt(delta + r) g

    def _direction_inplace(self, g, state, c, tmp):
        return -c["lr"], self._scaled_gradient(g, state["r"], tmp)


# --------------------------------------------------------------------------- Alg. 7
class AdaDelta(Optimizer):
    r"""AdaDelta (Alg. 7; Zeiler 2012).

    .. math::
        r \leftarrow \rho r + (1-\rho)\, g\odot g,\quad
        \Delta\theta = -\frac{\sqrt{u + \delta}}{\sqrt{r + \delta}} \odot g,\quad
        u \leftarrow \rho u + (1-\rho)\, \Delta\theta \odot \Delta\theta,\quad
        \theta \leftarrow \theta + \epsilon\, \Delta\theta

    Deviation: the box omits :math:`\delta` in the numerator; with :math:`u = 0` at the
    start the step would be 0 forever. ``lr`` (default 1, as in the paper) scales the
    step like ``torch.optim.Adadelta``, which this matches exactly with the same
    ``rho``/``eps`` (torch's defaults: rho=0.9, eps=1e-6; the paper's rho=0.95).
    """

    name = "adadelta"
    slots = ("r", "u")

    def __init__(self, lr: LearningRate = 1.0, rho: float = 0.95, eps: float = 1e-6, *,
                 nonfinite: str = "raise"):
        self.rho = check_unit("rho", rho)
        self.eps = check_nonneg("eps", eps)
        super().__init__(lr, nonfinite=nonfinite)

    def _update(self, p, g, state, c):
        r, u, rho, eps = state["r"], state["u"], self.rho, self.eps
        r[...] = rho * r + (1 - rho) * g * g                     # r <- rho r + (1 - rho) g * g
        step = -np.sqrt(u + eps) / np.sqrt(r + eps) * g          # Delta theta = -sqrt(u + delta)/sqrt(r + delta) g
        u[...] = rho * u + (1 - rho) * step * step               # u <- rho u + (1 - rho) Delta theta^2
        p += c["lr"] * step                                      # theta <- theta + eps Delta theta

    def _update_inplace(self, p, g, state, c, tmp):
        r, u = state["r"], state["u"]
        tmp2 = self._scratch_for(p, 1)
        ema_(r, np.multiply(g, g, out=tmp), self.rho)
        rms_(r, self.eps, inside=True, out=tmp)
        rms_(u, self.eps, inside=True, out=tmp2)
        np.divide(tmp2, tmp, out=tmp)
        tmp *= g                                                 # -Delta theta
        ema_(u, np.multiply(tmp, tmp, out=tmp2), self.rho)
        axpy_(-c["lr"], tmp, p)


# --------------------------------------------------------------------------- Alg. 8
class Adam(Optimizer):
    r"""Adam (Alg. 8; Kingma & Ba 2015).

    .. math::
        t \leftarrow t+1,\quad
        s \leftarrow \rho_1 s + (1-\rho_1) g,\quad
        r \leftarrow \rho_2 r + (1-\rho_2) g\odot g,\quad
        \hat s = \frac{s}{1-\rho_1^t},\quad \hat r = \frac{r}{1-\rho_2^t},\quad
        \theta \leftarrow \theta - \epsilon \frac{\hat s}{\sqrt{\hat r + \delta}}

    Defaults: :math:`\epsilon=10^{-3}, \rho_1=0.9, \rho_2=0.999, \delta=10^{-8}`, with
    :math:`\delta` inside the root as in the box. ``torch.optim.Adam`` and the paper put
    eps outside, :math:`\hat s/(\sqrt{\hat r}+\delta)`:
    ``Adam(..., eps_inside_sqrt=False)`` == ``torch.optim.Adam(...)`` exactly.

    Errata of the box (fixed here): a stray "velocity update" line (Adam keeps no
    velocity); ``t`` is incremented *before* the bias corrections, so the first step uses
    ``t = 1`` (starting at t=1 and incrementing before use is off by one); one article
    quotes :math:`\rho_2 = 0.99` -- the paper's default is 0.999.

    The fast path folds the bias corrections into two scalars (``_coefficients``),
    :math:`\hat s/\sqrt{\hat r + \delta} = \frac{\sqrt{b_2}}{b_1}\, s/\sqrt{r + \delta b_2}`
    with :math:`b_i = 1-\rho_i^t` (and :math:`\sqrt{\hat r} + \delta =
    (\sqrt{r} + \delta\sqrt{b_2})/\sqrt{b_2}` for eps outside), saving two array passes.
    """

    name = "adam"
    slots = ("s", "r")
    limit_formula = r"(2+2$\beta_1$)/((1-$\beta_1$) {x})"
    preconditioned = True

    def __init__(self, lr: LearningRate = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, eps_inside_sqrt: bool = True, *, nonfinite: str = "raise"):
        self.beta1 = check_unit("beta1", beta1)
        self.beta2 = check_unit("beta2", beta2)
        self.eps = check_nonneg("eps", eps)
        self.eps_inside_sqrt = check_flag("eps_inside_sqrt", eps_inside_sqrt)
        super().__init__(lr, nonfinite=nonfinite)

    def _update(self, p, g, state, c):
        s, r, rho1, rho2 = state["s"], state["r"], self.beta1, self.beta2
        s[...] = rho1 * s + (1 - rho1) * g                       # s <- rho1 s + (1 - rho1) g
        r[...] = rho2 * r + (1 - rho2) * g * g                   # r <- rho2 r + (1 - rho2) g * g
        s_hat = s / (1 - rho1 ** self.t)                         # s_hat <- s / (1 - rho1^t)
        r_hat = r / (1 - rho2 ** self.t)                         # r_hat <- r / (1 - rho2^t)
        p -= c["lr"] * s_hat / denominator(r_hat, self.eps, self.eps_inside_sqrt)   # theta <- theta - eps s_hat/rms

    def _denominator(self, state):
        return denominator(state["r"] / (1 - self.beta2 ** self.t), self.eps, self.eps_inside_sqrt)

    def _coefficients(self, lr):
        b1 = 1.0 - self.beta1 ** self.t                          # bias corrections
        b2 = 1.0 - self.beta2 ** self.t
        eps = self.eps * (b2 if self.eps_inside_sqrt else math.sqrt(b2))
        return {"lr": lr, "step": lr * math.sqrt(b2) / b1, "eps": eps}

    def _second_moment(self, r: Array, state: dict[str, Array]) -> Array:
        """The r whose root is the fast path's denominator (AMSGrad: a running max)."""
        return r

    def _update_inplace(self, p, g, state, c, tmp):
        s, r = state["s"], state["r"]
        ema_(s, g, self.beta1)
        ema_(r, np.multiply(g, g, out=tmp), self.beta2)
        rms_(self._second_moment(r, state), c["eps"], self.eps_inside_sqrt, out=tmp)
        np.divide(s, tmp, out=tmp)                               # s_hat / sqrt(r_hat + delta), folded
        axpy_(-c["step"], tmp, p)

    def _stability_limit(self, lr):
        return (2.0 + 2.0 * self.beta1) / ((1.0 - self.beta1) * lr)


# --------------------------------------------------------------------------- names kept for old code
_ema, _rms = ema_, rms_    # lecture 05 shows these (cells 10, 15); its new text shows the readable _update
_ADAM_VARIANTS = ("Adamax", "AdamW", "Nadam", "AMSGrad")


def __getattr__(name: str):
    """``nnopt.optimizers.AdamW`` and the other Adam variants, which live in :mod:`nnopt.adam_variants`."""
    if name in _ADAM_VARIANTS:
        from . import adam_variants
        return getattr(adam_variants, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
