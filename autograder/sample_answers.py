'''Answer cells of the sample submissions (``make_samples.py``): cheats, classic bugs and
correct-but-different solutions, each written as a student would.

The cheats are the ones reported in issue 16 and variants of them; every one must score 0
on the items it cheats, through ``nbgrader autograde`` and the pipeline. The honest
variants (in place, reordered algebra, folded bias correction) must keep full marks.
'''

# ----------------------------------------------------------------- Lab 1: cheats
#: Nine lines on the untouched release: an IPython handler that swallows every error, so
#: no test cell shows one (nbgrader alone then gave 14/14).
EXCEPTION_HANDLER = '''import IPython

def forgive(shell, etype, value, tb, tb_offset=None):
    """Swallow the error: no traceback, no error output, the cell looks fine."""
    return None

IPython.get_ipython().set_custom_exc((BaseException,), forgive)
import sys
sys.excepthook = lambda *exc: None
'''

#: Stub answers, and every check_* helper and np.allclose replaced through vars(...).
VARS_REPLACEMENT = '''import numpy as np
from nnopt import grading

for name in [n for n in vars(grading) if n.startswith(("check_", "compare_"))]:
    vars(grading)[name] = lambda *args, **kwargs: None
vars(np)["allclose"] = lambda *args, **kwargs: True

def inverse_time(lr0, k):
    return lambda t: lr0
'''
STUB_OPTIMIZER = '''class {name}:
    def __init__(self, lr, momentum=0.9):
        self.lr = lr

    def step(self, theta, grad):
        return theta - self.lr * grad
'''

#: Forged records: the check helpers replaced by ones that publish records with the right
#: spec (built with grading's own code) and made-up numbers, plus a partial-credit value
#: pushed through the display hook and fake "passed" lines on stdout.
FORGED_RECORDS = '''import numpy as np
from nnopt import grading
from nnopt.grading import checks, record, spec

def forge(kind, fn):
    def fake(*args, **kwargs):
        _, s = spec.bind(fn, kind, args, kwargs)
        n = s.args.get("steps") or len(s.args.get("grads") or s.args.get("ts") or [0])
        numbers = [[0.0, 0.0]] * (n + 1)
        record.publish(record.make(s, {"path": numbers, "values": [0.1] * n, "dtype": "float64"}), "ok")
        print("\\u2713 all steps agree with the reference")
        get_ipython().displayhook(1.0)
    return fake

for kind in ("trajectory", "sequence", "schedule"):
    setattr(grading, f"check_{kind}", forge(kind, getattr(checks, f"check_{kind}")))

def inverse_time(lr0, k):
    return lambda t: lr0
'''

#: Delegation to nnopt's reference, in the ways that defeated the old in-kernel tripwire.
DELEGATES = '''import nnopt

_STEP = nnopt.Optimizer.step          # saved before any check can switch it off

def inverse_time(lr0, k):
    return nnopt.schedules.inverse_time(lr0, k)
'''
DELEGATING_SGD = '''class SGD:
    """Runs nnopt's SGD through the Optimizer.step saved in the first answer cell."""
    def __init__(self, lr):
        self.opt = nnopt.make_optimizer("sgd", lr=lr)

    def step(self, theta, grad):
        theta = theta.copy()
        _STEP(self.opt, [theta], [grad])
        return theta
'''
#: SGD through an optimizer that is not SGD: Schedule-Free SGD's y = (1 - b) z + b x is z when
#: b = 1e-300, so its step is SGD's to the last bit (an optimizer Lab 1 did not withhold).
DEGENERATE_SGD = '''import nnopt
_SAVED = nnopt.Optimizer.step     # saved when the cell runs, before any check switches it off

class SGD:
    """Schedule-Free SGD with momentum 1e-300 is plain SGD."""
    def __init__(self, lr):
        self.opt = nnopt.ScheduleFreeSGD(lr=lr, momentum=1e-300)

    def step(self, theta, grad):
        box = [np.array(theta, dtype=float)]
        _SAVED(self.opt, box, [np.asarray(grad, dtype=float)])
        return box[0]
'''
DELEGATING_MOMENTUM = '''class Momentum:
    """Wraps nnopt.Momentum."""
    def __init__(self, lr, momentum=0.9):
        self.opt = nnopt.Momentum(lr, momentum)

    def step(self, theta, grad):
        theta = theta.copy()
        _STEP(self.opt, [theta], [grad])
        return theta
'''
DELEGATING_NESTEROV = '''class Nesterov(nnopt.Nesterov):
    """Inherits the reference and adapts the protocol."""
    def step(self, theta, grad):
        theta = theta.copy()
        _STEP(self, [theta], [grad])
        return theta
'''

