"""The visible tests of the assignments: your answer on the cases you can see, in the book's terms.

An assignment folder holds ``<assignment>.visible.json``, written when the instructor releases
it: for each task, the inputs of its visible cases, the right answer on them and what each
typical mistake returns on them, with the message that names it. :class:`VisibleTests` calls
your function on those inputs and, when the answer is wrong, says which mistake it matches.
Nothing here computes an answer: it only compares yours with numbers stored at release time.

An answer is read into a tuple of float arrays by its *kind* (:class:`Array`, :class:`Arrays`,
:class:`Layers`, :class:`Forward`, :class:`Shapes`, :class:`Values`, :class:`Step`,
:class:`Trajectory`, :class:`Gradients`); the grader's hidden checks read answers with the same
kinds. A kind's ``labels(expected, case)`` names the arrays of an answer in messages.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import codec, gradcheck, testfunctions

__all__ = ["Array", "Arrays", "Forward", "Layers", "Shapes", "Values", "VisibleTests",
           "close", "diagnose", "difference", "distance", "kind_from_plain", "unchanged",
           "Step", "Trajectory", "Gradients"]

VISIBLE_DIR = "BACKPROPBOOK_VISIBLE_DIR"  # where the grader keeps its trusted copy
_TUPLES = {1: "1-tuple", 2: "pair", 3: "triple"}


def _wrong_type(function, what, value):
    return AssertionError(f"wrong return type: {function} should return {what}, "
                          f"got {type(value).__name__}")


def _is_plain(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf"
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False


def _is_torch(value):
    """A torch tensor, here or as the sandbox sent it (a codec.Unsupported naming its type)."""
    kind = value.type_name if isinstance(value, codec.Unsupported) else type(value).__module__
    return str(kind).startswith("torch")


def _array(value, label, shape, function, hint=""):
    """``value`` as a float64 array of ``shape``, or an AssertionError that says what is wrong."""
    if _is_torch(value):
        raise AssertionError(f"wrong return type: {label} (from {function}) is a torch tensor: "
                             "return a NumPy array, tensor.detach().numpy()")
    if not _is_plain(value):
        raise AssertionError(f"wrong return type: {label} (from {function}) should be a NumPy "
                             f"array of floats of shape {tuple(shape)}, got {type(value).__name__}")
    try:
        array = np.asarray(value, dtype=float)
    except ValueError:
        raise AssertionError(f"wrong return type: {label} is a ragged nested list") from None
    if array.shape != tuple(shape):
        transposed = array.ndim == 2 and array.shape == tuple(shape)[::-1]
        raise AssertionError(f"wrong shape: {label} should have shape {tuple(shape)}, "
                             f"got {array.shape}{', its transpose' if transposed else ''}{hint}")
    return array


def _sequence(value, n, function, what):
    if not isinstance(value, (tuple, list)) or len(value) != n:
        got = type(value).__name__
        if isinstance(value, (tuple, list)):
            got = f"a {got} of length {len(value)}"
        raise AssertionError(f"wrong return type: {function} should return {what}, got {got}")
    return value


@dataclass(frozen=True)
class Array:
    """One array, shaped like the right answer."""

    name: str
    hint: str = ""

    def labels(self, expected, case=None):
        return [self.name]

    def read(self, value, case, expected, function):
        return (_array(value, self.name, expected[0].shape, function, self.hint),)


@dataclass(frozen=True)
class Arrays:
    """A tuple of arrays, e.g. ``(dw, db, delta)``; ``hints`` explain each one's shape."""

    names: tuple
    hints: tuple = ()

    def labels(self, expected, case=None):
        return list(self.names)

    def read(self, value, case, expected, function):
        n = len(self.names)
        kind = _TUPLES.get(n, f"tuple of {n}")
        _sequence(value, n, function, f"a {kind} ({', '.join(self.names)})")
        hints = dict(zip(self.names, self.hints))
        return tuple(_array(v, name, e.shape, function, hints.get(name, ""))
                     for v, name, e in zip(value, self.names, expected))


