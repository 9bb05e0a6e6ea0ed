"""The vector assignment (``solutions/vector/vector.ipynb``): backprop through a residual network.

Every layer l = 1..L is a residual block of width n, for one example:

    z[l] = W[l] a[l-1] + b[l],   a[l] = a[l-1] + g(z[l]),   a[0] = x,   E = 1/2 ||a[L] - t||^2,

with W[l] of shape (n, n) and b[l], z[l], a[l] of shape (n,). a[l-1] reaches a[l] twice, through
the block and around it, so its gradient is a sum: dE/da[l-1] = dE/da[l] + W[l]^T delta[l]. The
book's package implements the plain network (a[l] = g(z[l])): its code answers none of the tasks.
Python lists are 0-based: ``params[l - 1] = (W, b)`` is the book's layer l, ``z[l - 1]`` its
z[l], and ``a[0] = x``.

The oracles are torch.autograd in float64 at the case's numbers (SymPy plays no part in them,
not even for the SymPy task); the mistakes are small NumPy functions that compute the wrong
answers a student's typical mistake gives.
"""

from fractions import Fraction

import numpy as np
import sympy as sp

from backpropbook.activations import ACTIVATIONS
from backpropbook.selfcheck import Array, Forward, Layers, Values
from backpropgrader.engine import Assignment, Mistake, Task

ACTIVATION_NAMES = ("sigmoid", "tanh", "relu")
MAX_WIDTH, MAX_DEPTH = 5, 5
KINK = 0.05  # every relu pre-activation is at least this far from the kink at 0
SATURATION = 4.0  # every pre-activation stays within +-4: the sigmoid is not saturated
WITHHELD = ("backpropbook.vector", "backpropbook.symbolic_vector", "backpropbook.layers",
            "backpropbook.mlp", "backpropbook.twolayer", "backpropbook.oracles", "torch")

# --------------------------------------------------------------------------------------------
# The oracles' network, in torch (float64)
# --------------------------------------------------------------------------------------------


def _torch():
    import torch  # only the oracles need it

    return torch


def _tensor(value):
    torch = _torch()
    return torch.tensor(np.asarray(value, dtype=float), dtype=torch.float64)


def _torch_g(activation):
    from backpropbook.oracles import TORCH_ACTIVATIONS  # the one torch table (imports torch)

    return TORCH_ACTIVATIONS[activation]


def _run(weights, u, activation):
    """(z, a) of the residual network in torch, from ``weights`` [(W, b), ...] as tensors."""
    g = _torch_g(activation)
    z, a = [], [u]
    for W, b in weights:
        z.append(W @ a[-1] + b)
        a.append(a[-1] + g(z[-1]))
    return z, a


def _tensors(params):
    return [(_tensor(W), _tensor(b)) for W, b in params]


def _blocks(params, activation):
    """u -> a[L] of the residual network, in torch."""
    weights = _tensors(params)
    return lambda u: _run(weights, u, activation)[1][-1]


def _jacobian(f, x):
    torch = _torch()
    return torch.autograd.functional.jacobian(f, _tensor(x)).numpy().copy()


def _forward(params, x, activation):
    """(z, a) of the residual network, computed by torch in float64."""
    z, a = _run(_tensors(params), _tensor(x), activation)
    return [u.numpy().copy() for u in z], [u.numpy().copy() for u in a]


def _gradients(params, x, t, activation):
    """[(dE/dW[l], dE/db[l]), ...] by torch.autograd."""
    leaves = [(W.requires_grad_(), b.requires_grad_()) for W, b in _tensors(params)]
    _, a = _run(leaves, _tensor(x), activation)
    (0.5 * ((a[-1] - _tensor(t)) ** 2).sum()).backward()
    return [(W.grad.numpy().copy(), b.grad.numpy().copy()) for W, b in leaves]


# --------------------------------------------------------------------------------------------
# Random residual networks
# --------------------------------------------------------------------------------------------


