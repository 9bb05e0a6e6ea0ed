"""The grading command against adversarial submissions, in a real nbgrader course.

Every submission is built in code from the released notebook, as a student would fill it in,
and the whole lot goes through the real command (``python -m backpropgrader grade``) once,
in parallel. Each attack has an expected outcome: which test cells keep their points, what the
status column says, what the feedback must not contain.
"""

import csv
import json
import random
import shutil
import socket
import sqlite3
from pathlib import Path

import nbformat
import pytest

from backpropgrader.tasks.scalar import LOG_SIGMOID as LOG_SIGMOID_TASK
from nbgrader_course import (
    REPO,
    autograded_ids,
    build_course,
    cells_by_grade_id,
    make_submission,
    nbgrader_meta,
    output_text,
    read,
    run_grader,
    scores,
    solution_ids,
    strip_solution_markers,
)

pytestmark = [pytest.mark.grading, pytest.mark.scalar, pytest.mark.xdist_group("grader_course")]

A = "scalar"
SOURCE = read(REPO / "solutions" / A / f"{A}.ipynb")
RELEASE = read(REPO / "exercises" / A / f"{A}.ipynb")
ANSWERS = {gid: strip_solution_markers(cells_by_grade_id(SOURCE)[gid].source)
           for gid in solution_ids(SOURCE)}
TESTS = autograded_ids(SOURCE)  # {grade_id: points}
FULL = float(sum(TESTS.values()))

WRONG_LOG_SIGMOID = "def log_sigmoid(z):\n    return np.zeros_like(np.asarray(z, dtype=float))\n"
# The right answer of the visible test, hard-coded (log_sigmoid at -1000, -1, 0, 1 and 40).
VISIBLE_LOG_SIGMOID = repr(LOG_SIGMOID_TASK.answer_of(LOG_SIGMOID_TASK.oracle,
                                                     LOG_SIGMOID_TASK.visible[0])[0].tolist())


def honest(**changes):
    """The instructor's answers, with some replaced."""
    return {**ANSWERS, **changes}


def with_extra_cell(nb, source, after="log_sigmoid"):
    """Insert a code cell the student added, after the answer cell ``after``."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    index = next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == after)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i}"
    return nb


def filled(answers=None):
    return make_submission(RELEASE, answers if answers is not None else honest())


def wrong_log_sigmoid(extra_cell=None):
    """A submission whose log_sigmoid is wrong, with an extra cell of the student's if given."""
    nb = filled(honest(log_sigmoid=WRONG_LOG_SIGMOID))
    return with_extra_cell(nb, extra_cell) if extra_cell else nb


# --- what each test cell should end with: "all" full marks, or the cells that lose ---------
def lose(*cells):
    return {gid: (0.0 if gid in cells else float(points)) for gid, points in TESTS.items()}


ALL = lose()
NONE = lose(*TESTS)
LOG_SIGMOID = lose("test_log_sigmoid")


