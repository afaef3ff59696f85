"""The sandbox's parts that need no sandbox: byte caps on outputs, the mount plan, feedback
hygiene (hidden tests, script) -- fast tests, run everywhere."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder import feedback, output_limits as ol, sandbox_mounts as mounts
from autograder import sandbox as sandbox_module
from autograder.sandbox import Sandbox

RECORD = {"output_type": "display_data", "metadata": {},
          "data": {ol.ANSWER_MIMETYPE: {"answer": [1.0, 2.0]}, "text/plain": "<answer>"}}


def _stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def _notes(outputs) -> list[str]:
    return [o["text"] for o in outputs if o.get("output_type") == "stream" and ol.NOTE_PREFIX in o["text"]]


# ----------------------------------------------------------------- output caps
def test_small_outputs_are_kept_as_they_are():
    outs = [_stream("hello\n"), RECORD, _stream("oops\n", "stderr")]
    assert ol.cap_outputs(outs, 10_000) == (outs, 0)


def test_a_flood_is_cut_in_place_and_the_answer_record_after_it_survives():
    flood = _stream("x" * 5_000_000)
    kept, dropped = ol.cap_outputs([_stream("before\n"), flood, RECORD, _stream("after\n")], 100_000)
    assert sum(map(ol.output_bytes, kept)) <= 100_000 + 200          # + the note
    assert dropped > 4_800_000
    assert kept[0] == _stream("before\n")
    assert RECORD in kept and kept.index(RECORD) > 1                  # order kept, record whole
    assert kept[1]["text"].startswith("xxx") and len(_notes(kept)) == 1
    assert "100000 bytes per cell" in _notes(kept)[0] and ol.NOTE_PREFIX in kept[2]["text"]


def test_capping_twice_keeps_one_note_with_the_whole_count():
    first, dropped = ol.cap_outputs([_stream("x" * 500_000), _stream("tail\n")], 100_000)
    again, more = ol.cap_outputs(first + [_stream("y" * 50_000)], 100_000)
    assert len(_notes(again)) == 1 and more > 0
    counted = int(ol.NOTE_PATTERN.match(_notes(again)[0]).group(1))
    assert counted == dropped + more and sum(map(ol.output_bytes, again)) <= 100_000
    assert ol.cap_outputs(again, 100_000) == (again, 0)               # a capped cell is stable


def test_outputs_that_decide_points_are_never_dropped_only_shortened():
    huge_error = {"output_type": "error", "ename": "ValueError", "evalue": "z" * 3_000_000,
                  "traceback": ["line"] * 10_000}
    outs = [_stream("y" * 3_000_000), huge_error, _stream("w" * 3_000_000, "stderr"),
            {"output_type": "execute_result", "execution_count": 1, "metadata": {},
             "data": {"text/plain": "0.5" + " " * 3_000_000, "text/html": "<b>" * 100_000}}]
    kept, _ = ol.cap_outputs(outs, 20_000)
    kinds = [(o["output_type"], o.get("name")) for o in kept]
    assert ("error", None) in kinds and ("stream", "stderr") in kinds and ("execute_result", None) in kinds
    error = next(o for o in kept if o["output_type"] == "error")
    assert error["ename"] == "ValueError" and ol.output_bytes(error) <= ol.STUB_BYTES
    assert sum(map(ol.output_bytes, kept)) <= 20_000 + ol.STUB_BYTES


def test_the_notebook_budget_leaves_each_later_cell_its_error():
    budget = ol.NotebookBudget(cell_limit=50_000, notebook_limit=60_000)
    assert budget.cap(0, [_stream("a" * 49_000)])[0]["text"] == "a" * 49_000
    second = budget.cap(1, [_stream("b" * 40_000)])
    assert "per notebook" in _notes(second)[0]
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "wrong", "traceback": ["AssertionError: wrong"]}
    assert budget.cap(2, [_stream("c" * 10_000), error])[-1] == error
    assert budget.truncated_cells == [1, 2]


@pytest.mark.parametrize("kwargs, message", [
    ({"cell_limit": 10, "notebook_limit": 10**6}, "Invalid cell_limit: 10"),
    ({"cell_limit": 10**6, "notebook_limit": "big"}, "Invalid notebook_limit: 'big'"),
])
def test_bad_budgets_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ol.NotebookBudget(**kwargs)


def test_sandbox_settings_are_validated():
    from traitlets import TraitError
    with pytest.raises(TraitError, match="Invalid Sandbox.memory_limit: 0"):
        Sandbox(memory_limit=0)
    with pytest.raises(TraitError, match="Invalid Sandbox.cell_output_limit: 100"):
        Sandbox(cell_output_limit=100)
    assert "2 GiB" in Sandbox().describe() and Sandbox(enabled=False).describe().startswith("OFF")


# ----------------------------------------------------------------- the mount plan
def test_no_mount_may_show_the_course(tmp_path):
    course = tmp_path / "course"
    (course / "autograder").mkdir(parents=True)
    mounts.check_secrets([tmp_path / "venv", Path("/usr")], [course / "autograder"])
    for bad in (course, course / "autograder", course / "autograder" / "sub"):
        with pytest.raises(ValueError, match="Invalid sandbox mount"):
            mounts.check_secrets([bad], [course / "autograder"])
    box = Sandbox(extra_paths=[str(course)])
    with pytest.raises(ValueError, match="students must not see"):
        box.command(tmp_path, tmp_path, {}, ["true"], secrets=[course / "autograder"])


def test_a_hidden_path_is_absent_and_its_siblings_are_bound_again(tmp_path):
    pkg = tmp_path / "site"
    (pkg / "torch").mkdir(parents=True)
    (pkg / "numpy").mkdir()
    (pkg / "secret.py").write_text("x = 1")
    (pkg / "link").symlink_to("numpy")
    args = mounts.hide_args([pkg / "torch", pkg / "secret.py", pkg / "torch" / "inner"], [tmp_path], set())
    assert args[:4] == ["--perms", "0755", "--tmpfs", str(pkg)]
    assert ["--symlink", "numpy", str(pkg / "link")] == args[4:7]         # in name order
    assert ["--ro-bind", str(pkg / "numpy"), str(pkg / "numpy")] == args[7:10]
    assert args[-2:] == ["--remount-ro", str(pkg)] and "torch" not in " ".join(args[4:])
    assert mounts.hide_args([Path("/nowhere/x")], [tmp_path], set()) == []      # never visible


def test_withheld_lists_are_checked(tmp_path):
    target = tmp_path / "a.py"
    target.write_text("")
    with pytest.raises(ValueError, match="Invalid hidden path: 'rel/path'"):
        mounts.validate_withheld(["rel/path"], {})
    with pytest.raises(ValueError, match="Invalid replaced path"):
        mounts.validate_withheld([], {str(tmp_path / "missing.py"): str(target)})
    with pytest.raises(ValueError, match="Invalid replacement for"):
        mounts.validate_withheld([], {str(target): str(tmp_path / "nope.py")})
    with pytest.raises(ValueError, match="expected an existing folder"):
        mounts.validate_withheld([], {str(tmp_path): str(target)})            # a file over a folder
    assert mounts.validate_withheld([str(target)], {str(target): str(target)}) == ([target], {target: target})
    assert mounts.validate_withheld([], {str(tmp_path): str(tmp_path)}) == ([], {tmp_path: tmp_path})


def test_a_sandbox_that_cannot_start_names_the_fix_for_the_machine(monkeypatch):
    denied = "bwrap: setting up uid map: Permission denied\nOperation not permitted"
    monkeypatch.setattr(sandbox_module.os.path, "exists", lambda path: False)
    assert "sysctl" in sandbox_module.fix_for(denied)
    monkeypatch.setattr(sandbox_module.os.path, "exists", lambda path: path == "/.dockerenv")
    assert "container" in sandbox_module.fix_for(denied) and "seccomp" in sandbox_module.fix_for(denied)
    assert sandbox_module.fix_for("bwrap: execvp x: No such file") == "see bubblewrap's message above"


def test_as_root_the_job_runs_as_an_unprivileged_user(tmp_path):
    (outer, starts), (inner, argv) = mounts.command(bwrap="/usr/bin/bwrap", filesystem=["--dir", "/x"],
                                                    env={"A": "1"}, argv=["python"], drop_to=(65534, 65534))
    assert starts[0] == "setpriv" and "--reuid=65534" in starts and "--bounding-set=-all" in starts
    assert starts[-1] == "/usr/bin/bwrap" and "--disable-userns" in inner and argv == ["python"]
    [(plain, _)] = mounts.command(bwrap="bwrap", filesystem=[], env={}, argv=["python"], drop_to=None)
    assert "--unshare-user" in plain and "--unshare-net" in plain and "--disable-userns" in plain


def test_bwrap_reads_its_options_from_files_not_the_command_line(tmp_path):
    stages = [(["--ro-bind", "/secret/path", "/x"], ["setpriv", "--", "bwrap"]), (["--dir", "/y"], ["python"])]
    argv, fds = Sandbox().launcher(stages, tmp_path)
    try:
        assert argv[1:] == ["--args", str(fds[1]), "--", "setpriv", "--", "bwrap", "--args", str(fds[0]),
                            "--", "python"]
        assert (tmp_path / "bwrap-0.args").read_bytes() == b"--ro-bind\0/secret/path\0/x\0"
        assert (tmp_path / "bwrap-1.args").read_bytes() == b"--dir\0/y\0"
    finally:
        for fd in fds:
            os.close(fd)


def test_the_kernel_environment_is_the_graders_contract():
    env = Sandbox().kernel_environment("lab1_sgd_momentum")
    assert env["NNOPT_GRADING_MODE"] == "record" and env["NNOPT_LAB"] == "lab1_sgd_momentum"
    assert env["HOME"] == "/sandbox/home" and "cxx=" in env["THEANO_FLAGS"]
    assert not any(value.startswith(str(Path.home())) and Path.home() != Path("/") for value in env.values()
                   if value != sys.prefix)


# ----------------------------------------------------------------- feedback hygiene
def _autograded() -> nbformat.NotebookNode:
    hidden = ("from nnopt import grading\ngrading.check(1)\n### BEGIN HIDDEN TESTS\n"
              "grading.check_trajectory(Momentum, 'momentum', {'lr': 0.0071})\n### END HIDDEN TESTS")
    cells = [new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n")]),
             new_code_cell(hidden, outputs=[new_output("stream", name="stdout", text="lr=0.0071\n"),
                                            new_output("error", ename="AssertionError", evalue="lr 0.0071",
                                                       traceback=["boom"])]),
             new_code_cell("print(In)", outputs=[new_output("stream", name="stdout", text=repr(
                 ["x", "grading.check_trajectory(Momentum, 'momentum', {'lr': 0.0071})"]))]),
             new_markdown_cell('<img src="x" onerror="alert(1)"><script>alert(2)</script>')]
    return new_notebook(cells=cells)


def test_feedback_drops_every_output_of_hidden_tests_and_any_quote_of_them():
    nb = feedback.strip_notebook(_autograded())
    text = json.dumps(nb)
    assert "0.0071" not in text and "HIDDEN" not in text
    assert nb.cells[0].outputs[0].text == "1\n"
    assert nb.cells[1].outputs[0].text == feedback.OUTPUT_NOTE and feedback.NOTE in nb.cells[1].source
    assert nb.cells[2].outputs[0].text == feedback.QUOTE_NOTE


def test_feedback_html_carries_a_policy_that_allows_no_script():
    page = feedback.with_csp("<html><head><title>t</title></head><body><script>x()</script></body></html>")
    head = page[:page.index("<title>")]
    assert "Content-Security-Policy" in head and "script-src 'none'" in head
    assert feedback.with_csp("<p>no head</p>").startswith("<head><meta http-equiv")


def test_the_line_limit_never_drops_stderr_or_the_byte_notes():
    """nbgrader's LimitOutput drops streams after max_lines lines, stderr too (which would
    give a failing test cell its points); LimitOutputBytes keeps stderr and the notes."""
    from nbformat import from_dict
    from autograder.preprocessors import LimitOutputBytes
    outputs = [_stream(f"{i}\n") for i in range(1500)] + [ol.note(10, 100, "cell"), _stream("bad\n", "stderr")]
    cell = from_dict({"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1, "outputs": outputs})
    nb = from_dict({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    out, _ = LimitOutputBytes().preprocess(nb, {})
    kept = out.cells[0].outputs
    assert kept[-1] == _stream("bad\n", "stderr") and ol.NOTE_PREFIX in kept[-2]["text"]
    assert sum(1 for o in kept if o["name"] == "stdout") < 1001


# ----------------------------------------------------------------- the hook of issue 16
