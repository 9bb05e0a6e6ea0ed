"""The training assignment (optimizers in NumPy, a network in PyTorch): declarations, notebook,
a real course.

- the declarations (backpropgrader.tasks.training) pass the instructor's solution cells on every
  seed tried, and fail each typical mistake, written as a student would write it, with the
  message that names it; the visible tests name it too where the visible case tells it apart;
- the package's optimizers (backpropbook.optim: plain SGD, Adam) answer neither optimizer task,
  each failing with the mistake it is, and are withheld, with torch, while those tasks run;
- the oracles are consistent: a case is one step of a continuous torch.optim run, the network's
  training by torch.autograd is torch.optim.SGD's, and the fit of y = x^2 ends below its
  threshold from every seed tried;
- the tasks fall into two profiles, torch withheld (tasks 1, 2) and allowed (tasks 3, 4);
- the notebook follows the house template, and its release gives nothing away;
- in a temporary nbgrader course graded by one run of the sandboxed grading command, the
  instructor notebook scores full marks, the untouched release 0, and each submission with a
  mistake loses exactly the cells it should, with the message in the autograded notebook; one
  that imports torch inside sgd_momentum_step loses that task alone, the torch tasks pass.
"""

import ast
import dataclasses
import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from backpropbook import optim
from backpropbook.selfcheck import unchanged
from backpropgrader import engine, tasks
from backpropgrader.tasks import check, training
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
    solution_sources,
)

pytestmark = [pytest.mark.training]

ASSIGNMENT = "training"
SOURCE_DIR = REPO / "solutions" / ASSIGNMENT
SOURCE = SOURCE_DIR / f"{ASSIGNMENT}.ipynb"
RELEASE = REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
TASKS = {t.key: t for t in training.ASSIGNMENT.tasks}
NUMPY_TASKS = ("sgd_momentum_step", "adamw_step")
TORCH_TASKS = ("forward_values", "train")
STUDENT_SEED = 0xC0FFEE_5EED_0BAD_F00D  # a 64-bit seed, as the grading command sets one


def run_answers(source_nb, overrides=None):
    """The notebook's locked code cells (both setup cells) and answer cells, run in notebook
    order in one namespace, some answer cells replaced by ``overrides``."""
    sources = {**solution_sources(source_nb), **(overrides or {})}
    ns = {"__name__": "__student__"}
    for cell in source_nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        source = sources[meta["grade_id"]] if meta.get("solution") else cell.source
        exec(compile(source, f"<{meta['grade_id']}>", "exec"), ns)
    return ns


def passes_check(key, fn, seed):
    """The hidden test cell's call, through the public door."""
    check(ASSIGNMENT, key, fn, seed)


# ---------------------------------------------------------------------------------------------
# The typical mistakes, as a student writes them
# ---------------------------------------------------------------------------------------------


@dataclass
class Mistake:
    """Student code for some answer cells and the messages it must earn.

    ``hidden``: failing task -> substrings of its hidden check's message (the other tasks
    pass). ``visible``: the same for the visible tests (default: as hidden; {} where the visible
    case cannot tell). ``notebook``: what the autograded cell must show, where the sandbox says
    it differently (default: the visible message, else the hidden one). ``sandbox_only``: the
    hidden checks pass in this process, where a torch imported before the call stays within
    reach; only the sandbox of the task's profile, which has no torch, fails it.
    """

    sources: dict
    hidden: dict
    visible: dict = None
    in_notebook: bool = False  # also graded in the real nbgrader course
    notebook: dict = field(default_factory=dict)
    sandbox_only: bool = False

    def __post_init__(self):
        if self.visible is None:
            self.visible = self.hidden

    def notebook_messages(self):
        return {task: self.notebook.get(task) or self.visible.get(task) or substrings
                for task, substrings in self.hidden.items()}


def sgd(velocity, param, returned="new_params, new_velocities"):
    """An sgd_momentum_step with its velocity and parameter lines changed."""
    return code(f'''
        def sgd_momentum_step(params, grads, velocities, lr, momentum):
            new_velocities = [{velocity} for v, g in zip(velocities, grads)]
            new_params = [{param} for p, v, g, v_new in zip(params, velocities, grads,
                                                           new_velocities)]
            return {returned}
        ''')


RIGHT_V, RIGHT_P = "momentum * v + g", "p - lr * v_new"

ADAMW = '''
def adamw_step(params, grads, state, lr, betas, eps, weight_decay):
    beta1, beta2 = {betas}
    t = state["t"] + 1
    new_params, new_m, new_v = [], [], []
    for p, g, m, v in zip(params, grads, state["m"], state["v"]):
        p = {decay}
        m = beta1 * m + (1 - beta1) * {g}
        v = beta2 * v + (1 - beta2) * {g} ** 2
        m_hat, v_hat = {hats}
        new_params.append({update})
        new_m.append({kept_m})
        new_v.append({kept_v})
    return new_params, {{"t": {t}, "m": new_m, "v": new_v}}
'''


