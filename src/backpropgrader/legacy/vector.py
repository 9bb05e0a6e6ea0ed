"""Checks for the vector-backpropagation assignment (``solutions/vector/vector.ipynb``).

The network is the chapter's, for one example: layers 1..L, a[0] = x,

    z[l] = W[l] a[l−1] + b[l],   a[l] = g(z[l]),   E = ½‖a[L] − t‖²,

with W[l] of shape (n_l, n_{l−1}). Vectors are 1-D NumPy arrays of shape (n,) (the book's
columns), matrices 2-D arrays; a gradient has the shape of what it differentiates. Python lists
are 0-based: ``params[l - 1] = (W, b)`` is the book's layer l, ``z[l - 1]`` its z[l], and
``a[0] = x``.

Each ``check_*`` function takes the student's function and a seed, draws random networks (depths
1..4, random *non-square* widths such as 3-5-2-4, plus a few square ones, where a missing
transpose gives wrong numbers instead of a shape error; the activations sigmoid, tanh and relu,
relu away from its kink), compares the student's answers with independent oracles
(torch.autograd in float64, SymPy at exact points; the tests hold the torch oracles to centered
differences) and raises ``AssertionError`` naming the
mistake (transposed dW, W·δ for Wᵀ·δ, a Jacobian multiplied on the wrong side, a missing g′,
wrong sign, off by a layer, wrong shape or type, an answer hard-coded for the visible test).
The ``explain_*`` functions turn a wrong answer on one case into that message; the notebook's
visible tests use them, with :func:`allclose`.

While the student's function runs, the package's reference code (``backpropbook.layers``,
``backpropbook.mlp``, ``backpropbook.vector`` and the other chapter modules, the oracles, the
gradient check) and torch's autograd entry points raise, so an answer that calls them fails
with a message that says so. In the grading sandbox they are stubs anyway.
"""

import importlib
import inspect
import math
import sys

import mpmath
import numpy as np
import sympy as sp

from backpropbook import gradcheck
from backpropbook.activations import ACTIVATIONS
from backpropgrader.legacy.common import (HARD_CODED, blocked, call, close, distance, is_plain,
                                         reference_message)

__all__ = [
    "ACTIVATION_NAMES",
    "VISIBLE",
    "allclose",
    "check_activation_jacobian",
    "check_backward_hadamard",
    "check_backward_jacobian",
    "check_forward",
    "check_hidden_delta",
    "check_network_jacobian",
    "check_output_delta",
    "check_symbolic_jacobian",
    "explain_activation_jacobian",
    "explain_backward",
    "explain_forward",
    "explain_hidden_delta",
    "explain_network_jacobian",
    "explain_output_delta",
    "explain_symbolic_jacobian",
    "layer_symbols",
]

ACTIVATION_NAMES = ("sigmoid", "tanh", "relu")
MAX_DEPTH = 4
RTOL, ATOL = 1e-7, 1e-10

# The inputs of the notebook's visible tests (its setup cell holds the same example network).
# The hidden checks use them to recognise an answer hard-coded for the visible case.
VISIBLE = {
    "params": [
        (np.array([[0.5, -1.0, 0.25], [1.5, 0.5, -0.5]]), np.array([0.1, -0.2])),
        (np.array([[1.0, -2.0], [0.5, 0.75]]), np.array([0.0, 0.3])),
    ],
    "x": np.array([1.0, 0.5, -1.0]),
    "t": np.array([0.2, 0.9]),
    "activation": "sigmoid",
    "activation_jacobian": {"z": np.array([-1.0, 0.0, 2.0]), "activation": "tanh"},
    "output_delta": {"O": np.array([0.8, 0.3, 0.6]), "t": np.array([1.0, 0.0, 1.0])},
    "hidden_delta": {
        "O_hidden": np.array([0.6, 0.2, 0.9]),
        "W_next": np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-1.0, 1.0, 0.5]]),
        "delta_next": np.array([0.1, -0.2, 0.05]),
    },
    "symbolic": (2, 3),
}

# --------------------------------------------------------------------------------------------
# Calling the student's code, with the reference code blocked
# --------------------------------------------------------------------------------------------

# Modules whose functions would answer a task for the student (those that exist are blocked).
REFERENCE_MODULES = (
    "backpropbook.layers", "backpropbook.mlp", "backpropbook.vector", "backpropbook.twolayer",
    "backpropbook.symbolic_vector", "backpropbook.oracles", "backpropbook.gradcheck",
)
_TORCH_AUTOGRAD = ("torch.autograd.backward", "torch.autograd.grad",
                   "torch.autograd.functional.jacobian", "torch.autograd.functional.vjp",
                   "torch.autograd.functional.jvp", "torch.autograd.functional.hessian",
                   "torch.autograd.functional.vhp", "torch.autograd.functional.hvp")

def _reference_functions():
    """(function, message) for every reference function a student's answer must not call."""
    found = []
    for name in REFERENCE_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a chapter module that does not exist (yet)
            continue
        for fname, fn in vars(module).items():
            if (inspect.isfunction(fn) and fn.__module__ == name and fn.__closure__ is None
                    and not fname.startswith("_")):
                found.append((fn, reference_message(fn)))
    if "torch" in sys.modules:  # only block what is loaded: importing torch costs seconds
        import torch

        for path in _TORCH_AUTOGRAD:
            obj = torch
            for part in path.split(".")[1:]:
                obj = getattr(obj, part, None)
            if inspect.isfunction(obj) and obj.__closure__ is None:
                found.append((obj, f"you used torch's autograd ({path}); this task asks you to "
                                   "write the backward pass yourself, with NumPy"))
    return found


def _blocked():
    """The reference functions raise while the block runs (see common.blocked)."""
    return blocked(_reference_functions())


def _student(fn, name, *args):
    """The student's ``fn(*args)`` with the reference code blocked; errors become assertions."""
    with _blocked():
        return call(fn, name, *args)


# --------------------------------------------------------------------------------------------
# Shapes and structures: templates, flattening, messages
# --------------------------------------------------------------------------------------------
# A template describes what a function must return: a leaf is ("array", shape, label, hint), a
# container is ("seq", [children], label, description).


def _leaf(shape, label, hint=""):
    return ("array", tuple(shape), label, hint)


def _seq(children, label, description):
    return ("seq", list(children), label, description)


