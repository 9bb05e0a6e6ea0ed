"""Helpers shared by the assignments' hidden-test modules (scalar, vector, matrix).

Calling a student's function so that its exceptions and numerical warnings become failed
checks, comparing plain data, and the messages that go with it.
"""

import contextlib
import math
import warnings

import numpy as np

from backpropbook import gradcheck

def call(fn, name, *args, **kwargs):
    """Call the student's ``fn``; numerical warnings and exceptions become an AssertionError.

    Only a RuntimeWarning (overflow, division by zero, invalid value) fails a check: any other
    warning a correct answer happens to raise costs nothing.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)
        with np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
            try:
                return fn(*args, **kwargs)
            except AssertionError:
                raise
            except (RuntimeWarning, FloatingPointError, OverflowError) as exc:
                raise AssertionError(
                    f"{name}: numerical warning or error ({type(exc).__name__}: {exc})"
                ) from exc
            except Exception as exc:  # the student's bug, reported as a failed check
                raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}") from exc


def is_plain(value):
    """True for the plain data a check is willing to look at: numbers, arrays, lists of them."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf"
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    return False


def loose_array(value):
    """The student's value as a float array if it is plain data, else None (no error)."""
    if not is_plain(value):
        return None
    try:
        return np.asarray(value, dtype=float)
    except ValueError:
        return None


def close(actual, expected, rtol, atol):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    return actual.shape == expected.shape and bool(
        np.all(np.isclose(actual, expected, rtol=rtol, atol=atol))
    )


def first_difference(name, actual, expected, oracle, rtol, atol):
    """The gradcheck message for the first entry that differs (shapes already agree)."""
    try:
        gradcheck.check_gradient(actual, expected, name=name, rtol=rtol, atol=atol, oracle=oracle)
    except AssertionError as exc:
        return str(exc)
    return f"{name} matches {oracle}"


def distance(xs, ys):
    """The largest entrywise distance between two tuples of arrays (inf if shapes differ)."""
    worst = 0.0
    for x, y in zip(xs, ys):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.shape != y.shape:
            return math.inf
        with np.errstate(all="ignore"):  # inf - inf in a wrong answer is not our warning
            d = float(np.max(np.abs(x - y), initial=0.0))
        worst = d if math.isnan(d) else max(worst, d)
        if math.isnan(worst):
            return math.inf
    return worst


HARD_CODED = (
    "{name} returns the answer of the visible test for a different input: the answer looks "
    "hard-coded; compute it from the arguments"
)


REFERENCE_MESSAGE = ("you called the package's reference implementation {name}; this task asks "
                     "you to write the computation yourself")
_RAISER = "def _withheld(*args, **kwargs):\n    raise AssertionError({message!r})\n"


@contextlib.contextmanager
def blocked(pairs):
    """Make each function of ``pairs`` (function, message) raise AssertionError(message) while
    the block runs, so that an answer which calls the reference code fails with that message.

    The function objects themselves are changed (their ``__code__``), so a student's
    ``from backpropbook.scalar import chain_forward`` is caught as well as an attribute lookup.
    The replacement is compiled from a constant template: a closure could not take the place
    of a function without free variables.
    """
    saved = []
    try:
        for fn, message in pairs:
            namespace = {}
            exec(_RAISER.format(message=message), namespace)  # a constant template
            saved.append((fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__))
            fn.__code__, fn.__defaults__, fn.__kwdefaults__ = (
                namespace["_withheld"].__code__, None, None)
        yield
    finally:
        for fn, code, defaults, kwdefaults in reversed(saved):
            fn.__code__, fn.__defaults__, fn.__kwdefaults__ = code, defaults, kwdefaults


def reference_message(fn):
    """The message for a blocked function of our package."""
    return REFERENCE_MESSAGE.format(name=f"{fn.__module__}.{fn.__qualname__}")
