"""The scalar assignment: its task declarations, its notebook, and a real nbgrader course.

- the declarations (backpropgrader.tasks.scalar) pass the instructor's solution cells on every
  seed tried, and fail each typical mistake, written as a student would write it, with the
  message that names it; the visible tests name it too where the visible case tells it apart;
- the package's own code (the stable sigma and sigma', the chain without biases, the
  three-point difference, the SymPy loss without biases) answers none of the tasks, even where
  it is not withheld, and is withheld while a task is graded;
- the oracles agree with a second, independent computation (NumPy's logaddexp, SymPy, the
  package's chain at zero biases, closed-form gradients), and the five-point tolerance holds
  what its comment claims;
- the notebook follows the house template, its release is what nbgrader generates and gives
  nothing away, and the visible tests' data is what the declarations give now;
- in a temporary nbgrader course graded by the sandboxed grading command, the instructor
  notebook scores full marks, the untouched release 0, and each submission with a mistake loses
  exactly the cells it should, with the message in the autograded notebook; seeds are one per
  student, and grading again gives the same scores.
"""

import ast
import dataclasses
import json
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import sympy as sp

from backpropbook import activations, codec, gradcheck, scalar, symbolic, testfunctions
from backpropgrader import engine
from backpropgrader.evaluate import student_seed
from backpropgrader.tasks import scalar as declared
from nbgrader_course import (
    REPO,
    assert_release_gives_nothing_away,
    assert_visible_data_current,
    autograded_ids,
    cells_by_grade_id,
    code,
    course_tests,
    nbgrader_meta,
    read,
    run_answers,
    run_grader,
    scores,
)

pytestmark = [pytest.mark.scalar]

ASSIGNMENT = "scalar"
SOURCE_DIR = REPO / "solutions" / ASSIGNMENT
SOURCE = SOURCE_DIR / f"{ASSIGNMENT}.ipynb"
RELEASE = REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
TASKS = {t.name: t for t in declared.ASSIGNMENT.tasks}
BY_CELL = {t.grade_id: t for t in declared.ASSIGNMENT.tasks}
STUDENT_SEED = 0xC0FFEE_5EED_0BAD_F00D  # a 64-bit seed, as the grading command sets one
SEEDS = (0, 1, STUDENT_SEED)


def unwithheld(task):
    """The task with nothing withheld: what a student who copies the package's code gets."""
    return dataclasses.replace(task, withheld=())


def failure(task, fn, seed=0):
    """The hidden check's message for ``fn`` (which must fail)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError) as info:
            engine.check(task, fn, seed)
    return str(info.value)


def visible_failure(visible_tests, name, fn):
    """The visible tests' message for ``fn``, or None if it passes them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unstable answer warns in the student's notebook
        try:
            visible_tests.check(name, fn)
        except AssertionError as exc:
            return str(exc)
    return None


# ---------------------------------------------------------------------------------------------
# The typical mistakes, as a student writes them
# ---------------------------------------------------------------------------------------------


@dataclass
class Mistake:
    """Student code for some answer cells and the messages it must earn.

    ``hidden``: failing task -> substrings of its hidden check's message. ``visible``: the same
    for the visible tests (``None`` for a task whose visible case cannot tell); by default as
    hidden. The autograded cell shows the visible message where there is one, else the hidden,
    unless ``notebook`` says otherwise (where the sandbox's stubs say it in other words).
    """

    sources: dict
    hidden: dict
    visible: dict = None
    in_notebook: bool = False  # also graded in the real nbgrader course
    notebook: dict = field(default_factory=dict)
    seeds: tuple = (0, STUDENT_SEED)

    def __post_init__(self):
        if self.visible is None:
            self.visible = dict(self.hidden)

    def notebook_messages(self):
        return {task: self.notebook.get(task) or self.visible.get(task) or substrings
                for task, substrings in self.hidden.items()}


def _literal(value):
    return "np.array(" + repr(np.asarray(value).tolist()) + ")"


def _visible_answers(task):
    """The right answers of the task's visible cases, as Python literals (for hard-coding)."""
    return [[_literal(a) for a in task.answer_of(task.oracle, case)] for case in task.visible]


_FORWARD, _BACKWARD = (_visible_answers(TASKS[n]) for n in ("chain_forward", "chain_backward"))
_DEPTHS = [len(case["w"]) for case in TASKS["chain_forward"].visible]


def log_sigmoid(body):
    return code(f'''
        def log_sigmoid(z):
            z = np.asarray(z, dtype=float)
            return {body}
        ''')


def log_sigmoid_prime(body):
    return code(f'''
        def log_sigmoid_prime(z):
            sigmoid = ACTIVATIONS["sigmoid"].g
            z = np.asarray(z, dtype=float)
            return {body}
        ''')


def forward(layer):
    """A chain_forward whose layer computes ``layer`` (z_l, a_l) from a[-1], z_prev, wl, bl."""
    return code(f'''
        def chain_forward(x, w, b, activation):
            g = ACTIVATIONS[activation].g
            z, a = [], [x]
            z_prev = x
            for wl, bl in zip(w, b):
                z_l, a_l = {layer}
                z.append(z_l)
                a.append(float(a_l))
                z_prev = z_l
            return np.array(z), np.array(a)
        ''')


