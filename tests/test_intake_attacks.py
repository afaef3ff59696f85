"""Hostile zip exports against intake (the pipeline's first step): paths that climb out, names
with newlines, a student id spelled with a Cyrillic homoglyph, symlinks and hard links stored
in the zip. Nobody's submission may be replaced or written outside ``submitted/``."""
from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import nbformat

from autograder import intake, make_samples
from autograder.make_samples import LAB1

RELEASES = {LAB1: make_samples.REPO / "labs" / LAB1 / f"{LAB1}.ipynb"}


def _link(zf: zipfile.ZipFile, name: str, target: str, kind: int = stat.S_IFLNK) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (kind | 0o777) << 16
    zf.writestr(info, target)


def test_hostile_zip_names_and_links_claim_nobody_else(tmp_path):
    honest = nbformat.writes(make_samples.filled(LAB1))
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"alice_{LAB1}.ipynb", honest)
        zf.writestr(f"../../bob_{LAB1}.ipynb", honest)                    # climbs out of the target
        zf.writestr(f"/tmp/carol_{LAB1}.ipynb", honest)                   # absolute
        zf.writestr(f"alice\n_{LAB1}.ipynb", honest)                      # newline in the id
        zf.writestr(f"\u0430lice_{LAB1}.ipynb", honest)                   # Cyrillic a: a homoglyph of alice
        _link(zf, f"dave_{LAB1}.ipynb", str(tmp_path / "secret.ipynb"))    # a symlink entry
        _link(zf, f"erin/{LAB1}.ipynb", f"../alice_{LAB1}.ipynb")          # a relative symlink to alice's
    (tmp_path / "secret.ipynb").write_text(honest)
    submitted = tmp_path / "course" / "submitted"
    entries = {e.source: e for e in intake.collect(archive, submitted, RELEASES)}
    assert {p.name for p in submitted.iterdir()} <= {"alice", "bob", "carol", "dave", "erin"}
    written = sorted(str(p.relative_to(submitted)) for p in submitted.rglob("*.ipynb"))
    assert f"alice/{LAB1}/{LAB1}.ipynb" in written
    assert not any(p.is_symlink() for p in submitted.rglob("*"))
    assert not (tmp_path / f"bob_{LAB1}.ipynb").exists() and not Path(f"/tmp/carol_{LAB1}.ipynb").exists()
    # a stored link is extracted as a small file holding its target: not a notebook, nobody's work
    for name in (f"dave_{LAB1}.ipynb", f"erin/{LAB1}.ipynb"):
        if name in entries:
            assert entries[name].status != "ok", entries[name]
    # the homoglyph and the newline never become (or replace) alice
    for name, e in entries.items():
        if name != f"alice_{LAB1}.ipynb" and e.student == "alice":
            raise AssertionError(f"{name!r} was attributed to alice")
    assert all(e.student is None or e.student.isascii() for e in entries.values())


def test_oversized_notebooks_are_refused_before_grading(tmp_path):
    nb = make_samples.filled(LAB1)
    nb.cells += [nbformat.v4.new_markdown_cell(".") for _ in range(intake.MAX_CELLS)]
    folder = tmp_path / "in"
    folder.mkdir()
    nbformat.write(nb, str(folder / f"milo_{LAB1}.ipynb"))
    (entry,) = intake.collect(folder, tmp_path / "submitted", RELEASES)
    assert entry.status == "not a notebook" and f"at most {intake.MAX_CELLS}" in entry.detail, entry
    assert not (tmp_path / "submitted" / "milo").exists()