def _flatten(value, template):
    """The arrays of ``value`` in the template's order, or None if it does not have its layout.

    Leaves may have any shape here (a transposed dW still flattens): only containers and plain
    numbers are required.
    """
    if template[0] == "array":
        if not is_plain(value):
            return None
        try:
            return [np.asarray(value, dtype=float)]
        except ValueError:
            return None
    if not isinstance(value, (list, tuple)) or len(value) != len(template[1]):
        return None
    out = []
    for item, child in zip(value, template[1]):
        flat = _flatten(item, child)
        if flat is None:
            return None
        out += flat
    return out


def _ours(value):
    """Flatten our own nested lists/tuples of arrays (a reference or a variant)."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _ours(item)]
    return [np.asarray(value, dtype=float)]


def _column_hint(shape, got):
    if len(shape) == 1 and got == (shape[0], 1):
        return ": vectors are 1-D arrays of shape (n,) here, not columns (n, 1)"
    if len(shape) == 1 and got == (1, shape[0]):
        return ": vectors are 1-D arrays of shape (n,) here, not rows (1, n)"
    if len(shape) == 2 and got == shape[::-1] and shape[0] != shape[1]:
        return ": the matrix is transposed"
    if len(shape) == 2 and got == ():
        return (": for 1-D arrays u @ v is a dot product (a number); the outer product u vᵀ is "
                "np.outer(u, v)")
    return ""


def _strict(value, template):
    """The arrays of ``value`` if it has the template's layout and shapes; else AssertionError."""
    kind, spec, label, extra = template
    if kind == "array":
        if not is_plain(value):
            raise AssertionError(
                f"wrong return type: {label} should be a NumPy array of floats of shape {spec}, "
                f"got {type(value).__name__}")
        try:
            array = np.asarray(value, dtype=float)
        except ValueError:
            raise AssertionError(f"wrong return type: {label} is a ragged nested list") from None
        if array.shape != spec:
            raise AssertionError(f"wrong shape: {label} should have shape {spec}, got "
                                 f"{array.shape}{_column_hint(spec, array.shape)}{extra}")
        return [array]
    if not isinstance(value, (list, tuple)):
        raise AssertionError(f"wrong return type: {label} should be {extra}, got "
                             f"{type(value).__name__}")
    if len(value) != len(spec):
        raise AssertionError(f"wrong return type: {label} should be {extra}, got a "
                             f"{type(value).__name__} of length {len(value)}")
    out = []
    for item, child in zip(value, spec):
        out += _strict(item, child)
    return out


def _leaf_labels(template):
    if template[0] == "array":
        return [template[2]]
    return [label for child in template[1] for label in _leaf_labels(child)]


def _flat_close(xs, ys, rtol=RTOL, atol=ATOL):
    return (xs is not None and ys is not None and len(xs) == len(ys)
            and all(close(x, y, rtol, atol) for x, y in zip(xs, ys)))


def allclose(result, expected, rtol=1e-7, atol=1e-10):
    """True if ``result`` has the layout and shapes of ``expected`` and its values are close.

    ``expected`` is an array, or a list/tuple of them (nested as the result must be). Never
    raises: a result of the wrong type or shape is simply not close.
    """
    flat = _loose(result, expected)
    return _flat_close(flat, _ours(expected), rtol, atol)


