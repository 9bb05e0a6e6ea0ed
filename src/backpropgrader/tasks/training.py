"""The training assignment (``solutions/training/training.ipynb``), declared task by task.

The training chapter defines the update w <- w - eta dE/dw, codes plain SGD and Adam in NumPy
(``backpropbook.optim``) and trains a ReLU network in PyTorch with Adam. The tasks ask for what
it defines but does not code:

1. ``sgd_momentum_step``: torch.optim.SGD's momentum (dampening 0, no Nesterov) on a list of
   NumPy parameters;
2. ``adamw_step``: torch.optim.AdamW's decoupled weight decay and bias correction;
3. ``forward_values``: the untrained outputs of ``SkipNet``, a network with a skip connection,
   built under ``torch.manual_seed(seed)`` (its layer order fixes its initial weights);
4. ``train``: SkipNet trained with optim.SGD (momentum 0.9) on nn.MSELoss.

Oracles: torch.optim.SGD and torch.optim.AdamW in float64, run step after step (a case is one
step of such a run, so several consecutive steps are checked); for the network, its forward
pass written here with torch.nn.functional on the weights of nn.Linear layers made in the
declared order, and its training by torch.autograd.grad with the momentum update written out.

Profiles: tasks 1 and 2 withhold torch (torch.optim would answer them) and the package's
optimizers (AdamW is a decay and then an Adam step); tasks 3 and 4 need torch and withhold
nothing. The grader gives each withheld set a sandbox of its own (backpropgrader.course).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backpropbook.selfcheck import Array, Step, Trajectory
from backpropgrader.engine import Assignment, Mistake, Task

# "torch" last: engine.withheld imports the modules before it blocks torch.
WITHHELD = ("backpropbook.optim", "torch")
STEP_RTOL, STEP_ATOL = 1e-12, 1e-14  # one step in float64: a few ulps apart at most
NET_RTOL, NET_ATOL = 1e-10, 1e-12
TRAIN_RTOL, TRAIN_ATOL = 1e-8, 1e-10  # rounding differences grow a little along a run
MOMENTUM = 0.9  # train's optimizer: optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)
FIT_STEPS, FIT_LOSS = 300, 0.01  # the hidden run on y = x^2 ends below this loss


def _tensor(value):
    return torch.tensor(np.asarray(value, dtype=float), dtype=torch.float64)


def _numpy(tensor):
    return tensor.detach().numpy().copy()


def _shapes(rng):
    """1 to 4 parameter shapes: matrices, vectors, 3-D arrays, (1,) among them."""
    pool = [(int(rng.integers(1, 5)), int(rng.integers(1, 6))), (int(rng.integers(1, 7)),),
            (2, int(rng.integers(1, 4)), 2), (1,)]
    count = int(rng.integers(1, 5))
    return [pool[i] for i in rng.permutation(len(pool))[:count]]


def _describe_step(name, case, extra):
    shapes = ", ".join(str(p.shape) for p in case["params"])
    return f"{name} on {len(case['params'])} parameters of shapes {shapes}, {extra}"


# --------------------------------------------------------------------------------------------
# Task 1: SGD with momentum, torch.optim.SGD's semantics
# --------------------------------------------------------------------------------------------


def _sgd_run(params, velocities, grads_per_step, lr, momentum):
    """torch.optim.SGD(momentum, dampening 0, no Nesterov) over several steps, in float64.

    The optimizer starts from ``velocities`` (its momentum buffers), or, when they are None,
    fresh (torch then starts each buffer at the first gradient). Returns the flat state after
    each step: ``(*params, *velocities)``.
    """
    leaves = [_tensor(p).requires_grad_() for p in params]
    optimizer = torch.optim.SGD(leaves, lr=lr, momentum=momentum)
    if velocities is not None:
        for p, v in zip(leaves, velocities):
            optimizer.state[p] = {"momentum_buffer": _tensor(v)}
    states = []
    for grads in grads_per_step:
        for p, g in zip(leaves, grads):
            p.grad = _tensor(g)
        optimizer.step()
        states.append(tuple(_numpy(p) for p in leaves)
                      + tuple(_numpy(optimizer.state[p]["momentum_buffer"]) for p in leaves))
    return states


def _sgd_oracle(params, grads, velocities, lr, momentum):
    return _sgd_run(params, velocities, [grads], lr, momentum)[0]


def _sgd_rule(rule):
    """The flat answer of ``rule(p, g, v, lr, momentum) -> (new p, new v)`` on each parameter."""
    def answer(params, grads, velocities, lr, momentum):
        pairs = [rule(p, g, v, lr, momentum) for p, g, v in zip(params, grads, velocities)]
        return tuple(p for p, _ in pairs) + tuple(v for _, v in pairs)
    return answer


SGD_RULE = "v ← momentum·v + g, then p ← p − lr·v"
SGD_MISTAKES = [
    Mistake("the momentum term is missing: that is plain SGD, p ← p − lr·g; with momentum the "
            f"velocity keeps a running sum of the gradients, {SGD_RULE}",
            _sgd_rule(lambda p, g, v, lr, mu: (p - lr * g, g))),
    Mistake("the velocity is not updated: the new velocities come back as the old ones; return "
            f"the velocity the step used ({SGD_RULE})",
            _sgd_rule(lambda p, g, v, lr, mu: (p - lr * (mu * v + g), v))),
    Mistake(f"wrong sign: a step goes down the gradient, {SGD_RULE}",
            _sgd_rule(lambda p, g, v, lr, mu: (p + lr * (mu * v + g), mu * v + g))),
    Mistake("lr is applied twice, to the velocity and again to the step: torch's velocity "
            f"holds no lr, {SGD_RULE}",
            _sgd_rule(lambda p, g, v, lr, mu: (p - lr * (mu * v + lr * g), mu * v + lr * g))),
    Mistake("lr is inside the velocity (v ← momentum·v + lr·g, p ← p − v: Sutskever et al.'s "
            f"form, which torch.optim.SGD's documentation says it does not use): {SGD_RULE}",
            _sgd_rule(lambda p, g, v, lr, mu: (p - (mu * v + lr * g), mu * v + lr * g))),
    Mistake("dampening is applied (v ← momentum·v + (1 − momentum)·g, a moving average): "
            f"torch.optim.SGD's dampening is 0 by default, {SGD_RULE}",
            _sgd_rule(lambda p, g, v, lr, mu: (p - lr * (mu * v + (1 - mu) * g),
                                               mu * v + (1 - mu) * g))),
    Mistake("that is Nesterov momentum (p ← p − lr·(g + momentum·v)): torch.optim.SGD's "
            f"nesterov is False by default, {SGD_RULE}",
            _sgd_rule(lambda p, g, v, lr, mu: (p - lr * (g + mu * (mu * v + g)), mu * v + g))),
    Mistake("the parameters move with the old velocity: update the velocity first, "
            f"{SGD_RULE}", _sgd_rule(lambda p, g, v, lr, mu: (p - lr * v, mu * v + g))),
]


def _sgd_cases(rng):
    """Three runs of torch.optim.SGD, three consecutive steps each: one from zero velocities
    (a fresh optimizer), two from random velocities; each case is one step of a run."""
    cases = []
    for run, (lr, momentum) in enumerate(zip(rng.permutation([0.05, 0.01, 0.3]),
                                             rng.permutation([0.9, 0.5, 0.8]))):
        shapes = _shapes(rng)
        params = [rng.normal(size=s) for s in shapes]
        velocities = [np.zeros(s) for s in shapes] if run == 0 else [
            rng.normal(size=s) for s in shapes]
        grads = [[rng.normal(size=s) for s in shapes] for _ in range(3)]
        states = _sgd_run(params, None if run == 0 else velocities, grads, float(lr),
                          float(momentum))
        for k in range(3):
            cases.append({"params": params, "grads": grads[k], "velocities": velocities,
                          "lr": float(lr), "momentum": float(momentum)})
            n = len(shapes)
            params, velocities = list(states[k][:n]), list(states[k][n:])
    return cases


def _describe_sgd(case):
    start = "zero velocities" if not any(np.any(v) for v in case["velocities"]) else (
        "velocities from earlier steps")
    return _describe_step("sgd_momentum_step", case,
                          f"lr = {case['lr']:g}, momentum = {case['momentum']:g}, {start}")


SGD_MOMENTUM_STEP = Task(
    name="sgd_momentum_step",
    params=("params", "grads", "velocities", "lr", "momentum"),
    kind=Step("new_velocities"),
    cases=_sgd_cases,
    oracle=_sgd_oracle,
    mistakes=lambda *args, **extras: SGD_MISTAKES,
    visible=({"params": [np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]), np.array([0.1, -0.2])],
              "grads": [np.array([[0.2, 0.4, -0.6], [-1.0, 0.5, 0.3]]), np.array([0.7, -0.1])],
              "velocities": [np.array([[1.0, -0.5, 0.25], [0.0, 2.0, -1.0]]),
                             np.array([-0.3, 0.6])],
              "lr": 0.05, "momentum": 0.9},),
    points=4,
    rtol=STEP_RTOL,
    atol=STEP_ATOL,
    withheld=WITHHELD,
    unchanged=("params", "grads", "velocities"),
    describe=_describe_sgd,
    rank=lambda case: not any(np.any(v) for v in case["velocities"]),
    oracle_name="torch.optim.SGD",
)

# --------------------------------------------------------------------------------------------
# Task 2: AdamW, torch.optim.AdamW's semantics
# --------------------------------------------------------------------------------------------

STATE_KEYS = ("t", "m", "v")


def _adamw_run(params, state, grads_per_step, lr, betas, eps, weight_decay,
               optimizer=torch.optim.AdamW):
    """torch.optim.AdamW (or another Adam) over several steps, in float64, from ``state``
    (``{"t", "m", "v"}``; None: a fresh optimizer). Returns the flat state after each step:
    ``(*params, t, *m, *v)``."""
    leaves = [_tensor(p).requires_grad_() for p in params]
    adam = optimizer(leaves, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
    if state is not None:
        for p, m, v in zip(leaves, state["m"], state["v"]):
            adam.state[p] = {"step": torch.tensor(float(state["t"])), "exp_avg": _tensor(m),
                             "exp_avg_sq": _tensor(v)}
    states = []
    for grads in grads_per_step:
        for p, g in zip(leaves, grads):
            p.grad = _tensor(g)
        adam.step()
        kept = [adam.state[p] for p in leaves]
        states.append(tuple(_numpy(p) for p in leaves) + (np.asarray(float(kept[0]["step"])),)
                      + tuple(_numpy(s["exp_avg"]) for s in kept)
                      + tuple(_numpy(s["exp_avg_sq"]) for s in kept))
    return states


def _adamw_oracle(params, grads, state, lr, betas, eps, weight_decay):
    return _adamw_run(params, state, [grads], lr, betas, eps, weight_decay)[0]


def _adamw_rule(update, stored=None, count=1, swap=False):
    """The flat answer of a hand-written Adam step on each parameter.

    ``update(p, m, v, t, lr, betas, eps, wd)`` gives the new parameter from the new moments
    ``m``, ``v`` at the new count ``t``; ``stored(m, v, t, betas)`` what the state keeps (m and v
    by default); ``count`` is added to the state's t; ``swap`` swaps the betas.
    """
    def answer(params, grads, state, lr, betas, eps, weight_decay):
        b1, b2 = tuple(betas)[::-1] if swap else tuple(betas)
        t = state["t"] + 1
        new_p, new_m, new_v = [], [], []
        for p, g, m, v in zip(params, grads, state["m"], state["v"]):
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
            new_p.append(update(p, m, v, t, lr, (b1, b2), eps, weight_decay))
            kept_m, kept_v = stored(m, v, t, (b1, b2)) if stored else (m, v)
            new_m.append(kept_m)
            new_v.append(kept_v)
        return (*new_p, np.asarray(float(state["t"] + count)), *new_m, *new_v)
    return answer


def _adam(p, m, v, t, lr, betas, eps):
    """Adam's update on its own: p - lr m_hat / (sqrt(v_hat) + eps), bias-corrected at t."""
    m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def _decayed_adam(p, m, v, t, lr, betas, eps, wd):
    return _adam(p * (1 - lr * wd), m, v, t, lr, betas, eps)


