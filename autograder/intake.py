"""Collect student submissions from a folder or a zip into nbgrader's ``submitted/`` layout.

Accepted input (a folder, or a ``.zip`` of one), any mix of:

* ``<student>/<anything with labN>.ipynb``  -- a folder per student (nested folders are fine,
  e.g. nbgrader's own ``<student>/<lab>/<lab>.ipynb``). **The student is the top folder,
  only**: a file ``mallory/alice_lab1.ipynb`` is Mallory's; that its name claims another
  student is reported (a flag in the CSV and a warning), it is never given to Alice;
* ``<student>_<anything with labN>.ipynb``  -- flat files at the top, as exported by an LMS,
  e.g. ``alice_lab1.ipynb`` or ``alice_lab1_sgd_momentum.ipynb``. Such files may also sit in
  one wrapper folder (the input's only entry) when they name at least two different
  students; otherwise that single folder is read as a student's folder.

``labN`` picks the lab (the assignment in ``solutions/`` whose name starts with it). Every file
gets an :class:`Entry` saying what happened to it; nothing raises on bad input. A valid
notebook is copied to ``submitted/<student>/<lab>/<lab>.ipynb`` after :func:`repair` put back
the locked cells (setup and tests) the student deleted. Empty files, other file types and
files that are not nbformat-4 notebooks are reported (status ``empty`` / ``not a notebook``).
When one student has several files for one lab, the last by name is used and the others are
reported as ``superseded``.
"""
from __future__ import annotations

import copy
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
LAB_TOKEN = re.compile(r"(?:^|[^a-z0-9])(lab\d+)(?=[^0-9]|$)", re.IGNORECASE)
SKIPPED = ("__MACOSX", ".ipynb_checkpoints")
#: Largest accepted submission (the sandbox's file size limit) and most cells (the labs have < 100).
MAX_BYTES = 64 * 2**20
MAX_CELLS = 1000


@dataclass
class Entry:
    """One input file and what intake did with it."""

    source: str                       # path relative to the input root
    student: str | None = None
    lab: str | None = None
    status: str = "ok"                # ok | empty | not a notebook | unmatched | superseded
    detail: str = ""
    restored: list[str] = field(default_factory=list)   # grade ids of re-inserted cells
    flags: list[str] = field(default_factory=list)      # for the instructor (name conflicts)


def _lab_for(name: str, labs: Sequence[str]) -> str | None:
    """The lab whose id (``labN``) appears in ``name``."""
    m = LAB_TOKEN.search(name.lower())
    if not m:
        return None
    token = m.group(1)
    matches = [lab for lab in labs if re.match(rf"{token}(?:[^0-9]|$)", lab)]
    return matches[0] if len(matches) == 1 else None


def _claimed(name: str) -> str | None:
    """The student a file name claims: its part before ``_labN`` (``alice_lab1.ipynb``)."""
    m = re.match(r"^(.+?)[_-]+lab\d+", name, re.IGNORECASE)
    return m.group(1) if m and STUDENT_ID.match(m.group(1)) else None


def _student_for(rel: Path) -> tuple[str | None, str]:
    """(student id, flag): the top folder for a file in a folder, the name's claim for a file
    at the top; the flag reports a name that claims someone else than its folder."""
    claimed = _claimed(rel.name)
    if len(rel.parts) == 1:
        return claimed, ""
    owner = rel.parts[0] if STUDENT_ID.match(rel.parts[0]) else None
    if owner and claimed and claimed != owner:
        return owner, (f"the file name claims student {claimed!r}, but it was in {owner!r}'s folder: "
                       f"graded as {owner!r}'s")
    return owner, ""


