"""Backpropagation through a chain of single neurons.

The chain of depth L, in the book's notation (layers are numbered 1..L, a[0] = x):

    z[l] = w[l] * a[l-1],    a[l] = g(z[l]),    y_hat = a[L],    E = 1/2 (y_hat - y)^2

Python arrays start at 0, so ``w[l - 1]`` and ``z[l - 1]`` hold the book's w[l]
and z[l], while ``a[l]`` holds a[l] (``a`` has one more entry, a[0] = x).
"""

import numpy as np

from .activations import get_activation


def squared_error(y_hat, y):
    """E = 1/2 (y_hat - y)^2, whose derivative with respect to y_hat is (y_hat - y)."""
    return 0.5 * (y_hat - y) ** 2


def chain_forward(x, w, activation="sigmoid"):
    """Forward pass, keeping what the backward pass needs.

    Returns ``(z, a)``: z of shape (L,) with z[l-1] = w[l] a[l-1], and a of
    shape (L+1,) with a[0] = x and a[l] = g(z[l]); the prediction is ``a[-1]``.
    """
    g = get_activation(activation).g
    w = np.asarray(w, dtype=float)
    z = np.empty(len(w))
    a = np.empty(len(w) + 1)
    a[0] = x
    for l in range(1, len(w) + 1):
        z[l - 1] = w[l - 1] * a[l - 1]
        a[l] = g(z[l - 1])
    return z, a


def chain_backward(w, z, a, y, activation="sigmoid"):
    """Backward pass by the delta recursion; returns ``(dw, delta)``, both (L,).

        delta[L] = (y_hat - y) g'(z[L])                      the output layer
        delta[l] = g'(z[l]) w[l+1] delta[l+1]                 l = L-1, ..., 1
        dE/dw[l] = delta[l] a[l-1]

    Each delta[l] is computed once from delta[l+1] and reused: the pass is O(L).
    """
    g_prime = get_activation(activation).g_prime
    w = np.asarray(w, dtype=float)
    L = len(w)
    delta = np.empty(L)
    delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
    for l in range(L - 1, 0, -1):
        delta[l - 1] = g_prime(z[l - 1]) * w[l] * delta[l]
    dw = delta * a[:L]  # dE/dw[l] = delta[l] * a[l-1], for every l at once
    return dw, delta


def chain_gradient(x, w, y, activation="sigmoid"):
    """dE/dw for the chain: one forward and one backward pass. Returns dw (L,)."""
    z, a = chain_forward(x, w, activation)
    dw, _ = chain_backward(w, z, a, y, activation)
    return dw


def chain_loss(x, w, y, activation="sigmoid"):
    """E(w) = 1/2 (y_hat - y)^2 for the chain: what gradient checks differentiate."""
    _, a = chain_forward(x, w, activation)
    return squared_error(a[-1], y)