def backward(output="(a[L] - y) * g_prime(z[L - 1])",
             step="g_prime(z[l - 1]) * w[l] * delta[l]", result="delta * a[:L], delta, delta"):
    """A chain_backward with one of its lines changed."""
    return code(f'''
        def chain_backward(w, z, a, y, activation):
            g_prime = ACTIVATIONS[activation].g_prime
            L = len(w)
            delta = np.empty(L)
            delta[L - 1] = {output}
            for l in range(L - 1, 0, -1):
                delta[l - 1] = {step}
            return {result}
        ''')


def five_point(estimate, h="h"):
    """A five_point_difference whose entry i is ``estimate`` of at(s) = f(x + s·h·e_i)."""
    return code(f'''
        def five_point_difference(f, x, h=1e-2):
            x = np.asarray(x, dtype=float)
            step = {h}
            grad = np.empty(x.shape)
            for i in np.ndindex(x.shape):
                def at(s):
                    moved = x.copy()
                    moved[i] += s * step
                    return f(moved)
                grad[i] = {estimate}
            return grad
        ''')


FIVE = "(-at(2) + 8 * at(1) - 8 * at(-1) + at(-2))"


def symbolic_answer(ret, symbols="x, y, w, b = chain_symbols(L, biases=True)"):
    return code(f'''
        def symbolic_dE_db(L, l):
            {symbols}
            a = x
            for wl, bl in zip(w, b):
                a = 1 / (1 + sp.exp(-(wl * a + bl)))
            E = (a - y) ** 2 / 2
            return {ret}
        ''')


WITHHELD = ["is withheld while this task is graded", "write the computation yourself"]

