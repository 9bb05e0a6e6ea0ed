"""Checks for the matrix-backpropagation assignment (``solutions/matrix/matrix.ipynb``).

The book's notation: a minibatch puts its N examples in columns, A[l] of shape (n_l, N);
Z[l] = W[l]·A[l−1] + b[l]·1ᵀ with W[l] of shape (n_l, n_{l−1}) and b[l] of shape (n_l, 1). For
one layer, with m = n_{l−1} inputs and n = n_l units:

    dW = dZ·A_prevᵀ (n, m),   db = dZ·1 (n, 1),   dA_prev = Wᵀ·dZ (m, N),   dZ = dA ⊙ g′(Z),

softmax with the mean cross-entropy gives dZ = (P − Y)/N, and the mean squared error
E = 1/(2N)·Σ‖a − y‖² gives dA = (A − Y)/N. ``db`` must be a column (n, 1), like b: a flat
(n,) array is refused (b − η·db would broadcast to (n, n)).

Each ``check_*`` function takes the student's function and a seed, draws random NON-SQUARE cases
(m, n and N different, N = 1 included), compares the student's answers with independent oracles
(torch.autograd in float64, computed here, in the trusted process) and raises
``AssertionError`` naming the mistake when they differ: a transposed product, an unsummed bias
gradient, a factor N, a missing g′, a wrong product order, a wrong sign, a wrong shape, an
answer hard-coded for the visible test. The ``explain_*`` functions turn one wrong answer into
that message; the notebook's visible tests use them too, with :func:`forward` and
:func:`numerical_gradients` (centered differences) as their trusted helpers.

The student's functions get plain data only (arrays, lists of arrays, strings) and only plain
data they return is inspected, so the sandboxed grader can run them out of process. While a
student's function runs, the package's own implementations (``backpropbook.layers``,
``backpropbook.mlp``, ...) and torch's autograd are replaced by functions that raise.

A seed is anything ``numpy.random.default_rng`` accepts, e.g. the notebook's
``(GRADING_SEED, 2201)``.
"""

import math
import sys

import numpy as np

from backpropbook import conventions, gradcheck, layers, mlp
from backpropbook.activations import ACTIVATIONS
from backpropgrader.legacy.common import (HARD_CODED, blocked, call, close, distance,
                                         first_difference, loose_array, reference_message)

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "LOSSES",
    "MSE_OUTPUTS",
    "SHAPE_KEYS",
    "VISIBLE",
    "check_activation_backward",
    "check_gradient_shapes",
    "check_linear_backward",
    "check_mlp_backward",
    "check_softmax_cross_entropy_backward",
    "explain_activation_backward",
    "explain_gradient_shapes",
    "explain_linear_backward",
    "explain_mlp_backward",
    "explain_softmax_cross_entropy_backward",
    "forward",
    "numerical_gradients",
    "softmax",
    "unpack",
    "unpack_grads",
]

RTOL, ATOL = 1e-7, 1e-10
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")
MSE_OUTPUTS = ("sigmoid", "tanh", "identity")
SHAPE_KEYS = ("W", "b", "A_prev", "Z", "dZ", "dW", "db", "dA_prev")
LOSSES = ("mse", "cross_entropy")

# The inputs of the notebook's visible tests: the hidden checks recognise an answer that was
# hard-coded for them.
VISIBLE = {
    "shapes": (3, 2, 4),  # (n_prev, n, N)
    "linear": {
        "dZ": np.array([[0.1, -0.2, 0.3, 0.0], [0.5, 0.1, -0.4, 0.2]]),
        "A_prev": np.array([[1.0, 2.0, 0.5, -1.0], [0.0, -1.0, 1.5, 2.0], [0.3, 0.2, -0.1, 0.4]]),
        "W": np.array([[0.2, -0.5, 1.0], [0.7, 0.3, -0.2]]),
    },
    "activation": {
        "dA": np.array([[0.5, -1.0, 0.25], [2.0, 0.1, -0.3]]),
        "Z": np.array([[0.0, 1.0, -2.0], [0.5, -0.5, 3.0]]),
        "activation": "tanh",
    },
    "softmax_ce": {
        "Z": np.array([[1.0, -0.5, 0.0, 2.0], [0.2, 0.3, -1.0, 0.0], [-1.0, 1.5, 0.5, 1.0]]),
        "Y": np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]]),
    },
    # The mlp cases are built in the test cells from these seeds: see _visible_mlp.
    "mlp": {
        "mse": {"seed": 2024, "sizes": [3, 4, 2], "N": 5, "activations": ["tanh", "sigmoid"]},
        "cross_entropy": {"seed": 2025, "sizes": [2, 5, 3], "N": 4,
                          "activations": ["relu", "softmax"]},
    },
}

# --------------------------------------------------------------------------------------------
# Calling the student's code
# --------------------------------------------------------------------------------------------

def _reference_functions():
    """The functions a student's answer may not call: the package's and torch's autograd."""
    fns = [layers.linear_forward, layers.linear_backward, layers.activation_forward,
           layers.activation_backward, layers.softmax, layers.mse_loss, layers.mse_backward,
           layers.cross_entropy_loss, layers.softmax_cross_entropy_backward,
           mlp.init_params, mlp.mlp_forward, mlp.mlp_loss, mlp.mlp_backward,
           conventions.linear_backward_slides, conventions.linear_backward_rows,
           gradcheck.centered_difference, gradcheck.gradient_check,
           forward, numerical_gradients, _mlp_backward]
    oracles = sys.modules.get("backpropbook.oracles")
    if oracles is not None:
        fns += [oracles.mlp_gradients_torch, oracles.chain_gradient_torch]
    torch = sys.modules.get("torch")  # imported by the oracles before any student call
    if torch is not None:
        fns += [torch.autograd.backward, torch.autograd.grad]
    return fns


def _blocked():
    """The reference functions raise while the block runs (see common.blocked)."""
    return blocked((fn, _block_message(fn)) for fn in _reference_functions())


def _block_message(fn):
    name = f"{fn.__module__}.{fn.__qualname__}"
    if name.startswith("torch"):
        return (f"you called {name}: torch's autograd would do the differentiating for you; "
                "this task asks you to write the backward pass yourself, in NumPy")
    return reference_message(fn)


