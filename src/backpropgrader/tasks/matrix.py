"""The matrix assignment (``solutions/matrix/matrix.ipynb``), declared task by task.

The book's notation: a minibatch puts its N examples in columns. Layer l computes
Z[l] = W[l] A[l-1] + b[l] 1^T with W[l] of shape (n_l, n_{l-1}), b[l] of shape (n_l, 1) and
Z[l], A[l] of shape (n_l, N). Python lists are 0-based: ``params[l - 1] = (W[l], b[l])``,
``Zs[l - 1] = Z[l]``, ``As[0] = X`` and ``As[l] = A[l]``.

Besides the shapes of a layer, the tasks are backward passes the chapter derives the tools for
but the package does not implement: batch normalization over a minibatch, the ELU activation,
a softmax output under the squared error, and a perceptron of any depth built from them. The
oracles are torch.autograd in float64 of forward passes written here in torch (the shapes: the
forward pass's closed form). The mistakes are small functions computing the answers of the
typical mistakes; for the perceptron, the same torch network with one wrong local derivative,
or the right gradients scaled.

The tolerance is ten significant digits: a centered difference (about eight) cannot pass.
"""

import numpy as np
import torch

from backpropbook.activations import ACTIVATIONS
from backpropbook.oracles import TORCH_ACTIVATIONS
from backpropbook.selfcheck import Array, Arrays, Layers, Shapes
from backpropgrader.engine import Assignment, Mistake, Task

RTOL, ATOL = 1e-10, 1e-12
# The book's reference code and torch; gradcheck too (its centered differences are no
# derivation), and symbolic_matrix (its softmax_squared_error is task 4's answer for one
# example, in SymPy).
WITHHELD = ("backpropbook.layers", "backpropbook.mlp", "backpropbook.twolayer",
            "backpropbook.conventions", "backpropbook.vector", "backpropbook.oracles",
            "backpropbook.gradcheck", "backpropbook.symbolic_matrix", "torch")


def _tensor(value, grad=False):
    return torch.tensor(np.asarray(value, dtype=float), dtype=torch.float64,
                        requires_grad=grad)


def _numpy(tensor):
    return tensor.detach().numpy().copy()


def _wrong(message, answer):
    """A mistake whose wrong answer on this case is ``answer`` (computed by the caller)."""
    return Mistake(message, lambda *args, **extras: answer)


def _distinct(rng, count, low, high):
    """``count`` different ints in [low, high)."""
    return [int(v) for v in rng.choice(np.arange(low, high), size=count, replace=False)]


# --------------------------------------------------------------------------------------------
# Task 1: the shapes in one layer
# --------------------------------------------------------------------------------------------

SHAPE_KEYS = ("W", "b", "A_prev", "Z", "dZ", "dW", "db", "dA_prev")
COLUMNS = "examples are columns in the book, so the batch size N is the second dimension"


def _shapes(n_prev, n, N):
    """The forward pass fixes W, b, A_prev, Z; a gradient has the shape of the variable it is
    taken with respect to."""
    return {"W": (n, n_prev), "b": (n, 1), "A_prev": (n_prev, N), "Z": (n, N), "dZ": (n, N),
            "dW": (n, n_prev), "db": (n, 1), "dA_prev": (n_prev, N)}


