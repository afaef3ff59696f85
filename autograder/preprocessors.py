"""nbgrader preprocessors of the kit's autograde chain (``c.Autograde.autograde_preprocessors``).

* :class:`SandboxedExecute` -- a drop-in for nbgrader's ``Execute`` (same traits: ``timeout``,
  ``interrupt_on_timeout``, ``allow_errors``, ``raise_on_iopub_timeout``, ``error_on_timeout``,
  ``extra_arguments``, ``startup_timeout``, ...; ``c.ExecutePreprocessor.timeout`` still sets
  the per-cell limit) that executes the notebook in the sandbox (``sandbox.py``). The kernel
  sees ``NNOPT_GRADING_MODE=record`` and ``NNOPT_LAB=<assignment>``. A notebook that cannot be
  executed (kernel died, wall limit, ...) raises :class:`GradingError`: nbgrader then fails
  that submission alone and goes on with the next.
* :class:`LimitOutputBytes` -- nbgrader's ``LimitOutput`` (lines per stream, traceback lines)
  plus byte caps per cell and per notebook (``output_limits``), with the ``Sandbox`` limits.

With ``report_file`` set (the pipeline does), each notebook appends one JSON line:
``{"lab", "student", "notebook", "status": "ok"|"error", "reason", "seconds", "inner_seconds",
"truncated_cells", "sandbox"}`` -- how the pipeline learns the reason of a grading error.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbconvert.preprocessors import ExecutePreprocessor
from nbformat import NotebookNode, from_dict
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute, LimitOutput
from traitlets import Unicode

from . import output_limits, withheld
from .sandbox import OPT_OUT_WARNING, Sandbox, SandboxUnavailable

#: nbclient settings handed to the executor inside the sandbox (JSON-serialisable traits).
EXECUTOR_TRAITS = ("timeout", "interrupt_on_timeout", "allow_errors", "raise_on_iopub_timeout",
                   "error_on_timeout", "extra_arguments", "kernel_name", "startup_timeout",
                   "iopub_timeout", "shell_timeout_interval", "record_timing", "skip_cells_with_tag",
                   "allow_error_names", "force_raise_errors")


class GradingError(Exception):
    """A submission could not be executed; the message starts with "grading error:"."""


@contextmanager
def _environ(values: dict[str, str]):
    """Set environment variables for the duration (the unsandboxed kernel inherits them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def secret_paths(coursedir: CourseDirectory) -> list[Path]:
    """What a submission must never see: the course folder, the source (solutions), every
    student's submission and grades, and the gradebook."""
    paths = [Path(coursedir.root)]
    for folder in (coursedir.source_directory, coursedir.submitted_directory,
                   coursedir.autograded_directory, coursedir.feedback_directory):
        paths.append(Path(coursedir.root, folder))
    if coursedir.db_url.startswith("sqlite:///"):
        paths.append(Path(coursedir.db_url[len("sqlite:///"):]))
    return [Path(os.path.realpath(p)) for p in paths]


def merge_outputs(nb: NotebookNode, executed: dict[str, Any]) -> None:
    """Copy outputs and execution counts of ``executed`` into ``nb``, cell by cell.

    Only outputs come back from the sandbox: sources and metadata (points, grade ids,
    checksums) stay those nbgrader gave. The cells must match one to one.
    """
    cells = executed.get("cells", [])
    if len(cells) != len(nb.cells) or any(a.get("source") != b.source for a, b in zip(cells, nb.cells)):
        raise GradingError("grading error: the executed notebook does not match the one sent to the sandbox")
    for cell, done in zip(nb.cells, cells):
        if cell.cell_type == "code":
            cell.outputs = [from_dict(o) for o in done.get("outputs", [])]
            cell.execution_count = done.get("execution_count")
    if "language_info" in executed.get("metadata", {}):
        nb.metadata["language_info"] = from_dict(executed["metadata"]["language_info"])


class SandboxedExecute(Execute):
    """nbgrader's ``Execute``, run inside the grading sandbox (see the module docstring)."""

    report_file = Unicode("", help="Append one JSON line per notebook here (used by the pipeline).").tag(config=True)

    def _report(self, **record: Any) -> None:
        if self.report_file:
            with open(self.report_file, "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def preprocess(self, nb: NotebookNode, resources: dict, km=None):
        info = resources.get("nbgrader", {})
        lab, student = info.get("assignment", ""), info.get("student", "")
        name = f"{info.get('notebook', 'notebook')}.ipynb"
        sandbox = Sandbox(parent=self)
        base = {"lab": lab, "student": student, "notebook": name, "sandbox": sandbox.describe()}
        if not sandbox.enabled:
            self.log.warning(OPT_OUT_WARNING)
            with tempfile.TemporaryDirectory(prefix="nnopt-overlay-") as tmp, \
                    _environ({**sandbox.grading_variables(lab), **withheld.overlay(lab, Path(tmp))}):
                out = ExecutePreprocessor.preprocess(self, nb, resources, km=km)
            self._report(**base, status="ok", reason="", seconds=0.0, inner_seconds=0.0, truncated_cells=[])
            return out
        coursedir = CourseDirectory(config=self.config)
        lab_files = Path(coursedir.root, coursedir.release_directory, lab)
        executor = {t: getattr(self, t) for t in EXECUTOR_TRAITS}
        try:
            result = sandbox.run(nb, lab=lab, name=name, executor=executor, lab_files=lab_files,
                                 secrets=secret_paths(coursedir))
        except SandboxUnavailable:
            # nbgrader already wrote the sanitised copy there; no half-graded folder is left
            build = Path(resources.get("metadata", {}).get("path", ""))
            if build.is_dir() and Path(coursedir.root, coursedir.autograded_directory).resolve() in build.resolve().parents:
                shutil.rmtree(build)
            raise
        self._report(**base, status=result.status, reason=result.reason, seconds=result.seconds,
                     inner_seconds=result.inner_seconds, truncated_cells=result.truncated_cells)
        if result.status != "ok" or result.notebook is None:
            if result.log:
                self.log.info("Log of the sandboxed executor (last lines):\n%s", result.log[-4000:])
            raise GradingError(f"grading error: {result.reason}")
        merge_outputs(nb, result.notebook)
        self.log.info("Executed %s/%s in the sandbox in %.1f s", student, name, result.seconds)
        return nb, resources


class LimitOutputBytes(LimitOutput):
    """nbgrader's ``LimitOutput`` plus byte caps per cell and per notebook (``c.Sandbox.*``).

    nbgrader's line limit drops every stream after ``max_lines`` lines, ``stderr`` included,
    and a test cell whose ``stderr`` is dropped scores its points: here the line limit applies
    to ``stdout`` only (and never to the byte caps' notes); ``stderr`` is shortened by the
    byte caps, which keep it.
    """

    def _limit_stream_output(self, cell: NotebookNode) -> NotebookNode:
        if self.max_lines == -1 or cell.cell_type != "code":
            return cell
        length, kept = 0, []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stdout" and \
                    not str(output.text).lstrip().startswith(output_limits.NOTE_PREFIX):
                if length >= self.max_lines:
                    continue
                lines = str(output.text).split("\n")
                if length + len(lines) > self.max_lines:
                    lines = lines[:self.max_lines - length - 1] + ["... Output truncated ..."]
                length += len(lines)
                output.text = "\n".join(lines)
            kept.append(output)
        cell.outputs = kept
        return cell

    def preprocess(self, nb: NotebookNode, resources: dict):
        sandbox = Sandbox(parent=self)
        self._budget = output_limits.NotebookBudget(sandbox.cell_output_limit, sandbox.notebook_output_limit,
                                                    sandbox.keep_mimetypes)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, cell_index: int):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.cell_type == "code":
            cell.outputs = [from_dict(o) for o in self._budget.cap(cell_index, cell.outputs)]
        return cell, resources
