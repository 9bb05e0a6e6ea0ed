"""Manual grading in nbgrader's formgrader, end to end, offline, in headless Chromium.

A tiny synthetic assignment (a locked setup cell, one autograded function and its test, one
written answer graded by hand, with maths in the question and in the answer) is released,
submitted by one student and graded by the project's grading command, in a temporary course.
A real Jupyter server is then started there the way the README tells instructors to start it,
and Chromium, allowed to reach only that server, opens the submission's manual-grading page:
the maths must be typeset, with no error and no request off the machine. A score typed into
the page must reach the gradebook and the exported ``grades.csv``.

``test_stock_formgrader_fails_these_checks`` runs the same checks against nbgrader's formgrader
without ``backpropgrader.formgrader``: they must catch its CDN request and its raw TeX.
"""

import csv
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

from nbgrader_course import REPO, build_course, read, run_nbgrader, submit
from test_html import CHROMIUM_ARGS, NON_NETWORK_SCHEMES, chromium_path

pytestmark = [pytest.mark.browser, pytest.mark.grading, pytest.mark.xdist_group("formgrader")]

A = "written"  # the synthetic assignment
STUDENT = "ada"
ANSWER_ID = "explain_delta"  # the written answer's grade_id
ANSWER_POINTS, TEST_POINTS = 2.0, 1.0
MANUAL = "1.5"  # what the grader types into the score box
JUPYTER = str(Path(sys.executable).parent / "jupyter")
SERVER_CONFIG = "jupyter_server_config.py"  # at the repository root, copied to the course root
RAW_TEX = ["$", "\\(", "\\)", "\\[", "\\]", "\\frac", "\\delta", "^{["]
FORMULAS = {"question": 2, "answer": 4}  # how many each shows, once typeset

QUESTION = r"""**Question.** With $\delta^{[l]} = \partial E / \partial z^{[l]}$, explain why
$$\delta^{[l]} = \left(W^{[l+1]}\right)^T \delta^{[l+1]} \odot \sigma'\!\left(z^{[l]}\right).$$"""
STUDENT_ANSWER = r"""By the chain rule through $z^{[l+1]} = W^{[l+1]} a^{[l]} + b^{[l+1]}$,
$$\frac{\partial E}{\partial a^{[l]}} = \left(W^{[l+1]}\right)^T \delta^{[l+1]},$$
and \\(a^{[l]} = \sigma(z^{[l]})\\) is applied elementwise, which gives the product with
\\[\sigma'\!\left(z^{[l]}\right).\\]"""  # Jupyter Markdown writes \\( and \\[ with two backslashes


def _cell(kind, source, grade_id, **nbgrader):
    meta = {"grade_id": grade_id, "grade": False, "solution": False, "locked": False,
            "schema_version": 3, **nbgrader}
    new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return new(source, metadata={"nbgrader": meta})


