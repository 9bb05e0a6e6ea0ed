"""The scalar assignment (``solutions/scalar/scalar.ipynb``), declared task by task.

Python arrays are 0-based: ``w[l - 1]`` holds the book's w[l], and ``a[0] = x``.

The student's package holds the stable sigma and sigma', the chain without biases, the
three-point centered difference and the SymPy loss of the chain without biases; none of them
answers a task here as it stands (log sigma and its derivative, the chain with biases, the
five-point difference, dE/db_l). The chain's backward pass comes closest: with biases it only
adds db = delta. So the modules of the chain, the gradient checks and the torch oracles are
withheld while a task runs.
"""

from fractions import Fraction

import mpmath
import numpy as np
import torch

from backpropbook import activations
from backpropbook.activations import ACTIVATIONS
from backpropbook.oracles import TORCH_ACTIVATIONS
from backpropbook.selfcheck import Array, Arrays, Values
from backpropbook.testfunctions import CHAIN_X, CHAIN_Y, FUNCTIONS
from backpropgrader.engine import Assignment, Mistake, Task

# The book's chain (no biases), its gradient checks, its torch oracles; "torch" goes last, as
# engine.withheld imports the modules before it blocks torch.
WITHHELD = ("backpropbook.scalar", "backpropbook.gradcheck", "backpropbook.oracles", "torch")


def _given(answer):
    """A mistake's answer that was computed for the case at hand."""
    return lambda *args, **extras: answer


# --------------------------------------------------------------------------------------------
# Task 1: log sigma and its derivative
# --------------------------------------------------------------------------------------------


def _describe_z(case):
    z = np.asarray(case["z"])
    if z.ndim == 0:
        return f"z = {float(z):.6g}"
    return f"z of shape {z.shape} (entries from {z.min():.4g} to {z.max():.4g})"


def _z_cases(limit):
    def cases(rng):
        out = [0.0, float(limit), -float(limit), float(rng.uniform(-limit, limit))]
        if limit >= 710:
            out += [-709.9, -745.5, 710.5, -710.5, 36.0, 40.0]
        for shape in [(7,), (3, 4), (2, 3, 2), (1,)]:
            scale = rng.choice([1.0, 10.0, float(limit)], size=shape)
            out.append(np.clip(rng.standard_normal(shape) * scale, -limit, limit))
        out.append(np.linspace(-limit, limit, 11))
        return [{"z": z} for z in out]
    return cases


def _mp(fn, z):
    """fn applied entrywise at 50 digits (mpmath), rounded to float64: the oracle."""
    with mpmath.workdps(50):
        return np.vectorize(lambda v: float(fn(mpmath.mpf(float(v)))), otypes=[float])(
            np.asarray(z, dtype=float))


def _log_sigmoid(z):
    return _mp(lambda v: -mpmath.log1p(mpmath.exp(-v)), z)


def _sigma(z):
    return _mp(lambda v: 1 / (1 + mpmath.exp(-v)), z)


def _log_sigmoid_mistakes(z):
    z = np.asarray(z, dtype=float)
    with np.errstate(all="ignore"):  # the unstable forms overflow: that is the mistake
        as_written = -np.log(1.0 + np.exp(-z))
        negative_form = z - np.log1p(np.exp(z))
    return [
        Mistake("log_sigmoid returns log sigma(-z) = -softplus(z): check the sign, "
                "log sigma(z) = -log(1 + e^(-z))", _given(_log_sigmoid(-z))),
        Mistake("log_sigmoid returns sigma(z) itself, not its logarithm", _given(_sigma(z))),
        Mistake("log(1 + e^(-z)) as written overflows for z < -709 (e^(-z) = inf) and, for "
                "large z, 1 + e^(-z) rounds to 1 and every digit is lost: use "
                "log sigma(z) = min(z, 0) - log1p(e^(-|z|))", _given(as_written)),
        Mistake("z - log(1 + e^z) is the stable form for z < 0 only: for large z it loses every "
                "digit and e^z overflows; use -log1p(e^(-z)) for z >= 0, that is "
                "log sigma(z) = min(z, 0) - log1p(e^(-|z|))", _given(negative_form)),
    ]


