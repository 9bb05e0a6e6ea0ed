"""The vector assignment (a residual network): its task declarations, its notebook, a real course.

- the declarations (backpropgrader.tasks.vector) pass the instructor's solution cells on every
  seed tried, and fail each typical mistake, written as a student would write it, with the
  message that names it; the visible tests name it too where the visible case tells it apart;
- the book's package code (the plain network: vector_forward, vector_backward,
  activation_jacobian, the per-index sigmoid formulas) answers none of the tasks, even where it
  is not withheld, and is withheld while a task is graded;
- the torch oracles agree with a second, independent computation (centered differences, NumPy);
- the notebook follows the house template, and its release gives nothing away;
- in a temporary nbgrader course graded by one run of the sandboxed grading command, the
  instructor notebook scores full marks, the untouched release 0, and each submission with a
  mistake loses exactly the cells it should, with the message in the autograded notebook.
"""

import ast
import dataclasses
import json
import warnings

import numpy as np
import pytest
import sympy as sp

from backpropbook import symbolic_vector as book_symbolic
from backpropbook import vector as book
from backpropbook.gradcheck import centered_difference
from backpropgrader import engine
from backpropgrader.tasks import vector
from nbgrader_course import (
    REPO,
    Mistake,
    assert_release_gives_nothing_away,
    assert_visible_data_current,
    autograded_ids,
    cells_by_grade_id,
    code,
    course_tests,
    nbgrader_meta,
    run_answers,
    solution_sources,
)

pytestmark = [pytest.mark.vector]

ASSIGNMENT = "vector"
SOURCE_DIR = REPO / "solutions" / ASSIGNMENT
SOURCE = SOURCE_DIR / f"{ASSIGNMENT}.ipynb"
RELEASE = REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
TASKS = {t.name: t for t in vector.ASSIGNMENT.tasks}
# The student's functions that call another of the student's functions.
USES = {"network_jacobian": {"layer_jacobian"}, "backward_jacobian": {"layer_jacobian"}}
STUDENT_SEED = 0xC0FFEE_5EED_0BAD_F00D  # a 64-bit seed, as the grading command sets one


# ---------------------------------------------------------------------------------------------
# The typical mistakes, as a student writes them
# ---------------------------------------------------------------------------------------------


def _literal(value):
    return "np.array(" + repr(np.asarray(value).tolist()) + ")"


_HARD_Z = "[" + ", ".join(map(_literal, vector.VISIBLE_NETWORK["z"])) + "]"
_HARD_A = "[" + ", ".join(map(_literal, vector.VISIBLE_NETWORK["a"])) + "]"

HADAMARD = '''
def backward_hadamard(params, z, a, t, activation):
    g_prime = ACTIVATIONS[activation].g_prime
    L = len(params)
    grads = [None] * L
    u = {u}
    for l in range(L, 0, -1):
        W = params[l - 1][0]
        delta = {delta}
        grads[l - 1] = {grads}
        u = {back}
    return grads
'''


def hadamard(u="a[L] - t", delta="g_prime(z[l - 1]) * u",
             grads="(np.outer(delta, a[l - 1]), delta)", back="u + W.T @ delta"):
    """A backward_hadamard with one of its lines changed."""
    return code(HADAMARD.format(u=u, delta=delta, grads=grads, back=back))


def layer_jacobian(body):
    return code(f'''
        def layer_jacobian(W, z, activation):
            g_prime = ACTIVATIONS[activation].g_prime
            return {body}
        ''')


def forward(block):
    return code(f'''
        def forward(params, x, activation):
            g = ACTIVATIONS[activation].g
            z, a = [], [x]
            for W, b in params:
                z.append(W @ a[-1] + b)
                a.append({block})
            return z, a
        ''')


def network_jacobian(step):
    return code(f'''
        def network_jacobian(params, z, activation):
            J = np.eye(len(z[0]))
            for (W, _), z_l in zip(params, z):
                J = {step}
            return J
        ''')


