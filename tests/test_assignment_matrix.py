"""The matrix assignment (minibatches in columns): its declarations, its notebook, a real course.

- the declarations (backpropgrader.tasks.matrix) pass the instructor's solution cells on every
  seed tried, and fail each typical mistake, written as a student would write it, with the
  message that names it; the visible tests name it too where the visible case tells it apart;
- the book's package code (layers, mlp, conventions: the linear layer, the listed activations,
  the softmax with the cross-entropy) answers none of the tasks, even where it is not withheld,
  and is withheld while a task is graded; a centered difference is not precise enough either;
- the torch oracles agree with centered differences of forward passes written here in NumPy;
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

from backpropbook import conventions, layers, mlp
from backpropbook.activations import ACTIVATIONS
from backpropbook.gradcheck import centered_difference
from backpropbook.selfcheck import unchanged
from backpropgrader import engine
from backpropgrader.tasks import check, matrix
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
    read,
    run_answers,
    solution_sources,
)

pytestmark = [pytest.mark.matrix]

ASSIGNMENT = "matrix"
SOURCE_DIR = REPO / "solutions" / ASSIGNMENT
SOURCE = SOURCE_DIR / f"{ASSIGNMENT}.ipynb"
RELEASE = REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
TASKS = {t.key: t for t in matrix.ASSIGNMENT.tasks}  # the two mlp_backward cells: two keys
NUMERIC = ("batchnorm_backward", "elu_backward", "softmax_mse_backward", "mlp_backward_mse",
           "mlp_backward_softmax_mse")
STUDENT_SEED = 0xC0FFEE_5EED_0BAD_F00D  # a 64-bit seed, as the grading command sets one


def passes_check(key, fn, seed):
    """The hidden test cell's call, through the public door."""
    check(ASSIGNMENT, key, fn, seed)


# ---------------------------------------------------------------------------------------------
# The typical mistakes, as a student writes them
# ---------------------------------------------------------------------------------------------


def shapes(**changed):
    right = {"W": "(n, n_prev)", "b": "(n, 1)", "A_prev": "(n_prev, N)", "Z": "(n, N)",
             "dZ": "(n, N)", "dW": "(n, n_prev)", "db": "(n, 1)", "dA_prev": "(n_prev, N)"}
    items = ", ".join(f'"{k}": {v}' for k, v in {**right, **changed}.items())
    return code(f'''
        def gradient_shapes(n_prev, n, N):
            return {{{items}}}
        ''')


BATCHNORM = '''
def batchnorm_backward(dY, X, gamma, eps):
    N = X.shape[1]
    X_c = X - X.mean(axis=1, keepdims=True)
    std = np.sqrt({var} + eps)
    X_hat = X_c / std
    dbeta = {dbeta}
    dgamma = {dgamma}
    dX = {dX}
    return {result}
'''
SUMS = "dY.sum(axis=1, keepdims=True)", "(dY * X_hat).sum(axis=1, keepdims=True)"


def batchnorm(var="(X_c ** 2).mean(axis=1, keepdims=True)", dbeta=SUMS[0], dgamma=SUMS[1],
              dX="gamma / (N * std) * (N * dY - dbeta - X_hat * dgamma)",
              result="dX, dgamma, dbeta"):
    """A batchnorm_backward with one of its lines changed."""
    return code(BATCHNORM.format(var=var, dbeta=dbeta, dgamma=dgamma, dX=dX, result=result))


def elu(expression):
    return code(f'''
        def elu_backward(dA, Z, alpha):
            return {expression}
        ''')


def softmax_mse(expression):
    return code(f'''
        def softmax_mse_backward(P, Y):
            return {expression}
        ''')


MLP = '''
def mlp_backward(params, cache, Y, activations, loss):
    Zs, As = cache
    L, N = len(params), Y.shape[1]

    def through_activation(dA, l):
        name, Z = activations[{layer}], {Z}
        if name == "elu":
            return elu_backward(dA, Z, 1.0)
        return dA * ACTIVATIONS[name].g_prime(Z)

    if loss == "softmax_mse":
        dZ = {softmax_output}
    else:
        dZ = {mse_output}
    grads = [None] * L
    for l in range(L, 0, -1):
        grads[l - 1] = ({dW}, {db})
        if l > 1:
            dZ = {down}
    return grads
'''


def mlp_with(layer="l - 1", Z="Zs[l - 1]", softmax_output="softmax_mse_backward(As[L], Y)",
             mse_output="through_activation((As[L] - Y) / N, L)", dW="dZ @ As[l - 1].T",
             db="dZ.sum(axis=1, keepdims=True)",
             down="through_activation(params[l - 1][0].T @ dZ, l - 1)"):
    """An mlp_backward with one of its lines changed."""
    return code(MLP.format(layer=layer, Z=Z, softmax_output=softmax_output,
                           mse_output=mse_output, dW=dW, db=db, down=down))