LOG_SIGMOID = Task(
    name="log_sigmoid",
    params=("z",),
    kind=Array("log_sigmoid(z)"),
    cases=_z_cases(1000.0),
    oracle=_log_sigmoid,
    mistakes=_log_sigmoid_mistakes,
    visible=({"z": np.array([-1000.0, -1.0, 0.0, 1.0, 40.0])},),
    points=2,
    rtol=1e-10,
    atol=0.0,
    unchanged=("z",),
    describe=lambda case: f"log_sigmoid at {_describe_z(case)}",
    oracle_name="mpmath at 50 digits",
    withheld=WITHHELD,
)


def _log_sigmoid_prime_mistakes(z):
    z = np.asarray(z, dtype=float)
    return [
        # The package's sigma, as the student would call it: bit for bit the same subtraction.
        Mistake("1 - sigma(z) as written loses every digit for large z: sigma(40) rounds to 1, "
                "so 1 - sigma(40) gives 0 instead of about e^(-40) = 4.2e-18; write 1 - sigma(z) "
                "without the subtraction: 1 - sigma(z) = sigma(-z)",
                _given(1.0 - activations.sigmoid(z))),
        Mistake("log_sigmoid_prime returns sigma(z): d/dz log sigma(z) = sigma'(z)/sigma(z) "
                "= 1 - sigma(z) = sigma(-z)", _given(_sigma(z))),
        Mistake("wrong sign: log sigma is increasing, d/dz log sigma(z) = 1 - sigma(z) > 0",
                _given(-_sigma(-z))),
        Mistake("log_sigmoid_prime returns log sigma(z) itself, not its derivative",
                _given(_log_sigmoid(z))),
        Mistake("log_sigmoid_prime returns sigma'(z) = sigma(z)(1 - sigma(z)), the derivative "
                "of sigma; the derivative of log sigma is sigma'(z)/sigma(z) = 1 - sigma(z)",
                _given(_sigma(z) * _sigma(-z))),
    ]


LOG_SIGMOID_PRIME = Task(
    name="log_sigmoid_prime",
    params=("z",),
    kind=Array("log_sigmoid_prime(z)"),
    cases=_z_cases(40.0),
    oracle=lambda z: _sigma(-np.asarray(z, dtype=float)),
    mistakes=_log_sigmoid_prime_mistakes,
    visible=({"z": np.array([-40.0, -2.0, 0.0, 3.0, 40.0])},),
    points=1,
    rtol=1e-10,
    atol=0.0,
    unchanged=("z",),
    describe=lambda case: f"log_sigmoid_prime at {_describe_z(case)}",
    oracle_name="mpmath at 50 digits",
    withheld=WITHHELD,
)

# --------------------------------------------------------------------------------------------
# Task 2: the chain with biases, forward and backward
# --------------------------------------------------------------------------------------------

CHAIN_ACTIVATIONS = ("sigmoid", "tanh", "relu")
MAX_DEPTH = 8


def _chains(rng, rounds=3):
    """Every depth 1..MAX_DEPTH, ``rounds`` times over in random order, random activations."""
    out = []
    for _ in range(rounds):
        for L in rng.permutation(np.arange(1, MAX_DEPTH + 1)):
            out.append({"x": float(rng.uniform(-2.0, 2.0)), "w": rng.normal(0.0, 1.5, int(L)),
                        "b": rng.normal(0.0, 1.0, int(L)), "y": float(rng.uniform(-1.0, 1.0)),
                        "activation": str(rng.choice(CHAIN_ACTIVATIONS))})
    return out


