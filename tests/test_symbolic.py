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


@pytest.mark.parametrize("patch", ["C = type(theano.shared(0.0))\nC.get_value = lambda self: None",
                                   "n = np\nn.asarray = lambda a, *k, **kw: a", "t = T\nt.sqrt = abs",
                                   "import nnopt.data as d\nd.check_xy = lambda X, y: (X, y)",
                                   "from theano.compile.sharedvalue import SharedVariable\nSharedVariable.get_value = len",
                                   "type(step).__call__ = len"])
def test_a_notebook_that_patches_theanos_shared_variables_or_functions_is_not_trusted(patch):
    cells = ["from nnopt.theano_compat import theano, T", SOLUTION["adam_updates"], SOLUTION["train_softmax"], patch]
    _, problems = sourcecheck.notebook_sources(cells, ["adam_updates", "train_softmax_theano"])
    assert any("cell 3 assigns ." in p and "cannot be trusted" in p for p in problems), problems


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


# ----------------------------------------------------------------- B2's data flow (issue 16, sample dina)
#: An honest train_softmax_theano; ``Wv, bv`` stand for arrays a cheat would train with numpy.
HONEST_TRAIN = '''def train_softmax_theano(data, epochs=20, batch_size=64, lr=0.01, seed=0):
    n_features, n_classes = data.train.X.shape[1], data.n_classes
    Wv, bv = np.zeros((n_features, n_classes)), np.zeros(n_classes)
    W = theano.shared(np.zeros((n_features, n_classes)), name="W")
    b = theano.shared(np.zeros(n_classes), name="b")
    X, y = T.dmatrix("X"), T.ivector("y")
    p = T.nnet.softmax(T.dot(X, W) + b)
    cost = -T.mean(T.log(p[T.arange(y.shape[0]), y]))
    step = theano.function([X, y], cost, updates=adam_updates(cost, [W, b], lr=lr))
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for X_b, y_b in minibatches(data.train.X, data.train.y, batch_size, seed=rng):
            step(X_b.astype("float64"), y_b.astype("int32"))
    return W.get_value(), b.get_value()
'''
COMPILE = '    step = theano.function([X, y], cost, updates=adam_updates(cost, [W, b], lr=lr))\n'
CALL = '            step(X_b.astype("float64"), y_b.astype("int32"))\n'
RETURN = '    return W.get_value(), b.get_value()\n'
W_INIT = '    W = theano.shared(np.zeros((n_features, n_classes)), name="W")\n'
LOOP = '    for _ in range(epochs):\n'


def _train(*edits: tuple[str, str]) -> str:
    """HONEST_TRAIN with each ``(line, replacement)`` applied (the line must be there)."""
    source = HONEST_TRAIN
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new)
    return source


@pytest.mark.parametrize("source", [
    HONEST_TRAIN,
    SOLUTION["train_softmax"],
    _train((RETURN, "    Wf = W.get_value()\n    bf = b.get_value()\n    return Wf, bf\n")),
    _train((RETURN, "    return [W.get_value(), b.get_value()]\n")),
    _train((LOOP, "    epoch = 0\n    while epoch < epochs:\n        epoch += 1\n"), (RETURN, RETURN)),
    _train((CALL, '            losses.append(step(X_b.astype("float64"), y_b.astype("int32")))\n'),
           (LOOP, "    losses = []\n" + LOOP)),
    _train((CALL, '            loss = step(X_b, y_b.astype("int32"))\n')),
    _train((COMPILE, "    params = [W, b]\n    updates = adam_updates(cost, params, lr)\n"
                     "    step = theano.function(inputs=[X, y], outputs=cost, updates=updates, "
                     "allow_input_downcast=True)\n")),
    _train((W_INIT + '    b = theano.shared(np.zeros(n_classes), name="b")\n',
            '    W, b = theano.shared(np.zeros((n_features, n_classes)), "W"), theano.shared(np.zeros_like(bv))\n')),
], ids=["template", "solution", "names-bound-after-training", "list", "while", "losses-list", "loss-ignored",
        "updates-and-params-names", "tuple-assignment"])
def test_honest_training_data_flows_are_accepted(source):
    assert sourcecheck.problems(source, "train_softmax_theano") == []


CALLED = "inside its training loop"
RETURNS = "must return W.get_value(), b.get_value() of the shared variables trained by the compiled function"