_SHAPE_ERRORS = ("mismatch", "broadcast", "aligned", "shape")


def _student(fn, name, sizes, *args):
    """Call the student's ``fn`` with the reference functions blocked; a shape error gets a hint."""
    with _blocked():
        try:
            return call(fn, name, *args)
        except AssertionError as exc:
            text = str(exc).rstrip()
            if text.startswith(f"{name} raised") and any(s in text for s in _SHAPE_ERRORS):
                raise AssertionError(
                    f"{text}. The shapes do not fit ({sizes}): on non-square layers only the "
                    "right product fits, e.g. dW = dZ·A_prevᵀ (n, N)·(N, m) and dA_prev = "
                    "Wᵀ·dZ (m, n)·(n, N); see your gradient_shapes"
                ) from None
            raise


def _sizes_text(m=None, n=None, N=None):
    parts = [f"{k} = {v}" for k, v in (("n_prev", m), ("n", n), ("N", N)) if v is not None]
    return ", ".join(parts)


def _as_float(value):
    """A student's plain value as a float array, or None (no error)."""
    return loose_array(value)


_TUPLES = {2: "pair", 3: "triple"}


def unpack(result, function, names):
    """Check that ``result`` is a tuple of NumPy float arrays, one per name; return them.

    Shapes are not checked here: the explain_* functions name a wrong shape.
    """
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        what = type(result).__name__
        if isinstance(result, (tuple, list)):
            what = f"a {what} of length {len(result)}"
        kind = _TUPLES.get(len(names), f"tuple of {len(names)}")
        raise AssertionError(f"wrong return type: {function} must return a {kind} "
                             f"({', '.join(names)}), got {what}")
    arrays = []
    for value, name in zip(result, names):
        array = _as_float(value)
        if array is None:
            raise AssertionError(f"wrong return type: {name} should be a NumPy array of floats, "
                                 f"got {type(value).__name__}")
        arrays.append(array)
    return tuple(arrays)


def _array(value, function):
    array = _as_float(value)
    if array is None:
        raise AssertionError(f"wrong return type: {function} should return a NumPy array of "
                             f"floats, got {type(value).__name__}")
    return array


def unpack_grads(result, params):
    """Check that ``result`` is a list of L pairs (dW, db) of float arrays; return them.

    ``params`` is the list of (W, b) the gradients belong to (only its length is used here).
    """
    L = len(params)
    if not isinstance(result, (tuple, list)):
        raise AssertionError(f"wrong return type: mlp_backward must return a list of L = {L} "
                             f"pairs (dW, db), layer 1 first; got {type(result).__name__}")
    if len(result) != L:
        raise AssertionError(f"wrong return type: mlp_backward must return a list of L = {L} "
                             f"pairs (dW, db), one per layer, layer 1 first; got {len(result)}")
    grads = []
    for l, pair in enumerate(result, start=1):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise AssertionError(f"wrong return type: entry {l - 1} of mlp_backward's list "
                                 f"(layer {l}) should be a pair (dW, db), got "
                                 f"{type(pair).__name__}")
        grads.append(unpack(pair, f"layer {l} of mlp_backward", (f"dW[{l}]", f"db[{l}]")))
    return grads


# --------------------------------------------------------------------------------------------
# Telling a mistake from a right answer
# --------------------------------------------------------------------------------------------


def _shapes(arrays):
    return tuple(np.shape(a) for a in arrays)


def _all_close(xs, ys, rtol=RTOL, atol=ATOL):
    return len(xs) == len(ys) and all(close(x, y, rtol, atol) for x, y in zip(xs, ys))


def _matches(actual, variant, reference):
    """True if the tuple ``actual`` is the mistake ``variant`` (not the right ``reference``).

    A variant that cannot be told from the reference never matches. A variant of other shapes
    than the reference matches when ``actual`` is close to it; one of the same shapes when
    ``actual`` is far closer to it than it is to the reference.
    """
    if _all_close(variant, reference):
        return False
    if _shapes(actual) != _shapes(variant):
        return False
    if _shapes(variant) != _shapes(reference):
        return _all_close(actual, variant, 1e-6, 1e-9)
    return distance(actual, variant) <= 1e-2 * distance(variant, reference)


def _which(actual, reference, variants):
    """The message of the first variant ``actual`` matches, or None (tuples of arrays)."""
    for message, variant in variants:
        if _matches(actual, variant, reference):
            return message
    return None


def _difference(name, actual, expected, oracle, shape_hint=""):
    """A wrong shape or the first entry that differs, in words."""
    if np.shape(actual) != np.shape(expected):
        return (f"wrong shape: {name} should have shape {np.shape(expected)}, got "
                f"{np.shape(actual)}{shape_hint}")
    return first_difference(name, actual, expected, oracle, RTOL, ATOL)


def _hard_coded(loose, visible_answer, case_differs):
    if not case_differs or any(a is None for a in loose):
        return False
    return len(loose) == len(visible_answer) and all(
        close(a, v, 1e-9, 1e-12) for a, v in zip(loose, visible_answer))


def _informative(sizes):
    """Sort key: failures on cases whose sizes all differ and N > 1 tell mistakes apart best."""
    distinct = len(set(sizes)) == len(sizes)
    return (not distinct, 1 in sizes, -sizes[-1])


# --------------------------------------------------------------------------------------------
# Task 1: the shapes
# --------------------------------------------------------------------------------------------


def _expected_shapes(m, n, N):
    return {"W": (n, m), "b": (n, 1), "A_prev": (m, N), "Z": (n, N), "dZ": (n, N),
            "dW": (n, m), "db": (n, 1), "dA_prev": (m, N)}


def _shape_value(value):
    """A student's shape as a tuple of ints, or None if it is not one."""
    if not isinstance(value, (tuple, list)):
        return None
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            return None
        out.append(int(v))
    return tuple(out)


