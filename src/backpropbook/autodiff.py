"""Automatic differentiation from the inside: a scalar engine, and the design of an array engine.

A node of a computational graph keeps its forward value and, beside it, what the chain rule
needs from it. A reverse sweep visits the nodes outputs first (the reverse of a topological
order) and hands each input the upstream gradient times the local derivative, **summed over
all the uses** of that input.

:class:`Value` is the whole scalar engine: every operation stores its local derivatives when it
runs forward, and :meth:`Value.backward` is the sweep.

:class:`Tensor` is the array engine's design. A node holds an array, the name of the operation
that computed it, its inputs and the operation's attributes; :func:`graph` writes the graph as
plain data (names, ops, input names, forward values). A backward function receives the upstream
gradient ``G`` (of the node's shape), the input values and, by keyword, the node's ``value`` and
attributes, and returns one gradient per input, **each of its input's shape**. :data:`VJPS`
holds the backward functions of the elementwise operations. The three operations that change
shapes (broadcasting ``add``, ``matmul``, ``sum``) and the sweep over such a graph are the
assignment's: they are not here.
"""

from __future__ import annotations

import math

import numpy as np

from backpropbook.activations import sigmoid as _sigmoid

# ---------------------------------------------------------------------------------------------
# The scalar engine
# ---------------------------------------------------------------------------------------------


class Value:
    """A scalar node: ``data`` (its forward value), ``inputs`` (the nodes it was computed from)
    and ``local`` (d self / d input for each input, computed in the forward pass).

    After ``y.backward()``, ``node.grad`` is dy/d(node) for every node ``y`` depends on; a
    node that ``y`` does not depend on is not visited and keeps what it held.
    """

    __slots__ = ("data", "inputs", "local", "op", "grad")

    def __init__(self, data, inputs=(), local=(), op="leaf"):
        self.data = float(data)
        self.inputs = tuple(inputs)
        self.local = tuple(float(d) for d in local)
        self.op = op
        self.grad = 0.0

    def __repr__(self):
        return f"Value({self.data!r}, op={self.op!r}, grad={self.grad!r})"

    # Each operation: the forward value, and beside it the local derivatives.
    def __add__(self, other):
        other = as_value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0), "+")

    def __mul__(self, other):
        other = as_value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data), "*")

    def __neg__(self):
        return Value(-self.data, (self,), (-1.0,), "neg")

    def __sub__(self, other):
        other = as_value(other)
        return Value(self.data - other.data, (self, other), (1.0, -1.0), "-")

    def __truediv__(self, other):
        other = as_value(other)
        return Value(self.data / other.data, (self, other),
                     (1.0 / other.data, -self.data / other.data ** 2), "/")

    def __pow__(self, k):
        """self ** k for a constant number k: d/dx x^k = k x^(k-1)."""
        if isinstance(k, Value):
            raise TypeError("Value ** Value is not defined here: the exponent must be a number")
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),), f"**{k}")

    def __radd__(self, other):
        return as_value(other) + self

    def __rmul__(self, other):
        return as_value(other) * self

    def __rsub__(self, other):
        return as_value(other) - self

    def __rtruediv__(self, other):
        return as_value(other) / self

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,), "exp")

    def log(self):
        return Value(math.log(self.data), (self,), (1.0 / self.data,), "log")

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, (self,), (1.0 - t * t,), "tanh")

    def sigmoid(self):
        s = float(_sigmoid(self.data))  # the package's stable sigmoid: no overflow
        return Value(s, (self,), (s * (1.0 - s),), "sigmoid")

    def relu(self):
        return Value(max(self.data, 0.0), (self,), (1.0 if self.data > 0 else 0.0,), "relu")

    def backward(self):
        """Fill ``node.grad`` = d self / d node for every node of the graph (self.grad = 1)."""
        order = topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):  # a node's gradient is complete before it is passed on
            for parent, local in zip(node.inputs, node.local):
                parent.grad += local * node.grad  # += : summed over every use of parent