@pytest.mark.parametrize("source, needle", [
    (sample_answers_attacks.NUMPY_INLINE_SOFTMAX, CALLED),
    (sample_answers_attacks.NUMPY_INLINE_SOFTMAX, RETURNS + " (line 30)"),
    (_train((CALL, "            pass\n")), CALLED),
    (_train((CALL, "            if False:\n    " + CALL)), None),           # dead call: W stays zeros (numbers)
    (_train((RETURN, "    return Wv, bv\n")), RETURNS),
    (_train((RETURN, "    return (W.get_value(), b.get_value()) if False else (Wv, bv)\n")), RETURNS),
    (_train((RETURN, "    return W.get_value() * 0 + Wv, b.get_value() * 0 + bv\n")), RETURNS),
    (_train((RETURN, "    return np.asarray(W.get_value()), b.get_value()\n")), RETURNS),
    (_train((RETURN, "    W.set_value(Wv)\n" + RETURN)), "uses .set_value"),
    (_train((RETURN, "    W.get_value(borrow=True)[:] = Wv\n" + RETURN)), "passes borrow="),
    (_train((RETURN, "    W.get_value(True)[:] = Wv\n" + RETURN)), "get_value with arguments"),
    (_train((RETURN, "    W.container.value = Wv\n" + RETURN)), "uses .container"),
    (_train((RETURN, "    W.container.value = Wv\n" + RETURN)), "assigns the attribute .value"),
    (_train((RETURN, "    W.zero()\n" + RETURN)), "uses .zero"),
    (_train((RETURN, "    W._value_set(Wv)\n" + RETURN)), "uses ._value_set"),
    (_train((W_INIT, W_INIT + "    W.default_update = T.constant(Wv)\n")), "assigns the attribute .default_update"),
    (_train((RETURN, "    W = theano.shared(Wv)\n" + RETURN)), "must create W once"),
    (_train((W_INIT, W_INIT + W_INIT)), "must create W once"),
    (_train((W_INIT, '    W = theano.shared(Wv, name="W")\n')), "theano.shared(np.zeros(...)"),
    (_train((W_INIT, '    W = theano.shared(np.zeros((64, 10)) + Wv)\n')), "theano.shared(np.zeros(...)"),
    (_train((RETURN, "    V = theano.shared(Wv)\n    return V.get_value(), b.get_value()\n")), RETURNS),
    (_train((RETURN, "    W2 = W\n    return W2.get_value(), b.get_value()\n")), RETURNS),
    (_train((RETURN, "    Wf = W.get_value()\n    Wf[:] = Wv\n    return Wf, b.get_value()\n")), RETURNS),
    (_train((RETURN, "    Wf = W.get_value()\n    np.copyto(Wf, Wv)\n    return Wf, b.get_value()\n")), RETURNS),
    (_train((RETURN, "    Wf = W.get_value()\n    Wf += Wv\n    return Wf, b.get_value()\n")), RETURNS),
    (_train((RETURN, "    copy = theano.function([], [], updates=[(W, T.constant(Wv)), (b, T.constant(bv))])\n"
                     "    copy()\n" + RETURN)), "must take its updates from the one adam_updates(...) call"),
    (_train((COMPILE, COMPILE.replace("updates=", "givens={X: X}, updates="))), "passes givens="),
    (_train((COMPILE, COMPILE.replace("updates=", "mode='FAST_COMPILE', updates="))),
     "may pass theano.function only inputs, outputs"),
    (_train((COMPILE, "    compile_ = theano.function\n" + COMPILE.replace("theano.function", "compile_"))),
     "uses .function other than as theano.function(...)"),
    (_train((RETURN, "    step.copy(swap={W: theano.shared(Wv)})\n" + RETURN)), "may only call the compiled function"),
    (_train((COMPILE, "    upd = adam_updates(cost, [W, b], lr=lr)\n    upd.append((W, T.constant(Wv)))\n"
                      + COMPILE.replace("adam_updates(cost, [W, b], lr=lr)", "upd"))),
     "may only pass the result of adam_updates(...) as updates="),
    (_train((COMPILE, COMPILE.replace("adam_updates(cost, [W, b], lr=lr)",
                                      "adam_updates(cost, [W, b], lr=lr) + [(W, T.constant(Wv))]"))),
     "must take its updates from the one adam_updates(...) call"),
    (_train((COMPILE, COMPILE.replace("lr=lr", "lr=0.0"))), "must pass its own parameter lr, unchanged"),
    (_train((LOOP, "    lr = 0.0\n" + LOOP)), "must pass its own parameter lr, unchanged"),
    (_train((COMPILE, COMPILE.replace("lr=lr", "lr=lr, eps=1e30"))), "adam_updates(cost, [W, b], lr=lr) with nothing"),
    (_train((COMPILE, "    params = [W, b]\n    params.append(theano.shared(Wv))\n"
                      + COMPILE.replace("[W, b]", "params"))), "must pass the list of its shared variables"),
    (_train((RETURN, "    def result():\n        return W.get_value(), b.get_value()\n    return result()\n")),
     "defines a function inside itself"),
    (_train((RETURN, "    return (lambda: (Wv, bv))()\n")), "defines a function inside itself"),
    (_train((LOOP, "    if epochs >= 0:\n        return Wv, bv\n" + LOOP)), "in one return statement at the end"),
    (_train((LOOP, "    try:\n        raise ValueError\n    except ValueError:\n        pass\n" + LOOP)),
     "contains a try"),
    (_train((LOOP, "    np = T\n" + LOOP)), "rebinds np"),
    (_train((COMPILE, COMPILE.replace("[X, y]", "[X, theano.In(y)]"))), "uses .In"),
    (_train((RETURN, "    adam_updates(cost, [W, b], lr=lr)\n" + RETURN)), "calling adam_updates once (2 calls)"),
], ids=lambda v: None)
def test_training_data_flows_that_bypass_the_compiled_step_are_refused(source, needle):
    found = "; ".join(sourcecheck.problems(source, "train_softmax_theano"))
    if needle is None:
        assert found == ""          # statically fine; the numbers fail (W, b stay zeros)
    else:
        assert needle in found, found


