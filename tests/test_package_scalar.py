"""The scalar chain, the activations and the SymPy derivations, held to independent oracles.

- torch.autograd in float64 (relative error <= 1e-12),
- centered finite differences,
- SymPy (exact derivatives, and the delta recursion proved symbolically for L = 1..3).

The few fixed-example "negative controls" show that each comparison can fail: a deliberately
broken backward pass is caught by the very same checks.
"""

import math
import warnings

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st

from backpropbook import activations as act
from backpropbook import symbolic
from backpropbook.gradcheck import centered_difference, check_gradient, relative_error
from backpropbook.oracles import chain_gradient_torch
from backpropbook.scalar import (
    chain_backward,
    chain_forward,
    chain_gradient,
    chain_loss,
    squared_error,
)
from strategies import (
    CHAIN_ACTIVATIONS,
    FAST,
    SMOOTH_ACTIVATIONS,
    THOROUGH,
    any_finite_float,
    away_from_zero,
    chains,
    finite,
    huge_float,
    pre_activations,
)

pytestmark = [pytest.mark.package, pytest.mark.scalar]

TORCH_RTOL = 1e-12

TORCH_G = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def torch_chain(x, w, y, activation):
    """The chain once more, in torch (float64): returns (z, a, E, dE/dz, dE/dw) as NumPy."""
    g = TORCH_G[activation]
    w_t = torch.tensor(np.asarray(w, dtype=float), dtype=torch.float64, requires_grad=True)
    a = [torch.tensor(float(x), dtype=torch.float64)]
    z = []
    for l in range(len(w_t)):
        z.append(w_t[l] * a[-1])
        z[-1].retain_grad()
        a.append(g(z[-1]))
    E = 0.5 * (a[-1] - float(y)) ** 2
    E.backward()
    as_np = lambda ts: np.array([t.item() for t in ts])  # noqa: E731
    dz = np.array([t.grad.item() if t.grad is not None else 0.0 for t in z])
    return as_np(z), as_np(a), E.item(), dz, w_t.grad.numpy().copy()


def broken_backward(w, z, a, y, activation="sigmoid"):
    """A typical student bug: the factor w[l+1] is left out of the delta recursion."""
    g_prime = act.get_activation(activation).g_prime
    L = len(w)
    delta = np.empty(L)
    delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
    for l in range(L - 1, 0, -1):
        delta[l - 1] = g_prime(z[l - 1]) * delta[l]
    return delta * a[:L], delta


# --------------------------------------------------------------------------- the chain vs torch


@FAST
@given(chains())
def test_forward_pass_matches_torch(c):
    z, a = chain_forward(c.x, c.w, c.activation)
    L = len(c.w)
    assert z.shape == (L,) and a.shape == (L + 1,)
    assert a[0] == c.x
    z_t, a_t, E_t, _, _ = torch_chain(c.x, c.w, c.y, c.activation)
    assert relative_error(z, z_t) <= TORCH_RTOL
    assert relative_error(a, a_t) <= TORCH_RTOL
    assert math.isclose(chain_loss(c.x, c.w, c.y, c.activation), E_t, rel_tol=TORCH_RTOL,
                        abs_tol=1e-300)
    assert chain_loss(c.x, c.w, c.y, c.activation) == squared_error(a[-1], c.y)


def assume_residual_not_tiny(c):
    """Skip chains whose prediction is within 1e-3 of the target. Every gradient carries the
    factor y_hat - y; when it is tiny it is a cancellation, and a last-bit difference between
    NumPy's and torch's activation becomes a large relative difference of two correct answers."""
    _, a = chain_forward(c.x, c.w, c.activation)
    assume(abs(a[-1] - c.y) >= 1e-3)


@THOROUGH
@given(chains())
def test_gradient_matches_torch_autograd(c):
    assume_residual_not_tiny(c)
    dw = chain_gradient(c.x, c.w, c.y, c.activation)
    expected = chain_gradient_torch(c.x, c.w, c.y, c.activation)
    assert dw.shape == expected.shape == (len(c.w),)
    assert dw.dtype == np.float64
    err = relative_error(dw, expected)
    assert err <= TORCH_RTOL, f"relative error {err:.3g} vs torch.autograd for {c}"


@FAST
@given(chains())
def test_backward_deltas_match_torch(c):
    assume_residual_not_tiny(c)
    z, a = chain_forward(c.x, c.w, c.activation)
    dw, delta = chain_backward(c.w, z, a, c.y, c.activation)
    _, _, _, dz_t, dw_t = torch_chain(c.x, c.w, c.y, c.activation)
    assert relative_error(delta, dz_t) <= TORCH_RTOL, "delta[l] must be dE/dz[l]"
    assert relative_error(dw, dw_t) <= TORCH_RTOL
    # dE/dw[l] = delta[l] a[l-1], entry by entry.
    np.testing.assert_array_equal(dw, delta * a[:-1])


# ------------------------------------------------------------ the chain vs finite differences