@dataclass(frozen=True)
class Layers:
    """A list with one tuple per layer, layer 1 first, e.g. ``[(dW, db), ...]``."""

    names: tuple

    def labels(self, expected, case=None):
        k = len(self.names)
        return [f"{self.names[i % k]}[{i // k + 1}]" for i in range(len(expected))]

    def read(self, value, case, expected, function):
        k = len(self.names)
        L = len(expected) // k
        what = f"a list of {L} tuples ({', '.join(self.names)}), one per layer, layer 1 first"
        _sequence(value, L, function, what)
        out = []
        for l, layer in enumerate(value, 1):
            _sequence(layer, k, function, what)
            for name, v in zip(self.names, layer):
                out.append(_array(v, f"{name}[{l}]", expected[len(out)].shape, function,
                                  f" ({name}[{l}] has the shape of the variable it is "
                                  "taken with respect to)"))
        return tuple(out)


@dataclass(frozen=True)
class Forward:
    """``(z, a)``: a list of L pre-activations and a list of L + 1 activations, a[0] = x."""

    def labels(self, expected, case=None):
        L = (len(expected) - 1) // 2
        return [f"z[{l}]" for l in range(1, L + 1)] + [f"a[{l}]" for l in range(L + 1)]

    def read(self, value, case, expected, function):
        L = (len(expected) - 1) // 2
        _sequence(value, 2, function, "a pair (z, a) of lists")
        z, a = value
        _sequence(z, L, function, f"z as a list of {L} arrays, z[l - 1] = the book's z[l]")
        _sequence(a, L + 1, function, f"a as a list of {L + 1} arrays, a[0] = x")
        labels = self.labels(expected)
        return tuple(_array(v, label, e.shape, function)
                     for v, label, e in zip([*z, *a], labels, expected))


@dataclass(frozen=True)
class Shapes:
    """A dict of shapes (tuples of ints) under the given keys."""

    keys: tuple

    def labels(self, expected, case=None):
        return [f"shape of {k}" for k in self.keys]

    def read(self, value, case, expected, function):
        if not isinstance(value, dict):
            raise _wrong_type(function, f"a dict with the keys {', '.join(self.keys)}", value)
        missing = [k for k in self.keys if k not in value]
        if missing:
            raise AssertionError(f"{function}: the dict has no key {', '.join(missing)}")
        out = []
        for key, e in zip(self.keys, expected):
            shape = value[key]
            if not isinstance(shape, (tuple, list)) or not all(
                    isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape):
                raise AssertionError(f"{function}: the shape of {key} should be a tuple of ints "
                                     f"such as (2, 3), got {shape!r}")
            if len(shape) != e.size:
                raise AssertionError(f"{function}: the shape of {key} should have {e.size} "
                                     f"entries, got {tuple(shape)}")
            out.append(np.asarray(shape, dtype=float))
        return tuple(out)


@dataclass(frozen=True)
class Values:
    """A SymPy expression or matrix, read as its values at the case's exact points.

    The case holds ``_points``: a list of ``{symbol name: "p/q"}``. Each point's coordinates are
    put in as 40-digit floats (exact rationals make SymPy build huge exact terms: seconds for a
    deep chain), the value is computed with 30 significant digits and rounded to float64.
    """

    name: str
    matrix: bool = False

    def labels(self, expected, case=None):
        return [self.name]

    def read(self, value, case, expected, function):
        import sympy as sp

        if self.matrix:
            if not isinstance(value, sp.MatrixBase):
                raise _wrong_type(function, "a SymPy Matrix", value)
            if value.shape != expected[0].shape[1:]:
                raise AssertionError(f"wrong shape: {self.name} should have shape "
                                     f"{expected[0].shape[1:]}, got {value.shape}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            raise AssertionError(f"wrong return type: {function} should return a SymPy "
                                 f"expression, got the number {value!r} (substitute nothing)")
        elif not isinstance(value, sp.Expr):
            raise _wrong_type(function, "a SymPy expression", value)
        points = case["_points"]
        names = set(points[0])
        extra = sorted(str(s) for s in value.free_symbols if s.name not in names)
        if extra:
            raise AssertionError(f"{self.name} depends on {', '.join(extra)}, which the "
                                 f"problem does not have (its symbols: {', '.join(sorted(names))})")
        by_name = {s.name: s for s in value.free_symbols}
        foreign = [s for s in value.free_symbols if not s.is_real]
        if foreign:
            raise AssertionError(f"{self.name} uses symbols named "
                                 f"{', '.join(sorted(map(str, foreign)))} that are not the "
                                 "problem's (which are real=True): use the symbols you are given")
        value = value.doit()  # an unevaluated Derivative would survive xreplace
        values = []
        for point in points:
            subs = {by_name[k]: sp.Float(sp.Rational(v), 40) for k, v in point.items()
                    if k in by_name}
            try:
                v = value.xreplace(subs).evalf(30)
                values.append(np.array(v.tolist() if self.matrix else v, dtype=complex))
            except (TypeError, ValueError) as exc:
                raise AssertionError(f"{self.name} cannot be evaluated at numbers "
                                     f"({type(exc).__name__}: {exc})") from None
        values = np.array(values)
        if np.any(np.abs(values.imag) > 1e-12 * np.maximum(1.0, np.abs(values.real))):
            raise AssertionError(f"{self.name} is not real at real points")
        return (values.real,)


