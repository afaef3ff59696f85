"""nnopt.widgets, headless: build each explorer, set its controls programmatically, and check the
data of the figure it produced (and that the static twin draws the same thing)."""
from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import pytest  # noqa: E402

import nnopt  # noqa: E402
from nnopt import data, experiments, schedules, surfaces, widgets  # noqa: E402
from nnopt import stability as st  # noqa: E402
from nnopt.figures import display_name  # noqa: E402
from nnopt.widgets import surface_explorers  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny(tiny_digits) -> data.Dataset:
    return tiny_digits


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)


def _end(explorer, label: str) -> np.ndarray:
    return explorer.view.trajectories.lines[label].get_xydata()[-1]


# ----------------------------------------------------------------------------- the machinery
def test_explorer_anatomy_and_display_bundle():
    e = widgets.lr_explorer(steps=20)
    assert set(e.controls) == {"surface", "optimizers", "lr", "steps", "x0", "y0"}
    lr = e.controls["lr"]
    assert isinstance(lr, W.FloatLogSlider) and lr.description == "learning rate (log)"
    assert lr.base ** lr.min == pytest.approx(1e-6) and lr.base ** lr.max == pytest.approx(10.0)
    assert isinstance(e.widget, W.VBox) and e.image in e.widget.children
    assert bytes(e.image.value).startswith(PNG)
    bundle = e._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle      # live widget ...
    assert bundle["image/png"]                                        # ... and a static frame
    assert e.figure.axes[0].get_title() and e.figure.axes[0].get_xlabel()


def test_set_hold_and_unknown_controls():
    e = widgets.lr_explorer(steps=10)
    calls = []
    show = e.view.show
    e.view.show = lambda **p: (calls.append(p), show(**p))
    e.set(lr=0.01, steps=30, optimizers=("adam",))
    assert len(calls) == 1 and calls[0]["steps"] == 30                # one update for three changes
    with pytest.raises(ValueError, match=r"Invalid control\(s\): \['learning_rate'\]"):
        e.set(learning_rate=0.1)
    e.controls["lr"].value = 0.02                                     # a single change updates at once
    assert len(calls) == 2 and calls[-1]["lr"] == pytest.approx(0.02)


def test_a_bad_value_shows_its_message_in_the_figure():
    e = widgets.momentum_explorer(steps=10)

    def refuse(**params):
        raise ValueError("momentum must be < 1")

    e.view._show = refuse
    before = e.image.value
    e.update()
    assert e.view._error.get_visible() and "momentum must be < 1" in e.view._error.get_text()
    assert e.image.value != before                                    # the message was drawn


def test_blitted_frame_equals_a_full_redraw():
    e = widgets.lr_explorer(steps=100, lr=1e-3)
    e.controls["lr"].value = 3e-2                     # lines move: this frame is blitted
    assert e._background_key == e.view.background_key()
    blitted = _pixels(e.image.value)
    e._background_key = None                          # force a full draw of the same state
    full = _pixels(e.png())
    differ = np.any(blitted != full, axis=2).mean()
    assert differ < 0.005, f"{differ:.2%} of the pixels differ"      # only overlaps (line vs legend) may


def test_new_surface_keeps_the_axes_and_blits_over_its_own_contour():
    e = widgets.lr_explorer(steps=50, lr=1e-3)
    axes, key = list(e.figure.axes), e._background_key
    e.controls["surface"].value = "himmelblau"                 # a new contour: a full draw
    assert e.figure.axes == axes and e._background_key != key
    e.controls["lr"].value = 1e-2                              # then blitted over the new background
    blitted = _pixels(e.image.value)
    e._background_key = None
    differ = np.any(blitted != _pixels(e.png()), axis=2).mean()
    assert differ < 0.005, f"{differ:.2%} of the pixels differ"


