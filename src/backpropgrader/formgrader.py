"""A Jupyter server extension: nbgrader's formgrader typesets maths offline.

nbgrader 0.9.6 renders a submission for manual grading through nbconvert's ``mathjax()`` macro,
which loads MathJax 2 from a CDN whatever the settings say; offline, the grader sees raw TeX.
This extension serves MathJax 3 (from the pinned django-static-mathjax package, as the book
does) at ``<base_url>backpropgrader/mathjax/`` and swaps that macro, in the formgrader's own
exporter only (feedback is nbgrader's other exporter and is left alone), for one that loads
it from there. nbgrader's formgrade.js waits for MathJax 2's startup signal; the new macro
answers it from MathJax 3's startup promise.

Enabled by ``jupyter_server_config.py`` at the course root:
``.venv/bin/jupyter server --config=jupyter_server_config.py``.
"""

import html

from jinja2 import DictLoader
from jupyter_server.utils import url_path_join
from tornado.web import StaticFileHandler

from backpropbook.sphinx_offline import MATHJAX_ES5

URL_PATH = "backpropgrader/mathjax"  # under the server's base_url

# @URL@ is the only substitution; the rest is verbatim (no Jinja syntax inside the raw block).
_MACRO = """{%- macro mathjax(url=None) -%}{% raw %}
<!-- MathJax 3, served by this Jupyter server (backpropgrader.formgrader) -->
<script>
window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
        displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
        processEscapes: true, processEnvironments: true, tags: "ams"}
};
</script>
<script src="@URL@"></script>
<script>
// formgrade.js focuses the score box once MathJax 2 signals "End": signal it from MathJax 3.
MathJax.Hub = {Startup: {signal: {Interest: function (listener) {
  MathJax.startup.promise.then(function () { listener("End"); });
}}}};
</script>
{% endraw %}{%- endmacro %}
"""


def mathjax_macro(base_url):
    """The template ``mathjax.html.j2``, loading MathJax 3 from this server."""
    src = url_path_join(base_url, URL_PATH, "tex-chtml.js")
    return _MACRO.replace("@URL@", html.escape(src))


def _jupyter_server_extension_points():
    return [{"module": "backpropgrader.formgrader"}]


def _load_jupyter_server_extension(serverapp):
    if not (MATHJAX_ES5 / "tex-chtml.js").is_file():
        raise RuntimeError(f"MathJax not found at {MATHJAX_ES5}: install django-static-mathjax")
    web_app = serverapp.web_app
    pattern = url_path_join(web_app.settings["base_url"], URL_PATH, "(.*)")
    web_app.add_handlers(".*$", [(pattern, StaticFileHandler, {"path": str(MATHJAX_ES5)})])


async def _start_jupyter_server_extension(serverapp):
    # Extensions load in alphabetical order, so nbgrader's formgrader (which creates the
    # exporter) is ready only now, once every extension has loaded.
    settings = serverapp.web_app.settings
    exporter = settings.get("nbgrader_exporter")
    if exporter is None:
        raise RuntimeError("backpropgrader.formgrader: nbgrader's formgrader extension is not "
                           "loaded (is nbgrader installed in this environment?)")
    macro = DictLoader({"mathjax.html.j2": mathjax_macro(settings["base_url"])})
    exporter.extra_loaders = [macro, *exporter.extra_loaders]
    serverapp.log.info("backpropgrader.formgrader: formgrader maths from %s", URL_PATH)
