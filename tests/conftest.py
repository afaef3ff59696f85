"""Shared pytest fixtures for the nnopt course kit (keep this file small)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: Repository root (the folder holding the Makefile).
REPO_ROOT = Path(__file__).resolve().parents[1]

# Tests run headless (CI, autograding): draw figures off-screen.
os.environ.setdefault("MPLBACKEND", "Agg")


#: Debian's Chromium, which the browser, hub and site tests drive through Playwright.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def shared_chromium():
    """One Playwright driver and one Chromium for the whole session.

    Playwright's sync API refuses to start inside another running driver, so the browser,
    hub and site tests must share one: each module checks its own prerequisites first, then
    asks for this fixture with ``request.getfixturevalue("shared_chromium")``.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def browser(request):
    """The session's one Chromium, or a skip naming the fix when it is not installed (the hub
    and site tests override this with a failure: they must not pass by skipping in CI)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed: `make test-browser` installs it "
                    "(Debian's chromium package, with apt-get as root)")
    return request.getfixturevalue("shared_chromium")


@pytest.fixture
def torch_float64():
    """torch's default dtype float64 for the test: torch keeps step counters and scalars
    (Nadam's mu_product, ...) in the default dtype, so a float64 oracle comparison needs it."""
    import torch
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def gradient_sequence(seed: int, n: int, shapes, zero_index: int):
    """A fixed random gradient sequence for oracle tests: one array per shape, each step at its
    own scale; every 17th step the array ``zero_index`` is all zeros."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        gs = [rng.normal(scale=rng.uniform(0.1, 3.0), size=s) for s in shapes]
        if k % 17 == 0:
            gs[zero_index][:] = 0.0
        out.append(gs)
    return out


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Path of the repository root, for tests that read or run the kit's files."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_digits():
    """120 training / 60 validation digits: enough for every explorer and study, fast to train on."""
    from nnopt import data
    ds = data.load_digits()
    return data.Dataset(train=data.Split(ds.X_train[:120], ds.y_train[:120]),
                        val=data.Split(ds.X_val[:60], ds.y_val[:60]), test=ds.test, n_classes=10, name="tiny")
