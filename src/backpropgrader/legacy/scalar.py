"""Checks for the scalar-backpropagation assignment (``solutions/scalar/scalar.ipynb``).

Each ``check_*`` function takes the student's function and a seed, draws random cases (depths
1..8, the activations ``sigmoid``, ``tanh`` and ``relu``, values over a wide range), compares the
student's answers with independent oracles (torch.autograd, SymPy, closed-form gradients) and
raises ``AssertionError`` naming the mistake when they differ. The ``explain_*`` functions turn a
wrong answer on one case into that message; the notebook's visible tests use them too.

A seed is anything ``numpy.random.default_rng`` accepts: an int, or a tuple of ints such as the
notebook's ``(GRADING_SEED, 1201)`` (one seed per student, one constant per test).

Task 2 is the chain *with biases*, z[l] = w[l]·a[l−1] + b[l] (the chapter's chain has none, and
its code is the package's :mod:`backpropbook.scalar`); its oracle is written here, in torch.

Diagnosis: for the same case the checks also compute what the typical mistakes would return
(wrong sign, missing g'(z[l]), delta not propagated, off-by-one layer, forward difference, ...).
When the student's answer matches one of them, the message says which.

While a student's function runs, the package's own implementations of the same task are
replaced by functions that raise, so an answer that just calls them fails with a message that
says so. Numerical warnings (overflow) raised by the student's code become failures too.

Python arrays are 0-based: ``w[l - 1]`` holds the book's w[l], and ``a[0] = x``.
"""

import math
import warnings

import mpmath
import numpy as np
import sympy as sp

from backpropbook import activations, gradcheck, scalar, symbolic
from backpropbook import testfunctions as functions
from backpropbook.activations import ACTIVATIONS
from backpropgrader.legacy.common import (HARD_CODED, blocked, call, close, distance,
                                         first_difference, is_plain, loose_array,
                                         reference_message)

__all__ = [
    "CHAIN_ACTIVATIONS",
    "GRADIENTS",
    "MAX_DEPTH",
    "TEST_FUNCTIONS",
    "VISIBLE",
    "check_centered_difference",
    "check_chain_backward",
    "check_chain_forward",
    "check_sigmoid",
    "check_sigmoid_prime",
    "check_symbolic_dE_dw",
    "explain_centered_difference",
    "explain_chain_backward",
    "explain_chain_forward",
    "explain_sigmoid",
    "explain_sigmoid_prime",
    "explain_symbolic_dE_dw",
    "test_function",
    "unpack",
    "unpack_pair",
]

CHAIN_ACTIVATIONS = ("sigmoid", "tanh", "relu")
MAX_DEPTH = 8

# The inputs of the notebook's visible tests. The hidden checks use them to recognise an answer
# that was hard-coded for the visible case.
VISIBLE = {
    "sigmoid": np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0]),
    "sigmoid_prime": np.array([-2.0, 0.0, 3.0]),
    "chain": {"x": 0.5, "w": np.array([1.0, -2.0, 0.5]), "b": np.array([0.1, 0.3, -0.2]),
              "y": 0.2, "activation": "sigmoid"},
    "centered_difference": {
        "function": "steep_quadratic",
        "x": np.array([[0.3, -1.2], [2.0, 0.5]]),
    },
    "symbolic": {"L": 2, "l": 1},
}

# --------------------------------------------------------------------------------------------
# Calling the student's code
# --------------------------------------------------------------------------------------------

def _blocked(*functions):
    """The package's reference ``functions`` raise while the block runs (see common.blocked)."""
    return blocked((fn, reference_message(fn)) for fn in functions)


def _as_array(value, name, shape=None, hint=""):
    """The student's ``value`` as a float64 array of ``shape``, or an AssertionError."""
    if not is_plain(value):
        raise AssertionError(
            f"wrong return type: {name} should be a NumPy array of floats"
            f"{'' if shape is None else f' of shape {shape}'}, got {type(value).__name__}"
        )
    try:
        array = np.asarray(value, dtype=float)
    except ValueError:
        raise AssertionError(f"wrong return type: {name} is a ragged nested list") from None
    if shape is not None and array.shape != tuple(shape):
        raise AssertionError(
            f"wrong shape: {name} should have shape {tuple(shape)}, got {array.shape}{hint}"
        )
    return array


_SHAPE_HINTS = {
    "z": " (z has one entry per layer: z[l - 1] holds the book's z[l], l = 1..L)",
    "a": " (a has L+1 entries: a[0] = x, then a[l] = g(z[l]) for l = 1..L)",
    "dw": " (dw has one entry per weight: dw[l - 1] = ∂E/∂w[l])",
    "db": " (db has one entry per bias: db[l - 1] = ∂E/∂b[l])",
    "delta": " (delta has one entry per layer: delta[l - 1] holds the book's δ[l])",
}


_TUPLES = {2: "pair", 3: "triple"}


