'''Answer cells of Lab 4's sample submissions ("Beyond Adam"): cheats, classic bugs and
correct-but-different answers, each written as a student would (see ``sample_answers.py``
for Labs 1-3). Grade ids: ``lion``, ``newton_schulz``, ``muon``.
'''

# ----------------------------------------------------------------- cheats
#: Delegation: Lion wraps nnopt.Lion through a saved Optimizer.step, Newton-Schulz is nnopt's
#: function imported under another name, Muon inherits nnopt.Muon.
DELEGATING_LION = '''import nnopt
from nnopt.optimizers_matrix import newton_schulz as _reference_ns

_STEP = nnopt.Optimizer.step          # saved before any check can switch it off

class Lion:
    """Wraps nnopt.Lion."""
    def __init__(self, lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0):
        self.opt = nnopt.Lion(lr, beta1, beta2, weight_decay)

    def step(self, theta, grad):
        theta = theta.copy()
        _STEP(self.opt, [theta], [grad])
        return theta
'''
DELEGATING_NEWTON_SCHULZ = '''def newton_schulz(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
    return _reference_ns(G, steps, coefficients, eps)
'''
DELEGATING_MUON = '''class Muon(nnopt.Muon):
    """Inherits the reference and adapts the protocol."""
    def step(self, theta, grad):
        theta = theta.copy()
        _STEP(self, [theta], [grad])
        return theta
'''

#: Copying torch: Muon's orthogonalization and step taken from torch.optim.Muon (float64, its
#: bfloat16 cast undone by running torch's own function on a float64 tensor).
TORCH_NEWTON_SCHULZ = '''import torch
from torch.optim import _muon

def newton_schulz(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
    """torch's own _zeropower_via_newtonschulz, in float64."""
    X = torch.tensor(G, dtype=torch.float64)
    return _muon._zeropower_via_newtonschulz(X, coefficients, steps, eps).double().numpy()
'''
TORCH_MUON = '''class Muon:
    """torch.optim.Muon on one matrix."""
    def __init__(self, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, ns_steps=5):
        self.hp = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, ns_steps=ns_steps)
        self.p, self.opt = None, None

    def step(self, theta, grad):
        if self.opt is None:
            self.p = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))
            self.opt = torch.optim.Muon([self.p], **self.hp)
        self.p.grad = torch.tensor(grad, dtype=torch.float64)
        self.opt.step()
        return self.p.detach().numpy().copy()
'''

#: Stub answers, with the check helpers replaced (vars, setattr, the module's own functions)
#: and np.allclose made always true.
PATCHED_HELPERS = '''import numpy as np
from nnopt import grading
from nnopt.grading import checks, matrices

for module in (grading, checks, matrices):
    for name in [n for n in vars(module) if n.startswith(("check_", "compare_", "run_check"))]:
        setattr(module, name, lambda *args, **kwargs: None)
vars(np)["allclose"] = lambda *args, **kwargs: True

class Lion:
    def __init__(self, lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0):
        self.lr = lr

    def step(self, theta, grad):
        return theta - self.lr * grad
'''
STUB_NEWTON_SCHULZ = '''def newton_schulz(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
    return G
'''
STUB_MUON = '''class Muon:
    def __init__(self, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, ns_steps=5):
        self.lr = lr

    def step(self, theta, grad):
        return theta - self.lr * grad
'''

# ----------------------------------------------------------------- classic bugs
LION = '''class Lion:
    def __init__(self, lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0):
        self.lr, self.beta1, self.beta2, self.weight_decay = lr, beta1, beta2, weight_decay
        self.m = None

    def step(self, theta, grad):
        if self.m is None:
            self.m = np.zeros_like(theta)
{body}
'''
NO_SIGN_LION = LION.format(body='''        c = self.beta1 * self.m + (1 - self.beta1) * grad
        self.m = self.beta2 * self.m + (1 - self.beta2) * grad
        return theta - self.lr * (c + self.weight_decay * theta)''')
SWAPPED_BETAS_LION = LION.format(body='''        c = self.beta2 * self.m + (1 - self.beta2) * grad
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        return theta - self.lr * (np.sign(c) + self.weight_decay * theta)''')
COUPLED_DECAY_LION = LION.format(body='''        grad = grad + self.weight_decay * theta          # weight decay as L2
        c = self.beta1 * self.m + (1 - self.beta1) * grad
        self.m = self.beta2 * self.m + (1 - self.beta2) * grad
        return theta - self.lr * np.sign(c)''')
