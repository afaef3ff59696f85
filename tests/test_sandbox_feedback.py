"""Feedback cannot run script, checked in Chromium (``make test-browser``).

The attack ``script-in-feedback`` (``<script>``, ``onerror=``, ``Javascript``, SVG and
Markdown outputs, and script in its written answer) is graded through the pipeline; its
feedback page is opened in Debian's Chromium: nothing of it runs. Then the two layers are
checked apart: script injected into that page past the sanitiser is blocked by the page's
Content-Security-Policy alone, and the same page without the policy does run it (so the test
can see script run at all).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autograder import feedback, make_attacks, pipeline
from conftest import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LAB = make_attacks.LAB1
INJECTED = ("<script>document.title = 'PWNED-injected'</script>"
            "<img src=\"data:,x\" onerror=\"document.title = 'PWNED-onerror'\">")


@pytest.fixture(scope="module")
def page_html(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("feedback")
    course = pipeline.Course(REPO_ROOT / "autograder").copy_to(root / "course")
    subs = root / "subs"
    shutil.copytree(REPO_ROOT / "autograder" / "attacks" / "script-in-feedback", subs / "script-in-feedback")
    report = pipeline.grade(course, subs, cell_timeout=60, log=lambda *a: None)
    assert report.rows[0]["status"] == "graded", report.rows
    return (course.feedback / "script-in-feedback" / LAB / f"{LAB}.html").read_text()


def _open(browser, html: str, folder: Path, name: str) -> tuple[str, list[str]]:
    """Load ``html`` from a file; return the page's title after loading and its console."""
    path = folder / name
    path.write_text(html)
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(500)
    title = page.title()
    page.close()
    return title, console


def test_the_graded_attack_runs_nothing_in_its_feedback(browser, page_html, tmp_path):
    title, _ = _open(browser, page_html, tmp_path, "feedback.html")
    assert "PWNED" not in title and title
    assert "PWNED" in page_html                                 # its attempts are shown as text


def test_the_policy_alone_blocks_script_that_got_past_the_sanitiser(browser, page_html, tmp_path):
    injected = page_html.replace("<body>", "<body>" + INJECTED, 1)
    assert injected != page_html and feedback.CSP_META in injected
    title, console = _open(browser, injected, tmp_path, "injected.html")
    assert "PWNED" not in title
    assert any("Content Security Policy" in line for line in console), console
    # control: the same page without the policy runs the injected script
    bare = injected.replace(feedback.CSP_META, "")
    title, _ = _open(browser, bare, tmp_path, "bare.html")
    assert title.startswith("PWNED")
