"""The course folder and nbgrader's API on it: paths, ``release``, the gradebook's lab list."""
from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Blocks jsonschema's optional ``rfc3987_syntax`` import (~2 s of CPU building a grammar at
#: import time, a third of an autograde process's start-up); nbgrader never validates URIs.
NBGRADER_MAIN = ("import sys; sys.modules['rfc3987_syntax'] = None; "
                 "from nbgrader.apps.nbgraderapp import main; sys.exit(main())")


@dataclass(frozen=True)
class Course:
    """Paths of one course folder (``autograder/``; its nbgrader_config.py names the source
    folder, by default ``../solutions``, and the release folder ``../labs``)."""

    root: Path

    @property
    def solutions(self) -> Path:
        return (self.root / self._loaded().CourseDirectory.get("source_directory", "../solutions")).resolve()

    @property
    def labs_dir(self) -> Path:
        return (self.root / self._loaded().CourseDirectory.get("release_directory", "../labs")).resolve()

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    @property
    def autograded(self) -> Path:
        return self.root / "autograded"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback"

    @property
    def grades(self) -> Path:
        return self.root / "grades"

    @property
    def db(self) -> Path:
        return self.root / "gradebook.db"

    def _loaded(self):
        from traitlets.config.loader import PyFileConfigLoader

        if "_config" not in self.__dict__:           # read once per Course object
            loaded = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config()
            object.__setattr__(self, "_config", loaded)
        return self.__dict__["_config"]

    def config(self):
        """The course's nbgrader_config.py, loaded (a traitlets ``Config`` of one's own)."""
        return copy.deepcopy(self._loaded())

    def labs(self) -> list[str]:
        """Lab names: folders ``<source>/<lab>/`` holding ``<lab>.ipynb``."""
        return sorted(p.name for p in self.solutions.iterdir() if (p / f"{p.name}.ipynb").is_file())

    def released(self, lab: str) -> Path:
        return self.labs_dir / lab / f"{lab}.ipynb"

    def copy_to(self, root: Path) -> "Course":
        """A private course under ``root``: solutions/, labs/ and the autograder's code,
        no grading data (for tests and benchmarks that must not touch this one)."""
        shutil.copytree(self.solutions, root / "solutions")
        shutil.copytree(self.labs_dir, root / "labs")
        (root / "autograder").mkdir()
        for path in self.root.glob("*.py"):
            shutil.copy(path, root / "autograder")
        return Course(root / "autograder")


def db_url(path: Path) -> str:
    return f"sqlite:///{path}"


def nbgrader_environment() -> dict[str, str]:
    """Environment of nbgrader processes: this Python's ``bin`` first on PATH (nbgrader runs
    ``alembic`` from PATH). Kernels get theirs from ``Sandbox.kernel_environment``."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def api(course: Course, **config: dict):
    """nbgrader's Python API for ``course`` with its nbgrader_config.py (+ overrides)."""
    sys.modules.setdefault("rfc3987_syntax", None)   # as in NBGRADER_MAIN, for this process
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    os.environ["PATH"] = nbgrader_environment()["PATH"]
    cfg = course.config()
    cfg.CourseDirectory.root = str(course.root)
    cfg.CourseDirectory.db_url = db_url(course.db)
    cfg.merge(Config(config))
    return NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)


def release(course: Course, into: Path | None = None, labs: Sequence[str] | None = None,
            use_db: bool = False) -> list[Path]:
    """``generate_assignment`` for ``labs`` (default all) into ``into`` (default ``labs/``).

    With ``use_db`` the gradebook records the cells too (needed before grading).
    Raises RuntimeError with nbgrader's log if a lab fails.
    """
    target = course.labs_dir if into is None else Path(into)
    nbgrader = api(course, CourseDirectory={"release_directory": str(target)},
                   GenerateAssignment={"no_database": not use_db}, SaveCells={"enabled": use_db})
    out = []
    for lab in labs or course.labs():
        result = nbgrader.generate_assignment(lab, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"generate_assignment {lab} failed:\n{result.get('log', '')}"
                               f"\n{result.get('error', '')}")
        out.append(target / lab / f"{lab}.ipynb")
    return out


def sync_gradebook(course: Course, labs: Sequence[str]) -> list[str]:
    """Record the current source notebooks in the gradebook; return warnings (stale ``labs/``)."""
    warnings = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in release(course, into=Path(tmp), labs=labs, use_db=True):
            lab = path.parent.name
            committed = course.released(lab)
            if not committed.is_file() or committed.read_bytes() != path.read_bytes():
                warnings.append(f"labs/{lab} differs from what solutions/ generates: students may "
                                "have an outdated version (run `make release`)")
    return warnings
