"""What the people of a class do in JupyterHub, as Playwright steps (used by ``test_hub.py``).

* :class:`Browser` logs a person in on the hub's login page (PAM) and keeps their page;
  every step ends with a screenshot in ``build/browser/hub/``.
* The instructor works in **formgrader, opened in its own tab** (``/services/nnopt/formgrader``):
  JupyterHub >= 4.1 forbids the iframe in which nbgrader's JupyterLab menu would open it (see
  DEPLOY.md). Each button is clicked as a person does and its result dialog is read.
* A student works in **JupyterLab**: *Nbgrader > Assignment List*, Fetch, open the notebook,
  type the answers into the cells, save, Validate, Submit; later Fetch Feedback and open it.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from playwright.sync_api import Page

from conftest import REPO_ROOT

SCREENSHOTS = REPO_ROOT / "build" / "browser" / "hub"
SLOW_MS = 600_000          # autograde, validate: notebooks run on a busy 2-core machine
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
#: JupyterLab settings of the students: every cell attached to the page (the default windowing
#: detaches cells off screen, hiding them from the locators), no news pop-up.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def write_lab_settings(home: Path) -> None:
    """A student's JupyterLab preferences (what they would set in Settings), in their home."""
    for plugin, values in LAB_SETTINGS.items():
        path = home / ".jupyter" / "lab" / "user-settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def login(browser, hub_url: str, user: str, password: str, next_path: str = "") -> Page:
    """A fresh browser context, logged in to the hub as ``user`` (then at ``next_path``, by
    default their own JupyterLab, which the hub starts); returns its page."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(f"{hub_url}/hub/login" + (f"?next={next_path}" if next_path else ""))
    page.fill("input#username_input", user)
    page.fill("input#password_input", password)
    page.click("input#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    return page


# --------------------------------------------------------------------------- formgrader


class Formgrader:
    """The instructor's formgrader tab."""

    def __init__(self, page: Page, hub_url: str, service: str = "nnopt") -> None:
        self.page, self.base = page, f"{hub_url}/services/{service}/formgrader"

    @classmethod
    def log_in(cls, browser, hub_url: str, user: str, password: str) -> "Formgrader":
        """The instructor logs in straight to formgrader (their own server is not started)."""
        return cls(login(browser, hub_url, user, password, "/services/nnopt/formgrader/manage_assignments"), hub_url)

    def assignments(self) -> None:
        """Manage Assignments; while the grading server is still starting (the launcher's
        page says so), reload a few seconds later, as a person would."""
        deadline = time.monotonic() + SLOW_MS / 1000
        self.page.goto(f"{self.base}/manage_assignments")
        while "grading server is starting" in self.page.content():
            assert time.monotonic() < deadline, "the grading service never started"
            self.page.wait_for_timeout(3000)
            self.page.reload()
        self.page.wait_for_selector("#main-table tr td.name a", timeout=SLOW_MS)

    def row(self, lab: str):
        return self.page.locator("#main-table tr", has=self.page.locator(f"td.name[data-order='{lab}']"))

    def click(self, cell, name: str) -> str:
        """Click the link in ``cell``; return the text of the result dialog after closing it.
        An error dialog fails with its text (nbgrader's log and traceback)."""
        cell.locator("a").first.click()
        dialog = self.page.locator("#success-modal, #error-modal").first
        dialog.wait_for(state="visible", timeout=SLOW_MS)
        text = dialog.inner_text()
        shot(self.page, name)
        if dialog.get_attribute("id") == "error-modal":
            raise AssertionError(f"formgrader: {name} failed:\n{text}")
        dialog.locator("button.close").first.click()
        dialog.wait_for(state="detached")
        return text

    def assignment_action(self, lab: str, column: str, name: str) -> str:
        """One button of the assignment's row: assign (Generate), release, collect,
        generate-feedback, release-feedback."""
        self.assignments()
        return self.click(self.row(lab).locator(f"td.{column}"), name)

    def autograde_all(self, lab: str, students: list[str], name: str) -> dict[str, str]:
        """Manage submissions of ``lab``: the autograde button of each student."""
        self.page.goto(f"{self.base}/manage_submissions/{lab}")
        done = {}
        for student in students:
            row = self.page.locator("tr", has=self.page.locator("td.student-id", has_text=student))
            row.wait_for()
            done[student] = self.click(row.locator("td.autograde"), f"{name}_{student}")
        self.page.goto(f"{self.base}/manage_submissions/{lab}")
        self.page.locator("td.score").first.wait_for()
        shot(self.page, name)
        return done


