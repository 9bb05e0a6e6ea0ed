"""The scalar-backprop assignment: its release, its grading module, and a real nbgrader course.

- the release in exercises/ is exactly what nbgrader generates from solutions/ and gives away
  no solution and no hidden test;
- the grading module (backpropbook.grading.scalar) passes the instructor's solutions and fails
  each typical mistake with a message that names it;
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

import backpropbook.gradcheck
import backpropbook.scalar
from backpropbook.grading import scalar as grading
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

pytestmark = [pytest.mark.scalar]

ASSIGNMENT = NOTEBOOK = "scalar"
SOURCE = REPO / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
RELEASE = REPO / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"

# test cell -> (check function, the student's function it checks)
CHECKS = {
    "test_sigmoid": (grading.check_sigmoid, "sigmoid"),
    "test_sigmoid_prime": (grading.check_sigmoid_prime, "sigmoid_prime"),
    "test_chain_forward": (grading.check_chain_forward, "chain_forward"),
    "test_chain_backward": (grading.check_chain_backward, "chain_backward"),
    "test_centered_difference": (grading.check_centered_difference, "centered_difference"),
    "test_symbolic_dE_dw": (grading.check_symbolic_dE_dw, "symbolic_dE_dw"),
}


def _visible_chain_literals():
    v = grading.VISIBLE["chain"]
    z, a = grading._forward(v["x"], v["w"], v["b"], v["activation"])
    dw, db, delta = grading._backward(v["w"], z, a, v["y"], v["activation"])
    return tuple("[" + ", ".join(repr(float(v)) for v in arr) + "]"
                 for arr in (z, a, dw, db, delta))


_Z, _A, _DW, _DB, _DELTA = _visible_chain_literals()
# A student's 64-bit seed, as the grading command sets GRADING_SEED.
STUDENT_SEED = 0xC0FFEE_5EED_0BAD_F00D

BACKWARD_HEAD = '''
def chain_backward(w, z, a, y, activation):
    g_prime = ACTIVATIONS[activation].g_prime
    L = len(w)
    delta = np.empty(L)
'''


def backward(body):
    """A chain_backward whose common first lines are followed by ``body``."""
    return code(BACKWARD_HEAD) + "\n" + textwrap.indent(code(body), "    ")


@dataclass
class Mistake:
    """Student code for some solution cells, the test cells it must fail, and their messages."""

    sources: dict
    messages: dict  # failing test cell -> substrings its message must contain
    in_notebook: bool = True  # also graded in the real nbgrader course
    extra_seeds: tuple = (0, (STUDENT_SEED, 7))  # more seeds for the checks it fails


MISTAKES = {
    "sign_sigmoid_prime": Mistake(
        {"sigmoid_prime": code('''
            def sigmoid_prime(z):
                s = sigmoid(z)
                return s * (s - 1.0)  # the flipped sign of our old notes
            ''')},
        {"test_sigmoid_prime": ["wrong sign"]},
    ),
    "unstable_sigmoid": Mistake(
        {"sigmoid": code('''
            def sigmoid(z):
                return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))
            ''')},
        {"test_sigmoid": ["not numerically stable", "overflow"]},
    ),
    "missing_g_prime": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = w[l] * delta[l]  # g'(z[l]) forgotten
                return delta * a[:L], delta, delta
            ''')},
        {"test_chain_backward": ["missing activation derivative g′(z[l])", "recursion"]},
    ),
    "delta_not_propagated": Mistake(
        {"chain_backward": backward('''
                delta[:] = 0.0
                delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])  # only the output layer
                return delta * a[:L], delta, delta
            ''')},
        {"test_chain_backward": ["not propagated to earlier layers"]},
    ),
    "off_by_one_layer": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = g_prime(z[l - 1]) * w[l] * delta[l]
                return delta * a[1:], delta, delta  # a[l] instead of a[l-1]
            ''')},
        {"test_chain_backward": ["off-by-one layer", "δ[l]·a[l−1], you used a[l]"]},
    ),
    "db_like_dw": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = g_prime(z[l - 1]) * w[l] * delta[l]
                dw = delta * a[:L]
                db = delta * a[:L]  # as if dz[l]/db[l] were a[l-1]
                return dw, db, delta
            ''')},
        {"test_chain_backward": ["db is computed like dw", "∂z[l]/∂b[l] = 1"]},
    ),
    "bias_left_out": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                g = ACTIVATIONS[activation].g
                L = len(w)
                z, a = np.empty(L), np.empty(L + 1)
                a[0] = x
                for l in range(1, L + 1):
                    z[l - 1] = w[l - 1] * a[l - 1]  # b[l] forgotten
                    a[l] = g(z[l - 1])
                return z, a
            ''')},
        {"test_chain_forward": ["the bias is left out", "z[l] = w[l]·a[l−1] + b[l]"]},
    ),
    "bias_after_activation": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                g = ACTIVATIONS[activation].g
                L = len(w)
                z, a = np.empty(L), np.empty(L + 1)
                a[0] = x
                for l in range(1, L + 1):
                    z[l - 1] = w[l - 1] * a[l - 1]
                    a[l] = g(z[l - 1]) + b[l - 1]  # the bias outside g
                return z, a
            ''')},
        {"test_chain_forward": ["the bias is added after the activation"]},
    ),
    "wrong_return_type_or_shape": Mistake(
        {
            "chain_forward": code('''
                def chain_forward(x, w, b, activation):
                    g = ACTIVATIONS[activation].g
                    z, a, prev = [], [], x
                    for wl, bl in zip(w, b):
                        z.append(wl * prev + bl)
                        prev = float(g(z[-1]))
                        a.append(prev)
                    return np.array(z), np.array(a)  # a without a[0] = x
                '''),
            "chain_backward": backward('''
                    delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
                    for l in range(L - 1, 0, -1):
                        delta[l - 1] = g_prime(z[l - 1]) * w[l] * delta[l]
                    return delta * a[:L], delta  # db forgotten: a pair
                '''),
        },
        {
            "test_chain_forward": ["wrong shape", "a[0] = x"],
            "test_chain_backward": ["wrong return type", "triple (dw, db, delta)"],
        },
    ),
    "forward_difference": Mistake(
        {"centered_difference": code('''
            def centered_difference(f, x, h=1e-5):
                x = np.array(x, dtype=float)
                grad = np.empty_like(x)
                fx = f(x)
                for i in np.ndindex(x.shape):
                    x[i] += h
                    grad[i] = (f(x) - fx) / h
                    x[i] -= h
                return grad
            ''')},
        {"test_centered_difference": ["forward difference", "O(h)"]},
    ),
    "hard_coded": Mistake(
        {
            "chain_forward": code(f'''
                def chain_forward(x, w, b, activation):
                    return np.array({_Z}), np.array({_A})
                '''),
            "chain_backward": code(f'''
                def chain_backward(w, z, a, y, activation):
                    return np.array({_DW}), np.array({_DB}), np.array({_DELTA})
                '''),
            "symbolic_dE_dw": code('''
                def symbolic_dE_dw(L, l):
                    x, y, w = chain_symbols(2)
                    a1 = 1 / (1 + sp.exp(-w[0] * x))
                    a2 = 1 / (1 + sp.exp(-w[1] * a1))
                    return sp.diff((a2 - y) ** 2 / 2, w[0])
                '''),
        },
        {
            "test_chain_forward": ["hard-coded"],
            "test_chain_backward": ["hard-coded"],
            "test_symbolic_dE_dw": ["hard-coded"],
        },
    ),
    "package_reference": Mistake(
        {
            "chain_backward": code('''
                from backpropbook.scalar import chain_backward as reference_backward

                def chain_backward(w, z, a, y, activation):
                    dw, delta = reference_backward(w, z, a, y, activation)
                    return dw, delta, delta
                '''),
            "centered_difference": code('''
                from backpropbook import gradcheck

                def centered_difference(f, x, h=1e-5):
                    return gradcheck.centered_difference(f, x, h)
                '''),
        },
        {
            "test_chain_backward": ["reference implementation",
                                    "backpropbook.scalar.chain_backward"],
            "test_centered_difference": ["reference implementation",
                                         "backpropbook.gradcheck.centered_difference"],
        },
    ),
    "symbolic_missing_half": Mistake(
        {"symbolic_dE_dw": code('''
            def symbolic_dE_dw(L, l):
                x, y, w = chain_symbols(L)
                a = x
                for wl in w:
                    a = 1 / (1 + sp.exp(-wl * a))
                return sp.diff((a - y) ** 2, w[l - 1])  # E without the 1/2
            ''')},
        {"test_symbolic_dE_dw": ["twice the expected value", "½"]},
    ),
    # Graded by the unit tests only (the notebook course above already takes ~1 min).
    "forward_calls_reference": Mistake(  # fails the visible test first: "bias is left out"
        {"chain_forward": code('''
            import backpropbook.scalar

            def chain_forward(x, w, b, activation):
                z, a = backpropbook.scalar.chain_forward(x, w, activation)  # the chain without b
                return z, a
            ''')},
        {"test_chain_forward": ["reference implementation", "backpropbook.scalar.chain_forward"]},
        in_notebook=False,
    ),
    "sigmoid_from_package": Mistake(
        {"sigmoid": code('''
            def sigmoid(z):
                return ACTIVATIONS["sigmoid"].g(z)
            ''')},
        {"test_sigmoid": ["reference implementation", "backpropbook.activations.sigmoid"],
         "test_sigmoid_prime": ["reference implementation"]},
        in_notebook=False,
    ),
    "sigmoid_where_both_branches": Mistake(
        {"sigmoid": code('''
            def sigmoid(z):
                z = np.asarray(z, dtype=float)
                return np.where(z >= 0, 1 / (1 + np.exp(-z)), np.exp(z) / (1 + np.exp(z)))
            ''')},
        {"test_sigmoid": ["not numerically stable", "np.where evaluates both branches"]},
        in_notebook=False,
    ),
    "sigmoid_flipped_exponent": Mistake(
        {"sigmoid": code('''
            def sigmoid(z):
                z = np.asarray(z, dtype=float)
                e = np.exp(-np.abs(z))
                return np.where(z >= 0, e / (1.0 + e), 1.0 / (1.0 + e))
            ''')},
        {"test_sigmoid": ["sigma(-z)"]},  # sigma'(z) = sigma'(-z): sigmoid_prime still passes
        in_notebook=False,
    ),
    "sigmoid_prime_of_z": Mistake(
        {"sigmoid_prime": code('''
            def sigmoid_prime(z):
                return z * (1.0 - z)
            ''')},
        {"test_sigmoid_prime": ["not of z", "z(1 - z)"]},
        in_notebook=False,
    ),
    "forward_no_activation": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                a = [x]
                z = []
                for wl, bl in zip(w, b):
                    z.append(wl * a[-1] + bl)
                    a.append(z[-1])
                return np.array(z), np.array(a)
            ''')},
        {"test_chain_forward": ["activation g is not applied"]},
        in_notebook=False,
    ),
    "forward_always_sigmoid": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                g = ACTIVATIONS["sigmoid"].g
                a = [x]
                z = []
                for wl, bl in zip(w, b):
                    z.append(wl * a[-1] + bl)
                    a.append(float(g(z[-1])))
                return np.array(z), np.array(a)
            ''')},
        {"test_chain_forward": ["used g = sigmoid although activation"]},
        in_notebook=False,
    ),
    "forward_reversed_weights": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                g = ACTIVATIONS[activation].g
                a = [x]
                z = []
                for wl, bl in zip(w[::-1], b[::-1]):
                    z.append(wl * a[-1] + bl)
                    a.append(float(g(z[-1])))
                return np.array(z), np.array(a)
            ''')},
        {"test_chain_forward": ["layers are used in reverse order"]},
        in_notebook=False,
    ),
    "forward_modifies_w": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                g = ACTIVATIONS[activation].g
                a = [x]
                for l in range(len(w)):
                    w[l] = w[l] * a[-1] + b[l]  # z stored in w
                    a.append(float(g(w[l])))
                return w.copy(), np.array(a)
            ''')},
        {"test_chain_forward": ["modified its argument w"]},
        in_notebook=False,
    ),
    "backward_sign": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = (y - a[L]) * g_prime(z[L - 1])
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = g_prime(z[l - 1]) * w[l] * delta[l]
                return delta * a[:L], delta, delta
            ''')},
        {"test_chain_backward": ["wrong sign", "(ŷ − y)·g′(z[L])"]},
        in_notebook=False,
    ),
    "backward_missing_w": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = g_prime(z[l - 1]) * delta[l]
                return delta * a[:L], delta, delta
            ''')},
        {"test_chain_backward": ["w[l+1] is missing in the recursion"]},
        in_notebook=False,
    ),
    "backward_shifted_weights": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = g_prime(z[l - 1]) * w[l - 1] * delta[l]
                return delta * a[:L], delta, delta
            ''')},
        {"test_chain_backward": ["off-by-one layer", "uses w[l] where it needs w[l+1]"]},
        in_notebook=False,
    ),
    "backward_g_prime_of_a": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = (a[L] - y) * g_prime(a[L])
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = g_prime(a[l]) * w[l] * delta[l]
                return delta * a[:L], delta, delta
            ''')},
        {"test_chain_backward": ["g′ is evaluated at a[l] instead of z[l]"]},
        in_notebook=False,
    ),
    "backward_missing_output_g_prime": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = a[L] - y
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = g_prime(z[l - 1]) * w[l] * delta[l]
                return delta * a[:L], delta, delta
            ''')},
        {"test_chain_backward": ["missing activation derivative g′(z[L]) in the output layer"]},
        in_notebook=False,
    ),
    "backward_swapped": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = g_prime(z[l - 1]) * w[l] * delta[l]
                return delta, delta, delta * a[:L]
            ''')},
        {"test_chain_backward": ["wrong order", "(dw, db, delta)"]},
        in_notebook=False,
    ),
    "db_zero": Mistake(
        {"chain_backward": backward('''
                delta[L - 1] = (a[L] - y) * g_prime(z[L - 1])
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = g_prime(z[l - 1]) * w[l] * delta[l]
                return delta * a[:L], np.zeros(L), delta  # the biases get no gradient
            ''')},
        {"test_chain_backward": ["db is zero"]},
        in_notebook=False,
    ),
    "backward_uses_torch_oracle": Mistake(
        {"chain_backward": code('''
            from backpropbook.oracles import chain_gradient_torch

            def chain_backward(w, z, a, y, activation):
                dw = chain_gradient_torch(a[0], w, y, activation)  # ignores the biases
                return dw, dw / a[:-1], dw / a[:-1]
            ''')},
        {"test_chain_backward": ["reference implementation", "chain_gradient_torch"]},
        in_notebook=False,
    ),
    "backward_difference": Mistake(
        {"centered_difference": code('''
            def centered_difference(f, x, h=1e-5):
                x = np.array(x, dtype=float)
                grad = np.empty_like(x)
                fx = f(x)
                for i in np.ndindex(x.shape):
                    x[i] -= h
                    grad[i] = (fx - f(x)) / h
                    x[i] += h
                return grad
            ''')},
        {"test_centered_difference": ["backward difference"]},
        in_notebook=False,
    ),
    "difference_over_h": Mistake(
        {"centered_difference": code('''
            def centered_difference(f, x, h=1e-5):
                x = np.array(x, dtype=float)
                grad = np.empty_like(x)
                for i in np.ndindex(x.shape):
                    e = np.zeros_like(x)
                    e[i] = h
                    grad[i] = (f(x + e) - f(x - e)) / h
                return grad
            ''')},
        {"test_centered_difference": ["divide", "by 2h, not by h"]},
        in_notebook=False,
    ),
    "difference_all_at_once": Mistake(
        {"centered_difference": code('''
            def centered_difference(f, x, h=1e-5):
                x = np.asarray(x, dtype=float)
                return np.full(x.shape, (f(x + h) - f(x - h)) / (2 * h))
            ''')},
        {"test_centered_difference": ["every entry was nudged at once"]},
        in_notebook=False,
    ),
    "difference_modifies_x": Mistake(
        {"centered_difference": code('''
            def centered_difference(f, x, h=1e-5):
                grad = np.empty_like(x)
                for i in np.ndindex(x.shape):
                    x[i] += h
                    f_plus = f(x)
                    x[i] -= 2 * h
                    f_minus = f(x)
                    grad[i] = (f_plus - f_minus) / (2 * h)
                return grad  # x is left nudged by -h
            ''')},
        {"test_centered_difference": ["modified its argument x"]},
        in_notebook=False,
    ),
    "difference_flattened": Mistake(
        {"centered_difference": code('''
            def centered_difference(f, x, h=1e-5):
                x = np.array(x, dtype=float).ravel()
                grad = np.empty_like(x)
                for i in range(x.size):
                    e = np.zeros_like(x)
                    e[i] = h
                    grad[i] = (f(x + e) - f(x - e)) / (2 * h)
                return grad
            ''')},
        {"test_centered_difference": ["wrong shape", "the gradient has the shape of x"]},
        in_notebook=False,
    ),
    "symbolic_sign": Mistake(
        {"symbolic_dE_dw": code('''
            def symbolic_dE_dw(L, l):
                x, y, w = chain_symbols(L)
                a = x
                for wl in w:
                    a = 1 / (1 + sp.exp(-wl * a))
                return sp.diff((a - y) ** 2 / 2, w[l - 1]) * -1
            ''')},
        {"test_symbolic_dE_dw": ["wrong sign"]},
        in_notebook=False,
    ),
    "symbolic_off_by_one": Mistake(
        {"symbolic_dE_dw": code('''
            def symbolic_dE_dw(L, l):
                x, y, w = chain_symbols(L)
                a = x
                for wl in w:
                    a = 1 / (1 + sp.exp(-wl * a))
                return sp.diff((a - y) ** 2 / 2, w[min(l, L - 1)])  # w[l] is the book's w_{l+1}
            ''')},
        {"test_symbolic_dE_dw": ["off-by-one layer", "w[l - 1]"]},
        in_notebook=False,
    ),
    "symbolic_new_symbols": Mistake(
        {"symbolic_dE_dw": code('''
            def symbolic_dE_dw(L, l):
                x, y = sp.symbols("x y")
                w = sp.symbols(f"w1:{L + 1}")
                a = x
                for wl in w:
                    a = 1 / (1 + sp.exp(-wl * a))
                return sp.diff((a - y) ** 2 / 2, w[l - 1])
            ''')},
        {"test_symbolic_dE_dw": ["not those of chain_symbols"]},
        in_notebook=False,
    ),
    "symbolic_number": Mistake(
        {"symbolic_dE_dw": code('''
            def symbolic_dE_dw(L, l):
                return 0.0
            ''')},
        {"test_symbolic_dE_dw": ["wrong return type", "SymPy expression"]},
        in_notebook=False,
    ),
    "symbolic_uses_package": Mistake(
        {"symbolic_dE_dw": code('''
            from backpropbook.symbolic import chain_loss_expr

            def symbolic_dE_dw(L, l):
                E, x, y, w = chain_loss_expr(L)
                return sp.diff(E, w[l - 1])
            ''')},
        {"test_symbolic_dE_dw": ["reference implementation", "chain_loss_expr"]},
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
    assert sum(graded.values()) >= 10
    manual = [c for c in source_nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "markdown"]
    assert [nbgrader_meta(c)["grade_id"] for c in manual] == ["vanishing_gradients"]
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


@pytest.mark.xdist_group("scalar_course")
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
    constants = []
    for gid in CHECKS:
        hidden = cells[gid].source.split("### BEGIN HIDDEN TESTS")[1].splitlines()[1:-1]
        assert hidden and all(HIDDEN_SEED.search(line) for line in hidden), gid
        constants += [int(HIDDEN_SEED.search(line).group(1)) for line in hidden]
    assert len(set(constants)) == len(constants)


def test_student_seeds_draw_different_cases():
    one = grading._chain_cases(np.random.default_rng((STUDENT_SEED, 1202)))
    other = grading._chain_cases(np.random.default_rng((STUDENT_SEED + 1, 1202)))
    again = grading._chain_cases(np.random.default_rng((STUDENT_SEED, 1202)))
    assert [c["x"] for c in one] == [c["x"] for c in again]
    assert [c["x"] for c in one] != [c["x"] for c in other]


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
            check(ns[fn_name], seed=hidden_seed(source_nb, test_id))  # the other tasks pass
            continue
        for seed in (hidden_seed(source_nb, test_id), *mistake.extra_seeds):
            with pytest.raises(AssertionError) as info:
                check(ns[fn_name], seed=seed)
            for expected in mistake.messages[test_id]:
                assert expected in str(info.value), (test_id, seed, str(info.value))


def test_checks_restore_the_package_functions(source_nb):
    ns = run_answers(source_nb, MISTAKES["package_reference"].sources)
    with pytest.raises(AssertionError, match="reference implementation"):
        grading.check_chain_backward(ns["chain_backward"], seed=0)
    with pytest.raises(AssertionError, match="reference implementation"):
        grading.check_centered_difference(ns["centered_difference"], seed=0)
    ns = run_answers(source_nb, MISTAKES["forward_calls_reference"].sources)
    with pytest.raises(AssertionError, match="reference implementation"):
        grading.check_chain_forward(ns["chain_forward"], seed=0)
    z, a = backpropbook.scalar.chain_forward(0.5, [1.0, -2.0], "tanh")
    assert a[0] == 0.5 and np.isclose(a[2], np.tanh(-2.0 * np.tanh(0.5)))
    grad = backpropbook.gradcheck.centered_difference(lambda v: float(np.sum(v**2)), [1.0, 3.0])
    assert np.allclose(grad, [2.0, 6.0])


def test_checks_draw_every_depth_and_activation():
    cases = grading._chain_cases(np.random.default_rng(1202))
    assert {len(c["w"]) for c in cases} == set(range(1, grading.MAX_DEPTH + 1))
    assert {c["activation"] for c in cases} == set(grading.CHAIN_ACTIVATIONS)


def test_explain_reports_a_right_answer_as_right():
    assert grading.explain_symbolic_dE_dw(
        3, 2, grading.sp.diff(grading._symbolic_reference(3)[0],
                              grading.symbolic.chain_symbols(3)[2][1])) == ""


def test_torch_oracle_agrees_with_the_delta_recursion():
    rng = np.random.default_rng(5)
    for case in grading._chain_cases(rng, n_rounds=1):
        x, w, b, y, act = (case[k] for k in ("x", "w", "b", "y", "activation"))
        z, a = grading._forward(x, w, b, act)
        torch_answer = grading._torch_chain(x, w, b, y, act)
        for mine, theirs in zip(grading._backward(w, z, a, y, act), torch_answer):
            assert np.allclose(mine, theirs, rtol=1e-12, atol=1e-15)
        assert np.array_equal(torch_answer[1], torch_answer[2])  # dE/db[l] = delta[l]


def test_biased_chain_with_zero_biases_is_the_chapters_chain():
    """The grading module's own chain (with biases) agrees with the package's at b = 0."""
    rng = np.random.default_rng(6)
    for case in grading._chain_cases(rng, n_rounds=1):
        x, w, y, act = (case[k] for k in ("x", "w", "y", "activation"))
        z, a = grading._forward(x, w, np.zeros_like(w), act)
        z_pkg, a_pkg = backpropbook.scalar.chain_forward(x, w, act)
        assert np.allclose(z, z_pkg, rtol=1e-12) and np.allclose(a, a_pkg, rtol=1e-12)
        dw, db, delta = grading._torch_chain(x, w, np.zeros_like(w), y, act)
        dw_pkg, delta_pkg = backpropbook.scalar.chain_backward(w, z_pkg, a_pkg, y, act)
        assert np.allclose(dw, dw_pkg, rtol=1e-10, atol=1e-15)
        assert np.allclose(delta, delta_pkg, rtol=1e-10, atol=1e-15)


def test_bias_variants_are_told_apart_on_the_visible_case():
    """Each forward/backward mistake variant is explained as itself on the visible chain."""
    v = grading.VISIBLE["chain"]
    x, w, b, y, act = v["x"], v["w"], v["b"], v["y"], v["activation"]
    for message, (z, a) in grading._forward_variants(x, w, b, act):
        assert grading.explain_chain_forward(x, w, b, act, z, a) == message
    z, a = grading._forward(x, w, b, act)
    seen = set()
    for message, answer in grading._backward_variants(w, z, a, y, act):
        if message in seen:  # the same message for two variants (the wrong orders)
            continue
        seen.add(message)
        assert grading.explain_chain_backward(w, z, a, y, act, *answer) == message
    dw, db, delta = grading._backward(w, z, a, y, act)
    assert grading.explain_chain_backward(w, z, a, y, act, dw, db * 1.5, delta).startswith(
        "delta and dw are right but db is not")


def test_unpack_names_the_tuple_it_wants():
    with pytest.raises(AssertionError, match=r"must return a triple \(dw, db, delta\), got a "
                                             r"tuple of length 2"):
        grading.unpack((1.0, 2.0), "chain_backward", ("dw", "db", "delta"), ((1,),) * 3)
    with pytest.raises(AssertionError, match=r"db should have shape \(3,\).*∂E/∂b\[l\]"):
        grading.unpack(([1.0] * 3, [1.0], [1.0] * 3), "chain_backward", ("dw", "db", "delta"),
                       ((3,),) * 3)


def test_named_functions_are_one_object_and_need_only_numpy():
    """The grader sends a test function by name: the checks must hand out FUNCTIONS' objects."""
    import ast

    from backpropbook.grading import functions

    assert set(functions.FUNCTIONS) == set(grading.GRADIENTS) == set(grading.TEST_FUNCTIONS)
    for name, f in functions.FUNCTIONS.items():
        assert grading.test_function(name) is f and grading.TEST_FUNCTIONS[name][0] is f
    tree = ast.parse(open(functions.__file__).read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"math", "numpy"}, imported
    passed = []

    def student(f, x, h=1e-5):
        passed.append(f)
        x = np.array(x, dtype=float)
        grad = np.empty_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = h
            grad[i] = (f(x + e) - f(x - e)) / (2 * h)
        return grad

    grading.check_centered_difference(student, seed=(STUDENT_SEED, 1301))
    assert passed and all(any(f is g for g in functions.FUNCTIONS.values()) for f in passed)


