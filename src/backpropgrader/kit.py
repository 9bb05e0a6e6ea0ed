"""The copy of the student package that student code imports inside the sandbox.

The student package (``backpropbook``) computes no autograded answer (a test runs every callable
it offers through every task's hidden checks), so it is copied as it is, except the modules the
assignment's tasks withhold (:attr:`backpropgrader.engine.Task.withheld`): each becomes a stub
with the same names, whose functions raise when called. So ``from backpropbook.mlp import
mlp_backward`` still imports, but using it as an answer fails with a message that says why.
``torch``, when withheld, fails on import, saying why: the kit's stub comes first on the
sandbox's path, and :func:`covers` tells the sandbox to show it over the real torch too.

Each sandbox has its own kit: the grader builds one per set of withheld modules (a profile).
"""

import ast
import importlib.util
from pathlib import Path

import backpropbook

PACKAGE = Path(backpropbook.__file__).resolve().parent  # src/backpropbook
SKIPPED = {"__pycache__"}

STUB = '''"""Withheld while grading: {module} is the book's reference code."""


def _withheld(name):
    def withheld(*args, **kwargs):
        raise RuntimeError(
            f"{module}.{{name}} is the book's reference implementation and is not "
            "available while grading: write the computation yourself"
        )
    withheld.__name__ = name
    return withheld

'''


TORCH_STUB = '''raise ImportError(
    "torch is not available while grading: these tasks ask for NumPy code you write yourself")
'''


def _stub(path, module):
    """Source of a stub for the module at ``path``: each top-level def/class raises when called."""
    tree = ast.parse(path.read_text())
    names = [node.name for node in tree.body
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    lines = [STUB.format(module=module)]
    lines += [f"{name} = _withheld({name!r})" for name in names]
    return "\n".join(lines) + "\n"


def build(dest, withheld=()):
    """Write the kit under ``dest`` (a ``backpropbook`` folder inside it); returns ``dest``.

    ``withheld``: dotted module names (``backpropbook.mlp``) written as stubs, and ``"torch"``.

    Everything is world-readable: the sandbox runs as an unprivileged uid.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in SKIPPED:
            continue
        target = dest / "backpropbook" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        module = ".".join(("backpropbook", *rel.with_suffix("").parts)).removesuffix(".__init__")
        if module in withheld:
            target.write_text(_stub(path, module))
        else:
            target.write_text(path.read_text())
    if "torch" in withheld:  # the kit comes first on the sandbox's path
        (dest / "torch").mkdir(exist_ok=True)
        (dest / "torch" / "__init__.py").write_text(TORCH_STUB)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def covers(dest, withheld=()):
    """``{the grader's torch folder: the kit's stub}`` if the kit at ``dest`` withholds torch.

    For :class:`~backpropgrader.sandbox.Sandbox`'s ``covers``: first on ``sys.path`` the stub
    is only in the way, and code that takes /opt/kit off the path would import the real torch
    from the virtualenv; shown over torch's own folder, the stub is all there is.
    """
    spec = importlib.util.find_spec("torch") if "torch" in withheld else None
    if spec is None or spec.origin is None:
        return {}
    return {Path(spec.origin).parent: Path(dest) / "torch"}
