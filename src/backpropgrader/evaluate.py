"""Grading one assembled notebook: student cells in the sandbox, tests in this (trusted) process.

The student's cells run in a :class:`~backpropgrader.sandbox.Sandbox` (or in several, one per
profile: see :func:`grade`). The test cells never enter it: they run here, in a namespace
made of the instructor's locked setup cells and of *proxies* for the names the student
defines. A proxy sends its plain-data arguments into the
sandbox, lets the student's function run there, and brings back plain data (arrays, numbers,
strings, SymPy expressions rebuilt from an allow-list). Whatever the student's code does to its
own process -- patched numpy, IPython hooks, objects that equal everything -- cannot reach the
checks, which use this process's own numpy.
"""

import ast
import builtins
import hashlib
import os
import sys
import traceback
import warnings
from dataclasses import dataclass, field

import nbformat
import numpy as np

from backpropbook import codec, selfcheck

from . import sandbox as sb
from .submission import _nbgrader, is_answer, is_test

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def student_seed(course, assignment, student):
    """The seed of a student's hidden-test cases: the same on every re-grade, different per
    student."""
    digest = hashlib.sha256(f"{course}/{assignment}/{student}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class StudentException(Exception):
    """An exception raised by student code whose type is not a Python built-in."""


def _as_trusted_exception(name, exc: sb.StudentError):
    """Re-create the student's exception here, as a built-in type when it is one.

    It keeps the student's message; ``raised_by`` names the function, so that a test which lets
    it through still reads well ("sigmoid() raised NotImplementedError").
    """
    cls = getattr(builtins, exc.type, None)
    trusted = None
    if isinstance(cls, type) and issubclass(cls, Exception) and cls is not AssertionError:
        try:
            trusted = cls(exc.message)
        except Exception:  # a built-in whose constructor wants other arguments
            pass
    if trusted is None:
        trusted = StudentException(f"{exc.type}: {exc.message}" if exc.message else exc.type)
    trusted.raised_by = name
    return trusted


@dataclass
class Session:
    """A sandbox plus the cells it has run, so that it can be rebuilt after a crash or timeout."""

    sandbox: object
    max_restarts: int = 3
    ran: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    restarts: int = 0

    def _recover(self, what):
        """Start a fresh sandbox and replay the cells run so far (their outputs are kept)."""
        self.problems.append(what)
        if self.restarts >= self.max_restarts:
            raise sb.StudentTimeout(f"gave up after {self.restarts} restarts of the notebook")
        self.restarts += 1
        self.sandbox.restart()
        for source in self.ran:
            self.sandbox.run_cell(source)

    def run_cell(self, source, label):
        """Run one student cell; returns nbformat outputs. Crashes and timeouts become errors."""
        try:
            result = self.sandbox.run_cell(source)
        except sb.StudentTimeout as exc:
            reason = f"cell {label} timed out ({exc})"
            outputs = [_error_output("TimeoutError", f"this cell did not finish: {exc}")]
        except sb.SandboxDied as exc:
            reason = f"cell {label} killed the notebook's process ({exc.reason})"
            outputs = [_error_output("KernelDied",
                                     f"this cell ended the notebook's process: {exc.reason}")]
        else:
            self.ran.append(source)
            if result.truncated:
                self.problems.append(f"cell {label}: output truncated")
            return _cell_outputs(result)
        try:
            self._recover(reason)
        except sb.SandboxError as exc:
            self.problems.append(f"could not restart the notebook: {exc}")
        return outputs

    def call(self, name, args, kwargs):
        try:
            value = self.sandbox.call(name, args, kwargs)
        except sb.StudentError as exc:
            raise _as_trusted_exception(name, exc) from None
        except sb.StudentTimeout as exc:
            self._try_recover(f"{name}() timed out ({exc})")
            raise TimeoutError(f"{name} did not return in time ({exc})") from None
        except sb.SandboxDied as exc:
            self._try_recover(f"{name}() killed the notebook's process ({exc.reason})")
            raise RuntimeError(f"{name} ended the notebook's process ({exc.reason})") from None
        except (sb.OutputLimit, sb.ProtocolError) as exc:
            raise ValueError(f"{name} returned something that cannot be graded: {exc}") from None
        after = getattr(self.sandbox, "last_args_after", None)
        if after is not None:  # the student's function changed its arguments: so do we
            if not write_back(args, after):
                raise ValueError(f"{name} changed its arguments into something that cannot be "
                                 "graded: do not change the inputs")
        for category, message in getattr(self.sandbox, "last_warnings", []) or []:
            cls = getattr(builtins, category, None)
            if not (isinstance(cls, type) and issubclass(cls, Warning)):
                cls = UserWarning
            warnings.warn(f"{name}: {message}", cls, stacklevel=3)
        return value

    def get(self, name):
        try:
            return self.sandbox.get(name)
        except sb.StudentError as exc:
            raise _as_trusted_exception(name, exc) from None
        except sb.SandboxError as exc:
            raise ValueError(f"could not read {name}: {exc}") from None

    def _try_recover(self, what):
        try:
            self._recover(what)
        except sb.SandboxError as exc:
            self.problems.append(f"could not restart the notebook: {exc}")


def write_back(before, after):
    """Change ``before`` in place into ``after``, as far as Python lets it: arrays, lists and
    dicts in place (recursively, so that what they hold keeps its identity), tuples through
    their items; numbers and strings cannot change in place and are left. False if ``after``
    cannot be written back (an unencodable value, an array whose shape or type changed).

    The sandbox returns a call's arguments when the call changed them; the checks then see the
    change as they would in the student's own process (a check that says "do not change the
    inputs").
    """
    if isinstance(after, codec.Unsupported):
        return False
    if isinstance(before, np.ndarray):
        if not isinstance(after, np.ndarray) or after.shape != before.shape:
            return False
        if not np.array_equal(before, after, equal_nan=True):
            before[...] = after
        return True
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            before[:] = after
        for k, (b, a) in enumerate(zip(before, after)):
            if not (_mutable(b) and write_back(b, a)):
                before[k] = a
        return True
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [k for k in before if k not in after]:
            del before[key]
        for key, value in after.items():
            if key in before and _mutable(before[key]) and write_back(before[key], value):
                continue
            before[key] = value
        return True
    if isinstance(before, tuple) and isinstance(after, (tuple, list)) and len(before) == len(
            after):
        return all(write_back(b, a) for b, a in zip(before, after) if _mutable(b))
    return True  # immutable: nothing to write


def _mutable(value):
    return isinstance(value, (np.ndarray, list, dict, tuple))


class StudentFunction:
    """Stands for a function the student defined; calling it runs the student's code."""

    def __init__(self, session, name):
        self._session, self.__name__ = session, name

    def __call__(self, *args, **kwargs):
        return self._session.call(self.__name__, args, kwargs)

    def __repr__(self):
        return f"<student function {self.__name__}>"


def defined_names(sources):
    """Top-level names the instructor's answer cells define: ``(functions, values)``."""
    functions, values = [], []
    for source in sources:
        try:
            tree = ast.parse(_strip_magics(source))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                functions.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            values.append(n.id)
    return functions, values


def used_names(source):
    """The names a cell reads (every ``ast.Name`` loaded), or none if it does not parse."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _strip_magics(source):
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def _error_output(ename, evalue, lines=None):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=lines if lines is not None else [f"{ename}: {evalue}"])


def _cell_outputs(result):
    outputs = []
    if result.stdout:
        outputs.append(nbformat.v4.new_output("stream", name="stdout", text=result.stdout))
    if result.stderr:
        outputs.append(nbformat.v4.new_output("stream", name="stderr", text=result.stderr))
    if result.error is not None:
        e = result.error
        outputs.append(_error_output(e.ename, e.evalue, e.traceback.splitlines() or None))
    return outputs


def _hidden_lines(source):
    """Line numbers (1-based) that lie inside hidden-test blocks."""
    hidden, inside = set(), False
    for i, line in enumerate(source.splitlines(), 1):
        if line.strip() == HIDDEN_BEGIN:
            inside = True
        if inside:
            hidden.add(i)
        if line.strip() == HIDDEN_END:
            inside = False
    return hidden


def run_test(source, namespace, filename):
    """Run one test cell's source here; ``None`` if it passed, else ``(error name, message)``.

    The message never quotes a hidden line: a bare ``assert`` in a hidden block reads "a hidden
    test failed", while one in the visible part shows the line itself.
    """
    try:
        exec(compile(source, filename, "exec"), namespace)  # instructor code, trusted
        return None
    except Exception as exc:  # any failure of the checks is the student's lost points
        line = None
        for frame, lineno in traceback.walk_tb(sys.exc_info()[2]):
            if frame.f_code.co_filename == filename:
                line = lineno
        text = str(exc).strip()
        if getattr(exc, "raised_by", None):  # the student's own exception, let through
            text = f"{exc.raised_by}() raised {type(exc).__name__}" + (f": {text}" if text else "")
        if not text:
            if line is not None and line not in _hidden_lines(source):
                text = f"failed: {source.splitlines()[line - 1].strip()}"
            else:
                text = "a hidden test failed"
        return type(exc).__name__, text


def _failed(outputs):
    return any(o.get("output_type") == "error" for o in outputs)


def grade(notebook, sandbox, seed, *, routes=None, max_restarts=3, visible_dir=None):
    """Run ``notebook`` (an assembled one) and its tests. Returns ``(notebook, tests, problems)``.

    The notebook comes back with outputs: the student's cells with what they printed in the
    sandbox, each test cell with nothing (passed) or one error output carrying the check's
    message. ``tests`` maps each test cell's grade_id to ``None`` or its message.
    ``visible_dir`` holds the trusted copy of the visible tests' data (the release folder).

    ``sandbox`` is one sandbox, or a dict ``{profile: sandbox}`` (profiles are any keys; the
    grader's are the sets of modules each sandbox withholds). With several, every student cell
    runs in each sandbox, and ``routes`` maps each test cell's grade_id to the profile whose
    sandbox its calls reach: the student's code answers a test only from its own sandbox. A
    cell's outputs are those of the first sandbox where it raised nothing (of the first
    sandbox if it raised in every one).
    """
    boxes = sandbox if isinstance(sandbox, dict) else {None: sandbox}
    sessions = {profile: Session(box, max_restarts=max_restarts)
                for profile, box in boxes.items()}
    functions, values = defined_names(c.source for c in notebook.cells
                                      if is_answer(c) and c.cell_type == "code")
    student_names = set(functions) | set(values)
    setup = []
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or is_test(cell):
            continue
        label = _nbgrader(cell).get("grade_id") or f"#{i + 1}"
        runs = [session.run_cell(cell.source, label) for session in sessions.values()]
        cell.outputs = next((outputs for outputs in runs if not _failed(outputs)), runs[0])
        # A locked cell runs here too, unless it uses the student's names: those live in the
        # sandbox (the autodiff notebook's table of backward functions, say).
        if (_nbgrader(cell).get("locked") and not is_answer(cell)
                and not used_names(cell.source) & student_names):
            setup.append(cell.source)

    namespace = {"__name__": "__grader__"}
    saved = os.environ.get(selfcheck.VISIBLE_DIR)
    if visible_dir is not None:
        os.environ[selfcheck.VISIBLE_DIR] = str(visible_dir)
    try:
        for source in setup:  # the instructor's locked cells (imports): trusted, run here too
            exec(compile(_strip_magics(source), "<setup>", "exec"), namespace)
    finally:
        if saved is None:
            os.environ.pop(selfcheck.VISIBLE_DIR, None)
        else:
            os.environ[selfcheck.VISIBLE_DIR] = saved
    namespace["GRADING_SEED"] = seed

    tests = {}
    for cell in notebook.cells:
        if not is_test(cell):
            continue
        gid = _nbgrader(cell)["grade_id"]
        if len(sessions) == 1:
            (session,) = sessions.values()
        elif routes is None or routes.get(gid) not in sessions:
            raise ValueError(f"test cell {gid} has no sandbox: routes name none of "
                             f"{len(sessions)} profiles for it")
        else:
            session = sessions[routes[gid]]
        for name in functions:
            namespace[name] = StudentFunction(session, name)
        for name in values:
            try:
                namespace[name] = session.get(name)
            except Exception:  # noqa: BLE001 -- undefined: the test's NameError says so
                namespace.pop(name, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # checks that care turn them into errors
            message = run_test(cell.source, namespace, f"<test {gid}>")
        tests[gid] = None if message is None else message[1]
        cell.outputs = [] if message is None else [_error_output(*message)]
    if len(sessions) == 1:
        return notebook, tests, session.problems
    problems = [p for session in sessions.values() for p in session.problems]
    return notebook, tests, list(dict.fromkeys(problems))  # a timeout in every sandbox: once
