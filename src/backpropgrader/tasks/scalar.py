"""The scalar assignment (``solutions/scalar/scalar.ipynb``), declared task by task.

Python arrays are 0-based: ``w[l - 1]`` holds the book's w[l], and ``a[0] = x``.
"""

import mpmath
import numpy as np

from backpropgrader.engine import Assignment, Mistake, Task
from backpropbook.selfcheck import Array

# --------------------------------------------------------------------------------------------
# Task 1: log sigma and its derivative
# --------------------------------------------------------------------------------------------


def _describe_z(case):
    z = np.asarray(case["z"])
    if z.ndim == 0:
        return f"z = {float(z):.6g}"
    return f"z of shape {z.shape} (entries from {z.min():.4g} to {z.max():.4g})"


def _z_cases(limit):
    def cases(rng):
        out = [0.0, float(limit), -float(limit), float(rng.uniform(-limit, limit))]
        if limit >= 710:
            out += [-709.9, -745.5, 710.5, -710.5, 36.0, 40.0]
        for shape in [(7,), (3, 4), (2, 3, 2), (1,)]:
            scale = rng.choice([1.0, 10.0, float(limit)], size=shape)
            out.append(np.clip(rng.standard_normal(shape) * scale, -limit, limit))
        out.append(np.linspace(-limit, limit, 11))
        return [{"z": z} for z in out]
    return cases


def _mp(fn, z):
    """fn applied entrywise at 50 digits (mpmath), rounded to float64: the oracle."""
    with mpmath.workdps(50):
        return np.vectorize(lambda v: float(fn(mpmath.mpf(float(v)))), otypes=[float])(
            np.asarray(z, dtype=float))


def _log_sigmoid(z):
    return _mp(lambda v: -mpmath.log1p(mpmath.exp(-v)), z)


def _sigma(z):
    return _mp(lambda v: 1 / (1 + mpmath.exp(-v)), z)


def _log_sigmoid_mistakes(z):
    with np.errstate(all="ignore"):
        return [
            Mistake("log_sigmoid returns log sigma(-z) = -softplus(z): check the sign, "
                    "log sigma(z) = -log(1 + e^(-z))", lambda z: _log_sigmoid(-np.asarray(z))),
            Mistake("log_sigmoid returns sigma(z) itself, not its logarithm",
                    lambda z: _sigma(z)),
            Mistake("log(1 + e^(-z)) computed literally gives inf for z < -709 and loses every "
                    "digit for large z: use log sigma(z) = min(z, 0) - log1p(e^(-|z|))",
                    lambda z: -np.log(1.0 + np.exp(-np.asarray(z, float)))),
        ]


LOG_SIGMOID = Task(
    name="log_sigmoid",
    params=("z",),
    kind=Array("log_sigmoid(z)"),
    cases=_z_cases(1000.0),
    oracle=_log_sigmoid,
    mistakes=_log_sigmoid_mistakes,
    visible=({"z": np.array([-1000.0, -1.0, 0.0, 1.0, 40.0])},),
    points=2,
    rtol=1e-10,
    atol=0.0,
    unchanged=("z",),
    describe=lambda case: f"log_sigmoid at {_describe_z(case)}",
    oracle_name="mpmath at 50 digits",
    withheld=("torch",),
)

ASSIGNMENT = Assignment("scalar", [LOG_SIGMOID])