def _shape_mistakes(n_prev, n, N):
    m, right = n_prev, _shapes(n_prev, n, N)
    summed = ("db is summed over the units instead of over the examples: db = dZ·1 sums each "
              "row of dZ, giving b's shape (n, 1)")
    wrong = [
        ("W", (m, n), f"W has shape (n_prev, n) = ({m}, {n}), the transposed convention "
                      "z = Wᵀa of some slides; the book's W[l] is (n_l, n_{l−1}): one row per "
                      "unit, one column per input, so that Z = W·A_prev fits"),
        ("b", (n, N), "b is one column (n, 1) shared by every example, broadcast along the "
                      "batch: Z = W·A_prev + b·1ᵀ"),
        ("b", (1, n), "b is a column (n, 1), not a row (1, n)"),
        ("A_prev", (N, m), f"A_prev has shape (N, n_prev) = ({N}, {m}): {COLUMNS}"),
        ("Z", (N, n), f"Z has shape (N, n) = ({N}, {n}): {COLUMNS}"),
        ("dZ", (N, n), "dZ has shape (N, n): a gradient has the shape of the variable "
                       f"it is taken with respect to, and Z is (n, N); {COLUMNS}"),
        ("dW", (m, n), f"dW is transposed: it has W's shape (n, n_prev) = ({n}, {m}), so that "
                       "W − η·dW is defined; dW = dZ·A_prevᵀ is (n, N)·(N, n_prev), while "
                       "A_prev·dZᵀ gives its transpose"),
        ("dW", (n, N), "dW has the shape of dZ: a gradient has the shape of the variable "
                       "it is taken with respect to, dW has W's shape (n, n_prev)"),
        ("db", (n, N), "db is not summed over the batch (the error db = dZ of some lecture "
                       "notes): b has one entry per unit and every example adds its column of "
                       "dZ, db = dZ·1, of b's shape (n, 1)"),
        ("db", (1, N), summed),
        ("db", (1, n), "db is a column (n, 1), like b, not a row (1, n)"),
        ("dA_prev", (N, m), f"dA_prev has shape (N, n_prev): it has A_prev's shape "
                            f"(n_prev, N) = ({m}, {N}); {COLUMNS}"),
        ("dA_prev", (n, N), "dA_prev has the shape of dZ: it is the gradient for the previous "
                            "layer's activations A_prev, of shape (n_prev, N), what "
                            "Wᵀ·dZ = (n_prev, n)·(n, N) gives"),
    ]
    return [_wrong(message, {**right, key: shape}) for key, shape, message in wrong]


def _shape_cases(rng):
    """(n_prev, n, N) all different, and N = 1, n_prev = 1, n = 1."""
    cases = [_distinct(rng, 3, 1, 10) for _ in range(8)]
    m, n, N = _distinct(rng, 3, 2, 9)
    cases += [[m, n, 1], [1, n, N], [m, 1, N]]
    return [{"n_prev": m, "n": n, "N": N} for m, n, N in cases]


def _describe_shapes(case):
    return f"gradient_shapes(n_prev={case['n_prev']}, n={case['n']}, N={case['N']})"


GRADIENT_SHAPES = Task(
    name="gradient_shapes",
    params=("n_prev", "n", "N"),
    kind=Shapes(SHAPE_KEYS),
    cases=_shape_cases,
    oracle=_shapes,
    mistakes=_shape_mistakes,
    visible=({"n_prev": 3, "n": 2, "N": 4},),
    points=2,
    rtol=0.0,
    atol=0.0,
    withheld=WITHHELD,
    describe=_describe_shapes,
    rank=lambda case: 1 in (case["n_prev"], case["n"], case["N"]),
    oracle_name="the shapes of the forward pass",
)

# --------------------------------------------------------------------------------------------
# Task 2: batch normalization over the minibatch, per unit (row)
# --------------------------------------------------------------------------------------------


def _batchnorm_oracle(dY, X, gamma, eps):
    """(dX, dgamma, dbeta) by torch.autograd of E = sum(dY * Y), whose dE/dY is dY."""
    X_t, gamma_t = _tensor(X, True), _tensor(gamma, True)
    beta_t = torch.zeros_like(gamma_t, requires_grad=True)
    mu = X_t.mean(dim=1, keepdim=True)
    var = ((X_t - mu) ** 2).mean(dim=1, keepdim=True)
    Y = gamma_t * (X_t - mu) / torch.sqrt(var + eps) + beta_t
    (_tensor(dY) * Y).sum().backward()
    return _numpy(X_t.grad), _numpy(gamma_t.grad), _numpy(beta_t.grad)


def _normalized(X, eps, divisor):
    """(X_hat, sqrt(var + eps)) with var = sum_j (X - mu)^2 / divisor."""
    X_c = X - X.mean(axis=1, keepdims=True)
    std = np.sqrt((X_c ** 2).sum(axis=1, keepdims=True) / divisor + eps)
    return X_c / std, std