def test_ipympl_backend_uses_the_interactive_canvas():
    if importlib.util.find_spec("ipympl") is None:      # (importing it here would switch our backend)
        pytest.skip("ipympl is not installed")
    code = ("from nnopt import widgets\n"
            "e = widgets.lr_explorer(steps=5)\n"
            "assert type(e.figure.canvas).__module__.startswith('ipympl'), type(e.figure.canvas)\n"
            "assert e.image is None and e.figure.canvas in e.widget.children\n"
            "e.controls['lr'].value = 0.05\n"
            "assert 'image/png' in e._repr_mimebundle_()\n"
            "assert not any(a.get_animated() for a in e.view.blit_artists())  # ipympl draws them all\n"
            "print('ok')\n")
    env = {**os.environ, "MPLBACKEND": "module://ipympl.backend_nbagg"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.slow
def test_explorer_in_a_kernel_outputs_an_image():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from nnopt import widgets\nwidgets.clipping_explorer(steps=20)")])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["execute_result"]
    assert "image/png" in outputs[0].data and "application/vnd.jupyter.widget-view+json" in outputs[0].data


# ----------------------------------------------------------------------------- lr explorer
def test_lr_explorer_trajectories_follow_the_learning_rate():
    e = widgets.lr_explorer(surface="rosenbrock", optimizers=("sgd", "adam"), lr=1e-3, steps=200)
    rosen = surfaces.Rosenbrock()
    np.testing.assert_array_equal(e.view.trajectories.lines["SGD"].get_xydata(),
                                  surfaces.run(rosen, nnopt.SGD(lr=1e-3), steps=200).xy)
    slow = _end(e, "Adam")
    assert not e.view.trajectories.note.get_visible()
    e.controls["lr"].value = 1e-2
    fast = _end(e, "Adam")
    np.testing.assert_array_equal(fast, surfaces.run(rosen, nnopt.Adam(lr=1e-2), steps=200).xy[-1])
    assert np.linalg.norm(fast - rosen.start) > np.linalg.norm(slow - rosen.start)
    assert e.figure.axes[0].get_title() == "Rosenbrock(a=1, b=100): lr = 0.01, 200 steps"
    note = e.view.trajectories.note.get_text()                  # lr 0.01 is too much for SGD here
    assert note.startswith("SGD: diverged at step") and "Adam" not in note


def test_lr_explorer_divergence_message_at_lr_10():
    e = widgets.lr_explorer(surface="rosenbrock", optimizers=("sgd", "adam"), steps=200)
    e.controls["lr"].value = 10.0
    note = e.view.trajectories.note
    assert note.get_visible() and "SGD: diverged at step" in note.get_text()
    expected = surfaces.run(surfaces.Rosenbrock(), nnopt.SGD(lr=10.0), steps=200).diverged_at
    assert f"diverged at step {expected}" in note.get_text()
    line = e.view.trajectories.lines["SGD"]
    assert len(line.get_xydata()) == expected                 # the path stops before the bad point
    assert e.figure.axes[0].get_xlim() == (-2.0, 2.0)         # the view did not zoom out


def test_lr_explorer_tiny_lr_barely_moves():
    e = widgets.lr_explorer(optimizers=("sgd", "adam"), steps=200)
    e.controls["lr"].value = 1e-6
    start = surfaces.Rosenbrock().start
    assert np.linalg.norm(_end(e, "Adam") - start) < 1e-3     # Adam moves ~lr per step
    assert np.linalg.norm(_end(e, "SGD") - start) < 1e-1


def test_lr_explorer_zero_and_ten_thousand_steps():
    e = widgets.lr_explorer(optimizers=("adam",), lr=1e-2)
    e.controls["steps"].value = 0
    np.testing.assert_array_equal(e.view.trajectories.lines["Adam"].get_xydata(), [surfaces.Rosenbrock().start])
    assert bytes(e.image.value).startswith(PNG)
    e.controls["steps"].value = 10_000
    xy = e.view.trajectories.lines["Adam"].get_xydata()
    assert len(xy) == 10_001 and np.linalg.norm(xy[-1] - [1.0, 1.0]) < 0.05   # reached the minimum
    assert e.figure.axes[1].get_xlim() == (0, 10_000)


def test_lr_explorer_new_surface_moves_the_start_sliders():
    e = widgets.lr_explorer(optimizers=("sgd",), steps=10)
    e.set(x0=0.5, y0=0.5)
    e.controls["surface"].value = "himmelblau"
    h = surfaces.Himmelblau()
    assert (e.controls["x0"].value, e.controls["y0"].value) == tuple(h.start)
    assert (e.controls["x0"].min, e.controls["x0"].max) == h.domain[0]
    assert e.view.trajectories.surface.name == "himmelblau"
    assert e.figure.axes[0].get_xlim() == h.domain[0]
    np.testing.assert_array_equal(e.view.trajectories.lines["SGD"].get_xydata()[0], h.start)
    e.set(x0=4.0, y0=-4.0)
    np.testing.assert_array_equal(e.view.trajectories.lines["SGD"].get_xydata()[0], [4.0, -4.0])


def test_lr_explorer_without_optimizers_shows_the_bare_surface():
    e = widgets.lr_explorer(steps=10)
    e.controls["optimizers"].value = ()
    assert e.view.trajectories.lines == {} and bytes(e.image.value).startswith(PNG)


def test_plot_lr_experiment_is_the_same_figure():
    kw = dict(surface="beale", optimizers=("momentum", "rmsprop"), lr=0.01, steps=50, x0=1.0, y0=1.0)
    e = widgets.lr_explorer(**kw)
    fig = widgets.plot_lr_experiment(**kw)
    for ax_e, ax_s in zip(e.figure.axes, fig.axes):
        assert ax_e.get_title() == ax_s.get_title()
        for le, ls in zip(ax_e.get_lines(), ax_s.get_lines()):
            np.testing.assert_array_equal(le.get_xydata(), ls.get_xydata())
    assert len(fig.axes) == len(e.figure.axes) == 2


# ----------------------------------------------------------------------------- momentum
def _sign_changes(y: np.ndarray) -> int:
    s = np.sign(y[np.abs(y) > 1e-9])
    return int(np.sum(s[1:] != s[:-1]))


def test_momentum_explorer_zigzag_vs_smooth():
    e = widgets.momentum_explorer()                  # kappa 50, lr 0.038 (lr*kappa = 1.9), alpha 0.5
    lines = e.view.trajectories.lines
    assert set(lines) == {"SGD (no momentum)", "Momentum"}
    sgd_y, mom_y = lines["SGD (no momentum)"].get_ydata(), lines["Momentum"].get_ydata()
    assert _sign_changes(sgd_y) > 2 * _sign_changes(mom_y)        # SGD zig-zags across the valley
    curves = e.view.trajectories.curves
    assert curves["Momentum"].get_ydata()[-1] < 1e-3 * curves["SGD (no momentum)"].get_ydata()[-1]
    e.controls["momentum"].value = 0.0                              # momentum 0 is SGD
    np.testing.assert_allclose(lines["Momentum"].get_xydata(), lines["SGD (no momentum)"].get_xydata())


def test_momentum_explorer_condition_nesterov_and_divergence():
    e = widgets.momentum_explorer(steps=50)
    e.set(condition=200.0, nesterov=True)
    assert e.view.trajectories.surface.condition == pytest.approx(200.0, rel=1e-9)
    assert "Nesterov" in e.view.trajectories.lines
    e.controls["lr"].value = 0.014     # lr*kappa = 2.8: SGD (needs < 2) diverges, momentum (< 2(1+a) = 3) does not
    note = e.view.trajectories.note.get_text()
    assert "SGD (no momentum): diverged at step" in note and "Momentum:" not in note
    assert "2/$\\kappa$ = 0.01" in e.figure.axes[1].get_title()


# ----------------------------------------------------------------------------- clipping
def _step_lengths(line) -> np.ndarray:
    return np.linalg.norm(np.diff(line.get_xydata(), axis=0), axis=1)


def test_clipping_explorer_modes():
    e = widgets.clipping_explorer()                  # lr 0.4, clip by norm at 1
    lines = e.view.trajectories.lines
    free, clipped = lines["SGD, no clipping"], lines["SGD, clipped by norm"]
    assert free.get_xdata().max() > 8                 # flung off the cliff, out of the picture
    assert _step_lengths(clipped).max() <= 0.4 * 1.0 + 1e-12
    assert clipped.get_xdata().max() < 3.5
    assert list(e.view.threshold.get_ydata()) == [1.0, 1.0] and e.view.threshold.get_visible()
    e.set(clip="by value", threshold=0.5)
    by_value = e.view.trajectories.lines["SGD, clipped by value"]
    assert np.abs(np.diff(by_value.get_xydata(), axis=0)).max() <= 0.4 * 0.5 + 1e-12
    e.controls["clip"].value = "off"
    assert list(e.view.trajectories.lines) == ["SGD, no clipping"]
    assert not e.view.threshold.get_visible()
    norms = e.view.trajectories.curves["SGD, no clipping"].get_ydata()
    np.testing.assert_allclose(norms, surfaces.run(surfaces.Cliff(), nnopt.SGD(lr=0.4), steps=100).grad_norms)


def test_only_affected_paths_are_recomputed(monkeypatch):
    e = widgets.clipping_explorer(steps=50)
    calls = []
    real_run = surface_explorers.run
    monkeypatch.setattr(surface_explorers, "run", lambda *a, **k: (calls.append(k.get("clip")), real_run(*a, **k))[1])
    e.controls["threshold"].value = 3.0
    assert calls == [("norm", 3.0)]                  # the unclipped reference was remembered
    e.controls["threshold"].value = 1.0               # seen before: nothing to recompute
    assert calls == [("norm", 3.0)]
    m = widgets.momentum_explorer(steps=30)
    sgd = m.view.trajectories.lines["SGD (no momentum)"].get_xydata().copy()
    m.controls["condition"].value = 10.0               # a new surface: new paths, not remembered ones
    expected = surfaces.run(surfaces.Quadratic(condition=10.0), nnopt.SGD(lr=0.038), steps=30).xy
    np.testing.assert_array_equal(m.view.trajectories.lines["SGD (no momentum)"].get_xydata(), expected)
    assert not np.array_equal(sgd, expected)


def test_clipping_static_twin():
    fig = widgets.plot_clipping_experiment(clip="by norm", threshold=2.0, lr=0.4, steps=30)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "SGD, clipped by norm" in labels and "c = 2" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="Invalid clip: 'sometimes'"):
        widgets.plot_clipping_experiment(clip="sometimes")


