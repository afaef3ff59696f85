"""Shared pytest fixtures for the nnopt course kit (keep this file small)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Repository root (the folder holding the Makefile).
REPO_ROOT = Path(__file__).resolve().parents[1]

# Tests run headless (CI, autograding): draw figures off-screen.
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Path of the repository root, for tests that read or run the kit's files."""
    return REPO_ROOT
