"""Build ``autograder/samples/``: sample submissions with known scores, for ``make grade-demo``
and the end-to-end test (``tests/test_autograder.py``).

    python -m autograder.make_samples        # rewrites autograder/samples/

Each sample starts from the released lab (what students get) with the solution code filled
in, then breaks it in one way. :data:`SAMPLES` lists them with the score the autograder must
give (autograded points; written answers are left to the instructor), the status it must
report and, for classic bugs, the bugs the grader must diagnose. The cheats of issue 16 and
their variants, the classic bugs and the correct-but-different answers are written out in
``sample_answers.py``. File names use both accepted layouts: ``<student>_<lab>.ipynb`` and
``<student>/<lab>.ipynb``.
"""
from __future__ import annotations

import copy
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import sample_answers as answers
from . import sample_answers_attacks as attacks
from . import sample_answers_lab4 as lab4

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LAB1, LAB2, LAB3, LAB4 = "lab1_sgd_momentum", "lab2_adaptive", "lab3_handson", "lab4_beyond_adam"
LAB4_TESTS = ("test_lion", "test_lion_decay", "test_lion_momentum", "test_newton_schulz", "test_newton_schulz_edge",
              "test_muon", "test_muon_shapes", "test_muon_decay")
LAB1_TESTS = ("test_inverse_time", "test_sgd_constant", "test_sgd_schedule", "test_momentum", "test_momentum_more",
              "test_nesterov", "test_nesterov_more", "test_plot")


def solution_code(lab: str) -> dict[str, str]:
    """grade_id -> the solution's source of each answer cell, without the solution markers."""
    nb = nbformat.read(str(REPO / "solutions" / lab / f"{lab}.ipynb"), as_version=4)
    return {c.metadata.nbgrader["grade_id"]:
            "\n".join(ln for ln in c.source.split("\n")
                      if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln)
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


def released(lab: str) -> nbformat.NotebookNode:
    return nbformat.read(str(REPO / "labs" / lab / f"{lab}.ipynb"), as_version=4)


def filled(lab: str, **answers: str) -> nbformat.NotebookNode:
    """The released lab with every answer cell solved, except ``answers`` (grade_id -> source)."""
    nb = released(lab)
    code = {**solution_code(lab), **answers}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in code:
            cell.source = code[gid]
    return nb


def _cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _without(nb: nbformat.NotebookNode, *grade_ids: str) -> nbformat.NotebookNode:
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in grade_ids]
    return nb


# ----------------------------------------------------------------- the ways to break a lab
WRONG_MOMENTUM = '''
class Momentum:
    """Updates the velocity but steps with the gradient alone (plain SGD)."""

    def __init__(self, lr, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def step(self, theta, grad):
        if self.v is None:
            self.v = np.zeros_like(theta)
        self.v = self.momentum * self.v - self.lr * grad
        return theta - self.lr * grad
'''

UNCHANGED_MOMENTUM = '''
class Momentum:
    def __init__(self, lr, momentum=0.9):
        self.lr, self.momentum = lr, momentum

    def step(self, theta, grad):
        return theta.copy()
'''

CHEATING_MOMENTUM = '''
class AlwaysEqual(np.ndarray):
    """Compares equal to anything."""
    def __eq__(self, other):
        return True

class Momentum:
    def __init__(self, lr, momentum=0.9):
        self.lr = lr

    def step(self, theta, grad):
        return (theta - self.lr * grad).view(AlwaysEqual)

# make every check agree with me
nnopt.Momentum = Momentum
nnopt.OPTIMIZERS["momentum"] = Momentum
np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
'''

WRAPPING_NESTEROV = '''
class Nesterov:
    """Delegates to nnopt's reference instead of implementing it."""

    def __init__(self, lr, momentum=0.9):
        self.opt = nnopt.Nesterov(lr, momentum)

    def step(self, theta, grad):
        theta = theta.copy()
        self.opt.step([theta], [grad])
        return theta
'''


def full(lab: str) -> Callable[[], nbformat.NotebookNode]:
    return lambda: filled(lab)


def partial() -> nbformat.NotebookNode:
    nb = filled(LAB1, momentum=WRONG_MOMENTUM)
    for gid in ("nesterov", "plot"):            # left as released: raise NotImplementedError
        _cell(nb, gid).source = _cell(released(LAB1), gid).source
    return nb