def _torch_chain(x, w, b, y, activation):
    """``((z, a), (dw, db, delta))`` of the chain with biases, by torch.autograd in float64."""
    g = TORCH_ACTIVATIONS[activation]
    w_t, b_t = (torch.tensor(np.asarray(v, dtype=float), dtype=torch.float64, requires_grad=True)
                for v in (w, b))
    z, a = [], [torch.tensor(float(x), dtype=torch.float64)]
    for l in range(len(w_t)):
        z.append(w_t[l] * a[-1] + b_t[l])
        z[-1].retain_grad()  # delta[l] = dE/dz[l]
        a.append(g(z[-1]))
    E = 0.5 * (a[-1] - float(y)) ** 2
    E.backward()

    def floats(tensors):
        return np.array([float(t.detach()) for t in tensors])

    return ((floats(z), floats(a)),
            (w_t.grad.numpy().copy(), b_t.grad.numpy().copy(), floats(t.grad for t in z)))


def _describe_chain(case):
    return f"depth L = {len(case['w'])}, activation {case['activation']!r}"


def _rank_chain(case):
    """relu's g' is 0 or 1, which makes mistakes coincide: explain a deep sigmoid/tanh first."""
    return case["activation"] == "relu", -len(case["w"])


def _forward(x, w, b, layer):
    """(z, a) of a chain whose layer l gives (z[l], a[l]) = layer(a[l-1], z[l-1], w[l], b[l])
    (z[0] stands for x): the mistakes' forward passes."""
    z, a = [], [float(x)]
    for wl, bl in zip(w, b):
        zl, al = layer(a[-1], z[-1] if z else float(x), float(wl), float(bl))
        z.append(zl)
        a.append(al)
    return np.array(z), np.array(a)


def _layer(g):
    """The right layer with activation g: z[l] = w[l] a[l-1] + b[l], a[l] = g(z[l])."""
    return lambda a, z, wl, bl: (wl * a + bl, float(g(wl * a + bl)))


def _forward_mistakes(x, w, b, activation):
    g = ACTIVATIONS[activation].g
    wrong = [
        ("the bias is left out: z[l] = w[l]·a[l−1] + b[l]",
         _forward(x, w, b, lambda a, z, wl, bl: (wl * a, float(g(wl * a))))),
        ("the bias is added after the activation: it belongs inside, z[l] = w[l]·a[l−1] + b[l] "
         "and then a[l] = g(z[l])",
         _forward(x, w, b, lambda a, z, wl, bl: (wl * a, float(g(wl * a)) + bl))),
        ("the activation g is not applied: a[l] = g(z[l]), not z[l]",
         _forward(x, w, b, lambda a, z, wl, bl: (wl * a + bl, wl * a + bl))),
        ("z[l] = w[l]·a[l−1] + b[l] multiplies the previous activation a[l−1], not the previous "
         "pre-activation z[l−1]",
         _forward(x, w, b, lambda a, z, wl, bl: (wl * z + bl, float(g(wl * z + bl))))),
        ("the layers are used in reverse order: layer l uses w[l] and b[l] (w[l - 1] and "
         "b[l - 1] in 0-based Python), layer 1 first", _forward(x, w[::-1], b[::-1], _layer(g))),
    ]
    wrong += [(f"used g = {other} although activation = {activation!r}: look g up with "
               "ACTIVATIONS[activation].g", _forward(x, w, b, _layer(ACTIVATIONS[other].g)))
              for other in CHAIN_ACTIVATIONS if other != activation]
    return [Mistake(message, _given(answer)) for message, answer in wrong]


_CHAIN_HINTS = {
    "z": " (z has one entry per layer: z[l - 1] holds the book's z[l], l = 1..L)",
    "a": " (a has L+1 entries: a[0] = x, then a[l] = g(z[l]) for l = 1..L)",
    "dw": " (dw has one entry per weight: dw[l - 1] = ∂E/∂w[l])",
    "db": " (db has one entry per bias: db[l - 1] = ∂E/∂b[l])",
    "delta": " (delta has one entry per layer: delta[l - 1] holds the book's δ[l])",
}
_VISIBLE_CHAINS = (
    {"x": 0.5, "w": np.array([1.0, -2.0, 0.5]), "b": np.array([0.1, 0.3, -0.2]), "y": 0.2,
     "activation": "sigmoid"},
    {"x": -1.0, "w": np.array([0.8, 1.5]), "b": np.array([0.5, -0.3]), "y": 0.5,
     "activation": "tanh"},
)


