"""The vector-backprop assignment: its release, its grading module, and a real nbgrader course.

- the release in exercises/ is exactly what nbgrader generates from solutions/ and gives away
  no solution and no hidden test;
- the grading module (backpropbook.grading.vector) passes the instructor's solutions silently
  and fails each typical mistake (transposed dW, W·δ for Wᵀ·δ, a Jacobian on the wrong side, a
  missing g′, the wrong-sign O(O − 1), off by a layer, wrong shapes, hard-coded answers, calls
  to the package's reference code or to torch's autograd) with a message that names it;
- in a temporary nbgrader course, the instructor notebook scores full marks, the untouched
  release scores 0, and each submission with a typical mistake loses exactly the points of the
  tests it should fail, with the right message in the autograded notebook. All submissions are
  graded by one run of the sandboxed grading command (``python -m backpropgrader``).
"""

import re
import textwrap
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import sympy as sp

import backpropbook.mlp
from backpropbook.grading import vector as grading
from nbgrader_course import (
    HIDDEN_SEED,
    REPO,
    assert_release_gives_nothing_away,
    assert_release_is_generated,
    autograded_ids,
    cells_by_grade_id,
    code,
    grade_course,
    hidden_seed,
    nbgrader_meta,
    output_text,
    read,
    run_answers,
    solution_sources,
)

pytestmark = [pytest.mark.vector]

ASSIGNMENT = NOTEBOOK = "vector"
SOURCE = REPO / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
RELEASE = REPO / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"

# test cell -> (check function, the student's function it checks)
CHECKS = {
    "test_activation_jacobian": (grading.check_activation_jacobian, "activation_jacobian"),
    "test_forward": (grading.check_forward, "forward"),
    "test_network_jacobian": (grading.check_network_jacobian, "network_jacobian"),
    "test_backward_jacobian": (grading.check_backward_jacobian, "backward_jacobian"),
    "test_backward_hadamard": (grading.check_backward_hadamard, "backward_hadamard"),
    "test_output_delta": (grading.check_output_delta, "output_delta"),
    "test_hidden_delta": (grading.check_hidden_delta, "hidden_delta"),
    "test_symbolic_jacobian": (grading.check_symbolic_jacobian, "symbolic_jacobian"),
}
# The student's functions that call another of the student's functions.
USES = {"network_jacobian": {"activation_jacobian"}, "backward_jacobian": {"activation_jacobian"}}
# A student's 64-bit seed, as the grading command sets GRADING_SEED.
STUDENT_SEED = 0xC0FFEE_5EED_0BAD_F00D


def _literal(value):
    return "np.array(" + repr(np.asarray(value).tolist()) + ")"


def _visible_literals():
    v = grading.VISIBLE
    z, a = grading._forward(v["params"], v["x"], v["activation"])
    grads = grading._backward(v["params"], z, a, v["t"], v["activation"])
    z_src = "[" + ", ".join(_literal(u) for u in z) + "]"
    a_src = "[" + ", ".join(_literal(u) for u in a) + "]"
    g_src = "[" + ", ".join(f"({_literal(dW)}, {_literal(db)})" for dW, db in grads) + "]"
    return z_src, a_src, g_src


_Z, _A, _GRADS = _visible_literals()

HADAMARD_HEAD = '''
def backward_hadamard(params, z, a, t, activation):
    g_prime = ACTIVATIONS[activation].g_prime
    L = len(params)
    grads = [None] * L
    delta = g_prime(z[L - 1]) * (a[L] - t)
'''


def hadamard(body):
    """A backward_hadamard whose common first lines are followed by ``body``."""
    return code(HADAMARD_HEAD) + "\n" + textwrap.indent(code(body), "    ")


def hadamard_loop(grad_line="(np.outer(delta, a[l - 1]), delta.copy())",
                  recursion="g_prime(z[l - 2]) * (params[l - 1][0].T @ delta)"):
    return hadamard(f'''
        for l in range(L, 0, -1):
            grads[l - 1] = {grad_line}
            if l > 1:
                delta = {recursion}
        return grads
        ''')


JACOBIAN_HEAD = '''
def backward_jacobian(params, z, a, t, activation):
    L = len(params)
    grads = [None] * L
    dE_da = a[L] - t
    for l in range(L, 0, -1):
        W, _ = params[l - 1]
        D = activation_jacobian(z[l - 1], activation)
'''


