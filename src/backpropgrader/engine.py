"""The grading engine: a task is a declaration, grading it is one loop.

A :class:`Task` declares what an autograded function must do: its parameters and how its answer
is read (a kind from :mod:`backpropbook.selfcheck`), how cases are drawn from a student's seed,
its oracle (torch.autograd, SymPy, a closed form: never the instructor's solution), its
tolerance, its named mistakes, its visible cases and what is withheld while it runs.

:func:`check` turns a declaration and a function into nothing (full marks) or an AssertionError
whose message names the mistake; :func:`visible_data` writes what the student's visible tests
need (inputs, right answers, the mistakes' answers), and nothing else.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import sys
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backpropbook import selfcheck
from backpropbook.selfcheck import close, diagnose, difference, unchanged

HARD_CODED = ("{name} returns the answer of the visible test for a different input: the answer "
              "looks hard-coded; compute it from the arguments")
WITHHELD = ("{name} is withheld while this task is graded ({why}); write the computation "
            "yourself")


@dataclass(frozen=True)
class Mistake:
    """A typical mistake: ``answer(*args)`` computes the wrong answer it gives, ``message``
    names it in the book's terms."""

    message: str
    answer: Callable[..., Any]


@dataclass(frozen=True)
class Task:
    """One autograded function of an assignment (see the module docstring)."""

    name: str  # the function the student writes; its test cell is test_<name> by default
    params: tuple  # its parameter names, in order
    kind: Any  # a selfcheck kind: how an answer is read into a tuple of float arrays
    cases: Callable  # rng -> list of cases; a case is a dict: the params, and "_"-keys
    oracle: Callable  # (*args, **extras) -> the right answer, computed independently
    mistakes: Callable  # (*args, **extras) -> list of Mistake (which may depend on the case)
    visible: tuple = ()  # the visible tests' cases
    points: int = 1
    rtol: float = 1e-7
    atol: float = 1e-10
    withheld: tuple = ()  # modules the student's code may not call here ("torch" included)
    unchanged: tuple = ()  # parameters the function must not change
    describe: Callable = None  # case -> its description in messages
    rank: Callable = None  # case -> sort key: the failed case to explain first (smallest)
    grade_id: str = ""
    oracle_name: str = "torch.autograd"
    key: str = ""  # the task's name in check() and the visible data (default: name); two tasks
    # that grade one function in two test cells need two keys

    def __post_init__(self):
        if not self.grade_id:
            object.__setattr__(self, "grade_id", f"test_{self.name}")
        if not self.key:
            object.__setattr__(self, "key", self.name)

    def args(self, case):
        return [case[p] for p in self.params]

    def extras(self, case):
        return {k: v for k, v in case.items() if k.startswith("_")}

    def answer_of(self, fn, case):
        """A trusted function's answer (oracle or mistake) on ``case``, as a tuple of arrays."""
        value = fn(*copy.deepcopy(self.args(case)), **self.extras(case))
        return self.read_trusted(value, case)

    def read_trusted(self, value, case):
        if isinstance(self.kind, selfcheck.Values):
            return (np.asarray(value, dtype=float),)
        if isinstance(self.kind, selfcheck.Shapes):
            return tuple(np.asarray(value[k], dtype=float) for k in self.kind.keys)
        if isinstance(self.kind, selfcheck.Gradients):
            return tuple(np.asarray(value[k], dtype=float) for k in case["_names"])
        return _flatten(value)

    def description(self, case):
        return self.describe(case) if self.describe else self.name


def _flatten(value):
    """A trusted nested answer (arrays in tuples and lists) as a flat tuple of arrays."""
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (list, tuple)) for v in value):
        return tuple(a for v in value for a in _flatten(v))
    if isinstance(value, (list, tuple)) and value and not all(
            np.isscalar(v) for v in value):
        return tuple(np.asarray(v, dtype=float) for v in value)
    return (np.asarray(value, dtype=float),)


def task_seed(seed, task):
    """The task's own stream of the student's seed: tasks never share random cases."""
    base = seed if isinstance(seed, (tuple, list)) else (seed,)
    return [*map(int, base), zlib.crc32(task.key.encode())]


# --------------------------------------------------------------------------------------------
# Withholding: the declared modules raise while the student's function runs
# --------------------------------------------------------------------------------------------

_RAISER = "def _withheld(*args, **kwargs):\n    raise AssertionError({message!r})\n"


def _functions(module_name):
    module = importlib.import_module(module_name)
    return [obj for obj in vars(module).values()
            if inspect.isfunction(obj) and obj.__module__ == module_name]


@contextlib.contextmanager
def withheld(modules, why="the book's reference code"):
    """Every function of ``modules`` raises while the block runs; ``"torch"`` cannot be imported.

    The function objects themselves change (their ``__code__``), so a reference taken earlier
    (``from backpropbook.mlp import mlp_backward``) is caught too. In the sandbox the same
    modules are stubs (:mod:`backpropgrader.kit`).
    """
    saved, torch_saved = [], None
    try:
        for name in modules:
            if name == "torch":
                torch_saved = sys.modules.get("torch")
                sys.modules["torch"] = None  # `import torch` raises ImportError
                continue
            for fn in _functions(name):
                message = WITHHELD.format(name=f"{name}.{fn.__name__}", why=why)
                namespace = {}
                exec(_RAISER.format(message=message), namespace)  # a constant template
                saved.append((fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__))
                fn.__code__, fn.__defaults__, fn.__kwdefaults__ = (
                    namespace["_withheld"].__code__, None, None)
        yield
    finally:
        for fn, code, defaults, kwdefaults in reversed(saved):
            fn.__code__, fn.__defaults__, fn.__kwdefaults__ = code, defaults, kwdefaults
        if "torch" in modules:
            if torch_saved is None:
                sys.modules.pop("torch", None)
            else:
                sys.modules["torch"] = torch_saved


