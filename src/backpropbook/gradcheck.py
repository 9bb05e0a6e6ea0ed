"""Gradient checking: centered finite differences, and one comparison used everywhere.

The book, the tests and the assignments' test cells all call :func:`check_gradient`, so a
mismatch is reported the same way wherever it is found: which argument, which index, the
expected and the actual value.

A check by :func:`gradient_check` costs two evaluations of f per entry of x; a network with P
parameters needs 2P. :func:`directional_check` checks the same gradient along k random
directions for 2k evaluations, whatever P is.
"""

import numpy as np


def centered_difference(f, x, h=1e-6):
    """Estimate the gradient of a scalar function f at x by centered differences.

        df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)      (error O(h^2))

    x may have any shape; the result has the same shape, in float64. x is not modified.
    """
    x = np.array(x, dtype=float)  # a private copy: we nudge its entries in place
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        f_plus = float(f(x))
        x[i] = saved - h
        f_minus = float(f(x))
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def forward_difference(f, x, h=1e-6):
    """Estimate the gradient of a scalar function f at x by forward differences.

        df/dx_i ~ (f(x + h e_i) - f(x)) / h      (error O(h))

    One evaluation at x and one per entry, x.size + 1 in all (the centered difference needs
    2 x.size), at the price of an error O(h) instead of O(h^2). x may have any shape; the result
    has the same shape, in float64. x is not modified.
    """
    x = np.array(x, dtype=float)  # a private copy: we nudge its entries in place
    f_x = float(f(x))
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        grad[i] = (float(f(x)) - f_x) / h
        x[i] = saved
    return grad


def relative_error(actual, expected):
    """max |actual - expected| / max(|expected|, tiny): one number for "how far off"."""
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    scale = max(np.max(np.abs(expected), initial=0.0), np.finfo(float).tiny)
    return float(np.max(np.abs(actual - expected), initial=0.0) / scale)


def check_gradient(actual, expected, name="gradient", rtol=1e-6, atol=1e-9, oracle="reference"):
    """Assert that ``actual`` matches ``expected`` entry by entry.

    On failure the AssertionError names the argument, the first index that is off, the expected
    value (and which oracle produced it) and the actual value. Shapes must agree exactly.
    """
    expected = np.asarray(expected, dtype=float)
    try:
        actual = np.asarray(actual, dtype=float)
    except (TypeError, ValueError):
        raise AssertionError(f"{name}: expected numbers, got {type(actual).__name__}") from None
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{name}: expected shape {expected.shape}, got shape {actual.shape}"
        )
    bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        where = f"{name}[{', '.join(map(str, i))}]" if i else name
        raise AssertionError(
            f"{where}: expected {expected[i]:.10g} ({oracle}), got {actual[i]:.10g}"
            f" ({int(bad.sum())} of {bad.size} entries differ)"
        )


def gradient_check(f, x, grad, name="x", h=1e-6, rtol=1e-5, atol=1e-8):
    """Check an analytic gradient ``grad`` of scalar f at x against centered differences."""
    check_gradient(grad, centered_difference(f, x, h), name=f"d/d{name}", rtol=rtol,
                   atol=atol, oracle="centered difference")


def directional_difference(f, x, v, h=1e-6):
    """Estimate the directional derivative v . grad f(x) by a centered difference along v.

        v . grad f(x) ~ (f(x + h v) - f(x - h v)) / (2h)      (error O(h^2) for a unit v)

    Two evaluations of f, whatever the size of x. x and v have the same shape (any); x is not
    modified. Returns a float.
    """
    x = np.asarray(x, dtype=float)
    v = np.asarray(v, dtype=float)
    if v.shape != x.shape:
        raise ValueError(f"direction v has shape {v.shape}, x has shape {x.shape}")
    return (float(f(x + h * v)) - float(f(x - h * v))) / (2 * h)


def random_directions(shape, k, rng=0):
    """k random unit directions of the given shape, as an array (k, *shape).

    Each is u / ||u|| with u ~ N(0, I): uniform on the unit sphere, so no entry is favoured.
    ``rng``: a seed or a numpy Generator.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (the number of directions) must be a positive integer, got {k!r}")
    u = np.random.default_rng(rng).standard_normal((int(k), *shape))
    norms = np.sqrt(np.sum(u**2, axis=tuple(range(1, u.ndim)), keepdims=True))
    return u / norms


def directional_check(f, x, grad, k=4, rng=0, name="x", h=1e-6, rtol=1e-5, atol=1e-8):
    """Check an analytic gradient ``grad`` of scalar f at x along k random unit directions.

    Compares v . grad with directional_difference(f, x, v, h) for each direction v of
    random_directions(x.shape, k, rng), as check_gradient compares entries: a failure names
    the direction. Costs 2k evaluations of f, where gradient_check costs 2 x.size.
    An error e in grad shifts v . grad by v . e, about |e| / sqrt(x.size) for a random unit
    v, as v . grad is about |grad| / sqrt(x.size): the error is seen relative to |grad|.
    """
    x = np.asarray(x, dtype=float)
    grad = np.asarray(grad, dtype=float)
    if grad.shape != x.shape:
        raise AssertionError(f"d/d{name}: expected shape {x.shape} (the shape of {name}), got "
                             f"shape {grad.shape}")
    directions = random_directions(x.shape, k, rng)
    numeric = [directional_difference(f, x, v, h) for v in directions]
    analytic = [float(np.sum(v * grad)) for v in directions]
    check_gradient(analytic, numeric, name=f"d/d{name} along v", rtol=rtol, atol=atol,
                   oracle="centered difference along v")
