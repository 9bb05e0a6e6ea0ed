"""The complete array engine, instructor side: :mod:`backpropbook.autodiff` with the
assignment's answers filled in.

The student's package holds the array engine's design (``Tensor``, its forward operations,
``graph`` and the backward functions of the elementwise operations); the autodiff assignment
asks for the rest (the backward functions of broadcasting ``add``, ``matmul`` and ``sum``, and
the sweep ``backward(nodes, output, G)``), and the instructor's solution notebook holds them.
This module joins the two, so that the book can train a network with the complete engine and
show the result without showing the code.
"""

import functools

import numpy as np

from backpropbook.autodiff import graph, node_names


@functools.cache
def sweep():
    """The solution notebook's ``backward(nodes, output, G) -> {name: dL/d node}``, for
    L = sum(G * value of output)."""
    from backpropgrader import answers

    return answers.load("autodiff")["backward"]


def gradients(output, wrt, G=None):
    """[dL/dT for T in wrt], each of T's shape, for L = sum(G * output.value).

    ``output``: a Tensor; ``wrt``: Tensors of its graph; ``G``: an array of the output's shape,
    by default ones (for a scalar output, L is the output itself).
    """
    nodes, name_of = graph(output), node_names(output)
    G = np.ones(output.shape) if G is None else np.asarray(G, dtype=float)
    if G.shape != output.shape:
        raise ValueError(f"G has shape {G.shape}, the output {output.shape}")
    outside = [t for t in wrt if id(t) not in name_of]
    if outside:
        raise ValueError(f"{outside[0]!r} is not in the graph of the output")
    grads = sweep()(nodes, name_of[id(output)], G)
    return [grads[name_of[id(t)]] for t in wrt]