def _network(rng, n, L, activation):
    """A random (params, x, t, z, a): every z within +-SATURATION, relu's away from its kink."""
    for _ in range(1000):
        params = [(rng.normal(0.0, 0.9 / np.sqrt(n), size=(n, n)), rng.normal(0.0, 0.5, size=n))
                  for _ in range(L)]
        x, t = rng.uniform(-1.5, 1.5, size=n), rng.uniform(-1.0, 1.0, size=n)
        z, a = _forward(params, x, activation)
        flat = np.abs(np.concatenate(z))
        if flat.max() < SATURATION and (activation != "relu" or flat.min() > KINK):
            return params, x, t, z, a
    raise RuntimeError(f"no {activation} network of width {n}, depth {L}")  # pragma: no cover


def _network_cases(rng):
    """A network shaped like the visible one first (an answer hard-coded for the visible test
    is caught as such, not as a wrong shape), then every depth 1..MAX_DEPTH with every
    activation (widths 2..MAX_WIDTH) and width 1, in random order."""
    shapes = [(int(rng.integers(2, MAX_WIDTH + 1)), L, activation)
              for L in range(1, MAX_DEPTH + 1) for activation in ACTIVATION_NAMES]
    shapes += [(1, int(rng.integers(1, MAX_DEPTH + 1)), activation)
               for activation in ("sigmoid", "tanh")]
    shapes = [(len(VISIBLE_X), len(VISIBLE_PARAMS), "sigmoid")] + [
        shapes[i] for i in rng.permutation(len(shapes))]
    cases = []
    for n, L, activation in shapes:
        params, x, t, z, a = _network(rng, n, L, activation)
        cases.append({"params": params, "x": x, "t": t, "z": z, "a": a,
                      "activation": activation})
    return cases


def _only(case, keys):
    """``case`` restricted to ``keys``; the key ``"_x"`` holds x where it is no parameter."""
    return {k: case[k.lstrip("_")] for k in keys}


def _cases_with(*keys):
    """The network cases restricted to a task's ``keys``."""
    return lambda rng: [_only(case, keys) for case in _network_cases(rng)]


def _describe(case):
    n, L = len(case["params"][0][1]), len(case["params"])
    return f"residual network of width n = {n}, depth L = {L}, activation {case['activation']!r}"


def _rank(case):
    """Explain a failure on a deep network of width >= 2 first: there every mistake shows."""
    return (len(case["params"][0][1]) < 2, case["activation"] == "relu", -len(case["params"]))


# The visible network: width 3, depth 2, sigmoid.
VISIBLE_PARAMS = [
    (np.array([[0.5, -1.0, 0.25], [1.5, 0.5, -0.5], [-0.75, 0.25, 1.0]]),
     np.array([0.1, -0.2, 0.3])),
    (np.array([[1.0, -0.5, 0.5], [0.25, 0.75, -1.0], [-0.5, 0.5, 0.25]]),
     np.array([0.0, 0.3, -0.1])),
]
VISIBLE_X, VISIBLE_T = np.array([1.0, 0.5, -1.0]), np.array([0.2, 0.9, -0.4])
_VISIBLE_Z, _VISIBLE_A = _forward(VISIBLE_PARAMS, VISIBLE_X, "sigmoid")
VISIBLE_NETWORK = {"params": VISIBLE_PARAMS, "x": VISIBLE_X, "t": VISIBLE_T, "z": _VISIBLE_Z,
                   "a": _VISIBLE_A, "activation": "sigmoid"}


def _visible(*keys):
    return (_only(VISIBLE_NETWORK, keys),)


def _g(activation):
    return ACTIVATIONS[activation].g


def _gp(activation):
    return ACTIVATIONS[activation].g_prime


def _wrong(message, answer):
    """A mistake whose wrong answer on this case is ``answer`` (computed by the caller)."""
    return Mistake(message, lambda *args, **extras: answer)


def _others(activation):
    return [other for other in ACTIVATION_NAMES if other != activation]


# --------------------------------------------------------------------------------------------
# Task 1: the Jacobian of one residual block, da[l]/da[l-1] = I + diag(g'(z[l])) W[l]
# --------------------------------------------------------------------------------------------