def _forward_case(chain):
    return {k: chain[k] for k in ("x", "w", "b", "activation")}


CHAIN_FORWARD = Task(
    name="chain_forward",
    params=("x", "w", "b", "activation"),
    kind=Arrays(("z", "a"), tuple(_CHAIN_HINTS[k] for k in ("z", "a"))),
    cases=lambda rng: [_forward_case(c) for c in _chains(rng)],
    oracle=lambda x, w, b, activation: _torch_chain(x, w, b, 0.0, activation)[0],
    mistakes=_forward_mistakes,
    visible=tuple(_forward_case(c) for c in _VISIBLE_CHAINS),
    points=2,
    rtol=1e-9,
    atol=1e-12,
    unchanged=("w", "b"),
    describe=_describe_chain,
    rank=_rank_chain,
    withheld=WITHHELD,
)


def _backward_case(chain):
    """The backward pass gets what the forward pass kept; the biases stay with the oracle."""
    (z, a), _ = _torch_chain(chain["x"], chain["w"], chain["b"], chain["y"], chain["activation"])
    return {"w": chain["w"], "z": z, "a": a, "y": chain["y"], "activation": chain["activation"],
            "_b": chain["b"]}


def _deltas(L, output, factor):
    """delta[L] = output and delta[l] = factor(l)·delta[l+1] for l = L−1..1 (index l − 1)."""
    delta = np.empty(L)
    delta[L - 1] = output
    for l in range(L - 1, 0, -1):
        delta[l - 1] = factor(l) * delta[l]
    return delta


def _backward_mistakes(w, z, a, y, activation, _b):
    def gp(v):
        return float(ACTIVATIONS[activation].g_prime(v))

    L = len(w)
    error = a[L] - y
    output = error * gp(z[L - 1])

    def factor(l):  # the right g'(z[l])·w[l+1] of the book's layer l
        return gp(z[l - 1]) * w[l]

    def grads(delta):  # (dw, db, delta) from a (wrong) delta
        return delta * a[:L], delta, delta

    delta = _deltas(L, output, factor)
    dw = delta * a[:L]
    order = "the results are in the wrong order: chain_backward returns (dw, db, delta)"
    wrong = [
        ("db is computed like dw, as δ[l]·a[l−1]: ∂E/∂b[l] = δ[l]·∂z[l]/∂b[l] and "
         "∂z[l]/∂b[l] = 1 (the bias is not multiplied by a[l−1]), so ∂E/∂b[l] = δ[l]",
         (dw, dw, delta)),
        ("db is zero: the bias has a gradient too, ∂E/∂b[l] = δ[l]·∂z[l]/∂b[l] = δ[l]",
         (dw, np.zeros(L), delta)),
        ("wrong sign: δ[L] = (ŷ − y)·g′(z[L]), not (y − ŷ)·g′(z[L])",
         grads(_deltas(L, -output, factor))),
        (order, (delta, delta, dw)),
        (order, (delta, dw, delta)),
        ("missing activation derivative g′(z[l]) in every layer: δ[L] = (ŷ − y)·g′(z[L]) and "
         "δ[l] = g′(z[l])·w[l+1]·δ[l+1]", grads(_deltas(L, error, lambda l: w[l]))),
        ("missing activation derivative g′(z[L]) in the output layer: δ[L] = (ŷ − y)·g′(z[L])",
         grads(_deltas(L, error, factor))),
        ("missing activation derivative g′(z[l]) in the recursion δ[l] = g′(z[l])·w[l+1]·δ[l+1]",
         grads(_deltas(L, output, lambda l: w[l]))),
        ("g′ is evaluated at a[l] instead of z[l]: δ[l] = g′(z[l])·w[l+1]·δ[l+1], and "
         "ACTIVATIONS[...].g_prime takes the pre-activation z",
         grads(_deltas(L, error * gp(a[L]), lambda l: gp(a[l]) * w[l]))),
        ("delta is not propagated to earlier layers: only δ[L] is computed; for l = L−1, …, 1 "
         "use δ[l] = g′(z[l])·w[l+1]·δ[l+1]", grads(_deltas(L, output, lambda l: 0.0))),
        ("delta is not propagated to earlier layers: δ[L] is reused for every layer instead of "
         "δ[l] = g′(z[l])·w[l+1]·δ[l+1]", grads(_deltas(L, output, lambda l: 1.0))),
        ("w[l+1] is missing in the recursion δ[l] = g′(z[l])·w[l+1]·δ[l+1]",
         grads(_deltas(L, output, lambda l: gp(z[l - 1])))),
        ("off-by-one layer: the recursion uses w[l] where it needs w[l+1] "
         "(δ[l] = g′(z[l])·w[l+1]·δ[l+1]; in 0-based Python the book's w[l+1] is w[l])",
         grads(_deltas(L, output, lambda l: gp(z[l - 1]) * w[l - 1]))),
        ("off-by-one layer: the recursion uses g′(z[l+1]) where it needs g′(z[l])",
         grads(_deltas(L, output, lambda l: gp(z[l]) * w[l]))),
        ("off-by-one layer: ∂E/∂w[l] = δ[l]·a[l−1], you used a[l]", (delta * a[1:], delta, delta)),
        ("∂E/∂w[l] = δ[l]·a[l−1]: the factor a[l−1] is missing (dw equals delta)",
         (delta, delta, delta)),
    ]
    return [Mistake(message, _given(answer)) for message, answer in wrong]


