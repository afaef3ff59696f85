"""The course tools without a browser: pins, offline formulas, the grading-service launcher,
the hub configuration's settings, and the sizing numbers of DEPLOY.md."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from conftest import REPO_ROOT
from test_environment import RUNTIME, TEST_EXTRAS, requirement_pins

DEPLOY = REPO_ROOT / "autograder" / "deploy"
HUB = DEPLOY / "hub"
COURSE = requirement_pins("requirements-course.txt")


# --------------------------------------------------------------------------- pins


def test_course_pins_are_exact_and_separate():
    lines = (REPO_ROOT / "requirements-course.txt").read_text().splitlines()
    assert "-r requirements.txt" in lines
    assert {"jupyterhub", "jupyterhub-idle-culler", "sphinx", "myst-nb", "sphinx-book-theme"} <= set(COURSE)
    assert not set(COURSE) & (set(RUNTIME) | set(TEST_EXTRAS)), "a package is pinned twice"


def test_installed_course_tools_match_the_pins():
    if not (Path(sys.prefix) / ".installed-course").exists():
        pytest.skip("course tools not installed in this .venv (make course-deps)")
    wrong = {n: metadata.version(n) for n, v in COURSE.items() if metadata.version(n) != v}
    assert not wrong, f"run `make course-deps`: {wrong}"


def test_node_packages_are_pinned_exactly():
    package = json.loads((HUB / "package.json").read_text())
    lock = json.loads((HUB / "package-lock.json").read_text())
    for name, version in package["dependencies"].items():
        assert version[0].isdigit(), f"{name}: pin an exact version, not {version!r}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert set(package["dependencies"]) == {"configurable-http-proxy", "mathjax"}


# --------------------------------------------------------------------------- offline formulas


def test_typeset_turns_every_formula_into_svg_and_drops_the_cdn_loader():
    from autograder.offline_math import typeset

    page = ('<html><head><script src="https://cdn.example/mathjax/2.7.7/MathJax.js"></script>'
            '<script type="text/x-mathjax-config">MathJax.Hub.Config({})</script></head><body>'
            r'<p>inline $\epsilon_t$ and display $$\frac{\epsilon_0}{1+kt}$$</p>'
            r'<pre>print("$not math$")</pre></body></html>')
    out = typeset(page)
    assert out.count("<mjx-container") == 2 and "<svg" in out
    assert "cdn.example" not in out and "x-mathjax-config" not in out
    assert "$not math$" in out                     # code is left alone
    assert r"\epsilon" not in out.split("<pre>")[0]


def test_typeset_filters_what_student_tex_could_smuggle():
    from autograder.offline_math import typeset

    out = typeset(r'<p>$\href{javascript:alert(1)}{x}$ $\style{background:url(http://evil)}{y}$ '
                  r'$\require{extpfeil}$</p>')
    assert "javascript:" not in out and "evil" not in out
    assert "Undefined control sequence \\require" in out or "merror" in out


def test_a_page_with_too_many_formulas_keeps_its_tex_with_a_note(monkeypatch: pytest.MonkeyPatch):
    """A written answer of thousands of formulas must not hold the grader (typesetting runs
    outside the sandbox, ~2.4 ms per formula): past the limit no node is started at all."""
    from autograder import offline_math
    monkeypatch.setattr(offline_math.subprocess, "run", lambda *a, **k: pytest.fail("node was started"))
    page = "<html><head></head><body><p>" + " ".join(f"$x_{{{i}}}$" for i in range(11)) + "</p></body></html>"
    out = offline_math.typeset(page, max_formulas=10)
    assert out.startswith("<html><head></head><body>" + offline_math.TOO_MANY.format(limit=10))
    assert out.endswith(page[len("<html><head></head><body>"):])
    assert offline_math.formula_bound(r"$a$ $$b$$ \(c\) \[d\] \begin{align}e\end{align}") == 6


def test_missing_mathjax_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from autograder import offline_math

    monkeypatch.setattr(offline_math, "candidate_dirs", lambda: [tmp_path])
    with pytest.raises(offline_math.OfflineMathError, match="make web-deps"):
        offline_math.typeset("<p>$x$</p>")


# --------------------------------------------------------------------------- grading service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAKE_SERVER = """
import http.server, os, sys, time, urllib.parse
time.sleep(float(sys.argv[1]))
url = urllib.parse.urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"grading server")
        if self.path == "/stop":
            os._exit(3)
    def log_message(self, *a): pass