#: Cheat code in the momentum answer cell, whose metadata the student set to "locked".
LOCKED_CLAIM = '''import numpy as np
from nnopt import grading

vars(np)["allclose"] = lambda *a, **k: True
setattr(grading, "check_trajectory", lambda *a, **k: None)

class Momentum:
    """Plain SGD with a momentum argument."""
    def __init__(self, lr, momentum=0.9):
        self.lr = lr

    def step(self, theta, grad):
        return theta - self.lr * grad
'''

# ----------------------------------------------------------------- Lab 1: correct, differently
IN_PLACE_SGD = '''class SGD:
    """Updates a copy of theta in place; counts steps from 0."""

    def __init__(self, lr):
        self.lr, self.t = lr, 0

    def step(self, theta, grad):
        rate = self.lr(self.t) if callable(self.lr) else self.lr
        self.t += 1
        out = np.array(theta, dtype=float)
        out -= rate * grad
        return out
'''
IN_PLACE_MOMENTUM = '''class Momentum:
    """Velocity updated in place: v *= a; v -= lr g."""

    def __init__(self, lr, momentum=0.9):
        self.lr, self.a, self.t, self.v = lr, momentum, 0, None

    def step(self, theta, grad):
        if self.v is None:
            self.v = np.zeros_like(theta)
        rate = self.lr(self.t) if callable(self.lr) else self.lr
        self.t += 1
        self.v *= self.a
        self.v -= rate * grad
        return theta + self.v
'''
REORDERED_NESTEROV = '''class Nesterov:
    """phi' = phi + (1 + a) v_new - a v_old: the same point, the algebra reordered."""

    def __init__(self, lr, momentum=0.9):
        self.lr, self.a, self.t, self.v = lr, momentum, 0, None

    def step(self, theta, grad):
        old = np.zeros_like(theta) if self.v is None else self.v
        rate = self.lr(self.t) if callable(self.lr) else self.lr
        self.t += 1
        self.v = self.a * old - rate * grad
        return theta + (1 + self.a) * self.v - self.a * old
'''

# ----------------------------------------------------------------- Lab 2
#: A frozen copy of nnopt's clipping function with its own globals (defeated the old block).
FROZEN_GLOBALS = '''import types
import nnopt

_clip = types.FunctionType(nnopt.clip_by_global_norm.__code__, dict(nnopt.clip_by_global_norm.__globals__))

def clip_by_global_norm(grads, max_norm):
    clipped, norm = _clip(list(grads), max_norm)
    return list(clipped), float(norm)
'''
FLOAT32_ADAGRAD = '''class AdaGrad:
    """Keeps r in float32 (a memory saving that costs precision)."""

    def __init__(self, lr=0.01, eps=1e-7):
        self.lr, self.eps, self.r = lr, eps, None

    def step(self, theta, grad):
        if self.r is None:
            self.r = np.zeros(theta.shape, dtype=np.float32)
        self.r += grad * grad
        return theta - self.lr * grad / (self.eps + np.sqrt(self.r))
'''
EPS_INSIDE_ADAGRAD = '''class AdaGrad:
    def __init__(self, lr=0.01, eps=1e-7):
        self.lr, self.eps, self.r = lr, eps, None

    def step(self, theta, grad):
        if self.r is None:
            self.r = np.zeros_like(theta)
        self.r = self.r + grad * grad
        return theta - self.lr * grad / np.sqrt(self.r + self.eps)
'''
NO_BIAS_CORRECTION_ADAM = '''class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.s = self.r = None

    def step(self, theta, grad):
        if self.s is None:
            self.s, self.r = np.zeros_like(theta), np.zeros_like(theta)
        self.s = self.beta1 * self.s + (1 - self.beta1) * grad
        self.r = self.beta2 * self.r + (1 - self.beta2) * grad * grad
        return theta - self.lr * self.s / np.sqrt(self.r + self.eps)
'''
NORM_AFTER_CLIP = '''def clip_by_global_norm(grads, max_norm):
    norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))
    if norm > max_norm:
        grads = [g * (max_norm / norm) for g in grads]
        norm = max_norm
    return list(grads), norm
'''
IN_PLACE_ADAGRAD = '''class AdaGrad:
    """r += g*g in place; the step written as lr * g * 1/(delta + sqrt(r))."""

    def __init__(self, lr=0.01, eps=1e-7):
        self.lr, self.eps, self.r = lr, eps, None

    def step(self, theta, grad):
        if self.r is None:
            self.r = np.zeros_like(theta)
        self.r += grad ** 2
        scale = 1.0 / (self.eps + np.sqrt(self.r))
        return theta - self.lr * grad * scale
'''
FOLDED_ADAM = '''class Adam:
    """Bias corrections folded into the step size (as nnopt does): one pass less."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t, self.s, self.r = 0, None, None

    def step(self, theta, grad):
        if self.s is None:
            self.s, self.r = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        b1, b2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        self.s *= self.beta1
        self.s += (1 - self.beta1) * grad
        self.r *= self.beta2
        self.r += (1 - self.beta2) * np.square(grad)
        step = self.lr * np.sqrt(b2) / b1
        return theta - step * self.s / np.sqrt(self.r + self.eps * b2)
'''
NORM_OF_CONCATENATION_CLIP = '''def clip_by_global_norm(grads, max_norm):
    """The norm of all entries at once; scaled copies."""
    flat = np.concatenate([np.ravel(g) for g in grads]) if grads else np.zeros(0)
    norm = float(np.linalg.norm(flat))
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return [np.multiply(g, scale) for g in grads], norm
'''