def unpack(result, function, names, shapes):
    """Check that ``result`` is a tuple of arrays of the given shapes; return them as arrays.

    ``names`` and ``shapes`` have one entry per element, e.g. ``("z", "a")``, ``((3,), (4,))``.
    """
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        what = type(result).__name__
        if isinstance(result, (tuple, list)):
            what = f"a {what} of length {len(result)}"
        kind = _TUPLES.get(len(names), f"tuple of {len(names)}")
        raise AssertionError(
            f"wrong return type: {function} must return a {kind} ({', '.join(names)}), "
            f"got {what}"
        )
    return tuple(
        _as_array(value, name, shape, _SHAPE_HINTS.get(name, ""))
        for value, name, shape in zip(result, names, shapes)
    )


unpack_pair = unpack  # the older name, for pairs


def _diagnose(actual, reference, variants, rtol=1e-7, atol=1e-10, closeness=1e-2):
    """The message of the first mistake variant that ``actual`` matches, or None.

    ``actual`` and every variant are tuples of arrays. A variant that passes the check's own
    tolerance (``rtol``, ``atol``) cannot be told apart from a right answer and is skipped;
    ``actual`` matches a variant when it is far closer to it than the variant is to the
    reference (rounding differences between two ways of computing the same mistake are small).
    """
    for message, variant in variants:
        if all(close(v, r, rtol, atol) for v, r in zip(variant, reference)):
            continue
        if distance(actual, variant) <= closeness * distance(variant, reference):
            return message
    return None


def _hard_coded(actual, visible_answer, case_differs=True):
    """True if ``actual`` is the visible test's answer although the case is another one."""
    if not case_differs or visible_answer is None:
        return False
    return all(
        a is not None and close(a, v, 1e-9, 1e-12) for a, v in zip(actual, visible_answer)
    )


# --------------------------------------------------------------------------------------------
# Task 1: sigmoid and sigmoid'
# --------------------------------------------------------------------------------------------


def _sigmoid_cases(rng, limit):
    """Scalars (floats) and arrays of several shapes with entries in [-limit, limit]."""
    cases = [0.0, float(limit), -float(limit), float(rng.uniform(-limit, limit))]
    if limit >= 710:
        cases += [-709.9, -745.5, 710.5, -710.5]
    for shape in [(7,), (3, 4), (2, 3, 2), (1,)]:
        scale = rng.choice([1.0, 10.0, float(limit)], size=shape)
        cases.append(np.clip(rng.standard_normal(shape) * scale, -limit, limit))
    cases.append(np.linspace(-limit, limit, 11))
    return cases


def _describe(z):
    z = np.asarray(z)
    if z.ndim == 0:
        return f"z = {float(z):.6g}"
    return f"z of shape {z.shape} (entries from {z.min():.4g} to {z.max():.4g})"


def explain_sigmoid(z, result):
    """Why ``result`` is not sigma(z) (``result`` already has the right shape)."""
    z = np.asarray(z, dtype=float)
    s = activations.sigmoid(z)
    result = np.asarray(result, dtype=float)
    if np.isnan(result).any():
        return f"sigmoid gives nan for {_describe(z)}: for large |z| avoid inf/inf, use e^(-|z|)"
    mistake = _diagnose(
        (result,),
        (s,),
        [
            ("sigmoid computes sigma(-z) = 1 - sigma(z): check the sign of the exponent, "
             "sigma(z) = 1 / (1 + e^(-z))", (activations.sigmoid(-z),)),
            ("sigmoid returns e^(-z) / (1 + e^(-z)) = 1 - sigma(z): sigma(z) = 1 / (1 + e^(-z))",
             (1.0 - s,)),
        ],
        rtol=1e-9,
        atol=1e-15,
    )
    return mistake or first_difference(
        f"sigmoid({_describe(z)})", result, s, "sigma(z) = 1/(1+e^(-z))", 1e-9, 1e-15
    )


def check_sigmoid(student_sigmoid, seed=0):
    """sigma(z) for floats and arrays of any shape, |z| up to 1000, without overflow warnings."""
    rng = np.random.default_rng(seed)
    for z in _sigmoid_cases(rng, 1000.0):
        expected = activations.sigmoid(z)
        with _blocked(activations.sigmoid, activations.sigmoid_prime):
            try:
                result = call(student_sigmoid, "sigmoid", z if np.ndim(z) else float(z))
            except AssertionError as exc:
                if "overflow" in str(exc).lower():
                    raise AssertionError(
                        f"sigmoid is not numerically stable: overflow warning for {_describe(z)}"
                        f" ({exc}). e^(-z) overflows for z < -709: compute e^(-|z|) only, e.g. "
                        "sigma(z) = e^z / (1 + e^z) for z < 0 (np.where evaluates both "
                        "branches for every entry, so apply each formula only to its entries)"
                    ) from None
                raise
        result = _as_array(result, f"sigmoid({_describe(z)})", np.shape(z))
        if not close(result, expected, 1e-9, 1e-15):
            raise AssertionError(explain_sigmoid(z, result))


