r"""The step-size limit :math:`2/\lambda_{max}` on a real network: the limits and sharpness tracking.

**Linear stability.** Near a minimum the loss is a quadratic :math:`\tfrac12 \delta^\top H
\delta`. Gradient descent :math:`w \leftarrow w - \epsilon g` multiplies the component of
:math:`\delta` along an eigenvector of :math:`H` (eigenvalue :math:`\lambda`) by :math:`1 -
\epsilon\lambda` per step, so it converges iff :math:`|1 - \epsilon\lambda| < 1` for every
eigenvalue, i.e. :math:`\epsilon < 2/\lambda_{max}`. Just above the limit the top component
flips sign and grows by :math:`|1 - \epsilon\lambda_{max}| > 1` per step: the zig-zag of the
2-D pictures, now in 5000 dimensions. The other methods have their own limits
(:func:`stability_limit`, derived from the characteristic polynomial of each update on
:math:`\tfrac12\lambda x^2`):

=======================  ===========================================  ==========================
optimizer                stable iff                                   curvature measured
=======================  ===========================================  ==========================
SGD (Alg. 1)             :math:`\lambda < 2/\epsilon`                 :math:`H`
momentum (Alg. 2)        :math:`\lambda < 2(1+\alpha)/\epsilon`       :math:`H`
Nesterov (Alg. 3)        :math:`\lambda < (2+2\alpha)/((1+2\alpha)    :math:`H`
                         \epsilon)`
AdaGrad, RMSProp         :math:`\lambda < 2/\epsilon`                 :math:`D^{-1}H`
Adam                     :math:`\lambda < (2+2\beta_1)/((1-\beta_1)   :math:`D^{-1}H`
                         \epsilon)` (38/lr for :math:`\beta_1 = 0.9`)
=======================  ===========================================  ==========================

For the adaptive methods :math:`D` is the current denominator (:func:`preconditioner`, e.g.
:math:`\sqrt{\hat r + \delta}` for Adam), treated as frozen; their limit is on the
*preconditioned* sharpness :math:`\lambda_{max}(D^{-1}H)` (Cohen et al. 2022, "Adaptive
gradient methods at the edge of stability"; Adam's value ignores the bias correction, i.e.
holds once :math:`\beta_1^t \approx 0`).

**Edge of stability** (Cohen et al. 2021). The Hessian changes during training. Under
full-batch gradient descent :math:`\lambda_{max}` typically *rises* ("progressive sharpening")
until it reaches :math:`2/\epsilon`, then hovers there while the loss keeps decreasing,
non-monotonically: the network trains itself to the edge of the stable region instead of
diverging. A :class:`SharpnessTracker` passed to :func:`nnopt.train.fit` records
:math:`\lambda_{max}` every ``every`` steps; :func:`train_tracked` runs that experiment.

Each optimizer states its own facts (:meth:`nnopt.Optimizer.stability_limit`, ``limit_formula``,
``preconditioned``, :meth:`~nnopt.Optimizer.preconditioner`); this module asks for them. The
figures are in :mod:`nnopt.plots` (:func:`~nnopt.plots.plot_tracked`), the explorer in
:mod:`nnopt.widgets.stability` (also reachable here as ``stability_explorer``, loaded on first use).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .curvature import HessianOperator, lanczos, preconditioned
from .data import DataLike, load_digits, spirals, training_set
from .models import MLP, SoftmaxRegression
from .optimizer_base import Optimizer, make_optimizer
from .plots import draw_loss, draw_sharpness, plot_tracked
from .second_order import ModelObjective, newton
from .train import History, StepInfo, fit
from .validation import check_int, check_number, invalid

__all__ = ["stability_limit", "is_preconditioned", "preconditioner", "SharpnessTracker", "TrackedRun",
           "train_tracked", "limit_label", "Problem", "get_problem", "limit_lr", "lr_sweep", "QUADRATIC_L2",
           "PROBLEM_NAMES", "SWEEP_RATIOS", "draw_loss", "draw_sharpness", "plot_tracked"]
#: Names that moved to nnopt.widgets.stability (the explorer), found here on first use so that
#: importing this module loads no widget code.
_EXPLORER_NAMES = ("stability_explorer", "plot_stability_experiment")


def stability_limit(optimizer: Optimizer) -> float:
    r"""The largest curvature the optimizer's next step tolerates (table in the module
    docstring), e.g. ``2 / lr`` for SGD: :meth:`nnopt.Optimizer.stability_limit`. For AdaGrad,
    RMSProp, Adam and AMSGrad it bounds the preconditioned sharpness :math:`\lambda_{max}(D^{-1}H)`."""
    return optimizer.stability_limit()


def is_preconditioned(optimizer: Optimizer) -> bool:
    """Whether the optimizer divides its step by a diagonal :math:`D` built from past
    gradients, so that its stability limit is on :math:`D^{-1}H` rather than :math:`H`."""
    return optimizer.preconditioned


def preconditioner(optimizer: Optimizer) -> np.ndarray:
    r"""The adaptive optimizer's current denominator :math:`d` as one flat vector (order of the
    parameters it steps, e.g. :meth:`nnopt.models.MLP.get_flat`), so that its next step is
    :math:`-\epsilon\, m / d` (:math:`m` = gradient or momentum)::

        AdaGrad   d = delta + sqrt(r)
        RMSProp   d = sqrt(r + delta)        (sqrt(r) + delta with eps_inside_sqrt=False)
        Adam      d = sqrt(r_hat + delta),   r_hat = r / (1 - beta2^t)   (AMSGrad: max of r)

    :meth:`nnopt.Optimizer.preconditioner`; each class computes its own ``_denominator``.
    """
    return optimizer.preconditioner()


class SharpnessTracker:
    r"""A callback for :func:`nnopt.train.fit` that measures :math:`\lambda_{max}` of the
    Hessian of the loss on the fixed data ``(X, y)`` (use the full training set) every
    ``every`` steps, together with the optimizer's :func:`stability_limit` at that moment.

    For optimizers with a diagonal preconditioner (RMSProp, Adam, ...) it measures the
    preconditioned sharpness :math:`\lambda_{max}(D^{-1}H)`, the quantity their limit
    applies to. Each measurement is a Lanczos run (:func:`nnopt.curvature.lanczos`) warm-started
    from the previous top eigenvector, typically 5-20 Hessian-vector products.

    Records go to ``steps`` (number of optimizer steps done), ``sharpness`` and ``limits``
    (lists), and, for measurements made inside ``fit``, also into ``history.extra`` under the
    same names. Call :meth:`record` before training to include the initial point. A
    measurement that overflows (diverged parameters) is recorded as ``nan``, and so is the
    limit of an optimizer without a known one (AdaDelta, Adamax, ...: then the plain Hessian is
    measured).
    """

    def __init__(self, X, y, every: int = 10, tol: float = 1e-4, max_iter: int = 100):
        self.X, self.y = X, y
        self.every = check_int("every", every, 1)
        self.tol = check_number("tol", tol, 0.0, 1.0, low_open=True, high_open=True)
        self.max_iter = check_int("max_iter", max_iter, 1)
        self.steps: list[int] = []
        self.sharpness: list[float] = []
        self.limits: list[float] = []
        self._vector: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"SharpnessTracker(every={self.every}, {len(self.steps)} records)"

    def measure(self, model: MLP, optimizer: Optimizer | None = None) -> float:
        r""":math:`\lambda_{max}` now (preconditioned if the optimizer preconditions)."""
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                H = HessianOperator(model, self.X, self.y)
                if optimizer is not None and optimizer.preconditioned:
                    H = preconditioned(H, optimizer.preconditioner())
                v0 = self._vector if self._vector is not None and self._vector.shape == (H.shape[0],) else None
                eig = lanczos(H, k=1, tol=self.tol, max_iter=self.max_iter, v0=v0)
            except FloatingPointError:
                return math.nan
        self._vector = eig.vector
        return eig.value

    def record(self, model: MLP, optimizer: Optimizer | None = None, step: int = 0) -> float:
        """Measure and append a record for ``step``; returns the sharpness."""
        value = self.measure(model, optimizer)
        self.steps.append(int(step))
        self.sharpness.append(value)
        known = optimizer is not None and optimizer.limit_formula is not None
        self.limits.append(optimizer.stability_limit() if known else math.nan)
        return value

    def __call__(self, info: StepInfo) -> None:
        done = info.optimizer.t                          # steps taken, across fit calls
        if done % self.every:
            return
        self.record(info.model, info.optimizer, done)
        for name in ("steps", "sharpness", "limits"):
            info.history.extra.setdefault(name, []).append(getattr(self, name)[-1])


@dataclass
class TrackedRun:
    r"""One training run with its sharpness trace: the :class:`~nnopt.train.History`, and the
    arrays ``steps``, ``sharpness``, ``limits`` of the tracker (index 0 = the initial point,
    except for adaptive methods, whose preconditioner exists only after a step);
    ``preconditioned`` tells whether ``sharpness`` is :math:`\lambda_{max}(D^{-1}H)`."""

    label: str
    history: History
    steps: np.ndarray
    sharpness: np.ndarray
    limits: np.ndarray
    preconditioned: bool = False
    limit_label: str = "limit"

    @property
    def diverged(self) -> bool:
        return self.history.diverged

    @property
    def message(self) -> str:
        return self.history.message


def train_tracked(model: MLP, data: DataLike, optimizer: Optimizer | str, steps: int, every: int = 10,
                  label: str | None = None, tol: float = 1e-4, **hyperparams) -> TrackedRun:
    r"""Full-batch training of a *copy* of ``model`` (``model`` itself is left untouched, so
    several runs can start from the same point) for ``steps`` steps, measuring the (possibly
    preconditioned) sharpness at the start and every ``every`` steps.

    ``data`` is ``(X, y)`` (or anything :func:`~nnopt.train.fit` accepts with a training set);
    the Hessian is that of the loss on the training set, the batch gradient descent follows.
    ``optimizer`` is an optimizer or a name for :func:`~nnopt.optimizers.make_optimizer` with
    ``hyperparams`` (e.g. ``"momentum", lr=0.1, momentum=0.9``).
    """
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer, **hyperparams)
    elif hyperparams:
        raise invalid("hyperparameters", hyperparams, "none with an optimizer instance; give them with an "
                                                      "optimizer name")
    optimizer.stability_limit()                      # fail early for unsupported optimizers
    X, y = training_set(data)
    run_model = model.copy()
    tracker = SharpnessTracker(X, y, every=every, tol=tol)
    if not optimizer.preconditioned:
        tracker.record(run_model, optimizer, step=optimizer.t)
    history = fit(run_model, optimizer, (X, y), epochs=check_int("steps", steps), batch_size=None,
                  shuffle=False, progress=False, callbacks=[tracker])
    label = label if label is not None else repr(optimizer)
    return TrackedRun(label, history, np.array(tracker.steps), np.array(tracker.sharpness),
                      np.array(tracker.limits), optimizer.preconditioned, limit_label(type(optimizer)))


def limit_label(optimizer: type[Optimizer], x: str = "lr") -> str:
    """The optimizer's limit as a formula in ``x`` (its ``limit_formula``): the curvature limit
    with x = lr, the largest stable lr for a given sharpness with x = lambda_max."""
    return (optimizer.limit_formula or "limit").format(x=x)


# ------------------------------------------------------------------- the explorer's problems
#: Weight decay of the quadratic-like problem: its curvature l2 is over 10x the largest
#: cross-entropy curvature on standardized digits (~0.75), so the loss is nearly quadratic.
QUADRATIC_L2 = 10.0
PROBLEM_NAMES = ("quadratic-like", "mlp")
#: The explorer's learning-rate sweep, in units of the limit at the starting point.
SWEEP_RATIOS = (0.1, 0.2, 0.4, 0.7, 0.9, 1.1, 1.5, 2.5, 4.0, 8.0)


@dataclass(frozen=True)
class Problem:
    r"""A model at its starting point, full-batch training data, the number of steps to run,
    :math:`\lambda_{max}` at the start (``sharpness0``) and the minimal loss ``floor`` when it is
    known (convex problems; curves then show the excess loss :math:`L - L^*`), else 0.

    Problems are cached and shared: train copies of ``model`` (as :func:`train_tracked` does)."""

    name: str
    description: str
    model: MLP
    X: np.ndarray
    y: np.ndarray
    steps: int
    sharpness0: float
    floor: float


@lru_cache(maxsize=None)
def get_problem(name: str) -> Problem:
    r"""One of the explorer's problems, built once:

    * ``"quadratic-like"``: softmax regression on digits with weight decay ``QUADRATIC_L2``,
      started at 0. The penalty dominates the curvature, so gradient descent behaves as on a
      quadratic: it converges below :math:`2/\lambda_{max}` and diverges above.
      ``floor`` is its minimum, found by Newton's method.
    * ``"mlp"``: a tanh MLP 2-32-32-2 on the spirals. Its curvature changes as it trains:
      above the limit it does not diverge but moves to flatter regions (edge of stability).
    """
    if name == "quadratic-like":
        data = load_digits(dtype=np.float64)
        model = SoftmaxRegression(data.n_features, data.n_classes, l2=QUADRATIC_L2)
        X, y = data.X_train, data.y_train
        best = newton(ModelObjective(model.copy(), X, y), model.get_flat(), steps=30, damping=1e-10)
        description, steps, floor = f"softmax regression, l2 = {QUADRATIC_L2:g}", 100, best.values[-1]
    elif name == "mlp":
        data = spirals(n=600, noise=0.2, seed=0, dtype=np.float64)
        model = MLP(data.n_features, (32, 32), data.n_classes, activation="tanh", dtype=np.float64, seed=0)
        X, y = data.X_train, data.y_train
        description, steps, floor = "tanh MLP on the spirals", 200, 0.0
    else:
        raise invalid("problem", name, f"one of {list(PROBLEM_NAMES)}")
    sharpness0 = lanczos(HessianOperator(model, X, y), k=1, tol=1e-8).value
    return Problem(name, description, model, X, y, steps, sharpness0, floor)


def limit_lr(problem: str, optimizer: str) -> float:
    r"""The learning rate at which the problem's starting point sits exactly at the optimizer's
    limit, e.g. :math:`2/\lambda_{max}` for SGD and :math:`2(1+\alpha)/\lambda_{max}` for momentum."""
    return make_optimizer(optimizer, lr=1.0).stability_limit() / get_problem(problem).sharpness0


@lru_cache(maxsize=16)
def lr_sweep(problem: str, optimizer: str) -> tuple[np.ndarray, np.ndarray]:
    """The learning rates ``SWEEP_RATIOS`` times :func:`limit_lr` and the full-batch loss after
    the problem's ``steps`` steps with each (nan where the run diverged); cached."""
    p = get_problem(problem)
    lrs = np.array(SWEEP_RATIOS) * limit_lr(problem, optimizer)
    finals = []
    for lr in lrs:
        h = fit(p.model.copy(), make_optimizer(optimizer, lr=float(lr)), (p.X, p.y), epochs=p.steps,
                batch_size=None, shuffle=False, progress=False)
        finals.append(math.nan if h.diverged else h.train_loss[-1])
    return lrs, np.array(finals)


def __getattr__(name: str) -> Any:
    if name in _EXPLORER_NAMES:
        from .widgets import stability as explorer
        return getattr(explorer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
