"""The other layouts of the dense layer (backpropbook.conventions), held to torch.autograd.

For each layout: its forward pass and its gradients equal torch.autograd's (float64, relative
error <= 1e-12), and they equal the book's (backpropbook.layers) after the conversion the
chapter states. Shapes are drawn non-square (m != n) so that a missing or extra transpose shows
up as a wrong shape, and the batch size includes 1. The negative controls at the end show that
the comparisons reject the classic mistakes.
"""

from typing import NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from backpropbook import conventions as cv
from backpropbook.gradcheck import relative_error
from backpropbook.layers import linear_backward, linear_forward, mse_backward, mse_loss
from strategies import FAST

pytestmark = [pytest.mark.package]

RTOL = 1e-12


def assert_same(actual, expected, what):
    """Same shape, and relative error (max-norm) at most RTOL."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = relative_error(actual, expected)
    assert err <= RTOL, f"{what}: relative error {err:.2e} > {RTOL:.0e}"


class Case(NamedTuple):
    """A book-layout layer: W (n, m), b (n, 1), A_prev (m, N), and dZ = G (n, N)."""

    W: np.ndarray
    b: np.ndarray
    A_prev: np.ndarray
    G: np.ndarray


@st.composite
def cases(draw):
    """m != n in 1..6, N in 1..5 (batch 1 included); entries N(0, 1) from a drawn seed."""
    m = draw(st.integers(1, 6))
    n = draw(st.integers(1, 6).filter(lambda k: k != m))
    N = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return Case(rng.standard_normal((n, m)), rng.standard_normal((n, 1)),
                rng.standard_normal((m, N)), rng.standard_normal((n, N)))


def t(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def autograd(forward, G, *leaves):
    """Run forward(*tensors), take E = sum(G * output) so that dE/d(output) = G exactly, and
    return (output, [dE/d leaf, ...]) as NumPy."""
    tensors = [t(x) for x in leaves]
    out = forward(*tensors)
    (torch.as_tensor(G) * out).sum().backward()
    return out.detach().numpy(), [x.grad.numpy() for x in tensors]


@FAST
@given(cases())
def test_book_layout_matches_autograd(c):
    Z, (dW, db, dA) = autograd(lambda W, b, A: W @ A + b, c.G, c.W, c.b, c.A_prev)
    assert_same(linear_forward(c.W, c.A_prev, c.b), Z, "Z")
    for mine, theirs, what in zip(linear_backward(c.G, c.A_prev, c.W), (dW, db, dA),
                                  ("dW", "db", "dA_prev")):
        assert_same(mine, theirs, what)


@FAST
@given(cases())
def test_slides_layout(c):
    """z = W_s^T a + b with W_s = W^T: the same z; dW_s = a delta^T is our dW transposed."""
    W_s = c.W.T.copy()
    Z, (dW_s, db, dA) = autograd(lambda Ws, b, A: Ws.T @ A + b, c.G, W_s, c.b, c.A_prev)
    assert_same(cv.linear_forward_slides(W_s, c.A_prev, c.b), Z, "Z slides")
    got = cv.linear_backward_slides(c.G, c.A_prev, W_s)
    for mine, theirs, what in zip(got, (dW_s, db, dA), ("dW_slides", "db", "dA_prev")):
        assert_same(mine, theirs, what)
    # ... and the book's, after the stated conversion
    ours = linear_backward(c.G, c.A_prev, c.W)
    assert_same(cv.weights_from_slides(W_s), c.W, "W from slides")
    assert_same(cv.linear_forward_slides(W_s, c.A_prev, c.b), linear_forward(c.W, c.A_prev, c.b),
                "Z")
    assert_same(cv.weights_from_slides(got[0]), ours[0], "dW from slides")
    assert_same(got[1], ours[1], "db")
    assert_same(got[2], ours[2], "dA_prev")


@FAST
@given(cases())
def test_rows_layout(c):
    """Z_rows = X W_r + 1 b_r with X = A^T, W_r = W^T, b_r = b^T; everything is our transpose."""
    X, W_r, b_r, G_rows = cv.to_rows(c.A_prev), c.W.T.copy(), c.b.T.copy(), c.G.T
    Z, (dX, dW_r, db_r) = autograd(lambda X, W, b: X @ W + b, G_rows, X, W_r, b_r)
    assert_same(cv.linear_forward_rows(X, W_r, b_r), Z, "Z rows")
    got = cv.linear_backward_rows(G_rows, X, W_r)
    for mine, theirs, what in zip(got, (dW_r, db_r, dX), ("dW_rows", "db_row", "dX")):
        assert_same(mine, theirs, what)
    ours = linear_backward(c.G, c.A_prev, c.W)
    W, b = cv.params_from_rows(W_r, b_r)
    assert_same(W, c.W, "W from rows")
    assert_same(b, c.b, "b from rows")
    assert_same(cv.to_columns(cv.linear_forward_rows(X, W_r, b_r)),
                linear_forward(c.W, c.A_prev, c.b), "Z")
    dW, db = cv.params_from_rows(got[0], got[1])
    assert_same(dW, ours[0], "dW from rows")
    assert_same(db, ours[1], "db from rows")
    assert_same(cv.to_columns(got[2]), ours[2], "dA_prev from rows")


@FAST
@given(cases())
def test_torch_nn_linear(c):
    """A real torch.nn.Linear holds our W unchanged as .weight, and b as a vector."""
    n, m = c.W.shape
    layer = torch.nn.Linear(m, n, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(c.W))
        layer.bias.copy_(torch.as_tensor(c.b.ravel()))
    X = t(cv.to_rows(c.A_prev))
    Y = layer(X)
    (torch.as_tensor(c.G.T) * Y).sum().backward()
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert weight.shape == (n, m) and bias.shape == (n,)

    assert_same(cv.linear_forward_torch(X.detach().numpy(), weight, bias), Y.detach().numpy(), "Y")
    got = cv.linear_backward_torch(c.G.T, X.detach().numpy(), weight)
    for mine, theirs, what in zip(got, (layer.weight.grad, layer.bias.grad, X.grad),
                                  ("weight.grad", "bias.grad", "X.grad")):
        assert_same(mine, theirs.numpy(), what)

    W, b = cv.params_from_torch(weight, bias)
    assert_same(W, c.W, "W from torch")
    assert_same(b, c.b, "b from torch")
    ours = linear_backward(c.G, c.A_prev, c.W)
    assert_same(Y.detach().numpy(), cv.to_rows(linear_forward(c.W, c.A_prev, c.b)), "Y = Z^T")
    dW, db = cv.params_from_torch(layer.weight.grad.numpy(), layer.bias.grad.numpy())
    assert_same(dW, ours[0], "weight.grad = dW (no transpose)")
    assert_same(db, ours[1], "bias.grad = db")
    assert_same(cv.to_columns(X.grad.numpy()), ours[2], "X.grad = dA_prev^T")


@FAST
@given(cases())
def test_mean_loss_carries_one_over_N(c):
    """mse_backward's 1/N against autograd of the *mean* loss, through the layer."""
    Y = c.G  # any target of Z's shape
    A = linear_forward(c.W, c.A_prev, c.b)
    _, (dW_t, db_t) = autograd(
        lambda W, b: 0.5 * ((W @ torch.as_tensor(c.A_prev) + b - torch.as_tensor(Y)) ** 2).sum()
        / c.A_prev.shape[1], 1.0, c.W, c.b)
    dW, db, _ = linear_backward(mse_backward(A, Y), c.A_prev, c.W)
    assert_same(dW, dW_t, "dW of the mean loss")
    assert_same(db, db_t, "db of the mean loss")
    assert (abs(mse_loss(A, Y) - 0.5 * np.sum((A - Y) ** 2) / A.shape[1])
            <= 1e-12 * (1 + mse_loss(A, Y)))


