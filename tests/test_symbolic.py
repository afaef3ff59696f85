"""Lab 3, Part B: the Theano answers are checked symbolically (their source, read outside the
kernel) and numerically (points and W, b the grader recomputes)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autograder import make_samples, sample_answers, sample_answers_attacks
from nnopt.grading import sourcecheck

LAB3 = make_samples.LAB3
SOLUTION = make_samples.solution_code(LAB3)


def test_the_solutions_theano_answers_are_accepted():
    assert sourcecheck.problems(SOLUTION["adam_updates"], "adam_updates") == []
    assert sourcecheck.problems(SOLUTION["train_softmax"], "train_softmax_theano") == []


@pytest.mark.parametrize("name, source, needle", [
    ("adam_updates", sample_answers.NUMPY_IN_DISGUISE, "uses as_op, nnopt from outside itself"),
    ("adam_updates", sample_answers.NUMPY_IN_DISGUISE, "an import statement"),
    ("adam_updates", "def adam_updates(cost, params, lr=0.1):\n    return [(p, p - lr) for p in params]\n",
     "must compute the gradients symbolically with T.grad"),
    ("adam_updates", "def adam_updates(cost, params):\n    g = T.grad(cost, params)\n"
                     "    f = getattr(T, 'sq' + 'rt')\n    return [(p, p - f(x)) for p, x in zip(params, g)]\n",
     "getattr"),
    ("adam_updates", "def adam_updates(cost, params):\n    g = T.grad(cost, params)\n"
                     "    return [(p, p - g[0].__class__) for p in params]\n", ".__class__"),
    ("adam_updates", "def adam_updates(cost, params):\n    g = T.grad(cost, params)\n"
                     "    return theano.compile.ops.as_op(g)\n", ".compile"),
    ("train_softmax_theano", sample_answers.SKLEARN_SOFTMAX, "uses LogisticRegression from outside itself"),
    ("train_softmax_theano", sample_answers.SKLEARN_SOFTMAX, "theano.function(..., updates=adam_updates(...))"),
    ("train_softmax_theano", sample_answers_attacks.PICKLED_ADAM_SOFTMAX,
     "reaches the module pickle through np.lib.format.pickle.loads"),
    ("train_softmax_theano", sample_answers_attacks.SYS_MODULES_ADAM_SOFTMAX, "reaches the module sys through np.sys"),
    ("train_softmax_theano", "def train_softmax_theano(d):\n    m = np.lib.npyio\n    return m.os.getcwd()\n",
     "uses .os"),
    ("adam_updates", "def adam_updates(cost, params):\n    g = T.grad(cost, params)\n"
                     "    return np.testing._private.utils.platform\n", "reaches the module platform"),
    ("train_softmax_theano", "x = 1\n", "no `def train_softmax_theano"),
    ("train_softmax_theano", "def train_softmax_theano(:\n", "does not parse"),
])
def test_non_symbolic_answers_are_refused_with_the_reason(name, source, needle):
    found = "; ".join(sourcecheck.problems(source, name))
    assert needle in found, found


def test_the_notebook_must_define_an_answer_once_and_leave_theano_alone():
    cells = ["from nnopt.theano_compat import theano, T", SOLUTION["adam_updates"], SOLUTION["train_softmax"]]
    sources, problems = sourcecheck.notebook_sources(cells, ["adam_updates", "train_softmax_theano"])
    assert problems == [] and "def adam_updates" in sources["adam_updates"]
    cells += ["adam_updates = lambda cost, params, **hp: []", "T = fake_module"]
    sources, problems = sourcecheck.notebook_sources(cells, ["adam_updates", "train_softmax_theano"])
    assert "adam_updates" not in sources
    assert any("defined in 2 cells" in p for p in problems) and any("name T is rebound" in p for p in problems)


THEANO_SCRIPT = r'''
import numpy as np
from nnopt import grading
from nnopt.data import minibatches
from nnopt.theano_compat import theano, T
SOLUTION_ADAM
SOLUTION_TRAIN
grading.check_theano_updates(adam_updates, "adam", {"lr": 0.05}, surface="rosenbrock", steps=20)
grading.check_softmax_theano(train_softmax_theano, epochs=2, batch_size=64, lr=0.01, seed=1, min_val_acc=0.8)

def no_bias(cost, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    updates = []
    for p, g in zip(params, T.grad(cost, params)):
        s, r = theano.shared(np.zeros_like(p.get_value())), theano.shared(np.zeros_like(p.get_value()))
        s1, r1 = beta1 * s + (1 - beta1) * g, beta2 * r + (1 - beta2) * g * g
        updates += [(s, s1), (r, r1), (p, p - lr * s1 / T.sqrt(r1 + eps))]
    return updates

ok, msg = grading.compare_theano_updates(no_bias, "adam", {"lr": 0.1}, surface="quadratic", steps=5)
assert not ok and "step 1 differs" in msg, msg

def by_hand(cost, params, lr=1e-3, **hp):
    return [(p, p - lr * p) for p in params]          # no T.grad: a hand-made "gradient"

ok, msg = grading.compare_theano_updates(by_hand, "adam", {"lr": 0.1}, surface="quadratic", steps=5)
assert not ok and "T.grad" in msg, msg
print("THEANO OK")
'''


@pytest.mark.slow
def test_theano_answers_are_checked_against_the_graders_references(tmp_path):
    env = {**os.environ, "THEANO_FLAGS": "cxx="}      # Python ops: no minute-long C compile
    script = tmp_path / "student.py"                  # a file, so the answers' source can be read
    script.write_text(THEANO_SCRIPT.replace("SOLUTION_ADAM", SOLUTION["adam_updates"]).replace(
        "SOLUTION_TRAIN", SOLUTION["train_softmax"]))
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "THEANO OK" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    assert out.stderr == "", "Theano must not write to stderr (nbgrader scores it 0)"
