"""Helpers for tests that build a real nbgrader course in a temporary folder.

The course uses the repository's own ``nbgrader_config.py`` (stubs, timeout), with its root
moved to the temporary folder, so what it generates is what ``make release`` generates.
Submissions are built from the released notebook by replacing solution cells, found by their
nbgrader ``grade_id``, the way a student fills them in.
"""

import copy
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NBGRADER = [sys.executable, "-m", "nbgrader"]

_CONFIG = '''\
c = get_config()  # noqa: F821
exec(compile(open({repo_config!r}).read(), {repo_config!r}, "exec"))  # the repository's settings
c.CourseDirectory.root = {root!r}
'''


def build_course(root, assignments):
    """A course at ``root`` with copies of ``solutions/<a>`` for each assignment ``a``."""
    root = Path(root)
    (root / "solutions").mkdir(parents=True, exist_ok=True)
    for a in assignments:
        shutil.copytree(REPO / "solutions" / a, root / "solutions" / a)
    (root / "nbgrader_config.py").write_text(
        _CONFIG.format(repo_config=str(REPO / "nbgrader_config.py"), root=str(root))
    )
    return root


def run_nbgrader(root, *args, timeout=600):
    """Run an nbgrader command in the course at ``root``; fail with its output if it fails."""
    # nbgrader runs the alembic executable of its environment: put that on the PATH.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                 os.environ.get("PATH", "")]))
    result = subprocess.run(
        [*NBGRADER, *args], cwd=root, capture_output=True, text=True, timeout=timeout, env=env
    )
    if result.returncode != 0:
        raise AssertionError(
            f"nbgrader {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def run_grader(root, assignment, *args, timeout=900):
    """Run the sandboxed grading command on the course at ``root``; returns the finished process."""
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                 os.environ.get("PATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "backpropgrader", "--course", str(root), "grade", assignment,
         "--jobs", "2", "--quiet", *args],
        capture_output=True, text=True, timeout=timeout, env=env)


def read(path):
    return nbformat.read(str(path), as_version=4)


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def cells_by_grade_id(nb):
    """{grade_id: cell} for every cell that has nbgrader metadata."""
    return {nbgrader_meta(c)["grade_id"]: c for c in nb.cells if "grade_id" in nbgrader_meta(c)}


def solution_ids(nb):
    return [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c).get("solution")]


def autograded_ids(nb):
    """The grade_ids of test cells (graded code cells), with their points."""
    return {
        nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"]
        for c in nb.cells
        if nbgrader_meta(c).get("grade") and c.cell_type == "code"
    }


def strip_solution_markers(source):
    """An instructor solution cell as a student would write it: without the markers."""
    return "\n".join(
        line for line in source.splitlines()
        if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
    )


def make_submission(release_nb, sources):
    """A copy of the released notebook with solution cells replaced by ``sources[grade_id]``."""
    nb = copy.deepcopy(release_nb)
    cells = cells_by_grade_id(nb)
    for grade_id, source in sources.items():
        cell = cells[grade_id]
        if not nbgrader_meta(cell).get("solution"):
            raise KeyError(f"{grade_id} is not a solution cell")
        cell.source = source
    return nb


def submit(root, assignment, student, notebooks):
    """Put ``{name: notebook}`` under submitted/<student>/<assignment>/."""
    folder = Path(root) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, str(folder / f"{name}.ipynb"))


def output_text(cell):
    """Everything a cell printed: streams, results and error name, value and traceback."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
            parts.extend(out.traceback)
        else:
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def scores(root, assignment, notebook, student):
    """{grade_id: (score, max_score, needs_manual_grade)} from the course's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(notebook, assignment, student)
        return {g.name: (g.score, g.max_score, g.needs_manual_grade) for g in nb.grades}


MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def solution_sources(nb):
    """The instructor's code of every code solution cell, without the markers."""
    return {
        gid: strip_solution_markers(cell.source)
        for gid, cell in cells_by_grade_id(nb).items()
        if nbgrader_meta(cell).get("solution") and cell.cell_type == "code"
    }


def run_answers(source_nb, overrides=None):
    """The notebook's setup and solution cells run in one namespace, with some cells replaced."""
    cells = cells_by_grade_id(source_nb)
    ns = {"__name__": "__student__"}
    exec(cells["setup"].source, ns)
    for gid, source in {**solution_sources(source_nb), **(overrides or {})}.items():
        exec(compile(source, f"<{gid}>", "exec"), ns)
    return ns


def assert_release_is_generated(released_path, generated_path):
    """The committed release equals, cell by cell, what nbgrader generates now."""
    generated, released = read(generated_path), read(released_path)
    assert [c.id for c in released.cells] == [c.id for c in generated.cells]
    for ours, theirs in zip(released.cells, generated.cells):
        assert ours == theirs, f"cell {ours.id} differs: run `make release`"
    assert released == generated


def assert_release_gives_nothing_away(source_nb, release_path):
    """No marker, solution line, hidden test or output in the release; stubs where answers were."""
    text = Path(release_path).read_text()
    release_nb = read(release_path)
    for marker in MARKERS:
        assert marker not in text
    release_cells = cells_by_grade_id(release_nb)
    source_cells = cells_by_grade_id(source_nb)
    assert set(release_cells) == set(source_cells)
    for gid, cell in source_cells.items():
        meta = nbgrader_meta(cell)
        released = release_cells[gid].source
        if meta.get("solution") and cell.cell_type == "markdown":
            assert released == "YOUR ANSWER HERE"
            assert cell.source.splitlines()[0] not in text
        elif meta.get("solution"):
            body = cell.source.split("### BEGIN SOLUTION\n")[1].split("### END SOLUTION")[0]
            released_lines = {line.strip() for line in released.splitlines()}
            for line in body.splitlines():
                if line.strip():
                    assert line.strip() not in released_lines, f"{gid}: {line!r} released"
            assert "raise NotImplementedError()" in released
        elif meta.get("grade"):
            hidden = cell.source.split("### BEGIN HIDDEN TESTS\n")[1].split("### END HIDDEN")[0]
            for line in hidden.splitlines():
                assert line.strip() not in text, f"{gid}: hidden test {line!r} released"
            assert released == cell.source.split("### BEGIN HIDDEN TESTS")[0].rstrip("\n")
    for cell in release_nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@dataclass
class Mistake:
    """Student code for some answer cells and the messages it must earn.

    ``hidden``: failing task (its key) -> substrings of its hidden check's message (the other
    tasks pass). ``visible``: the same for the visible tests (default: as hidden; {} where the
    visible case cannot tell). ``notebook``: what the autograded cell must show, where the
    sandbox says it differently (default: the visible message, else the hidden one).
    """

    sources: dict
    hidden: dict
    visible: dict = None
    in_notebook: bool = False  # also graded in the real nbgrader course
    notebook: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.visible is None:
            self.visible = self.hidden

    def notebook_messages(self):
        return {task: self.notebook.get(task) or self.visible.get(task) or substrings
                for task, substrings in self.hidden.items()}


def code(text):
    """Student code written inline in a test, dedented."""
    return textwrap.dedent(text).strip("\n")


@dataclass
class Course:
    root: object
    students: list
    scores: dict  # student -> {grade_id: (score, max_score, needs_manual_grade)}
    autograded: dict  # student -> {grade_id: autograded cell}