BLOCK = "da[l]/da[l-1] = I + diag(g'(z[l])) W[l]"


def _layer_jacobian_oracle(W, z, activation):
    """The Jacobian of the block u -> u + g(W u + z) at u = 0, where its pre-activation is z."""
    return _jacobian(_blocks([(W, z)], activation), np.zeros(len(z)))


def _layer_jacobian_mistakes(W, z, activation):
    I, d = np.eye(len(z)), _gp(activation)(z)
    return [
        _wrong("the identity is missing: a[l] = a[l-1] + g(z[l]) passes a[l-1] on unchanged, "
               f"so {BLOCK}; diag(g'(z)) W alone is the Jacobian of a plain layer",
               d[:, None] * W),
        _wrong(f"W is transposed: dz[l]/da[l-1] = W[l], so {BLOCK}, not I + diag(g'(z)) W^T",
               I + d[:, None] * W.T),
        _wrong("the diagonal holds g(z) instead of g'(z): the block's Jacobian is "
               f"{BLOCK}", I + _g(activation)(z)[:, None] * W),
        _wrong("wrong order: W diag(g'(z)) scales the columns of W; the chain rule puts the "
               f"activation's Jacobian on the left, {BLOCK} (row i scaled by g'(z_i))",
               I + W * d[None, :]),
        _wrong("the Jacobian is transposed: numerator layout, row i holds the derivatives of "
               f"a[l]_i, {BLOCK}", (I + d[:, None] * W).T),
    ] + [_wrong(f"used g = {other} although activation = {activation!r}: look g' up with "
                "ACTIVATIONS[activation].g_prime",
                I + _gp(other)(z)[:, None] * W)
         for other in _others(activation)]


def _layer_jacobian_cases(rng):
    out = []
    for n in range(1, MAX_WIDTH + 1):
        for activation in ACTIVATION_NAMES:
            W = rng.normal(0.0, 1.0, size=(n, n))
            z = rng.uniform(-3.0, 3.0, size=n)
            z = np.where(np.abs(z) < 0.1, 0.5, z)  # away from relu's kink
            out.append({"W": W, "z": z, "activation": activation})
    return out


LAYER_JACOBIAN = Task(
    name="layer_jacobian",
    params=("W", "z", "activation"),
    kind=Array("da[l]/da[l-1]", " (one row per a[l]_i, one column per a[l-1]_j)"),
    cases=_layer_jacobian_cases,
    oracle=_layer_jacobian_oracle,
    mistakes=_layer_jacobian_mistakes,
    visible=({"W": VISIBLE_PARAMS[0][0], "z": np.array([-1.0, 0.5, 2.0]),
              "activation": "tanh"},),
    points=2,
    withheld=WITHHELD,
    unchanged=("W", "z"),
    describe=lambda c: f"layer_jacobian(W of shape {c['W'].shape}, z, {c['activation']!r})",
    rank=lambda c: (len(c["z"]) < 2, c["activation"] == "relu"),
)

# --------------------------------------------------------------------------------------------
# Task 2: the forward pass
# --------------------------------------------------------------------------------------------


def _np_forward(params, x, activation, pre=lambda W, b, u: W @ u + b,
                block=lambda u, z, g: u + g(z)):
    """(z, a) with z[l] = pre(W, b, a[l-1]) and a[l] = block(a[l-1], z[l], g): a mistake
    replaces one of the two."""
    g = _g(activation)
    z, a = [], [np.asarray(x, dtype=float)]
    for W, b in params:
        z.append(pre(W, b, a[-1]))
        a.append(block(a[-1], z[-1], g))
    return z, a


def _forward_from_x(params, x, activation):
    """Every skip from the input: a[l] = x + g(z[l])."""
    return _np_forward(params, x, activation, block=lambda u, z, g: np.asarray(x) + g(z))


