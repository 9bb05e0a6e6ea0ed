"""The batched (matrix) layers and MLP, held to independent oracles.

- torch.autograd in float64 (relative error <= 1e-12),
- centered finite differences,
- SymPy (symbolic_matrix: the linear layer's three gradients and the softmax identities),
- a per-example loop (twolayer) against the batched matrix formulas.

Shapes are drawn non-square and the batch size independently (1 included), so a transposed or
unsummed gradient cannot pass by accident; the negative controls at the end show that the same
checks reject the typical mistakes.
"""

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from backpropbook import symbolic_matrix as sm
from backpropbook.activations import get_activation
from backpropbook.gradcheck import centered_difference, check_gradient, relative_error
from backpropbook.layers import (
    activation_backward,
    activation_forward,
    cross_entropy_loss,
    linear_backward,
    linear_forward,
    mse_backward,
    mse_loss,
    softmax,
    softmax_cross_entropy_backward,
)
from backpropbook.mlp import init_params, mlp_backward, mlp_forward, mlp_loss
from backpropbook.oracles import mlp_gradients_torch
from backpropbook.twolayer import two_layer_backward, two_layer_batch_gradients, two_layer_forward
from strategies import FAST

pytestmark = [pytest.mark.package, pytest.mark.matrix]

TORCH_RTOL = 1e-12
F64 = torch.float64
MLP_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")  # the ones the torch oracle knows
TORCH_G = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
           "identity": lambda z: z}
KINK_MARGIN = 1e-3  # |z| below this counts as "at a ReLU kink" for finite differences


def T(array, grad=False):
    return torch.tensor(array, dtype=F64, requires_grad=grad)


# ------------------------------------------------------------------------------- strategies


@st.composite
def layers(draw, max_side=6, max_batch=8):
    """One linear layer: W (n, m), A_prev (m, N), b (n, 1) and an upstream dZ (n, N).

    Entries are standard normal from a drawn seed; n, m and N are drawn independently (1..6,
    1..8), so most draws are non-square and N = 1 occurs.
    """
    n, m = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    N = draw(st.integers(1, max_batch))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.normal(size=(n, m)), rng.normal(size=(m, N)), rng.normal(size=(n, 1)),
            rng.normal(size=(n, N)))


@st.composite
def networks(draw, activations=MLP_ACTIVATIONS):
    """An MLP of depth 1..4, widths 1..6, a batch of 1..8 columns, either loss.

    Weights N(0, 1/fan_in) (init_params) and biases N(0, 0.25), inputs standard normal: the
    pre-activations stay moderate, where sigmoid and tanh are not saturated (see
    strategies.chains on why saturation spoils 1e-12 comparisons between two correct codes).
    Cross-entropy targets are one-hot columns; squared-error targets are uniform in [0, 1].
    """
    L = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 6), min_size=L + 1, max_size=L + 1))
    N = draw(st.integers(1, 8))
    acts = draw(st.lists(st.sampled_from(activations), min_size=L, max_size=L))
    loss = draw(st.sampled_from(["mse", "cross_entropy"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = [(W, 0.5 * rng.normal(size=b.shape)) for W, b in init_params(sizes, rng)]
    X = rng.normal(size=(sizes[0], N))
    if loss == "cross_entropy":
        Y = np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], size=N)]
    else:
        Y = rng.uniform(size=(sizes[-1], N))
    return params, X, Y, acts, loss


def flatten(pairs):
    return np.concatenate([v.ravel() for pair in pairs for v in pair])


def unflatten(theta, like):
    out, k = [], 0
    for W, b in like:
        Wn = theta[k:k + W.size].reshape(W.shape)
        k += W.size
        bn = theta[k:k + b.size].reshape(b.shape)
        k += b.size
        out.append((Wn, bn))
    return out


def near_relu_kink(params, X, acts, loss):
    """True if some ReLU pre-activation is within KINK_MARGIN of 0 (a finite difference there
    would straddle the kink)."""
    _, (Zs, _) = mlp_forward(params, X, acts, loss)
    used = Zs if loss == "mse" else Zs[:-1]  # the softmax layer's activation is not used
    return any(a == "relu" and np.abs(Z).min() < KINK_MARGIN for Z, a in zip(used, acts))


# ---------------------------------------------------------------------- the linear layer