BOTH_MLP = ("mlp_backward_mse", "mlp_backward_softmax_mse")
ELU_IN_MLP = "mlp_backward_mse"  # every network of that cell has an elu layer, the other none
SOFTMAX_IN_MLP = "mlp_backward_softmax_mse"

MISTAKES = {
    # --- task 1 ------------------------------------------------------------------------------
    "shapes_dW_transposed": Mistake(
        {"gradient_shapes": shapes(dW="(n_prev, n)")},
        {"gradient_shapes": ["dW is transposed", "W's shape (n, n_prev)"]}, in_notebook=True),
    "shapes_db_unsummed": Mistake(
        {"gradient_shapes": shapes(db="(n, N)")},
        {"gradient_shapes": ["db is not summed over the batch", "lecture notes"]}),
    "shapes_rows": Mistake(  # examples in rows, as in many NumPy courses
        {"gradient_shapes": shapes(A_prev="(N, n_prev)")},
        {"gradient_shapes": ["A_prev has shape (N, n_prev)", "examples are columns"]}),
    "shapes_b_flat": Mistake(
        {"gradient_shapes": shapes(b="(n,)")},
        {"gradient_shapes": ["the shape of b should have 2 entries"]}),
    "shapes_hard_coded": Mistake(
        {"gradient_shapes": code('''
            def gradient_shapes(n_prev, n, N):
                return {"W": (2, 3), "b": (2, 1), "A_prev": (3, 4), "Z": (2, 4),
                        "dZ": (2, 4), "dW": (2, 3), "db": (2, 1), "dA_prev": (3, 4)}
            ''')},
        {"gradient_shapes": ["hard-coded"]}, visible={}),
    # --- task 2 ------------------------------------------------------------------------------
    "batchnorm_constants": Mistake(
        {"batchnorm_backward": batchnorm(dX="gamma * dY / std  # mu and var held fixed")},
        {"batchnorm_backward": ["mu and var are treated as constants", "couple"]},
        in_notebook=True),
    "batchnorm_no_mean_path": Mistake(
        {"batchnorm_backward": batchnorm(dX="gamma / (N * std) * (N * dY - X_hat * dgamma)")},
        {"batchnorm_backward": ["the path through the mean mu is missing"]}),
    "batchnorm_no_variance_path": Mistake(
        {"batchnorm_backward": batchnorm(dX="gamma / (N * std) * (N * dY - dbeta)")},
        {"batchnorm_backward": ["the path through the variance var is missing"]},
        in_notebook=True),
    "batchnorm_unsummed": Mistake(
        {"batchnorm_backward": batchnorm(
            dbeta="dY", dgamma="dY * X_hat",
            dX=f"gamma / (N * std) * (N * dY - {SUMS[0]} - X_hat * {SUMS[1]})")},
        {"batchnorm_backward": ["wrong shape: dgamma should have shape", "sums over them"]}),
    "batchnorm_wrong_axis": Mistake(
        {"batchnorm_backward": batchnorm(
            dbeta="dY.sum(axis=0, keepdims=True)",
            dgamma="(dY * X_hat).sum(axis=0, keepdims=True)",
            dX=f"gamma / (N * std) * (N * dY - {SUMS[0]} - X_hat * {SUMS[1]})")},
        {"batchnorm_backward": ["wrong shape: dgamma should have shape", "along axis=1"]}),
    "batchnorm_means": Mistake(
        {"batchnorm_backward": batchnorm(
            dX=f"gamma / (N * std) * (N * dY - {SUMS[0]} - X_hat * {SUMS[1]})",
            dbeta="dY.mean(axis=1, keepdims=True)",
            dgamma="(dY * X_hat).mean(axis=1, keepdims=True)")},
        {"batchnorm_backward": ["dgamma and dbeta are means over the batch", "plain sums"]}),
    "batchnorm_swapped": Mistake(
        {"batchnorm_backward": batchnorm(result="dX, dbeta, dgamma")},
        {"batchnorm_backward": ["dgamma and dbeta are swapped"]}),
    "batchnorm_unbiased": Mistake(
        # N - 1 is 0 for the batch of one: the hidden check stops at its division by zero,
        # the visible case (N = 4) names the mistake
        {"batchnorm_backward": batchnorm(var="(X_c ** 2).sum(axis=1, keepdims=True) / (N - 1)")},
        {"batchnorm_backward": ["numerical warning", "divide"]},
        visible={"batchnorm_backward": ["the variance is divided by N − 1"]}, in_notebook=True),
    # --- task 3 (every network of the mse cell has an elu layer) -----------------------------
    "elu_g_for_g_prime": Mistake(
        {"elu_backward": elu("dA * np.where(Z > 0, Z, alpha * (np.exp(np.minimum(Z, 0)) - 1))")},
        {"elu_backward": ["used g instead of its derivative"],
         ELU_IN_MLP: ["the elu layers use elu(z) instead of its derivative",
                      "check your elu_backward"]},
        in_notebook=True),
    "elu_no_dA": Mistake(
        {"elu_backward": elu("np.where(Z > 0, 1.0, alpha * np.exp(np.minimum(Z, 0)))")},
        {"elu_backward": ["the factor dA is missing"], ELU_IN_MLP: ["elu"]}),
    "elu_kink_on_the_right": Mistake(
        # with alpha = 1 in the network the kink is gone: only the elu cell fails
        {"elu_backward": elu("dA * np.where(Z >= 0, 1.0, alpha * np.exp(np.minimum(Z, 0)))")},
        {"elu_backward": ["the kink is on the wrong side", "g′(0) = alpha"]}, in_notebook=True),
    "elu_no_exp": Mistake(
        {"elu_backward": elu("dA * np.where(Z > 0, 1.0, alpha)")},
        {"elu_backward": ["e^z is missing"],
         ELU_IN_MLP: ["the elu layers' derivative is wrong", "check your elu_backward"]}),
    "elu_relu_slope": Mistake(
        {"elu_backward": elu("dA * (Z > 0)")},
        {"elu_backward": ["the derivative of relu"], ELU_IN_MLP: ["elu"]}),
    # --- task 4 -----------------------------------------------------------------------------
    "softmax_mse_jacobian_ignored": Mistake(
        {"softmax_mse_backward": softmax_mse("(P - Y) / P.shape[1]  # as for the cross-entropy")},
        {"softmax_mse_backward": ["the softmax's Jacobian is ignored", "diag(p) − p·pᵀ"],
         SOFTMAX_IN_MLP: ["the softmax's Jacobian is ignored", "check your softmax_mse_backward"]},
        in_notebook=True),
    "softmax_mse_summed": Mistake(
        {"softmax_mse_backward": softmax_mse("P * ((P - Y) - (P * (P - Y)).sum(axis=0))")},
        {"softmax_mse_backward": ["times too large", "mean over the batch"],
         SOFTMAX_IN_MLP: ["times too large"]}),
    "softmax_mse_diagonal": Mistake(
        {"softmax_mse_backward": softmax_mse("P * (1 - P) * (P - Y) / P.shape[1]")},
        {"softmax_mse_backward": ["only the diagonal p ⊙ (1 − p)"],
         SOFTMAX_IN_MLP: ["only the diagonal"]}, in_notebook=True),
    "softmax_mse_classes": Mistake(
        {"softmax_mse_backward": softmax_mse(
            "P * ((P - Y) - (P * (P - Y)).sum(axis=0)) / len(P)  # len(P): the rows")},
        {"softmax_mse_backward": ["number of classes n = P.shape[0]", "examples are columns"],
         SOFTMAX_IN_MLP: ["number of outputs n_L = Y.shape[0]"]}),
    # --- task 5 -----------------------------------------------------------------------------
    "mlp_dW_transposed": Mistake(
        {"mlp_backward": mlp_with(dW="As[l - 1] @ dZ.T")},
        {t: ["wrong shape: dW[", "has the shape of the variable it is taken with respect to"]
         for t in BOTH_MLP}),
    "mlp_db_unsummed": Mistake(
        {"mlp_backward": mlp_with(db="dZ")},  # the lecture-note error
        {t: ["wrong shape: db[", "should have shape"] for t in BOTH_MLP}),
    "mlp_summed_loss": Mistake(
        {"mlp_backward": mlp_with(mse_output="through_activation(As[L] - Y, L)")},
        {"mlp_backward_mse": ["times too large", "dA[L] = (A[L] − Y)/N"]}, in_notebook=True),
    "mlp_no_hidden_g_prime": Mistake(
        {"mlp_backward": mlp_with(down="params[l - 1][0].T @ dZ  # dA[l-1] passed on as dZ")},
        {t: ["missing activation derivative in the hidden layers"] for t in BOTH_MLP},
        in_notebook=True),
    "mlp_no_output_g_prime": Mistake(
        {"mlp_backward": mlp_with(mse_output="(As[L] - Y) / N")},
        {"mlp_backward_mse": ["missing activation derivative in the output layer"]}),
    "mlp_g_prime_at_A": Mistake(
        {"mlp_backward": mlp_with(Z="As[l]")},
        {t: ["g′ is evaluated at A[l] = g(Z[l]) instead of Z[l]"] for t in BOTH_MLP}),
    "mlp_g_prime_of_the_layer_above": Mistake(
        {"mlp_backward": code('''
            def mlp_backward(params, cache, Y, activations, loss):
                Zs, As = cache
                L, N = len(params), Y.shape[1]

                def through_activation(dA, Z, name):
                    if name == "elu":
                        return elu_backward(dA, Z, 1.0)
                    return dA * ACTIVATIONS[name].g_prime(Z)

                if loss == "softmax_mse":
                    dZ = softmax_mse_backward(As[L], Y)
                else:
                    dZ = through_activation((As[L] - Y) / N, Zs[L - 1], activations[L - 1])
                grads = [None] * L
                for l in range(L, 0, -1):
                    grads[l - 1] = (dZ @ As[l - 1].T, dZ.sum(axis=1, keepdims=True))
                    if l > 1:  # layer l's activation name, layer l - 1's Z
                        dZ = through_activation(params[l - 1][0].T @ dZ, Zs[l - 2],
                                                activations[l - 1])
                return grads
            ''')},
        # under the softmax there is no g' in ACTIVATIONS: the student's code raises
        {"mlp_backward_mse": ["the activation derivative of the wrong layer"],
         "mlp_backward_softmax_mse": ["raised KeyError", "softmax"]},
        visible={"mlp_backward_mse": ["the activation derivative of the wrong layer"],
                 "mlp_backward_softmax_mse": ["softmax"]}),
    "mlp_hard_coded": Mistake(
        {"mlp_backward": code('''
            def mlp_backward(params, cache, Y, activations, loss):
                flat = visible.tasks["mlp_backward_" + loss]["cases"][0]["expected"]
                return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
            ''')},
        {t: ["hard-coded"] for t in BOTH_MLP}, visible={}),
    "mlp_calls_the_book": Mistake(
        {"mlp_backward": code('''
            import backpropbook.mlp

            def mlp_backward(params, cache, Y, activations, loss):
                return backpropbook.mlp.mlp_backward(params, cache, Y, activations, loss)
            ''')},
        {t: ["backpropbook.mlp.mlp_backward is withheld"] for t in BOTH_MLP},
        # in-process the visible tests run the book's code, which knows no elu and no softmax
        # with the squared error
        visible={t: ["unknown activation"] for t in BOTH_MLP}, in_notebook=True,
        notebook={t: ["backpropbook.mlp.mlp_backward is the book's reference",
                      "not available while grading"] for t in BOTH_MLP}),
    "mlp_torch_autograd": Mistake(
        {"mlp_backward": code('''
            def mlp_backward(params, cache, Y, activations, loss):
                import torch

                g = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
                     "identity": lambda z: z, "elu": torch.nn.functional.elu,
                     "softmax": lambda z: torch.softmax(z, dim=0)}
                leaves = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
                          for W, b in params]
                A = torch.tensor(cache[1][0])
                for (W, b), name in zip(leaves, activations):
                    A = g[name](W @ A + b)
                (0.5 * ((A - torch.tensor(Y)) ** 2).sum() / Y.shape[1]).backward()
                return [(W.grad.numpy(), b.grad.numpy()) for W, b in leaves]
            ''')},
        {t: ["import of torch halted"] for t in BOTH_MLP}, visible={}, in_notebook=True,
        notebook={t: ["torch is not available while grading"] for t in BOTH_MLP}),
}