def jacobian(body):
    """A backward_jacobian whose loop ends with ``body``."""
    return code(JACOBIAN_HEAD) + "\n" + textwrap.indent(code(body), "        ") + \
        "\n    return grads"


@dataclass
class Mistake:
    """Student code for some solution cells, the test cells it must fail, and their messages."""

    sources: dict
    messages: dict  # failing test cell -> substrings its message must contain
    in_notebook: bool = True  # also graded in the real nbgrader course
    extra_seeds: tuple = (0, (STUDENT_SEED, 7))  # more seeds for the checks it fails
    # Substrings for the in-notebook message where the sandbox says it differently (stubs).
    notebook_messages: dict = None


MISTAKES = {
    "transposed_dW": Mistake(
        {"backward_hadamard": hadamard_loop(
            grad_line="(np.outer(a[l - 1], delta), delta.copy())  # a[l-1] delta^T")},
        {"test_backward_hadamard": ["dW is transposed", "δ[l]·a[l−1]ᵀ"]},
    ),
    "W_not_transposed": Mistake(
        {"backward_jacobian": jacobian('''
            delta = D.T @ dE_da
            grads[l - 1] = (np.outer(delta, a[l - 1]), delta)
            if l > 1:
                dE_da = W @ delta  # W[l] delta instead of W[l]^T delta
            ''')},
        {"test_backward_jacobian": ["wrong product order", "W[l+1]ᵀ·δ[l+1]"]},
    ),
    "activation_jacobian_of_g": Mistake(
        {"activation_jacobian": code('''
            def activation_jacobian(z, activation):
                return np.diag(ACTIVATIONS[activation].g(z))  # g instead of g'
            ''')},
        {"test_activation_jacobian": ["the diagonal holds g(z)"],
         # the other two use the student's activation_jacobian: they fail with it
         "test_network_jacobian": ["∂a[L]/∂x"],
         "test_backward_jacobian": ["dW["]},
    ),
    "network_jacobian_missing_D": Mistake(
        {"network_jacobian": code('''
            def network_jacobian(params, z, activation):
                J = np.eye(params[0][0].shape[1])
                for W, _ in params:
                    J = W @ J  # D[l] forgotten
                return J
            ''')},
        {"test_network_jacobian": ["missing activation derivative", "D[l]·W[l]"]},
    ),
    "forward_no_bias": Mistake(
        {"forward": code('''
            def forward(params, x, activation):
                g = ACTIVATIONS[activation].g
                z, a = [], [x]
                for W, b in params:
                    z.append(W @ a[-1])  # b[l] forgotten
                    a.append(g(z[-1]))
                return z, a
            ''')},
        {"test_forward": ["the bias is left out"]},
    ),
    "output_delta_wrong_sign": Mistake(
        {"output_delta": code('''
            def output_delta(O, t):
                return (O - t) * O * (O - 1)  # the factor of the old lecture notes
            ''')},
        {"test_output_delta": ["wrong sign", "O_k(O_k − 1)"]},
    ),
    "hidden_delta_W_not_transposed": Mistake(
        {"hidden_delta": code('''
            def hidden_delta(O_hidden, W_next, delta_next):
                return O_hidden * (1 - O_hidden) * (W_next @ delta_next)
            ''')},
        {"test_hidden_delta": ["wrong product order", "W_nextᵀ·δ_next"]},
    ),
    "symbolic_transposed": Mistake(
        {"symbolic_jacobian": code('''
            def symbolic_jacobian(W, b, x):
                a = (W * x + b).applyfunc(lambda u: 1 / (1 + sp.exp(-u)))
                return a.jacobian(x).T
            ''')},
        {"test_symbolic_jacobian": ["transposed", "one row per output a_i"]},
    ),
    "hard_coded": Mistake(
        {
            "forward": code(f'''
                def forward(params, x, activation):
                    return {_Z}, {_A}
                '''),
            "backward_hadamard": code(f'''
                def backward_hadamard(params, z, a, t, activation):
                    return {_GRADS}
                '''),
        },
        {"test_forward": ["hard-coded"], "test_backward_hadamard": ["hard-coded"]},
    ),
    "package_reference": Mistake(
        {"backward_hadamard": code('''
            from backpropbook.mlp import mlp_backward

            def backward_hadamard(params, z, a, t, activation):
                cache = ([u[:, None] for u in z], [u[:, None] for u in a])
                grads = mlp_backward([(W, b[:, None]) for W, b in params], cache, t[:, None],
                                     activation)
                return [(dW, db[:, 0]) for dW, db in grads]
            ''')},
        {"test_backward_hadamard": ["reference implementation", "backpropbook.mlp.mlp_backward"]},
    ),
    "torch_autograd": Mistake(
        {"backward_jacobian": code('''
            def backward_jacobian(params, z, a, t, activation):
                import torch

                g = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
                leaves = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
                          for W, b in params]
                out = torch.tensor(a[0])
                for W, b in leaves:
                    out = g(W @ out + b)
                (0.5 * ((out - torch.tensor(t)) ** 2).sum()).backward()
                return [(W.grad.numpy(), b.grad.numpy()) for W, b in leaves]
            ''')},
        {"test_backward_jacobian": ["torch"]},
        notebook_messages={"test_backward_jacobian": ["torch is not available while grading"]},
    ),
    # Graded by the unit tests only (the notebook course above takes long enough).
    "jacobian_wrong_side": Mistake(  # its visible test fails with NumPy's shape error
        {"network_jacobian": code('''
            def network_jacobian(params, z, activation):
                J = np.eye(params[0][0].shape[1])
                for (W, _), z_l in zip(params, z):
                    J = J @ activation_jacobian(z_l, activation) @ W
                return J
            ''')},
        {"test_network_jacobian": ["multiplied on the wrong side", "on the left"]},
        in_notebook=False,
    ),
    "network_jacobian_transposed": Mistake(
        {"network_jacobian": code('''
            def network_jacobian(params, z, activation):
                J = np.eye(params[0][0].shape[1])
                for (W, _), z_l in zip(params, z):
                    J = activation_jacobian(z_l, activation) @ W @ J
                return J.T
            ''')},
        {"test_network_jacobian": ["transposed", "(n_L, n_0)"]},
        in_notebook=False,
    ),
    "vjp_wrong_side": Mistake(
        {"backward_jacobian": code('''
            def backward_jacobian(params, z, a, t, activation):
                L = len(params)
                grads = [None] * L
                delta = activation_jacobian(z[L - 1], activation).T @ (a[L] - t)
                for l in range(L, 0, -1):
                    grads[l - 1] = (np.outer(delta, a[l - 1]), delta)
                    if l > 1:
                        J = params[l - 1][0] @ activation_jacobian(z[l - 2], activation)
                        delta = J @ delta  # J = dz[l]/dz[l-1]; the VJP needs J.T @ delta
                return grads
            ''')},
        {"test_backward_jacobian": ["multiplied on the wrong side", "vector–Jacobian product"]},
        in_notebook=False,
    ),
    "hadamard_missing_g_prime": Mistake(
        {"backward_hadamard": hadamard_loop(recursion="params[l - 1][0].T @ delta")},
        {"test_backward_hadamard": ["missing activation derivative g′(z[l]) in the recursion"]},
        in_notebook=False,
    ),
    "hadamard_sign": Mistake(
        {"backward_hadamard": code('''
            def backward_hadamard(params, z, a, t, activation):
                g_prime = ACTIVATIONS[activation].g_prime
                L = len(params)
                grads = [None] * L
                delta = g_prime(z[L - 1]) * (t - a[L])  # the sign flipped
                for l in range(L, 0, -1):
                    grads[l - 1] = (np.outer(delta, a[l - 1]), delta.copy())
                    if l > 1:
                        delta = g_prime(z[l - 2]) * (params[l - 1][0].T @ delta)
                return grads
            ''')},
        {"test_backward_hadamard": ["wrong sign", "(a[L] − t)"]},
        in_notebook=False,
    ),
    "hadamard_a_of_same_layer": Mistake(
        {"backward_hadamard": hadamard_loop(grad_line="(np.outer(delta, a[l]), delta.copy())")},
        {"test_backward_hadamard": ["off by a layer", "you used a[l]"]},
        in_notebook=False,
    ),
    "hadamard_W_of_same_layer": Mistake(
        {"backward_hadamard": hadamard_loop(
            recursion="g_prime(z[l - 2]) * (params[l - 2][0].T @ delta)")},
        {"test_backward_hadamard": ["off by a layer", "W[l] where it needs W[l+1]"]},
        in_notebook=False,
    ),
    "hadamard_reversed": Mistake(
        {"backward_hadamard": hadamard(
            '''
            for l in range(L, 0, -1):
                grads[L - l] = (np.outer(delta, a[l - 1]), delta.copy())  # output layer first
                if l > 1:
                    delta = g_prime(z[l - 2]) * (params[l - 1][0].T @ delta)
            return grads
            ''')},
        {"test_backward_hadamard": ["reverse order", "layer 1 first"]},
        in_notebook=False,
    ),
    "hadamard_db_column": Mistake(
        {"backward_hadamard": hadamard_loop(
            grad_line="(np.outer(delta, a[l - 1]), delta.reshape(-1, 1))")},
        {"test_backward_hadamard": ["wrong shape", "not columns (n, 1)"]},
        in_notebook=False,
    ),
    "hadamard_pair_swapped": Mistake(
        {"backward_hadamard": hadamard_loop(grad_line="(delta.copy(), np.outer(delta, a[l - 1]))")},
        {"test_backward_hadamard": ["wrong order", "(dW, db)"]},
        in_notebook=False,
    ),
    "hadamard_modifies_z": Mistake(
        {"backward_hadamard": hadamard_loop(recursion="z[l - 2].__imul__(0) + g_prime(z[l - 2]) "
                                                      "* (params[l - 1][0].T @ delta)")},
        {"test_backward_hadamard": ["modified its arguments"]},
        in_notebook=False,
    ),
    "jacobian_calls_layers": Mistake(
        {"backward_jacobian": code('''
            from backpropbook import layers

            def backward_jacobian(params, z, a, t, activation):
                L = len(params)
                grads = [None] * L
                dA = (a[L] - t)[:, None]
                for l in range(L, 0, -1):
                    dZ = layers.activation_backward(dA, z[l - 1][:, None], activation)
                    dW, db, dA = layers.linear_backward(dZ, a[l - 1][:, None], params[l - 1][0])
                    grads[l - 1] = (dW, db[:, 0])
                return grads
            ''')},
        {"test_backward_jacobian": ["reference implementation", "backpropbook.layers."]},
        in_notebook=False,
    ),
    "activation_jacobian_vector": Mistake(
        {"activation_jacobian": code('''
            def activation_jacobian(z, activation):
                return ACTIVATIONS[activation].g_prime(z)
            '''),
         "network_jacobian": code('''
            def network_jacobian(params, z, activation):
                J = np.eye(params[0][0].shape[1])
                for (W, _), z_l in zip(params, z):
                    J = np.diag(ACTIVATIONS[activation].g_prime(z_l)) @ W @ J
                return J
            '''),
         "backward_jacobian": jacobian('''
            delta = np.diag(ACTIVATIONS[activation].g_prime(z[l - 1])).T @ dE_da
            grads[l - 1] = (np.outer(delta, a[l - 1]), delta)
            dE_da = W.T @ delta
            ''')},
        {"test_activation_jacobian": ["returns the vector g′(z)", "np.diag"]},
        in_notebook=False,
    ),
    "activation_jacobian_rows": Mistake(
        {"activation_jacobian": code('''
            def activation_jacobian(z, activation):
                return np.outer(np.ones(len(z)), ACTIVATIONS[activation].g_prime(z))
            ''')},
        {"test_activation_jacobian": ["off-diagonal entries must be 0"],
         "test_network_jacobian": [], "test_backward_jacobian": []},
        in_notebook=False,
    ),
    "forward_transposed_W": Mistake(
        {"forward": code('''
            def forward(params, x, activation):
                g = ACTIVATIONS[activation].g
                z, a = [], [x]
                for W, b in params:
                    z.append(W.T @ a[-1] + b)
                    a.append(g(z[-1]))
                return z, a
            ''')},
        {"test_forward": ["W[l] is transposed"]},
        in_notebook=False,
    ),
    "forward_without_x": Mistake(
        {"forward": code('''
            def forward(params, x, activation):
                g = ACTIVATIONS[activation].g
                z, a, prev = [], [], x
                for W, b in params:
                    z.append(W @ prev + b)
                    prev = g(z[-1])
                    a.append(prev)
                return z, a
            ''')},
        {"test_forward": ["a has L + 1 entries", "a[0] = x"]},
        in_notebook=False,
    ),
    "output_delta_missing_derivative": Mistake(
        {"output_delta": code('''
            def output_delta(O, t):
                return O - t
            ''')},
        {"test_output_delta": ["missing activation derivative"]},
        in_notebook=False,
    ),
    "hidden_delta_sign": Mistake(
        {"hidden_delta": code('''
            def hidden_delta(O_hidden, W_next, delta_next):
                return O_hidden * (O_hidden - 1) * (W_next.T @ delta_next)
            ''')},
        {"test_hidden_delta": ["wrong sign"]},
        in_notebook=False,
    ),
    "symbolic_missing_derivative": Mistake(
        {"symbolic_jacobian": code('''
            def symbolic_jacobian(W, b, x):
                return (W * x + b).jacobian(x)
            ''')},
        {"test_symbolic_jacobian": ["missing activation derivative", "diag(σ′(z))·W"]},
        in_notebook=False,
    ),
    "symbolic_new_symbols": Mistake(
        {"symbolic_jacobian": code('''
            def symbolic_jacobian(W, b, x):
                xs = sp.Matrix([sp.Symbol(str(s)) for s in x])  # without real=True
                a = (W * xs + b).applyfunc(lambda u: 1 / (1 + sp.exp(-u)))
                return a.jacobian(xs)
            ''')},
        {"test_symbolic_jacobian": ["not the ones passed in"]},
        in_notebook=False,
    ),
    "symbolic_hard_coded": Mistake(
        {"symbolic_jacobian": code('''
            def symbolic_jacobian(W, b, x):
                W, b, x = grading.layer_symbols(2, 3)
                a = (W * x + b).applyfunc(lambda u: 1 / (1 + sp.exp(-u)))
                return a.jacobian(x)
            ''')},
        {"test_symbolic_jacobian": ["hard-coded"]},
        in_notebook=False,
    ),
    "symbolic_uses_package": Mistake(
        {"symbolic_jacobian": code('''
            from backpropbook.symbolic_vector import activation_jacobian as reference

            def symbolic_jacobian(W, b, x):
                return reference(W * x + b, "sigmoid") * W
            ''')},
        {"test_symbolic_jacobian": ["reference implementation",
                                    "backpropbook.symbolic_vector.activation_jacobian"]},
        in_notebook=False,
    ),
}

