"""The vector chapter's package code, held to independent oracles.

- torch.autograd in float64 (relative error <= 1e-12), through ``oracles.mlp_gradients_torch``,
- centered finite differences (gradients and Jacobians),
- SymPy: the delta recursion equals ``sympy.diff`` entry by entry, the Jacobian of the whole
  network equals the product of the layers' Jacobians, and J^T (a - t) equals the backward pass.

Negative controls show that each comparison can fail: the mistakes of the chapter's last section
are rejected by the very same checks.
"""

from typing import NamedTuple

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from backpropbook import symbolic_vector as sv
from backpropbook.activations import get_activation
from backpropbook.gradcheck import centered_difference, check_gradient, relative_error
from backpropbook.layers import mse_loss
from backpropbook.mlp import mlp_backward, mlp_forward
from backpropbook.oracles import mlp_gradients_torch
from backpropbook.vector import (
    activation_jacobian,
    flatten_gradients,
    network_figure,
    numerical_jacobian,
    per_index_gradients,
    unflatten_gradients,
    vector_backward,
    vector_forward,
    vector_gradients,
    vector_loss,
)
from strategies import FAST, THOROUGH, finite

pytestmark = [pytest.mark.package, pytest.mark.vector]

TORCH_RTOL = 1e-12
VECTOR_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")  # the ones the torch oracle knows
SMOOTH = ("sigmoid", "tanh")


class Net(NamedTuple):
    """One example for a fully connected network: params [(W, b), ...], x, t, activations."""

    params: list
    x: np.ndarray
    t: np.ndarray
    activations: list


def _matrix(draw, rows, cols, lo, hi):
    values = draw(st.lists(finite(lo, hi), min_size=rows * cols, max_size=rows * cols))
    return np.array(values, dtype=float).reshape(rows, cols)


@st.composite
def networks(draw, activations=VECTOR_ACTIVATIONS, max_depth=3, max_width=4):
    """A network of depth 1..3 and widths 1..4, weights in [-1, 1], biases in [-0.5, 0.5].

    Inputs and targets lie in [-1, 1]. The ranges keep the pre-activations of sigmoid and tanh
    layers moderate; the tests that compare with torch to 1e-12 also ``assume`` |z| <= 4 there,
    because beyond that g'(z) is computed with cancellation by NumPy and torch alike (see
    strategies.chains).
    """
    depth = draw(st.integers(1, max_depth))
    sizes = draw(st.lists(st.integers(1, max_width), min_size=depth + 1, max_size=depth + 1))
    acts = draw(st.lists(st.sampled_from(activations), min_size=depth, max_size=depth))
    params = [(_matrix(draw, n, m, -1.0, 1.0), _matrix(draw, n, 1, -0.5, 0.5))
              for m, n in zip(sizes[:-1], sizes[1:])]
    x = _matrix(draw, sizes[0], 1, -1.0, 1.0)
    t = _matrix(draw, sizes[-1], 1, -1.0, 1.0)
    return Net(params, x, t, acts)


def assume_well_conditioned(net, relu_margin=0.0):
    """Skip saturated smooth units (|z| > 4), ReLU units near their kink (with a margin), and
    outputs within 1e-3 of their target.

    When a - t is tiny it is itself a cancellation: NumPy's and torch's activations may differ
    in the last bit of a, and that bit is then a large part of every gradient (hypothesis found
    a = tanh(b), t = b + 5e-7, where both are right and differ by 3e-12 relative).
    """
    zs, acts = vector_forward(net.params, net.x, net.activations)
    for z, name in zip(zs, net.activations):
        if name in SMOOTH:
            assume(np.all(np.abs(z) <= 4.0))
        if name == "relu" and relu_margin > 0:
            assume(np.all(np.abs(z) >= relu_margin))
    assume(np.max(np.abs(acts[-1] - net.t)) >= 1e-3)
    return zs


def test_unflatten_gradients_undoes_flatten_gradients():
    rng = np.random.default_rng(5)
    pairs = [(rng.normal(size=(3, 2)), rng.normal(size=(3, 1))),
             (rng.normal(size=(1, 3)), rng.normal(size=(1, 1)))]
    back = unflatten_gradients(flatten_gradients(pairs), pairs)
    assert all(np.array_equal(a, b) for p, q in zip(pairs, back) for a, b in zip(p, q))
    with pytest.raises(ValueError, match="entries"):
        unflatten_gradients(np.zeros(3), pairs)


# ---------------------------------------------------------------------------------- Jacobians