# ------------------------------------------- what flows into the step: inputs, minibatches, cost (sample pia)
COST_LINE = '    cost = -T.mean(T.log(p[T.arange(y.shape[0]), y]))\n'
RNG = '    rng = np.random.default_rng(seed)\n'
MB = '        for X_b, y_b in minibatches(data.train.X, data.train.y, batch_size, seed=rng):\n'
SIZES = '    n_features, n_classes = data.train.X.shape[1], data.n_classes\n'
INPUTS = "must compile the step with inputs [X, y] and nothing else"
FEED = "must call the compiled step as step(X_b, y_b) inside for X_b, y_b in minibatches(data.train.X, data.train.y"
LOOP_MB = "must loop for X_b, y_b in minibatches(data.train.X, data.train.y, batch_size, seed=rng) with rng = np.random"
COSTS = "the cost train_softmax_theano gives adam_updates may only be computed from X, y, W, b, T.* and numbers, not"


@pytest.mark.parametrize("source", [
    _train((CALL, '            X_b = X_b.astype(np.float64)\n            step(X_b, y_b.astype("int32"))\n')),
    _train((SIZES, SIZES + "    k = data.n_classes\n"), (COST_LINE, COST_LINE.replace("))\n", ")) * k / k\n"))),
    _train((COST_LINE, "    cost = T.nnet.categorical_crossentropy(p, y).mean()\n"),
           (CALL, CALL.replace('X_b.astype("float64")', "X_b"))),
    _train(("T.dmatrix", "T.matrix"), (COMPILE, COMPILE.replace("cost, updates", "[cost], updates"))),
    _train((COMPILE, COMPILE.replace("[X, y], cost, ", "inputs=[X, y], "))),
    _train((MB, MB.replace("seed=rng", "rng"))),
], ids=["recast-batch", "size-in-cost", "categorical-crossentropy", "T.matrix-outputs-list", "no-outputs",
        "positional-rng"])
def test_honest_inputs_minibatches_and_costs_are_accepted(source):
    assert sourcecheck.problems(source, "train_softmax_theano") == []


