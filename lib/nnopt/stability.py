r"""The step-size limit :math:`2/\lambda_{max}` on a real network: limits, tracking, experiments.

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
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import ipywidgets as W
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from . import plots
from .curvature import HessianOperator, lanczos, preconditioned
from .data import Dataset, Split, check_int, load_digits, spirals
from .models import MLP, SoftmaxRegression
from .optimizer_base import OPTIMIZERS, Optimizer, make_optimizer
from .second_order import ModelObjective, newton
from .train import History, StepInfo, fit
from .widgets import _STYLE, _WIDE, Explorer, View, _defaults, _explorer_figure, _static

__all__ = ["stability_limit", "is_preconditioned", "preconditioner", "SharpnessTracker", "TrackedRun",
           "train_tracked", "draw_loss", "draw_sharpness", "plot_tracked", "Problem", "get_problem", "limit_lr",
           "plot_stability_experiment", "stability_explorer"]

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
        self.every = check_int("every", every, minimum=1)
        if not (isinstance(tol, (int, float)) and 0 < tol < 1):
            raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
        self.tol, self.max_iter = tol, check_int("max_iter", max_iter, minimum=1)
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


def _training_set(data) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of the training part of a Dataset, a Split or an ``(X, y, ...)`` tuple."""
    if isinstance(data, Dataset):
        return data.X_train, data.y_train
    if isinstance(data, Split):
        return data.X, data.y
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        return data[0], data[1]
    raise ValueError(f"data must be a Dataset, a Split, (X, y) or (X_train, y_train, X_val, y_val), "
                     f"got {type(data).__name__}")


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


