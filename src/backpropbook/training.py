"""Full-batch training of the package's MLP (:mod:`backpropbook.mlp`) by gradient descent.

The MLP keeps its parameters as layers [(W1, b1), (W2, b2), ...]; the optimizers of
:mod:`backpropbook.optim` take a flat list [W1, b1, W2, b2, ...]. The loss is the book's mean
squared error E = 1/(2N) sum_j ||a[L]_j - y_j||^2 over the N columns of X and Y.
"""

from typing import NamedTuple

import numpy as np

from .mlp import mlp_backward, mlp_forward, mlp_loss
from .optim import adam_init, adam_step, sgd_step


def flat_params(layers):
    """[(W1, b1), (W2, b2), ...] -> [W1, b1, W2, b2, ...] (the same arrays)."""
    return [array for pair in layers for array in pair]


def layer_params(arrays):
    """[W1, b1, W2, b2, ...] -> [(W1, b1), (W2, b2), ...] (the same arrays)."""
    if len(arrays) % 2:
        raise ValueError(f"expected pairs W, b: got {len(arrays)} arrays")
    return list(zip(arrays[0::2], arrays[1::2]))


class Run(NamedTuple):
    """What :func:`train_mlp` records: ``losses[k]`` is E before step k, ``params[k]`` the flat
    parameters before step k (``params[-1]``: after the last step)."""

    losses: np.ndarray
    params: list


def train_mlp(layers, X, Y, activations, steps, lr, optimizer="sgd", grad_scale=1.0):
    """Train the MLP for ``steps`` full-batch steps of ``optimizer`` ("sgd" or "adam").

    Each step: forward pass, E, backward pass, then the optimizer's update with the gradients
    ``grad_scale * dE/dtheta`` (2 gives the gradient of nn.MSELoss for one output: a mean
    without the 1/2). X (n_0, N), Y (n_L, N). Returns a :class:`Run`; ``layers`` is unchanged.
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'sgd' or 'adam'")
    theta = flat_params(layers)
    state = adam_init(theta)
    losses, trajectory = [], [theta]
    for _ in range(steps):
        out, cache = mlp_forward(layer_params(theta), X, activations, "mse")
        losses.append(mlp_loss(out, Y, "mse"))
        grads = mlp_backward(layer_params(theta), cache, Y, activations, "mse")
        grads = [grad_scale * g for g in flat_params(grads)]
        if optimizer == "sgd":
            theta = sgd_step(theta, grads, lr)
        else:
            theta, state = adam_step(theta, grads, state, lr)
        trajectory.append(theta)
    return Run(np.array(losses), trajectory)