def _shape_mistakes(key, m, n, N):
    """(wrong shape, message) pairs for ``key``; the first that equals the answer is reported."""
    columns = "examples are columns in the book, so the batch size N is the second dimension"
    common = {
        "W": [((m, n), f"W has shape (n_prev, n) = ({m}, {n}), the transposed convention "
                       "z = Wᵀa of some slides; the book's W[l] is (n_l, n_{l−1}): one row per "
                       "unit, one column per input, so that Z = W·A_prev fits")],
        "b": [((n,), "b is a column (n, 1) in the book, not a flat array (n,)"),
              ((n, N), "b is one column (n, 1) shared by every example, broadcast along the "
                       "batch: Z = W·A_prev + b·1ᵀ"),
              ((1, n), "b is a column (n, 1), not a row (1, n)")],
        "A_prev": [((N, m), f"A_prev has shape (N, n_prev) = ({N}, {m}): {columns}")],
        "Z": [((N, n), f"Z has shape (N, n) = ({N}, {n}): {columns}")],
        "dZ": [((N, n), f"dZ has shape (N, n): a gradient has the shape of what it "
                        f"differentiates, and Z is (n, N); {columns}")],
        "dW": [((m, n), f"dW is transposed: it has W's shape (n, n_prev) = ({n}, {m}), so that "
                        "W − η·dW is defined; dW = dZ·A_prevᵀ is (n, N)·(N, n_prev), while "
                        "A_prev·dZᵀ gives its transpose"),
               ((n, N), "dW has the shape of dZ: a gradient has the shape of what it "
                        "differentiates, dW has W's shape (n, n_prev)")],
        "db": [((n, N), "db is not summed over the batch (the error db = dZ of some lecture "
                        "notes): b has one entry per unit and every example adds its column of "
                        "dZ, db = dZ·1, of b's shape (n, 1)"),
               ((n,), "db has shape (n,), a flat array: it must have b's shape, the column "
                      "(n, 1) (b − η·db with a flat db would broadcast to (n, n))"),
               ((1, N), "db is summed over the units instead of over the examples: db = dZ·1 "
                        "sums each row of dZ, giving b's shape (n, 1)"),
               ((N,), "db is summed over the units instead of over the examples: db = dZ·1 "
                      "sums each row of dZ, giving b's shape (n, 1)")],
        "dA_prev": [((N, m), f"dA_prev has shape (N, n_prev): it has A_prev's shape "
                             f"(n_prev, N) = ({m}, {N}); {columns}"),
                    ((n, N), "dA_prev has the shape of dZ: it is the gradient for the previous "
                             "layer's activations A_prev, of shape (n_prev, N), what "
                             "Wᵀ·dZ = (n_prev, n)·(n, N) gives")],
    }
    return common.get(key, [])


def explain_gradient_shapes(n_prev, n, N, shapes):
    """Why ``shapes`` (a dict) is not the right dict of shapes ('' if it is)."""
    m = n_prev
    where = f"gradient_shapes(n_prev={m}, n={n}, N={N})"
    if not isinstance(shapes, dict):
        return (f"wrong return type: {where} must return a dict from names to shapes, got "
                f"{type(shapes).__name__}")
    missing = [k for k in SHAPE_KEYS if k not in shapes]
    if missing:
        return f"{where}: the dict has no key {missing[0]!r} (it needs {', '.join(SHAPE_KEYS)})"
    expected = _expected_shapes(m, n, N)
    for key in SHAPE_KEYS:
        got = _shape_value(shapes[key])
        if got is None:
            return (f"wrong return type: {where}[{key!r}] should be a tuple of ints such as "
                    f"{expected[key]}, got {shapes[key]!r}")
        if got == expected[key]:
            continue
        for wrong, message in _shape_mistakes(key, m, n, N):
            if got == wrong and wrong != expected[key]:
                return f"{where}: {message}"
        return (f"{where}: {key} should have shape {expected[key]}, got {got}; a gradient has "
                "the shape of what it differentiates")
    return ""


def _shape_cases(rng):
    """(n_prev, n, N): sizes that all differ, and N = 1, n = 1, n_prev = 1."""
    cases = []
    for _ in range(8):
        m, n, N = (int(v) for v in rng.choice(np.arange(1, 10), size=3, replace=False))
        cases.append((m, n, N))
    m, n, N = (int(v) for v in rng.choice(np.arange(2, 9), size=3, replace=False))
    cases += [(m, n, 1), (1, n, N), (m, 1, N)]
    return cases


def check_gradient_shapes(student_gradient_shapes, seed=0):
    """The dict of shapes for random non-square sizes, N = 1 included."""
    rng = np.random.default_rng(seed)
    visible = VISIBLE["shapes"]
    visible_answer = _expected_shapes(*visible)
    for m, n, N in _shape_cases(rng):
        result = _student(student_gradient_shapes, "gradient_shapes", _sizes_text(m, n, N),
                          m, n, N)
        if (m, n, N) != visible and isinstance(result, dict) and all(
                _shape_value(result.get(k)) == visible_answer[k] for k in SHAPE_KEYS):
            raise AssertionError(HARD_CODED.format(name="gradient_shapes"))
        message = explain_gradient_shapes(m, n, N, result)
        if message:
            raise AssertionError(message)


# --------------------------------------------------------------------------------------------
# Task 2: linear_backward
# --------------------------------------------------------------------------------------------


def _torch():
    import torch  # imported here: only the oracles need it

    return torch


def _torch_linear(dZ, A_prev, W):
    """(dW, db, dA_prev) by torch.autograd: the gradients of E = Σ dZ ⊙ (W·A_prev + b·1ᵀ)."""
    torch = _torch()
    W_t = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    A_t = torch.tensor(A_prev, dtype=torch.float64, requires_grad=True)
    b_t = torch.zeros((W.shape[0], 1), dtype=torch.float64, requires_grad=True)
    E = (torch.tensor(dZ, dtype=torch.float64) * (W_t @ A_t + b_t)).sum()
    E.backward()
    return W_t.grad.numpy().copy(), b_t.grad.numpy().copy(), A_t.grad.numpy().copy()


def _linear(dZ, A_prev, W):
    return dZ @ A_prev.T, dZ.sum(axis=1, keepdims=True), W.T @ dZ


_LINEAR_HINTS = {
    "dW": " (dW has W's shape (n, n_prev))",
    "db": " (db has b's shape, the column (n, 1))",
    "dA_prev": " (dA_prev has A_prev's shape (n_prev, N))",
}