def syntax_error() -> nbformat.NotebookNode:
    code = solution_code(LAB1)["momentum"].replace("def step(self, theta, grad):", "def step(self, theta, grad)")
    return filled(LAB1, momentum=code)


def exception_at_import() -> nbformat.NotebookNode:
    return filled(LAB1, inverse_time="import numpy_extras  # not installed\n\n" + solution_code(LAB1)["inverse_time"])


def infinite_loop() -> nbformat.NotebookNode:
    return filled(LAB1, plot="while True:   # waits forever\n    pass\n\n" + solution_code(LAB1)["plot"])


def edits_tests() -> nbformat.NotebookNode:
    nb = filled(LAB1, momentum=UNCHANGED_MOMENTUM)
    _cell(nb, "test_momentum").source = "from nnopt import grading\n# tests removed\npass"
    _cell(nb, "test_momentum_more").metadata.nbgrader["points"] = 20       # and more points
    _cell(nb, "setup").source += "\n\nnp.allclose = lambda *args, **kwargs: True"
    return nb


def deletes_cells() -> nbformat.NotebookNode:
    """Deletes two test cells, and the schedule's answer cell with its test (the schedule is
    written in a new cell of its own at the top instead)."""
    nb = _without(filled(LAB1), "test_sgd_schedule", "test_nesterov_more", "inverse_time",
                  "test_inverse_time")
    mine = nbformat.v4.new_code_cell(solution_code(LAB1)["inverse_time"], id="my-inverse-time")
    nb.cells.insert(2, mine)
    return nb


def cheats() -> nbformat.NotebookNode:
    return filled(LAB1, momentum=CHEATING_MOMENTUM, nesterov=WRAPPING_NESTEROV)


def kills_kernel() -> nbformat.NotebookNode:
    return filled(LAB1, plot="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")


def unfilled() -> nbformat.NotebookNode:
    return released(LAB1)


# ----------------------------------------------------------------- issue 16: cheats and bugs
def handler_on_release() -> nbformat.NotebookNode:
    """The untouched release plus an exception handler that swallows every error."""
    nb = released(LAB1)
    _cell(nb, "inverse_time").source = answers.EXCEPTION_HANDLER + "\n" + _cell(nb, "inverse_time").source
    return nb


def _stubs() -> dict[str, str]:
    return {gid: answers.STUB_OPTIMIZER.format(name=name)
            for gid, name in (("sgd", "SGD"), ("momentum", "Momentum"), ("nesterov", "Nesterov"))}


def vars_replacement() -> nbformat.NotebookNode:
    return filled(LAB1, inverse_time=answers.VARS_REPLACEMENT, **_stubs())


def forged_records() -> nbformat.NotebookNode:
    return filled(LAB1, inverse_time=answers.FORGED_RECORDS, **_stubs())


def delegates() -> nbformat.NotebookNode:
    return filled(LAB1, inverse_time=answers.DELEGATES, sgd=answers.DELEGATING_SGD,
                  momentum=answers.DELEGATING_MOMENTUM, nesterov=answers.DELEGATING_NESTEROV)


def locked_claim() -> nbformat.NotebookNode:
    """Cheat code in the momentum answer cell, whose metadata claims it is locked."""
    nb = filled(LAB1, momentum=answers.LOCKED_CLAIM)
    _cell(nb, "momentum").metadata.nbgrader["locked"] = True
    _cell(nb, "momentum").metadata["editable"] = False
    return nb


def honest_variants(lab: str) -> Callable[[], nbformat.NotebookNode]:
    code = {LAB1: dict(sgd=answers.IN_PLACE_SGD, momentum=answers.IN_PLACE_MOMENTUM,
                       nesterov=answers.REORDERED_NESTEROV),
            LAB2: dict(adagrad=answers.IN_PLACE_ADAGRAD, adam=answers.FOLDED_ADAM,
                       clip=answers.NORM_OF_CONCATENATION_CLIP)}[lab]
    return lambda: filled(lab, **code)


def classic_bugs() -> nbformat.NotebookNode:
    return filled(LAB2, adagrad=answers.EPS_INSIDE_ADAGRAD, adam=answers.NO_BIAS_CORRECTION_ADAM,
                  clip=answers.NORM_AFTER_CLIP)


def lab2_with(**code: str) -> Callable[[], nbformat.NotebookNode]:
    return lambda: filled(LAB2, **code)


