r"""M networks of one architecture as one set of arrays: forward and backward passes with one
matrix product per layer for all of them (what :func:`nnopt.batched.fit_batched` trains).

**Stacking.** Model :math:`m`'s weights :math:`W_l` (D, H) become ``W[m]`` of one (M, D, H)
array, its bias :math:`b_l` (H,) the row ``b[m]`` of one (M, 1, H) array. With the models'
inputs :math:`A_0 = X` -- shared, (B, D), when they see the same minibatch, else (M, B, D) --
every line of :mod:`nnopt.models` holds for all models at once (``@`` multiplies the last two
axes and broadcasts the model axis; numpy runs one BLAS product per model slice, so each
model's numbers are those of its own :class:`~nnopt.models.MLP`)::

    Z_l = A_{l-1} @ W_l + b_l                     (M, B, H)    l = 1..L
    A_l = phi(Z_l)                                              l = 1..L-1
    loss_m = -(1/B) sum_n log softmax(Z_L)[m, n, y_n] + (l2_m / 2) sum_l ||W_l[m]||^2
    dZ_L = (softmax(Z_L) - onehot(y)) / B
    dW_l = A_{l-1}^T @ dZ_l (+ l2_m W_l),  db_l = sum_n dZ_l[:, n],  dZ_{l-1} = phi'(dZ_l @ W_l^T)

so a loss is an (M,) vector and a gradient has the shape of its stacked parameter. Every model
keeps its own L2 strength; activation, layer sizes and dtype are shared.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .models import MLP
from .validation import Described, invalid

__all__ = ["StackedMLP", "stacked_cross_entropy"]


def stacked_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` per model and its gradient: ``logits`` (M, B, K),
    labels ``y`` (B,) shared or (M, B). The shifted log-sum-exp of
    :func:`nnopt.models.softmax_cross_entropy`, along the last axis; returns ``(losses (M,),
    dlogits)`` with ``dlogits = (P - onehot(y)) / B``."""
    M, B, _ = logits.shape
    pick = (np.arange(M)[:, None], np.arange(B), y)                   # y broadcasts over the models
    shifted = logits - logits.max(axis=-1, keepdims=True)
    P = np.exp(shifted)
    sums = P.sum(axis=-1)
    losses = np.mean(np.log(sums) - shifted[pick], axis=-1)
    P /= sums[..., None]
    P[pick] -= 1
    P /= B
    return losses, P


class StackedMLP:
    """The parameters of several :class:`~nnopt.models.MLP` s of one architecture, stacked on a
    leading model axis (see the module docstring); ``params[name][m]`` is model m's array (a
    bias as a (1, H) row). The models are copied: :meth:`write_back` returns the results."""

    def __init__(self, models: Sequence[MLP]):
        models = list(models)
        if not models:
            raise invalid("models", models, "at least one model")
        first = models[0]
        for i, model in enumerate(models):
            if not isinstance(model, MLP):
                raise invalid(f"models[{i}]", Described(type(model).__name__), "an nnopt.models.MLP (or "
                                                                               "SoftmaxRegression)")
            if (model.sizes, model.act.name, model.dtype) != (first.sizes, first.act.name, first.dtype):
                raise invalid(f"models[{i}]", model, f"the architecture of models[0], {first!r} (layer sizes, "
                                                     "activation and dtype are shared by a stack)")
        self.sizes, self.act, self.dtype = first.sizes, first.act, first.dtype
        #: each parameter's shape in one model (``W1``: (D, H), ``b1``: (H,))
        self.shapes = {name: p.shape for name, p in first.params.items()}
        self.params = {name: np.stack([m.params[name].reshape(self.row_shape(name)) for m in models])
                       for name in self.shapes}
        self.l2 = np.array([m.l2 for m in models], dtype=self.dtype)

    @property
    def n_models(self) -> int:
        return len(self.l2)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def row_shape(self, name: str) -> tuple[int, ...]:
        """The shape one model's parameter has in the stack: a bias (H,) is kept as a (1, H) row."""
        shape = self.shapes[name]
        return (1, *shape) if len(shape) == 1 else shape

    def select(self, which: np.ndarray | list[int]) -> None:
        """Keep the models ``which`` (a boolean mask or positions, in their new order)."""
        self.params = {name: p[which] for name, p in self.params.items()}
        self.l2 = self.l2[which]

    def model_params(self, m: int) -> dict[str, np.ndarray]:
        """Model ``m``'s parameters in their own shapes: views into the stack (writeable)."""
        return {name: p[m].reshape(self.shapes[name]) for name, p in self.params.items()}

    def write_back(self, m: int, model: MLP) -> None:
        """Copy model ``m`` of the stack into ``model.params`` (in place)."""
        for name, p in self.model_params(m).items():
            model.params[name][...] = p

    # ----------------------------------------------------------------- computation
    def _forward(self, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Every ``A_l`` (``A_0 = X``) and ``Z_l`` of all models, one product per layer."""
        inputs, preacts = [X], []
        for l in range(1, self.n_layers + 1):
            preacts.append(inputs[-1] @ self.params[f"W{l}"] + self.params[f"b{l}"])
            if l < self.n_layers:
                inputs.append(self.act.forward(preacts[-1]))
        return inputs, preacts

    def _weight_term(self) -> np.ndarray:
        """``l2_m / 2 * sum_l ||W_l[m]||^2`` per model (zeros when no model has weight decay)."""
        if not self.l2.any():
            return np.zeros_like(self.l2)
        squares = sum(np.einsum("mij,mij->m", W, W) for name, W in self.params.items() if name[0] == "W")
        return 0.5 * self.l2 * squares

    def loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Objective per model (M,) on a minibatch (``X`` (B, D) or (M, B, D), already validated and
        cast) and its stacked gradients, keyed like ``params``."""
        inputs, preacts = self._forward(X)
        losses, dZ = stacked_cross_entropy(preacts[-1], y)
        grads: dict[str, np.ndarray] = {}
        for l in range(self.n_layers, 0, -1):
            W = self.params[f"W{l}"]
            grads[f"W{l}"] = np.swapaxes(inputs[l - 1], -1, -2) @ dZ
            grads[f"b{l}"] = dZ.sum(axis=-2, keepdims=True)
            if self.l2.any():
                grads[f"W{l}"] += self.l2[:, None, None] * W
            if l > 1:
                dZ = self.act.backward(dZ @ np.swapaxes(W, -1, -2), preacts[l - 2], inputs[l - 1])
        return losses + self._weight_term(), {name: grads[name] for name in self.params}

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(objective, accuracy)`` per model on a data set, with one forward pass."""
        logits = self._forward(X)[1][-1]
        losses, _ = stacked_cross_entropy(logits, y)
        return losses + self._weight_term(), np.mean(logits.argmax(axis=-1) == y, axis=-1)
