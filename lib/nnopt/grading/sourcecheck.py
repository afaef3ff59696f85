"""Static checks of Lab 3's Theano answers: is the code symbolic, and self-contained?

Numbers alone cannot tell a Theano optimizer from a numpy one that produces the same points
(nnopt's Adam is available in Lab 3, whose Part A uses it). So the grader also reads the
answer's *source* -- outside the kernel, with :mod:`ast`, never running it -- and requires:

* ``adam_updates``: a function that calls ``T.grad`` (or ``theano.grad``), uses only
  ``T``, ``theano``, ``np`` and builtins from outside itself, and no escape hatch that runs
  Python per step (``as_op``, ``OpFromGraph``, ``theano.compile``, ``theano.printing``...),
  no dynamic access (``getattr``, ``exec``, private attributes, imports), no file readers
  (``np.loadtxt``, ``np.fromfile``...) or frames (``gi_frame.f_back``): the data set read while the
  step is built;
* ``train_softmax_theano``: a function that uses only ``T``, ``theano``, ``np``,
  ``minibatches``, ``adam_updates`` and builtins from outside itself, and whose data flow
  (:mod:`.dataflow`) shows that the ``W, b`` it returns are ``W.get_value(), b.get_value()``
  of shared variables created from zeros and written only by the ``theano.function(...,
  updates=adam_updates(cost, [W, b], lr=lr))`` it calls in its training loop.

At autograde the source is the notebook's (:func:`notebook_sources`, which also refuses a
name defined twice or rebound elsewhere); in student mode, ``inspect.getsource`` in the
kernel. The numbers are then compared by the grader with its own reference.
"""
from __future__ import annotations

import ast
import builtins
import functools
from collections.abc import Iterable, Sequence
from types import ModuleType

from . import dataflow

BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_")) - {
    "eval", "exec", "compile", "getattr", "setattr", "delattr", "globals", "locals", "vars",
    "open", "input", "breakpoint", "help", "memoryview", "__import__"}
FORBIDDEN_ATTRIBUTES = frozenset({"as_op", "OpFromGraph", "compile", "printing", "Op", "COp", "gof",
                                  "py_func", "callback", "FunctionGraph", "sandbox", "d3viz"})
#: Attributes through which numpy and Theano hand out other modules, load objects from bytes
#: (``np.sys.modules["nnopt"]``, ``np.lib.format.pickle.loads(b"cnnopt\\nAdam\\n.")``, ``np.load``)
#: read files (``np.loadtxt(path)``), or walk the call stack (a generator's ``gi_frame.f_back``):
#: the data set, reached by ``adam_updates`` while the step is built, would let it train in numpy
#: and hand Theano constants.
ESCAPE_ATTRIBUTES = frozenset({"sys", "modules", "os", "pickle", "loads", "load", "ctypes", "ctypeslib",
                               "importlib", "import_module", "builtins", "runpy", "pkgutil", "inspect", "types",
                               "loadtxt", "genfromtxt", "recfromtxt", "recfromcsv", "fromfile", "fromregex",
                               "frombuffer", "fromstring", "memmap", "open_memmap", "read_array", "DataSource",
                               "open", "gi_frame", "cr_frame", "ag_frame", "tb_frame", "tb_next", "f_back",
                               "f_locals", "f_globals", "f_builtins", "f_code", "gi_code", "cr_code", "ag_code",
                               "gi_yieldfrom", "cr_await"})
#: The package each allowed module name stands for: an attribute chain must stay inside it.
PACKAGES = {"np": "numpy", "numpy": "numpy", "T": "theano", "theano": "theano"}
_MODULES = {"np": "numpy", "numpy": "numpy", "T": "theano.tensor", "theano": "theano"}
#: Names each function may take from outside itself (besides builtins).
ALLOWED = {"adam_updates": frozenset({"T", "theano", "np", "numpy"}),
           "train_softmax_theano": frozenset({"T", "theano", "np", "numpy", "minibatches", "adam_updates"})}