@pytest.mark.parametrize("source, needle", [
    (sample_answers_attacks.STEERED_SOFTMAX, INPUTS),
    (sample_answers_attacks.STEERED_SOFTMAX, FEED),
    (_train((COST_LINE, COST_LINE.replace("))\n", ")) + T.sum(W * Wv)\n"))), COSTS + " np.zeros (line 3)"),
    (_train((COST_LINE, "    V = theano.shared(Wv)\n" + COST_LINE.replace("))\n", ")) + T.sum(W * V)\n"))),
     COSTS + " theano.shared"),
    (_train((COST_LINE, COST_LINE.replace("))\n", ")) + T.sum(W) * data.train.X[0, 0]\n"))),
     "may only use data in minibatches(data.train.X"),
    (_train((COST_LINE, COST_LINE.replace("))\n", ")) + T.sum(W * np.ones(10))\n"))), COSTS + " np.ones"),
    (_train((COST_LINE, COST_LINE.replace("))\n", ")) + epochs * 0\n"))), COSTS + " epochs"),
    (_train((CALL, "            step(Wv, y_b.astype('int32'))\n")), FEED),
    (_train((CALL, "            step(y_b, X_b)\n")), FEED),
    (_train((CALL, CALL + "            step(data.train.X, data.train.y)\n")), FEED),
    (_train((MB, MB.replace("data.train.X, data.train.y", "data.val.X, data.val.y"))), LOOP_MB),
    (_train((MB, MB.replace("data.train.X", "Wv"))), LOOP_MB),
    (_train((MB, MB.replace("seed=rng", "seed=rng, shuffle=False"))), LOOP_MB),
    (_train((RNG, RNG + "    rng = np.random.default_rng(1)\n")), LOOP_MB),
    (_train((RNG, "    rng = np.random.default_rng(seed + 1)\n")), LOOP_MB),
    (_train((MB, MB.replace("seed=rng", "seed=seed"))), LOOP_MB),
    (_train((RNG, RNG + "    rng.random()\n")), LOOP_MB),
    (_train((LOOP, "    seed = 0\n" + LOOP)), "must keep its parameters data, batch_size and seed"),
    (_train(('T.dmatrix("X")', "theano.shared(Wv)")), INPUTS),
    (_train(('T.dmatrix("X")', "T.dmatrix(Wv)")), INPUTS),
    (_train((COMPILE, COMPILE.replace("[X, y]", "[X, y, T.dmatrix()]"))), INPUTS),
    (_train((COMPILE, COMPILE.replace("[X, y], cost", "[X, y], [X]"))), "may only output the cost"),
    (_train((CALL, CALL + "            Wv = Wv + X_b.sum()\n")),
     "may only pass the minibatch X_b to the compiled step"),
    (_train((CALL, "            y_b = y_b[::-1]\n" + CALL)), "may only pass the minibatch y_b to the compiled step"),
    (_train((SIZES, SIZES + "    d = data\n")), "may only use data in minibatches"),
], ids=lambda v: None)
def test_data_flows_into_the_step_other_than_the_true_minibatches_are_refused(source, needle):
    found = "; ".join(sourcecheck.problems(source, "train_softmax_theano"))
    assert needle in found, found


@pytest.mark.parametrize("reader", ["np.loadtxt('digits.csv')", "np.genfromtxt('digits.csv')",
                                    "np.fromfile('X.bin')", "np.lib.format.open_memmap('X.npy')",
                                    "np.memmap('X.bin')", "np.DataSource().open('X.csv')",
                                    "np.lib._datasource.open('X.csv')", "[gen.gi_frame.f_back.f_back.f_locals['data'] "
                                    "for gen in [(i for i in [0])]]"])
def test_adam_updates_cannot_read_the_data_set_while_the_step_is_built(reader):
    source = (f"def adam_updates(cost, params, lr=1e-3):\n    g = T.grad(cost, params)\n    X = {reader}\n"
              f"    return [(p, p - lr * d) for p, d in zip(params, g)]\n")
    assert sourcecheck.problems(source, "adam_updates"), source


def test_another_cells_minibatches_is_not_trusted():
    cells = ["from nnopt.data import minibatches\nfrom nnopt.theano_compat import theano, T", SOLUTION["adam_updates"],
             SOLUTION["train_softmax"], "spy = minibatches\ndef minibatches(*a, **k):\n    return spy(*a, **k)\n"]
    _, problems = sourcecheck.notebook_sources(cells, ["adam_updates", "train_softmax_theano"])
    assert any("the name minibatches is rebound in cells [3]" in p for p in problems), problems


@pytest.mark.parametrize("reach, needle", [
    ("np.sctypeDict.get('W')", "reaches the mutable dict np.sctypeDict"),
    ("theano.shared.constructors[-1]", "reaches the mutable list theano.shared.constructors"),
    ("np.stash", "reaches stash, which numpy does not have,"),
    ("T.nnet.stash", "reaches stash, which theano.tensor.nnet does not have,"),
])
def test_adam_updates_cannot_pick_up_what_another_cell_left_in_numpy_or_theano(reach, needle):
    source = (f"def adam_updates(cost, params, lr=1e-3):\n    g = T.grad(cost, params)\n    V = {reach}\n"
              f"    return [(p, V) for p in params]\n")
    found = "; ".join(sourcecheck.problems(source, "adam_updates"))
    assert needle in found, found