@FAST
@given(st.sampled_from(sorted(set(VECTOR_ACTIVATIONS) | {"step"})),
       st.lists(finite(-6.0, 6.0), min_size=1, max_size=6))
def test_activation_jacobian_is_the_diagonal_of_g_prime(name, values):
    z = np.array(values).reshape(-1, 1)
    J = activation_jacobian(z, name)
    g_prime = get_activation(name).g_prime(z)
    assert J.shape == (z.size, z.size)
    np.testing.assert_array_equal(np.diag(J), g_prime.ravel())
    np.testing.assert_array_equal(J - np.diag(np.diag(J)), 0.0)
    # multiplying by the diagonal Jacobian is a Hadamard product
    v = np.linspace(-1.0, 2.0, z.size).reshape(-1, 1)
    np.testing.assert_array_equal(J @ v, g_prime * v)
    np.testing.assert_array_equal(J.T @ v, g_prime * v)


@FAST
@given(st.sampled_from(SMOOTH), st.lists(finite(-4.0, 4.0), min_size=1, max_size=5))
def test_activation_jacobian_matches_centered_differences(name, values):
    z = np.array(values).reshape(-1, 1)
    g = get_activation(name).g
    check_gradient(activation_jacobian(z, name), numerical_jacobian(g, z), name="da/dz",
                   rtol=1e-6, atol=1e-9, oracle="centered difference")


@FAST
@given(st.integers(1, 4), st.integers(1, 4), st.randoms(use_true_random=False))
def test_numerical_jacobian_is_in_numerator_layout(m, n, rnd):
    """z = W a + b with W (m, n): dz/da = W, of shape (m, n), never W^T."""
    rng = np.random.default_rng(rnd.randint(0, 2**32 - 1))
    W, b, a = rng.normal(size=(m, n)), rng.normal(size=(m, 1)), rng.normal(size=(n, 1))
    a_before = a.copy()
    J = numerical_jacobian(lambda v: W @ v + b, a)
    assert J.shape == (m, n)
    np.testing.assert_array_equal(a, a_before)  # x is not modified
    check_gradient(J, W, name="dz/da", rtol=1e-8, atol=1e-9, oracle="W")
    # the Jacobian of a scalar is a row; the gradient (shape of a) is its transpose
    row = numerical_jacobian(lambda v: float(np.sum(W @ v)), a)
    assert row.shape == (1, n)
    check_gradient(row.T, centered_difference(lambda v: float(np.sum(W @ v)), a), name="grad")


def test_numerical_jacobian_rejects_a_transposed_layout():
    """Negative control: for a non-square W the transpose cannot pass for the Jacobian."""
    W = np.arange(6.0).reshape(3, 2)
    J = numerical_jacobian(lambda v: W @ v, np.ones((2, 1)))
    with pytest.raises(AssertionError, match="shape"):
        check_gradient(J, W.T, name="dz/da")


# ------------------------------------------------------------------- the network vs torch


@FAST
@given(networks())
def test_forward_pass_shapes_and_loss(net):
    zs, acts = vector_forward(net.params, net.x, net.activations)
    assert len(zs) == len(net.params) and len(acts) == len(net.params) + 1
    assert acts[0] is net.x or np.array_equal(acts[0], net.x)
    for (W, b), z, a in zip(net.params, zs, acts[1:]):
        assert z.shape == a.shape == b.shape == (W.shape[0], 1)
    out, cache = mlp_forward(net.params, net.x, net.activations)
    np.testing.assert_array_equal(acts[-1], out)
    # E = 1/2 ||a - t||^2 is the batch code's mean squared error with N = 1
    assert vector_loss(net.params, net.x, net.t, net.activations) == pytest.approx(
        mse_loss(out, net.t), rel=1e-15, abs=0)


@THOROUGH
@given(networks(), st.booleans())
def test_gradients_match_torch_autograd(net, jacobians):
    assume_well_conditioned(net)
    grads = vector_gradients(net.params, net.x, net.t, net.activations, jacobians=jacobians)
    expected = mlp_gradients_torch(net.params, net.x, net.t, net.activations)
    assert len(grads) == len(net.params)
    for (dW, db), (W, b) in zip(grads, net.params):
        assert dW.shape == W.shape and db.shape == b.shape
        assert dW.dtype == db.dtype == np.float64
    err = relative_error(flatten_gradients(grads), flatten_gradients(expected))
    assert err <= TORCH_RTOL, f"relative error {err:.3g} vs torch.autograd"


