"""Vector backpropagation for a single example: Jacobians, Hadamard products, per-index loops.

One example is a column: x has shape (n_0, 1), a[l] and z[l] have shape (n_l, 1), W[l] has shape
(n_l, n_{l-1}) and b[l] shape (n_l, 1); ``params`` is a list of (W, b), layer 1 first, as in
:mod:`backpropbook.mlp`. The loss is the squared error of one example, E = 1/2 ||a[L] - t||^2
(the batch code's mean squared error with N = 1).

Jacobians are in numerator layout: d f / d x of f: R^n -> R^m has shape (m, n), row i holding
the derivatives of f_i. The gradient of the scalar E has the shape of its variable, so it is the
*transpose* of the (1, n) Jacobian of E.
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from .activations import get_activation, sigmoid
from .layers import activation_forward, linear_forward


def activation_jacobian(z, activation="sigmoid"):
    """The Jacobian d g(z)/dz = diag(g'(z_1), ..., g'(z_n)), shape (n, n).

    z is a column of n entries. a_i = g(z_i) depends on z_i alone,
    so every entry off the diagonal is 0.
    """
    g_prime = get_activation(activation).g_prime
    return np.diag(g_prime(np.asarray(z, dtype=float)).ravel())


def numerical_jacobian(f, x, h=1e-6):
    """Centered-difference Jacobian of f at x, numerator layout: J[i, j] ~ d f_i / d x_j.

    x and f(x) may have any shapes; they are raveled, so J has shape (f(x).size, x.size).
    x is not modified.
    """
    x = np.array(x, dtype=float)
    flat = x.reshape(-1)  # a view: nudging flat nudges x
    columns = []
    for j in range(flat.size):
        saved = flat[j]
        flat[j] = saved + h
        f_plus = np.asarray(f(x), dtype=float).ravel()
        flat[j] = saved - h
        f_minus = np.asarray(f(x), dtype=float).ravel()
        flat[j] = saved
        columns.append((f_plus - f_minus) / (2 * h))
    return np.stack(columns, axis=1)


def _activation_names(activation, L):
    return [activation] * L if isinstance(activation, str) else list(activation)


def vector_forward(params, x, activation="sigmoid"):
    """Forward pass of one example. Returns (zs, acts): zs[l-1] = z[l], acts[l] = a[l], acts[0] = x.

    ``activation`` is one name for every layer or a list of L names.
    """
    acts_names = _activation_names(activation, len(params))
    zs, acts = [], [np.asarray(x, dtype=float)]
    for (W, b), name in zip(params, acts_names):
        zs.append(linear_forward(W, acts[-1], b))
        acts.append(activation_forward(zs[-1], name))
    return zs, acts


def vector_loss(params, x, t, activation="sigmoid"):
    """E = 1/2 ||a[L] - t||^2 for one example."""
    _, acts = vector_forward(params, x, activation)
    return 0.5 * float(np.sum((acts[-1] - t) ** 2))


def vector_backward(params, zs, acts, t, activation="sigmoid", jacobians=False):
    """Backward pass of one example, E = 1/2 ||a[L] - t||^2. Returns (grads, deltas).

    grads[l-1] = (dE/dW[l], dE/db[l]) and deltas[l-1] = delta[l] = dE/dz[l], each of the shape of
    the variable it is taken with respect to. With ``jacobians=True`` every step multiplies by
    the transposed Jacobian of the layer (diag(g'(z)) and W) as a matrix; otherwise the
    diagonal Jacobian is applied as a Hadamard product. Both give the same numbers; the second
    costs n instead of n^2 multiplications per activation.
    """
    acts_names = _activation_names(activation, len(params))
    L = len(params)
    grads, deltas = [None] * L, [None] * L
    upstream = acts[L] - t  # dE/da[L]
    for l in range(L, 0, -1):
        z, W = zs[l - 1], params[l - 1][0]
        if jacobians:
            delta = activation_jacobian(z, acts_names[l - 1]).T @ upstream
        else:
            delta = get_activation(acts_names[l - 1]).g_prime(z) * upstream
        deltas[l - 1] = delta
        grads[l - 1] = (delta @ acts[l - 1].T, delta.copy())
        upstream = W.T @ delta  # dE/da[l-1] = (dz[l]/da[l-1])^T delta[l]
    return grads, deltas


def vector_gradients(params, x, t, activation="sigmoid", jacobians=False):
    """[(dE/dW[l], dE/db[l]), ...] of one example: forward pass, then :func:`vector_backward`."""
    zs, acts = vector_forward(params, x, activation)
    return vector_backward(params, zs, acts, t, activation, jacobians)[0]


def per_index_gradients(params, x, t):
    """The lecture-note formulas for a sigmoid network, one scalar at a time (no matrices).

    O^{[l]}_j is the output of unit j of layer l (O^{[0]} = x) and w^{[l]}_{jk} = W[l][j, k]
    connects unit k of layer l-1 to unit j of layer l. With E = 1/2 sum_k (O_k - t_k)^2:

        output layer:  delta_k = (O_k - t_k) O_k (1 - O_k)
        hidden layer:  delta_j = O_j (1 - O_j) sum_k delta_k w_{kj}   (k runs over the layer above)
        gradients:     dE/dw_{jk} = delta_j O_k,   dE/db_j = delta_j

    A deliberately slow reference, written with Python loops so that every index is visible.
    Returns [(dW, db), ...] like :func:`vector_gradients`.
    """
    L = len(params)
    O = [[float(v) for v in np.ravel(x)]]
    for W, b in params:
        n, m = W.shape
        out = []
        for j in range(n):
            s = float(b[j, 0])
            for k in range(m):
                s += float(W[j, k]) * O[-1][k]
            out.append(float(sigmoid(s)))  # 1 / (1 + e^(-s)), without overflow
        O.append(out)
    target = [float(v) for v in np.ravel(t)]
    deltas = [None] * (L + 1)
    deltas[L] = [(O[L][k] - target[k]) * O[L][k] * (1.0 - O[L][k]) for k in range(len(O[L]))]
    for l in range(L - 1, 0, -1):
        W_above = params[l][0]  # W[l+1]: rows are the units k of layer l+1
        deltas[l] = []
        for j in range(len(O[l])):
            s = 0.0
            for k in range(len(O[l + 1])):
                s += deltas[l + 1][k] * float(W_above[k, j])
            deltas[l].append(O[l][j] * (1.0 - O[l][j]) * s)
    grads = []
    for l in range(1, L + 1):
        n, m = params[l - 1][0].shape
        dW = np.array([[deltas[l][j] * O[l - 1][k] for k in range(m)] for j in range(n)])
        db = np.array(deltas[l]).reshape(n, 1)
        grads.append((dW, db))
    return grads


def flatten_gradients(grads):
    """[(dW, db), ...] as one vector: W[1] row by row, b[1], W[2], b[2], ... (as SymPy's)."""
    return np.concatenate([np.concatenate([dW.ravel(), db.ravel()]) for dW, db in grads])


def unflatten_gradients(theta, like):
    """The inverse of :func:`flatten_gradients`: [(W, b), ...] shaped like the pairs of ``like``,
    read from the flat vector ``theta`` (views into it)."""
    size = sum(np.size(W) + np.size(b) for W, b in like)
    if np.size(theta) != size:
        raise ValueError(f"theta has {np.size(theta)} entries, the pairs {size}")
    pairs, i = [], 0
    for W, b in like:
        nW, nb = np.size(W), np.size(b)
        pairs.append((theta[i:i + nW].reshape(np.shape(W)),
                      theta[i + nW:i + nW + nb].reshape(np.shape(b))))
        i += nW + nb
    return pairs


def network_figure(sizes, highlight=(2, 2, 1)):
    """A diagram of a fully connected network with layer widths ``sizes``.

    Units are circles labelled x_k (inputs) or a^{[l]}_j; every weight is a grey line. The
    weight ``highlight = (l, j, k)``, i.e. w^{[l]}_{jk} (from unit k of layer l-1 to unit j of
    layer l), is drawn in red with its label, and each layer's W[l] (n_l x n_{l-1}), b[l] and
    delta[l] are written under it.
    """
    sizes = [int(n) for n in sizes]
    L = len(sizes) - 1
    tallest = max(sizes)
    dx, dy, radius = 2.6, 1.35, 0.36

    def position(l, j):  # j is 1-based; units of a layer are centred vertically
        return l * dx, ((sizes[l] - 1) / 2 - (j - 1)) * dy

    fig = Figure(figsize=(1.9 * (L + 1) + 0.6, 1.0 * tallest + 1.3), layout="constrained")
    ax = fig.add_subplot()
    hl, hj, hk = highlight
    for l in range(1, L + 1):
        for j in range(1, sizes[l] + 1):
            for k in range(1, sizes[l - 1] + 1):
                (x0, y0), (x1, y1) = position(l - 1, k), position(l, j)
                on = (l, j, k) == (hl, hj, hk)
                ax.plot([x0, x1], [y0, y1], color="#c0392b" if on else "#9aa3ad",
                        lw=2.2 if on else 1.0, zorder=1 if on else 0)
                if on:
                    f = 0.5  # label the middle of the edge, on a white patch
                    ax.text(x0 + f * (x1 - x0), y0 + f * (y1 - y0),
                            rf"$w^{{[{l}]}}_{{{j}{k}}}$", color="#c0392b", fontsize=14,
                            ha="center", va="center", zorder=4,
                            bbox=dict(facecolor="white", edgecolor="#c0392b", pad=2.5))
    for l in range(L + 1):
        for j in range(1, sizes[l] + 1):
            px, py = position(l, j)
            ax.add_patch(Circle((px, py), radius, facecolor="white", edgecolor="#1f5fbf",
                                lw=1.6, zorder=2))
            label = rf"$x_{j}$" if l == 0 else rf"$a^{{[{l}]}}_{j}$"
            ax.text(px, py, label, ha="center", va="center", fontsize=12, zorder=3)
        bottom = -((tallest - 1) / 2) * dy - 0.6
        if l == 0:
            note = r"$a^{[0]} = x$"
        else:
            note = (rf"$W^{{[{l}]}}$: {sizes[l]}$\times${sizes[l - 1]}" + "\n"
                    + rf"$b^{{[{l}]}}, \delta^{{[{l}]}}$: {sizes[l]}$\times$1")
        ax.text(position(l, 1)[0], bottom, note, ha="center", va="top", fontsize=11)
    ax.set_xlim(-0.7, L * dx + 0.7)
    ax.set_ylim(-((tallest - 1) / 2) * dy - 1.45, ((tallest - 1) / 2) * dy + 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig
