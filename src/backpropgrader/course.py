"""Grading a whole assignment of an nbgrader course, safely, on top of nbgrader.

Three steps, so that nbgrader keeps its gradebook, formgrader and exports:

1. **Run** (in parallel, one worker per job): each submission is found, read and rebuilt on the
   instructor's notebook (:mod:`.submission`); its cells run in a sandbox and its tests here
   (:mod:`.evaluate`). Nothing in this step touches the gradebook.
2. **Record** (this process only, so the gradebook has a single writer): nbgrader's own
   ``autograde`` stores each result, with its ``Execute`` step replaced by :class:`ReplayOutputs`,
   which copies in the outputs computed in step 1. A submission that could not be graded has any
   earlier grade removed, so no stale grade survives.
3. **Report**: ``grades.csv`` with a ``status`` column, one line per failed submission.

Each submission's outcome (status, seed, per-test messages) is also kept, outside the folders
nbgrader copies into feedback, as ``grading_status/<assignment>/<student>.json``.
"""

import csv
import json
import os
import shutil
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from traitlets import Unicode

from . import evaluate, kit, tasks
from . import sandbox as sb
from .submission import SubmissionError, assemble, find_notebook, read_notebook

FUNCTIONS = "backpropbook.testfunctions:FUNCTIONS"
STATUS_DIR = "grading_status"


@dataclass
class Limits:
    """Resource limits for one submission's sandbox."""

    cell_timeout: float = 30.0
    total_time: float = 300.0
    memory: int = 4 * 2**30
    nproc: int = 64
    cell_output: int = 100_000


@dataclass
class Outcome:
    """What happened to one student's submission."""

    student: str
    assignment: str
    seed: int
    status: str = "graded"  # "graded", or "error: <one line>"
    notes: list = field(default_factory=list)  # repairs and problems, graded all the same
    tests: dict = field(default_factory=dict)  # grade_id -> None (passed) or message
    score: float | None = None
    max_score: float | None = None

    @property
    def ok(self):
        """Graded with nothing to report: no repair, no crash, no timeout."""
        return self.status == "graded" and not self.notes

    def summary(self):
        if self.status != "graded":
            return self.status
        return "graded; " + "; ".join(self.notes) if self.notes else "graded"


@dataclass
class Course:
    """The folders of an nbgrader course (nbgrader's defaults; the repository is one)."""

    root: Path
    course_id: str = "course"
    source: str = "solutions"
    release: str = "exercises"

    def __post_init__(self):
        self.root = Path(self.root).resolve()

    def path(self, step, student=".", assignment="."):
        return self.root / step / student / assignment

    def status_file(self, assignment, student):
        return self.root / STATUS_DIR / assignment / f"{student}.json"

    def notebooks(self, assignment):
        folder = self.path(self.source, ".", assignment)
        found = sorted(folder.glob("*.ipynb"))
        if not found:
            raise SubmissionError(f"no assignment {assignment!r}: {folder} holds no notebook")
        return [p.name for p in found]

    def students(self, assignment):
        submitted = self.root / "submitted"
        if not submitted.is_dir():
            return []
        return sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())

    @classmethod
    def from_config(cls, root):
        """Read course id and folder names from ``nbgrader_config.py`` (if there is one)."""
        from traitlets.config.loader import PyFileConfigLoader

        root = Path(root).resolve()
        values = {}
        if (root / "nbgrader_config.py").is_file():
            config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
            cd = config.get("CourseDirectory", {})
            for key, attr in (("course_id", "course_id"), ("source", "source_directory"),
                              ("release", "release_directory")):
                if attr in cd:
                    values[key] = cd[attr]
        return cls(root, **values)