# ----------------------------------------------------------------------------- schedules
def test_schedule_explorer_lr_curve_and_training(tiny):
    e = widgets.schedule_explorer(data=tiny, epochs=3, batch_size=32)
    ax_lr, ax_loss = e.figure.axes
    steps_per_epoch = 4                                                # ceil(120 / 32)
    (constant, decay) = ax_lr.get_lines()
    np.testing.assert_allclose(decay.get_ydata(), schedules.build_schedule("linear_decay", 1.0).values(12))
    np.testing.assert_allclose(constant.get_ydata(), 1.0)
    assert e.controls["k"].disabled and not e.controls["horizon"].disabled
    e.set(schedule="step_decay", every=5, drop=0.5)
    assert not e.controls["every"].disabled and e.controls["horizon"].disabled
    (_, decay) = ax_lr.get_lines()
    assert list(decay.get_ydata()[[0, 4, 5, 10]]) == [1.0, 1.0, 0.5, 0.25]
    # the loss panel holds the per-epoch training loss of both runs, at the epoch boundaries
    epoch_lines = [line for line in ax_loss.get_lines() if line.get_marker() == "."]
    assert len(epoch_lines) == 2
    assert list(epoch_lines[0].get_xdata()) == [0, steps_per_epoch, 2 * steps_per_epoch, 3 * steps_per_epoch]
    e.controls["epochs"].value = 0                                     # nothing to train: still a figure
    assert bytes(e.image.value).startswith(PNG)