def test_every_task_has_typical_mistakes_and_some_go_through_the_course():
    assert {task for m in MISTAKES.values() for task in m.hidden} == set(TASKS)
    in_course = [m for m in MISTAKES.values() if m.in_notebook]
    assert len(in_course) >= 10
    assert {task for m in in_course for task in m.hidden} == set(TASKS)
    assert "mlp_calls_the_book" in MISTAKES and "mlp_torch_autograd" in MISTAKES


# ---------------------------------------------------------------------------------------------
# The notebook and its release
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
    assert graded == [t.grade_id for t in matrix.ASSIGNMENT.tasks]
    assert [t.points for t in matrix.ASSIGNMENT.tasks] == [2, 5, 2, 3, 4, 4]
    manual = [c for c in source_nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "markdown"]
    assert [nbgrader_meta(c)["grade_id"] for c in manual] == ["bias_sum"]
    assert nbgrader_meta(manual[0])["solution"] and nbgrader_meta(manual[0])["points"] == 2
    cells = cells_by_grade_id(source_nb)
    for key, task in TASKS.items():
        first, *rest = cells[task.grade_id].source.splitlines()
        assert first.startswith(f'"""{task.name}') and first.endswith('"""'), first
        assert rest == [f'visible.check("{key}", {task.name})',
                        "### BEGIN HIDDEN TESTS",
                        "from backpropgrader.tasks import check",
                        f'check("matrix", "{key}", {task.name}, GRADING_SEED)',
                        "### END HIDDEN TESTS"]
    names = {t.name for t in TASKS.values()}
    assert set(solution_sources(source_nb)) == names
    for name in names:
        stub = cells[name].source.split("### BEGIN SOLUTION")[0]
        assert stub.startswith(f"def {name}(") and '"""' in stub, name
    intro = cells["intro"].source  # the intro's table shows the points
    for name in names:
        row = next(line for line in intro.splitlines() if f"`{name}`" in line)
        points = " + ".join(str(t.points) for t in TASKS.values() if t.name == name)
        assert row.rsplit("|", 2)[1].strip() == points, row
    # the markdown states what the hidden cases hold to
    assert "dX$ is exactly 0" in cells["task2"].source
    assert "$g'(0) = \\alpha$" in cells["task3"].source


