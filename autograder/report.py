"""What a grading run leaves behind: status per submission, feedback, the CSV, histograms."""
from __future__ import annotations

import csv
import html
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from . import feedback
from .course import Course, api, db_url

CSV_COLUMNS = ["lab", "student_id", "score", "max_score", "auto_score", "auto_max",
               "needs_manual_grade", "status", "flags", "sandbox"]
#: The status of a submission that could not be graded starts with this ("grading error: why").
GRADING_ERROR = "grading error"


@dataclass
class Status:
    """What happened to one student's submission of one lab (persisted in status.json)."""

    status: str                     # graded | empty | not a notebook | grading error
    detail: str = ""                # the reason of a grading error, the intake's note
    flags: list[str] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0
    updated: str = ""
    sandbox: str = ""               # Sandbox.describe() of the run that graded it

    def label(self) -> str:
        """The CSV's status: ``grading error: <reason>`` for a grading error."""
        return f"{self.status}: {self.detail}" if self.status == GRADING_ERROR and self.detail else self.status


def load_status(course: Course) -> dict[str, dict[str, Status]]:
    path = course.grades / "status.json"
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    return {lab: {s: Status(**v) for s, v in per.items()} for lab, per in raw.items()}


def save_status(course: Course, status: dict[str, dict[str, Status]]) -> None:
    course.grades.mkdir(parents=True, exist_ok=True)
    data = {lab: {s: asdict(v) for s, v in sorted(per.items())} for lab, per in sorted(status.items())}
    tmp = course.grades / "status.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(course.grades / "status.json")


# --------------------------------------------------------------------------- feedback
_FAILURE_PAGE = """<!DOCTYPE html>
<html><head>{csp}<meta charset="utf-8"><title>{lab}: not graded</title></head>
<body><h1>{lab}</h1><p>Your submission (<code>{source}</code>) could not be graded:
<strong>{status}</strong>.</p><p>{detail}</p>
<p>Please contact the teaching team if you think this is wrong.</p></body></html>
"""


def write_feedback(course: Course, lab: str, student: str, status: Status, nbgrader_api=None) -> None:
    """Feedback for one submission: nbgrader's HTML and the executed notebook with hidden
    tests stripped, or a short page explaining why it was not graded. ``nbgrader_api``: an
    nbgrader API for ``course`` to reuse (one is made if not given)."""
    dest = course.feedback / student / lab
    autograded = course.autograded / student / lab / f"{lab}.ipynb"
    if status.status == "graded" and autograded.is_file():
        result = (nbgrader_api or api(course)).generate_feedback(lab, student, force=True)
        if result["success"]:
            nb = feedback.strip_notebook(nbformat.read(str(autograded), as_version=4))
            nbformat.write(nb, str(dest / f"{lab}.ipynb"))
            return
        status.status, status.detail = GRADING_ERROR, "feedback generation failed (see the log)"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / f"{lab}.html").write_text(_FAILURE_PAGE.format(
        csp=feedback.CSP_META, lab=html.escape(lab), source=html.escape(status.source),
        status=html.escape(status.status), detail=html.escape(status.detail)))


# --------------------------------------------------------------------------- CSV and plots
def grade_rows(course: Course, status: dict[str, dict[str, Status]]) -> list[dict[str, object]]:
    """One row per (lab, student) known to the gradebook or to ``status``."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = {}
    with Gradebook(db_url(course.db)) as gb:
        for lab in course.labs():
            try:
                assignment = gb.find_assignment(lab)
            except MissingEntry:
                continue
            for sub in gb.assignment_submissions(lab):
                st = status.get(lab, {}).get(sub.student.id, Status("graded"))
                rows[lab, sub.student.id] = {
                    "lab": lab, "student_id": sub.student.id, "score": round(sub.score, 3),
                    "max_score": sub.max_score, "auto_score": round(sub.code_score, 3),
                    "auto_max": sub.max_code_score, "needs_manual_grade": sub.needs_manual_grade,
                    "status": st.label(), "flags": "; ".join(st.flags), "sandbox": st.sandbox}
            for student, st in status.get(lab, {}).items():
                if (lab, student) not in rows:          # never reached the gradebook
                    rows[lab, student] = {
                        "lab": lab, "student_id": student, "score": 0.0,
                        "max_score": assignment.max_score, "auto_score": 0.0,
                        "auto_max": assignment.max_code_score, "needs_manual_grade": False,
                        "status": st.label(), "flags": "; ".join(st.flags), "sandbox": st.sandbox}
    return [rows[k] for k in sorted(rows)]


def write_csv(path: Path, rows: Iterable[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def write_histograms(course: Course, rows: Sequence[dict[str, object]]) -> list[Path]:
    """``grades/<lab>_histogram.png``: distribution of total scores per lab."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = []
    for lab in sorted({r["lab"] for r in rows}):
        scores = np.array([r["score"] for r in rows if r["lab"] == lab], dtype=float)
        top = max(float(r["max_score"]) for r in rows if r["lab"] == lab)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(scores, bins=np.arange(0, top + 2) - 0.5, color="tab:blue", edgecolor="white")
        ax.axvline(scores.mean(), color="tab:red", linestyle="--", label=f"mean {scores.mean():.1f}")
        ax.set_title(f"{lab}: {len(scores)} submissions (max {top:g} points)")
        ax.set_xlabel("score (points)")
        ax.set_ylabel("students")
        ax.legend()
        fig.tight_layout()
        path = course.grades / f"{lab}_histogram.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out.append(path)
    return out
