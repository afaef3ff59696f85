"""Oracle tests: nnopt optimizers vs torch.optim in float64 (200 steps, random gradients)."""
from __future__ import annotations

import numpy as np
import pytest

import nnopt
from conftest import gradient_sequence

torch = pytest.importorskip("torch")

SHAPES = [(7, 5), (5,), (3, 4, 2), ()]
STEPS = 200

# (nnopt name, nnopt hyperparameters in their torch-matching setting, torch factory)
CASES = {
    "sgd": ({"lr": 0.05}, lambda p: torch.optim.SGD(p, lr=0.05)),
    "momentum": ({"lr": 0.02, "momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)),
    "nesterov": ({"lr": 0.02, "momentum": 0.8},
                 lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True)),
    "adagrad": ({"lr": 0.1, "eps": 1e-10}, lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10)),
    "rmsprop": ({"lr": 0.01, "rho": 0.99, "eps": 1e-8, "eps_inside_sqrt": False},
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8)),
    "adadelta": ({"lr": 1.0, "rho": 0.9, "eps": 1e-6},
                 lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6)),
    "adam": ({"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "eps_inside_sqrt": False},
             lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)),
    "adamax": ({"lr": 2e-3}, lambda p: torch.optim.Adamax(p, lr=2e-3)),
    "adamw": ({"lr": 1e-3, "weight_decay": 0.05}, lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.05)),
    "nadam": ({"lr": 2e-3}, lambda p: torch.optim.NAdam(p, lr=2e-3)),
    "amsgrad": ({"lr": 1e-2, "beta2": 0.99},
                lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.9, 0.99), amsgrad=True)),
}


pytestmark = pytest.mark.usefixtures("torch_float64")


def _gradients(seed: int, n: int):
    """Oracle gradients for SHAPES; every 17th step the vector's gradient is 0."""
    return gradient_sequence(seed, n, SHAPES, zero_index=1)


def _run_pair(name, hp, torch_factory, foreach=None):
    rng = np.random.default_rng(1)
    init = [rng.normal(size=s) for s in SHAPES]
    ours = [a.copy() for a in init]
    theirs = [torch.tensor(a.copy(), dtype=torch.float64, requires_grad=True) for a in init]
    opt = nnopt.make_optimizer(name, **hp)
    topt = torch_factory(theirs)
    for gs in _gradients(2, STEPS):
        opt.step(ours, [g.copy() for g in gs])
        for t, g in zip(theirs, gs):
            t.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
    return ours, [t.detach().numpy() for t in theirs], init


def _max_rel(a, b, init):
    # relative to the distance travelled, so tiny moves are not judged by absolute noise
    return max(float(np.max(np.abs(x - y)) / max(np.max(np.abs(y - z)), 1e-300))
               for x, y, z in zip(a, b, init))


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch_float64(name):
    hp, factory = CASES[name]
    ours, theirs, init = _run_pair(name, hp, factory)
    for x, y in zip(ours, theirs):
        denom = np.maximum(np.abs(y), 1e-12)
        assert np.max(np.abs(x - y) / denom) < 1e-10, name
    assert _max_rel(ours, theirs, init) < 1e-10


@pytest.mark.parametrize("name, torch_setting", [
    ("rmsprop", {"eps_inside_sqrt": False}),
    ("adam", {"eps_inside_sqrt": False}),
])
def test_lecture_default_eps_placement_is_the_documented_difference(name, torch_setting):
    """Lecture boxes put delta inside the root: differs from torch, most where r ~ delta."""
    hp = {"lr": 1e-2, "eps": 1e-4}
    lecture = nnopt.make_optimizer(name, **hp)
    torchlike = nnopt.make_optimizer(name, **hp, **torch_setting)
    g = np.array([1e-4, 1.0])
    p1, p2 = np.zeros(2), np.zeros(2)
    lecture.step([p1], [g.copy()])
    torchlike.step([p2], [g.copy()])
    r = (1 - (0.9 if name == "rmsprop" else 0.999)) * g**2
    if name == "adam":  # bias-corrected moments at t=1: s_hat = g, r_hat = g^2
        r = g**2
        num = g
    else:
        num = g
    np.testing.assert_allclose(p1, -1e-2 * num / np.sqrt(r + 1e-4), rtol=1e-12)
    np.testing.assert_allclose(p2, -1e-2 * num / (np.sqrt(r) + 1e-4), rtol=1e-12)
    assert abs(p1[0]) < 0.5 * abs(p2[0])       # tiny gradient: the steps differ a lot
    assert p1[1] == pytest.approx(p2[1], rel=1e-3)  # large gradient: nearly equal