def adamw(betas="betas", decay="p * (1 - lr * weight_decay)", g="g",
          hats="m / (1 - beta1 ** t), v / (1 - beta2 ** t)",
          update="p - lr * m_hat / (np.sqrt(v_hat) + eps)", kept_m="m", kept_v="v", t="t"):
    """An adamw_step with one of its lines changed."""
    return code(ADAMW.format(betas=betas, decay=decay, g=g, hats=hats, update=update,
                             kept_m=kept_m, kept_v=kept_v, t=t))


SKIPNET = '''
class SkipNet(nn.Module):
    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        {layers}

    def forward(self, x):
        a1 = {a1}
        return {output}
'''
LAYERS = ("self.first = nn.Linear(n_in, n_hidden{dtype})",
          "self.second = nn.Linear(n_hidden, n_hidden{dtype})",
          "self.skip = nn.Linear(n_in, n_hidden{dtype})",
          "self.out = nn.Linear(n_hidden, n_out{dtype})")


def skipnet(order=(0, 1, 2, 3), dtype="", a1="torch.tanh(self.first(x))",
            output="self.out(torch.tanh(self.second(a1) + self.skip(x)))"):
    """A SkipNet with its layers made in ``order`` (indices into LAYERS) or its forward changed."""
    layers = "\n        ".join(LAYERS[i].format(dtype=dtype) for i in order)
    return code(SKIPNET.format(layers=layers, a1=a1, output=output))


FORWARD = '''
def forward_values(seed, X, n_hidden, n_out):
    torch.manual_seed(seed)
    model = SkipNet(X.shape[1], n_hidden, n_out){double}
    with torch.no_grad():
        return {result}
'''


def forward(double=".double()", result="model(torch.tensor(X, dtype=torch.float64)).numpy()"):
    return code(FORWARD.format(double=double, result=result))


TRAIN = '''
def train(seed, X, Y, n_hidden, steps, lr):
    torch.manual_seed(seed)
    model = SkipNet(X.shape[1], n_hidden, Y.shape[1]){double}
    X, Y = torch.tensor(X, dtype={dtype}), torch.tensor(Y, dtype={dtype})
    optimizer = {optimizer}
    loss_fn = {loss_fn}
    losses = []
    for _ in range(steps):
        {step}
        losses.append({record})
    return losses, {params}
'''
RIGHT_STEP = ("optimizer.zero_grad()", "loss = loss_fn(model(X), Y)", "loss.backward()",
              "optimizer.step()")


def train(step=RIGHT_STEP, double=".double()", dtype="torch.float64",
          optimizer="optim.SGD(model.parameters(), lr=lr, momentum=0.9)",
          loss_fn="nn.MSELoss()", record="loss.item()",
          params="[p.detach().numpy() for p in model.parameters()]"):
    """A train with one of its lines changed; ``step`` lists the lines of one step."""
    return code(TRAIN.format(step="\n        ".join(step), double=double, dtype=dtype,
                             optimizer=optimizer, loss_fn=loss_fn, record=record, params=params))


def network(message, train=None):
    """A wrong network fails both torch tasks, with the same message unless ``train`` says."""
    return {"forward_values": [message], "train": train or [message]}