@FAST
@given(networks())
def test_deltas_are_dE_dz(net):
    """With N = 1, dE/db[l] = delta[l]: torch's bias gradients are the deltas."""
    assume_well_conditioned(net)
    zs, acts = vector_forward(net.params, net.x, net.activations)
    grads, deltas = vector_backward(net.params, zs, acts, net.t, net.activations)
    expected = mlp_gradients_torch(net.params, net.x, net.t, net.activations)
    for l, (delta, (dW, _db), (_, db_t)) in enumerate(zip(deltas, grads, expected)):
        assert delta.shape == zs[l].shape
        assert relative_error(delta, db_t) <= TORCH_RTOL or np.max(np.abs(db_t)) == 0
        np.testing.assert_array_equal(dW, delta @ acts[l].T)  # dE/dW[l] = delta[l] a[l-1]^T


@FAST
@given(networks())
def test_jacobian_and_hadamard_versions_agree(net):
    zs, acts = vector_forward(net.params, net.x, net.activations)
    a, _ = vector_backward(net.params, zs, acts, net.t, net.activations)
    b, _ = vector_backward(net.params, zs, acts, net.t, net.activations, jacobians=True)
    np.testing.assert_array_equal(flatten_gradients(a), flatten_gradients(b))


@FAST
@given(networks(activations=("sigmoid",)))
def test_per_index_formulas_match_torch(net):
    assume_well_conditioned(net)
    grads = per_index_gradients(net.params, net.x, net.t)
    expected = mlp_gradients_torch(net.params, net.x, net.t, "sigmoid")
    for (dW, db), (W, b) in zip(grads, net.params):
        assert dW.shape == W.shape and db.shape == b.shape
    assert relative_error(flatten_gradients(grads), flatten_gradients(expected)) <= TORCH_RTOL


@FAST
@given(networks())
def test_batch_code_with_one_column_agrees(net):
    _, cache = mlp_forward(net.params, net.x, net.activations)
    batch = mlp_backward(net.params, cache, net.t, net.activations)
    single = vector_gradients(net.params, net.x, net.t, net.activations)
    assert relative_error(flatten_gradients(single), flatten_gradients(batch)) <= 1e-15


@THOROUGH
@given(networks())
def test_gradients_match_centered_differences(net):
    """Every parameter, perturbed through one flat vector theta.

    ReLU units within 1e-3 of their kink are skipped: a nudge of h = 1e-6 moves z by far less,
    so no difference straddles a kink.
    """
    assume_well_conditioned(net, relu_margin=1e-3)
    grads = vector_gradients(net.params, net.x, net.t, net.activations)
    theta = flatten_gradients(net.params)
    numeric = centered_difference(
        lambda th: vector_loss(unflatten_gradients(th, net.params), net.x, net.t,
                               net.activations), theta)
    E = vector_loss(net.params, net.x, net.t, net.activations)
    check_gradient(flatten_gradients(grads), numeric, name="theta", rtol=1e-6,
                   atol=1e-8 * max(1.0, E), oracle="centered difference")


def test_two_two_two_one_closed_form():
    """The chapter's per-entry formula for dE/dw[1]_12, evaluated by hand."""
    s = lambda u: 1 / (1 + np.exp(-u))  # noqa: E731
    ds = lambda u: s(u) * (1 - s(u))  # noqa: E731
    W1 = np.array([[0.5, -0.3], [0.8, 0.2]])
    W2 = np.array([[-0.6, 0.9], [0.4, 0.7]])
    W3 = np.array([[1.2, -0.8]])
    b1, b2, b3 = np.array([[0.1], [-0.1]]), np.array([[0.05], [0.2]]), np.array([[0.3]])
    x, t = np.array([[1.0], [-0.5]]), 0.9
    z1 = W1 @ x + b1
    z2 = W2 @ s(z1) + b2
    z3 = W3 @ s(z2) + b3
    a3 = s(z3)[0, 0]
    by_hand = ((a3 - t) * ds(z3[0, 0])
               * (W3[0, 0] * ds(z2[0, 0]) * W2[0, 0] + W3[0, 1] * ds(z2[1, 0]) * W2[1, 0])
               * ds(z1[0, 0]) * x[1, 0])
    grads = vector_gradients([(W1, b1), (W2, b2), (W3, b3)], x, np.array([[t]]))
    assert grads[0][0][0, 1] == pytest.approx(by_hand, rel=1e-13)


# ----------------------------------------------------------------------- negative controls


