"""The autodiff chapter's engines, held to torch.autograd in float64.

- The scalar engine (``Value``): on random expression graphs (hypothesis), with reused
  variables and shared subexpressions, every leaf's gradient against torch.autograd; the
  forward mode (``Dual``) on the same graphs, one pass per leaf; a deep graph (no recursion
  limit); gradients that start from zero at every ``backward()``.
- Jacobians of random functions R^n -> R^m by both modes (n forward passes, m reverse sweeps)
  against torch.autograd.functional.jacobian.
- The array engine's design: the elementwise backward functions (``VJPS``) against torch on
  random arrays of 0 to 3 dimensions; the Tensor operators, ``graph`` and the shape checks.
- The complete array engine (``backpropgrader.array_engine``: the package's design with the
  instructor's answers) against torch.autograd on random array graphs (broadcasting of any
  shapes, sums over any axis, shared nodes) and against the package's hand-written MLP
  backward pass.

Each comparison is also shown to fail on a deliberately broken engine.
"""

import math
import operator
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import example, find, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from backpropbook import autodiff as ad
from backpropbook import figures
from backpropbook.activations import sigmoid
from backpropbook.autodiff import Dual, Value, topological_order
from backpropbook.gradcheck import relative_error
from backpropbook.mlp import init_params, mlp_backward, mlp_forward, mlp_loss
from backpropbook.oracles import TORCH_ELEMENTWISE, mlp_gradients_torch
from backpropgrader.array_engine import gradients
from strategies import EXAMPLES, FAST, finite

pytestmark = [pytest.mark.package, pytest.mark.autodiff]

f64 = torch.float64
MANY = settings(max_examples=10 * EXAMPLES, deadline=None)  # small graphs: fast

# ------------------------------------------------------------------ random expression graphs

BINARY_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
BINARY = tuple(BINARY_OPS)
UNARY = ("neg", "exp", "log", "tanh", "sigmoid", "relu", "**2", "**3", "**-1", "**0.5")
MAX_ABS = 1e3  # keep every intermediate value below this: float64 is then far from trouble


def _apply(op, a, b=None):
    """op on plain floats: what the program's nodes hold (used only to keep domains valid)."""
    return {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
        "neg": lambda: -a, "exp": lambda: math.exp(a), "log": lambda: math.log(a),
        "tanh": lambda: math.tanh(a), "sigmoid": lambda: 1 / (1 + math.exp(-a)),
        "relu": lambda: max(a, 0.0), "**2": lambda: a ** 2, "**3": lambda: a ** 3,
        "**-1": lambda: 1 / a, "**0.5": lambda: a ** 0.5,
    }[op]()


def allowed(op, a, b=None):
    """The guarded domains: no log, root or division near 0 or below it, no exp overflow."""
    if op == "/":
        return abs(b) >= 0.1
    if op in ("log", "**0.5"):
        return a >= 0.1
    if op == "**-1":
        return abs(a) >= 0.1
    if op == "exp":
        return a <= 5.0
    if op in ("tanh", "sigmoid"):
        # where they saturate, 1 - t^2 and s (1 - s) cancel: a last-bit difference between
        # math.tanh and torch.tanh would be amplified by up to e^(2|a|)
        return abs(a) <= 3.0
    return True


@dataclass
class Program:
    """A random expression graph: ``leaves`` (their values), then ``steps`` (op, i, j), each
    computing node len(leaves) + k from nodes i and j (j unused by unary ops). The output is
    the sum of the nodes that no later step uses."""

    leaves: list
    steps: list

    def uses(self):
        counts = [0] * (len(self.leaves) + len(self.steps))
        for op, i, j in self.steps:
            counts[i] += 1
            if op in BINARY:
                counts[j] += 1
        return counts

    def sinks(self):
        return [k for k, n in enumerate(self.uses()) if n == 0]


