"""The lecture site (``make site``) in Chromium, with no network but the site's own server.

The site is built once per run (``make site``: lectures executed, cached in build/site-cache)
and served from ``build/site`` on 127.0.0.1; every other request is blocked and recorded.
Every page: formulas typeset by the bundled MathJax, images loaded, nothing fetched from
outside. Every lecture: each figure its notebook made is on its page; each explorer shows its
frame and the note on running it live. Every internal link and anchor resolves. Nothing of
``solutions/`` (solution code, hidden tests) is anywhere in the site. Also: a feedback page
written by ``TypesetHTMLExporter`` shows its formulas in Chromium offline.
"""
from __future__ import annotations

import functools
import http.server
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import nbformat
import pytest

from conftest import CHROMIUM, REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SITE = REPO_ROOT / "build" / "site"
CACHE = REPO_ROOT / "build" / "site-cache"              # MyST-NB's executed notebooks
LECTURES = sorted((REPO_ROOT / "lectures").glob("[0-9]*.ipynb"))
LABS = sorted((REPO_ROOT / "labs").glob("*/*.ipynb"))
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


def page_of(notebook: Path) -> str:
    """Site path of a notebook of the kit (``lectures/03_x.html``)."""
    return notebook.relative_to(REPO_ROOT).with_suffix(".html").as_posix()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    """Build the site (``make site``; a failure fails here) and serve it on 127.0.0.1."""
    done = subprocess.run(["make", "--no-print-directory", "-C", str(REPO_ROOT), "site"],
                          capture_output=True, text=True, timeout=3000, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"make site failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@dataclass
class Offline:
    """A Chromium page that may load only from ``allowed``; what else it asked for is kept."""

    page: object
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def chromium(request):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-browser` installs it (apt-get, as root)")
    return request.getfixturevalue("shared_chromium")


def offline_page(chromium, allowed: str) -> Offline:
    context = chromium.new_context(viewport={"width": 1300, "height": 900})
    result = Offline(context.new_page())

    def route(r):
        if r.request.url.startswith(allowed):
            r.continue_()
        else:
            result.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    result.page.on("response", lambda resp: resp.status >= 400 and result.failed.append(f"{resp.status} {resp.url}"))
    result.page.set_default_timeout(60_000)
    return result


@pytest.fixture(scope="module")
def browser_page(chromium, site_url: str) -> Iterator[Offline]:
    view = offline_page(chromium, site_url)
    yield view
    view.page.context.close()


def open_page(view: Offline, url: str) -> None:
    """Open ``url``, wait until its images have loaded and MathJax has typeset the page."""
    view.page.goto(url)
    view.page.wait_for_load_state("load")
    view.page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)")
    view.page.evaluate("() => window.MathJax ? MathJax.startup.promise : null")


# --------------------------------------------------------------------------- pages


ALL_PAGES = ["index.html", "lectures/README.html", *map(page_of, LECTURES), *map(page_of, LABS)]


@pytest.mark.parametrize("path", ALL_PAGES)
def test_page_renders_offline_with_formulas_and_images(browser_page: Offline, site_url: str, path: str) -> None:
    view = browser_page
    view.blocked.clear(), view.failed.clear()
    open_page(view, f"{site_url}/{path}")
    state = view.page.evaluate("""() => ({
        math: document.querySelectorAll('.math').length,
        raw: [...document.querySelectorAll('.math')].filter(m => !m.querySelector('mjx-container'))
                 .map(m => m.textContent.slice(0, 80)),
        errors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error')),
        broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    })""")
    assert view.blocked == [], f"{path} tried to load from outside the site: {view.blocked}"
    assert view.failed == [], f"{path}: requests that failed: {view.failed}"
    assert state["raw"] == [], f"{path}: formulas left as TeX: {state['raw'][:5]}"
    assert state["errors"] == [], f"{path}: MathJax errors: {state['errors'][:5]}"
    assert state["broken"] == [], f"{path}: images that did not load: {state['broken']}"
    if path.startswith("lectures/0"):
        assert state["math"] > 0, f"{path} has no formula at all"
    if path == "lectures/03_sgd_and_schedules.html":
        view.page.locator(".tag_widget").first.scroll_into_view_if_needed()
        view.page.screenshot(path=str(REPO_ROOT / "build" / "browser" / "site_lecture3.png"))


def _figures(nb: nbformat.NotebookNode) -> int:
    """Image outputs of an executed notebook (one per output, the best type only)."""
    return sum(1 for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
               if any(kind in out.get("data", {}) for kind in IMAGE_TYPES))


def executed(lecture: Path) -> nbformat.NotebookNode:
    """The lecture as ``make site`` executed it (MyST-NB's jupyter-cache in build/site-cache)."""
    from jupyter_cache import get_cache

    cache = get_cache(str(CACHE))
    record = cache.match_cache_notebook(nbformat.read(str(lecture), as_version=4))
    return cache.get_cache_bundle(record.pk).nb


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_figure_of_the_lecture_is_on_its_page(browser_page: Offline, site_url: str, lecture: Path) -> None:
    expected = _figures(executed(lecture))
    assert expected > 0, f"{lecture.name} made no figure when executed"
    open_page(browser_page, f"{site_url}/{page_of(lecture)}")
    shown = browser_page.page.locator(".cell_output img").evaluate_all(
        "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")
    assert shown == expected, f"{lecture.name}: {expected} figures when executed, {shown} on its page"


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_explorers_show_their_frame_and_how_to_run_them_live(browser_page: Offline, site_url: str,
                                                            lecture: Path) -> None:
    nb = nbformat.read(str(lecture), as_version=4)
    explorers = [c for c in nb.cells if "widget" in c.metadata.get("tags", [])]
    open_page(browser_page, f"{site_url}/{page_of(lecture)}")
    cells = browser_page.page.locator(".cell.tag_widget")
    assert cells.count() == len(explorers)
    for i in range(len(explorers)):
        cell = cells.nth(i)
        assert cell.locator(".cell_output img").count() == 1, f"explorer {i} of {lecture.name} has no frame"
        note = cell.locator("xpath=following-sibling::*[1]")
        assert "Interactive explorer" in note.inner_text() and lecture.name in note.inner_text()


def test_table_of_contents_lists_every_lecture_and_lab(browser_page: Offline, site_url: str) -> None:
    open_page(browser_page, f"{site_url}/index.html")
    hrefs = browser_page.page.locator(".bd-sidebar-primary a").evaluate_all("links => links.map(a => a.href)")
    listed = {urlsplit(h).path.lstrip("/") for h in hrefs}
    missing = [p for p in map(page_of, [*LECTURES, *LABS]) if p not in listed]
    assert missing == [], f"not in the table of contents: {missing}"


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k in ("id", "name") and v)


def test_no_internal_link_is_broken(browser_page: Offline, site_url: str) -> None:
    links: dict[str, set[str]] = {}
    for path in ALL_PAGES:
        open_page(browser_page, f"{site_url}/{path}")
        for href in browser_page.page.locator("a[href]").evaluate_all("links => links.map(a => a.href)"):
            if href.startswith(site_url):
                links.setdefault(href, set()).add(path)
    assert len(links) > len(ALL_PAGES), "too few links found: is the navigation there?"
    broken, ids = [], {}
    for href, pages in sorted(links.items()):
        target, fragment = urldefrag(href)
        try:
            if target not in ids:
                body = urllib.request.urlopen(target, timeout=30).read()
                parser = _Ids()
                if target.endswith(".html") or target.endswith("/"):
                    parser.feed(body.decode("utf-8", errors="replace"))
                ids[target] = parser.ids
            if fragment and fragment not in ids[target]:
                broken.append(f"{href} (no #{fragment}) from {sorted(pages)[:3]}")
        except OSError as err:
            broken.append(f"{href} ({err}) from {sorted(pages)[:3]}")
    assert broken == [], "broken links:\n" + "\n".join(broken)


def test_cross_links_between_lectures_resolve(browser_page: Offline, site_url: str) -> None:
    """The course overview links every lecture by its notebook name: each becomes a page link."""
    open_page(browser_page, f"{site_url}/lectures/README.html")
    hrefs = browser_page.page.locator("article a[href]").evaluate_all("links => links.map(a => a.href)")
    linked = {urljoin(h, urlsplit(h).path) for h in hrefs}
    for lecture in LECTURES:
        assert f"{site_url}/{page_of(lecture)}" in linked, f"the overview does not link {lecture.name}"


# --------------------------------------------------------------------------- no solutions


def _secret_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Lines of solution regions and hidden tests (long enough to be specific)."""
    secret, inside = set(), False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            marker = line.strip()
            if marker in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"):
                inside = True
            elif marker in ("### END SOLUTION", "### END HIDDEN TESTS"):
                inside = False
            elif inside and len(marker) > 15:
                secret.add(marker)
    return secret


def test_site_has_no_solution_and_no_hidden_test(site_url: str) -> None:
    public = "\n".join(p.read_text() for p in [*LABS, *LECTURES])     # lines the kit shows anyway
    secret = set()
    for source in sorted((REPO_ROOT / "solutions").glob("*/*.ipynb")):
        secret |= {line for line in _secret_lines(nbformat.read(str(source), as_version=4))
                   if line not in public}
    assert len(secret) > 20, "expected the solutions' code and hidden tests to check against"
    leaks = {}
    for path in SITE.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".ipynb", ".txt", ".md", ".js", ".py"):
            text = path.read_text(errors="replace")
            found = [line for line in secret if line in text]
            if found or "BEGIN HIDDEN TESTS" in text:
                leaks[str(path.relative_to(SITE))] = found[:3] or ["BEGIN HIDDEN TESTS"]
    assert leaks == {}, f"solutions in the site: {leaks}"


# --------------------------------------------------------------------------- feedback


def feedback_page(nb: nbformat.NotebookNode) -> str:
    """``nb`` as nbgrader's feedback template shows it (every test cell scored 0), written by
    the exporter the kit's ``GenerateFeedback`` uses."""
    import nbgrader

    from autograder.offline_math import TypesetHTMLExporter

    formgrader = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    for cell in nb.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader.update(score=0, comment="")
    exporter = TypesetHTMLExporter(
        template_name="feedback", extra_template_basedirs=[str(formgrader / "templates")],
        extra_template_paths=[str(formgrader / "static" / "node_modules" / "bootstrap" / "dist" / "css")])
    total = sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells)
    html, _ = exporter.from_notebook_node(nb, resources={"nbgrader": {
        "notebook": "lab", "score": 0, "max_score": total, "late_penalty": 0}})
    return html


def test_typeset_feedback_shows_its_formulas_in_chromium_offline(chromium, tmp_path: Path) -> None:
    nb = nbformat.read(str(LABS[0]), as_version=4)
    html = feedback_page(nb)
    page_file = tmp_path / "feedback.html"
    page_file.write_text(html)
    view = offline_page(chromium, "file://")
    view.page.goto(page_file.as_uri())
    view.page.wait_for_load_state("load")
    sizes = view.page.locator("mjx-container svg").evaluate_all(
        "svgs => svgs.map(s => s.getBoundingClientRect().width)")
    text = view.page.locator("body").inner_text()
    view.page.screenshot(path=str(REPO_ROOT / "build" / "browser" / "feedback_offline.png"))
    view.page.context.close()
    formulas = len(re.findall(r"\$\$?[^$]+\$\$?", "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")))
    assert view.blocked == [], f"the page asked for {view.blocked}"
    assert len(sizes) >= formulas > 0 and min(sizes) > 0, (len(sizes), formulas)
    assert "\\epsilon" not in text and "$$" not in text
