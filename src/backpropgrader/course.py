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

Reliability, so that no grade is lost and none is stale:

- **One command at a time per course.** :func:`hold` takes an exclusive ``fcntl.flock`` on
  ``grading_status/.lock`` for a whole grading or export command (the OS releases it if the
  process dies); a second command waits for it, or refuses (:class:`CourseBusy`).
- **Every step can be repeated after a kill.** Step 1 writes only in the course's scratch
  folder (:attr:`Course.scratch`), which the next run removes first; its workers die with the
  grading process. Step 2 first drops the student's status file and their old autograded and
  feedback folders, then records, then writes the new status (atomically): a run killed in
  between leaves "not graded yet", never an old status beside a new grade. ``grades.csv`` is
  replaced atomically too. Running the command again grades everyone afresh.
- **SIGINT and SIGTERM stop between two records** (:func:`on_signal`, :func:`uninterrupted`):
  nbgrader never sees the interruption, which it would report as a failed autograde.

Test hook, inert unless set: ``BACKPROPGRADER_TEST_SIGNAL=<point>:<n>[:<signal>]`` makes the
grading process send itself ``<signal>`` (default KILL) the ``n``-th time it reaches ``<point>``
(see :func:`checkpoint`): ``run`` (a result of step 1 came in, not yet recorded), ``record``
(nbgrader has stored a grade, its status file is not yet written), ``feedback`` (a student's
feedback is written), ``export`` (the new ``grades.csv`` is written, not yet in place).
"""

import csv
import ctypes
import fcntl
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from traitlets import Unicode

from . import evaluate, kit, tasks
from . import sandbox as sb
from .submission import (
    SubmissionError,
    _nbgrader,
    assemble,
    find_notebook,
    is_test,
    read_notebook,
)

FUNCTIONS = "backpropbook.testfunctions:FUNCTIONS"
STATUS_DIR = "grading_status"
LOCK_FILE = f"{STATUS_DIR}/.lock"  # git-ignored with the status files
TEST_SIGNAL = "BACKPROPGRADER_TEST_SIGNAL"


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

    @property
    def scratch(self):
        """This course's temporary folder: a run's working files, removed by the next run.

        (Its path in the grading process: a worker's temporary folder is inside it.)
        """
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"backpropgrader-{digest}"

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


# ----------------------------------------------------------------------------------------
# One command at a time, interruptions between records, files replaced whole
# ----------------------------------------------------------------------------------------

class CourseBusy(Exception):
    """Another grading command holds the course; the message (one line) names its pid."""


_held = {}  # course root -> the lock's file descriptor, while this process holds it


def _say(line):
    print(line, file=sys.stderr, flush=True)


def _holder(fd, patience=2.0):
    """The pid written in the lock file by its holder ("unknown" if it has not written it yet)."""
    deadline = time.monotonic() + patience
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text or time.monotonic() > deadline:
            return text or "unknown"
        time.sleep(0.05)  # the holder writes its pid right after it took the lock


@contextmanager
def hold(course, *, wait=True, say=_say):
    """Hold the course's exclusive lock for the block (re-entrant within one process).

    If another process holds it: with ``wait``, print one line (through ``say``) naming it and
    wait; without, raise :class:`CourseBusy`. The lock dies with the process that holds it.
    """
    if course.root in _held:
        yield
        return
    path = course.root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            if not wait:
                raise CourseBusy(f"another grading command (pid {pid}) is working on "
                                 f"{course.root}; nothing was changed (run without --no-wait "
                                 "to wait for it)") from None
            say(f"waiting for the grading command of pid {pid} to finish ({path})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[course.root] = fd
        try:
            yield
        finally:
            del _held[course.root]
    finally:
        os.close(fd)  # releases the lock


def holds(course):
    """Whether this process holds the course's lock."""
    return course.root in _held


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached the grading process (not an Exception: nothing swallows it)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_deferred = {"depth": 0, "signum": None}


def on_signal(signum, frame=None):
    """Signal handler: raise :class:`Interrupted`, or, inside :func:`uninterrupted`, later."""
    if _deferred["depth"]:
        _deferred["signum"] = signum
    else:
        raise Interrupted(signum)


@contextmanager
def uninterrupted():
    """A block that :func:`on_signal` does not cut: the interruption comes right after it."""
    _deferred["depth"] += 1
    try:
        yield
    finally:
        _deferred["depth"] -= 1
        if not _deferred["depth"] and _deferred["signum"] is not None:
            signum, _deferred["signum"] = _deferred["signum"], None
            raise Interrupted(signum)


_reached = Counter()


def checkpoint(point):
    """The test hook of the module docstring; does nothing unless $BACKPROPGRADER_TEST_SIGNAL."""
    spec = os.environ.get(TEST_SIGNAL)
    if not spec or spec.split(":")[0] != point:
        return
    _, n, *name = spec.split(":")
    _reached[point] += 1
    if _reached[point] == int(n):
        os.kill(os.getpid(), getattr(signal, "SIG" + (name[0] if name else "KILL")))


def write_atomically(path, text, point=None):
    """Replace ``path`` by a file holding ``text``: a reader, or a kill, sees the old or the new.

    The new file is written beside it (``.<name>.<random>.tmp``) and renamed over it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        if point:
            checkpoint(point)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_leftovers(folder, name="*"):
    """Temporary files of :func:`write_atomically` left by a killed run (call under the lock)."""
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        tmp.unlink(missing_ok=True)


def read_status(path):
    """A status file's content, or ``{}`` if it is missing or unreadable."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


# ----------------------------------------------------------------------------------------
# Step 1: the sandboxed runs (in worker processes)
# ----------------------------------------------------------------------------------------

def _start_worker(parent, tmp):
    """Each worker dies with the grading process, ignores Ctrl-C and keeps its files in ``tmp``."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers itself
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for fd in _held.values():  # the course lock stays with the parent alone
        os.close(fd)
    _held.clear()
    # Work folders and the sandboxes' files go to the scratch folder, which the next run
    # removes if this one is killed (sandbox.LOCK_DIR, shared by all graders, is already set).
    tempfile.tempdir = tmp


def grade_student(course, assignment, student, staging, limits=None):
    """Step 1 for one student (runs in a worker). Returns an :class:`Outcome`."""
    limits = limits or Limits()
    seed = evaluate.student_seed(course.course_id, assignment, student)
    outcome = Outcome(student, assignment, seed)
    folder = course.path("submitted", student, assignment)
    work = Path(tempfile.mkdtemp(prefix=f"grade-{student}-"))
    try:
        # The sandbox gets the submission's other files, never the notebooks themselves.
        files = work / "files"
        shutil.copytree(folder, files, symlinks=True,
                        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        # One kit and one sandbox per profile: the modules a test cell's task withholds (the
        # assignment's union for a test cell no task declares). One profile: one sandbox.
        withheld, default = tasks.withheld_by_test(assignment), tuple(tasks.withheld(assignment))
        kits = {}
        # The visible tests' data, the trusted copy: the setup cell loads it in the sandbox too.
        for data in course.path(course.release, ".", assignment).glob("*.visible.json"):
            shutil.copyfile(data, files / data.name)
        for name in course.notebooks(assignment):
            path, note = find_notebook(folder, name)
            if note:
                outcome.notes.append(note)
            source = nbformat.read(course.path(course.source, ".", assignment) / name,
                                   as_version=4)
            release = nbformat.read(course.path(course.release, ".", assignment) / name,
                                    as_version=4)
            built = assemble(source, release, read_notebook(path))
            outcome.notes += built.notes
            gids = [_nbgrader(cell)["grade_id"] for cell in built.notebook.cells if is_test(cell)]
            routes = {gid: withheld.get(gid, default) for gid in gids}
            with ExitStack() as boxes:
                sandboxes = {}
                for profile in dict.fromkeys(routes.values()) or [default]:
                    if profile not in kits:
                        kits[profile] = kit.build(work / f"kit-{len(kits)}", profile)
                    sandboxes[profile] = boxes.enter_context(sb.Sandbox(
                        files, kits[profile], functions=FUNCTIONS,
                        cell_timeout=limits.cell_timeout, total_time=limits.total_time,
                        memory=limits.memory, nproc=limits.nproc,
                        cell_output=limits.cell_output,
                        covers=kit.covers(kits[profile], profile)))
                executed, tests, problems = evaluate.grade(
                    built.notebook, sandboxes, seed, routes=routes,
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

        executed_directory = Unicode(
            "", help="where grade_student wrote executed notebooks").tag(config=True)

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
    """Step 2: stores outcomes in nbgrader's gradebook, one at a time (its only writer).

    Only under the course lock (:func:`hold`), so that no other command writes it meanwhile.
    """

    def __init__(self, course, assignment, staging):
        from nbconvert.preprocessors import ClearMetadataPreprocessor
        from nbgrader.api import Gradebook
        from nbgrader.apps import NbGraderAPI
        from nbgrader.preprocessors import (
            AssignLatePenalties,
            CheckCellMetadata,
            IgnorePattern,
            LimitOutput,
            SaveAutoGrades,
        )
        from traitlets.config import Config

        if not holds(course):
            raise RuntimeError(f"the gradebook of {course.root} is written only under its lock "
                               "(backpropgrader.course.hold)")
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
        """Store one outcome; a submission that could not be graded loses any earlier grade.

        Safe to repeat, and to kill at any point: the student's status file goes first (until
        the new one is written, the student reads "not graded yet"), and so do their autograded
        and feedback folders, which nbgrader and :mod:`.feedback` write afresh.
        """
        from nbgrader.api import Gradebook, MissingEntry

        student, assignment = outcome.student, self.assignment
        status = self.course.status_file(assignment, student)
        status.unlink(missing_ok=True)
        for step in ("autograded", "feedback"):
            shutil.rmtree(self.course.path(step, student, assignment), ignore_errors=True)
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
        if outcome.status != "graded":  # nbgrader may have written some of it
            shutil.rmtree(self.course.path("autograded", student, assignment), ignore_errors=True)
        checkpoint("record")
        write_atomically(status, json.dumps(asdict(outcome), indent=1) + "\n")


def _source_cells(course, assignment):
    """{notebook: the grade_ids nbgrader stores for it}, read from the instructor's notebooks."""
    from nbgrader import utils

    wanted = {}
    for name in course.notebooks(assignment):
        nb = nbformat.read(course.path(course.source, ".", assignment) / name, as_version=4)
        wanted[Path(name).stem] = {
            cell.metadata.nbgrader["grade_id"] for cell in nb.cells
            if utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell)
            or utils.is_task(cell)}
    return wanted


def _ensure_assignment(course, assignment, gb):
    """nbgrader needs the assignment (and its cells) in the gradebook: add it from the source.

    nbgrader stores the cells one by one, so a run killed meanwhile leaves some out: the
    assignment is taken as it is only when every notebook has all its cells.
    """
    from nbgrader.api import MissingEntry

    try:
        stored = {nb.name: {c.name for c in nb.source_cells}
                  for nb in gb.find_assignment(assignment).notebooks}
        if stored == _source_cells(course, assignment):
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
    """Write ``grades.csv``: nbgrader's scores (manual grades included) and our status.

    Under the course lock; the file is replaced whole (see :func:`write_atomically`).
    """
    with hold(course):
        return _export(course, assignment, Path(path))


def _export(course, assignment, path):
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    db_url = f"sqlite:///{course.root / 'gradebook.db'}"
    students = sorted(set(course.students(assignment)) | {
        p.stem for p in (course.root / STATUS_DIR / assignment).glob("*.json")})
    with Gradebook(db_url, course.course_id) as gb:
        for student in students:
            info = read_status(course.status_file(assignment, student))
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
    text = io.StringIO()
    writer = csv.DictWriter(text, ["assignment", "student", "score", "max_score", "status",
                                   "seed"])
    writer.writeheader()
    writer.writerows(rows)
    _remove_leftovers(path.parent, path.name)
    write_atomically(path, text.getvalue(), point="export")
    return rows


def grade_assignment(course, assignment, *, jobs=None, students=None, limits=None,
                     progress=None):
    """Steps 1 and 2 for every submission of ``assignment``. Returns the outcomes, in order.

    Submissions run in ``jobs`` worker processes; this process alone writes the gradebook, as
    each result comes in, under the course lock (:func:`hold`: it waits for another command).
    ``progress(done, total, outcome)`` is called after each one. On :class:`Interrupted` (or
    any error) the workers are stopped and the scratch folder removed; what was recorded stays.
    """
    sb.check_available()
    course.notebooks(assignment)  # a one-line error if the assignment does not exist
    students = list(students) if students is not None else course.students(assignment)
    with hold(course):
        shutil.rmtree(course.scratch, ignore_errors=True)  # a killed run's files, if any
        try:
            return _grade_all(course, assignment, students, jobs, limits or Limits(), progress)
        finally:
            shutil.rmtree(course.scratch, ignore_errors=True)


def _grade_all(course, assignment, students, jobs, limits, progress):
    staging, tmp = course.scratch / "staging", course.scratch / "tmp"
    staging.mkdir(parents=True)
    tmp.mkdir()
    _remove_leftovers(course.root / STATUS_DIR / assignment)
    with uninterrupted():  # nbgrader would take an interruption for a failure
        recorder = Recorder(course, assignment, staging)
    outcomes = {}
    pool = ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1,
                               initializer=_start_worker, initargs=(os.getpid(), str(tmp)))
    try:
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
            checkpoint("run")
            with uninterrupted():
                try:
                    recorder.record(outcome)
                except Exception as exc:  # noqa: BLE001
                    outcome.status = f"error: could not record the grade: {one_line(exc)}"
            outcomes[student] = outcome
            if progress:
                progress(len(outcomes), len(students), outcome)
    except BaseException:
        for worker in multiprocessing.active_children():  # the pool's workers, mid-sandbox
            worker.kill()
            worker.join()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [outcomes[s] for s in students]