@st.composite
def programs(draw, max_leaves=4, max_steps=14):
    """Leaves in [-2, 2], then up to 14 operations on any earlier nodes, so that variables are
    reused and subexpressions shared as often as not; each step is kept only where its domain
    is valid and its value below MAX_ABS in magnitude."""
    leaves = draw(st.lists(finite(-2.0, 2.0), min_size=1, max_size=max_leaves))
    values, steps = list(leaves), []
    for _ in range(draw(st.integers(1, max_steps))):
        op = draw(st.sampled_from(BINARY + UNARY))
        i = draw(st.integers(0, len(values) - 1))
        j = draw(st.integers(0, len(values) - 1)) if op in BINARY else i
        args = (values[i], values[j]) if op in BINARY else (values[i],)
        if not allowed(op, *args):
            continue
        value = _apply(op, *args)
        if abs(value) > MAX_ABS:
            continue
        values.append(value)
        steps.append((op, i, j))
    return Program(leaves, steps)


def sink_outputs(program, leaves, unary):
    """The program on ``leaves`` (Values, Duals or torch tensors); ``unary(op, x)`` applies a
    unary op. Returns its sinks, the nodes no later step uses: a function R^n -> R^m."""
    nodes = list(leaves)
    for op, i, j in program.steps:
        a, b = nodes[i], nodes[j]
        if op in BINARY:
            nodes.append(BINARY_OPS[op](a, b))
        elif op.startswith("**"):
            nodes.append(a ** float(op[2:]))
        else:
            nodes.append(unary(op, a))
    return [nodes[k] for k in program.sinks()]


def run(program, leaves, unary):
    """The program's output: the sum of its sinks."""
    sinks = sink_outputs(program, leaves, unary)
    out = sinks[0]
    for node in sinks[1:]:
        out = out + node
    return out


def engine_unary(op, x):
    return -x if op == "neg" else getattr(x, op)()


TORCH_UNARY = {"neg": torch.neg, "exp": torch.exp, "log": torch.log, "tanh": torch.tanh,
               "sigmoid": torch.sigmoid, "relu": torch.relu}


def torch_gradients(program):
    leaves = [torch.tensor(v, dtype=f64, requires_grad=True) for v in program.leaves]
    out = run(program, leaves, lambda op, x: TORCH_UNARY[op](x))
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    return out.item(), [0.0 if g is None else g.item() for g in grads]


def value_gradients(program):
    leaves = [Value(v) for v in program.leaves]
    out = run(program, leaves, engine_unary)
    out.backward()
    return out, [leaf.grad for leaf in leaves]


def absolute_gradients(output):
    """d output / d node with every local derivative replaced by its absolute value: the sum
    over paths of |products|, the scale against which round-off in a gradient is measured."""
    order = topological_order(output)
    scale = {id(node): 0.0 for node in order}
    scale[id(output)] = 1.0
    for node in reversed(order):
        for parent, local in zip(node.inputs, node.local):
            scale[id(parent)] += abs(local) * scale[id(node)]
    return scale


ROUND_OFF = 1e-13  # relative to the absolute-gradient scale (measured: at most 4e-15)
# Below float64's smallest normal number (2.2e-308) the precision is absolute: subnormals are
# spaced 5e-324 apart, and hypothesis does draw leaves such as 5e-324.
SUBNORMAL = 16 * math.ulp(0.0)


def assert_matches_torch(program, grads, out_value):
    """``grads`` (one per leaf) agree with torch.autograd to round-off."""
    expected_out, expected = torch_gradients(program)
    leaves = [Value(v) for v in program.leaves]
    scale_of = absolute_gradients(run(program, leaves, engine_unary))
    assert abs(out_value - expected_out) <= ROUND_OFF * max(1.0, abs(expected_out))
    for k, (got, want, leaf) in enumerate(zip(grads, expected, leaves)):
        scale = scale_of[id(leaf)]  # 0 where no path has a non-zero product: then exactly 0
        assert abs(got - want) <= ROUND_OFF * scale + SUBNORMAL, (k, got, want, scale, program)


def shares(program):
    """(a leaf used twice or more, an operation's result used twice or more)."""
    uses = program.uses()
    n = len(program.leaves)
    return max(uses[:n]) >= 2, max(uses[n:], default=0) >= 2