def _forward_mistakes(params, x, activation):
    def wrong(**kw):
        return _np_forward(params, x, activation, **kw)

    rule = "z[l] = W[l] a[l-1] + b[l], a[l] = a[l-1] + g(z[l])"
    return [
        _wrong("the skip connection is missing: a[l] = a[l-1] + g(z[l]); a[l] = g(z[l]) is "
               "the plain network of the chapter (its vector_forward)",
               wrong(block=lambda u, z, g: g(z))),
        _wrong("the skip adds z[l] instead of a[l-1]: the block's input a[l-1] goes around "
               f"it, {rule}", wrong(block=lambda u, z, g: z + g(z))),
        _wrong(f"the activation g is not applied: {rule}", wrong(block=lambda u, z, g: u + z)),
        _wrong("every skip starts from x: each block adds its input a[l-1], "
               f"{rule}", _forward_from_x(params, x, activation)),
        _wrong(f"the bias is left out: {rule}", wrong(pre=lambda W, b, u: W @ u)),
        _wrong(f"W[l] is transposed: {rule}", wrong(pre=lambda W, b, u: W.T @ u + b)),
        _wrong("the layers are used in reverse order: params[0] is layer 1",
               _np_forward(params[::-1], x, activation)),
    ] + [_wrong(f"used g = {other} although activation = {activation!r}: look g up with "
                "ACTIVATIONS[activation].g", _np_forward(params, x, other))
         for other in _others(activation)]


FORWARD = Task(
    name="forward",
    params=("params", "x", "activation"),
    kind=Forward(),
    cases=_cases_with("params", "x", "activation"),
    oracle=_forward,
    mistakes=_forward_mistakes,
    visible=_visible("params", "x", "activation"),
    points=2,
    rtol=1e-9,
    atol=1e-12,
    withheld=WITHHELD,
    unchanged=("params", "x"),
    describe=_describe,
    rank=_rank,
    oracle_name="torch (float64)",
)

# --------------------------------------------------------------------------------------------
# Task 3: the network's Jacobian da[L]/dx = J[L] ... J[1]
# --------------------------------------------------------------------------------------------

CHAIN = "da[L]/dx = J[L] J[L-1] ... J[1] with J[l] = I + diag(g'(z[l])) W[l]"


def _network_jacobian_oracle(params, z, activation, _x):
    return _jacobian(_blocks(params, activation), _x)


def _product(factors):
    """factors[L-1] ... factors[0]: the later layer on the left."""
    J = np.eye(len(factors[0]))
    for F in factors:
        J = F @ J
    return J


def _network_jacobian_mistakes(params, z, activation, _x):
    gp, I = _gp(activation), np.eye(len(z[0]))
    DW = [gp(z_l)[:, None] * W for (W, _), z_l in zip(params, z)]
    J = [I + F for F in DW]
    return [
        _wrong(f"the identity is missing in every block: {CHAIN}; D[L] W[L] ... D[1] W[1] is "
               "the Jacobian of the plain network, without skips", _product(DW)),
        _wrong(f"the identity is added once, at the end: {CHAIN}, each factor has its own I",
               I + _product(DW)),
        _wrong("the layers' Jacobians are added, not multiplied: I + sum D[l] W[l] keeps only "
               f"the paths through one block; the chain rule gives {CHAIN}",
               I + sum(DW)),
        _wrong("the Jacobians are multiplied in the wrong order: the later layer goes on the "
               f"left, da[l]/dx = J[l] da[l-1]/dx; {CHAIN}", _product(J[::-1])),
        _wrong(f"W[l] is transposed in the product: {CHAIN}",
               _product([I + gp(z_l)[:, None] * W.T
                                     for (W, _), z_l in zip(params, z)])),
        _wrong(f"diag(g'(z[l])) is on the wrong side of W[l]: {CHAIN}",
               _product([I + W * gp(z_l)[None, :]
                                     for (W, _), z_l in zip(params, z)])),
        _wrong(f"the result is transposed: {CHAIN}, one row per output a[L]_i",
               _product(J).T),
    ]