def _linear_variants(dZ, A_prev, W):
    """{component: [(message, (wrong value,)), ...]}: the typical mistakes, one component each."""
    m, N = A_prev.shape
    n = dZ.shape[0]
    dW, db, dA = _linear(dZ, A_prev, W)
    sign = "wrong sign: the gradients of Z = W·A_prev + b·1ᵀ carry the sign of dZ"
    return {
        "dW": [
            (f"dW is transposed: dW = dZ·A_prevᵀ has W's shape (n, n_prev) = ({n}, {m}); "
             "you computed A_prev·dZᵀ = (dZ·A_prevᵀ)ᵀ", (A_prev @ dZ.T,)),
            (f"dW is off by a factor 1/N = 1/{N}: dZ already carries the 1/N of the mean loss, "
             "so dW = dZ·A_prevᵀ, the plain sum over the examples of dz·a_prevᵀ",
             (dW / N,)),
            (sign, (-dW,)),
        ],
        "db": [
            (f"db is not summed over the batch: db = dZ has shape (n, N) = ({n}, {N}), one "
             "column per example (the error of some lecture notes), but b is one column "
             "(n, 1) used by every example, so its gradient adds them up: db = dZ·1 = "
             "dZ.sum(axis=1, keepdims=True)", (dZ,)),
            (f"db has shape (n,) = ({n},), a flat array: it must have b's shape, the column "
             "(n, 1), or b − η·db broadcasts to (n, n); use dZ.sum(axis=1, keepdims=True)",
             (db.ravel(),)),
            (f"db is off by a factor 1/N = 1/{N}: it is the mean over the batch, but dZ already "
             "carries the 1/N of the mean loss, so db = dZ·1 is a plain sum",
             (db / N,)),
            ("db is summed over the units (axis=0) instead of over the examples: examples are "
             "columns, so db = dZ·1 sums along axis=1, giving the column (n, 1)",
             (dZ.sum(axis=0, keepdims=True),)),
            ("db is summed over the units (axis=0) instead of over the examples: examples are "
             "columns, so db = dZ·1 sums along axis=1, giving the column (n, 1)",
             (dZ.sum(axis=0),)),
            ("db is the sum of every entry of dZ: sum over the examples only, one entry per "
             "unit, db = dZ.sum(axis=1, keepdims=True)", (np.sum(dZ),)),
            (sign, (-db,)),
        ],
        "dA_prev": [
            (f"wrong product order: dA_prev = Wᵀ·dZ has A_prev's shape (n_prev, N) = ({m}, {N}); "
             "you computed dZᵀ·W = (Wᵀ·dZ)ᵀ, with the examples in rows", (dZ.T @ W,)),
            (f"dA_prev is off by a factor 1/N = 1/{N}: dZ already carries the 1/N of the mean "
             "loss, dA_prev = Wᵀ·dZ", (dA / N,)),
            (sign, (-dA,)),
        ],
    }


def explain_linear_backward(dZ, A_prev, W, dW, db, dA_prev, reference=None):
    """Why ``(dW, db, dA_prev)`` are not the gradients of Z = W·A_prev + b·1ᵀ ('' if they are)."""
    dZ, A_prev, W = (np.asarray(v, dtype=float) for v in (dZ, A_prev, W))
    oracle = "torch.autograd" if reference is not None else "dZ·A_prevᵀ, dZ·1, Wᵀ·dZ"
    ref = reference if reference is not None else _linear(dZ, A_prev, W)
    answer = tuple(np.asarray(v, dtype=float) for v in (dW, db, dA_prev))
    where = (f"linear_backward with dZ of shape {dZ.shape}, A_prev {A_prev.shape}, W {W.shape} "
             f"({_sizes_text(A_prev.shape[0], dZ.shape[0], dZ.shape[1])}): ")
    if _all_close(answer, ref):
        return ""
    for perm in ((2, 1, 0), (1, 0, 2), (0, 2, 1), (1, 2, 0), (2, 0, 1)):
        if _all_close(answer, tuple(ref[i] for i in perm)) and not _all_close(answer, ref):
            return where + ("the results are in the wrong order: linear_backward returns "
                            "(dW, db, dA_prev)")
    variants = _linear_variants(dZ, A_prev, W)
    for name, mine, theirs in zip(("dW", "db", "dA_prev"), answer, ref):
        if close(mine, theirs, RTOL, ATOL):
            continue
        mistake = _which((mine,), (theirs,), variants[name])
        return where + (mistake or _difference(name, mine, theirs, oracle, _LINEAR_HINTS[name]))
    return ""


def check_linear_backward(student_linear_backward, seed=0):
    """(dW, db, dA_prev) for random non-square layers and batches, against torch.autograd."""
    rng = np.random.default_rng(seed)
    v = VISIBLE["linear"]
    visible_answer = _linear(v["dZ"], v["A_prev"], v["W"])
    failures = []
    cases = _shape_cases(rng)  # all three sizes different; N = 1, n = 1 and n_prev = 1 too
    for m, n, N in cases:
        dZ, A_prev, W = rng.normal(size=(n, N)), rng.normal(size=(m, N)), rng.normal(size=(n, m))
        ref = _torch_linear(dZ, A_prev, W)
        given = (dZ.copy(), A_prev.copy(), W.copy())
        result = _student(student_linear_backward, "linear_backward", _sizes_text(m, n, N),
                          *given)
        if isinstance(result, (tuple, list)) and len(result) == 3:
            case_differs = (dZ.shape, A_prev.shape) != (v["dZ"].shape, v["A_prev"].shape) or \
                not np.array_equal(dZ, v["dZ"])
            if _hard_coded(tuple(_as_float(r) for r in result), visible_answer, case_differs):
                raise AssertionError(HARD_CODED.format(name="linear_backward"))
        answer = unpack(result, "linear_backward", ("dW", "db", "dA_prev"))
        for name, before, after in zip(("dZ", "A_prev", "W"), (dZ, A_prev, W), given):
            if not np.array_equal(before, after):
                raise AssertionError(f"linear_backward modified its argument {name}: do not "
                                     "change the inputs")
        if not _all_close(answer, ref):
            failures.append(((m, n, N), (dZ, A_prev, W), answer, ref))
    if failures:
        failures.sort(key=lambda f: _informative(f[0]))
        sizes, args, answer, ref = failures[0]
        raise AssertionError(f"({len(failures)} of {len(cases)} random layers wrong) "
                             + explain_linear_backward(*args, *answer, reference=ref))