def _batchnorm_mistakes(dY, X, gamma, eps):
    N = X.shape[1]
    X_hat, std = _normalized(X, eps, N)
    dgamma, dbeta = (dY * X_hat).sum(axis=1, keepdims=True), dY.sum(axis=1, keepdims=True)

    def dX(*paths):  # the direct path, N dY, minus the given paths through mu and var
        return gamma / (N * std) * (N * dY - sum(paths))

    through_mu, through_var = dbeta, X_hat * dgamma
    right = dX(through_mu, through_var)
    # The messages reach the student's visible-test data: they name a mistake, never the
    # formula the task asks to derive.
    paths = ("Y depends on X_ij directly, through mu_i and through var_i, which depend on every "
             "example of row i: dX sums the three paths")
    mistakes = [
        _wrong("mu and var are treated as constants, dX = gamma·dY/sqrt(var + eps): they are "
               f"means over the batch, so the examples are coupled; {paths}",
               (gamma * dY / std, dgamma, dbeta)),
        _wrong(f"the path through the mean mu is missing: {paths}",
               (dX(through_var), dgamma, dbeta)),
        _wrong(f"the path through the variance var is missing: {paths}",
               (dX(through_mu), dgamma, dbeta)),
        _wrong("dgamma and dbeta are means over the batch: gamma and beta are shared by the N "
               "examples, so their gradients are plain sums over the batch, like b's",
               (right, dgamma / N, dbeta / N)),
        _wrong("dgamma and dbeta are swapped: batchnorm_backward returns (dX, dgamma, dbeta)",
               (right, dbeta, dgamma)),
        _wrong("wrong sign: the gradients carry the sign of dY", (-right, -dgamma, -dbeta)),
    ]
    if N > 1:  # with N = 1 the variance divided by N - 1 is 0/0, and var = 0 needs eps
        unbiased = ("the variance is divided by N − 1 (np.var(..., ddof=1), torch.var's "
                    "default): batch normalization uses the mean over the batch, "
                    "var = (1/N)·Σ_j (X − mu)²")
        U_hat, U_std = _normalized(X, eps, N - 1)
        dgamma_u = (dY * U_hat).sum(axis=1, keepdims=True)
        mixed = gamma / (N * U_std) * (N * dY - dbeta - U_hat * dgamma_u)
        exact = gamma / U_std * (dY - dbeta / N - U_hat * dgamma_u / (N - 1))
        X_0, std_0 = _normalized(X, 0.0, N)
        dgamma_0 = (dY * X_0).sum(axis=1, keepdims=True)
        mistakes += [
            _wrong(unbiased, (mixed, dgamma_u, dbeta)),
            _wrong(unbiased, (exact, dgamma_u, dbeta)),
            _wrong("eps is missing: X_hat = (X − mu)/sqrt(var + eps)",
                   (gamma / (N * std_0) * (N * dY - dbeta - X_0 * dgamma_0), dgamma_0, dbeta)),
        ]
    return mistakes


def _batchnorm_cases(rng):
    """Non-square (n, N) with N >= 3, and N = 2 and N = 1; rows of different scales."""
    sizes = []
    while len(sizes) < 6:
        n, N = _distinct(rng, 2, 1, 10)
        if N >= 3:
            sizes.append((n, N))
    sizes += [(int(rng.integers(3, 7)), 2), (int(rng.integers(2, 7)), 1), (1, 5)]
    cases = []
    for n, N in sizes:
        loc = rng.normal(0.0, 2.0, size=(n, 1))
        scale = rng.choice([0.05, 1.0, 4.0], size=(n, 1))
        cases.append({"dY": rng.normal(size=(n, N)), "X": rng.normal(loc, scale, size=(n, N)),
                      "gamma": rng.normal(1.0, 0.7, size=(n, 1)),
                      "eps": float(rng.choice([1e-5, 1e-3, 0.1]))})
    return cases