def test_setup_cell_imports_only_the_student_side(source_nb):
    setup = cells_by_grade_id(source_nb)["setup"]
    assert nbgrader_meta(setup)["locked"]
    tree = ast.parse(setup.source)
    imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for a in node.names]
    imported += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported == ["numpy", "backpropbook.activations", "backpropbook.selfcheck"]
    assert not set(imported) & set(matrix.WITHHELD)
    assert setup.source.splitlines()[-2:] == [
        'visible = VisibleTests.load("matrix")  # the visible tests\' data, next to this notebook',
        "GRADING_SEED = 0  # the grading command sets one seed per student"]
    # an answer cell imports nothing: the setup cell has everything
    for gid, source in solution_sources(source_nb).items():
        assert not any(isinstance(node, (ast.Import, ast.ImportFrom))
                       for node in ast.walk(ast.parse(source))), gid


def test_release_gives_nothing_away(source_nb):
    assert_release_gives_nothing_away(source_nb, RELEASE)


def test_visible_data_is_what_the_declarations_give():
    """The committed visible tests' data (instructor folder and release) is regenerated, and
    holds the visible cases only: no hidden case, no solution."""
    data = engine.visible_data(matrix.ASSIGNMENT.tasks)
    text = assert_visible_data_current(ASSIGNMENT, data)
    assert set(json.loads(text)["__dict__"]["tasks"]["__dict__"]) == set(TASKS)
    for key, task in TASKS.items():
        stored = data["tasks"][key]
        assert len(stored["cases"]) == len(task.visible) == 1
        assert all(unchanged(a, b) for a, b in zip(task.args(task.visible[0]),
                                                   stored["cases"][0]["args"]))
        assert stored.get("function", key) == task.name
    for source in solution_sources(read(SOURCE)).values():
        for line in source.splitlines():
            assert len(line.strip()) < 25 or line.strip() not in text, line
    # The messages name mistakes; they never state what a task asks to derive (the shipped
    # data is the student's to read).
    messages = " ".join(message for stored in data["tasks"].values()
                        for case in stored["cases"] for message, _ in case["mistakes"])
    assert "the path through the mean mu is missing" in messages
    for derived in ("alpha·e^z", "Σ_j dY", "J·(p_j", "X_hat·Σ"):
        assert derived not in messages, derived


