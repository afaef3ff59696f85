"""Asking the reference process for a verdict (student mode only).

When a student runs a test cell, the expected values come from a fresh
``python -I -m nnopt.grading`` (started by the lab's locked setup cell through
:func:`connect`, before any student code runs): redefining ``nnopt.Momentum`` or
``np.allclose`` in the notebook cannot change them, and ``-I`` ignores the working
directory and ``PYTHON*`` variables, so a ``numpy.py`` next to the notebook is not
imported. The process receives the record of a check and answers with the verdict of
:func:`nnopt.grading.verdict.judge` -- the same function the trusted grader runs at
autograde, so the instant feedback and the points agree.

At autograde (``NNOPT_GRADING_MODE=record``) nothing is started: the kernel only records.
"""
from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from .record import recording_only

# Captured at import (the lab's locked setup cell), before student code runs.
_Popen = subprocess.Popen
_PIPE, _DEVNULL = subprocess.PIPE, subprocess.DEVNULL
_select = select.select
_dumps, _loads = json.dumps, json.loads
_PYTHON = sys.executable

#: Seconds the reference process may take for one answer (a Lab 3 re-training included).
REFERENCE_TIMEOUT = 120
#: Start of the message when the reference itself could not be computed (not the
#: student's fault; the grader reports such checks as grader errors).
REFERENCE_FAILURE = "The reference check could not run"


class ReferenceProcess:
    """A ``python -I -m nnopt.grading`` answering one JSON request per line; restarted if
    it dies. Any interruption during a request (nbgrader's timeout) discards the process,
    so answers never get out of step."""

    def __init__(self) -> None:
        self.proc: Any = None

    def start(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = _Popen([_PYTHON, "-I", "-m", "nnopt.grading"], stdin=_PIPE, stdout=_PIPE,
                               stderr=_DEVNULL)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        for _attempt in range(2):              # one retry with a fresh process if it died
            self.start()
            try:
                self.proc.stdin.write(_dumps(request).encode() + b"\n")
                self.proc.stdin.flush()
                ready, _, _ = _select([self.proc.stdout], [], [], REFERENCE_TIMEOUT)
                line = self.proc.stdout.readline() if ready else b""
            except BrokenPipeError:
                line = b""
            except BaseException:
                self.close()
                raise
            if line:
                return _loads(line.decode())
            self.close()
        return {"ok": False, "message": f"{REFERENCE_FAILURE}: the reference process did not answer",
                "bugs": [], "grader_error": True}


REFERENCE = ReferenceProcess()


def connect() -> None:
    """Start the reference process now (the labs' setup cell does, before student code runs).
    Does nothing at autograde, where the kernel only records."""
    if not recording_only():
        REFERENCE.start()


def ask(request: Mapping[str, Any]) -> dict[str, Any]:
    """The verdict ``{"ok", "message", "bugs", ...}`` for one record."""
    return REFERENCE.ask(request)
