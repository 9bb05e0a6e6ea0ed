"""Shared fixtures: the book built once per session, and that build served on 127.0.0.1.

The build is strict (``-W -n --keep-going``), from clean, into a temporary folder through the
jupyter-book CLI, exactly as ``make book`` runs it but with ``--path-output``, so the
repository's own ``_build`` is never touched. The tests that use it (test_book.py,
test_html.py) are marked ``xdist_group("book")`` so that ``pytest -n 2 --dist loadgroup`` can keep
them on one worker; independently of that, a file lock makes sure the book is built only once
per run (see ``book_build``).
"""

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
JB_FLAGS = ["-W", "-n", "--keep-going"]  # the Makefile's JB_FLAGS
BUILD_TIMEOUT_S = 600


def jupyter_book_executable():
    """The jupyter-book script of the environment running pytest (the project's .venv)."""
    beside = Path(sys.executable).parent / "jupyter-book"
    if beside.is_file():
        return str(beside)
    found = shutil.which("jupyter-book")
    if found is None:
        pytest.fail("jupyter-book not found: run the tests with the project's .venv")
    return found


def snapshot(folder):
    """{relative path: (size, mtime_ns)} for every file under folder ({} if it is missing)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(folder)): [p.stat().st_size, p.stat().st_mtime_ns]
        for p in folder.rglob("*")
        if p.is_file()
    }


@dataclass
class BookBuild:
    """The outcome of one strict build of the whole book."""

    command: list
    returncode: int
    output: str = field(repr=False)  # stdout and stderr, interleaved as the CLI wrote them
    seconds: float
    out_root: Path  # --path-output; jupyter-book writes <out_root>/_build/...
    repo_build_before: dict = field(repr=False, default_factory=dict)
    repo_build_after: dict = field(repr=False, default_factory=dict)

    @property
    def build_dir(self):
        return self.out_root / "_build"

    @property
    def html_dir(self):
        return self.build_dir / "html"

    @property
    def execute_dir(self):
        """myst-nb writes every executed notebook here, mirroring the source tree."""
        return self.build_dir / "jupyter_execute"

    def tail(self, lines=60):
        return "\n".join(self.output.splitlines()[-lines:])


def _run_build(out_root):
    command = [jupyter_book_executable(), "build", str(REPO), "--path-output", str(out_root),
               *JB_FLAGS]
    env = dict(os.environ)
    env.setdefault("NO_COLOR", "1")  # fewer colour codes in the log we search for warnings
    before = snapshot(REPO / "_build")
    start = time.monotonic()
    try:
        proc = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S)
        returncode, output = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        returncode, output = -1, (exc.stdout or b"")
    output = output.decode("utf-8", errors="replace")
    if returncode == -1:
        output += f"\n[conftest] the build ran past {BUILD_TIMEOUT_S} s and was stopped"
    return dict(command=command, returncode=returncode, output=output,
                seconds=time.monotonic() - start, out_root=str(out_root),
                repo_build_before=before, repo_build_after=snapshot(REPO / "_build"))


@pytest.fixture(scope="session")
def book_build(tmp_path_factory):
    """Build the whole book once per test run, from clean, into a temporary folder.

    Once per *run*, not per process: under pytest-xdist every worker that needs the book takes
    a file lock, and the first one builds while the others wait and then reuse its result (the
    recipe from pytest-xdist's docs). The xdist_group("book") markers already keep the book's
    tests on one worker (with pytest 9.1; pytest 9.2 made ``--dist loadgroup`` drop groups,
    pytest-xdist issue 1386); the lock keeps a run correct and single-build even then.

    Never fails by itself: test_book.py asserts on the result, and ``built_html`` turns a
    failed build into a clear error for the tests that need the HTML.
    """
    from filelock import FileLock

    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent / f"book-{run_id}" if run_id else base / "book"
    shared.mkdir(parents=True, exist_ok=True)
    result_file = shared / "result.json"
    with FileLock(str(shared) + ".lock", timeout=BUILD_TIMEOUT_S + 120):
        if result_file.is_file():
            result = json.loads(result_file.read_text())
        else:
            result = _run_build(shared / "out")
            result_file.write_text(json.dumps(result))
    result["out_root"] = Path(result["out_root"])
    return BookBuild(**result)


@pytest.fixture(scope="session")
def built_html(book_build):
    """The folder of the built HTML site; errors out (once per test) if the build failed."""
    if book_build.returncode != 0 or not (book_build.html_dir / "index.html").is_file():
        pytest.fail(
            f"the book build failed (exit code {book_build.returncode}); see test_book.py.\n"
            f"Last lines of its output:\n{book_build.tail()}",
            pytrace=False,
        )
    return book_build.html_dir


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def served_book(built_html):
    """Serve the built HTML on http://127.0.0.1:<random port>/ for the session.

    Returns the base URL, with a trailing slash. Served, not opened via file://, so the browser
    behaves as it would for a reader (same-origin rules, real HTTP status codes).
    """
    handler = functools.partial(_QuietHandler, directory=str(built_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ---------------------------------------------------------------------------------------------
# The assignments' test modules: test_assignment_<a>.py sets ASSIGNMENT (and MISTAKES)
# ---------------------------------------------------------------------------------------------


def _assignment(request):
    assignment = getattr(request.module, "ASSIGNMENT", None)
    if assignment is None:
        pytest.fail(f"{request.module.__name__} sets no ASSIGNMENT: these fixtures are for the "
                    "assignments' test modules", pytrace=False)
    return assignment


@pytest.fixture(scope="module", autouse=True)
def visible_dir(request):
    """In an assignment's test module, the notebooks' setup cells load the visible tests'
    data from the instructor folder, as the grader's trusted copy is found."""
    if getattr(request.module, "ASSIGNMENT", None) is None:
        yield None
        return
    from backpropbook.selfcheck import VISIBLE_DIR

    folder = REPO / "solutions" / request.module.ASSIGNMENT
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(VISIBLE_DIR, str(folder))
        yield folder


@pytest.fixture(scope="module")
def source_nb(request):
    """The instructor notebook solutions/<a>/<a>.ipynb."""
    from nbgrader_course import read

    assignment = _assignment(request)
    return read(REPO / "solutions" / assignment / f"{assignment}.ipynb")


@pytest.fixture(scope="module")
def visible_tests(request):
    """The visible tests' data, as the student's notebook loads it."""
    from backpropbook.selfcheck import VisibleTests

    assignment = _assignment(request)
    return VisibleTests.load(assignment, REPO / "solutions" / assignment)


@pytest.fixture(scope="module")
def course(request, tmp_path_factory, source_nb):
    """A real nbgrader course with the instructor's notebook, the untouched release and every
    mistake of the module's MISTAKES marked in_notebook, graded by one run of the grader."""
    from nbgrader_course import grade_course

    return grade_course(tmp_path_factory.mktemp("course"), _assignment(request), source_nb,
                        request.module.MISTAKES)