def test_schedule_experiment_decay_beats_the_noise_floor():
    fig = widgets.plot_schedule_experiment()          # digits, lr0 = 1, linear decay over 400 steps
    ax_loss = fig.axes[1]
    final = {line.get_color(): line.get_ydata()[-1] for line in ax_loss.get_lines() if line.get_marker() == "."}
    constant, decayed = final.values()
    assert decayed < 0.9 * constant


# ----------------------------------------------------------------------------- batch size
def test_batch_size_explorer_cloud_shrinks_and_vanishes(tiny):
    e = widgets.batch_size_explorer(data=tiny, draws=300)
    assert e.controls["batch_size"].options == (1, 2, 4, 8, 16, 32, 64, 120)
    spread = {}
    for b in (1, 8, 64, 120):
        e.controls["batch_size"].value = b
        cloud = e.view.ax_cloud.collections[0].get_offsets()
        spread[b] = float(np.sqrt(np.mean(np.sum((cloud - cloud.mean(axis=0)) ** 2, axis=1))))
    assert spread[1] > spread[8] > spread[64] > spread[120]
    assert spread[120] == pytest.approx(0.0, abs=1e-9)                # full batch: no noise at all
    np.testing.assert_allclose(e.view.ax_cloud.collections[0].get_offsets(), [[1.0, 0.0]] * 300, atol=1e-9)
    assert any("full batch, no noise" in t.get_text() for t in e.view.ax_noise.texts)
    e.controls["batch_size"].value = 8
    noise = experiments.minibatch_gradient_noise(tiny)
    assert list(e.view.marker.get_xdata()) == [8]
    assert e.view.marker.get_ydata()[0] == pytest.approx(noise.expected_noise(8))
    assert e.view.reading.get_text() == f"B = 8: noise = {noise.expected_noise(8):.3g} ‖g‖"
    assert e.view.ax_noise.get_xscale() == "log" and e.view.ax_noise.get_yscale() == "log"
    e.controls["draws"].value = 50                                    # a new legend: full redraw
    assert len(e.view.ax_cloud.collections[0].get_offsets()) == 50