NETWORK_JACOBIAN = Task(
    name="network_jacobian",
    params=("params", "z", "activation"),
    kind=Array("da[L]/dx", " (one row per output a[L]_i, one column per input x_j)"),
    cases=_cases_with("params", "z", "activation", "_x"),
    oracle=_network_jacobian_oracle,
    mistakes=_network_jacobian_mistakes,
    visible=_visible("params", "z", "activation", "_x"),
    points=3,
    withheld=WITHHELD,
    unchanged=("params", "z"),
    describe=_describe,
    rank=_rank,
    oracle_name="torch.autograd.functional.jacobian",
)

# --------------------------------------------------------------------------------------------
# Tasks 4 and 5: the gradients, with explicit Jacobians and with Hadamard products
# --------------------------------------------------------------------------------------------

SWEEP = ("delta[l] = g'(z[l]) * u with u = dE/da[l], then u <- J[l]^T u = u + W[l]^T delta[l] "
         "for the layer below")


def _gradients_oracle(params, z, a, t, activation):
    return _gradients(params, a[0], t, activation)


def _sweep(params, z, a, t, activation, local=lambda d, u, z_l: d * u,
           back=lambda u, W, delta, d: u + W.T @ delta,
           grad=lambda delta, a_prev: (np.outer(delta, a_prev), delta)):
    """[(dW, db), ...] from u = dE/da[L] = a[L] - t down: delta[l] = local(g'(z[l]), u, z[l]),
    the gradients grad(delta[l], a[l-1]), then u <- back(u, W[l], delta[l], g'(z[l])). A
    mistake replaces one of the three steps."""
    gp = _gp(activation)
    u, grads = a[-1] - t, []
    for (W, _), z_l, a_prev in reversed(list(zip(params, z, a))):
        d = gp(z_l)
        delta = local(d, u, z_l)
        grads.insert(0, grad(delta, a_prev))
        u = back(u, W, delta, d)
    return grads


def _backward_mistakes(params, z, a, t, activation):
    def wrong(**kw):
        return _sweep(params, z, a, t, activation, **kw)

    g = _g(activation)
    return [
        _wrong("the skip term is missing: a[l-1] reaches E through the block and around it, "
               "so dE/da[l-1] = dE/da[l] + W[l]^T delta[l], a sum; u <- W[l]^T delta[l] alone "
               f"is the plain network's backprop (the chapter's vector_backward). {SWEEP}",
               wrong(back=lambda u, W, delta, d: W.T @ delta)),
        _wrong("the skip passes delta[l] on instead of u = dE/da[l]: the identity part of "
               f"J[l]^T u is u itself. {SWEEP}",
               wrong(back=lambda u, W, delta, d: delta + W.T @ delta)),
        _wrong("the Jacobian is multiplied on the wrong side: the backward step is the "
               "vector-Jacobian product u^T J[l], i.e. J[l]^T u = u + W[l]^T (g'(z[l]) * u); "
               "you computed J[l] u = u + g'(z[l]) * (W[l] u)",
               wrong(back=lambda u, W, delta, d: u + d * (W @ u))),
        _wrong("W[l] is not transposed: u <- u + W[l]^T delta[l]; you computed "
               f"u + W[l] delta[l]. {SWEEP}", wrong(back=lambda u, W, delta, d: u + W @ delta)),
        _wrong("dW is transposed: dE/dW[l] = delta[l] a[l-1]^T (np.outer(delta, a_prev)); you "
               "computed a[l-1] delta[l]^T",
               wrong(grad=lambda delta, a_prev: (np.outer(a_prev, delta), delta))),
        _wrong("missing activation derivative: delta[l] = dE/dz[l] = g'(z[l]) * dE/da[l]; "
               f"dE/da[l] alone is not delta. {SWEEP}",
               wrong(local=lambda d, u, z_l: u)),
        _wrong(f"g(z[l]) is used where g'(z[l]) belongs. {SWEEP}",
               wrong(local=lambda d, u, z_l: g(z_l) * u)),
        _wrong("wrong sign: dE/da[L] = a[L] - t, not t - a[L]",
               [(-dW, -db) for dW, db in _sweep(params, z, a, t, activation)]),
        _wrong("the list is in reverse order: grads[l - 1] is the book's layer l, layer 1 "
               "first", _sweep(params, z, a, t, activation)[::-1]),
    ]