CHAIN_BACKWARD = Task(
    name="chain_backward",
    params=("w", "z", "a", "y", "activation"),
    kind=Arrays(("dw", "db", "delta"), tuple(_CHAIN_HINTS[k] for k in ("dw", "db", "delta"))),
    cases=lambda rng: [_backward_case(c) for c in _chains(rng)],
    oracle=lambda w, z, a, y, activation, _b: _torch_chain(a[0], w, _b, y, activation)[1],
    mistakes=_backward_mistakes,
    visible=tuple(_backward_case(c) for c in _VISIBLE_CHAINS),
    points=4,
    rtol=1e-7,
    atol=1e-12,
    unchanged=("w", "z", "a"),
    describe=_describe_chain,
    rank=_rank_chain,
    withheld=WITHHELD,
)

# --------------------------------------------------------------------------------------------
# Task 3: the five-point centered difference
# --------------------------------------------------------------------------------------------

NAMES = {f: name for name, f in FUNCTIONS.items()}  # the student gets f, the oracle its name


def _mp_chain_loss(v):
    a = mpmath.mpf(CHAIN_X)
    for wl in v:
        a = 1 / (1 + mpmath.exp(-wl * a))
    return (a - mpmath.mpf(CHAIN_Y)) ** 2 / 2


# The test functions again, in mpmath, on a list of mpf: the oracle evaluates them exactly.
MP_FUNCTIONS = {
    "steep_quadratic": lambda v: 500 * mpmath.fsum(t * t for t in v) + mpmath.fsum(v),
    "exp_sin": lambda v: mpmath.fsum(mpmath.exp(mpmath.sin(t)) for t in v),
    "coupled": lambda v: mpmath.fsum(v) ** 2 + mpmath.fsum(mpmath.cos(t) for t in v),
    "chain_loss": _mp_chain_loss,
    "cubic": lambda v: 10 * mpmath.fsum(t**3 for t in v),
    "fast_wave": lambda v: mpmath.fsum(mpmath.sin(3 * t) for t in v),
}
assert MP_FUNCTIONS.keys() == FUNCTIONS.keys()


