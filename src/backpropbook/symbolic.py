"""SymPy derivations that the chapters and tests hold the NumPy code to.

The symbols follow the book: x (input), y (target), w1..wL (weights), b1..bL (biases, when the
chain has them), layers 1..L.
"""

import sympy as sp


def sigmoid(u):
    """sigma(u) = 1 / (1 + e^(-u)) as a SymPy expression."""
    return 1 / (1 + sp.exp(-u))


SYMBOLIC_ACTIVATIONS = {
    "sigmoid": sigmoid,
    "tanh": sp.tanh,
}


def chain_symbols(L, biases=False):
    """The symbols of a depth-L chain, all real: ``(x, y, (w1, ..., wL))``, and with
    ``biases=True`` ``(x, y, (w1, ..., wL), (b1, ..., bL))``."""
    x, y = sp.symbols("x y", real=True)
    w = sp.symbols(f"w1:{L + 1}", real=True)
    if not biases:
        return x, y, w
    return x, y, w, sp.symbols(f"b1:{L + 1}", real=True)


def chain_loss_expr(L, activation="sigmoid"):
    """E = 1/2 (y_hat - y)^2 for y_hat = g(wL g(... g(w1 x))). Returns ``(E, x, y, w)``."""
    g = SYMBOLIC_ACTIVATIONS[activation]
    x, y, w = chain_symbols(L)
    a = x
    for wl in w:
        a = g(wl * a)
    return sp.Rational(1, 2) * (a - y) ** 2, x, y, w


def chain_delta_gradients(L, activation="sigmoid"):
    """dE/dw[l] for l = 1..L built by the delta recursion, symbolically.

    Returns ``(grads, x, y, w)``; ``grads[l-1]`` is delta[l] * a[l-1]. Comparing these with
    ``sympy.diff(E, w[l-1])`` proves the recursion for this L (not just at one point).
    """
    g = SYMBOLIC_ACTIVATIONS[activation]
    x, y, w = chain_symbols(L)
    u = sp.Symbol("u", real=True)
    g_prime = sp.Lambda(u, sp.diff(g(u), u))
    z, a = [], [x]
    for wl in w:
        z.append(wl * a[-1])
        a.append(g(z[-1]))
    delta = [None] * L
    delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
    for l in range(L - 1, 0, -1):
        delta[l - 1] = g_prime(z[l - 1]) * w[l] * delta[l]
    return [delta[l] * a[l] for l in range(L)], x, y, w


def sigmoid_prime_maximum():
    """Maximise sigma'(u) over the reals with SymPy. Returns ``(u_star, max_value)``.

    sigma'(u) = sigma(u)(1 - sigma(u)); its only critical point is u = 0, where it equals 1/4,
    and it tends to 0 as |u| grows, so 1/4 is the global maximum.
    """
    u = sp.Symbol("u", real=True)
    s_prime = sp.diff(sigmoid(u), u)
    critical = sp.solve(sp.Eq(sp.diff(s_prime, u), 0), u)
    assert critical == [0], critical
    assert sp.limit(s_prime, u, sp.oo) == 0 and sp.limit(s_prime, u, -sp.oo) == 0
    return critical[0], sp.simplify(s_prime.subs(u, critical[0]))
