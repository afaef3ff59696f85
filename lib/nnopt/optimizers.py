r"""Reference optimizers, one class per algorithm box of the lecture.

Every optimizer follows one contract::

    opt = nnopt.Adam(lr=1e-3)          # hyperparameters only
    opt.step(params, grads)            # list or dict of float arrays; params updated IN PLACE
    opt.t                              # number of steps taken
    opt.state_dict(); opt.load_state_dict(d); opt.reset()

Notation (the lecture's): :math:`\theta` parameters, :math:`g` gradient, :math:`\epsilon`
learning rate (``lr``, a float or a schedule ``t -> float``), :math:`\delta` the small
constant (``eps``), :math:`\odot` element-wise product; every square root and division
is element-wise.

Numbering of the lecture's algorithm boxes:

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
--     Adamax, AdamW, Nadam, AMSGrad   extras (papers / ``torch.optim``)
=====  ==============================  =========================

How the code is organised: :class:`Optimizer` does everything the algorithms share —
checking the input (before anything is modified), the finiteness test, the step counter,
per-parameter state ("slots") and one scratch buffer — and each subclass writes only its
update rule in :meth:`Optimizer._update`, line by line against its box. Updates are
in place with ``out=`` ufuncs and BLAS ``axpy`` so a step allocates nothing that grows
with the number of parameters.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Union

import numpy as np
from scipy.linalg import blas

Array = np.ndarray
Params = Union[Sequence[Array], Mapping[str, Array]]
LearningRate = Union[float, Callable[[int], float]]

__all__ = [
    "Optimizer", "NonFiniteGradient", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp",
    "RMSPropNesterov", "AdaDelta", "Adam", "Adamax", "AdamW", "Nadam", "AMSGrad",
    "OPTIMIZERS", "make_optimizer",
]


class NonFiniteGradient(FloatingPointError):
    """A gradient contains NaN or inf; raised before any parameter or state is touched."""


# --------------------------------------------------------------------------- checks
def _check_number(name: str, value: Any, *, low: float = 0.0, high: float = math.inf,
                  high_open: bool = False) -> float:
    """Return ``value`` as a float, or raise ValueError naming the hyperparameter."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_high = value >= high if high_open else value > high
    if math.isnan(value) or value < low or too_high:
        interval = f"[{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def _unit(name: str, value: Any) -> float:
    """A decay rate or momentum coefficient: 0 <= value < 1."""
    return _check_number(name, value, high=1.0, high_open=True)


def _nonneg(name: str, value: Any) -> float:
    """A finite non-negative hyperparameter (eps, weight decay, ...)."""
    return _check_number(name, value, high=math.inf, high_open=True)