def source_notebook():
    """The instructor's notebook: setup, one autograded function, one written answer."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [
        _cell("code", "import numpy as np", "setup", locked=True),
        _cell("code", "def sigmoid(z):\n    ### BEGIN SOLUTION\n    return 1 / (1 + np.exp(-z))\n"
              "    ### END SOLUTION", "sigmoid", solution=True),
        _cell("code", '"""sigmoid: sigmoid(0) is 1/2."""\nassert sigmoid(0.0) == 0.5\n'
              "### BEGIN HIDDEN TESTS\nassert abs(sigmoid(2.0) - 1 / (1 + np.exp(-2.0))) < 1e-12\n"
              "### END HIDDEN TESTS", "test_sigmoid", grade=True, locked=True,
              points=TEST_POINTS),
        _cell("markdown", QUESTION, "question", locked=True),
        _cell("markdown", r"Backpropagate $\partial E / \partial a^{[l]}$ through $\sigma$.",
              ANSWER_ID, solution=True, grade=True, points=ANSWER_POINTS),
    ]
    return nb


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grades_csv(root):
    with open(root / "grades.csv", newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def grader(root, *args):
    """``python -m backpropgrader --course <root> ...``; fails with its output if it fails."""
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                 os.environ.get("PATH", "")]))
    done = subprocess.run([sys.executable, "-m", "backpropgrader", "--course", str(root), *args],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course: released, submitted by one student, graded by the grading command."""
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap (bwrap) is missing: run `make debian-deps`", pytrace=False)
    root = build_course(tmp_path_factory.mktemp("formgrader") / "course", [])
    shutil.copy(REPO / SERVER_CONFIG, root / SERVER_CONFIG)
    (root / "solutions" / A).mkdir()
    nbformat.write(source_notebook(), root / "solutions" / A / f"{A}.ipynb")
    run_nbgrader(root, "generate_assignment", A, "--force", "--log-level=WARN")
    release = read(root / "exercises" / A / f"{A}.ipynb")
    for cell in release.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "sigmoid":
            cell.source = "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))"
        elif gid == ANSWER_ID:
            cell.source = STUDENT_ANSWER
    submit(root, A, STUDENT, {A: release})
    grader(root, "grade", A, "--jobs", "1", "--quiet", "--no-feedback")
    row = grades_csv(root)[STUDENT]
    # Autograded: the test passed; the written answer waits for a human.
    assert (row["status"], float(row["score"]), float(row["max_score"])) == (
        "graded", TEST_POINTS, TEST_POINTS + ANSWER_POINTS), row
    return root


