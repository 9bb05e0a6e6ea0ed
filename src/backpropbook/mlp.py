"""A multilayer perceptron of any depth, forward and backward, over a minibatch of columns.

    A[0] = X (n_0, N);  Z[l] = W[l] A[l-1] + b[l];  A[l] = g_l(Z[l]) for l = 1..L

The output layer is either an activation with the mean squared error (``loss="mse"``) or a
softmax with the mean cross-entropy (``loss="cross_entropy"``; its Z[L] are the logits).
``params`` is a list of (W, b) pairs, layer 1 first; Python's index l-1 holds the book's layer l.
"""

import numpy as np

from .layers import (
    activation_backward,
    activation_forward,
    cross_entropy_loss,
    linear_backward,
    linear_forward,
    mse_backward,
    mse_loss,
    softmax,
    softmax_cross_entropy_backward,
)


def init_params(sizes, rng, dtype=np.float64):
    """(W, b) for layer sizes [n_0, ..., n_L]: W[l] ~ N(0, 1/n_{l-1}) of shape (n_l, n_{l-1}),
    b[l] = 0 of shape (n_l, 1)."""
    return [((rng.standard_normal((n, m)) / np.sqrt(m)).astype(dtype), np.zeros((n, 1), dtype))
            for m, n in zip(sizes[:-1], sizes[1:])]


def _activations(activations, L):
    return [activations] * L if isinstance(activations, str) else list(activations)


def mlp_forward(params, X, activations, loss="mse"):
    """Forward pass. Returns (output, cache) with cache = (Zs, As), As[0] = X.

    ``activations``: one name for every layer, or a list of L names. With
    ``loss="cross_entropy"`` the last layer's activation is ignored: it is a softmax.
    """
    acts = _activations(activations, len(params))
    Zs, As = [], [X]
    for l, (W, b) in enumerate(params, start=1):
        Z = linear_forward(W, As[-1], b)
        output_softmax = loss == "cross_entropy" and l == len(params)
        A = softmax(Z) if output_softmax else activation_forward(Z, acts[l - 1])
        Zs.append(Z)
        As.append(A)
    return As[-1], (Zs, As)


def mlp_loss(output, Y, loss="mse"):
    return mse_loss(output, Y) if loss == "mse" else cross_entropy_loss(output, Y)


def mlp_backward(params, cache, Y, activations, loss="mse"):
    """Backward pass: returns [(dW, db), ...], layer 1 first, each of the shape of (W, b).

        dZ[L] = (P - Y)/N (softmax + cross-entropy)  or  dA[L] * g'(Z[L]) with dA[L] = (A - Y)/N
        dW[l], db[l], dA[l-1] = linear_backward(dZ[l], A[l-1], W[l])
        dZ[l-1] = dA[l-1] * g'(Z[l-1])
    """
    acts = _activations(activations, len(params))
    Zs, As = cache
    L = len(params)
    if loss == "cross_entropy":
        dZ = softmax_cross_entropy_backward(As[L], Y)
    else:
        dZ = activation_backward(mse_backward(As[L], Y), Zs[L - 1], acts[L - 1])
    grads = [None] * L
    for l in range(L, 0, -1):
        dW, db, dA_prev = linear_backward(dZ, As[l - 1], params[l - 1][0])
        grads[l - 1] = (dW, db)
        if l > 1:
            dZ = activation_backward(dA_prev, Zs[l - 2], acts[l - 2])
    return grads
