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
"""
from __future__ import annotations

import os
import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
KIT = DEPLOY.parents[1]
COURSE_ID = "nnopt"
GRADER = f"grader-{COURSE_ID}"
FORMGRADERS = f"formgrade-{COURSE_ID}"
SERVICE_PORT = 9999

SRV = Path(os.environ.get("NNOPT_SRV", "/srv/nbgrader"))
EXCHANGE_ROOT = os.environ.get("NNOPT_EXCHANGE_ROOT", str(SRV / "exchange"))
COURSE_DIR = Path(os.environ.get("NNOPT_COURSE_DIR", f"/home/{GRADER}/nnopt/autograder"))

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
c.JupyterHub.cookie_secret_file = str(SRV / "jupyterhub_cookie_secret")
c.JupyterHub.db_url = f"sqlite:///{SRV / 'jupyterhub.sqlite'}"
c.JupyterHub.log_level = "INFO"

# --- who may log in ------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(students) | set(instructors)
c.Authenticator.admin_users = set(instructors)

# --- the users' servers --------------------------------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(KIT / ".venv" / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {
    "JUPYTER_CONFIG_PATH": lambda spawner: config_path(spawner.user.name, instructors),
    "NNOPT_EXCHANGE_ROOT": EXCHANGE_ROOT,
    # one BLAS thread per user: many students share few cores
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# Stop servers idle for an hour (needs `pip install jupyterhub-idle-culler`, see DEPLOY.md).
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": [str(KIT / ".venv" / "bin" / "python"), "-m", "jupyterhub_idle_culler", "--timeout=3600"],
    },
    # The shared grading server (formgrader) of the course; its name MUST be the course id.
    {
        "name": COURSE_ID,
        "url": f"http://127.0.0.1:{SERVICE_PORT}",
        "command": [str(KIT / ".venv" / "bin" / "jupyterhub-singleuser")],
        "user": GRADER,
        "cwd": str(COURSE_DIR),
        "environment": {
            "JUPYTER_CONFIG_PATH": config_path(GRADER, [GRADER]),
            "NNOPT_EXCHANGE_ROOT": EXCHANGE_ROOT,
            "JUPYTERHUB_DEFAULT_URL": "/lab",
            # the instructors' own kernels, as graded ones run: no progress bars, Theano
            # without a cold C compile (graded kernels get theirs from autograder/sandbox.py)
            "NNOPT_PROGRESS": "0",
            "THEANO_FLAGS": "cxx=",
            "OMP_NUM_THREADS": "1",
            # solutions kept in a private repository of the instructors (DEPLOY.md)
            **({"NNOPT_SOURCE_DIR": os.environ["NNOPT_SOURCE_DIR"]} if "NNOPT_SOURCE_DIR" in os.environ else {}),
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