@dataclass(frozen=True)
class Step:
    """An optimizer step's ``(new_params, new_state)``, read as ``(*new_params, *new_state)``.

    ``new_params`` is a list of arrays, one per parameter. ``new_state`` is a list of arrays
    shaped like the parameters, named ``state`` (``keys == ()``: the velocities), or a dict with
    the ``keys``: ``"t"`` an int (the steps taken), every other key a list of arrays shaped like
    the parameters, in the order of ``keys``.
    """

    state: str = "new_state"
    keys: tuple = ()

    def _count(self, expected):
        lists = len(self.keys) - ("t" in self.keys) if self.keys else 1
        return (len(expected) - ("t" in self.keys)) // (1 + lists)

    def labels(self, expected, case=None):
        n = self._count(expected)
        out = [f"new_params[{i}]" for i in range(n)]
        if not self.keys:
            return out + [f"{self.state}[{i}]" for i in range(n)]
        for key in self.keys:
            out += [f'{self.state}["t"]'] if key == "t" else [
                f'{self.state}["{key}"][{i}]' for i in range(n)]
        return out

    def read(self, value, case, expected, function):
        n, labels = self._count(expected), self.labels(expected)
        _sequence(value, 2, function, f"a pair (new_params, {self.state})")
        new_params, state = value
        _sequence(new_params, n, function, f"new_params as a list of {n} arrays, one per "
                  "parameter")
        lists = [new_params]
        if not self.keys:
            lists.append(_sequence(state, n, function, f"{self.state} as a list of {n} arrays, "
                                   "one per parameter"))
        else:
            if not isinstance(state, dict):
                raise _wrong_type(function, f"{self.state} as a dict with the keys "
                                  f"{', '.join(self.keys)}", state)
            missing = [k for k in self.keys if k not in state]
            if missing:
                raise AssertionError(f"{function}: {self.state} has no key "
                                     f"{', '.join(map(repr, missing))}")
            for key in self.keys:
                if key == "t":
                    t = state["t"]
                    if not isinstance(t, (int, np.integer)) or isinstance(t, bool):
                        raise AssertionError(f'{function}: {self.state}["t"] should be an int, '
                                             f"the number of steps taken, got {t!r}")
                    lists.append([float(t)])
                else:
                    lists.append(_sequence(state[key], n, function, f'{self.state}["{key}"] as '
                                           f"a list of {n} arrays, one per parameter"))
        flat = [v for values in lists for v in values]
        return tuple(_array(v, label, e.shape, function)
                     for v, label, e in zip(flat, labels, expected))


