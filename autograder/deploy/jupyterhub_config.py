"""JupyterHub for one class taught with the nnopt course kit, on one Linux machine.

Start it as root with ``jupyterhub -f <kit>/autograder/deploy/jupyterhub_config.py``; the whole
set-up (users, folders, TLS, scale) is in ``DEPLOY.md`` beside this file.

* Everyone logs in with a Unix account (PAM) and gets a JupyterLab server running as that
  user (``LocalProcessSpawner``), so the nbgrader exchange is protected by Unix permissions.
* The roster is two text files, one user name per line, ``#`` starts a comment:
  ``$NNOPT_SRV/students.txt`` and ``$NNOPT_SRV/instructors.txt`` (``NNOPT_SRV`` defaults to
  ``/srv/nbgrader``). Re-read when the hub restarts.
* Instructors are hub admins and members of ``formgrade-nnopt``, which may open the shared
  grading server: the JupyterHub service ``nnopt`` (the course id), running as the Unix user
  ``grader-nnopt`` in its own checkout of the kit (``$NNOPT_COURSE_DIR``).
* Every server gets ``JUPYTER_CONFIG_PATH`` with ``exchange/`` (nbgrader exchange settings);
  students also get ``students/``, which hides the instructor tools (formgrader, create
  assignment, course list).
* The proxy is the kit's ``configurable-http-proxy`` (``make web-deps``) if installed.

Settings from the environment (defaults for one server, DEPLOY.md): ``NNOPT_SRV``,
``NNOPT_EXCHANGE_ROOT``, ``NNOPT_COURSE_DIR``, ``NNOPT_GRADER`` (the grading account,
``grader-nnopt``), ``NNOPT_HUB_URL`` (``http://127.0.0.1:8000``), and the internal ports:
``NNOPT_HUB_API_URL`` (``:8081``), ``NNOPT_PROXY_API_URL`` (``:8001``), ``NNOPT_SERVICE_PORT``
(``9999``). ``tests/test_hub.py`` uses them to run a scratch class beside a real one.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
KIT = DEPLOY.parents[1]
KIT_BIN = KIT / ".venv" / "bin"
COURSE_ID = "nnopt"
GRADER = os.environ.get("NNOPT_GRADER", f"grader-{COURSE_ID}")
FORMGRADERS = f"formgrade-{COURSE_ID}"
SERVICE_PORT = int(os.environ.get("NNOPT_SERVICE_PORT", "9999"))
#: The proxy installed by `make web-deps` (npm ci); else configurable-http-proxy on PATH.
PROXY = DEPLOY / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"

SRV = Path(os.environ.get("NNOPT_SRV", "/srv/nbgrader"))
EXCHANGE_ROOT = os.environ.get("NNOPT_EXCHANGE_ROOT", str(SRV / "exchange"))
COURSE_DIR = Path(os.environ.get("NNOPT_COURSE_DIR", f"/home/{GRADER}/nnopt/autograder"))
#: What every server and the grading service run with: the kit's commands first on PATH, and
#: LD_LIBRARY_PATH if the hub has one (a Python whose libpython is not in a system folder).
SERVER_ENV = {"PATH": f"{KIT_BIN}:/usr/local/bin:/usr/bin:/bin",
              **{k: os.environ[k] for k in ("LD_LIBRARY_PATH",) if k in os.environ}}

#: Unix user names accepted by Debian's ``adduser`` (and JupyterHub).
USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def read_roster(path: Path) -> list[str]:
    """User names listed in ``path``: one per line, blank lines and ``# comments`` ignored.

    Raises ``FileNotFoundError`` naming the file if it is missing and ``ValueError`` naming the
    file and line of a name that is not a valid Unix user name or appears twice.
    """
    if not path.is_file():
        raise FileNotFoundError(f"roster {path} not found: create it, one user name per line")
    names: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not USER_NAME.match(name):
            raise ValueError(f"{path}:{number}: {name!r} is not a valid user name "
                             "(lower-case letters, digits, '-' and '_', at most 32 characters)")
        if name in names:
            raise ValueError(f"{path}:{number}: {name!r} is listed twice")
        names.append(name)
    return names


def config_path(user_name: str, instructors: list[str]) -> str:
    """``JUPYTER_CONFIG_PATH`` for the server of ``user_name``."""
    folders = [DEPLOY / "exchange"] if user_name in instructors else [DEPLOY / "students", DEPLOY / "exchange"]
    return os.pathsep.join(str(f) for f in folders)


students = read_roster(SRV / "students.txt")
instructors = read_roster(SRV / "instructors.txt")
both = sorted(set(students) & set(instructors))
if both:
    raise ValueError(f"listed as both student and instructor: {', '.join(both)}")
if GRADER in students or GRADER in instructors:
    raise ValueError(f"{GRADER} is the grading account, not a hub user: remove it from the roster")

c = get_config()  # noqa: F821 -- provided by traitlets when JupyterHub loads this file

# --- hub ---------------------------------------------------------------------------------
c.JupyterHub.bind_url = os.environ.get("NNOPT_HUB_URL", "http://127.0.0.1:8000")  # TLS proxy in front
c.JupyterHub.hub_bind_url = os.environ.get("NNOPT_HUB_API_URL", "http://127.0.0.1:8081")
c.ConfigurableHTTPProxy.api_url = os.environ.get("NNOPT_PROXY_API_URL", "http://127.0.0.1:8001")
if PROXY.is_file():
    c.ConfigurableHTTPProxy.command = [str(PROXY)]
c.JupyterHub.cookie_secret_file = str(SRV / "jupyterhub_cookie_secret")
c.JupyterHub.db_url = f"sqlite:///{SRV / 'jupyterhub.sqlite'}"
c.JupyterHub.log_level = "INFO"

# --- who may log in ------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(students) | set(instructors)
c.Authenticator.admin_users = set(instructors)

# --- the users' servers --------------------------------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(KIT_BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
# A lecture starts with many logins at once: give each server time to start (defaults: 60/30 s).
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {
    **SERVER_ENV,
    "JUPYTER_CONFIG_PATH": lambda spawner: config_path(spawner.user.name, instructors),
    "NNOPT_EXCHANGE_ROOT": EXCHANGE_ROOT,
    # one BLAS thread per user: many students share few cores
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# Stop servers idle for an hour (jupyterhub-idle-culler, pinned in requirements-course.txt).
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [str(KIT_BIN / "python"), "-m", "jupyterhub_idle_culler", "--timeout=3600"],
        "environment": SERVER_ENV,
    },
    # The shared grading server (formgrader) of the course; its name MUST be the course id.
    {
        "name": COURSE_ID,
        "url": f"http://127.0.0.1:{SERVICE_PORT}",
        # behind its own proxy, so that it answers within the 10 s JupyterHub allows
        "command": [str(KIT_BIN / "python"), str(DEPLOY / "hub" / "grading_service.py"),
                    str(KIT_BIN / "jupyterhub-singleuser")],
        "user": GRADER,
        "cwd": str(COURSE_DIR),
        "oauth_no_confirm": True,        # the course's own service: no "authorize access?" page
        "environment": {
            **SERVER_ENV,
            "JUPYTER_CONFIG_PATH": config_path(GRADER, [GRADER]),
            "NNOPT_EXCHANGE_ROOT": EXCHANGE_ROOT,
            "JUPYTERHUB_DEFAULT_URL": "/lab",
            # as autograder/pipeline.py grades: no progress bars, Theano without a cold C compile
            "NNOPT_PROGRESS": "0",
            "THEANO_FLAGS": "cxx=",
            "OMP_NUM_THREADS": "1",
        },
    },
]

# --- permissions -----------------------------------------------------------------------------
c.JupyterHub.load_groups = {FORMGRADERS: instructors}
c.JupyterHub.load_roles = [
    {
        "name": FORMGRADERS,
        "groups": [FORMGRADERS],
        "scopes": [f"access:services!service={COURSE_ID}", "list:services",
                   f"read:services!service={COURSE_ID}"],
    },
    {
        "name": "idle-culler",
        "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    },
    # The course-list extension of an instructor's server looks up the grading service.
    {"name": "server", "scopes": ["inherit"]},
]