@pytest.fixture(scope="module")
def small_net():
    rng = np.random.default_rng(11)
    params = [(rng.normal(size=(2, 2)), rng.normal(0, 0.3, size=(2, 1))),
              (rng.normal(size=(2, 2)), rng.normal(0, 0.3, size=(2, 1))),
              (rng.normal(size=(1, 2)), rng.normal(0, 0.3, size=(1, 1)))]
    x, t = rng.normal(size=(2, 1)), np.array([[0.8]])
    zs, acts = vector_forward(params, x)
    _, deltas = vector_backward(params, zs, acts, t)
    torch_grads = mlp_gradients_torch(params, x, t, "sigmoid")
    return params, x, t, zs, acts, deltas, torch_grads


def test_the_chapters_mistakes_are_caught(small_net):
    params, x, t, zs, acts, deltas, torch_grads = small_net
    (W1, _), (W2, _), (W3, _) = params
    a0, a1, a2, a3 = acts
    d1, d2, d3 = deltas
    g1 = get_activation("sigmoid").g_prime(zs[0])
    wrong = {
        ("transposed dW", 1): a1 @ d2.T,
        ("missing g'", 1): (W3.T @ d3) @ a1.T,
        ("W instead of W^T", 0): (g1 * (W2 @ d2)) @ a0.T,
        ("O(O - 1) sign", 2): ((a3 - t) * a3 * (a3 - 1)) @ a2.T,
    }
    for (label, layer), dW in wrong.items():
        right = torch_grads[layer][0]
        assert dW.shape == right.shape, label
        assert relative_error(dW, right) > 0.05, label
        with pytest.raises(AssertionError, match=rf"dW\[{layer + 1}\]"):
            check_gradient(dW, right, name=f"dW[{layer + 1}]", oracle="torch.autograd")
    # the right ones pass the same check
    check_gradient(d2 @ a1.T, torch_grads[1][0], name="dW[2]", rtol=1e-12, atol=0)
    # the inner product a^T delta has the wrong shape, although a gradient step would broadcast
    with pytest.raises(AssertionError, match="shape"):
        check_gradient(a1.T @ d2, torch_grads[1][0], name="dW[2]")


def test_sign_error_is_exactly_the_negative(small_net):
    params, x, t, zs, acts, deltas, torch_grads = small_net
    a2, a3 = acts[2], acts[3]
    wrong = ((a3 - t) * a3 * (a3 - 1)) @ a2.T
    np.testing.assert_allclose(wrong, -torch_grads[2][0], rtol=1e-13, atol=0)


# ------------------------------------------------------------------------------------ SymPy

SYMBOLIC_CASES = [((2, 2, 2, 1), a) for a in ("generic", "sigmoid", "tanh")] + [
    ((2, 3, 2), "sigmoid"), ((3, 2), "generic")]