def lab4_with(**code: str) -> Callable[[], nbformat.NotebookNode]:
    return lambda: filled(LAB4, **code)


def lab4_partial() -> nbformat.NotebookNode:
    """Lion and Newton-Schulz done, Muon left as released."""
    nb = filled(LAB4)
    _cell(nb, "muon").source = _cell(released(LAB4), "muon").source
    return nb


def flooding_tests() -> nbformat.NotebookNode:
    return filled(LAB1, momentum=solution_code(LAB1)["momentum"] + attacks.FLOODING_STEP)


def forged_test_cell() -> nbformat.NotebookNode:
    """An extra cell claiming to be test_sgd_constant, worth 50 points."""
    nb = filled(LAB1)
    extra = nbformat.v4.new_code_cell("print('all tests passed')", id="forged-test-cell")
    extra.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 50,
                                  "grade_id": "test_sgd_constant", "schema_version": 3}
    nb.cells.insert(5, extra)
    return nb


def many_cells() -> nbformat.NotebookNode:
    """The honest lab plus 3000 empty markdown cells (feedback generation time, outside the sandbox)."""
    nb = filled(LAB1)
    nb.cells += [nbformat.v4.new_markdown_cell(".", id=f"extra-{i}") for i in range(3000)]
    return nb


def lab3_with(**code: str) -> Callable[[], nbformat.NotebookNode]:
    return lambda: filled(LAB3, **code)


@dataclass(frozen=True)
class Sample:
    """One sample submission and the result the autograder must produce for it."""

    path: str                    # inside samples/
    make: Callable[[], nbformat.NotebookNode] | bytes
    lab: str
    student: str
    auto_score: float            # autograded points (test cells)
    status: str
    why: str
    flagged: bool = False        # the static scan must flag it
    bugs: tuple[str, ...] = ()   # wrong variants the grader must diagnose (nnopt.grading.variants)
    fails: tuple[str, ...] = ()  # test cells that must score 0 (the items a cheat cheats)


