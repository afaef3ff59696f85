r"""Optimizers of 2023-2024 whose state has the shape of the parameter: Lion (sign descent)
and Schedule-Free AdamW / SGD (averaging instead of a schedule).

Same contract as :mod:`nnopt.optimizers` (hyperparameters only in the constructor,
``step(params, grads)`` in place, ``t``, ``state_dict``/``load_state_dict``/``reset``,
every check done before anything changes), and the same two paths: ``_update`` is the
algorithm box line by line in plain numpy (it broadcasts, so it also steps models stacked on
a leading axis), ``_update_inplace`` the fast path ``step`` runs, tested equal to it. Each
class docstring holds its box in the lecture's notation (:math:`\theta` parameters, :math:`g`
gradient, :math:`\epsilon` learning rate ``lr``, :math:`\delta` the small constant ``eps``),
every default, every deviation from the paper and from the reference implementation, and the
setting that reproduces the reference exactly (tested in float64 in
``tests/test_optimizers_modern.py``).

=========================  =====================================  ===============================
class                      paper                                  reference (oracle)
=========================  =====================================  ===============================
:class:`Lion`              Chen et al. 2023, Alg. 2               ``lion_pytorch.Lion`` 0.2.5
:class:`ScheduleFreeAdamW` Defazio et al. 2024, Alg. 1            ``schedulefree.AdamWScheduleFree``
:class:`ScheduleFreeSGD`   Defazio et al. 2024, eq. (1)-(3)       ``schedulefree.SGDScheduleFree``
=========================  =====================================  ===============================

None of them has a curvature limit of the kind :mod:`nnopt.stability` draws or a diagonal
preconditioner ``D`` with step :math:`-\epsilon m/D` (``limit_formula = None``,
``preconditioned = False``; the reason is in each class). Muon and Adafactor, whose state
depends on whether a parameter is a matrix, are in :mod:`nnopt.optimizers_matrix`.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .inplace import axpy_, ema_
from .optimizer_base import Array, LearningRate, Optimizer, Params
from .validation import check_flag, check_int, check_nonneg, check_number, check_unit

__all__ = ["Lion", "ScheduleFreeAdamW", "ScheduleFreeSGD"]


# --------------------------------------------------------------------------- Lion
class Lion(Optimizer):
    r"""Lion, "evolved sign momentum" (Chen et al. 2023, *Symbolic Discovery of
    Optimization Algorithms*, Alg. 2): every entry moves by exactly :math:`\pm\epsilon`.

    .. math::
        c \leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad
        \theta \leftarrow \theta - \epsilon\,\big(\operatorname{sign}(c) + \lambda\theta\big), \qquad
        m \leftarrow \beta_2 m + (1-\beta_2)\, g

    The step direction interpolates the momentum and the fresh gradient with
    :math:`\beta_1`; the momentum itself is a slower average (:math:`\beta_2 > \beta_1`).
    Weight decay is decoupled (as AdamW), scaled by ``lr``. ``sign(0) = 0``.

    Defaults are the paper's and ``lion_pytorch.Lion``'s: lr=1e-4, beta1=0.9, beta2=0.99,
    weight_decay=0 (the paper advises an ``lr`` 3-10x smaller than AdamW's and a weight
    decay 3-10x larger, so that ``lr * weight_decay`` stays the same). ``Lion(lr, beta1,
    beta2, weight_decay)`` == ``lion_pytorch.Lion(lr, betas=(beta1, beta2),
    weight_decay=...)`` exactly (its ``decoupled_weight_decay=True``, which divides the
    decay by the initial lr, has no equivalent here).

    No stability limit: the step has length :math:`\epsilon` whatever the curvature, so on a
    quadratic Lion never diverges; it ends oscillating within about :math:`\epsilon` of the
    minimum instead.
    """

    name = "lion"
    slots = ("m",)
    limit_formula = None        # sign descent: the step size does not depend on the curvature
    preconditioned = False

    def __init__(self, lr: LearningRate = 1e-4, beta1: float = 0.9, beta2: float = 0.99,
                 weight_decay: float = 0.0, *, nonfinite: str = "raise"):
        self.beta1 = check_unit("beta1", beta1)
        self.beta2 = check_unit("beta2", beta2)
        self.weight_decay = check_nonneg("weight_decay", weight_decay)
        super().__init__(lr, nonfinite=nonfinite)

    def _update(self, p, g, state, c):
        m, b1, b2 = state["m"], self.beta1, self.beta2
        direction = np.sign(b1 * m + (1 - b1) * g)               # sign(c), c = b1 m + (1 - b1) g
        p -= c["lr"] * (direction + self.weight_decay * p)       # theta <- theta - eps (sign(c) + lambda theta)
        m[...] = b2 * m + (1 - b2) * g                           # m <- b2 m + (1 - b2) g

    def _update_inplace(self, p, g, state, c, tmp):
        m = state["m"]
        np.multiply(m, self.beta1, out=tmp)
        axpy_(1.0 - self.beta1, g, tmp)                          # c
        sign = np.sign(tmp, out=self._scratch_for(p, 1))         # (numpy 1.23's in-place sign is 10x slower)
        if self.weight_decay:
            p *= 1.0 - c["lr"] * self.weight_decay
        axpy_(-c["lr"], sign, p)
        ema_(m, g, self.beta2)


# --------------------------------------------------------------------------- Schedule-Free
class _ScheduleFree(Optimizer):
    r"""What Schedule-Free SGD and AdamW share (Defazio et al. 2024, *The Road Less Scheduled*).

    Three sequences: :math:`z` takes the base optimizer's steps, :math:`x` is a weighted
    average of the :math:`z`'s, and the gradient is taken at their interpolation
    :math:`y = (1-\beta)\,z + \beta\,x`:

    .. math::
        z \leftarrow z - \epsilon_t\, d, \qquad
        x \leftarrow (1 - c_t)\, x + c_t\, z, \qquad
        y = (1-\beta)\, z + \beta\, x,
        \qquad c_t = \frac{w_t}{\sum_{i \le t} w_i},\;
        w_t = t^{r}\, \big(\max_{i\le t}\epsilon_i\big)^{p}

    (``d`` is the base optimizer's direction plus the weight decay :math:`\lambda y`,
    :math:`p` = ``weight_lr_power``.) With :math:`r = 0` and a constant rate,
    :math:`c_t = 1/t`: :math:`x` is the plain average of all iterates, whose error falls
    like a decaying schedule's without knowing the number of steps in advance. Warm-up:
    :math:`\epsilon_t = \epsilon\min(1, t/T_{warmup})`; weighting by :math:`\epsilon^p`
    gives the small warm-up steps little weight.

    **Train and evaluation points.** ``params`` hold :math:`y` while training (that is
    where gradients are taken); the model to evaluate or ship is :math:`x`. Call
    ``opt.eval(params)`` to move ``params`` to :math:`x` in place and ``opt.train(params)``
    to move back, like ``schedulefree``'s ``optimizer.eval()/.train()``; or use
    ``with opt.eval_point(params): ...`` (``params`` are :math:`x` inside and bitwise the
    old :math:`y` after; :func:`nnopt.train.fit` evaluates through it). ``step`` refuses to
    run in eval mode. The mode is saved in ``state_dict``. State: :math:`z` (and the base
    optimizer's slots); :math:`x` is not stored but recovered as
    :math:`x = (y - (1-\beta) z)/\beta`, hence :math:`0 < \beta < 1`.

    The fast path updates :math:`y` without forming :math:`x` (with :math:`z` before its
    step): :math:`y \leftarrow (1-c_t)\,y + c_t z - \epsilon_t\,(1 - \beta(1-c_t))\, d`, then
    :math:`z \leftarrow z - \epsilon_t d`; expanding :math:`y' = (1-\beta) z' + \beta x'`
    gives exactly this.

    No single stability limit (``limit_formula = None``): the step of :math:`y` mixes the
    averaging (:math:`c_t`, 1 at the first step) with the base step, so the largest curvature
    it tolerates changes with :math:`t`. Not ``preconditioned`` in the sense of
    :mod:`nnopt.stability` either: the step of ``params`` is not :math:`-\epsilon m/D`.
    """

    slots = ("z",)
    limit_formula = None
    preconditioned = False

    def __init__(self, lr: LearningRate, weight_decay: float, warmup_steps: int, r: float,
                 weight_lr_power: float, *, nonfinite: str):
        self.weight_decay = check_nonneg("weight_decay", weight_decay)
        self.warmup_steps = check_int("warmup_steps", warmup_steps)
        self.r = check_nonneg("r", r)
        self.weight_lr_power = check_nonneg("weight_lr_power", weight_lr_power)
        super().__init__(lr, nonfinite=nonfinite)

    @staticmethod
    def _check_beta(name: str, value: Any) -> float:
        """The beta of y = (1-beta) z + beta x: 0 < beta < 1 (x = (y - (1-beta) z) / beta)."""
        return check_number(name, value, 0.0, 1.0, low_open=True, high_open=True)

    def _beta(self) -> float:
        """The interpolation weight beta of y = (1-beta) z + beta x."""
        raise NotImplementedError

    def _initial_scalars(self):
        return {"lr_max": 0.0, "weight_sum": 0.0, "train_mode": 1.0}

    # ----- the two points
    @property
    def mode(self) -> str:
        """``"train"`` (params hold y, where gradients are taken) or ``"eval"`` (params hold x)."""
        return "train" if self._scalars["train_mode"] else "eval"

    def eval(self, params: Params) -> None:
        """Move ``params`` in place from the training point y to the evaluation point x."""
        self._switch(params, to_train=False)

    def train(self, params: Params) -> None:
        """Move ``params`` in place from the evaluation point x back to y (before ``step``)."""
        self._switch(params, to_train=True)

    @contextmanager
    def eval_point(self, params: Params) -> Iterator[None]:
        """``with opt.eval_point(params):`` params hold x inside; afterwards exactly y again."""
        if self.mode != "train":
            raise RuntimeError(f"Invalid eval_point of {type(self).__name__} in eval mode: params already hold x "
                               "(expected train mode; call opt.train(params) first)")
        saved = [p.copy() for p, _ in self.arrays_with_state(params)]
        self.eval(params)
        try:
            yield
        finally:
            for (p, _), y in zip(self.arrays_with_state(params), saved):
                np.copyto(p, y)
            self._scalars["train_mode"] = 1.0

    def _switch(self, params: Params, to_train: bool) -> None:
        arrays = self.arrays_with_state(params)                  # every check before anything moves
        if self.mode == ("train" if to_train else "eval"):
            return                                               # already there (as schedulefree)
        beta = self._beta()
        weight = 1.0 - beta if to_train else 1.0 - 1.0 / beta   # y = x + (1-b)(z-x); x = y + (1-1/b)(z-y)
        for p, state in arrays:
            if state:                                            # (before the first step x = y = z)
                tmp = self._scratch_for(p)
                np.subtract(state["z"], p, out=tmp)
                axpy_(weight, tmp, p)
        self._scalars["train_mode"] = float(to_train)

    def step(self, params: Params, grads: Params) -> None:
        if self.mode != "train":
            raise RuntimeError(f"Invalid step of {type(self).__name__} in eval mode: params hold the average x "
                               "(expected train mode, where gradients are taken at y; call opt.train(params) "
                               "before step())")
        super().step(params, grads)

    # ----- one step
    def _coefficients(self, lr):
        warm = min(1.0, self.t / self.warmup_steps) if self.warmup_steps else 1.0
        lr_t = self._scaled_lr(lr * warm)                        # eps_t
        lr_max = self._scalars["lr_max"] = np.maximum(self._scalars["lr_max"], lr_t)
        weight = self.t ** self.r * lr_max ** self.weight_lr_power          # w_t
        weight_sum = self._scalars["weight_sum"] = self._scalars["weight_sum"] + weight
        ratio = np.divide(weight, weight_sum, out=np.zeros(np.shape(weight_sum)), where=np.asarray(weight_sum) > 0)
        return {"lr": lr_t, "c": ratio if ratio.ndim else float(ratio)}     # c_t = w_t / sum of w_i

    def _scaled_lr(self, lr: Any) -> Any:
        """Hook: AdamW's paper variant folds its bias correction into the rate."""
        return lr

    def _direction(self, g: Array, state: dict[str, Array], c: dict[str, Any]) -> Array:
        """The base optimizer's direction (plain numpy, updating its own state)."""
        raise NotImplementedError

    def _direction_inplace(self, g: Array, state: dict[str, Array], c: dict[str, Any], tmp: Array) -> Array:
        """The same direction in ``tmp`` (or ``g`` itself, never modified)."""
        raise NotImplementedError

    def _update(self, p, g, state, c):
        z, beta, ct, lr = state["z"], self._beta(), c["c"], c["lr"]
        if self.t == 1:
            z[...] = p                                           # z_1 = x_1 = y_1: the start
        x = (p - (1 - beta) * z) / beta                          # x_t, recovered from y_t and z_t
        d = self._direction(g, state, c) + self.weight_decay * p     # d + lambda y_t
        z[...] = z - lr * d                                      # z_t+1 = z_t - eps_t d
        x = (1 - ct) * x + ct * z                                # x_t+1 = (1 - c_t) x_t + c_t z_t+1
        p[...] = (1 - beta) * z + beta * x                       # y_t+1 = (1 - beta) z_t+1 + beta x_t+1

    def _update_inplace(self, p, g, state, c, tmp):
        z = state["z"]
        if self.t == 1:
            np.copyto(z, p)
        d = self._direction_inplace(g, state, c, tmp)
        if self.weight_decay:
            if d is g:                                           # never write into the caller's g
                np.copyto(tmp, g)
                d = tmp
            axpy_(self.weight_decay, p, d)                       # d <- d + lambda y (decay at y)
        lr, ct, beta = c["lr"], c["c"], self._beta()
        p *= 1.0 - ct
        axpy_(ct, z, p)                                          # y <- (1-c) y + c z ...
        axpy_(-lr * (1.0 - beta * (1.0 - ct)), d, p)             #      ... - eps (1 - b(1-c)) d
        axpy_(-lr, d, z)                                         # z <- z - eps d


class ScheduleFreeSGD(_ScheduleFree):
    r"""Schedule-Free SGD (Defazio et al. 2024): :class:`_ScheduleFree` with :math:`d = g`.

    .. math::
        y = (1-\beta) z + \beta x,\quad g = \nabla L(y) + \lambda y,\quad
        z \leftarrow z - \epsilon_t g,\quad x \leftarrow (1-c_t)\, x + c_t z

    (:math:`\beta` = ``momentum``: the interpolation plays the role of momentum.) ``params``
    hold :math:`y`; evaluate at :math:`x` with ``eval(params)`` / ``eval_point(params)``.
    Weight decay is an L2 term added to the gradient at :math:`y`, as in the reference.

    Defaults are ``schedulefree.SGDScheduleFree``'s (lr=1.0, momentum=0.9, weight_decay=0,
    warmup_steps=0, r=0, weight_lr_power=2), which this matches exactly with the same
    arguments, parameters in train mode after ``train()``, and x after ``eval()``.
    The paper's weights use :math:`\epsilon_t^2`, the reference (and we) the running
    maximum :math:`(\max_{i\le t}\epsilon_i)^2`: the same unless a schedule passed as
    ``lr`` decreases (schedule-free training needs no schedule besides the warm-up).
    """

    name = "schedulefree_sgd"

    def __init__(self, lr: LearningRate = 1.0, momentum: float = 0.9, weight_decay: float = 0.0,
                 warmup_steps: int = 0, r: float = 0.0, weight_lr_power: float = 2.0, *,
                 nonfinite: str = "raise"):
        self.momentum = self._check_beta("momentum", momentum)
        super().__init__(lr, weight_decay, warmup_steps, r, weight_lr_power, nonfinite=nonfinite)

    def _beta(self):
        return self.momentum

    def _direction(self, g, state, c):
        return g                                                 # d = g

    def _direction_inplace(self, g, state, c, tmp):
        return g


class ScheduleFreeAdamW(_ScheduleFree):
    r"""Schedule-Free AdamW (Defazio et al. 2024, Alg. 1): :class:`_ScheduleFree` whose
    direction is Adam's normalised gradient (no first moment: the averaging is the momentum).

    .. math::
        y = (1-\beta_1) z + \beta_1 x,\quad g = \nabla L(y),\quad
        v \leftarrow \beta_2 v + (1-\beta_2)\, g\odot g,\\
        d = \frac{g}{\sqrt{v/(1-\beta_2^t)} + \delta} + \lambda y,\quad
        z \leftarrow z - \epsilon_t d,\quad x \leftarrow (1-c_t)\, x + c_t z

    Defaults are ``schedulefree.AdamWScheduleFree``'s (lr=0.0025, beta1=0.9, beta2=0.999,
    eps=1e-8, weight_decay=0, warmup_steps=0, r=0, weight_lr_power=2); with the same
    arguments this matches it exactly (train and eval points).

    **Paper vs package.** The paper's Alg. 1 folds Adam's bias correction into the rate,
    :math:`\epsilon_t = \epsilon\sqrt{1-\beta_2^t}\min(1, t/T_{warmup})`, and divides by
    :math:`\sqrt{v} + \delta`; the averaging weights :math:`\epsilon_t^2` then also carry
    the correction, so the first steps (where it is small) count less. The package's
    default (followed here) divides :math:`v` by :math:`1-\beta_2^t` instead and leaves the
    rate and weights alone (its docstring: the paper's "simplified bias correction ... can
    cause instability on some problems"). ``lr_bias_correction=True`` is the paper's
    Alg. 1, and equals ``schedulefree.AdamWScheduleFreePaper`` exactly. Weight decay is
    decoupled, taken at :math:`y` and scaled by :math:`\epsilon_t` (paper and package).
    """

    name = "schedulefree_adamw"
    slots = ("z", "v")

    def __init__(self, lr: LearningRate = 0.0025, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                 weight_lr_power: float = 2.0, lr_bias_correction: bool = False, *,
                 nonfinite: str = "raise"):
        self.beta1 = self._check_beta("beta1", beta1)
        self.beta2 = check_unit("beta2", beta2)
        self.eps = check_nonneg("eps", eps)
        self.lr_bias_correction = check_flag("lr_bias_correction", lr_bias_correction)
        super().__init__(lr, weight_decay, warmup_steps, r, weight_lr_power, nonfinite=nonfinite)

    def _beta(self):
        return self.beta1

    def _scaled_lr(self, lr):
        return lr * math.sqrt(1.0 - self.beta2 ** self.t) if self.lr_bias_correction else lr

    def _coefficients(self, lr):
        c = super()._coefficients(lr)
        c["v_scale"] = 1.0 if self.lr_bias_correction else 1.0 - self.beta2 ** self.t
        return c

    def _direction(self, g, state, c):
        v, b2 = state["v"], self.beta2
        v[...] = b2 * v + (1 - b2) * g * g                       # v <- b2 v + (1 - b2) g * g
        v_hat = v / c["v_scale"]                                 # v_hat = v / (1 - b2^t)  (paper: v)
        return g / (np.sqrt(v_hat) + self.eps)                   # d = g / (sqrt(v_hat) + delta)

    def _direction_inplace(self, g, state, c, tmp):
        ema_(state["v"], np.multiply(g, g, out=tmp), self.beta2)
        np.divide(state["v"], c["v_scale"], out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += self.eps
        return np.divide(g, tmp, out=tmp)