@THOROUGH
@given(chains(min_abs_weight=1e-2))
def test_gradient_matches_centered_differences(c):
    """dE/dw against (E(w + h e_l) - E(w - h e_l)) / 2h.

    ReLU kinks: along the active path a ReLU chain is a monomial in the weights, so nudging
    w[k] by +-h rescales every z downstream by (1 +- h/w[k]); with |w[k]| >= 0.01 >> h no z
    changes sign, so no difference straddles a kink. We also assume no pre-activation is tiny
    but nonzero, as a second guard.
    """
    z, _ = chain_forward(c.x, c.w, c.activation)
    if c.activation == "relu":
        assume(np.all((z == 0) | (np.abs(z) >= 1e-6)))
    dw = chain_gradient(c.x, c.w, c.y, c.activation)
    E = chain_loss(c.x, c.w, c.y, c.activation)
    numeric = centered_difference(lambda v: chain_loss(c.x, v, c.y, c.activation), c.w)
    # Rounding in the difference quotient is about eps * E / h ~ 2e-10 * E; allow 50x that.
    check_gradient(dw, numeric, name="dw", rtol=1e-6, atol=1e-8 * max(1.0, E),
                   oracle="centered difference")


def test_depth_one_closed_form():
    """L = 1: dE/dw = (sigma(w x) - y) sigma'(w x) x, worked out by hand."""
    x, w, y = 1.5, 0.8, 0.25
    s = 1 / (1 + math.exp(-w * x))
    expected = (s - y) * s * (1 - s) * x
    dw = chain_gradient(x, [w], y, "sigmoid")
    assert dw.shape == (1,)
    assert math.isclose(dw[0], expected, rel_tol=1e-14)


def test_a_broken_backward_pass_is_caught():
    """Negative control: the checks above reject a backward pass that drops w[l+1]."""
    x, w, y = 0.7, np.array([1.3, 0.6, 1.1]), 0.2  # all active for ReLU
    for activation in CHAIN_ACTIVATIONS:
        z, a = chain_forward(x, w, activation)
        wrong, _ = broken_backward(w, z, a, y, activation)
        assert relative_error(wrong, chain_gradient_torch(x, w, y, activation)) > 1e-3
        numeric = centered_difference(lambda v, act=activation: chain_loss(x, v, y, act), w)
        with pytest.raises(AssertionError, match=r"dw\[0\]"):
            check_gradient(wrong, numeric, name="dw", rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------ activations

U = sp.Symbol("u", real=True)
SYMPY_G = {
    "sigmoid": 1 / (1 + sp.exp(-U)),
    "tanh": sp.tanh(U),
    "relu": sp.Max(U, 0),
    "step": sp.Heaviside(U),
}


def sympy_value(expr, z, digits=40):
    """expr(u = z) evaluated exactly by SymPy, rounded to a float."""
    return float(expr.subs(U, sp.Float(z, digits)).evalf(digits))


@FAST
@given(st.sampled_from(SMOOTH_ACTIVATIONS), pre_activations(-4.0, 4.0))
@example("sigmoid", 0.0)
@example("tanh", 0.0)
def test_smooth_activation_and_derivative_match_sympy(name, z):
    """g and g' against SymPy's exact values (|z| <= 4: see strategies.chains on saturation)."""
    g, g_prime = act.get_activation(name)
    expr = SYMPY_G[name]
    assert math.isclose(float(g(z)), sympy_value(expr, z), rel_tol=1e-14, abs_tol=1e-300)
    assert math.isclose(float(g_prime(z)), sympy_value(sp.diff(expr, U), z), rel_tol=1e-12)


@FAST
@given(st.sampled_from(["relu", "step"]), pre_activations().filter(away_from_zero))
def test_piecewise_activation_and_derivative_match_sympy(name, z):
    g, g_prime = act.get_activation(name)
    expr = SYMPY_G[name]
    assert float(g(z)) == sympy_value(expr, z)
    # d/du max(u, 0) = Heaviside(u); d/du Heaviside(u) = DiracDelta(u), 0 away from 0.
    assert float(g_prime(z)) == sympy_value(sp.diff(expr, U), z)


def test_derivatives_at_the_kink_follow_pytorch():
    assert float(act.relu_prime(0.0)) == 0.0
    z = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    torch.relu(z).backward()
    assert z.grad.item() == float(act.relu_prime(0.0))
    assert float(act.step_prime(0.0)) == 0.0


@FAST
@given(st.sampled_from(sorted(act.ACTIVATIONS)), pre_activations(-10.0, 10.0))
def test_activation_derivatives_match_centered_differences(name, z):
    if name in ("relu", "step", "sign"):
        assume(away_from_zero(z))
    g, g_prime = act.get_activation(name)
    numeric = centered_difference(lambda v: g(v), z, h=1e-6)
    check_gradient(g_prime(z), numeric, name=f"{name}'", rtol=1e-6, atol=1e-9,
                   oracle="centered difference")


@FAST
@given(st.sampled_from(sorted(act.ACTIVATIONS)),
       st.lists(finite(-50, 50), min_size=1, max_size=6))
def test_activations_work_elementwise(name, zs):
    g, g_prime = act.get_activation(name)
    arr = np.array(zs)
    for f in (g, g_prime):
        out = f(arr)
        assert out.shape == arr.shape
        np.testing.assert_array_equal(out, [float(f(v)) for v in zs])


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match="sigmoid") as info:
        act.get_activation("softplus")
    assert "softplus" in str(info.value)


