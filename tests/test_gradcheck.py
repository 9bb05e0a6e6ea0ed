"""backpropbook.gradcheck: centered differences, relative error and the shared comparison."""

import re

import numpy as np
import pytest
from hypothesis import given

from backpropbook.gradcheck import (
    centered_difference,
    check_gradient,
    gradient_check,
    relative_error,
)
from backpropbook.scalar import chain_gradient, chain_loss
from strategies import FAST, arrays_of_any_shape, finite

pytestmark = [pytest.mark.package, pytest.mark.scalar]


# ------------------------------------------------------------------- centered_difference


@FAST
@given(arrays_of_any_shape(), finite(-2, 2), finite(-2, 2), finite(-2, 2))
def test_exact_on_quadratics_of_any_shape(x, a, b, c):
    """For a quadratic the centered difference has no truncation error, only rounding."""
    f = lambda v: np.sum(a * v**2 + b * v + c)  # noqa: E731
    h = 1e-3
    grad = centered_difference(f, x, h=h)
    assert grad.shape == x.shape
    assert grad.dtype == np.float64
    # Rounding: about eps * |f| / h; |f| <= 27 * 15 here, so 1e-9 is ~100x the bound.
    np.testing.assert_allclose(grad, 2 * a * x + b, rtol=0, atol=1e-9)


@pytest.mark.parametrize("x0", [-1.5, 0.3, 2.0])
def test_error_is_order_h_squared_on_a_cubic(x0):
    """(f(x+h) - f(x-h)) / 2h for f = x^3 is exactly 3x^2 + h^2: the error is h^2, not O(h)."""
    errors = []
    for h in (1e-2, 5e-3, 2.5e-3):
        estimate = centered_difference(lambda v: v**3, x0, h=h)
        errors.append(float(estimate) - 3 * x0**2)
        assert errors[-1] == pytest.approx(h**2, rel=1e-4)
    # Halving h quarters the error (a forward difference would only halve it).
    assert errors[0] / errors[1] == pytest.approx(4, rel=1e-3)
    assert errors[1] / errors[2] == pytest.approx(4, rel=1e-3)


def test_accepts_lists_scalars_and_integer_arrays():
    np.testing.assert_allclose(centered_difference(lambda v: np.sum(v**2), [1, 2, 3]),
                               [2, 4, 6], atol=1e-8)
    # An integer array must not truncate x + h back to an integer.
    np.testing.assert_allclose(
        centered_difference(lambda v: np.sum(v**2), np.array([[1, 2], [3, 4]])),
        [[2, 4], [6, 8]], atol=1e-8)
    scalar = centered_difference(lambda v: 3.0 * v, 2.0)
    assert np.shape(scalar) == ()
    assert float(scalar) == pytest.approx(3.0, abs=1e-8)


@FAST
@given(arrays_of_any_shape())
def test_does_not_mutate_x_and_nudges_one_entry_at_a_time(x):
    x_before = x.copy()
    h = 1e-4
    seen = []

    def f(v):
        seen.append(np.array(v, copy=True))
        return float(np.sum(np.sin(v)))

    centered_difference(f, x, h=h)
    np.testing.assert_array_equal(x, x_before)
    assert len(seen) == 2 * x.size
    for v in seen:
        assert v.shape == x.shape
        moved = v != x_before
        assert moved.sum() <= 1  # one entry (0 if x + h rounds back to x: never, here)
        np.testing.assert_allclose(np.abs(v - x_before).max(initial=0), h, rtol=1e-6)


# -------------------------------------------------------------------------- relative_error


def test_relative_error():
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_error([1.0, 2.2], [1.0, 2.0]) == pytest.approx(0.1)
    # Scaled by the largest expected entry, so tiny entries don't blow it up.
    assert relative_error([1e-20, 4.0], [2e-20, 4.0]) == pytest.approx(2.5e-21)
    # Expected all zero: no division by zero, and any nonzero error is huge.
    assert relative_error([0.0], [0.0]) == 0.0
    assert relative_error([1e-3], [0.0]) > 1e100


# --------------------------------------------------------------------------- check_gradient


def test_check_gradient_accepts_a_match():
    check_gradient([1.0, 2.0, 3.0], [1.0, 2.0, 3.0 + 1e-9], name="dw")


def test_failure_names_argument_index_expected_and_actual():
    expected = np.array([[0.5, 0.25, -1.0], [2.0, 3.0, 4.0]])
    actual = expected.copy()
    actual[0, 2] = -1.5
    actual[1, 0] = 7.0
    with pytest.raises(AssertionError) as info:
        check_gradient(actual, expected, name="dW", oracle="torch.autograd")
    message = str(info.value)
    assert "dW[0, 2]" in message  # the first entry that is off, in row-major order
    assert re.search(r"expected -1\b.*torch\.autograd", message), message
    assert "got -1.5" in message
    assert "2 of 6 entries differ" in message


def test_failure_for_a_scalar_has_no_index():
    with pytest.raises(AssertionError, match=r"^db: expected 0\.25 \(reference\), got 0\.5"):
        check_gradient(0.5, 0.25, name="db")


def test_shape_mismatch_is_reported_with_both_shapes():
    with pytest.raises(AssertionError) as info:
        check_gradient(np.zeros(3), np.zeros((3, 1)), name="dw")
    message = str(info.value)
    assert message.startswith("dw:")
    assert "(3, 1)" in message and "(3,)" in message
    # A transposed answer is a shape mismatch too, not a broadcast.
    with pytest.raises(AssertionError, match=r"shape \(2, 3\).*shape \(3, 2\)"):
        check_gradient(np.zeros((3, 2)), np.zeros((2, 3)), name="dW")


def test_non_numbers_are_reported():
    with pytest.raises(AssertionError, match=r"dw: expected numbers, got str"):
        check_gradient("abc", [1.0], name="dw")
    with pytest.raises(AssertionError, match=r"dw: expected numbers, got list"):
        check_gradient(["0.5", "x"], [1.0, 2.0], name="dw")


def test_nan_never_matches():
    with pytest.raises(AssertionError, match=r"dw\[1\]"):
        check_gradient([1.0, np.nan], [1.0, 2.0], name="dw")


# ---------------------------------------------------------------------------- gradient_check


def test_gradient_check_accepts_the_backprop_gradient():
    x, y, w = 0.9, 0.1, np.array([0.4, -1.1, 0.8])
    gradient_check(lambda v: chain_loss(x, v, y), w, chain_gradient(x, w, y), name="w")


@pytest.mark.parametrize("mistake", ["scaled", "sign", "swapped"])
def test_gradient_check_rejects_a_wrong_gradient(mistake):
    x, y, w = 0.9, 0.1, np.array([0.4, -1.1, 0.8])
    grad = chain_gradient(x, w, y)
    wrong = {
        "scaled": grad * np.array([1.0, 1.0, 1.01]),
        "sign": grad * np.array([1.0, -1.0, 1.0]),
        "swapped": grad[::-1],
    }[mistake]
    with pytest.raises(AssertionError) as info:
        gradient_check(lambda v: chain_loss(x, v, y), w, wrong, name="w")
    message = str(info.value)
    assert message.startswith("d/dw[")
    assert "centered difference" in message