def _torch_adam(weight_decay):
    """A mistake's answer from torch.optim.Adam: with L2 (the coupled decay), or with none."""
    def answer(params, grads, state, lr, betas, eps, wd):
        return _adamw_run(params, state, [grads], lr, betas, eps, wd if weight_decay else 0.0,
                          optimizer=torch.optim.Adam)[0]
    return answer


ADAMW_RULE = ("p ← p − lr·λ·p (the decoupled decay, λ = weight_decay), then "
              "p ← p − lr·m̂/(√v̂ + eps) with m̂ = m/(1 − β1^t), v̂ = v/(1 − β2^t)")


def _adamw_mistakes(params, grads, state, lr, betas, eps, weight_decay):
    mistakes = [
        Mistake("the bias correction is missing: m and v start at 0, so early on they are "
                f"too small by the factors 1 − β1^t and 1 − β2^t; {ADAMW_RULE}",
                _adamw_rule(lambda p, m, v, t, lr, b, eps, wd:
                            p * (1 - lr * wd) - lr * m / (np.sqrt(v) + eps))),
        Mistake("the weight decay is coupled into the gradient (g + λ·p goes through the "
                "moments): that is Adam with L2 regularization, torch.optim.Adam(weight_decay="
                f"...); AdamW decays the parameters apart from the moments: {ADAMW_RULE}",
                _torch_adam(weight_decay=True)),
        Mistake(f"the weight decay is missing: that is Adam; {ADAMW_RULE}",
                _torch_adam(weight_decay=False)),
        Mistake(f"the weight decay is applied after the Adam update: {ADAMW_RULE}",
                _adamw_rule(lambda p, m, v, t, lr, b, eps, wd:
                            _adam(p, m, v, t, lr, b, eps) * (1 - lr * wd))),
        Mistake(f"the weight decay is not multiplied by lr (p ← p − λ·p): {ADAMW_RULE}",
                _adamw_rule(lambda p, m, v, t, lr, b, eps, wd:
                            _adam(p * (1 - wd), m, v, t, lr, b, eps))),
        Mistake(f"eps is inside the square root, √(v̂ + eps): {ADAMW_RULE}",
                _adamw_rule(lambda p, m, v, t, lr, b, eps, wd: p * (1 - lr * wd) - lr * (
                    m / (1 - b[0] ** t)) / np.sqrt(v / (1 - b[1] ** t) + eps))),
        Mistake("eps is added before the bias correction, (√v + eps)/√(1 − β2^t) (the "
                f"paper's ε̂ form): torch adds it to √v̂; {ADAMW_RULE}",
                _adamw_rule(lambda p, m, v, t, lr, b, eps, wd: p * (1 - lr * wd) - lr * (
                    m / (1 - b[0] ** t)) * np.sqrt(1 - b[1] ** t) / (np.sqrt(v) + eps))),
        Mistake(f"lr is applied twice (lr² in the Adam update): {ADAMW_RULE}",
                _adamw_rule(lambda p, m, v, t, lr, b, eps, wd:
                            _adam(p * (1 - lr * wd), m, v, t, lr * lr, b, eps))),
        Mistake(f"wrong sign: the Adam update goes down the gradient, {ADAMW_RULE}",
                _adamw_rule(lambda p, m, v, t, lr, b, eps, wd:
                            _adam(p * (1 - lr * wd), m, v, t, -lr, b, eps))),
        Mistake("β1 and β2 are swapped: betas = (β1, β2), β1 for the mean m of the gradients, "
                "β2 for the mean v of their squares", _adamw_rule(_decayed_adam, swap=True)),
        Mistake("the bias-corrected m̂ and v̂ are stored in the state: the state keeps the "
                "running means m and v themselves, the correction is computed anew each step",
                _adamw_rule(_decayed_adam, stored=lambda m, v, t, b: (
                    m / (1 - b[0] ** t), v / (1 - b[1] ** t)))),
        Mistake('the step count is not advanced: the new state\'s "t" is t + 1, the count the '
                "bias correction used", _adamw_rule(_decayed_adam, count=0)),
    ]
    if state["t"] > 0:  # at t = 0 the old count would divide by 1 − β^0 = 0
        mistakes.append(Mistake(
            "the bias correction uses the old step count t: count this step first, t ← t + 1, "
            f"then {ADAMW_RULE}",
            _adamw_rule(lambda p, m, v, t, lr, b, eps, wd:
                        _decayed_adam(p, m, v, t - 1, lr, b, eps, wd))))
    return mistakes