def _builders(course):
    """{student: (how to write the submission, expected cell scores or None, status check)}."""
    solutions_path = course / "solutions" / A / f"{A}.ipynb"
    gradebook = course / "gradebook.db"

    def nb(student, notebook, name=f"{A}.ipynb"):
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(folder / name))

    def raw(student, data, name=f"{A}.ipynb"):
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)

    peek = f"""
import os
for path in [{str(solutions_path)!r}, "../../../solutions/{A}/{A}.ipynb", {str(gradebook)!r},
             {str(course)!r}, {str(course / 'submitted')!r}, "/work", "{REPO}"]:
    try:
        print(path, "READ", open(path).read()[:50] if os.path.isfile(path) else os.listdir(path))
    except Exception as exc:
        print(path, "DENIED", type(exc).__name__)
"""
    write_db = f"""
import sqlite3
try:
    con = sqlite3.connect({str(gradebook)!r})
    con.execute("update grade_cells set max_score = 0")
    con.commit()
    print("WROTE THE GRADEBOOK")
except Exception as exc:
    print("no gradebook:", type(exc).__name__)
"""
    always_equal = """
class Yes(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = float.__hash__
def log_sigmoid(z):
    return Yes(0.0)
"""
    liar = """
class Liar(np.ndarray):
    def __eq__(self, other): return np.ones(np.shape(self), bool)
    def __array_ufunc__(self, *args, **kwargs): return True
def log_sigmoid(z):
    return np.zeros(np.shape(z)).view(Liar)
"""
    noisy_answer = ANSWERS["log_sigmoid"] + (
        "\n_stable = log_sigmoid\n\ndef log_sigmoid(z):\n    import sys, warnings\n"
        "    warnings.warn('my log_sigmoid was called')  # a harmless warning in the answer\n"
        "    print('debug', file=sys.stderr)\n    return _stable(z)\n")
    noisy_cell = ("import sys, warnings\nprint('a note on stderr', file=sys.stderr)\n"
                  "warnings.warn('a harmless warning')\n"
                  "np.exp(1000.0)  # an overflow warning, at top level")
    hard_coded = ("def log_sigmoid(z):\n    if np.ndim(z) == 0:\n"
                  "        return np.float64(-0.6931471805599453)\n"
                  f"    return np.array({VISIBLE_LOG_SIGMOID})\n")
    builds = {
        # honest work, in several shapes
        "honest": (lambda s: nb(s, filled()), ALL, "clean"),
        "honest-noisy": (lambda s: nb(s, with_extra_cell(
            filled(honest(log_sigmoid=noisy_answer)), noisy_cell)), ALL, "clean"),
        "untouched-release": (lambda s: nb(s, RELEASE), NONE, "clean"),
        "wrong-name": (lambda s: nb(s, filled(), name=f"{A} (1).ipynb"), ALL,
                       "note:should be named"),
        # reaching for what it must not see
        "peek-files": (lambda s: nb(s, with_extra_cell(filled(), peek)), ALL, "clean"),
        "write-gradebook": (lambda s: nb(s, with_extra_cell(filled(), write_db)), ALL, "clean"),
        "network": (lambda s: nb(s, with_extra_cell(filled(), (
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1', PORT), timeout=2)\n"
            "    print('CONNECTED')\nexcept OSError as exc:\n    print('no network', exc.errno)"))),
            ALL, "clean"),
        # tampering with its own process
        "patch-numpy": (lambda s: nb(s, wrong_log_sigmoid(
            "np.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: True\n"
            "np.array_equal = lambda *a, **k: True")), LOG_SIGMOID, "clean"),
        "input-transformer": (lambda s: nb(s, wrong_log_sigmoid(
            "get_ipython().input_transformers_post.append("
            "lambda lines: [l for l in lines if 'assert' not in l and 'check' not in l])")),
            LOG_SIGMOID, "clean"),
        "pre-run-hook": (lambda s: nb(s, with_extra_cell(filled(), (
            "get_ipython().events.register('pre_run_cell', lambda info: print(info.raw_cell))"))),
            ALL, "clean"),
        "grader-detect": (lambda s: nb(s, wrong_log_sigmoid(
            "import os\nprint(sorted(k for k in os.environ if 'NBGRADER' in k))\n"
            "if 'NBGRADER_EXECUTION' in os.environ:\n    np.allclose = lambda *a, **k: True")),
            LOG_SIGMOID, "clean"),
        "always-equal": (lambda s: nb(s, filled(honest(log_sigmoid=always_equal))),
                         LOG_SIGMOID, "clean"),
        "ndarray-subclass": (lambda s: nb(s, filled(honest(log_sigmoid=liar))),
                             LOG_SIGMOID, "clean"),
        "break-builtins": (lambda s: nb(s, wrong_log_sigmoid(
            "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 0")),
            LOG_SIGMOID, None),
        "calls-reference": (lambda s: nb(s, filled(honest(five_point_difference=(
            "from backpropbook.gradcheck import centered_difference as five_point_difference")))),
            lose("test_five_point_difference"), "clean"),
        "hard-coded": (lambda s: nb(s, filled(honest(log_sigmoid=hard_coded))),
                       LOG_SIGMOID, "clean"),
        # bringing the process down
        "crash-cell": (lambda s: nb(s, with_extra_cell(filled(), "import os\nos._exit(1)")),
                       ALL, "problem:killed"),
        "crash-call": (lambda s: nb(s, filled(honest(log_sigmoid_prime=(
            "def log_sigmoid_prime(z):\n    import os\n    os._exit(3)\n")))),
            lose("test_log_sigmoid_prime"), "problem:killed"),
        "infinite-loop": (lambda s: nb(s, with_extra_cell(filled(), "while True:\n    pass")),
                          ALL, "problem:timed out"),
        "memory-bomb": (lambda s: nb(s, with_extra_cell(filled(), "hog = bytearray(64 * 2**30)")),
                        ALL, "clean"),
        "fork-bomb": (lambda s: nb(s, with_extra_cell(filled(), (
            "import os\nchildren = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
            "            import time; time.sleep(60); os._exit(0)\n        children += 1\n"
            "except OSError as exc:\n    print('stopped after', children, type(exc).__name__)"))),
            ALL, None),
        "huge-output": (lambda s: nb(s, with_extra_cell(filled(), "print('x' * 200_000_000)")),
                        ALL, "problem:output truncated"),
        # broken notebooks
        "corrupt-json": (lambda s: raw(s, nbformat.writes(filled()).encode()[:5000]),
                         None, "error:corrupt"),
        "binary-file": (lambda s: raw(s, random.Random(1).randbytes(4096)), None, "error:corrupt"),
        "not-a-notebook": (lambda s: raw(s, b'{"hello": "world"}'), None, "error:corrupt"),
        "missing-notebook": (lambda s: raw(s, b"my answers are in my head", name="notes.txt"),
                             None, "error:missing"),
        "deleted-cell": (lambda s: nb(s, _without(filled(), "chain_backward")),
                         lose("test_chain_backward"), "note:missing"),
        "duplicated-cells": (lambda s: nb(s, _duplicated(filled())), ALL, "note:more than once"),
        "edited-tests": (lambda s: nb(s, _edited_tests(wrong_log_sigmoid())),
                         LOG_SIGMOID, "clean"),
    }
    return builds