@dataclass(frozen=True)
class Trajectory:
    """A training run's ``(losses, params)``: the loss of every step (a list of floats) and the
    parameters after training, a list of arrays named ``names`` (``model.parameters()`` order).
    """

    names: tuple

    def labels(self, expected, case=None):
        return ["losses", *self.names]

    def read(self, value, case, expected, function):
        _sequence(value, 2, function, "a pair (losses, params)")
        losses, params = value
        if isinstance(losses, np.ndarray) and losses.ndim == 1:
            losses = list(losses)
        steps = expected[0].shape[0]
        _sequence(losses, steps, function, f"losses as a list of {steps} floats, one per step")
        if not all(_is_plain(loss) and np.ndim(loss) == 0 for loss in losses):
            found = sorted({type(loss).__name__ if not isinstance(loss, codec.Unsupported)
                            else loss.type_name for loss in losses if not _is_plain(loss)})
            raise AssertionError(f"wrong return type: losses (from {function}) should be "
                                 f"floats, one per step (loss.item()), got {', '.join(found)}")
        n = len(self.names)
        _sequence(params, n, function, f"params as a list of {n} arrays in the order of "
                  f"model.parameters(): {', '.join(self.names)}")
        order = (" (params come in the order of model.parameters(), the order the layers are "
                 f"made in: {', '.join(self.names)})")
        return (_array(list(losses), "losses", expected[0].shape, function), *(
            _array(v, name, e.shape, function, order)
            for v, name, e in zip(params, self.names, expected[1:])))


@dataclass(frozen=True)
class Gradients:
    """A dict ``{node name: gradient}`` with an entry for each name in the case's ``_names``,
    each gradient of its node's shape (entries for other names are not read)."""

    function: str = "backward"

    def labels(self, expected, case=None):
        if not case:
            return [f"gradient {k}" for k in range(len(expected))]
        return [f"the gradient of {name!r}" for name in case["_names"]]

    def read(self, value, case, expected, function):
        names = case["_names"]
        if not isinstance(value, dict):
            raise _wrong_type(function, "a dict {node name: gradient}", value)
        missing = [name for name in names if name not in value]
        if missing:
            raise AssertionError(
                f"{function}: the dict has no entry for {', '.join(map(repr, missing))}: return "
                "one gradient for every node the output depends on, the output itself, the "
                "intermediate nodes and the leaves")
        return tuple(_array(value[name], f"the gradient of {name!r}", e.shape, function,
                            " (a node's gradient has the shape of its value)")
                     for name, e in zip(names, expected))


KINDS = {cls.__name__: cls for cls in (Array, Arrays, Layers, Forward, Shapes, Values,
                                      Step, Trajectory, Gradients)}


def kind_to_plain(kind):
    return {"kind": type(kind).__name__, **{k: list(v) if isinstance(v, tuple) else v
                                            for k, v in asdict(kind).items()}}


def kind_from_plain(data):
    data = dict(data)
    cls = KINDS[data.pop("kind")]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# --------------------------------------------------------------------------------------------
# Comparing answers (tuples of float arrays)
# --------------------------------------------------------------------------------------------


def close(actual, expected, rtol, atol):
    """True if every array of ``actual`` has the shape of and is close to ``expected``'s."""
    return len(actual) == len(expected) and all(
        np.shape(a) == np.shape(e) and bool(np.all(np.isclose(a, e, rtol=rtol, atol=atol)))
        for a, e in zip(actual, expected))


def distance(xs, ys):
    """The largest entrywise distance between two answers (inf if their shapes differ)."""
    worst = 0.0
    if len(xs) != len(ys):
        return math.inf
    for x, y in zip(xs, ys):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.shape != y.shape:
            return math.inf
        with np.errstate(all="ignore"):  # inf - inf in a wrong answer is not our warning
            d = float(np.max(np.where(x == y, 0.0, np.abs(x - y)), initial=0.0))  # inf == inf
        if math.isnan(d):
            return math.inf
        worst = max(worst, d)
    return worst


FLOAT32_ROUND_OFF = 1e-4  # how far two float32 computations of one answer may drift apart


def _float32_valued(answer):
    """True if every entry of ``answer`` (a tuple of arrays) is a finite float32 number, as
    what a float32 computation returns, converted to float64, is."""
    with np.errstate(all="ignore"):
        return all(np.all(np.isfinite(a)) and np.array_equal(
            a, np.asarray(a, dtype=np.float32).astype(float)) for a in map(np.asarray, answer))


