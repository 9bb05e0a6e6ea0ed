"""The instructor's answers of an assignment, as Python objects: instructor side only.

:func:`load` runs the code cells of ``solutions/<a>/<a>.ipynb`` that are not test cells (the
locked setup cell, the solution cells and the locked cells between them, in notebook order) in
a fresh namespace and returns it. The book's removed cells use it for the complete engine of
the autodiff chapter (``load("autodiff")["backward"]``); nothing on the student side may, and
the hidden tests never do (their oracles are independent).
"""

from __future__ import annotations

import os
from pathlib import Path

from backpropbook.selfcheck import VISIBLE_DIR

SOURCE = Path(__file__).resolve().parents[2] / "solutions"
_LOADED = {}


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test(cell):
    """An autograded test cell: graded, not a solution (its hidden tests are never run here)."""
    meta = _nbgrader(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def answer_cells(notebook):
    """The sources of the code cells that :func:`load` runs, in notebook order."""
    return ["".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for cell in notebook["cells"]
            if cell["cell_type"] == "code" and not is_test(cell)]


def load(assignment, source=SOURCE):
    """The namespace of assignment ``assignment``'s setup and solution cells (cached).

    The setup cell's ``VisibleTests.load`` reads the json next to the source notebook.
    """
    key = (str(assignment), str(source))
    if key in _LOADED:
        return _LOADED[key]
    import nbformat

    folder = Path(source) / str(assignment)
    path = folder / f"{assignment}.ipynb"
    if not folder.is_dir():
        known = sorted(p.name for p in Path(source).iterdir() if p.is_dir())
        raise LookupError(f"no assignment {assignment!r} in {source}: the assignments are "
                          f"{', '.join(known)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the assignment {assignment!r} has no "
                                "instructor notebook")
    notebook = nbformat.read(path, as_version=4)
    namespace = {"__name__": f"answers_{assignment}"}
    saved = os.environ.get(VISIBLE_DIR)
    os.environ[VISIBLE_DIR] = str(folder)
    try:
        for code in answer_cells(notebook):
            exec(compile(code, str(path), "exec"), namespace)  # the instructor's own notebook
    finally:
        if saved is None:
            os.environ.pop(VISIBLE_DIR, None)
        else:
            os.environ[VISIBLE_DIR] = saved
    _LOADED[key] = namespace
    return namespace
