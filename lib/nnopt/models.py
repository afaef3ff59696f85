"""Softmax regression and multilayer perceptrons in plain numpy, with backprop.

Notation (row-per-sample, as in numpy)::

    A_0 = X                                   (N, D) inputs
    Z_l = A_{l-1} W_l + b_l                   l = 1..L   pre-activations
    A_l = phi(Z_l)                            l = 1..L-1 hidden activations (relu or tanh)
    logits = Z_L,  P = softmax(Z_L)
    loss = -(1/N) sum_n log P[n, y_n]  +  (l2 / 2) sum_l ||W_l||_F^2

Backprop with ``dZ_L = (P - onehot(y)) / N``::

    dW_l = A_{l-1}^T dZ_l (+ l2 W_l),   db_l = sum_n dZ_l[n],
    dA_{l-1} = dZ_l W_l^T,              dZ_{l-1} = dA_{l-1} * phi'(Z_{l-1})

Parameters live in ``model.params``, a dict ``{"W1", "b1", ..., "WL", "bL"}`` of arrays of the
model's dtype, so ``optimizer.step(model.params, grads)`` updates the model in place.

Internals meant for reuse (e.g. Hessian-vector products with an R-operator or
forward-over-backward): :meth:`MLP.forward` returns a :class:`Cache` holding every ``A_l``
and ``Z_l``; :meth:`MLP.backward` maps ``(cache, dlogits)`` to the data-term gradients
(without L2), layer by layer, via the activation's ``backward(dA, Z, A)``;
:func:`softmax_cross_entropy` gives the loss and ``dlogits``. ``get_flat``/``set_flat`` view
all parameters as one vector (order: W1, b1, W2, ..., row-major) for second-order methods.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .data import check_x, check_xy
from .validation import Described, check_choice, check_float_dtype, check_int, check_nonneg, invalid

__all__ = ["Activation", "ACTIVATIONS", "Cache", "MLP", "SoftmaxRegression", "default_mlp",
           "softmax_cross_entropy", "flatten"]


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity ``A = forward(Z)`` and its backprop ``dZ = backward(dA, Z, A)``."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    init: str                    # the initialisation that keeps activations well scaled


ACTIVATIONS: dict[str, Activation] = {
    # relu'(z) = 1 for z > 0 else 0;  He init, Var(W) = 2 / fan_in
    "relu": Activation("relu", lambda Z: np.maximum(Z, 0), lambda dA, Z, A: dA * (Z > 0), "he"),
    # tanh'(z) = 1 - tanh(z)^2;       Xavier/Glorot init, Var(W) = 2 / (fan_in + fan_out)
    "tanh": Activation("tanh", np.tanh, lambda dA, Z, A: dA * (1 - A * A), "xavier"),
}

INITS = ("auto", "he", "xavier", "zeros")


@dataclass
class Cache:
    """Intermediate values of one forward pass: ``activations = [A_0=X, ..., A_{L-1}]`` and
    ``preacts = [Z_1, ..., Z_L]`` (``preacts[-1]`` are the logits)."""

    activations: list[np.ndarray]
    preacts: list[np.ndarray]

    @property
    def logits(self) -> np.ndarray:
        return self.preacts[-1]


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against labels ``y`` and its gradient.

    Uses the shifted log-sum-exp ``log P = Z - max Z - log sum exp(Z - max Z)`` so large
    logits cannot overflow. Returns ``(loss, dlogits)`` with ``dlogits = (P - onehot(y)) / N``.
    """
    n = len(y)
    shifted = logits - logits.max(axis=1, keepdims=True)
    P = np.exp(shifted)
    sums = P.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(sums[:, 0]) - shifted[rows, y]))
    P /= sums
    P[rows, y] -= 1
    P /= n
    return loss, P