BATCHNORM_BACKWARD = Task(
    name="batchnorm_backward",
    params=("dY", "X", "gamma", "eps"),
    kind=Arrays(("dX", "dgamma", "dbeta"), hints=(
        " (dX has X's shape (n, N))",
        " (dgamma has gamma's shape, the column (n, 1): gamma is shared by the N examples, so "
        "its gradient sums over them, along axis=1 with keepdims=True)",
        " (dbeta has beta's shape, the column (n, 1): beta is shared by the N examples, so its "
        "gradient sums over them, along axis=1 with keepdims=True)")),
    cases=_batchnorm_cases,
    oracle=_batchnorm_oracle,
    mistakes=_batchnorm_mistakes,
    visible=({"dY": np.array([[0.5, -1.0, 0.25, 2.0], [1.0, 0.5, -0.5, -1.5]]),
              "X": np.array([[1.0, 2.0, 4.0, -1.0], [0.5, 0.0, -0.5, 3.0]]),
              "gamma": np.array([[1.5], [-0.5]]), "eps": 1e-3},),
    points=5,
    rtol=RTOL,
    atol=ATOL,
    withheld=WITHHELD,
    unchanged=("dY", "X", "gamma"),
    describe=lambda c: (f"batchnorm_backward with X of shape (n, N) = {c['X'].shape}, "
                        f"eps = {c['eps']:g}"),
    rank=lambda c: (c["X"].shape[1] < 3, c["X"].shape[0] == 1),
)

# --------------------------------------------------------------------------------------------
# Task 3: the ELU activation, g(z) = z for z > 0, alpha (e^z - 1) otherwise
# --------------------------------------------------------------------------------------------


def _elu(Z, alpha):
    return np.where(Z > 0, Z, alpha * np.expm1(np.minimum(Z, 0.0)))


def _elu_slope(Z, alpha):
    """g'(z) = 1 for z > 0, alpha e^z for z <= 0 (at 0: alpha, as torch's elu)."""
    return np.where(Z > 0, 1.0, alpha * np.exp(np.minimum(Z, 0.0)))


def _elu_oracle(dA, Z, alpha):
    Z_t = _tensor(Z, True)
    (_tensor(dA) * torch.nn.functional.elu(Z_t, alpha=alpha)).sum().backward()
    return _numpy(Z_t.grad)


def _elu_mistakes(dA, Z, alpha):
    slope = _elu_slope(Z, alpha)
    right = "dZ = dA ⊙ g′(Z), g′ the derivative of g on each side of 0"
    return [
        _wrong(f"used g instead of its derivative: {right}", dA * _elu(Z, alpha)),
        _wrong(f"the factor dA is missing: {right}, you returned g′(Z)", slope),
        _wrong("the kink is on the wrong side: at z = 0 exactly, g′(0) = alpha "
               "(the branch z ≤ 0, as torch's elu); you took 1",
               dA * np.where(Z >= 0, 1.0, slope)),
        _wrong("e^z is missing: for z ≤ 0 the derivative of g(z) = alpha·(e^z − 1) is not the "
               "constant alpha", dA * np.where(Z > 0, 1.0, alpha)),
        _wrong("alpha is missing: for z ≤ 0, g(z) = alpha·(e^z − 1) carries the factor alpha "
               "into its derivative", dA * _elu_slope(Z, 1.0)),
        _wrong("the derivative of relu: for z ≤ 0 elu is not flat, its slope is not 0",
               dA * (Z > 0)),
        _wrong("g′ is evaluated at A = g(Z) instead of Z: dZ = dA ⊙ g′(Z)",
               dA * _elu_slope(_elu(Z, alpha), alpha)),
        _wrong(f"wrong sign: {right}", -dA * slope),
    ]


