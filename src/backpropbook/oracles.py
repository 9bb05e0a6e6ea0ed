"""Independent references computed by torch.autograd, in float64.

Nothing here shares code with the NumPy implementations: the forward pass is written again in
torch, and autograd does the differentiating.
"""

import numpy as np
import torch

TORCH_ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda z: z,
}

# The torch twin of each elementwise operation of the array engine (backpropbook.autodiff.VJPS),
# called with the node's inputs and attributes.
TORCH_ELEMENTWISE = {
    "mul": torch.mul,
    "scale": lambda a, c: c * a,
    "neg": torch.neg,
    "exp": torch.exp,
    "log": torch.log,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
}


def chain_gradient_torch(x, w, y, activation="sigmoid"):
    """dE/dw for the chain of single neurons, by torch.autograd. Returns a float64 array (L,)."""
    g = TORCH_ACTIVATIONS[activation]
    w_t = torch.tensor(np.asarray(w, dtype=float), dtype=torch.float64, requires_grad=True)
    a = torch.tensor(float(x), dtype=torch.float64)
    for l in range(len(w_t)):
        a = g(w_t[l] * a)
    E = 0.5 * (a - float(y)) ** 2
    E.backward()
    return w_t.grad.numpy().copy()


def mlp_gradients_torch(params, X, Y, activations, loss="mse"):
    """[(dW, db), ...] of the MLP in :mod:`backpropbook.mlp`, by torch.autograd in float64.

    Written again in torch, in the column convention: Z = W A + b, examples in columns.
    """
    L = len(params)
    acts = [activations] * L if isinstance(activations, str) else list(activations)
    leaves = [(torch.tensor(W, dtype=torch.float64, requires_grad=True),
               torch.tensor(b, dtype=torch.float64, requires_grad=True)) for W, b in params]
    A = torch.tensor(X, dtype=torch.float64)
    Yt = torch.tensor(Y, dtype=torch.float64)
    N = A.shape[1]
    for l, (W, b) in enumerate(leaves, start=1):
        Z = W @ A + b
        if loss == "cross_entropy" and l == L:
            E = -(Yt * torch.log_softmax(Z, dim=0)).sum() / N
            break
        A = TORCH_ACTIVATIONS[acts[l - 1]](Z)
    else:
        E = 0.5 * ((A - Yt) ** 2).sum() / N
    E.backward()
    return [(W.grad.numpy().copy(), b.grad.numpy().copy()) for W, b in leaves]
