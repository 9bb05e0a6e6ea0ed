"""The autodiff assignment (``solutions/autodiff/autodiff.ipynb``), declared task by task.

The student completes the chapter's array engine (:mod:`backpropbook.autodiff`): a backward
function is called as ``fn(G, *input_values, value=node_value, **attrs)`` and returns one
gradient per input, each of its input's shape, for a scalar L downstream with G = dL/dvalue.

- ``add_backward(G, a, b, value)``: broadcasting addition, 0-D to 3-D;
- ``matmul_backward(G, A, B, value)``: the matrix product;
- ``sum_backward(G, a, value, axis, keepdims)``: the sum over an axis, or over every entry;
- ``backward(nodes, output, G)``: the reverse sweep over a graph as ``graph()`` writes it,
  returning ``{name: dL/dnode}`` for L = sum(G * output). Its graphs are random: trees (every
  node used once) in one test cell, graphs with shared nodes in the other. They use only the
  chapter's elementwise operations (``VJPS``), so that the sweep is graded apart from tasks 1-3;
  their dict comes shuffled, with names that do not give the order away.

The oracles are torch.autograd in float64, of the same operations written here in torch (for
the sweep: the graph rebuilt node by node from its data). The mistakes are small functions that
compute the answers of the typical mistakes; for the sweep, a sweep written here with one defect
(an overwritten gradient, a wrong order, a missing chain-rule factor ...).

The tolerance is ten significant digits: a centered difference (about eight) cannot pass.
"""

import numpy as np

from backpropbook import autodiff as ad
from backpropbook.selfcheck import Arrays, Gradients
from backpropgrader.engine import Assignment, Mistake, Task

RTOL, ATOL = 1e-10, 1e-12
# The book's reference code and torch. backpropbook.autodiff stays: the student's sweep uses
# its VJPS and topological_order, and it holds no answer.
WITHHELD = ("backpropbook.layers", "backpropbook.mlp", "backpropbook.twolayer",
            "backpropbook.vector", "backpropbook.conventions", "backpropbook.oracles",
            "backpropbook.gradcheck", "backpropbook.symbolic_matrix", "torch")
BROADCAST = ("a broadcast in the forward pass is a sum in the backward pass: sum G over every "
             "axis along which {x} was stretched")
CHAIN = ("the chain-rule factor G is missing: {what} is G times the local derivative, not the "
         "local derivative alone")


def _torch():
    import torch  # only the oracles need it

    return torch


def _tensor(value, grad=False):
    torch = _torch()
    return torch.tensor(np.asarray(value, dtype=float), dtype=torch.float64, requires_grad=grad)


def _numpy(tensor):
    return tensor.detach().numpy().copy()


def _vjp(forward, G, *inputs):
    """(dL/d input for each input) by torch.autograd, L = sum(G * forward(*inputs))."""
    leaves = [_tensor(x, True) for x in inputs]
    (_tensor(G) * forward(*leaves)).sum().backward()
    return tuple(_numpy(leaf.grad) for leaf in leaves)


def _wrong(message, answer):
    """A mistake whose wrong answer on this case is ``answer`` (computed by the caller)."""
    return Mistake(message, lambda *args, **extras: answer)


def _attempt(formulas, shapes):
    """[Mistake] for each (message, thunk) whose thunk computes arrays of the right ``shapes``:
    on other shapes the mistake fails on the shape, with the kind's hint."""
    out = []
    for message, thunk in formulas:
        try:
            answer = thunk()
        except ValueError:  # NumPy refuses the shapes
            continue
        if tuple(np.shape(x) for x in answer) == tuple(shapes):
            out.append(_wrong(message, answer))
    return out


def _sizes(rng, count, low=2, high=6):
    """``count`` different ints in [low, high): a stretched axis is never confused with
    another of the same size."""
    return [int(v) for v in rng.choice(np.arange(low, high), size=count, replace=False)]


# --------------------------------------------------------------------------------------------
# Task 1: broadcasting addition
# --------------------------------------------------------------------------------------------


def _add_oracle(G, a, b, value):
    return _vjp(lambda x, y: x + y, G, a, b)