def explain_sigmoid_prime(z, result):
    """Why ``result`` is not sigma'(z) = sigma(z)(1 - sigma(z))."""
    z = np.asarray(z, dtype=float)
    s = activations.sigmoid(z)
    expected = s * (1.0 - s)
    result = np.asarray(result, dtype=float)
    mistake = _diagnose(
        (result,),
        (expected,),
        [
            ("wrong sign: sigma'(z) = sigma(z)(1 - sigma(z)), not sigma(z)(sigma(z) - 1); "
             "sigma is increasing, so sigma'(z) > 0", (-expected,)),
            ("sigmoid_prime returns sigma(z) itself, not its derivative "
             "sigma'(z) = sigma(z)(1 - sigma(z))", (s,)),
            ("sigma'(z) = sigma(z)(1 - sigma(z)) is a function of sigma(z), not of z: "
             "you computed z(1 - z)", (z * (1.0 - z),)),
            ("missing factor: sigma'(z) = sigma(z)(1 - sigma(z)), you returned 1 - sigma(z)",
             (1.0 - s,)),
        ],
        rtol=1e-9,
        atol=1e-15,
    )
    return mistake or first_difference(
        f"sigmoid_prime({_describe(z)})", result, expected, "sigma(z)(1 - sigma(z))", 1e-9, 1e-15
    )


def check_sigmoid_prime(student_sigmoid_prime, seed=0):
    """sigma'(z) = sigma(z)(1 - sigma(z)) for floats and arrays, |z| up to 40."""
    rng = np.random.default_rng(seed)
    for z in _sigmoid_cases(rng, 40.0):
        s = activations.sigmoid(z)
        expected = s * (1.0 - s)
        with _blocked(activations.sigmoid, activations.sigmoid_prime):
            result = call(student_sigmoid_prime, "sigmoid_prime", z if np.ndim(z) else float(z))
        result = _as_array(result, f"sigmoid_prime({_describe(z)})", np.shape(z))
        if not close(result, expected, 1e-9, 1e-15):
            raise AssertionError(explain_sigmoid_prime(z, result))


# --------------------------------------------------------------------------------------------
# Task 2: the chain with biases, forward and backward
# --------------------------------------------------------------------------------------------


def _chain_cases(rng, n_rounds=3):
    """Every depth 1..MAX_DEPTH and every activation, in random order, ``n_rounds`` times over."""
    cases = []
    for _ in range(n_rounds):
        for L in rng.permutation(np.arange(1, MAX_DEPTH + 1)):
            cases.append({
                "x": float(rng.uniform(-2.0, 2.0)),
                "w": rng.normal(0.0, 1.5, size=int(L)),
                "b": rng.normal(0.0, 1.0, size=int(L)),
                "y": float(rng.uniform(-1.0, 1.0)),
                "activation": str(rng.choice(CHAIN_ACTIVATIONS)),
            })
    return cases


def _forward(x, w, b, activation, reverse=False, apply_g=True, z_chain=False, bias="in"):
    """The forward pass of the chain with biases, and (by the keywords) the typical mistakes.

    ``bias``: "in" (z[l] = w[l]·a[l−1] + b[l], right), "none" (the bias left out) or "after"
    (a[l] = g(w[l]·a[l−1]) + b[l], the bias added after the activation; z keeps w[l]·a[l−1]).
    """
    g = ACTIVATIONS[activation].g
    w, b = np.asarray(w, dtype=float), np.asarray(b, dtype=float)
    if reverse:
        w, b = w[::-1], b[::-1]
    L = len(w)
    z, a = np.empty(L), np.empty(L + 1)
    a[0] = x
    for l in range(1, L + 1):
        previous = (x if l == 1 else z[l - 2]) if z_chain else a[l - 1]
        z[l - 1] = w[l - 1] * previous + (b[l - 1] if bias == "in" else 0.0)
        a[l] = float(g(z[l - 1])) if apply_g else z[l - 1]
        if bias == "after":
            a[l] += b[l - 1]
    return z, a


def _forward_variants(x, w, b, activation):
    variants = [
        ("the bias is left out: z[l] = w[l]·a[l−1] + b[l]", _forward(x, w, b, activation,
                                                                     bias="none")),
        ("the bias is added after the activation: it belongs inside, z[l] = w[l]·a[l−1] + b[l] "
         "and then a[l] = g(z[l])", _forward(x, w, b, activation, bias="after")),
        ("the activation g is not applied: a[l] = g(z[l]), not z[l]",
         _forward(x, w, b, activation, apply_g=False)),
        ("z[l] = w[l]·a[l−1] + b[l] multiplies the previous activation a[l−1], not the previous "
         "pre-activation z[l−1]", _forward(x, w, b, activation, z_chain=True)),
        ("the layers are used in reverse order: layer l uses w[l] and b[l] (w[l - 1] and "
         "b[l - 1] in 0-based Python), layer 1 first", _forward(x, w, b, activation, reverse=True)),
    ]
    for other in CHAIN_ACTIVATIONS:
        if other != activation:
            variants.append((
                f"used g = {other} although activation = {activation!r}: look g up with "
                "ACTIVATIONS[activation].g", _forward(x, w, b, other)))
    return variants


