"""SymPy derivations for the vector chapter: symbolic matrices, Jacobians and the delta recursion.

A network is built from explicit symbols, in the book's convention: column vectors,
z[l] = W[l] a[l-1] + b[l] with W[l] of shape (n_l, n_{l-1}), a[l] = g(z[l]), a[0] = x, and the
squared error E = 1/2 ||a[L] - t||^2 of one example. The entry w^{[l]}_{jk} (row j, column k,
both 1-based) is the symbol named ``w^{[l]}_{jk}``: it connects unit k of layer l-1 to unit j of
layer l. Symbols are named in LaTeX so that SymPy's output reads like the book.

``activation="generic"`` uses an undefined function g: identities proved with it hold for every
differentiable activation at once.
"""

import random
from typing import NamedTuple

import sympy as sp

from .symbolic import sigmoid

_U = sp.Symbol("u", real=True)


def activation_function(activation):
    """The scalar function g as something SymPy can call: sigmoid, tanh or an undefined g."""
    if activation == "sigmoid":
        return sigmoid
    if activation == "tanh":
        return sp.tanh
    if activation == "generic":
        return sp.Function("g")
    raise ValueError(f"unknown activation {activation!r}; use sigmoid, tanh or generic")


def activation_derivative(activation):
    """g' as a callable: g'(e) is d g(u)/du at u = e (a ``Subs`` object for the generic g)."""
    g_prime = sp.diff(activation_function(activation)(_U), _U)
    return lambda e: g_prime.subs(_U, e)


class SymbolicNetwork(NamedTuple):
    """A fully connected network written out in symbols, with its forward pass."""

    sizes: tuple
    activation: str
    x: sp.Matrix          # (n_0, 1) input symbols x_{1}, x_{2}, ...
    t: sp.Matrix          # (n_L, 1) target symbols t_{1}, t_{2}, ...
    Ws: list              # W[l] (n_l, n_{l-1}) of symbols w^{[l]}_{jk}; Ws[l-1] is layer l
    bs: list              # b[l] (n_l, 1) of symbols b^{[l]}_{j}
    zs: list              # z[l] = W[l] a[l-1] + b[l], as expressions
    activations: list     # a[0] = x, a[1], ..., a[L]
    E: sp.Expr            # 1/2 ||a[L] - t||^2


def network(sizes, activation="sigmoid"):
    """The symbolic network with layer widths ``sizes = (n_0, ..., n_L)``, forward pass done."""
    sizes = tuple(int(n) for n in sizes)
    g = activation_function(activation)
    x = sp.Matrix([sp.Symbol(f"x_{{{k}}}", real=True) for k in range(1, sizes[0] + 1)])
    t = sp.Matrix([sp.Symbol(f"t_{{{k}}}", real=True) for k in range(1, sizes[-1] + 1)])
    Ws, bs, zs, acts = [], [], [], [x]
    for l, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        W = sp.Matrix(n, m,
                      lambda j, k, l=l: sp.Symbol(f"w^{{[{l}]}}_{{{j + 1}{k + 1}}}", real=True))
        b = sp.Matrix(n, 1, lambda j, _, l=l: sp.Symbol(f"b^{{[{l}]}}_{{{j + 1}}}", real=True))
        z = W * acts[-1] + b
        Ws.append(W)
        bs.append(b)
        zs.append(z)
        acts.append(z.applyfunc(g))
    r = acts[-1] - t
    E = sp.Rational(1, 2) * (r.T * r)[0, 0]
    return SymbolicNetwork(sizes, activation, x, t, Ws, bs, zs, acts, E)


def activation_jacobian(z, activation="sigmoid"):
    """d g(z) / d z for a column z: the diagonal matrix diag(g'(z_1), ..., g'(z_n))."""
    g_prime = activation_derivative(activation)
    return sp.diag(*[g_prime(zi) for zi in z])


def delta_gradients(net):
    """dE/dW[l] and dE/db[l] by the delta recursion, in symbols.

        delta[L] = g'(z[L]) o (a[L] - t)
        delta[l] = g'(z[l]) o (W[l+1]^T delta[l+1])
        dE/dW[l] = delta[l] a[l-1]^T,   dE/db[l] = delta[l]

    Returns ``(grads, deltas)``: lists over layers 1..L of (dW, db) and of delta.
    """
    g_prime = activation_derivative(net.activation)
    L = len(net.Ws)
    deltas = [None] * L
    upstream = net.activations[L] - net.t  # dE/da[L]
    for l in range(L, 0, -1):
        deltas[l - 1] = net.zs[l - 1].applyfunc(g_prime).multiply_elementwise(upstream)
        upstream = net.Ws[l - 1].T * deltas[l - 1]  # dE/da[l-1]
    grads = [(deltas[l] * net.activations[l].T, deltas[l]) for l in range(L)]
    return grads, deltas


