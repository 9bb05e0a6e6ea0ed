"""Figures for the book, drawn offline with matplotlib (mathtext only, no LaTeX binary).

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``; the
chapters hand the figure to ``myst_nb.glue`` and place it with ``{glue:figure}``.
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

VALUE_COLOUR = "#1f5fbf"  # forward values: blue, above an edge
GRAD_COLOUR = "#c0392b"  # gradients: red, below an edge


def worked_example_values(x=1.0, w1=2.0, b1=1.0, w2=2.0, b2=1.0):
    """Forward values and gradients of y = (x w1 + b1) w2 + b2, by reverse mode on its graph.

    The graph has three intermediate nodes, u = x w1, h = u + b1, v = h w2, and y = v + b2.
    Returns ``(values, grads)``: two dicts keyed by node name ("x", "w1", ..., "u", "h", "v",
    "y"), with ``grads[n]`` = dy/dn, each computed from its parent's gradient times one local
    derivative (d(a b)/da = b, d(a + b)/da = 1).
    """
    u = x * w1
    h = u + b1
    v = h * w2
    y = v + b2
    values = {"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2, "u": u, "h": h, "v": v, "y": y}
    g = {"y": 1.0}
    g["v"] = g["y"] * 1.0  # y = v + b2
    g["b2"] = g["y"] * 1.0
    g["h"] = g["v"] * w2  # v = h w2
    g["w2"] = g["v"] * h
    g["u"] = g["h"] * 1.0  # h = u + b1
    g["b1"] = g["h"] * 1.0
    g["x"] = g["u"] * w1  # u = x w1
    g["w1"] = g["u"] * x
    return values, g


def _fmt(v):
    """A short label for a number: integers without a decimal point, others with 3 digits."""
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


def computational_graph_figure(x=1.0, w1=2.0, b1=1.0, w2=2.0, b2=1.0):
    """The graph of y = (x w1 + b1) w2 + b2 with forward values and gradients on its edges.

    Leaves and the output are square boxes, operations (x, +) round ones. On every edge the
    value that flows forward is written above it (blue) and dy/d(that value) below it (red);
    on a slanted edge "above" is its upper-right side.
    """
    values, grads = worked_example_values(x, w1, b1, w2, b2)
    # Node positions (data coordinates) and the text drawn in each box.
    top = 2.6  # height of the row of parameters
    pos = {
        "x": (0.0, 0.0), "w1": (1.3, top), "mul1": (2.6, 0.0),
        "b1": (3.9, top), "add1": (5.2, 0.0), "w2": (6.5, top),
        "mul2": (7.8, 0.0), "b2": (9.1, top), "add2": (10.4, 0.0), "y": (12.6, 0.0),
    }
    text = {"x": "$x$", "w1": "$w_1$", "b1": "$b_1$", "w2": "$w_2$", "b2": "$b_2$",
            "mul1": r"$\times$", "add1": "$+$", "mul2": r"$\times$", "add2": "$+$",
            "y": "$y$"}
    ops = {"mul1", "add1", "mul2", "add2"}
    # Edges: (from, to, name of the value carried, its label in mathtext).
    edges = [
        ("x", "mul1", "x", "x"), ("w1", "mul1", "w1", "w_1"),
        ("mul1", "add1", "u", "u"), ("b1", "add1", "b1", "b_1"),
        ("add1", "mul2", "h", "h"), ("w2", "mul2", "w2", "w_2"),
        ("mul2", "add2", "v", "v"), ("b2", "add2", "b2", "b_2"),
        ("add2", "y", "y", "y"),
    ]
    size = 15  # font size of the edge labels, in points

    fig = Figure(figsize=(10.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    half = 0.34  # half the side of a node box
    for name, (px, py) in pos.items():
        op = name in ops
        box = FancyBboxPatch(
            (px - half, py - half), 2 * half, 2 * half,
            boxstyle="round,pad=0,rounding_size=0.3" if op else "square,pad=0",
            facecolor="#f2f2f2" if op else "white", edgecolor="black", linewidth=1.4,
        )
        ax.add_patch(box)
        ax.text(px, py, text[name], ha="center", va="center", fontsize=size + 3)

    for src, dst, key, tex in edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        d = np.array([x1 - x0, y1 - y0])
        unit = d / np.linalg.norm(d)
        # Start and end on the box borders (square boxes: scale by the larger component).
        shrink = half / np.max(np.abs(unit))
        start = np.array([x0, y0]) + unit * shrink
        end = np.array([x1, y1]) - unit * shrink
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=18,
                                     linewidth=1.5, color="black", shrinkA=0, shrinkB=0))
        value = f"${tex}={_fmt(values[key])}$"
        grad = rf"$\partial y/\partial {tex}={_fmt(grads[key])}$"
        if abs(unit[1]) < 1e-9:  # horizontal: value above the middle, gradient below
            mid = (start + end) / 2
            ax.text(mid[0], mid[1] + 0.3, value, color=VALUE_COLOUR, fontsize=size,
                    ha="center", va="center")
            ax.text(mid[0], mid[1] - 0.3, grad, color=GRAD_COLOUR, fontsize=size,
                    ha="center", va="center")
        else:  # slanted down to the right: value on its upper right, gradient lower left
            upper, lower = start + 0.3 * (end - start), start + 0.66 * (end - start)
            ax.text(upper[0] + 0.22, upper[1], value, color=VALUE_COLOUR, fontsize=size,
                    ha="left", va="center")
            ax.text(lower[0] - 0.22, lower[1], grad, color=GRAD_COLOUR, fontsize=size,
                    ha="right", va="center")

    ax.text(6.0, -1.05, "blue, above / right of an edge: the forward value",
            color=VALUE_COLOUR, fontsize=size - 1, ha="right", va="center")
    ax.text(6.5, -1.05, r"red, below / left: the gradient $\partial y/\partial(\cdot)$",
            color=GRAD_COLOUR, fontsize=size - 1, ha="left", va="center")
    ax.set_xlim(-0.6, 13.2)
    ax.set_ylim(-1.4, top + 0.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig


def vanishing_gradient_figure(depths, curves, bound=None):
    """|dE/dw[1]| against depth L on a log scale, one line per activation.

    ``depths``: shape (n,). ``curves``: dict activation name -> array of shape (n,) with the
    (positive) typical |dE/dw[1]| at each depth. ``bound``: optional array (n,) drawn dashed,
    the sigmoid bound built from sigma' <= 1/4.
    """
    depths = np.asarray(depths)
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    markers = {"sigmoid": "o", "tanh": "s", "relu": "^"}
    for name, values in curves.items():
        ax.plot(depths, np.asarray(values), marker=markers.get(name, "."), markersize=4,
                linewidth=1.5, label=name)
    if bound is not None:
        ax.plot(depths, np.asarray(bound), linestyle="--", color="grey",
                label=r"sigmoid bound $|\hat y-y|\,|x|\,4^{-L}\prod_{l\geq 2}|w^{[l]}|$")
    ax.set_yscale("log")
    ax.set_xlabel("depth $L$ (number of layers)")
    ax.set_ylabel(r"$|\partial E/\partial w^{[1]}|$")
    ax.set_title("Gradient reaching the first weight")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left", fontsize=10)
    return fig


def _log_values(values):
    """values as floats, with the entries a log axis cannot show (<= 0) replaced by NaN."""
    values = np.asarray(values, dtype=float)
    return np.where(values > 0, values, np.nan)


def loss_curves_figure(curves, xlabel="step", ylabel="loss $E$", title=None):
    """Curves against the step number on a log scale, one line per entry of ``curves``.

    ``curves``: dict label -> sequence of values (step 0 first); values <= 0, which a log axis
    cannot show, are left out of their line (drawn as gaps).
    """
    fig = Figure(figsize=(7.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for label, values in curves.items():
        ax.plot(_log_values(values), linewidth=1.5, label=label)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def fit_figure(x, y, fits, xlabel="$x$", ylabel="$y$", title=None):
    """The data (x, y) as dots and fitted functions over them as lines.

    ``x``, ``y``: the data, any shapes with the same number of entries. ``fits``: dict
    label -> (x_grid, y_grid), each a function sampled on a grid, drawn in order.
    """
    fig = Figure(figsize=(7.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(np.ravel(x), np.ravel(y), "o", markersize=3.5, color="grey", alpha=0.7,
            label="data")
    for label, (x_grid, y_grid) in fits.items():
        ax.plot(np.ravel(x_grid), np.ravel(y_grid), linewidth=1.8, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def _with_gaps(z, values, jump=0.5):
    """values, with NaN inserted where consecutive entries jump by more than ``jump``, so that
    a discontinuous function is not drawn with a vertical line at its jump."""
    values = np.asarray(values, dtype=float)
    cut = np.flatnonzero(np.abs(np.diff(values)) > jump) + 1
    return np.insert(z.astype(float), cut, np.nan), np.insert(values, cut, np.nan)


def activations_figure(names, z_max=4.0):
    """One panel per activation: g (solid) and its derivative g' (dashed) on [-z_max, z_max].

    ``names``: keys of :data:`backpropbook.activations.ACTIVATIONS`. A jump of g (step, sign)
    is drawn as a gap; g' is drawn as the package computes it, 0 on both sides of the jump.
    """
    from .activations import get_activation

    z = np.linspace(-z_max, z_max, 801)
    fig = Figure(figsize=(2.6 * len(names), 2.9), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        act = get_activation(name)
        ax.plot(*_with_gaps(z, act.g(z)), linewidth=1.8, label="$g(z)$")
        ax.plot(*_with_gaps(z, act.g_prime(z)), "--", linewidth=1.8, label="$g'(z)$")
        ax.set_title(name)
        ax.set_xlabel("$z$")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=9, loc="upper left")
    return fig


STEP_METHOD_COLOURS = {"forward": "#c0392b", "centered": "#1f5fbf"}


def step_error_figure(panels):
    """The error of a finite difference against its step h, on log-log axes: one panel each.

    ``panels``: dict title -> {"steps": (n,), "measured": {method: (n,)}, "model": {method: (n,)},
    "best": {method: (predicted h, measured h)}}, the methods being "forward" and "centered".
    The measured errors are drawn as a solid line with dots, the error model dashed; for each
    method the predicted best step is a dotted vertical line and the measured best step a large
    circle on the measured curve. Errors <= 0, which a log axis cannot show, are left out.
    """
    fig = Figure(figsize=(5.0 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, panel) in zip(axes, panels.items()):
        steps = np.asarray(panel["steps"], dtype=float)
        for method, measured in panel["measured"].items():
            colour = STEP_METHOD_COLOURS.get(method)
            measured = _log_values(measured)
            ax.plot(steps, measured, ".-", color=colour, markersize=3, linewidth=1.2,
                    label=f"{method}, measured")
            ax.plot(steps, _log_values(panel["model"][method]), "--", color=colour,
                    linewidth=1.2, alpha=0.8, label=f"{method}, error model")
            predicted, best = panel["best"][method]
            ax.axvline(predicted, color=colour, linestyle=":", linewidth=1.5)
            at = int(np.argmin(np.abs(np.log(steps / best))))  # the step nearest to best
            ax.plot([steps[at]], [measured[at]], "o", color=colour, markersize=9,
                    markerfacecolor="none", markeredgewidth=1.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step $h$")
        ax.set_ylabel(r"$|D_h f - f'|$")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    return fig


def engine_agreement_figure(engine_losses, hand_losses, gaps, every=10):
    """Two trainings of the same networks, side by side: the loss curves (left; one engine
    as lines, the other as open circles every ``every`` steps, same colour per network) and
    their difference at every step (right). Both panels on a log scale.

    ``engine_losses``, ``hand_losses``, ``gaps``: dicts label -> (steps,) arrays; gaps <= 0
    (exact agreement), which a log axis cannot show, are left out.
    """
    fig = Figure(figsize=(8.5, 4.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    for k, (label, losses) in enumerate(engine_losses.items()):
        colour = f"C{k % 10}"
        left.plot(_log_values(losses), color=colour, linewidth=1.4, label=label)
        steps = np.arange(0, len(hand_losses[label]), every)
        left.plot(steps, _log_values(hand_losses[label])[steps], "o", color=colour,
                  markersize=4.5, markerfacecolor="none")
        right.plot(_log_values(gaps[label]), ".", color=colour, markersize=3)
    left.set_title("loss: engine (lines), hand-written (circles)", fontsize=10)
    left.set_ylabel("loss $E$")
    right.set_title("their difference, relative to $E$ at step 0", fontsize=10)
    right.set_ylabel(r"$|E_{\mathrm{engine}} - E_{\mathrm{hand}}|\,/\,E_0$")
    for ax in (left, right):
        ax.set_yscale("log")
        ax.set_xlabel("gradient-descent step")
        ax.grid(True, which="major", alpha=0.3)
    fig.legend(loc="outside lower center", ncol=3, fontsize=9)
    return fig


def growth_figure(depths, counts, xlabel="depth $L$ of the chain",
                  ylabel="size (operations)"):
    """Sizes against depth, one line with dots per entry of ``counts`` (label -> (n,)), on
    log-log axes, where a size proportional to L^k is a line of slope k."""
    depths = np.asarray(depths)
    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for label, values in counts.items():
        ax.plot(depths, _log_values(values), "o-", markersize=4, linewidth=1.5, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9)
    return fig