def explain_chain_forward(x, w, b, activation, z, a):
    """Why ``(z, a)`` is not the forward pass of the chain with biases (shapes already right)."""
    ref = _forward(x, w, b, activation)
    z, a = np.asarray(z, dtype=float), np.asarray(a, dtype=float)
    if close(a[1:], ref[0], 1e-9, 1e-12) and close(z, ref[1][1:], 1e-9, 1e-12):
        return "z and a are swapped: z[l] = w[l]·a[l−1] + b[l] comes before a[l] = g(z[l])"
    if not np.isclose(a[0], x):
        return f"a[0] must be the input x = {x:.6g}, got {a[0]:.6g}"
    mistake = _diagnose((z, a), ref, _forward_variants(x, w, b, activation), 1e-9, 1e-12)
    if mistake:
        return mistake
    if not close(z, ref[0], 1e-9, 1e-12):
        return first_difference("z", z, ref[0], "z[l] = w[l]·a[l−1] + b[l]", 1e-9, 1e-12)
    return first_difference("a", a, ref[1], "a[l] = g(z[l])", 1e-9, 1e-12)


def _same_case(case, visible, names):
    """True if ``case`` is the visible test's case (same values for ``names``)."""
    return all(np.array_equal(np.asarray(case[n]), np.asarray(visible[n])) for n in names)


def check_chain_forward(student_chain_forward, seed=0):
    """(z, a) for random chains with biases, depth 1..8, with sigmoid, tanh and relu."""
    rng = np.random.default_rng(seed)
    visible = VISIBLE["chain"]
    visible_answer = _forward(visible["x"], visible["w"], visible["b"], visible["activation"])
    for case in _chain_cases(rng):
        x, w, b, activation = case["x"], case["w"], case["b"], case["activation"]
        L = len(w)
        z_ref, a_ref = _forward(x, w, b, activation)
        w_given, b_given = w.copy(), b.copy()
        with _blocked(scalar.chain_forward, scalar.chain_gradient, scalar.chain_loss):
            result = call(student_chain_forward, "chain_forward", x, w_given, b_given, activation)
        if isinstance(result, (tuple, list)) and len(result) == 2:
            loose = tuple(loose_array(r) for r in result)
            if _hard_coded(loose, visible_answer,
                           case_differs=not _same_case(case, visible, ("x", "w", "b"))):
                raise AssertionError(HARD_CODED.format(name="chain_forward"))
        z, a = unpack(result, "chain_forward", ("z", "a"), ((L,), (L + 1,)))
        for name, before, after in (("w", w, w_given), ("b", b, b_given)):
            if not np.array_equal(before, after):
                raise AssertionError(f"chain_forward modified its argument {name}: "
                                     "do not change the inputs")
        if not (close(z, z_ref, 1e-9, 1e-12) and close(a, a_ref, 1e-9, 1e-12)):
            raise AssertionError(
                f"depth L = {L}, activation {activation!r}: "
                + explain_chain_forward(x, w, b, activation, z, a)
            )


def _torch_chain(x, w, b, y, activation):
    """(dw, db, delta) by torch.autograd in float64: the oracle for the backward pass."""
    import torch  # imported here: only the backward check needs it

    g = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    w_t = torch.tensor(np.asarray(w, dtype=float), dtype=torch.float64, requires_grad=True)
    b_t = torch.tensor(np.asarray(b, dtype=float), dtype=torch.float64, requires_grad=True)
    a = torch.tensor(float(x), dtype=torch.float64)
    zs = []
    for l in range(len(w_t)):
        z = w_t[l] * a + b_t[l]
        z.retain_grad()
        zs.append(z)
        a = g(z)
    E = 0.5 * (a - float(y)) ** 2
    E.backward()
    delta = np.array([float(z.grad) for z in zs])
    return w_t.grad.numpy().copy(), b_t.grad.numpy().copy(), delta


def _backward(w, z, a, y, activation, sign=1.0, gprime_out=True, gprime_rec=True,
              gprime_at_a=False, use_w=True, w_shift=0, gprime_shift=0, propagate="yes",
              a_shift=0, times_a=True, db="delta"):
    """(dw, db, delta) by the delta recursion, and (by the keywords) the typical mistakes.

    ``db``: "delta" (∂E/∂b[l] = δ[l], right), "like_dw" (δ[l]·a[l−1]) or "zero".
    """
    g_prime = ACTIVATIONS[activation].g_prime
    w, z, a = (np.asarray(v, dtype=float) for v in (w, z, a))
    L = len(w)
    at = a[1:] if gprime_at_a else z  # where g' is evaluated, by layer (0-based)

    def gp(index):
        return float(g_prime(at[min(max(index, 0), L - 1)]))

    delta = np.zeros(L)
    delta[L - 1] = sign * (a[L] - y) * (gp(L - 1) if gprime_out else 1.0)
    for l in range(L - 1, 0, -1):  # the book's layer l is index l - 1
        if propagate == "zero":
            delta[l - 1] = 0.0
        elif propagate == "copy":
            delta[l - 1] = delta[L - 1]
        else:
            factor = gp(l - 1 + gprime_shift) if gprime_rec else 1.0
            weight = w[min(l + w_shift, L - 1)] if use_w else 1.0
            delta[l - 1] = factor * weight * delta[l]
    dw = delta * a[a_shift:L + a_shift] if times_a else delta.copy()
    d_b = {"delta": delta.copy(), "like_dw": delta * a[:L], "zero": np.zeros(L)}[db]
    return dw, d_b, delta


def _backward_variants(w, z, a, y, activation):
    def v(**kw):
        return _backward(w, z, a, y, activation, **kw)

    dw, db, delta = v()
    order = "the results are in the wrong order: chain_backward returns (dw, db, delta)"
    return [
        ("db is computed like dw, as δ[l]·a[l−1]: ∂E/∂b[l] = δ[l]·∂z[l]/∂b[l] and "
         "∂z[l]/∂b[l] = 1 (the bias is not multiplied by a[l−1]), so ∂E/∂b[l] = δ[l]",
         v(db="like_dw")),
        ("db is zero: the bias has a gradient too, ∂E/∂b[l] = δ[l]·∂z[l]/∂b[l] = δ[l]",
         v(db="zero")),
        ("wrong sign: δ[L] = (ŷ − y)·g′(z[L]), not (y − ŷ)·g′(z[L])", v(sign=-1.0)),
        (order, (delta, db, dw)),
        (order, (db, dw, delta)),
        ("missing activation derivative g′(z[l]) in every layer: δ[L] = (ŷ − y)·g′(z[L]) and "
         "δ[l] = g′(z[l])·w[l+1]·δ[l+1]", v(gprime_out=False, gprime_rec=False)),
        ("missing activation derivative g′(z[L]) in the output layer: δ[L] = (ŷ − y)·g′(z[L])",
         v(gprime_out=False)),
        ("missing activation derivative g′(z[l]) in the recursion δ[l] = g′(z[l])·w[l+1]·δ[l+1]",
         v(gprime_rec=False)),
        ("g′ is evaluated at a[l] instead of z[l]: δ[l] = g′(z[l])·w[l+1]·δ[l+1], and "
         "ACTIVATIONS[...].g_prime takes the pre-activation z", v(gprime_at_a=True)),
        ("delta is not propagated to earlier layers: only δ[L] is computed; for l = L−1, …, 1 "
         "use δ[l] = g′(z[l])·w[l+1]·δ[l+1]", v(propagate="zero")),
        ("delta is not propagated to earlier layers: δ[L] is reused for every layer instead of "
         "δ[l] = g′(z[l])·w[l+1]·δ[l+1]", v(propagate="copy")),
        ("w[l+1] is missing in the recursion δ[l] = g′(z[l])·w[l+1]·δ[l+1]", v(use_w=False)),
        ("off-by-one layer: the recursion uses w[l] where it needs w[l+1] "
         "(δ[l] = g′(z[l])·w[l+1]·δ[l+1]; in 0-based Python the book's w[l+1] is w[l])",
         v(w_shift=-1)),
        ("off-by-one layer: the recursion uses g′(z[l+1]) where it needs g′(z[l])",
         v(gprime_shift=1)),
        ("off-by-one layer: ∂E/∂w[l] = δ[l]·a[l−1], you used a[l]", v(a_shift=1)),
        ("∂E/∂w[l] = δ[l]·a[l−1]: the factor a[l−1] is missing (dw equals delta)",
         v(times_a=False)),
    ]


def explain_chain_backward(w, z, a, y, activation, dw, db, delta, reference=None):
    """Why ``(dw, db, delta)`` is not the gradient of the chain (shapes already right)."""
    oracle = "torch.autograd" if reference is not None else "the delta recursion"
    ref = reference if reference is not None else _backward(w, z, a, y, activation)
    dw_ref, db_ref, delta_ref = ref
    dw, db, delta = (np.asarray(v, dtype=float) for v in (dw, db, delta))
    mistake = _diagnose((dw, db, delta), ref, _backward_variants(w, z, a, y, activation),
                        1e-7, 1e-10)
    if mistake:
        return mistake
    right = {name: close(mine, theirs, 1e-7, 1e-10)
             for name, mine, theirs in zip(("dw", "db", "delta"), (dw, db, delta), ref)}
    if right["delta"] and right["dw"]:
        return ("delta and dw are right but db is not: ∂E/∂b[l] = δ[l]·∂z[l]/∂b[l] = δ[l]; "
                + first_difference("db", db, db_ref, oracle, 1e-7, 1e-10))
    if right["delta"]:
        return "delta is right but dw is not: ∂E/∂w[l] = δ[l]·a[l−1]; " + first_difference(
            "dw", dw, dw_ref, oracle, 1e-7, 1e-10)
    if len(delta) > 1 and close(delta[-1], delta_ref[-1], 1e-7, 1e-10):
        return (
            "only the last layer is right: δ[L] matches but the delta is not propagated "
            "correctly to earlier layers, δ[l] = g′(z[l])·w[l+1]·δ[l+1]; "
            + first_difference("delta", delta, delta_ref, oracle, 1e-7, 1e-10)
        )
    if not close(delta[-1], delta_ref[-1], 1e-7, 1e-10):
        return "the output layer is wrong: δ[L] = (ŷ − y)·g′(z[L]); " + first_difference(
            "delta", delta, delta_ref, oracle, 1e-7, 1e-10)
    return first_difference("dw", dw, dw_ref, oracle, 1e-7, 1e-10)


def check_chain_backward(student_chain_backward, seed=0):
    """(dw, db, delta) for random chains with biases, depth 1..8, against torch.autograd."""
    rng = np.random.default_rng(seed)
    visible = VISIBLE["chain"]
    vz, va = _forward(visible["x"], visible["w"], visible["b"], visible["activation"])
    visible_answer = _backward(visible["w"], vz, va, visible["y"], visible["activation"])
    failures = []
    for case in _chain_cases(rng):
        x, w, b, y, activation = (case[k] for k in ("x", "w", "b", "y", "activation"))
        L = len(w)
        z, a = _forward(x, w, b, activation)
        ref = _torch_chain(x, w, b, y, activation)
        given = (w.copy(), z.copy(), a.copy())
        with _blocked(scalar.chain_backward, scalar.chain_gradient, scalar.chain_forward,
                      scalar.chain_loss, gradcheck.centered_difference,
                      gradcheck.gradient_check, _oracles().chain_gradient_torch):
            result = call(student_chain_backward, "chain_backward", given[0], given[1],
                           given[2], y, activation)
        if isinstance(result, (tuple, list)) and len(result) == 3:
            loose = tuple(loose_array(r) for r in result)
            if _hard_coded(loose, visible_answer,
                           case_differs=not _same_case(case, visible, ("x", "w", "b", "y"))):
                raise AssertionError(HARD_CODED.format(name="chain_backward"))
        dw, db, delta = unpack(result, "chain_backward", ("dw", "db", "delta"),
                               ((L,), (L,), (L,)))
        for name, before, after in zip("wza", (w, z, a), given):
            if not np.array_equal(before, after):
                raise AssertionError(f"chain_backward modified its argument {name}: "
                                     "do not change the inputs")
        if not all(close(mine, theirs, 1e-7, 1e-10)
                   for mine, theirs in zip((dw, db, delta), ref)):
            failures.append((case, z, a, (dw, db, delta), ref))
    if failures:
        # Diagnose on a sigmoid/tanh case if there is one (relu's g' is 0 or 1, which can make
        # different mistakes give the same numbers), the deepest first.
        # A deep chain tells more mistakes apart than a short one.
        failures.sort(key=lambda f: (f[0]["activation"] == "relu", -len(f[0]["w"])))
        case, z, a, answer, ref = failures[0]
        raise AssertionError(
            f"depth L = {len(case['w'])}, activation {case['activation']!r} "
            f"({len(failures)} of {3 * MAX_DEPTH} random chains wrong): "
            + explain_chain_backward(case["w"], z, a, case["y"], case["activation"], *answer,
                                     reference=ref)
        )


def _oracles():
    from backpropbook import oracles  # imports torch: only when a check needs it

    return oracles

# --------------------------------------------------------------------------------------------
# Task 3: centered differences
# --------------------------------------------------------------------------------------------


def _chain_loss_gradient(w):
    w = np.asarray(w, dtype=float)
    return _oracles().chain_gradient_torch(
        functions.CHAIN_X, w.ravel(), functions.CHAIN_Y).reshape(w.shape)


# name -> the exact gradient of functions.FUNCTIONS[name]: the oracles, kept out of the sandbox.
GRADIENTS = {
    "steep_quadratic": lambda x: 1000.0 * np.asarray(x, float) + 1.0,
    "exp_sin": lambda x: np.cos(x) * np.exp(np.sin(x)),
    "coupled": lambda x: 2.0 * np.sum(x) - np.sin(x) + np.zeros_like(x),
    "chain_loss": _chain_loss_gradient,
}
assert GRADIENTS.keys() == functions.FUNCTIONS.keys()

# name -> (f, its exact gradient). The f are the very objects of functions.FUNCTIONS, the only
# callables a check passes to the student's code: the sandboxed grader sends them by name.
TEST_FUNCTIONS = {name: (functions.FUNCTIONS[name], GRADIENTS[name]) for name in GRADIENTS}


def test_function(name):
    """The named test function f (a plain Python function of one array, returning a float).

    It is ``functions.FUNCTIONS[name]`` itself: the grader recognises it by identity.
    """
    return functions.FUNCTIONS[name]


test_function.__test__ = False  # not a pytest test, despite its name

_CD_RTOL, _CD_ATOL = 1e-7, 1e-5


def _difference(f, x, h, kind):
    """Finite differences of f at x: the right one and the typical mistakes."""
    x = np.array(x, dtype=float)
    grad = np.empty_like(x)
    if kind == "all_at_once":
        grad[...] = (f(x + h) - f(x - h)) / (2 * h)
        return grad
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        plus, minus, mid = f(x + e), f(x - e), f(x)
        grad[i] = {
            "centered": (plus - minus) / (2 * h),
            "forward": (plus - mid) / h,
            "backward": (mid - minus) / h,
            "over_h": (plus - minus) / h,
            "no_division": plus - minus,
        }[kind]
    return grad


