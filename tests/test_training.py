"""The training chapter's package code: optim.py against torch.optim, training.py against a
training loop written again in torch, the sign activation, and the chapter's figures.

The oracles are independent: torch.optim.SGD and torch.optim.Adam step tensors whose .grad we
set, and the torch training loop differentiates its own forward pass with autograd. All in
float64, over several steps, on random shapes.
"""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure

from backpropbook import figures
from backpropbook.activations import ACTIVATIONS, get_activation, sign, sign_prime, step
from backpropbook.mlp import init_params, mlp_forward, mlp_loss
from backpropbook.optim import adam_init, adam_step, sgd_step
from backpropbook.training import Run, flat_params, layer_params, train_mlp
from strategies import FAST, finite

pytestmark = pytest.mark.training

F64 = torch.float64


def random_shapes(rng, count=None):
    """A few parameter shapes: matrices, columns, vectors and a scalar array."""
    count = count or int(rng.integers(1, 5))
    shapes = []
    for _ in range(count):
        kind = rng.integers(0, 4)
        n, m = (int(v) for v in rng.integers(1, 6, size=2))
        shapes.append([(n, m), (n, 1), (n,), ()][kind])
    return shapes


def torch_steps(optimizer_class, params, grad_lists, **options):
    """The parameters after torch.optim stepped with each list of gradients in turn."""
    leaves = [torch.tensor(p, dtype=F64, requires_grad=True) for p in params]
    optimizer = optimizer_class(leaves, **options)
    history = []
    for grads in grad_lists:
        for leaf, g in zip(leaves, grads):
            leaf.grad = torch.tensor(g, dtype=F64)
        optimizer.step()
        history.append([leaf.detach().numpy().copy() for leaf in leaves])
    return history


def assert_lists_close(ours, theirs, rtol, atol, what):
    assert len(ours) == len(theirs), what
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert np.shape(a) == np.shape(b), (what, i)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{what}[{i}]")


# ------------------------------------------------------------------------------- sgd_step


@pytest.mark.parametrize("seed", range(20))
def test_sgd_step_matches_torch_optim_sgd_over_several_steps(seed):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in random_shapes(rng)]
    lr = float(rng.uniform(1e-3, 2.0))
    grad_lists = [[rng.normal(size=np.shape(p)) for p in params] for _ in range(5)]
    expected = torch_steps(torch.optim.SGD, params, grad_lists, lr=lr)
    theta = params
    for k, grads in enumerate(grad_lists):
        theta = sgd_step(theta, grads, lr)
        assert_lists_close(theta, expected[k], rtol=1e-14, atol=1e-15, what=f"step {k + 1}")