def _elu_cases(rng):
    """Non-square (n, N), N = 1 too; alpha != 1 mostly; exact zeros in every Z."""
    sizes = [_distinct(rng, 2, 1, 9) for _ in range(7)] + [[int(rng.integers(2, 7)), 1]]
    alphas = [0.5, 2.0, 1.7, 0.25, 1.0, 0.8, 3.0, 1.3]
    cases = []
    for (n, N), alpha in zip(sizes, rng.permutation(alphas)):
        Z = rng.normal(0.0, 2.0, size=(n, N))
        Z.flat[rng.choice(Z.size, size=max(1, Z.size // 5), replace=False)] = 0.0
        cases.append({"dA": rng.normal(size=(n, N)), "Z": Z, "alpha": float(alpha)})
    return cases


ELU_BACKWARD = Task(
    name="elu_backward",
    params=("dA", "Z", "alpha"),
    kind=Array("dZ", hint=" (dZ has Z's shape)"),
    cases=_elu_cases,
    oracle=_elu_oracle,
    mistakes=_elu_mistakes,
    visible=({"dA": np.array([[0.5, -1.0, 0.25], [2.0, 0.1, -0.3]]),
              "Z": np.array([[1.5, 0.0, -1.0], [-0.5, 2.0, 0.0]]), "alpha": 0.5},),
    points=2,
    rtol=RTOL,
    atol=ATOL,
    withheld=WITHHELD,
    unchanged=("dA", "Z"),
    describe=lambda c: (f"elu_backward with alpha = {c['alpha']:g}, Z of shape {c['Z'].shape} "
                        f"({int(np.sum(c['Z'] == 0))} entries exactly 0)"),
    rank=lambda c: (c["alpha"] == 1.0, c["Z"].shape[1] == 1),
)

# --------------------------------------------------------------------------------------------
# Task 4: softmax with the mean squared error, through the full Jacobian diag(p) - p p^T
# --------------------------------------------------------------------------------------------


def _softmax(Z):
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def _softmax_mse_oracle(P, Y):
    """dZ by torch.autograd of E = 1/(2N) ||softmax(Z) - Y||^2 at Z = log P (softmax(Z) = P)."""
    Z_t = _tensor(np.log(P), True)
    (0.5 * ((torch.softmax(Z_t, dim=0) - _tensor(Y)) ** 2).sum() / P.shape[1]).backward()
    return _numpy(Z_t.grad)


def _softmax_mse_mistakes(P, Y):
    n, N = P.shape
    dP = (P - Y) / N
    right = P * (dP - (P * dP).sum(axis=0, keepdims=True))
    jacobian = ("the chain rule goes through the softmax's full Jacobian J = diag(p) − p·pᵀ, "
                "column by column")
    return [
        _wrong("the softmax's Jacobian is ignored: (P − Y)/N is dE/dP, the gradient with "
               "respect to the probabilities (and the cross-entropy's dZ); under the squared "
               f"error {jacobian}", dP),
        _wrong(f"dZ is N = {N} times too large: the loss is the mean over the batch, "
               f"E = 1/(2N)·Σ_j ||p_j − y_j||², so dE/dP = (P − Y)/N", right * N),
        _wrong("only the diagonal p ⊙ (1 − p) of the softmax's Jacobian is used, as if the "
               "softmax acted entry by entry like a sigmoid: every p_i depends on every z_k, "
               f"and {jacobian}", P * (1 - P) * dP),
        _wrong(f"dZ is divided by the number of classes n = P.shape[0] = {n} instead of the "
               f"batch size N = P.shape[1] = {N}: examples are columns", right * N / n),
        _wrong(f"wrong sign: {jacobian}", -right),
    ]


def _softmax_mse_cases(rng):
    """Non-square (n, N) with n >= 2 classes, N = 1 and 2 too; one-hot targets, one soft."""
    sizes = [_distinct(rng, 2, 2, 10) for _ in range(6)]
    sizes += [[int(rng.integers(2, 8)), 1], [int(rng.integers(3, 8)), 2], [2, 5]]
    cases = []
    for i, (n, N) in enumerate(sizes):
        P = _softmax(rng.normal(0.0, 2.0, size=(n, N)))
        soft = i == 0
        Y = rng.dirichlet(np.ones(n), size=N).T if soft else np.eye(n)[:, rng.integers(0, n, N)]
        cases.append({"P": P, "Y": Y})
    return cases


SOFTMAX_MSE_BACKWARD = Task(
    name="softmax_mse_backward",
    params=("P", "Y"),
    kind=Array("dZ", hint=" (dZ has the shape of P and Z, (n, N))"),
    cases=_softmax_mse_cases,
    oracle=_softmax_mse_oracle,
    mistakes=_softmax_mse_mistakes,
    visible=({"P": _softmax(np.array([[1.0, -0.5, 0.0, 2.0], [0.2, 0.3, -1.0, 0.0],
                                      [-1.0, 1.5, 0.5, 1.0]])),
              "Y": np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0],
                             [0.0, 1.0, 0.0, 0.0]])},),
    points=3,
    rtol=RTOL,
    atol=ATOL,
    withheld=WITHHELD,
    unchanged=("P", "Y"),
    describe=lambda c: (f"softmax_mse_backward with n = {c['P'].shape[0]} classes and a batch "
                        f"of N = {c['P'].shape[1]}"),
    rank=lambda c: c["P"].shape[1] < 3,
)