# ---------------------------------------------------------------------------------------------
# The notebooks themselves
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_nb():
    return read(SOURCE)


def test_source_notebook_is_clean_and_complete(source_nb):
    import nbformat

    nbformat.validate(source_nb)
    assert (source_nb.nbformat, source_nb.nbformat_minor) == (4, 5)
    ids = [c.id for c in source_nb.cells]
    assert len(set(ids)) == len(ids) and all(ids)
    for cell in source_nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
    graded = autograded_ids(source_nb)
    assert set(graded) == set(CHECKS)
    assert sum(graded.values()) >= 20
    manual = [c for c in source_nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "markdown"]
    assert [nbgrader_meta(c)["grade_id"] for c in manual] == ["diagonal_jacobian"]
    assert nbgrader_meta(manual[0])["solution"] and nbgrader_meta(manual[0])["points"] == 2
    cells = cells_by_grade_id(source_nb)
    assert nbgrader_meta(cells["setup"])["locked"]
    for gid in CHECKS:
        lines = cells[gid].source.splitlines()
        assert re.fullmatch(r'""".+"""', lines[0]), f"{gid}: no one-line docstring first"
        begin, end = lines.index("### BEGIN HIDDEN TESTS"), lines.index("### END HIDDEN TESTS")
        assert end == len(lines) - 1 and end > begin + 1, gid
        assert all("grading.check_" in line for line in lines[begin + 1:end]), gid
        assert any(line.startswith("assert") for line in lines[:begin]), f"{gid}: no visible test"
    for gid in solution_sources(source_nb):
        stub = cells[gid].source.split("### BEGIN SOLUTION")[0]
        assert '"""' in stub, f"{gid}: no docstring stub"
    # The points in the intro's table are the cells' points.
    table = cells["intro"].source
    assert "| 6. `output_delta` and `hidden_delta`, index by index | 2 + 2 |" in table


def test_setup_cell_holds_the_visible_example(source_nb):
    """The example network of the setup cell is grading.VISIBLE's (the hard-coding detector's)."""
    ns = {}
    exec(cells_by_grade_id(source_nb)["setup"].source, ns)
    v = grading.VISIBLE
    assert np.array_equal(ns["EXAMPLE_X"], v["x"]) and np.array_equal(ns["EXAMPLE_T"], v["t"])
    assert len(ns["EXAMPLE_PARAMS"]) == len(v["params"])
    for (W, b), (W_v, b_v) in zip(ns["EXAMPLE_PARAMS"], v["params"]):
        assert np.array_equal(W, W_v) and np.array_equal(b, b_v)
    assert [W.shape for W, _ in ns["EXAMPLE_PARAMS"]] == [(2, 3), (2, 2)]


def test_release_gives_nothing_away(source_nb):
    assert_release_gives_nothing_away(source_nb, RELEASE)


# ---------------------------------------------------------------------------------------------
# The grading module on its own
# ---------------------------------------------------------------------------------------------


def test_hidden_tests_take_the_student_seed(source_nb):
    """Every hidden check gets (GRADING_SEED, its own constant); the setup cell sets it to 0."""
    cells = cells_by_grade_id(source_nb)
    ns = {}
    exec(cells["setup"].source, ns)
    assert ns["GRADING_SEED"] == 0
    assert re.search(r"^GRADING_SEED = 0  # .*seed per student", cells["setup"].source, re.M)
    constants = []
    for gid in CHECKS:
        hidden = cells[gid].source.split("### BEGIN HIDDEN TESTS")[1].splitlines()[1:-1]
        assert hidden and all(HIDDEN_SEED.search(line) for line in hidden), gid
        constants += [int(HIDDEN_SEED.search(line).group(1)) for line in hidden]
    assert len(set(constants)) == len(constants)


