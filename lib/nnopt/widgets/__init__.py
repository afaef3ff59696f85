r"""Interactive explorers (ipywidgets 8) for the lecture, each with a static twin.

=========================  ===============================  =====================================
explorer                   static twin (same figure)        what it shows
=========================  ===============================  =====================================
``lr_explorer``            ``plot_lr_experiment``           trajectories on a surface vs the lr
``schedule_explorer``      ``plot_schedule_experiment``     a schedule's lr curve and its training
``momentum_explorer``      ``plot_momentum_experiment``     momentum vs the condition number
``clipping_explorer``      ``plot_clipping_experiment``     the cliff: no clipping / by value / norm
``batch_size_explorer``    ``plot_batch_size_experiment``   noise of the minibatch gradient
``training_race``          ``plot_training_race``           optimizers training the MLP on digits
``stability_explorer``     ``plot_stability_experiment``    full-batch GD around 2/lambda_max
=========================  ===============================  =====================================

Show an explorer by making it the last expression of a cell (``nnopt.widgets.lr_explorer()``).

**Anatomy.** A *view* owns the artists of one figure and redraws them with
``view.show(**params)``. The static twin is that view on a fresh figure, shown once; the
explorer is the same view whose ``show`` runs after every control change. So the widget and
the static figure are the same code, and a lecture reads well on GitHub/nbviewer too. An
:class:`Explorer` has ``.controls`` (dict of widgets, named like the twin's keyword
arguments), ``.figure``, ``.update()`` (recompute and redraw -- what a control change
triggers) and ``.widget`` (the box to display); ``with explorer.hold(): ...`` changes several
controls with a single update. A bad combination of values shows its error message in the
figure; a diverging run shows "diverged at step k" in the plot.

**Redraw.** With the inline backend (JupyterLab's default, and any headless run) the figure
is a plain Agg figure, not managed by pyplot; every update renders it to PNG and puts the
bytes into an ``ipywidgets.Image``. We prefer this to ``Output`` + ``clear_output(wait=True)``
+ ``display(fig)`` because it never flickers or leaves an empty output between frames, does
not depend on IPython's figure formatters, pushes frames while the kernel is busy (the
training race's live curves), and runs identically without a kernel -- so the tests and
benchmarks/widget_latency.py exercise the real redraw path. With ipympl
(``%matplotlib widget``) the figure's canvas is itself a widget with pan/zoom; it goes into
the layout and updates call ``canvas.draw_idle()``. The choice is made from the canvas type of
a figure created under the active backend. When displayed, an explorer also offers the
current frame as ``image/png``: renderers without widget support (static viewers, untrusted
notebooks, nbclient runs) show that picture instead of a blank.

**Speed.** Contours are drawn once per surface (:class:`nnopt.plots.TrajectoryPlot`; a new
surface replaces the contour on the same axes); a slider only changes line data; frames are
PNG-encoded with fast compression.

**Modules.** :mod:`~nnopt.widgets.view` holds the machinery (:class:`View`,
:class:`Explorer`, control builders), public for new explorers; one module per family:
:mod:`~nnopt.widgets.surface_explorers` (lr, momentum, clipping),
:mod:`~nnopt.widgets.schedule`, :mod:`~nnopt.widgets.batch_size`, :mod:`~nnopt.widgets.race_explorer`,
:mod:`~nnopt.widgets.stability`. They draw; the training, statistics and data they show come
from :mod:`nnopt.experiments`, :mod:`nnopt.schedules`, :mod:`nnopt.stability` and
:mod:`nnopt.data` (``race``, ``GradientNoise``, ``minibatch_gradient_noise`` and
``build_schedule`` are importable from here too).
"""
from __future__ import annotations

from ..experiments import GradientNoise, minibatch_gradient_noise, race
from ..schedules import build_schedule
from .batch_size import batch_size_explorer, plot_batch_size_experiment
from .race_explorer import TrainingRace, plot_training_race, training_race
from .schedule import ScheduleExplorer, plot_schedule_experiment, schedule_explorer
from .stability import plot_stability_experiment, stability_explorer
from .surface_explorers import (LRExplorer, clipping_explorer, lr_explorer, momentum_explorer, plot_clipping_experiment,
                                plot_lr_experiment, plot_momentum_experiment)
from .view import Explorer, View

__all__ = ["Explorer", "View", "lr_explorer", "schedule_explorer", "momentum_explorer", "clipping_explorer",
           "batch_size_explorer", "training_race", "stability_explorer", "plot_lr_experiment",
           "plot_schedule_experiment", "plot_momentum_experiment", "plot_clipping_experiment",
           "plot_batch_size_experiment", "plot_training_race", "plot_stability_experiment", "LRExplorer",
           "ScheduleExplorer", "TrainingRace", "build_schedule", "minibatch_gradient_noise", "race", "GradientNoise"]