# --------------------------------------------------------------------------------------------
# Task 3: activation_backward
# --------------------------------------------------------------------------------------------

_TORCH_G = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}


def _torch_activation(dA, Z, activation):
    """dZ by torch.autograd: the gradient of Σ dA ⊙ g(Z) with respect to Z."""
    torch = _torch()
    Z_t = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    if activation == "identity":
        A = Z_t * 1.0
    else:
        A = getattr(torch, _TORCH_G[activation])(Z_t)
    (torch.tensor(dA, dtype=torch.float64) * A).sum().backward()
    return Z_t.grad.numpy().copy()


def _activation_variants(dA, Z, activation):
    act = ACTIVATIONS[activation]
    gp = act.g_prime(Z)
    matrix = ("dZ comes from a matrix product: the activation acts entry by entry, so its "
              "Jacobian is diagonal and dZ = dA ⊙ g′(Z) is an elementwise product "
              "(dA * g_prime(Z)), of Z's shape")
    variants = [
        ("missing activation derivative: dZ = dA ⊙ g′(Z), you returned dA", dA),
        ("the factor dA is missing: dZ = dA ⊙ g′(Z), you returned g′(Z)", gp),
        ("g′ is evaluated at A = g(Z) instead of Z: ACTIVATIONS[activation].g_prime takes the "
         "pre-activation Z", dA * act.g_prime(act.g(Z))),
        ("used g instead of its derivative: dZ = dA ⊙ g′(Z)", dA * act.g(Z)),
        ("wrong sign: dZ = dA ⊙ g′(Z)", -dA * gp),
        (matrix, dA @ gp.T),
        (matrix, dA.T @ gp),
        (matrix, gp.T @ dA),
    ]
    for other in ("sigmoid", "tanh", "relu"):  # identity's g′ = 1 is "missing g′" above
        if other != activation:
            variants.append((f"used g′ of {other} although activation = {activation!r}: look it "
                             "up with ACTIVATIONS[activation].g_prime",
                             dA * ACTIVATIONS[other].g_prime(Z)))
    return [(message, (value,)) for message, value in variants]


def explain_activation_backward(dA, Z, activation, dZ, reference=None):
    """Why ``dZ`` is not dA ⊙ g′(Z) ('' if it is)."""
    dA, Z = np.asarray(dA, dtype=float), np.asarray(Z, dtype=float)
    ref = reference if reference is not None else dA * ACTIVATIONS[activation].g_prime(Z)
    oracle = "torch.autograd" if reference is not None else "dA ⊙ g′(Z)"
    dZ = np.asarray(dZ, dtype=float)
    if close(dZ, ref, RTOL, ATOL):
        return ""
    where = f"activation_backward with {activation!r}, Z of shape {Z.shape}: "
    mistake = _which((dZ,), (ref,), _activation_variants(dA, Z, activation))
    return where + (mistake or _difference("dZ", dZ, ref, oracle, " (dZ has Z's shape)"))


def _activation_cases(rng):
    cases = []
    for _ in range(3):
        for activation in rng.permutation(HIDDEN_ACTIVATIONS + ("identity",)):
            n, N = (int(v) for v in rng.choice(np.arange(1, 9), size=2, replace=False))
            cases.append((str(activation), n, N))
    cases.append(("tanh", int(rng.integers(2, 7)), 1))
    return cases


def check_activation_backward(student_activation_backward, seed=0):
    """dZ = dA ⊙ g′(Z) for sigmoid, tanh, relu and identity on non-square arrays."""
    rng = np.random.default_rng(seed)
    v = VISIBLE["activation"]
    visible_answer = v["dA"] * ACTIVATIONS[v["activation"]].g_prime(v["Z"])
    failures = []
    cases = _activation_cases(rng)
    for activation, n, N in cases:
        Z, dA = rng.normal(0.0, 2.0, size=(n, N)), rng.normal(size=(n, N))
        ref = _torch_activation(dA, Z, activation)
        given = (dA.copy(), Z.copy())
        result = _student(student_activation_backward, "activation_backward",
                          f"n = {n}, N = {N}", given[0], given[1], activation)
        if _hard_coded((_as_float(result),), (visible_answer,), True):
            raise AssertionError(HARD_CODED.format(name="activation_backward"))
        dZ = _array(result, "activation_backward")
        for name, before, after in zip(("dA", "Z"), (dA, Z), given):
            if not np.array_equal(before, after):
                raise AssertionError(f"activation_backward modified its argument {name}: do "
                                     "not change the inputs")
        if not close(dZ, ref, RTOL, ATOL):
            failures.append(((n, N), (dA, Z, activation), dZ, ref))
    if failures:
        # relu's g′ is 0 or 1 and identity's 1: several mistakes give the same numbers there.
        failures.sort(key=lambda f: (f[1][2] in ("relu", "identity"), *_informative(f[0])))
        sizes, args, dZ, ref = failures[0]
        raise AssertionError(f"({len(failures)} of {len(cases)} random cases "
                             "wrong) " + explain_activation_backward(*args, dZ, reference=ref))


# --------------------------------------------------------------------------------------------
# Task 4: softmax with the mean cross-entropy
# --------------------------------------------------------------------------------------------


def softmax(Z):
    """Column-wise softmax, stable: P[:, j] = exp(Z[:, j] − max) / Σ_i exp(Z[i, j] − max)."""
    Z = np.asarray(Z, dtype=float)
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def _torch_softmax_ce(Z, Y):
    """dZ by torch.autograd for E = −(1/N)·Σ Y ⊙ log softmax(Z)."""
    torch = _torch()
    Z_t = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    E = -(torch.tensor(Y, dtype=torch.float64) * torch.log_softmax(Z_t, dim=0)).sum() / Z.shape[1]
    E.backward()
    return Z_t.grad.numpy().copy()


