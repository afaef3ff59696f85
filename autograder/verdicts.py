"""The trusted step of autograding: points decided after execution, outside the kernel.

:class:`TrustedVerdicts` is an nbgrader preprocessor that runs in the grader's own process,
after the notebook was executed (in the sandbox) and before ``SaveAutoGrades``. For every
autograded test cell of the gradebook it

1. parses the checks the cell states from the **trusted** source -- the gradebook's copy of
   the cell (the one nbgrader restored before execution), never anything the kernel wrote
   (:func:`nnopt.grading.cells.expected_checks`);
2. finds their records among the cell's outputs (:mod:`nnopt.grading.record`): numbers the
   student's code produced, matched to a check by its canonical spec;
3. judges each with :func:`nnopt.grading.verdict.judge`, which computes the references here,
   in the grader (a missing or malformed record fails with the reason; every record of a
   check must pass, and more than :data:`MAX_RECORDS` different ones fail it);
4. rewrites the cell: the student's ``stdout`` stays, everything else the kernel produced
   (errors, stderr, display data, execute results that nbgrader would read as partial
   credit) goes, and the verdict is added -- one line per check, and an ``error`` output if
   any check failed, so ``SaveAutoGrades`` gives the cell its points only when every check
   passed. The nbgrader metadata of the cell is restored from the gradebook too.

Checks inside the hidden-test region are reported without their parameters ("a hidden check
failed", with the diagnosed bug if any), so feedback never shows hidden tests. A summary
(pass/fail, diagnosed bugs) is kept in the cell's metadata, ``{"nnopt": {"verdict": ...}}``,
for the class report (``report.py``).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader.preprocessors import NbGraderPreprocessor

from . import scan

#: Checks whose verdict also needs the answer's source (Lab 3's Theano part).
SOURCE_CHECKED = {"theano_updates", "softmax_theano"}
#: Module names whose tampering (``T.grad = ...``, ``vars(np)[...]``) voids the Theano checks.
TRUST_ROOTS = {"T", "theano", "np", "numpy", "grading", "nnopt", "builtins", "sys"}
HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
#: More different records than this for one check fail it (the kernel cannot make the grader
#: judge thousands of forged records; identical ones count once).
MAX_RECORDS = 5
PASS, FAIL = "\u2713", "\u2717"


@dataclass
class CellVerdict:
    """The outcome of one test cell: ``lines`` shown for every check (``(ok, text)``),
    ``failures`` (the messages of failed checks), the diagnosed ``bugs`` (:func:`cell_bugs`)."""

    lines: list[tuple[bool, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    bugs: list[str] = field(default_factory=list)
    grader_error: bool = False

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": len(self.lines), "failed": len(self.failures),
                "bugs": list(dict.fromkeys(self.bugs)), "grader_error": self.grader_error}


def hidden_lines(source: str) -> set[int]:
    """1-based line numbers inside the hidden-test region of a test cell's source."""
    inside, out = False, set()
    for number, line in enumerate(source.split("\n"), start=1):
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        elif inside:
            out.add(number)
    return out


def _kernel_error(outputs: Iterable[Any]) -> str:
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if not errors:
        return "the check did not run"
    e = errors[-1]
    return f"the cell stopped with {str(e.get('ename'))[:80]}: {str(e.get('evalue'))[:300]}"


def _hidden_text(verdict: Any, spec: Any) -> str:
    """What a failed hidden check may say: its kind, the diagnosed bug and the tolerance, no
    parameters."""
    from nnopt.grading import reference, variants
    what = reference.NAMES.get(spec.args.get("reference", ""), spec.kind)
    sentences = [variants.BY_KEY[b].sentence(what) for b in verdict.bugs if b in variants.BY_KEY]
    tolerance = [ln.strip() for ln in verdict.message.split("\n") if ln.strip().startswith("(compared for")]
    text = f"a hidden {spec.kind} check failed" + (": " + "; ".join(sentences) if sentences else
                                                    " (its parameters are not shown)")
    return text + "".join(f"\n  {t}" for t in tolerance[-1:])


