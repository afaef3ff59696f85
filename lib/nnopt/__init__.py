"""nnopt — reference optimizers and teaching tools for a lecture on optimization
and adaptive learning rates for neural networks.

The optimizers, schedules and clipping helpers are imported eagerly (they are the
core API, with :mod:`~nnopt.validation` and :mod:`~nnopt.inplace` under them); the heavier
modules (training, plots, widgets, Theano) load on first use, e.g.
``nnopt.widgets.lr_explorer`` imports ipywidgets only when touched.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .adam_variants import AMSGrad, Adamax, AdamW, Nadam
from .clipping import clip_by_global_norm, clip_by_value
from .optimizer_base import OPTIMIZERS, NonFiniteGradient, Optimizer, make_optimizer
from .optimizers import SGD, AdaDelta, AdaGrad, Adam, Momentum, Nesterov, RMSProp, RMSPropNesterov
from .optimizers_matrix import Adafactor, Muon
from .optimizers_modern import Lion, ScheduleFreeAdamW, ScheduleFreeSGD
from . import schedules

__version__ = "0.1.0"

_LAZY_SUBMODULES = frozenset({
    "surfaces", "trajectory", "second_order", "data", "models", "train", "experiments", "figures", "plots",
    "surface_plots", "widgets", "theano_compat", "grading", "curvature", "stability", "notebook",
    "momentum_map", "tuning", "diagnostics",
})


def __getattr__(name: str) -> ModuleType:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nnopt' has no attribute {name!r}")


__all__ = [
    "Optimizer", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "RMSPropNesterov",
    "AdaDelta", "Adam", "Adamax", "AdamW", "Nadam", "AMSGrad", "Lion", "ScheduleFreeAdamW",
    "ScheduleFreeSGD", "Muon", "Adafactor", "OPTIMIZERS",
    "make_optimizer", "NonFiniteGradient", "clip_by_value", "clip_by_global_norm", "schedules",
]
