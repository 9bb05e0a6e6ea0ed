"""Gradient checking: centered finite differences, and one comparison used everywhere.

The book, the tests and the assignments' test cells all call :func:`check_gradient`, so a
mismatch is reported the same way wherever it is found: which argument, which index, the
expected and the actual value.
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