def _mp_along(f, x, estimate):
    """estimate(phi) for every entry i of x, with phi(s) = f(x + s·e_i) evaluated in mpmath at
    50 digits; the results rounded to float64, shaped like x."""
    mp_f, x = MP_FUNCTIONS[NAMES[f]], np.asarray(x, dtype=float)
    with mpmath.workdps(50):
        v = [mpmath.mpf(float(t)) for t in x.ravel()]
        out = [float(estimate(lambda s, i=i: mp_f(v[:i] + [v[i] + s] + v[i + 1:])))
               for i in range(len(v))]
    return np.array(out).reshape(x.shape)


def _five_point(f, x, h):
    """The oracle: the five-point difference of f at x with step h, in exact arithmetic."""
    with mpmath.workdps(50):
        step = mpmath.mpf(float(h))
        return _mp_along(f, x, lambda phi: (-phi(2 * step) + 8 * phi(step) - 8 * phi(-step)
                                            + phi(-2 * step)) / (12 * step))


def _exact_gradient(f, x):
    """The gradient itself, by mpmath's differentiation at 50 digits."""
    return _mp_along(f, x, lambda phi: mpmath.diff(phi, 0))


# The tolerance comes from the error bound of an honest float64 computation of the formula.
# Each f(x ± s·h·e_i) has a rounding error of at most about (n·F + |x_i|·|∂f/∂x_i|)·u (u = 2^-53;
# a sum of n terms whose sizes add up to F, and x_i ± s·h rounded to a float), and the formula
# multiplies it by (1 + 8 + 8 + 1)/(12h) = 1.5/h. Over |x_i| <= 2 + 2h and n <= 12 entries the
# worst is steep_quadratic's, F <= 26500 and |∂f/∂x_i| <= 2100: 1.5/h·(12·26500 + 2.1·2100)·u
# = 5.4e-9 at h = 1e-2 (cubic: 2.3e-10; the others less). atol = 1e-7 leaves a factor of 20 over
# it; no rtol, as the error scales with f, not with the gradient. The oracle is the formula in
# exact arithmetic, not the exact gradient: the two differ by h^4/30·f^(5) (fast_wave at
# h = 5e-2: up to 5e-5), so an accurate estimate that ignores the given h fails, and the
# three-point difference, off by h²/6·f''' (cubic: 10h² = 1e-3 at h = 1e-2), fails by far.
FIVE_POINT_RTOL, FIVE_POINT_ATOL = 0.0, 1e-7
FIVE_POINT_STEPS = (5e-2, 1e-2)
FIVE_POINT_ORDER = ("fast_wave", "cubic", "steep_quadratic", "exp_sin", "coupled", "chain_loss")
assert set(FIVE_POINT_ORDER) == set(FUNCTIONS)


def _five_point_cases(rng):
    """Every test function at both steps, on a vector and on one other shape each time."""
    others = [(1,), (int(rng.integers(2, 4)), int(rng.integers(2, 4))), (2, 3, 2)]
    cases = []
    for h in FIVE_POINT_STEPS:
        for k, name in enumerate(FIVE_POINT_ORDER):
            for shape in ((int(rng.integers(2, 7)),), others[k % len(others)]):
                cases.append({"f": FUNCTIONS[name], "x": rng.uniform(-2.0, 2.0, size=shape),
                              "h": h})
    return cases


def _nudged(f, x, h, estimate):
    """estimate(at) for every entry i of x, with at(s) = f(x + s·h·e_i), in float64."""
    x = np.asarray(x, dtype=float)
    grad = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        def at(s, i=i):
            moved = x.copy()
            moved[i] += s * h
            return f(moved)
        grad[i] = estimate(at)
    return grad