MOMENTUM_FIRST_LION = LION.format(body='''        self.m = self.beta2 * self.m + (1 - self.beta2) * grad
        c = self.beta1 * self.m + (1 - self.beta1) * grad
        return theta - self.lr * (np.sign(c) + self.weight_decay * theta)''')

NS = '''def newton_schulz(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
    a, b, c = coefficients
{body}
'''
UNNORMALISED_NS = NS.format(body='''    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X''')
CUBIC_NS = NS.format(body='''    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / max(np.linalg.norm(X), eps)
    for _ in range(steps):
        X = 1.5 * X - 0.5 * X @ X.T @ X
    return X.T if tall else X''')
NO_TRANSPOSE_BACK_NS = NS.format(body='''    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / max(np.linalg.norm(X), eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X''')

MUON = '''class Muon:
    def __init__(self, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, ns_steps=5):
        self.lr, self.mu, self.nesterov, self.wd, self.k = lr, momentum, nesterov, weight_decay, ns_steps
        self.m = None

    def step(self, theta, grad):
        if self.m is None:
            self.m = np.zeros_like(theta)
{body}
'''
UNSCALED_MUON = MUON.format(body='''        self.m = self.mu * self.m + (1 - self.mu) * grad
        u = (1 - self.mu) * grad + self.mu * self.m if self.nesterov else self.m
        return theta * (1 - self.lr * self.wd) - self.lr * newton_schulz(u, self.k)''')
NO_NESTEROV_MUON = MUON.format(body='''        self.m = self.mu * self.m + (1 - self.mu) * grad
        scale = max(1.0, theta.shape[0] / theta.shape[1]) ** 0.5
        return theta * (1 - self.lr * self.wd) - self.lr * scale * newton_schulz(self.m, self.k)''')
NO_ORTHOGONALIZATION_MUON = MUON.format(body='''        self.m = self.mu * self.m + (1 - self.mu) * grad
        u = (1 - self.mu) * grad + self.mu * self.m if self.nesterov else self.m
        scale = max(1.0, theta.shape[0] / theta.shape[1]) ** 0.5
        return theta * (1 - self.lr * self.wd) - self.lr * scale * u''')
COUPLED_DECAY_MUON = MUON.format(body='''        grad = grad + self.wd * theta                   # weight decay as L2
        self.m = self.mu * self.m + (1 - self.mu) * grad
        u = (1 - self.mu) * grad + self.mu * self.m if self.nesterov else self.m
        scale = max(1.0, theta.shape[0] / theta.shape[1]) ** 0.5
        return theta - self.lr * scale * newton_schulz(u, self.k)''')

# ----------------------------------------------------------------- correct, differently
#: Lion in place with the interpolation written as m + (1 - beta1)(g - m) and the decay folded.
IN_PLACE_LION = LION.format(body='''        c = self.m + (1 - self.beta1) * (grad - self.m)
        theta = theta.copy()
        theta *= 1 - self.lr * self.weight_decay
        theta -= self.lr * np.sign(c)
        self.m += (1 - self.beta2) * (grad - self.m)
        return theta''')
#: Newton-Schulz without the transpose (X^T X on the right for tall matrices) and Horner form.
RIGHT_GRAM_NS = NS.format(body='''    X = G / max(np.sqrt(np.sum(G * G)), eps)
    for _ in range(steps):
        if X.shape[0] > X.shape[1]:
            B = X.T @ X
            X = X @ (a * np.eye(B.shape[0]) + B @ (b * np.eye(B.shape[0]) + c * B))
        else:
            A = X @ X.T
            X = (a * np.eye(A.shape[0]) + A @ (b * np.eye(A.shape[0]) + c * A)) @ X
    return X''')
#: Muon with the Nesterov vector written as lerp(m, g) on the new m, scale as a sqrt of a max.
LERP_MUON = MUON.format(body='''        self.m += (1 - self.mu) * (grad - self.m)
        u = self.m + (1 - self.mu) * (grad - self.m) if self.nesterov else self.m
        rows, cols = theta.shape
        step = newton_schulz(u, self.k) * (self.lr * np.sqrt(max(rows, cols) / cols))
        return theta - self.lr * self.wd * theta - step''')