def flatten(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Concatenate a dict of arrays into one float vector (insertion order, row-major)."""
    return np.concatenate([a.ravel() for a in arrays.values()])


class MLP:
    """Fully connected network ``n_in -> hidden[0] -> ... -> n_out`` with softmax output.

    Parameters
    ----------
    n_in, n_out : input features and classes (``n_out >= 2``).
    hidden : widths of the hidden layers; ``()`` gives softmax regression.
    activation : ``"relu"`` or ``"tanh"``.
    init : ``"he"`` (``W ~ N(0, 2/fan_in)``), ``"xavier"`` (``W ~ N(0, 2/(fan_in+fan_out))``),
        ``"zeros"``, or ``"auto"`` (He for relu, Xavier for tanh). Biases start at 0. The
        draws are made in float64 from ``seed`` and then cast, so float32 and float64 models
        with the same seed start from the same point.
    l2 : weight decay strength; adds ``l2/2 * sum ||W_l||^2`` (weights only, not biases).
    dtype : ``np.float32`` or ``np.float64``; inputs are cast to it.
    """

    def __init__(self, n_in: int, hidden=(64,), n_out: int = 10, activation: str = "relu",
                 init: str = "auto", l2: float = 0.0, dtype=np.float64, seed: int = 0):
        n_in = check_int("n_in", n_in, 1)
        n_out = check_int("n_out (classes)", n_out, 2)
        hidden = tuple(check_int("hidden layer width", h, 1) for h in hidden)
        check_choice("activation", activation, sorted(ACTIVATIONS))
        check_choice("init", init, INITS)
        l2 = check_nonneg("l2", l2)
        dtype = check_float_dtype("dtype", dtype)
        self.sizes = (n_in, *hidden, n_out)
        self.act = ACTIVATIONS[activation]
        self.init = self.act.init if init == "auto" else init
        self.l2 = float(l2)
        self.dtype = dtype
        self.seed = seed
        self.params: dict[str, np.ndarray] = {}
        rng = np.random.default_rng(seed)
        for l, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            std = {"he": np.sqrt(2.0 / fan_in), "xavier": np.sqrt(2.0 / (fan_in + fan_out)), "zeros": 0.0}[self.init]
            self.params[f"W{l}"] = (std * rng.standard_normal((fan_in, fan_out))).astype(dtype)
            self.params[f"b{l}"] = np.zeros(fan_out, dtype=dtype)

    # ----------------------------------------------------------------- structure
    @property
    def n_layers(self) -> int:
        """Number of weight layers L."""
        return len(self.sizes) - 1

    @property
    def n_features(self) -> int:
        return self.sizes[0]

    @property
    def n_classes(self) -> int:
        return self.sizes[-1]

    @property
    def n_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def __repr__(self) -> str:
        arch = " -> ".join(map(str, self.sizes))
        return (f"{type(self).__name__}({arch}, {self.act.name}, {self.init} init, l2={self.l2:g}, "
                f"{self.dtype.name}, {self.n_params} params)")

    def copy(self) -> "MLP":
        """An independent copy (parameters included)."""
        return copy.deepcopy(self)

    def get_flat(self) -> np.ndarray:
        """All parameters as one new vector (order W1, b1, W2, ..., each row-major)."""
        return flatten(self.params)

    def set_flat(self, w) -> None:
        """Write a flat vector (as from :meth:`get_flat`) into the parameters, in place."""
        w = np.asarray(w)
        if w.shape != (self.n_params,):
            raise invalid("flat parameter vector shape", w.shape, f"({self.n_params},)")
        offset = 0
        for p in self.params.values():
            p[...] = w[offset:offset + p.size].reshape(p.shape)
            offset += p.size

    # ----------------------------------------------------------------- computation
    def _check(self, X, y=None):
        """Validate inputs (and labels) and cast X to the model dtype."""
        if y is None:
            return check_x(X, self.n_features).astype(self.dtype, copy=False)
        X, y = check_xy(X, y, n_classes=self.n_classes, n_features=self.n_features)
        if len(y) == 0:
            raise invalid("X", Described("0 samples"), "at least one sample")
        return X.astype(self.dtype, copy=False), y

    def forward(self, X: np.ndarray) -> Cache:
        """Forward pass on already validated, dtype-cast inputs; keeps every ``A_l`` and ``Z_l``."""
        activations, preacts = [X], []
        A = X
        for l in range(1, self.n_layers + 1):
            Z = A @ self.params[f"W{l}"] + self.params[f"b{l}"]
            preacts.append(Z)
            if l < self.n_layers:
                A = self.act.forward(Z)
                activations.append(A)
        return Cache(activations, preacts)

    def backward(self, cache: Cache, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        """Backprop ``dlogits = dLoss/dZ_L`` through the layers; data-term gradients only (no L2)."""
        grads: dict[str, np.ndarray] = {}
        dZ = dlogits
        for l in range(self.n_layers, 0, -1):
            grads[f"W{l}"] = cache.activations[l - 1].T @ dZ
            grads[f"b{l}"] = dZ.sum(axis=0)
            if l > 1:
                dA = dZ @ self.params[f"W{l}"].T
                dZ = self.act.backward(dA, cache.preacts[l - 2], cache.activations[l - 1])
        return {name: grads[name] for name in self.params}      # same order as params

    def _l2_term(self) -> float:
        if not self.l2:
            return 0.0
        return 0.5 * self.l2 * sum(float(np.vdot(W, W)) for name, W in self.params.items() if name[0] == "W")

    def loss_and_grads(self, X, y) -> tuple[float, dict[str, np.ndarray]]:
        """Objective (mean cross-entropy + L2 term) on a batch and its gradients, keyed like ``params``."""
        X, y = self._check(X, y)
        cache = self.forward(X)
        loss, dlogits = softmax_cross_entropy(cache.logits, y)
        grads = self.backward(cache, dlogits)
        if self.l2:
            for name, W in self.params.items():
                if name[0] == "W":
                    grads[name] += self.l2 * W
        return loss + self._l2_term(), grads

    def evaluate(self, X, y) -> tuple[float, float]:
        """``(objective, accuracy)`` on a data set with a single forward pass."""
        X, y = self._check(X, y)
        logits = self.forward(X).logits
        loss, _ = softmax_cross_entropy(logits, y)
        return loss + self._l2_term(), float(np.mean(logits.argmax(axis=1) == y))

    def loss(self, X, y) -> float:
        """Objective (mean cross-entropy + L2 term) on a data set."""
        return self.evaluate(X, y)[0]

    def accuracy(self, X, y) -> float:
        """Fraction of samples whose most probable class is the label."""
        return self.evaluate(X, y)[1]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``softmax(logits)``, shape (N, n_classes)."""
        logits = self.forward(self._check(X)).logits
        P = np.exp(logits - logits.max(axis=1, keepdims=True))
        return P / P.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """Most probable class per sample."""
        return self.forward(self._check(X)).logits.argmax(axis=1)


class SoftmaxRegression(MLP):
    """Multinomial logistic regression ``P = softmax(X W1 + b1)``: an :class:`MLP` without hidden
    layers. Its objective is convex, so Newton's method and L-BFGS apply directly; the default
    ``init="zeros"`` is the usual (symmetric but harmless) starting point."""

    def __init__(self, n_features: int, n_classes: int, l2: float = 0.0, dtype=np.float64,
                 init: str = "zeros", seed: int = 0):
        super().__init__(n_features, (), n_classes, init=init, l2=l2, dtype=dtype, seed=seed)

    def __repr__(self) -> str:
        return (f"SoftmaxRegression({self.sizes[0]} features -> {self.n_classes} classes, l2={self.l2:g}, "
                f"{self.dtype.name})")

    def hessian(self, X, y) -> np.ndarray:
        """Exact Hessian of the objective w.r.t. :meth:`get_flat`, shape (n_params, n_params).

        With ``x~ = [x, 1]`` (so ``[W1; b1]`` is one (D+1, K) matrix whose row-major flattening
        is ``get_flat()``) and ``p_n = softmax`` of sample n::

            H[(i,k),(j,l)] = (1/N) sum_n x~_ni x~_nj (p_nk delta_kl - p_nk p_nl)  + l2 [i=j<D, k=l]
        """
        X, y = self._check(X, y)
        n, d = X.shape
        k = self.n_classes
        Xt = np.hstack([X, np.ones((n, 1), dtype=X.dtype)])                 # (N, D+1)
        P = self.predict_proba(X)                                           # (N, K)
        M = (Xt[:, :, None] * P[:, None, :]).reshape(n, -1)                 # x~_ni p_nk
        H = -(M.T @ M).reshape(d + 1, k, d + 1, k)                          # - sum x~ p  x~ p
        diag_blocks = (M.T @ Xt).reshape(d + 1, k, d + 1).transpose(1, 0, 2)  # [k, i, j] sum p_nk x~_ni x~_nj
        classes = np.arange(k)
        H[:, classes, :, classes] += diag_blocks
        H = H.reshape((d + 1) * k, (d + 1) * k) / n
        H[np.arange(d * k), np.arange(d * k)] += self.l2
        return H


def default_mlp(n_in: int = 64, n_out: int = 10, dtype=np.float32, seed: int = 0) -> MLP:
    """The kit's default network for digits: one hidden layer of 64 relu units, He init."""
    return MLP(n_in, (64,), n_out, activation="relu", dtype=dtype, seed=seed)