def _loose(value, like):
    """Flatten ``value`` following the nesting of ``like`` (our own data), or None."""
    if isinstance(like, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(like):
            return None
        out = []
        for v, l in zip(value, like):
            flat = _loose(v, l)
            if flat is None:
                return None
            out += flat
        return out
    if not is_plain(value):
        return None
    try:
        return [np.asarray(value, dtype=float)]
    except ValueError:
        return None


def _matches(flat, variant, reference):
    """True if the student's arrays ``flat`` are the mistake ``variant`` (not the reference)."""
    if flat is None or variant is None or len(flat) != len(variant):
        return False
    if any(np.shape(f) != np.shape(v) for f, v in zip(flat, variant)):
        return False
    same_shapes = [np.shape(v) for v in variant] == [np.shape(r) for r in reference]
    if same_shapes:
        if _flat_close(variant, reference):
            return False  # indistinguishable from a right answer here
        return distance(flat, variant) <= 1e-2 * distance(variant, reference)
    return _flat_close(flat, variant)


def _diagnose(flat, reference, variants):
    """The message of the first mistake variant the student's ``flat`` arrays match, or None."""
    for message, variant in variants:
        if variant is not None and _matches(flat, _ours(variant), reference):
            return message
    return None


def _first_difference(flat, reference, labels, oracle):
    for array, ref, label in zip(flat, reference, labels):
        if not close(array, ref, RTOL, ATOL):
            try:
                gradcheck.check_gradient(array, ref, name=label, rtol=RTOL, atol=ATOL,
                                         oracle=oracle)
            except AssertionError as exc:
                return str(exc)
    return f"the answer matches {oracle}"


class _Message(str):
    """An explanation; ``named`` is True when it names a typical mistake."""

    named = False


def _named(message):
    message = _Message(message)
    message.named = True
    return message


def _explain(result, reference, template, variants, oracle):
    """Why ``result`` is not ``reference``: a named mistake, a layout/shape error, or the first
    entry that differs."""
    reference = _ours(reference)
    flat = _flatten(result, template)
    mistake = _diagnose(flat, reference, variants)
    if mistake:
        return _named(mistake)
    try:
        flat = _strict(result, template)
    except AssertionError as exc:
        return _Message(exc)
    return _Message(_first_difference(flat, reference, _leaf_labels(template), oracle))


def _hard_coded(result, visible_answer):
    """True if ``result`` is the visible test's answer (checked on other cases only)."""
    return _flat_close(_loose(result, visible_answer), _ours(visible_answer), 1e-9, 1e-12)


# --------------------------------------------------------------------------------------------
# Random networks
# --------------------------------------------------------------------------------------------


def _g(activation):
    return ACTIVATIONS[activation].g


def _gp(activation):
    return ACTIVATIONS[activation].g_prime


def _forward(params, x, activation, bias="in", apply_g=True, transpose_W=False, reverse=False):
    """(z, a) of the network, and (by the keywords) the typical mistakes (None if impossible)."""
    g = _g(activation)
    params = params[::-1] if reverse else params
    z, a = [], [np.asarray(x, dtype=float)]
    for W, b in params:
        W = W.T if transpose_W else W
        if W.shape[1] != a[-1].shape[0]:
            return None
        zl = W @ a[-1] + (b if bias == "in" else 0.0)
        al = g(zl) if apply_g else zl.copy()
        if bias == "after":
            al = al + b
        z.append(zl)
        a.append(al)
    return z, a


def _network(rng, sizes, activation):
    """Random (params, x, t) for the widths ``sizes``; relu's z stay away from its kink."""
    for _ in range(200):
        params = [(rng.normal(0.0, 1.0, size=(n, m)) * (1.8 / math.sqrt(m)),
                   rng.normal(0.0, 0.5, size=n)) for m, n in zip(sizes[:-1], sizes[1:])]
        x = rng.uniform(-1.5, 1.5, size=sizes[0])
        t = rng.uniform(-1.0, 1.0, size=sizes[-1])
        z, _ = _forward(params, x, activation)
        if activation != "relu" or min(float(np.min(np.abs(zl))) for zl in z) > 0.05:
            return params, x, t
    raise RuntimeError("no relu network away from the kink")  # pragma: no cover


def _network_cases(rng):
    """Every depth 1..MAX_DEPTH with every activation, all widths distinct (every W non-square,
    n_L ≠ n_0), then square networks (every width equal, depth 2..4), in random order."""
    cases = []
    for L in range(1, MAX_DEPTH + 1):
        for activation in ACTIVATION_NAMES:
            sizes = [int(n) for n in rng.choice(np.arange(1, 7), size=L + 1, replace=False)]
            cases.append((sizes, activation))
    for L in (2, 3, 4):
        n = int(rng.integers(2, 5))
        cases.append(([n] * (L + 1), str(rng.choice(["sigmoid", "tanh"]))))
    order = rng.permutation(len(cases))
    out = []
    for i in order:
        sizes, activation = cases[i]
        params, x, t = _network(rng, sizes, activation)
        out.append({"sizes": sizes, "activation": activation, "params": params, "x": x, "t": t})
    return out


def _copy_params(params):
    return [(np.array(W, dtype=float), np.array(b, dtype=float)) for W, b in params]


def _unchanged(name, before, after):
    """AssertionError if the student changed an argument in place."""
    if not all(np.array_equal(u, v) for u, v in zip(_ours(before), _ours(after))):
        raise AssertionError(f"{name} modified its arguments: do not change the inputs")


def _describe(case):
    return (f"network {'-'.join(map(str, case['sizes']))} (depth L = {len(case['params'])}), "
            f"activation {case['activation']!r}")


def _report(name, failures, total):
    """Raise for the most telling failure: a named mistake (sigmoid/tanh, deep first) if any."""
    failures.sort(key=lambda f: (not f[1], f[0]["activation"] == "relu",
                                 -len(f[0]["params"])))
    case, named, message = failures[0]
    raise AssertionError(f"{name}: {_describe(case)} ({len(failures)} of {total} random "
                         f"networks wrong): {message}")


def _run_cases(name, cases, run):
    """Run ``run(case) -> None | (named, message)`` on every case; report the failures."""
    failures = []
    for case in cases:
        try:
            outcome = run(case)
        except AssertionError as exc:
            if "hard-coded" in str(exc):
                raise
            if "reference implementation" in str(exc) or "torch's autograd" in str(exc):
                raise AssertionError(f"{name}: {exc}") from None
            outcome = (False, str(exc))
        if outcome is not None:
            failures.append((case, *outcome))
    if failures:
        _report(name, failures, len(cases))


# --------------------------------------------------------------------------------------------
# Oracles: torch.autograd in float64
# --------------------------------------------------------------------------------------------


def _torch():
    import torch  # only the checks need it, and only here

    return torch


def _torch_g(activation):
    torch = _torch()
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]


def _torch_jacobian(f, x):
    torch = _torch()
    x_t = torch.tensor(np.asarray(x, dtype=float), dtype=torch.float64)
    return torch.autograd.functional.jacobian(f, x_t).numpy().copy()


def _oracle_activation_jacobian(z, activation):
    return _torch_jacobian(_torch_g(activation), z)


def _oracle_network_jacobian(params, x, activation):
    torch = _torch()
    g = _torch_g(activation)
    Ws = [torch.tensor(W, dtype=torch.float64) for W, _ in params]
    bs = [torch.tensor(b, dtype=torch.float64) for _, b in params]

    def f(a):
        for W, b in zip(Ws, bs):
            a = g(W @ a + b)
        return a

    return _torch_jacobian(f, x)


def _oracle_gradients(params, x, t, activation):
    """[(dW, db), ...] by torch.autograd (backpropbook.oracles.mlp_gradients_torch, N = 1)."""
    from backpropbook import oracles

    grads = oracles.mlp_gradients_torch([(W, b[:, None]) for W, b in params], x[:, None],
                                        t[:, None], activation)
    return [(dW, db[:, 0]) for dW, db in grads]


# --------------------------------------------------------------------------------------------
# Task 1: the activation Jacobian
# --------------------------------------------------------------------------------------------


def _activation_jacobian_variants(z, activation):
    gp = _gp(activation)(z)
    n = len(z)
    return [
        ("activation_jacobian returns the vector g′(z); the Jacobian ∂a/∂z is the n×n matrix "
         "with g′(z_i) on its diagonal and zeros elsewhere: np.diag(g′(z))", [gp]),
        ("the diagonal holds g(z); the Jacobian of a = g(z) has the derivatives g′(z_i) there",
         [np.diag(_g(activation)(z))]),
        ("g′ is evaluated at a = g(z) instead of z: ACTIVATIONS[...].g_prime takes the "
         "pre-activation z", [np.diag(_gp(activation)(_g(activation)(z)))]),
        ("the off-diagonal entries must be 0: a_i = g(z_i) depends on z_i only, so "
         "∂a_i/∂z_j = 0 for i ≠ j (you filled every row with g′(z))",
         [np.tile(gp, (n, 1))]),
        ("the off-diagonal entries must be 0: a_i = g(z_i) depends on z_i only, so "
         "∂a_i/∂z_j = 0 for i ≠ j (you filled every column with g′(z))",
         [np.tile(gp[:, None], (1, n))]),
        ("wrong sign: ∂a/∂z = diag(g′(z)), and g′ ≥ 0 for sigmoid, tanh and relu",
         [-np.diag(gp)]),
    ]


