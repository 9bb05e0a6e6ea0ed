"""Nothing on the student side computes an autograded answer.

For every task of every assignment, every callable the student side offers whose signature
takes the task's parameters is run through the task's hidden check; none may pass. What the
student side offers:

- every public function and class (and its public methods) of every module of the package, as
  the wheel of ``pip install .`` ships it, and every callable inside the modules' dicts, tuples
  and NamedTuples (``ACTIVATIONS["tanh"].g_prime``, ``testfunctions.FUNCTIONS`` ...);
- every function and class the chapters define (their code cells, run in order, in the book's
  folder, as the build runs them);
- every function and class the release notebooks' locked cells define.

The check runs with nothing withheld: a function of the package that answers a task is a leak
even though the grader would block it, since a student can read it. A candidate that passes
is a real leak: take it off the student side or change the task; never loosen this test.
"""

import contextlib
import dataclasses
import functools
import importlib
import inspect
import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from backpropgrader import engine, tasks
from conftest import REPO
from test_student_install import copy_sources

pytestmark = pytest.mark.package

SEEDS = (0, 20261201)  # the working seed and one like the grading command's
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
CONTAINERS = (dict, list, tuple)
DEPTH = 3  # how deep into nested containers callables are looked for


def declared_tasks():
    """(assignment, task or None) for every assignment; None if its declarations are missing."""
    found = []
    for name in tasks.NAMES:
        try:
            found += [(name, t) for t in tasks.assignment(name).tasks]
        except ImportError:
            found.append((name, None))
    return found


# ------------------------------------------------------------------------- the wheel


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    """The file names inside the wheel ``pip install --no-deps .`` installs."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = copy_sources(tmp / "source")
    # --no-build-isolation: build with this venv's setuptools, offline (the student-install
    # test builds the same way a student does, with an isolated build environment).
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--disable-pip-version-check", "-q", "-w", str(tmp / "dist"), str(source)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp / "dist").glob("backpropbook-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_holds_only_the_package(wheel_names):
    outside = [n for n in wheel_names
               if n.split("/")[0] not in ("backpropbook", "backpropbook-0.1.0.dist-info")]
    assert not outside, f"the student's wheel ships more than backpropbook: {outside}"
    shipped = {n for n in wheel_names if n.startswith("backpropbook/") and n.endswith(".py")}
    in_src = {p.relative_to(REPO / "src").as_posix()
              for p in (REPO / "src" / "backpropbook").rglob("*.py")}
    assert shipped == in_src, f"wheel and src/backpropbook differ: {shipped ^ in_src}"


# ------------------------------------------------------------------------- the candidates


def wheel_modules(names):
    """The dotted names of the modules the wheel ships."""
    modules = []
    for name in sorted(names):
        if name.startswith("backpropbook/") and name.endswith(".py"):
            dotted = name[:-3].replace("/", ".")
            modules.append(dotted.removesuffix(".__init__"))
    return modules


def public(name):
    return not name.startswith("_")


def callables_in(value, where, depth=DEPTH):
    """(label, callable) for every callable inside nested dicts, lists, tuples, NamedTuples."""
    if depth == 0 or not isinstance(value, CONTAINERS):
        return []
    items = value.items() if isinstance(value, dict) else (
        value._asdict().items() if hasattr(value, "_asdict") else enumerate(value))
    found = []
    for key, item in items:
        label = f"{where}[{key!r}]" if not hasattr(value, "_asdict") else f"{where}.{key}"
        if callable(item):
            found.append((label, item))
        found += callables_in(item, label, depth - 1)
    return found


def members(obj, where):
    """A class and its public methods (bound to the class, as a student would reach them)."""
    found = [(where, obj)]
    if inspect.isclass(obj):
        found += [(f"{where}.{name}", getattr(obj, name)) for name in vars(obj)
                  if public(name) and callable(getattr(obj, name))]
    return found


def package_candidates(module_names):
    found = []
    for dotted in module_names:
        module = importlib.import_module(dotted)
        for name, obj in vars(module).items():
            if not public(name):
                continue
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == dotted:
                found += members(obj, f"{dotted}.{name}")
            found += callables_in(obj, f"{dotted}.{name}")
    return found


def chapter_files():
    """book/*.md in the order of _toc.yml (root, then chapters)."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]] + [entry["file"] for entry in toc.get("chapters", [])]
    return [REPO / f"{name}.md" for name in files]


def cell_code(block):
    """A MyST code-cell's Python: without its options (``:tags:`` or a ``---`` block) and
    IPython magics (display settings, which plain Python cannot run)."""
    lines = block.splitlines()
    if lines and lines[0].strip() == "---":
        lines = lines[lines.index("---", 1) + 1:]
    while lines and lines[0].startswith(":"):
        lines = lines[1:]
    return "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line for line in lines)


@contextlib.contextmanager
def working_directory(folder):
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def run_cells(sources, label, cwd):
    """Run ``sources`` (code strings) in order in one namespace, in ``cwd``; a cell's error is
    caught (a cell meant to raise, one that needs IPython) and the next cell runs."""
    namespace = {"__name__": label}
    with working_directory(cwd), contextlib.redirect_stdout(io.StringIO()):
        for index, source in enumerate(sources):
            try:
                exec(compile(source, f"<{label} cell {index}>", "exec"), namespace)
            except Exception:  # as a notebook goes on after a failed cell
                pass
    return namespace


def defined_by(sources, label, cwd):
    """(label, obj) for every function and class that the cells ``sources`` define."""
    namespace = run_cells(sources, label, cwd)
    found = []
    for name, obj in namespace.items():
        if inspect.isfunction(obj) and obj.__code__.co_filename.startswith(f"<{label} "):
            found.append((f"{label}: {name}", obj))
        elif inspect.isclass(obj) and obj.__module__ == label:
            found += members(obj, f"{label}: {name}")
    return found


def chapter_candidates():
    found = []
    for chapter in chapter_files():
        blocks = CODE_CELL.findall(chapter.read_text(encoding="utf-8"))
        found += defined_by([cell_code(b) for b in blocks], chapter.relative_to(REPO).as_posix(),
                            chapter.parent)
    return found


def release_candidates(monkeypatch):
    """Functions the locked cells of exercises/<a>/<a>.ipynb define (run in that folder)."""
    monkeypatch.delenv("BACKPROPBOOK_VISIBLE_DIR", raising=False)
    found = []
    for notebook in sorted((REPO / "exercises").glob("*/*.ipynb")):
        cells = [c for c in nbformat.read(notebook, as_version=4).cells
                 if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("locked")]
        found += defined_by([c.source for c in cells], notebook.relative_to(REPO).as_posix(),
                            notebook.parent)
    return found