class Server:
    """``jupyter server`` in the course folder, on 127.0.0.1, with token auth."""

    def __init__(self, root, *options):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}/"
        jupyter_dirs = root.parent / f"jupyter-{self.port}"
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(jupyter_dirs / "config"),
                   JUPYTER_RUNTIME_DIR=str(jupyter_dirs / "runtime"),
                   PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                         os.environ.get("PATH", "")]))
        root_flag = ["--allow-root"] if os.geteuid() == 0 else []  # the test machine runs as root
        self.command = [JUPYTER, "server", *options, f"--port={self.port}",
                        "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                        *root_flag]
        self.log = open(root.parent / f"server-{self.port}.log", "w+")
        self.proc = subprocess.Popen(self.command, cwd=root, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}api/status?token={self.token}",
                                            timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = self.output()
                self.stop()
                pytest.fail(f"{' '.join(self.command)} did not start:\n{output}")
            time.sleep(0.2)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# What the page shows of the question and of the answer, with typeset maths taken out.
ANALYSE_JS = r"""
(answerId) => {
  const answer = document.getElementById(answerId);
  const cells = Array.from(document.querySelectorAll('.text_cell_render'));
  const describe = el => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('mjx-container').forEach(e => e.remove());
    return {text: copy.textContent.trim(), maths: el.querySelectorAll('mjx-container').length};
  };
  const panel = answer && answer.closest('.nbgrader_cell');
  return {
    answer: panel ? describe(panel.querySelector('.text_cell_render')) : null,
    question: cells.filter(c => c.textContent.includes('Question.')).map(describe)[0] || null,
    merrors: Array.from(document.querySelectorAll('mjx-merror'))
                  .map(e => e.getAttribute('data-mjx-error') || e.textContent),
    red: Array.from(document.querySelectorAll('mjx-mtext'))
              .filter(e => getComputedStyle(e).color.replace(/\s/g, '') === 'rgb(255,0,0)')
              .map(e => e.textContent),
  };
}
"""


class Visit:
    """One browser tab allowed to reach only the server; records everything else it tried."""

    def __init__(self, browser, server):
        self.server = server
        self.context = browser.new_context(service_workers="block")
        self.requests, self.blocked, self.console, self.page_errors = [], [], [], []
        self.context.route("**/*", self._gate)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("websocket", lambda ws: self.blocked.append(ws.url))

    def _gate(self, route):
        url = route.request.url
        if url.startswith(self.server.base) or urlsplit(url).scheme in NON_NETWORK_SCHEMES:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def open_submission(self):
        """As an instructor: the server's link, then Manual Grading down to the student."""
        page = self.page
        page.goto(f"{self.server.base}formgrader?token={self.server.token}")
        page.get_by_role("link", name="Manual Grading").click()
        table = page.locator("#main-table")
        table.get_by_role("link", name=A, exact=True).click()  # the assignment
        page.wait_for_url(f"**/formgrader/gradebook/{A}")
        table.get_by_role("link", name=A, exact=True).click()  # its notebook
        table.get_by_role("link", name="Submission #1").click()
        page.wait_for_url("**/formgrader/submissions/**")
        page.wait_for_load_state("networkidle")

    def typeset(self):
        """Wait for MathJax 3 to finish typesetting (if it loaded), then what the page shows."""
        if self.page.evaluate("() => !!(window.MathJax && MathJax.startup)"):
            self.page.evaluate("() => MathJax.startup.promise.then(() => true)")
        return self.page.evaluate(ANALYSE_JS, ANSWER_ID)

    @property
    def errors(self):
        return [text for kind, text in self.console if kind in ("error", "assert")]

    def off_machine(self):
        return self.blocked + [u for u in self.requests if not u.startswith(self.server.base)
                               and urlsplit(u).scheme not in NON_NETWORK_SCHEMES]

    def close(self):
        self.context.close()


def maths_problems(shown):
    """What is wrong with the question's and the answer's maths; [] if all is typeset."""
    problems = [f"MathJax error: {m!r}" for m in shown["merrors"]]
    problems += [f"red (undefined macro?): {t!r}" for t in shown["red"]]
    for name, count in FORMULAS.items():
        part = shown[name]
        if part is None:
            problems.append(f"the {name} is not on the page")
            continue
        if part["maths"] != count:
            problems.append(f"the {name} shows {part['maths']} typeset formulas, not {count}")
        problems += [f"raw TeX {s!r} in the {name}: {part['text'][:120]!r}"
                     for s in RAW_TEX if s in part["text"]]
    return problems


def test_manual_grading_offline_end_to_end(course, browser):
    server = Server(course, f"--config={SERVER_CONFIG}")  # README, "For instructors", step 4
    try:
        visit = Visit(browser, server)
        try:
            visit.open_submission()
            shown = visit.typeset()
            assert not maths_problems(shown), maths_problems(shown)
            assert "chain rule" in shown["answer"]["text"], shown["answer"]
            assert any("/backpropgrader/mathjax/" in u for u in visit.requests), visit.requests
            # formgrade.js heard MathJax 2's "End" signal (the extension's shim) and set this.
            assert visit.page.evaluate("() => MathJax.loaded") is True

            # The grader types a score into the written answer's box and moves on (Tab).
            box = visit.page.locator(f"input.score#{ANSWER_ID}")
            box.click()
            with visit.page.expect_response(
                    lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"
            ) as saved:
                visit.page.keyboard.type(MANUAL)
                visit.page.keyboard.press("Tab")
            assert saved.value.ok, saved.value.status
            visit.page.wait_for_load_state("networkidle")

            assert not visit.errors, visit.console
            assert not visit.page_errors, visit.page_errors
            assert not visit.off_machine(), visit.off_machine()
        finally:
            visit.close()
    finally:
        server.stop()

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade(ANSWER_ID, A, A, STUDENT)
        assert (grade.manual_score, grade.needs_manual_grade) == (float(MANUAL), False)

    grader(course, "export", A)
    row = grades_csv(course)[STUDENT]
    assert float(row["score"]) == TEST_POINTS + float(MANUAL), row
    assert float(row["max_score"]) == TEST_POINTS + ANSWER_POINTS, row


def test_stock_formgrader_fails_these_checks(course, browser):
    """nbgrader's own formgrader (no extension): the checks above must see what is wrong."""
    server = Server(course)
    try:
        visit = Visit(browser, server)
        try:
            visit.open_submission()
            problems = maths_problems(visit.typeset())
            assert any("cdnjs" in u for u in visit.blocked), visit.requests
            assert any("raw TeX '$'" in p for p in problems), problems
            # formgrade.js calls MathJax 2, which never arrived.
            assert any("MathJax is not defined" in e for e in visit.page_errors), visit.page_errors
        finally:
            visit.close()
    finally:
        server.stop()