def _backward_task(name, points):
    return Task(
        name=name,
        params=("params", "z", "a", "t", "activation"),
        kind=Layers(("dW", "db")),
        cases=_cases_with("params", "z", "a", "t", "activation"),
        oracle=_gradients_oracle,
        mistakes=_backward_mistakes,
        visible=_visible("params", "z", "a", "t", "activation"),
        points=points,
        withheld=WITHHELD,
        unchanged=("params", "z", "a", "t"),
        describe=_describe,
        rank=_rank,
    )


BACKWARD_JACOBIAN = _backward_task("backward_jacobian", 4)
BACKWARD_HADAMARD = _backward_task("backward_hadamard", 4)

# --------------------------------------------------------------------------------------------
# Task 6: a plain tanh network, index by index
# --------------------------------------------------------------------------------------------


def _atanh(O):
    return _torch().atanh(_tensor(O))


def _output_delta_oracle(O, t):
    """delta = dE/dz by torch.autograd, with z = atanh(O) and E = 1/2 ||tanh(z) - t||^2."""
    z = _atanh(O).requires_grad_()
    (0.5 * ((_torch().tanh(z) - _tensor(t)) ** 2).sum()).backward()
    return z.grad.numpy().copy()


def _output_delta_mistakes(O, t):
    rule = "delta_k = (O_k - t_k)(1 - O_k^2), since tanh'(z) = 1 - tanh(z)^2 = 1 - O_k^2"
    return [
        _wrong(f"O_k(1 - O_k) is the sigmoid's derivative, sigma' = sigma(1 - sigma): {rule}",
               (O - t) * O * (1 - O)),
        _wrong(f"(1 - O_k)^2 is not 1 - O_k^2: {rule}", (O - t) * (1 - O) ** 2),
        _wrong(f"wrong sign: dE/dO_k = O_k - t_k, not t_k - O_k; {rule}",
               (t - O) * (1 - O ** 2)),
        _wrong(f"missing activation derivative: O_k - t_k is dE/dO_k; {rule}",
               O - t),
        _wrong(f"the error factor is missing: 1 - O_k^2 is tanh'(z_k) alone; {rule}",
               1 - O ** 2),
        _wrong("tanh'(z_k) = 1 - O_k^2 is a function of the output O_k = tanh(z_k): you used "
               f"1 - tanh(O_k)^2; {rule}", (O - t) * (1 - np.tanh(O) ** 2)),
    ]


def _output_delta_cases(rng):
    out = []
    for K in rng.permutation(np.arange(1, 7)):
        O = rng.uniform(-0.95, 0.95, size=int(K))
        t = rng.choice([-1.0, 1.0], size=int(K)) if K % 2 else rng.uniform(-1.0, 1.0, int(K))
        out.append({"O": O, "t": t})
    return out


OUTPUT_DELTA = Task(
    name="output_delta",
    params=("O", "t"),
    kind=Array("delta", " (one delta_k per output unit k)"),
    cases=_output_delta_cases,
    oracle=_output_delta_oracle,
    mistakes=_output_delta_mistakes,
    visible=({"O": np.array([0.8, -0.3, 0.6]), "t": np.array([1.0, -1.0, 0.0])},),
    points=2,
    withheld=WITHHELD,
    unchanged=("O", "t"),
    describe=lambda c: f"output_delta with K = {len(c['O'])} tanh outputs",
    rank=lambda c: -len(c["O"]),
)


def _hidden_delta_oracle(O_hidden, W_next, delta_next):
    """dE/dz_hidden by torch.autograd for a surrogate E with dE/dz_next = delta_next:
    E = delta_next . (W_next tanh(z_hidden)), z_hidden = atanh(O_hidden)."""
    z = _atanh(O_hidden).requires_grad_()
    (_tensor(delta_next) @ (_tensor(W_next) @ _torch().tanh(z))).backward()
    return z.grad.numpy().copy()