MISTAKES = {
    "layer_jacobian_plain": Mistake(
        {"layer_jacobian": layer_jacobian("np.diag(g_prime(z)) @ W  # the plain layer's")},
        # the two tasks that use the student's layer_jacobian fail with it
        {"layer_jacobian": ["the identity is missing", "I + diag(g'(z[l])) W[l]"],
         "network_jacobian": ["the identity is missing in every block"],
         "backward_jacobian": ["the skip term is missing"]},
        in_notebook=True,
    ),
    "layer_jacobian_W_transposed": Mistake(
        {"layer_jacobian": layer_jacobian("np.eye(len(z)) + np.diag(g_prime(z)) @ W.T")},
        {"layer_jacobian": ["W is transposed"],
         "network_jacobian": ["W[l] is transposed in the product"],
         "backward_jacobian": ["W[l] is not transposed"]},
    ),
    "layer_jacobian_of_g": Mistake(
        {"layer_jacobian": code('''
            def layer_jacobian(W, z, activation):
                return np.eye(len(z)) + np.diag(ACTIVATIONS[activation].g(z)) @ W
            ''')},
        {"layer_jacobian": ["the diagonal holds g(z)"], "network_jacobian": ["da[L]/dx"],
         "backward_jacobian": ["dW["]},
    ),
    "layer_jacobian_wrong_order": Mistake(
        {"layer_jacobian": layer_jacobian("np.eye(len(z)) + W @ np.diag(g_prime(z))")},
        {"layer_jacobian": ["wrong order", "row i scaled by g'(z_i)"],
         "network_jacobian": ["on the wrong side of W[l]"],
         "backward_jacobian": ["dW["]},
    ),
    "layer_jacobian_hard_coded": Mistake(
        {"layer_jacobian": code(f'''
            def layer_jacobian(W, z, activation):
                return {_literal(vector.LAYER_JACOBIAN.answer_of(vector.LAYER_JACOBIAN.oracle,
                                                                 vector.LAYER_JACOBIAN.visible[0])[0])}
            ''')},
        # a width-3 matrix in the networks of other widths
        {"layer_jacobian": ["hard-coded"], "network_jacobian": ["raised ValueError"],
         "backward_jacobian": ["raised ValueError"]},
        visible={"network_jacobian": ["da[L]/dx"], "backward_jacobian": ["dW["]},
    ),
    "forward_plain": Mistake(
        {"forward": forward("g(z[-1])")},  # no skip
        {"forward": ["the skip connection is missing", "vector_forward"]},
        in_notebook=True,
    ),
    "forward_skip_adds_z": Mistake(
        {"forward": forward("z[-1] + g(z[-1])")}, {"forward": ["the skip adds z[l]"]}),
    "forward_no_g": Mistake(
        {"forward": forward("a[-1] + z[-1]")}, {"forward": ["g is not applied"]}),
    "forward_skip_from_x": Mistake(
        {"forward": forward("x + g(z[-1])")}, {"forward": ["every skip starts from x"]}),
    "forward_hard_coded": Mistake(
        {"forward": code(f'''
            def forward(params, x, activation):
                return {_HARD_Z}, {_HARD_A}
            ''')},
        {"forward": ["hard-coded"]}, visible={}, in_notebook=True,
    ),
    "forward_calls_the_book": Mistake(
        {"forward": code('''
            from backpropbook.vector import vector_forward

            def forward(params, x, activation):
                zs, acts = vector_forward([(W, b[:, None]) for W, b in params], x[:, None],
                                          activation)
                return [u[:, 0] for u in zs], [u[:, 0] + 0.0 for u in acts]
            ''')},
        {"forward": ["backpropbook.vector.vector_forward is withheld"]},
        # in-process the visible tests run the book's code, which is the plain network's
        visible={"forward": ["the skip connection is missing"]}, in_notebook=True,
        notebook={"forward": ["backpropbook.vector.vector_forward is the book's reference",
                              "not available while grading"]},
    ),
    "network_jacobian_wrong_order": Mistake(
        {"network_jacobian": network_jacobian("J @ layer_jacobian(W, z_l, activation)")},
        {"network_jacobian": ["multiplied in the wrong order", "on the left"]},
        in_notebook=True,
    ),
    "network_jacobian_plain": Mistake(
        {"network_jacobian": network_jacobian(
            "np.diag(ACTIVATIONS[activation].g_prime(z_l)) @ W @ J")},
        {"network_jacobian": ["the identity is missing in every block"]},
    ),
    "network_jacobian_sum": Mistake(
        {"network_jacobian": network_jacobian(
            "J + layer_jacobian(W, z_l, activation) - np.eye(len(z_l))")},
        {"network_jacobian": ["added, not multiplied"]},
    ),
    "network_jacobian_transposed": Mistake(
        {"network_jacobian": code('''
            def network_jacobian(params, z, activation):
                J = np.eye(len(z[0]))
                for (W, _), z_l in zip(params, z):
                    J = layer_jacobian(W, z_l, activation) @ J
                return J.T
            ''')},
        {"network_jacobian": ["the result is transposed"]},
    ),
    "backward_jacobian_J_not_transposed": Mistake(
        {"backward_jacobian": code('''
            def backward_jacobian(params, z, a, t, activation):
                L = len(params)
                grads = [None] * L
                u = a[L] - t
                for l in range(L, 0, -1):
                    W, z_l = params[l - 1][0], z[l - 1]
                    delta = np.diag(ACTIVATIONS[activation].g_prime(z_l)).T @ u
                    grads[l - 1] = (np.outer(delta, a[l - 1]), delta)
                    u = layer_jacobian(W, z_l, activation) @ u  # J u, not J^T u
                return grads
            ''')},
        {"backward_jacobian": ["the Jacobian is multiplied on the wrong side",
                               "vector-Jacobian product"]},
        in_notebook=True,
    ),
    "backward_jacobian_torch": Mistake(
        {"backward_jacobian": code('''
            def backward_jacobian(params, z, a, t, activation):
                import torch

                g = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
                leaves = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
                          for W, b in params]
                u = torch.tensor(a[0])
                for W, b in leaves:
                    u = u + g(W @ u + b)
                (0.5 * ((u - torch.tensor(t)) ** 2).sum()).backward()
                return [(W.grad.numpy(), b.grad.numpy()) for W, b in leaves]
            ''')},
        {"backward_jacobian": ["import of torch halted"]}, visible={}, in_notebook=True,
        notebook={"backward_jacobian": ["torch is not available while grading"]},
    ),
    "backward_hadamard_plain": Mistake(
        {"backward_hadamard": hadamard(back="W.T @ delta  # the plain network's step")},
        {"backward_hadamard": ["the skip term is missing", "vector_backward"]},
        in_notebook=True,
    ),
    "backward_hadamard_skip_passes_delta": Mistake(
        {"backward_hadamard": hadamard(back="delta + W.T @ delta")},
        {"backward_hadamard": ["passes delta[l] on instead of u"]},
    ),
    "backward_hadamard_W_not_transposed": Mistake(
        {"backward_hadamard": hadamard(back="u + W @ delta")},
        {"backward_hadamard": ["W[l] is not transposed"]},
    ),
    "backward_hadamard_J_not_transposed": Mistake(
        {"backward_hadamard": hadamard(back="u + g_prime(z[l - 1]) * (W @ u)")},
        {"backward_hadamard": ["multiplied on the wrong side"]},
    ),
    "backward_hadamard_dW_transposed": Mistake(
        {"backward_hadamard": hadamard(grads="(np.outer(a[l - 1], delta), delta)")},
        {"backward_hadamard": ["dW is transposed", "np.outer(delta, a_prev)"]},
    ),
    "backward_hadamard_no_g_prime": Mistake(
        {"backward_hadamard": hadamard(delta="u")},
        {"backward_hadamard": ["missing activation derivative"]},
    ),
    "backward_hadamard_sign": Mistake(
        {"backward_hadamard": hadamard(u="t - a[L]")}, {"backward_hadamard": ["wrong sign"]}),
    "backward_hadamard_reversed": Mistake(
        {"backward_hadamard": code('''
            def backward_hadamard(params, z, a, t, activation):
                g_prime = ACTIVATIONS[activation].g_prime
                grads, u = [], a[-1] - t
                for l in range(len(params), 0, -1):
                    delta = g_prime(z[l - 1]) * u
                    grads.append((np.outer(delta, a[l - 1]), delta))  # layer L first
                    u = u + params[l - 1][0].T @ delta
                return grads
            ''')},
        {"backward_hadamard": ["reverse order", "layer 1 first"]},
    ),
    "backward_hadamard_changes_z": Mistake(
        {"backward_hadamard": hadamard(delta="g_prime(z[l - 1]) * u; z[l - 1] *= 0")},
        {"backward_hadamard": ["changed its argument z"]},
    ),
    "output_delta_sigmoid_factor": Mistake(
        {"output_delta": code('''
            def output_delta(O, t):
                return (O - t) * O * (1 - O)  # the sigmoid network's
            ''')},
        {"output_delta": ["the sigmoid's derivative", "1 - O_k^2"]},
        in_notebook=True,
    ),
    "output_delta_square_of_difference": Mistake(
        {"output_delta": code('''
            def output_delta(O, t):
                return (O - t) * (1 - O) ** 2
            ''')},
        {"output_delta": ["(1 - O_k)^2 is not 1 - O_k^2"]},
    ),
    "output_delta_sign": Mistake(
        {"output_delta": code('''
            def output_delta(O, t):
                return (t - O) * (1 - O**2)
            ''')},
        {"output_delta": ["wrong sign"]},
    ),
    "hidden_delta_W_not_transposed": Mistake(
        {"hidden_delta": code('''
            def hidden_delta(O_hidden, W_next, delta_next):
                return (1 - O_hidden**2) * (W_next @ delta_next)
            ''')},
        {"hidden_delta": ["wrong product order", "W_next^T delta"]},
        in_notebook=True,
    ),
    "hidden_delta_sigmoid_factor": Mistake(
        {"hidden_delta": code('''
            def hidden_delta(O_hidden, W_next, delta_next):
                return O_hidden * (1 - O_hidden) * (W_next.T @ delta_next)
            ''')},
        {"hidden_delta": ["the sigmoid's derivative"]},
    ),
    "symbolic_plain": Mistake(
        {"symbolic_jacobian": code('''
            def symbolic_jacobian(W, b, x):
                return (W * x + b).applyfunc(lambda u: 1 / (1 + sp.exp(-u))).jacobian(x)
            ''')},
        {"symbolic_jacobian": ["the identity is missing", "I + diag(sigma'(z)) W"]},
        in_notebook=True,
    ),
    "symbolic_transposed": Mistake(
        {"symbolic_jacobian": code('''
            def symbolic_jacobian(W, b, x):
                a = x + (W * x + b).applyfunc(lambda u: 1 / (1 + sp.exp(-u)))
                return a.jacobian(x).T
            ''')},
        {"symbolic_jacobian": ["the Jacobian is transposed"]},
    ),
    "symbolic_own_symbols": Mistake(
        {"symbolic_jacobian": code('''
            def symbolic_jacobian(W, b, x):
                x = sp.Matrix([sp.Symbol(s.name) for s in x])  # not the problem's (real) ones
                a = x + (W * x + b).applyfunc(lambda u: 1 / (1 + sp.exp(-u)))
                return a.jacobian(x)
            ''')},
        {"symbolic_jacobian": ["not the problem's"]},
    ),
    "symbolic_hard_coded": Mistake(
        {"symbolic_jacobian": code('''
            def symbolic_jacobian(W, b, x):
                W, b, x = layer_symbols(2)  # the visible case's symbols, whatever the input
                a = x + (W * x + b).applyfunc(lambda u: 1 / (1 + sp.exp(-u)))
                return a.jacobian(x)
            ''')},
        {"symbolic_jacobian": ["hard-coded"]}, visible={},
    ),
    "symbolic_list": Mistake(
        {"symbolic_jacobian": code('''
            def symbolic_jacobian(W, b, x):
                a = x + (W * x + b).applyfunc(lambda u: 1 / (1 + sp.exp(-u)))
                return a.jacobian(x).tolist()
            ''')},
        {"symbolic_jacobian": ["should return a SymPy Matrix"]},
    ),
}


