"""The autodiff assignment (an array engine of one's own): declarations, notebook, a real course.

- the declarations (backpropgrader.tasks.autodiff) pass the instructor's solution cells on every
  seed tried, and fail each typical mistake, written as a student would write it, with the
  message that names it; the visible tests name it too where the visible case tells it apart;
- the sweep's hidden graphs are random, differ by seed, come shuffled with names that tell no
  order, and really are trees in one cell and share nodes in the other;
- the torch oracles agree with centered differences of the same operations in NumPy;
- nothing on the student side answers a task (test_no_answers.py runs every callable; here the
  package's autodiff module is looked at directly), and the book's other reference code and
  torch are withheld while a task is graded;
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

from backpropbook import autodiff as ad
from backpropbook import codec, testfunctions
from backpropbook.gradcheck import centered_difference
from backpropbook.selfcheck import unchanged
from backpropgrader import answers, engine
from backpropgrader.tasks import autodiff, check
from nbgrader_course import (
    REPO,
    Mistake,
    _differences,
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

pytestmark = [pytest.mark.autodiff]

ASSIGNMENT = "autodiff"
SOURCE_DIR = REPO / "solutions" / ASSIGNMENT
SOURCE = SOURCE_DIR / f"{ASSIGNMENT}.ipynb"
RELEASE = REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
TASKS = {t.key: t for t in autodiff.ASSIGNMENT.tasks}  # backward: two cells, two keys
SWEEPS = ("backward_tree", "backward_shared")
STUDENT_SEED = 0xC0FFEE_5EED_0BAD_F00D  # a 64-bit seed, as the grading command sets one


def passes_check(key, fn, seed):
    """The hidden test cell's call, through the public door."""
    check(ASSIGNMENT, key, fn, seed)


def draw(key, seed=STUDENT_SEED):
    task = TASKS[key]
    return task.cases(np.random.default_rng(engine.task_seed(seed, task)))


# ---------------------------------------------------------------------------------------------
# The typical mistakes, as a student writes them
# ---------------------------------------------------------------------------------------------

ADD = '''
def add_backward(G, a, b, value):
    def summed_to(shape):
        {body}
    return summed_to(np.shape(a)), summed_to(np.shape(b))
'''
LEADING = "tuple(range(G.ndim - len(shape)))"
STRETCHED = "tuple(i for i, n in enumerate(shape) if n == 1)"

SUM = '''
def sum_backward(G, a, value, axis, keepdims):
    {restore}
    return ({copy},)
'''
RESTORE = "if axis is not None and not keepdims:\n        G = np.expand_dims(G, axis)"

SWEEP = '''
def backward(nodes, output, G):
    order = {order}
    grads = {{name: np.zeros_like(nodes[name]["value"]) for name in order}}
    grads[output] = {start}
    for name in {visit}:
        node = nodes[name]
        if not node["inputs"]:
            continue
        inputs = [nodes[i]["value"] for i in node["inputs"]]
        local = LOCAL[node["op"]]({upstream}, *inputs, value=node["value"], **node["attrs"])
        for i, g in zip(node["inputs"], local):
            {accumulate}
    return {result}
'''
TOPOLOGICAL = 'topological_order(output, lambda name: nodes[name]["inputs"])'


def sweep(**changed):
    right = {"order": TOPOLOGICAL, "start": "G + 0.0", "visit": "reversed(order)",
             "upstream": "grads[name]", "accumulate": "grads[i] = grads[i] + g",
             "result": "grads"}
    return {"backward": code(SWEEP.format(**{**right, **changed}))}


def add(body):
    return {"add_backward": code(ADD.format(body=body))}


def total(restore=RESTORE, copy="np.broadcast_to(G, np.shape(a)).copy()"):
    return {"sum_backward": code(SUM.format(restore=restore, copy=copy))}


def matmul(dA, dB):
    return {"matmul_backward": code(f'''
        def matmul_backward(G, A, B, value):
            return {dA}, {dB}
        ''')}


ORDER = "the nodes are visited in the wrong order"
CHAIN = "the chain-rule factor G is missing"
BROADCAST = "a broadcast in the forward pass is a sum in the backward pass"