def _hidden_delta_mistakes(O_hidden, W_next, delta_next):
    O, W, d = O_hidden, W_next, delta_next
    rule = "delta_j = (1 - O_j^2) sum_k W_next[k, j] delta_k, i.e. (1 - O^2) * (W_next^T delta)"
    return [
        _wrong(f"wrong product order: the sum over k runs down column j of W_next, {rule}; "
               "you computed W_next delta_next", (1 - O ** 2) * (W @ d)),
        _wrong(f"O_j(1 - O_j) is the sigmoid's derivative: {rule}",
               O * (1 - O) * (W.T @ d)),
        _wrong(f"(1 - O_j)^2 is not 1 - O_j^2: {rule}", (1 - O) ** 2 * (W.T @ d)),
        _wrong(f"wrong sign: {rule}", -(1 - O ** 2) * (W.T @ d)),
        _wrong(f"missing activation derivative 1 - O_j^2: {rule}", W.T @ d),
        _wrong("tanh'(z_j) = 1 - O_j^2 is a function of the output O_j: you used "
               f"1 - tanh(O_j)^2; {rule}", (1 - np.tanh(O) ** 2) * (W.T @ d)),
    ]


def _hidden_delta_cases(rng):
    """Square W_next (H = K = 1..6): a W_next in place of W_next^T gives wrong numbers, not a
    shape error."""
    out = []
    for n in rng.permutation(np.arange(1, 7)):
        n = int(n)
        out.append({"O_hidden": rng.uniform(-0.95, 0.95, size=n),
                    "W_next": rng.normal(0.0, 1.0, size=(n, n)),
                    "delta_next": rng.normal(0.0, 0.3, size=n)})
    return out


HIDDEN_DELTA = Task(
    name="hidden_delta",
    params=("O_hidden", "W_next", "delta_next"),
    kind=Array("delta (hidden)", " (one delta_j per hidden unit j)"),
    cases=_hidden_delta_cases,
    oracle=_hidden_delta_oracle,
    mistakes=_hidden_delta_mistakes,
    visible=({"O_hidden": np.array([0.6, -0.2, 0.9]),
              "W_next": np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-1.0, 1.0, 0.5]]),
              "delta_next": np.array([0.1, -0.2, 0.05])},),
    points=2,
    withheld=WITHHELD,
    unchanged=("O_hidden", "W_next", "delta_next"),
    describe=lambda c: f"hidden_delta with H = K = {len(c['O_hidden'])} units",
    rank=lambda c: -len(c["O_hidden"]),
)

# --------------------------------------------------------------------------------------------
# Task 7: the Jacobian of one residual sigmoid block with SymPy
# --------------------------------------------------------------------------------------------

SYMBOLIC = "da/dx = I + diag(sigma'(z)) W with z = W x + b"


def block_symbols(n, l):
    """(W, b, x) of block l, width n: W (n, n) of w{l}_ij, b (n, 1) of b{l}_i, x (n, 1) of
    x_j, all real. The visible case is block 1; the hidden ones are blocks 2.., so that an
    answer built for the visible symbols cannot pass a hidden case."""
    W = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"w{l}_{i + 1}{j + 1}", real=True))
    b = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"b{l}_{i + 1}", real=True))
    x = sp.Matrix(n, 1, lambda j, _: sp.Symbol(f"x_{j + 1}", real=True))
    return W, b, x


def _symbolic_case(rng, n, l, count):
    """Block l of width n, with ``count`` exact points: W in [-1, 1], b in [-1/2, 1/2],
    x in [-3/2, 3/2] (hundredths)."""
    W, b, x = block_symbols(n, l)
    ranges = [(W, 100), (b, 50), (x, 150)]
    points = [{s.name: str(Fraction(int(rng.integers(-r, r + 1)), 100))
               for M, r in ranges for s in M} for _ in range(count)]
    return {"W": W, "b": b, "x": x, "_points": points}


def _numbers(M, point):
    """The symbols of ``M`` at ``point``, as a float array of M's shape."""
    return np.array([[float(Fraction(point[s.name])) for s in row] for row in M.tolist()])


def _at_points(W, b, x, _points, jacobian):
    """jacobian(W, b, x) (NumPy, x and b as vectors) at every point: (P, n, n)."""
    return np.array([jacobian(_numbers(W, p), _numbers(b, p)[:, 0], _numbers(x, p)[:, 0])
                     for p in _points])


def _symbolic_oracle(W, b, x, _points):
    """torch.autograd's Jacobian of the sigmoid block at the numbers of each point."""
    return _at_points(W, b, x, _points,
                      lambda W, b, x: _jacobian(_blocks([(W, b)], "sigmoid"), x))


def _sigma(u):
    return 1 / (1 + np.exp(-u))


def _symbolic_mistakes(W, b, x, _points):
    def wrong(jacobian):
        return _at_points(W, b, x, _points, jacobian)

    def s_prime(u):
        return _sigma(u) * (1 - _sigma(u))

    I = np.eye(W.shape[0])
    return [
        _wrong("the identity is missing: a = x + sigma(W x + b) passes x on unchanged, so "
               f"{SYMBOLIC}; diag(sigma'(z)) W is the Jacobian of a plain layer",
               wrong(lambda W, b, x: s_prime(W @ x + b)[:, None] * W)),
        _wrong(f"the Jacobian is transposed: row i holds the derivatives of a_i, {SYMBOLIC}",
               wrong(lambda W, b, x: (I + s_prime(W @ x + b)[:, None] * W).T)),
        _wrong(f"wrong order: W diag(sigma'(z)) scales the columns of W; {SYMBOLIC}",
               wrong(lambda W, b, x: I + W * s_prime(W @ x + b)[None, :])),
        _wrong(f"row i must be scaled by sigma'(z_i), not by sigma(z_i): {SYMBOLIC}",
               wrong(lambda W, b, x: I + _sigma(W @ x + b)[:, None] * W)),
        _wrong("wrong sign: sigma' = sigma (1 - sigma) > 0; sigma(z)(sigma(z) - 1) has the "
               f"wrong sign; {SYMBOLIC}",
               wrong(lambda W, b, x: I - s_prime(W @ x + b)[:, None] * W)),
        _wrong(f"sigma' is evaluated at sigma(z) instead of z: {SYMBOLIC}",
               wrong(lambda W, b, x: I + s_prime(_sigma(W @ x + b))[:, None] * W)),
    ]


def _symbolic_cases(rng):
    """Widths 1..4 at 2 exact points each (selfcheck.Values evaluates SymPy at 30 digits: a
    width-5 matrix costs seconds), each a random block l >= 2."""
    blocks = rng.permutation(np.arange(2, 10))
    return [_symbolic_case(rng, n, int(l), 2) for n, l in zip((1, 2, 3, 4), blocks)]


SYMBOLIC_JACOBIAN = Task(
    name="symbolic_jacobian",
    params=("W", "b", "x"),
    kind=Values("da/dx", matrix=True),
    cases=_symbolic_cases,
    oracle=_symbolic_oracle,
    mistakes=_symbolic_mistakes,
    visible=(_symbolic_case(np.random.default_rng(2701), 2, 1, 2),),
    points=3,
    rtol=1e-9,
    atol=1e-12,
    withheld=WITHHELD,
    describe=lambda c: (f"symbolic_jacobian of a block of width n = {c['W'].shape[0]} "
                        f"(at {len(c['_points'])} exact points)"),
    rank=lambda c: -c["W"].shape[0],
    oracle_name="torch.autograd at the points",
)

ASSIGNMENT = Assignment("vector", [LAYER_JACOBIAN, FORWARD, NETWORK_JACOBIAN, BACKWARD_JACOBIAN,
                                   BACKWARD_HADAMARD, OUTPUT_DELTA, HIDDEN_DELTA,
                                   SYMBOLIC_JACOBIAN])