def _adamw_cases(rng):
    """Three runs of torch.optim.AdamW, each case one step of a run: a fresh optimizer (t = 0,
    four steps), an early state (t from 1 to 9, three steps), a late one (t in the thousands,
    two steps). eps up to 0.1 and gradients down to 1e-4, so that where eps goes matters."""
    cases = []
    betas_pool = [(0.9, 0.999), (0.8, 0.99), (0.5, 0.9)]
    runs = zip([0, int(rng.integers(1, 10)), int(rng.integers(1000, 5000))], [4, 3, 2],
               rng.permutation([1e-8, 1e-4, 0.1]), rng.permutation([1e-3, 0.01, 0.1]),
               rng.permutation([0.01, 0.1, 0.5]), rng.permutation(len(betas_pool)))
    for t, steps, eps, lr, weight_decay, b in runs:
        shapes, betas = _shapes(rng), betas_pool[b]
        scales = rng.choice([1e-4, 1e-2, 1.0], size=len(shapes))
        params = [rng.normal(size=s) for s in shapes]
        grads = [[scale * rng.normal(size=s) for s, scale in zip(shapes, scales)]
                 for _ in range(steps)]
        state = {"t": t, "m": [0.5 * scale * rng.normal(size=s) if t else np.zeros(s)
                               for s, scale in zip(shapes, scales)],
                 "v": [scale ** 2 * rng.uniform(0.1, 2.0, size=s) if t else np.zeros(s)
                       for s, scale in zip(shapes, scales)]}
        args = (float(lr), betas, float(eps), float(weight_decay))
        states = _adamw_run(params, state if t else None, grads, *args)
        n = len(shapes)
        for k in range(steps):
            cases.append({"params": params, "grads": grads[k], "state": state, "lr": args[0],
                          "betas": betas, "eps": args[2], "weight_decay": args[3]})
            flat = states[k]
            params = list(flat[:n])
            state = {"t": int(flat[n]), "m": list(flat[n + 1:2 * n + 1]),
                     "v": list(flat[2 * n + 1:])}
    return cases


