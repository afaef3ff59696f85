"""Static scan of a submission for code that tampers with grading (outside the kernel).

Student code runs in the same kernel as the tests, so in principle it can rewrite anything
there; ``nnopt.grading`` defeats the cheap tricks at run time (see its docstring). This scan
is the second line: it reads the cells students can edit -- without running them -- and
flags, for the instructor's review, code that

* assigns to or deletes attributes/items of modules (``np.allclose = ...``,
  ``nnopt.Momentum = ...``, ``nnopt.OPTIMIZERS["sgd"] = ...``, ``sys.modules[...] = ...``),
  also via ``setattr``/``delattr``;
* touches the machinery of the kernel or the grader (``get_ipython``, ``builtins``,
  ``sys.modules``, ``sys._getframe``, ``gc``, ``ctypes``, ``importlib``, ``inspect``, ``nnopt.grading``'s
  private names, ``np.set_numeric_ops``) or runs code dynamically (``exec``, ``eval``,
  ``compile``, ``__import__``);
* uses nnopt's reference implementations inside an answer (``nnopt.Adam``, ``from nnopt
  import Momentum``, ``make_optimizer``, ``clip_by_global_norm``).

It also reports edits of read-only and test cells (nbgrader restores them). A flag is a hint,
not a verdict: scores are not changed; the CSV lists the flags.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable

import nbformat

MODULE_ALIASES = {"np", "numpy", "nnopt", "grading", "surfaces", "schedules", "plt", "matplotlib",
                  "sys", "os", "builtins", "subprocess", "json", "importlib", "math", "T", "theano"}
DANGEROUS_NAMES = {"get_ipython", "__builtins__", "builtins", "set_numeric_ops", "_getframe",
                   "modules", "set_custom_exc", "showtraceback"}
DANGEROUS_MODULES = {"ctypes", "gc", "importlib", "builtins", "inspect"}
CODE_MAGICS = {"time", "timeit", "prun", "capture"}
HARMLESS_MAGICS = {"matplotlib", "config", "pylab", "who", "whos", "pwd", "ls", "pip", "load_ext"}
DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__"}
REFERENCE_NAMES = {"SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "RMSPropNesterov",
                   "AdaDelta", "Adam", "Adamax", "AdamW", "Nadam", "AMSGrad", "make_optimizer",
                   "OPTIMIZERS", "clip_by_value", "clip_by_global_norm", "global_norm",
                   "optimizers", "clipping"}


def _root(node: ast.AST) -> str | None:
    """Name at the root of ``a.b[c].d`` (``a``), if any."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001
        return type(node).__name__


