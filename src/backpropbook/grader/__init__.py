"""Tamper-proof grading: student code runs in a bubblewrap sandbox and answers in plain data.

- :mod:`backpropbook.grader.codec` -- the plain-data JSON codec (arrays, SymPy via a safe
  srepr reader, tagged tuples/dicts, named test functions), shared by both sides
- :mod:`backpropbook.grader.runner` -- the program that runs inside the sandbox
- :mod:`backpropbook.grader.sandbox` -- :class:`Sandbox`, which starts and drives it
- :mod:`backpropbook.grader.kit` -- the part of our package students may import in the sandbox
- :mod:`backpropbook.grader.submission` -- finding, reading and rebuilding a submission
- :mod:`backpropbook.grader.evaluate` -- running a submission and its tests
- :mod:`backpropbook.grader.course` -- a whole assignment, recorded in nbgrader's gradebook

Hidden tests run in the trusted process and reach student functions only through
:meth:`Sandbox.call`, so nothing the student does to NumPy, IPython or their own objects can
change how the checks are computed.
"""

from .codec import DecodeError, FunctionRef, Unsupported
from .sandbox import (
    CellError,
    CellResult,
    OutputLimit,
    ProtocolError,
    Sandbox,
    SandboxDied,
    SandboxError,
    SandboxUnavailable,
    StudentError,
    StudentTimeout,
    check_available,
)

__all__ = [
    "Sandbox", "CellResult", "CellError", "check_available",
    "SandboxError", "SandboxUnavailable", "StudentError", "StudentTimeout", "SandboxDied",
    "OutputLimit", "ProtocolError", "FunctionRef", "Unsupported", "DecodeError",
]
