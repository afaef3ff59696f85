"""The class report: what the class got wrong, per lab.

For every lab with graded submissions it writes, next to ``grades/<lab>_histogram.png``:

* ``grades/<lab>_report.md`` and ``.json``: each autograded test's pass rate, and for each
  bug the grader diagnosed (``nnopt.grading.variants``: "Adam without bias correction", ...)
  how many students hit it and in which tests -- what to re-teach on Monday; also how many
  submissions the static scan flagged, by category, and how many could not be graded;
* ``grades/<lab>_report.png``: the same as two bar charts.

Pass rates come from the gradebook (the points ``SaveAutoGrades`` stored), the bugs from the
verdict summaries ``TrustedVerdicts`` left in the autograded notebooks' cell metadata.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from . import scan


@dataclass
class TestRate:
    grade_id: str
    points: float
    passed: int
    graded: int

    @property
    def rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


@dataclass
class BugCount:
    key: str
    label: str
    students: int
    tests: list[str]


@dataclass
class LabReport:
    lab: str
    graded: int
    tests: list[TestRate] = field(default_factory=list)
    bugs: list[BugCount] = field(default_factory=list)
    flagged: dict[str, int] = field(default_factory=dict)
    not_graded: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for t, d in zip(self.tests, data["tests"]):
            d["rate"] = round(t.rate, 4)
        return data


def _verdict_bugs(path: Path) -> dict[str, set[str]]:
    """bug key -> test cells in which an autograded notebook shows it."""
    out: dict[str, set[str]] = {}
    if not path.is_file():
        return out
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        verdict = cell.get("metadata", {}).get("nnopt", {}).get("verdict", {})
        for bug in verdict.get("bugs", []):
            out.setdefault(str(bug), set()).add(cell.metadata.get("nbgrader", {}).get("grade_id", "?"))
    return out


def lab_report(course: Any, lab: str, status: Mapping[str, Any]) -> LabReport:
    """The report of one lab; ``status``: student -> ``pipeline.Status``."""
    from nbgrader.api import Gradebook, MissingEntry
    from nnopt.grading.variants import BY_KEY

    graded = sorted(s for s, st in status.items() if st.status == "graded")
    report = LabReport(lab, len(graded), not_graded=dict(Counter(st.status for st in status.values()
                                                                 if st.status != "graded")))
    with Gradebook(f"sqlite:///{course.db}") as gb:
        try:
            notebook = gb.find_notebook(lab, lab)
        except MissingEntry:
            return report
        solutions = {c.name for c in notebook.solution_cells}
        release = nbformat.read(str(course.released(lab)), as_version=4)
        position = {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(release.cells)}
        for cell in sorted(notebook.grade_cells, key=lambda c: position.get(c.name, len(position))):
            if cell.name in solutions:
                continue
            passed = 0
            for student in graded:
                try:
                    g = gb.find_grade(cell.name, lab, lab, student)
                except MissingEntry:
                    continue
                passed += int(g.auto_score is not None and g.auto_score >= g.max_score > 0)
            report.tests.append(TestRate(cell.name, float(cell.max_score), passed, len(graded)))
    release = nbformat.read(str(course.released(lab)), as_version=4)
    order = [t.grade_id for t in report.tests]
    bugs: dict[str, tuple[int, set[str]]] = {}
    flagged: Counter[str] = Counter()
    for student in graded:
        for key, tests in _verdict_bugs(course.autograded / student / lab / f"{lab}.ipynb").items():
            n, seen = bugs.get(key, (0, set()))
            bugs[key] = (n + 1, seen | tests)
        submitted = course.submitted / student / lab / f"{lab}.ipynb"
        if submitted.is_file():
            flagged.update({f.category for f in scan.scan(nbformat.read(str(submitted), as_version=4), release)})
    report.bugs = [BugCount(k, BY_KEY[k].label if k in BY_KEY else k, n,
                            sorted(tests, key=lambda t: order.index(t) if t in order else len(order)))
                   for k, (n, tests) in sorted(bugs.items(), key=lambda kv: (-kv[1][0], kv[0]))]
    report.flagged = dict(sorted(flagged.items()))
    return report


def markdown(r: LabReport) -> str:
    lines = [f"# {r.lab}: what the class got wrong", "",
             f"{r.graded} graded submissions" + (f"; not graded: " + ", ".join(
                 f"{n} {s}" for s, n in sorted(r.not_graded.items())) if r.not_graded else "") + ".", "",
             "| test | points | passed | pass rate |", "|---|---:|---:|---:|"]
    lines += [f"| {t.grade_id} | {t.points:g} | {t.passed}/{t.graded} | {t.rate:.0%} |" for t in r.tests]
    lines += ["", "## Diagnosed bugs", ""]
    if r.bugs:
        lines += ["| bug | students | in tests |", "|---|---:|---|"]
        lines += [f"| {b.label} (`{b.key}`) | {b.students} | {', '.join(b.tests)} |" for b in r.bugs]
    else:
        lines.append("No known wrong variant was diagnosed.")
    if r.flagged:
        lines += ["", "## Static scan (for review)", "", "| category | submissions flagged |", "|---|---:|"]
        lines += [f"| {c} | {n} |" for c, n in r.flagged.items()]
    return "\n".join(lines) + "\n"


def figure(r: LabReport, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.35 * max(len(r.tests), len(r.bugs), 4) + 1.6))
    names = [t.grade_id for t in r.tests]
    left.barh(names, [100 * t.rate for t in r.tests], color="tab:green")
    left.set_xlim(0, 100)
    left.invert_yaxis()
    left.set_title(f"{r.lab}: pass rate per test ({r.graded} graded)")
    left.set_xlabel("students passing (%)")
    left.set_ylabel("test cell")
    labels = [b.label if len(b.label) < 48 else b.label[:45] + "..." for b in r.bugs] or ["(none diagnosed)"]
    right.barh(labels, [b.students for b in r.bugs] or [0], color="tab:red")
    right.invert_yaxis()
    right.set_title("diagnosed bugs")
    right.set_xlabel("students")
    right.set_ylabel("known wrong variant")
    right.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_reports(course: Any, status: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """``grades/<lab>_report.{md,json,png}`` for every lab in ``status``; returns the paths."""
    out = []
    course.grades.mkdir(parents=True, exist_ok=True)
    for lab in sorted(status):
        if lab not in course.labs():
            continue
        base = course.grades / f"{lab}_report"
        try:
            r = lab_report(course, lab, status[lab])
        except Exception as exc:  # noqa: BLE001 -- the batch and the CSV come first
            base.with_suffix(".md").write_text(f"# {lab}\n\nThe class report failed: {type(exc).__name__}: {exc}\n")
            out.append(base.with_suffix(".md"))
            continue
        base.with_suffix(".md").write_text(markdown(r))
        base.with_suffix(".json").write_text(json.dumps(r.to_json(), indent=1))
        out += [base.with_suffix(".md"), base.with_suffix(".json"), figure(r, base.with_suffix(".png"))]
    return out