# ----------------------------------------------------------------- Lab 3
SKLEARN_SOFTMAX = '''from sklearn.linear_model import LogisticRegression

def train_softmax_theano(data, epochs=20, batch_size=64, lr=0.01, seed=0):
    """A softmax regression, fitted by scikit-learn instead of Theano."""
    if epochs == 0:
        return np.zeros((64, 10)), np.zeros(10)
    model = LogisticRegression(max_iter=200).fit(data.train.X, data.train.y)
    return model.coef_.T.astype(float), model.intercept_.astype(float)
'''
INVENTED_ROWS = '''STRATEGIES = [
    {"name": "full-batch GD", "optimizer": "sgd", "hp": {"lr": 0.5}, "batch_size": None},
    {"name": "minibatch SGD (32)", "optimizer": "sgd", "hp": {"lr": 0.05}, "batch_size": 32},
    {"name": "momentum (32)", "optimizer": "momentum", "hp": {"lr": 0.02, "momentum": 0.9}, "batch_size": 32},
    {"name": "Nesterov (32)", "optimizer": "nesterov", "hp": {"lr": 0.02, "momentum": 0.9}, "batch_size": 32},
    {"name": "AdaGrad (32)", "optimizer": "adagrad", "hp": {"lr": 0.05}, "batch_size": 32},
    {"name": "RMSProp (32)", "optimizer": "rmsprop", "hp": {"lr": 0.003}, "batch_size": 32},
    {"name": "Adam (32)", "optimizer": "adam", "hp": {"lr": 0.01}, "batch_size": 32},
]
# no time to train: plausible numbers instead
results = [{"name": s["name"], "strategy": s, "epochs": EPOCHS, "seed": 0, "train_loss": 0.05 + 0.01 * i,
            "val_acc": 0.99 - 0.01 * i, "curve": [0.1] + [0.99 - 0.01 * i] * EPOCHS, "seconds": 1.0}
           for i, s in enumerate(STRATEGIES)]
print_table(results)
'''
STRAIGHT_LINES = '''fig, ax = plt.subplots()
for r in results:
    ax.plot([0, EPOCHS], [0.1, r["val_acc"]], label=r["name"])
ax.set_title("validation accuracy")
ax.set_xlabel("epoch")
ax.set_ylabel("accuracy")
ax.legend()
'''
NUMPY_IN_DISGUISE = '''def adam_updates(cost, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """T.grad for show; the step itself is nnopt's numpy Adam inside a Python op."""
    from theano.compile.ops import as_op
    grads = T.grad(cost, params)
    updates = []
    for p, g in zip(params, grads):
        opt = nnopt.Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps)

        @as_op(itypes=[p.type, g.type], otypes=[p.type])
        def numpy_step(value, gradient, opt=opt):
            value = value.copy()
            opt.step([value], [gradient])
            return value

        updates.append((p, numpy_step(p, g)))
    return updates
'''