# --------------------------------------------------------------------------- JupyterLab


class StudentLab:
    """A student's JupyterLab."""

    def __init__(self, page: Page, name: str) -> None:
        self.page, self.name = page, name
        page.wait_for_selector("#jp-main-dock-panel", timeout=SLOW_MS)     # the server has started

    def assignment_list(self) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
        self.page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
        self.page.wait_for_selector("#released_assignments_list")

    def _item(self, section: str, lab: str):
        return self.page.locator(f"#{section} .list_item", has_text=lab).first

    def fetch(self, lab: str) -> None:
        self.assignment_list()
        self._item("released_assignments_list", lab).get_by_role("button", name="Fetch").click()
        self._item("fetched_assignments_list", lab).wait_for(timeout=SLOW_MS)
        shot(self.page, f"{self.name}_fetched")

    def open_notebook(self, lab: str) -> None:
        self.page.goto(re.sub(r"/lab.*$", f"/lab/tree/{lab}/{lab}.ipynb", self.page.url))
        self.page.wait_for_selector(f"{NOTEBOOK} .jp-Notebook-ExecutionIndicator[data-status='idle']",
                                    timeout=SLOW_MS)

    def type_into_cell(self, index: int, source: str) -> None:
        """Replace the text of cell ``index`` as a person does: click, select all, type."""
        cell = self.page.locator(f"{NOTEBOOK} .jp-Cell").nth(index)
        cell.scroll_into_view_if_needed()
        if "jp-MarkdownCell" in (cell.get_attribute("class") or ""):
            cell.locator(".jp-MarkdownOutput").dblclick()      # a rendered text cell: edit it
        editor = cell.locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(source)
        self.page.keyboard.press("Escape")

    def run_cell(self, index: int, expect: str, lines: int) -> list[str]:
        """Run cell ``index`` (Shift+Enter); its output lines starting with ``expect``, once
        there are ``lines`` of them."""
        cell = self.page.locator(f"{NOTEBOOK} .jp-Cell").nth(index)
        cell.locator(".cm-content").click()
        self.page.keyboard.press("Shift+Enter")
        output = cell.locator(".jp-OutputArea")
        self.page.wait_for_function(
            "([el, word, n]) => el.innerText.split('\\n').filter(l => l.startsWith(word)).length >= n",
            arg=[output.element_handle(), expect, lines], timeout=SLOW_MS)
        return [line for line in output.inner_text().splitlines() if line.startswith(expect)]

    def save(self) -> None:
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Control+s")
        self.page.wait_for_selector(".jp-mod-current.jp-mod-dirty", state="detached")

    def validate(self) -> str:
        """nbgrader's Validate button of the notebook; the text of its result dialog."""
        self.page.locator(f"{NOTEBOOK} .jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).click()
        dialog = self.page.locator(".jp-Dialog", has_text="Validation Results")
        dialog.wait_for(timeout=SLOW_MS)
        text = dialog.inner_text()
        shot(self.page, f"{self.name}_validated")
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        return text

    def submit(self, lab: str) -> None:
        self.assignment_list()
        self._item("fetched_assignments_list", lab).get_by_role("button", name="Submit").click()
        self._item("submitted_assignments_list", lab).wait_for(timeout=SLOW_MS)
        shot(self.page, f"{self.name}_submitted")

    def fetch_feedback(self, lab: str) -> str:
        """Fetch Feedback, open the feedback page in JupyterLab; return its text."""
        self.assignment_list()
        self._item("submitted_assignments_list", lab).get_by_role("button", name="Fetch Feedback").click()
        self.page.locator("#submitted_assignments_list a", has_text="view feedback").first.wait_for(timeout=SLOW_MS)
        self.page.locator("#submitted_assignments_list a", has_text="view feedback").first.click()
        self.page.locator(".jp-DirListing-item", has_text=f"{lab}.html").dblclick()
        frame = self.page.frame_locator(".jp-HTMLViewer iframe, iframe.jp-HTMLViewer, .jp-MainAreaWidget iframe").first
        frame.locator("body").wait_for()
        frame.locator("mjx-container").first.wait_for()
        shot(self.page, f"{self.name}_feedback")
        return frame.locator("body").inner_text()