def _summed(G, shape, reduce=np.sum):
    """G reduced (summed, or averaged) back to ``shape`` over the axes broadcasting made."""
    leading = tuple(range(G.ndim - len(shape)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1)
    out = reduce(G, axis=leading) if leading else G
    return reduce(out, axis=stretched, keepdims=True) if stretched else out


def _one_copy(G, shape):
    """G read at the first copy of each stretched entry, instead of summed over the copies."""
    out = G[(0,) * (G.ndim - len(shape))]
    index = tuple(slice(0, 1) if n == 1 else slice(None) for n in shape)
    return out[index]


def _add_mistakes(G, a, b, value):
    shape_a, shape_b = np.shape(a), np.shape(b)
    ones = np.ones_like(G)
    return [
        _wrong("G is averaged over the copies of a stretched entry instead of summed: each copy "
               "adds its own term to L, and " + BROADCAST.format(x="the input"),
               (_summed(G, shape_a, np.mean), _summed(G, shape_b, np.mean))),
        _wrong("G is read at one copy of a stretched entry only: the entry reaches L through "
               "every copy, and " + BROADCAST.format(x="the input"),
               (_one_copy(G, shape_a), _one_copy(G, shape_b))),
        _wrong("every entry of the gradient is the sum of all of G: sum only over the axes "
               "along which the input was stretched",
               (np.full(shape_a, G.sum()), np.full(shape_b, G.sum()))),
        _wrong(CHAIN.format(what="each gradient"),
               (_summed(ones, shape_a), _summed(ones, shape_b))),
    ]


def _add_cases(rng):
    """Broadcasts of every kind: a row, a column and a row, a scalar, 3-D with a column,
    a layer's bias (n, N) + (n, 1), both stretched, size-1 inputs, and two equal shapes."""
    p, m, n = _sizes(rng, 3)
    N = int(rng.integers(2, 7))
    pairs = [((m, n), (n,)), ((m, 1), (1, n)), ((), (m, n)), ((p, m, n), (m, 1)),
             ((m, N), (m, 1)), ((m, n), (m, n)), ((n,), (p, m, n)), ((p, 1, n), (m, 1)),
             ((1,), (m, n)), ((p, m, n), ()), ((1, 1), (n,))]
    cases = []
    for shape_a, shape_b in pairs:
        a, b = rng.normal(size=shape_a), rng.normal(size=shape_b)
        value = a + b
        cases.append({"G": rng.normal(size=value.shape), "a": a, "b": b, "value": value})
    return cases


def _add_visible():
    a = np.array([[[0.5, -1.0, 2.0]], [[1.5, 0.25, -0.5]]])  # (2, 1, 3)
    b = np.array([[1.0], [-2.0], [0.5], [3.0]])  # (4, 1)
    value = a + b
    G = np.arange(1.0, value.size + 1).reshape(value.shape) / 4.0 - 2.0
    return {"G": G, "a": a, "b": b, "value": value}


def _add_hint(x):
    return f" ({x} has the input's shape: {BROADCAST.format(x='it')})"


ADD_BACKWARD = Task(
    name="add_backward",
    params=("G", "a", "b", "value"),
    kind=Arrays(("dA", "dB"), hints=(_add_hint("dA"), _add_hint("dB"))),
    cases=_add_cases,
    oracle=_add_oracle,
    mistakes=_add_mistakes,
    visible=(_add_visible(),),
    points=4,
    rtol=RTOL,
    atol=ATOL,
    withheld=WITHHELD,
    unchanged=("G", "a", "b", "value"),
    describe=lambda c: (f"add_backward with a of shape {np.shape(c['a'])} and b of shape "
                        f"{np.shape(c['b'])}"),
    rank=lambda c: np.shape(c["a"]) == np.shape(c["b"]),  # a real broadcast first
)

# --------------------------------------------------------------------------------------------
# Task 2: the matrix product
# --------------------------------------------------------------------------------------------


def _matmul_oracle(G, A, B, value):
    return _vjp(lambda X, Y: X @ Y, G, A, B)


def _matmul_mistakes(G, A, B, value):
    """The wrong products whose shapes fit this case (on non-square shapes most do not: they
    fail on shapes, with the hint)."""
    ones = np.ones_like(G)
    return _attempt([
        (CHAIN.format(what="dA (and dB)"), lambda: (ones @ B.T, A.T @ ones)),
        ("no transposes: dA = G·B and dB = A·G; each entry A_ip reaches L through the row i "
         "of value, with B_pj as its factor: the sum over j pairs G with B transposed",
         lambda: (G @ B, A @ G)),
        ("the gradients are transposed: dA and dB have the shapes of A and B, (m, k) and "
         "(k, n), and on a square matrix a transposed gradient has the right shape but the "
         "wrong entries", lambda: (B @ G.T, G.T @ A)),
        ("dA and dB are swapped: matmul_backward returns (dA, dB), dA of A's shape",
         lambda: (A.T @ G, G @ B.T)),
        ("the factors are in the wrong order: a matrix product does not commute; dA = Bᵀ·G "
         "and dB = G·Aᵀ have the wrong entries even where the shapes fit",
         lambda: (B.T @ G, G @ A.T)),
    ], (A.shape, B.shape))


def _matmul_cases(rng):
    """(m, k) @ (k, n) with m, k, n all different; square; a column (k, 1); a row (1, k);
    k = 1 (an outer product); m = 1 and n = 1 (a dot product)."""
    m, k, n = _sizes(rng, 3, 2, 7)
    s = int(rng.integers(2, 6))
    shapes = [(m, k, n), (n, m, k), (s, s, s), (m, k, 1), (1, k, n), (m, 1, n), (1, k, 1),
              (k, m, m), (n, n, k)]
    cases = []
    for rows, inner, cols in shapes:
        A, B = rng.normal(size=(rows, inner)), rng.normal(size=(inner, cols))
        cases.append({"G": rng.normal(size=(rows, cols)), "A": A, "B": B, "value": A @ B})
    return cases


def _matmul_visible():
    A = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]])  # (3, 2)
    B = np.array([[2.0, -1.0, 0.5, 1.0], [0.0, 1.5, -2.0, 0.75]])  # (2, 4)
    G = np.array([[1.0, 0.5, -1.0, 2.0], [-0.5, 1.5, 0.25, -2.0], [3.0, -1.0, 0.5, 1.0]])
    return {"G": G, "A": A, "B": B, "value": A @ B}


