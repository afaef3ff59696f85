"""autograder.scan: every code cell is read, whatever its metadata claims, with patterns for
dynamic access; honest code stays unflagged."""
from __future__ import annotations

import nbformat
import pytest

from autograder import make_samples, scan


def _nb(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


@pytest.mark.parametrize("code, category, needle", [
    ("ns = vars(np)\nns['allclose'] = f", "dynamic access", "uses vars()"),
    ("vars(grading)['check_trajectory'] = f", "tampering", "assigns vars(grading)['check_trajectory']"),
    ("g = globals()", "dynamic access", "uses globals()"),
    ("f = getattr(nnopt, 'Mom' + 'entum')", "dynamic access", "computed getattr(nnopt, 'Mom' + 'entum')"),
    ("c = f.__code__", "dynamic access", "uses f.__code__"),
    ("g = dict(fn.__globals__)", "dynamic access", "uses fn.__globals__"),
    ("d = getattr(fn, '__globals__')", "dynamic access", "getattr(..., '__globals__')"),
    ("import sys\nframe = sys._getframe(1)", "introspection", "uses sys._getframe"),
    ("up = frame.f_back.f_globals", "introspection", "f_back"),
    ("tb = exc.__traceback__.tb_frame", "introspection", "tb_frame"),
    ("import inspect\ninspect.stack()", "introspection", "uses inspect.stack"),
    ("get_ipython().events.register('post_run_cell', f)", "kernel hooks", "events.register"),
    ("sys.excepthook = lambda *a: None", "kernel hooks", "uses sys.excepthook"),
    ("import subprocess\nsubprocess.run(['ls'])", "processes", "imports subprocess"),
    ("import os\nos.kill(os.getppid(), 9)", "processes", "calls os.kill"),
    ("open('/proc/self/environ').read()", "files", "names a path outside the working folder"),
    ("import sqlite3\nsqlite3.connect('gradebook.db')", "files", "imports sqlite3"),
    ("open('../../autograder/gradebook.db')", "files", "names a path outside"),
    ("import torch", "reference use", "imports torch"),
    ("from sklearn.neural_network._stochastic_optimizers import AdamOptimizer", "reference use",
     "imports sklearn.neural_network._stochastic_optimizers"),
    ("step = nnopt.Optimizer.step", "reference use", "uses nnopt's reference nnopt.Optimizer"),
    ("Adam = np.sys.modules['nnopt'].Adam", "dynamic access", "reaches another module through np.sys"),
    ("a = np.lib.format.pickle.loads(b'cnnopt\\nAdam\\n.')", "dynamic access",
     "reaches another module through np.lib.format.pickle"),
    ("T.os.system('ls')", "dynamic access", "reaches another module through T.os"),
])
def test_dynamic_access_is_flagged_with_its_category(code, category, needle):
    flags = scan.scan(_nb("import numpy as np", code))
    assert any(f.category == category and needle in f.text for f in flags), [str(f) for f in flags]
    assert all(f.cell == 1 for f in flags)


def test_honest_code_is_not_flagged():
    honest = ("fig, ax = plt.subplots()\nax.set_title(f'{3}/{4} steps')\nx = np.stack([a, b])\n"
              "lr = getattr(self, 'lr')\nprint('loss / accuracy')\n"
              "class A:\n    def __init__(self):\n        super().__init__()\n        self.name = type(self).__name__")
    assert scan.scan(_nb(honest)) == []


def test_a_cell_whose_metadata_claims_locked_is_scanned_and_release_code_is_not():
    release = make_samples.released(make_samples.LAB1)
    nb = make_samples.locked_claim()
    flags = scan.scan(nb, release)
    momentum = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "momentum")
    assert nb.cells[momentum].metadata.nbgrader["locked"] is True
    assert {f.text for f in flags if f.cell == momentum} >= {"uses vars()", "setattr on grading"}
    assert scan.scan(make_samples.filled(make_samples.LAB1), release) == []