def grade_course(root, assignment, source_nb, mistakes):
    """A course at ``root``: the instructor notebook, the untouched release and every mistake
    marked ``in_notebook`` (solution cells replaced by its ``sources``), graded by one run of
    the sandboxed grading command, which must grade every submission cleanly."""
    root = build_course(root, [assignment])
    run_nbgrader(root, "generate_assignment", assignment, "--force", "--log-level=WARN")
    release = read(root / "exercises" / assignment / f"{assignment}.ipynb")
    correct = solution_sources(source_nb)
    submissions = {"instructor": source_nb, "release": release}
    for name, mistake in mistakes.items():
        if mistake.in_notebook:
            submissions[name] = make_submission(release, {**correct, **mistake.sources})
    for student, nb in submissions.items():
        submit(root, assignment, student, {assignment: nb})
    graded = run_grader(root, assignment, "--no-feedback")
    assert graded.returncode == 0, graded.stdout + graded.stderr
    return Course(
        root=root,
        students=list(submissions),
        scores={s: scores(root, assignment, assignment, s) for s in submissions},
        autograded={
            s: cells_by_grade_id(read(root / "autograded" / s / assignment / f"{assignment}.ipynb"))
            for s in submissions
        },
    )


ROUND_OFF = 1e-12  # float64 kernels of torch and BLAS round differently on different CPUs
MISTAKE_ROUND_OFF = 1e-4  # some mistakes compute in float32, one trains in it for steps


def _differences(stored, fresh, where="data", rtol=ROUND_OFF):
    """Where two decoded visible-data trees differ: structure and text exactly, floats up to
    round-off (``rtol``; under a "mistakes" key, MISTAKE_ROUND_OFF)."""
    import numpy as np

    if isinstance(stored, dict):
        if not isinstance(fresh, dict) or list(stored) != list(fresh):
            other = list(fresh) if isinstance(fresh, dict) else fresh
            return [f"{where}: keys {list(stored)} != {other!r:.80}"]
        return [d for k in stored for d in _differences(
            stored[k], fresh[k], f"{where}[{k!r}]",
            MISTAKE_ROUND_OFF if k == "mistakes" else rtol)]
    if isinstance(stored, (list, tuple)):
        if type(stored) is not type(fresh) or len(stored) != len(fresh):
            return [f"{where}: {type(stored).__name__} of {len(stored)} != {fresh!r:.80}"]
        return [d for k, (s, f) in enumerate(zip(stored, fresh))
                for d in _differences(s, f, f"{where}[{k}]", rtol)]
    if isinstance(stored, np.ndarray):
        same = (isinstance(fresh, np.ndarray) and stored.dtype == fresh.dtype
                and stored.shape == fresh.shape)
        if same and stored.dtype.kind in "fc":
            same = bool(np.allclose(stored, fresh, rtol=rtol, atol=0.0, equal_nan=True))
        elif same:
            same = bool(np.array_equal(stored, fresh))
        return [] if same else [f"{where}: {stored!r:.80} != {fresh!r:.80}"]
    if isinstance(stored, float) and isinstance(fresh, float):
        close = stored == fresh or abs(stored - fresh) <= rtol * abs(stored)
        return [] if close else [f"{where}: {stored!r} != {fresh!r}"]
    return [] if type(stored) is type(fresh) and stored == fresh else [
        f"{where}: {stored!r:.80} != {fresh!r:.80}"]


def assert_visible_data_current(assignment, data):
    """The committed visible tests' data, ``solutions/<a>/<a>.visible.json``, is what the
    declarations give now (``data``, from ``engine.visible_data``), and the release holds the
    same file; returns its text.

    Structure, cases and messages must be identical; the numbers may differ by round-off
    (torch's kernels round differently on different CPUs): 1e-12 relative at most, 1e-4 for
    the answers of the mistakes (some compute in float32; a visible test tells a mistake by
    an answer within 1% of its distance from the right one, far coarser).
    """
    from backpropbook import codec, testfunctions

    functions = testfunctions.FUNCTIONS
    text = (REPO / "solutions" / assignment / f"{assignment}.visible.json").read_text()
    released = REPO / "exercises" / assignment / f"{assignment}.visible.json"
    assert released.read_text() == text, f"{released} is not the instructor's copy: make release"
    fresh = codec.decode(codec.encode(data, functions=functions), functions=functions)
    problems = _differences(codec.decode(text, functions=functions), fresh)
    assert not problems, f"run `make release`: {problems[0]} ({len(problems)} differences)"
    return text