def _matmul_hint(x, of):
    return (f" ({x} has {of}'s shape, a gradient has the shape of the variable it is taken "
            "with respect to: write down the shapes of G, A and B, and a product that gives "
            "it)")


MATMUL_BACKWARD = Task(
    name="matmul_backward",
    params=("G", "A", "B", "value"),
    kind=Arrays(("dA", "dB"), hints=(_matmul_hint("dA", "A"), _matmul_hint("dB", "B"))),
    cases=_matmul_cases,
    oracle=_matmul_oracle,
    mistakes=_matmul_mistakes,
    visible=(_matmul_visible(),),
    points=4,
    rtol=RTOL,
    atol=ATOL,
    withheld=WITHHELD,
    unchanged=("G", "A", "B", "value"),
    describe=lambda c: f"matmul_backward with A of shape {c['A'].shape}, B {c['B'].shape}",
    rank=lambda c: len(set(c["A"].shape + c["B"].shape)) == 1,  # non-square first
)

# --------------------------------------------------------------------------------------------
# Task 3: the sum over an axis
# --------------------------------------------------------------------------------------------


def _sum_oracle(G, a, value, axis, keepdims):
    torch = _torch()

    def total(x):
        return x.sum() if axis is None and not keepdims else torch.sum(
            x, dim=tuple(range(x.ndim)) if axis is None else axis, keepdim=keepdims)

    return _vjp(total, G, a)


def _sum_mistakes(G, a, value, axis, keepdims):
    shape = np.shape(a)
    count = np.size(a) // max(np.size(value), 1)
    restored = G if axis is None or keepdims else np.expand_dims(G, axis)
    return _attempt([
        ("the summed axis is not put back before G is copied: with keepdims=False, G has lost "
         "it, and NumPy's broadcasting lines G's axes up with a's from the right, which copies "
         "G along the wrong axis; np.expand_dims(G, axis) puts it back",
         lambda: (np.broadcast_to(G, shape).copy(),)),
        ("dA is divided by the number of entries summed: that is the backward pass of the "
         "mean; the sum's local derivative is 1",
         lambda: (np.broadcast_to(restored, shape) / count,)),
        (CHAIN.format(what="dA"), lambda: (np.ones(shape),)),
    ], (shape,))


