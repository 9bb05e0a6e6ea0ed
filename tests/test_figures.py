"""The book's figures: they are Figures, with the labels, scales and numbers the chapter claims."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from backpropbook import figures

pytestmark = pytest.mark.scalar


def test_worked_example_values_match_the_hand_derivation():
    values, grads = figures.worked_example_values(1.0, 2.0, 1.0, 2.0, 1.0)
    assert values["y"] == 7.0
    assert [grads[k] for k in ("w1", "b1", "w2", "b2")] == [2.0, 2.0, 3.0, 1.0]
    assert grads["x"] == 4.0  # w1 * w2


def test_worked_example_values_at_another_point():
    x, w1, b1, w2, b2 = 0.5, -1.5, 2.0, 3.0, -0.25
    values, grads = figures.worked_example_values(x, w1, b1, w2, b2)
    assert values["y"] == pytest.approx((x * w1 + b1) * w2 + b2)
    assert grads["w1"] == pytest.approx(x * w2)
    assert grads["w2"] == pytest.approx(x * w1 + b1)
    assert grads["x"] == pytest.approx(w1 * w2)


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_computational_graph_figure_labels_every_edge():
    fig = figures.computational_graph_figure()
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    texts = _texts(fig)
    # one forward value and one gradient per edge, on all nine edges
    for label in ["$x=1$", "$w_1=2$", "$u=2$", "$b_1=1$", "$h=3$", "$w_2=2$", "$v=6$",
                  "$b_2=1$", "$y=7$"]:
        assert label in texts, label
    for label in [r"$\partial y/\partial w_1=2$", r"$\partial y/\partial b_1=2$",
                  r"$\partial y/\partial w_2=3$", r"$\partial y/\partial b_2=1$",
                  r"$\partial y/\partial x=4$", r"$\partial y/\partial y=1$"]:
        assert label in texts, label
    values = [t for t in fig.axes[0].texts if t.get_color() == figures.VALUE_COLOUR]
    grads = [t for t in fig.axes[0].texts if t.get_color() == figures.GRAD_COLOUR]
    assert len(values) == 10 and len(grads) == 10  # nine edges plus the key line


def test_computational_graph_figure_follows_its_inputs():
    texts = _texts(figures.computational_graph_figure(x=3.0))
    assert "$y=15$" in texts and r"$\partial y/\partial w_1=6$" in texts


def test_vanishing_gradient_figure():
    depths = np.arange(1, 6)
    curves = {"sigmoid": 0.2 ** depths, "relu": np.ones(5)}
    bound = 0.25 ** depths
    fig = figures.vanishing_gradient_figure(depths, curves, bound)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert "depth" in ax.get_xlabel() and "w^{[1]}" in ax.get_ylabel()
    lines = ax.get_lines()
    assert [line.get_label() for line in lines][:2] == ["sigmoid", "relu"]
    assert len(lines) == 3 and lines[2].get_linestyle() == "--"
    np.testing.assert_array_equal(lines[0].get_xdata(), depths)
    np.testing.assert_allclose(lines[0].get_ydata(), 0.2 ** depths)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["sigmoid", "relu"]