def explain_activation_jacobian(z, activation, result, reference=None):
    """Why ``result`` is not the Jacobian diag(g′(z)) of a = g(z)."""
    z = np.asarray(z, dtype=float)
    ref = np.diag(_gp(activation)(z)) if reference is None else reference
    template = _leaf((len(z), len(z)), f"∂a/∂z for z of shape {z.shape}",
                     " (one row per a_i, one column per z_j)")
    return _explain(result, [ref], template, _activation_jacobian_variants(z, activation),
                    "torch.autograd" if reference is not None else "diag(g′(z))")


def check_activation_jacobian(student_fn, seed=0):
    """diag(g′(z)) for random z of 1..6 entries, sigmoid, tanh and relu (away from 0)."""
    rng = np.random.default_rng(seed)
    visible = VISIBLE["activation_jacobian"]
    visible_answer = [np.diag(_gp(visible["activation"])(visible["z"]))]
    cases = []
    for activation in ACTIVATION_NAMES * 2:
        n = int(rng.integers(1, 7))
        z = rng.uniform(-3.0, 3.0, size=n)
        z = np.where(np.abs(z) < 0.1, 0.5, z)
        cases.append((z, activation))
    for z, activation in cases:
        ref = _oracle_activation_jacobian(z, activation)
        given = z.copy()
        result = _student(student_fn, "activation_jacobian", given, activation)
        if len(z) != 3 and _hard_coded(result, visible_answer):
            raise AssertionError(HARD_CODED.format(name="activation_jacobian"))
        _unchanged("activation_jacobian", z, given)
        if not allclose(result, ref):
            raise AssertionError(
                f"activation_jacobian(z of shape {z.shape}, {activation!r}): "
                + explain_activation_jacobian(z, activation, result, reference=ref))


# --------------------------------------------------------------------------------------------
# Task 2: the forward pass
# --------------------------------------------------------------------------------------------


def _forward_template(sizes):
    L = len(sizes) - 1
    z = _seq([_leaf((n,), f"z[{l}]") for l, n in enumerate(sizes[1:], start=1)], "z",
             f"a list of L = {L} arrays, z[l - 1] holding the book's z[l]")
    a = _seq([_leaf((n,), f"a[{l}]") for l, n in enumerate(sizes)], "a",
             f"a list of L + 1 = {L + 1} arrays, a[0] = x and a[l] = g(z[l])")
    return _seq([z, a], "forward's result", "a pair (z, a)")


def _sizes(params):
    return [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]


def explain_forward(params, x, activation, result, reference=None):
    """Why ``result`` is not the forward pass (z, a) of the network."""
    ref = _forward(params, x, activation) if reference is None else reference
    variants = [
        ("the bias is left out: z[l] = W[l]·a[l−1] + b[l]", _forward(params, x, activation,
                                                                     bias="none")),
        ("the bias is added after the activation: it belongs inside, z[l] = W[l]·a[l−1] + b[l],"
         " then a[l] = g(z[l])", _forward(params, x, activation, bias="after")),
        ("the activation g is not applied: a[l] = g(z[l]), not z[l]",
         _forward(params, x, activation, apply_g=False)),
        ("W[l] is transposed: z[l] = W[l]·a[l−1] + b[l] with W[l] of shape (n_l, n_{l−1}), "
         "not W[l]ᵀ·a[l−1]", _forward(params, x, activation, transpose_W=True)),
        ("the layers are used in reverse order: params[0] is layer 1",
         _forward(params, x, activation, reverse=True)),
    ]
    for other in ACTIVATION_NAMES:
        if other != activation:
            variants.append((f"used g = {other} although activation = {activation!r}: look g "
                             "up with ACTIVATIONS[activation].g", _forward(params, x, other)))
    if isinstance(result, (list, tuple)) and len(result) == 2 and \
            isinstance(result[1], (list, tuple)) and len(result[1]) == len(params):
        return _named("a has L + 1 entries: a[0] = x comes first, then a[l] = g(z[l]) for "
                      f"l = 1..{len(params)} (you returned L = {len(params)} of them)")
    return _explain(result, ref, _forward_template(_sizes(params)), variants,
                    "z[l] = W[l]·a[l−1] + b[l], a[l] = g(z[l])")


def check_forward(student_fn, seed=0):
    """(z, a) for random networks, depth 1..4, non-square and square, three activations."""
    rng = np.random.default_rng(seed)
    v = VISIBLE
    visible_answer = _forward(v["params"], v["x"], v["activation"])

    def run(case):
        params, x, activation = case["params"], case["x"], case["activation"]
        ref = _forward(params, x, activation)
        given = (_copy_params(params), x.copy())
        result = _student(student_fn, "forward", given[0], given[1], activation)
        if _hard_coded(result, visible_answer):
            raise AssertionError(HARD_CODED.format(name="forward"))
        _unchanged("forward", (params, x), given)
        if allclose(result, ref, 1e-9, 1e-12):
            return None
        message = explain_forward(params, x, activation, result)
        return (message.named, message)

    _run_cases("forward", _network_cases(rng), run)


# --------------------------------------------------------------------------------------------
# Task 3: the network's Jacobian ∂a[L]/∂x, a chain of Jacobian products
# --------------------------------------------------------------------------------------------


def _network_jacobian(params, z, activation, d_g=True, side="left", transpose_W=False,
                      g_at_a=False):
    """∂a[L]/∂x = D[L] W[L] ··· D[1] W[1], D[l] = diag(g′(z[l])), and the typical mistakes."""
    gp, g = _gp(activation), _g(activation)
    J = None
    for (W, _), zl in zip(params, z):
        d = gp(g(zl)) if g_at_a else gp(zl)
        W = W.T if transpose_W else W
        if d_g and W.shape[0] != len(d):
            return None
        factor = (d[:, None] if d_g else 1.0) * W
        if J is None:
            J = factor
        elif side == "left":
            if factor.shape[1] != J.shape[0]:
                return None
            J = factor @ J
        else:  # the later layer on the right
            if J.shape[1] != factor.shape[0]:
                return None
            J = J @ factor
    return J