MISTAKES = {
    # --- task 1 ------------------------------------------------------------------------------
    "sgd_no_momentum": Mistake(
        {"sgd_momentum_step": sgd("g", "p - lr * g")},
        {"sgd_momentum_step": ["the momentum term is missing", "plain SGD"]}),
    "sgd_velocity_not_updated": Mistake(
        {"sgd_momentum_step": sgd(RIGHT_V, RIGHT_P, returned="new_params, velocities")},
        {"sgd_momentum_step": ["the velocity is not updated"]}),
    "sgd_wrong_sign": Mistake(
        {"sgd_momentum_step": sgd(RIGHT_V, "p + lr * v_new")},
        {"sgd_momentum_step": ["wrong sign"]}),
    "sgd_lr_twice": Mistake(
        {"sgd_momentum_step": sgd("momentum * v + lr * g", RIGHT_P)},
        {"sgd_momentum_step": ["lr is applied twice"]}),
    "sgd_lr_in_velocity": Mistake(
        {"sgd_momentum_step": sgd("momentum * v + lr * g", "p - v_new")},
        {"sgd_momentum_step": ["lr is inside the velocity", "Sutskever"]}),
    "sgd_dampening": Mistake(
        {"sgd_momentum_step": sgd("momentum * v + (1 - momentum) * g", RIGHT_P)},
        {"sgd_momentum_step": ["dampening is applied", "moving average"]}, in_notebook=True),
    "sgd_nesterov": Mistake(
        {"sgd_momentum_step": sgd(RIGHT_V, "p - lr * (g + momentum * v_new)")},
        {"sgd_momentum_step": ["Nesterov momentum"]}),
    "sgd_old_velocity": Mistake(
        {"sgd_momentum_step": sgd(RIGHT_V, "p - lr * v")},
        {"sgd_momentum_step": ["the parameters move with the old velocity"]}),
    "sgd_in_place": Mistake(
        {"sgd_momentum_step": code('''
            def sgd_momentum_step(params, grads, velocities, lr, momentum):
                for p, v, g in zip(params, velocities, grads):
                    v *= momentum
                    v += g
                    p -= lr * v
                return params, velocities
            ''')},
        {"sgd_momentum_step": ["changed its argument params", "do not change the inputs"]}),
    "sgd_torch": Mistake(  # right, but with torch.optim: torch is withheld for this task
        {"sgd_momentum_step": code('''
            def sgd_momentum_step(params, grads, velocities, lr, momentum):
                import torch

                leaves = [torch.tensor(p, requires_grad=True) for p in params]
                sgd = torch.optim.SGD(leaves, lr=lr, momentum=momentum)
                for p, g, v in zip(leaves, grads, velocities):
                    p.grad = torch.tensor(g)
                    sgd.state[p] = {"momentum_buffer": torch.tensor(v)}
                sgd.step()
                return ([p.detach().numpy() for p in leaves],
                        [sgd.state[p]["momentum_buffer"].numpy() for p in leaves])
            ''')},
        {"sgd_momentum_step": ["raised ModuleNotFoundError", "import of torch halted"]},
        visible={},
        in_notebook=True,
        notebook={"sgd_momentum_step": ["torch is not available while grading"]}),
    "sgd_global_torch": Mistake(  # right, with the torch of the notebook's torch setup cell
        {"sgd_momentum_step": code('''
            def sgd_momentum_step(params, grads, velocities, lr, momentum):
                new_velocities = [momentum * torch.tensor(v) + torch.tensor(g)
                                  for v, g in zip(velocities, grads)]
                new_params = [torch.tensor(p) - lr * v for p, v in zip(params, new_velocities)]
                return [p.numpy() for p in new_params], [v.numpy() for v in new_velocities]
            ''')},
        {"sgd_momentum_step": ["raised NameError", "name 'torch' is not defined"]}, visible={},
        in_notebook=True, sandbox_only=True),
    "sgd_calls_the_book": Mistake(  # right, but with the chapter's sgd_step
        {"sgd_momentum_step": code('''
            from backpropbook.optim import sgd_step

            def sgd_momentum_step(params, grads, velocities, lr, momentum):
                new_velocities = [momentum * v + g for v, g in zip(velocities, grads)]
                return sgd_step(params, new_velocities, lr), new_velocities
            ''')},
        {"sgd_momentum_step": ["backpropbook.optim.sgd_step is withheld"]}, visible={},
        in_notebook=True,
        notebook={"sgd_momentum_step": ["backpropbook.optim.sgd_step is the book's reference",
                                        "not available while grading"]}),
    # --- task 2 ------------------------------------------------------------------------------
    "adamw_no_bias_correction": Mistake(
        {"adamw_step": adamw(hats="m, v")},
        {"adamw_step": ["the bias correction is missing"]}, in_notebook=True),
    "adamw_coupled": Mistake(  # Adam with L2: the decay goes through the moments
        {"adamw_step": adamw(decay="p", g="(g + weight_decay * p)")},
        {"adamw_step": ["the weight decay is coupled into the gradient",
                        "torch.optim.Adam(weight_decay="]}, in_notebook=True),
    "adamw_no_decay": Mistake(
        {"adamw_step": adamw(decay="p")},
        {"adamw_step": ["the weight decay is missing: that is Adam"]}),
    "adamw_decay_after": Mistake(
        {"adamw_step": adamw(decay="p", update="(p - lr * m_hat / (np.sqrt(v_hat) + eps))"
                                               " * (1 - lr * weight_decay)")},
        {"adamw_step": ["the weight decay is applied after the Adam update"]}),
    "adamw_decay_without_lr": Mistake(
        {"adamw_step": adamw(decay="p * (1 - weight_decay)")},
        {"adamw_step": ["the weight decay is not multiplied by lr"]}),
    "adamw_eps_inside": Mistake(
        {"adamw_step": adamw(update="p - lr * m_hat / np.sqrt(v_hat + eps)")},
        {"adamw_step": ["eps is inside the square root"]}, in_notebook=True),
    "adamw_eps_hat": Mistake(  # the paper's efficient form
        {"adamw_step": adamw(update="p - lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m "
                                    "/ (np.sqrt(v) + eps)")},
        {"adamw_step": ["eps is added before the bias correction"]}),
    "adamw_lr_twice": Mistake(
        {"adamw_step": adamw(update="p - lr * lr * m_hat / (np.sqrt(v_hat) + eps)")},
        {"adamw_step": ["lr is applied twice"]}),
    "adamw_wrong_sign": Mistake(
        {"adamw_step": adamw(update="p + lr * m_hat / (np.sqrt(v_hat) + eps)")},
        {"adamw_step": ["wrong sign"]}),
    "adamw_betas_swapped": Mistake(
        {"adamw_step": adamw(betas="betas[1], betas[0]")},
        {"adamw_step": ["β1 and β2 are swapped"]}),
    "adamw_stores_hats": Mistake(
        {"adamw_step": adamw(kept_m="m_hat", kept_v="v_hat")},
        {"adamw_step": ["the bias-corrected m̂ and v̂ are stored in the state"]}),
    "adamw_t_not_advanced": Mistake(
        {"adamw_step": adamw(t='state["t"]')},
        {"adamw_step": ["the step count is not advanced"]}),
    "adamw_old_count": Mistake(
        # the hidden runs start at t = 0, where the old count divides by zero; the visible
        # case (t = 2) names the mistake
        {"adamw_step": adamw(hats="m / (1 - beta1 ** (t - 1)), v / (1 - beta2 ** (t - 1))")},
        {"adamw_step": ["state t = 0 (this is step 1)", "numerical warning", "divide"]},
        visible={"adamw_step": ["the bias correction uses the old step count t"]}),
    "adamw_in_place_state": Mistake(
        {"adamw_step": code('''
            def adamw_step(params, grads, state, lr, betas, eps, weight_decay):
                beta1, beta2 = betas
                state["t"] += 1
                t = state["t"]
                new_params = []
                for i, (p, g) in enumerate(zip(params, grads)):
                    state["m"][i] = beta1 * state["m"][i] + (1 - beta1) * g
                    state["v"][i] = beta2 * state["v"][i] + (1 - beta2) * g * g
                    m_hat = state["m"][i] / (1 - beta1 ** t)
                    v_hat = state["v"][i] / (1 - beta2 ** t)
                    p = p * (1 - lr * weight_decay)
                    new_params.append(p - lr * m_hat / (np.sqrt(v_hat) + eps))
                return new_params, state
            ''')},
        {"adamw_step": ["changed its argument state", "do not change the inputs"]}),
    "adamw_calls_the_book": Mistake(  # right: the decay, then the chapter's adam_step
        {"adamw_step": code('''
            from backpropbook.optim import adam_step

            def adamw_step(params, grads, state, lr, betas, eps, weight_decay):
                decayed = [p * (1 - lr * weight_decay) for p in params]
                return adam_step(decayed, grads, state, lr, betas, eps)
            ''')},
        {"adamw_step": ["backpropbook.optim.adam_step is withheld"]}, visible={}),
    # --- task 3: the network (a wrong one fails both torch tasks) -----------------------------
    "net_no_skip": Mistake(
        {"skipnet": skipnet(output="self.out(torch.tanh(self.second(a1)))")},
        network("the skip path is missing"), in_notebook=True),
    "net_skip_after_tanh": Mistake(
        {"skipnet": skipnet(output="self.out(torch.tanh(self.second(a1)) + self.skip(x))")},
        network("the skip path is added after the second tanh")),
    "net_relu": Mistake(
        {"skipnet": skipnet(a1="torch.relu(self.first(x))",
                            output="self.out(torch.relu(self.second(a1) + self.skip(x)))")},
        network("relu instead of tanh")),
    "net_no_first_tanh": Mistake(
        {"skipnet": skipnet(a1="self.first(x)")},
        network("tanh after the first layer is missing")),
    "net_skip_made_first": Mistake(
        {"skipnet": skipnet(order=(2, 0, 1, 3))},
        # model.parameters() comes in the order the layers are made: train's params show it
        network("the layers are made in another order (skip is made first)",
                train=["wrong shape: second.weight should have shape", "the order the layers "
                       "are made in: first.weight, first.bias, second.weight"]),
        in_notebook=True),
    "net_made_in_float64": Mistake(
        {"skipnet": skipnet(dtype=", dtype=torch.float64")},
        network("the model is made in float64")),
    "forward_float32": Mistake(
        {"forward_values": forward(double="", result="model(torch.tensor(X, "
                                   "dtype=torch.float32)).numpy()")},
        {"forward_values": ["the computation runs in float32", "model.double()"]}),
    "forward_returns_a_tensor": Mistake(
        {"forward_values": forward(result="model(torch.tensor(X, dtype=torch.float64))")},
        {"forward_values": ["is a torch tensor", "detach().numpy()"]}),
    # --- task 4 ------------------------------------------------------------------------------
    "train_no_zero_grad": Mistake(
        {"train": train(step=RIGHT_STEP[1:])},
        {"train": ["optimizer.zero_grad() is missing"]}, in_notebook=True),
    "train_step_before_backward": Mistake(
        {"train": train(step=(RIGHT_STEP[0], RIGHT_STEP[1], RIGHT_STEP[3], RIGHT_STEP[2]))},
        {"train": ["optimizer.step() comes before loss.backward()"]}, in_notebook=True),
    "train_summed_loss": Mistake(
        {"train": train(loss_fn='nn.MSELoss(reduction="sum")')},
        {"train": ["the loss is the sum of the squared errors"]}, in_notebook=True),
    "train_halved_loss": Mistake(  # the book's E
        {"train": train(step=(RIGHT_STEP[0], "loss = 0.5 * loss_fn(model(X), Y)",
                              *RIGHT_STEP[2:]))},
        {"train": ["the loss is halved"]}),
    "train_loss_after_step": Mistake(
        {"train": train(record="loss_fn(model(X), Y).item()")},
        {"train": ["the losses are recorded after the step"]}),
    "train_default_lr": Mistake(
        {"train": train(optimizer="optim.SGD(model.parameters(), momentum=0.9)")},
        {"train": ["the learning rate is not lr", "default lr = 0.001"]}),
    "train_no_momentum": Mistake(
        {"train": train(optimizer="optim.SGD(model.parameters(), lr=lr)")},
        {"train": ["the momentum is missing"]}),
    "train_adam": Mistake(  # the chapter's optimizer
        {"train": train(optimizer="optim.Adam(model.parameters(), lr=lr)")},
        {"train": ["that is Adam", "optim.SGD("]}),
    "train_float32": Mistake(
        {"train": train(double="", dtype="torch.float32")},
        {"train": ["the computation runs in float32"]}),
    "train_returns_parameters": Mistake(
        {"train": train(params="list(model.parameters())")},
        {"train": ["first.weight (from train) is a torch tensor", "detach().numpy()"]},
        in_notebook=True),
    "train_returns_loss_tensors": Mistake(
        {"train": train(record="loss")},
        {"train": ["losses (from train) should be floats", "loss.item()"]}),
}


