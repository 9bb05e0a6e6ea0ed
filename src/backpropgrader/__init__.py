"""Tamper-proof grading: student code runs in a bubblewrap sandbox and answers in plain data.

- :mod:`backpropgrader.codec` -- the plain-data JSON codec (arrays, SymPy via a safe
  srepr reader, tagged tuples/dicts, named test functions), shared by both sides
- :mod:`backpropgrader.runner` -- the program that runs inside the sandbox
- :mod:`backpropgrader.sandbox` -- :class:`Sandbox`, which starts and drives it
- :mod:`backpropgrader.kit` -- the part of our package students may import in the sandbox
- :mod:`backpropgrader.submission` -- finding, reading and rebuilding a submission
- :mod:`backpropgrader.evaluate` -- running a submission and its tests
- :mod:`backpropgrader.course` -- a whole assignment, recorded in nbgrader's gradebook

Hidden tests run in the trusted process and reach student functions only through
:meth:`Sandbox.call`, so nothing the student does to NumPy, IPython or their own objects can
change how the checks are computed.
"""

from backpropbook.codec import DecodeError, FunctionRef, Unsupported

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