MISTAKES = {
    # task 1
    "add_not_summed": Mistake(
        add("return G"), {"add_backward": ["wrong shape", BROADCAST]}, in_notebook=True),
    "add_leading_axes_only": Mistake(
        add(f"return G.sum(axis={LEADING})"), {"add_backward": ["wrong shape", BROADCAST]}),
    "add_mean": Mistake(
        add(f"return G.mean(axis={LEADING}).mean(axis={STRETCHED}, keepdims=True)"),
        {"add_backward": ["averaged over the copies", BROADCAST]}, in_notebook=True),
    "add_one_copy": Mistake(
        add(f"return G[(0,) * len({LEADING})][tuple(slice(0, 1) if n == 1 else slice(None) "
            "for n in shape)]"),
        {"add_backward": ["read at one copy"]}),
    "add_no_chain": Mistake(
        add(f"return np.ones_like(G).sum(axis={LEADING}).sum(axis={STRETCHED}, keepdims=True)"),
        {"add_backward": [CHAIN]}),
    # task 2
    "matmul_transposed": Mistake(
        matmul("B @ G.T", "G.T @ A"),
        {"matmul_backward": ["wrong shape: dA", "its transpose", "A's shape"]},
        in_notebook=True),
    "matmul_no_transpose": Mistake(
        matmul("G @ B", "A @ G"), {"matmul_backward": ["raised ValueError"]},
        visible={"matmul_backward": ["mismatch in its core dimension"]}),
    "matmul_swapped": Mistake(
        matmul("A.T @ G", "G @ B.T"), {"matmul_backward": ["wrong shape: dA"]}),
    "matmul_no_chain": Mistake(
        matmul("np.ones_like(G) @ B.T", "A.T @ np.ones_like(G)"), {"matmul_backward": [CHAIN]},
        in_notebook=True),
    # task 3
    "sum_axis_not_restored": Mistake(
        total(restore="pass"), {"sum_backward": ["raised ValueError", "could not be broadcast"]},
        visible={"sum_backward": ["the summed axis is not put back"]}, in_notebook=True,
        notebook={"sum_backward": ["the summed axis is not put back"]}),
    "sum_mean": Mistake(
        total(copy="np.broadcast_to(G, np.shape(a)) / (np.size(a) / np.size(value))"),
        {"sum_backward": ["backward pass of the mean"]}, in_notebook=True),
    "sum_no_chain": Mistake(total(copy="np.ones(np.shape(a))"), {"sum_backward": [CHAIN]}),
    "sum_not_a_tuple": Mistake(
        {"sum_backward": code(SUM.format(restore=RESTORE, copy="np.broadcast_to(G, a.shape)")
                              .replace("return (np.broadcast_to(G, a.shape),)",
                                       "return np.broadcast_to(G, a.shape).copy()"))},
        {"sum_backward": ["should return a 1-tuple (dA)"]}),
    # task 4
    "sweep_overwrites": Mistake(
        sweep(accumulate="grads[i] = g"), {"backward_shared": ["overwritten instead of "
                                                               "accumulated"]},
        in_notebook=True),
    "sweep_inputs_first": Mistake(
        sweep(visit="order"), {t: [ORDER] for t in SWEEPS}, in_notebook=True),
    "sweep_dict_order": Mistake(
        # the visible graphs come in reversed graph() order: this visits them inputs first
        sweep(visit="reversed(list(nodes))", order="list(nodes)"), {t: [ORDER] for t in SWEEPS}),
    "sweep_no_chain": Mistake(
        sweep(upstream="np.ones_like(grads[name])"), {t: [CHAIN] for t in SWEEPS},
        in_notebook=True),
    "sweep_ignores_G": Mistake(
        sweep(start="np.ones_like(G)"), {t: ["starts from ones instead of G"] for t in SWEEPS}),
    "sweep_leaves_only": Mistake(
        sweep(result='{n: g for n, g in grads.items() if not nodes[n]["inputs"]}'),
        {t: ["the dict has no entry for", "the intermediate nodes"] for t in SWEEPS}),
    # gradients kept in the nodes' dicts: the sandbox sends the changed arguments back
    "sweep_writes_into_nodes": Mistake(
        {"backward": code(SWEEP.format(
            order=TOPOLOGICAL, start="G + 0.0", visit="reversed(order)",
            upstream="grads[name]", accumulate="grads[i] = grads[i] + g",
            result="grads").replace("    return grads",
                                    "    for name in order:\n"
                                    "        nodes[name][\"grad\"] = grads[name]\n"
                                    "    return grads"))},
        {t: ["changed its argument nodes"] for t in SWEEPS}, in_notebook=True),
}


