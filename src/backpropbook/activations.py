"""Activation functions g and their derivatives g'.

Every function works elementwise on NumPy arrays and on Python floats. The
derivatives take z (the pre-activation), so that backprop can call ``g_prime(z[l])``.
A floating-point array keeps its dtype (float32 stays float32); anything else (Python
numbers, integer or boolean arrays) is computed in float64.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


def _floats(z):
    """z as an array of floats: a floating dtype is kept, anything else becomes float64."""
    z = np.asarray(z)
    return z if np.issubdtype(z.dtype, np.floating) else z.astype(float)


def sigmoid(z):
    """sigma(z) = 1 / (1 + e^(-z)), computed without overflow for any finite z.

    e^(-|z|) lies in (0, 1], so neither branch can overflow: for z >= 0 we use
    1 / (1 + e^(-z)); for z < 0 the algebraically equal e^z / (1 + e^z).
    """
    z = _floats(z)
    with np.errstate(under="ignore"):  # e^(-|z|) rounds to 0 for |z| > 745: the right answer
        e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(z):
    """sigma'(z) = sigma(z) * (1 - sigma(z)); at most 1/4, reached at z = 0."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    """tanh(z) = (e^z - e^(-z)) / (e^z + e^(-z)) = 2 sigma(2z) - 1."""
    return np.tanh(_floats(z))


def tanh_prime(z):
    """tanh'(z) = 1 - tanh(z)^2; at most 1, reached at z = 0."""
    return 1.0 - np.tanh(_floats(z)) ** 2


def relu(z):
    """relu(z) = max(z, 0)."""
    return np.maximum(_floats(z), 0.0)


def relu_prime(z):
    """relu'(z) = 1 for z > 0, 0 for z < 0; at the kink z = 0 we take 0, as torch does."""
    z = _floats(z)
    return (z > 0).astype(z.dtype)


def step(z):
    """step(z) = 1 for z > 0, else 0: the perceptron's threshold unit."""
    z = _floats(z)
    return (z > 0).astype(z.dtype)


def step_prime(z):
    """step'(z) = 0 wherever it is defined: no gradient flows through a step unit."""
    return np.zeros_like(_floats(z))


def sign(z):
    """sign(z) = 1 for z > 0, else -1: the +-1 threshold unit, 2 step(z) - 1.

    Mathematics' sgn(0) is 0; a threshold unit must answer +1 or -1, and like the step this
    one answers the lower value at 0, so its values are exactly +-1.
    """
    z = _floats(z)
    return np.where(z > 0, 1.0, -1.0).astype(z.dtype)


def sign_prime(z):
    """sign'(z) = 0 for z != 0 (at the jump z = 0 there is no derivative; we take 0, as
    torch.sign's autograd does): no gradient flows through a sign unit."""
    return np.zeros_like(_floats(z))


def identity(z):
    """identity(z) = z: the output layer of a regression network."""
    return _floats(z)


def identity_prime(z):
    """identity'(z) = 1."""
    return np.ones_like(_floats(z))


class Activation(NamedTuple):
    """An activation g together with its derivative g'."""

    g: Callable
    g_prime: Callable


ACTIVATIONS = {
    "sigmoid": Activation(sigmoid, sigmoid_prime),
    "tanh": Activation(tanh, tanh_prime),
    "relu": Activation(relu, relu_prime),
    "step": Activation(step, step_prime),
    "sign": Activation(sign, sign_prime),
    "identity": Activation(identity, identity_prime),
}


def get_activation(name):
    """Look up an activation by name, with an error that lists the names that exist."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {name!r}; use one of: {known}") from None