def test_student_seeds_draw_different_cases():
    def draw(seed):
        return [(c["sizes"], c["activation"], c["x"].tolist())
                for c in grading._network_cases(np.random.default_rng(seed))]

    assert draw((STUDENT_SEED, 2501)) == draw((STUDENT_SEED, 2501))
    assert draw((STUDENT_SEED, 2501)) != draw((STUDENT_SEED + 1, 2501))


def test_cases_are_non_square_deep_and_away_from_the_relu_kink():
    cases = grading._network_cases(np.random.default_rng((STUDENT_SEED, 2501)))
    assert {len(c["params"]) for c in cases} == set(range(1, grading.MAX_DEPTH + 1))
    assert {c["activation"] for c in cases} == set(grading.ACTIVATION_NAMES)
    non_square = [c for c in cases if len(set(c["sizes"])) == len(c["sizes"])]
    square = [c for c in cases if len(set(c["sizes"])) == 1]
    assert len(non_square) == 3 * grading.MAX_DEPTH and len(square) == 3
    for c in non_square:  # every W non-square and n_L != n_0: a transpose is a shape error
        assert all(W.shape[0] != W.shape[1] for W, _ in c["params"])
    for c in cases:
        if c["activation"] == "relu":
            z, _ = grading._forward(c["params"], c["x"], "relu")
            assert min(np.min(np.abs(u)) for u in z) > 0.05