def _describe_adamw(case):
    t = case["state"]["t"]
    return _describe_step(
        "adamw_step", case, f"state t = {t} (this is step {t + 1}), lr = {case['lr']:g}, "
        f"betas = {case['betas']}, eps = {case['eps']:g}, weight_decay = {case['weight_decay']:g}")


ADAMW_STEP = Task(
    name="adamw_step",
    params=("params", "grads", "state", "lr", "betas", "eps", "weight_decay"),
    kind=Step("new_state", STATE_KEYS),
    cases=_adamw_cases,
    oracle=_adamw_oracle,
    mistakes=_adamw_mistakes,
    visible=({"params": [np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([0.1, -0.3])],
              "grads": [np.array([[0.2, -0.4], [1e-3, 0.6]]), np.array([-0.5, 2e-3])],
              "state": {"t": 2, "m": [np.array([[0.05, -0.1], [0.0, 0.1]]),
                                      np.array([-0.1, 0.001])],
                        "v": [np.array([[0.004, 0.01], [1e-6, 0.02]]),
                              np.array([0.02, 1e-5])]},
              "lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-3, "weight_decay": 0.1},),
    points=5,
    rtol=STEP_RTOL,
    atol=STEP_ATOL,
    withheld=WITHHELD,
    unchanged=("params", "grads", "state", "betas"),
    describe=_describe_adamw,
    rank=lambda case: (case["state"]["t"] == 0, case["state"]["t"] > 100),
    oracle_name="torch.optim.AdamW",
)

# --------------------------------------------------------------------------------------------
# Tasks 3 and 4: SkipNet in PyTorch, its forward pass and its training
# --------------------------------------------------------------------------------------------

LAYERS = ("first", "second", "skip", "out")  # made in this order: it fixes the initial weights
PARAMETERS = tuple(f"{layer}.{kind}" for layer in LAYERS for kind in ("weight", "bias"))
ARCHITECTURE = ("SkipNet makes first = Linear(n_in, n_hidden), second = Linear(n_hidden, "
                "n_hidden), skip = Linear(n_in, n_hidden), out = Linear(n_hidden, n_out), in "
                "this order, and computes out(tanh(second(tanh(first(x))) + skip(x)))")


def _layers(seed, n_in, n_hidden, n_out, order=LAYERS, dtype=None):
    """The initial weights [(W, b)] of the four layers (LAYERS order), made as nn.Linear in
    ``order`` right after torch.manual_seed(seed), in float32 (``dtype`` None) then float64."""
    sizes = {"first": (n_in, n_hidden), "second": (n_hidden, n_hidden),
             "skip": (n_in, n_hidden), "out": (n_hidden, n_out)}
    with torch.random.fork_rng(devices=[]):  # the grader's own random state stays as it was
        torch.manual_seed(seed)
        made = {name: nn.Linear(*sizes[name], dtype=dtype) for name in order}
    return [(made[name].weight.detach().double(), made[name].bias.detach().double())
            for name in LAYERS]


def _skip_forward(layers, X, g=torch.tanh):
    (W1, b1), (W2, b2), (Ws, bs), (Wo, bo) = layers
    return F.linear(g(F.linear(g(F.linear(X, W1, b1)), W2, b2) + F.linear(X, Ws, bs)), Wo, bo)


def _no_skip(layers, X):
    (W1, b1), (W2, b2), _, (Wo, bo) = layers
    return F.linear(torch.tanh(F.linear(torch.tanh(F.linear(X, W1, b1)), W2, b2)), Wo, bo)


def _skip_after_tanh(layers, X):
    (W1, b1), (W2, b2), (Ws, bs), (Wo, bo) = layers
    a1 = torch.tanh(F.linear(X, W1, b1))
    return F.linear(torch.tanh(F.linear(a1, W2, b2)) + F.linear(X, Ws, bs), Wo, bo)


def _no_first_tanh(layers, X):
    (W1, b1), (W2, b2), (Ws, bs), (Wo, bo) = layers
    a1 = F.linear(X, W1, b1)
    return F.linear(torch.tanh(F.linear(a1, W2, b2) + F.linear(X, Ws, bs)), Wo, bo)


def _tanh_output(layers, X):
    return torch.tanh(_skip_forward(layers, X))


def _relu_forward(layers, X):
    return _skip_forward(layers, X, g=torch.relu)


# What a wrong network does: (message, forward, order of construction, dtype of construction)
NETWORKS = [
    ("the skip path is missing: the second tanh takes second(a1) + skip(x)", _no_skip),
    ("the skip path is added after the second tanh: it goes inside, "
     "tanh(second(a1) + skip(x))", _skip_after_tanh),
    ("tanh after the first layer is missing: a1 = tanh(first(x))", _no_first_tanh),
    ("the output goes through tanh: out is linear, the network's last step is out(a2)",
     _tanh_output),
    ("relu instead of tanh: both hidden activations are tanh", _relu_forward),
]
ORDERS = [
    (("skip", "first", "second", "out"), "skip is made first"),
    (("first", "skip", "second", "out"), "skip is made before second"),
    (("first", "second", "out", "skip"), "skip is made last"),
]
ORDER = ("the layers are made in another order ({which}): each nn.Linear draws its initial "
         "weights in turn from torch.manual_seed(seed), so make first, second, skip, out in "
         "this order")
FLOAT64 = ("the model is made in float64 (nn.Linear(..., dtype=torch.float64) or "
           "torch.set_default_dtype): float64 draws other initial weights; make it in the default "
           "float32 right after torch.manual_seed(seed), then model.double()")
FLOAT32 = ("the computation runs in float32: convert the model with model.double() and the "
           "data with torch.tensor(X, dtype=torch.float64)")


def _forward_values(forward=_skip_forward, order=LAYERS, dtype=None, as_float32=False):
    """The outputs of a (possibly wrong) SkipNet on X, as a student's forward_values returns."""
    def answer(seed, X, n_hidden, n_out):
        layers = _layers(seed, X.shape[1], n_hidden, n_out, order, dtype)
        inputs = _tensor(X)
        if as_float32:
            layers = [(W.float(), b.float()) for W, b in layers]
            inputs = inputs.float()
        with torch.no_grad():
            return forward(layers, inputs).double().numpy().copy()
    return answer


def _network_mistakes(make):
    """The wrong networks as mistakes, ``make(**how)`` giving each one's answer function."""
    return ([Mistake(f"{message}: {ARCHITECTURE}", make(forward=forward))
             for message, forward in NETWORKS]
            + [Mistake(ORDER.format(which=which), make(order=order)) for order, which in ORDERS]
            + [Mistake(FLOAT64, make(dtype=torch.float64)),
               Mistake(FLOAT32, make(as_float32=True))])


FORWARD_MISTAKES = _network_mistakes(_forward_values)


def _net_sizes(rng):
    """(n_in, n_hidden, n_out) with n_in != n_hidden: a skip path from x cannot be taken for
    one from a1."""
    while True:
        n_in, n_hidden, n_out = (int(rng.integers(1, 5)), int(rng.integers(2, 8)),
                                 int(rng.integers(1, 4)))
        if n_in != n_hidden:
            return n_in, n_hidden, n_out


def _forward_cases(rng):
    cases = []
    for N in (5, 1, 3, 8, 2, 4):
        n_in, n_hidden, n_out = _net_sizes(rng)
        cases.append({"seed": int(rng.integers(0, 2**31)), "X": rng.normal(size=(N, n_in)),
                      "n_hidden": n_hidden, "n_out": n_out})
    return cases


def _describe_forward(case):
    N, n_in = case["X"].shape
    return (f"forward_values(seed={case['seed']}, X of shape (N, n_in) = ({N}, {n_in}), "
            f"n_hidden={case['n_hidden']}, n_out={case['n_out']})")


FORWARD_VALUES = Task(
    name="forward_values",
    params=("seed", "X", "n_hidden", "n_out"),
    kind=Array("outputs", hint=" (one row per example: (N, n_out))"),
    cases=_forward_cases,
    oracle=_forward_values(),
    mistakes=lambda *args, **extras: FORWARD_MISTAKES,
    visible=({"seed": 0, "X": np.array([[0.5, -1.0], [1.5, 0.25], [-2.0, 0.0], [0.1, 0.9]]),
              "n_hidden": 3, "n_out": 1},),
    points=3,
    rtol=NET_RTOL,
    atol=NET_ATOL,
    unchanged=("X",),
    describe=_describe_forward,
    rank=lambda case: case["X"].shape[0] == 1,
    oracle_name="the network written with torch.nn.functional",
)


def _train_oracle(seed, X, Y, n_hidden, steps, lr):
    """SkipNet trained by torch.autograd.grad, the momentum update written out (torch.optim.SGD's
    rule): v <- MOMENTUM v + g, p <- p - lr v, on the mean squared error over every entry."""
    leaves = [t.clone().requires_grad_() for pair in _layers(seed, X.shape[1], n_hidden,
                                                             Y.shape[1]) for t in pair]
    velocities = [torch.zeros_like(p) for p in leaves]
    X_t, Y_t = _tensor(X), _tensor(Y)
    losses = []
    for _ in range(steps):
        E = ((_skip_forward(list(zip(leaves[::2], leaves[1::2])), X_t) - Y_t) ** 2).mean()
        grads = torch.autograd.grad(E, leaves)
        with torch.no_grad():
            for p, v, g in zip(leaves, velocities, grads):
                v.mul_(MOMENTUM).add_(g)
                p.sub_(lr * v)
        losses.append(E.item())
    return losses, [_numpy(p) for p in leaves]


class _Net(nn.Module):
    """The four layers' weights as parameters (model.parameters() in PARAMETERS order) and a
    forward pass: the wrong trainings run on it."""

    def __init__(self, layers, forward):
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(t.clone()) for pair in layers
                                         for t in pair])
        self.forward_pass = forward

    def forward(self, X):
        w = list(self.weights)
        return self.forward_pass(list(zip(w[::2], w[1::2])), X)


