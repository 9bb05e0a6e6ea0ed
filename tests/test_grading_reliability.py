"""Grading commands that overlap or die: no grade is lost, none is left stale.

The course is a tiny assignment built here (the real ones change under other hands): a locked
setup cell importing numpy, one answer cell defining ``double``, one test cell with a visible
assert and a hidden block, and one written answer graded by hand. Every run is the real command
(``python -m backpropgrader --course <root> grade``) in a subprocess. The kills use the test hook
of :mod:`backpropgrader.course` (``BACKPROPGRADER_TEST_SIGNAL``), which makes the grading
process signal itself at a chosen point, so each kill lands where it is meant to.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from backpropgrader import evaluate
from backpropgrader.course import LOCK_FILE, STATUS_DIR, TEST_SIGNAL, Course
from nbgrader_course import build_course, make_submission, read, run_nbgrader, scores, submit

pytestmark = [pytest.mark.grading, pytest.mark.xdist_group("grading_reliability")]

A = "doubling"
COURSE_ID = "backpropbook"  # the repository's nbgrader_config.py, which the test course reads
ANSWERS = {  # student -> answer cells, and the points the test cell must give them
    "honest": ({"double": "def double(x):\n    return 2 * x",
                "explain": "Because 2(x + y) = 2x + 2y."}, 2.0),
    "visible-only": ({"double": "def double(x):\n    return 4.0 if x == 2.0 else x"}, 0.0),
    "wrong": ({"double": "def double(x):\n    return x"}, 0.0),
    "blank": ({}, 0.0),
}
STUDENTS = sorted(ANSWERS)
WAITING = re.compile(r"waiting for the grading command of pid (\d+) to finish \(.*\)")
STOPPED = ("stopped by SIGTERM: the grades recorded so far are kept; run the same command again "
           "to grade everyone")


def _meta(grade_id, **flags):
    return {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": False,
                         "schema_version": 3, "solution": False, "task": False, **flags}}


def source_notebook():
    """The instructor's notebook of the synthetic assignment."""
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell("# Doubling\n\nWrite `double(x)`, which returns twice `x`."),
        v4.new_code_cell("import numpy as np", metadata=_meta("setup", locked=True)),
        v4.new_code_cell('def double(x):\n    """Twice x (a number or an array)."""\n'
                         "    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                         metadata=_meta("double", solution=True)),
        v4.new_code_cell('"""double: twice a number."""\nassert double(2.0) == 4.0\n'
                         "### BEGIN HIDDEN TESTS\n"
                         "assert np.array_equal(double(np.arange(3.0)), [0.0, 2.0, 4.0])\n"
                         "assert double(-1.5) == -3.0\n### END HIDDEN TESTS",
                         metadata=_meta("test_double", grade=True, locked=True, points=2)),
        v4.new_markdown_cell("Why is doubling linear?\n\n### BEGIN SOLUTION\n"
                             "Because 2(x + y) = 2x + 2y.\n### END SOLUTION",
                             metadata=_meta("explain", grade=True, solution=True, points=1)),
    ]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return v4.new_notebook(cells=cells, metadata={"kernelspec": kernelspec})


def copy_course(src, dest):
    """A copy of the course at ``src``, its nbgrader_config.py pointing at ``dest``."""
    shutil.copytree(src, dest, symlinks=True)
    (dest / LOCK_FILE).unlink(missing_ok=True)  # it names the pid of the last command
    return build_course(dest, [])


def command(root, *args):
    return [sys.executable, "-m", "backpropgrader", "--course", str(root), "grade", A,
            "--jobs", "2", "--quiet", *args]


def environment(signal_at=None):
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                 os.environ.get("PATH", "")]))
    env.pop(TEST_SIGNAL, None)
    if signal_at:
        env[TEST_SIGNAL] = signal_at
    return env


def grade(root, *args, signal_at=None, cmd=None):
    return subprocess.run(cmd or command(root, *args), capture_output=True, text=True,
                          timeout=120, env=environment(signal_at))


def start(root, *args):
    return subprocess.Popen(command(root, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment())


def export(root, *args):
    return grade(root, cmd=[sys.executable, "-m", "backpropgrader", "--course", str(root),
                            "export", A, *args])


def csv_rows(root):
    with open(root / "grades.csv", newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def status(root, student):
    """The student's status file, None if there is none; it must be whole JSON if there is."""
    path = root / STATUS_DIR / A / f"{student}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def gradebook_scores(root, student):
    """{grade_id: (score, max_score, needs_manual_grade)}, or None without a submission."""
    from nbgrader.api import MissingEntry

    try:
        return scores(root, A, A, student)
    except MissingEntry:
        return None


def leftover_processes(root, patience=10.0):
    """Live processes still working for a run on ``root`` (its workers, their sandboxes)."""
    marks = (str(root).encode(), str(Course(root).scratch).encode())
    deadline = time.monotonic() + patience
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z" and any(mark in cmdline for mark in marks):
                found.append(cmdline.replace(b"\0", b" ")[:120].decode(errors="replace"))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def assert_consistent(root, clean):
    """What any run, however it ended, may leave: for each student, a whole status file that
    agrees with the gradebook and autograded/, or no status file and "not graded yet"."""
    assert not leftover_processes(root)
    assert export(root).returncode == 0
    rows = csv_rows(root)
    for student in STUDENTS:
        info = status(root, student)
        autograded = (root / "autograded" / student / A).is_dir()
        if info is None:
            assert rows[student]["status"].startswith("error: not graded yet")
            assert rows[student]["score"] == ""
        elif info["status"] == "graded":
            assert gradebook_scores(root, student) == clean["scores"][student]
            assert autograded and rows[student] == clean["rows"][student]
        else:
            assert gradebook_scores(root, student) is None and not autograded
            assert rows[student]["score"] == "" and rows[student]["status"] == info["status"]
    return rows


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The course with its release and one submission per student, not graded yet."""
    root = build_course(tmp_path_factory.mktemp("template") / "course", [])
    (root / "solutions" / A).mkdir()
    nbformat.write(source_notebook(), str(root / "solutions" / A / f"{A}.ipynb"))
    run_nbgrader(root, "generate_assignment", A, "--force", "--no-db", "--log-level=WARN")
    release = read(root / "exercises" / A / f"{A}.ipynb")
    for student, (answers, _) in ANSWERS.items():
        submit(root, A, student, {A: make_submission(release, answers)})
    return root


@pytest.fixture(scope="module")
def clean(template, tmp_path_factory):
    """One uninterrupted run: what every other run must end with."""
    root = copy_course(template, tmp_path_factory.mktemp("clean") / "course")
    result = grade(root)
    assert result.returncode == 0, result.stdout + result.stderr
    return {"root": root, "scores": {s: gradebook_scores(root, s) for s in STUDENTS},
            "rows": csv_rows(root)}


def test_a_clean_run_grades_everyone(clean):
    root = clean["root"]
    for student, (answers, points) in ANSWERS.items():
        assert clean["scores"][student] == {"test_double": (points, 2.0, False),
                                            "explain": (0.0, 1.0, "explain" in answers)}
        seed = str(evaluate.student_seed(COURSE_ID, A, student))
        assert clean["rows"][student] == {"assignment": A, "student": student,
                                          "score": str(points), "max_score": "3.0",
                                          "status": "graded", "seed": seed}
        assert status(root, student)["status"] == "graded"
        assert (root / "feedback" / student / A / f"{A}.html").is_file()
    assert not Course(root).scratch.exists()


def test_two_commands_at_once_one_waits_and_no_grade_is_lost(clean, tmp_path):
    root = copy_course(clean["root"], tmp_path / "course")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:  # a written answer, marked
        mark = gb.find_grade("explain", A, A, "honest")
        mark.manual_score, mark.needs_manual_grade = 1.0, False  # as the formgrader does
        gb.db.commit()
    first, second = start(root, "--no-feedback"), start(root, "--no-feedback")
    lock, pids = root / LOCK_FILE, {str(first.pid), str(second.pid)}
    deadline = time.monotonic() + 60
    while not (lock.is_file() and lock.read_text().strip() in pids):
        assert time.monotonic() < deadline, "neither command took the course's lock"
        time.sleep(0.05)
    # While they run, a third one refuses at once; so does an export.
    for refused in (grade(root, "--no-wait"), export(root, "--no-wait")):
        assert refused.returncode == 2 and refused.stdout == ""
        [line] = refused.stderr.splitlines()
        holder = re.search(r"another grading command \(pid (\d+)\) is working on", line)
        assert holder and holder.group(1) in pids, line
    results = {p.pid: (p,) + p.communicate(timeout=120) for p in (first, second)}
    for process, out, err in results.values():
        assert process.returncode == 0, out + err
    waited = [(p, err) for p, _, err in results.values() if WAITING.search(err)]
    assert len(waited) == 1, [err for _, _, err in results.values()]
    process, err = waited[0]
    other = first if process is second else second
    assert err.splitlines() == [WAITING.search(err).group(0)]
    assert WAITING.search(err).group(1) == str(other.pid)
    # Both graded everyone; the mark given by hand is still there (nbgrader flags a written
    # answer for review again at each autograde).
    marked = dict(clean["scores"]["honest"], explain=(1.0, 1.0, True))
    rows = csv_rows(root)
    for student in STUDENTS:
        if student == "honest":
            assert gradebook_scores(root, student) == marked
            assert rows[student] == dict(clean["rows"][student], score="3.0")
        else:
            assert gradebook_scores(root, student) == clean["scores"][student]
            assert rows[student] == clean["rows"][student]


def test_killed_runs_then_one_more_run_grade_everyone_afresh(template, clean, tmp_path, request):
    root = copy_course(template, tmp_path / "course")
    scratch = Course(root).scratch
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))  # if a step fails

    # Killed in step 1, with a sandbox running: nothing recorded, its workers gone.
    killed = grade(root, signal_at="run:1")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert_consistent(root, clean)
    assert not any(status(root, s) for s in STUDENTS) and scratch.is_dir()

    # SIGTERM during a record: that record is finished, then the command stops in one line.
    # (One worker: the students come in their order.)
    stopped = grade(root, "--jobs", "1", signal_at="record:1:TERM")
    assert stopped.returncode == 128 + 15 and stopped.stderr.splitlines() == [STOPPED]
    assert_consistent(root, clean)
    assert [s for s in STUDENTS if status(root, s)] == ["blank"] and not scratch.exists()

    # Killed in the middle of the same student's record: nbgrader has stored the new grade,
    # the new status is not written, and the old one is gone.
    killed = grade(root, "--jobs", "1", signal_at="record:1")
    assert killed.returncode == -9
    rows = assert_consistent(root, clean)
    assert status(root, "blank") is None and gradebook_scores(root, "blank") is not None
    assert rows["blank"]["status"] == "error: not graded yet (run the grade command)"

    # Killed while it writes feedback, after two pages (in the students' order).
    killed = grade(root, signal_at="feedback:2")
    assert killed.returncode == -9
    assert_consistent(root, clean)
    assert all(status(root, s)["status"] == "graded" for s in STUDENTS)
    assert sorted(p.parent.name for p in (root / "feedback").glob(f"*/{A}")) == STUDENTS[:2]

    # The graded submission with full marks, and feedback, turns corrupt; the next run
    # records it (its grade and feedback go) and is killed while it replaces grades.csv.
    corrupt = "honest"
    assert STUDENTS[:2] == ["blank", corrupt]
    (root / "submitted" / corrupt / A / f"{A}.ipynb").write_text('{"cells": [')
    before = (root / "grades.csv").read_bytes()
    killed = grade(root, signal_at="export:1")
    assert killed.returncode == -9
    assert (root / "grades.csv").read_bytes() == before  # whole, as the last export left it
    assert list(root.glob(".grades.csv.*.tmp"))
    assert_consistent(root, clean)
    assert status(root, corrupt)["status"].startswith("error: corrupt")
    assert not (root / "feedback" / corrupt / A).exists()

    # One more run: everyone graded as by a clean run, the corrupt one without a grade.
    final = grade(root)
    assert final.returncode == 1, final.stdout + final.stderr
    assert f"  {corrupt}: error: corrupt" in final.stdout
    rows = csv_rows(root)
    for student in STUDENTS:
        if student == corrupt:
            assert gradebook_scores(root, student) is None and rows[student]["score"] == ""
            assert rows[student]["status"] == status(root, student)["status"]
        else:
            assert gradebook_scores(root, student) == clean["scores"][student]
            assert rows[student] == clean["rows"][student]
            assert status(root, student)["status"] == "graded"
    graded = sorted(set(STUDENTS) - {corrupt})
    assert sorted(p.parent.name for p in (root / "autograded").glob(f"*/{A}")) == graded
    assert sorted(p.parent.name for p in (root / "feedback").glob(f"*/{A}")) == graded
    assert sorted(p.name for p in (root / STATUS_DIR / A).iterdir()) == [
        f"{s}.json" for s in STUDENTS]
    assert not list(root.glob(".*.tmp")) and not scratch.exists()
    assert not leftover_processes(root)