def _sum_cases(rng):
    """1-D to 3-D arrays with different sizes, summed over None, 0, 1 and -1 with and without
    keepdims, and square matrices summed over their last axis, where a G that was not given
    its axis back broadcasts without an error, along the wrong axis."""
    p, m, n = _sizes(rng, 3)
    s = int(rng.integers(2, 6))
    specs = [((n,), None, False), ((n,), 0, False), ((m, n), None, False),
             ((m, n), None, True), ((m, n), 0, False), ((m, n), 1, True), ((m, n), -1, False),
             ((p, m, n), 1, False), ((p, m, n), 0, True), ((p, m, n), -1, False),
             ((p, m, n), None, True), ((s, s), -1, False), ((s, s), 1, False),
             ((p, s, s), 2, False)]
    cases = []
    for shape, axis, keepdims in specs:
        a = rng.normal(size=shape)
        value = a.sum(axis=axis, keepdims=keepdims)
        cases.append({"G": rng.normal(size=np.shape(value)), "a": a, "value": value,
                      "axis": axis, "keepdims": keepdims})
    return cases


def _sum_visible():
    """A square matrix summed over its last axis (where a G without its axis back broadcasts
    along the wrong axis, silently), then (2, 3, 4) over axis 1."""
    square = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0], [2.0, 0.5, 1.5]])
    cube = np.arange(24.0).reshape(2, 3, 4) / 8.0 - 1.0
    return ({"G": np.array([1.0, -0.5, 2.0]), "a": square, "value": square.sum(axis=-1),
             "axis": -1, "keepdims": False},
            {"G": np.array([[1.0, -0.5, 2.0, 0.25], [-1.5, 0.5, 1.0, 3.0]]), "a": cube,
             "value": cube.sum(axis=1), "axis": 1, "keepdims": False})


SUM_BACKWARD = Task(
    name="sum_backward",
    params=("G", "a", "value", "axis", "keepdims"),
    kind=Arrays(("dA",), hints=(" (dA has a's shape: each entry of a is added into one entry "
                                "of the sum, whose gradient it receives)",)),
    cases=_sum_cases,
    oracle=_sum_oracle,
    mistakes=_sum_mistakes,
    visible=_sum_visible(),
    points=4,
    rtol=RTOL,
    atol=ATOL,
    withheld=WITHHELD,
    unchanged=("G", "a", "value"),
    describe=lambda c: (f"sum_backward with a of shape {c['a'].shape}, axis={c['axis']}, "
                        f"keepdims={c['keepdims']}"),
    rank=lambda c: (c["axis"] is None, c["keepdims"]),  # a lost axis first
)

# --------------------------------------------------------------------------------------------
# Task 4: the reverse sweep over a graph of elementwise operations
# --------------------------------------------------------------------------------------------


def _torch_ops():
    torch = _torch()
    from backpropbook.oracles import TORCH_ELEMENTWISE

    return {**TORCH_ELEMENTWISE, "add": torch.add, "matmul": torch.matmul}


def _sweep_oracle(nodes, output, G, _names):
    """The graph rebuilt in torch from its data, node by node (without the package's order),
    and every node's gradient by torch.autograd."""
    ops, built = _torch_ops(), {}

    def build(name):
        if name not in built:
            node = nodes[name]
            if not node["inputs"]:
                built[name] = _tensor(node["value"], True)
            else:
                built[name] = ops[node["op"]](*map(build, node["inputs"]), **node["attrs"])
                built[name].retain_grad()
        return built[name]

    (_tensor(G) * build(output)).sum().backward()
    return {name: _numpy(built[name].grad) for name in _names}


