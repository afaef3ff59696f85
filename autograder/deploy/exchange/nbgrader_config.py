"""nbgrader exchange settings shared by every account of the course.

Students, instructors and the grader service all load this file: JupyterHub puts this folder
on ``JUPYTER_CONFIG_PATH`` of every server it spawns (see ``../jupyterhub_config.py``); on a
terminal, ``export JUPYTER_CONFIG_PATH=<kit>/autograder/deploy/exchange`` does the same.

* ``NNOPT_EXCHANGE_ROOT`` (default ``/srv/nbgrader/exchange``) is the exchange folder; create
  it once as root with mode 1777 (``DEPLOY.md``).
* Submissions are made unreadable to other students (:mod:`nnopt_exchange`).
"""
import os
import sys

DEPLOY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # noqa: F821 (__file__ is set by traitlets)
if DEPLOY not in sys.path:        # for nnopt_exchange below
    sys.path.insert(0, DEPLOY)

c = get_config()  # noqa: F821 -- provided by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "nnopt"
c.Exchange.root = os.environ.get("NNOPT_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
# Each submission's folder name ends with 12 random characters: not guessable.
c.ExchangeSubmit.add_random_string = True
c.ExchangeFactory.submit = "nnopt_exchange.PrivateExchangeSubmit"