def decide(trusted_source: str, outputs: Sequence[Any], context: Any) -> CellVerdict:
    """The verdict on one executed test cell, from its trusted source and its outputs."""
    from nnopt.grading import record, verdict
    from nnopt.grading.cells import CellError, expected_checks
    from nnopt.grading.client import REFERENCE_FAILURE
    result = CellVerdict()
    try:
        expected = expected_checks(trusted_source)
    except CellError as exc:
        result.failures.append(f"{REFERENCE_FAILURE}: the test cell cannot be read ({exc})")
        result.grader_error = True
        return result
    payloads = record.in_outputs(outputs)
    keyed = []
    for payload in payloads:
        try:
            keyed.append((record.parse(payload)[0].key(), payload))
        except ValueError:
            continue
    hidden = hidden_lines(trusted_source)
    diagnosed: list[list[str]] = []
    for number, exp in enumerate(expected, start=1):
        is_hidden = exp.line in hidden
        mine = list({json.dumps(p, sort_keys=True): p for k, p in keyed if k == exp.spec.key()}.values())
        if not mine:
            v = verdict.Verdict(False, f"{exp.spec.describe()}: no answer was recorded ({_kernel_error(outputs)})")
        elif len(mine) > MAX_RECORDS:
            v = verdict.Verdict(False, f"{exp.spec.describe()}: {len(mine)} different records for one check")
        else:
            judged = [verdict.judge(p, context, exp.spec) for p in mine]
            v = next((j for j in judged if not j.ok), judged[0])
        if v.bugs:
            diagnosed.append(v.bugs)
        result.grader_error |= v.grader_error
        if is_hidden:
            text = f"hidden check {number} passed" if v.ok else _hidden_text(v, exp.spec) if mine else \
                f"a hidden {exp.spec.kind} check recorded no answer ({_kernel_error(outputs)})"
        else:
            text = v.message
        result.lines.append((v.ok, text.split("\n")[0]))
        if not v.ok:
            result.failures.append(text)
    result.bugs = cell_bugs(diagnosed)
    return result


def cell_bugs(diagnosed: list[list[str]]) -> list[str]:
    """The bugs of a cell from those of its failed checks: the ones that explain every
    diagnosed check (a one-step check may match two variants, a longer one tells them
    apart), or all of them if no single bug does."""
    if not diagnosed:
        return []
    common = [b for b in diagnosed[0] if all(b in d for d in diagnosed)]
    return common or list(dict.fromkeys(b for d in diagnosed for b in d))


def notebook_context(nb: NotebookNode, answers: Iterable[str]) -> Any:
    """A trusted :class:`~nnopt.grading.outcome.Context` for checks that read the answers'
    source: the notebook's cell defining each answer, and what voids trust in it (the answer
    defined twice, ``T`` rebound, tampering with ``T``/``theano``/``numpy``/... anywhere)."""
    from nnopt.grading.outcome import Context
    from nnopt.grading.sourcecheck import notebook_sources
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    sources, problems = notebook_sources(code, answers)
    for flag in scan.scan(nb):
        if flag.category == "dynamic access" or (flag.category == "tampering" and flag.root in TRUST_ROOTS):
            problems.append(f"{flag} (the Theano part cannot be trusted)")
    return Context(sources, problems, trusted=True)


def rewrite(cell: NotebookNode, outcome: CellVerdict) -> None:
    """Keep the student's stdout, drop everything else the kernel wrote, add the verdict."""
    kept = [o for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stdout"]
    text = "".join(f"{PASS if ok else FAIL} {line}\n" for ok, line in outcome.lines)
    outputs = kept + [from_dict({"output_type": "stream", "name": "stdout", "text": text})]
    if outcome.failures:
        message = "\n\n".join(outcome.failures)
        outputs.append(from_dict({"output_type": "error", "ename": "GradingError", "evalue": message,
                                  "traceback": [f"GradingError: {message}"]}))
    cell.outputs = outputs
    cell.metadata["nnopt"] = from_dict({**cell.metadata.get("nnopt", {}), "verdict": outcome.summary()})


class TrustedVerdicts(NbGraderPreprocessor):
    """Decide every autograded test cell from its records and the grader's own references."""

    def preprocess(self, nb: NotebookNode, resources: Mapping[str, Any]):
        from nbgrader.api import Gradebook
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            tests = {}
            for g in notebook.grade_cells:
                source = gb.find_source_cell(g.name, info["notebook"], info["assignment"])
                if g.cell_type == "code" and not any(s.name == g.name for s in notebook.solution_cells):
                    tests[g.name] = (source.source, float(g.max_score))
        context = None
        for cell in nb.cells:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid not in tests or cell.cell_type != "code":
                continue
            source, points = tests[gid]
            cell.metadata.nbgrader.update({"grade": True, "solution": False, "locked": True, "points": points,
                                           "task": False})
            if context is None:
                context = self._context(nb, tests)
            rewrite(cell, decide(source, cell.get("outputs", []), context))
        return nb, resources

    @staticmethod
    def _context(nb: NotebookNode, tests: Mapping[str, tuple[str, float]]) -> Any:
        from nnopt.grading.cells import CellError, expected_checks
        from nnopt.grading.outcome import Context
        answers = set()
        for source, _ in tests.values():
            try:
                answers |= {a for e in expected_checks(source) if e.spec.kind in SOURCE_CHECKED for a in e.answers}
            except CellError:
                continue
        return notebook_context(nb, sorted(answers)) if answers else Context(trusted=True)
