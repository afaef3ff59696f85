"""Node tools of the class server and the lecture site, installed by ``make web-deps`` (npm ci).

* ``configurable-http-proxy``: the proxy JupyterHub starts (``jupyterhub_config.py`` uses this copy);
* ``mathjax`` 3: served by the lecture site (``make site``) and, through ``autograder/offline_math.py``,
  typesetting the formulas of the feedback pages when they are generated.
"""