def _flag(name: str, value: Any) -> bool:
    """A True/False switch (no truthy stand-ins such as "yes" or 1)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _check_lr(lr: LearningRate) -> LearningRate:
    return lr if callable(lr) else _nonneg("lr", lr)


def _entries(tree: Params, what: str) -> tuple[list, list]:
    """Split a list/tuple/dict of arrays into (labels, arrays)."""
    if isinstance(tree, Mapping):
        keys = list(tree.keys())
        return [f"{what}[{k!r}]" for k in keys], [tree[k] for k in keys]
    if isinstance(tree, Sequence) and not isinstance(tree, (str, bytes)):
        return [f"{what}[{i}]" for i in range(len(tree))], list(tree)
    raise ValueError(f"{what} must be a list or dict of numpy arrays, got {type(tree).__name__}")


def _structure(params: Params, grads: Params) -> tuple[list[str], list[Array], list[Array]]:
    """Validate that ``grads`` matches ``params`` entry by entry; return labels and arrays."""
    labels, ps = _entries(params, "params")
    glabels, gs = _entries(grads, "grads")
    if isinstance(params, Mapping) != isinstance(grads, Mapping):
        raise ValueError("params and grads must both be dicts or both be lists")
    if isinstance(params, Mapping) and list(params.keys()) != list(grads.keys()):
        missing = [k for k in params if k not in grads]
        extra = [k for k in grads if k not in params]
        raise ValueError(f"grads keys do not match params keys (missing {missing}, unexpected {extra})")
    if len(ps) != len(gs):
        raise ValueError(f"got {len(gs)} gradients for {len(ps)} parameters")
    for label, glabel, p, g in zip(labels, glabels, ps, gs):
        if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
            kind = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise ValueError(f"{label} must be a float numpy array (got {kind}); "
                             "integer arrays cannot be updated in place")
        if not p.flags.writeable:
            raise ValueError(f"{label} is read-only; the optimizer updates parameters in place")
        if not isinstance(g, np.ndarray):
            raise ValueError(f"{glabel} must be a numpy array, got {type(g).__name__}")
        if g.shape != p.shape:
            raise ValueError(f"{glabel} has shape {g.shape} but {label} has shape {p.shape}")
        if g.dtype != p.dtype:
            raise ValueError(f"{glabel} has dtype {g.dtype} but {label} has dtype {p.dtype} "
                             "(cast the gradient explicitly; the optimizer does not upcast)")
    return labels, ps, gs


def _sum_of_squares(g: Array) -> float:
    """``g . g`` with one BLAS pass (no temporary) for contiguous arrays."""
    flat = g.reshape(-1) if g.flags.c_contiguous else np.ravel(g)
    return float(np.dot(flat, flat))


_BLAS_AXPY = {np.dtype(np.float32): blas.saxpy, np.dtype(np.float64): blas.daxpy}


def _axpy(a: float, x: Array, y: Array) -> None:
    """``y += a * x`` in place: one BLAS pass, no temporary (ufunc fallback otherwise)."""
    axpy = _BLAS_AXPY.get(y.dtype)
    if axpy is not None and x.flags.c_contiguous and y.flags.c_contiguous:
        axpy(x.reshape(-1), y.reshape(-1), a=a)
    else:
        y += a * x


def _ema(avg: Array, new: Array, decay: float) -> None:
    r"""Exponential moving average in place: ``avg <- decay*avg + (1-decay)*new``."""
    avg *= decay
    _axpy(1.0 - decay, new, avg)


def _rms(r: Array, eps: float, inside: bool, out: Array) -> Array:
    r"""Denominator ``sqrt(r + eps)`` (``inside``) or ``sqrt(r) + eps`` into ``out``."""
    if inside:
        np.add(r, eps, out=out)
        np.sqrt(out, out=out)
    else:
        np.sqrt(r, out=out)
        out += eps
    return out


# --------------------------------------------------------------------------- base class
class Optimizer:
    r"""Shared mechanics of all optimizers.

    ``step(params, grads)`` does, in this order:

    1. check that ``grads`` matches ``params`` (structure, shape, dtype) and that the
       learning rate for this step is a finite number >= 0 -- ``ValueError`` otherwise;
    2. check that every gradient is finite -- :class:`NonFiniteGradient` otherwise (or,
       with ``nonfinite="skip"``, count the step in ``skipped_steps`` and return);
    3. ``t <- t + 1`` and call :meth:`_update` once per parameter array.

    Nothing is modified before steps 1 and 2 pass, so a rejected step leaves parameters
    and optimizer state exactly as they were.

    Subclasses declare ``slots`` (names of per-parameter state arrays, zero-initialised)
    and implement ``_update(p, g, state, lr, scratch)``. ``_coefficients(lr)`` computes
    the per-step scalars once (bias corrections, ...) instead of once per array.
    """

    name: ClassVar[str] = ""
    slots: ClassVar[tuple[str, ...]] = ()

    def __init__(self, lr: LearningRate, *, nonfinite: str = "raise") -> None:
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
        self.lr = _check_lr(lr)
        self.nonfinite = nonfinite
        self.reset()

    # ----- hyperparameters
    def hyperparams(self) -> dict[str, Any]:
        """The constructor arguments (for ``repr`` and ``state_dict``)."""
        return {"lr": self.lr, **self._extra_hyperparams()}

    def _extra_hyperparams(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams().items())
        return f"{type(self).__name__}({args})"

    def current_lr(self) -> float:
        """Learning rate the next step uses: ``lr`` or ``lr(t)`` for a schedule."""
        if not callable(self.lr):
            return self.lr
        value = self.lr(self.t)
        try:
            return _nonneg(f"lr schedule {self.lr!r} at t={self.t}", value)
        except ValueError as err:
            raise ValueError(f"{err} (a schedule must return a finite number >= 0)") from None

    # ----- state
    def reset(self) -> None:
        """Forget all state: as if freshly constructed."""
        self.t = 0
        self.skipped_steps = 0
        self.last_grad_norm = math.nan
        self._state: list[dict[str, Array]] | None = None
        self._labels: list[str] | None = None
        self._scratch: dict[tuple[np.dtype, int], Array] = {}
        self._scalars: dict[str, float] = self._initial_scalars()

    def _initial_scalars(self) -> dict[str, float]:
        """Scalar state carried across steps (e.g. Nadam's momentum product)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of everything needed to resume: counters, slots, hyperparameters."""
        hp = {k: v for k, v in self.hyperparams().items() if not callable(v)}
        return {
            "optimizer": self.name,
            "hyperparams": hp,
            "t": self.t,
            "skipped_steps": self.skipped_steps,
            "scalars": dict(self._scalars),
            "labels": None if self._labels is None else list(self._labels),
            "state": None if self._state is None
            else [{k: v.copy() for k, v in s.items()} for s in self._state],
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; checked completely before anything is replaced."""
        if d.get("optimizer") != self.name:
            raise ValueError(f"state_dict is for optimizer {d.get('optimizer')!r}, not {self.name!r}")
        mine = self.hyperparams()
        for k, v in d.get("hyperparams", {}).items():
            if k != "lr" and mine.get(k) != v:
                raise ValueError(f"state_dict was saved with {k}={v!r} but this optimizer has "
                                 f"{k}={mine.get(k)!r}")
        state = d.get("state")
        if state is not None:
            for i, s in enumerate(state):
                if set(s) != set(self.slots) or not all(isinstance(a, np.ndarray) for a in s.values()):
                    raise ValueError(f"state_dict state[{i}] must hold arrays {self.slots}, got {sorted(s)}")
        t = d.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"state_dict t must be an int >= 0, got {t!r}")
        self.t = int(t)
        self.skipped_steps = int(d.get("skipped_steps", 0))
        self._scalars = {**self._initial_scalars(), **d.get("scalars", {})}
        self._labels = None if d.get("labels") is None else list(d["labels"])
        self._state = None if state is None else [{k: v.copy() for k, v in s.items()} for s in state]

    # ----- the step
    def step(self, params: Params, grads: Params) -> None:
        """One update of ``params`` in place from ``grads`` (see the class docstring)."""
        labels, ps, gs = _structure(params, grads)
        self._check_matches_state(labels, ps)
        lr = self.current_lr()
        squares = [_sum_of_squares(g) for g in gs]
        if not math.isfinite(sum(squares)):
            bad = [lab.replace("params", "grads") for lab, g, sq in zip(labels, gs, squares)
                   if not math.isfinite(sq) and not np.isfinite(g).all()]
            if bad:  # (a huge but finite gradient can overflow g.g; then it is not "bad")
                if self.nonfinite == "skip":
                    self.skipped_steps += 1
                    return
                raise NonFiniteGradient(f"non-finite values (NaN or inf) in {', '.join(bad)}; "
                                        "nothing was updated")
        self.last_grad_norm = math.sqrt(sum(squares))
        if self._state is None:
            self._state = [{k: np.zeros_like(p) for k in self.slots} for p in ps]
            self._labels = labels
        self.t += 1
        coeffs = self._coefficients(lr)
        for p, g, state in zip(ps, gs, self._state):
            self._update(p, g, state, coeffs, self._scratch_for(p))

    def _check_matches_state(self, labels: list[str], ps: list[Array]) -> None:
        if self._state is None:
            return
        if labels != self._labels:
            raise ValueError(f"params changed structure since the first step: {labels} vs {self._labels}")
        for label, p, s in zip(labels, ps, self._state):
            for name, a in s.items():
                if a.shape != p.shape or a.dtype != p.dtype:
                    raise ValueError(f"{label} has shape {p.shape}, dtype {p.dtype} but the optimizer "
                                     f"state {name!r} has {a.shape}, {a.dtype}; call reset() first")

    def _scratch_for(self, p: Array, index: int = 0) -> Array:
        """Temporary number ``index`` the size of ``p``: one buffer per (dtype, index),
        as large as the largest array, reused across arrays and steps."""
        key = (p.dtype, index)
        buf = self._scratch.get(key)
        if buf is None or buf.size < p.size:
            buf = self._scratch[key] = np.empty(p.size, dtype=p.dtype)
        return buf[: p.size].reshape(p.shape)

    def _coefficients(self, lr: float) -> dict[str, float]:
        """Per-step scalars shared by all arrays (``self.t`` already incremented)."""
        return {"lr": lr}

    def _update(self, p: Array, g: Array, state: dict[str, Array], c: dict[str, float],
                tmp: Array) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update")


# --------------------------------------------------------------------------- Alg. 1-3
class SGD(Optimizer):
    r"""Stochastic gradient descent (Alg. 1).

    .. math:: \theta \leftarrow \theta - \epsilon_k\, g

    ``lr`` may be a schedule (:mod:`nnopt.schedules`), e.g. the lecture's linear decay
    until :math:`\tau`. Matches ``torch.optim.SGD(lr)`` exactly.
    """

    name = "sgd"

    def _update(self, p, g, state, c, tmp):
        _axpy(-c["lr"], g, p)                                    # theta <- theta - eps g


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

    def __init__(self, lr: LearningRate, momentum: float = 0.9, *, nonfinite: str = "raise"):
        self.momentum = _unit("momentum", momentum)
        super().__init__(lr, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"momentum": self.momentum}

    def _update(self, p, g, state, c, tmp):
        v = state["v"]
        v *= self.momentum                                       # v <- alpha v ...
        _axpy(-c["lr"], g, v)                                    #        ... - eps g
        p += v                                                   # theta <- theta + v


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
    the last step :math:`\theta = \phi - \alpha v`). Subclasses return the box's step as
    ``(a, x)`` with ``d = a * x``, so plain Nesterov needs no temporary at all.
    """

    slots: ClassVar[tuple[str, ...]] = ("v",)

    def __init__(self, lr: LearningRate, momentum: float = 0.9, *, nonfinite: str = "raise"):
        self.momentum = _unit("momentum", momentum)
        super().__init__(lr, nonfinite=nonfinite)

    def _step_direction(self, g, state, c, tmp) -> tuple[float, Array]:
        raise NotImplementedError

    def _update(self, p, g, state, c, tmp):
        v = state["v"]
        a, x = self._step_direction(g, state, c, tmp)           # the box's step d = a x
        v *= self.momentum
        _axpy(a, x, v)                                           # v <- alpha v + d
        _axpy(self.momentum, v, p)                               # phi <- phi + alpha v' ...
        _axpy(a, x, p)                                           #                 ... + d


class Nesterov(_LookAhead):
    r"""SGD with Nesterov momentum (Alg. 3), in the look-ahead form of :class:`_LookAhead`.

    .. math::
        \tilde\theta = \theta + \alpha v,\quad g = \nabla L(\tilde\theta),\quad
        v \leftarrow \alpha v - \epsilon g,\quad \theta \leftarrow \theta + v

    ``params`` hold :math:`\tilde\theta`; ``g`` is the gradient there. This is exactly
    ``torch.optim.SGD(lr, momentum=a, nesterov=True)`` for a constant ``lr``.
    """

    name = "nesterov"

    def _extra_hyperparams(self):
        return {"momentum": self.momentum}

    def _step_direction(self, g, state, c, tmp):
        return -c["lr"], g                                       # d = -eps g


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

    def __init__(self, lr: LearningRate = 1e-2, eps: float = 1e-7, *, nonfinite: str = "raise"):
        self.eps = _nonneg("eps", eps)
        super().__init__(lr, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"eps": self.eps}

    def _update(self, p, g, state, c, tmp):
        r = state["r"]
        r += np.multiply(g, g, out=tmp)                          # r <- r + g*g
        _rms(r, self.eps, inside=False, out=tmp)                 # delta + sqrt(r)
        np.divide(g, tmp, out=tmp)
        _axpy(-c["lr"], tmp, p)                                  # theta -= eps g / (...)


class _RMSMixin:
    """Shared hyperparameters of the RMSProp family (rho, eps and where eps goes)."""

    def _init_rms(self, rho: float, eps: float, eps_inside_sqrt: bool) -> None:
        self.rho = _unit("rho", rho)
        self.eps = _nonneg("eps", eps)
        self.eps_inside_sqrt = _flag("eps_inside_sqrt", eps_inside_sqrt)

    def _scaled_gradient(self, g: Array, r: Array, tmp: Array) -> Array:
        r"""Accumulate ``r <- rho r + (1-rho) g*g``; return ``g / rms(r)`` in ``tmp``."""
        _ema(r, np.multiply(g, g, out=tmp), self.rho)
        _rms(r, self.eps, self.eps_inside_sqrt, out=tmp)
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

    def __init__(self, lr: LearningRate = 1e-3, rho: float = 0.9, eps: float = 1e-6,
                 eps_inside_sqrt: bool = True, *, nonfinite: str = "raise"):
        self._init_rms(rho, eps, eps_inside_sqrt)
        super().__init__(lr, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"rho": self.rho, "eps": self.eps, "eps_inside_sqrt": self.eps_inside_sqrt}

    def _update(self, p, g, state, c, tmp):
        _axpy(-c["lr"], self._scaled_gradient(g, state["r"], tmp), p)   # theta -= eps g/rms


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
    slots = ("v", "r")

    def __init__(self, lr: LearningRate = 1e-3, rho: float = 0.9, momentum: float = 0.9,
                 eps: float = 1e-6, eps_inside_sqrt: bool = True, *, nonfinite: str = "raise"):
        self._init_rms(rho, eps, eps_inside_sqrt)
        super().__init__(lr, momentum, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"rho": self.rho, "momentum": self.momentum, "eps": self.eps,
                "eps_inside_sqrt": self.eps_inside_sqrt}

    def _step_direction(self, g, state, c, tmp):
        return -c["lr"], self._scaled_gradient(g, state["r"], tmp)     # d = -eps g/rms


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
        self.rho = _unit("rho", rho)
        self.eps = _nonneg("eps", eps)
        super().__init__(lr, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"rho": self.rho, "eps": self.eps}

    def _update(self, p, g, state, c, tmp):
        r, u = state["r"], state["u"]
        tmp2 = self._scratch_for(p, 1)
        _ema(r, np.multiply(g, g, out=tmp), self.rho)            # r <- rho r + (1-rho) g*g
        _rms(r, self.eps, inside=True, out=tmp)                  # sqrt(r + delta)
        _rms(u, self.eps, inside=True, out=tmp2)                 # sqrt(u + delta)
        np.divide(tmp2, tmp, out=tmp)
        tmp *= g                                                 # d = -Delta theta
        _ema(u, np.multiply(tmp, tmp, out=tmp2), self.rho)       # u <- rho u + (1-rho) d*d
        _axpy(-c["lr"], tmp, p)                                  # theta <- theta + eps Delta theta


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

    Implementation: the bias corrections are folded into two scalars,
    :math:`\hat s/\sqrt{\hat r + \delta} = \frac{\sqrt{b_2}}{b_1}\, s/\sqrt{r + \delta b_2}`
    with :math:`b_i = 1-\rho_i^t` (and :math:`\sqrt{\hat r} + \delta =
    (\sqrt{r} + \delta\sqrt{b_2})/\sqrt{b_2}` for eps outside), saving two array passes.
    """

    name = "adam"
    slots = ("s", "r")

    def __init__(self, lr: LearningRate = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, eps_inside_sqrt: bool = True, *, nonfinite: str = "raise"):
        self.beta1 = _unit("beta1", beta1)
        self.beta2 = _unit("beta2", beta2)
        self.eps = _nonneg("eps", eps)
        self.eps_inside_sqrt = _flag("eps_inside_sqrt", eps_inside_sqrt)
        super().__init__(lr, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "eps_inside_sqrt": self.eps_inside_sqrt}

    def _coefficients(self, lr):
        b1 = 1.0 - self.beta1 ** self.t                          # bias corrections
        b2 = 1.0 - self.beta2 ** self.t
        eps = self.eps * (b2 if self.eps_inside_sqrt else math.sqrt(b2))
        return {"lr": lr, "step": lr * math.sqrt(b2) / b1, "eps": eps}

    def _second_moment(self, r: Array, state: dict[str, Array]) -> Array:
        """The r whose root is the denominator (AMSGrad replaces it by a running max)."""
        return r

    def _update(self, p, g, state, c, tmp):
        s, r = state["s"], state["r"]
        _ema(s, g, self.beta1)                                   # s <- rho1 s + (1-rho1) g
        _ema(r, np.multiply(g, g, out=tmp), self.beta2)          # r <- rho2 r + (1-rho2) g*g
        _rms(self._second_moment(r, state), c["eps"], self.eps_inside_sqrt, out=tmp)
        np.divide(s, tmp, out=tmp)                               # s_hat / sqrt(r_hat + delta)
        _axpy(-c["step"], tmp, p)                                # theta -= eps * (...)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``.

    .. math:: \theta \leftarrow \theta (1 - \epsilon\lambda), \text{ then the Adam step}

    Not in the lecture. Defaults are torch's (weight_decay=1e-2, eps *outside* the root),
    so ``AdamW(lr, weight_decay=w)`` == ``torch.optim.AdamW(lr, weight_decay=w)``.
    """

    name = "adamw"

    def __init__(self, lr: LearningRate = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 1e-2, eps_inside_sqrt: bool = False, *,
                 nonfinite: str = "raise"):
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        super().__init__(lr, beta1, beta2, eps, eps_inside_sqrt, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {**super()._extra_hyperparams(), "weight_decay": self.weight_decay}

    def _update(self, p, g, state, c, tmp):
        p *= 1.0 - c["lr"] * self.weight_decay                  # decoupled decay
        super()._update(p, g, state, c, tmp)


class AMSGrad(Adam):
    r"""AMSGrad (Reddi et al. 2018): Adam whose denominator uses the running maximum
    :math:`\hat r_{\max} = \max(\hat r_{\max}, r)`, so the effective step never grows.

    Not in the lecture. Defaults are torch's (eps outside the root):
    ``AMSGrad(...)`` == ``torch.optim.Adam(..., amsgrad=True)``.
    """

    name = "amsgrad"
    slots = ("s", "r", "r_max")

    def __init__(self, lr: LearningRate = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, eps_inside_sqrt: bool = False, *, nonfinite: str = "raise"):
        super().__init__(lr, beta1, beta2, eps, eps_inside_sqrt, nonfinite=nonfinite)

    def _second_moment(self, r, state):
        return np.maximum(state["r_max"], r, out=state["r_max"])


class Adamax(Optimizer):
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
        self.beta1 = _unit("beta1", beta1)
        self.beta2 = _unit("beta2", beta2)
        self.eps = _nonneg("eps", eps)
        super().__init__(lr, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _coefficients(self, lr):
        return {"lr": lr, "step": lr / (1.0 - self.beta1 ** self.t)}

    def _update(self, p, g, state, c, tmp):
        s, u = state["s"], state["u"]
        _ema(s, g, self.beta1)                                   # s <- b1 s + (1-b1) g
        u *= self.beta2
        np.abs(g, out=tmp)
        tmp += self.eps
        np.maximum(u, tmp, out=u)                                # u <- max(b2 u, |g| + eps)
        np.divide(s, u, out=tmp)
        _axpy(-c["step"], tmp, p)                                # theta -= eps/(1-b1^t) s/u


class Nadam(Optimizer):
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
        self.beta1 = _unit("beta1", beta1)
        self.beta2 = _unit("beta2", beta2)
        self.eps = _nonneg("eps", eps)
        self.momentum_decay = _nonneg("momentum_decay", momentum_decay)
        super().__init__(lr, nonfinite=nonfinite)

    def _extra_hyperparams(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "momentum_decay": self.momentum_decay}

    def _initial_scalars(self):
        return {"mu_product": 1.0}

    def _mu(self, t: int) -> float:
        return self.beta1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def _coefficients(self, lr):
        mu, mu_next = self._mu(self.t), self._mu(self.t + 1)
        prod = self._scalars["mu_product"] = self._scalars["mu_product"] * mu
        b2 = 1.0 - self.beta2 ** self.t
        return {"lr": lr, "eps": self.eps * math.sqrt(b2),
                "g_coef": lr * (1.0 - mu) / (1.0 - prod) * math.sqrt(b2),
                "s_coef": lr * mu_next / (1.0 - prod * mu_next) * math.sqrt(b2)}

    def _update(self, p, g, state, c, tmp):
        s, r = state["s"], state["r"]
        _ema(s, g, self.beta1)
        _ema(r, np.multiply(g, g, out=tmp), self.beta2)
        num = np.multiply(g, c["g_coef"], out=self._scratch_for(p, 1))
        _axpy(c["s_coef"], s, num)                               # numerator: a g + b s
        _rms(r, c["eps"], inside=False, out=tmp)                 # sqrt(r) + eps sqrt(b2)
        np.divide(num, tmp, out=tmp)
        p -= tmp


# --------------------------------------------------------------------------- registry
# The optimizers of 2023-2025 subclass Optimizer in their own modules (imported here, last).
from .optimizers_matrix import Adafactor, Muon  # noqa: E402
from .optimizers_modern import Lion, ScheduleFreeAdamW, ScheduleFreeSGD  # noqa: E402

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSProp, RMSPropNesterov,
                              AdaDelta, Adam, Adamax, AdamW, Nadam, AMSGrad,
                              Lion, ScheduleFreeAdamW, ScheduleFreeSGD, Muon, Adafactor)
}
_ALIASES = {"rmspropnesterov": "rmsprop_nesterov", "rmsprop+nesterov": "rmsprop_nesterov",
            "rmsprop-nesterov": "rmsprop_nesterov", "nag": "nesterov"}


def make_optimizer(name: str, **hyperparams: Any) -> Optimizer:
    """Build an optimizer by its lower-case name, e.g. ``make_optimizer("rmsprop", lr=1e-4)``."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    try:
        return OPTIMIZERS[key](**hyperparams)
    except TypeError as err:
        raise ValueError(f"bad hyperparameters for {key!r}: {err}") from None
