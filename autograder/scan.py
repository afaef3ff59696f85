"""Static scan of a submission: code that reaches for the grading machinery, flagged for review.

Points are decided elsewhere (``verdicts.py``: numbers the grader recomputes, references
absent from the sandbox); a flag never changes a score. It tells the instructor *what to
look at*: the scan reads **every code cell, whatever its metadata claims** (a cell marked
``"locked": true`` by the student is still student code: nbgrader only restores cells it
knows from the gradebook), skipping only cells identical to a cell of the released lab.
Each finding is a :class:`Flag` with a category:

==================  ==========================================================================
category            examples
==================  ==========================================================================
tampering           ``np.allclose = ...``, ``setattr(grading, ...)``, ``vars(np)[...] = ...``,
                    rebinding ``grading``/``nnopt``/``np``, ``sys.modules``, ``builtins``
dynamic access      ``vars(``, ``globals()``, computed ``getattr(x, name)``, ``__code__``,
                    ``__globals__``, ``__dict__``, ``exec``/``eval``/``compile``, ``importlib``,
                    other modules reached through numpy/Theano (``np.sys.modules``)
introspection       frames and tracebacks (``sys._getframe``, ``f_back``, ``tb_frame``,
                    ``inspect``, ``gc``, ``sys.settrace``)
kernel hooks        IPython hooks (``get_ipython``, ``set_custom_exc``, ``sys.excepthook``,
                    ``events.register``, magics that are not plain ``%time``/``%matplotlib``)
processes           ``subprocess``, ``os.kill``/``os.system``/``os.fork``, ``signal``, ``!cmd``
files               ``/proc``, ``sqlite3``, paths outside the working folder (``/...``,
                    ``~``, ``..``), ``os.chdir``
network             ``socket``, ``urllib``, ``requests``, ``http``
reference use       nnopt's graded implementations in an answer (``nnopt.Momentum``,
                    ``Optimizer.step``, ``make_optimizer``), ``torch``, sklearn's optimizers
edits               edited read-only cells and changed points (nbgrader restores them)
==================  ==========================================================================

``scan_notebook`` returns the flags as text (``"cell 7: uses vars()"``) for the CSV;
:func:`scan` returns :class:`Flag` objects (the class report counts them by category).
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

import nbformat

MODULE_ALIASES = {"np", "numpy", "nnopt", "grading", "surfaces", "schedules", "plt", "matplotlib",
                  "sys", "os", "builtins", "subprocess", "json", "importlib", "math", "T", "theano"}
PROTECTED = {"grading", "nnopt", "np", "numpy", "T", "theano"}
DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__", "globals", "locals", "vars"}
DUNDERS = {"__code__", "__globals__", "__closure__", "__dict__", "__builtins__", "__subclasses__",
           "__mro__", "__bases__", "__getattribute__", "__defaults__", "__kwdefaults__", "__func__",
           "__self__", "__wrapped__", "__loader__", "__spec__", "__import__", "__setattr__", "__delattr__"}
INTROSPECTION = {"_getframe", "currentframe", "f_back", "f_globals", "f_locals", "f_builtins",
                 "tb_frame", "tb_next", "exc_info", "settrace", "setprofile", "get_referrers",
                 "get_referents", "get_objects", "getclosurevars", "getouterframes"}
HOOKS = {"get_ipython", "set_custom_exc", "showtraceback", "excepthook", "displayhook",
         "InteractiveShell", "display_pub", "run_cell", "set_next_input", "ast_transformers",
         "input_transformers_post", "user_ns", "set_numeric_ops"}
#: Attributes through which numpy and Theano hand out other modules (``np.sys.modules["nnopt"]``,
#: ``np.lib.format.pickle.loads(...)``): flagged anywhere in a chain rooted at ``np``/``T``/...
MODULE_DOORS = {"sys", "os", "pickle", "ctypes", "builtins", "importlib", "subprocess"}
NUMERIC_ROOTS = {"np", "numpy", "T", "theano"}
#: attributes flagged only on a given root name: ``inspect.stack`` (not ``np.stack``), ...
ROOTED = {("inspect", "stack"): "introspection", ("sys", "modules"): "tampering",
          ("events", "register"): "kernel hooks"}
PROCESS = {"kill", "killpg", "system", "popen", "fork", "forkpty", "execv", "execve", "execvp", "spawnv",
           "_exit", "abort", "setrlimit"}
MODULES = {"ctypes": "processes", "subprocess": "processes", "signal": "processes", "multiprocessing": "processes",
           "pty": "processes", "gc": "introspection", "inspect": "introspection", "traceback": "introspection",
           "importlib": "dynamic access", "builtins": "tampering", "sqlite3": "files", "shutil": "files",
           "socket": "network", "urllib": "network", "requests": "network", "http": "network",
           "IPython": "kernel hooks", "torch": "reference use", "functorch": "reference use"}
CODE_MAGICS = {"time", "timeit", "prun", "capture"}
HARMLESS_MAGICS = {"matplotlib", "config", "pylab", "who", "whos", "pwd", "load_ext"}
REFERENCE_NAMES = {"SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "RMSPropNesterov", "AdaDelta", "Adam",
                   "Adamax", "AdamW", "Nadam", "AMSGrad", "make_optimizer", "OPTIMIZERS", "Optimizer",
                   "clip_by_value", "clip_by_global_norm", "global_norm", "optimizers", "clipping", "schedules"}
#: an absolute or home path (``/proc``, ``/work/...``, ``~/x``) or a way up (``../``)
PATH_OUTSIDE = re.compile(r"(^|\s)(/[\w.]|~/)|(^|/)\.\.(/|$)")
REFERENCE_MODULES = ("sklearn.neural_network", "sklearn.linear_model", "nnopt.optimizers", "nnopt.clipping",
                     "nnopt.grading.reference", "nnopt.grading.variants")


@dataclass(frozen=True)
class Flag:
    """One finding: the cell's index, its category, what was seen, and the module name the
    code acts on, if any (``np`` for ``np.allclose = ...``)."""

    cell: int | None
    category: str
    text: str
    root: str | None = None

    def __str__(self) -> str:
        return self.text if self.cell is None else f"cell {self.cell}: {self.text}"


def _root(node: ast.AST) -> str | None:
    """Name at the root of ``a.b[c].d`` (``a``), if any."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _text(node: ast.AST) -> str:
    return ast.unparse(node)[:60]