@FAST
@given(st.integers(0, 2**32 - 1), finite(-3.0, 3.0), finite(-3.0, 3.0))
def test_sgd_step_is_linear_in_the_gradient(seed, a, b):
    """theta - lr (a g + b h) = a (theta - lr g) + b (theta - lr h) + (1 - a - b) theta."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in random_shapes(rng)]
    g = [rng.normal(size=np.shape(p)) for p in params]
    h = [rng.normal(size=np.shape(p)) for p in params]
    combined = sgd_step(params, [a * u + b * v for u, v in zip(g, h)], 0.3)
    parts = zip(sgd_step(params, g, 0.3), sgd_step(params, h, 0.3), params)
    assert_lists_close(combined, [a * p + b * q + (1 - a - b) * t for p, q, t in parts],
                       rtol=1e-12, atol=1e-12, what="linearity")


def test_sgd_step_with_zero_rate_or_zero_gradient_changes_nothing():
    rng = np.random.default_rng(1)
    params = [rng.normal(size=(3, 2)), rng.normal(size=(3, 1))]
    grads = [rng.normal(size=(3, 2)), rng.normal(size=(3, 1))]
    for new in (sgd_step(params, grads, 0.0), sgd_step(params, [0 * g for g in grads], 0.7)):
        assert all(np.array_equal(a, b) for a, b in zip(new, params))


# ------------------------------------------------------------------------------ adam_step


@pytest.mark.parametrize("seed", range(20))
def test_adam_step_matches_torch_optim_adam_over_several_steps(seed):
    rng = np.random.default_rng(100 + seed)
    params = [rng.normal(size=s) for s in random_shapes(rng)]
    lr = float(rng.uniform(1e-3, 0.5))
    betas = (float(rng.uniform(0.5, 0.99)), float(rng.uniform(0.9, 0.9999)))
    eps = float(10.0 ** rng.uniform(-10, -4))
    # gradients on several scales, so that eps matters for some entries and not others
    grad_lists = [[rng.normal(size=np.shape(p)) * 10.0 ** rng.uniform(-6, 2) for p in params]
                  for _ in range(8)]
    expected = torch_steps(torch.optim.Adam, params, grad_lists, lr=lr, betas=betas, eps=eps)
    theta, state = params, adam_init(params)
    for k, grads in enumerate(grad_lists):
        theta, state = adam_step(theta, grads, state, lr, betas=betas, eps=eps)
        assert state["t"] == k + 1
        assert_lists_close(theta, expected[k], rtol=1e-13, atol=1e-14, what=f"step {k + 1}")


def test_adam_step_defaults_are_torchs():
    rng = np.random.default_rng(7)
    params = [rng.normal(size=(4, 3)), rng.normal(size=(4, 1))]
    grad_lists = [[rng.normal(size=p.shape) for p in params] for _ in range(4)]
    expected = torch_steps(torch.optim.Adam, params, grad_lists, lr=0.1)
    theta, state = params, adam_init(params)
    for k, grads in enumerate(grad_lists):
        theta, state = adam_step(theta, grads, state, 0.1)
        assert_lists_close(theta, expected[k], rtol=1e-13, atol=1e-14, what=f"step {k + 1}")


@FAST
@given(st.integers(0, 2**32 - 1), st.floats(1e-4, 1.0))
def test_adams_first_step_moves_every_entry_by_lr_against_its_gradient(seed, lr):
    """m_hat = g and v_hat = g^2 at t = 1, so the step is -lr g / (|g| + eps)."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in random_shapes(rng)]
    grads = [rng.normal(size=np.shape(p)) * 10.0 ** rng.uniform(-9, 3) for p in params]
    new, _ = adam_step(params, grads, adam_init(params), lr)
    for p, q, g in zip(params, new, grads):
        np.testing.assert_allclose(q - p, -lr * g / (np.abs(g) + 1e-8), rtol=1e-9, atol=1e-15)