# ------------------------------------------------------------------ the scalar engine


@MANY
@given(programs())
@example(Program([0.75, 5e-324], [("neg", 0, 0), ("+", 1, 1), ("neg", 1, 1), ("+", 1, 1),
                                  ("/", 1, 2)]))  # subnormal: one ulp off torch, correctly
def test_value_gradients_match_torch(program):
    out, grads = value_gradients(program)
    assert_matches_torch(program, grads, out.data)


@MANY
@given(programs())
def test_dual_numbers_match_torch_one_pass_per_leaf(program):
    derivatives = []
    for j in range(len(program.leaves)):
        seeded = [Dual(v, 1.0 if i == j else 0.0) for i, v in enumerate(program.leaves)]
        out = run(program, seeded, engine_unary)
        derivatives.append(out.dot)
    assert_matches_torch(program, derivatives, out.data)


def test_the_graphs_reuse_variables_and_share_subexpressions():
    # the strategy reaches both (and both at once), so the tests above do see them
    both = find(programs(), lambda p: all(shares(p)))
    assert all(shares(both))


def test_the_comparison_catches_a_gradient_overwritten_instead_of_summed():
    # x, tanh(x), q = x tanh(x), e^q, q x; the output e^q + q x uses x three times, q twice
    program = Program([0.7], [("tanh", 0, 0), ("*", 0, 1), ("exp", 2, 2), ("*", 2, 0)])
    assert shares(program) == (True, True)
    leaf = Value(0.7)
    out = run(program, [leaf], engine_unary)
    order = topological_order(out)
    for node in order:
        node.grad = 0.0
    out.grad = 1.0
    for node in reversed(order):
        for parent, local in zip(node.inputs, node.local):
            parent.grad = local * node.grad  # the mistake: = instead of +=
    with pytest.raises(AssertionError):
        assert_matches_torch(program, [leaf.grad], out.data)
    out, grads = value_gradients(program)  # the engine itself passes the same comparison
    assert_matches_torch(program, grads, out.data)


def test_a_deep_graph_needs_no_recursion():
    depth = 4 * sys.getrecursionlimit()
    x = Value(0.5)
    a = x
    for _ in range(depth):
        a = a + x          # a = (depth + 1) x
    a.backward()
    assert len(topological_order(a)) == depth + 1
    assert x.grad == depth + 1


def test_every_backward_starts_from_zero():
    x, w = Value(1.5), Value(-0.5)
    y = (x * w).tanh()
    z = x * x
    y.backward()
    first = (x.grad, w.grad)
    y.backward()                          # unlike torch, no accumulation across calls
    assert (x.grad, w.grad) == first
    z.backward()                          # another output: x starts again from 0
    assert x.grad == 2 * 1.5
    assert z.grad == 1.0


@FAST
@given(programs())
def test_jacobians_n_forward_passes_or_m_reverse_sweeps_match_torch(program):
    n = len(program.leaves)
    columns = []
    for j in range(n):  # forward mode: one pass per input gives one column
        seeded = [Dual(v, 1.0 if i == j else 0.0) for i, v in enumerate(program.leaves)]
        columns.append([y.dot for y in sink_outputs(program, seeded, engine_unary)])
    J_forward = np.array(columns).T
    leaves = [Value(v) for v in program.leaves]
    outputs = sink_outputs(program, leaves, engine_unary)
    rows = []
    for y in outputs:  # reverse mode: one sweep per output gives one row
        y.backward()
        # a leaf y does not depend on keeps what an earlier sweep left in it: its entry is 0
        reached = set(topological_order(y))
        rows.append([leaf.grad if leaf in reached else 0.0 for leaf in leaves])
    J_reverse = np.array(rows)

    def f(x):
        return torch.stack(sink_outputs(program, list(x), lambda op, t: TORCH_UNARY[op](t)))

    J_torch = torch.autograd.functional.jacobian(
        f, torch.tensor(program.leaves, dtype=f64)).numpy()
    assert J_forward.shape == J_reverse.shape == J_torch.shape == (len(outputs), n)
    # the scale of round-off in each entry: the sum over paths of |products|
    scale = np.array([[absolute_gradients(y).get(id(leaf), 0.0) for leaf in leaves]
                      for y in outputs])
    assert np.all(np.abs(J_forward - J_torch) <= ROUND_OFF * scale + SUBNORMAL)
    assert np.all(np.abs(J_reverse - J_torch) <= ROUND_OFF * scale + SUBNORMAL)