def test_every_task_has_typical_mistakes_and_some_go_through_the_course():
    assert {task for m in MISTAKES.values() for task in m.hidden} == set(TASKS)
    in_course = [m for m in MISTAKES.values() if m.in_notebook]
    assert len(in_course) >= 10
    assert all(m.in_notebook for m in MISTAKES.values() if m.sandbox_only)
    assert {task for m in in_course for task in m.hidden} == set(TASKS)
    declared = {key: {m.message for m in task.mistakes(*task.args(task.visible[0]))}
                for key, task in TASKS.items()}
    assert {key: len(messages) for key, messages in declared.items()} == {
        "sgd_momentum_step": 8, "adamw_step": 13, "forward_values": 10, "train": 18}


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
    assert graded == [t.grade_id for t in training.ASSIGNMENT.tasks]
    assert [t.points for t in training.ASSIGNMENT.tasks] == [4, 5, 3, 5]
    assert sum(t.points for t in TASKS.values()) >= 15
    manual = [c for c in source_nb.cells
              if nbgrader_meta(c).get("grade") and c.cell_type == "markdown"]
    assert [nbgrader_meta(c)["grade_id"] for c in manual] == ["symmetry"]
    assert nbgrader_meta(manual[0])["solution"] and nbgrader_meta(manual[0])["points"] == 2
    cells = cells_by_grade_id(source_nb)
    for key, task in TASKS.items():
        first, *rest = cells[task.grade_id].source.splitlines()
        assert first.startswith(f'"""{task.name}') and first.endswith('"""'), first
        assert rest == [f'visible.check("{key}", {task.name})',
                        "### BEGIN HIDDEN TESTS",
                        "from backpropgrader.tasks import check",
                        f'check("training", "{key}", {task.name}, GRADING_SEED)',
                        "### END HIDDEN TESTS"]
    assert set(solution_sources(source_nb)) == {*TASKS, "skipnet"}
    for name in TASKS:
        stub = cells[name].source.split("### BEGIN SOLUTION")[0]
        assert stub.startswith(f"def {name}(") and '"""' in stub, name
    assert cells["skipnet"].source.startswith("class SkipNet(nn.Module):")
    intro = cells["intro"].source  # the intro's table shows the points
    for name, task in TASKS.items():
        row = next(line for line in intro.splitlines() if f"`{name}`" in line)
        assert row.rsplit("|", 2)[1].strip() == str(task.points), row
    # the markdown states what the hidden tests hold to
    assert "dampening=0" in cells["task1"].source and "nesterov=False" in cells["task1"].source
    assert '{"t": t, "m": m, "v": v}' in cells["task2"].source
    assert "`eps` up to 0.1" in cells["task2"].source
    for layer in training.LAYERS:
        assert f"self.{layer} = nn.Linear(" in cells["task3"].source
    assert "momentum=0.9" in cells["task4"].source and f"{training.FIT_LOSS}" in (
        cells["task4"].source)
    assert str(training.FIT_STEPS) in cells["task4"].source