# ----------------------------------------------------------------------------- training race
def test_training_race_run_button_and_divergence(tiny):
    e = widgets.training_race(lrs={"sgd": 10.0, "adam": 1e-2}, epochs=2, batch_size=32, data=tiny, hidden=(8,))
    assert e.controls["sgd_on"].value and not e.controls["rmsprop_on"].value
    assert e.controls["adam_lr"].description == "learning rate (log)"
    frames = []
    e.image.observe(lambda change: frames.append(change["new"]), names="value")
    e.button.click()
    assert len(frames) >= 2                          # a live frame at once, then the complete one
    assert not e.button.disabled
    sgd, adam = e.histories["sgd"], e.histories["adam"]
    assert sgd.diverged and sgd.message.startswith(f"diverged at step {sgd.diverged_at}")
    assert adam.n_epochs == 2 and not adam.diverged
    loss_ax, acc_ax = e.figure.axes
    assert any(t.get_visible() and "SGD(lr=10): diverged at step" in t.get_text() for t in loss_ax.texts)
    curves = [line for line in acc_ax.get_lines() if len(line.get_xdata()) == 3]
    np.testing.assert_allclose(curves[-1].get_ydata(), adam.val_acc)
    assert "SGD: diverged" in e.status.value and "Adam: completed 2 epochs" in e.status.value
    e.controls["sgd_on"].value = False
    e.update()
    assert list(e.histories) == ["adam"]


def test_training_race_rejects_unknown_lanes_and_empty_races(tiny):
    with pytest.raises(ValueError, match=r"Invalid lanes of lrs: \['lbfgs'\]"):
        widgets.training_race(lrs={"lbfgs": 1.0}, data=tiny)
    e = widgets.training_race(lrs={"sgd": 0.1}, epochs=1, data=tiny, hidden=(4,))
    e.controls["sgd_on"].value = False
    e.update()
    assert "at least one optimizer" in e.view._error.get_text() and e.view._error.get_visible()


def test_plot_training_race_static(tiny):
    fig = widgets.plot_training_race({"momentum": 0.05}, epochs=1, data=tiny, hidden=(8,))
    loss_ax, acc_ax = fig.axes
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["Momentum(lr=0.05)"]
    assert "training loss" in loss_ax.get_title() and acc_ax.get_ylabel() == "validation accuracy"