def test_every_task_has_typical_mistakes_and_some_go_through_the_course():
    assert {task for m in MISTAKES.values() for task in m.hidden} == set(TASKS)
    in_course = [m for m in MISTAKES.values() if m.in_notebook]
    assert len(in_course) >= 8
    assert {task for m in in_course for task in m.hidden} == set(TASKS)


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
    assert autograded_ids(source_nb) == {t.grade_id: t.points for t in TASKS.values()}
    graded = [nbgrader_meta(c)["grade_id"] for c in source_nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    assert graded == [t.grade_id for t in autodiff.ASSIGNMENT.tasks]
    assert [t.points for t in autodiff.ASSIGNMENT.tasks] == [4, 4, 4, 4, 4]
    manual = [c for c in source_nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "markdown"]
    assert [nbgrader_meta(c)["grade_id"] for c in manual] == ["forward_mode"]
    assert nbgrader_meta(manual[0])["solution"] and nbgrader_meta(manual[0])["points"] == 2
    cells = cells_by_grade_id(source_nb)
    for key, task in TASKS.items():
        first, *rest = cells[task.grade_id].source.splitlines()
        assert first.startswith(f'"""{task.name}') and first.endswith('"""'), first
        assert rest == [f'visible.check("{key}", {task.name})',
                        "### BEGIN HIDDEN TESTS",
                        "from backpropgrader.tasks import check",
                        f'check("autodiff", "{key}", {task.name}, GRADING_SEED)',
                        "### END HIDDEN TESTS"]
    names = {t.name for t in TASKS.values()}
    assert set(solution_sources(source_nb)) == names
    for name in names:
        stub = cells[name].source.split("### BEGIN SOLUTION")[0]
        assert stub.startswith(f"def {name}(") and '"""' in stub, name
    intro = cells["intro"].source
    for name in names:
        row = next(line for line in intro.splitlines() if f"`{name}`" in line)
        points = " + ".join(str(t.points) for t in TASKS.values() if t.name == name)
        assert row.rsplit("|", 2)[1].strip() == points, row
    # the sweep looks the backward functions up in a locked cell, after tasks 1-3
    local = cells["local"]
    assert nbgrader_meta(local)["locked"] and not nbgrader_meta(local).get("solution")
    assert ids.index(local.id) < ids.index(cells["backward"].id)
    assert "shuffle" in cells["task4"].source


def test_setup_cell_imports_only_the_student_side(source_nb):
    setup = cells_by_grade_id(source_nb)["setup"]
    assert nbgrader_meta(setup)["locked"]
    tree = ast.parse(setup.source)
    imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for a in node.names]
    imported += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported == ["numpy", "backpropbook.autodiff", "backpropbook.selfcheck"]
    assert not set(imported) & set(autodiff.WITHHELD)
    assert setup.source.splitlines()[-2:] == [
        'visible = VisibleTests.load("autodiff")  # the visible tests\' data, next to this '
        'notebook', "GRADING_SEED = 0  # the grading command sets one seed per student"]
    for gid, source in solution_sources(source_nb).items():
        assert not any(isinstance(node, (ast.Import, ast.ImportFrom))
                       for node in ast.walk(ast.parse(source))), gid


def test_release_gives_nothing_away(source_nb):
    assert_release_gives_nothing_away(source_nb, RELEASE)