def _sweep(nodes, output, G, order="reverse", accumulate=True, chain=True, start=None):
    """The sweep with the VJPS, and one defect if asked: ``order`` "reverse" (right),
    "forward" (topological, not reversed), "dict" (the reverse of the dict's order) or
    "breadth" (breadth-first from the output); ``accumulate=False`` overwrites; ``chain=False``
    hands on the local derivative alone; ``start`` replaces G."""
    topological = ad.topological_order(output, lambda name: nodes[name]["inputs"])
    visit = {"reverse": topological[::-1], "forward": topological,
             "dict": [n for n in reversed(list(nodes)) if n in topological],
             "breadth": _breadth_first(nodes, output)}[order]
    grads = {name: np.zeros_like(nodes[name]["value"]) for name in topological}
    grads[output] = np.asarray(G if start is None else start, dtype=float) + 0.0
    for name in visit:
        node = nodes[name]
        if not node["inputs"]:
            continue
        upstream = grads[name] if chain else np.ones_like(grads[name])
        local = ad.VJPS[node["op"]](upstream, *(nodes[i]["value"] for i in node["inputs"]),
                                    value=node["value"], **node["attrs"])
        for i, g in zip(node["inputs"], local):
            grads[i] = grads[i] + g if accumulate else g
    return grads


def _breadth_first(nodes, output):
    order, queue, seen = [], [output], {output}
    while queue:
        name = queue.pop(0)
        order.append(name)
        for i in nodes[name]["inputs"]:
            if i not in seen:
                seen.add(i)
                queue.append(i)
    return order


def _sweep_mistakes(nodes, output, G, _names):
    # Inputs first, breadth-first and the dict's order leave much the same gradients
    # incomplete: one message names the three.
    order = ("the nodes are visited in the wrong order (the order of the dict, inputs first, or "
             "breadth-first from the output), so that a node passes its gradient on before "
             "every node that uses it has added its share; visit the nodes outputs first, in "
             "the reverse of a topological order (the dict comes in any order: the tests "
             "shuffle it)")
    return [Mistake(message, lambda n, o, g, _names, k=kwargs: _sweep(n, o, g, **k))
            for message, kwargs in [
        ("a gradient is overwritten instead of accumulated: a node used twice (x * x, or a "
         "node feeding two operations) receives a gradient from every use, and they add up "
         "(+=)", {"accumulate": False}),
        (order, {"order": "forward"}),
        (order, {"order": "breadth"}),
        (order, {"order": "dict"}),
        (CHAIN.format(what="what a node hands each input") + " (call the backward function with "
         "the node's own gradient)", {"chain": False}),
        ("the sweep starts from ones instead of G: the output's gradient is G, since "
         "L = sum(G * output)", {"start": np.ones_like(np.asarray(G, dtype=float))}),
    ]]


SHAPES = ((), (3,), (2, 3), (4, 1), (2, 3, 2))
UNARY = ("scale", "neg", "exp", "log", "tanh", "sigmoid", "relu")


def _apply(rng, op, *inputs):
    """The Tensor of ``op`` on ``inputs``, or None where it would be ill-conditioned."""
    if op == "mul":
        return ad.mul(*inputs)
    (x,) = inputs
    if op == "scale":
        return ad.scale(x, float(rng.choice([-2.0, -0.5, 1.5, 3.0])))
    if op == "log" and np.min(x.value, initial=np.inf) <= 0.2:
        return None  # log of positive values only, away from 0
    if op == "exp" and np.max(np.abs(x.value), initial=0.0) > 3.0:
        return None
    if op == "relu" and np.min(np.abs(x.value), initial=np.inf) < 1e-3:
        return None  # never at the kink
    return getattr(ad, op)(x)


def _random_graph(rng, shared):
    """A random graph of elementwise operations on one random shape, 4 to 9 operations: a tree
    (every node used once), or with shared nodes (inputs drawn from every node made so far; a
    variable multiplied by itself and a subexpression used twice, always)."""
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    leaves = [ad.Tensor(rng.normal(0.0, 1.0, size=shape), name=name)
              for name in ("x", "w", "u", "v")[:int(rng.integers(2, 5))]]
    leaves.append(ad.Tensor(rng.uniform(0.5, 2.0, size=shape), name="p"))  # positive: for log
    pool, made, steps = list(leaves), [], int(rng.integers(4, 10))
    while len(made) < steps or (not shared and len(pool) > 1):
        binary = len(pool) >= 2 and (rng.random() < 0.45 or len(made) >= steps)
        k = 2 if binary else 1
        if shared:  # any node made so far, again and again
            picks = [pool[int(rng.integers(len(pool)))] for _ in range(k)]
        else:  # each node used once: taken out of the pool
            picks = [pool.pop(int(rng.integers(len(pool)))) for _ in range(k)]
        node = _apply(rng, "mul" if binary else str(rng.choice(UNARY)), *picks)
        if node is None:
            if not shared:
                pool.extend(picks)
            continue
        made.append(node)
        pool.append(node)
    if not shared:
        (output,) = pool
        return output
    unused = [n for n in made if not any(n in m.inputs for m in made)]
    output = unused[0]
    for n in unused[1:]:
        output = ad.mul(output, n)
    x = leaves[0]
    both = ad.tanh(ad.mul(x, x))
    return ad.mul(ad.mul(output, ad.sigmoid(both)), ad.neg(both))


def _renamed(nodes, rng):
    """The graph's dict shuffled, its unnamed nodes renamed so that names tell no order."""
    labels = iter(f"n{k}" for k in rng.permutation(len(nodes)) + 1)
    names = {name: name if not name.startswith("t") else next(labels) for name in nodes}
    items = list(nodes.items())
    return {names[name]: {**node, "inputs": [names[i] for i in node["inputs"]]}
            for name, node in (items[k] for k in rng.permutation(len(items)))}, names


def _sweep_case(rng, shared):
    output = _random_graph(rng, shared)
    nodes, names = _renamed(ad.graph(output), rng)
    out = names[list(names)[-1]]  # graph() puts the output last
    G = rng.normal(size=output.shape)
    return {"nodes": nodes, "output": out, "G": G, "_names": sorted(nodes)}


def _sweep_cases(shared):
    def cases(rng):
        return [_sweep_case(rng, shared) for _ in range(12)]
    return cases


def _visible_sweep(shared):
    """Small fixed graphs, in graph()'s order but with the dict reversed."""
    x = ad.Tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], name="x")
    w = ad.Tensor([[1.0, 0.5, -0.5], [2.0, -1.5, 0.25]], name="w")
    if shared:
        q = ad.mul(x, w)
        q.name = "q"
        output = ad.mul(ad.tanh(q), ad.mul(q, x))
    else:
        p = ad.Tensor([[1.0, 2.0, 0.5], [1.5, 0.75, 3.0]], name="p")
        output = ad.mul(ad.tanh(ad.mul(x, w)), ad.log(p))
        output = ad.neg(ad.sigmoid(output))
    nodes = ad.graph(output)
    items = list(nodes.items())[::-1]
    G = np.array([[1.0, -2.0, 0.5], [0.25, 1.5, -1.0]])
    return {"nodes": dict(items), "output": items[0][0], "G": G, "_names": sorted(nodes)}


def _describe_sweep(case):
    nodes = case["nodes"]
    shape = np.shape(nodes[case["output"]]["value"])
    ops = sorted({n["op"] for n in nodes.values() if n["inputs"]})
    return (f"backward on a graph of {len(nodes)} nodes of shape {shape} (operations "
            f"{', '.join(ops)}; output {case['output']!r})")


def _sweep_task(shared, points):
    key = "backward_shared" if shared else "backward_tree"
    return Task(
        name="backward",
        key=key,
        grade_id=f"test_{key}",
        params=("nodes", "output", "G"),
        kind=Gradients(),
        cases=_sweep_cases(shared),
        oracle=_sweep_oracle,
        mistakes=_sweep_mistakes,
        visible=(_visible_sweep(shared),),
        points=points,
        rtol=RTOL,
        atol=ATOL,
        withheld=WITHHELD,
        unchanged=("nodes", "G"),
        describe=_describe_sweep,
        rank=lambda c: -len(c["nodes"]),  # the largest graph first
    )


BACKWARD_TREE = _sweep_task(False, 4)
BACKWARD_SHARED = _sweep_task(True, 4)

ASSIGNMENT = Assignment("autodiff", [ADD_BACKWARD, MATMUL_BACKWARD, SUM_BACKWARD, BACKWARD_TREE,
                                     BACKWARD_SHARED])