def _five_point_mistakes(f, x, h):
    right = _five_point(f, x, h)

    def off(answer):
        return f"{float(np.max(np.abs(answer - right))):.2g}"

    x = np.asarray(x, dtype=float)
    three_point = _nudged(f, x, h, lambda at: (at(1) - at(-1)) / (2 * h))
    forward = _nudged(f, x, h, lambda at: (at(1) - at(0)) / h)
    five_point = "(−f(x + 2h·e_i) + 8·f(x + h·e_i) − 8·f(x − h·e_i) + f(x − 2h·e_i))/(12h)"
    wrong = [
        (f"second-order: this is the three-point centered difference (f(x + h·e_i) − "
         f"f(x − h·e_i))/(2h), whose error is O(h²) (about h²/6·f''', here up to "
         f"{off(three_point)}); the five-point difference {five_point} cancels the h² term "
         "and is off by O(h⁴) only", three_point),
        (f"this is the forward difference (f(x + h·e_i) − f(x))/h, whose error is O(h) (here "
         f"up to {off(forward)}); the five-point difference is {five_point}", forward),
        ("this is the exact gradient (or a difference with a much smaller step of its own), not "
         "the five-point difference with the step h you are given: use h",
         _exact_gradient(f, x)),
        ("wrong signs: the outer terms are −f(x + 2h·e_i) and +f(x − 2h·e_i)",
         _nudged(f, x, h, lambda at: (at(2) + 8 * at(1) - 8 * at(-1) - at(-2)) / (12 * h))),
        ("the weights are swapped: 8 goes with f(x ± h·e_i), 1 with f(x ± 2h·e_i)",
         _nudged(f, x, h, lambda at: (-at(1) + 8 * at(2) - 8 * at(-2) + at(-1)) / (12 * h))),
        ("divided by 12 and then multiplied by h: `/ 12 * h` is (…/12)·h; divide by (12 * h)",
         _nudged(f, x, h, lambda at: (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2)) / 12 * h)),
        ("divided by 2h as in the three-point difference: the five-point difference divides "
         "by 12h", _nudged(f, x, h, lambda at: (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2))
                           / (2 * h))),
        ("every entry was nudged at once: x + h·e_i changes only entry i",
         np.full(x.shape, (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h))
                 / (12 * h))),
    ]
    return [Mistake(message, _given(answer)) for message, answer in wrong]


FIVE_POINT_DIFFERENCE = Task(
    name="five_point_difference",
    params=("f", "x", "h"),
    kind=Array("the gradient", " (the gradient has the shape of x)"),
    cases=_five_point_cases,
    oracle=_five_point,
    mistakes=_five_point_mistakes,
    visible=({"f": FUNCTIONS["cubic"], "x": np.array([[0.3, -1.2], [2.0, 0.5]]), "h": 5e-2},
             {"f": FUNCTIONS["fast_wave"], "x": np.array([0.4, -1.0, 2.5]), "h": 5e-2}),
    points=2,
    rtol=FIVE_POINT_RTOL,
    atol=FIVE_POINT_ATOL,
    unchanged=("x",),
    describe=lambda case: (f"five_point_difference of {NAMES[case['f']]} at x of shape "
                           f"{np.shape(case['x'])}, h = {case['h']:g}"),
    rank=lambda case: -case["h"],  # the larger step tells the mistakes apart best
    oracle_name="five-point difference in exact arithmetic",
    withheld=WITHHELD,
)

# --------------------------------------------------------------------------------------------
# Task 4: dE/db_l with SymPy
# --------------------------------------------------------------------------------------------


def _symbol_names(L):
    """The names of chain_symbols(L, biases=True), as the points key them."""
    return ["x", "y", *(f"w{l}" for l in range(1, L + 1)), *(f"b{l}" for l in range(1, L + 1))]


def _points(rng, L, n=5):
    """n random points: every symbol an exact nonzero rational in [-1.5, 1.5], as "p/q"."""
    names = _symbol_names(L)
    return [{name: str(Fraction(int(s * k), 100)) for name, s, k in zip(
        names, rng.choice([-1, 1], size=len(names)), rng.integers(1, 151, size=len(names)))}
        for _ in range(n)]


