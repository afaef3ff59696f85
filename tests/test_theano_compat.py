"""nnopt.theano_compat: flag merging (pure functions), a compiled Theano function,
and an import that writes nothing to stderr (nbgrader scores such a cell 0)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nnopt import theano_compat
from nnopt.theano_compat import (BLAS_NOTICE, T, check_numpy, default_flags, merge_flags,
                                 parse_flags, theano, theanorc_keys)

DEFAULTS = {"blas__ldflags": "", "base_compiledir": "/cache/nnopt-x"}


# --- parse_flags: the same rules as Theano's own parser --------------------------------------

def test_parse_flags_splits_pairs_and_later_pairs_win():
    assert parse_flags("floatX=float32,device=cpu, floatX=float64") == {
        "floatX": "float64", "device": "cpu"}


def test_parse_flags_keeps_empty_values_quoted_commas_and_ignores_bare_keys():
    flags = parse_flags("blas__ldflags=,base_compiledir='/a,b/c',verbose")
    assert flags == {"blas__ldflags": "", "base_compiledir": "/a,b/c"}


def test_parse_flags_of_empty_string_is_empty():
    assert parse_flags("") == {}


# --- merge_flags: append what is missing, never override the user ---------------------------

def test_merge_flags_appends_all_defaults_to_empty_flags():
    assert merge_flags("", DEFAULTS) == "blas__ldflags=,base_compiledir=/cache/nnopt-x"


def test_merge_flags_keeps_user_flags_verbatim_and_first():
    merged = merge_flags("floatX=float32,mode=FAST_COMPILE", DEFAULTS)
    assert merged.startswith("floatX=float32,mode=FAST_COMPILE,")
    assert parse_flags(merged) == {"floatX": "float32", "mode": "FAST_COMPILE", **DEFAULTS}


def test_merge_flags_keeps_the_users_blas_ldflags():
    merged = merge_flags("blas__ldflags=-lopenblas", DEFAULTS)
    assert parse_flags(merged)["blas__ldflags"] == "-lopenblas"
    assert merged.count("blas__ldflags") == 1


def test_merge_flags_skips_keys_set_in_theanorc():
    merged = merge_flags("", DEFAULTS, preset={"blas__ldflags"})
    assert parse_flags(merged) == {"base_compiledir": "/cache/nnopt-x"}


def test_merge_flags_handles_trailing_commas():
    assert merge_flags("floatX=float32,", {"cxx": ""}) == "floatX=float32,cxx="


def test_merge_flags_quotes_values_with_commas_so_they_round_trip():
    merged = merge_flags("", {"base_compiledir": "/home/a,b/it's here"})
    assert parse_flags(merged) == {"base_compiledir": "/home/a,b/it's here"}


def test_merge_flags_is_idempotent():
    once = merge_flags("floatX=float32", DEFAULTS)
    assert merge_flags(once, DEFAULTS) == once


# --- theanorc_keys ---------------------------------------------------------------------------

def test_theanorc_keys_names_options_like_flags(tmp_path: Path):
    rc = tmp_path / "theanorc"
    rc.write_text("[global]\nbase_compiledir = /x\nfloatX = float32\n\n[blas]\nldflags = -lblas\n")
    assert theanorc_keys([rc, tmp_path / "missing"]) == {"base_compiledir", "floatx",
                                                         "blas__ldflags"}


def test_theanorc_keys_reads_the_files_named_by_THEANORC(tmp_path: Path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("[global]\ncxx =\n")
    second.write_text("[blas]\nldflags =\n")
    monkeypatch.setenv("THEANORC", os.pathsep.join([str(first), str(second)]))
    assert theanorc_keys() == {"cxx", "blas__ldflags"}


# --- default_flags ---------------------------------------------------------------------------

def test_default_flags_has_empty_blas_ldflags_and_a_cache_per_environment(tmp_path: Path):
    a = default_flags(prefix=tmp_path / "course" / ".venv", home=tmp_path, has_cxx=True)
    b = default_flags(prefix=tmp_path / "other" / ".venv", home=tmp_path, has_cxx=True)
    assert a["blas__ldflags"] == "" and "cxx" not in a
    cache = Path(a["base_compiledir"])
    assert cache.parent == tmp_path / ".theano"
    assert cache.name.startswith("nnopt-course_.venv-")
    assert a["base_compiledir"] != b["base_compiledir"]
    assert default_flags(prefix=tmp_path / "course" / ".venv", home=tmp_path,
                         has_cxx=True) == a


def test_default_flags_disable_cxx_only_without_a_compiler(tmp_path: Path):
    assert default_flags(prefix=tmp_path, home=tmp_path, has_cxx=False)["cxx"] == ""


# --- check_numpy -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.23.5", "1.21.0", "1.23.0rc1"])
def test_check_numpy_accepts_releases_theano_supports(version: str):
    check_numpy(version)


@pytest.mark.parametrize("version", ["1.24.0", "1.26.4", "2.0.0"])
def test_check_numpy_rejects_newer_numpy_with_a_clear_message(version: str):
    with pytest.raises(ImportError, match=rf"numpy {version} is installed.*requirements\.txt"):
        check_numpy(version)


# --- importing Theano ------------------------------------------------------------------------

A = np.array([[3.0, 1.0], [1.0, 2.0]])
B = np.array([-1.0, 0.5])
X0 = np.array([0.7, -1.3])


def _quadratic():
    """f(x) = 1/2 x^T A x + b^T x, whose gradient is A x + b and Hessian is A."""
    x = T.dvector("x")
    return x, 0.5 * T.dot(x, T.dot(A, x)) + T.dot(B, x)


def test_compiled_value_and_gradient_of_a_quadratic_match_the_formula():
    x, f = _quadratic()
    value_and_grad = theano.function([x], [f, T.grad(f, x)])
    value, grad = value_and_grad(X0)
    np.testing.assert_allclose(value, 0.5 * X0 @ A @ X0 + B @ X0, rtol=1e-12)
    np.testing.assert_allclose(grad, A @ X0 + B, rtol=1e-12)


def test_hessian_via_scan_works():
    """theano.scan imports theano.gpuarray, which needs pkg_resources (setuptools < 81)."""
    x, f = _quadratic()
    hessian = theano.function([x], theano.gradient.hessian(f, x))
    np.testing.assert_allclose(hessian(X0), A, rtol=1e-12)


def test_theano_runs_with_the_kit_flags():
    assert theano.config.blas__ldflags == parse_flags(os.environ["THEANO_FLAGS"])["blas__ldflags"]
    assert theano.config.floatX in ("float64", "float32")


def test_blas_notice_is_dropped_and_other_warnings_are_kept(caplog):
    logger = logging.getLogger("theano.tensor.blas")
    with caplog.at_level(logging.WARNING, logger="theano"):
        logger.warning(BLAS_NOTICE)
        logger.warning("something else")
    assert caplog.messages == ["something else"]


def test_missing_theano_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "theano", None)  # makes `import theano` fail
    with pytest.raises(ImportError, match=r"theano-pymc.*not installed.*make lab"):
        theano_compat._load()


_CHILD = textwrap.dedent("""
    import json
    from nnopt.theano_compat import theano, T
    x = T.dvector("x")
    f = theano.function([x], T.grad((x ** 2).sum(), x))
    h = theano.function([x], theano.gradient.hessian((x ** 2).sum(), x))  # uses scan
    print(json.dumps({"grad": f([1.0, -2.0]).tolist(), "hessian": h([1.0, -2.0]).tolist(),
                      "floatX": theano.config.floatX, "cache": theano.config.base_compiledir}))
""")


@pytest.mark.parametrize("user_flags, floatx", [(None, "float64"),
                                                ("floatX=float32", "float32")])
def test_fresh_import_and_compiled_functions_write_nothing_to_stderr(user_flags, floatx, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "THEANO_FLAGS"}
    env["THEANORC"] = str(tmp_path / "no-theanorc")
    if user_flags is not None:
        env["THEANO_FLAGS"] = user_flags
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["grad"] == [2.0, -4.0]
    assert result["hessian"] == [[2.0, 0.0], [0.0, 2.0]]
    assert result["floatX"] == floatx
    assert Path(result["cache"]).name.startswith("nnopt-")
