"""The assignments' task declarations, one module each; the hidden test cells call :func:`check`.

A hidden block of a test cell reads::

    from backpropgrader.tasks import check
    check("scalar", "log_sigmoid", log_sigmoid, GRADING_SEED)
"""

import importlib

from backpropgrader import engine

NAMES = ("scalar", "vector", "matrix", "training", "autodiff")


def assignment(name):
    """The :class:`~backpropgrader.engine.Assignment` declared in ``tasks/<name>.py``."""
    if name not in NAMES:
        raise KeyError(f"no assignment {name!r}: the assignments are {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").ASSIGNMENT


def withheld(name):
    """The modules the sandbox withholds for assignment ``name`` (none if it declares no task)."""
    return assignment(name).withheld if name in NAMES else []


def withheld_by_test(name):
    """{test cell grade_id: the modules withheld while it runs} for assignment ``name`` ({} if
    it declares no task): the grader runs each distinct set in a sandbox of its own."""
    if name not in NAMES:
        return {}
    return {t.grade_id: tuple(sorted(t.withheld)) for t in assignment(name).tasks}


def check(assignment_name, task_name, fn, seed=0):
    """The hidden test of one task: None, or an AssertionError naming the mistake."""
    engine.check(assignment(assignment_name).task(task_name), fn, seed)
