"""A tiny Sphinx extension that keeps the built book usable offline and free of console errors.

- MathJax 3 is copied from the installed ``django-static-mathjax`` package into ``<html>/mathjax``
  and pages load it from there, never from a CDN. (Files under ``_static`` would be injected as
  script tags on every page by jupyter-book, so they go beside it instead.)
- Sphinx 7.4 registers two inline theme scripts twice (sphinx-thebe and sphinx-togglebutton
  add them with ``filename=None``, which Sphinx's de-duplication misses); the browser then
  raises ``SyntaxError: Identifier ... has already been declared``. We drop the repeats.
"""

import shutil
from pathlib import Path

import mathjax  # the django-static-mathjax distribution

MATHJAX_ES5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
MATHJAX_DIR = "mathjax"  # in the HTML output folder


def _use_local_mathjax(app, config):
    # add_js_file() prefixes "_static/", so step out of it.
    config.mathjax_path = f"../{MATHJAX_DIR}/tex-chtml.js"


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        shutil.copytree(MATHJAX_ES5, Path(app.outdir) / MATHJAX_DIR, dirs_exist_ok=True)


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # The same inline script is registered once with filename None and once with "".
        key = (str(getattr(script, "filename", script) or ""),
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique


def setup(app):
    if not (MATHJAX_ES5 / "tex-chtml.js").is_file():
        raise RuntimeError(
            f"MathJax not found at {MATHJAX_ES5}: is django-static-mathjax installed?")
    app.connect("config-inited", _use_local_mathjax, priority=900)
    app.connect("build-finished", _copy_mathjax)
    # Early: html-page-context stops at the first handler that returns a template name.
    app.connect("html-page-context", _drop_duplicate_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
