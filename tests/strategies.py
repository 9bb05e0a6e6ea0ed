"""Hypothesis strategies shared by the test files.

Import them as ``from strategies import ...`` (pytest puts tests/ on sys.path because it has no
``__init__.py``).

The input ranges are chosen so that the *comparisons* are well conditioned, not to make tests
pass: see the comments at each strategy.
"""

import os
from typing import NamedTuple

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

# Modest example counts: the package tests together must stay well under ~20 s. For a deep run,
# BACKPROPBOOK_EXAMPLES=1500 pytest -m package (about half a minute; it passes).
# deadline=None: the first call into torch (or SymPy's caches) can take a while.
EXAMPLES = int(os.environ.get("BACKPROPBOOK_EXAMPLES", "40"))
FAST = settings(max_examples=EXAMPLES, deadline=None)
THOROUGH = settings(max_examples=2 * EXAMPLES, deadline=None)

SMOOTH_ACTIVATIONS = ("sigmoid", "tanh")
CHAIN_ACTIVATIONS = ("sigmoid", "tanh", "relu")  # the ones the torch oracle knows

MAX_DEPTH = 10


def finite(lo, hi):
    """Finite floats in [lo, hi] (hypothesis still tries the ends, 0.0 and -0.0)."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


class Chain(NamedTuple):
    """One input to the scalar chain: E(w) = 1/2 (g(w_L g(... g(w_1 x))) - y)^2."""

    x: float
    w: np.ndarray
    y: float
    activation: str


@st.composite
def chains(draw, activations=CHAIN_ACTIVATIONS, min_depth=1, max_depth=MAX_DEPTH,
           min_abs_weight=0.0):
    """A chain of depth 1..10 with weights and input in [-2, 2] and target in [-2, 2].

    Why [-2, 2]: then |z[1]| <= 4 and, for sigmoid and tanh, |z[l]| <= 2 afterwards (|a| <= 1).
    Beyond that the units saturate, and g'(z) = 1 - g(z)^2 (tanh) or s (1 - s) (sigmoid) is
    computed with catastrophic cancellation by NumPy *and* by torch alike, so two correct float64
    implementations legitimately differ far more than 1e-12 there. ReLU chains stay below
    2^11 in magnitude, which keeps E (and so the finite-difference rounding error) modest.

    ``min_abs_weight`` > 0 keeps every weight away from 0 (used to stay off ReLU kinks).
    """
    activation = draw(st.sampled_from(activations))
    depth = draw(st.integers(min_depth, max_depth))
    weight = finite(-2.0, 2.0)
    if min_abs_weight > 0:
        weight = weight.filter(lambda v: abs(v) >= min_abs_weight)
    w = np.array(draw(st.lists(weight, min_size=depth, max_size=depth)), dtype=float)
    x = draw(finite(-2.0, 2.0))
    y = draw(finite(-2.0, 2.0))
    return Chain(x, w, y, activation)


def pre_activations(lo=-30.0, hi=30.0):
    """Scalar pre-activations z for the activation-derivative tests."""
    return finite(lo, hi)


def away_from_zero(z, margin=1e-3):
    """True if z is far enough from the kink at 0 for a centered difference with h = 1e-6."""
    return abs(z) >= margin


# Any finite float, including the extremes +-1.797e308 and subnormals: for stability tests.
any_finite_float = st.floats(allow_nan=False, allow_infinity=False)

# Huge inputs, |z| >= 700, where a naive 1 / (1 + exp(-z)) overflows.
huge_float = st.one_of(
    st.floats(700.0, 1.7976931348623157e308),
    st.floats(-1.7976931348623157e308, -700.0),
)


@st.composite
def arrays_of_any_shape(draw, max_dims=3, max_side=3, lo=-3.0, hi=3.0):
    """Float64 arrays of rank 0..max_dims (each side 1..max_side) with entries in [lo, hi]."""
    shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=0, max_size=max_dims)))
    size = int(np.prod(shape, dtype=int))
    values = draw(st.lists(finite(lo, hi), min_size=size, max_size=size))
    return np.array(values, dtype=float).reshape(shape)