MISTAKES = {
    # Task 1: log sigma and its derivative
    "log_sigmoid_as_written": Mistake(
        {"log_sigmoid": log_sigmoid("-np.log(1.0 + np.exp(-z))")},
        {"log_sigmoid": ["numerical warning", "overflow"]},
        {"log_sigmoid": ["log(1 + e^(-z)) as written overflows", "min(z, 0) - log1p"]},
        in_notebook=True,
    ),
    "log_sigmoid_warnings_silenced": Mistake(  # no warning: the values tell the mistake
        {"log_sigmoid": code('''
            def log_sigmoid(z):
                with np.errstate(all="ignore"):
                    return -np.log(1.0 + np.exp(-np.asarray(z, dtype=float)))
            ''')},
        {"log_sigmoid": ["log(1 + e^(-z)) as written overflows"]},
    ),
    "log_sigmoid_log1p_only": Mistake(
        {"log_sigmoid": log_sigmoid("-np.log1p(np.exp(-z))")},
        {"log_sigmoid": ["numerical warning", "overflow"]},
        {"log_sigmoid": ["log(1 + e^(-z)) as written overflows"]},
    ),
    "log_sigmoid_negative_form": Mistake(
        {"log_sigmoid": log_sigmoid("z - np.log1p(np.exp(z))")},
        {"log_sigmoid": ["numerical warning", "overflow"]},
        {"log_sigmoid": ["stable form for z < 0 only"]},
    ),
    "log_sigmoid_where_both_branches": Mistake(  # right values, but np.where computes both
        {"log_sigmoid": log_sigmoid(
            "np.where(z < 0, z - np.log1p(np.exp(z)), -np.log1p(np.exp(-z)))")},
        {"log_sigmoid": ["numerical warning", "overflow"]},
        {"log_sigmoid": None},
        in_notebook=True,
    ),
    "log_sigmoid_sign": Mistake(
        {"log_sigmoid": log_sigmoid("np.minimum(-z, 0.0) - np.log1p(np.exp(-np.abs(z)))")},
        {"log_sigmoid": ["check the sign", "-log(1 + e^(-z))"]},
    ),
    "log_sigmoid_is_sigma": Mistake(
        {"log_sigmoid": log_sigmoid('ACTIVATIONS["sigmoid"].g(z)')},
        {"log_sigmoid": ["returns sigma(z) itself"]},
    ),
    "one_minus_sigma": Mistake(
        {"log_sigmoid_prime": log_sigmoid_prime("1.0 - sigmoid(z)")},
        {"log_sigmoid_prime": ["loses every digit", "1 - sigma(z) = sigma(-z)"]},
        in_notebook=True,
    ),
    "log_sigmoid_prime_of_z": Mistake(
        {"log_sigmoid_prime": log_sigmoid_prime("sigmoid(z)")},
        {"log_sigmoid_prime": ["returns sigma(z)", "sigma'(z)/sigma(z)"]},
    ),
    "log_sigmoid_prime_sign": Mistake(
        {"log_sigmoid_prime": log_sigmoid_prime("-sigmoid(-z)")},
        {"log_sigmoid_prime": ["wrong sign", "log sigma is increasing"]},
    ),
    "log_sigmoid_prime_is_log_sigmoid": Mistake(
        {"log_sigmoid_prime": log_sigmoid_prime("log_sigmoid(z)")},
        {"log_sigmoid_prime": ["returns log sigma(z) itself"]},
    ),
    "log_sigmoid_prime_of_sigma": Mistake(
        {"log_sigmoid_prime": log_sigmoid_prime('ACTIVATIONS["sigmoid"].g_prime(z)')},
        {"log_sigmoid_prime": ["the derivative of sigma;", "sigma'(z)/sigma(z)"]},
    ),
    # Task 2: the chain with biases
    "bias_left_out": Mistake(
        {"chain_forward": forward("wl * a[-1], g(wl * a[-1])")},
        {"chain_forward": ["the bias is left out", "z[l] = w[l]·a[l−1] + b[l]"]},
        in_notebook=True,
    ),
    "bias_after_activation": Mistake(
        {"chain_forward": forward("wl * a[-1], g(wl * a[-1]) + bl")},
        {"chain_forward": ["the bias is added after the activation"]},
    ),
    "forward_no_activation": Mistake(
        {"chain_forward": forward("wl * a[-1] + bl, wl * a[-1] + bl")},
        {"chain_forward": ["the activation g is not applied"]},
    ),
    "forward_chains_z": Mistake(
        {"chain_forward": forward("wl * z_prev + bl, g(wl * z_prev + bl)")},
        {"chain_forward": ["not the previous pre-activation z[l−1]"]},
    ),
    "forward_always_sigmoid": Mistake(
        {"chain_forward": forward('wl * a[-1] + bl, ACTIVATIONS["sigmoid"].g(wl * a[-1] + bl)')},
        {"chain_forward": ["used g = sigmoid", "although activation"]},
    ),
    "forward_reversed": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                g = ACTIVATIONS[activation].g
                z, a = [], [x]
                for wl, bl in zip(w[::-1], b[::-1]):
                    z.append(wl * a[-1] + bl)
                    a.append(float(g(z[-1])))
                return np.array(z), np.array(a)
            ''')},
        {"chain_forward": ["the layers are used in reverse order"]},
    ),
    "forward_modifies_w": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                g = ACTIVATIONS[activation].g
                a = [x]
                for l in range(len(w)):
                    w[l] = w[l] * a[-1] + b[l]  # z kept in w
                    a.append(float(g(w[l])))
                return w.copy(), np.array(a)
            ''')},
        {"chain_forward": ["changed its argument w"]}, in_notebook=True,
    ),
    "forward_swapped": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                g = ACTIVATIONS[activation].g
                z, a = [], [x]
                for wl, bl in zip(w, b):
                    z.append(wl * a[-1] + bl)
                    a.append(float(g(z[-1])))
                return np.array(a), np.array(z)
            ''')},
        {"chain_forward": ["wrong shape: z should have shape", "one entry per layer"]},
    ),
    "forward_calls_reference": Mistake(
        {"chain_forward": code('''
            import backpropbook.scalar

            def chain_forward(x, w, b, activation):
                return backpropbook.scalar.chain_forward(x, w, activation)  # without b
            ''')},
        {"chain_forward": ["backpropbook.scalar.chain_forward", *WITHHELD]},
        {"chain_forward": ["the bias is left out"]},
    ),
    "db_like_dw": Mistake(
        {"chain_backward": backward(result="delta * a[:L], delta * a[:L], delta")},
        {"chain_backward": ["db is computed like dw", "∂z[l]/∂b[l] = 1"]},
        in_notebook=True,
    ),
    "db_zero": Mistake(
        {"chain_backward": backward(result="delta * a[:L], np.zeros(L), delta")},
        {"chain_backward": ["db is zero"]},
    ),
    "backward_sign": Mistake(
        {"chain_backward": backward(output="(y - a[L]) * g_prime(z[L - 1])")},
        {"chain_backward": ["wrong sign", "(ŷ − y)·g′(z[L])"]},
    ),
    "backward_swapped": Mistake(
        {"chain_backward": backward(result="delta, delta, delta * a[:L]")},
        {"chain_backward": ["wrong order", "(dw, db, delta)"]},
    ),
    "missing_g_prime_everywhere": Mistake(
        {"chain_backward": backward(output="a[L] - y", step="w[l] * delta[l]")},
        {"chain_backward": ["missing activation derivative g′(z[l]) in every layer"]},
    ),
    "missing_output_g_prime": Mistake(
        {"chain_backward": backward(output="a[L] - y")},
        {"chain_backward": ["missing activation derivative g′(z[L]) in the output layer"]},
    ),
    "missing_g_prime_in_recursion": Mistake(
        {"chain_backward": backward(step="w[l] * delta[l]")},
        {"chain_backward": ["missing activation derivative g′(z[l]) in the recursion"]},
    ),
    "g_prime_of_a": Mistake(
        {"chain_backward": backward(output="(a[L] - y) * g_prime(a[L])",
                                    step="g_prime(a[l]) * w[l] * delta[l]")},
        {"chain_backward": ["g′ is evaluated at a[l] instead of z[l]"]},
    ),
    "delta_not_propagated": Mistake(
        {"chain_backward": backward(step="0.0")},
        {"chain_backward": ["not propagated to earlier layers", "only δ[L] is computed"]},
    ),
    "delta_copied": Mistake(
        {"chain_backward": backward(step="delta[L - 1]")},
        {"chain_backward": ["δ[L] is reused for every layer"]},
    ),
    "missing_w": Mistake(
        {"chain_backward": backward(step="g_prime(z[l - 1]) * delta[l]")},
        {"chain_backward": ["w[l+1] is missing in the recursion"]},
    ),
    "shifted_w": Mistake(
        {"chain_backward": backward(step="g_prime(z[l - 1]) * w[l - 1] * delta[l]")},
        {"chain_backward": ["off-by-one layer", "uses w[l] where it needs w[l+1]"]},
    ),
    "shifted_g_prime": Mistake(
        {"chain_backward": backward(step="g_prime(z[l]) * w[l] * delta[l]")},
        {"chain_backward": ["off-by-one layer", "uses g′(z[l+1]) where it needs g′(z[l])"]},
    ),
    "shifted_a": Mistake(
        {"chain_backward": backward(result="delta * a[1:], delta, delta")},
        {"chain_backward": ["off-by-one layer", "δ[l]·a[l−1], you used a[l]"]},
    ),
    "dw_is_delta": Mistake(
        {"chain_backward": backward(result="delta, delta, delta")},
        {"chain_backward": ["the factor a[l−1] is missing"]},
    ),
    "backward_modifies_z": Mistake(
        {"chain_backward": code('''
            def chain_backward(w, z, a, y, activation):
                g_prime = ACTIVATIONS[activation].g_prime
                L = len(w)
                z[:] = g_prime(z)  # g'(z) kept in z
                delta = np.empty(L)
                delta[L - 1] = (a[L] - y) * z[L - 1]
                for l in range(L - 1, 0, -1):
                    delta[l - 1] = z[l - 1] * w[l] * delta[l]
                return delta * a[:L], delta, delta
            ''')},
        {"chain_backward": ["changed its argument z"]},
    ),
    "backward_uses_torch_oracle": Mistake(
        {"chain_backward": code('''
            from backpropbook.oracles import chain_gradient_torch

            def chain_backward(w, z, a, y, activation):
                dw = chain_gradient_torch(a[0], w, y, activation)  # the chain without biases
                return dw, dw / a[:-1], dw / a[:-1]
            ''')},
        {"chain_backward": ["backpropbook.oracles.chain_gradient_torch", *WITHHELD]},
        {"chain_backward": []},  # outside the hidden check torch gives numbers, and wrong ones
    ),
    "wrong_return_types": Mistake(
        {"chain_forward": code('''
            def chain_forward(x, w, b, activation):
                g = ACTIVATIONS[activation].g
                z, a, prev = [], [], x
                for wl, bl in zip(w, b):
                    z.append(wl * prev + bl)
                    prev = float(g(z[-1]))
                    a.append(prev)
                return np.array(z), np.array(a)  # a without a[0] = x
            '''),
         "chain_backward": backward(result="delta * a[:L], delta  # db forgotten: a pair")},
        {"chain_forward": ["wrong shape", "a[0] = x"],
         "chain_backward": ["wrong return type", "triple (dw, db, delta)"]},
        in_notebook=True,
    ),
    "hard_coded": Mistake(
        {"chain_forward": code(f'''
            def chain_forward(x, w, b, activation):
                if len(w) == {_DEPTHS[0]}:
                    return {", ".join(_FORWARD[0])}
                return {", ".join(_FORWARD[1])}
            '''),
         "chain_backward": code(f'''
            def chain_backward(w, z, a, y, activation):
                if len(w) == {_DEPTHS[0]}:
                    return {", ".join(_BACKWARD[0])}
                return {", ".join(_BACKWARD[1])}
            '''),
         "symbolic_dE_db": code('''
            def symbolic_dE_db(L, l):
                x, y, w, b = chain_symbols(2, biases=True)
                a1 = 1 / (1 + sp.exp(-(w[0] * x + b[0])))
                a2 = 1 / (1 + sp.exp(-(w[1] * a1 + b[1])))
                return sp.diff((a2 - y) ** 2 / 2, b[0])
            ''')},
        {"chain_forward": ["hard-coded"], "chain_backward": ["hard-coded"],
         "symbolic_dE_db": ["hard-coded"]},
        {"chain_forward": None, "chain_backward": None, "symbolic_dE_db": None},
        in_notebook=True,
    ),
    "package_reference": Mistake(
        {"chain_backward": code('''
            from backpropbook.scalar import chain_backward as book_backward

            def chain_backward(w, z, a, y, activation):
                dw, delta = book_backward(w, z, a, y, activation)
                return dw, delta, delta
            '''),
         "five_point_difference": code('''
            from backpropbook import gradcheck

            def five_point_difference(f, x, h=1e-2):
                return gradcheck.centered_difference(f, x, h)
            ''')},
        # in the sandbox the module itself is a stub: only the name and the advice are common
        {"chain_backward": ["backpropbook.scalar.chain_backward", "write the computation yourself"],
         "five_point_difference": ["backpropbook.gradcheck.centered_difference",
                                   "write the computation yourself"]},
        {"chain_backward": None, "five_point_difference": ["second-order"]},
        in_notebook=True,
        notebook={"five_point_difference": ["backpropbook.gradcheck.centered_difference",
                                            "write the computation yourself"]},
    ),
    # Task 3: the five-point difference
    "three_point": Mistake(
        {"five_point_difference": five_point("(at(1) - at(-1)) / (2 * h)")},
        {"five_point_difference": ["second-order", "O(h²)", "three-point centered difference"]},
        in_notebook=True,
    ),
    "forward_difference": Mistake(
        {"five_point_difference": five_point("(at(1) - at(0)) / h")},
        {"five_point_difference": ["forward difference", "O(h)"]},
    ),
    "own_small_step": Mistake(
        {"five_point_difference": five_point("(at(1) - at(-1)) / (2 * step)", h="1e-6")},
        {"five_point_difference": ["not the five-point difference with the step h you are "
                                   "given"]},
    ),
    "outer_signs": Mistake(
        {"five_point_difference": five_point(
            "(at(2) + 8 * at(1) - 8 * at(-1) - at(-2)) / (12 * h)")},
        {"five_point_difference": ["wrong signs: the outer terms"]},
    ),
    "weights_swapped": Mistake(
        {"five_point_difference": five_point(
            "(-at(1) + 8 * at(2) - 8 * at(-2) + at(-1)) / (12 * h)")},
        {"five_point_difference": ["the weights are swapped"]},
    ),
    "precedence": Mistake(
        {"five_point_difference": five_point(f"{FIVE} / 12 * h")},
        {"five_point_difference": ["`/ 12 * h` is (…/12)·h"]},
    ),
    "over_2h": Mistake(
        {"five_point_difference": five_point(f"{FIVE} / (2 * h)")},
        {"five_point_difference": ["divided by 2h as in the three-point difference"]},
    ),
    "all_at_once": Mistake(
        {"five_point_difference": code('''
            def five_point_difference(f, x, h=1e-2):
                x = np.asarray(x, dtype=float)
                return np.full(x.shape, (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h)
                                         + f(x - 2 * h)) / (12 * h))
            ''')},
        {"five_point_difference": ["every entry was nudged at once"]},
    ),
    "difference_modifies_x": Mistake(
        {"five_point_difference": code('''
            def five_point_difference(f, x, h=1e-2):
                grad = np.empty_like(x)
                for i in np.ndindex(x.shape):
                    saved, f_at = x[i], []
                    for s in (2, 1, -1, -2):
                        x[i] = saved + s * h
                        f_at.append(f(x))
                    grad[i] = (-f_at[0] + 8 * f_at[1] - 8 * f_at[2] + f_at[3]) / (12 * h)
                return grad  # x[i] is left at saved - 2h
            ''')},
        {"five_point_difference": ["changed its argument x"]},
    ),
    "difference_flattened": Mistake(
        {"five_point_difference": code('''
            def five_point_difference(f, x, h=1e-2):
                x = np.array(x, dtype=float).ravel()
                grad = np.empty_like(x)
                for i in range(x.size):
                    e = np.zeros_like(x)
                    e[i] = h
                    grad[i] = (-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e)
                               + f(x - 2 * e)) / (12 * h)
                return grad
            ''')},
        {"five_point_difference": ["wrong shape", "the gradient has the shape of x"]},
    ),
    # Task 4: dE/db_l by SymPy
    "symbolic_dE_dw": Mistake(
        {"symbolic_dE_db": symbolic_answer("sp.diff(E, w[l - 1])")},
        {"symbolic_dE_db": ["returned ∂E/∂w_l", "without the factor a[l−1]"]},
        in_notebook=True,
    ),
    "symbolic_sign": Mistake(
        {"symbolic_dE_db": symbolic_answer("-sp.diff(E, b[l - 1])")},
        {"symbolic_dE_db": ["wrong sign"]},
    ),
    "symbolic_twice": Mistake(
        {"symbolic_dE_db": symbolic_answer("sp.diff(2 * E, b[l - 1])")},
        {"symbolic_dE_db": ["twice the expected value", "½"]},
    ),
    "symbolic_E": Mistake(
        {"symbolic_dE_db": symbolic_answer("E")},
        {"symbolic_dE_db": ["returned E itself"]},
    ),
    "symbolic_off_by_one": Mistake(
        {"symbolic_dE_db": symbolic_answer("sp.diff(E, b[min(l, L - 1)])  # the book's b_(l+1)")},
        {"symbolic_dE_db": ["off-by-one layer", "b[l - 1]"]},
    ),
    "symbolic_no_biases": Mistake(  # the chapter's chain_loss_expr, which has no biases
        {"symbolic_dE_db": code('''
            from backpropbook.symbolic import chain_loss_expr

            def symbolic_dE_db(L, l):
                E, x, y, w = chain_loss_expr(L)
                return sp.diff(E, chain_symbols(L, biases=True)[3][l - 1])
            ''')},
        {"symbolic_dE_db": ["does not depend on b_l", "chain_loss_expr"]},
    ),
    "symbolic_new_symbols": Mistake(
        {"symbolic_dE_db": symbolic_answer(
            "sp.diff(E, b[l - 1])",
            symbols=('x, y = sp.symbols("x y"); w = sp.symbols(f"w1:{L + 1}"); '
                     'b = sp.symbols(f"b1:{L + 1}")'))},
        {"symbolic_dE_db": ["that are not the problem's (which are real=True)"]},
        in_notebook=True,
    ),
    "symbolic_number": Mistake(
        {"symbolic_dE_db": code('''
            def symbolic_dE_db(L, l):
                return 0.0
            ''')},
        {"symbolic_dE_db": ["wrong return type", "SymPy expression"]},
    ),
}


# ---------------------------------------------------------------------------------------------
# The declarations on their own
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def instructor(source_nb):
    return run_answers(source_nb)


@pytest.mark.parametrize("name", TASKS)
def test_instructor_solution_passes_silently(instructor, name, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in (*SEEDS, (STUDENT_SEED, 7)):
            engine.check(TASKS[name], instructor[name], seed)
    assert caught == []
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_fails_with_its_message(source_nb, visible_tests, mistake):
    m = MISTAKES[mistake]
    ns = run_answers(source_nb, m.sources)
    for name, substrings in m.hidden.items():
        for seed in m.seeds:
            message = failure(TASKS[name], ns[name], seed)
            for s in substrings:
                assert s in message, (name, seed, message)
        message = visible_failure(visible_tests, name, ns[name])
        if m.visible.get(name) is None:
            assert message is None, (name, message)
        else:
            assert message is not None, name
            for s in m.visible[name]:
                assert s in message, (name, message)


def test_every_declared_mistake_is_made_by_some_student():
    """Each mistake a task declares is matched by one of the students above, on its seeds."""
    made = set()
    for m in MISTAKES.values():
        for messages in (m.hidden, m.visible):
            made |= {(name, s) for name, substrings in messages.items() for s in substrings or ()}
    for task in TASKS.values():
        for case in task.visible:
            for declared_mistake in task.mistakes(*task.args(case), **task.extras(case)):
                assert any(s in declared_mistake.message for name, s in made
                           if name == task.name), (task.name, declared_mistake.message)


def test_package_code_answers_no_task():
    """The book's code, used as an answer, fails every task it comes near, withheld or not."""
    E_nobias = symbolic.chain_loss_expr

    def biases(L):
        return symbolic.chain_symbols(L, biases=True)[3]

    cases = [
        ("log_sigmoid", activations.sigmoid, "returns sigma(z) itself"),
        ("log_sigmoid_prime", activations.sigmoid, "returns sigma(z)"),
        ("log_sigmoid_prime", activations.sigmoid_prime, "the derivative of sigma;"),
        ("chain_forward", lambda x, w, b, act: scalar.chain_forward(x, w, act),
         "the bias is left out"),
        ("chain_backward", scalar.chain_backward, "triple (dw, db, delta)"),
        ("five_point_difference", gradcheck.centered_difference, "second-order"),
        ("five_point_difference", lambda f, x, h: gradcheck.centered_difference(f, x),
         "with the step h you are given"),
        ("symbolic_dE_db", lambda L, l: sp.diff(E_nobias(L)[0], biases(L)[l - 1]),
         "does not depend on b_l"),
        ("symbolic_dE_db", lambda L, l: sp.diff(E_nobias(L)[0], E_nobias(L)[3][l - 1]),
         "expected"),
    ]
    for name, fn, message in cases:
        assert message in failure(unwithheld(TASKS[name]), fn), (name, message)
    withheld = [("chain_forward", lambda x, w, b, act: scalar.chain_forward(x, w, act),
                 "backpropbook.scalar.chain_forward"),
                ("five_point_difference", gradcheck.centered_difference,
                 "backpropbook.gradcheck.centered_difference")]
    for name, fn, message in withheld:
        assert message in failure(TASKS[name], fn)
    # and the functions work again afterwards
    assert np.allclose(gradcheck.centered_difference(lambda v: float(np.sum(v**2)), [1.0, 3.0]),
                       [2.0, 6.0])
    z, a = scalar.chain_forward(0.5, [1.0, -2.0], "tanh")
    assert np.isclose(a[2], np.tanh(-2.0 * np.tanh(0.5)))


def test_withheld_modules_are_the_books_reference_code():
    assert all(t.withheld == declared.WITHHELD for t in TASKS.values())
    assert declared.ASSIGNMENT.withheld == sorted(declared.WITHHELD)
    assert "backpropbook.symbolic" not in declared.WITHHELD  # chain_symbols is the student's


def test_cases_cover_every_depth_and_activation_and_follow_the_seed():
    for name in ("chain_forward", "chain_backward"):
        task = TASKS[name]
        cases = task.cases(np.random.default_rng(engine.task_seed(0, task)))
        assert {len(c["w"]) for c in cases} == set(range(1, declared.MAX_DEPTH + 1))
        assert {c["activation"] for c in cases} == set(declared.CHAIN_ACTIVATIONS)
    for task in TASKS.values():
        def draw(seed, task=task):
            return codec.encode(task.cases(np.random.default_rng(engine.task_seed(seed, task))),
                                functions=testfunctions.FUNCTIONS)
        assert draw(STUDENT_SEED) == draw(STUDENT_SEED)
        if task.name not in ("log_sigmoid", "log_sigmoid_prime"):  # random entries among fixed
            assert draw(STUDENT_SEED) != draw(STUDENT_SEED + 1), task.name
    five = TASKS["five_point_difference"]
    steps = {c["h"] for c in five.cases(np.random.default_rng(0))}
    assert steps == {1e-2, 5e-2}
    for seed in range(20):  # never the visible (L, l): see _symbolic_cases
        cases = TASKS["symbolic_dE_db"].cases(np.random.default_rng(seed))
        assert (2, 1) not in {(c["L"], c["l"]) for c in cases}
        assert all(1 <= c["l"] <= c["L"] <= declared.MAX_DEPTH for c in cases)


# ---------------------------------------------------------------------------------------------
# The oracles against a second computation
# ---------------------------------------------------------------------------------------------


def test_log_sigmoid_oracles_agree_with_numpy():
    z = np.concatenate([np.linspace(-1000.0, 1000.0, 401), [-745.5, -709.9, 36.0, 40.0]])
    assert np.allclose(TASKS["log_sigmoid"].oracle(z), -np.logaddexp(0.0, -z), rtol=1e-14,
                       atol=0.0)
    z = np.linspace(-40.0, 40.0, 161)
    assert np.allclose(TASKS["log_sigmoid_prime"].oracle(z), np.exp(-np.logaddexp(0.0, z)),
                       rtol=1e-14, atol=0.0)


def test_chain_oracle_agrees_with_sympy_and_with_the_books_chain_at_zero_biases():
    rng = np.random.default_rng(5)
    for L in (1, 3, 5):
        x, y, w, b = symbolic.chain_symbols(L, biases=True)
        a = x
        for wl, bl in zip(w, b):
            a = sp.tanh(wl * a + bl)
        E = (a - y) ** 2 / 2
        values = dict(zip((x, y, *w, *b), rng.uniform(-1.5, 1.5, 2 + 2 * L)))
        point = [float(values[s]) for s in (x, y)]
        w_, b_ = [float(values[s]) for s in w], [float(values[s]) for s in b]
        _, (dw, db, _) = declared._torch_chain(point[0], w_, b_, point[1], "tanh")
        for v, exact in ((w, dw), (b, db)):
            sympy_grad = [float(sp.diff(E, s).evalf(30, subs=values)) for s in v]
            assert np.allclose(exact, sympy_grad, rtol=1e-12, atol=1e-15)
    for case in TASKS["chain_backward"].cases(np.random.default_rng(6)):
        w, y, act = case["w"], case["y"], case["activation"]
        x = case["a"][0]
        (z, a), (dw, db, delta) = declared._torch_chain(x, w, np.zeros_like(w), y, act)
        z_book, a_book = scalar.chain_forward(x, w, act)
        assert np.allclose(z, z_book, rtol=1e-12) and np.allclose(a, a_book, rtol=1e-12)
        dw_book, delta_book = scalar.chain_backward(w, z_book, a_book, y, act)
        assert np.allclose(dw, dw_book, rtol=1e-10, atol=1e-15)
        assert np.array_equal(db, delta) and np.allclose(delta, delta_book, rtol=1e-10,
                                                          atol=1e-15)


def test_symbolic_oracle_agrees_with_sympy():
    task = TASKS["symbolic_dE_db"]
    for case in task.cases(np.random.default_rng(3))[:4]:
        L, l = case["L"], case["l"]
        x, y, w, b = symbolic.chain_symbols(L, biases=True)
        a = x
        for wl, bl in zip(w, b):
            a = symbolic.sigmoid(wl * a + bl)
        dE_db = sp.diff((a - y) ** 2 / 2, b[l - 1])
        by_name = {s.name: s for s in (x, y, *w, *b)}
        expected = [float(dE_db.evalf(30, subs={by_name[k]: sp.Rational(v) for k, v in p.items()}))
                    for p in case["_points"]]
        assert np.allclose(task.oracle(L, l, case["_points"]), expected, rtol=1e-12, atol=0)


GRADIENTS = {  # closed forms, for the five-point oracle's own test
    "steep_quadratic": lambda x: 1000.0 * x + 1.0,
    "exp_sin": lambda x: np.cos(x) * np.exp(np.sin(x)),
    "coupled": lambda x: 2.0 * np.sum(x) - np.sin(x),
    "cubic": lambda x: 30.0 * x**2,
    "fast_wave": lambda x: 3.0 * np.cos(3.0 * x),
}


def test_five_point_oracle_is_the_formula_and_is_fourth_order():
    """The mpmath copies of the test functions are the functions; the oracle minus the exact
    gradient shrinks like h^4 (16 times for half the step); the exact-gradient mistake is the
    closed form; on a cubic, the five-point difference is exact."""
    rng = np.random.default_rng(4)
    x = rng.uniform(-2.0, 2.0, size=(2, 3))
    for name, f in testfunctions.FUNCTIONS.items():
        floats = np.array([(-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e) + f(x - 2 * e)) / 0.6
                           for e in 0.05 * np.eye(x.size).reshape(x.size, *x.shape)])
        assert np.allclose(declared._five_point(f, x, 0.05), floats.reshape(x.shape), rtol=0,
                           atol=declared.FIVE_POINT_ATOL / 10), name
        if name in GRADIENTS:
            assert np.allclose(declared._exact_gradient(f, x), GRADIENTS[name](x), rtol=1e-14,
                               atol=1e-12), name
    f = testfunctions.fast_wave
    err = [declared._five_point(f, x, h) - GRADIENTS["fast_wave"](x) for h in (0.04, 0.02)]
    assert np.allclose(err[0] / err[1], 16.0, rtol=0.01)
    assert np.allclose(declared._five_point(testfunctions.cubic, x, 0.05), 30 * x**2, atol=1e-12)


def test_five_point_tolerance_holds_what_its_comment_says(instructor):
    """An honest float64 answer stays 10 times inside the tolerance; the three-point difference
    misses it 1000 times over on the cubic, an estimate that ignores h on the fast wave."""
    task = TASKS["five_point_difference"]
    worst = ignoring_h = 0.0
    for seed in range(5):
        for case in task.cases(np.random.default_rng(seed)):
            f, x, h = case["f"], case["x"], case["h"]
            right = declared._five_point(f, x, h)
            worst = max(worst, float(np.max(np.abs(instructor[task.name](f, x, h) - right))))
            if f is testfunctions.cubic:
                three_point = gradcheck.centered_difference(f, x, h) - right
                assert np.max(np.abs(three_point)) > 1000 * declared.FIVE_POINT_ATOL
            if f is testfunctions.fast_wave and h == 5e-2:
                ignores_h = declared._exact_gradient(f, x) - right
                ignoring_h = max(ignoring_h, float(np.max(np.abs(ignores_h))))
        assert ignoring_h > 100 * declared.FIVE_POINT_ATOL, (seed, ignoring_h)
    assert worst < declared.FIVE_POINT_ATOL / 10, worst


# ---------------------------------------------------------------------------------------------
# The notebook, its release and the visible tests' data
# ---------------------------------------------------------------------------------------------

STUDENT_IMPORTS = {"numpy", "sympy", "backpropbook.activations", "backpropbook.selfcheck",
                   "backpropbook.symbolic"}


def test_source_notebook_follows_the_template(source_nb):
    import nbformat

    nbformat.validate(source_nb)
    ids = [c.id for c in source_nb.cells]
    assert len(set(ids)) == len(ids) and all(ids)
    for cell in source_nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
    assert autograded_ids(source_nb) == {t.grade_id: t.points for t in TASKS.values()}
    assert sum(t.points for t in TASKS.values()) == 13
    cells = cells_by_grade_id(source_nb)
    manual = nbgrader_meta(cells["vanishing_gradients"])
    assert cells["vanishing_gradients"].cell_type == "markdown"
    assert manual["grade"] and manual["solution"] and manual["points"] == 2
    setup = cells["setup"].source
    assert nbgrader_meta(cells["setup"])["locked"]
    imported = {n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(ast.parse(setup)) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    assert imported == STUDENT_IMPORTS
    assert setup.splitlines()[-2:] == [
        'visible = VisibleTests.load("scalar")  # the visible tests\' data, next to this notebook',
        "GRADING_SEED = 0  # the grading command sets one seed per student"]
    for task in TASKS.values():
        assert nbgrader_meta(cells[task.name])["solution"]
        assert '"""' in cells[task.name].source.split("### BEGIN SOLUTION")[0], task.name
        lines = cells[task.grade_id].source.splitlines()
        assert re.fullmatch(rf'"""{task.name}: .+"""', lines[0]), task.grade_id
        assert lines[1:] == [
            f'visible.check("{task.name}", {task.name})', "### BEGIN HIDDEN TESTS",
            "from backpropgrader.tasks import check",
            f'check("scalar", "{task.name}", {task.name}, GRADING_SEED)', "### END HIDDEN TESTS"]


def test_release_gives_nothing_away(source_nb):
    assert_release_gives_nothing_away(source_nb, RELEASE)


def test_visible_data_is_what_the_declarations_give():
    assert_visible_data_current(ASSIGNMENT, engine.visible_data(declared.ASSIGNMENT.tasks))


def test_untouched_release_fails_every_visible_test(source_nb, visible_tests):
    ns = run_answers(read(RELEASE))  # the stubs, as released
    for name in TASKS:
        with pytest.raises(AssertionError, match="is not written yet"):
            visible_tests.check(name, ns[name])


# ---------------------------------------------------------------------------------------------
# A real nbgrader course, graded by the sandboxed grading command
# ---------------------------------------------------------------------------------------------


(test_release_is_what_nbgrader_generates, test_instructor_notebook_scores_full_marks,
 test_untouched_release_scores_zero, test_mistake_loses_exactly_its_points) = course_tests(
    ASSIGNMENT, TASKS, MISTAKES)


@pytest.mark.grading
@pytest.mark.xdist_group("scalar_course")
def test_seeds_are_per_student_and_grading_again_gives_the_same_scores(course):
    status = {s: json.loads((course.root / "grading_status" / ASSIGNMENT / f"{s}.json")
                            .read_text()) for s in course.students}
    seeds = [info["seed"] for info in status.values()]
    assert len(set(seeds)) == len(seeds)
    assert all(info["seed"] == student_seed("backpropbook", ASSIGNMENT, s)
               for s, info in status.items())
    again = ["instructor", "three_point", "hard_coded"]
    run = run_grader(course.root, ASSIGNMENT, "--no-feedback",
                     *[arg for s in again for arg in ("--student", s)])
    assert run.returncode == 0, run.stdout + run.stderr
    for s in again:
        assert scores(course.root, ASSIGNMENT, ASSIGNMENT, s) == course.scores[s], s


def test_mistake_students_compile():
    for name, m in MISTAKES.items():
        for gid, source in m.sources.items():
            compile(source, f"<{name}/{gid}>", "exec")
            assert f"def {gid}(" in source, (name, gid)