# --- Negative controls: the checks above reject the classic mistakes -----------------------------

FIXED = Case(*(np.random.default_rng(0).standard_normal(s)
               for s in [(3, 4), (3, 1), (4, 5), (3, 5)]))


def test_control_slides_gradient_used_as_ours():
    """a delta^T (the slides' dW) in place of our dW: wrong shape, and transposing fixes it."""
    c = FIXED
    dW = linear_backward(c.G, c.A_prev, c.W)[0]
    slides_dW = cv.linear_backward_slides(c.G, c.A_prev, c.W.T)[0]
    with pytest.raises(AssertionError, match="shape"):
        assert_same(slides_dW, dW, "dW")
    assert_same(slides_dW.T, dW, "dW")


def test_control_square_layer_hides_a_transpose():
    """With n = m the shapes agree, so only the values catch the missing transpose."""
    rng = np.random.default_rng(1)
    W, A, G = rng.standard_normal((4, 4)), rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(A @ G.T, linear_backward(G, A, W)[0], "dW")


def test_control_bias_gradient_not_summed():
    """db = dZ (not summed over the batch) has shape (n, N); at N = 1 it is right by accident."""
    c = FIXED
    db = linear_backward(c.G, c.A_prev, c.W)[1]
    with pytest.raises(AssertionError, match="shape"):
        assert_same(c.G, db, "db")
    assert_same(c.G[:, :1], linear_backward(c.G[:, :1], c.A_prev[:, :1], c.W)[1], "db at N=1")
    # and the update b - lr * dZ silently broadcasts b into an (n, N) matrix
    assert (c.b - 0.1 * c.G).shape == c.G.shape != c.b.shape


def test_control_missing_one_over_N():
    """(A - Y) instead of (A - Y)/N: gradients N times those of the mean loss."""
    c = FIXED
    A, Y, N = linear_forward(c.W, c.A_prev, c.b), c.G, c.A_prev.shape[1]
    right = linear_backward(mse_backward(A, Y), c.A_prev, c.W)[0]
    wrong = linear_backward(A - Y, c.A_prev, c.W)[0]
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(wrong, right, "dW")
    assert_same(wrong / N, right, "dW")


def test_control_rows_batch_with_book_weights():
    """Examples in rows fed to the book's W A: a shape error (m != N), or garbage if m == N."""
    c = FIXED
    with pytest.raises(ValueError):
        linear_forward(c.W, cv.to_rows(c.A_prev), c.b)


def test_control_torch_weight_is_not_transposed():
    """Transposing nn.Linear's weight 'to match the book' is the mistake: the shape is wrong."""
    c = FIXED
    W, _ = cv.params_from_torch(c.W, c.b.ravel())
    with pytest.raises(AssertionError, match="shape"):
        assert_same(W.T, c.W, "W")