def test_every_task_has_typical_mistakes_and_some_go_through_the_course():
    assert {task for m in MISTAKES.values() for task in m.hidden} == set(TASKS)
    assert sum(m.in_notebook for m in MISTAKES.values()) >= 8


# ---------------------------------------------------------------------------------------------
# The notebook
# ---------------------------------------------------------------------------------------------


def test_source_notebook_is_clean_and_follows_the_template(source_nb):
    import nbformat

    nbformat.validate(source_nb)
    assert (source_nb.nbformat, source_nb.nbformat_minor) == (4, 5)
    ids = [c.id for c in source_nb.cells]
    assert len(set(ids)) == len(ids) and all(ids)
    for cell in source_nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
    # one test cell per task, in the tasks' order, worth the task's points
    assert autograded_ids(source_nb) == {t.grade_id: t.points for t in TASKS.values()}
    graded = [nbgrader_meta(c)["grade_id"] for c in source_nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    assert graded == [t.grade_id for t in vector.ASSIGNMENT.tasks]
    assert sum(t.points for t in TASKS.values()) == 22
    manual = [c for c in source_nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "markdown"]
    assert [nbgrader_meta(c)["grade_id"] for c in manual] == ["residual_gradient"]
    assert nbgrader_meta(manual[0])["solution"] and nbgrader_meta(manual[0])["points"] == 2
    cells = cells_by_grade_id(source_nb)
    for name, task in TASKS.items():
        first, *_ = cells[task.grade_id].source.splitlines()
        assert first.startswith(f'"""{name}: ') and first.endswith('"""'), first
        assert cells[task.grade_id].source.splitlines()[1:] == [
            f'visible.check("{name}", {name})',
            "### BEGIN HIDDEN TESTS",
            "from backpropgrader.tasks import check",
            f'check("vector", "{name}", {name}, GRADING_SEED)',
            "### END HIDDEN TESTS"]
    assert set(solution_sources(source_nb)) == set(TASKS)
    for name in TASKS:
        stub = cells[name].source.split("### BEGIN SOLUTION")[0]
        assert stub.startswith(f"def {name}(") and '"""' in stub, name
    # the intro's table shows the tasks' points
    intro = cells["intro"].source
    for name, task in TASKS.items():
        row = next(line for line in intro.splitlines() if f"`{name}`" in line)
        assert str(task.points) in row.rsplit("|", 2)[1], row


def test_setup_cell_imports_only_the_student_side(source_nb):
    setup = cells_by_grade_id(source_nb)["setup"]
    assert nbgrader_meta(setup)["locked"]
    tree = ast.parse(setup.source)
    imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for a in node.names]
    imported += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and all(m in ("numpy", "sympy") or m.startswith("backpropbook.")
                            for m in imported), imported
    assert not set(imported) & set(vector.WITHHELD)
    lines = setup.source.splitlines()
    assert lines[-3:] == [
        "from backpropbook.selfcheck import VisibleTests",
        'visible = VisibleTests.load("vector")  # the visible tests\' data, next to this notebook',
        "GRADING_SEED = 0  # the grading command sets one seed per student"]
    # its layer_symbols builds the visible case's symbols
    ns = {}
    exec(setup.source, ns)
    case = TASKS["symbolic_jacobian"].visible[0]
    assert ns["layer_symbols"](2) == (case["W"], case["b"], case["x"])
    assert all(s.is_real for M in ns["layer_symbols"](3) for s in M)


