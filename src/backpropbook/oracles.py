"""Independent references computed by torch.autograd, in float64.

Nothing here shares code with the NumPy implementations: the forward pass is written again in
torch, and autograd does the differentiating.
"""

import numpy as np
import torch

_TORCH_ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def chain_gradient_torch(x, w, y, activation="sigmoid"):
    """dE/dw for the chain of single neurons, by torch.autograd. Returns a float64 array (L,)."""
    g = _TORCH_ACTIVATIONS[activation]
    w_t = torch.tensor(np.asarray(w, dtype=float), dtype=torch.float64, requires_grad=True)
    a = torch.tensor(float(x), dtype=torch.float64)
    for l in range(len(w_t)):
        a = g(w_t[l] * a)
    E = 0.5 * (a - float(y)) ** 2
    E.backward()
    return w_t.grad.numpy().copy()