def diagnose(actual, expected, mistakes, rtol, atol, closeness=1e-2):
    """The message of the first mistake that ``actual`` matches, or None.

    ``mistakes`` is a list of ``(message, answer)``. A mistake whose answer passes the
    tolerance cannot be told apart from the right answer and is skipped; ``actual`` matches a
    mistake when it is far closer to it than the mistake is to the right answer (never when it
    is infinitely far from it, even from a mistake that is infinitely far from the right answer).

    A mistake computed in float32 (every entry of its answer a float32 number) is also matched
    by a float32 answer within float32 round-off of it (FLOAT32_ROUND_OFF, relative): float32
    rounds differently on different machines, by about as much as float32 differs from the
    right float64 answer, so that closeness alone cannot tell a float32 answer there.
    """
    float32 = _float32_valued(actual)
    for message, wrong in mistakes:
        if close(wrong, expected, rtol, atol):
            continue
        near = distance(actual, wrong)
        if math.isfinite(near) and near <= closeness * distance(wrong, expected):
            return message
        if float32 and _float32_valued(wrong) and close(actual, wrong, FLOAT32_ROUND_OFF, 0.0):
            return message
    return None


def difference(labels, actual, expected, rtol, atol, oracle):
    """The gradcheck message for the first entry that differs (shapes already agree)."""
    for label, a, e in zip(labels, actual, expected):
        try:
            gradcheck.check_gradient(a, e, name=label, rtol=rtol, atol=atol, oracle=oracle)
        except AssertionError as exc:
            return str(exc)
    return f"the answer matches the {oracle}"


def unchanged(before, after):
    """True if ``after`` equals ``before`` exactly (arrays, lists, tuples, dicts, scalars)."""
    if isinstance(before, np.ndarray):
        return isinstance(after, np.ndarray) and before.shape == after.shape and bool(
            np.array_equal(before, after, equal_nan=True))
    if isinstance(before, (list, tuple)):
        return type(before) is type(after) and len(before) == len(after) and all(
            unchanged(b, a) for b, a in zip(before, after))
    if isinstance(before, dict):
        return isinstance(after, dict) and before.keys() == after.keys() and all(
            unchanged(before[k], after[k]) for k in before)
    if isinstance(after, np.ndarray):
        return False
    return before is after or bool(before == after)


# --------------------------------------------------------------------------------------------
# The visible tests
# --------------------------------------------------------------------------------------------


class VisibleTests:
    """The visible cases of one assignment, read from ``<assignment>.visible.json``."""

    def __init__(self, tasks):
        self.tasks = tasks

    @classmethod
    def load(cls, assignment, folder=None):
        """Read the file from ``folder``, the grader's copy, or the notebook's own folder."""
        folder = Path(folder or os.environ.get(VISIBLE_DIR) or ".")
        path = folder / f"{assignment}.visible.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: it comes with the assignment; put it back next to the "
                "notebook (download the assignment folder again)")
        data = codec.decode(path.read_text(), functions=testfunctions.FUNCTIONS)
        return cls(data["tasks"])

    def check(self, name, fn):
        """Run ``fn`` (your function ``name``) on the visible cases; AssertionError if wrong."""
        spec = self.tasks[name]
        kind = kind_from_plain(spec["kind"])
        name = spec.get("function", name)  # a task key that is not the function's name
        for case in spec["cases"]:
            args = copy.deepcopy(list(case["args"]))
            try:
                value = fn(*args)
            except NotImplementedError:
                raise AssertionError(f"{name} is not written yet: replace "
                                     "`raise NotImplementedError()` with your code") from None
            expected = tuple(np.asarray(e, dtype=float) for e in case["expected"])
            answer = kind.read(value, case["extras"], expected, name)
            for param, before, after in zip(spec["params"], case["args"], args):
                if param in spec["unchanged"] and not unchanged(before, after):
                    raise AssertionError(f"{name} changed its argument {param}: "
                                         "do not change the inputs")
            if not close(answer, expected, spec["rtol"], spec["atol"]):
                mistakes = [(m, tuple(np.asarray(x, dtype=float) for x in wrong))
                            for m, wrong in case["mistakes"]]
                message = diagnose(answer, expected, mistakes, spec["rtol"], spec["atol"]) or \
                    difference(kind.labels(expected, case["extras"]), answer, expected,
                               spec["rtol"], spec["atol"], "right answer")
                raise AssertionError(f"{case['description']}: {message}")