@pytest.mark.parametrize("test_id", sorted(CHECKS))
def test_instructor_solution_passes_silently(source_nb, test_id, capsys):
    check, name = CHECKS[test_id]
    ns = run_answers(source_nb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in (hidden_seed(source_nb, test_id), hidden_seed(source_nb, test_id, 1),
                     hidden_seed(source_nb, test_id, STUDENT_SEED), 0, 2):
            check(ns[name], seed=seed)
    assert caught == []
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_fails_with_its_message(source_nb, name):
    mistake = MISTAKES[name]
    ns = run_answers(source_nb, mistake.sources)
    for test_id, (check, fn_name) in CHECKS.items():
        if test_id not in mistake.messages:
            # The other tasks pass (those that use none of the changed functions are the
            # instructor's, checked by test_instructor_solution_passes_silently).
            if set(mistake.sources) & ({fn_name} | USES.get(fn_name, set())):
                check(ns[fn_name], seed=hidden_seed(source_nb, test_id))
            continue
        for seed in (hidden_seed(source_nb, test_id), *mistake.extra_seeds):
            with pytest.raises(AssertionError) as info:
                check(ns[fn_name], seed=seed)
            for expected in mistake.messages[test_id]:
                assert expected in str(info.value), (test_id, seed, str(info.value))


def test_checks_restore_the_reference_functions(source_nb):
    """Blocking the package's code and torch's autograd lasts only while the student's runs."""
    import torch

    ns = run_answers(source_nb, MISTAKES["package_reference"].sources)
    with pytest.raises(AssertionError, match="reference implementation"):
        grading.check_backward_hadamard(ns["backward_hadamard"], seed=0)
    ns = run_answers(source_nb, MISTAKES["torch_autograd"].sources)
    with pytest.raises(AssertionError, match="torch's autograd"):
        grading.check_backward_jacobian(ns["backward_jacobian"], seed=0)
    # Afterwards the package and torch work again, and the cheat would pass.
    v = grading.VISIBLE
    z, a = grading._forward(v["params"], v["x"], "tanh")
    params = [(W, b[:, None]) for W, b in v["params"]]
    grads = backpropbook.mlp.mlp_backward(
        params, ([u[:, None] for u in z], [u[:, None] for u in a]), v["t"][:, None], "tanh")
    reference = grading._backward(v["params"], z, a, v["t"], "tanh")
    for (dW, db), (dW_r, db_r) in zip(grads, reference):
        assert np.allclose(dW, dW_r) and np.allclose(db[:, 0], db_r)
    w = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    (w ** 2).sum().backward()
    assert float(w.grad) == 4.0
    assert torch.autograd.functional.jacobian(lambda u: u * 3, torch.ones(2)).shape == (2, 2)


def test_the_chapters_own_code_is_blocked(source_nb):
    """backpropbook.vector (the chapter's reference code, columns (n, 1)) answers task 5 when
    reshaped; during a check it raises, and afterwards it works again."""
    vector = pytest.importorskip("backpropbook.vector")
    cheat = code('''
        from backpropbook.vector import vector_backward

        def backward_hadamard(params, z, a, t, activation):
            grads, _ = vector_backward([(W, b[:, None]) for W, b in params],
                                       [u[:, None] for u in z], [u[:, None] for u in a],
                                       t[:, None], activation)
            return [(dW, db[:, 0]) for dW, db in grads]
        ''')
    ns = run_answers(source_nb, {"backward_hadamard": cheat})
    with pytest.raises(AssertionError, match=r"reference implementation "
                                             r"backpropbook\.vector\.vector_backward"):
        grading.check_backward_hadamard(ns["backward_hadamard"], seed=(STUDENT_SEED, 2501))
    v = grading.VISIBLE
    z, a = grading._forward(v["params"], v["x"], "sigmoid")
    assert grading.allclose(ns["backward_hadamard"](v["params"], z, a, v["t"], "sigmoid"),
                            grading._backward(v["params"], z, a, v["t"], "sigmoid"))
    assert vector.activation_jacobian(np.zeros(2)).shape == (2, 2)


def test_torch_oracles_agree_with_the_delta_recursion_and_differences():
    from backpropbook import gradcheck

    for case in grading._network_cases(np.random.default_rng(11)):
        params, x, t, act = case["params"], case["x"], case["t"], case["activation"]
        z, a = grading._forward(params, x, act)
        for (dW, db), (dW_r, db_r) in zip(grading._oracle_gradients(params, x, t, act),
                                          grading._backward(params, z, a, t, act)):
            assert np.allclose(dW, dW_r, rtol=1e-12, atol=1e-15)
            assert np.allclose(db, db_r, rtol=1e-12, atol=1e-15)
        J = grading._oracle_network_jacobian(params, x, act)
        assert np.allclose(J, grading._network_jacobian(params, z, act), rtol=1e-12, atol=1e-15)
        # and the chain of Jacobians against centered differences, one output at a time
        for i in range(J.shape[0]):
            numeric = gradcheck.centered_difference(
                lambda u: grading._forward(params, u, act)[1][-1][i], x)
            assert np.allclose(J[i], numeric, rtol=1e-6, atol=1e-8)
    O, t = np.array([0.2, 0.7, 0.9]), np.array([0.0, 1.0, 0.5])
    assert np.allclose(grading._oracle_output_delta(O, t), (O - t) * O * (1 - O), rtol=1e-12)
    W, d = np.arange(6.0).reshape(2, 3) - 2, np.array([0.3, -0.1])
    assert np.allclose(grading._oracle_hidden_delta(O, W, d), O * (1 - O) * (W.T @ d))


def test_symbolic_reference_is_diag_sigma_prime_times_W():
    W, b, x = grading.layer_symbols(2, 3)
    J, a = grading._symbolic_reference(W, b, x)
    s_prime = sp.diag(*[ai * (1 - ai) for ai in a])
    assert grading.explain_symbolic_jacobian(W, b, x, s_prime * W) == ""
    assert all(s.is_real for s in J.free_symbols)


def test_backward_variants_are_told_apart_on_the_visible_case():
    """Each backward mistake variant that can be computed is explained as itself."""
    v = grading.VISIBLE
    z, a = grading._forward(v["params"], v["x"], v["activation"])
    for message, answer in grading._backward_variants(v["params"], z, a, v["t"], v["activation"]):
        if answer is not None:
            assert grading.explain_backward(v["params"], z, a, v["t"], v["activation"],
                                            answer) == message


def test_allclose_never_raises():
    assert grading.allclose([(np.ones((2, 3)), np.ones(2))], [(np.ones((2, 3)), np.ones(2))])
    assert not grading.allclose([(np.ones((3, 2)), np.ones(2))], [(np.ones((2, 3)), np.ones(2))])
    assert not grading.allclose("nope", [np.ones(2)])
    assert not grading.allclose([[1.0, 2.0], [3.0]], np.ones((2, 2)))
    assert not grading.allclose(None, np.ones(2))


# ---------------------------------------------------------------------------------------------
# A real nbgrader course: one run of the grading command for every submission
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def course(tmp_path_factory, source_nb):
    return grade_course(tmp_path_factory.mktemp("course"), ASSIGNMENT, source_nb, MISTAKES)


@pytest.mark.xdist_group("vector_course")
@pytest.mark.grading
def test_release_is_what_nbgrader_generates(course):
    assert_release_is_generated(RELEASE, course.root / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")


@pytest.mark.xdist_group("vector_course")
@pytest.mark.grading
def test_instructor_notebook_scores_full_marks(course, source_nb):
    got = course.scores["instructor"]
    points = autograded_ids(source_nb)
    assert {gid: got[gid][:2] for gid in points} == {gid: (p, p) for gid, p in points.items()}
    assert got["diagonal_jacobian"][2] is True  # left for the human grader
    for gid in points:
        assert output_text(course.autograded["instructor"][gid]) == "", gid


@pytest.mark.xdist_group("vector_course")
@pytest.mark.grading
def test_untouched_release_scores_zero(course, source_nb):
    got = course.scores["release"]
    points = autograded_ids(source_nb)
    assert {gid: got[gid][:2] for gid in points} == {gid: (0, p) for gid, p in points.items()}
    for gid in points:
        assert "NotImplementedError" in output_text(course.autograded["release"][gid]), gid


@pytest.mark.xdist_group("vector_course")
@pytest.mark.grading
@pytest.mark.parametrize("name", [n for n, m in MISTAKES.items() if m.in_notebook])
def test_mistake_loses_exactly_its_points(course, source_nb, name):
    mistake = MISTAKES[name]
    got = course.scores[name]
    points = autograded_ids(source_nb)
    expected = {gid: (0 if gid in mistake.messages else p, p) for gid, p in points.items()}
    assert {gid: got[gid][:2] for gid in points} == expected
    messages = {**mistake.messages, **(mistake.notebook_messages or {})}
    for gid, substrings in messages.items():
        text = output_text(course.autograded[name][gid])
        for s in substrings:
            assert s in text, f"{name}/{gid}: {s!r} not in\n{text[-2000:]}"


def test_at_least_six_mistakes_are_graded_in_the_course():
    assert sum(m.in_notebook for m in MISTAKES.values()) >= 6