def _without(nb, gid):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != gid]
    return nb


def _duplicated(nb):
    """The log_sigmoid answer twice (the second copy wrong), and a test cell twice."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = cells_by_grade_id(nb)
    wrong = nbformat.from_dict(json.loads(json.dumps(cells["log_sigmoid"])))
    wrong.source = WRONG_LOG_SIGMOID
    test = nbformat.from_dict(json.loads(json.dumps(cells["test_log_sigmoid"])))
    i = nb.cells.index(cells["test_log_sigmoid"])
    nb.cells[i + 1:i + 1] = [wrong, test]
    for k, cell in enumerate(nb.cells):
        cell["id"] = f"c{k}"
    return nb


def _edited_tests(nb):
    """Every test cell replaced by ``pass``, its points raised, and marked as an answer."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution"):
            cell.source = "pass"
            meta["points"] = 100
            meta["locked"] = False
    return nb


def grade(course):
    return run_grader(course, A, "--cell-timeout", "8", "--total-time", "90")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = build_course(tmp_path_factory.mktemp("course"), [A])
    shutil.copytree(REPO / "exercises" / A, root / "exercises" / A)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    builds = _builders(root)
    for student, (build, _, _) in builds.items():
        build(student)
    port = listener.getsockname()[1]
    net = root / "submitted" / "network" / A / f"{A}.ipynb"
    net.write_text(net.read_text().replace("PORT", str(port)))
    first = grade(root)
    with open(root / "grades.csv") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    listener.close()
    return {"root": root, "builds": builds, "run": first, "rows": rows}


def _cell_scores(root, student):
    return {gid: score for gid, (score, _, _) in scores(root, A, A, student).items()
            if gid in TESTS}


def _status(root, student):
    return json.loads((root / "grading_status" / A / f"{student}.json").read_text())


STUDENTS = list(_builders(Path("/nonexistent")).keys())


@pytest.mark.parametrize("student", STUDENTS)
def test_each_submission_gets_its_expected_outcome(course, student):
    root, (_, expected, status) = course["root"], course["builds"][student]
    row = course["rows"][student]
    info = _status(root, student)
    assert info["seed"] and int(row["seed"]) == info["seed"]
    if expected is None:  # could not be graded: marked, never an ordinary 0
        kind, _, text = status.partition(":")
        assert row["status"].startswith(f"error: {text}"), row
        assert row["score"] == "" and not (root / "autograded" / student / A).exists()
        from nbgrader.api import Gradebook, MissingEntry
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb, pytest.raises(MissingEntry):
            gb.find_submission(A, student)
        return
    assert _cell_scores(root, student) == expected, info["tests"]
    assert float(row["score"]) == sum(expected.values())
    assert row["status"].startswith("graded"), row
    if status == "clean":
        assert row["status"] == "graded", row
    elif status is not None:
        kind, _, text = status.partition(":")
        assert text in row["status"], row