@FAST
@given(layers())
def test_linear_layer_matches_torch(layer):
    W, A_prev, b, dZ = layer
    Z = linear_forward(W, A_prev, b)
    Wt, At, bt = T(W, True), T(A_prev, True), T(b, True)
    Zt = Wt @ At + bt
    assert Z.shape == (W.shape[0], A_prev.shape[1])
    assert relative_error(Z, Zt.detach().numpy()) <= 1e-14
    (T(dZ) * Zt).sum().backward()  # a loss whose dE/dZ is dZ
    dW, db, dA_prev = linear_backward(dZ, A_prev, W)
    assert dW.shape == W.shape and db.shape == b.shape and dA_prev.shape == A_prev.shape
    for ours, theirs in ((dW, Wt.grad), (db, bt.grad), (dA_prev, At.grad)):
        assert relative_error(ours, theirs.numpy()) <= TORCH_RTOL


@FAST
@given(layers(max_side=4, max_batch=5))
def test_linear_layer_matches_centered_differences(layer):
    W, A_prev, b, dZ = layer
    dW, db, dA_prev = linear_backward(dZ, A_prev, W)
    E = lambda W_, A_, b_: float(np.sum(dZ * linear_forward(W_, A_, b_)))  # noqa: E731
    check_gradient(dW, centered_difference(lambda v: E(v, A_prev, b), W), name="dW",
                   oracle="centered difference")
    check_gradient(db, centered_difference(lambda v: E(W, A_prev, v), b), name="db",
                   oracle="centered difference")
    check_gradient(dA_prev, centered_difference(lambda v: E(W, v, b), A_prev), name="dA",
                   oracle="centered difference")


@FAST
@given(layers())
def test_linear_layer_sums_per_example_gradients(layer):
    """dW = sum_j dZ[:, j] A[:, j]^T and db = sum_j dZ[:, j]: the batch is summed; dA is not."""
    W, A_prev, b, dZ = layer
    dW, db, dA_prev = linear_backward(dZ, A_prev, W)
    N = A_prev.shape[1]
    per = [linear_backward(dZ[:, [j]], A_prev[:, [j]], W) for j in range(N)]
    np.testing.assert_allclose(dW, sum(p[0] for p in per), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, sum(p[1] for p in per), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dA_prev, np.hstack([p[2] for p in per]), rtol=1e-12, atol=1e-12)


def test_row_and_torch_layouts_convert_to_ours():
    """Row layout (Z_r = X W_r + b_r) and a real nn.Linear in float64, against linear_backward."""
    rng = np.random.default_rng(0)
    m, n, N = 4, 3, 5
    W, b, A_prev, dZ = (rng.normal(size=s) for s in ((n, m), (n, 1), (m, N), (n, N)))
    dW, db, dA_prev = linear_backward(dZ, A_prev, W)
    X, Wr, br = T(A_prev.T, True), T(W.T, True), T(b.T, True)
    (T(dZ.T) * (X @ Wr + br)).sum().backward()
    assert relative_error(Wr.grad.numpy(), dW.T) <= 1e-14
    assert relative_error(br.grad.numpy(), db.T) <= 1e-14
    assert relative_error(X.grad.numpy(), dA_prev.T) <= 1e-14
    layer = torch.nn.Linear(m, n, dtype=F64)
    with torch.no_grad():
        layer.weight.copy_(T(W))
        layer.bias.copy_(T(b.ravel()))
    X = T(A_prev.T, True)
    out = layer(X)
    assert relative_error(out.detach().numpy(), linear_forward(W, A_prev, b).T) <= 1e-14
    (T(dZ.T) * out).sum().backward()
    assert layer.weight.grad.shape == W.shape  # weight.grad is our dW, not dW^T
    assert relative_error(layer.weight.grad.numpy(), dW) <= 1e-14
    assert relative_error(layer.bias.grad.numpy(), db.ravel()) <= 1e-14
    assert relative_error(X.grad.numpy(), dA_prev.T) <= 1e-14


# ----------------------------------------------------------------- activations and losses


@FAST
@given(st.sampled_from(MLP_ACTIVATIONS), st.integers(1, 5), st.integers(1, 6),
       st.integers(0, 2**32 - 1))
def test_activation_backward_matches_torch(name, n, N, seed):
    rng = np.random.default_rng(seed)
    Z, dA = 2 * rng.normal(size=(n, N)), rng.normal(size=(n, N))
    Zt = T(Z, True)
    A = activation_forward(Z, name)
    assert relative_error(A, TORCH_G[name](Zt).detach().numpy()) <= 1e-14
    (T(dA) * TORCH_G[name](Zt)).sum().backward()
    dZ = activation_backward(dA, Z, name)
    assert dZ.shape == Z.shape
    assert relative_error(dZ, Zt.grad.numpy()) <= TORCH_RTOL