def diff_gradients(net):
    """dE/dW[l] and dE/db[l] entry by entry with ``sympy.diff``: the oracle for the recursion."""
    return [(W.applyfunc(lambda w: sp.diff(net.E, w)), b.applyfunc(lambda v: sp.diff(net.E, v)))
            for W, b in zip(net.Ws, net.bs)]


def input_jacobian(net):
    """d a[L] / d x, (n_L, n_0), by ``Matrix.jacobian`` of the whole output expression."""
    return net.activations[-1].jacobian(net.x)


def chained_input_jacobian(net):
    """The same Jacobian as the product of the layers' Jacobians, last layer on the left:

        d a[L]/d x = J_g(z[L]) W[L] J_g(z[L-1]) W[L-1] ... J_g(z[1]) W[1].
    """
    J = sp.eye(net.sizes[0])
    for W, z in zip(net.Ws, net.zs):
        J = activation_jacobian(z, net.activation) * W * J
    return J


def parameters(net):
    """All parameters in one column: W[1] row by row, then b[1], then W[2], b[2], ..."""
    return sp.Matrix([p for W, b in zip(net.Ws, net.bs) for p in (*W, *b)])


def flatten(grads):
    """[(dW, db), ...] in the order of :func:`parameters`, as one column."""
    return sp.Matrix([p for dW, db in grads for p in (*dW, *db)])


def parameter_jacobian(net):
    """J = d a[L] / d theta, (n_L, P): the Jacobian of the output with respect to every
    parameter, in the order of :func:`parameters`."""
    return net.activations[-1].jacobian(parameters(net))


def vector_jacobian_product(net):
    """J^T (a[L] - t): the gradient dE/dtheta obtained by forming J first (the expensive way)."""
    return parameter_jacobian(net).T * (net.activations[-1] - net.t)


def identically_zero(expr):
    """True if ``expr`` is 0 for every value of its symbols, decided exactly.

    ``expand_mul`` multiplies out every product of sums and collects like terms; when that
    leaves 0 the expression is identically zero. It is far faster than ``simplify`` on these
    nested sigmoids (fractions of a second instead of minutes for a 2-2-2-1 network). Otherwise
    a clearly nonzero value at a random point proves the opposite at once; only if the value
    is (nearly) 0 does ``simplify`` decide.
    """
    expanded = sp.expand_mul(expr)
    if expanded == 0:
        return True
    if abs(value_at(expanded)) > 1e-15:  # 30 correct digits: this is not rounding
        return False
    return sp.simplify(expanded) == 0


def all_zero(matrices):
    """True if every entry of every matrix is identically 0 (see :func:`identically_zero`)."""
    return all(identically_zero(entry) for M in matrices for entry in M)


def value_at(expr, seed=0):
    """expr at a random rational point (every free symbol in [-2, 2]), evaluated to 30 digits.

    A clearly nonzero value *proves* that an expression is not identically zero, which is how
    the negative controls show that a wrong formula differs from the right one. The generic
    activation g is evaluated as the sigmoid: an identity that fails for one g is no identity
    for every g.
    """
    rng = random.Random(seed)
    expr = expr.replace(sp.Function("g"), sp.Lambda(_U, sigmoid(_U))).doit()
    point = {s: sp.Rational(rng.randint(-200, 200), 100)
             for s in sorted(expr.free_symbols, key=str)}
    return float(expr.subs(point).evalf(30))


def readable(expr, net):
    """``expr`` with every pre-activation written as a symbol z^{[l]}_j and g'(.) as a function.

    For display only: the nested expressions of a forward pass are hard to read, so each z[l]_j
    (matched as a whole expression) becomes one symbol, and the generic g's derivative, which
    SymPy writes as ``Subs(Derivative(g(u), u), u, ...)``, becomes g'(...).
    """
    g_prime = sp.Function("g'")
    expr = expr.replace(lambda e: isinstance(e, sp.Subs), lambda e: g_prime(e.point[0]))
    names = {z_j: sp.Symbol(f"z^{{[{l}]}}_{{{j}}}", real=True)
             for l, z in enumerate(net.zs, start=1) for j, z_j in enumerate(z, start=1)}
    for z_j, name in reversed(list(names.items())):  # deepest layer first: it contains the rest
        expr = expr.xreplace({z_j: name})
    return expr