def test_exit_status_and_summary_name_every_submission_that_needs_a_look(course):
    run, rows = course["run"], course["rows"]
    assert run.returncode == 1, run.stdout + run.stderr
    flagged = {s for s, r in rows.items() if r["status"] != "graded"}
    assert {"corrupt-json", "binary-file", "missing-notebook", "crash-cell",
            "infinite-loop"} <= flagged
    for student in flagged:
        lines = [l for l in run.stdout.splitlines() if l.strip().startswith(f"{student}:")]
        assert len(lines) == 1, (student, run.stdout)
    assert f"{len(rows)} submissions" in run.stdout


def test_nothing_outside_the_submission_was_reachable(course):
    root = course["root"]
    peek = output_text(_student_cell(root, "peek-files", "import os"))
    assert "READ" not in peek and peek.count("DENIED") == 7, peek
    wrote = output_text(_student_cell(root, "write-gradebook", "sqlite3"))
    assert "WROTE THE GRADEBOOK" not in wrote
    with sqlite3.connect(root / "gradebook.db") as con:
        query = "select count(*) from grade_cells where max_score = 0"
        assert con.execute(query).fetchone()[0] == 0
    net = output_text(_student_cell(root, "network", "socket"))
    assert "CONNECTED" not in net and "no network" in net
    assert "[]" in output_text(_student_cell(root, "grader-detect", "NBGRADER"))


def _student_cell(root, student, marker):
    nb = read(root / "autograded" / student / A / f"{A}.ipynb")
    return next(c for c in nb.cells if c.cell_type == "code" and marker in c.source
                and not nbgrader_meta(c))


def test_feedback_leaks_no_hidden_test_or_solution_and_works_offline(course):
    root = course["root"]
    hidden = [line.strip() for c in SOURCE.cells for line in _marked(c.source, "HIDDEN TESTS")]
    public = nbformat.writes(RELEASE)  # what students were given anyway (hints included)
    solution = [line.strip() for c in SOURCE.cells for line in _marked(c.source, "SOLUTION")
                if len(line.strip()) > 30 and not line.strip().startswith("#")
                and line.strip() not in public]
    assert hidden and solution
    pages = sorted((root / "feedback").glob(f"*/{A}/*.html"))
    graded = [s for s, r in course["rows"].items() if r["status"].startswith("graded")]
    assert {p.parent.parent.name for p in pages} == set(graded)
    for page in pages:
        text = page.read_text()
        student = page.parent.parent.name
        assert "HIDDEN TESTS" not in text and "cdnjs" not in text and "https://cdn" not in text
        assert (page.parent / "mathjax-tex-svg.js").is_file()
        for line in hidden:
            assert line not in text, (page, line)
        if student == "untouched-release":  # wrote nothing: the feedback must not add a solution
            for line in solution:
                assert line not in text, (page, line)
    # the checks' messages reach the student
    assert "log_sigmoid" in (root / "feedback" / "hard-coded" / A / f"{A}.html").read_text()


def _marked(source, what):
    """The lines between ``### BEGIN <what>`` and ``### END <what>``."""
    inside = False
    for line in source.splitlines():
        if f"END {what}" in line:
            inside = False
        if inside and line.strip():
            yield line
        if f"BEGIN {what}" in line:
            inside = True


def test_regrading_gives_the_same_grades_and_leaves_nothing_stale(course):
    root = course["root"]
    before = course["rows"]
    # a student who was graded now hands in a broken file: the old grade must go
    (root / "submitted" / "honest" / A / f"{A}.ipynb").write_text("{ not json")
    again = grade(root)
    with open(root / "grades.csv") as fh:
        after = {r["student"]: r for r in csv.DictReader(fh)}
    assert again.returncode == 1
    for student, row in before.items():
        if student == "honest":
            continue
        assert (after[student]["score"], after[student]["seed"]) == (row["score"],
                                                                      row["seed"]), student
    assert after["honest"]["score"] == "" and after["honest"]["status"].startswith("error: corrupt")
    assert not (root / "autograded" / "honest" / A).exists()


def test_seeds_differ_per_student_and_are_reproducible(course):
    rows = course["rows"]
    seeds = [r["seed"] for r in rows.values()]
    assert len(set(seeds)) == len(seeds)
    from backpropgrader.evaluate import student_seed
    assert all(int(r["seed"]) == student_seed("backpropbook", A, s) for s, r in rows.items())