def _softmax_ce_variants(P, Y):
    n, N = P.shape
    right = (P - Y) / N
    return [(message, (value,)) for message, value in [
        (f"dZ is N = {N} times too large: (P − Y) is the gradient of the summed loss; the loss "
         "is the mean over the batch, E = −(1/N)·Σ_j Σ_i Y_ij log P_ij, so dZ = (P − Y)/N",
         P - Y),
        (f"dZ is divided by the number of classes n = P.shape[0] = {n} instead of the batch "
         f"size N = P.shape[1] = {N}: examples are columns", (P - Y) / n),
        ("wrong sign: dZ = (P − Y)/N, not (Y − P)/N", -right),
        ("this is ∂E/∂P = −Y/(N·P), the gradient with respect to the probabilities; dZ = ∂E/∂Z "
         "goes through the softmax too, and its Jacobian and the derivative of the log cancel "
         "to (P − Y)/N", -Y / P / N),
        ("dZ is multiplied by P(1 − P), as if the softmax were a sigmoid: (P − Y)/N already "
         "includes the softmax's Jacobian", right * P * (1 - P)),
        ("Y is missing: dZ = (P − Y)/N", P / N),
        ("dZ is averaged over every entry (divided by n·N): the loss is the mean over the N "
         "examples only, dZ = (P − Y)/N", (P - Y) / (n * N)),
    ]]


def explain_softmax_cross_entropy_backward(P, Y, dZ, reference=None):
    """Why ``dZ`` is not (P − Y)/N ('' if it is)."""
    P, Y = np.asarray(P, dtype=float), np.asarray(Y, dtype=float)
    ref = reference if reference is not None else (P - Y) / P.shape[1]
    oracle = "torch.autograd" if reference is not None else "(P − Y)/N"
    dZ = np.asarray(dZ, dtype=float)
    if close(dZ, ref, RTOL, ATOL):
        return ""
    where = (f"softmax_cross_entropy_backward with n = {P.shape[0]} classes and a batch of "
             f"N = {P.shape[1]}: ")
    mistake = _which((dZ,), (ref,), _softmax_ce_variants(P, Y))
    return where + (mistake or _difference("dZ", dZ, ref, oracle,
                                           " (dZ has the shape of P and Z, (n, N))"))


def _one_hot(rng, n, N):
    return np.eye(n)[:, rng.integers(0, n, size=N)]


def _softmax_cases(rng):
    cases = []
    for _ in range(8):
        n, N = (int(v) for v in rng.choice(np.arange(2, 10), size=2, replace=False))
        cases.append((n, N))
    cases += [(int(rng.integers(2, 8)), 1), (2, int(rng.integers(3, 9)))]
    return cases


def check_softmax_cross_entropy_backward(student_fn, seed=0):
    """dZ = (P − Y)/N for random logits, one-hot Y, n classes ≠ N examples, N = 1 included."""
    rng = np.random.default_rng(seed)
    v = VISIBLE["softmax_ce"]
    visible_answer = (softmax(v["Z"]) - v["Y"]) / v["Y"].shape[1]
    failures = []
    cases = _softmax_cases(rng)
    for n, N in cases:
        Z = rng.normal(0.0, 2.0, size=(n, N))
        P, Y = softmax(Z), _one_hot(rng, n, N)
        ref = _torch_softmax_ce(Z, Y)
        given = (P.copy(), Y.copy())
        result = _student(student_fn, "softmax_cross_entropy_backward", f"n = {n}, N = {N}",
                          *given)
        if _hard_coded((_as_float(result),), (visible_answer,), True):
            raise AssertionError(HARD_CODED.format(name="softmax_cross_entropy_backward"))
        dZ = _array(result, "softmax_cross_entropy_backward")
        for name, before, after in zip(("P", "Y"), (P, Y), given):
            if not np.array_equal(before, after):
                raise AssertionError(f"softmax_cross_entropy_backward modified its argument "
                                     f"{name}: do not change the inputs")
        if not close(dZ, ref, RTOL, ATOL):
            failures.append(((n, N), (P, Y), dZ, ref))
    if failures:
        failures.sort(key=lambda f: _informative(f[0]))
        sizes, args, dZ, ref = failures[0]
        raise AssertionError(f"({len(failures)} of {len(cases)} random batches "
                             "wrong) " + explain_softmax_cross_entropy_backward(*args, dZ,
                                                                                reference=ref))


# --------------------------------------------------------------------------------------------
# Task 5: mlp_backward
# --------------------------------------------------------------------------------------------


def forward(params, X, activations, loss="mse"):
    """The forward pass, trusted: returns the cache (Zs, As), with As[0] = X and As[L] the output.

    Z[l] = W[l]·A[l−1] + b[l]; A[l] = g_l(Z[l]), except that with ``loss="cross_entropy"`` the
    output layer is a softmax (``activations[-1]`` is then "softmax"). Python's index l − 1 of
    ``params``, ``activations`` and ``Zs`` holds the book's layer l.
    """
    Zs, As = [], [np.asarray(X, dtype=float)]
    L = len(params)
    for l, (W, b) in enumerate(params, start=1):
        Z = np.asarray(W, dtype=float) @ As[-1] + np.asarray(b, dtype=float)
        A = softmax(Z) if (loss == "cross_entropy" and l == L) else \
            ACTIVATIONS[activations[l - 1]].g(Z)
        Zs.append(Z)
        As.append(A)
    return Zs, As


def _loss(params, X, Y, activations, loss):
    _, As = forward(params, X, activations, loss)
    A, N = As[-1], Y.shape[1]
    if loss == "cross_entropy":
        return float(-np.sum(Y * np.log(A)) / N)
    return float(0.5 * np.sum((A - Y) ** 2) / N)


def numerical_gradients(params, X, Y, activations, loss="mse", h=1e-6):
    """[(dW, db), ...] of the mean loss by centered differences (backpropbook.gradcheck), layer 1
    first: an oracle that knows nothing of backpropagation."""
    params = [(np.array(W, dtype=float), np.array(b, dtype=float)) for W, b in params]
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    grads = []
    for l, (W, b) in enumerate(params):
        def of_W(W_new, l=l):
            trial = list(params)
            trial[l] = (W_new, trial[l][1])
            return _loss(trial, X, Y, activations, loss)

        def of_b(b_new, l=l):
            trial = list(params)
            trial[l] = (trial[l][0], b_new)
            return _loss(trial, X, Y, activations, loss)

        grads.append((gradcheck.centered_difference(of_W, W, h),
                      gradcheck.centered_difference(of_b, b, h)))
    return grads