def explain_centered_difference(function, x, h, result):
    """Why ``result`` is not the gradient of the named test ``function`` at x (shape right)."""
    f, gradient = TEST_FUNCTIONS[function]
    expected = gradient(np.asarray(x, dtype=float))
    result = np.asarray(result, dtype=float)
    error = float(np.max(np.abs(result - expected)))
    variants = [
        (f"this is a forward difference (f(x + h·e_i) − f(x))/h: its error, here {error:.2g}, "
         "is O(h) (about h·f''/2); the centered difference (f(x + h·e_i) − f(x − h·e_i))/(2h) "
         "has error O(h²)", (_difference(f, x, h, "forward"),)),
        (f"this is a backward difference (f(x) − f(x − h·e_i))/h: its error, here {error:.2g}, "
         "is O(h); the centered difference (f(x + h·e_i) − f(x − h·e_i))/(2h) has error O(h²)",
         (_difference(f, x, h, "backward"),)),
        ("twice the gradient: divide f(x + h·e_i) − f(x − h·e_i) by 2h, not by h",
         (_difference(f, x, h, "over_h"),)),
        ("not divided by 2h: the estimate is (f(x + h·e_i) − f(x − h·e_i))/(2h)",
         (_difference(f, x, h, "no_division"),)),
        ("every entry was nudged at once: x + h·e_i changes only entry i",
         (_difference(f, x, h, "all_at_once"),)),
    ]
    mistake = _diagnose((result,), (expected,), variants, _CD_RTOL, _CD_ATOL)
    return mistake or first_difference(
        f"gradient of {function} at x of shape {np.shape(x)}", result, expected,
        "exact gradient", _CD_RTOL, _CD_ATOL)


def check_centered_difference(student_centered_difference, seed=0):
    """Gradients of the test functions at random x of several shapes; x must stay unchanged."""
    rng = np.random.default_rng(seed)
    visible = VISIBLE["centered_difference"]
    visible_answer = TEST_FUNCTIONS[visible["function"]][1](visible["x"])
    shapes = [(1,), (int(rng.integers(2, 7)),), (int(rng.integers(2, 4)), int(rng.integers(2, 4))),
              (2, 3, 2)]
    cases = []
    for name in TEST_FUNCTIONS:
        for shape in shapes:
            cases.append((name, rng.uniform(-2.0, 2.0, size=shape), None))
    cases.append(("steep_quadratic", rng.uniform(-2.0, 2.0, size=(4,)), 1e-4))
    for name, x, h in cases:
        f, gradient = TEST_FUNCTIONS[name]
        expected = gradient(x)
        given = x.copy()
        kwargs = {} if h is None else {"h": h}
        with _blocked(gradcheck.centered_difference, gradcheck.gradient_check):
            result = call(student_centered_difference, "centered_difference", f, given, **kwargs)
        loose = loose_array(result)
        if _hard_coded((loose,), (visible_answer,),
                       case_differs=not np.array_equal(x, visible["x"])):
            raise AssertionError(HARD_CODED.format(name="centered_difference"))
        result = _as_array(result, "centered_difference(f, x)", x.shape,
                           " (the gradient has the shape of x)")
        if not np.array_equal(given, x):
            raise AssertionError("centered_difference modified its argument x: nudge a copy "
                                 "of x, or put every entry back")
        if not close(result, expected, _CD_RTOL, _CD_ATOL):
            raise AssertionError(
                explain_centered_difference(name, x, 1e-5 if h is None else h, result))


# --------------------------------------------------------------------------------------------
# Task 4: dE/dw_l with SymPy
# --------------------------------------------------------------------------------------------


def _symbolic_reference(L):
    """E and (x, y, w) for the depth-L sigmoid chain, built here with sp.exp only."""
    x, y, w = symbolic.chain_symbols(L)
    a = x
    for wl in w:
        a = 1 / (1 + sp.exp(-wl * a))
    return sp.Rational(1, 2) * (a - y) ** 2, x, y, w


def _as_expression(result, L):
    """The student's SymPy result, re-read from its srepr string (plain data across)."""
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        raise AssertionError(
            f"wrong return type: symbolic_dE_dw must return a SymPy expression in x, y, w1..w{L}"
            f", got the number {result!r} (substitute nothing; return the expression)")
    if not isinstance(result, sp.Expr):
        raise AssertionError(
            f"wrong return type: symbolic_dE_dw must return a SymPy expression, got "
            f"{type(result).__name__}")
    return sp.sympify(sp.srepr(result))


def _points(rng, L, n):
    """n random points (x, y, w1..wL) as exact nonzero rationals in [-1.5, 1.5]."""
    return [
        tuple(sp.Rational(int(s * k), 100) for s, k in zip(rng.choice([-1, 1], size=L + 2),
                                                           rng.integers(1, 151, size=L + 2)))
        for _ in range(n)
    ]


