"""What must be absent from a lab's grading sandbox: the implementations of its graded items.

While a submission is autograded, its kernel must not be able to *reach* the reference
implementations of what the lab grades -- not switched off (a kernel can switch anything
back on), absent. :data:`WITHHELD` lists, per lab, what that means:

* ``stub``: nnopt modules in which named top-level classes/functions lose their code. A
  generated copy of the module keeps every name (so ``import nnopt`` and its other modules
  still work) but each withheld class or function raises :class:`WithheldError` saying why;
  ``None`` replaces the whole module by one whose import fails with that message
  (``nnopt.grading.reference`` and ``nnopt.grading.variants`` -- the grader's references
  and wrong variants, which only the trusted grader needs -- in every lab);
* ``packages``: importable packages hidden entirely (``torch``: ``torch.optim`` has them all);
* ``modules``: single modules of other packages hidden (``sklearn``'s numpy SGD/Adam);
* the kit's own checkout beside the ``nnopt`` package (git history, solutions, tests and
  lectures hold implementations too) and the ``__pycache__`` folders next to replaced files
  (a stale ``.pyc`` is the original code).

**Lab 4** withholds Lion, Newton-Schulz, Muon and Schedule-Free, and hides ``lion_pytorch`` and
``schedulefree`` (test extras that implement them) besides torch.

**Lab 3** uses nnopt's trainer and optimizers legitimately in Part A, so they stay; what
it grades there is verified numerically by re-running every reported row. Its Theano Adam
has no implementation anywhere to withhold (no Theano optimizer library is installed); it is
verified by a static check of the answer's source plus numbers the grader recomputes.

Two ways to apply the list:

* :func:`mounts` -> :class:`Mounts`, for the bubblewrap sandbox (``SandboxedExecute``):
  paths to hide and generated files to bind read-only over the originals, plus the kernel's
  environment (``NNOPT_GRADING_MODE=record``, ``NNOPT_LAB``). :meth:`Mounts.bwrap_args`
  turns it into bwrap options.
* :func:`overlay` -> environment variables for a kernel *without* a sandbox (the sandbox's
  explicit opt-out, applied by ``SandboxedExecute``): the same generated files
  first on ``PYTHONPATH`` and an import blocker. Then the originals are still on disk, so a
  kernel that reads files by path can reach them; the static scan flags such code.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


# The optimizers of Labs 1-2 and everything that builds them by name, in the modules they live in;
# also the newer optimizers, which degenerate to graded ones (Schedule-Free SGD with momentum
# 1e-300 is SGD to the last bit: sample sven).
_OPTIMIZER_CODE = {"optimizers.py": ("SGD", "Momentum", "_LookAhead", "Nesterov", "AdaGrad", "_RMSMixin", "RMSProp",
                                     "RMSPropNesterov", "AdaDelta", "Adam"),
                   "adam_variants.py": ("_Betas", "AdamW", "AMSGrad", "Adamax", "Nadam"),
                   "optimizers_modern.py": ("Lion", "_ScheduleFree", "ScheduleFreeSGD", "ScheduleFreeAdamW"),
                   "optimizers_matrix.py": ("Muon", "Adafactor"),
                   "optimizer_base.py": ("make_optimizer",)}


@dataclass(frozen=True)
class Withheld:
    """What one lab withholds (see the module docstring)."""

    stub: dict[str, tuple[str, ...] | None]
    packages: tuple[str, ...] = ("torch", "functorch")
    modules: tuple[str, ...] = ("sklearn.neural_network._stochastic_optimizers", "sklearn.neural_network.tests")


_GRADER = {"grading/reference.py": None, "grading/variants.py": None, "grading/variants_beyond.py": None}
WITHHELD: dict[str, Withheld] = {
    "lab1_sgd_momentum": Withheld({**_GRADER, **_OPTIMIZER_CODE, "schedules.py": ("inverse_time",)}),
    "lab2_adaptive": Withheld({**_GRADER, **_OPTIMIZER_CODE,
                               "clipping.py": ("clip_by_value", "clip_by_global_norm", "global_norm")}),
    "lab3_handson": Withheld({**_GRADER, "grading/symbolic.py": ("softmax_reference",)}),
    # Lab 4 grades Lion, Newton-Schulz and Muon (and offers Schedule-Free SGD): their code, the
    # factory that builds them by name, and the packages holding other implementations
    # (torch.optim.Muon, lion_pytorch, schedulefree) are absent.
    "lab4_beyond_adam": Withheld({**_GRADER, "optimizers_modern.py": ("Lion", "_ScheduleFree", "ScheduleFreeSGD",
                                                                      "ScheduleFreeAdamW"),
                                  "optimizers_matrix.py": ("newton_schulz", "Muon"),
                                  "optimizer_base.py": ("make_optimizer",)},
                                 packages=("torch", "functorch", "lion_pytorch", "schedulefree")),
}
RECORD_ENV = "NNOPT_GRADING_MODE"


def message(lab: str, what: str) -> str:
    return (f"{what} is not installed while {lab} is autograded: the lab grades your own "
            "implementation, so the reference is absent (not merely switched off)")


def withheld(lab: str) -> Withheld:
    if lab not in WITHHELD:
        raise ValueError(f"Invalid lab: {lab!r} (expected one of {', '.join(sorted(WITHHELD))}; "
                         "add the lab to autograder/withheld.py WITHHELD)")
    return WITHHELD[lab]


# ----------------------------------------------------------------- generated replacements
def stub_source(source: str, names: tuple[str, ...] | None, module: str, lab: str) -> str:
    """``source`` with the code of the top-level ``names`` removed (None: the whole module).

    A withheld function keeps its signature and raises; a withheld class keeps its bases and
    its literal class attributes (``name = "sgd"``) and raises when instantiated.
    """
    if names is None:
        return f"raise ImportError({message(lab, module)!r})\n"
    tree = ast.parse(source)
    missing = set(names) - {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    if missing:
        raise ValueError(f"Invalid withheld names for {module}: {sorted(missing)} (not defined there)")
    body = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            node.decorator_list, node.returns = [], None
            node.body = [_raise(f"{module}.{node.name}")]
        elif isinstance(node, ast.ClassDef) and node.name in names:
            kept = [s for s in node.body if isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None
                    and _is_literal(s.value)]
            init = ast.parse("def __init__(self, *args, **kwargs):\n    pass").body[0]
            init.body = [_raise(f"{module}.{node.name}")]
            node.decorator_list, node.body = [], [*kept, init]
        body.append(node)
    head = [n for i, n in enumerate(body) if (isinstance(n, ast.ImportFrom) and n.module == "__future__")
            or (i == 0 and isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    prelude = ast.parse(f"class WithheldError(RuntimeError):\n    'A graded implementation, withheld.'\n"
                        f"_WITHHELD_MESSAGE = {message(lab, '%s')!r}\n").body
    tree.body = head + prelude + [n for n in body if n not in head]
    return f"# generated by autograder/withheld.py for {lab}: graded code removed\n" + ast.unparse(tree) + "\n"


def _raise(what: str) -> ast.stmt:
    return ast.parse(f"raise WithheldError(_WITHHELD_MESSAGE % {what!r})").body[0]


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except ValueError:
        return False


def _nnopt_dir() -> Path:
    spec = importlib.util.find_spec("nnopt")
    return Path(spec.submodule_search_locations[0]).resolve()


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name.split(".")[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]).resolve()


def _module_path(name: str) -> Path | None:
    """Where ``a.b.c`` lives (``.../a/b/c.py`` or the package folder), without importing it."""
    top = _package_dir(name)
    if top is None:
        return None
    rest = name.split(".")[1:]
    base = top.joinpath(*rest)
    return base if base.is_dir() else base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def checkout_paths(nnopt_dir: Path) -> list[Path]:
    """The kit's checkout beside ``lib/nnopt`` (everything but ``lib`` and ``.venv``) and its
    git object store, when nnopt is installed from a checkout (editable)."""
    repo = nnopt_dir.parents[1]
    if nnopt_dir.parent.name != "lib" or not (repo / "pyproject.toml").is_file():
        return []
    out = [p for p in sorted(repo.iterdir()) if p.name not in ("lib", ".venv")]
    git = repo / ".git"
    if git.is_file():                                   # a worktree: "gitdir: <common>/worktrees/<name>"
        target = Path(git.read_text().split(":", 1)[1].strip())
        out.append(target.parents[1] if target.parent.name == "worktrees" else target)
    return out


# ----------------------------------------------------------------- the sandbox: mounts
@dataclass(frozen=True)
class Replacement:
    """Bind ``source`` (generated) read-only over ``target`` (a file or a folder)."""

    target: Path
    source: Path


@dataclass(frozen=True)
class Mounts:
    """What a lab's sandbox must look like: ``hide`` (make empty: a folder becomes an empty
    read-only tmpfs, a file ``/dev/null``), ``replace`` and the kernel's ``env``."""

    lab: str
    hide: tuple[Path, ...]
    replace: tuple[Replacement, ...]
    env: dict[str, str] = field(default_factory=dict)

    def bwrap_args(self) -> list[str]:
        """bubblewrap options, to put after the binds that make these paths visible."""
        args: list[str] = []
        for r in self.replace:
            args += ["--ro-bind", str(r.source), str(r.target)]
        for path in self.hide:
            args += ["--tmpfs", str(path), "--remount-ro", str(path)] if path.is_dir() else \
                ["--ro-bind", "/dev/null", str(path)]
        return args