def _right_step(model, optimizer, X, Y):
    optimizer.zero_grad()
    loss = F.mse_loss(model(X), Y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _no_zero_grad(model, optimizer, X, Y):
    loss = F.mse_loss(model(X), Y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _step_before_backward(model, optimizer, X, Y):
    optimizer.zero_grad()
    loss = F.mse_loss(model(X), Y)
    optimizer.step()
    loss.backward()
    return loss.item()


def _summed_loss(model, optimizer, X, Y):
    optimizer.zero_grad()
    loss = F.mse_loss(model(X), Y, reduction="sum")
    loss.backward()
    optimizer.step()
    return loss.item()


def _halved_loss(model, optimizer, X, Y):
    optimizer.zero_grad()
    loss = 0.5 * F.mse_loss(model(X), Y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _loss_after_step(model, optimizer, X, Y):
    _right_step(model, optimizer, X, Y)
    with torch.no_grad():
        return F.mse_loss(model(X), Y).item()


def _sgd(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM)


def _trained(step=_right_step, optimizer=_sgd, forward=_skip_forward, order=LAYERS,
             dtype=None, as_float32=False):
    """What a (possibly wrong) train returns: ``step`` runs one training step, ``optimizer``
    is made from the parameters and lr, the network as in :func:`_forward_values`."""
    def answer(seed, X, Y, n_hidden, steps, lr):
        model = _Net(_layers(seed, X.shape[1], n_hidden, Y.shape[1], order, dtype), forward)
        X_t, Y_t = _tensor(X), _tensor(Y)
        if as_float32:
            model, X_t, Y_t = model.float(), X_t.float(), Y_t.float()
        adjust = optimizer(model.parameters(), lr)
        losses = [step(model, adjust, X_t, Y_t) for _ in range(steps)]
        return losses, [p.detach().double().numpy().copy() for p in model.parameters()]
    return answer


LOOP = ("each step is optimizer.zero_grad(), loss = nn.MSELoss()(model(X), Y), "
        "loss.backward(), optimizer.step()")
TRAIN_MISTAKES = [
    Mistake("optimizer.zero_grad() is missing: backward() adds to the gradients already there, "
            f"so every step uses the sum of all the gradients so far; {LOOP}",
            _trained(step=_no_zero_grad)),
    Mistake("optimizer.step() comes before loss.backward(): the step finds no gradient and "
            f"changes nothing, and the parameters never move; {LOOP}",
            _trained(step=_step_before_backward)),
    Mistake("the loss is the sum of the squared errors: nn.MSELoss takes their mean over every "
            "entry (reduction='mean', its default)", _trained(step=_summed_loss)),
    Mistake("the loss is halved (the book's E = ½·mean): nn.MSELoss is the mean of the squared "
            "errors, without ½", _trained(step=_halved_loss)),
    Mistake("the losses are recorded after the step: losses[k] is loss.item() of step k's own "
            "forward pass, before optimizer.step() changes the parameters",
            _trained(step=_loss_after_step)),
    Mistake("the learning rate is not lr: torch.optim.SGD's default lr = 0.001 was used; make "
            "it with optim.SGD(model.parameters(), lr=lr, momentum=0.9)",
            _trained(optimizer=lambda params, lr: torch.optim.SGD(params, momentum=MOMENTUM))),
    Mistake("the momentum is missing: the optimizer is optim.SGD(model.parameters(), lr=lr, "
            "momentum=0.9)", _trained(optimizer=lambda params, lr: torch.optim.SGD(params, lr=lr))),
    Mistake("that is Adam, the chapter's optimizer: this task trains with optim.SGD("
            "model.parameters(), lr=lr, momentum=0.9)",
            _trained(optimizer=lambda params, lr: torch.optim.Adam(params, lr=lr))),
    *_network_mistakes(_trained),
]


def _target(X, A):
    """Smooth targets for X (N, n_in): sin(X A), A of shape (n_in, n_out)."""
    return np.sin(X @ A)


def _train_cases(rng):
    """Five short runs on smooth targets (1 to 25 steps) and one fit of y = x^2 (FIT_STEPS
    steps), whose last loss the oracle brings below FIT_LOSS."""
    cases = []
    for N, steps, lr in zip((6, 4, 9, 1, 5), (4, 10, 1, 25, 15), (0.1, 0.05, 0.2, 0.1, 0.01)):
        n_in, n_hidden, n_out = _net_sizes(rng)
        X = rng.normal(size=(N, n_in))
        cases.append({"seed": int(rng.integers(0, 2**31)), "X": X,
                      "Y": _target(X, rng.normal(size=(n_in, n_out))), "n_hidden": n_hidden,
                      "steps": steps, "lr": lr})
    X = np.linspace(-1.5, 1.5, 40).reshape(-1, 1)
    cases.append({"seed": int(rng.integers(0, 2**31)), "X": X, "Y": X ** 2, "n_hidden": 8,
                  "steps": FIT_STEPS, "lr": 0.05})
    return cases


def _describe_train(case):
    (N, n_in), n_out = case["X"].shape, case["Y"].shape[1]
    fit = (f"; a fit of y = x², whose loss ends below {FIT_LOSS}"
           if case["steps"] == FIT_STEPS else "")
    return (f"train(seed={case['seed']}, X of shape ({N}, {n_in}), Y of shape ({N}, {n_out}), "
            f"n_hidden={case['n_hidden']}, steps={case['steps']}, lr={case['lr']:g}){fit}")


TRAIN = Task(
    name="train",
    params=("seed", "X", "Y", "n_hidden", "steps", "lr"),
    kind=Trajectory(PARAMETERS),
    cases=_train_cases,
    oracle=_train_oracle,
    mistakes=lambda *args, **extras: TRAIN_MISTAKES,
    visible=({"seed": 1, "X": np.linspace(-1.0, 1.0, 6).reshape(-1, 1),
              "Y": np.sin(2.0 * np.linspace(-1.0, 1.0, 6)).reshape(-1, 1), "n_hidden": 4,
              "steps": 5, "lr": 0.1},),
    points=5,
    rtol=TRAIN_RTOL,
    atol=TRAIN_ATOL,
    unchanged=("X", "Y"),
    describe=_describe_train,
    rank=lambda case: (case["steps"] == FIT_STEPS, case["steps"] == 1),
    oracle_name="SkipNet trained by torch.autograd",
)

ASSIGNMENT = Assignment("training", [SGD_MOMENTUM_STEP, ADAMW_STEP, FORWARD_VALUES, TRAIN])