def _evaluate(expr, symbols, points):
    f = sp.lambdify(symbols, expr, "mpmath")
    with mpmath.workdps(40):
        values = []
        for p in points:
            v = f(*(mpmath.mpf(q.p) / q.q for q in p))
            values.append(complex(v) if isinstance(v, mpmath.mpc) else mpmath.mpf(v))
        return values


def _same(u, v):
    return all(
        not isinstance(a, complex) and not isinstance(b, complex)
        and abs(a - b) <= mpmath.mpf(10) ** -25 * max(1, abs(b))
        for a, b in zip(u, v)
    )


def explain_symbolic_dE_dw(L, l, expr, points=None):
    """Why ``expr`` is not dE/dw_l of the depth-L sigmoid chain ('' if it is)."""
    with mpmath.workdps(40):  # every comparison at 40 digits, not just the evaluation
        return _explain_symbolic(L, l, expr, points)


def _explain_symbolic(L, l, expr, points):
    E, x, y, w = _symbolic_reference(L)
    symbols = (x, y) + tuple(w)
    allowed = set(symbols)
    extra = expr.free_symbols - allowed
    if extra:
        names = ", ".join(sorted(map(str, extra)))
        if {s.name for s in extra} <= {s.name for s in allowed}:
            return (f"the expression uses symbols named {names} that are not those of "
                    f"chain_symbols({L}) (which are real=True): take x, y, w from "
                    "chain_symbols(L) instead of creating new ones")
        return f"the expression depends on {names}, which are not in the chain (x, y, w1..w{L})"
    points = points or _points(np.random.default_rng(0), L, 5)
    reference = _evaluate(sp.diff(E, w[l - 1]), symbols, points)
    try:
        values = _evaluate(expr, symbols, points)
    except Exception as exc:  # e.g. an undefined function in the student's expression
        return f"the expression cannot be evaluated at numbers ({type(exc).__name__}: {exc})"
    if _same(values, reference):
        return ""
    variants = [
        ("wrong sign: ∂E/∂w_l is the derivative of E = ½(ŷ − y)², whose outer factor is "
         "(ŷ − y)", [-r for r in reference]),
        ("twice the expected value: E = ½(ŷ − y)², and the ½ cancels the 2 of the square",
         [2 * r for r in reference]),
        ("returned E itself, not its derivative ∂E/∂w_l", _evaluate(E, symbols, points)),
    ]
    for other, label in ((l - 1, "w_{l−1}"), (l + 1, "w_{l+1}")):
        if 1 <= other <= L:
            variants.append((
                f"off-by-one layer: differentiated with respect to {label} (w{other}) instead "
                f"of w_l (w{l}); chain_symbols returns the tuple (w1, ..., wL), so the book's "
                "w_l is w[l - 1]", _evaluate(sp.diff(E, w[other - 1]), symbols, points)))
    a_prev = x
    for wl in w[: l - 1]:
        a_prev = 1 / (1 + sp.exp(-wl * a_prev))
    a_values = _evaluate(a_prev, symbols, points)
    if all(av != 0 for av in a_values):
        variants.append((
            "returned δ[l] = ∂E/∂z[l]; ∂E/∂w[l] = δ[l]·a[l−1] needs the factor a[l−1]",
            [r / av for r, av in zip(reference, a_values)]))
    for message, variant in variants:
        if not _same(variant, reference) and _same(values, variant):
            return message
    return (f"symbolic_dE_dw({L}, {l}) is not equivalent to ∂E/∂w{l}: at x = {points[0][0]}, "
            f"y = {points[0][1]}, w = {points[0][2:]} it gives "
            f"{mpmath.nstr(values[0], 12) if not isinstance(values[0], complex) else values[0]}"
            f", expected {mpmath.nstr(reference[0], 12)} (sympy.diff)")


def check_symbolic_dE_dw(student_symbolic_dE_dw, seed=0):
    """dE/dw_l for random (L, l), L = 1..8, checked for equivalence at random exact points."""
    rng = np.random.default_rng(seed)
    cases = [(1, 1)]
    for L in rng.choice(np.arange(2, MAX_DEPTH + 1), size=5, replace=False):
        cases.append((int(L), int(rng.integers(1, L + 1))))
    cases.append((4, 4))
    visible = VISIBLE["symbolic"]
    for L, l in cases:
        with _blocked(symbolic.chain_loss_expr, symbolic.chain_delta_gradients):
            result = call(student_symbolic_dE_dw, "symbolic_dE_dw", L, l)
        expr = _as_expression(result, L)
        points = _points(rng, L, 5)
        message = explain_symbolic_dE_dw(L, l, expr, points)
        if message:
            # A hard-coded answer: the visible case's expression, whatever L and l.
            if (L, l) != (visible["L"], visible["l"]) and not explain_symbolic_dE_dw(
                    visible["L"], visible["l"], expr):
                raise AssertionError(HARD_CODED.format(name="symbolic_dE_dw"))
            raise AssertionError(f"symbolic_dE_dw(L={L}, l={l}): {message}")