def _mlp_backward(params, Zs, As, Y, activations, loss, mistake=None):
    """[(dW, db), ...] by the book's recursion, and (by ``mistake``) the typical mistakes."""
    L = len(params)
    N = Y.shape[1]
    n_out = Y.shape[0]
    div = {"no_mean": 1.0, "classes": n_out, "all_entries": n_out * N}.get(mistake, N)
    sign = -1.0 if mistake == "sign" else 1.0

    def g_prime(l, Z):  # the book's layer l
        act = ACTIVATIONS[activations[l - 1]]
        return act.g_prime(act.g(Z)) if mistake == "g_at_A" else act.g_prime(Z)

    if loss == "cross_entropy":
        P = As[L]
        dZ = sign * (-Y / P / N if mistake == "dE_dP" else (P - Y) / div)
    else:
        dA = sign * (As[L] - Y) / div
        dZ = dA if mistake == "no_g_out" else dA * g_prime(L, Zs[L - 1])
    grads = [None] * L
    for l in range(L, 0, -1):
        W = params[l - 1][0]
        A_prev = As[l - 1]
        dW, db = dZ @ A_prev.T, dZ.sum(axis=1, keepdims=True)
        dW = {"transposed": dW.T, "dW_over_N": dW / N}.get(mistake, dW)
        db = {"db_unsummed": dZ, "db_flat": db.ravel(), "db_mean": db / N}.get(mistake, db)
        if mistake == "only_last" and l < L:
            dW, db = np.zeros_like(dW), np.zeros_like(db)
        grads[l - 1] = (dW, db)
        if l > 1:
            dA_prev = W.T @ dZ
            dZ = dA_prev if mistake == "no_g_hidden" else dA_prev * g_prime(l - 1, Zs[l - 2])
    return grads


def _mlp_variants(params, Zs, As, Y, activations, loss):
    ce = loss == "cross_entropy"
    out = "dZ[L] = (P − Y)/N" if ce else "dA[L] = (A[L] − Y)/N"
    yours = " (check your softmax_cross_entropy_backward)" if ce else ""
    lin = " (check your linear_backward)"
    messages = {
        "transposed": "dW is transposed: dW[l] = dZ[l]·A[l−1]ᵀ has W[l]'s shape "
                      "(n_l, n_{l−1})" + lin,
        "db_unsummed": "db is not summed over the batch: db[l] = dZ[l]·1 has b[l]'s shape "
                       "(n_l, 1), not dZ[l]'s (n_l, N)" + lin,
        "db_flat": "db has shape (n_l,), a flat array: it must have b[l]'s shape, the column "
                   "(n_l, 1)" + lin,
        "db_mean": "db is N times too small: db[l] = dZ[l]·1 is a plain sum over the batch "
                   "(dZ already carries the 1/N of the mean loss)" + lin,
        "dW_over_N": "dW is N times too small: dW[l] = dZ[l]·A[l−1]ᵀ has no extra 1/N (dZ "
                     "already carries the 1/N of the mean loss)" + lin,
        "no_mean": f"every gradient is N times too large: the loss is the mean over the batch, "
                   f"so {out}" + yours,
        "classes": f"every gradient is divided by the number of outputs n_L = Y.shape[0] "
                   f"instead of the batch size N = Y.shape[1]: examples are columns, {out}"
                   + yours,
        "all_entries": "every gradient is divided by n_L·N: the loss is the mean over the N "
                       f"examples only, {out}" + yours,
        "sign": f"wrong sign: {out}" + yours,
        "dE_dP": "dZ[L] is ∂E/∂P = −Y/(N·P), the gradient with respect to the probabilities: "
                 "through the softmax it becomes dZ[L] = (P − Y)/N" + yours,
        "no_g_hidden": "missing activation derivative in the hidden layers: dZ[l] = "
                       "dA[l] ⊙ g′(Z[l]) for l < L, with dA[l] = W[l+1]ᵀ·dZ[l+1]",
        "no_g_out": "missing activation derivative in the output layer: dZ[L] = dA[L] ⊙ "
                    "g′(Z[L]), with dA[L] = (A[L] − Y)/N",
        "g_at_A": "g′ is evaluated at A[l] = g(Z[l]) instead of Z[l]: dZ[l] = dA[l] ⊙ g′(Z[l]) "
                  "(ACTIVATIONS[...].g_prime takes the pre-activation)",
        "only_last": "only the output layer has a gradient: the backward pass goes on down to "
                     "layer 1, dA[l−1] = W[l]ᵀ·dZ[l] and dZ[l−1] = dA[l−1] ⊙ g′(Z[l−1])",
    }
    skip = {"no_g_out"} if ce else {"dE_dP"}
    return [(message, _flat(_mlp_backward(params, Zs, As, Y, activations, loss, mistake)))
            for mistake, message in messages.items() if mistake not in skip]


def _flat(grads):
    return tuple(a for pair in grads for a in pair)


def explain_mlp_backward(params, X, Y, activations, loss, grads, reference=None):
    """Why ``grads`` (L pairs (dW, db)) are not the gradients of the mean loss ('' if they are)."""
    params = [(np.asarray(W, dtype=float), np.asarray(b, dtype=float)) for W, b in params]
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    Zs, As = forward(params, X, activations, loss)
    ref = reference if reference is not None else _mlp_backward(params, Zs, As, Y,
                                                                activations, loss)
    oracle = "torch.autograd" if reference is not None else "the backward recursion"
    L = len(params)
    sizes = [X.shape[0]] + [W.shape[0] for W, _ in params]
    where = (f"{'cross-entropy' if loss == 'cross_entropy' else 'mean squared error'}, "
             f"L = {L} layer{'s' if L > 1 else ''} of sizes {' → '.join(map(str, sizes))}, "
             f"activations {list(activations)}, batch N = {X.shape[1]}: ")
    grads = [tuple(np.asarray(v, dtype=float) for v in pair) for pair in grads]
    answer, flat_ref = _flat(grads), _flat(ref)
    if _all_close(answer, flat_ref):
        return ""
    if L > 1 and _all_close(_flat(grads[::-1]), flat_ref):
        return where + "the list is in reverse order: mlp_backward returns layer 1 first"
    mistake = _which(answer, flat_ref, _mlp_variants(params, Zs, As, Y, activations, loss))
    if mistake:
        return where + mistake
    for l in range(L, 0, -1):  # errors flow downwards: report the top-most wrong layer
        W, b = params[l - 1]
        (dW, db), (dW_ref, db_ref) = grads[l - 1], ref[l - 1]
        above = (f"layers {l + 1}..{L} are right but layer {l} is not: "
                 if l < L else f"the output layer {L} is wrong: ")
        if np.shape(dW) != W.shape:
            return where + (f"wrong shape: dW[{l}] should have W[{l}]'s shape {W.shape}, got "
                            f"{np.shape(dW)}")
        if np.shape(db) != b.shape:
            return where + (f"wrong shape: db[{l}] should have b[{l}]'s shape {b.shape}, got "
                            f"{np.shape(db)}")
        for name, mine, theirs in ((f"dW[{l}]", dW, dW_ref), (f"db[{l}]", db, db_ref)):
            if not close(mine, theirs, RTOL, ATOL):
                hint = ("check dZ[L] and the output layer" if l == L else
                        f"check dA[{l}] = W[{l + 1}]ᵀ·dZ[{l + 1}] and dZ[{l}] = dA[{l}] ⊙ "
                        f"g′(Z[{l}])")
                return where + above + hint + "; " + first_difference(
                    name, mine, theirs, oracle, RTOL, ATOL)
    return ""