def explain_network_jacobian(params, z, activation, result, reference=None):
    """Why ``result`` is not ∂a[L]/∂x = D[L] W[L] ··· D[1] W[1]."""
    ref = _network_jacobian(params, z, activation) if reference is None else reference
    n_L, n_0 = params[-1][0].shape[0], params[0][0].shape[1]
    chain = "∂a[L]/∂x = D[L]·W[L]·D[L−1]·W[L−1] ··· D[1]·W[1] with D[l] = diag(g′(z[l]))"
    variants = [
        (f"the result is transposed: {chain} has shape (n_L, n_0), one row per output",
         [ref.T]),
        ("the Jacobians are multiplied on the wrong side: the later layer goes on the left, "
         f"∂a[l]/∂x = D[l]·W[l]·∂a[l−1]/∂x; {chain}",
         _network_jacobian(params, z, activation, side="right")),
        (f"missing activation derivative: every layer contributes D[l]·W[l]; {chain}",
         _network_jacobian(params, z, activation, d_g=False)),
        ("g′ is evaluated at a[l] = g(z[l]) instead of z[l]: D[l] = diag(g′(z[l]))",
         _network_jacobian(params, z, activation, g_at_a=True)),
        (f"W[l] is transposed in the product: ∂z[l]/∂a[l−1] = W[l]; {chain}",
         _network_jacobian(params, z, activation, transpose_W=True)),
        (f"wrong sign: {chain}", -ref),
    ]
    template = _leaf((n_L, n_0), "∂a[L]/∂x", " (one row per output a[L]_i, one column per x_j)")
    return _explain(result, [ref], template, variants,
                    "torch.autograd" if reference is not None else "the chain of Jacobians")


def check_network_jacobian(student_fn, seed=0):
    """∂a[L]/∂x for random networks against torch.autograd.functional.jacobian."""
    rng = np.random.default_rng(seed)
    v = VISIBLE
    vz, _ = _forward(v["params"], v["x"], v["activation"])
    visible_answer = [_network_jacobian(v["params"], vz, v["activation"])]

    def run(case):
        params, activation = case["params"], case["activation"]
        z, _ = _forward(params, case["x"], activation)
        ref = _oracle_network_jacobian(params, case["x"], activation)
        given = (_copy_params(params), [zl.copy() for zl in z])
        result = _student(student_fn, "network_jacobian", given[0], given[1], activation)
        if _hard_coded(result, visible_answer):
            raise AssertionError(HARD_CODED.format(name="network_jacobian"))
        _unchanged("network_jacobian", (params, z), given)
        if allclose(result, ref):
            return None
        message = explain_network_jacobian(params, z, activation, result, reference=ref)
        return (message.named, message)

    _run_cases("network_jacobian", _network_cases(rng), run)


# --------------------------------------------------------------------------------------------
# Tasks 4 and 5: the backward pass, with Jacobians and with Hadamard products
# --------------------------------------------------------------------------------------------


def _backward(params, z, a, t, activation, sign=1.0, gprime_out=True, gprime_rec=True,
              gprime_at_a=False, product="WT", gprime_shift=0, w_shift=0, propagate="yes",
              a_shift=0, dW="outer", db="delta", order="forward", pair="dW_db"):
    """[(dW, db), ...] by the delta recursion, and (by the keywords) the typical mistakes.

    ``product``: "WT" (δ[l] = g′(z[l]) ⊙ W[l+1]ᵀ δ[l+1], right), "W" (W[l+1] δ[l+1]) or
    "J" (the Jacobian on the wrong side, W[l+1]·diag(g′(z[l]))·δ[l+1]). ``dW``: "outer"
    (δ[l] a[l−1]ᵀ, right) or "transposed" (a[l−1] δ[l]ᵀ). Returns None where a mistake cannot
    be computed for these shapes (it would have raised an error in the student's code).
    """
    gp, g = _gp(activation), _g(activation)
    L = len(params)
    Ws = [W for W, _ in params]

    def d(l):  # g'(z[l]) for the book's layer l (clamped to 1..L)
        l = min(max(l, 1), L)
        return gp(g(z[l - 1])) if gprime_at_a else gp(z[l - 1])

    delta = [None] * (L + 1)  # delta[l] is the book's δ[l]
    delta[L] = sign * (a[L] - t) * (d(L) if gprime_out else 1.0)
    for l in range(L - 1, 0, -1):
        if propagate == "zero":
            delta[l] = np.zeros_like(z[l - 1])
            continue
        if propagate == "copy":
            if delta[L].shape != z[l - 1].shape:
                return None
            delta[l] = delta[L].copy()
            continue
        W = Ws[min(max(l + w_shift, 0), L - 1)]  # Ws[l] is the book's W[l+1]
        factor = d(l + gprime_shift) if gprime_rec else 1.0
        nxt = delta[l + 1]
        try:
            if product == "WT":
                back = W.T @ nxt
            elif product == "W":
                back = W @ nxt
            else:  # "J": the Jacobian W[l+1] diag(g'(z[l])) applied on the wrong side
                back = W @ (np.asarray(factor) * nxt)
                factor = 1.0
            delta[l] = factor * back
        except ValueError:
            return None
        if delta[l].shape != z[l - 1].shape:
            return None
    grads = []
    for l in range(1, L + 1):
        prev = a[min(l - 1 + a_shift, L)]
        dWl = np.outer(delta[l], prev) if dW == "outer" else np.outer(prev, delta[l])
        dbl = {"delta": delta[l].copy(), "zero": np.zeros_like(delta[l])}[db]
        grads.append((dbl, dWl) if pair == "db_dW" else (dWl, dbl))
    return grads[::-1] if order == "reverse" else grads


