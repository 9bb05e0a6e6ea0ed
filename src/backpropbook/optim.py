"""Optimizers on lists of NumPy arrays: plain gradient descent and Adam.

A model's parameters are a list of arrays theta = [W1, b1, W2, b2, ...] and ``grads`` the list
of their gradients dE/dtheta, each of the shape of its parameter. Every step returns new arrays
and leaves its arguments unchanged. The learning rate is lr (the book's eta).
"""

import numpy as np


def _check_pairs(params, grads):
    """params and grads: lists of arrays of equal length and matching shapes."""
    if len(params) != len(grads):
        raise ValueError(f"grads has {len(grads)} arrays, params has {len(params)}")
    for i, (p, g) in enumerate(zip(params, grads)):
        if np.shape(p) != np.shape(g):
            raise ValueError(f"grads[{i}] has shape {np.shape(g)}, params[{i}] {np.shape(p)}")


def sgd_step(params, grads, lr):
    """One step of gradient descent: theta <- theta - lr * dE/dtheta, for every array.

    Returns the new list of parameters.
    """
    _check_pairs(params, grads)
    return [p - lr * g for p, g in zip(params, grads)]


def adam_init(params):
    """Adam's state before the first step: t = 0 and zero moments m, v shaped like params."""
    return {"t": 0,
            "m": [np.zeros_like(p) for p in params],
            "v": [np.zeros_like(p) for p in params]}


def adam_step(params, grads, state, lr, betas=(0.9, 0.999), eps=1e-8):
    """One step of Adam (Kingma and Ba, 2015), entry by entry, with t the step number from 1:

        m <- beta1 m + (1 - beta1) g              (a running mean of the gradient)
        v <- beta2 v + (1 - beta2) g^2            (a running mean of its square)
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)   (bias corrections)
        theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)

    ``state`` is {"t": steps taken, "m": [...], "v": [...]}, from :func:`adam_init` or the
    previous step. Returns (new params, new state).
    """
    _check_pairs(params, grads)
    if (set(state) != {"t", "m", "v"}
            or not len(state["m"]) == len(state["v"]) == len(params)):
        raise ValueError("state must be adam_init(params) or the state a previous step returned")
    beta1, beta2 = betas
    t = state["t"] + 1
    m = [beta1 * m + (1 - beta1) * g for m, g in zip(state["m"], grads)]
    v = [beta2 * v + (1 - beta2) * g**2 for v, g in zip(state["v"], grads)]
    new = [p - lr * (mt / (1 - beta1**t)) / (np.sqrt(vt / (1 - beta2**t)) + eps)
           for p, mt, vt in zip(params, m, v)]
    return new, {"t": t, "m": m, "v": v}