def train_tracked(model: MLP, data, optimizer: Optimizer | str, steps: int, every: int = 10,
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
        raise ValueError("hyperparameters can only be given together with an optimizer name")
    stability_limit(optimizer)                       # fail early for unsupported optimizers
    X, y = _training_set(data)
    run_model = model.copy()
    tracker = SharpnessTracker(X, y, every=every, tol=tol)
    if not is_preconditioned(optimizer):
        tracker.record(run_model, optimizer, step=optimizer.t)
    history = fit(run_model, optimizer, (X, y), epochs=check_int("steps", steps), batch_size=None,
                  shuffle=False, progress=False, callbacks=[tracker])
    label = label if label is not None else repr(optimizer)
    return TrackedRun(label, history, np.array(tracker.steps), np.array(tracker.sharpness),
                      np.array(tracker.limits), optimizer.preconditioned, _limit_label(type(optimizer)))


# ------------------------------------------------------------------- figures
def _limit_label(optimizer: type[Optimizer], x: str = "lr") -> str:
    """The optimizer's limit as a formula in ``x``: the curvature limit with x = lr, the largest
    stable lr for a given sharpness with x = lambda_max."""
    return (optimizer.limit_formula or "limit").format(x=x)


def draw_loss(ax: Axes, runs: Sequence[TrackedRun], title: str = "full-batch training loss",
              floor: float = 0.0) -> None:
    """Loss per step (log axis) of each run, minus ``floor`` (the minimum, if known); a red
    cross where a run diverged."""
    for i, run in enumerate(runs):
        loss = np.asarray(run.history.step_loss, dtype=float) - floor
        ax.plot(np.arange(len(loss)), loss, color=f"C{i}", lw=1.2, label=run.label)
        if run.diverged and len(loss):
            ax.plot(len(loss) - 1, loss[-1], marker="x", ms=10, mew=2, color=plots.DIVERGED_COLOR)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(("training loss - $L^*$" if floor else "training loss") + " (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def draw_sharpness(ax: Axes, runs: Sequence[TrackedRun], title: str = r"sharpness $\lambda_{max}$ vs its limit",
                   ylabel: str = r"$\lambda_{max}$") -> None:
    """Each run's sharpness trace (solid, dots) and its optimizer's stability limit (dashed)."""
    for i, run in enumerate(runs):
        ax.plot(run.steps, run.sharpness, marker=".", color=f"C{i}", lw=1.5, label=run.label)
        ax.plot(run.steps, run.limits, ls="--", color=f"C{i}", lw=1.2, label=f"limit {run.limit_label} = "
                f"{run.limits[-1]:.3g}" if len(run.limits) else "limit")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_tracked(runs: TrackedRun | Sequence[TrackedRun], title: str | None = None) -> Figure:
    """Two panels for runs of :func:`train_tracked`: the loss per step, and the sharpness with
    each run's stability limit -- the edge-of-stability picture when the two meet."""
    runs = [runs] if isinstance(runs, TrackedRun) else list(runs)
    if not runs:
        raise ValueError("need at least one TrackedRun")
    fig = plots.new_figure((11.0, 4.2))
    ax_loss, ax_sharp = fig.subplots(1, 2)
    draw_loss(ax_loss, runs)
    pre = any(run.preconditioned for run in runs)
    ylabel = r"$\lambda_{max}(D^{-1}H)$ (preconditioned)" if pre else r"$\lambda_{max}(H)$"
    draw_sharpness(ax_sharp, runs, ylabel=ylabel)
    if title:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------------- the explorer
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
        raise ValueError(f"problem must be one of {PROBLEM_NAMES}, got {name!r}")
    sharpness0 = lanczos(HessianOperator(model, X, y), k=1, tol=1e-8).value
    return Problem(name, description, model, X, y, steps, sharpness0, floor)


def limit_lr(problem: str, optimizer: str) -> float:
    r"""The learning rate at which the problem's starting point sits exactly at the optimizer's
    limit, e.g. :math:`2/\lambda_{max}` for SGD and :math:`2(1+\alpha)/\lambda_{max}` for momentum."""
    return stability_limit(make_optimizer(optimizer, lr=1.0)) / get_problem(problem).sharpness0


@lru_cache(maxsize=16)
def _sweep(problem: str, optimizer: str) -> tuple[np.ndarray, np.ndarray]:
    """Final full-batch loss (nan if diverged) after ``steps`` steps for each lr of the sweep."""
    p = get_problem(problem)
    lrs = np.array(SWEEP_RATIOS) * limit_lr(problem, optimizer)
    finals = []
    for lr in lrs:
        h = fit(p.model.copy(), make_optimizer(optimizer, lr=float(lr)), (p.X, p.y), epochs=p.steps,
                batch_size=None, shuffle=False, progress=False)
        finals.append(math.nan if h.diverged else h.train_loss[-1])
    return lrs, np.array(finals)


class _StabilityView(View):
    """Left: final loss vs lr with the limit line; middle: loss curve; right: sharpness vs limit."""

    figsize = (14.0, 4.4)

    def __init__(self, figure: Figure):
        super().__init__(figure)
        self.ax_sweep, self.ax_loss, self.ax_sharp = figure.subplots(1, 3)
        self.run: TrackedRun | None = None

    def _show(self, problem, optimizer, lr_ratio):
        if optimizer not in EXPLORER_OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {EXPLORER_OPTIMIZERS}, got {optimizer!r}")
        if not (isinstance(lr_ratio, (int, float)) and 0 < lr_ratio < math.inf):
            raise ValueError(f"lr_ratio must be a positive number, got {lr_ratio!r}")
        p = get_problem(problem)
        lr_star = limit_lr(problem, optimizer)
        lr = lr_ratio * lr_star
        self.run = run = train_tracked(p.model, (p.X, p.y), optimizer, p.steps, every=max(p.steps // 30, 1),
                                       lr=lr, label=f"lr = {lr:.3g}")
        outcome = run.message.split(":")[0] if run.diverged else "no divergence"
        for ax in (self.ax_sweep, self.ax_loss, self.ax_sharp):
            ax.clear()
        lrs, finals = _sweep(problem, optimizer)
        excess = "loss - $L^*$" if p.floor else "loss"
        # the excess loss can round to 0 or below when converged: keep it on the log axis
        plots.plot_lr_sweep(lrs, np.maximum(finals - p.floor, 1e-15), ax=self.ax_sweep,
                            ylabel=f"{excess} after {p.steps} steps",
                            title=f"{problem}: {plots.display_name(optimizer)}, lr sweep")
        self.limit_line = self.ax_sweep.axvline(lr_star, color="black", ls="--",
                                                label=f"limit: lr = {_limit_label(OPTIMIZERS[optimizer], LAMBDA0)} = {lr_star:.3g}")
        self.ax_sweep.axvline(lr, color=plots.DIVERGED_COLOR if run.diverged else "C2", lw=2,
                              label=f"this run: lr = {lr:.3g}")
        self.ax_sweep.legend(fontsize=7)
        draw_loss(self.ax_loss, [run], title=f"lr = {lr_ratio:.3g} x limit: {outcome}", floor=p.floor)
        self.ax_loss.title.set_color(plots.DIVERGED_COLOR if run.diverged else "black")
        draw_sharpness(self.ax_sharp, [run], title=r"sharpness $\lambda_{max}$ vs the limit")


#: the optimizers offered by the explorer (their limits are on the plain Hessian)
EXPLORER_OPTIMIZERS = ("sgd", "momentum", "nesterov")


LAMBDA0 = r"$\lambda_{max}(w_0)$"


def plot_stability_experiment(problem: str = "quadratic-like", optimizer: str = "sgd", lr_ratio: float = 1.1) -> Figure:
    r"""Full-batch training of a :func:`get_problem` with ``lr = lr_ratio`` times the limit at the
    start (:func:`limit_lr`, e.g. :math:`2/\lambda_{max}` for SGD). Left: the loss after the run
    for a sweep of learning rates, the limit as a dashed line; middle: this run's loss
    ("diverged at step k" in red when it does); right: its sharpness against the limit."""
    return _static(_StabilityView, dict(problem=problem, optimizer=optimizer, lr_ratio=lr_ratio))


def stability_explorer(**initial) -> Explorer:
    r""":func:`plot_stability_experiment` with a problem menu, optimizer buttons and an lr slider
    in units of the limit (1.0 = exactly :math:`2/\lambda_{max}` for SGD)."""
    d = {**_defaults(plot_stability_experiment), **initial}
    controls = {
        "problem": W.Dropdown(options=list(PROBLEM_NAMES), value=d["problem"], description="problem", style=_STYLE),
        "optimizer": W.ToggleButtons(options=list(EXPLORER_OPTIMIZERS), value=d["optimizer"],
                                     description="optimizer", style=_STYLE),
        "lr_ratio": W.FloatSlider(value=d["lr_ratio"], min=0.05, max=10.0, step=0.05, style=_STYLE, layout=_WIDE,
                                  description="lr / limit", readout_format=".2f", continuous_update=False),
    }
    explorer = Explorer(_StabilityView(_explorer_figure(_StabilityView.figsize)), controls)
    explorer.update()
    return explorer