def _generate(lab: str, workdir: Path) -> tuple[list[Replacement], list[Path]]:
    """Write the replacement files for ``lab`` under ``workdir``; return them and the
    ``__pycache__`` folders / files to hide."""
    spec, nnopt_dir = withheld(lab), _nnopt_dir()
    out, hide = [], []
    for rel, names in spec.stub.items():
        target = nnopt_dir / rel
        dest = workdir / "nnopt" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(stub_source(target.read_text(), names, f"nnopt.{rel[:-3].replace('/', '.')}", lab))
        out.append(Replacement(target, dest))
        hide.append(target.parent / "__pycache__")
    for name in spec.packages + spec.modules:
        path = _module_path(name)
        if path is None:
            continue
        stub = workdir / "hidden" / name
        text = f"raise ImportError({message(lab, name)!r})\n"
        if path.is_dir():
            stub.mkdir(parents=True, exist_ok=True)
            (stub / "__init__.py").write_text(text)
        else:
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(text)
            hide.append(path.parent / "__pycache__")
        out.append(Replacement(path, stub))
    return out, sorted({p for p in hide if p.is_dir()})


def mounts(lab: str, workdir: Path) -> Mounts:
    """The sandbox of ``lab``: generated replacements (written under ``workdir``, which must
    outlive the sandbox), paths to hide, and the kernel environment of the grading contract."""
    replace, hide = _generate(lab, Path(workdir))
    hide += checkout_paths(_nnopt_dir())
    return Mounts(lab, tuple(hide), tuple(replace), {RECORD_ENV: "record", "NNOPT_LAB": lab})