def imports(source):
    tree = ast.parse(source)
    found = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for a in node.names]
    return found + [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]


def test_setup_cells_import_only_the_student_side(source_nb):
    cells = cells_by_grade_id(source_nb)
    setup, setup_torch = cells["setup"], cells["setup_torch"]
    assert nbgrader_meta(setup)["locked"] and nbgrader_meta(setup_torch)["locked"]
    # tasks 1 and 2 need NumPy only: the first setup cell runs without torch
    assert imports(setup.source) == ["numpy", "backpropbook.selfcheck"]
    assert setup.source.splitlines()[-2:] == [
        'visible = VisibleTests.load("training")  # the visible tests\' data, next to this '
        "notebook", "GRADING_SEED = 0  # the grading command sets one seed per student"]
    assert imports(setup_torch.source) == ["torch", "torch"]
    order = [c.id for c in source_nb.cells]
    assert order.index("setup_torch") > order.index("test_adamw_step")
    assert order.index("setup_torch") < order.index("skipnet")
    # an answer cell imports nothing: the setup cells have everything
    for gid, source in solution_sources(source_nb).items():
        assert imports(source) == [], gid


def test_release_gives_nothing_away(source_nb):
    assert_release_gives_nothing_away(source_nb, RELEASE)


def test_visible_data_is_what_the_declarations_give():
    """The committed visible tests' data (instructor folder and release) is regenerated, and
    holds the visible cases only: no hidden case, no solution."""
    data = engine.visible_data(training.ASSIGNMENT.tasks)
    text = assert_visible_data_current(ASSIGNMENT, data)
    assert set(json.loads(text)["__dict__"]["tasks"]["__dict__"]) == set(TASKS)
    for key, task in TASKS.items():
        stored = data["tasks"][key]
        assert len(stored["cases"]) == len(task.visible) == 1
        assert all(unchanged(a, b) for a, b in zip(task.args(task.visible[0]),
                                                   stored["cases"][0]["args"]))
    for source in solution_sources(read(SOURCE)).values():
        for line in source.splitlines():
            assert len(line.strip()) < 25 or line.strip() not in text, line