# ---------------------------------------------------------------------------------------------
# The declarations with the instructor's answers and with the mistakes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", TASKS)
def test_instructor_solution_passes_silently(source_nb, visible_tests, key, capsys):
    ns = run_answers(source_nb)
    name = TASKS[key].name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        visible_tests.check(key, ns[name])
        for seed in (0, 1, STUDENT_SEED, (STUDENT_SEED, 7)):
            passes_check(key, ns[name], seed)
    assert caught == []
    assert capsys.readouterr() == ("", "")


def test_visible_test_cells_pass_silently(source_nb, capsys):
    """The visible part of every test cell, as the student runs it, passes the solutions."""
    ns = run_answers(source_nb)
    cells = cells_by_grade_id(source_nb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for task in TASKS.values():
            exec(cells[task.grade_id].source.split("### BEGIN HIDDEN TESTS")[0], dict(ns))
    assert caught == []
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_fails_with_its_message(source_nb, visible_tests, name):
    mistake = MISTAKES[name]
    ns = run_answers(source_nb, mistake.sources)
    for key, task in TASKS.items():
        fn = ns[task.name]
        if key not in mistake.hidden:  # every other task still passes
            passes_check(key, fn, 0)
            visible_tests.check(key, fn)
            continue
        for seed in (0, STUDENT_SEED):
            with pytest.raises(AssertionError) as info:
                passes_check(key, fn, seed)
            for expected in mistake.hidden[key]:
                assert expected in str(info.value), (key, seed, str(info.value))
        if key not in mistake.visible:
            visible_tests.check(key, fn)  # the visible case cannot tell
            continue
        with pytest.raises(Exception) as info:
            visible_tests.check(key, fn)
        for expected in mistake.visible[key]:
            assert expected in str(info.value), (key, "visible", str(info.value))


def test_every_mistake_is_named_on_the_visible_case():
    """Each declared mistake's answer on a visible case is explained as itself there."""
    data = engine.visible_data(matrix.ASSIGNMENT.tasks)["tasks"]
    for key, task in TASKS.items():
        case = task.visible[0]
        expected = task.answer_of(task.oracle, case)
        named = data[key]["cases"][0]["mistakes"]
        assert len(named) >= 5, key
        for message, wrong in named:
            wrong = tuple(np.asarray(w, dtype=float) for w in wrong)
            assert engine.explain(task, case, wrong, expected) == message, (key, message)


# Right answers written otherwise than the instructor's: the tolerance of ten digits must let
# them all through.
def batchnorm_step_by_step(dY, X, gamma, eps):
    """The computational graph's way: one local gradient per forward step."""
    N = X.shape[1]
    X_c = X - X.mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt((X_c ** 2).mean(axis=1, keepdims=True) + eps)
    X_hat = X_c * inv_std
    dX_hat = dY * gamma
    dvar = -0.5 * inv_std ** 3 * (dX_hat * X_c).sum(axis=1, keepdims=True)
    dX_c = dX_hat * inv_std + 2 * X_c * dvar / N
    dX = dX_c - dX_c.sum(axis=1, keepdims=True) / N
    return dX, (dY * X_hat).sum(axis=1, keepdims=True), dY.sum(axis=1, keepdims=True)


def batchnorm_row_jacobians(dY, X, gamma, eps):
    """Row by row, through the full N x N Jacobian of X_hat."""
    n, N = X.shape
    X_c = X - X.mean(axis=1, keepdims=True)
    std = np.sqrt((X_c ** 2).mean(axis=1, keepdims=True) + eps)
    X_hat = X_c / std
    dX = np.empty_like(X)
    for i in range(n):
        J = (np.eye(N) - 1.0 / N - np.outer(X_hat[i], X_hat[i]) / N) / std[i, 0]
        dX[i] = gamma[i, 0] * (J.T @ dY[i])
    return dX, (dY * X_hat).sum(axis=1, keepdims=True), dY.sum(axis=1, keepdims=True)


def elu_by_mask(dA, Z, alpha):
    dZ = dA.copy()
    left = Z <= 0
    dZ[left] *= alpha * (np.expm1(Z[left]) + 1.0)
    return dZ


def softmax_mse_column_by_column(P, Y):
    dZ = np.empty_like(P)
    for j in range(P.shape[1]):
        p = P[:, j]
        dZ[:, j] = (np.diag(p) - np.outer(p, p)).T @ (p - Y[:, j]) / P.shape[1]
    return dZ


def mlp_with_einsum(params, cache, Y, activations, loss):
    Zs, As = cache
    L, N = len(params), Y.shape[1]

    def slope(name, Z):
        if name == "elu":
            return np.where(Z > 0, 1.0, np.exp(np.minimum(Z, 0.0)))
        return ACTIVATIONS[name].g_prime(Z)

    if loss == "softmax_mse":
        dZ = softmax_mse_column_by_column(As[L], Y)
    else:
        dZ = (As[L] - Y) * slope(activations[-1], Zs[-1]) / N
    grads = []
    for l in range(L, 0, -1):
        grads.insert(0, (np.einsum("ij,kj->ik", dZ, As[l - 1]), dZ @ np.ones((N, 1))))
        if l > 1:
            dZ = (params[l - 1][0].T @ dZ) * slope(activations[l - 2], Zs[l - 2])
    return grads


OTHER_RIGHT_ANSWERS = [
    ("batchnorm_backward", batchnorm_step_by_step),
    ("batchnorm_backward", batchnorm_row_jacobians),
    ("elu_backward", elu_by_mask),
    ("softmax_mse_backward", softmax_mse_column_by_column),
    ("mlp_backward_mse", mlp_with_einsum),
    ("mlp_backward_softmax_mse", mlp_with_einsum),
]


@pytest.mark.parametrize("key, fn", OTHER_RIGHT_ANSWERS, ids=lambda v: getattr(v, "__name__", v))
def test_other_right_answers_pass_at_ten_digits(key, fn):
    for seed in range(6):
        passes_check(key, fn, (STUDENT_SEED, seed))


def test_withholding_lasts_only_while_the_student_runs(source_nb):
    """The package and torch are withheld during a check, and work again after it; the torch
    answer is right, so it is the withholding that fails it."""
    import torch

    ns = run_answers(source_nb, MISTAKES["mlp_torch_autograd"].sources)
    for key in BOTH_MLP:
        engine.check(dataclasses.replace(TASKS[key], withheld=()), ns["mlp_backward"], 0)
    ns = run_answers(source_nb, MISTAKES["mlp_calls_the_book"].sources)
    with pytest.raises(AssertionError, match="withheld"):
        passes_check("mlp_backward_mse", ns["mlp_backward"], 0)
    dZ, A, W = np.ones((2, 3)), np.ones((4, 3)), np.ones((2, 4))
    assert layers.linear_backward(dZ, A, W)[0].shape == (2, 4)
    assert float(torch.tensor([2.0]).sum()) == 2.0


# ---------------------------------------------------------------------------------------------
# The book's package code answers none of the tasks, even where it is not withheld
# ---------------------------------------------------------------------------------------------


def binds(fn, params):
    import inspect

    try:
        inspect.signature(fn).bind(*params)
    except TypeError:
        return False
    return True


def package_functions():
    """Every public function of the modules that hold the chapter's layers and networks, and
    every activation's g and g'."""
    import inspect

    found = [(f"{m.__name__}.{name}", fn) for m in (layers, mlp, conventions)
             for name, fn in vars(m).items()
             if inspect.isfunction(fn) and fn.__module__ == m.__name__ and name[0] != "_"]
    found += [(f"ACTIVATIONS[{name!r}].{part}", getattr(act, part))
              for name, act in ACTIVATIONS.items() for part in ("g", "g_prime")]
    return found


@pytest.mark.parametrize("key", TASKS)
def test_no_package_function_answers_the_task(key):
    unguarded = dataclasses.replace(TASKS[key], withheld=())
    tried = [(label, fn) for label, fn in package_functions() if binds(fn, TASKS[key].params)]
    assert tried or key == "gradient_shapes"
    leaks = [label for label, fn in tried for seed in (0, STUDENT_SEED)
             if engine.passes(unguarded, fn, seed)]
    assert not leaks


# The package functions the old tasks asked for, each wrong here for the reason it names.
BOOK = {
    "softmax_mse_backward": [(layers.softmax_cross_entropy_backward, "Jacobian is ignored"),
                             (layers.mse_backward, "Jacobian is ignored")],
    "elu_backward": [(lambda dA, Z, alpha: layers.activation_backward(dA, Z, "relu"),
                      "the derivative of relu")],
    "mlp_backward_mse": [(mlp.mlp_backward, "unknown activation 'elu'")],
    "mlp_backward_softmax_mse": [
        (mlp.mlp_backward, "unknown activation 'softmax'"),
        # its softmax output is the cross-entropy's: dZ[L] = (P - Y)/N
        (lambda params, cache, Y, activations, loss: mlp.mlp_backward(
            params, cache, Y, activations, "cross_entropy"), "the softmax's Jacobian is ignored")],
}


@pytest.mark.parametrize("key", sorted(BOOK))
def test_the_books_code_gives_a_named_wrong_answer(key):
    for fn, message in BOOK[key]:
        with pytest.raises(AssertionError, match=message):
            engine.check(dataclasses.replace(TASKS[key], withheld=()), fn, STUDENT_SEED)
        with pytest.raises(AssertionError, match="is withheld while this task is graded"):
            engine.check(TASKS[key], fn, STUDENT_SEED)


# ---------------------------------------------------------------------------------------------
# The oracles, against centered differences of forward passes written here in NumPy
# ---------------------------------------------------------------------------------------------


def batchnorm_differences(dY, X, gamma, eps):
    """(dX, dgamma) by centered differences of sum(dY * Y), whose dE/dY is dY."""
    def loss(X, gamma):
        X_c = X - X.mean(axis=1, keepdims=True)
        std = np.sqrt((X_c ** 2).mean(axis=1, keepdims=True) + eps)
        return float(np.sum(dY * gamma * X_c / std))
    return (centered_difference(lambda X_: loss(X_, gamma), X),
            centered_difference(lambda gamma_: loss(X, gamma_), gamma))


def elu_differences(dA, Z, alpha):
    def loss(Z):
        return float(np.sum(dA * np.where(Z > 0, Z, alpha * np.expm1(np.minimum(Z, 0)))))
    return centered_difference(loss, Z)


def softmax_mse_differences(P, Y):
    """dZ at Z = log P, where softmax(Z) = P."""
    def loss(Z):
        E = np.exp(Z - Z.max(axis=0))
        return float(0.5 * np.sum((E / E.sum(axis=0) - Y) ** 2) / Y.shape[1])
    return centered_difference(loss, np.log(P))


def mlp_differences(params, X, Y, activations):
    """[(dW, db), ...] by centered differences of E = 1/(2N) ||A[L] - Y||^2."""
    g = {**{name: act.g for name, act in ACTIVATIONS.items()},
         "elu": lambda Z: np.where(Z > 0, Z, np.expm1(np.minimum(Z, 0))),
         "softmax": lambda Z: np.exp(Z) / np.exp(Z).sum(axis=0)}

    def loss(changed):
        A = X
        for (W, b), name in zip(changed, activations):
            A = g[name](W @ A + b)
        return float(0.5 * np.sum((A - Y) ** 2) / Y.shape[1])

    def with_layer(l, W, b):
        return [(W, b) if k == l else pair for k, pair in enumerate(params)]

    return [(centered_difference(lambda W_, l=l, b=b: loss(with_layer(l, W_, b)), W),
             centered_difference(lambda b_, l=l, W=W: loss(with_layer(l, W, b_)), b))
            for l, (W, b) in enumerate(params)]


def close_to_differences(actual, numeric):
    return np.allclose(actual, numeric, rtol=1e-6, atol=1e-8)


def test_batchnorm_oracle_agrees_with_centered_differences():
    task = TASKS["batchnorm_backward"]
    for case in task.cases(np.random.default_rng(3)):
        dY, X, gamma, eps = task.args(case)
        dX, dgamma, dbeta = task.answer_of(task.oracle, case)
        numeric_dX, numeric_dgamma = batchnorm_differences(dY, X, gamma, eps)
        assert close_to_differences(dX, numeric_dX)
        assert close_to_differences(dgamma, numeric_dgamma)
        assert np.allclose(dbeta, dY.sum(axis=1, keepdims=True), rtol=1e-13, atol=1e-15)
        if X.shape[1] == 1:  # X_hat = 0 and Y = beta: X has no influence at all
            assert np.all(dX == 0.0) and np.all(dgamma == 0.0)


def test_elu_oracle_agrees_with_centered_differences_and_takes_alpha_at_the_kink():
    task = TASKS["elu_backward"]
    for case in task.cases(np.random.default_rng(4)):
        dA, Z, alpha = task.args(case)
        (dZ,) = task.answer_of(task.oracle, case)
        away = np.abs(Z) > 1e-3  # a centered difference across the kink averages two slopes
        assert close_to_differences(dZ[away], elu_differences(dA, Z, alpha)[away])
        assert np.any(Z == 0)
        assert np.array_equal(dZ[Z == 0], alpha * dA[Z == 0])  # torch's elu: g'(0) = alpha


def test_softmax_mse_oracle_agrees_with_centered_differences():
    task = TASKS["softmax_mse_backward"]
    for case in task.cases(np.random.default_rng(5)):
        (dZ,) = task.answer_of(task.oracle, case)
        assert close_to_differences(dZ, softmax_mse_differences(*task.args(case)))


@pytest.mark.parametrize("key", BOTH_MLP)
def test_mlp_oracle_agrees_with_centered_differences(key):
    task = TASKS[key]
    for case in task.cases(np.random.default_rng(6))[:5]:
        params, (_, As), Y, activations, _ = task.args(case)
        numeric = mlp_differences(params, As[0], Y, activations)
        expected = task.answer_of(task.oracle, case)
        for ours, theirs in zip(expected, [a for pair in numeric for a in pair]):
            assert close_to_differences(ours, theirs)


# What a student gets from the book's centered_difference and the forward pass: right to
# about eight digits.
CENTERED_DIFFERENCE_ANSWERS = {
    "batchnorm_backward": lambda dY, X, gamma, eps: (
        *batchnorm_differences(dY, X, gamma, eps), dY.sum(axis=1, keepdims=True)),
    "softmax_mse_backward": softmax_mse_differences,
    **{key: lambda params, cache, Y, activations, loss: mlp_differences(
        params, cache[1][0], Y, activations) for key in BOTH_MLP},
}


@pytest.mark.parametrize("key", sorted(CENTERED_DIFFERENCE_ANSWERS))
def test_a_centered_difference_is_not_precise_enough(key):
    unguarded = dataclasses.replace(TASKS[key], withheld=())
    for seed in (0, STUDENT_SEED):
        with pytest.raises(AssertionError, match="cases wrong"):
            engine.check(unguarded, CENTERED_DIFFERENCE_ANSWERS[key], seed)


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------


def test_cases_are_non_square_with_batches_of_one_and_differ_by_seed():
    def draw(key, seed):
        return TASKS[key].cases(np.random.default_rng(engine.task_seed(seed, TASKS[key])))

    shapes_cases = draw("gradient_shapes", STUDENT_SEED)
    assert all(len({c["n_prev"], c["n"], c["N"]}) == 3 for c in shapes_cases)
    assert {1} <= {c["N"] for c in shapes_cases} and any(c["n_prev"] == 1 for c in shapes_cases)
    norm = draw("batchnorm_backward", STUDENT_SEED)
    batches = [c["X"].shape[1] for c in norm]
    assert {1, 2} <= set(batches) and sum(N >= 3 for N in batches) >= 5
    assert all(c["X"].shape[0] != c["X"].shape[1] for c in norm)
    assert len({c["eps"] for c in norm}) > 1
    units = draw("elu_backward", STUDENT_SEED)
    assert all(np.any(c["Z"] == 0) for c in units) and 1 in {c["Z"].shape[1] for c in units}
    assert sum(c["alpha"] != 1 for c in units) >= len(units) - 1
    classes = draw("softmax_mse_backward", STUDENT_SEED)
    assert {1, 2} <= {c["P"].shape[1] for c in classes}
    assert all(c["P"].shape[0] >= 2 and c["P"].shape[0] != c["P"].shape[1] for c in classes)
    for key in BOTH_MLP:
        networks = draw(key, STUDENT_SEED)
        assert {len(c["params"]) for c in networks} == {1, 2, 3, 4}
        assert 1 in {c["Y"].shape[1] for c in networks}
        for c in networks:
            sizes = [c["params"][0][0].shape[1]] + [W.shape[0] for W, _ in c["params"]]
            assert all(a != b for a, b in zip(sizes[:-1], sizes[1:])), sizes  # no square W
            assert c["Y"].shape[1] == 1 or c["Y"].shape[1] not in sizes
            assert ("elu" in c["activations"]) == (key == "mlp_backward_mse")
            assert (c["activations"][-1] == "softmax") == (key == "mlp_backward_softmax_mse")
        other = draw(key, STUDENT_SEED + 1)
        assert not np.array_equal(networks[0]["params"][0][0], other[0]["params"][0][0])


# ---------------------------------------------------------------------------------------------
# A real nbgrader course: one run of the grading command for every submission
# ---------------------------------------------------------------------------------------------


(test_release_is_what_nbgrader_generates, test_instructor_notebook_scores_full_marks,
 test_untouched_release_scores_zero, test_mistake_loses_exactly_its_points) = course_tests(
    ASSIGNMENT, TASKS, MISTAKES)