def topological_order(output, inputs_of=lambda node: node.inputs):
    """Every node ``output`` depends on, itself included, each after all of its inputs.

    ``inputs_of(node)`` lists a node's inputs (a node must be hashable). A depth-first search
    without recursion, so that a deep graph is no problem; inputs are visited in their order.
    """
    order, seen, stack = [], set(), [(output, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((parent, False) for parent in reversed(inputs_of(node)))
    return order


def as_value(x):
    """x itself if it is a :class:`Value`, else a constant leaf holding it."""
    return x if isinstance(x, Value) else Value(x, op="const")


# ---------------------------------------------------------------------------------------------
# The array engine's design
# ---------------------------------------------------------------------------------------------


class Tensor:
    """An array node: ``value`` (float64 array), ``op`` (the operation that computed it),
    ``inputs`` (Tensors), ``attrs`` (the operation's settings, e.g. ``axis``) and a ``name``.

    The forward pass runs when the node is made, like torch's eager mode; the backward pass
    is a sweep over :func:`graph`.
    """

    # NumPy must not take ``array + tensor`` elementwise over an object array: it defers to
    # Tensor's reflected operators instead.
    __array_ufunc__ = None

    def __init__(self, value, op="input", inputs=(), name=None, **attrs):
        self.value = np.array(value, dtype=float)
        self.op, self.inputs, self.name, self.attrs = op, tuple(inputs), name, attrs

    @property
    def shape(self):
        return self.value.shape

    def __repr__(self):
        return f"Tensor(shape={self.shape}, op={self.op!r}, name={self.name!r})"

    def __add__(self, other):
        return add(self, as_tensor(other))

    def __radd__(self, other):
        return add(as_tensor(other), self)

    def __sub__(self, other):
        return add(self, neg(as_tensor(other)))  # a - b is recorded as a + (-b)

    def __rsub__(self, other):
        return add(as_tensor(other), neg(self))

    def __neg__(self):
        return neg(self)

    def __mul__(self, other):
        if isinstance(other, Tensor) or np.ndim(other) > 0:
            return mul(self, as_tensor(other))
        return scale(self, other)  # by a constant number

    __rmul__ = __mul__

    def __matmul__(self, other):
        return matmul(self, other)

    def sum(self, axis=None, keepdims=False):
        return reduce_sum(self, axis, keepdims)


def as_tensor(x):
    """x itself if it is a :class:`Tensor`, else a constant leaf holding it."""
    return x if isinstance(x, Tensor) else Tensor(x, op="const")


# The forward passes, one function per operation; the function's name is the operation's.
# add, matmul and sum change shapes: their backward functions are the assignment's.
def add(a, b):
    """a + b with NumPy's broadcasting: the result has the broadcast shape."""
    return Tensor(a.value + b.value, "add", (a, b))


def matmul(A, B):
    """A @ B for 2-D arrays: (m, k) @ (k, n) -> (m, n)."""
    if A.value.ndim != 2 or B.value.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul needs (m, k) @ (k, n), got {A.shape} @ {B.shape}")
    return Tensor(A.value @ B.value, "matmul", (A, B))


def reduce_sum(a, axis=None, keepdims=False):
    """The sum of a over ``axis`` (an int, or None for all entries)."""
    if axis is not None and not isinstance(axis, int):
        raise TypeError(f"axis must be an int or None, got {axis!r}")
    return Tensor(a.value.sum(axis=axis, keepdims=keepdims), "sum", (a,), axis=axis,
                  keepdims=bool(keepdims))


def _same_shape(op, a, b):
    if a.shape != b.shape:
        raise ValueError(f"{op} needs two arrays of one shape, got {a.shape} and {b.shape}; "
                         "only add broadcasts in this engine")


def mul(a, b):
    """a * b elementwise, a and b of one shape."""
    _same_shape("mul", a, b)
    return Tensor(a.value * b.value, "mul", (a, b))


def scale(a, c):
    """c * a for a constant number c."""
    return Tensor(float(c) * a.value, "scale", (a,), c=float(c))


def neg(a):
    """-a."""
    return Tensor(-a.value, "neg", (a,))


def exp(a):
    return Tensor(np.exp(a.value), "exp", (a,))


def log(a):
    return Tensor(np.log(a.value), "log", (a,))


def tanh(a):
    return Tensor(np.tanh(a.value), "tanh", (a,))


def sigmoid(a):
    return Tensor(_sigmoid(a.value), "sigmoid", (a,))


def relu(a):
    return Tensor(np.maximum(a.value, 0.0), "relu", (a,))


# The backward functions of the elementwise operations: (G, *inputs, value=..., **attrs) ->
# one gradient per input. Each gradient has its input's shape because G has it already.
def mul_backward(G, a, b, value):
    return G * b, G * a


def scale_backward(G, a, value, c):
    return (c * G,)


def neg_backward(G, a, value):
    return (-G,)


def exp_backward(G, a, value):
    return (G * value,)  # d e^a / da = e^a, the node's own value


def log_backward(G, a, value):
    return (G / a,)


def tanh_backward(G, a, value):
    return (G * (1.0 - value ** 2),)


def sigmoid_backward(G, a, value):
    return (G * value * (1.0 - value),)


def relu_backward(G, a, value):
    return (G * (a > 0),)  # 0 at the kink, as torch does


VJPS = {"mul": mul_backward, "scale": scale_backward, "neg": neg_backward,
        "exp": exp_backward, "log": log_backward, "tanh": tanh_backward,
        "sigmoid": sigmoid_backward, "relu": relu_backward}


def graph(output):
    """The graph that computed ``output``, as plain data, inputs before the nodes using them:

    ``{name: {"op": str, "inputs": [input names], "value": array, "attrs": dict}}``, the last
    entry being ``output``. A node without a name is called ``t<k>``, k its place in the order.
    """
    order = topological_order(output)
    names = node_names(output)
    return {names[id(node)]: {"op": node.op, "inputs": [names[id(p)] for p in node.inputs],
                              "value": node.value.copy(), "attrs": dict(node.attrs)}
            for node in order}


def node_names(output):
    """{id(node): its name in ``graph(output)``} for every node of the graph."""
    order = topological_order(output)
    names = {id(node): node.name or f"t{k}" for k, node in enumerate(order)}
    repeated = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
    if repeated:
        raise ValueError(f"two nodes of the graph are called {repeated[0]!r}: names must differ")
    return names


ACTIVATIONS = {"tanh": tanh, "sigmoid": sigmoid, "relu": relu, "identity": lambda Z: Z}


def mlp_graph(params, X, Y, activations):
    """The MLP [(W, b), ...] on the batch X (n_0, N) and its loss E against
    Y (n_L, N), as a graph of Tensors. Returns (E, [W1, b1, W2, b2, ...])."""
    A, leaves = Tensor(X, name="X"), []
    for l, ((W, b), g) in enumerate(zip(params, activations), start=1):
        W, b = Tensor(W, name=f"W{l}"), Tensor(b, name=f"b{l}")
        leaves += [W, b]
        A = ACTIVATIONS[g](W @ A + b)
    D = A - Tensor(Y, name="Y")
    return (D * D).sum() * (0.5 / X.shape[1]), leaves


# ---------------------------------------------------------------------------------------------
# Forward mode
# ---------------------------------------------------------------------------------------------


class Dual:
    """A forward-mode number: ``data`` (its value) and ``dot`` (its tangent, d data / d t for
    the one input direction t chosen when the inputs were made).

    Every operation computes the value and, beside it, the tangent by the chain rule forwards,
    ``dot = sum over inputs of (d self / d input) * input.dot``, and keeps nothing else: no
    graph, no tape. One pass gives the derivative of every output along one input direction.
    """

    __slots__ = ("data", "dot")

    def __init__(self, data, dot=0.0):
        self.data = float(data)
        self.dot = float(dot)

    def __repr__(self):
        return f"Dual({self.data!r}, dot={self.dot!r})"

    def __add__(self, other):
        other = as_dual(other)
        return Dual(self.data + other.data, self.dot + other.dot)

    def __mul__(self, other):
        other = as_dual(other)
        return Dual(self.data * other.data, other.data * self.dot + self.data * other.dot)

    def __neg__(self):
        return Dual(-self.data, -self.dot)

    def __sub__(self, other):
        other = as_dual(other)
        return Dual(self.data - other.data, self.dot - other.dot)

    def __truediv__(self, other):
        other = as_dual(other)
        return Dual(self.data / other.data,
                    self.dot / other.data - self.data / other.data ** 2 * other.dot)

    def __pow__(self, k):
        """self ** k for a constant number k: d/dt x^k = k x^(k-1) dx/dt."""
        if isinstance(k, Dual):
            raise TypeError("Dual ** Dual is not defined here: the exponent must be a number")
        return Dual(self.data ** k, k * self.data ** (k - 1) * self.dot)

    def __radd__(self, other):
        return as_dual(other) + self

    def __rmul__(self, other):
        return as_dual(other) * self

    def __rsub__(self, other):
        return as_dual(other) - self

    def __rtruediv__(self, other):
        return as_dual(other) / self

    def exp(self):
        e = math.exp(self.data)
        return Dual(e, e * self.dot)

    def log(self):
        return Dual(math.log(self.data), self.dot / self.data)

    def tanh(self):
        t = math.tanh(self.data)
        return Dual(t, (1.0 - t * t) * self.dot)

    def sigmoid(self):
        s = float(_sigmoid(self.data))
        return Dual(s, s * (1.0 - s) * self.dot)

    def relu(self):
        return Dual(max(self.data, 0.0), (1.0 if self.data > 0 else 0.0) * self.dot)


def as_dual(x):
    """x itself if it is a :class:`Dual`, else a constant: tangent 0."""
    return x if isinstance(x, Dual) else Dual(x)