# --------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------


def call(fn, name, *args):
    """Call the student's ``fn``; numerical warnings and exceptions become an AssertionError.

    Only a RuntimeWarning (overflow, division by zero, invalid value) fails a check: any other
    warning a correct answer happens to raise costs nothing.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)
        with np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
            try:
                return fn(*args)
            except AssertionError:
                raise
            except (RuntimeWarning, FloatingPointError, OverflowError) as exc:
                raise AssertionError(
                    f"{name}: numerical warning or error ({type(exc).__name__}: {exc})") from exc
            except Exception as exc:  # the student's bug, reported as a failed check
                raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}") from exc


def _loose(task, value, case, expected):
    """The value read as an answer, or None if it cannot be (no error)."""
    try:
        return task.kind.read(value, task.extras(case), expected, task.name)
    except AssertionError:
        return None


def _same_input(task, case, other):
    """True if the function receives the same arguments in both cases (extras do not count:
    a SymPy answer is the same expression whatever points it is read at)."""
    return all(unchanged(case[p], other[p]) for p in task.params)


def explain(task, case, answer, expected=None):
    """Why ``answer`` (a tuple of arrays) is not the right answer on ``case``."""
    expected = expected if expected is not None else task.answer_of(task.oracle, case)
    mistakes = [(m.message, task.answer_of(m.answer, case))
                for m in task.mistakes(*task.args(case), **task.extras(case))]
    return diagnose(answer, expected, mistakes, task.rtol, task.atol) or difference(
        task.kind.labels(expected, task.extras(case)), answer, expected, task.rtol, task.atol,
        task.oracle_name)


def check(task, fn, seed=0):
    """Grade ``fn`` on the task's cases drawn from ``seed``: None, or an AssertionError."""
    rng = np.random.default_rng(task_seed(seed, task))
    cases = task.cases(rng)
    visible = [(v, task.answer_of(task.oracle, v)) for v in task.visible]
    failures = []
    for case in cases:
        args = copy.deepcopy(task.args(case))
        try:
            with withheld(task.withheld):
                value = call(fn, task.name, *args)
        except AssertionError as exc:  # say on which case: the student can reproduce it
            raise AssertionError(f"{task.description(case)}: {exc}") from None
        expected = task.answer_of(task.oracle, case)
        for v_case, v_answer in visible:
            if _same_input(task, case, v_case) or len(v_answer) != len(expected):
                continue
            loose = _loose(task, value, v_case, v_answer)
            if loose is not None and close(loose, v_answer, 1e-9, 1e-12) and not close(
                    v_answer, expected, task.rtol, task.atol):
                raise AssertionError(HARD_CODED.format(name=task.name))
        answer = task.kind.read(value, task.extras(case), expected, task.name)
        for param, before, after in zip(task.params, task.args(case), args):
            if param in task.unchanged and not unchanged(before, after):
                raise AssertionError(f"{task.name} changed its argument {param}: "
                                     "do not change the inputs")
        if not close(answer, expected, task.rtol, task.atol):
            failures.append((case, answer, expected))
    if failures:
        if task.rank:
            failures.sort(key=lambda f: task.rank(f[0]))
        case, answer, expected = failures[0]
        raise AssertionError(f"{task.description(case)} ({len(failures)} of {len(cases)} "
                             f"cases wrong): {explain(task, case, answer, expected)}")


def passes(task, fn, seed=0):
    """True if ``fn`` earns the task's points."""
    try:
        check(task, fn, seed)
    except AssertionError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# What the student's visible tests get
# --------------------------------------------------------------------------------------------


def visible_data(tasks):
    """The visible cases of ``tasks`` with right and wrong answers, as plain data."""
    out = {}
    for task in tasks:
        cases = []
        for case in task.visible:
            expected = task.answer_of(task.oracle, case)
            mistakes = []
            for m in task.mistakes(*task.args(case), **task.extras(case)):
                wrong = task.answer_of(m.answer, case)
                if not close(wrong, expected, task.rtol, task.atol):
                    mistakes.append([m.message, list(wrong)])
            cases.append({"args": task.args(case), "extras": task.extras(case),
                          "description": task.description(case), "expected": list(expected),
                          "mistakes": mistakes})
        out[task.key] = {"params": list(task.params), "kind": selfcheck.kind_to_plain(task.kind),
                         "rtol": task.rtol, "atol": task.atol,
                         "unchanged": list(task.unchanged), "cases": cases}
        if task.key != task.name:  # the function's own name, for the visible tests' messages
            out[task.key]["function"] = task.name
    return {"tasks": out}


@dataclass
class Assignment:
    """The autograded tasks of one assignment, in notebook order."""

    name: str
    tasks: list = field(default_factory=list)

    def task(self, name):
        for t in self.tasks:
            if t.key == name:
                return t
        raise KeyError(f"assignment {self.name!r} has no task {name!r}")

    @property
    def withheld(self):
        """Every module some task withholds: the sandbox's stubs."""
        return sorted({m for t in self.tasks for m in t.withheld})