def grade_student(course, assignment, student, staging, limits=Limits()):
    """Step 1 for one student (runs in a worker). Returns an :class:`Outcome`."""
    seed = evaluate.student_seed(course.course_id, assignment, student)
    outcome = Outcome(student, assignment, seed)
    folder = course.path("submitted", student, assignment)
    work = Path(tempfile.mkdtemp(prefix=f"grade-{student}-"))
    try:
        # The sandbox gets the submission's other files, never the notebooks themselves.
        files = work / "files"
        shutil.copytree(folder, files, symlinks=True,
                        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        code = kit.build(work / "kit", tasks.withheld(assignment))
        # The visible tests' data, the trusted copy: the setup cell loads it in the sandbox too.
        for data in course.path(course.release, ".", assignment).glob("*.visible.json"):
            shutil.copyfile(data, files / data.name)
        for name in course.notebooks(assignment):
            path, note = find_notebook(folder, name)
            if note:
                outcome.notes.append(note)
            source = nbformat.read(course.path(course.source, ".", assignment) / name, as_version=4)
            release = nbformat.read(course.path(course.release, ".", assignment) / name, as_version=4)
            built = assemble(source, release, read_notebook(path))
            outcome.notes += built.notes
            with sb.Sandbox(files, code, functions=FUNCTIONS, cell_timeout=limits.cell_timeout,
                            total_time=limits.total_time, memory=limits.memory,
                            nproc=limits.nproc, cell_output=limits.cell_output) as box:
                executed, tests, problems = evaluate.grade(
                    built.notebook, box, seed,
                    visible_dir=course.path(course.release, ".", assignment))
            outcome.tests.update(tests)
            outcome.notes += problems
            for step, nb in (("submitted", built.notebook), ("executed", executed)):
                dest = staging / step / student / assignment / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if step == "submitted":
                    nb = _without_outputs(nb)
                nbformat.write(nb, dest)
        stamp = folder / "timestamp.txt"
        if stamp.is_file():
            shutil.copy(stamp, staging / "submitted" / student / assignment / "timestamp.txt")
    except SubmissionError as exc:
        outcome.status = f"error: {one_line(exc)}"
    except sb.SandboxError as exc:
        outcome.status = f"error: the sandbox failed: {one_line(exc)}"
    except Exception as exc:  # noqa: BLE001 -- one bad submission must never stop the others
        outcome.status = f"error: {type(exc).__name__}: {one_line(exc)}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return outcome


def one_line(text):
    """A message on one line: a multi-line one (a traceback) keeps its first and last lines."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else "unknown error"
    return f"{lines[0].rstrip(':')}: {lines[-1]}"


def _without_outputs(nb):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


# ----------------------------------------------------------------------------------------
# Step 2: nbgrader records the results (the only writer of the gradebook)
# ----------------------------------------------------------------------------------------

def _replay_class():
    from nbgrader.preprocessors import NbGraderPreprocessor

    class ReplayOutputs(NbGraderPreprocessor):
        """Stands in for nbgrader's Execute: copies in the outputs of the sandboxed run."""

        executed_directory = Unicode("", help="where grade_student wrote executed notebooks").tag(config=True)

        def preprocess(self, nb, resources):
            info = resources["nbgrader"]
            path = (Path(self.executed_directory) / info["student"] / info["assignment"]
                    / f"{info['notebook']}.ipynb")
            executed = nbformat.read(path, as_version=4)
            if len(executed.cells) != len(nb.cells):
                raise RuntimeError(f"{path}: the executed notebook does not match the submission")
            for cell, done in zip(nb.cells, executed.cells):
                if cell.cell_type == "code":
                    cell.outputs = done.outputs
            return nb, resources

    return ReplayOutputs


class Recorder:
    """Step 2: stores outcomes in nbgrader's gradebook, one at a time (its only writer)."""

    def __init__(self, course, assignment, staging):
        from nbconvert.preprocessors import ClearMetadataPreprocessor
        from nbgrader.api import Gradebook
        from nbgrader.apps import NbGraderAPI
        from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata,
                                            IgnorePattern, LimitOutput, SaveAutoGrades)
        from traitlets.config import Config

        warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's, harmless
        self.course, self.assignment = course, assignment
        self.db_url = f"sqlite:///{course.root / 'gradebook.db'}"
        config = Config()
        config.CourseDirectory.root = str(course.root)
        config.CourseDirectory.course_id = course.course_id
        config.CourseDirectory.source_directory = course.source
        config.CourseDirectory.release_directory = course.release
        config.CourseDirectory.submitted_directory = str(staging / "submitted")
        config.Autograde.autograde_preprocessors = [
            _replay_class(), IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
            SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
        config.ReplayOutputs.executed_directory = str(staging / "executed")
        self.api = NbGraderAPI(config=config)
        with Gradebook(self.db_url, course.course_id) as gb:
            _ensure_assignment(course, assignment, gb)

    def record(self, outcome):
        """Store one outcome; a submission that could not be graded loses any earlier grade."""
        from nbgrader.api import Gradebook, MissingEntry

        student, assignment = outcome.student, self.assignment
        if outcome.status == "graded":
            result = self.api.autograde(assignment, student, force=True, create=True)
            if not result.get("success"):
                why = one_line(result.get("error") or result.get("log") or "nbgrader failed")
                outcome.status = f"error: nbgrader could not record the grade: {why}"
        with Gradebook(self.db_url, self.course.course_id) as gb:
            if outcome.status == "graded":
                sub = gb.find_submission(assignment, student)
                outcome.score, outcome.max_score = sub.score, sub.max_score
            else:
                try:
                    gb.remove_submission(assignment, student)
                except MissingEntry:
                    pass
        if outcome.status != "graded":
            shutil.rmtree(self.course.path("autograded", student, assignment), ignore_errors=True)
        status = self.course.status_file(assignment, student)
        status.parent.mkdir(parents=True, exist_ok=True)
        status.write_text(json.dumps(asdict(outcome), indent=1) + "\n")


def _ensure_assignment(course, assignment, gb):
    """nbgrader needs the assignment (and its cells) in the gradebook: add it from the source."""
    from nbgrader.api import MissingEntry

    try:
        gb.find_assignment(assignment)
        return
    except MissingEntry:
        pass
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.course_id = course.course_id
    config.CourseDirectory.source_directory = course.source
    config.CourseDirectory.release_directory = course.release
    with tempfile.TemporaryDirectory() as tmp:  # the release it writes is thrown away
        config.CourseDirectory.release_directory = tmp
        result = NbGraderAPI(config=config).generate_assignment(assignment, force=True, create=True)
    if not result.get("success"):
        raise RuntimeError(f"could not add {assignment} to the gradebook: {result.get('error')}")


# ----------------------------------------------------------------------------------------
# Step 3: the export
# ----------------------------------------------------------------------------------------

def export(course, assignment, path):
    """Write ``grades.csv``: nbgrader's scores (manual grades included) and our status."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    db_url = f"sqlite:///{course.root / 'gradebook.db'}"
    students = sorted(set(course.students(assignment)) | {
        p.stem for p in (course.root / STATUS_DIR / assignment).glob("*.json")})
    with Gradebook(db_url, course.course_id) as gb:
        for student in students:
            status_path = course.status_file(assignment, student)
            info = json.loads(status_path.read_text()) if status_path.is_file() else {}
            status = info.get("status", "error: not graded yet (run the grade command)")
            if status == "graded" and info.get("notes"):
                status = "graded; " + "; ".join(info["notes"])
            score = max_score = ""
            if info.get("status") == "graded":
                try:
                    sub = gb.find_submission(assignment, student)
                    score, max_score = sub.score, sub.max_score
                except MissingEntry:
                    status = "error: no grade in the gradebook"
            rows.append({"assignment": assignment, "student": student, "score": score,
                         "max_score": max_score, "status": status, "seed": info.get("seed", "")})
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["assignment", "student", "score", "max_score", "status", "seed"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def grade_assignment(course, assignment, *, jobs=None, students=None, limits=Limits(),
                     progress=None):
    """Steps 1 and 2 for every submission of ``assignment``. Returns the outcomes, in order.

    Submissions run in ``jobs`` worker processes; this process alone writes the gradebook, as
    each result comes in. ``progress(done, total, outcome)`` is called after each one.
    """
    sb.check_available()
    course.notebooks(assignment)  # a one-line error if the assignment does not exist
    students = list(students) if students is not None else course.students(assignment)
    staging = Path(tempfile.mkdtemp(prefix=f"grading-{assignment}-"))
    outcomes = {}
    try:
        recorder = Recorder(course, assignment, staging)
        with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            futures = {pool.submit(grade_student, course, assignment, s, staging, limits): s
                       for s in students}
            for future in as_completed(futures):
                student = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 -- a lost worker loses one student only
                    outcome = Outcome(student, assignment,
                                      evaluate.student_seed(course.course_id, assignment, student),
                                      status=f"error: the grader failed: {one_line(exc)}")
                try:
                    recorder.record(outcome)
                except Exception as exc:  # noqa: BLE001
                    outcome.status = f"error: could not record the grade: {one_line(exc)}"
                outcomes[student] = outcome
                if progress:
                    progress(len(outcomes), len(students), outcome)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [outcomes[s] for s in students]