def _function(tree: ast.AST, name: str) -> ast.FunctionDef | None:
    return next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name), None)


def _bound_names(fn: ast.FunctionDef) -> set[str]:
    """Names the function binds itself: parameters, assignments, loop and comprehension targets."""
    bound = {a.arg for a in fn.args.args + fn.args.kwonlyargs + fn.args.posonlyargs}
    bound |= {a.arg for a in (fn.args.vararg, fn.args.kwarg) if a is not None}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)) and node is not fn:
            args = node.args
            bound |= {a.arg for a in args.args + args.kwonlyargs + args.posonlyargs}
            if isinstance(node, ast.FunctionDef):
                bound.add(node.name)
    return bound


def _grad_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "grad"
            and isinstance(node.func.value, (ast.Name, ast.Attribute)))


def _chain(node: ast.Attribute) -> tuple[str | None, list[str]]:
    """``np.lib.format.pickle`` -> ``("np", ["lib", "format", "pickle"])``."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.insert(0, node.attr)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else None), attrs


def _foreign_module(root: str, attrs: list[str]) -> str | None:
    """What is wrong with ``root.attrs...``, resolved on the grader's own modules: the first
    module outside ``root``'s package it passes through (``np.sys`` -> ``"the module sys"``), a
    name the package does not have (planted by another cell: ``n = np; n.stash = W``), or mutable
    state of the package (``np.sctypeDict``: another cell could leave a variable there); None if
    it only reaches the package's own modules, classes, functions and values."""
    import sys
    if root in ("T", "theano"):
        from ..theano_compat import theano  # noqa: F401 -- imported so that the chain resolves
    obj = sys.modules.get(_MODULES[root])
    for i, attr in enumerate(attrs):
        if obj is None:
            return None
        parent, obj = obj, getattr(obj, attr, _MISSING)
        if obj is _MISSING:
            return f"{attr}, which {parent.__name__} does not have," if isinstance(parent, ModuleType) else None
        if isinstance(obj, ModuleType) and obj.__name__.split(".")[0] != PACKAGES[root]:
            return f"the module {obj.__name__}"
        if isinstance(obj, (dict, list, set, bytearray)):
            return f"the mutable {type(obj).__name__} {root}.{'.'.join(attrs[:i + 1])}"
    return None


_MISSING = object()