@pytest.fixture(scope="module")
def offered(wheel_names):
    """(label, callable) for everything the student side offers, by every name it has."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        return (package_candidates(wheel_modules(wheel_names)) + chapter_candidates()
                + release_candidates(monkeypatch))
    finally:
        monkeypatch.undo()


@pytest.fixture(scope="module")
def candidates(offered):
    """The offered callables, each object once (under the first name found)."""
    unique, seen = [], set()
    for label, obj in offered:
        if id(obj) not in seen:
            seen.add(id(obj))
            unique.append((label, obj))
    return unique


def test_the_candidates_cover_every_source(offered):
    """The collection is not vacuous: each source offers callables, the known ones are there."""
    labels = [label for label, _ in offered]
    assert any(label.startswith("backpropbook.layers.") for label in labels)
    assert "backpropbook.activations.ACTIVATIONS['tanh'].g_prime" in labels
    assert any(label.startswith("backpropbook.testfunctions.FUNCTIONS[") for label in labels)
    for chapter in chapter_files():
        if CODE_CELL.search(chapter.read_text(encoding="utf-8")) and "def " in chapter.read_text():
            rel = chapter.relative_to(REPO).as_posix()
            assert any(label.startswith(f"{rel}: ") for label in labels), rel


def binds(fn, params):
    """True if ``fn`` can be called with the task's parameters, positionally."""
    try:
        inspect.signature(fn).bind(*params)
    except TypeError:
        return False
    except ValueError:  # no signature to read (some builtins): try it
        return True
    return True


@functools.cache
def instructor_answers(assignment):
    """The namespace of solutions/<a>/<a>.ipynb's setup and answer cells, run in its folder."""
    notebook = REPO / "solutions" / assignment / f"{assignment}.ipynb"
    cells = [c.source for c in nbformat.read(notebook, as_version=4).cells
             if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("grade")]
    return run_cells(cells, f"solutions/{assignment}", notebook.parent)


@pytest.mark.parametrize("assignment, task", declared_tasks(),
                         ids=lambda v: v.key if isinstance(v, engine.Task) else str(v))
def test_no_candidate_answers_the_task(assignment, task, candidates):
    assert task is not None, f"src/backpropgrader/tasks/{assignment}.py declares no tasks yet"
    unblocked = dataclasses.replace(task, withheld=())
    tried = [(label, fn) for label, fn in candidates if binds(fn, task.params)]
    print(f"\n{assignment}/{task.key}: {len(tried)} of {len(candidates)} candidates "
          f"take {task.params}")
    # The same harness on the instructor's answer: it passes, so a leak could not go unseen.
    answer = instructor_answers(assignment).get(task.name)
    assert answer is not None, f"solutions/{assignment} defines no {task.name}"
    for seed in SEEDS:
        engine.check(unblocked, answer, seed)
    leaks = [f"{label} (seed {seed})" for label, fn in tried for seed in SEEDS
             if engine.passes(unblocked, fn, seed)]
    assert not leaks, (f"the student side computes the answer of {assignment}/{task.name}:\n"
                       + "\n".join(leaks))
