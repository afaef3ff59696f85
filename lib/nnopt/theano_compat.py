"""Import Theano (theano-pymc 1.1.2) with the flags this stack needs.

Use it instead of ``import theano``::

    from nnopt.theano_compat import theano, T

    x = T.dvector("x")
    f = theano.function([x], T.grad((x ** 2).sum(), x))   # f([1, 2]) -> [2., 4.]

Theano reads its configuration once, when it is first imported, from the
``THEANO_FLAGS`` environment variable (comma-separated ``key=value`` pairs) and
from ``~/.theanorc``.  This module appends the flags below to ``THEANO_FLAGS``
before that import, but only those the user has not set in either place:

``blas__ldflags=`` (empty)
    Without it Theano probes ``numpy.distutils`` for BLAS link flags, which
    fails on this stack.  Empty means "call BLAS through NumPy's C-API".
``base_compiledir=~/.theano/nnopt-<environment>``
    One cache of compiled C modules per Python environment, so two
    virtualenvs never share (possibly incompatible) compiled code.  Deleting it
    is always safe: Theano recompiles on demand.
``cxx=`` (empty), only when no C++ compiler is on ``PATH``
    Theano then runs its Python implementations (slower, same results)
    instead of printing a warning.

Two more fixes for this stack, applied at import:

* theano-pymc 1.1.2 ships the inner loop of ``theano.scan`` as C code generated
  by Cython 0.29.21, which does not compile on Python 3.11 (every ``scan``,
  e.g. ``theano.gradient.hessian``, would fail).  That extension is marked as
  unavailable, so Scan runs its Python loop: same results, a little slower.
  (Scan also imports ``pkg_resources``, hence the pin ``setuptools<81``.)
* With ``blas__ldflags=`` Theano logs *"Using NumPy C-API based implementation
  for BLAS functions."* as a warning on stderr.  nbgrader scores a test cell 0
  on ANY stderr output, so exactly this one expected message is filtered out;
  every other Theano warning still shows.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import sys
from collections.abc import Collection, Iterable, Mapping
from configparser import ConfigParser
from pathlib import Path
from types import ModuleType

import numpy as np

#: Scan's Cython extension, which cannot be built on Python 3.11 (see above).
SCAN_CYTHON_MODULE = "theano.scan.scan_perform_ext"
BLAS_NOTICE = "Using NumPy C-API based implementation for BLAS functions."
#: Last numpy release theano-pymc 1.1.2 works with (1.24 removed ``np.bool`` etc.).
MAX_NUMPY = (1, 23)
_INSTALL_HINT = (
    "Set up the kit's environment with `make lab` (or "
    "`pip install -r requirements.txt`), which pins theano-pymc==1.1.2 and numpy==1.23.5."
)

__all__ = ["theano", "T", "parse_flags", "merge_flags", "theanorc_keys", "default_flags",
           "check_numpy"]


def parse_flags(flags: str) -> dict[str, str]:
    """Split a ``THEANO_FLAGS`` string into ``{key: value}``, exactly as Theano does.

    Pairs are separated by commas (quotes protect commas inside a value); a
    later pair overrides an earlier one with the same key; entries without
    ``=`` are ignored (Theano warns about them).
    """
    lexer = shlex.shlex(flags, posix=True)
    lexer.whitespace = ","
    lexer.whitespace_split = True
    pairs = (token.strip().split("=", 1) for token in lexer)
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def _format_value(value: str) -> str:
    """Quote ``value`` for ``THEANO_FLAGS`` if it contains a comma, quote or space."""
    return shlex.quote(value) if re.search(r"[,'\"\s\\]", value) else value


def merge_flags(user_flags: str, defaults: Mapping[str, str],
                preset: Collection[str] = ()) -> str:
    """Return ``user_flags`` with each ``key=value`` of ``defaults`` appended.

    A default is skipped when its key already appears in ``user_flags`` or in
    ``preset`` (keys set in a ``.theanorc`` file), so the user's choices always
    win.  ``user_flags`` itself is kept verbatim.

    >>> merge_flags("floatX=float32", {"blas__ldflags": "", "floatX": "float64"})
    'floatX=float32,blas__ldflags='
    """
    taken = set(parse_flags(user_flags)) | set(preset)
    added = [f"{key}={_format_value(value)}" for key, value in defaults.items()
             if key not in taken]
    return ",".join(part for part in [user_flags.strip(", ")] + added if part)


def _theanorc_paths() -> list[str]:
    """The config files Theano reads: ``$THEANORC`` (``os.pathsep``-separated) or ``~/.theanorc``."""
    return [os.path.expanduser(p)
            for p in os.environ.get("THEANORC", "~/.theanorc").split(os.pathsep)]


def theanorc_keys(paths: Iterable[str | os.PathLike] | None = None) -> set[str]:
    """Flag names set in Theano's config files (missing files are ignored).

    Option ``ldflags`` in section ``[blas]`` is the flag ``blas__ldflags``;
    options of ``[global]`` are plain names such as ``base_compiledir``.  Names
    come back lower-cased, as Theano's ``ConfigParser`` matches them.
    """
    parser = ConfigParser(interpolation=None)
    parser.read(_theanorc_paths() if paths is None else paths)
    return {option if section == "global" else f"{section}__{option}"
            for section in parser.sections() for option in parser.options(section)}


def _has_cxx() -> bool:
    """True if a C++ compiler Theano can use is on ``PATH``."""
    return any(shutil.which(name) for name in ("g++", "clang++"))


def default_flags(prefix: str | os.PathLike = sys.prefix,
                  home: str | os.PathLike | None = None,
                  has_cxx: bool | None = None) -> dict[str, str]:
    """The flags this kit needs, for the environment at ``prefix``.

    The compile cache lives in ``<home>/.theano/nnopt-<env>-<hash>``, where
    ``<env>`` names the environment's folder and ``<hash>`` tells apart
    environments of the same name.
    """
    prefix = Path(os.path.realpath(prefix))
    home = Path.home() if home is None else Path(home)
    has_cxx = _has_cxx() if has_cxx is None else has_cxx
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(prefix.parts[-2:])).strip("._")
    digest = hashlib.sha1(str(prefix).encode()).hexdigest()[:8]
    flags = {
        "blas__ldflags": "",
        "base_compiledir": str(home / ".theano" / f"nnopt-{name}-{digest}"),
    }
    if not has_cxx:
        flags["cxx"] = ""
    return flags


def check_numpy(version: str) -> None:
    """Raise ImportError if numpy ``version`` is too new for theano-pymc 1.1.2."""
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    if (major, minor) > MAX_NUMPY:
        raise ImportError(
            f"theano-pymc 1.1.2 needs numpy <= {MAX_NUMPY[0]}.{MAX_NUMPY[1]}.x, "
            f"but numpy {version} is installed. {_INSTALL_HINT}")


def _drop_blas_notice(record: logging.LogRecord) -> bool:
    """Logging filter: drop Theano's expected BLAS notice, keep everything else."""
    return record.getMessage() != BLAS_NOTICE


def _load() -> tuple[ModuleType, ModuleType]:
    """Set the flags (unless Theano is already imported), apply the fixes, import Theano."""
    if "theano" not in sys.modules:  # Theano reads its flags only once
        check_numpy(np.__version__)
        os.environ["THEANO_FLAGS"] = merge_flags(
            os.environ.get("THEANO_FLAGS", ""), default_flags(), theanorc_keys())
    if sys.version_info >= (3, 11):  # None in sys.modules: "import" raises ImportError
        sys.modules.setdefault(SCAN_CYTHON_MODULE, None)
    logging.getLogger("theano.tensor.blas").addFilter(_drop_blas_notice)
    try:
        import theano
        from theano import tensor
    except ModuleNotFoundError as exc:
        if exc.name != "theano":
            raise
        raise ImportError(f"nnopt.theano_compat needs the theano-pymc package, "
                          f"which is not installed. {_INSTALL_HINT}") from exc
    return theano, tensor


theano, T = _load()