def _escapes(fn: ast.FunctionDef, bound: set[str], name: str) -> list[str]:
    """Ways out of numpy/Theano to other modules: a forbidden attribute name anywhere, or an
    attribute chain on ``np``/``T``/``theano`` that passes through a module of another package."""
    found = []
    inner = {id(n.value) for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
    for node in ast.walk(fn):
        if not isinstance(node, ast.Attribute):
            continue
        if node.attr in ESCAPE_ATTRIBUTES:
            found.append(f"{name} uses .{node.attr} (line {node.lineno}): a way out of numpy and Theano")
        if id(node) in inner:
            continue                                     # the outermost attribute of a chain says it
        root, attrs = _chain(node)
        if root in PACKAGES and root not in bound and (other := _foreign_module(root, attrs)):
            found.append(f"{name} reaches {other} through {root}.{'.'.join(attrs)} "
                         f"(line {node.lineno}): only numpy and Theano themselves may be used")
    return found


def _calls(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name for n in ast.walk(node))


def problems(source: str, role: str, name: str | None = None) -> list[str]:
    """Why the definition of ``name`` (default: ``role``) in ``source`` is not an acceptable
    answer for ``role`` (``"adam_updates"`` or ``"train_softmax_theano"``); [] if it is."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"the cell defining {name or role} does not parse (line {exc.lineno})"]
    fn = _function(tree, name or role)
    if fn is None:
        return [f"no `def {name or role}(...)` found"]
    name = role
    found: list[str] = []
    bound = _bound_names(fn)
    outside = sorted({n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                      and n.id not in bound and n.id not in BUILTINS and n.id not in ALLOWED[name]})
    if outside:
        found.append(f"{name} uses {', '.join(outside)} from outside itself; it may only use "
                     f"{', '.join(sorted(ALLOWED[name]))} and builtins")
    for node in ast.walk(fn):
        if isinstance(node, ast.Attribute) and (node.attr in FORBIDDEN_ATTRIBUTES or node.attr.startswith("_")):
            found.append(f"{name} uses .{node.attr} (line {node.lineno}): not allowed in the symbolic answer")
        elif isinstance(node, (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal, ast.ClassDef)):
            what = {"ImportFrom": "an import", "Import": "an import", "ClassDef": "a class"}.get(
                type(node).__name__, f"a {type(node).__name__.lower()}")
            found.append(f"{name} contains {what} statement (line {node.lineno}): not allowed in the symbolic answer")
    found += _escapes(fn, bound, name)
    if name == "adam_updates" and not any(_grad_call(n) for n in ast.walk(fn)):
        found.append("adam_updates must compute the gradients symbolically with T.grad(cost, params)")
    if name == "train_softmax_theano":
        found += dataflow.problems(fn)
    return list(dict.fromkeys(found))


def _binds(tree: ast.AST, name: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, (ast.Store, ast.Del)):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (a.asname or a.name.split(".")[0]) == name for a in node.names):
            return True
        if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return True
    return False


def notebook_sources(cells: Sequence[str], names: Iterable[str],
                     protected: Iterable[str] = ("T", "theano", "minibatches")
                     ) -> tuple[dict[str, str], list[str]]:
    """For each answer ``name``: the source of the one code cell that defines it, and the
    problems found (a name defined in several cells or in none; ``protected`` names rebound
    anywhere: another cell's ``minibatches`` would see the data during training; a Theano, numpy
    or ``nnopt.data`` name assigned as an attribute anywhere).
    ``cells``: the notebook's code cells in order, IPython syntax allowed
    (``%time`` and friends are transformed first)."""
    from IPython.core.inputtransformer2 import TransformerManager
    trees: list[ast.AST | None] = []
    for src in cells:
        try:
            trees.append(ast.parse(TransformerManager().transform_cell(src)))
        except SyntaxError:
            trees.append(None)
    sources, found = {}, []
    for name in names:
        where = [i for i, t in enumerate(trees) if t is not None and _binds(t, name)]
        if len(where) != 1:
            found.append(f"{name} is defined in {len(where)} cells ({where}); define it exactly once")
            continue
        sources[name] = cells[where[0]]
    for name in protected:
        where = [i for i, t in enumerate(trees) if t is not None and _binds(t, name)]
        if len(where) > 1:
            found.append(f"the name {name} is rebound in cells {where[1:]}; the Theano part cannot be trusted")
    patched = sorted({(i, n.attr) for i, t in enumerate(trees) if t is not None for n in ast.walk(t)
                      if isinstance(n, ast.Attribute) and isinstance(n.ctx, (ast.Store, ast.Del))
                      and n.attr in _theano_attributes()})
    found += [f"cell {i} assigns .{attr}, a name of Theano, numpy or nnopt.data; "
              f"the Theano part cannot be trusted" for i, attr in patched]
    return sources, found


@functools.cache
def _theano_attributes() -> frozenset[str]:
    """Attribute names of Theano's shared variables, compiled functions and modules, of numpy and
    of ``nnopt.data`` (``name`` aside): assigning one anywhere (``type(W).get_value = ...``,
    ``n = np; n.asarray = spy``, ``d = nnopt.data; d.check_xy = spy``) could change what the
    answers compute or let another cell watch the minibatches during training."""
    import numpy
    from ..theano_compat import T, theano
    from theano.compile.function.types import Function
    from theano.tensor.sharedvar import TensorSharedVariable
    from .. import data
    names = (dir(TensorSharedVariable), dir(Function), dir(theano), dir(T), dir(T.nnet), dir(numpy),
             dir(numpy.random), dir(data))
    return frozenset().union(*names) - {"name"}