def test_relu_kink_and_step_conventions():
    z0 = T(np.zeros((1, 1)), True)
    torch.relu(z0).sum().backward()
    assert z0.grad.item() == 0.0
    assert activation_backward(np.ones((1, 1)), np.zeros((1, 1)), "relu")[0, 0] == 0.0
    Z = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(activation_backward(np.ones_like(Z), Z, "step"), 0.0)


@FAST
@given(st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_mse_matches_torch(n, N, seed):
    rng = np.random.default_rng(seed)
    A, Y = rng.normal(size=(n, N)), rng.normal(size=(n, N))
    At = T(A, True)
    E = 0.5 * ((At - T(Y)) ** 2).sum() / N
    E.backward()
    assert abs(mse_loss(A, Y) - E.item()) <= 1e-14 * max(E.item(), 1e-300)
    assert relative_error(mse_backward(A, Y), At.grad.numpy()) <= TORCH_RTOL


@FAST
@given(st.integers(2, 6), st.integers(1, 8), st.integers(0, 2**32 - 1),
       st.floats(0.1, 30.0))
def test_softmax_cross_entropy_matches_torch(K, N, seed, scale):
    rng = np.random.default_rng(seed)
    Z = scale * rng.normal(size=(K, N))
    Y = np.eye(K)[:, rng.integers(0, K, size=N)]
    Zt = T(Z, True)
    E = -(T(Y) * torch.log_softmax(Zt, dim=0)).sum() / N
    E.backward()
    P = softmax(Z)
    assert relative_error(P, torch.softmax(T(Z), dim=0).numpy()) <= 1e-13
    if np.all(P[Y == 1] > 1e-300):  # log(P) is finite
        assert abs(cross_entropy_loss(P, Y) - E.item()) <= 1e-12 * max(abs(E.item()), 1.0)
    assert relative_error(softmax_cross_entropy_backward(P, Y), Zt.grad.numpy()) <= TORCH_RTOL


@FAST
@given(st.integers(2, 6), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_softmax_is_stable_for_huge_logits(K, N, seed):
    rng = np.random.default_rng(seed)
    Z = rng.choice([-1000.0, 0.0, 1000.0], size=(K, N)) + rng.normal(size=(K, N))
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        P = softmax(Z)
    assert np.all(np.isfinite(P)) and np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=0), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(P, torch.softmax(T(Z), dim=0).numpy(), rtol=1e-13, atol=1e-300)
    # adding a constant to a column changes nothing
    np.testing.assert_allclose(softmax(Z + 500.0 * rng.normal(size=(1, N))), P, rtol=1e-12,
                               atol=1e-300)


# ------------------------------------------------------------------------------- the MLP


@FAST
@given(networks())
def test_mlp_matches_torch(net):
    params, X, Y, acts, loss = net
    out, cache = mlp_forward(params, X, acts, loss)
    assert out.shape == Y.shape
    # A - Y (or P - Y) within 1e-3 everywhere is a cancellation: a last-bit difference between
    # NumPy's and torch's activations would dominate every gradient (see test_vector.py).
    assume(np.max(np.abs(out - Y)) >= 1e-3)
    grads = mlp_backward(params, cache, Y, acts, loss)
    oracle = mlp_gradients_torch(params, X, Y, acts, loss)
    assert len(grads) == len(params)
    for (dW, db), (W, b), (tW, tb) in zip(grads, params, oracle):
        assert dW.shape == W.shape and db.shape == b.shape
        assert relative_error(dW, tW) <= TORCH_RTOL
        assert relative_error(db, tb) <= TORCH_RTOL


@FAST
@given(networks())
def test_mlp_matches_centered_differences(net):
    params, X, Y, acts, loss = net
    assume(not near_relu_kink(params, X, acts, loss))
    out, cache = mlp_forward(params, X, acts, loss)
    grads = flatten(mlp_backward(params, cache, Y, acts, loss))
    def E(theta):
        return mlp_loss(mlp_forward(unflatten(theta, params), X, acts, loss)[0], Y, loss)

    numeric = centered_difference(E, flatten(params))
    check_gradient(grads, numeric, name=f"{loss} {acts}", rtol=1e-5,
                   atol=1e-8 * max(1.0, mlp_loss(out, Y, loss)), oracle="centered difference")


@FAST
@given(networks())
def test_mean_loss_gradient_is_the_mean_of_per_example_gradients(net):
    """The 1/N enters once: the batch gradient is the average of the N one-column gradients."""
    params, X, Y, acts, loss = net
    N = X.shape[1]
    grads = mlp_backward(params, mlp_forward(params, X, acts, loss)[1], Y, acts, loss)
    per = [mlp_backward(params, mlp_forward(params, X[:, [j]], acts, loss)[1], Y[:, [j]], acts,
                        loss) for j in range(N)]
    mean = flatten([(sum(p[l][0] for p in per) / N, sum(p[l][1] for p in per) / N)
                    for l in range(len(params))])
    np.testing.assert_allclose(flatten(grads), mean, rtol=1e-10, atol=1e-14)


def test_summed_loss_gradient_is_n_times_the_mean():
    rng = np.random.default_rng(5)
    params = init_params([3, 4, 2], rng)
    X, Y, N = rng.normal(size=(3, 7)), rng.uniform(size=(2, 7)), 7
    grads = mlp_backward(params, mlp_forward(params, X, "tanh", "mse")[1], Y, "tanh", "mse")
    leaves = [(T(W, True), T(b, True)) for W, b in params]
    A = T(X)
    for W, b in leaves:
        A = torch.tanh(W @ A + b)
    (0.5 * ((A - T(Y)) ** 2).sum()).backward()
    for (dW, db), (W, b) in zip(grads, leaves):
        assert relative_error(N * dW, W.grad.numpy()) <= 1e-13
        assert relative_error(N * db, b.grad.numpy()) <= 1e-13


def test_step_hidden_layer_gets_no_gradient():
    rng = np.random.default_rng(3)
    params = init_params([2, 3, 1], rng)
    X, Y = rng.normal(size=(2, 9)), rng.normal(size=(1, 9))
    acts = ["step", "identity"]
    grads = mlp_backward(params, mlp_forward(params, X, acts, "mse")[1], Y, acts, "mse")
    assert np.all(grads[0][0] == 0) and np.all(grads[0][1] == 0)
    assert np.any(grads[1][0] != 0)


# ------------------------------------------------------------------ the two-layer network


@FAST
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.integers(1, 6),
       st.integers(0, 2**32 - 1), st.sampled_from(["sigmoid", "tanh"]),
       st.sampled_from(["sigmoid", "tanh", "identity"]))
