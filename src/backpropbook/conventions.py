"""The dense layer in the layouts met elsewhere, and their conversions to ours.

The book (see :mod:`backpropbook.layers`): examples are columns, A (m, N);
W (n, m); b (n, 1); Z = W A + b 1^T; dW = dZ A^T, db = dZ 1, dA = W^T dZ.

Throughout, m = n_{l-1} (the layer's inputs), n = n_l (its units), N = the
batch size. Every function is one line of algebra; the names say which layout
an argument is in.
"""

import numpy as np

# --- Transposed weights ("slides"): Z = W_s^T A + b 1^T, W_s of shape (m, n) --


def linear_forward_slides(W_slides, A_prev, b):
    """Z = W_slides^T A_prev + b 1^T.

    W_slides (m, n), A_prev (m, N), b (n, 1) -> Z (n, N).
    """
    return W_slides.T @ A_prev + b


def linear_backward_slides(dZ, A_prev, W_slides):
    """Gradients of Z = W_slides^T A_prev + b 1^T, given dZ (n, N).

        dW_slides = A_prev dZ^T   (m, n): a delta^T summed, ours transposed
        db = dZ 1                 (n, 1)
        dA_prev = W_slides dZ     (m, N)

    Returns (dW_slides, db, dA_prev).
    """
    return A_prev @ dZ.T, dZ.sum(axis=1, keepdims=True), W_slides @ dZ


def weights_from_slides(W_slides):
    """The book's W = W_slides^T, (m, n) -> (n, m); dW converts the same way."""
    return W_slides.T


# --- Examples in rows (NumPy courses): Z = X W_rows + 1 b_row -----------------


def linear_forward_rows(X, W_rows, b_row):
    """Z = X W_rows + 1 b_row.

    X (N, m), W_rows (m, n), b_row (1, n) -> Z (N, n), one row per example.
    """
    return X @ W_rows + b_row


def linear_backward_rows(dZ, X, W_rows):
    """Gradients of Z = X W_rows + 1 b_row, given dZ (N, n).

        dW_rows = X^T dZ     (m, n)
        db_row = 1^T dZ      (1, n): summed over the batch, down the rows
        dX = dZ W_rows^T     (N, m)

    Returns (dW_rows, db_row, dX).
    """
    return X.T @ dZ, dZ.sum(axis=0, keepdims=True), dZ @ W_rows.T


def to_columns(A_rows):
    """Examples in rows (N, n) -> the book's columns (n, N): a transpose."""
    return A_rows.T


def to_rows(A):
    """The book's columns (n, N) -> examples in rows (N, n): a transpose."""
    return A.T


def params_from_rows(W_rows, b_row):
    """(W_rows (m, n), b_row (1, n)) -> the book's (W, b) = (W_rows^T, b_row^T).

    Gradients convert the same way: dW, db = params_from_rows(dW_rows, db_row).
    """
    return W_rows.T, b_row.T


# --- PyTorch's nn.Linear: Y = X weight^T + bias, weight (n, m) = the book's W --


def linear_forward_torch(X, weight, bias):
    """Y = X weight^T + bias, as torch.nn.Linear computes it.

    X (N, m), weight (n, m), bias (n,) -> Y (N, n). Transposed, it is the
    book's layer with W = weight: Y^T = weight X^T + bias 1^T.
    """
    return X @ weight.T + bias


def linear_backward_torch(dY, X, weight):
    """Gradients of Y = X weight^T + bias, given dY (N, n).

        dweight = dY^T X     (n, m): the book's dW = dZ A^T (dZ = dY^T, A = X^T)
        dbias = 1^T dY       (n,)
        dX = dY weight       (N, m)

    Returns (dweight, dbias, dX).
    """
    return dY.T @ X, dY.sum(axis=0), dY @ weight


def params_from_torch(weight, bias):
    """(weight (n, m), bias (n,)) -> the book's (W, b) = (weight, bias (n, 1))."""
    return weight, np.reshape(bias, (-1, 1))