# --------------------------------------------------------------------------------------------
# Task 5: the backward pass of an L-layer perceptron
# --------------------------------------------------------------------------------------------

HIDDEN = ("sigmoid", "tanh", "relu", "elu")
MSE_OUTPUTS = ("sigmoid", "tanh", "identity", "elu")
LOSSES = {"mse": "mean squared error", "softmax_mse": "softmax with the mean squared error"}
TORCH_G = {**TORCH_ACTIVATIONS, "elu": torch.nn.functional.elu,
           "softmax": lambda Z: torch.softmax(Z, dim=0)}
G = {**{name: act.g for name, act in ACTIVATIONS.items()},
     "elu": lambda Z: _elu(Z, 1.0), "softmax": _softmax}
G_PRIME = {**{name: act.g_prime for name, act in ACTIVATIONS.items()},
           "elu": lambda Z: _elu_slope(Z, 1.0)}


def _forward(params, X, activations):
    """The cache (Zs, As) the student gets: the forward pass in NumPy, As[0] = X."""
    Zs, As = [], [X]
    for (W, b), name in zip(params, activations):
        Zs.append(W @ As[-1] + b)
        As.append(G[name](Zs[-1]))
    return Zs, As


def _torch_gradients(params, X, Y, activations, slope=None):
    """[(dW, db), ...] by torch.autograd of E = 1/(2N) ||A[L] - Y||^2, A[l] = g_l(Z[l]).

    For a mistake, ``slope(l, Z)`` gives layer l's wrong local derivative at Z (NumPy,
    entrywise; None keeps the right one): the layer still computes A[l] = g_l(Z[l]), but
    autograd passes dZ[l] = dA[l] ⊙ slope back through it.
    """
    leaves = [(_tensor(W, True), _tensor(b, True)) for W, b in params]
    A = _tensor(X)
    for l, ((W, b), name) in enumerate(zip(leaves, activations), 1):
        Z = W @ A + b
        A = TORCH_G[name](Z)
        wrong = slope(l, _numpy(Z)) if slope else None
        if wrong is not None:
            A = A.detach() + _tensor(wrong) * (Z - Z.detach())
    (0.5 * ((A - _tensor(Y)) ** 2).sum() / Y.shape[1]).backward()
    return [(_numpy(W.grad), _numpy(b.grad)) for W, b in leaves]


def _mlp_oracle(params, cache, Y, activations, loss):
    """The softmax of "softmax_mse" is its last activation: one network serves both losses."""
    if (loss == "softmax_mse") != (activations[-1] == "softmax"):
        raise ValueError(f"loss {loss!r} with the output activation {activations[-1]!r}")
    return _torch_gradients(params, cache[1][0], Y, activations)