@pytest.fixture(scope="module", params=SYMBOLIC_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def symbolic_net(request):
    sizes, activation = request.param
    return sv.network(sizes, activation)


def test_symbolic_network_shapes(symbolic_net):
    net = symbolic_net
    assert net.x.shape == (net.sizes[0], 1) and net.t.shape == (net.sizes[-1], 1)
    for l, (W, b, z) in enumerate(zip(net.Ws, net.bs, net.zs), start=1):
        assert W.shape == (net.sizes[l], net.sizes[l - 1])
        assert b.shape == z.shape == (net.sizes[l], 1)
        assert str(W[0, 0]) == f"w^{{[{l}]}}_{{11}}"
    P = sum(n * m + n for m, n in zip(net.sizes[:-1], net.sizes[1:]))
    assert len(sv.parameters(net)) == P == len(set(sv.parameters(net)))


def test_delta_recursion_equals_sympy_diff(symbolic_net):
    by_recursion, deltas = sv.delta_gradients(symbolic_net)
    by_diff = sv.diff_gradients(symbolic_net)
    assert len(by_recursion) == len(by_diff) == len(symbolic_net.Ws)
    for (dW, db), (dW_ref, db_ref), delta in zip(by_recursion, by_diff, deltas):
        assert dW.shape == dW_ref.shape and db.shape == db_ref.shape
        assert db == delta
        assert sv.all_zero([dW - dW_ref, db - db_ref])


def test_input_jacobian_is_the_product_of_layer_jacobians(symbolic_net):
    J = sv.input_jacobian(symbolic_net)
    assert J.shape == (symbolic_net.sizes[-1], symbolic_net.sizes[0])
    assert sv.all_zero([J - sv.chained_input_jacobian(symbolic_net)])


def test_backward_pass_is_a_vector_jacobian_product(symbolic_net):
    J = sv.parameter_jacobian(symbolic_net)
    assert J.shape == (symbolic_net.sizes[-1], len(sv.parameters(symbolic_net)))
    grads, _ = sv.delta_gradients(symbolic_net)
    assert sv.all_zero([sv.vector_jacobian_product(symbolic_net) - sv.flatten(grads)])


def test_symbolic_checks_reject_wrong_recursions():
    """Negative controls: a missing g', a missing transpose and the sign error are not zero."""
    net = sv.network((2, 2, 2), "sigmoid")
    grads, deltas = sv.delta_gradients(net)
    g_prime = sv.activation_derivative("sigmoid")
    missing_g = (net.Ws[1].T * deltas[1]) * net.x.T
    no_transpose = net.zs[0].applyfunc(g_prime).multiply_elementwise(net.Ws[1] * deltas[1])
    O, t = net.activations[2], net.t
    sign = (O - t).multiply_elementwise(O).multiply_elementwise(O - sp.ones(2, 1))
    for wrong, right in [(missing_g, grads[0][0]), (no_transpose * net.x.T, grads[0][0]),
                         (sign * net.activations[1].T, grads[1][0])]:
        # a clearly nonzero value at one point proves "not identically zero" (and is quick,
        # where simplify on a nonzero nested sigmoid can take minutes)
        assert abs(sv.value_at((wrong - right)[0, 0], seed=3)) > 1e-12
        assert sp.expand_mul((wrong - right)[0, 0]) != 0
    assert sv.all_zero([sign + deltas[1]])  # exactly -delta


def test_activation_jacobian_symbolic_is_diagonal():
    z = sp.Matrix(sp.symbols("z1:4", real=True))
    J = sv.activation_jacobian(z, "sigmoid")
    assert J.shape == (3, 3)
    a = z.applyfunc(sv.activation_function("sigmoid"))
    assert sv.all_zero([J - a.jacobian(z)])
    assert all(J[i, j] == 0 for i in range(3) for j in range(3) if i != j)
    # sigma' = sigma (1 - sigma), which needs more than expand_mul: simplify decides it
    s = sv.activation_function("sigmoid")(z[0])
    assert sv.identically_zero(J[0, 0] - s * (1 - s))
    assert not sv.identically_zero(J[0, 0] - s * (s - 1))


def test_symbolic_gradients_agree_with_numpy():
    net = sv.network((2, 3, 2), "tanh")
    grads, _ = sv.delta_gradients(net)
    rng = np.random.default_rng(5)
    params = [(rng.normal(size=W.shape), rng.normal(size=b.shape))
              for W, b in zip(net.Ws, net.bs)]
    x, t = rng.normal(size=(2, 1)), rng.normal(size=(2, 1))
    point = dict(zip(sv.parameters(net), flatten_gradients(params)))
    point.update(zip(net.x, x.ravel()))
    point.update(zip(net.t, t.ravel()))
    expected = np.array([float(v.subs(point).evalf(30)) for v in sv.flatten(grads)])
    actual = flatten_gradients(vector_gradients(params, x, t, "tanh"))
    assert relative_error(actual, expected) <= 1e-13


def test_readable_renames_pre_activations():
    net = sv.network((2, 2), "generic")
    shown = sv.readable(sv.input_jacobian(net), net)
    names = {str(s) for s in shown.free_symbols}
    assert names == {"z^{[1]}_{1}", "z^{[1]}_{2}", "w^{[1]}_{11}", "w^{[1]}_{12}",
                     "w^{[1]}_{21}", "w^{[1]}_{22}"}
    assert not shown.atoms(sp.Subs)


def test_unknown_symbolic_activation():
    with pytest.raises(ValueError, match="generic"):
        sv.network((1, 1), "softplus")


# ----------------------------------------------------------------------------------- figure


def test_network_figure_draws_every_unit_and_weight():
    sizes = (2, 3, 1)
    fig = network_figure(sizes, highlight=(2, 1, 3))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert sum(isinstance(p, Circle) for p in ax.patches) == sum(sizes)
    assert len(ax.lines) == 2 * 3 + 3 * 1
    red = [line for line in ax.lines if line.get_color() == "#c0392b"]
    assert len(red) == 1
    texts = [t.get_text() for t in ax.texts]
    assert r"$w^{[2]}_{13}$" in texts
