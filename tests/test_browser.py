"""The kit in a real JupyterLab, driven in Chromium the way a reader or a student uses it.

* Lecture 3: Run > Run All Cells, no cell fails; the learning-rate slider of the explorer is
  moved with the keyboard and the figure changes (pixel difference of the rendered image).
* Lab 1 as released (``labs/``): running it stops at the first unanswered cell and nbgrader's
  Validate button reports the unanswered tasks; the same lab filled in (alice's sample)
  runs through and Validate reports success, and so does ``nbgrader validate`` on the file
  JupyterLab saved.

JupyterLab runs from the kit's ``.venv`` on a free 127.0.0.1 port with a token, in a temporary
root folder with its own settings. Chromium is Debian's (``/usr/bin/chromium``): ``make
test-browser`` installs it (apt-get, as root) and runs ``pytest -m browser``; the tests are
skipped, with the reason, only when it is not installed. Screenshots go to ``build/browser/``.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = REPO_ROOT / "build" / "browser"
LECTURE = "lectures/03_sgd_and_schedules.ipynb"
LAB = "lab1_sgd_momentum"
RELEASED_LAB = f"labs/{LAB}/{LAB}.ipynb"
FILLED_LAB = f"my_work/{LAB}/{LAB}.ipynb"          # alice's sample, as a student who did the lab
FILLED_SAMPLE = REPO_ROOT / "autograder" / "samples" / "alice_lab1_sgd_momentum.ipynb"
#: Lab settings of the test server: no news pop-up; every cell attached to the page (the
#: default windowing attaches only the cells on screen, which hides them from the locators).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
RUN_TIMEOUT_MS = 300_000      # Run All of a whole notebook on a busy 2-core machine
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"    # the notebook in the current tab


# --------------------------------------------------------------------------- Chromium


# --------------------------------------------------------------------------- JupyterLab


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: its base URL, token and root folder."""

    url: str
    token: str
    root: Path

    def page_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"     # reset: a fresh workspace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_until_up(server: LabServer, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{server.url}/api/status?token={server.token}", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab from the kit's .venv, serving a copy of lecture 3 and Lab 1."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    for rel in (LECTURE, RELEASED_LAB):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / rel, root / rel)
    (root / FILLED_LAB).parent.mkdir(parents=True)
    shutil.copyfile(FILLED_SAMPLE, root / FILLED_LAB)
    _write_settings(base / "settings")
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MPLBACKEND"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", JUPYTER_CONFIG_DIR=str(base / "config"),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"))
    port, token = _free_port(), secrets.token_hex(24)
    server = LabServer(f"http://127.0.0.1:{port}", token, root)
    log = base / "jupyterlab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(bin_dir / "jupyter"), "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={base / 'settings'}",
             f"--LabApp.workspaces_dir={base / 'workspaces'}"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(server, proc, log)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def page(browser, lab_server: LabServer):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


# --------------------------------------------------------------------------- what a user does


def open_notebook(page, server: LabServer, path: str) -> None:
    """Open ``path`` in JupyterLab and wait until its kernel is idle."""
    page.goto(server.page_url(path))
    page.wait_for_selector(f"{NOTEBOOK} .jp-Notebook")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.locator(f"{NOTEBOOK} .jp-Cell").first.click()     # focus the notebook, as a user does