# ---------------------------------------------------------------------------------------------
# The declarations with the instructor's answers and with the mistakes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", TASKS)
def test_instructor_solution_passes_silently(source_nb, visible_tests, key, capsys):
    ns = run_answers(source_nb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        visible_tests.check(key, ns[key])
        for seed in (0, 1, STUDENT_SEED, (STUDENT_SEED, 7)):
            passes_check(key, ns[key], seed)
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
    for key in TASKS:
        fn = ns[key]
        if key not in mistake.hidden or mistake.sandbox_only:  # the other tasks still pass
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
    data = engine.visible_data(training.ASSIGNMENT.tasks)["tasks"]
    for key, task in TASKS.items():
        case = task.visible[0]
        expected = task.answer_of(task.oracle, case)
        named = data[key]["cases"][0]["mistakes"]
        assert len(named) == len(task.mistakes(*task.args(case))), key  # none coincides
        for message, wrong in named:
            wrong = tuple(np.asarray(w, dtype=float) for w in wrong)
            assert engine.explain(task, case, wrong, expected) == message, (key, message)


# Right answers written otherwise than the instructor's: the tolerances must let them through.
def sgd_in_place_on_copies(params, grads, velocities, lr, momentum):
    new_params, new_velocities = [p.copy() for p in params], [v.copy() for v in velocities]
    for p, v, g in zip(new_params, new_velocities, grads):
        v *= momentum
        v += g
        p -= lr * v
    return new_params, new_velocities


def adamw_as_torch_computes_it(params, grads, state, lr, betas, eps, weight_decay):
    """torch's own order: m by lerp, step size lr / (1 - beta1^t), sqrt(v) / sqrt(1 - beta2^t)."""
    beta1, beta2 = betas
    t = state["t"] + 1
    m = [m + (1 - beta1) * (g - m) for m, g in zip(state["m"], grads)]
    v = [beta2 * v + (1 - beta2) * g * g for v, g in zip(state["v"], grads)]
    step = lr / (1 - beta1 ** t)
    new = [p * (1 - lr * weight_decay) - step * m_ / (np.sqrt(v_) / np.sqrt(1 - beta2 ** t) + eps)
           for p, m_, v_ in zip(params, m, v)]
    return tuple(new), {"t": t, "m": m, "v": v}


class SequentialSkipNet(torch.nn.Module):
    """The layers in a ModuleDict (made in the declared order), forward with nn.functional."""

    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        self.layers = torch.nn.ModuleDict({
            "first": torch.nn.Linear(n_in, n_hidden), "second": torch.nn.Linear(n_hidden, n_hidden),
            "skip": torch.nn.Linear(n_in, n_hidden), "out": torch.nn.Linear(n_hidden, n_out)})

    def forward(self, x):
        a1 = torch.nn.functional.tanh(self.layers["first"](x))
        return self.layers["out"](torch.tanh(self.layers["skip"](x) + self.layers["second"](a1)))


def forward_in_a_module_dict(seed, X, n_hidden, n_out):
    torch.manual_seed(seed)
    model = SequentialSkipNet(X.shape[1], n_hidden, n_out).to(torch.float64)
    return model(torch.from_numpy(X)).detach().numpy()


def train_with_a_hand_written_loss(seed, X, Y, n_hidden, steps, lr):
    torch.manual_seed(seed)
    model = SequentialSkipNet(X.shape[1], n_hidden, Y.shape[1]).double()
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    sgd = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        sgd.zero_grad(set_to_none=False)
        loss = ((model(X) - Y) ** 2).mean()
        loss.backward()
        sgd.step()
        losses.append(float(loss.detach()))
    return np.array(losses), tuple(p.detach().numpy().copy() for p in model.parameters())


OTHER_RIGHT_ANSWERS = [
    ("sgd_momentum_step", sgd_in_place_on_copies),
    ("adamw_step", adamw_as_torch_computes_it),
    ("forward_values", forward_in_a_module_dict),
    ("train", train_with_a_hand_written_loss),
]


@pytest.mark.parametrize("key, fn", OTHER_RIGHT_ANSWERS, ids=lambda v: getattr(v, "__name__", v))
def test_other_right_answers_pass(key, fn):
    for seed in range(3):
        passes_check(key, fn, (STUDENT_SEED, seed))


# ---------------------------------------------------------------------------------------------
# The chapter's optimizers answer neither optimizer task, and are withheld
# ---------------------------------------------------------------------------------------------


# What a student gets from backpropbook.optim (plain SGD, Adam without weight decay), each wrong
# here for the reason it names; the compositions that would be right are withheld.
PACKAGE = {
    "sgd_momentum_step": [
        (lambda params, grads, velocities, lr, momentum: (
            optim.sgd_step(params, grads, lr), list(grads)), "the momentum term is missing")],
    "adamw_step": [
        (lambda params, grads, state, lr, betas, eps, weight_decay: optim.adam_step(
            params, grads, state, lr, betas, eps), "the weight decay is missing: that is Adam"),
        (lambda params, grads, state, lr, betas, eps, weight_decay: optim.adam_step(
            params, [g + weight_decay * p for p, g in zip(params, grads)], state, lr, betas,
            eps), "the weight decay is coupled into the gradient")],
}
COMPOSED = {
    "sgd_momentum_step": lambda params, grads, velocities, lr, momentum: (
        optim.sgd_step(params, [momentum * v + g for v, g in zip(velocities, grads)], lr),
        [momentum * v + g for v, g in zip(velocities, grads)]),
    "adamw_step": lambda params, grads, state, lr, betas, eps, weight_decay: optim.adam_step(
        [p * (1 - lr * weight_decay) for p in params], grads, state, lr, betas, eps),
}


@pytest.mark.parametrize("key", NUMPY_TASKS)
def test_the_chapters_optimizers_give_a_named_wrong_answer_and_are_withheld(key):
    unguarded = dataclasses.replace(TASKS[key], withheld=())
    for fn, message in PACKAGE[key]:
        for seed in (0, STUDENT_SEED):
            with pytest.raises(AssertionError, match=message):
                engine.check(unguarded, fn, seed)
        with pytest.raises(AssertionError, match="backpropbook.optim.* is withheld"):
            engine.check(TASKS[key], fn, STUDENT_SEED)
    # decay, then the chapter's Adam, is AdamW: the withholding is what fails it
    engine.check(unguarded, COMPOSED[key], STUDENT_SEED)
    with pytest.raises(AssertionError, match="backpropbook.optim.* is withheld"):
        engine.check(TASKS[key], COMPOSED[key], STUDENT_SEED)


def test_profiles_withhold_torch_for_the_numpy_tasks_only():
    profiles = tasks.withheld_by_test(ASSIGNMENT)
    assert profiles == {**{f"test_{k}": ("backpropbook.optim", "torch") for k in NUMPY_TASKS},
                        **{f"test_{k}": () for k in TORCH_TASKS}}
    for other in ("scalar", "vector", "matrix"):  # one profile: one sandbox, as before
        assert set(tasks.withheld_by_test(other).values()) == {tuple(tasks.withheld(other))}
    assert tasks.withheld_by_test("no-such-assignment") == {}


# ---------------------------------------------------------------------------------------------
# The oracles
# ---------------------------------------------------------------------------------------------


def draw(key, seed):
    return TASKS[key].cases(np.random.default_rng(engine.task_seed(seed, TASKS[key])))


@pytest.mark.parametrize("key", NUMPY_TASKS)
def test_the_cases_are_consecutive_steps_of_one_torch_run(key):
    """Each case but a run's first starts where torch's run was after the previous step; the
    runs start fresh (zero state, torch's own start) and from random states."""
    task, cases = TASKS[key], draw(key, STUDENT_SEED)
    state_key = "velocities" if key == "sgd_momentum_step" else "state"
    chained = 0
    for before, after in zip(cases[:-1], cases[1:]):
        n = len(before["params"])
        answer = task.answer_of(task.oracle, before)
        starts_here = (len(after["params"]) == n and all(
            np.array_equal(a, b) for a, b in zip(answer[:n], after["params"])))
        if not starts_here:
            continue
        chained += 1
        state = after[state_key]
        kept = state if key == "sgd_momentum_step" else [state["t"], *state["m"], *state["v"]]
        assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(answer[n:], kept))
    assert chained == len(cases) - 3  # three runs
    if key == "sgd_momentum_step":
        assert not any(np.any(v) for v in cases[0]["velocities"])
        assert len({(c["lr"], c["momentum"]) for c in cases}) == 3
    else:
        ts = [c["state"]["t"] for c in cases]
        assert ts[:4] == [0, 1, 2, 3] and max(ts) > 1000
        assert {c["eps"] for c in cases} == {1e-8, 1e-4, 0.1}
        assert all(c["weight_decay"] > 0 for c in cases)
    shapes = {p.shape for c in cases for p in c["params"]}
    assert len(shapes) >= 3 and any(len(s) == 3 for s in shapes)


