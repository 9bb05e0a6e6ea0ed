"""Gradient descent on lists of NumPy parameters: plain SGD and Adam.

A network's parameters are a list of arrays ``params`` and their gradients a list ``grads`` of
the same shapes. Each step returns new arrays and leaves its arguments as they are.

- SGD: ``p <- p - lr * g``, the update ``w <- w - eta dE/dw`` of the training chapter.
- Adam (Kingma and Ba, 2015): moment estimates ``m``, ``v`` with bias correction; its state is
  a dict ``{"t": steps taken so far, "m": [arrays], "v": [arrays]}``, ``t = 0`` and zeros at
  the start.
"""

import numpy as np


def sgd_step(params, grads, lr):
    """One step of plain gradient descent: returns ``[p - lr * g for p, g in zip(...)]``."""
    return [p - lr * g for p, g in zip(params, grads)]


def adam_step(params, grads, state, lr, betas=(0.9, 0.999), eps=1e-8):
    """One Adam step. Returns ``(new_params, new_state)``, the state as in the module docstring.

    m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,  t <- t + 1,
    p <- p - lr m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t).
    """
    b1, b2 = betas
    t = state["t"] + 1
    m = [b1 * m + (1 - b1) * g for m, g in zip(state["m"], grads)]
    v = [b2 * v + (1 - b2) * g * g for v, g in zip(state["v"], grads)]
    new_params = [p - lr * (m_ / (1 - b1 ** t)) / (np.sqrt(v_ / (1 - b2 ** t)) + eps)
                  for p, m_, v_ in zip(params, m, v)]
    return new_params, {"t": t, "m": m, "v": v}