def test_visible_data_is_what_the_declarations_give():
    data = engine.visible_data(autodiff.ASSIGNMENT.tasks)
    text = assert_visible_data_current(ASSIGNMENT, data)
    assert set(json.loads(text)["__dict__"]["tasks"]["__dict__"]) == set(TASKS)
    for key, task in TASKS.items():
        stored = data["tasks"][key]
        assert len(stored["cases"]) == len(task.visible) >= 1
        for case, kept in zip(task.visible, stored["cases"]):
            assert all(unchanged(a, b) for a, b in zip(task.args(case), kept["args"]))
        assert stored.get("function", key) == task.name
    for source in solution_sources(read(SOURCE)).values():
        for line in source.splitlines():
            assert len(line.strip()) < 25 or line.strip() not in text, line
    # the messages name mistakes, never the answer's formula
    messages = " ".join(message for stored in data["tasks"].values()
                        for case in stored["cases"] for message, _ in case["mistakes"])
    assert "overwritten instead of accumulated" in messages
    for formula in ("G @ B.T", "G·Bᵀ", "A.T @ G", "Aᵀ·G", "reversed("):
        assert formula not in messages, formula


def test_the_visible_data_check_catches_a_changed_number_or_message():
    """The round-off allowance of assert_visible_data_current is no blind spot."""
    functions = testfunctions.FUNCTIONS
    text = codec.encode(engine.visible_data(autodiff.ASSIGNMENT.tasks), functions=functions)

    def copy():
        return codec.decode(text, functions=functions)

    data, nudged, renamed = copy(), copy(), copy()
    assert _differences(data, copy()) == []
    nudged["tasks"]["add_backward"]["cases"][0]["expected"][0] *= 1 + 1e-9
    assert _differences(data, nudged)
    renamed["tasks"]["add_backward"]["cases"][0]["mistakes"][0][0] += "!"
    assert _differences(data, renamed)


# ---------------------------------------------------------------------------------------------
# The declarations with the instructor's answers and with the mistakes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", TASKS)
def test_instructor_solution_passes_silently(source_nb, visible_tests, key, capsys):
    ns = answers_with(source_nb, {})
    name = TASKS[key].name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        visible_tests.check(key, ns[name])
        for seed in (0, 1, 2, 3, STUDENT_SEED, (STUDENT_SEED, 7)):
            passes_check(key, ns[name], seed)
    assert caught == []
    assert capsys.readouterr() == ("", "")