def run_all_cells(page) -> None:
    """Run > Run All Cells, then wait until the kernel has finished."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    label = page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True)
    page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has=label).click()   # enabled: a notebook is current
    # the kernel turns busy, then idle when the last cell has run (or Run All stopped at an error)
    try:
        _wait_until_run(page)
    except PlaywrightTimeout:
        prompts = page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputPrompt").all_inner_texts()
        pytest.fail(f"Run All did not finish (screenshot {shot(page, 'run_all_timeout')}); prompts: {prompts}")


def _wait_until_run(page) -> None:
    page.wait_for_function(
        """(notebook) => {
            const panel = document.querySelector(notebook);
            const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            const busy = prompts.some(p => p.textContent.includes('*'));
            const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
            return !busy && indicator && indicator.dataset.status === 'idle'
                && prompts.some(p => /\\[\\d+\\]/.test(p.textContent));
        }""", arg=NOTEBOOK, timeout=RUN_TIMEOUT_MS, polling=500)


def save(page) -> None:
    """Save (Ctrl+S) and wait until the notebook is no longer marked dirty."""
    page.keyboard.press("Escape")                         # command mode: Ctrl+S saves the notebook
    page.keyboard.press("Control+s")
    page.wait_for_selector(".jp-mod-current.jp-mod-dirty", state="detached")


def validate(page) -> str:
    """Press nbgrader's Validate button; return the text of its result dialog, then close it."""
    page.locator(f"{NOTEBOOK} .jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).click()
    dialog = page.locator(".jp-Dialog", has_text="Validation Results")
    dialog.wait_for(timeout=RUN_TIMEOUT_MS)
    return dialog.inner_text()


def close_dialog(page) -> None:
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.locator(".jp-Dialog").wait_for(state="detached")


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def errors_in(path: Path) -> list[str]:
    """The error outputs saved in a notebook (``ename: evalue`` of each)."""
    nb = nbformat.read(str(path), as_version=4)
    return [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"]


def unexecuted_cells(path: Path) -> list[int]:
    nb = nbformat.read(str(path), as_version=4)
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()
            and c.execution_count is None]


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def changed_fraction(before: bytes, after: bytes) -> float:
    """Share of pixels that differ between two screenshots of the same element."""
    a, b = pixels(before), pixels(after)
    assert a.shape == b.shape, f"the figure changed size: {a.shape} -> {b.shape}"
    return float(np.mean(np.abs(a - b).max(axis=-1) > 16))


# --------------------------------------------------------------------------- tests


def test_lecture3_runs_and_the_lr_slider_redraws_the_figure(page, lab_server: LabServer) -> None:
    open_notebook(page, lab_server, LECTURE)
    run_all_cells(page)
    save(page)
    saved = lab_server.root / LECTURE
    assert errors_in(saved) == []
    assert unexecuted_cells(saved) == []
    shot(page, "lecture3_after_run_all")

    cell = page.locator(f"{NOTEBOOK} .jp-CodeCell", has_text="nnopt.widgets.lr_explorer(")
    slider = cell.locator(".widget-slider", has_text="learning rate (log)")
    figure = cell.locator(".jp-OutputArea img").first
    slider.scroll_into_view_if_needed()
    figure.wait_for(state="visible")
    readout = slider.locator(".widget-readout")
    before_value, before_src, before = readout.inner_text(), figure.get_attribute("src"), figure.screenshot()
    (SCREENSHOTS / "lr_explorer_before.png").write_bytes(before)

    slider.locator(".noUi-handle").focus()
    for _ in range(10):                 # 10 steps of 0.1 on the log10 scale: lr x 10
        page.keyboard.press("ArrowRight")
    page.wait_for_function("([img, src]) => img.src !== src && img.complete",
                           arg=[figure.element_handle(), before_src], timeout=60_000)
    after_value, after = readout.inner_text(), figure.screenshot()
    (SCREENSHOTS / "lr_explorer_after.png").write_bytes(after)
    shot(page, "lecture3_lr_explorer")

    assert float(before_value) == pytest.approx(1e-3) and float(after_value) == pytest.approx(1e-2)
    assert changed_fraction(before, after) > 0.01, "moving the lr slider did not change the figure"


def test_released_lab1_stops_at_the_first_task_and_validate_says_so(page, lab_server: LabServer) -> None:
    open_notebook(page, lab_server, RELEASED_LAB)
    run_all_cells(page)
    save(page)
    assert errors_in(lab_server.root / RELEASED_LAB)[0].startswith("NotImplementedError")
    text = validate(page)
    shot(page, "lab1_released_validate")
    close_dialog(page)
    assert "NotImplementedError" in text and "Success" not in text


def test_filled_lab1_runs_and_validates(page, lab_server: LabServer) -> None:
    open_notebook(page, lab_server, FILLED_LAB)
    run_all_cells(page)
    save(page)
    saved = lab_server.root / FILLED_LAB
    assert errors_in(saved) == []
    assert unexecuted_cells(saved) == []
    text = validate(page)
    shot(page, "lab1_filled_validate")
    close_dialog(page)
    assert "Success! Your notebook passes all the tests." in text

    cli = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "validate", str(saved)],
                         capture_output=True, text=True, timeout=600, cwd=saved.parent)
    assert "Success! Your notebook passes all the tests." in cli.stdout, cli.stdout + cli.stderr