def _backward_variants(params, z, a, t, activation):
    def v(**kw):
        return _backward(params, z, a, t, activation, **kw)

    rule = "δ[l] = g′(z[l]) ⊙ (W[l+1]ᵀ·δ[l+1])"
    return [
        ("dW is transposed: ∂E/∂W[l] = δ[l]·a[l−1]ᵀ (np.outer(delta, a_prev)), of the shape "
         "(n_l, n_{l−1}) of W[l]; you computed a[l−1]·δ[l]ᵀ", v(dW="transposed")),
        (f"wrong product order: the recursion needs the transpose, {rule}; you computed "
         "W[l+1]·δ[l+1] (it runs only where W[l+1] is square)", v(product="W")),
        ("the Jacobian is multiplied on the wrong side: δ[l] = J[l+1]ᵀ·δ[l+1] with "
         "J[l+1] = ∂z[l+1]/∂z[l] = W[l+1]·diag(g′(z[l])) (the vector–Jacobian product "
         "δ[l+1]ᵀ·J[l+1]); you computed J[l+1]·δ[l+1]", v(product="J")),
        ("wrong sign: δ[L] = g′(z[L]) ⊙ (a[L] − t), not (t − a[L])", v(sign=-1.0)),
        ("missing activation derivative g′(z[l]) in every layer: δ[L] = g′(z[L]) ⊙ (a[L] − t) "
         f"and {rule}", v(gprime_out=False, gprime_rec=False)),
        ("missing activation derivative g′(z[L]) in the output layer: "
         "δ[L] = g′(z[L]) ⊙ (a[L] − t)", v(gprime_out=False)),
        (f"missing activation derivative g′(z[l]) in the recursion {rule}", v(gprime_rec=False)),
        ("g′ is evaluated at a[l] instead of z[l]: ACTIVATIONS[...].g_prime takes the "
         "pre-activation z[l]", v(gprime_at_a=True)),
        ("delta is not propagated to earlier layers: only δ[L] is computed; for l = L−1, …, 1 "
         f"use {rule}", v(propagate="zero")),
        (f"delta is not propagated: δ[L] is reused for every layer instead of {rule}",
         v(propagate="copy")),
        ("off by a layer: ∂E/∂W[l] = δ[l]·a[l−1]ᵀ, you used a[l]", v(a_shift=1)),
        (f"off by a layer: the recursion uses W[l] where it needs W[l+1] ({rule}; params[l] "
         "holds the book's W[l+1])", v(w_shift=-1)),
        (f"off by a layer: the recursion uses g′(z[l+1]) where it needs g′(z[l]) ({rule})",
         v(gprime_shift=1)),
        ("db is zero: the bias has a gradient too, ∂E/∂b[l] = δ[l]", v(db="zero")),
        ("the list is in reverse order: grads[l - 1] is the book's layer l, layer 1 first",
         v(order="reverse")),
        ("each pair is in the wrong order: grads[l - 1] = (dW, db), not (db, dW)",
         v(pair="db_dW")),
    ]


def _backward_template(sizes):
    L = len(sizes) - 1
    pairs = [
        _seq([_leaf((n, m), f"dW[{l}]", " (∂E/∂W[l] has the shape (n_l, n_{l−1}) of W[l])"),
              _leaf((n,), f"db[{l}]", " (∂E/∂b[l] has the shape (n_l,) of b[l])")],
             f"grads[{l - 1}]", "a pair (dW, db)")
        for l, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]), start=1)
    ]
    return _seq(pairs, "the result", f"a list of L = {L} pairs (dW, db), layer 1 first")


def explain_backward(params, z, a, t, activation, result, name="backward", reference=None):
    """Why ``result`` is not [(∂E/∂W[l], ∂E/∂b[l]) for l = 1..L] of E = ½‖a[L] − t‖²."""
    ref = _backward(params, z, a, t, activation) if reference is None else reference
    message = _explain(result, ref, _backward_template(_sizes(params)),
                       _backward_variants(params, z, a, t, activation),
                       "torch.autograd" if reference is not None else "the delta recursion")
    return message


def _check_backward(student_fn, name, seed):
    rng = np.random.default_rng(seed)
    v = VISIBLE
    vz, va = _forward(v["params"], v["x"], v["activation"])
    visible_answer = _backward(v["params"], vz, va, v["t"], v["activation"])

    def run(case):
        params, t, activation = case["params"], case["t"], case["activation"]
        z, a = _forward(params, case["x"], activation)
        ref = _oracle_gradients(params, case["x"], t, activation)
        given = (_copy_params(params), [zl.copy() for zl in z], [al.copy() for al in a],
                 t.copy())
        result = _student(student_fn, name, *given, activation)
        if _hard_coded(result, visible_answer):
            raise AssertionError(HARD_CODED.format(name=name))
        _unchanged(name, (params, z, a, t), given)
        if allclose(result, ref):
            return None
        message = explain_backward(params, z, a, t, activation, result, name, reference=ref)
        return (message.named, message)

    _run_cases(name, _network_cases(rng), run)


def check_backward_jacobian(student_fn, seed=0):
    """[(dW, db), ...] for random networks, depth 1..4, against torch.autograd."""
    _check_backward(student_fn, "backward_jacobian", seed)


def check_backward_hadamard(student_fn, seed=0):
    """[(dW, db), ...] for random networks, depth 1..4, against torch.autograd."""
    _check_backward(student_fn, "backward_hadamard", seed)


# --------------------------------------------------------------------------------------------
# Task 6: the multi-output sigmoid network with squared error, index by index
# --------------------------------------------------------------------------------------------


def _output_delta_variants(O, t):
    right = (O - t) * O * (1 - O)
    return [
        ("wrong sign: δ_k = (O_k − t_k)·O_k·(1 − O_k); the factor O_k(O_k − 1) found in some "
         "lecture notes has the wrong sign (σ′ = σ(1 − σ) = O_k(1 − O_k) > 0)",
         [(O - t) * O * (O - 1)]),
        ("missing activation derivative: δ_k = ∂E/∂z_k = (O_k − t_k)·σ′(z_k) with "
         "σ′(z_k) = O_k(1 − O_k); (O_k − t_k) alone is ∂E/∂O_k", [O - t]),
        ("the error factor is missing: δ_k = (O_k − t_k)·O_k·(1 − O_k), you returned "
         "σ′ = O_k(1 − O_k)", [O * (1 - O)]),
        ("σ′(z_k) = O_k(1 − O_k) is a function of the output O_k: you used σ(O_k)(1 − σ(O_k))",
         [(O - t) * _gp("sigmoid")(O)]),
        ("a factor is missing: δ_k = (O_k − t_k)·O_k·(1 − O_k)", [(O - t) * O]),
        ("a factor is missing: δ_k = (O_k − t_k)·O_k·(1 − O_k)", [(O - t) * (1 - O)]),
    ]


def explain_output_delta(O, t, result):
    """Why ``result`` is not δ_k = (O_k − t_k)·O_k·(1 − O_k)."""
    O, t = np.asarray(O, dtype=float), np.asarray(t, dtype=float)
    template = _leaf(O.shape, "δ", " (one δ_k per output unit k)")
    return _explain(result, [(O - t) * O * (1 - O)], template, _output_delta_variants(O, t),
                    "torch.autograd")