def test_sigmoid_and_relu_at_their_extremes_and_kink_match_torch():
    for z in (-800.0, -30.0, 0.0, 30.0, 800.0):
        v = Value(z)
        y = v.sigmoid()
        y.backward()
        t = torch.tensor(z, dtype=f64, requires_grad=True)
        torch.sigmoid(t).backward()
        assert math.isfinite(y.data) and y.data == float(sigmoid(z))
        assert abs(v.grad - t.grad.item()) <= 1e-16
        dual = Dual(z, 1.0).sigmoid()
        assert dual.data == y.data and dual.dot == v.grad
    v = Value(0.0)
    v.relu().backward()
    t = torch.tensor(0.0, dtype=f64, requires_grad=True)
    torch.relu(t).backward()
    assert v.grad == t.grad.item() == Dual(0.0, 1.0).relu().dot == 0.0


def test_pow_with_a_value_exponent_is_refused():
    with pytest.raises(TypeError, match="exponent must be a number"):
        Value(2.0) ** Value(3.0)
    with pytest.raises(TypeError, match="exponent must be a number"):
        Dual(2.0) ** Dual(3.0)


# ------------------------------------------------------------------ the array engine's design

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@FAST
@given(st.sampled_from(sorted(ad.VJPS)), shapes, st.integers(0, 2**32 - 1))
def test_every_elementwise_backward_matches_torch_on_0_to_3_dimensions(op, shape, seed):
    rng = np.random.default_rng(seed)
    n_inputs = 2 if op == "mul" else 1
    values = [rng.uniform(0.5, 2.0, shape) if op == "log" else rng.normal(size=shape)
              for _ in range(n_inputs)]
    c = float(rng.normal())
    node = ad.scale(ad.Tensor(values[0]), c) if op == "scale" else getattr(ad, op)(
        *map(ad.Tensor, values))
    assert node.op == op and node.shape == shape
    G = rng.normal(size=shape)
    mine = ad.VJPS[op](G, *values, value=node.value, **node.attrs)
    leaves = [torch.tensor(v, dtype=f64, requires_grad=True) for v in values]
    out = TORCH_ELEMENTWISE[op](*leaves, **node.attrs)
    assert np.array_equal(out.detach().numpy(), node.value) or relative_error(
        node.value, out.detach().numpy()) <= 1e-15
    theirs = torch.autograd.grad(out, leaves, torch.tensor(G))
    assert len(mine) == n_inputs
    for got, want in zip(mine, theirs):
        # NumPy's and torch's tanh, exp, log may differ in the last bit; 1 - t^2 where tanh
        # saturates amplifies that, hence assert_same's tolerance rather than 1e-15
        assert_same(got, want.numpy(), op)


def test_tensor_operators_record_the_engines_operations():
    x = ad.Tensor(np.arange(6.0).reshape(2, 3), name="x")
    c = np.full((2, 3), 2.0)
    cases = {"x - 1": (x - 1, ["add"], x.value - 1), "1 - x": (1 - x, ["add"], 1 - x.value),
             "2 + x": (2 + x, ["add"], 2 + x.value), "-x": (-x, ["neg"], -x.value),
             "3 * x": (3 * x, ["scale"], 3 * x.value),
             "x * np.float64(3)": (x * np.float64(3), ["scale"], 3 * x.value),
             "np.float64(3) * x": (np.float64(3) * x, ["scale"], 3 * x.value),
             "c * x": (c * x, ["mul"], c * x.value), "x * c": (x * c, ["mul"], c * x.value),
             "c + x": (c + x, ["add"], c + x.value), "c - x": (c - x, ["add"], c - x.value)}
    for text, (node, ops, value) in cases.items():
        assert isinstance(node, ad.Tensor), text  # never a NumPy object array of Tensors
        assert node.op in ops and np.array_equal(node.value, value), text
    assert (1 - x).inputs[1].op == "neg" and (x - 1).inputs[1].op == "neg"
    assert (3 * x).attrs == {"c": 3.0}


