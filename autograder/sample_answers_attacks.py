"""Answers of the adversarial samples that target the trusted verdicts (issue 16's static Lab 3
checks), for :mod:`autograder.make_samples`. Each must score 0 on the items it cheats; the
holes still open are listed in autograder/README.md."""
from __future__ import annotations

#: Not Adam at all, only T.grad for the static check: the Theano updates checks must fail.
SGD_UPDATES = '''def adam_updates(cost, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Plain gradient descent; it calls T.grad, so it looks symbolic."""
    grads = T.grad(cost, params)
    return [(p, p - lr * g) for p, g in zip(params, grads)]
'''

_TRAIN = '''def train_softmax_theano(data, epochs=20, batch_size=64, lr=0.01, seed=0):
    """Compiles the Theano step the static check looks for, never calls it, and trains in numpy."""
    n_features, n_classes = data.train.X.shape[1], data.n_classes
    W = theano.shared(np.zeros((n_features, n_classes)), name="W")
    b = theano.shared(np.zeros(n_classes), name="b")
    X, y = T.dmatrix("X"), T.ivector("y")
    p = T.nnet.softmax(T.dot(X, W) + b)
    cost = -T.mean(T.log(p[T.arange(y.shape[0]), y]))
    train_step = theano.function([X, y], cost, updates=adam_updates(cost, [W, b], lr=lr))
    Wv, bv = np.zeros((n_features, n_classes)), np.zeros(n_classes)
{step}
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for X_b, y_b in minibatches(data.train.X, data.train.y, batch_size, seed=rng):
            X_b = X_b.astype(np.float64)
            z = X_b @ Wv + bv
            pr = np.exp(z - z.max(axis=1, keepdims=True))
            pr = pr / pr.sum(axis=1, keepdims=True)
            pr[np.arange(len(y_b)), y_b] -= 1
            d = pr / len(y_b)
            flat = step(np.concatenate([Wv.ravel(), bv]), np.concatenate([(X_b.T @ d).ravel(), d.sum(0)]))
            Wv, bv = flat[:Wv.size].reshape(Wv.shape), flat[Wv.size:]
    return Wv, bv
'''
_DELEGATE = '''    opt = {reach}(lr=lr)

    def step(theta, g):
        opt.step([theta], [g])
        return theta'''
#: nnopt's numpy Adam reached through numpy's own attributes: pickle's GLOBAL opcode imports it.
PICKLED_ADAM_SOFTMAX = _TRAIN.replace("{step}", _DELEGATE.replace(
    "{reach}", 'np.lib.format.pickle.loads(b"cnnopt\\nAdam\\n.")'))
#: nnopt's numpy Adam reached through numpy's own attributes: ``np.sys.modules``.
SYS_MODULES_ADAM_SOFTMAX = _TRAIN.replace("{step}", _DELEGATE.replace("{reach}", 'np.sys.modules["nnopt"].Adam'))
#: The softmax trained by a numpy Adam written inline; the compiled Theano function is never called.
NUMPY_INLINE_SOFTMAX = _TRAIN.replace("{step}", '''    st = {"t": 0, "s": 0.0, "r": 0.0}

    def step(theta, g):
        st["t"] += 1
        st["s"] = 0.9 * st["s"] + 0.1 * g
        st["r"] = 0.999 * st["r"] + 0.001 * g * g
        s_hat, r_hat = st["s"] / (1 - 0.9 ** st["t"]), st["r"] / (1 - 0.999 ** st["t"])
        return theta - lr * s_hat / np.sqrt(r_hat + 1e-8)''')

_ALONGSIDE = '''def train_softmax_theano(data, epochs=20, batch_size=64, lr=0.01, seed=0):
    """Calls a compiled Theano step in the loop, but the numbers come from a numpy Adam: {how}."""
    n_features, n_classes = data.train.X.shape[1], data.n_classes
    W = theano.shared(np.zeros((n_features, n_classes)), name="W")
    b = theano.shared(np.zeros(n_classes), name="b")
    X, y = T.dmatrix("X"), T.ivector("y")
    cost = T.sum(T.dot(X, W) + b) * 0.0            # a stub: the Theano step never moves W, b
    train_step = theano.function([X, y], cost, updates=adam_updates(cost, [W, b], lr=lr), on_unused_input="ignore")
    Wv, bv = np.zeros((n_features, n_classes)), np.zeros(n_classes)
    t, s, r = 0, np.zeros(Wv.size + bv.size), np.zeros(Wv.size + bv.size)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for X_b, y_b in minibatches(data.train.X, data.train.y, batch_size, seed=rng):
            X_b = X_b.astype(np.float64)
            train_step(X_b, y_b.astype("int32"))
            z = X_b @ Wv + bv
            pr = np.exp(z - z.max(axis=1, keepdims=True))
            pr = pr / pr.sum(axis=1, keepdims=True)
            pr[np.arange(len(y_b)), y_b] -= 1
            d = pr / len(y_b)
            g = np.concatenate([(X_b.T @ d).ravel(), d.sum(0)])
            t += 1
            s = 0.9 * s + 0.1 * g
            r = 0.999 * r + 0.001 * g * g
            flat = np.concatenate([Wv.ravel(), bv]) - lr * (s / (1 - 0.9 ** t)) / np.sqrt(r / (1 - 0.999 ** t) + 1e-8)
            Wv, bv = flat[:Wv.size].reshape(Wv.shape), flat[Wv.size:]
{finish}
'''
#: The compiled step is called in the training loop, but the numpy-trained arrays are returned.
CALLED_NUMPY_RETURNED = _ALONGSIDE.replace("{how}", "it returns them").replace("{finish}", "    return Wv, bv")
#: The numpy values written into W's and b's own storage, then ``W.get_value(), b.get_value()`` returned.
BORROWED_STORAGE = _ALONGSIDE.replace("{how}", "written into W's storage through get_value(borrow=True)").replace(
    "{finish}", "    W.get_value(borrow=True)[:] = Wv\n    b.get_value(borrow=True)[:] = bv\n"
                "    return W.get_value(), b.get_value()")
#: The numpy values copied into W and b by a second compiled function, then ``W.get_value(), b.get_value()``.
SECOND_FUNCTION = _ALONGSIDE.replace("{how}", "copied into W, b by a second theano.function").replace(
    "{finish}", "    copy = theano.function([], [], updates=[(W, T.constant(Wv)), (b, T.constant(bv))])\n"
                "    copy()\n    return W.get_value(), b.get_value()")

#: Appended to the honest Momentum: every step prints 24 kB, so the momentum test cells print
#: over 1 MiB around their records (the output caps must keep the records).
FLOODING_STEP = '''
_honest_step = Momentum.step


def _noisy_step(self, theta, grad):
    print("x" * 24_000)
    return _honest_step(self, theta, grad)


Momentum.step = _noisy_step
'''
#: JSON nested 100 000 deep (a parser's recursion limit).
DEEP_JSON = ('{"cells": [], "metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 +
             '}, "nbformat": 4, "nbformat_minor": 5}').encode()

#: An honest ``adam_updates`` steered onto numpy's gradients: the cost ``T.sum(W * G) + T.sum(b * g)``
#: has gradient ``(G, g)``, fed each step with the cross-entropy gradient numpy computed, so the
#: Theano Adam lands on the reference without Theano computing the model.
STEERED_SOFTMAX = '''def train_softmax_theano(data, epochs=20, batch_size=64, lr=0.01, seed=0):
    """The compiled Adam step is called in the loop, but its gradient is computed by numpy."""
    n_features, n_classes = data.train.X.shape[1], data.n_classes
    W = theano.shared(np.zeros((n_features, n_classes)), name="W")
    b = theano.shared(np.zeros(n_classes), name="b")
    X, y = T.dmatrix("X"), T.ivector("y")
    G, g = T.dmatrix("G"), T.dvector("g")
    cost = T.sum(W * G) + T.sum(b * g)
    step = theano.function([X, y, G, g], cost, updates=adam_updates(cost, [W, b], lr=lr), on_unused_input="ignore")
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for X_b, y_b in minibatches(data.train.X, data.train.y, batch_size, seed=rng):
            X_b = X_b.astype(np.float64)
            z = X_b @ W.get_value() + b.get_value()
            pr = np.exp(z - z.max(axis=1, keepdims=True))
            pr = pr / pr.sum(axis=1, keepdims=True)
            pr[np.arange(len(y_b)), y_b] -= 1
            d = pr / len(y_b)
            step(X_b, y_b.astype("int32"), X_b.T @ d, d.sum(0))
    return W.get_value(), b.get_value()
'''