def course_tests(assignment, tasks, mistakes):
    """The tests of a real course (the ``course`` fixture of conftest.py), for an assignment's
    test module to bind at module level::

        (test_release_is_what_nbgrader_generates, test_instructor_notebook_scores_full_marks,
         test_untouched_release_scores_zero, test_mistake_loses_exactly_its_points) = \\
            course_tests(ASSIGNMENT, TASKS, MISTAKES)

    ``tasks``: {task key: Task}; ``mistakes``: {name: Mistake}, the module's MISTAKES, which
    the ``course`` fixture submits (those in_notebook).
    """
    import pytest

    release = REPO / "exercises" / assignment / f"{assignment}.ipynb"

    def in_course(fn):
        return pytest.mark.grading(pytest.mark.xdist_group(f"{assignment}_course")(fn))

    @in_course
    def test_release_is_what_nbgrader_generates(course):
        generated = course.root / "exercises" / assignment
        assert_release_is_generated(release, generated / f"{assignment}.ipynb")
        assert sorted(p.name for p in generated.iterdir()) == sorted(
            p.name for p in release.parent.iterdir())
        assert (generated / f"{assignment}.visible.json").read_bytes() == (
            release.parent / f"{assignment}.visible.json").read_bytes()

    @in_course
    def test_instructor_notebook_scores_full_marks(course, source_nb):
        got = course.scores["instructor"]
        points = autograded_ids(source_nb)
        assert {gid: got[gid][:2] for gid in points} == {gid: (p, p) for gid, p in points.items()}
        manual = [nbgrader_meta(c)["grade_id"] for c in source_nb.cells
                  if c.cell_type == "markdown" and nbgrader_meta(c).get("grade")]
        assert manual and all(got[gid][2] is True for gid in manual)  # left for the human
        # every code cell ran cleanly (in some sandbox: a torch setup cell fails where torch
        # is withheld and shows its run where it is there)
        for cell in course.autograded["instructor"].values():
            if cell.cell_type == "code":
                assert output_text(cell) == "", nbgrader_meta(cell)["grade_id"]

    @in_course
    def test_untouched_release_scores_zero(course, source_nb):
        got = course.scores["release"]
        points = autograded_ids(source_nb)
        assert {gid: got[gid][:2] for gid in points} == {gid: (0, p) for gid, p in points.items()}
        for gid in points:
            assert "not written yet" in output_text(course.autograded["release"][gid]), gid

    @in_course
    @pytest.mark.parametrize("name", [n for n, m in mistakes.items() if m.in_notebook])
    def test_mistake_loses_exactly_its_points(course, source_nb, name):
        mistake = mistakes[name]
        got = course.scores[name]
        points = autograded_ids(source_nb)
        failing = {tasks[key].grade_id for key in mistake.hidden}
        expected = {gid: (0 if gid in failing else p, p) for gid, p in points.items()}
        assert {gid: got[gid][:2] for gid in points} == expected
        messages = {tasks[key].grade_id: m for key, m in mistake.notebook_messages().items()}
        for gid in points:
            text = output_text(course.autograded[name][gid])
            if gid not in failing:
                assert text == "", f"{name}/{gid} printed:\n{text[-2000:]}"
                continue
            for part in messages[gid]:
                assert part in text, f"{name}/{gid}: {part!r} not in\n{text[-2000:]}"
            assert "BEGIN HIDDEN" not in text and "backpropgrader" not in text

    return (test_release_is_what_nbgrader_generates, test_instructor_notebook_scores_full_marks,
            test_untouched_release_scores_zero, test_mistake_loses_exactly_its_points)
