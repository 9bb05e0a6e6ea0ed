"""Jupyter server settings for the instructor: nbgrader's formgrader, offline.

From the course root (the repository), run
``.venv/bin/jupyter server --config=jupyter_server_config.py`` and open the link it prints: it
lands on nbgrader's formgrader, whose maths MathJax 3 typesets from this server (the extension
``backpropgrader.formgrader``), never from a CDN. ``jupyter lab --config=...`` works too.
"""

c = get_config()  # noqa: F821 (provided by Jupyter when it loads this file)

c.ServerApp.jpserver_extensions = {"backpropgrader.formgrader": True}
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.default_url = "/formgrader"