# ----------------------------------------------------------------------------- bad initial values
@pytest.mark.parametrize("factory, kwargs, message", [
    (widgets.lr_explorer, {"learning_rate": 0.1}, r"Invalid argument\(s\) of plot_lr_experiment: \['learning_rate'\]"),
    (widgets.lr_explorer, {"lr": 100.0}, r"Invalid lr: 100.0 \(expected a value in the explorer's range \[1e-06, 10\]\)"),
    (widgets.lr_explorer, {"surface": "everest"}, "Invalid surface: 'everest'"),
    (widgets.lr_explorer, {"optimizers": ("sgd", "lbfgs")}, "Invalid initial value"),
    (widgets.lr_explorer, {"x0": 50.0}, "Invalid x0: 50.0 \\(expected a value in the explorer's range"),
    (widgets.momentum_explorer, {"momentum": 1.5}, "Invalid momentum: 1.5 \\(expected a value in the explorer's range"),
    (widgets.clipping_explorer, {"clip": "always"}, "Invalid initial value"),
    (widgets.clipping_explorer, {"steps": -1}, "Invalid steps: -1 \\(expected a value in the explorer's range"),
])
def test_bad_initial_values_are_refused(factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factory(**kwargs)


def test_bad_initial_values_of_the_data_explorers(tiny):
    with pytest.raises(ValueError, match="Invalid initial value"):
        widgets.schedule_explorer(data=tiny, schedule="cyclic")
    with pytest.raises(ValueError, match="Invalid draws: 5 \\(expected a value in the explorer's range"):
        widgets.batch_size_explorer(data=tiny, draws=5)
    with pytest.raises(ValueError, match="Invalid sgd_lr: 100.0 \\(expected a value in the explorer's range"):
        widgets.training_race(lrs={"sgd": 100.0}, data=tiny)
    with pytest.raises(ValueError, match="batch_size"):
        widgets.training_race(batch_size=0, data=tiny)


# ----------------------------------------------------------------------------- stability (2/lambda_max)
def _dashed_y(ax):
    return [line.get_ydata() for line in ax.lines if line.get_linestyle() == "--"]


def test_explorer_draws_the_limit_line_and_reports_divergence():
    explorer = widgets.stability_explorer(lr_ratio=1.1)
    view = explorer.view
    p = st.get_problem("quadratic-like")
    lr_star = 2 / p.sharpness0
    np.testing.assert_allclose(view.limit_line.get_xdata(), lr_star)
    assert "diverged at step" in view.ax_loss.get_title()
    assert view.run.diverged
    np.testing.assert_allclose(_dashed_y(view.ax_sharp)[0], 2 / (1.1 * lr_star))
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"

    explorer.set(lr_ratio=0.9)
    assert "no divergence" in view.ax_loss.get_title() and not view.run.diverged
    np.testing.assert_allclose(_dashed_y(view.ax_sharp)[0], 2 / (0.9 * lr_star))

    explorer.set(optimizer="momentum")                   # momentum tolerates 2(1 + 0.9)/lambda_max
    np.testing.assert_allclose(view.limit_line.get_xdata(), 3.8 / p.sharpness0)
    assert set(explorer.controls) == {"problem", "optimizer", "lr_ratio"}
    for ax in explorer.figure.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_explorer_shows_errors_and_the_mlp_problem(monkeypatch):
    explorer = widgets.stability_explorer()
    explorer.view.show_error("x")                        # the error text machinery of nnopt.widgets
    with pytest.raises(ValueError, match="Invalid optimizer: 'adam'"):
        explorer.view.show(problem="quadratic-like", optimizer="adam", lr_ratio=1.0)
    with pytest.raises(ValueError, match="Invalid lr_ratio: -1.0"):
        explorer.view.show(problem="quadratic-like", optimizer="sgd", lr_ratio=-1.0)
    with pytest.raises(ValueError, match=r"Invalid argument\(s\) of plot_stability_experiment"):
        widgets.stability_explorer(learning_rate=1.0)            # the keyword checks of every explorer
    with pytest.raises(ValueError, match="Invalid lr_ratio: 20.0 \\(expected a value in the explorer's range"):
        widgets.stability_explorer(lr_ratio=20.0)
    with pytest.raises(ValueError, match="Invalid problem: 'cubic'"):
        st.get_problem("cubic")
    monkeypatch.setattr(st, "SWEEP_RATIOS", (0.5, 8.0))   # keep the MLP sweep short
    st.lr_sweep.cache_clear()
    try:
        fig = widgets.plot_stability_experiment(problem="mlp", lr_ratio=0.9)
    finally:
        st.lr_sweep.cache_clear()
    assert "no divergence" in fig.axes[1].get_title()
    assert st.limit_lr("mlp", "sgd") == pytest.approx(2 / st.get_problem("mlp").sharpness0)


def test_frames_of_a_long_update_and_of_an_animation_are_paced(tiny, monkeypatch):
    """An intermediate frame: at once for a long update or an animation (the run button), then
    at most one per FRAME_INTERVAL (ANIMATION_INTERVAL), never when less than a frame's work is left."""
    from nnopt.widgets import view
    e = widgets.training_race(lrs={"adam": 1e-2}, epochs=1, batch_size=32, data=tiny, hidden=(8,))
    clock = [0.0]
    monkeypatch.setattr(view.time, "perf_counter", lambda: clock[0])
    e._last_frame = None
    assert e.frame_due(0.0, animation=True) and not e.frame_due(view.LONG_UPDATE / 2)
    assert e.frame_due(2 * view.LONG_UPDATE)
    e._last_frame, e._frame_cost = 0.0, 0.01
    for waited, animation, due in [(view.ANIMATION_INTERVAL / 2, True, False), (view.ANIMATION_INTERVAL, True, True),
                                   (view.ANIMATION_INTERVAL, False, False), (view.FRAME_INTERVAL, False, True)]:
        clock[0] = waited
        assert e.frame_due(1.0, animation) == due, (waited, animation)
        assert not e.frame_due(0.005, animation)          # less work left than a frame: the last one comes next
    e._frame_cost = 0.2                                   # slow frames: at most a quarter of the time goes to them
    clock[0] = 0.5
    assert not e.frame_due(10.0, animation=True)


def test_live_curves_take_the_one_field_panels_of_plot_history():
    from nnopt.widgets.live import CURVES, LiveCurves
    assert CURVES == ("train_loss", "val_loss", "train_acc", "val_acc")
    fig = nnopt.plots.new_figure((6, 3))
    axes = fig.subplots(1, 2)
    curves = LiveCurves(axes, ["train_loss", "val_acc"])
    assert [ax.get_ylabel() for ax in axes] == ["training loss (log scale)", "validation accuracy"]
    assert curves.metrics == ["train_loss", "val_acc"]
    with pytest.raises(ValueError, match=r"Invalid metrics: \['loss'\] \(expected names among"):
        LiveCurves(axes, ["loss", "val_acc"])      # two fields in one panel: plot_history's, not a live curve


def test_stability_module_loads_no_widget_code():
    code = ("import sys, nnopt.stability as st; assert 'ipywidgets' not in sys.modules, 'ipywidgets'; "
            "assert not any(m.startswith('nnopt.widgets') for m in sys.modules), 'widgets'; "
            "assert not hasattr(st, 'stability_explorer'), 'the explorer lives in nnopt.widgets'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "MPLBACKEND": "Agg"})


def test_explorers_accept_the_optimizers_beyond_adam(tiny):
    """Lion, Schedule-Free SGD/AdamW, Muon and Adafactor are lanes of the race (starting at
    GOOD_LRS) and choices of the learning-rate explorer."""
    new = ("lion", "schedulefree_sgd", "schedulefree_adamw", "muon", "adafactor")
    e = widgets.training_race(lrs={"lion": 1e-3, "muon": 1e-2}, epochs=1, batch_size=32, data=tiny, hidden=(8,))
    assert all(f"{n}_on" in e.controls for n in new) and not e.controls["adafactor_on"].value
    e.button.click()
    assert [e.histories[n].n_epochs for n in ("lion", "muon")] == [1, 1]
    lr = widgets.lr_explorer(optimizers=new, lr=1e-2, steps=50)
    assert set(new) <= {value for _, value in lr.controls["optimizers"].options}
    start = surfaces.Rosenbrock().start
    for name in new:
        path = lr.view.trajectories.lines[display_name(name)].get_xydata()
        assert len(path) == 51 and np.linalg.norm(path[-1] - start) > 1e-3, name
