r"""Grading for the labs: what the test cells call, and how a verdict is reached.

A test cell asks its questions as literal calls, for example::

    from nnopt import grading
    grading.check_trajectory(Momentum, "momentum", {"lr": 0.002, "momentum": 0.9},
                             surface="rosenbrock", steps=40)

which builds the student's ``Momentum(lr=0.002, momentum=0.9)``, runs its ``step(theta, grad)``
for 40 steps on the Rosenbrock surface, **records** the points it visits in the cell's output,
and -- when a student runs the notebook -- shows at once whether they agree with
``nnopt.Momentum``; if not, it raises :class:`GradingError` with the first differing step and,
when the numbers match a known mistake, the bug's name (*"your Adam matches Adam without bias
correction: see Alg. 8, 'correct the biases'"*).

**Where points are decided.** Not in the student's kernel. At autograde the kernel runs in a
sandbox with ``NNOPT_GRADING_MODE=record``: the checks only record numbers, and the lab's
graded implementations (nnopt's optimizers, this package's references and wrong variants)
are not installed there at all (``autograder.withheld``). After execution the trusted
grader (``autograder.verdicts.TrustedVerdicts``) parses the checks from the *trusted* test-cell
source (:mod:`.cells`), finds their records, computes the references itself and rewrites the
cell's outputs; a cell scores its points only if every check in it passed. Nothing the kernel
does to numpy, IPython, nnopt or these helpers can turn a wrong or missing answer into
points: a forged record wins only with correct numbers.

Modules (one idea each):

==================  =============================================================================
module              holds
==================  =============================================================================
``spec``            a check as data (:class:`Spec`), :func:`schedule`, :class:`GradingError`
``answers``         running student code in the kernel and turning results into numbers
``record``          the record format (mimetype ``application/vnd.nnopt.answer+json``), the modes
``checks``          the checks of Labs 1-2: trajectories, gradient sequences, schedules, clipping
``matrices``        Lab 4: a function of a matrix (Newton-Schulz) on given matrices
``training``        Lab 3 Part A: reproducible training rows and the benchmark
``figures``         figures checked by their plotted data
``symbolic``        Lab 3 Part B: Theano updates and the softmax regression
``sourcecheck``     static checks (outside the kernel) that the Theano answers are symbolic
``dataflow``        Lab 3 B2: the returned W, b are what the compiled Adam step trained (static)
``cells``           reading a test cell's checks from its source (the trusted side)
``verdict``         :func:`~.verdict.judge`: the one function that decides
``compare``         dtype-aware tolerances and step-by-step messages
``reference``       expected values from nnopt's implementations (withheld in the sandbox)
``variants``        the table of known wrong variants, for diagnosis (withheld in the sandbox)
``variants_beyond`` Lab 4's wrong variants: Lion, Newton-Schulz, Muon (withheld in the sandbox)
``client``          the reference process that gives instant feedback (student mode)
==================  =============================================================================
"""
from __future__ import annotations

from .answers import trajectory
from .checks import (check_clipping, check_schedule, check_sequence, check_trajectory, compare_clipping,
                     compare_schedule, compare_sequence, compare_trajectory)
from .client import REFERENCE_FAILURE, connect
from .figures import check_curves_figure, check_trajectory_figure
from .matrices import check_matrix_function, compare_matrix_function
from .record import MIMETYPE
from .spec import GradingError, ScheduleSpec, schedule
from .symbolic import check_softmax_theano, check_theano_updates, compare_theano_updates, theano_path
from .training import check_benchmark, check_run_strategy, compare_run_strategy

__all__ = [
    "GradingError", "ScheduleSpec", "schedule", "trajectory", "connect", "MIMETYPE", "REFERENCE_FAILURE",
    "check_trajectory", "compare_trajectory", "check_sequence", "compare_sequence",
    "check_schedule", "compare_schedule", "check_clipping", "compare_clipping",
    "check_run_strategy", "compare_run_strategy", "check_benchmark",
    "check_trajectory_figure", "check_curves_figure", "check_matrix_function", "compare_matrix_function",
    "check_theano_updates", "compare_theano_updates", "check_softmax_theano", "theano_path",
]
