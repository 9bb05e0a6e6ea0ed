"""The copy of our package that student code may import inside the sandbox.

Students need a few trusted helpers (the activation table, the SymPy symbols, the named test
functions). Everything else -- the reference implementations, the oracles, the hidden-test
logic -- is replaced by a stub module with the same names, whose functions raise when called.
So ``from backpropbook.scalar import chain_backward`` still imports, but using it as an
answer fails with a message that says why. ``import torch`` fails too, saying why.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # src/backpropbook

# Importable as they are; every other module of the package becomes a stub.
ALLOWED = {
    "__init__.py",
    "activations.py",
    "symbolic.py",
    "grading/__init__.py",
    "grading/functions.py",
}
SKIPPED = {"grader", "__pycache__"}  # not even as stubs

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


def build(dest):
    """Write the kit under ``dest`` (a ``backpropbook`` folder inside it); returns ``dest``.

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
        if rel.as_posix() in ALLOWED:
            target.write_text(path.read_text())
        else:
            module = "backpropbook." + ".".join(rel.with_suffix("").parts)
            target.write_text(_stub(path, module))
    # torch would answer a NumPy task for the student; the kit comes first on the sandbox's path.
    (dest / "torch").mkdir(exist_ok=True)
    (dest / "torch" / "__init__.py").write_text(TORCH_STUB)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest
