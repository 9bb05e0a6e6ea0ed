"""A two-layer network in the textbook form, one example (one column) at a time.

    z1 = W1 x + b1,  a1 = g1(z1),  z2 = W2 a1 + b2,  a2 = g2(z2),  E = 1/2 ||a2 - y||^2

x (n0, 1), W1 (n1, n0), b1 (n1, 1), W2 (n2, n1), b2 (n2, 1), y (n2, 1). This is deliberately
*not* the batched code of :mod:`backpropbook.mlp`: it handles a single column and loops over a
batch in Python, so that comparing the two checks the batched matrix formulas (sums of outer
products over the columns) against the per-example ones.
"""

import numpy as np

from .activations import get_activation


def two_layer_forward(x, W1, b1, W2, b2, g1="sigmoid", g2="sigmoid"):
    """Forward pass for one column x. Returns dict(z1, a1, z2, a2)."""
    z1 = W1 @ x + b1
    a1 = get_activation(g1).g(z1)
    z2 = W2 @ a1 + b2
    a2 = get_activation(g2).g(z2)
    return dict(z1=z1, a1=a1, z2=z2, a2=a2)


def two_layer_backward(x, y, W1, b1, W2, b2, g1="sigmoid", g2="sigmoid"):
    """All gradients of E = 1/2 ||a2 - y||^2 for one example, with the error signals.

    Returns dict(delta2, dW2, db2, delta1, dW1, db1), each of the shape of the variable it is
    taken with respect to (delta[l] = dE/dz[l] has the shape of z[l]).
    """
    f = two_layer_forward(x, W1, b1, W2, b2, g1, g2)
    delta2 = (f["a2"] - y) * get_activation(g2).g_prime(f["z2"])        # (n2, 1)
    delta1 = (W2.T @ delta2) * get_activation(g1).g_prime(f["z1"])      # (n1, 1)
    return dict(delta2=delta2, dW2=np.outer(delta2, f["a1"]), db2=delta2,
                delta1=delta1, dW1=np.outer(delta1, x), db1=delta1)


def two_layer_batch_gradients(X, Y, W1, b1, W2, b2, g1="sigmoid", g2="sigmoid"):
    """Gradients of the *mean* loss over the columns of X, one example at a time.

    Returns [(dW1, db1), (dW2, db2)], the layout of :func:`backpropbook.mlp.mlp_backward`.
    """
    N = X.shape[1]
    total = None
    for j in range(N):
        g = two_layer_backward(X[:, [j]], Y[:, [j]], W1, b1, W2, b2, g1, g2)
        parts = [g["dW1"], g["db1"], g["dW2"], g["db2"]]
        total = parts if total is None else [t + p for t, p in zip(total, parts)]
    dW1, db1, dW2, db2 = (t / N for t in total)
    return [(dW1, db1), (dW2, db2)]
