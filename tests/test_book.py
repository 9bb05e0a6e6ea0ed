"""The strict build of the whole book, from clean, through the jupyter-book CLI.

The build itself runs once per session in the ``book_build`` fixture (conftest.py); these tests
only look at what it produced.
"""

import json
import re

import pytest
from myst_nb.core.read import read_myst_markdown_notebook
from sphinx_external_toc.parsing import parse_toc_yaml

from conftest import REPO

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]

ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Lines that contain WARNING/ERROR but do not come from the book. Each one is matched in full;
# anything else that mentions WARNING or ERROR fails the build test.
KNOWN_HARMLESS = [
    # ipykernel >= 7 logs this whenever it is started over local TCP, which is how myst-nb's
    # kernel manager starts every kernel. It is about the kernel's own 127.0.0.1 sockets, not
    # about the book; see the report to the lead for silencing it at the source.
    re.compile(r"\[IPKernelApp\] WARNING \| Kernel is running over TCP without encryption\..*"),
]


def toc_docnames():
    """Every document in _toc.yml, root first, as Sphinx docnames (``book/scalar``)."""
    site_map = parse_toc_yaml(REPO / "_toc.yml")
    root = site_map.root.docname
    return [root] + sorted(name for name in site_map if name != root)


def source_of(docname):
    matches = [p for p in REPO.glob(docname + ".*") if p.suffix in (".md", ".ipynb")]
    assert len(matches) == 1, f"{docname}: expected one source file, found {matches}"
    return matches[0]


def code_cell_count(source):
    """How many code cells the chapter's source holds (MyST markdown or .ipynb)."""
    text = source.read_text(encoding="utf-8")
    if source.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
    else:
        if not text.lstrip().startswith("---"):  # no front matter: not a notebook at all
            return 0
        cells = read_myst_markdown_notebook(text)["cells"]
    return sum(1 for cell in cells if cell["cell_type"] == "code")


def text(source):
    """A notebook cell's source: nbformat stores it as one string or as a list of lines."""
    return source if isinstance(source, str) else "".join(source)


def test_build_succeeds_strictly(book_build):
    assert book_build.returncode == 0, (
        f"`{' '.join(book_build.command)}` exited with {book_build.returncode}:\n"
        f"{book_build.tail(120)}"
    )
    assert "build succeeded" in ANSI.sub("", book_build.output)


def test_build_output_has_no_warning_or_error(book_build):
    bad = []
    for line in ANSI.sub("", book_build.output).splitlines():
        if re.search(r"WARNING|ERROR", line) and not any(
                pattern.fullmatch(line.strip()) for pattern in KNOWN_HARMLESS):
            bad.append(line)
    assert not bad, "the build printed warnings or errors:\n" + "\n".join(bad)


def test_build_went_to_the_temporary_folder_only(book_build):
    """--path-output is honoured: the repository's own _build is left exactly as it was."""
    assert book_build.html_dir.is_dir()
    assert f"Output Path: {book_build.html_dir}" in ANSI.sub("", book_build.output)
    assert book_build.repo_build_after == book_build.repo_build_before, (
        "the build wrote into the repository's _build (or someone ran `make book` meanwhile)"
    )
    assert not (REPO / ".jupyter_cache").exists()


@pytest.mark.parametrize("docname", toc_docnames())
def test_every_toc_entry_has_a_page(book_build, docname):
    page = book_build.html_dir / f"{docname}.html"
    assert page.is_file(), f"{docname} is in _toc.yml but {page.name} was not built"
    html = page.read_text(encoding="utf-8")
    assert re.search(r"<h1\b", html), f"{page} has no title"


def test_index_redirects_to_the_root_page(book_build):
    root = toc_docnames()[0]
    index = (book_build.html_dir / "index.html").read_text(encoding="utf-8")
    assert f"url={root}.html" in index


@pytest.mark.parametrize("docname", toc_docnames())
def test_every_code_cell_was_executed(book_build, docname):
    """Each chapter's code cells all ran: the executed notebook has an execution count for
    each, and as many code cells as the source."""
    expected = code_cell_count(source_of(docname))
    executed = book_build.execute_dir / f"{docname}.ipynb"
    if expected == 0:
        assert not executed.exists() or not [
            c for c in json.loads(executed.read_text())["cells"] if c["cell_type"] == "code"]
        return
    assert executed.is_file(), f"{docname} has {expected} code cells but was not executed"
    cells = [dict(c, source=text(c["source"]))
             for c in json.loads(executed.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code"]
    assert len(cells) == expected
    not_run = [i for i, c in enumerate(cells)
               if c["source"].strip() and not isinstance(c.get("execution_count"), int)]
    assert not not_run, f"{docname}: code cells {not_run} (0-based) were not executed"
    counts = [c["execution_count"] for c in cells if c["source"].strip()]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), (
        f"{docname}: cells ran out of order or twice: {counts}"
    )
    errors = [i for i, c in enumerate(cells) for o in c.get("outputs", [])
              if o.get("output_type") == "error"
              and "raises-exception" not in c.get("metadata", {}).get("tags", [])]
    assert not errors, f"{docname}: code cells {errors} raised without the raises-exception tag"


def test_no_execution_failure_reports(book_build):
    """myst-nb writes a report per failing notebook into <html>/reports."""
    reports = book_build.html_dir / "reports"
    assert not reports.exists() or not any(reports.iterdir()), sorted(reports.iterdir())


@pytest.mark.parametrize("docname", toc_docnames())
def test_no_code_cell_writes_to_stderr(book_build, docname):
    """A warning or a log line a chapter's code prints lands on the student's page: none may."""
    executed = book_build.execute_dir / f"{docname}.ipynb"
    if not executed.is_file():
        return  # a page without code cells (test_every_code_cell_was_executed checks which)
    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    printed = [(i, text(o.get("text", ""))[:300]) for i, c in enumerate(cells)
               for o in c.get("outputs", [])
               if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not printed, f"{docname}: cells (0-based, all cells) wrote to stderr: {printed}"