class _Scanner(ast.NodeVisitor):
    def __init__(self, modules: set[str], references_allowed: bool):
        self.modules = set(modules)
        self.references_allowed = references_allowed
        self.found: list[tuple[str, str, str | None]] = []

    def flag(self, category: str, text: str, root: str | None = None) -> None:
        if (category, text, root) not in self.found:
            self.found.append((category, text, root))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.modules.add((alias.asname or alias.name).split(".")[0])
            self._module(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        self._module(mod)
        for alias in node.names:
            if mod.startswith("nnopt") and alias.name in REFERENCE_NAMES and not self.references_allowed:
                self.flag("reference use", f"imports nnopt's reference {alias.name}")
            if mod.startswith("nnopt.grading") or alias.name.startswith("_"):
                self.flag("tampering", f"imports {mod}.{alias.name}", "grading")
            if alias.name in HOOKS | INTROSPECTION | DUNDERS:
                self.flag("introspection", f"imports {mod}.{alias.name}")

    def _module(self, name: str) -> None:
        top = name.split(".")[0]
        if top in MODULES:
            self.flag(MODULES[top], f"imports {name}")
        if any(name == m or name.startswith(m + ".") for m in REFERENCE_MODULES) and not (
                self.references_allowed and name.startswith("nnopt.optimizers")):
            self.flag("reference use", f"imports {name}")

    def _target(self, target: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List, ast.Starred)):
            for t in (target.elts if not isinstance(target, ast.Starred) else [target.value]):
                self._target(t, verb)
        elif isinstance(target, (ast.Attribute, ast.Subscript)) and _root(target) in self.modules:
            self.flag("tampering", f"{verb} {_text(target)}", _root(target))
        elif isinstance(target, (ast.Attribute, ast.Subscript)) and _root(target) in DYNAMIC_CALLS:
            self.flag("tampering", f"{verb} {_text(target)}", _root(target))

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._target(t, "assigns")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node.target, "assigns")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self._target(t, "deletes")
        self.generic_visit(node)

    def _magic(self, node: ast.Call) -> bool:
        """IPython syntax after transformation: ``get_ipython().run_line_magic(name, line)``,
        ``run_cell_magic(name, line, cell)``, ``system(cmd)`` / ``getoutput(cmd)`` for ``!cmd``.
        Magics that run Python (``%time``, ``%%capture``...) have their code scanned."""
        fn = node.func
        if not (isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Call)
                and isinstance(fn.value.func, ast.Name) and fn.value.func.id == "get_ipython"):
            return False
        args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if fn.attr in {"system", "getoutput"}:
            self.flag("processes", f"runs a shell command ({args[0][:40] if args else '?'})")
        elif fn.attr in {"run_line_magic", "run_cell_magic"} and args:
            if args[0] in CODE_MAGICS:
                for code in args[1:]:
                    try:
                        self.visit(ast.parse(code))
                    except SyntaxError:
                        pass
            elif args[0] not in HARMLESS_MAGICS:
                self.flag("kernel hooks", f"uses the magic %{args[0]}")
        else:
            return False
        return True

    def visit_Call(self, node: ast.Call) -> None:
        if self._magic(node):
            return
        fn = node.func
        name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
        first = node.args[0] if node.args else None
        if name in DYNAMIC_CALLS:
            text = f"uses {name}()" if name in {"globals", "locals", "vars"} else f"runs code dynamically ({name})"
            self.flag("dynamic access", text, _root(first) if first is not None else None)
        if name in {"getattr", "setattr", "delattr", "hasattr"} and len(node.args) >= 2:
            attr = node.args[1]
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                self.flag("dynamic access", f"computed {name}({_text(first)}, {_text(attr)})", _root(first))
            elif attr.value in DUNDERS | INTROSPECTION or attr.value.startswith("__"):
                self.flag("dynamic access", f"{name}(..., {attr.value!r})", _root(first))
        if name in {"setattr", "delattr"} and first is not None and _root(first) in self.modules:
            self.flag("tampering", f"{name} on {_text(first)}", _root(first))
        if isinstance(fn, ast.Attribute) and _root(fn) == "os" and name in PROCESS | {"chdir"}:
            self.flag("processes" if name != "chdir" else "files", f"calls os.{name}")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        root = _root(node)
        if node.attr in DUNDERS:
            self.flag("dynamic access", f"uses {_text(node)}", root)
        elif node.attr in INTROSPECTION:
            self.flag("introspection", f"uses {_text(node)}", root)
        elif node.attr in HOOKS:
            self.flag("kernel hooks", f"uses {_text(node)}", root)
        elif (root, node.attr) in ROOTED or ("events", node.attr) in ROOTED and "events" in _text(node):
            self.flag(ROOTED.get((root, node.attr), ROOTED.get(("events", node.attr), "")), f"uses {_text(node)}", root)
        if root in NUMERIC_ROOTS and node.attr in MODULE_DOORS:
            self.flag("dynamic access", f"reaches another module through {_text(node)}", root)
        if root == "nnopt" and node.attr in REFERENCE_NAMES and not self.references_allowed:
            self.flag("reference use", f"uses nnopt's reference {_text(node)}")
        if root == "grading" and node.attr.startswith("_"):
            self.flag("tampering", f"uses grading internals ({_text(node)})", "grading")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in HOOKS or node.id in {"__builtins__", "builtins"}:
            self.flag("kernel hooks" if node.id in HOOKS else "tampering", f"uses {node.id}", node.id)
        if node.id in PROTECTED and isinstance(node.ctx, (ast.Store, ast.Del)):
            self.flag("tampering", f"rebinds the name {node.id}", node.id)

    def visit_Constant(self, node: ast.Constant) -> None:
        v = node.value
        if isinstance(v, str) and (PATH_OUTSIDE.search(v) or "gradebook" in v or v.endswith(".db")):
            self.flag("files", f"names a path outside the working folder ({v[:40]!r})")