def _mlp_mistakes(params, cache, Y, activations, loss):
    X, L, (n_L, N) = cache[1][0], len(params), Y.shape
    right = _torch_gradients(params, X, Y, activations)
    softmax = loss == "softmax_mse"
    output = ("dZ[L] goes through the softmax's full Jacobian diag(p) − p·pᵀ (check your "
              "softmax_mse_backward)" if softmax else "dA[L] = (A[L] − Y)/N")

    def scaled(message, c, below=1.0):  # every gradient times c, layers 1..L-1 also times below
        factors = [c * (1.0 if l == L else below) for l in range(1, L + 1)]
        return _wrong(message, [(f * dW, f * db) for f, (dW, db) in zip(factors, right)])

    def layers(message, slope):  # autograd through the network with a wrong local derivative
        return Mistake(message, lambda *args, **extras: _torch_gradients(
            params, X, Y, activations, slope))

    def name(l):
        return activations[l - 1]

    # Where two mistakes give the same numbers (an elu network forgetting its g' is also an elu
    # layer with the slope 1), the first one listed is named: the student's own elu_backward.
    mistakes = [
        layers("the elu layers' derivative is wrong: for z ≤ 0 it is not the constant 1 "
               "(alpha = 1; check your elu_backward)",
               lambda l, Z: np.ones_like(Z) if name(l) == "elu" else None),
        layers("the elu layers use elu(z) instead of its derivative elu′(z) (check your "
               "elu_backward)", lambda l, Z: G["elu"](Z) if name(l) == "elu" else None),
        scaled(f"every gradient is N = {N} times too large: the loss is the mean over the batch, "
               f"so {output}", N),
        scaled(f"every gradient is divided by the number of outputs n_L = Y.shape[0] = {n_L} "
               f"instead of the batch size N = Y.shape[1] = {N}: examples are columns, {output}",
               N / n_L),
        scaled(f"every gradient is N = {N} times too small: the 1/N of the mean loss enters "
               f"once, at the output ({output}); dW[l] = dZ[l]·A[l−1]ᵀ and db[l] = dZ[l]·1 are "
               "plain sums over the batch", 1 / N),
        scaled(f"wrong sign: {output}", -1.0),
        scaled("only the output layer has a gradient: the backward pass goes on down to layer "
               "1, dA[l−1] = W[l]ᵀ·dZ[l] and dZ[l−1] = dA[l−1] ⊙ g′(Z[l−1])", 1.0, below=0.0),
    ]
    if softmax:
        mistakes += [
            layers("the softmax's Jacobian is ignored: dZ[L] = (P − Y)/N is the gradient with "
                   f"respect to P, not Z; under the squared error {output}",
                   lambda l, Z: np.ones_like(Z) if l == L else None),
            layers("only the diagonal p ⊙ (1 − p) of the softmax's Jacobian is used: "
                   f"{output}", lambda l, Z: G["softmax"](Z) * (1 - G["softmax"](Z))
                   if l == L else None),
        ]
    else:
        mistakes.append(layers(
            "missing activation derivative in the output layer: dZ[L] = dA[L] ⊙ g_L′(Z[L]), "
            "with dA[L] = (A[L] − Y)/N", lambda l, Z: np.ones_like(Z) if l == L else None))
    mistakes += [
        layers("missing activation derivative in the hidden layers: dZ[l] = dA[l] ⊙ g_l′(Z[l]) "
               "for l < L, with dA[l] = W[l+1]ᵀ·dZ[l+1]",
               lambda l, Z: np.ones_like(Z) if l < L else None),
        layers("g′ is evaluated at A[l] = g(Z[l]) instead of Z[l]: dZ[l] = dA[l] ⊙ g′(Z[l]) "
               "(ACTIVATIONS[...].g_prime takes the pre-activation)",
               lambda l, Z: G_PRIME[name(l)](G[name(l)](Z)) if name(l) in G_PRIME else None),
        layers("the activation derivative of the wrong layer: dZ[l] = dA[l] ⊙ g_l′(Z[l]) uses "
               "layer l's own activation, activations[l − 1] in Python, not layer l + 1's",
               lambda l, Z: G_PRIME[name(l + 1)](Z)
               if l < L and name(l + 1) in G_PRIME else None),
    ]
    return mistakes


def _layer_sizes(rng, L, smallest):
    """L + 1 sizes from smallest..6, neighbours different (no square W)."""
    while True:
        sizes = [int(s) for s in rng.integers(smallest, 7, size=L + 1)]
        if all(a != b for a, b in zip(sizes[:-1], sizes[1:])):
            return sizes