def test_two_layer_per_example_matches_torch_and_the_batched_mlp(n0, n1, n2, N, seed, g1, g2):
    rng = np.random.default_rng(seed)
    W1, b1 = rng.normal(size=(n1, n0)), rng.normal(size=(n1, 1))
    W2, b2 = rng.normal(size=(n2, n1)), rng.normal(size=(n2, 1))
    X, Y = rng.normal(size=(n0, N)), rng.uniform(size=(n2, N))
    # one example, every quantity against autograd
    x, y = X[:, [0]], Y[:, [0]]
    ours = two_layer_backward(x, y, W1, b1, W2, b2, g1, g2)
    f = two_layer_forward(x, W1, b1, W2, b2, g1, g2)
    W1t, b1t, W2t, b2t = (T(v, True) for v in (W1, b1, W2, b2))
    z1 = W1t @ T(x) + b1t
    z1.retain_grad()
    z2 = W2t @ TORCH_G[g1](z1) + b2t
    z2.retain_grad()
    a2 = TORCH_G[g2](z2)
    assert relative_error(f["a2"], a2.detach().numpy()) <= 1e-14
    (0.5 * ((a2 - T(y)) ** 2).sum()).backward()
    oracle = dict(delta2=z2.grad, dW2=W2t.grad, db2=b2t.grad, delta1=z1.grad, dW1=W1t.grad,
                  db1=b1t.grad)
    # A gradient far smaller than the terms it sums is a cancellation, where two correct codes
    # differ by more than 1e-12 relative (hypothesis found delta1 = 1.3e-7 from terms near 0.1).
    assume(all(np.max(np.abs(value.numpy())) >= 1e-3 for value in oracle.values()))
    for name, value in oracle.items():
        assert ours[name].shape == value.shape, name
        assert relative_error(ours[name], value.numpy()) <= TORCH_RTOL, name
    # the whole batch: per-example loop == batched matrix formulas
    params = [(W1, b1), (W2, b2)]
    batched = mlp_backward(params, mlp_forward(params, X, [g1, g2], "mse")[1], Y, [g1, g2],
                           "mse")
    per_example = two_layer_batch_gradients(X, Y, W1, b1, W2, b2, g1, g2)
    np.testing.assert_allclose(flatten(per_example), flatten(batched), rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------- SymPy


@pytest.mark.parametrize("n, m, N", [(2, 3, 4), (3, 2, 1), (1, 2, 3)])
def test_linear_layer_identities(n, m, N):
    identities = sm.linear_layer_identities(n, m, N)
    assert identities["dW"][0].shape == (n, m)
    assert identities["db"][0].shape == (n, 1)
    assert identities["dA"][0].shape == (m, N)
    for name, (by_diff, by_formula) in identities.items():
        assert by_diff.shape == by_formula.shape, name
        assert sm.is_zero_matrix(by_diff - by_formula), name
    # control: the transposed product is not dW (and has another shape unless n == m)
    by_diff, _ = identities["dW"]
    G = sm.matrix_symbols("g", n, N)
    A = sm.matrix_symbols("a", m, N)
    if n == m:
        assert not sm.is_zero_matrix(by_diff - A * G.T)
    else:
        assert (A * G.T).shape != by_diff.shape


@pytest.mark.parametrize("K", [2, 3])
def test_softmax_jacobian(K):
    z, p, J_diff, J_formula = sm.softmax_jacobian(K)
    assert J_diff.shape == (K, K)
    assert sm.is_zero_matrix(J_diff - J_formula)
    assert not sm.is_zero_matrix(J_diff - sp.diag(*p))  # the off-diagonal terms are real


@pytest.mark.parametrize("K", [2, 3])
def test_softmax_derivative_cannot_be_ignored_under_squared_error(K):
    z, y, true_grad, full_chain, ignored = sm.softmax_squared_error(K)
    assert sm.is_zero_matrix(true_grad - full_chain)
    assert not sm.is_zero_matrix(true_grad - ignored)
    point = {**dict(zip(z, [2, 0, -1][:K])), **dict(zip(y, [0, 1, 0][:K]))}
    t = np.array([float(v.subs(point)) for v in true_grad])
    i = np.array([float(v.subs(point)) for v in ignored])
    assert relative_error(i, t) > 0.5


@pytest.mark.parametrize("K", [2, 3])
def test_cross_entropy_collapses_to_p_minus_y(K):
    z, y, p, true_grad, jvp = sm.softmax_cross_entropy(K)
    assert sm.is_zero_matrix(true_grad - jvp)
    assert sm.is_zero_matrix(true_grad - (p * sum(y) - y))
    assert not sm.is_zero_matrix(true_grad - (p - y))
    last = {y[K - 1]: 1 - sum(y[:K - 1])}
    assert sm.is_zero_matrix((true_grad - (p - y)).subs(last))
    # numerically against the package at a point, one-hot target
    point = dict(zip(z, [0.3, -1.2, 2.0][:K]))
    onehot = {**{yi: 0 for yi in y}, y[0]: 1}
    sym = np.array([[float(v.subs({**point, **onehot})) for v in true_grad]]).T
    Zc = np.array([[0.3, -1.2, 2.0][:K]]).T
    Yc = np.eye(K)[:, [0]]
    assert relative_error(softmax_cross_entropy_backward(softmax(Zc), Yc), sym) <= 1e-14


# ------------------------------------------------------------------- negative controls


def test_typical_mistakes_are_rejected():
    """Each plausible wrong gradient fails the checks used above (so they can fail)."""
    rng = np.random.default_rng(11)
    m, n, N = 4, 3, 5
    W, A_prev, b, dZ = (rng.normal(size=s) for s in ((n, m), (m, N), (n, 1), (n, N)))
    dW, db, dA_prev = linear_backward(dZ, A_prev, W)
    with pytest.raises(AssertionError, match="shape"):
        check_gradient(A_prev @ dZ.T, dW, name="dW")            # transposed dW
    with pytest.raises(AssertionError, match="shape"):
        check_gradient(dZ, db, name="db")                        # db not summed
    with pytest.raises(ValueError):
        A_prev.T @ dZ                                            # swapped product
    with pytest.raises(AssertionError):
        check_gradient(dW / N, dW, name="dW")                    # 1/N divided in again
    # a missing activation derivative in a two-layer network
    params = init_params([m, n, 2], rng)
    X, Y = rng.normal(size=(m, N)), rng.uniform(size=(2, N))
    out, (Zs, As) = mlp_forward(params, X, "sigmoid", "mse")
    oracle = mlp_gradients_torch(params, X, Y, "sigmoid", "mse")
    dZ2 = activation_backward(mse_backward(As[2], Y), Zs[1], "sigmoid")
    dA1 = params[1][0].T @ dZ2
    with pytest.raises(AssertionError):
        check_gradient(dA1 @ X.T, oracle[0][0], name="dW1")      # no sigma'(Z1)
    with pytest.raises(AssertionError):
        check_gradient(N * dZ2 @ As[1].T, oracle[1][0], name="dW2")  # no 1/N
    g = get_activation("sigmoid").g_prime
    check_gradient((dA1 * g(Zs[0])) @ X.T, oracle[0][0], name="dW1", rtol=1e-12)  # the fix