def _wrapper(root: Path, files: list[Path]) -> Path | None:
    """The wrapper folder of a flat export: the input's only entry, holding files that claim
    at least two different students."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".") and p.name not in SKIPPED]
    if len(entries) != 1 or not entries[0].is_dir():
        return None
    claims = {_claimed(p.name) for p in files if p.parent == entries[0]} - {None}
    return entries[0] if len(claims) >= 2 else None


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") or part in SKIPPED
                              for part in p.relative_to(root).parts))


def _read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """(notebook, "") or (None, reason). Files over :data:`MAX_BYTES` and notebooks of more than
    :data:`MAX_CELLS` cells are refused: parsing, grading and typesetting their feedback happen
    outside the sandbox (30 000 empty cells cost minutes of feedback generation)."""
    if path.stat().st_size > MAX_BYTES:
        return None, f"not a notebook: {path.stat().st_size} bytes (at most {MAX_BYTES} are accepted)"
    raw = path.read_bytes()
    if not raw.strip():
        return None, "empty"
    if path.suffix.lower() != ".ipynb":
        return None, f"not a notebook: a {path.suffix or 'extensionless'} file"
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is reported, never raised
        return None, f"not a notebook: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if len(nb.cells) > MAX_CELLS:
        return None, f"not a notebook: {len(nb.cells)} cells (at most {MAX_CELLS} are accepted)"
    return nb, ""


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def repair(nb: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[str]:
    """Re-insert the release's locked and graded cells that are missing from ``nb``.

    nbgrader restores the *content* of locked cells but can only re-add a deleted test cell
    when the cell before it survived (otherwise the whole submission fails to grade). Here
    every missing cell goes back just before the next release cell still present (or at the
    end), so it runs after whatever the student wrote in its place. Answer cells the student
    deleted are not re-added (their code may live elsewhere). Returns the grade ids restored.
    """
    present = {_grade_id(c) for c in nb.cells} - {None}
    used_ids = {c.get("id") for c in nb.cells}
    restored, pending = [], []
    for cell in release.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if gid in present:
            anchor = next(i for i, c in enumerate(nb.cells) if _grade_id(c) == gid)
            nb.cells[anchor:anchor] = pending
            pending = []
        elif gid and (meta.get("locked") or meta.get("grade")):
            new = copy.deepcopy(cell)
            if nb.nbformat_minor < 5:
                new.pop("id", None)
            elif new.get("id") in used_ids:
                new["id"] = uuid.uuid4().hex[:8]
            pending.append(new)
            restored.append(gid)
    nb.cells.extend(pending)
    return restored


def _unpacked(source: Path, workdir: Path) -> Path:
    """The folder to scan: ``source`` itself or the zip extracted into ``workdir``."""
    if source.is_dir():
        return source
    if zipfile.is_zipfile(source):
        target = workdir / "unzipped"
        with zipfile.ZipFile(source) as zf:
            for info in zf.infolist():          # refuse absolute paths and ../ escapes
                dest = (target / info.filename).resolve()
                if not str(dest).startswith(str(target.resolve())):
                    continue
                zf.extract(info, target)
        return target
    raise ValueError(f"{source} is neither a folder nor a zip file")


def collect(source: str | Path, submitted: str | Path, releases: dict[str, Path]) -> list[Entry]:
    """Scan ``source`` (folder or zip) and fill ``submitted/``; return one Entry per file.

    ``releases`` maps lab name -> released notebook path (used by :func:`repair`).
    An existing ``submitted/<student>/<lab>`` is replaced by the new submission.
    """
    source, submitted = Path(source), Path(submitted)
    labs = sorted(releases)
    release_nbs = {lab: nbformat.read(str(p), as_version=4) for lab, p in releases.items()}
    with tempfile.TemporaryDirectory() as tmp:
        top = _unpacked(source, Path(tmp))
        files = _files(top)
        root = _wrapper(top, files) or top
        entries, chosen = [], {}
        for path in files:
            rel = path.relative_to(root)
            student, flag = _student_for(rel)
            entry = Entry(source=str(path.relative_to(top)), student=student, lab=_lab_for(rel.name, labs),
                          flags=[flag] if flag else [])
            if entry.lab is None and len(rel.parts) > 1:      # e.g. <student>/<lab>/<file>
                entry.lab = _lab_for("/".join(rel.parts[1:]), labs)
            entries.append(entry)
            if entry.student is None or entry.lab is None:
                entry.status = "unmatched"
                entry.detail = ("cannot tell the student" if entry.student is None
                                else f"no lab id (one of {', '.join(labs)}) in the name")
                continue
            nb, problem = _read_notebook(path)
            if nb is None:
                entry.status, entry.detail = problem.split(":")[0], problem
            key = (entry.student, entry.lab)
            if key in chosen:
                chosen[key][0].status = "superseded"
                chosen[key][0].detail = f"replaced by {entry.source}"
            chosen[key] = (entry, nb)
        for (student, lab), (entry, nb) in chosen.items():
            dest = submitted / student / lab
            if dest.exists():
                shutil.rmtree(dest)
            if nb is None:
                continue
            entry.restored = repair(nb, release_nbs[lab])
            dest.mkdir(parents=True)
            nbformat.write(nb, str(dest / f"{lab}.ipynb"))
    return entries