http.server.HTTPServer((url.hostname, url.port), H).serve_forever()
"""


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_grading_service_answers_at_once_then_passes_through(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/services/nnopt/"}
    launcher = subprocess.Popen([sys.executable, str(HUB / "grading_service.py"), sys.executable,
                                 "-c", FAKE_SERVER, "3"], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:                                   # the launcher listens within moments
            try:
                status, body = _get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                assert time.monotonic() < deadline, "the launcher did not listen"
                time.sleep(0.05)
        assert status == 404 and b"starting" in body  # < 500: JupyterHub counts it as up
        while (status := _get(f"http://127.0.0.1:{port}/")[0]) != 200:
            assert time.monotonic() < deadline + 30, "the server never came through"
            time.sleep(0.2)
        assert _get(f"http://127.0.0.1:{port}/x")[1] == b"grading server"
        try:
            _get(f"http://127.0.0.1:{port}/stop")
        except OSError:
            pass
        assert launcher.wait(timeout=30) == 3         # the server's exit status: JupyterHub restarts it
    finally:
        launcher.kill()


# --------------------------------------------------------------------------- hub configuration


def _hub_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str):
    from traitlets.config.loader import PyFileConfigLoader

    (tmp_path / "students.txt").write_text("alice\n")
    (tmp_path / "instructors.txt").write_text("prof_x\n")
    monkeypatch.setenv("NNOPT_SRV", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(DEPLOY)).load_config()


def test_hub_config_takes_grader_and_ports_from_the_environment(monkeypatch, tmp_path):
    c = _hub_config(monkeypatch, tmp_path, NNOPT_GRADER="nx01-grader", NNOPT_SERVICE_PORT="18999",
                    NNOPT_HUB_API_URL="http://127.0.0.1:18081", NNOPT_PROXY_API_URL="http://127.0.0.1:18001",
                    LD_LIBRARY_PATH="/opt/python/lib")
    service = next(s for s in c.JupyterHub.services if s["name"] == "nnopt")
    assert service["user"] == "nx01-grader" and service["url"] == "http://127.0.0.1:18999"
    assert service["command"][1] == str(HUB / "grading_service.py")
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:18081"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:18001"
    assert c.Spawner.environment["LD_LIBRARY_PATH"] == service["environment"]["LD_LIBRARY_PATH"] == "/opt/python/lib"
    assert c.Spawner.environment["PATH"].startswith(str(REPO_ROOT / ".venv" / "bin"))


def test_hub_config_uses_the_kits_proxy_when_installed(monkeypatch, tmp_path):
    c = _hub_config(monkeypatch, tmp_path)
    proxy = HUB / "node_modules" / ".bin" / "configurable-http-proxy"
    if proxy.exists():
        assert c.ConfigurableHTTPProxy.command == [str(proxy)]
    else:
        assert "command" not in c.ConfigurableHTTPProxy


# --------------------------------------------------------------------------- DEPLOY.md and README


def test_deploy_sizing_comes_from_the_autograde_benchmark():
    bench = json.loads((REPO_ROOT / "benchmarks" / "results" / "autograde.json").read_text())
    per_min = bench["throughput"]["1 worker(s)"]["per_minute"]
    cpu = bench["throughput"]["2 worker(s)"]["cpu_s_per_submission"]
    lab1, lab3 = (bench["per_lab"][lab]["autograde_s"] for lab in ("lab1_sgd_momentum", "lab3_handson"))
    wall16 = 1000 / (16 * per_min)
    text = " ".join((DEPLOY / "DEPLOY.md").read_text().split())      # line breaks do not matter
    for number in (f"**{per_min:g} Lab 1 submissions per minute**", f"about **{round(per_min * 60)} per hour**",
                   f"**{cpu:g} CPU seconds**", f"1,000 x {cpu:g} s = about **{round(1000 * cpu / 60)} core-minutes**",
                   f"1,000 / (16 x {per_min:g}) = about **{wall16:.1f} min**",
                   f"{lab3:g} / {lab1:g} as long, about **{wall16 * lab3 / lab1:.1f} min**"):
        assert number in text, f"DEPLOY.md should say {number!r} (from benchmarks/results/autograde.json)"
    assert (DEPLOY / "k8s" / "values.yaml").is_file()


def test_readme_presents_the_course_targets():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "## Run the course" in readme
    section = readme.split("## Run the course", 1)[1].split("\n## ", 1)[0]
    assert "make site" in section and "make hub-demo" in section


def test_make_knows_the_course_targets():
    done = subprocess.run(["make", "--no-print-directory", "-C", str(REPO_ROOT), "-n", "site", "hub-demo"],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "sphinx-build" in done.stdout and "tests/test_hub.py" in done.stdout