def test_the_forward_operations_refuse_what_the_engine_cannot_differentiate():
    a, b = ad.Tensor(np.ones((2, 3))), ad.Tensor(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"matmul needs \(m, k\) @ \(k, n\)"):
        a @ a
    with pytest.raises(ValueError, match=r"matmul needs"):
        ad.Tensor(np.ones(3)) @ ad.Tensor(np.ones(3))
    with pytest.raises(ValueError, match="only add broadcasts"):
        a * ad.Tensor(np.ones((1, 3)))
    with pytest.raises(TypeError, match="axis must be an int or None"):
        a.sum(axis=(0, 1))
    assert (a @ b).shape == (2, 2) and (a + ad.Tensor(np.ones(3))).shape == (2, 3)


def test_graph_is_plain_data_in_topological_order():
    x, w = ad.Tensor(np.ones((2, 3)), name="x"), ad.Tensor(np.full((2, 3), 2.0), name="w")
    q = x * w
    out = (ad.tanh(q) * (q * x)).sum(axis=1, keepdims=True)
    nodes = ad.graph(out)
    names = list(nodes)
    assert names[-1] == f"t{len(names) - 1}" and nodes[names[-1]]["op"] == "sum"
    assert nodes[names[-1]]["attrs"] == {"axis": 1, "keepdims": True}
    for k, name in enumerate(names):  # each node after its inputs, every input present
        assert all(names.index(i) < k for i in nodes[name]["inputs"])
        assert set(nodes[name]) == {"op", "inputs", "value", "attrs"}
    shared = [n for n in names if sum(i == n for v in nodes.values() for i in v["inputs"]) >= 2]
    assert "x" in shared and len(shared) == 2          # x and q each used twice
    nodes["x"]["value"][0, 0] = 99.0                   # a copy: the Tensor is untouched
    assert x.value[0, 0] == 1.0
    with pytest.raises(ValueError, match="two nodes of the graph are called 'x'"):
        ad.graph(x * ad.Tensor(np.ones((2, 3)), name="x"))


@MANY
@given(programs())
def test_topological_order_lists_each_node_once_after_its_inputs(program):
    out = run(program, [Value(v) for v in program.leaves], engine_unary)
    order = topological_order(out)
    place = {id(node): k for k, node in enumerate(order)}
    assert len(place) == len(order) and order[-1] is out
    assert all(place[id(p)] < place[id(node)] for node in order for p in node.inputs)


# ------------------------------------------------------------------ the complete array engine


def assert_same(got, expected, name, rtol=1e-12):
    """Same shape, and a relative error (backpropbook.gradcheck's) of at most rtol.

    1e-12 is the book's tolerance against autograd (the notation chapter's): a gradient summed
    from terms larger than itself, or through a saturated tanh, loses a few digits in both
    engines alike (deep runs measured up to 1.5e-13)."""
    assert np.shape(got) == np.shape(expected), (
        f"d/d{name} has shape {np.shape(got)}, torch's {np.shape(expected)}")
    error = relative_error(got, expected)
    assert error <= rtol, f"d/d{name}: relative error {error:.1e} from torch"


@st.composite
def array_graphs(draw):
    """A random array graph: W (m, k) @ A (k, n) + b (m, 1) or (n,), then an elementwise op,
    a product with a leaf used twice, and a sum over an axis or over everything."""
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    seed = draw(st.integers(0, 2**32 - 1))
    op = draw(st.sampled_from(("tanh", "sigmoid", "exp", "relu", "neg")))
    axis = draw(st.sampled_from((None, 0, 1)))
    keepdims = draw(st.booleans())
    row_bias = draw(st.booleans())
    return m, k, n, seed, op, axis, keepdims, row_bias


def build(arrays, op, axis, keepdims, lib):
    """out = sum((g(W A + b) * C) * C, axis) in the engine (lib=ad) or in torch."""
    W, A, b, C = arrays
    g = {"tanh": lib.tanh, "sigmoid": lib.sigmoid, "exp": lib.exp, "relu": lib.relu,
         "neg": lambda t: -t}[op]
    H = g(W @ A + b) * C * C          # C used twice
    if lib is torch:
        return H.sum(dim=(0, 1) if axis is None else axis, keepdim=keepdims)
    return H.sum(axis=axis, keepdims=keepdims)


@FAST
@given(array_graphs())
def test_the_complete_array_engine_matches_torch(case):
    m, k, n, seed, op, axis, keepdims, row_bias = case
    rng = np.random.default_rng(seed)
    values = [rng.normal(size=(m, k)), rng.normal(size=(k, n)),
              rng.normal(size=(n,) if row_bias else (m, 1)), rng.normal(size=(m, n))]
    tensors = [ad.Tensor(v, name=name) for v, name in zip(values, "WAbC")]
    out = build(tensors, op, axis, keepdims, ad)
    G = rng.normal(size=out.shape)
    got = gradients(out, tensors, G)
    leaves = [torch.tensor(v, dtype=f64, requires_grad=True) for v in values]
    expected = torch.autograd.grad(build(leaves, op, axis, keepdims, torch), leaves,
                                   torch.tensor(G))
    for name, mine, theirs in zip("WAbC", got, expected):
        assert_same(mine, theirs.numpy(), name)


@st.composite
def broadcast_pairs(draw):
    """Two shapes of 0 to 3 dimensions that broadcast together, in any of NumPy's ways: fewer
    axes (new leading axes), axes of size 1 stretched on either side, or equal shapes."""
    full = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3))

    def part():
        ndim = draw(st.integers(0, len(full)))
        kept = full[len(full) - ndim:]
        return tuple(1 if draw(st.booleans()) else size for size in kept)

    return part(), part()


def assert_broadcast_sum_matches_torch(shape_a, shape_b, axis, keepdims, seed):
    """sum(tanh(a + b) * (a + b), axis) for broadcasting a, b: the broadcast node is used
    twice, and the sum is over one axis (negative ones too) or over everything."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=shape_a), rng.normal(size=shape_b)
    ta, tb = ad.Tensor(a, name="a"), ad.Tensor(b, name="b")
    s = ta + tb
    out = (ad.tanh(s) * s).sum(axis=axis, keepdims=keepdims)
    G = rng.normal(size=out.shape)
    got = gradients(out, [ta, tb], G)
    la, lb = (torch.tensor(v, dtype=f64, requires_grad=True) for v in (a, b))
    s_t = la + lb
    H = torch.tanh(s_t) * s_t
    dims = tuple(range(H.ndim)) if axis is None else axis
    out_t = H.sum(dim=dims, keepdim=keepdims) if H.ndim else H
    assert out_t.shape == out.shape
    expected = torch.autograd.grad(out_t, [la, lb], torch.tensor(G))
    for name, mine, theirs in zip("ab", got, expected):
        assert_same(mine, theirs.numpy(), name)


@FAST
@given(broadcast_pairs(), st.integers(0, 2**32 - 1), st.booleans(), st.integers(0, 6))
def test_the_complete_engine_broadcasts_and_sums_over_any_axis_like_torch(pair, seed, keepdims,
                                                                         pick):
    ndim = len(np.broadcast_shapes(*pair))
    axes = [None] + list(range(-ndim, ndim))
    assert_broadcast_sum_matches_torch(*pair, axes[pick % len(axes)], keepdims, seed)


@pytest.mark.parametrize("shape_a, shape_b", [
    ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 3, 4), (3, 1)), ((3, 5), (3, 1)),
    ((2, 3), (2, 3)), ((2, 1, 3), (4, 1))])
@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_the_complete_engine_on_the_assignments_broadcasting_shapes(shape_a, shape_b, axis,
                                                                    keepdims):
    assert_broadcast_sum_matches_torch(shape_a, shape_b, axis, keepdims, seed=len(shape_a))


def test_the_array_engine_trains_the_matrix_chapters_mlp():
    """The engine's dE/dW, dE/db equal mlp_backward's and torch's on random networks."""
    for seed in range(6):
        rng = np.random.default_rng(seed)
        L = int(rng.integers(1, 5))
        sizes = [int(s) for s in rng.integers(1, 7, size=L + 1)]
        N = int(rng.integers(2, 9))
        acts = [str(rng.choice(["tanh", "sigmoid"]))] * (L - 1) + ["identity"]
        params = init_params(sizes, rng)
        X, Y = rng.normal(size=(sizes[0], N)), rng.normal(size=(sizes[-1], N))
        E, leaves = ad.mlp_graph(params, X, Y, acts)
        out, cache = mlp_forward(params, X, acts)
        assert abs(E.value - mlp_loss(out, Y)) <= 1e-14 * mlp_loss(out, Y)  # another sum order
        mine = gradients(E, leaves)
        hand = mlp_backward(params, cache, Y, acts)
        oracle = mlp_gradients_torch(params, X, Y, acts)
        for got, want, other in zip(mine, [a for p in hand for a in p],
                                    [a for p in oracle for a in p]):
            assert_same(got, want, f"W or b, seed {seed}")
            assert_same(got, other, f"W or b, seed {seed}")


def test_gradients_name_a_tensor_outside_the_graph_and_a_wrong_G():
    x = ad.Tensor(np.ones((2, 3)), name="x")
    y = ad.tanh(x).sum(axis=1)
    with pytest.raises(ValueError, match="not in the graph"):
        gradients(y, [ad.Tensor(np.ones(2), name="z")])
    with pytest.raises(ValueError, match=r"G has shape \(3,\)"):
        gradients(y, [x], np.ones(3))


def test_the_array_comparison_catches_an_unsummed_or_transposed_gradient():
    W, A, b = np.arange(4.0).reshape(2, 2), np.ones((2, 3)), np.zeros((2, 1))
    tensors = [ad.Tensor(v, name=n) for v, n in zip((W, A, b), "WAb")]
    dW, dA, db = gradients(ad.tanh(tensors[0] @ tensors[1] + tensors[2]).sum(), tensors)
    leaves = [torch.tensor(v, dtype=f64, requires_grad=True) for v in (W, A, b)]
    torch.tanh(leaves[0] @ leaves[1] + leaves[2]).sum().backward()
    assert_same(db, leaves[2].grad.numpy(), "b")
    assert_same(dW, leaves[0].grad.numpy(), "W")
    unsummed = np.broadcast_to(db, (2, 3)) / 3      # the broadcast shape, not b's
    with pytest.raises(AssertionError, match="shape"):
        assert_same(unsummed, leaves[2].grad.numpy(), "b")
    with pytest.raises(AssertionError, match="relative error"):
        assert_same(dW.T, leaves[0].grad.numpy(), "W")   # square: only the values tell


# ------------------------------------------------------------------ the chapter's figures


def test_engine_agreement_figure():
    losses = {"net 1": np.array([1.0, 0.5, 0.25]), "net 2": np.array([2.0, 1.0, 0.9])}
    gaps = {"net 1": np.array([0.0, 1e-16, 2e-16]), "net 2": np.array([0.0, 0.0, 1e-16])}
    fig = figures.engine_agreement_figure(losses, losses, gaps)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    assert len(fig.axes[0].lines) == 4 and len(fig.axes[1].lines) == 2
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["net 1", "net 2"]


def test_growth_figure():
    depths = np.arange(1, 5)
    fig = figures.growth_figure(depths, {"SymPy": depths ** 2, "tape": 3 * depths})
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert [line.get_label() for line in fig.axes[0].lines] == ["SymPy", "tape"]
    assert fig.axes[0].get_xscale() == fig.axes[0].get_yscale() == "log"
