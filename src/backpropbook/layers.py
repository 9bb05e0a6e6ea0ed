"""Layers over a minibatch, in the book's column convention.

Examples are columns: A[l] has shape (n_l, N); W[l] has shape (n_l, n_{l-1}); b[l] has shape
(n_l, 1) and is broadcast along the batch (Z = W A + b 1^T). A gradient has the shape of the
variable it is taken with respect to, and the d-prefixed names are dE/d(that): dZ = dE/dZ,
dW = dE/dW, ...
"""

import numpy as np

from .activations import get_activation


def linear_forward(W, A_prev, b):
    """Z = W A_prev + b 1^T. W (n, m), A_prev (m, N), b (n, 1) -> Z (n, N)."""
    return W @ A_prev + b


def linear_backward(dZ, A_prev, W):
    """Gradients of Z = W A_prev + b 1^T, given dZ (n, N).

        dW = dZ A_prev^T   (n, m): an outer product per example, summed
        db = dZ 1          (n, 1): every example uses b, so its terms add up
        dA_prev = W^T dZ   (m, N): what the previous layer receives

    Returns (dW, db, dA_prev).
    """
    dW = dZ @ A_prev.T
    db = dZ.sum(axis=1, keepdims=True)
    dA_prev = W.T @ dZ
    return dW, db, dA_prev


def activation_forward(Z, activation):
    """A = g(Z), elementwise."""
    return get_activation(activation).g(Z)


def activation_backward(dA, Z, activation):
    """dZ = dA * g'(Z): the activation's Jacobian is diagonal, so its product is elementwise."""
    return dA * get_activation(activation).g_prime(Z)


def softmax(Z):
    """Column-wise softmax: P[:, j] = exp(Z[:, j]) / sum_i exp(Z[i, j]).

    Subtracting each column's maximum first changes nothing mathematically and keeps exp from
    overflowing.
    """
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def mse_loss(A, Y):
    """E = 1/(2N) sum over the batch of ||a - y||^2 (the mean over examples of 1/2 ||a - y||^2)."""
    return 0.5 * np.sum((A - Y) ** 2) / A.shape[1]


def mse_backward(A, Y):
    """dA = (A - Y) / N for the mean squared error above."""
    return (A - Y) / A.shape[1]


def cross_entropy_loss(P, Y):
    """E = -1/N sum_j sum_i Y[i, j] log P[i, j], for one-hot (or probability) columns Y."""
    return -np.sum(Y * np.log(P)) / P.shape[1]


def softmax_cross_entropy_backward(P, Y):
    """dZ = (P - Y) / N, for P = softmax(Z) and the mean cross-entropy: the softmax Jacobian
    and the derivative of the log cancel exactly (when every column of Y sums to 1)."""
    return (P - Y) / P.shape[1]