def _mlp_cases(loss, first_depth):
    """Depths 1..4, the first network of the visible network's depth (an answer hard-coded
    for that is caught), the last with N = 1, the others with an N no layer has.

    Every "mse" network has an elu layer and no "softmax_mse" network has one: a mistake in
    elu_backward costs the first test cell, one in softmax_mse_backward the second. The
    deepest "mse" network has an elu and a sigmoid or tanh hidden layer and an output that is
    not elu: there the mistakes of the elu layers and of the other layers differ.
    """
    hidden = HIDDEN if loss == "mse" else tuple(a for a in HIDDEN if a != "elu")
    depths = [1, 2, 2, 3, 3, 4, 2, 3]
    depths.remove(first_depth)
    depths.insert(0, first_depth)

    def names_of(rng, L):
        if loss == "mse" and L == 4:
            inner = ["elu", str(rng.choice(["sigmoid", "tanh"])), str(rng.choice(HIDDEN))]
            outputs = [a for a in MSE_OUTPUTS if a != "elu"]
            return [str(a) for a in rng.permutation(inner)] + [str(rng.choice(outputs))]
        names = [str(a) for a in rng.choice(hidden, size=L - 1)]
        names.append("softmax" if loss == "softmax_mse" else str(rng.choice(MSE_OUTPUTS)))
        if loss == "mse" and "elu" not in names:
            names[int(rng.integers(L))] = "elu"
        return names

    def cases(rng):
        out = []
        for i, L in enumerate(depths):
            sizes = _layer_sizes(rng, L, 2 if loss == "softmax_mse" else 1)
            N = 1 if i == len(depths) - 1 else int(
                rng.choice([n for n in range(2, 9) if n not in sizes]))
            names = names_of(rng, L)
            params = [(rng.normal(0.0, 1.5 / np.sqrt(m), size=(n, m)),
                       rng.normal(0.0, 0.5, size=(n, 1))) for m, n in zip(sizes[:-1], sizes[1:])]
            X = rng.normal(size=(sizes[0], N))
            Y = (np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], size=N)]
                 if loss == "softmax_mse" else rng.normal(0.0, 0.5, size=(sizes[-1], N)))
            out.append({"params": params, "cache": _forward(params, X, names), "Y": Y,
                        "activations": names, "loss": loss})
        return out
    return cases


def _rank_mlp(case):
    """Explain first a network with N > 1 where the mistakes differ most: elu and other hidden
    layers under an output that is not elu (for "mse"), few relu layers, deep."""
    names = case["activations"]
    telling = case["loss"] != "mse" or (
        "elu" in names[:-1] and names[-1] != "elu"
        and any(a in ("sigmoid", "tanh") for a in names[:-1]))
    return (case["Y"].shape[1] == 1, not telling, names.count("relu"), -len(case["params"]))


def _visible_mlp(seed, sizes, N, activations, loss):
    rng = np.random.default_rng(seed)
    params = [(rng.normal(size=(n, m)), rng.normal(size=(n, 1)))
              for m, n in zip(sizes[:-1], sizes[1:])]
    X = rng.normal(size=(sizes[0], N))
    Y = (rng.normal(size=(sizes[-1], N)) if loss == "mse"
         else np.eye(sizes[-1])[:, rng.integers(0, sizes[-1], size=N)])
    return {"params": params, "cache": _forward(params, X, activations), "Y": Y,
            "activations": list(activations), "loss": loss}


def _describe_mlp(case):
    params, N = case["params"], case["Y"].shape[1]
    sizes = [params[0][0].shape[1]] + [W.shape[0] for W, _ in params]
    layers = f"L = {len(params)} layer{'s' if len(params) > 1 else ''}"
    return (f"mlp_backward, {LOSSES[case['loss']]}, {layers} of sizes "
            f"{' → '.join(map(str, sizes))}, activations {case['activations']}, batch N = {N}")


def _mlp_task(loss, visible, points):
    return Task(
        name="mlp_backward",
        key=f"mlp_backward_{loss}",
        grade_id=f"test_mlp_backward_{loss}",
        params=("params", "cache", "Y", "activations", "loss"),
        kind=Layers(("dW", "db")),
        cases=_mlp_cases(loss, len(visible["params"])),
        oracle=_mlp_oracle,
        mistakes=_mlp_mistakes,
        visible=(visible,),
        points=points,
        rtol=RTOL,
        atol=ATOL,
        withheld=WITHHELD,
        unchanged=("params", "cache", "Y", "activations"),
        describe=_describe_mlp,
        rank=_rank_mlp,
    )


MLP_BACKWARD_MSE = _mlp_task(
    "mse", _visible_mlp(2024, [3, 4, 6, 2], 5, ["elu", "tanh", "sigmoid"], "mse"), 4)
MLP_BACKWARD_SOFTMAX_MSE = _mlp_task(
    "softmax_mse", _visible_mlp(2025, [2, 5, 3], 4, ["tanh", "softmax"], "softmax_mse"), 4)

ASSIGNMENT = Assignment("matrix", [GRADIENT_SHAPES, BATCHNORM_BACKWARD, ELU_BACKWARD,
                                   SOFTMAX_MSE_BACKWARD, MLP_BACKWARD_MSE,
                                   MLP_BACKWARD_SOFTMAX_MSE])