def _oracle_output_delta(O, t):
    """δ = ∂E/∂z by torch.autograd, with z = σ⁻¹(O) (E = ½‖σ(z) − t‖²)."""
    torch = _torch()
    z = torch.tensor(np.log(O / (1 - O)), dtype=torch.float64, requires_grad=True)
    E = 0.5 * ((torch.sigmoid(z) - torch.tensor(t, dtype=torch.float64)) ** 2).sum()
    E.backward()
    return z.grad.numpy().copy()


def check_output_delta(student_fn, seed=0):
    """δ_k for random outputs O in (0, 1) and targets t, K = 1..6 units."""
    rng = np.random.default_rng(seed)
    visible = VISIBLE["output_delta"]
    visible_answer = [(visible["O"] - visible["t"]) * visible["O"] * (1 - visible["O"])]
    for K in rng.permutation(np.arange(1, 7)):
        O = rng.uniform(0.05, 0.95, size=int(K))
        t = rng.choice([0.0, 1.0], size=int(K)) if rng.random() < 0.5 else rng.uniform(
            0.0, 1.0, size=int(K))
        ref = _oracle_output_delta(O, t)
        given = (O.copy(), t.copy())
        result = _student(student_fn, "output_delta", *given)
        if _hard_coded(result, visible_answer):
            raise AssertionError(HARD_CODED.format(name="output_delta"))
        _unchanged("output_delta", (O, t), given)
        if not allclose(result, ref):
            raise AssertionError(f"output_delta (K = {K} outputs): "
                                 + explain_output_delta(O, t, result))


def _hidden_delta_variants(O_h, W, d):
    s = O_h * (1 - O_h)
    sq = W.shape[0] == W.shape[1]
    return [
        ("wrong product order: δ_j = O_j(1 − O_j)·Σ_k W_next[k, j]·δ_k, i.e. "
         "O(1 − O) ⊙ (W_nextᵀ·δ_next); you computed W_next·δ_next (it runs only where W_next "
         "is square)", [s * (W @ d)] if sq else None),
        ("wrong sign: δ_j = O_j(1 − O_j)·Σ_k W_next[k, j]·δ_k; the factor O_j(O_j − 1) found "
         "in some lecture notes has the wrong sign", [-s * (W.T @ d)]),
        ("missing activation derivative O_j(1 − O_j): δ_j = O_j(1 − O_j)·Σ_k W_next[k, j]·δ_k",
         [W.T @ d]),
        ("σ′(z_j) = O_j(1 − O_j) is a function of the output O_j: you used σ(O_j)(1 − σ(O_j))",
         [_gp("sigmoid")(O_h) * (W.T @ d)]),
    ]


def explain_hidden_delta(O_hidden, W_next, delta_next, result):
    """Why ``result`` is not δ_j = O_j(1 − O_j)·Σ_k W_next[k, j]·δ_next[k]."""
    O_h, W, d = (np.asarray(v, dtype=float) for v in (O_hidden, W_next, delta_next))
    template = _leaf(O_h.shape, "δ (hidden)", " (one δ_j per hidden unit j)")
    return _explain(result, [O_h * (1 - O_h) * (W.T @ d)], template,
                    _hidden_delta_variants(O_h, W, d), "torch.autograd")


def _oracle_hidden_delta(O_h, W, d):
    """∂E/∂z_hidden by torch.autograd for E with ∂E/∂z_next = delta_next (a linear surrogate)."""
    torch = _torch()
    z = torch.tensor(np.log(O_h / (1 - O_h)), dtype=torch.float64, requires_grad=True)
    z_next = torch.tensor(W, dtype=torch.float64) @ torch.sigmoid(z)
    (z_next * torch.tensor(d, dtype=torch.float64)).sum().backward()
    return z.grad.numpy().copy()


def check_hidden_delta(student_fn, seed=0):
    """δ_hidden for random widths (H hidden, K next units; non-square and square W_next)."""
    rng = np.random.default_rng(seed)
    visible = VISIBLE["hidden_delta"]
    visible_answer = [visible["O_hidden"] * (1 - visible["O_hidden"])
                      * (visible["W_next"].T @ visible["delta_next"])]
    shapes = [tuple(int(n) for n in rng.choice(np.arange(1, 7), size=2, replace=False))
              for _ in range(5)]
    shapes += [(n, n) for n in (2, 4)]
    failures = []
    for K, H in [shapes[i] for i in rng.permutation(len(shapes))]:
        O_h = rng.uniform(0.05, 0.95, size=H)
        W = rng.normal(0.0, 1.0, size=(K, H))
        d = rng.normal(0.0, 0.3, size=K)
        ref = _oracle_hidden_delta(O_h, W, d)
        given = (O_h.copy(), W.copy(), d.copy())
        try:
            result = _student(student_fn, "hidden_delta", *given)
        except AssertionError as exc:
            if "reference implementation" in str(exc) or "torch's autograd" in str(exc):
                raise
            failures.append((False, f"hidden_delta (H = {H}, K = {K}): {exc}"))
            continue
        if _hard_coded(result, visible_answer):
            raise AssertionError(HARD_CODED.format(name="hidden_delta"))
        _unchanged("hidden_delta", (O_h, W, d), given)
        if not allclose(result, ref):
            message = explain_hidden_delta(O_h, W, d, result)
            failures.append((message.named,
                             f"hidden_delta (H = {H} hidden units, K = {K} next units): "
                             + message))
    if failures:
        failures.sort(key=lambda f: not f[0])
        raise AssertionError(failures[0][1])


# --------------------------------------------------------------------------------------------
# Task 7: the Jacobian of a sigmoid layer with SymPy
# --------------------------------------------------------------------------------------------


def layer_symbols(n_out, n_in):
    """(W, b, x) of one layer as SymPy matrices: W (n_out, n_in) of symbols w1_jk, b (n_out, 1)
    of b1_j, x (n_in, 1) of x_k, all real (the chapter's names, 1-based)."""
    W = sp.Matrix(n_out, n_in, lambda j, k: sp.Symbol(f"w1_{j + 1}{k + 1}", real=True))
    b = sp.Matrix(n_out, 1, lambda j, _: sp.Symbol(f"b1_{j + 1}", real=True))
    x = sp.Matrix(n_in, 1, lambda k, _: sp.Symbol(f"x{k + 1}", real=True))
    return W, b, x