# ------------------------------------------------------------------------ sigmoid stability

EXTREMES = [0.0, 1.0, -1.0, 36.0, -36.0, 700.0, -700.0, 710.0, -710.0, 745.0, -745.0,
            1000.0, -1000.0, 1e4, -1e4, 1e308, -1e308, 1.7976931348623157e308,
            -1.7976931348623157e308]


def _sigmoid_quietly(z, **errstate):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(**errstate):
            return act.sigmoid(z), act.sigmoid_prime(z)


@FAST
@given(any_finite_float)
@example(1000.0)
@example(-1000.0)
@example(1e308)
@example(-1e308)
def test_sigmoid_raises_no_floating_point_error_at_all(z):
    """No warning and no floating-point flag, underflow included, for any finite z."""
    _sigmoid_quietly(z, all="raise")


@FAST
@given(huge_float)
def test_sigmoid_never_overflows_or_divides_by_zero(z):
    """The guarantee the docstring makes: no overflow, no 0/0, no inf/inf, however large |z|."""
    s, ds = _sigmoid_quietly(z, over="raise", divide="raise", invalid="raise", under="ignore")
    assert 0.0 <= s <= 1.0 and 0.0 <= ds <= 0.25


def test_sigmoid_values_far_out():
    s, _ = _sigmoid_quietly(np.array(EXTREMES), over="raise", divide="raise",
                            invalid="raise", under="ignore")
    assert np.all((s >= 0) & (s <= 1))
    order = np.argsort(EXTREMES)
    assert np.all(np.diff(s[order]) >= 0), "sigmoid must be nondecreasing"
    assert float(act.sigmoid(1000.0)) == 1.0
    assert float(act.sigmoid(-1000.0)) == 0.0  # e^-1000 ~ 5e-435 rounds to 0
    # The negative branch keeps full relative accuracy where 1 - sigma would be all rounding.
    assert math.isclose(float(act.sigmoid(-700.0)), math.exp(-700.0), rel_tol=1e-14)
    assert math.isclose(float(act.sigmoid(-30.0)), math.exp(-30) / (1 + math.exp(-30)),
                        rel_tol=1e-14)


@FAST
@given(finite(-40.0, 40.0))
def test_sigmoid_symmetry(z):
    assert abs(float(act.sigmoid(-z)) - (1.0 - float(act.sigmoid(z)))) <= 4e-16


@FAST
@given(any_finite_float)
@example(0.0)
@example(-0.0)
def test_sigmoid_prime_is_at_most_a_quarter(z):
    with np.errstate(under="ignore"):
        ds = float(act.sigmoid_prime(z))
    assert 0.0 <= ds <= 0.25


def test_sigmoid_prime_peaks_at_zero():
    assert float(act.sigmoid_prime(0.0)) == 0.25
    grid = np.linspace(-10, 10, 2001)
    assert grid[np.argmax(act.sigmoid_prime(grid))] == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------------- SymPy


@pytest.mark.parametrize("activation", sorted(symbolic.SYMBOLIC_ACTIVATIONS))
@pytest.mark.parametrize("L", [1, 2, 3])
def test_delta_recursion_equals_sympy_diff(L, activation):
    grads, x, y, w = symbolic.chain_delta_gradients(L, activation)
    E, x2, y2, w2 = symbolic.chain_loss_expr(L, activation)
    assert (x, y, tuple(w)) == (x2, y2, tuple(w2))
    assert len(grads) == L
    for l in range(L):
        assert sp.simplify(grads[l] - sp.diff(E, w[l])) == 0, f"dE/dw{l + 1}, L={L}"


def test_symbolic_check_rejects_a_wrong_recursion():
    """Negative control: the simplify == 0 test does tell a wrong recursion apart."""
    E, x, y, w = symbolic.chain_loss_expr(2, "sigmoid")
    grads, *_ = symbolic.chain_delta_gradients(2, "sigmoid")
    wrong = grads[0] / w[1]  # drop the factor w2 from delta[1]
    assert sp.simplify(wrong - sp.diff(E, w[0])) != 0


@pytest.mark.parametrize("activation", sorted(symbolic.SYMBOLIC_ACTIVATIONS))
def test_symbolic_gradients_agree_with_numpy(activation):
    L = 3
    grads, x, y, w = symbolic.chain_delta_gradients(L, activation)
    f = sp.lambdify((x, y, *w), grads, modules="mpmath")
    point = dict(x=0.9, y=-0.3, w=[0.7, -1.2, 1.6])
    expected = np.array([float(v) for v in f(point["x"], point["y"], *point["w"])])
    dw = chain_gradient(point["x"], point["w"], point["y"], activation)
    assert relative_error(dw, expected) <= 1e-13


def test_sigmoid_prime_maximum():
    u_star, value = symbolic.sigmoid_prime_maximum()
    assert u_star == 0
    assert value == sp.Rational(1, 4)
    assert float(act.sigmoid_prime(float(u_star))) == float(value)