def _python_source(source: str) -> str:
    """Cell source with IPython syntax (``%magic``, ``!cmd``) turned into Python."""
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(source)


def student_code_cells(nb: nbformat.NotebookNode, release: nbformat.NotebookNode | None = None
                       ) -> Iterable[tuple[int, str]]:
    """(index, source) of every code cell, whatever its metadata says, except cells identical
    to a code cell of the ``release`` (the lab's own, unmodified code)."""
    released = set() if release is None else {c.source.strip() for c in release.cells if c.cell_type == "code"}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip() not in released:
            yield i, cell.source


def edited_locked_cells(nb: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[Flag]:
    """Read-only/test cells whose source or points differ from the release (nbgrader puts the
    original back before grading; the attempt is worth knowing)."""
    original = {c.metadata["nbgrader"]["grade_id"]: c for c in release.cells
                if c.get("metadata", {}).get("nbgrader", {}).get("locked")}
    flags = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        ref = original.get(meta.get("grade_id"))
        if ref is None:
            continue
        if cell.source.strip() != ref.source.strip():
            flags.append(Flag(None, "edits", f"edited the read-only cell {meta['grade_id']} (restored for grading)"))
        if meta.get("points") != ref.metadata["nbgrader"].get("points"):
            flags.append(Flag(None, "edits", f"changed the points of {meta['grade_id']} (restored for grading)"))
    return flags


def scan(nb: nbformat.NotebookNode, release: nbformat.NotebookNode | None = None) -> list[Flag]:
    """The flags of a submission; with the ``release`` notebook, also edits of its read-only
    cells. A lab whose answers are meant to use nnopt's optimizers (Lab 3) says so in its
    metadata, ``{"nnopt": {"answers_use_references": true}}``; then such uses are not flagged."""
    flags = [] if release is None else edited_locked_cells(nb, release)
    allowed = bool(release is not None and release.metadata.get("nnopt", {}).get("answers_use_references"))
    modules = set(MODULE_ALIASES)
    for index, source in student_code_cells(nb, release):
        scanner = _Scanner(modules, allowed)
        try:
            scanner.visit(ast.parse(_python_source(source)))
        except SyntaxError as exc:
            flags.append(Flag(index, "syntax", f"syntax error (line {exc.lineno})"))
            continue
        modules |= scanner.modules
        flags += [Flag(index, category, text, root) for category, text, root in scanner.found]
    return flags


def scan_notebook(nb: nbformat.NotebookNode, release: nbformat.NotebookNode | None = None) -> list[str]:
    """:func:`scan` as text, for the CSV (``"cell 7: assigns np.allclose"``)."""
    return [str(f) for f in scan(nb, release)]
