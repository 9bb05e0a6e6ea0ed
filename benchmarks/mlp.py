"""Benchmark: one forward + backward step of an MLP, the package's NumPy code against \
torch.autograd.

The network: sizes [1024, 1024, 1024, 1024] (three layers), tanh hidden layers, an identity
output layer and the mean squared error, on a batch of 512 columns; the NumPy side is exactly
``mlp.mlp_forward`` + ``mlp.mlp_backward``, the torch side the same network written in torch
(Z = W A + b, examples in columns) differentiated by autograd. Both run in the same process, with
torch set to the thread count of NumPy's BLAS, for float32 and float64, the two sides timed in
alternation. Each case reports the median time over repeats (after warm-up), the achieved
GFLOP/s and the machine's matrix-multiply rate (a plain n x n x n matmul, timed the same way),
and ends in ratio=<numpy time / torch time>.

FLOPs are counted from the code, 2 m n k per (m x k)(k x n) matmul, matmuls only:
the forward pass does one matmul per layer (W A); the package's backward pass does two per layer
(dW = dZ A^T and dA_prev = W^T dZ, layer 1 included: see ``mlp_backward``); autograd does
not compute dA_prev for layer 1 (X does not require a gradient), so one fewer.

    .venv/bin/python benchmarks/mlp.py [--batch 512] [--width 1024] [--repeats 15]

This is a benchmark, not a test: it asserts nothing about time, and is not part of `make test`.
It does check that both sides compute the same gradients, so it never times a wrong answer.
"""

import argparse
import ctypes
import glob
import os
import platform
import statistics
import time

import numpy as np
import torch

from backpropbook.mlp import init_params, mlp_backward, mlp_forward

ACTIVATIONS = ["tanh", "tanh", "identity"]


def blas_threads():
    """(threads, how we know) for NumPy's BLAS: threadpoolctl, else OpenBLAS itself, else CPUs."""
    try:
        from threadpoolctl import threadpool_info
        pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
        if pools:
            return pools[0]["num_threads"], f"threadpoolctl ({pools[0]['internal_api']})"
    except ImportError:
        pass
    libs = glob.glob(os.path.join(os.path.dirname(np.__path__[0]), "numpy.libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                     "openblas_get_num_threads"):
            if hasattr(lib, name):
                return getattr(lib, name)(), f"OpenBLAS {name}"
    return os.cpu_count(), "os.cpu_count()"


def openblas_core():
    """The CPU kernel set OpenBLAS chose (e.g. Haswell, SkylakeX), or '?' if it cannot be asked."""
    for path in glob.glob(os.path.join(os.path.dirname(np.__path__[0]), "numpy.libs",
                                       "*openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(lib, name):
                getattr(lib, name).restype = ctypes.c_char_p
                return getattr(lib, name)().decode()
    return "?"


PAUSE_S = 0.3


def median_times(steps, repeats, warmup=3):
    """Median seconds of each step, timed in alternation (a, b, a, b, ...) so that a busy spell
    on a shared machine falls on both sides alike rather than on one of them.

    Each timing follows a pause and one untimed step: OpenBLAS's threads (NumPy) and OpenMP's
    (torch) keep spinning for a while after a call, and a step timed while the other library's
    threads still spin competes with them for the cores (on 16 cores this made torch's step
    16x slower); the untimed step then wakes the timed library's own threads, as in a loop.
    """
    for step in steps:
        for _ in range(warmup):
            step()
    times = [[] for _ in steps]
    for _ in range(repeats):
        for step, spent in zip(steps, times):
            time.sleep(PAUSE_S)
            step()
            start = time.perf_counter()
            step()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def matmul_flops(sizes, N, backward_first_dA):
    """2 m n k per matmul, counted as the code runs them (see the module docstring)."""
    per_layer = [2 * n * m * N for m, n in zip(sizes[:-1], sizes[1:])]
    forward = sum(per_layer)
    backward = 2 * sum(per_layer) - (0 if backward_first_dA else per_layer[0])
    return forward + backward


def torch_step(params_t, X, Y):
    """The same network in torch: Z = W A + b, tanh, tanh, identity, E = 1/(2N) ||A - Y||^2."""
    A = X
    for l, (W, b) in enumerate(params_t, start=1):
        Z = W @ A + b
        A = torch.tanh(Z) if l < len(params_t) else Z
    E = 0.5 * ((A - Y) ** 2).sum() / X.shape[1]
    for W, b in params_t:
        W.grad = b.grad = None
    E.backward()


def run_case(dtype, sizes, N, repeats):
    rng = np.random.default_rng(0)
    params = init_params(sizes, rng, dtype)
    for _, b in params:
        b[:] = rng.standard_normal(b.shape).astype(dtype) * 0.1
    X = rng.standard_normal((sizes[0], N)).astype(dtype)
    Y = rng.standard_normal((sizes[-1], N)).astype(dtype)

    def numpy_step():
        out, cache = mlp_forward(params, X, ACTIVATIONS)
        return mlp_backward(params, cache, Y, ACTIVATIONS)

    params_t = [(torch.from_numpy(W.copy()).requires_grad_(),
                 torch.from_numpy(b.copy()).requires_grad_())
                for W, b in params]
    X_t, Y_t = torch.from_numpy(X), torch.from_numpy(Y)

    # Same answer first (and the same dtype end to end), then time.
    grads = numpy_step()
    torch_step(params_t, X_t, Y_t)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for (dW, db), (W, b) in zip(grads, params_t):
        assert dW.dtype == dtype and db.dtype == dtype, (dW.dtype, db.dtype)
        for mine, theirs in ((dW, W.grad.numpy()), (db, b.grad.numpy())):
            err = np.max(np.abs(mine - theirs)) / np.max(np.abs(theirs))
            assert err < tol, f"numpy and torch gradients differ: {err:.2e}"

    t_np, t_torch = median_times([numpy_step, lambda: torch_step(params_t, X_t, Y_t)], repeats)

    n = sizes[1]
    A, B = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    A_t, B_t = torch.from_numpy(A), torch.from_numpy(B)
    peak_np, peak_torch = (2 * n**3 / t / 1e9
                           for t in median_times([lambda: A @ B, lambda: A_t @ B_t], repeats))

    f_np = matmul_flops(sizes, N, backward_first_dA=True)
    f_torch = matmul_flops(sizes, N, backward_first_dA=False)
    name = np.dtype(dtype).name
    print(f"{name} numpy: {t_np * 1e3:7.1f} ms  {f_np / t_np / 1e9:6.1f} GFLOP/s "
          f"({f_np / 1e9:.2f} GFLOP/step; matmul {n}^3: {peak_np:6.1f} GFLOP/s) | "
          f"torch: {t_torch * 1e3:7.1f} ms  {f_torch / t_torch / 1e9:6.1f} GFLOP/s "
          f"({f_torch / 1e9:.2f} GFLOP/step; matmul {n}^3: {peak_torch:6.1f} GFLOP/s) | "
          f"ratio={t_np / t_torch:.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    threads, source = blas_threads()
    torch.set_num_threads(threads)
    sizes = [args.width] * 4
    print(f"MLP {sizes}, batch {args.batch}, activations {ACTIVATIONS}, MSE; "
          f"median of {args.repeats} after warm-up")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"numpy {np.__version__} (OpenBLAS core {openblas_core()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}), "
          f"torch {torch.__version__}; threads: {threads} ({source}), "
          f"torch {torch.get_num_threads()}")
    for dtype in (np.float32, np.float64):
        run_case(dtype, sizes, args.batch, args.repeats)


if __name__ == "__main__":
    main()