def _at_points(L, points):
    """(E, dw, db) of the depth-L sigmoid chain with biases at each point, by torch.autograd."""
    out = []
    for point in points:
        v = {name: float(Fraction(text)) for name, text in point.items()}
        w = [v[f"w{l}"] for l in range(1, L + 1)]
        b = [v[f"b{l}"] for l in range(1, L + 1)]
        (_, a), (dw, db, _) = _torch_chain(v["x"], w, b, v["y"], "sigmoid")
        out.append((0.5 * (a[-1] - v["y"]) ** 2, dw, db))
    return out


def _dE_db(L, l, _points):
    return np.array([db[l - 1] for _, _, db in _at_points(L, _points)])


def _symbolic_cases(rng):
    """(1, 1), five depths 2..8 with a random layer, and the last layer of depth 4.

    Never the visible (L, l) = (2, 1): the engine would take the right expression, read at the
    visible points, for a hard-coded answer.
    """
    pairs = [(1, 1)]
    for L in rng.choice(np.arange(2, MAX_DEPTH + 1), size=5, replace=False):
        pairs.append((int(L), int(rng.integers(2 if L == 2 else 1, L + 1))))
    pairs.append((4, 4))
    return [{"L": L, "l": l, "_points": _points(rng, L)} for L, l in pairs]


def _symbolic_mistakes(L, l, _points):
    values = _at_points(L, _points)
    right = np.array([db[l - 1] for _, _, db in values])
    wrong = [
        ("returned ∂E/∂w_l; ∂E/∂b_l = δ[l]·∂z[l]/∂b[l] = δ[l], without the factor a[l−1] of "
         "∂z[l]/∂w[l]", np.array([dw[l - 1] for _, dw, _ in values])),
        ("wrong sign: the derivative of E = ½(ŷ − y)² has the outer factor (ŷ − y)", -right),
        ("twice the expected value: E = ½(ŷ − y)², and the ½ cancels the 2 of the square",
         2 * right),
        ("returned E itself, not its derivative ∂E/∂b_l", np.array([E for E, _, _ in values])),
        ("the expression does not depend on b_l: every layer has its bias inside, "
         "z_l = w_l·a_(l−1) + b_l (the chapter's chain_loss_expr has no biases)",
         np.zeros(len(values))),
    ]
    for other in (l - 1, l + 1):
        if 1 <= other <= L:
            wrong.append((
                f"off-by-one layer: differentiated with respect to b{other} instead of b{l}; "
                "chain_symbols returns the tuple (b1, ..., bL), so the book's b_l is b[l - 1]",
                np.array([db[other - 1] for _, _, db in values])))
    return [Mistake(message, _given(answer)) for message, answer in wrong]


def _describe_symbolic(case):
    p = case["_points"][0]
    L = case["L"]
    w = ", ".join(p[f"w{k}"] for k in range(1, L + 1))
    b = ", ".join(p[f"b{k}"] for k in range(1, L + 1))
    return (f"symbolic_dE_db(L={L}, l={case['l']}) at {len(case['_points'])} exact points "
            f"(the first: x = {p['x']}, y = {p['y']}, w = ({w}), b = ({b}))")


SYMBOLIC_DE_DB = Task(
    name="symbolic_dE_db",
    params=("L", "l"),
    kind=Values("dE/db_l at point"),
    cases=_symbolic_cases,
    oracle=_dE_db,
    mistakes=_symbolic_mistakes,
    visible=({"L": 2, "l": 1, "_points": [
        {"x": "1/2", "y": "1/5", "w1": "1", "w2": "-2", "b1": "1/10", "b2": "3/10"},
        {"x": "-3/2", "y": "7/10", "w1": "1/2", "w2": "3/4", "b1": "-1", "b2": "1/4"}]},),
    points=2,
    rtol=1e-9,
    atol=1e-15,
    describe=_describe_symbolic,
    withheld=WITHHELD,
)

ASSIGNMENT = Assignment("scalar", [LOG_SIGMOID, LOG_SIGMOID_PRIME, CHAIN_FORWARD, CHAIN_BACKWARD,
                                   FIVE_POINT_DIFFERENCE, SYMBOLIC_DE_DB])