def test_release_gives_nothing_away(source_nb):
    assert_release_gives_nothing_away(source_nb, RELEASE)


def test_visible_data_is_what_the_declarations_give():
    """The committed visible tests' data (instructor folder and release) is regenerated."""
    text = assert_visible_data_current(ASSIGNMENT, engine.visible_data(vector.ASSIGNMENT.tasks))
    data = json.loads(text)
    assert set(data["__dict__"]["tasks"]["__dict__"]) == set(TASKS)


# ---------------------------------------------------------------------------------------------
# The declarations with the instructor's answers and with the mistakes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASKS))
def test_instructor_solution_passes_silently(source_nb, visible_tests, name, capsys):
    ns = run_answers(source_nb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        visible_tests.check(name, ns[name])
        for seed in (0, 1, STUDENT_SEED):
            engine.check(TASKS[name], ns[name], seed)
    assert caught == []
    assert capsys.readouterr() == ("", "")


def test_both_backward_passes_agree(source_nb):
    ns = run_answers(source_nb)
    for case in vector._network_cases(np.random.default_rng(5)):
        args = [case[k] for k in ("params", "z", "a", "t", "activation")]
        for (dW, db), (dW_h, db_h) in zip(ns["backward_jacobian"](*args),
                                          ns["backward_hadamard"](*args)):
            assert np.allclose(dW, dW_h, rtol=1e-12, atol=1e-15)
            assert np.allclose(db, db_h, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_fails_with_its_message(source_nb, visible_tests, name):
    mistake = MISTAKES[name]
    ns = run_answers(source_nb, mistake.sources)
    for task_name, task in TASKS.items():
        fn = ns[task_name]
        if task_name not in mistake.hidden:
            # the tasks that use a changed function still pass
            if set(mistake.sources) & ({task_name} | USES.get(task_name, set())):
                engine.check(task, fn, 0)
                visible_tests.check(task_name, fn)
            continue
        for seed in (0, STUDENT_SEED):
            with pytest.raises(AssertionError) as info:
                engine.check(task, fn, seed)
            for expected in mistake.hidden[task_name]:
                assert expected in str(info.value), (task_name, seed, str(info.value))
        if task_name not in mistake.visible:
            visible_tests.check(task_name, fn)  # the visible case cannot tell
            continue
        with pytest.raises(AssertionError) as info:
            visible_tests.check(task_name, fn)
        for expected in mistake.visible[task_name]:
            assert expected in str(info.value), (task_name, "visible", str(info.value))


def test_every_mistake_is_named_on_the_visible_case():
    """Each declared mistake's answer on a visible case is explained as itself there."""
    data = engine.visible_data(vector.ASSIGNMENT.tasks)["tasks"]
    for name, task in TASKS.items():
        case = task.visible[0]
        expected = task.answer_of(task.oracle, case)
        named = data[name]["cases"][0]["mistakes"]
        assert len(named) >= 4, name
        for message, wrong in named:
            wrong = tuple(np.asarray(w, dtype=float) for w in wrong)
            assert engine.explain(task, case, wrong, expected) == message, (name, message)


def test_the_withheld_code_works_again_after_a_check(source_nb):
    """Withholding the package and torch lasts only while the student's function runs."""
    import torch

    ns = run_answers(source_nb, MISTAKES["forward_calls_the_book"].sources)
    with pytest.raises(AssertionError, match="withheld"):
        engine.check(TASKS["forward"], ns["forward"], 0)
    x = np.array([[1.0], [2.0]])
    zs, acts = book.vector_forward([(np.eye(2), np.zeros((2, 1)))], x, "relu")
    assert np.array_equal(acts[1], x)
    assert float(torch.tensor([2.0]).sum()) == 2.0


# ---------------------------------------------------------------------------------------------
# The book's package code answers none of the tasks, even where it is not withheld
# ---------------------------------------------------------------------------------------------


def _columns(params):
    return [(W, b[:, None]) for W, b in params]


def book_layer_jacobian(W, z, activation):
    return book.activation_jacobian(z[:, None], activation) @ W  # the plain layer's D W


def book_forward(params, x, activation):
    zs, acts = book.vector_forward(_columns(params), x[:, None], activation)
    return [u[:, 0] for u in zs], [u[:, 0] for u in acts]


def book_network_jacobian(params, z, activation):
    J = np.eye(len(z[0]))
    for (W, _), z_l in zip(params, z):
        J = book_layer_jacobian(W, z_l, activation) @ J
    return J


def book_backward(jacobians):
    def backward(params, z, a, t, activation):
        grads, _ = book.vector_backward(_columns(params), [u[:, None] for u in z],
                                        [u[:, None] for u in a], t[:, None], activation,
                                        jacobians=jacobians)
        return [(dW, db[:, 0]) for dW, db in grads]
    return backward


def book_output_delta(O, t):
    """The book's per-index output delta, (O - t) O (1 - O) (its per_index_gradients)."""
    return (O - t) * O * (1 - O)


def book_hidden_delta(O_hidden, W_next, delta_next):
    return O_hidden * (1 - O_hidden) * (W_next.T @ delta_next)


def book_symbolic_jacobian(W, b, x):
    return book_symbolic.activation_jacobian(W * x + b, "sigmoid") * W


BOOK = {
    "layer_jacobian": (book_layer_jacobian, "the identity is missing"),
    "forward": (book_forward, "the skip connection is missing"),
    "network_jacobian": (book_network_jacobian, "the identity is missing in every block"),
    "backward_jacobian": (book_backward(True), "the skip term is missing"),
    "backward_hadamard": (book_backward(False), "the skip term is missing"),
    "output_delta": (book_output_delta, "the sigmoid's derivative"),
    "hidden_delta": (book_hidden_delta, "the sigmoid's derivative"),
    "symbolic_jacobian": (book_symbolic_jacobian, "the identity is missing"),
}


def test_the_book_computes_its_per_index_deltas_with_the_sigmoid_factor():
    """book_output_delta and book_hidden_delta are what per_index_gradients computes."""
    rng = np.random.default_rng(3)
    W1, W2 = rng.normal(size=(3, 3)), rng.normal(size=(2, 3))
    params = [(W1, rng.normal(size=(3, 1))), (W2, rng.normal(size=(2, 1)))]
    x, t = rng.normal(size=(3, 1)), rng.uniform(size=(2, 1))
    _, acts = book.vector_forward(params, x, "sigmoid")
    (_, db1), (_, db2) = book.per_index_gradients(params, x, t)
    assert np.allclose(db2[:, 0], book_output_delta(acts[2][:, 0], t[:, 0]), rtol=1e-12)
    assert np.allclose(db1[:, 0], book_hidden_delta(acts[1][:, 0], W2, db2[:, 0]), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(BOOK))
def test_the_books_code_answers_no_task(name):
    fn, message = BOOK[name]
    unguarded = dataclasses.replace(TASKS[name], withheld=())
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        engine.check(unguarded, fn, STUDENT_SEED)
    if name not in ("output_delta", "hidden_delta"):  # those are formulas, not package calls
        with pytest.raises(AssertionError, match="is withheld while this task is graded"):
            engine.check(TASKS[name], fn, STUDENT_SEED)


# ---------------------------------------------------------------------------------------------
# The cases and the oracles
# ---------------------------------------------------------------------------------------------


def test_network_cases_cover_widths_depths_and_activations_away_from_kinks():
    cases = vector._network_cases(np.random.default_rng((STUDENT_SEED, 1)))
    assert {len(c["params"]) for c in cases} == set(range(1, vector.MAX_DEPTH + 1))
    assert {c["activation"] for c in cases} == set(vector.ACTIVATION_NAMES)
    widths = {len(c["x"]) for c in cases}
    assert 1 in widths and widths <= set(range(1, vector.MAX_WIDTH + 1)) and len(widths) >= 3
    for c in cases:
        z = np.abs(np.concatenate(c["z"]))
        assert z.max() < vector.SATURATION
        if c["activation"] == "relu":
            assert z.min() > vector.KINK
        assert all(W.shape == (len(c["x"]),) * 2 for W, _ in c["params"])
    other = vector._network_cases(np.random.default_rng((STUDENT_SEED + 1, 1)))
    assert [c["x"].tolist() for c in cases] != [c["x"].tolist() for c in other]


def _output(params, activation):
    """x -> a[L] of the residual network, in NumPy."""
    return lambda x: vector._np_forward(params, x, activation)[1][-1]


def _loss_of(params, x, t, activation, l, which):
    """W[l] (which = 0) or b[l] (which = 1) -> E, in NumPy, the other parameters fixed."""
    def loss(value):
        changed = [list(p) for p in params]
        changed[l][which] = value
        a_L = _output(changed, activation)(x)
        return 0.5 * float(np.sum((a_L - t) ** 2))
    return loss


def test_network_oracles_agree_with_numpy_and_centered_differences():
    for case in vector._network_cases(np.random.default_rng(11))[:8]:
        params, x, t, act = case["params"], case["x"], case["t"], case["activation"]
        z, a = vector._np_forward(params, x, act)  # NumPy, not torch
        for u, v in zip([*z, *a], [*case["z"], *case["a"]]):
            assert np.allclose(u, v, rtol=1e-13, atol=1e-15)
        J = vector._network_jacobian_oracle(params, case["z"], act, x)
        assert np.allclose(J, book.numerical_jacobian(_output(params, act), x),
                           rtol=1e-6, atol=1e-8)
        J1 = vector._layer_jacobian_oracle(params[0][0], case["z"][0], act)
        assert np.allclose(J1, book.numerical_jacobian(_output(params[:1], act), x),
                           rtol=1e-6, atol=1e-8)
        grads = vector._gradients_oracle(params, case["z"], case["a"], t, act)
        for l, pair in enumerate(grads):
            for which, gradient in enumerate(pair):
                numeric = centered_difference(_loss_of(params, x, t, act, l, which),
                                              params[l][which])
                assert np.allclose(gradient, numeric, rtol=1e-6, atol=1e-9), (l, which)


def test_per_index_oracles_agree_with_centered_differences():
    rng = np.random.default_rng(4)
    O, t = rng.uniform(-0.9, 0.9, 4), rng.uniform(-1, 1, 4)
    z = np.arctanh(O)
    assert np.allclose(vector._output_delta_oracle(O, t),
                       centered_difference(lambda v: 0.5 * np.sum((np.tanh(v) - t) ** 2), z),
                       rtol=1e-7, atol=1e-10)
    W, d = rng.normal(size=(3, 4)), rng.normal(size=3)
    assert np.allclose(vector._hidden_delta_oracle(O, W, d),
                       centered_difference(lambda v: d @ (W @ np.tanh(v)), z),
                       rtol=1e-7, atol=1e-10)


def test_symbolic_oracle_agrees_with_sympy_and_centered_differences():
    task = TASKS["symbolic_jacobian"]
    for case in task.cases(np.random.default_rng(6)):
        W, b, x, points = case["W"], case["b"], case["x"], case["_points"]
        (expected,) = task.answer_of(task.oracle, case)
        sigma = (W * x + b).applyfunc(lambda u: 1 / (1 + sp.exp(-u)))
        exact = (x + sigma).jacobian(x)
        for p, J in zip(points, expected):
            subs = {s: sp.Rational(p[s.name]) for M in (W, b, x) for s in M}
            assert np.allclose(np.array(exact.xreplace(subs).evalf(30).tolist(), dtype=float),
                               J, rtol=1e-13, atol=1e-15)
            block = [(vector._numbers(W, p), vector._numbers(b, p)[:, 0])]
            numeric = book.numerical_jacobian(_output(block, "sigmoid"),
                                              vector._numbers(x, p)[:, 0])
            assert np.allclose(J, numeric, rtol=1e-6, atol=1e-9)


def test_symbolic_cases_use_other_symbols_than_the_visible_case():
    """A hidden case never has the visible case's symbols: an answer built for those fails, a
    right one is never mistaken for a hard-coded one."""
    visible = TASKS["symbolic_jacobian"].visible[0]
    names = {s.name for M in (visible["W"], visible["b"]) for s in M}
    for case in TASKS["symbolic_jacobian"].cases(np.random.default_rng((STUDENT_SEED, 2))):
        assert not names & {s.name for M in (case["W"], case["b"]) for s in M}
        assert set(case["_points"][0]) == {s.name for M in (case["W"], case["b"], case["x"])
                                           for s in M}


# ---------------------------------------------------------------------------------------------
# A real nbgrader course: one run of the grading command for every submission
# ---------------------------------------------------------------------------------------------


(test_release_is_what_nbgrader_generates, test_instructor_notebook_scores_full_marks,
 test_untouched_release_scores_zero, test_mistake_loses_exactly_its_points) = course_tests(
    ASSIGNMENT, TASKS, MISTAKES)
