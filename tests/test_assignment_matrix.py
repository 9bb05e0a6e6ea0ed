"""The matrix-backprop assignment: its release, its grading module, and a real nbgrader course.

- the release in exercises/ is exactly what nbgrader generates from solutions/ and gives away
  no solution and no hidden test;
- the grading module (backpropbook.grading.matrix) passes the instructor's solutions silently,
  draws non-square cases from each student's seed, and fails each typical mistake (transposed
  product, unsummed bias, factor N, missing g′, wrong product order, wrong shape, hard-coded
  answer, calling the package or torch) with a message that names it;
- in a temporary nbgrader course, the instructor notebook scores full marks, the untouched
  release scores 0, and each submission with a typical mistake loses exactly the points of the
  tests it should fail, with the right message in the autograded notebook. All submissions are
  graded by one run of the sandboxed grading command (``python -m backpropgrader``).
"""

import functools
import re
import textwrap
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest

import backpropbook.layers
import backpropbook.mlp
from backpropbook import oracles
from backpropbook.grading import matrix as grading
from nbgrader_course import (
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

pytestmark = [pytest.mark.matrix]

ASSIGNMENT = NOTEBOOK = "matrix"
SOURCE = REPO / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
RELEASE = REPO / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"

# test cell -> (check function, the student's function it checks)
CHECKS = {
    "test_gradient_shapes": (grading.check_gradient_shapes, "gradient_shapes"),
    "test_linear_backward": (grading.check_linear_backward, "linear_backward"),
    "test_activation_backward": (grading.check_activation_backward, "activation_backward"),
    "test_softmax_cross_entropy_backward": (grading.check_softmax_cross_entropy_backward,
                                            "softmax_cross_entropy_backward"),
    "test_mlp_backward_mse": (functools.partial(grading.check_mlp_backward, loss="mse"),
                              "mlp_backward"),
    "test_mlp_backward_cross_entropy": (
        functools.partial(grading.check_mlp_backward, loss="cross_entropy"), "mlp_backward"),
}
MLP_TESTS = ("test_mlp_backward_mse", "test_mlp_backward_cross_entropy")
# A student's 64-bit seed, as the grading command sets GRADING_SEED.
STUDENT_SEED = 0xC0FFEE_5EED_0BAD_F00D


def linear(dW="dZ @ A_prev.T", db="dZ.sum(axis=1, keepdims=True)", dA_prev="W.T @ dZ"):
    """A linear_backward with the given expressions."""
    return code(f'''
        def linear_backward(dZ, A_prev, W):
            return {dW}, {db}, {dA_prev}
        ''')


MLP_HEAD = '''
def mlp_backward(params, cache, Y, activations, loss):
    Zs, As = cache
    L = len(params)
    N = Y.shape[1]
'''

MLP_OUTPUT = '''
if loss == "cross_entropy":
    dZ = softmax_cross_entropy_backward(As[L], Y)
else:
    dZ = activation_backward((As[L] - Y) / N, Zs[L - 1], activations[L - 1])
'''

MLP_LOOP = '''
grads = [None] * L
for l in range(L, 0, -1):
    dW, db, dA_prev = linear_backward(dZ, As[l - 1], params[l - 1][0])
    grads[l - 1] = (dW, db)
    if l > 1:
        dZ = activation_backward(dA_prev, Zs[l - 2], activations[l - 2])
return grads
'''


def mlp(output=MLP_OUTPUT, loop=MLP_LOOP):
    """An mlp_backward made of the common head and the given output step and loop."""
    return code(MLP_HEAD) + "\n" + textwrap.indent(code(output) + "\n" + code(loop), "    ")


@dataclass
class Mistake:
    """Student code for some solution cells, the test cells it must fail, and their messages."""

    sources: dict
    messages: dict  # failing test cell -> substrings its message must contain
    in_notebook: bool = True  # also graded in the real nbgrader course
    course_messages: dict = field(default_factory=dict)  # other substrings in the course
    extra_seeds: tuple = (0, (STUDENT_SEED, 7))  # more seeds for the checks it fails


BOTH_MLP = MLP_TESTS

MISTAKES = {
    # --- graded in the real course too ------------------------------------------------------
    "dW_transposed": Mistake(
        {"linear_backward": linear(dW="A_prev @ dZ.T")},
        {"test_linear_backward": ["dW is transposed", "A_prev·dZᵀ"],
         **{t: ["dW is transposed", "check your linear_backward"] for t in BOTH_MLP}},
    ),
    "db_unsummed": Mistake(
        {"linear_backward": linear(db="dZ")},  # the lecture-note error
        {"test_linear_backward": ["db is not summed over the batch", "lecture notes"],
         **{t: ["db is not summed over the batch"] for t in BOTH_MLP}},
    ),
    "dA_prev_product_order": Mistake(
        {"linear_backward": linear(dA_prev="dZ.T @ W")},
        {"test_linear_backward": ["wrong product order", "Wᵀ·dZ"],
         **{t: ["mlp_backward", "raised ValueError", "broadcast"] for t in BOTH_MLP}},
    ),
    "g_prime_of_A": Mistake(
        {"activation_backward": code('''
            def activation_backward(dA, Z, activation):
                act = ACTIVATIONS[activation]
                return dA * act.g_prime(act.g(Z))  # g' of the activation A
            ''')},
        {"test_activation_backward": ["g′ is evaluated at A = g(Z) instead of Z"],
         **{t: ["g′ is evaluated at A[l] = g(Z[l]) instead of Z[l]"] for t in BOTH_MLP}},
    ),
    "ce_summed_not_mean": Mistake(
        {"softmax_cross_entropy_backward": code('''
            def softmax_cross_entropy_backward(P, Y):
                return P - Y  # the gradient of the summed loss
            ''')},
        {"test_softmax_cross_entropy_backward": ["times too large", "mean over the batch"],
         "test_mlp_backward_cross_entropy": ["N times too large",
                                             "check your softmax_cross_entropy_backward"]},
    ),
    "missing_hidden_g_prime": Mistake(
        {"mlp_backward": mlp(loop='''
            grads = [None] * L
            for l in range(L, 0, -1):
                dW, db, dZ = linear_backward(dZ, As[l - 1], params[l - 1][0])  # dZ[l-1] = dA[l-1]?
                grads[l - 1] = (dW, db)
            return grads
            ''')},
        {t: ["missing activation derivative in the hidden layers"] for t in BOTH_MLP},
    ),
    "missing_output_g_prime": Mistake(
        {"mlp_backward": mlp(output='''
            if loss == "cross_entropy":
                dZ = softmax_cross_entropy_backward(As[L], Y)
            else:
                dZ = (As[L] - Y) / N  # g'(Z[L]) forgotten
            ''')},
        {"test_mlp_backward_mse": ["missing activation derivative in the output layer"]},
    ),
    "rows_and_columns_mixed_up": Mistake(  # two independent cells, one confusion
        {"gradient_shapes": code('''
            def gradient_shapes(n_prev, n, N):
                return {"W": (n, n_prev), "b": (n, 1), "A_prev": (n_prev, N), "Z": (n, N),
                        "dZ": (n, N), "dW": (n_prev, n), "db": (n, 1), "dA_prev": (n_prev, N)}
            '''),
         "softmax_cross_entropy_backward": code('''
            def softmax_cross_entropy_backward(P, Y):
                return (P - Y) / len(P)  # len(P) is the number of rows: the classes
            ''')},
        {"test_gradient_shapes": ["dW is transposed", "W's shape (n, n_prev)"],
         "test_softmax_cross_entropy_backward": ["number of classes n = P.shape[0]",
                                                 "examples are columns"],
         "test_mlp_backward_cross_entropy": ["number of outputs n_L = Y.shape[0]"]},
    ),
    "shapes_hard_coded": Mistake(
        {"gradient_shapes": code('''
            def gradient_shapes(n_prev, n, N):
                return {"W": (2, 3), "b": (2, 1), "A_prev": (3, 4), "Z": (2, 4),
                        "dZ": (2, 4), "dW": (2, 3), "db": (2, 1), "dA_prev": (3, 4)}
            ''')},
        {"test_gradient_shapes": ["hard-coded"]},
    ),
    "calls_package_reference": Mistake(
        {"linear_backward": code('''
            import backpropbook.layers

            def linear_backward(dZ, A_prev, W):
                return backpropbook.layers.linear_backward(dZ, A_prev, W)
            ''')},
        {t: ["reference implementation", "backpropbook.layers.linear_backward"]
         for t in ("test_linear_backward", *BOTH_MLP)},
    ),
    "uses_torch_autograd": Mistake(
        {"activation_backward": code('''
            def activation_backward(dA, Z, activation):
                import torch

                Z_t = torch.tensor(Z, requires_grad=True)
                A = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
                     "identity": lambda z: z * 1.0}[activation](Z_t)
                (A * torch.tensor(dA)).sum().backward()
                return Z_t.grad.numpy()
            ''')},
        {t: ["torch.autograd.backward", "write the backward pass yourself"]
         for t in ("test_activation_backward", *BOTH_MLP)},
        course_messages={t: ["ImportError", "torch is not available while grading"]
                         for t in ("test_activation_backward", *BOTH_MLP)},
    ),
    # --- unit tests of the grading module only ----------------------------------------------
    "db_flat": Mistake(
        {"linear_backward": linear(db="dZ.sum(axis=1)")},
        {"test_linear_backward": ["db has shape (n,)", "a flat array", "keepdims=True"],
         **{t: ["db has shape (n_l,), a flat array"] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "db_mean": Mistake(
        {"linear_backward": linear(db="dZ.mean(axis=1, keepdims=True)")},
        {"test_linear_backward": ["db is off by a factor 1/N", "plain sum"],
         **{t: ["db is N times too small"] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "db_over_units": Mistake(
        {"linear_backward": linear(db="dZ.sum(axis=0, keepdims=True)")},
        {"test_linear_backward": ["summed over the units (axis=0)"],
         **{t: [] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "dW_over_N": Mistake(
        {"linear_backward": linear(dW="dZ @ A_prev.T / dZ.shape[1]")},
        {"test_linear_backward": ["dW is off by a factor 1/N"],
         **{t: ["dW is N times too small"] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "dW_sign": Mistake(
        {"linear_backward": linear(dW="-(dZ @ A_prev.T)")},
        {"test_linear_backward": ["wrong sign"], **{t: [] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "linear_wrong_order": Mistake(
        {"linear_backward": code('''
            def linear_backward(dZ, A_prev, W):
                return W.T @ dZ, dZ.sum(axis=1, keepdims=True), dZ @ A_prev.T
            ''')},
        {"test_linear_backward": ["wrong order", "(dW, db, dA_prev)"],
         **{t: [] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "linear_hard_coded": Mistake(
        {"linear_backward": code('''
            def linear_backward(dZ, A_prev, W):
                return (np.array([[-0.15, 0.65, -0.04], [0.3, -0.3, 0.29]]),
                        np.array([[0.2], [0.4]]),
                        np.array([[0.37, 0.03, -0.22, 0.14], [0.1, 0.13, -0.27, 0.06],
                                  [0.0, -0.22, 0.38, -0.04]]))
            ''')},
        {"test_linear_backward": ["hard-coded"], **{t: [] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "linear_returns_dict": Mistake(
        {"linear_backward": code('''
            def linear_backward(dZ, A_prev, W):
                return {"dW": dZ @ A_prev.T, "db": dZ.sum(axis=1, keepdims=True),
                        "dA_prev": W.T @ dZ}
            ''')},
        {"test_linear_backward": ["wrong return type", "triple (dW, db, dA_prev)"],
         **{t: [] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "linear_modifies_dZ": Mistake(
        {"linear_backward": code('''
            def linear_backward(dZ, A_prev, W):
                dW, db, dA_prev = dZ @ A_prev.T, dZ.sum(axis=1, keepdims=True), W.T @ dZ
                dZ[...] = 0.0  # "done with it": but the caller's array changes
                return dW, db, dA_prev
            ''')},
        {"test_linear_backward": ["modified its argument dZ"]},
        in_notebook=False,
    ),
    "activation_missing_g_prime": Mistake(
        {"activation_backward": code('''
            def activation_backward(dA, Z, activation):
                return dA.copy()
            ''')},
        {"test_activation_backward": ["missing activation derivative", "you returned dA"],
         **{t: [] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "activation_matrix_product": Mistake(
        {"activation_backward": code('''
            def activation_backward(dA, Z, activation):
                return dA @ ACTIVATIONS[activation].g_prime(Z).T
            ''')},
        {"test_activation_backward": ["matrix product", "elementwise"],
         **{t: ["The shapes do not fit"] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "activation_always_sigmoid": Mistake(
        {"activation_backward": code('''
            def activation_backward(dA, Z, activation):
                return dA * ACTIVATIONS["sigmoid"].g_prime(Z)
            ''')},
        {"test_activation_backward": ["used g′ of sigmoid although activation"],
         **{t: [] for t in BOTH_MLP}},
        in_notebook=False,
    ),
    "ce_sign": Mistake(
        {"softmax_cross_entropy_backward": code('''
            def softmax_cross_entropy_backward(P, Y):
                return (Y - P) / P.shape[1]
            ''')},
        {"test_softmax_cross_entropy_backward": ["wrong sign", "(P − Y)/N"],
         "test_mlp_backward_cross_entropy": ["wrong sign"]},
        in_notebook=False,
    ),
    "ce_gradient_wrt_P": Mistake(
        {"softmax_cross_entropy_backward": code('''
            def softmax_cross_entropy_backward(P, Y):
                return -Y / P / P.shape[1]
            ''')},
        {"test_softmax_cross_entropy_backward": ["∂E/∂P = −Y/(N·P)"],
         "test_mlp_backward_cross_entropy": ["∂E/∂P = −Y/(N·P)"]},
        in_notebook=False,
    ),
    "ce_hard_coded": Mistake(
        {"softmax_cross_entropy_backward": code('''
            def softmax_cross_entropy_backward(P, Y):
                Z = np.array([[1.0, -0.5, 0.0, 2.0], [0.2, 0.3, -1.0, 0.0], [-1.0, 1.5, 0.5, 1.0]])
                Y = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
                return (np.exp(Z) / np.exp(Z).sum(axis=0) - Y) / 4
            ''')},
        {"test_softmax_cross_entropy_backward": ["hard-coded"],
         "test_mlp_backward_cross_entropy": []},
        in_notebook=False,
    ),
    "mse_summed_not_mean": Mistake(
        {"mlp_backward": mlp(output='''
            if loss == "cross_entropy":
                dZ = softmax_cross_entropy_backward(As[L], Y)
            else:
                dZ = activation_backward(As[L] - Y, Zs[L - 1], activations[L - 1])
            ''')},
        {"test_mlp_backward_mse": ["every gradient is N times too large", "(A[L] − Y)/N"]},
        in_notebook=False,
    ),
    "mlp_reversed": Mistake(
        {"mlp_backward": mlp(loop='''
            grads = []
            for l in range(L, 0, -1):
                dW, db, dA_prev = linear_backward(dZ, As[l - 1], params[l - 1][0])
                grads.append((dW, db))  # layer L first
                if l > 1:
                    dZ = activation_backward(dA_prev, Zs[l - 2], activations[l - 2])
            return grads
            ''')},
        {t: ["reverse order", "layer 1 first"] for t in BOTH_MLP},
        in_notebook=False,
    ),
    "mlp_only_dW": Mistake(
        {"mlp_backward": mlp(loop='''
            grads = [None] * L
            for l in range(L, 0, -1):
                dW, db, dA_prev = linear_backward(dZ, As[l - 1], params[l - 1][0])
                grads[l - 1] = dW
                if l > 1:
                    dZ = activation_backward(dA_prev, Zs[l - 2], activations[l - 2])
            return grads
            ''')},
        {t: ["wrong return type", "pair (dW, db)"] for t in BOTH_MLP},
        in_notebook=False,
    ),
    "mlp_modifies_cache": Mistake(
        {"mlp_backward": mlp(output='''
            As[L] -= Y  # changes the cache
            if loss == "cross_entropy":
                dZ = softmax_cross_entropy_backward(As[L] + Y, Y)
            else:
                dZ = activation_backward(As[L] / N, Zs[L - 1], activations[L - 1])
            ''')},
        {t: ["modified its arguments"] for t in BOTH_MLP},
        in_notebook=False,
    ),
    "mlp_calls_package": Mistake(
        {"mlp_backward": code('''
            from backpropbook.mlp import mlp_backward as reference

            def mlp_backward(params, cache, Y, activations, loss):
                return reference(params, cache, Y, activations, loss)
            ''')},
        {t: ["reference implementation", "backpropbook.mlp.mlp_backward"] for t in BOTH_MLP},
        in_notebook=False,
    ),
    "mlp_calls_torch_oracle": Mistake(
        {"mlp_backward": code('''
            from backpropbook.oracles import mlp_gradients_torch

            def mlp_backward(params, cache, Y, activations, loss):
                Zs, As = cache
                return mlp_gradients_torch(params, As[0], Y, activations, loss)
            ''')},
        {t: ["reference implementation", "mlp_gradients_torch"] for t in BOTH_MLP},
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
    assert [nbgrader_meta(c)["grade_id"] for c in manual] == ["bias_sum"]
    assert nbgrader_meta(manual[0])["solution"] and nbgrader_meta(manual[0])["points"] == 2
    cells = cells_by_grade_id(source_nb)
    assert nbgrader_meta(cells["setup"])["locked"]
    assert "import torch" not in cells["setup"].source
    for gid in CHECKS:
        lines = cells[gid].source.splitlines()
        assert re.fullmatch(r'""".+"""', lines[0]), f"{gid}: no one-line docstring first"
        begin, end = lines.index("### BEGIN HIDDEN TESTS"), lines.index("### END HIDDEN TESTS")
        assert end == len(lines) - 1 and end == begin + 2, gid
        assert "grading.check_" in lines[begin + 1], gid
        assert any(line.lstrip().startswith("assert") for line in lines[:begin]), \
            f"{gid}: no visible test"
        assert any("grading.explain_" in line for line in lines[:begin]), gid
    for gid in solution_sources(source_nb):
        stub = cells[gid].source.split("### BEGIN SOLUTION")[0]
        assert '"""' in stub, f"{gid}: no docstring stub"
    # The stub states the decision about db's shape.
    assert "(n,) is not accepted" in cells["linear_backward"].source


@pytest.mark.xdist_group("matrix_course")
@pytest.mark.grading
def test_release_is_what_nbgrader_generates(course):
    assert_release_is_generated(RELEASE, course.root / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")


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
    constants = [hidden_seed(source_nb, gid)[1] for gid in CHECKS]
    assert len(set(constants)) == len(constants)


def test_student_seeds_draw_different_non_square_cases():
    one = grading._shape_cases(np.random.default_rng((STUDENT_SEED, 2201)))
    other = grading._shape_cases(np.random.default_rng((STUDENT_SEED + 1, 2201)))
    again = grading._shape_cases(np.random.default_rng((STUDENT_SEED, 2201)))
    assert one == again and one != other
    for cases in (one, other):
        assert all(len(set(case)) == 3 for case in cases)  # n_prev, n and N all differ
        assert {1} <= {case[2] for case in cases}  # a batch of one
        assert any(case[0] == 1 for case in cases) and any(case[1] == 1 for case in cases)
    for loss in grading.LOSSES:
        a = grading._mlp_cases(np.random.default_rng((STUDENT_SEED, 2501)), loss)
        b = grading._mlp_cases(np.random.default_rng((STUDENT_SEED + 1, 2501)), loss)
        assert not np.array_equal(a[0]["X"], b[0]["X"])
        for case in a + b:
            sizes = [case["X"].shape[0]] + [W.shape[0] for W, _ in case["params"]]
            assert all(x != y for x, y in zip(sizes[:-1], sizes[1:])), sizes  # no square W
            N = case["X"].shape[1]
            assert N == 1 or N not in sizes
        assert {len(c["params"]) for c in a} == {1, 2, 3, 4}
        assert {c["X"].shape[1] for c in a} >= {1}


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


def test_visible_tests_pass_silently(source_nb, capsys):
    """The instructor's solutions pass every visible test, as the student runs them."""
    ns = run_answers(source_nb)
    cells = cells_by_grade_id(source_nb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for gid in CHECKS:
            exec(cells[gid].source.split("### BEGIN HIDDEN TESTS")[0], dict(ns))
    assert caught == []
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_fails_with_its_message(source_nb, name):
    mistake = MISTAKES[name]
    ns = run_answers(source_nb, mistake.sources)
    for test_id, (check, fn_name) in CHECKS.items():
        if test_id not in mistake.messages:
            check(ns[fn_name], seed=hidden_seed(source_nb, test_id))  # the other tasks pass
            continue
        for seed in (hidden_seed(source_nb, test_id), *mistake.extra_seeds):
            with pytest.raises(AssertionError) as info:
                check(ns[fn_name], seed=seed)
            for expected in mistake.messages[test_id]:
                assert expected in str(info.value), (test_id, seed, str(info.value))


def test_checks_restore_the_package_functions(source_nb):
    """A blocked call fails, and afterwards the package and torch work as before."""
    import torch

    ns = run_answers(source_nb, MISTAKES["calls_package_reference"].sources)
    with pytest.raises(AssertionError, match="reference implementation"):
        grading.check_linear_backward(ns["linear_backward"], seed=0)
    ns = run_answers(source_nb, MISTAKES["uses_torch_autograd"].sources)
    with pytest.raises(AssertionError, match="torch.autograd.backward"):
        grading.check_activation_backward(ns["activation_backward"], seed=0)
    rng = np.random.default_rng(0)
    dZ, A, W = rng.normal(size=(2, 5)), rng.normal(size=(3, 5)), rng.normal(size=(2, 3))
    dW, db, dA = backpropbook.layers.linear_backward(dZ, A, W)
    assert np.allclose(dW, dZ @ A.T) and db.shape == (2, 1) and dA.shape == (3, 5)
    params = backpropbook.mlp.init_params([3, 2], rng)
    _, cache = backpropbook.mlp.mlp_forward(params, A, "tanh")
    assert backpropbook.mlp.mlp_backward(params, cache, rng.normal(size=(2, 5)), "tanh")
    x = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    (x ** 2).sum().backward()
    assert float(x.grad) == 4.0
    assert torch.autograd.grad((x ** 3).sum(), x)[0].item() == 12.0


def test_checks_pass_plain_data_only(source_nb):
    """The student's functions get arrays, lists/tuples of them, ints and names, nothing else:
    what the sandboxed grader can send."""
    ns = run_answers(source_nb)
    seen = []

    def plain(value):
        if isinstance(value, np.ndarray):
            return value.dtype == np.float64
        if isinstance(value, (list, tuple)):
            return all(plain(v) for v in value)
        return type(value) in (int, float, str)

    for test_id, (check, name) in CHECKS.items():
        def recording(*args, _fn=ns[name], **kwargs):
            seen.append((name, args, kwargs))
            return _fn(*args, **kwargs)

        check(recording, seed=hidden_seed(source_nb, test_id))
    assert {name for name, _, _ in seen} == {name for _, name in CHECKS.values()}
    for name, args, kwargs in seen:
        assert not kwargs and plain(list(args)), (name, [type(a) for a in args])


def test_oracles_agree():
    """torch.autograd, the module's own recursion and centered differences give one gradient."""
    rng = np.random.default_rng(11)
    for loss in grading.LOSSES:
        for case in grading._mlp_cases(rng, loss)[:4]:
            params, X, Y, acts = case["params"], case["X"], case["Y"], case["activations"]
            Zs, As = grading.forward(params, X, acts, loss)
            mine = grading._mlp_backward(params, Zs, As, Y, acts, loss)
            torch_ = oracles.mlp_gradients_torch(params, X, Y, acts, loss)
            numeric = grading.numerical_gradients(params, X, Y, acts, loss)
            for a, b, c in zip(grading._flat(mine), grading._flat(torch_),
                               grading._flat(numeric)):
                assert np.allclose(a, b, rtol=1e-12, atol=1e-14)
                assert np.allclose(a, c, rtol=1e-5, atol=1e-8)
    dZ, A, W = rng.normal(size=(2, 5)), rng.normal(size=(3, 5)), rng.normal(size=(2, 3))
    for a, b in zip(grading._linear(dZ, A, W), grading._torch_linear(dZ, A, W)):
        assert a.shape == b.shape and np.allclose(a, b, rtol=1e-12)
    P, Y = grading.softmax(rng.normal(size=(4, 3))), grading._one_hot(rng, 4, 3)
    assert np.allclose(grading._torch_softmax_ce(np.log(P), Y), (P - Y) / 3, rtol=1e-12)


def test_visible_cases_are_the_notebooks(source_nb):
    """VISIBLE (used to spot hard-coded answers) holds what the visible tests use."""
    cells = cells_by_grade_id(source_nb)
    for gid, loss in zip(MLP_TESTS, grading.LOSSES):
        ns = {}
        exec(cells["setup"].source, ns)
        ns["mlp_backward"] = lambda *args: grading._mlp_backward(
            args[0], *args[1], *args[2:])
        exec(cells[gid].source.split("### BEGIN HIDDEN TESTS")[0], ns)
        params, X, Y, acts = grading._visible_mlp(loss)
        assert np.array_equal(ns["X"], X) and np.array_equal(ns["Y"], Y)
        assert ns["activations"] == acts
        assert all(np.array_equal(a, b) for a, b in zip(grading._flat(ns["params"]),
                                                         grading._flat(params)))
    text = cells["test_linear_backward"].source
    for name in ("dZ", "A_prev", "W"):
        ns = {"np": np}
        line = next(ln for ln in text.splitlines() if ln.startswith(f"{name} = "))
        exec(line, ns)
        assert np.array_equal(ns[name], grading.VISIBLE["linear"][name])
    assert "gradient_shapes(3, 2, 4)" in cells["test_gradient_shapes"].source
    assert grading.VISIBLE["shapes"] == (3, 2, 4)


def test_explain_tells_each_variant_apart():
    """On the visible cases, each mistake variant is explained as itself, a right answer as ''."""
    v = grading.VISIBLE["linear"]
    args = (v["dZ"], v["A_prev"], v["W"])
    right = grading._linear(*args)
    assert grading.explain_linear_backward(*args, *right) == ""
    for component, variants in grading._linear_variants(*args).items():
        seen = set()
        for message, (value,) in variants:
            if message in seen:
                continue
            seen.add(message)
            answer = list(right)
            answer[("dW", "db", "dA_prev").index(component)] = value
            assert grading.explain_linear_backward(*args, *answer).endswith(message)
    va = grading.VISIBLE["activation"]
    right = va["dA"] * grading.ACTIVATIONS["tanh"].g_prime(va["Z"])
    assert grading.explain_activation_backward(va["dA"], va["Z"], "tanh", right) == ""
    seen = set()
    for message, (value,) in grading._activation_variants(va["dA"], va["Z"], "tanh"):
        if message not in seen:
            seen.add(message)
            assert grading.explain_activation_backward(va["dA"], va["Z"], "tanh",
                                                       value).endswith(message)
    vs = grading.VISIBLE["softmax_ce"]
    P = grading.softmax(vs["Z"])
    assert grading.explain_softmax_cross_entropy_backward(P, vs["Y"], (P - vs["Y"]) / 4) == ""
    for message, (value,) in grading._softmax_ce_variants(P, vs["Y"]):
        assert grading.explain_softmax_cross_entropy_backward(P, vs["Y"], value).endswith(message)
    for loss in grading.LOSSES:
        params, X, Y, acts = grading._visible_mlp(loss)
        Zs, As = grading.forward(params, X, acts, loss)
        right = grading._mlp_backward(params, Zs, As, Y, acts, loss)
        assert grading.explain_mlp_backward(params, X, Y, acts, loss, right) == ""
        for message, flat in grading._mlp_variants(params, Zs, As, Y, acts, loss):
            if grading._all_close(flat, grading._flat(right)):
                continue  # e.g. g′ at A for relu: relu′(relu(z)) = relu′(z)
            grads = list(zip(flat[::2], flat[1::2]))
            assert grading.explain_mlp_backward(params, X, Y, acts, loss, grads).endswith(message)


def test_shape_mistakes_are_named():
    right = grading._expected_shapes(3, 2, 4)
    assert grading.explain_gradient_shapes(3, 2, 4, right) == ""
    for key in grading.SHAPE_KEYS:
        for wrong, message in grading._shape_mistakes(key, 3, 2, 4):
            assert grading.explain_gradient_shapes(3, 2, 4, {**right, key: wrong}).endswith(message)
    assert "tuple of ints" in grading.explain_gradient_shapes(3, 2, 4, {**right, "db": "(2, 1)"})
    assert "no key 'dA_prev'" in grading.explain_gradient_shapes(
        3, 2, 4, {k: v for k, v in right.items() if k != "dA_prev"})
    assert "wrong return type" in grading.explain_gradient_shapes(3, 2, 4, [(2, 3)])


def test_unpack_names_what_it_wants():
    with pytest.raises(AssertionError, match=r"must return a triple \(dW, db, dA_prev\), got a "
                                             r"tuple of length 2"):
        grading.unpack((np.ones(2), np.ones(2)), "linear_backward", ("dW", "db", "dA_prev"))
    with pytest.raises(AssertionError, match=r"list of L = 2 pairs \(dW, db\).*got 1"):
        grading.unpack_grads([(np.ones(2), np.ones(2))], [None, None])
    with pytest.raises(AssertionError, match=r"db\[1\] should be a NumPy array of floats"):
        grading.unpack_grads([(np.ones(2), "db")], [None])


# ---------------------------------------------------------------------------------------------
# A real nbgrader course: one run of the grading command for every submission
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def course(tmp_path_factory, source_nb):
    return grade_course(tmp_path_factory.mktemp("course"), ASSIGNMENT, source_nb, MISTAKES)


def test_course_has_enough_mistakes():
    assert sum(m.in_notebook for m in MISTAKES.values()) >= 6
    course_only = {n for n, m in MISTAKES.items() if m.in_notebook}
    assert {"calls_package_reference", "uses_torch_autograd"} <= course_only


@pytest.mark.xdist_group("matrix_course")
@pytest.mark.grading
def test_instructor_notebook_scores_full_marks(course, source_nb):
    got = course.scores["instructor"]
    points = autograded_ids(source_nb)
    assert {gid: got[gid][:2] for gid in points} == {gid: (p, p) for gid, p in points.items()}
    assert got["bias_sum"][2] is True  # left for the human grader
    for gid in points:
        assert output_text(course.autograded["instructor"][gid]) == "", gid


@pytest.mark.xdist_group("matrix_course")
@pytest.mark.grading
def test_untouched_release_scores_zero(course, source_nb):
    got = course.scores["release"]
    points = autograded_ids(source_nb)
    assert {gid: got[gid][:2] for gid in points} == {gid: (0, p) for gid, p in points.items()}
    for gid in points:
        assert "NotImplementedError" in output_text(course.autograded["release"][gid]), gid


@pytest.mark.xdist_group("matrix_course")
@pytest.mark.grading
@pytest.mark.parametrize("name", [n for n, m in MISTAKES.items() if m.in_notebook])
def test_mistake_loses_exactly_its_points(course, source_nb, name):
    mistake = MISTAKES[name]
    got = course.scores[name]
    points = autograded_ids(source_nb)
    expected = {gid: (0 if gid in mistake.messages else p, p) for gid, p in points.items()}
    assert {gid: got[gid][:2] for gid in points} == expected
    for gid in points:
        text = output_text(course.autograded[name][gid])
        if gid not in mistake.messages:
            assert text == "", f"{name}/{gid} printed:\n{text[-2000:]}"
            continue
        for s in mistake.course_messages.get(gid, mistake.messages[gid]):
            assert s in text, f"{name}/{gid}: {s!r} not in\n{text[-2000:]}"