def test_test_functions_gradients_match_centered_differences():
    from backpropbook.grading import functions

    rng = np.random.default_rng(3)
    for name, f in functions.FUNCTIONS.items():
        x = rng.uniform(-2.0, 2.0, size=(2, 3))
        expected = grading.GRADIENTS[name](x)
        numeric = backpropbook.gradcheck.centered_difference(f, x, 1e-5)
        assert np.allclose(numeric, expected, rtol=1e-6, atol=1e-5), name


# ---------------------------------------------------------------------------------------------
# A real nbgrader course: one run of the grading command for every submission
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def course(tmp_path_factory, source_nb):
    return grade_course(tmp_path_factory.mktemp("course"), ASSIGNMENT, source_nb, MISTAKES)


@pytest.mark.xdist_group("scalar_course")
@pytest.mark.grading
def test_instructor_notebook_scores_full_marks(course, source_nb):
    got = course.scores["instructor"]
    points = autograded_ids(source_nb)
    assert {gid: got[gid][:2] for gid in points} == {gid: (p, p) for gid, p in points.items()}
    assert got["vanishing_gradients"][2] is True  # left for the human grader
    for gid in points:
        assert "Error" not in output_text(course.autograded["instructor"][gid]), gid


@pytest.mark.xdist_group("scalar_course")
@pytest.mark.grading
def test_untouched_release_scores_zero(course, source_nb):
    got = course.scores["release"]
    points = autograded_ids(source_nb)
    assert {gid: got[gid][:2] for gid in points} == {gid: (0, p) for gid, p in points.items()}
    for gid in points:
        assert "NotImplementedError" in output_text(course.autograded["release"][gid]), gid


@pytest.mark.xdist_group("scalar_course")
@pytest.mark.grading
@pytest.mark.parametrize("name", [n for n, m in MISTAKES.items() if m.in_notebook])
def test_mistake_loses_exactly_its_points(course, source_nb, name):
    mistake = MISTAKES[name]
    got = course.scores[name]
    points = autograded_ids(source_nb)
    expected = {gid: (0 if gid in mistake.messages else p, p) for gid, p in points.items()}
    assert {gid: got[gid][:2] for gid in points} == expected
    for gid, substrings in mistake.messages.items():
        text = output_text(course.autograded[name][gid])
        for s in substrings:
            assert s in text, f"{name}/{gid}: {s!r} not in\n{text[-2000:]}"
