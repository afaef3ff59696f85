"""nnopt.plots: every figure's data is what was passed in, divergence is shown, bad input is refused."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import nnopt  # noqa: E402
from nnopt import plots, schedules, surfaces  # noqa: E402
from nnopt.train import History  # noqa: E402


def _texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts if t.get_visible())


def _legend_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _history(train_loss, val_acc=None, steps_per_epoch=10, diverged_at=None, name="SGD(lr=0.1, x=1)"):
    """A History as fit() would fill it (epoch 0 = the untrained model)."""
    n = len(train_loss)
    h = History(optimizer=name)
    h.train_loss = list(train_loss)
    h.val_loss = [v * 1.1 for v in train_loss]
    h.train_acc = list(np.linspace(0.1, 0.9, n))
    h.val_acc = list(val_acc if val_acc is not None else np.linspace(0.1, 0.8, n))
    h.epoch_steps = [steps_per_epoch * e for e in range(n)]
    h.step_loss = list(np.linspace(3, 1, steps_per_epoch * (n - 1)))
    if diverged_at is not None:
        h.diverged, h.diverged_at = True, diverged_at
        h.message = f"diverged at step {diverged_at}: the minibatch loss became inf"
    return h


# ----------------------------------------------------------------------------- helpers
def test_log_levels_are_geometric_above_the_minimum():
    values = np.array([[2.0, 3.0], [10.0, np.nan]])
    levels = plots.log_levels(values, n=5, span=1e-4)
    assert levels[0] == pytest.approx(2.0 + 8.0 * 1e-4)
    assert levels[-1] == pytest.approx(10.0)
    ratios = np.diff(levels - 2.0)[1:] / np.diff(levels - 2.0)[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    assert len(plots.log_levels(np.ones(4), n=3)) == 3           # flat surface still gets levels
    with pytest.raises(ValueError, match="no finite values"):
        plots.log_levels(np.full(3, np.nan))


def test_optimizer_colors_are_fixed_by_name():
    assert plots.optimizer_color("adam") == plots.optimizer_color("Adam") == plots.optimizer_color("ADAM")
    assert plots.optimizer_color("sgd") != plots.optimizer_color("adam")
    colors = [plots.optimizer_color(name) for name in nnopt.OPTIMIZERS]      # incl. Lion, Muon, ...
    assert len(set(colors)) == len(colors) and plots.DIVERGED_COLOR not in colors
    assert plots.optimizer_color("ScheduleFreeAdamW") == plots.optimizer_color("schedulefree_adamw")
    assert plots.display_name("rmsprop_nesterov") == "RMSPropNesterov"
    assert plots.display_name("my label") == "my label"


def test_figures_are_detached_from_pyplot():
    before = plt.get_fignums()
    fig = plots.plot_schedules(schedules.constant(0.1), steps=10)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before


# ----------------------------------------------------------------------------- trajectories
def _paths(surface, lrs=(("sgd", 1e-3), ("adam", 0.05)), steps=50):
    return [surfaces.run(surface, nnopt.make_optimizer(n, lr=lr), steps=steps) for n, lr in lrs]


def test_trajectory_lines_hold_the_paths_and_limits_are_the_domain():
    surface = surfaces.Rosenbrock()
    paths = _paths(surface)
    fig = plots.plot_trajectories(surface, paths)
    ax = fig.axes[0]
    view_lines = {line.get_label(): line for line in ax.get_lines()}
    for label, path in zip(("SGD", "Adam"), paths):
        np.testing.assert_array_equal(view_lines[label].get_xydata(), path.xy)
    assert ax.get_xlim() == surface.domain[0] and ax.get_ylim() == surface.domain[1]
    labels = _legend_labels(ax)
    assert labels[:2] == ["SGD", "Adam"] and {"minimum", "start", "end"} <= set(labels)
    assert ax.get_title() and ax.get_xlabel() == "$x$" and ax.get_ylabel() == "$y$"
    assert "diverged" not in _texts(fig)


def test_start_and_end_markers_and_divergence_note():
    surface = surfaces.Rosenbrock()
    path = surfaces.run(surface, nnopt.SGD(lr=10.0), steps=100)
    assert path.diverged_at is not None
    view = plots.TrajectoryPlot(plots.new_figure().add_subplot(), surface)
    view.set_paths([path])
    line_start_end = [a.get_xydata() for a in view._traces["SGD"].artists()]
    np.testing.assert_array_equal(line_start_end[1], path.xy[:1])
    np.testing.assert_array_equal(line_start_end[2], path.xy[-1:])
    assert view.note.get_visible() and view.note.get_text() == f"diverged at step {path.diverged_at}"
    # several paths: the note names the diverged one
    view.set_paths([path, surfaces.run(surface, nnopt.Adam(lr=0.01), steps=20)])
    assert view.note.get_text() == f"SGD: diverged at step {path.diverged_at}"
    view.set_paths(_paths(surface, steps=5))
    assert not view.note.get_visible()


def test_set_paths_reuses_artists_and_never_redraws_the_contour():
    surface = surfaces.Quadratic(condition=20)
    fig = plots.new_figure()
    ax, vax = fig.subplots(1, 2)
    view = plots.TrajectoryPlot(ax, surface, value_ax=vax)
    n_collections = len(ax.collections)
    view.set_paths(_paths(surface, (("sgd", 0.01), ("adam", 0.1))))
    first = dict(view.lines)
    key = view.background_key()
    view.set_paths(_paths(surface, (("sgd", 0.05), ("adam", 0.2))))
    assert view.lines == first                        # same Line2D objects, new data
    assert view.background_key() == key               # nothing static changed: blitting is safe
    assert len(ax.collections) == n_collections
    view.set_paths(_paths(surface, (("adam", 0.2),)))
    assert list(view.lines) == ["Adam"]
    assert first["SGD"] not in ax.get_lines()          # removed label: artists removed
    assert view.background_key() != key
    with pytest.raises(ValueError, match="one distinct label per path"):
        view.set_paths(_paths(surface), labels=["same", "same"])


def test_set_surface_replaces_the_contour_and_keeps_the_axes():
    fig = plots.new_figure()
    ax, vax = fig.subplots(1, 2)
    view = plots.TrajectoryPlot(ax, "rosenbrock", value_ax=vax)
    view.set_paths(_paths(surfaces.Rosenbrock(), (("sgd", 1e-3),)))
    n_collections, line, key = len(ax.collections), view.lines["SGD"], view.background_key()
    saddle = surfaces.Saddle()
    view.set_surface(saddle)
    assert view.surface is saddle and len(ax.collections) == n_collections       # replaced, not added
    assert ax.get_xlim() == saddle.domain[0] and ax.get_ylim() == saddle.domain[1]
    assert view.lines["SGD"] is line and view.background_key() != key
    assert "saddle point" in [t.get_text() for t in ax.get_legend().get_texts()]
    view.set_surface("rosenbrock")
    assert "saddle point" not in [t.get_text() for t in ax.get_legend().get_texts()]
    view.set_surface(saddle)
    fresh = plots.TrajectoryPlot(plots.new_figure().add_subplot(), saddle, value_ax=plots.new_figure().add_subplot())
    assert vax.get_ylim() == fresh.value_ax.get_ylim() and ax.get_title() == fresh.ax.get_title()
    levels = [c.levels for c in ax.collections]
    np.testing.assert_array_equal(levels[0], [c.levels for c in fresh.ax.collections][0])


@pytest.mark.parametrize("value", ["gap", "grad_norm"])
def test_value_panel(value):
    surface = surfaces.Cliff()
    paths = _paths(surface, (("sgd", 0.1),), steps=30)
    fig = plots.plot_trajectories(surface, paths, value=value)
    ax, vax = fig.axes
    (curve,) = [line for line in vax.get_lines() if line.get_label() == "SGD"]
    expected = paths[0].values - min(surface.value(m) for m in surface.minima) if value == "gap" \
        else paths[0].grad_norms
    np.testing.assert_allclose(curve.get_ydata(), np.maximum(expected, 1e-300))
    assert vax.get_yscale() == "log" and vax.get_xlim() == (0, 30)
    assert "log scale" in vax.get_ylabel()
    with pytest.raises(ValueError, match="Invalid value: 'loss'"):
        plots.TrajectoryPlot(plots.new_figure().add_subplot(), surface, value="loss")


def test_zero_step_path_is_a_single_point():
    surface = surfaces.get("beale")
    fig = plots.plot_trajectories("beale", surfaces.run(surface, nnopt.SGD(lr=0.1), steps=0), value="gap")
    (line,) = [line for line in fig.axes[0].get_lines() if line.get_label() == "SGD"]
    np.testing.assert_array_equal(line.get_xydata(), [surface.start])
    assert fig.axes[1].get_xlim() == (0, 1)


# ----------------------------------------------------------------------------- training curves
def test_history_curves_hold_the_history():
    h1, h2 = _history([2.0, 1.0, 0.5]), _history([2.0, 0.8, 0.3], name="Adam(lr=0.001, beta1=0.9)")
    fig = plots.plot_history([h1, h2])
    loss_ax, acc_ax = fig.axes
    assert _legend_labels(loss_ax) == ["SGD(lr=0.1)", "Adam(lr=0.001)", "training", "validation"]
    ys = [list(line.get_ydata()) for line in loss_ax.get_lines()]
    assert h1.train_loss in ys and h1.val_loss in ys and h2.train_loss in ys
    assert loss_ax.get_yscale() == "log" and acc_ax.get_yscale() == "linear"
    assert loss_ax.get_xlabel() == "epoch"
    assert "diverged" not in _texts(fig)


def test_history_by_step_and_divergence():
    h = _history([2.0, 1.0], diverged_at=12)
    fig = plots.plot_history({"lr 10": h}, metrics=("train_loss",), x="step")
    (ax,) = fig.axes
    xs = [tuple(line.get_xdata()) for line in ax.get_lines()]
    assert tuple(float(s) for s in h.epoch_steps) in xs
    assert tuple(range(1, h.n_steps + 1)) in xs                  # the faint minibatch loss
    assert "lr 10: diverged at step 12" in _texts(fig)
    assert ax.get_xlabel() == "optimizer step"


def test_history_bad_arguments():
    with pytest.raises(ValueError, match="metrics"):
        plots.plot_history(_history([1.0]), metrics=("perplexity",))
    with pytest.raises(ValueError, match="Invalid x: 'time'"):
        plots.plot_history(_history([1.0]), x="time")
    with pytest.raises(ValueError, match="one axes per metric"):
        plots.plot_history(_history([1.0]), axes=[plots.new_figure().add_subplot()])


# ----------------------------------------------------------------------------- learning rates
def test_lr_sweep_marks_divergence_and_the_best_lr():
    lrs = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    fig = plots.plot_lr_sweep(lrs, {"sgd": [1.0, 0.5, 0.1, np.nan, np.inf],
                                    "adam": [0.2, 0.05, 3.0, 4.0, 5.0]},
                              diverged={"adam": [False, False, False, False, True]})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "learning rate" in ax.get_xlabel()
    labels = _legend_labels(ax)
    assert "SGD (best lr 0.1)" in labels and "Adam (best lr 0.01)" in labels and "diverged" in labels
    crosses = [line for line in ax.get_lines() if line.get_marker() == "x" and len(line.get_xdata())]
    assert sorted(x for line in crosses for x in line.get_xdata()) == [1.0, 10.0, 10.0]
    ok = [line for line in ax.get_lines() if line.get_label().startswith("SGD")][0]
    np.testing.assert_array_equal(ok.get_xdata(), lrs[:3])


def test_lr_sweep_single_curve_and_bad_input():
    fig = plots.plot_lr_sweep([0.1, 1.0], [0.3, 0.2])
    assert _legend_labels(fig.axes[0]) == ["final loss (best lr 1)"]
    with pytest.raises(ValueError, match="2 learning rates"):
        plots.plot_lr_sweep([0.1, 1.0], [0.3])
    with pytest.raises(ValueError, match="positive numbers"):
        plots.plot_lr_sweep([0.0, 1.0], [0.3, 0.2])


def test_schedules_curves():
    cos = schedules.cosine(0.1, total_steps=50)
    fig = plots.plot_schedules({"cosine": cos, "constant": 0.05}, steps=60)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["cosine"].get_ydata(), cos.values(60))
    np.testing.assert_allclose(lines["constant"].get_ydata(), 0.05)
    assert "learning rate" in ax.get_ylabel() and ax.get_xlabel() == "step $t$"
    fig = plots.plot_schedules([schedules.exponential(1.0, 0.1)], steps=30, log=True)
    assert fig.axes[0].get_yscale() == "log"
    assert _legend_labels(fig.axes[0]) == ["exponential(lr0=1, k=0.1)"]
    with pytest.raises(ValueError, match="steps"):
        plots.plot_schedules(cos, steps=0)


# ----------------------------------------------------------------------------- gradients, curvature
def test_grad_norms_threshold_and_nonfinite():
    fig = plots.plot_grad_norms({"a": [1.0, 10.0, 100.0], "b": [2.0, np.inf, 1.0]}, clip=5.0)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["a"].get_ydata(), [1.0, 10.0, 100.0])
    np.testing.assert_array_equal(lines["b"].get_ydata(), [2.0])         # stops before inf
    assert list(lines["clip threshold 5"].get_ydata()) == [5.0, 5.0]
    assert "b: non-finite gradient at step 1" in _texts(fig)
    assert ax.get_yscale() == "log"
    h = _history([1.0, 0.5])
    h.step_grad_norm = [3.0, 2.0, 1.0]
    fig = plots.plot_grad_norms([h, surfaces.run(surfaces.Saddle(), nnopt.SGD(lr=0.1), steps=3)])
    assert [list(line.get_ydata()) for line in fig.axes[0].get_lines()][0] == [3.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="1-D"):
        plots.plot_grad_norms(np.ones((2, 2)))


def test_condition_number_and_spectrum():
    assert plots.condition_number(surfaces.Quadratic(condition=100).H) == pytest.approx(100)
    assert plots.condition_number([2.0, -4.0]) == pytest.approx(2.0)
    assert plots.condition_number([0.0, 1.0]) == math.inf
    fig = plots.plot_spectrum({"quadratic": surfaces.Quadratic(condition=100, angle=30).H,
                               "saddle": surfaces.Saddle().hessian([0.0, 0.0])})
    ax, bars = fig.axes
    np.testing.assert_allclose([b.get_height() for b in bars.patches], [100.0, 1.0])
    assert any("negative eigenvalue" == line.get_label() for line in ax.get_lines())
    assert "quadratic ($\\kappa$ = 100)" in _legend_labels(ax)
    assert ax.get_yscale() == "log" and bars.get_yscale() == "log"
    with pytest.raises(ValueError, match="square"):
        plots.plot_spectrum(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        plots.condition_number(np.array([[1.0, np.nan], [np.nan, 1.0]]))
