"""The named test functions of the five-point-difference task: ``FUNCTIONS = {name: f}``.

Each ``f`` takes a float array (any shape) and returns a float. They are the only callables a
hidden check hands to the student's code, and the grading sandbox needs them on the student's
side too: this module is copied into the sandbox, where the package's reference modules are
withheld. So it imports NumPy and math only, never another ``backpropbook`` module.

The oracles (the same functions in 50-digit arithmetic) are kept out of the sandbox, in the
scalar assignment's task declarations (instructor side), under the same names.
"""

import math

import numpy as np

__all__ = ["FUNCTIONS"]


def steep_quadratic(x):
    """f(x) = 500·Σ x_i² + Σ x_i: f'' = 1000, so a forward difference is off by 500·h."""
    x = np.asarray(x, dtype=float)
    return float(500.0 * np.sum(x * x) + np.sum(x))


def exp_sin(x):
    """f(x) = Σ e^(sin x_i)."""
    return float(np.sum(np.exp(np.sin(np.asarray(x, dtype=float)))))


def coupled(x):
    """f(x) = (Σ x_i)² + Σ cos x_i: every entry's derivative depends on all the others."""
    x = np.asarray(x, dtype=float)
    return float(np.sum(x) ** 2 + np.sum(np.cos(x)))


def cubic(x):
    """f(x) = 10·Σ x_i³: f''' = 60 everywhere, so a three-point difference is off by 10·h²."""
    x = np.asarray(x, dtype=float)
    return float(10.0 * np.sum(x**3))


def fast_wave(x):
    """f(x) = Σ sin(3 x_i): every derivative is large, |f^(k)| up to 3^k."""
    return float(np.sum(np.sin(3.0 * np.asarray(x, dtype=float))))


CHAIN_X, CHAIN_Y = 0.7, 0.1


def chain_loss(w):
    """E(w) for the sigmoid chain without biases, x = 0.7, y = 0.1, the entries of w as weights."""
    a = CHAIN_X
    for wl in np.ravel(np.asarray(w, dtype=float)):
        a = 1.0 / (1.0 + math.exp(-wl * a))  # |wl * a| stays small here: no overflow
    return 0.5 * (a - CHAIN_Y) ** 2


FUNCTIONS = {
    "steep_quadratic": steep_quadratic,
    "exp_sin": exp_sin,
    "coupled": coupled,
    "chain_loss": chain_loss,
    "cubic": cubic,
    "fast_wave": fast_wave,
}