def test_the_training_oracle_is_torch_optim_sgd_and_the_fit_ends_below_its_threshold():
    """The oracle (autograd, the momentum update written out) trains as torch.optim.SGD does;
    the fit of y = x^2 ends below FIT_LOSS from every seed tried."""
    task = TASKS["train"]
    for seed in range(12):
        fit = draw("train", (STUDENT_SEED, seed))[-1]
        assert fit["steps"] == training.FIT_STEPS
        losses, params = task.oracle(*task.args(fit))
        assert losses[-1] < training.FIT_LOSS < losses[0] / 10
        if seed < 2:
            expected = task.read_trusted((losses, params), fit)
            ours = task.kind.read(train_with_a_hand_written_loss(*task.args(fit)), {},
                                  expected, "train")
            assert engine.close(ours, expected, 1e-9, 1e-11)
    shorts = draw("train", STUDENT_SEED)[:-1]
    assert sorted(c["steps"] for c in shorts) == [1, 4, 10, 15, 25]
    assert all(c["X"].shape[1] != c["n_hidden"] for c in shorts)  # skip(x) is not skip(a1)


# ---------------------------------------------------------------------------------------------
# A real nbgrader course: one run of the grading command for every submission
# ---------------------------------------------------------------------------------------------


(test_release_is_what_nbgrader_generates, test_instructor_notebook_scores_full_marks,
 test_untouched_release_scores_zero, test_mistake_loses_exactly_its_points) = course_tests(
    ASSIGNMENT, TASKS, MISTAKES)


def test_a_float32_answer_is_named_whatever_machine_computed_it():
    """Float32 rounds differently on another CPU by about as much as float32 differs from the
    float64 answer: the visible tests tell a float32 answer by its being float32 numbers near
    the float32 mistake, not by closeness alone."""
    from backpropbook.selfcheck import diagnose

    rng = np.random.default_rng(3)
    expected = (rng.normal(size=5),)
    stored = (expected[0].astype(np.float32).astype(float),)  # the release machine's float32
    elsewhere = (np.nextafter(stored[0].astype(np.float32), np.float32(np.inf)).astype(float),)
    mistakes = [("something else", (expected[0] + 1.0,)), ("float32", stored)]
    assert diagnose(elsewhere, expected, mistakes, 1e-10, 1e-12) == "float32"
    float64_off = (elsewhere[0] + 1e-12,)  # as far off, but not float32 numbers
    assert diagnose(float64_off, expected, mistakes, 1e-10, 1e-12) is None
