"""Finding, reading and normalising one student's submission, with one-line errors.

A submission is rebuilt on the instructor's notebook: every cell the student may not change
(setup, instructions, tests) comes from the source in ``solutions/``; only the student's answer
cells (matched by nbgrader ``grade_id``) and the code cells the student added are taken from the
submission. Deleted answer cells fall back to the release stub, duplicated ones count once, and
every such repair is reported as a note.
"""

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat


class SubmissionError(Exception):
    """A submission that cannot be graded at all; the message is one line naming the cause."""


@dataclass
class Assembled:
    """The notebook to grade, built from the source and the student's answers."""

    notebook: nbformat.NotebookNode
    notes: list = field(default_factory=list)  # repairs made, one line each


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def is_answer(cell):
    """A cell the student writes: an nbgrader solution cell."""
    return bool(_nbgrader(cell).get("solution"))


def is_test(cell):
    """An autograder test cell: graded, locked code."""
    meta = _nbgrader(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def find_notebook(folder, name):
    """The submitted notebook ``name`` in ``folder``; returns ``(path, note or None)``.

    A single notebook under another name is accepted with a note; none, or several, is an error.
    """
    folder = Path(folder)
    expected = folder / name
    if expected.is_file():
        return expected, None
    if not folder.is_dir():
        raise SubmissionError(f"missing: no folder {folder}")
    found = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if len(found) == 1:
        rel = found[0].relative_to(folder)
        return found[0], f"graded {rel}: the notebook should be named {name}"
    listing = ", ".join(str(p.relative_to(folder)) for p in found) or "no notebook at all"
    raise SubmissionError(f"missing: no {name} in {folder} (found {listing})")


def read_notebook(path):
    """Read a notebook file; anything that is not a valid notebook is a one-line error."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"corrupt: {path.name} is not UTF-8 text "
                              f"({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SubmissionError(f"unreadable: {path.name}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"corrupt: {path.name} is not JSON "
                              f"({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise SubmissionError(f"corrupt: {path.name} is JSON but not a notebook (no list of cells)")
    try:
        nb = nbformat.from_dict(data)
        if nb.get("nbformat", 0) < 4:
            raise SubmissionError(f"corrupt: {path.name} is nbformat {nb.get('nbformat')}, "
                                  "expected 4")
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise SubmissionError(f"corrupt: {path.name} is not a valid notebook ({first})") from None
    return nb


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def assemble(source_nb, release_nb, student_nb):
    """Build the notebook to grade: the source's cells, with the student's answers put in.

    source_nb: the instructor notebook (solutions and hidden tests); release_nb: the student
    release (its answer cells are the stubs used when a student deleted one); student_nb: the
    submission. Returns an :class:`Assembled`.
    """
    notes = []
    stubs = {_nbgrader(c).get("grade_id"): c for c in release_nb.cells if is_answer(c)}
    known = {_nbgrader(c).get("grade_id"): c for c in source_nb.cells
             if _nbgrader(c).get("grade_id")}

    answers, extras, anchor, seen = {}, {None: []}, None, set()
    for cell in student_nb.cells:
        gid = _nbgrader(cell).get("grade_id")
        if gid in known:
            if gid in seen:
                if gid in stubs:
                    notes.append(f"cell {gid} appears more than once: the first copy was graded")
                continue
            seen.add(gid)
            anchor = gid
            extras.setdefault(gid, [])
            if gid in stubs and cell.get("cell_type") == known[gid].cell_type:
                answers[gid] = _source(cell)
        elif cell.get("cell_type") == "code":
            # a cell the student added (any nbgrader metadata on it is ignored)
            extras.setdefault(anchor, []).append(_source(cell))

    missing = [gid for gid in stubs if gid not in answers]
    for gid in missing:
        notes.append(f"answer cell {gid} is missing: graded as unanswered")

    out = copy.deepcopy(source_nb)
    cells = []

    def add_extras(key):
        for src in extras.get(key, []):
            cells.append(nbformat.v4.new_code_cell(src))

    add_extras(None)
    for cell in out.cells:
        gid = _nbgrader(cell).get("grade_id")
        if gid in stubs:
            cell.source = answers.get(gid, _source(stubs[gid]))
        if cell.get("cell_type") == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        if gid is not None:
            add_extras(gid)
    out.cells = cells
    for i, cell in enumerate(out.cells):  # unique, valid ids whatever the student did
        cell["id"] = f"cell-{i}"
    return Assembled(out, notes)
