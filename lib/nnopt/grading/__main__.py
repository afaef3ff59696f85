"""The reference process: ``python -I -m nnopt.grading`` (started by :func:`nnopt.grading.connect`).

Reads one record per line on stdin and writes its verdict (:func:`nnopt.grading.verdict.judge`)
as one JSON line on stdout, until stdin closes. One untrusted
:class:`~nnopt.grading.outcome.Context` serves the whole notebook, so a Lab 3 re-training the
grader already did (same settings, epochs and seed) is not repeated by a later check.
"""
from __future__ import annotations

import json
import sys

from nnopt.grading.client import REFERENCE_FAILURE
from nnopt.grading.outcome import Context
from nnopt.grading.verdict import Verdict, judge


def main() -> None:
    context = Context()
    for line in sys.stdin:
        try:
            verdict = judge(json.loads(line), context)
        except Exception as exc:  # noqa: BLE001 -- report, keep serving
            verdict = Verdict(False, f"{REFERENCE_FAILURE}: {type(exc).__name__}: {exc}", grader_error=True)
        sys.stdout.write(json.dumps(verdict.to_json()) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