class _Scanner(ast.NodeVisitor):
    def __init__(self, modules: set[str], references_allowed: bool = False):
        self.modules = set(modules)
        self.references_allowed = references_allowed
        self.flags: list[str] = []

    def flag(self, text: str) -> None:
        if text not in self.flags:
            self.flags.append(text)

    # imports define module names and may pull in references
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.modules.add((alias.asname or alias.name).split(".")[0])
            if alias.name.split(".")[0] in DANGEROUS_MODULES:
                self.flag(f"imports {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        for alias in node.names:
            if mod.startswith("nnopt") and alias.name in REFERENCE_NAMES and not self.references_allowed:
                self.flag(f"imports nnopt's reference {alias.name}")
            if mod == "nnopt.grading" or alias.name.startswith("_"):
                self.flag(f"imports {mod}.{alias.name}")
            if mod.split(".")[0] in DANGEROUS_MODULES:
                self.flag(f"imports from {mod}")

    def _check_target(self, target: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._check_target(t, verb)
        elif isinstance(target, (ast.Attribute, ast.Subscript)) and _root(target) in self.modules:
            self.flag(f"{verb} {_dotted(target)}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._check_target(t, "assigns")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, "assigns")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self._check_target(t, "deletes")
        self.generic_visit(node)

    def _magic(self, node: ast.Call) -> bool:
        """IPython syntax after transformation: ``get_ipython().run_line_magic(name, line)``,
        ``run_cell_magic(name, line, cell)``, ``system(cmd)`` / ``getoutput(cmd)`` for ``!cmd``.
        Magics that run Python (``%time``, ``%%capture``...) have their code scanned; shell
        commands are flagged; other magics (``%matplotlib inline``) are fine."""
        fn = node.func
        if not (isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Call)
                and isinstance(fn.value.func, ast.Name) and fn.value.func.id == "get_ipython"):
            return False
        args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if fn.attr in {"system", "getoutput"}:
            self.flag(f"runs a shell command ({args[0][:40] if args else '?'})")
        elif fn.attr in {"run_line_magic", "run_cell_magic"} and args:
            if args[0] in CODE_MAGICS:
                for code in args[1:]:
                    try:
                        self.visit(ast.parse(code))
                    except SyntaxError:
                        pass
            elif args[0] not in HARMLESS_MAGICS:
                self.flag(f"uses the magic %{args[0]}")
        else:
            return False
        return True

    def visit_Call(self, node: ast.Call) -> None:
        if self._magic(node):
            return
        fn = node.func
        name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
        if name in DYNAMIC_CALLS:
            self.flag(f"runs code dynamically ({name})")
        if name in {"setattr", "delattr"} and node.args and _root(node.args[0]) in self.modules:
            self.flag(f"{name} on {_dotted(node.args[0])}")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        root = _root(node)
        if node.attr in DANGEROUS_NAMES:
            self.flag(f"uses {_dotted(node)}")
        if root == "nnopt" and node.attr in REFERENCE_NAMES and not self.references_allowed:
            self.flag(f"uses nnopt's reference {_dotted(node)}")
        if root == "grading" and node.attr.startswith("_"):
            self.flag(f"uses grading internals ({_dotted(node)})")
        if node.attr == "grading" and root == "nnopt" and isinstance(node.ctx, ast.Store):
            self.flag("replaces nnopt.grading")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in DANGEROUS_NAMES:
            self.flag(f"uses {node.id}")
        if node.id in {"grading", "nnopt", "np", "numpy"} and isinstance(node.ctx, ast.Store):
            self.flag(f"rebinds the name {node.id}")


def _python_source(source: str) -> str:
    """Cell source with IPython syntax (``%magic``, ``!cmd``) turned into Python."""
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(source)


def editable_code_cells(nb: nbformat.NotebookNode) -> Iterable[tuple[int, str]]:
    """(index, source) of code cells a student can change: all but locked nbgrader cells
    (nbgrader restores those from the gradebook before running)."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and not cell.get("metadata", {}).get("nbgrader", {}).get("locked"):
            yield i, cell.source


def edited_locked_cells(nb: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[str]:
    """Flags for read-only/test cells whose source or points differ from the release
    (nbgrader puts the original back before grading; the attempt is worth knowing)."""
    original = {c.metadata["nbgrader"]["grade_id"]: c for c in release.cells
                if c.get("metadata", {}).get("nbgrader", {}).get("locked")}
    flags = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        ref = original.get(meta.get("grade_id"))
        if ref is None:
            continue
        if cell.source.strip() != ref.source.strip():
            flags.append(f"edited the read-only cell {meta['grade_id']} (restored for grading)")
        if meta.get("points") != ref.metadata["nbgrader"].get("points"):
            flags.append(f"changed the points of {meta['grade_id']} (restored for grading)")
    return flags


def scan_notebook(nb: nbformat.NotebookNode, release: nbformat.NotebookNode | None = None) -> list[str]:
    """Flags (human-readable, ``"cell 7: assigns np.allclose"``) for a submission; with the
    ``release`` notebook, also edits of its read-only cells. A lab whose answers are meant to
    use nnopt's optimizers (Lab 3) says so in its notebook metadata,
    ``{"nnopt": {"answers_use_references": true}}``; then such uses are not flagged."""
    flags: list[str] = [] if release is None else edited_locked_cells(nb, release)
    allowed = bool(release is not None
                   and release.metadata.get("nnopt", {}).get("answers_use_references"))
    modules = set(MODULE_ALIASES)
    for index, source in editable_code_cells(nb):
        scanner = _Scanner(modules, allowed)
        try:
            scanner.visit(ast.parse(_python_source(source)))
        except SyntaxError as exc:
            flags.append(f"cell {index}: syntax error (line {exc.lineno})")
            continue
        modules |= scanner.modules
        flags += [f"cell {index}: {f}" for f in scanner.flags]
    return flags
