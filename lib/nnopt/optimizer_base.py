r"""What every optimizer shares: the :class:`Optimizer` base class, its input checks, the
registry behind :func:`make_optimizer`, and :class:`NonFiniteGradient`.

The contract (tests and notebooks rely on it)::

    opt = nnopt.Adam(lr=1e-3)          # hyperparameters only
    opt.step(params, grads)            # list or dict of float arrays; params updated IN PLACE
    opt.t                              # number of steps taken
    opt.state_dict(); opt.load_state_dict(d); opt.reset()

**Writing an optimizer** (a subclass; the lecture's are in :mod:`nnopt.optimizers`)::

    class Lion(Optimizer):
        name = "lion"                  # make_optimizer("lion") finds it (registered on definition)
        slots = ("m",)                 # per-parameter state arrays, zero-initialised

        def __init__(self, lr=1e-4, beta1=0.9, beta2=0.99, *, nonfinite="raise"):
            self.beta1 = check_unit("beta1", beta1)          # nnopt.validation
            self.beta2 = check_unit("beta2", beta2)
            super().__init__(lr, nonfinite=nonfinite)

        def _update(self, p, g, state, c):                   # the algorithm box, line by line
            m = state["m"]
            p -= c["lr"] * np.sign(self.beta1 * m + (1 - self.beta1) * g)
            m[...] = self.beta2 * m + (1 - self.beta2) * g

The hooks, all optional except ``_update``:

``_update(p, g, state, c)``
    The **readable path**: one parameter array ``p`` (updated in place), its gradient ``g``,
    its ``state`` (dict slot -> array, updated in place with ``x[...] = ...``) and the step's
    coefficients ``c`` (``c["lr"]`` at least). Plain numpy expressions that broadcast, so
    that the same code also steps a stack of models (a leading model axis, ``c["lr"]`` an
    array of shape ``(M, 1, ...)``).
``state_shapes(shape)``
    The names and shapes of the state arrays kept for a parameter of ``shape``; by default
    one array of the parameter's shape per name in ``slots``. Override it when the state
    depends on the shape (Muon keeps a momentum for a matrix but AdamW's two moments for a
    vector; Adafactor a row and a column vector for a matrix): ``step`` creates the state
    from it, ``state_dict`` records each parameter's shape, and ``load_state_dict`` and
    ``step`` check every state array against it. ``_update`` then tells the cases apart by
    the keys of ``state``, not by ``p.ndim`` (which counts the model axis of a stack).
``_update_inplace(p, g, state, c, tmp)``
    The **fast path** ``step`` runs: the same math with ``out=`` ufuncs, the
    :mod:`nnopt.inplace` kernels and ``tmp``, a scratch array shaped like ``p`` (more via
    ``self._scratch_for(p, 1)``, ...). Default: the readable path. Tested equal to it.
``_coefficients(lr)``
    Per-step scalars shared by all arrays (bias corrections, ...), computed once per step
    after ``t <- t + 1``; return a dict holding ``"lr"``.
``_initial_scalars()``
    Scalar state carried across steps (e.g. Nadam's momentum product, in ``self._scalars``).
``_extra_hyperparams()``
    The hyperparameters besides ``lr`` (``repr``, ``state_dict`` checks); by default the
    constructor's parameters, read from the attributes of the same names.

**Stacked models.** The readable path also steps ``M`` models at once, stacked on leading
axes: ``zero_state(P, stack=1)`` gives the state of a stack ``P``, ``c = _coefficients(lr)``
with ``lr`` of shape ``(M, 1, ..., 1)`` (one 1 per axis of a single model's parameter), and
a reduction over one model's entries (Adafactor's RMS) runs over :func:`model_axes`.

Facts the curvature analysis (:mod:`nnopt.stability`) asks every optimizer:
``limit_formula``/``_stability_limit(lr)`` (the largest curvature its step tolerates) and
``preconditioned``/``_denominator(state)`` (the diagonal :math:`D` it divides by).
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Union

import numpy as np

from .inplace import sum_of_squares
from .validation import (FLOAT_DTYPES, Described, check_arguments, check_choice, check_int, check_nonneg, check_number,
                         invalid, show)

Array = np.ndarray
Params = Union[Sequence[Array], Mapping[str, Array]]
LearningRate = Union[float, Callable[[int], float]]
Shape = tuple[int, ...]

__all__ = ["Optimizer", "NonFiniteGradient", "OPTIMIZERS", "make_optimizer", "model_axes", "Array", "Params",
           "LearningRate", "Shape"]

#: Every optimizer class by its lower-case ``name``, in order of definition (filled by
#: :meth:`Optimizer.__init_subclass__`: defining a class with a ``name`` registers it).
OPTIMIZERS: dict[str, type["Optimizer"]] = {}
_ALIASES: dict[str, str] = {}


class NonFiniteGradient(FloatingPointError):
    """A gradient contains NaN or inf; raised before any parameter or state is touched."""


# --------------------------------------------------------------------------- input checks
def _entries(tree: Params, what: str) -> tuple[list[str], list[Any]]:
    """Split a list/tuple/dict of arrays into (labels, arrays)."""
    if isinstance(tree, Mapping):
        return [f"{what}[{k!r}]" for k in tree], list(tree.values())
    if isinstance(tree, Sequence) and not isinstance(tree, (str, bytes)):
        return [f"{what}[{i}]" for i in range(len(tree))], list(tree)
    raise invalid(what, Described(type(tree).__name__), "a list or dict of numpy arrays")


def _structure(params: Params, grads: Params) -> tuple[list[str], list[Array], list[str], list[Array]]:
    """Check that ``grads`` matches ``params`` entry by entry (a dict may list its keys in
    any order); return the labels and arrays of both, in the order of ``params``."""
    labels, ps = _entries(params, "params")
    if isinstance(params, Mapping) != isinstance(grads, Mapping):
        kind = "a dict" if isinstance(params, Mapping) else "a list"
        raise invalid("grads", Described(type(grads).__name__),
                      f"{kind} like params: params and grads must both be dicts or both be lists")
    if isinstance(params, Mapping):
        if set(params) != set(grads):
            missing = [k for k in params if k not in grads]
            extra = [k for k in grads if k not in params]
            raise invalid("grads keys", list(grads), f"the keys of params {list(params)}: missing {missing}, "
                                                     f"unexpected {extra}")
        grads = {k: grads[k] for k in params}
    glabels, gs = _entries(grads, "grads")
    if len(ps) != len(gs):
        raise invalid("grads", Described(f"{len(gs)} arrays"), f"{len(ps)}, one per parameter array")
    for label, glabel, p, g in zip(labels, glabels, ps, gs):
        if not isinstance(p, np.ndarray):
            raise invalid(label, p, "a numpy array of float32 or float64")
        if p.dtype not in FLOAT_DTYPES:
            raise invalid(f"{label} dtype", p.dtype, "float32 or float64; integer arrays cannot be updated in "
                                                     "place, and float16 rounds eps to 0 and overflows norms")
        if not p.flags.writeable:
            raise invalid(label, Described("read-only array"),
                          "a writeable array; the optimizer updates parameters in place")
        if not isinstance(g, np.ndarray):
            raise invalid(glabel, g, "a numpy array")
        if g.shape != p.shape:
            raise invalid(f"{glabel} shape", g.shape, f"{p.shape}, the shape of {label}")
        if g.dtype != p.dtype:
            raise invalid(f"{glabel} dtype", g.dtype, f"{p.dtype.name}, the dtype of {label}; cast the gradient "
                                                      "explicitly, the optimizer does not upcast")
    return labels, ps, glabels, gs


def model_axes(p: Array, lr: Any) -> tuple[int, ...]:
    """The axes of ``p`` that belong to one model: all of them for a scalar ``lr``; for
    models stacked on leading axes with ``lr`` of shape ``(M, 1, ..., 1)``, the trailing axes
    where ``lr`` has size 1 (what a per-model reduction such as an RMS runs over)."""
    shape = np.shape(lr)
    stack = len(shape)
    while stack and shape[stack - 1] == 1:
        stack -= 1
    return tuple(range(stack, p.ndim))


# --------------------------------------------------------------------------- the base class
class Optimizer:
    r"""Shared mechanics of all optimizers (see the module docstring for the subclass hooks).

    ``step(params, grads)`` does, in this order:

    1. check that ``grads`` matches ``params`` (structure, shape, dtype) and that the
       learning rate for this step is a finite number >= 0 -- ``ValueError`` otherwise;
    2. check that every gradient is finite -- :class:`NonFiniteGradient` otherwise (or,
       with ``nonfinite="skip"``, count the step in ``skipped_steps`` and return);
    3. ``t <- t + 1``, compute ``_coefficients(lr)`` and update each parameter array with
       ``_update_inplace`` (``_update``, the readable path, if ``inplace`` is False).

    Nothing is modified before steps 1 and 2 pass, so a rejected step leaves parameters
    and optimizer state exactly as they were.
    """

    name: ClassVar[str] = ""
    slots: ClassVar[tuple[str, ...]] = ()
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The stability limit as a formula in ``{x}`` (x = lr: the largest curvature the step
    #: tolerates); None when no limit is known. See :meth:`stability_limit`.
    limit_formula: ClassVar[str | None] = None
    #: True for the adaptive methods whose limit is on the preconditioned Hessian D^-1 H.
    preconditioned: ClassVar[bool] = False
    #: ``step`` runs the fast in-place path; set False on an instance for the readable one.
    inplace: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and cls.name:
            if cls.name in OPTIMIZERS:
                raise invalid("optimizer name", cls.name, f"a name not yet registered (by {OPTIMIZERS[cls.name]})")
            OPTIMIZERS[cls.name] = cls
            _ALIASES.update({alias: cls.name for alias in cls.__dict__.get("aliases", ())})

    def __init__(self, lr: LearningRate, *, nonfinite: str = "raise") -> None:
        self.nonfinite = check_choice("nonfinite", nonfinite, ("raise", "skip"))
        self.lr = lr if callable(lr) else check_nonneg("lr", lr)
        self.reset()

    # ----- hyperparameters
    def hyperparams(self) -> dict[str, Any]:
        """The constructor arguments (for ``repr`` and ``state_dict``)."""
        return {"lr": self.lr, **self._extra_hyperparams()}

    def _extra_hyperparams(self) -> dict[str, Any]:
        """The constructor's parameters other than ``lr`` and ``nonfinite``, read from the
        attributes of the same names (``self.beta1`` ...); override if they differ."""
        params = inspect.signature(type(self)).parameters.values()
        return {p.name: getattr(self, p.name) for p in params if p.name not in ("lr", "nonfinite")
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams().items())
        return f"{type(self).__name__}({args})"

    def current_lr(self) -> float:
        """Learning rate the next step uses: ``lr`` or ``lr(t)`` for a schedule."""
        if not callable(self.lr):
            return self.lr
        value = self.lr(self.t)
        try:
            return check_nonneg("lr", value)
        except ValueError:
            raise invalid(f"lr at t={self.t}", value, f"a finite number >= 0 from the schedule {self.lr!r}") from None

    # ----- state
    def reset(self) -> None:
        """Forget all state: as if freshly constructed."""
        self.t = 0
        self.skipped_steps = 0
        self.last_grad_norm = math.nan
        self._state: list[dict[str, Array]] | None = None
        self._labels: list[str] | None = None
        self._shapes: list[Shape] | None = None
        self._scratch: dict[tuple[np.dtype, int], Array] = {}
        self._scalars: dict[str, float] = self._initial_scalars()

    def _initial_scalars(self) -> dict[str, float]:
        """Scalar state carried across steps (e.g. Nadam's momentum product)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of everything needed to resume: counters, slots, hyperparameters
        (``lr`` too unless it is a schedule, which cannot be stored)."""
        hp = {k: v for k, v in self.hyperparams().items() if not callable(v)}
        return {
            "optimizer": self.name,
            "hyperparams": hp,
            "t": self.t,
            "skipped_steps": self.skipped_steps,
            "scalars": dict(self._scalars),
            "labels": None if self._labels is None else list(self._labels),
            "shapes": None if self._shapes is None else list(self._shapes),
            "state": None if self._state is None
            else [{k: v.copy() for k, v in s.items()} for s in self._state],
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`, checked completely before anything is replaced.

        The other hyperparameters must equal this optimizer's; a stored ``lr`` (a number) is
        restored, as ``torch.optim`` does, while a schedule given to this optimizer is kept
        when the state dict has none (schedules are not stored).
        """
        if not isinstance(d, Mapping) or d.get("optimizer") != self.name:
            raise invalid("state_dict optimizer", d.get("optimizer") if isinstance(d, Mapping) else d,
                          repr(self.name))
        mine, saved = self.hyperparams(), dict(d.get("hyperparams", {}))
        for k, v in saved.items():
            if k != "lr" and mine.get(k) != v:
                raise invalid(f"state_dict hyperparameter {k}", v, f"{mine.get(k)!r}, this optimizer's value")
        lr = check_nonneg("state_dict lr", saved["lr"]) if "lr" in saved else self.lr
        t = check_int("state_dict t", d.get("t"))
        skipped = check_int("state_dict skipped_steps", d.get("skipped_steps", 0))
        scalars = {**self._initial_scalars(), **dict(d.get("scalars", {}))}
        if set(scalars) != set(self._initial_scalars()):
            raise invalid("state_dict scalars", sorted(scalars), f"the names {sorted(self._initial_scalars())}")
        scalars = {k: check_number(f"state_dict scalar {k}", v) for k, v in scalars.items()}
        labels, shapes, state = d.get("labels"), d.get("shapes"), d.get("state")
        if (labels is None) != (state is None):
            what = "labels without state" if state is None else "state without labels"
            raise invalid("state_dict state", Described(what), "both or neither")
        if state is not None:
            shapes = self._check_state(labels, shapes, state)
        self.lr, self.t, self.skipped_steps = lr, t, skipped
        self._scalars = scalars
        self._labels = None if labels is None else list(labels)
        self._shapes = None if state is None else shapes
        self._state = None if state is None else [{k: v.copy() for k, v in s.items()} for s in state]

    def _check_state(self, labels: Any, shapes: Any, state: Any) -> list[Shape]:
        """The parameter shapes of a stored state, after checking that each entry holds
        exactly the arrays :meth:`state_shapes` gives for its parameter, in one float dtype."""
        if not isinstance(state, (list, tuple)):
            raise invalid("state_dict state", Described(type(state).__name__),
                          "a list of dicts of arrays, one per parameter array")
        if not isinstance(labels, (list, tuple)):
            raise invalid("state_dict labels", labels, "a list of the parameter labels state_dict records")
        if len(state) != len(labels):
            raise invalid("state_dict state", Described(f"{len(state)} entries"),
                          f"{len(labels)}, one per parameter array in labels {show(labels)}")
        if not isinstance(shapes, (list, tuple)) or len(shapes) != len(labels) or not all(
                isinstance(s, (list, tuple)) and all(isinstance(n, (int, np.integer)) for n in s) for s in shapes):
            raise invalid("state_dict shapes", shapes, f"the {len(labels)} parameter shapes state_dict records")
        shapes = [tuple(int(n) for n in s) for s in shapes]
        for i, (s, shape) in enumerate(zip(state, shapes)):
            expected = self.state_shapes(shape)
            if not isinstance(s, Mapping) or set(s) != set(expected) \
                    or not all(isinstance(a, np.ndarray) and a.shape == expected[k] for k, a in s.items()) \
                    or len({a.dtype for a in s.values()}) > 1 or any(a.dtype not in FLOAT_DTYPES for a in s.values()):
                shown = {k: getattr(a, "shape", a) for k, a in s.items()} if isinstance(s, Mapping) else s
                raise invalid(f"state_dict state[{i}]", shown, f"the float arrays {expected}, all of one dtype, "
                                                               f"kept for {labels[i]} of shape {shape}")
        return shapes

    # ----- the step
    def step(self, params: Params, grads: Params) -> None:
        """One update of ``params`` in place from ``grads`` (see the class docstring)."""
        labels, ps, glabels, gs = _structure(params, grads)
        self._check_matches_state(labels, ps)
        lr = self.current_lr()
        squares = [sum_of_squares(g) for g in gs]
        if not math.isfinite(sum(squares)):
            bad = [label for label, g, sq in zip(glabels, gs, squares)
                   if not math.isfinite(sq) and not np.isfinite(g).all()]
            if bad:  # (a huge but finite gradient can overflow g.g; then it is not "bad")
                if self.nonfinite == "skip":
                    self.skipped_steps += 1
                    self.last_grad_norm = math.sqrt(sum(squares))
                    return
                raise NonFiniteGradient(f"Invalid {', '.join(bad)}: NaN or inf values (expected finite "
                                        "gradients); nothing was updated")
        self.last_grad_norm = math.sqrt(sum(squares))
        if self._state is None:
            self._state = [self.zero_state(p) for p in ps]
            self._labels, self._shapes = labels, [p.shape for p in ps]
        self.t += 1
        c = self._coefficients(lr)
        for p, g, state in zip(ps, gs, self._state):
            if not p.size:
                continue                                 # an empty array: nothing to update
            if self.inplace:
                self._update_inplace(p, g, state, c, self._scratch_for(p))
            else:
                self._update(p, g, state, c)

    def arrays_with_state(self, params: Params) -> list[tuple[Array, dict[str, Array]]]:
        """Each array of ``params`` with its state (an empty dict before the first step),
        checked as ``step`` checks them; for methods that move the parameters between steps
        (Schedule-Free's ``eval``/``train``). Raises before anything is touched."""
        labels, ps, _, _ = _structure(params, params)
        self._check_matches_state(labels, ps)
        return list(zip(ps, self._state if self._state is not None else [{} for _ in ps]))

    @contextmanager
    def eval_point(self, params: Params) -> Iterator[None]:
        """``with opt.eval_point(params): evaluate(...)``: inside, ``params`` hold the point at
        which the trained model is to be judged. For almost every optimizer that is the iterate
        itself, so nothing moves (this default); Schedule-Free overrides it to move ``params``
        to its average x and back. :func:`nnopt.train.fit` evaluates through this hook."""
        yield

    def state_shapes(self, shape: Shape) -> dict[str, Shape]:
        """Names and shapes of the state arrays kept for a parameter of ``shape`` (a hook:
        one array of the parameter's shape per slot unless a subclass says otherwise)."""
        shape = tuple(int(n) for n in shape)
        return {name: shape for name in self.slots}

    def zero_state(self, p: Array, stack: int = 0) -> dict[str, Array]:
        """The initial (zero) state for the parameter ``p``, in its dtype; with ``stack``
        leading axes of stacked models, the state of one model's parameter stacked alike."""
        lead, shape = p.shape[:stack], p.shape[stack:]
        return {k: np.zeros(lead + s, p.dtype) for k, s in self.state_shapes(shape).items()}

    def _check_matches_state(self, labels: list[str], ps: list[Array]) -> None:
        if self._state is None:
            return
        if labels != self._labels:
            raise invalid("params", labels, f"the arrays of the first step, {self._labels}; call reset() to "
                                            "start over")
        for label, p, shape, s in zip(labels, ps, self._shapes, self._state):
            dtype = next(iter(s.values())).dtype if s else p.dtype
            if p.shape != shape or p.dtype != dtype:
                raise invalid(f"{label} shape and dtype", (p.shape, p.dtype.name), f"{(shape, dtype.name)} "
                              f"as in the optimizer state {show(list(s))}; call reset() first")

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

    def _update(self, p: Array, g: Array, state: dict[str, Array], c: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    def _update_inplace(self, p: Array, g: Array, state: dict[str, Array], c: dict[str, Any], tmp: Array) -> None:
        self._update(p, g, state, c)

    # ----- facts for the curvature analysis (nnopt.stability)
    def stability_limit(self) -> float:
        r"""The largest curvature the next step tolerates (``limit_formula`` at x = lr), e.g.
        ``2 / lr`` for SGD; for ``preconditioned`` optimizers a bound on
        :math:`\lambda_{max}(D^{-1}H)`. ValueError when no limit is known."""
        if self.limit_formula is None:
            known = [cls.__name__ for cls in OPTIMIZERS.values() if cls.limit_formula is not None]
            raise invalid("optimizer", self, f"one with a known stability limit: {', '.join(known)}")
        lr = self.current_lr()
        if not lr > 0:
            raise invalid("lr", lr, "a number > 0 for a stability limit")
        return self._stability_limit(lr)

    def _stability_limit(self, lr: float) -> float:
        raise NotImplementedError

    def preconditioner(self) -> np.ndarray:
        r"""The current denominator :math:`d` of a ``preconditioned`` optimizer as one flat
        float64 vector (order of the parameters it steps, e.g. :meth:`nnopt.models.MLP.get_flat`),
        so that its next step is :math:`-\epsilon\, m / d` (:math:`m` = gradient or momentum)."""
        if not self.preconditioned:
            known = [cls.__name__ for cls in OPTIMIZERS.values() if cls.preconditioned]
            raise invalid("optimizer", self, f"one that preconditions its steps: {', '.join(known)}")
        if self.t == 0 or self._state is None:
            raise invalid("optimizer", self, "one that has taken a step: its denominator is built from past "
                                             "gradients")
        return np.concatenate([self._denominator({k: v.astype(np.float64) for k, v in s.items()}).ravel()
                               for s in self._state])

    def _denominator(self, state: dict[str, Array]) -> Array:
        raise NotImplementedError


# --------------------------------------------------------------------------- by name
def make_optimizer(name: str, **hyperparams: Any) -> Optimizer:
    """Build an optimizer by its lower-case name, e.g. ``make_optimizer("rmsprop", lr=1e-4)``."""
    key = str(name).strip().lower()
    cls = OPTIMIZERS.get(_ALIASES.get(key, key))
    if cls is None:
        raise invalid("optimizer", name, f"one of {sorted(OPTIMIZERS)}")
    check_arguments(f"hyperparameters for {cls.name!r}", cls, hyperparams)
    return cls(**hyperparams)
