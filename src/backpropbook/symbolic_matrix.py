"""SymPy derivations for the matrix chapter: the linear layer over a batch, and the softmax.

Everything is built from explicit matrices of scalar symbols, so that ``sympy.diff`` can
differentiate entry by entry and the results are identities, not samples:

- :func:`linear_layer_identities`: for Z = W A + b 1^T and *any* upstream gradient G = dE/dZ,
  dE/dW = G A^T, dE/db = G 1 and dE/dA = W^T G.
- :func:`softmax_jacobian`: d softmax(z) / dz = diag(p) - p p^T.
- :func:`softmax_squared_error`: under E = 1/2 ||p - y||^2 the gradient with respect to z is
  J (p - y) with the full Jacobian J; the "softmax derivative ignored" shortcut p - y is wrong.
- :func:`softmax_cross_entropy`: under E = -sum y_i log p_i the gradient is p sum(y) - y, which
  is exactly p - y when the target sums to 1 (one-hot or any probability vector).
"""

import sympy as sp


def matrix_symbols(name, rows, cols):
    """A rows x cols sympy Matrix of real symbols name_i_j (1-based, as in the book); a column
    (cols == 1) gets the single index name_i."""
    if cols == 1:
        return sp.Matrix(rows, 1, lambda i, _: sp.Symbol(f"{name}_{i + 1}", real=True))
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i + 1}_{j + 1}", real=True))


def gradient_matrix(E, M):
    """dE/dM, entry by entry: a Matrix of the shape of M (a gradient has the shape of its
    variable)."""
    return M.applyfunc(lambda m: sp.diff(E, m))


def linear_layer_identities(n=2, m=3, N=4):
    """Prove the three gradients of Z = W A + b 1^T for one (n, m, N).

    The upstream gradient is an arbitrary symbolic matrix G; since E enters only through Z, we
    may take E = sum_ij G_ij Z_ij, whose dE/dZ is exactly G (the chain rule is linear in dE/dZ,
    so this covers every loss). Returns a dict name -> (by sympy.diff, by formula); the two
    matrices of each pair are equal as expressions.
    """
    W = matrix_symbols("w", n, m)
    A = matrix_symbols("a", m, N)
    b = matrix_symbols("b", n, 1)
    G = matrix_symbols("g", n, N)
    ones = sp.ones(N, 1)
    Zs = matrix_symbols("z", n, N)  # Z as free symbols: E's gradient there is G
    E_of_Z = sum(G[i, j] * Zs[i, j] for i in range(n) for j in range(N))
    assert gradient_matrix(E_of_Z, Zs) == G
    Z = W * A + b * ones.T
    E = E_of_Z.subs(dict(zip(Zs, Z)))
    return {
        "dW": (gradient_matrix(E, W), G * A.T),
        "db": (gradient_matrix(E, b), G * ones),
        "dA": (gradient_matrix(E, A), W.T * G),
    }


def softmax_expr(z):
    """softmax of a column Matrix of symbols z, as a column Matrix p."""
    e = z.applyfunc(sp.exp)
    total = sum(e)
    return e.applyfunc(lambda v: v / total)


def softmax_jacobian(K=3):
    """The softmax Jacobian J_ij = dp_i/dz_j for K classes, two ways.

    Returns ``(z, p, J_by_diff, J_formula)`` with J_formula = diag(p) - p p^T.
    """
    z = matrix_symbols("z", K, 1)
    p = softmax_expr(z)
    J = sp.Matrix(K, K, lambda i, j: sp.diff(p[i], z[j]))
    return z, p, J, sp.diag(*p) - p * p.T


def softmax_squared_error(K=3):
    """E = 1/2 ||softmax(z) - y||^2. Returns ``(z, y, true, full_jacobian, ignored)``.

    ``true`` is dE/dz by sympy.diff; ``full_jacobian`` is J^T (p - y) with J = diag(p) - p p^T
    (the chain rule through the softmax); ``ignored`` is p - y, what one gets by "ignoring" the
    softmax's derivative. The first two are equal; the third is not.
    """
    z, p, _, J = softmax_jacobian(K)
    y = matrix_symbols("y", K, 1)
    E = sp.Rational(1, 2) * sum((p[i] - y[i]) ** 2 for i in range(K))
    return z, y, gradient_matrix(E, z), J.T * (p - y), p - y


def softmax_cross_entropy(K=3):
    """E = -sum_i y_i log softmax(z)_i. Returns ``(z, y, p, true, vjp)``.

    ``true`` is dE/dz by sympy.diff; ``vjp`` is the vector-Jacobian product J^T dE/dp =
    J^T (-y / p), the chain rule through the full Jacobian. Both equal p (sum_i y_i) - y for
    any y, and so p - y when sum_i y_i = 1.
    """
    z, p, _, J = softmax_jacobian(K)
    y = matrix_symbols("y", K, 1)
    E = -sum(y[i] * sp.log(p[i]) for i in range(K))
    dE_dp = sp.Matrix(K, 1, lambda i, _: -y[i] / p[i])
    return z, y, p, gradient_matrix(E, z), J.T * dE_dp


def is_zero_matrix(M):
    """True if every entry of M is identically 0.

    The entries here are rational functions of exp(z_1), ..., exp(z_K) and the other symbols;
    ``cancel`` treats each exp(z_k) as one more variable and brings an entry to a canonical
    numerator/denominator form, whose numerator is 0 exactly when the entry is.
    """
    return all(sp.cancel(sp.together(entry)) == 0 for entry in M)