@FAST
@given(st.integers(0, 2**32 - 1), st.floats(1e-3, 1e3))
def test_adam_without_eps_ignores_the_gradients_scale(seed, scale):
    """With eps = 0, m_hat / sqrt(v_hat) does not change when every gradient is scaled by c > 0."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in random_shapes(rng)]
    a, b = params, params
    state_a, state_b = adam_init(params), adam_init(params)
    for _ in range(3):
        grads = [rng.normal(size=np.shape(p)) for p in params]
        a, state_a = adam_step(a, grads, state_a, 0.05, eps=0.0)
        b, state_b = adam_step(b, [scale * g for g in grads], state_b, 0.05, eps=0.0)
    assert_lists_close(a, b, rtol=1e-12, atol=1e-14, what="scaled")


def test_the_steps_leave_their_arguments_unchanged():
    rng = np.random.default_rng(3)
    params = [rng.normal(size=(3, 2)), rng.normal(size=(3, 1))]
    grads = [rng.normal(size=(3, 2)), rng.normal(size=(3, 1))]
    saved = [p.copy() for p in params + grads]
    sgd_step(params, grads, 0.1)
    state = adam_init(params)
    _, state1 = adam_step(params, grads, state, 0.1)
    _, state2 = adam_step(params, grads, state1, 0.1)
    assert all(np.array_equal(a, b) for a, b in zip(params + grads, saved))
    assert state["t"] == 0 and not any(m.any() for m in state["m"] + state["v"])
    assert (state1["t"], state2["t"]) == (1, 2)
    assert not np.array_equal(state1["m"][0], state2["m"][0])


def test_bad_inputs_are_named_in_one_line():
    params = [np.zeros((2, 3)), np.zeros((2, 1))]
    with pytest.raises(ValueError, match=r"grads has 1 arrays, params has 2"):
        sgd_step(params, [np.zeros((2, 3))], 0.1)
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(1, 2\), params\[1\] \(2, 1\)"):
        sgd_step(params, [np.zeros((2, 3)), np.zeros((1, 2))], 0.1)
    with pytest.raises(ValueError, match="state must be adam_init"):
        adam_step(params, params, {"m": [], "v": []}, 0.1)
    with pytest.raises(ValueError, match="state must be adam_init"):
        adam_step(params, params, adam_init(params[:1]), 0.1)


# ------------------------------------------------------------------------- sign activation


@FAST
@given(st.lists(finite(-1e6, 1e6), min_size=1, max_size=8))
def test_sign_is_plus_or_minus_one_and_twice_the_step_minus_one(zs):
    z = np.array(zs)
    values = sign(z)
    assert set(np.unique(values)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(values, 2 * step(z) - 1)
    np.testing.assert_array_equal(values[z != 0], np.sign(z[z != 0]))
    np.testing.assert_array_equal(sign_prime(z), np.zeros_like(z))


def test_sign_at_zero_and_its_dtypes():
    assert float(sign(0.0)) == -1.0 == float(sign(-0.0)) and float(sign(1e-300)) == 1.0
    for dtype in (np.float32, np.float64):
        z = np.array([-2.0, 0.0, 3.0], dtype=dtype)
        assert sign(z).dtype == dtype and sign_prime(z).dtype == dtype
    assert sign(np.array([1, -1, 0])).dtype == np.float64  # integers: computed in float64
    assert sign(np.zeros((2, 3))).shape == (2, 3)


def test_sign_is_in_the_table_and_its_derivative_is_torchs():
    assert get_activation("sign") is ACTIVATIONS["sign"]
    assert ACTIVATIONS["sign"].g is sign and ACTIVATIONS["sign"].g_prime is sign_prime
    z = torch.tensor([-3.0, -1e-8, 0.0, 1e-8, 2.0], dtype=F64, requires_grad=True)
    torch.sign(z).sum().backward()
    np.testing.assert_array_equal(sign_prime(z.detach().numpy()), z.grad.numpy())


# ------------------------------------------------------------------------------ training.py


def test_flat_params_and_layer_params_are_inverse():
    layers = init_params([3, 4, 2], np.random.default_rng(0))
    flat = flat_params(layers)
    assert [a.shape for a in flat] == [(4, 3), (4, 1), (2, 4), (2, 1)]
    back = layer_params(flat)
    assert all(W is W2 and b is b2 for (W, b), (W2, b2) in zip(layers, back))
    with pytest.raises(ValueError, match="got 3 arrays"):
        layer_params(flat[:3])


def torch_training(layers, X, Y, activations, steps, lr, optimizer, loss_factor):
    """The same full-batch training written in torch (columns): loss_factor * E with
    E = 1/(2N) sum ||a[L] - y||^2, torch.optim.SGD or Adam. The parameters before every step."""
    leaves = [torch.tensor(p, dtype=F64, requires_grad=True) for p in flat_params(layers)]
    make = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    opt = make(leaves, lr=lr)
    g = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda z: z}
    history = [[v.detach().numpy().copy() for v in leaves]]
    Xt, Yt = torch.tensor(X, dtype=F64), torch.tensor(Y, dtype=F64)
    for _ in range(steps):
        opt.zero_grad()
        A = Xt
        for l, name in enumerate(activations):
            A = g[name](leaves[2 * l] @ A + leaves[2 * l + 1])
        (loss_factor * 0.5 * ((A - Yt) ** 2).sum() / X.shape[1]).backward()
        opt.step()
        history.append([v.detach().numpy().copy() for v in leaves])
    return history


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.3), ("adam", 0.05)])
@pytest.mark.parametrize("grad_scale", [1.0, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_train_mlp_follows_the_same_training_in_torch(optimizer, lr, grad_scale, seed):
    rng = np.random.default_rng(seed)
    sizes = [int(v) for v in rng.integers(1, 5, size=3)]
    N = int(rng.integers(2, 9))
    layers = [(W, 0.3 * rng.normal(size=b.shape)) for W, b in init_params(sizes, rng)]
    X, Y = rng.normal(size=(sizes[0], N)), rng.normal(size=(sizes[-1], N))
    acts = ["tanh", "identity"]
    run = train_mlp(layers, X, Y, acts, 25, lr, optimizer=optimizer, grad_scale=grad_scale)
    expected = torch_training(layers, X, Y, acts, 25, lr, optimizer, grad_scale)
    assert isinstance(run, Run) and len(run.losses) == 25 and len(run.params) == 26
    for k, (ours, theirs) in enumerate(zip(run.params, expected)):
        assert_lists_close(ours, theirs, rtol=1e-12, atol=1e-13, what=f"before step {k}")


def test_train_mlp_records_the_loss_before_every_step_and_keeps_its_input():
    rng = np.random.default_rng(5)
    layers = init_params([2, 3, 1], rng)
    saved = [p.copy() for p in flat_params(layers)]
    X, Y = rng.normal(size=(2, 10)), rng.normal(size=(1, 10))
    acts = ["sigmoid", "identity"]
    run = train_mlp(layers, X, Y, acts, 30, 0.5)
    assert all(np.array_equal(a, b) for a, b in zip(flat_params(layers), saved))
    for k in (0, 7, 29):
        theta = layer_params(run.params[k])
        assert run.losses[k] == mlp_loss(mlp_forward(theta, X, acts)[0], Y)
    assert run.losses[-1] < run.losses[0]
    with pytest.raises(ValueError, match="unknown optimizer 'momentum'"):
        train_mlp(layers, X, Y, acts, 1, 0.1, optimizer="momentum")


def test_gradient_descent_on_least_squares_diverges_exactly_above_two_over_lambda_max():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 40)) * np.array([[0.5], [1.0], [2.0]])
    Y = rng.normal(size=(1, 40))
    A = np.vstack([X, np.ones((1, 40))])
    lam_max = np.linalg.eigvalsh(A @ A.T / 40)[-1]
    start = [(np.zeros((1, 3)), np.zeros((1, 1)))]
    below = train_mlp(start, X, Y, "identity", 400, 0.99 * 2 / lam_max).losses
    above = train_mlp(start, X, Y, "identity", 400, 1.01 * 2 / lam_max).losses
    assert below[-1] < below[0] and above[-1] > 1e3 * above[0]


# -------------------------------------------------------------------------------- figures


def test_loss_curves_figure_is_on_a_log_scale_and_skips_what_it_cannot_show():
    fig = figures.loss_curves_figure({"a": [1.0, 0.1, 0.0, 0.01], "b": [2.0, 4.0]},
                                     ylabel="E", title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "E" and ax.get_title() == "t"
    a, b = ax.get_lines()
    assert np.isnan(a.get_ydata()[2]) and list(b.get_ydata()) == [2.0, 4.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_fit_figure_draws_the_data_and_every_fit():
    grid = np.linspace(0, 1, 5)
    fig = figures.fit_figure(np.arange(3.0).reshape(1, -1), np.ones((1, 3)),
                             {"f": (grid, grid ** 2), "g": (grid, -grid)})
    data, f, g = fig.axes[0].get_lines()
    assert list(data.get_xdata()) == [0.0, 1.0, 2.0] and data.get_linestyle() == "None"
    np.testing.assert_array_equal(f.get_ydata(), grid ** 2)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["data", "f", "g"]


def test_activations_figure_draws_g_and_its_derivative_per_panel():
    names = ["tanh", "relu", "sign"]
    fig = figures.activations_figure(names, z_max=2.0)
    assert [ax.get_title() for ax in fig.axes] == names
    for ax, name in zip(fig.axes, names):
        g_line, g_prime_line = ax.get_lines()[:2]
        z, values = g_line.get_xdata(), g_line.get_ydata()
        ok = ~np.isnan(values)
        np.testing.assert_allclose(values[ok], get_activation(name).g(z[ok]))
        zp, slopes = g_prime_line.get_xdata(), g_prime_line.get_ydata()
        ok = ~np.isnan(slopes)
        np.testing.assert_allclose(slopes[ok], get_activation(name).g_prime(zp[ok]))
    # the sign's jump is a gap, not a vertical line
    sign_values = fig.axes[2].get_lines()[0].get_ydata()
    assert np.isnan(sign_values).sum() == 1