# ----------------------------------------------------------------- without a sandbox: an overlay
_BLOCKER = '''"""Generated by autograder/withheld.py: modules withheld while {lab} is autograded."""
import importlib.abc, importlib.machinery, sys
_HIDDEN = {hidden!r}
class _Withheld(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == h or name.startswith(h + ".") for h in _HIDDEN):
            raise ImportError({msg!r} % name)
        return None
sys.meta_path.insert(0, _Withheld())
_here = __file__.rsplit("/", 1)[0]
_next = importlib.machinery.PathFinder.find_spec("sitecustomize", [p for p in sys.path if p.rstrip("/") != _here])
if _next is not None and _next.loader is not None:
    _next.loader.exec_module(type(sys)("sitecustomize"))
'''


def overlay(lab: str, workdir: Path) -> dict[str, str]:
    """Environment for an unsandboxed kernel: record mode, and ``workdir`` (filled here) first
    on ``PYTHONPATH`` with a copy of nnopt whose withheld files are the generated ones and a
    ``sitecustomize`` that refuses to import the hidden packages and modules."""
    workdir = Path(workdir)
    spec, nnopt_dir = withheld(lab), _nnopt_dir()
    with tempfile.TemporaryDirectory() as tmp:
        replace, _ = _generate(lab, Path(tmp))
        shutil.copytree(nnopt_dir, workdir / "nnopt", ignore=shutil.ignore_patterns("__pycache__"))
        for r in replace:
            if r.target.is_relative_to(nnopt_dir):
                shutil.copyfile(r.source, workdir / "nnopt" / r.target.relative_to(nnopt_dir))
    (workdir / "sitecustomize.py").write_text(_BLOCKER.format(
        lab=lab, hidden=tuple(spec.packages + spec.modules), msg=message(lab, "%s")))
    path = os.pathsep.join(p for p in (str(workdir), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, RECORD_ENV: "record", "NNOPT_LAB": lab}