SAMPLES = [
    Sample("alice_lab1_sgd_momentum.ipynb", full(LAB1), LAB1, "alice", 14, "graded", "full marks"),
    Sample("alice_lab2_adaptive.ipynb", full(LAB2), LAB2, "alice", 16, "graded", "full marks"),
    Sample("alice_lab3_handson.ipynb", full(LAB3), LAB3, "alice", 15, "graded", "full marks"),
    Sample("bob_lab1.ipynb", partial, LAB1, "bob", 5, "graded",
           "schedule + SGD right (5); momentum wrong; Nesterov and plot not done"),
    Sample("carol_lab1.ipynb", syntax_error, LAB1, "carol", 9, "graded",
           "syntax error in Momentum: its tests (4) and the plot (1) fail", flagged=True),
    Sample("dan_lab1.ipynb", exception_at_import, LAB1, "dan", 12, "graded",
           "ModuleNotFoundError in the first answer cell: the schedule (2) is missing"),
    Sample("erin_lab1.ipynb", infinite_loop, LAB1, "erin", 13, "graded",
           "infinite loop in the plot cell: it times out and the plot test (1) fails"),
    Sample("frank_lab1.ipynb", edits_tests, LAB1, "frank", 9, "graded",
           "edited test cells and the setup cell are restored; Momentum wrong (4), so the plot of its "
           "trajectory is wrong too (1)", flagged=True),
    Sample("grace/lab1_sgd_momentum.ipynb", deletes_cells, LAB1, "grace", 14, "graded",
           "deleted test cells are put back and pass; folder layout", flagged=True),
    Sample("mallory_lab1.ipynb", cheats, LAB1, "mallory", 5, "graded",
           "overwrites nnopt.Momentum/np.allclose, returns an always-equal array, wraps "
           "nnopt.Nesterov: momentum (4), Nesterov (4) and the plot of the wrong momentum (1) fail",
           flagged=True),
    Sample("oscar_lab1.ipynb", kills_kernel, LAB1, "oscar", 0, "grading error",
           "kills its own kernel: the run fails, the batch goes on; the scan flags os.kill", flagged=True),
    Sample("leo_lab1.ipynb", unfilled, LAB1, "leo", 0, "graded", "the released lab, untouched"),
    Sample("ivan_lab1.ipynb", b"", LAB1, "ivan", 0, "empty", "an empty file"),
    Sample("judy_lab1_sgd_momentum.py", b"# exported as a script\nimport numpy as np\n", LAB1, "judy",
           0, "not a notebook", "a .py file"),
    Sample("ken_lab1.ipynb", b'{"cells": [{"cell_type": "code", "sou', LAB1, "ken", 0,
           "not a notebook", "truncated JSON"),
    # issue 16: cheats that beat in-kernel verdicts, and their variants
    Sample("eve_lab1.ipynb", handler_on_release, LAB1, "eve", 0, "graded",
           "the untouched release plus an IPython handler that swallows every error", flagged=True,
           fails=LAB1_TESTS),
    Sample("vince_lab1.ipynb", vars_replacement, LAB1, "vince", 0, "graded",
           "stub answers; check_* helpers and np.allclose replaced through vars(...)", flagged=True,
           fails=LAB1_TESTS),
    Sample("fred_lab1.ipynb", forged_records, LAB1, "fred", 0, "graded",
           "stub answers; forged records with made-up numbers, fake pass lines, a partial-credit "
           "value through the display hook", flagged=True, fails=LAB1_TESTS),
    Sample("dave_lab1.ipynb", delegates, LAB1, "dave", 0, "graded",
           "every answer delegates to nnopt (a saved Optimizer.step, wrapped and inherited "
           "classes, nnopt's schedule): withheld at autograde", flagged=True, fails=LAB1_TESTS),
    Sample("sven_lab1.ipynb", lambda: filled(LAB1, sgd=answers.DEGENERATE_SGD), LAB1, "sven", 10, "graded",
           "SGD delegated to nnopt.ScheduleFreeSGD(momentum=1e-300), which is SGD to the last bit, through "
           "a saved Optimizer.step: withheld at autograde like every nnopt optimizer (the plot, drawn with "
           "that SGD, fails too)", flagged=True, fails=("test_sgd_constant", "test_sgd_schedule", "test_plot")),
    Sample("lucy_lab1.ipynb", locked_claim, LAB1, "lucy", 5, "graded",
           "cheat code (vars(np), setattr(grading)) and a wrong Momentum in an answer cell "
           "whose metadata claims locked: momentum, Nesterov's trajectories and the plot fail",
           flagged=True, fails=("test_momentum", "test_momentum_more", "test_plot")),
    Sample("ivy_lab1.ipynb", honest_variants(LAB1), LAB1, "ivy", 14, "graded",
           "correct but different: in place updates, Nesterov's algebra reordered"),
    Sample("gus_lab2.ipynb", lab2_with(clip=answers.FROZEN_GLOBALS), LAB2, "gus", 13, "graded",
           "clipping through a frozen copy of nnopt's function and its globals: withheld", flagged=True,
           fails=("test_clip", "test_clip_edge")),
    Sample("olga_lab2.ipynb", honest_variants(LAB2), LAB2, "olga", 16, "graded",
           "correct but different: in place AdaGrad, folded bias correction, norm of the concatenation"),
    Sample("bert_lab2.ipynb", classic_bugs, LAB2, "bert", 3, "graded",
           "delta inside AdaGrad's root, Adam without bias correction (AdamW inherits it), "
           "clipping returns the norm after clipping: only RMSProp passes",
           bugs=("adagrad_eps_inside", "adam_no_bias_correction", "clip_norm_after")),
    Sample("fay_lab2.ipynb", lab2_with(adagrad=answers.FLOAT32_ADAGRAD), LAB2, "fay", 13, "graded",
           "AdaGrad accumulates in float32: diagnosed as float32 accumulation", bugs=("float32",)),
    Sample("ian_lab3.ipynb", lab3_with(benchmark=answers.INVENTED_ROWS, train_softmax=answers.SKLEARN_SOFTMAX),
           LAB3, "ian", 7, "graded", "invented benchmark rows (the benchmark and the figure of them fail) and the "
           "softmax fitted with scikit-learn instead of Theano (Part B2 fails)", flagged=True,
           fails=("test_benchmark", "test_benchmark_rerun", "test_curves", "test_theano_training")),
    Sample("stella_lab3.ipynb", lab3_with(curves=answers.STRAIGHT_LINES, adam_updates=answers.NUMPY_IN_DISGUISE),
           LAB3, "stella", 7, "graded", "labelled straight lines instead of the validation curves (A3 fails); "
           "adam_updates runs nnopt's numpy Adam in a Python op, not symbolic (B1 and B2 fail)",
           fails=("test_curves", "test_adam_updates", "test_adam_updates_more", "test_theano_training")),
    Sample("bram_lab3.ipynb", lab3_with(adam_updates=attacks.SGD_UPDATES, train_softmax=attacks.PICKLED_ADAM_SOFTMAX),
           LAB3, "bram", 8, "graded", "plain SGD as adam_updates (B1 fails); the softmax trained by nnopt's numpy "
           "Adam reached as np.lib.format.pickle.loads(b'cnnopt\\nAdam\\n.') (B2 must fail)",
           fails=("test_adam_updates", "test_adam_updates_more", "test_theano_training"), flagged=True),
    Sample("cora_lab3.ipynb", lab3_with(adam_updates=attacks.SGD_UPDATES,
                                        train_softmax=attacks.SYS_MODULES_ADAM_SOFTMAX),
           LAB3, "cora", 8, "graded", "plain SGD as adam_updates (B1 fails); the softmax trained by nnopt's numpy "
           "Adam reached as np.sys.modules['nnopt'].Adam (B2 must fail)",
           fails=("test_adam_updates", "test_adam_updates_more", "test_theano_training"), flagged=True),
    Sample("dina_lab3.ipynb", lab3_with(train_softmax=attacks.NUMPY_INLINE_SOFTMAX), LAB3, "dina", 12, "graded",
           "the softmax trained by a numpy Adam written inline; the compiled Theano function is never called "
           "(B2 fails: the data-flow rule wants the compiled function called in the loop and W.get_value(), "
           "b.get_value() returned)", fails=("test_theano_training",)),
    Sample("eli_lab3.ipynb", lab3_with(train_softmax=attacks.CALLED_NUMPY_RETURNED), LAB3, "eli", 12, "graded",
           "calls a compiled Theano step (of a stub cost) in the loop but returns the arrays a numpy Adam trained "
           "beside it (B2 fails: W.get_value(), b.get_value() must be returned)", fails=("test_theano_training",)),
    Sample("nora_lab3.ipynb", lab3_with(train_softmax=attacks.BORROWED_STORAGE), LAB3, "nora", 12, "graded",
           "a stub Theano step called in the loop; the numpy-trained values written into W's storage through "
           "W.get_value(borrow=True)[:] = Wv, then W.get_value() returned (B2 fails: borrow= refused)",
           fails=("test_theano_training",)),
    Sample("otto_lab3.ipynb", lab3_with(train_softmax=attacks.SECOND_FUNCTION), LAB3, "otto", 12, "graded",
           "a stub Theano step called in the loop; the numpy-trained values copied into W, b by a second "
           "theano.function(updates=[(W, T.constant(Wv)), ...]) (B2 fails: every compiled function must take its "
           "updates from adam_updates)", fails=("test_theano_training",)),
    Sample("pia_lab3.ipynb", lab3_with(train_softmax=attacks.STEERED_SOFTMAX), LAB3, "pia", 12, "graded",
           "the honest adam_updates steered by a cost T.sum(W * G) + T.sum(b * g) whose extra inputs G, g get the "
           "cross-entropy gradient numpy computed: the Theano Adam lands on the reference without Theano computing "
           "the model (B2 fails: the step's inputs must be [X, y], fed only with the minibatches, and the cost a "
           "function of X, y, W, b)", fails=("test_theano_training",)),
    Sample("fiona_lab1.ipynb", flooding_tests, LAB1, "fiona", 14, "graded",
           "honest answers whose Momentum prints 24 kB per step: over 1 MiB inside the momentum test cells, "
           "around the records the output caps must keep"),
    Sample("milo_lab1.ipynb", many_cells, LAB1, "milo", 0, "not a notebook",
           "the honest lab plus 3000 empty cells: refused at intake (30 000 cells took minutes of feedback "
           "generation outside the sandbox and failed)"),
    Sample("zed_lab1.ipynb", attacks.DEEP_JSON, LAB1, "zed", 0, "not a notebook", "JSON nested 100 000 deep"),
    Sample("forge_lab1.ipynb", forged_test_cell, LAB1, "forge", 0, "grading error",
           "an extra cell claiming test_sgd_constant's grade_id (50 points): nbgrader "
           "refuses the notebook, nothing is credited", flagged=True),
    # Lab 4 (Beyond Adam)
    Sample("alice_lab4_beyond_adam.ipynb", full(LAB4), LAB4, "alice", 11, "graded", "full marks"),
    Sample("leo_lab4.ipynb", lambda: released(LAB4), LAB4, "leo", 0, "graded", "the released lab, untouched"),
    Sample("bob/lab4_beyond_adam.ipynb", lab4_partial, LAB4, "bob", 7, "graded",
           "Lion (4) and Newton-Schulz (3) right; Muon not done"),
    Sample("dave_lab4.ipynb", lab4_with(lion=lab4.DELEGATING_LION, newton_schulz=lab4.DELEGATING_NEWTON_SCHULZ,
                                        muon=lab4.DELEGATING_MUON), LAB4, "dave", 0, "graded",
           "delegates to nnopt (nnopt.Lion through a saved Optimizer.step, nnopt's newton_schulz under "
           "another name, a subclass of nnopt.Muon): withheld at autograde", flagged=True, fails=LAB4_TESTS),
    Sample("tom_lab4.ipynb", lab4_with(newton_schulz=lab4.TORCH_NEWTON_SCHULZ, muon=lab4.TORCH_MUON), LAB4, "tom",
           4, "graded", "Newton-Schulz and Muon copied from torch.optim.Muon (torch is absent at autograde); "
           "Lion honest (4)", flagged=True, fails=LAB4_TESTS[3:]),
    Sample("vince_lab4.ipynb", lab4_with(lion=lab4.PATCHED_HELPERS, newton_schulz=lab4.STUB_NEWTON_SCHULZ,
                                         muon=lab4.STUB_MUON), LAB4, "vince", 0, "graded",
           "stub answers; the check helpers (grading, checks, matrices) and np.allclose monkeypatched",
           flagged=True, fails=LAB4_TESTS),
    Sample("bea_lab4.ipynb", lab4_with(lion=lab4.SWAPPED_BETAS_LION, muon=lab4.UNSCALED_MUON), LAB4, "bea", 6,
           "graded", "Lion with beta1 and beta2 swapped (all Lion tests fail), Newton-Schulz right (3), Muon "
           "without the shape scale: the tall matrices fail, the wide ones pass (3)",
           bugs=("lion_betas_swapped", "muon_no_scale"),
           fails=("test_lion", "test_lion_decay", "test_lion_momentum", "test_muon_shapes")),
    Sample("cal_lab4.ipynb", lab4_with(lion=lab4.COUPLED_DECAY_LION, newton_schulz=lab4.UNNORMALISED_NS), LAB4,
           "cal", 1, "graded", "Lion with coupled weight decay (only the test without decay passes, 1), "
           "Newton-Schulz without the normalisation (Muon, which uses it, fails too)",
           bugs=("lion_coupled_decay", "ns_no_normalisation"), fails=("test_lion", "test_lion_decay") + LAB4_TESTS[3:]),
    Sample("olga_lab4.ipynb", lab4_with(lion=lab4.IN_PLACE_LION, newton_schulz=lab4.RIGHT_GRAM_NS,
                                        muon=lab4.LERP_MUON), LAB4, "olga", 11, "graded",
           "correct but different: Lion in place with a lerp, Newton-Schulz with X^T X on the right "
           "and no transpose, Muon with lerps and the scale as sqrt(max(rows, cols)/cols)"),
]


def build(target: Path = HERE / "samples") -> list[Path]:
    """Write every sample into ``target`` (emptied first); return the paths."""
    if target.exists():
        shutil.rmtree(target)
    paths = []
    for s in SAMPLES:
        path = target / s.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(s.make, bytes):
            path.write_bytes(s.make)
        else:
            nb = s.make()
            for cell in nb.cells:                 # as if run by the student: no stale outputs
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            nbformat.write(copy.deepcopy(nb), str(path))
        paths.append(path)
    return paths


def expected() -> dict[str, dict[str, object]]:
    """``"<lab>/<student>" -> {auto_score, status, why, flagged, bugs, fails}`` for the tests."""
    return {f"{s.lab}/{s.student}": {"auto_score": s.auto_score, "status": s.status, "why": s.why,
                                     "flagged": s.flagged, "bugs": list(s.bugs), "fails": list(s.fails)}
            for s in SAMPLES}


if __name__ == "__main__":
    for p in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "samples"):
        print(p)
    print(json.dumps(expected(), indent=1))