def _sigma(u):
    return 1 / (1 + sp.exp(-u))


def _symbolic_reference(W, b, x):
    a = (W * x + b).applyfunc(_sigma)
    return a.jacobian(x), a


def _as_matrix(result, shape):
    if isinstance(result, sp.MatrixBase):
        return sp.Matrix(result)
    if isinstance(result, sp.Expr) and shape == (1, 1):
        return sp.Matrix([[result]])
    raise AssertionError(
        f"wrong return type: symbolic_jacobian must return a SymPy Matrix of shape {shape}, got "
        f"{type(result).__name__}")


def _points(rng, symbols, n):
    """n random points: an exact nonzero rational in [-1.5, 1.5] for every symbol."""
    return [{s: sp.Rational(int(rng.choice([-1, 1]) * rng.integers(1, 151)), 100)
             for s in symbols} for _ in range(n)]


def _values(M, symbols, points):
    """M's entries (row by row) at the points, with mpmath at 40 digits: a list per point."""
    f = sp.lambdify(symbols, list(M), "mpmath")  # one function for every entry
    out = []
    with mpmath.workdps(40):
        for p in points:
            row = f(*[mpmath.mpf(p[s].p) / p[s].q for s in symbols])
            out.append([complex(v) if isinstance(v, mpmath.mpc) else mpmath.mpf(v)
                        for v in row])
    return out


def _same_values(u, v):
    with mpmath.workdps(40):
        return len(u) == len(v) and all(
            len(ru) == len(rv) and all(
                not isinstance(p, complex) and not isinstance(q, complex)
                and abs(p - q) <= mpmath.mpf(10) ** -25 * max(1, abs(q))
                for p, q in zip(ru, rv))
            for ru, rv in zip(u, v))


def _layer_symbols_of(W, b, x):
    return sorted(W.free_symbols | b.free_symbols | x.free_symbols, key=str)


def explain_symbolic_jacobian(W, b, x, result, points=None):
    """Why ``result`` is not ∂a/∂x of a = σ(W x + b) ('' if it is equivalent)."""
    W, b, x = sp.Matrix(W), sp.Matrix(b), sp.Matrix(x)
    n, m = W.shape
    ref, a = _symbolic_reference(W, b, x)
    symbols = _layer_symbols_of(W, b, x)
    points = points or _points(np.random.default_rng(0), symbols, 3)
    try:
        M = _as_matrix(result, (n, m))
    except AssertionError as exc:
        return str(exc)
    extra = M.free_symbols - set(symbols)
    if extra:
        names = ", ".join(sorted(map(str, extra)))
        if {s.name for s in extra} <= {s.name for s in symbols}:
            return (f"the matrix uses symbols named {names} that are not the ones passed in "
                    "(those are real=True): build the Jacobian from the arguments W, b, x")
        return f"the matrix depends on {names}, which are not entries of W, b or x"
    try:
        values = _values(M, symbols, points)
    except Exception as exc:  # noqa: BLE001 -- e.g. an undefined function in the matrix
        return f"the matrix cannot be evaluated at numbers ({type(exc).__name__}: {exc})"
    if M.shape == (m, n) and n != m and _same_values(values, _values(ref.T, symbols, points)):
        return (f"the Jacobian is transposed: ∂a/∂x has one row per output a_i and one column "
                f"per input x_j, shape ({n}, {m}); got ({m}, {n})")
    if M.shape != (n, m):
        return (f"wrong shape: ∂a/∂x for W of shape ({n}, {m}) has shape ({n}, {m}) (one row "
                f"per a_i, one column per x_j), got {M.shape}")
    reference = _values(ref, symbols, points)
    if _same_values(values, reference):
        return ""
    variants = [
        ("wrong sign: ∂a/∂x = diag(σ′(z))·W with σ′ = σ(1 − σ) > 0; σ(z)(σ(z) − 1) has the "
         "wrong sign", -ref),
        ("missing activation derivative: W alone is ∂z/∂x; ∂a/∂x = diag(σ′(z))·W with "
         "z = W x + b", W),
        ("σ′ is evaluated at a = σ(z) instead of z: ∂a/∂x = diag(σ′(z))·W",
         sp.diag(*[_sigma(ai) * (1 - _sigma(ai)) for ai in a]) * W),
        ("row i must be scaled by σ′(z_i) = σ(z_i)(1 − σ(z_i)), not by σ(z_i): "
         "∂a/∂x = diag(σ′(z))·W", sp.diag(*list(a)) * W),
    ]
    for message, variant in variants:
        if _same_values(values, _values(variant, symbols, points)):
            return message
    p = points[0]
    first = next(i for i in range(n * m)
                 if not _same_values([[values[0][i]]], [[reference[0][i]]])) \
        if not _same_values(values[:1], reference[:1]) else 0
    i, j = divmod(first, m)
    shown = ", ".join(f"{s} = {p[s]}" for s in symbols[:6]) + (" …" if len(symbols) > 6 else "")
    got = values[0][first]
    return (f"symbolic_jacobian is not equivalent to ∂a/∂x: entry ({i}, {j}) at {shown} is "
            f"{got if isinstance(got, complex) else mpmath.nstr(got, 12)}, expected "
            f"{mpmath.nstr(reference[0][first], 12)} (Matrix.jacobian)")


def check_symbolic_jacobian(student_fn, seed=0):
    """∂a/∂x of a = σ(W x + b) for random layer shapes, equivalence at exact random points."""
    rng = np.random.default_rng(seed)
    vn, vm = VISIBLE["symbolic"]
    vW, vb, vx = layer_symbols(vn, vm)
    shapes = [(vn, vm)] + [tuple(int(k) for k in rng.choice(np.arange(1, 5), size=2,
                                                            replace=False)) for _ in range(3)]
    shapes.append((2, 2))
    for n, m in shapes:
        W, b, x = layer_symbols(n, m)
        points = _points(rng, _layer_symbols_of(W, b, x), 3)
        result = _student(student_fn, "symbolic_jacobian", W.copy(), b.copy(), x.copy())
        message = explain_symbolic_jacobian(W, b, x, result, points)
        if message:
            if (n, m) != (vn, vm) and not explain_symbolic_jacobian(vW, vb, vx, result):
                raise AssertionError(HARD_CODED.format(name="symbolic_jacobian"))
            raise AssertionError(f"symbolic_jacobian(W of shape ({n}, {m})): {message}")
