"""The class server: JupyterHub configuration, nbgrader exchange settings, the hub's tools (see DEPLOY.md)."""