def test_visible_test_cells_pass_silently(source_nb, capsys):
    ns = run_answers(source_nb)
    cells = cells_by_grade_id(source_nb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(cells["local"].source, ns)
        for task in TASKS.values():
            exec(cells[task.grade_id].source.split("### BEGIN HIDDEN TESTS")[0], dict(ns))
    assert caught == []
    assert capsys.readouterr() == ("", "")


def answers_with(source_nb, sources):
    """The solution cells with some replaced, and the locked LOCAL cell run after them."""
    ns = run_answers(source_nb, sources)
    exec(cells_by_grade_id(source_nb)["local"].source, ns)
    return ns


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_fails_with_its_message(source_nb, visible_tests, name):
    mistake = MISTAKES[name]
    ns = answers_with(source_nb, mistake.sources)
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


def test_every_mistake_is_named_on_a_visible_case():
    """Each declared mistake that a visible case tells apart is explained as itself there."""
    data = engine.visible_data(autodiff.ASSIGNMENT.tasks)["tasks"]
    for key, task in TASKS.items():
        named = 0
        for case, stored in zip(task.visible, data[key]["cases"]):
            expected = task.answer_of(task.oracle, case)
            for message, wrong in stored["mistakes"]:
                wrong = tuple(np.asarray(w, dtype=float) for w in wrong)
                assert engine.explain(task, case, wrong, expected) == message, (key, message)
                named += 1
        assert named >= 1, key


def test_a_tree_cannot_tell_an_overwritten_gradient_and_the_shared_cell_can(source_nb):
    """The overwrite costs the shared cell only: in a tree every node has one use."""
    ns = answers_with(source_nb, MISTAKES["sweep_overwrites"].sources)
    for seed in (0, 1, STUDENT_SEED):
        passes_check("backward_tree", ns["backward"], seed)
        with pytest.raises(AssertionError, match="overwritten"):
            passes_check("backward_shared", ns["backward"], seed)


# Right answers written otherwise than the instructor's: ten digits must let them through.
def add_by_reshape(G, a, b, value):
    """Sum over every axis whose size differs, via reshape to the padded shape."""
    def back(shape):
        padded = (1,) * (G.ndim - len(shape)) + tuple(shape)
        axes = tuple(i for i, n in enumerate(padded) if n != G.shape[i] or n == 1)
        return G.sum(axis=axes, keepdims=True).reshape(shape)
    return back(np.shape(a)), back(np.shape(b))


def matmul_by_einsum(G, A, B, value):
    return np.einsum("ij,kj->ik", G, B), np.einsum("ik,ij->kj", A, G)


def sum_by_loops(G, a, value, axis, keepdims):
    dA = np.empty(np.shape(a))
    G = np.asarray(G)
    for index in np.ndindex(dA.shape):
        if axis is None:
            dA[index] = G.reshape(-1)[0]
            continue
        k = axis % dA.ndim
        reduced = index[:k] + ((0,) if keepdims else ()) + index[k + 1:]
        dA[index] = G[reduced]
    return (dA,)


def backward_recursive(nodes, output, G):
    """Every path, one at a time (exponential in general, fine on these graphs)."""
    grads = {}

    def push(name, g):
        grads[name] = grads.get(name, 0.0) + g
        node = nodes[name]
        if node["inputs"]:
            inputs = [nodes[i]["value"] for i in node["inputs"]]
            for i, gi in zip(node["inputs"], ad.VJPS[node["op"]](
                    g, *inputs, value=node["value"], **node["attrs"])):
                push(i, gi)

    push(output, np.asarray(G, dtype=float))
    return grads


def backward_kahn(nodes, output, G):
    """Kahn's algorithm on the users' counts: a node is handed on once all its users are done."""
    reached, stack = set(), [output]
    while stack:
        name = stack.pop()
        if name not in reached:
            reached.add(name)
            stack.extend(nodes[name]["inputs"])
    users = {name: 0 for name in reached}
    for name in reached:
        for i in nodes[name]["inputs"]:
            users[i] += 1
    grads = {name: np.zeros(np.shape(nodes[name]["value"])) for name in reached}
    grads[output] = grads[output] + G
    ready = [output]
    while ready:
        name = ready.pop()
        node = nodes[name]
        if not node["inputs"]:
            continue
        inputs = [nodes[i]["value"] for i in node["inputs"]]
        for i, g in zip(node["inputs"], ad.VJPS[node["op"]](
                grads[name], *inputs, value=node["value"], **node["attrs"])):
            grads[i] = grads[i] + g
            users[i] -= 1
            if users[i] == 0:
                ready.append(i)
    return grads


OTHER_RIGHT_ANSWERS = [("add_backward", add_by_reshape), ("matmul_backward", matmul_by_einsum),
                       ("sum_backward", sum_by_loops), ("backward_tree", backward_recursive),
                       ("backward_shared", backward_recursive), ("backward_tree", backward_kahn),
                       ("backward_shared", backward_kahn)]


@pytest.mark.parametrize("key, fn", OTHER_RIGHT_ANSWERS, ids=lambda v: getattr(v, "__name__", v))
def test_other_right_answers_pass_at_ten_digits(key, fn):
    for seed in range(6):
        passes_check(key, fn, (STUDENT_SEED, seed))


def test_withholding_lasts_only_while_the_student_runs(source_nb):
    """Torch is withheld during a check and works again after it; a torch answer is right,
    so it is the withholding that fails it."""
    import torch

    torch_matmul = code('''
        def matmul_backward(G, A, B, value):
            import torch
            A_t = torch.tensor(A, requires_grad=True)
            B_t = torch.tensor(B, requires_grad=True)
            (torch.tensor(G) * (A_t @ B_t)).sum().backward()
            return A_t.grad.numpy(), B_t.grad.numpy()
        ''')
    ns = answers_with(source_nb, {"matmul_backward": torch_matmul})
    engine.check(dataclasses.replace(TASKS["matmul_backward"], withheld=()),
                 ns["matmul_backward"], 0)
    with pytest.raises(AssertionError, match="import of torch halted"):
        passes_check("matmul_backward", ns["matmul_backward"], 0)
    assert float(torch.tensor([2.0]).sum()) == 2.0


# ---------------------------------------------------------------------------------------------
# Nothing on the student side answers a task
# ---------------------------------------------------------------------------------------------


def test_the_package_has_no_backward_for_add_matmul_or_sum_and_no_array_sweep():
    assert set(ad.VJPS) == {"mul", "scale", "neg", "exp", "log", "tanh", "sigmoid", "relu"}
    public = {name for name in vars(ad) if not name.startswith("_")}
    for missing in ("add_backward", "matmul_backward", "sum_backward", "backward",
                    "unbroadcast", "gradients"):
        assert missing not in public, missing
    assert not hasattr(ad.Tensor, "backward") and not hasattr(ad.Tensor, "grad")


def test_the_instructor_engine_is_the_solution_and_stays_off_the_student_side():
    """backpropgrader.answers gives the book's removed cells the solution's sweep; the student
    install (src/backpropbook) never imports it."""
    ns = answers.load(ASSIGNMENT)
    assert {"add_backward", "matmul_backward", "sum_backward", "backward", "LOCAL"} <= set(ns)
    for path in (REPO / "src" / "backpropbook").rglob("*.py"):
        assert "backpropgrader" not in path.read_text(), path
    with pytest.raises(LookupError, match="no assignment 'nonesuch'"):
        answers.load("nonesuch")


# ---------------------------------------------------------------------------------------------
# The oracles, against centered differences of the same operations in NumPy
# ---------------------------------------------------------------------------------------------


def differences(forward, G, inputs):
    """Centered differences of L = sum(G * forward(*inputs)), for each input."""
    out = []
    for k, x in enumerate(inputs):
        def L(v, k=k, x=x):
            args = list(inputs)
            args[k] = np.asarray(v, dtype=float).reshape(np.shape(x))
            return float(np.sum(G * forward(*args)))
        out.append(np.asarray(centered_difference(L, np.asarray(x, dtype=float))))
    return out


def close_to_differences(actual, numeric):
    return all(np.allclose(a, n, rtol=1e-6, atol=1e-7) for a, n in zip(actual, numeric))


@pytest.mark.parametrize("key", ["add_backward", "matmul_backward", "sum_backward"])
def test_the_oracles_agree_with_centered_differences(key):
    task = TASKS[key]
    for case in draw(key):
        expected = task.answer_of(task.oracle, case)
        if key == "add_backward":
            numeric = differences(np.add, case["G"], [case["a"], case["b"]])
        elif key == "matmul_backward":
            numeric = differences(np.matmul, case["G"], [case["A"], case["B"]])
        else:
            numeric = differences(lambda a, c=case: np.sum(a, axis=c["axis"],
                                                            keepdims=c["keepdims"]),
                                  case["G"], [case["a"]])
        assert close_to_differences(expected, numeric), task.description(case)


NUMPY = {"mul": np.multiply, "scale": lambda x, c: c * x, "neg": np.negative, "exp": np.exp,
         "log": np.log, "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
         "relu": lambda x: np.maximum(x, 0.0)}


def evaluate(nodes, name, values):
    """The value of node ``name`` recomputed from the leaves' ``values``, in NumPy."""
    node = nodes[name]
    if not node["inputs"]:
        return values[name]
    return NUMPY[node["op"]](*(evaluate(nodes, i, values) for i in node["inputs"]),
                             **node["attrs"])


@pytest.mark.parametrize("key", SWEEPS)
def test_the_sweep_oracle_agrees_with_centered_differences_at_the_leaves(key):
    task = TASKS[key]
    for case in draw(key)[:6]:
        nodes = case["nodes"]
        expected = dict(zip(case["_names"], task.answer_of(task.oracle, case)))
        leaves = [n for n in case["_names"] if not nodes[n]["inputs"]]
        values = {n: nodes[n]["value"] for n in leaves}
        for leaf in leaves:
            def L(v, leaf=leaf, values=values, case=case):
                changed = {**values, leaf: np.asarray(v).reshape(np.shape(values[leaf]))}
                return float(np.sum(case["G"] * evaluate(case["nodes"], case["output"], changed)))
            numeric = np.asarray(centered_difference(L, np.asarray(values[leaf], dtype=float)))
            assert np.allclose(expected[leaf], numeric.reshape(np.shape(values[leaf])),
                               rtol=1e-5, atol=1e-6), (task.description(case), leaf)


# ---------------------------------------------------------------------------------------------
# The hidden cases
# ---------------------------------------------------------------------------------------------


def uses(nodes):
    counts = {name: 0 for name in nodes}
    for node in nodes.values():
        for i in node["inputs"]:
            counts[i] += 1
    return counts


def test_the_hidden_cases_cover_what_the_notebook_promises():
    add_cases = draw("add_backward")
    shapes = [(np.shape(c["a"]), np.shape(c["b"])) for c in add_cases]
    assert any(a == () for a, _ in shapes) and any(a == b for a, b in shapes)
    assert any(len(a) == 3 for a, _ in shapes) and any(1 in a and 1 in b for a, b in shapes)
    assert sum(a != b for a, b in shapes) >= len(shapes) - 1
    products = [(c["A"].shape, c["B"].shape) for c in draw("matmul_backward")]
    assert any(len(set(A + B)) == 1 for A, B in products)  # square
    assert any(B[1] == 1 for _, B in products) and any(A[0] == 1 for A, _ in products)
    assert any(len(set(A + B)) == 3 for A, B in products)  # m, k, n all different
    sums = draw("sum_backward")
    assert {c["axis"] for c in sums} == {None, 0, 1, 2, -1}
    assert {c["keepdims"] for c in sums} == {True, False}
    assert {c["a"].ndim for c in sums} == {1, 2, 3}
    assert any(c["a"].shape[-1] == c["a"].shape[-2] and c["axis"] == -1 and not c["keepdims"]
               for c in sums if c["a"].ndim == 2)


def test_the_sweep_graphs_are_trees_or_share_nodes_and_tell_no_order():
    for key in SWEEPS:
        cases = draw(key)
        assert len(cases) >= 10
        for case in cases:
            nodes, output = case["nodes"], case["output"]
            counts = uses(nodes)
            assert counts[output] == 0
            assert set(case["_names"]) == set(nodes)
            ops = {n["op"] for n in nodes.values() if n["inputs"]}
            assert ops <= set(ad.VJPS), ops  # the sweep is graded apart from tasks 1-3
            if key == "backward_tree":
                assert all(c == 1 for name, c in counts.items() if name != output), counts
            else:
                assert max(counts.values()) >= 2
                assert any(n["inputs"][0] == n["inputs"][1] for n in nodes.values()
                           if len(n["inputs"]) == 2)  # x * x
            names = list(nodes)
            order = ad.topological_order(output, lambda n, nodes=nodes: nodes[n]["inputs"])
            assert names != order and names != order[::-1]  # shuffled
            assert not any(n.startswith("t") and n[1:].isdigit() for n in names)
        sizes = {len(c["nodes"]) for c in cases}
        assert len(sizes) >= 3 and min(sizes) >= 5
        assert len({np.shape(c["G"]) for c in cases}) >= 3  # shapes vary, 0-D included
        other = draw(key, STUDENT_SEED + 1)
        assert [len(c["nodes"]) for c in other] != [len(c["nodes"]) for c in cases]


# ---------------------------------------------------------------------------------------------
# A real nbgrader course: one run of the grading command for every submission
# ---------------------------------------------------------------------------------------------


(test_release_is_what_nbgrader_generates, test_instructor_notebook_scores_full_marks,
 test_untouched_release_scores_zero, test_mistake_loses_exactly_its_points) = course_tests(
    ASSIGNMENT, TASKS, MISTAKES)