def _visible_mlp(loss):
    """The visible test's case, built exactly as the test cell builds it."""
    v = VISIBLE["mlp"][loss]
    rng = np.random.default_rng(v["seed"])
    sizes, N = v["sizes"], v["N"]
    params = [(rng.normal(size=(n, m)), rng.normal(size=(n, 1)))
              for m, n in zip(sizes[:-1], sizes[1:])]
    X = rng.normal(size=(sizes[0], N))
    Y = rng.normal(size=(sizes[-1], N)) if loss == "mse" else \
        np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], size=N)]
    return params, X, Y, list(v["activations"])


def _mlp_cases(rng, loss):
    """Depths 1..4; neighbouring sizes differ (no square W) and differ from N; N = 1 too."""
    cases = []
    for L in [1, 2, 2, 3, 3, 4, 2, 3]:
        while True:
            sizes = [int(s) for s in rng.integers(1 if loss == "mse" else 2, 7, size=L + 1)]
            if loss == "cross_entropy" and sizes[-1] < 2:
                continue
            if all(a != b for a, b in zip(sizes[:-1], sizes[1:])):
                break
        cases.append((sizes, L))
    out = []
    for i, (sizes, L) in enumerate(cases):
        N = 1 if i == len(cases) - 1 else int(rng.choice([n for n in range(2, 9)
                                                          if n not in sizes]))
        hidden = [str(a) for a in rng.choice(HIDDEN_ACTIVATIONS, size=L - 1)]
        last = "softmax" if loss == "cross_entropy" else str(rng.choice(MSE_OUTPUTS))
        params = [(rng.normal(0.0, 1.5 / math.sqrt(m), size=(n, m)),
                   rng.normal(0.0, 0.5, size=(n, 1))) for m, n in zip(sizes[:-1], sizes[1:])]
        X = rng.normal(size=(sizes[0], N))
        Y = _one_hot(rng, sizes[-1], N) if loss == "cross_entropy" else \
            rng.normal(0.0, 0.5, size=(sizes[-1], N))
        out.append({"params": params, "X": X, "Y": Y, "activations": hidden + [last]})
    return out


def _mlp_oracle(params, X, Y, activations, loss):
    from backpropbook import oracles  # imports torch: only when a check needs it

    return oracles.mlp_gradients_torch(params, X, Y, activations, loss)


def check_mlp_backward(student_mlp_backward, loss, seed=0):
    """[(dW, db), ...] of random L-layer MLPs (L = 1..4) on non-square minibatches, against
    torch.autograd; ``loss`` is "mse" or "cross_entropy"."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    rng = np.random.default_rng(seed)
    vparams, vX, vY, vacts = _visible_mlp(loss)
    vZs, vAs = forward(vparams, vX, vacts, loss)
    visible_answer = _flat(_mlp_backward(vparams, vZs, vAs, vY, vacts, loss))
    failures = []
    cases = _mlp_cases(rng, loss)
    for case in cases:
        params, X, Y, acts = case["params"], case["X"], case["Y"], case["activations"]
        Zs, As = forward(params, X, acts, loss)
        ref = _mlp_oracle(params, X, Y, acts, loss)
        given_params = [(W.copy(), b.copy()) for W, b in params]
        given_cache = ([Z.copy() for Z in Zs], [A.copy() for A in As])
        given_Y = Y.copy()
        sizes = " → ".join(map(str, [X.shape[0]] + [W.shape[0] for W, _ in params]))
        result = _student(student_mlp_backward, "mlp_backward",
                          f"sizes {sizes}, N = {X.shape[1]}", given_params, given_cache,
                          given_Y, list(acts), loss)
        if isinstance(result, (tuple, list)) and len(result) == len(params) == len(vparams):
            loose = tuple(_as_float(a) for pair in result
                          for a in (pair if isinstance(pair, (tuple, list)) else (None,)))
            if _hard_coded(loose, visible_answer, True):
                raise AssertionError(HARD_CODED.format(name="mlp_backward"))
        grads = unpack_grads(result, params)
        unchanged = all(np.array_equal(a, b) for a, b in zip(
            _flat(params) + tuple(Zs) + tuple(As) + (Y,),
            _flat(given_params) + tuple(given_cache[0]) + tuple(given_cache[1]) + (given_Y,)))
        if not unchanged:
            raise AssertionError("mlp_backward modified its arguments (params, cache or Y): do "
                                 "not change the inputs")
        if not _all_close(_flat(grads), _flat(ref)):
            failures.append((case, grads, ref))
    if failures:
        # A deep case with N > 1 and few relu layers tells the mistakes apart best.
        failures.sort(key=lambda f: (f[0]["X"].shape[1] == 1,
                                     f[0]["activations"][:-1].count("relu"),
                                     -len(f[0]["params"])))
        case, grads, ref = failures[0]
        raise AssertionError(
            f"({len(failures)} of {len(cases)} random networks wrong) "
            + explain_mlp_backward(case["params"], case["X"], case["Y"], case["activations"],
                                   loss, grads, reference=ref))
