"""backpropbook.gradcheck: finite differences (forward, centered, along directions), relative
error and the shared comparison; and the gradient-checking chapter's figure."""

import re

import numpy as np
import pytest
from hypothesis import given
from matplotlib.figure import Figure

from backpropbook import figures
from backpropbook.gradcheck import (
    centered_difference,
    check_gradient,
    directional_check,
    directional_difference,
    forward_difference,
    gradient_check,
    random_directions,
    relative_error,
)
from backpropbook.mlp import init_params, mlp_backward, mlp_forward, mlp_loss
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


@pytest.mark.parametrize("difference, h, atol", [(centered_difference, 1e-6, 1e-8),
                                                (forward_difference, 1e-7, 1e-5)])
def test_accepts_lists_scalars_and_integer_arrays(difference, h, atol):
    np.testing.assert_allclose(difference(lambda v: np.sum(v**2), [1, 2, 3], h=h),
                               [2, 4, 6], atol=atol)
    # An integer array must not truncate x + h back to an integer.
    np.testing.assert_allclose(
        difference(lambda v: np.sum(v**2), np.array([[1, 2], [3, 4]]), h=h),
        [[2, 4], [6, 8]], atol=atol)
    scalar = difference(lambda v: 3.0 * v, 2.0, h=h)
    assert np.shape(scalar) == ()
    assert float(scalar) == pytest.approx(3.0, abs=1e-8)


def recording(seen):
    """A smooth f(v) that keeps a copy of every point it is evaluated at in ``seen``."""
    def f(v):
        seen.append(np.array(v, copy=True))
        return float(np.sum(np.sin(v)))
    return f


@FAST
@given(arrays_of_any_shape())
def test_does_not_mutate_x_and_nudges_one_entry_at_a_time(x):
    x_before = x.copy()
    h = 1e-4
    seen = []
    f = recording(seen)
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


# ---------------------------------------------------------------------- forward_difference


@FAST
@given(arrays_of_any_shape(), finite(-2, 2), finite(-2, 2))
def test_forward_difference_is_exact_on_linear_functions_of_any_shape(x, a, b):
    """A linear function has no truncation error; only rounding, about eps |f| / h."""
    f = lambda v: np.sum(a * v + b)  # noqa: E731
    grad = forward_difference(f, x, h=1e-3)
    assert grad.shape == x.shape
    assert grad.dtype == np.float64
    # |f| <= 27 * 8 here: rounding is at most ~2 * 2.2e-16 * 216 / 1e-3 = 1e-10.
    np.testing.assert_allclose(grad, np.full(x.shape, a), rtol=0, atol=1e-9)


@pytest.mark.parametrize("x0", [-1.5, 0.3, 2.0])
def test_forward_difference_error_is_order_h(x0):
    """(f(x+h) - f(x)) / h for f = x^2 is exactly 2x + h: the error is h, not O(h^2)."""
    errors = []
    for h in (1e-2, 5e-3, 2.5e-3):
        estimate = forward_difference(lambda v: v**2, x0, h=h)
        errors.append(float(estimate) - 2 * x0)
        assert errors[-1] == pytest.approx(h, rel=1e-6)
    # Halving h halves the error (the centered difference would quarter it).
    assert errors[0] / errors[1] == pytest.approx(2, rel=1e-5)
    assert errors[1] / errors[2] == pytest.approx(2, rel=1e-5)


@FAST
@given(arrays_of_any_shape())
def test_forward_difference_evaluates_once_at_x_then_once_per_entry(x):
    x_before = x.copy()
    h = 1e-4
    seen = []
    f = recording(seen)
    forward_difference(f, x, h=h)
    np.testing.assert_array_equal(x, x_before)
    assert len(seen) == x.size + 1
    np.testing.assert_array_equal(seen[0], x_before)  # f(x), shared by every entry
    for i, v in zip(np.ndindex(x.shape), seen[1:]):
        moved = np.argwhere(v != x_before)
        assert [tuple(m) for m in moved] == [i]  # only entry i, by +h
        assert v[i] - x_before[i] == pytest.approx(h, rel=1e-6)


# ------------------------------------------------------------------ directional_difference


@FAST
@given(arrays_of_any_shape(), finite(-2, 2), finite(-2, 2))
def test_directional_difference_is_v_dot_grad_on_quadratics(x, a, b):
    """A quadratic has no truncation error along any direction: v . (2 a x + b)."""
    v = random_directions(x.shape, 1, rng=7)[0]
    value = directional_difference(lambda u: np.sum(a * u**2 + b * u), x, v, h=1e-3)
    assert isinstance(value, float)
    assert value == pytest.approx(float(np.sum(v * (2 * a * x + b))), abs=1e-9)


@pytest.mark.parametrize("h", [1e-2, 5e-3])
def test_directional_difference_error_is_order_h_squared(h):
    """For f = sum x^3: (f(x + hv) - f(x - hv)) / 2h = v . 3x^2 + h^2 sum v^3, exactly."""
    rng = np.random.default_rng(0)
    x, v = rng.normal(size=(3, 2)), random_directions((3, 2), 1, rng=1)[0]
    value = directional_difference(lambda u: np.sum(u**3), x, v, h=h)
    error = value - float(np.sum(v * 3 * x**2))
    assert error == pytest.approx(h**2 * float(np.sum(v**3)), rel=1e-5)


def test_directional_difference_evaluates_twice_and_leaves_x_alone():
    x = np.arange(6.0).reshape(2, 3)
    v = np.ones((2, 3)) / np.sqrt(6)
    x_before, seen = x.copy(), []

    def f(u):
        seen.append(np.array(u, copy=True))
        return float(np.sum(u))

    directional_difference(f, x, v, h=1e-3)
    np.testing.assert_array_equal(x, x_before)
    assert len(seen) == 2
    np.testing.assert_allclose(seen[0], x + 1e-3 * v)
    np.testing.assert_allclose(seen[1], x - 1e-3 * v)


def test_directional_difference_names_mismatched_shapes():
    with pytest.raises(ValueError, match=r"direction v has shape \(3,\), x has shape \(2, 3\)"):
        directional_difference(np.sum, np.zeros((2, 3)), np.ones(3))


# ---------------------------------------------------------------------- random_directions


def test_random_directions_are_seeded_unit_vectors_of_the_shape():
    V = random_directions((2, 3), 5, rng=0)
    assert V.shape == (5, 2, 3)
    np.testing.assert_allclose(np.sqrt(np.sum(V**2, axis=(1, 2))), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(V, random_directions((2, 3), 5, rng=0))
    assert not np.allclose(V, random_directions((2, 3), 5, rng=1))
    np.testing.assert_array_equal(V, random_directions((2, 3), 5,
                                                       rng=np.random.default_rng(0)))
    assert random_directions((), 3).shape == (3,)  # a scalar x: directions +-1
    np.testing.assert_array_equal(np.abs(random_directions((), 3)), 1.0)


def test_random_directions_favour_no_entry():
    """Uniform on the sphere in R^5: every coordinate has mean 0 and variance 1/5."""
    V = random_directions((5,), 20000, rng=3)
    assert np.all(np.abs(V.mean(axis=0)) < 0.02)
    np.testing.assert_allclose(V.var(axis=0), 0.2, rtol=0.05)
    assert 0.4 < np.mean(V > 0) < 0.6


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_random_directions_rejects_a_bad_k(k):
    with pytest.raises(ValueError, match=r"^k \(the number of directions\) must be a positive"):
        random_directions((3,), k)


# ----------------------------------------------------------------------- directional_check


def test_directional_check_accepts_the_backprop_gradient_in_2k_evaluations():
    x, y, w = 0.9, 0.1, np.array([0.4, -1.1, 0.8])
    calls = []

    def E(v):
        calls.append(1)
        return chain_loss(x, v, y)

    directional_check(E, w, chain_gradient(x, w, y), k=5, name="w")
    assert len(calls) == 2 * 5


def test_directional_check_accepts_a_network_gradient():
    rng = np.random.default_rng(5)
    params = [(W, 0.1 * rng.normal(size=b.shape)) for W, b in init_params([3, 4, 2], rng)]
    X, Y, acts = rng.normal(size=(3, 5)), rng.normal(size=(2, 5)), ["tanh", "identity"]
    W1, b1 = params[0]

    def E(W):  # the loss as a function of W[1] alone
        out, _ = mlp_forward([(W, b1), params[1]], X, acts)
        return mlp_loss(out, Y)

    _, cache = mlp_forward(params, X, acts)
    dW1 = mlp_backward(params, cache, Y, acts)[0][0]
    directional_check(E, W1, dW1, name="W1")
    with pytest.raises(AssertionError, match=r"^d/dW1 along v\[\d\]"):
        directional_check(E, W1, dW1.T.reshape(dW1.shape), name="W1")


@pytest.mark.parametrize("mistake", ["scaled", "sign", "swapped"])
def test_directional_check_rejects_a_wrong_gradient(mistake):
    x, y, w = 0.9, 0.1, np.array([0.4, -1.1, 0.8])
    grad = chain_gradient(x, w, y)
    wrong = {
        "scaled": grad * np.array([1.0, 1.0, 1.01]),
        "sign": grad * np.array([1.0, -1.0, 1.0]),
        "swapped": grad[::-1],
    }[mistake]
    with pytest.raises(AssertionError) as info:
        directional_check(lambda v: chain_loss(x, v, y), w, wrong, name="w")
    message = str(info.value)
    assert message.startswith("d/dw along v[")
    assert "centered difference along v" in message


def test_directional_check_names_a_gradient_of_the_wrong_shape():
    with pytest.raises(AssertionError, match=r"^d/dW: expected shape \(2, 3\) \(the shape of W\), "
                                             r"got shape \(3, 2\)"):
        directional_check(np.sum, np.zeros((2, 3)), np.ones((3, 2)), name="W")


# ----------------------------------------------------------------------- the chapter's figure


def test_step_error_figure_draws_one_log_log_panel_per_precision():
    steps = np.logspace(0, -8, 9)
    panel = {"steps": steps,
             "measured": {"forward": steps + 1e-9 / steps, "centered": steps**2 + 1e-9 / steps},
             "model": {"forward": steps, "centered": steps**2},
             "best": {"forward": (3e-5, 1e-4), "centered": (1e-3, 1e-3)}}
    fig = figures.step_error_figure({"float64": panel, "float32": panel})
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax, title in zip(fig.axes, ["float64", "float32"]):
        assert ax.get_title() == title
        assert ax.get_xscale() == ax.get_yscale() == "log"
        labels = [line.get_label() for line in ax.get_lines()]
        for method in ("forward", "centered"):
            assert f"{method}, measured" in labels and f"{method}, error model" in labels
        # the predicted best steps as vertical lines, the measured ones as circles on the curve
        vertical = [line.get_xdata()[0] for line in ax.get_lines()
                    if line.get_linestyle() == ":"]
        assert vertical == [3e-5, 1e-3]
        circles = [(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.get_lines()
                   if line.get_marker() == "o"]
        assert circles == [(1e-4, panel["measured"]["forward"][4]),
                           (1e-3, panel["measured"]["centered"][3])]
