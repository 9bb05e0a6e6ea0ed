"""Plain-data codec between the trusted grader and the sandboxed student process.

Values cross the sandbox boundary as JSON text built only from JSON primitives (null, bool,
int, float, str, list) and one-key "tag" objects. Every dict in the JSON is a tag, so the
decoder never confuses student data with markup:

=================================  ===============================================
Python value                        JSON
=================================  ===============================================
None, bool, int, str                themselves (exact types only, no subclasses)
float                               itself; ``{"__float__": "nan"|"inf"|"-inf"}``
complex                             ``{"__complex__": [re, im]}``
list                                a JSON list
tuple                               ``{"__tuple__": [...]}``
dict with str keys                  ``{"__dict__": {"key": value, ...}}``
numpy array                         ``{"__ndarray__": {"dtype", "shape", "data"}}``
numpy scalar                        ``{"__npscalar__": {"dtype", "data"}}``
SymPy expression or matrix          ``{"__sympy__": "<srepr text>"}``
named test function                 ``{"__function__": "<name>"}``
anything else                       ``{"__unsupported__": "<type name>"}``
=================================  ===============================================

Arrays carry ``data`` = base64 of the raw little-endian bytes; only the dtypes in
:data:`DTYPES` are allowed, and decoding is ``np.frombuffer(...).reshape(...).copy()``:
never pickle. ndarray subclasses are encoded as plain arrays of their data.

SymPy text is *never* evaluated: :func:`decode_sympy` parses it with :mod:`ast` and rebuilds
it only from the allow-listed constructors in :data:`SYMPY_CALLS` and :data:`SYMPY_NAMES`.

This module must stay importable with the standard library and NumPy alone: the sandbox
runner imports it (SymPy is imported lazily, only when a SymPy value is met).
"""

from __future__ import annotations

import ast
import base64
import json
import math
import sys

import numpy as np

__all__ = [
    "CodecError", "EncodeError", "DecodeError", "FunctionRef", "Unsupported",
    "encode", "decode", "to_plain", "from_plain", "decode_sympy", "DTYPES",
]

#: dtype name -> explicit little-endian dtype; nothing else crosses the boundary.
DTYPES = {
    "bool": np.dtype("?"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "complex128": np.dtype("<c16"),
}
MAX_DEPTH = 64


class CodecError(ValueError):
    """Base class for codec failures."""


class EncodeError(CodecError):
    """The value cannot be encoded (too large, too deep)."""


class DecodeError(CodecError):
    """The text is not valid codec JSON, or uses something outside the allow-lists."""


class FunctionRef:
    """A named test function, sent as ``{"__function__": name}`` and resolved on the other side."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = str(name)

    def __eq__(self, other):
        return type(other) is FunctionRef and other.name == self.name

    def __hash__(self):
        return hash(("FunctionRef", self.name))

    def __repr__(self):
        return f"FunctionRef({self.name!r})"


class Unsupported:
    """A value the sandbox could not send as plain data (``type_name`` says what it was)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str):
        self.type_name = str(type_name)

    def __eq__(self, other):
        return type(other) is Unsupported and other.type_name == self.type_name

    def __hash__(self):
        return hash(("Unsupported", self.type_name))

    def __repr__(self):
        return f"<unsupported {self.type_name}>"


def _type_name(obj) -> str:
    t = type(obj)
    mod = getattr(t, "__module__", "") or ""
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    return name if mod in ("builtins", "") else f"{mod}.{name}"


# ----------------------------------------------------------------------------- encoding


class _Budget:
    def __init__(self, max_bytes):
        self.left = max_bytes

    def spend(self, n):
        if self.left is not None:
            self.left -= n
            if self.left < 0:
                raise EncodeError("value too large to send")


def _float(x: float):
    if math.isnan(x):
        return {"__float__": "nan"}
    if math.isinf(x):
        return {"__float__": "inf" if x > 0 else "-inf"}
    return x


def _sympy_types():
    sp = sys.modules.get("sympy")
    if sp is None:
        return ()
    return (sp.Basic, sp.MatrixBase)


def to_plain(obj, *, functions=None, max_bytes=None, _depth=0, _budget=None):
    """Turn ``obj`` into a JSON-ready tree of primitives and tags (see the module docstring).

    ``functions`` maps names to callables; a callable that *is* one of them is sent by name.
    """
    budget = _budget if _budget is not None else _Budget(max_bytes)
    if _depth > MAX_DEPTH:
        raise EncodeError(f"value nested deeper than {MAX_DEPTH} levels")
    t = type(obj)
    if obj is None or t is bool:
        budget.spend(5)
        return obj
    if t is int:
        budget.spend(24)
        if obj.bit_length() > 4000:
            raise EncodeError("integer too large to send")
        return obj
    if t is float:
        budget.spend(24)
        return _float(obj)
    if t is complex:
        budget.spend(48)
        return {"__complex__": [_float(obj.real), _float(obj.imag)]}
    if t is str:
        budget.spend(len(obj) + 2)
        return obj
    kw = dict(functions=functions, _depth=_depth + 1, _budget=budget)
    if t is list or t is tuple:
        budget.spend(2 + len(obj))
        items = [to_plain(x, **kw) for x in obj]
        return items if t is list else {"__tuple__": items}
    if t is dict:
        if not all(type(k) is str for k in obj):
            return {"__unsupported__": "dict with non-str keys"}
        budget.spend(2 + len(obj))
        out = {}
        for k, v in obj.items():
            budget.spend(len(k) + 4)
            out[k] = to_plain(v, **kw)
        return {"__dict__": out}
    if t is FunctionRef:
        return {"__function__": obj.name}
    if t is Unsupported:
        return {"__unsupported__": obj.type_name}
    if isinstance(obj, np.ndarray):
        arr = np.ndarray.view(obj, np.ndarray)  # drop any subclass, without calling its methods
        name = next((n for n, dt in DTYPES.items()
                     if arr.dtype == dt.newbyteorder("=") or arr.dtype == dt), None)
        if name is None:
            return {"__unsupported__": f"numpy.ndarray of dtype {arr.dtype}"}
        dt = DTYPES[name]
        budget.spend(arr.size * dt.itemsize * 4 // 3 + 64)
        raw = np.ascontiguousarray(arr, dtype=dt).tobytes()
        return {"__ndarray__": {"dtype": name, "shape": [int(n) for n in arr.shape],
                                "data": base64.b64encode(raw).decode("ascii")}}
    if isinstance(obj, np.generic):
        for name, dt in DTYPES.items():
            if obj.dtype == dt.newbyteorder("=") or obj.dtype == dt:
                budget.spend(64)
                raw = np.asarray(obj, dtype=dt).tobytes()
                data = base64.b64encode(raw).decode("ascii")
                return {"__npscalar__": {"dtype": name, "data": data}}
        return {"__unsupported__": f"numpy scalar of dtype {obj.dtype}"}
    sympy_types = _sympy_types()
    if sympy_types and isinstance(obj, sympy_types):
        text = sys.modules["sympy"].srepr(obj)
        if type(text) is not str:
            return {"__unsupported__": _type_name(obj)}
        budget.spend(len(text) + 16)
        return {"__sympy__": text}
    if functions and callable(obj):
        for name, fn in functions.items():
            if fn is obj:
                return {"__function__": name}
    return {"__unsupported__": _type_name(obj)}


def encode(obj, *, functions=None, max_bytes=None) -> str:
    """Encode ``obj`` as JSON text; :class:`EncodeError` if it exceeds ``max_bytes``."""
    tree = to_plain(obj, functions=functions, max_bytes=max_bytes)
    text = json.dumps(tree, allow_nan=False, separators=(",", ":"))
    if max_bytes is not None and len(text) > max_bytes:
        raise EncodeError(f"encoded value is {len(text)} bytes, more than the limit of {max_bytes}")
    return text


# ----------------------------------------------------------------------------- decoding


def _reject_constant(name):
    raise DecodeError(f"non-standard JSON constant {name}")


def decode(text, *, functions=None, max_bytes=None):
    """Decode JSON text produced by :func:`encode`.

    ``functions`` (a name -> callable mapping) resolves ``__function__`` tags; without it they
    decode to :class:`FunctionRef`. Raises :class:`DecodeError` on anything malformed.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="strict")
    if max_bytes is not None and len(text) > max_bytes:
        raise DecodeError(f"response is {len(text)} bytes, more than the limit of {max_bytes}")
    try:
        tree = json.loads(text, parse_constant=_reject_constant)
    except DecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    return from_plain(tree, functions=functions)


def _b64(s):
    if type(s) is not str:
        raise DecodeError("array data must be a base64 string")
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise DecodeError(f"bad base64: {exc}") from None


def _dtype(name):
    if type(name) is not str or name not in DTYPES:
        raise DecodeError(f"dtype {name!r} not allowed")
    return DTYPES[name]


def _plain_float(v):
    if type(v) is float or type(v) is int:
        return float(v)
    if type(v) is dict and set(v) == {"__float__"} and v["__float__"] in ("nan", "inf", "-inf"):
        return float(v["__float__"])
    raise DecodeError("bad float")


def from_plain(tree, *, functions=None, _depth=0):
    """Inverse of :func:`to_plain`; strict about every tag's shape."""
    if _depth > MAX_DEPTH + 2:
        raise DecodeError("value nested too deeply")
    t = type(tree)
    if tree is None or t in (bool, int, float, str):
        return tree
    kw = dict(functions=functions, _depth=_depth + 1)
    if t is list:
        return [from_plain(x, **kw) for x in tree]
    if t is not dict or len(tree) != 1:
        raise DecodeError("expected a one-key tag object")
    (tag, val), = tree.items()
    if tag == "__float__":
        return _plain_float(tree)
    if tag == "__complex__":
        if type(val) is not list or len(val) != 2:
            raise DecodeError("bad complex")
        return complex(_plain_float(val[0]), _plain_float(val[1]))
    if tag == "__tuple__":
        if type(val) is not list:
            raise DecodeError("bad tuple")
        return tuple(from_plain(x, **kw) for x in val)
    if tag == "__dict__":
        if type(val) is not dict:
            raise DecodeError("bad dict")
        return {k: from_plain(v, **kw) for k, v in val.items()}
    if tag == "__ndarray__":
        if type(val) is not dict or set(val) != {"dtype", "shape", "data"}:
            raise DecodeError("bad ndarray")
        dt = _dtype(val["dtype"])
        shape = val["shape"]
        if type(shape) is not list or len(shape) > 32 or not all(
                type(n) is int and n >= 0 for n in shape):
            raise DecodeError("bad ndarray shape")
        raw = _b64(val["data"])
        if len(raw) != math.prod(shape) * dt.itemsize:
            raise DecodeError("ndarray data does not match its shape")
        return np.frombuffer(raw, dtype=dt).reshape(shape).astype(dt.newbyteorder("="), copy=True)
    if tag == "__npscalar__":
        if type(val) is not dict or set(val) != {"dtype", "data"}:
            raise DecodeError("bad numpy scalar")
        dt = _dtype(val["dtype"])
        raw = _b64(val["data"])
        if len(raw) != dt.itemsize:
            raise DecodeError("numpy scalar data has the wrong size")
        return np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="))[0]
    if tag == "__sympy__":
        if type(val) is not str:
            raise DecodeError("bad sympy text")
        return decode_sympy(val)
    if tag == "__function__":
        if type(val) is not str:
            raise DecodeError("bad function name")
        if functions is None:
            return FunctionRef(val)
        if val not in functions:
            raise DecodeError(f"unknown test function {val!r}")
        return functions[val]
    if tag == "__unsupported__":
        if type(val) is not str:
            raise DecodeError("bad unsupported tag")
        return Unsupported(val[:200])
    raise DecodeError(f"unknown tag {tag[:40]!r}")


# ----------------------------------------------------------------------------- SymPy

#: Names that may be called in srepr text. Kept small: enough for activation/chain-rule algebra.
SYMPY_CALLS = frozenset({
    "Symbol", "Dummy", "Integer", "Rational", "Float", "Add", "Mul", "Pow",
    "exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "Abs", "sign",
    "Max", "Min", "Heaviside", "Piecewise", "ExprCondPair",
    "StrictLessThan", "LessThan", "StrictGreaterThan", "GreaterThan", "Equality", "Unequality",
    "And", "Or", "Not", "Function", "Derivative", "Tuple",
    "ImmutableDenseMatrix", "MutableDenseMatrix",
})
#: Bare names allowed in srepr text (SymPy singletons).
SYMPY_NAMES = frozenset({"pi", "E", "I", "oo", "zoo", "nan", "true", "false", "EulerGamma"})
#: Keyword arguments allowed, per constructor (Symbol/Dummy take boolean assumptions).
ASSUMPTIONS = frozenset({
    "real", "positive", "negative", "nonnegative", "nonpositive", "nonzero", "zero", "integer",
    "rational", "finite", "complex", "commutative", "extended_real", "imaginary", "even", "odd",
    "prime", "extended_positive", "extended_negative", "extended_nonnegative",
    "extended_nonpositive", "extended_nonzero", "infinite", "algebraic", "transcendental",
})
MAX_SYMPY_NODES = 20000
MAX_SYMPY_INT = 10**40
MAX_SYMPY_EXPONENT = 10**4


def _sympy_namespace():
    import sympy

    ns = {name: getattr(sympy, name) for name in SYMPY_CALLS if hasattr(sympy, name)}
    ns["ExprCondPair"] = sympy.functions.elementary.piecewise.ExprCondPair
    ns["Equality"], ns["Unequality"] = sympy.Eq, sympy.Ne
    ns["StrictLessThan"], ns["LessThan"] = sympy.StrictLessThan, sympy.LessThan
    ns["StrictGreaterThan"], ns["GreaterThan"] = sympy.StrictGreaterThan, sympy.GreaterThan
    names = {"pi": sympy.pi, "E": sympy.E, "I": sympy.I, "oo": sympy.oo, "zoo": sympy.zoo,
             "nan": sympy.nan, "true": sympy.true, "false": sympy.false,
             "EulerGamma": sympy.EulerGamma}
    return sympy, ns, names


def decode_sympy(text: str):
    """Rebuild a SymPy object from ``srepr`` text without evaluating the text.

    The text is parsed with :func:`ast.parse`; every call must name an allow-listed
    constructor (or be an undefined function ``Function('f')(...)``), every argument a
    literal, a list of those, or another allowed call. Anything else raises DecodeError.
    """
    if len(text) > 2_000_000:
        raise DecodeError("sympy text too long")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise DecodeError(f"sympy text does not parse: {type(exc).__name__}") from None
    sympy, ns, names = _sympy_namespace()
    count = [0]

    def literal(node):
        if isinstance(node, ast.Constant) and type(node.value) in (
                int, float, str, bool, type(None)):
            v = node.value
            if type(v) is int and abs(v) > MAX_SYMPY_INT:
                raise DecodeError("integer literal too large")
            if type(v) is str and len(v) > 1000:
                raise DecodeError("string literal too long")
            return v
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
                and isinstance(node.operand, ast.Constant)
                and type(node.operand.value) in (int, float)):
            v = literal(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        raise DecodeError(f"not allowed in sympy text: {type(node).__name__}")

    def build(node, depth=0):
        count[0] += 1
        if count[0] > MAX_SYMPY_NODES or depth > 200:
            raise DecodeError("sympy expression too large")
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise DecodeError(f"name {node.id[:40]!r} not allowed in sympy text")
            return names[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [build(e, depth + 1) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if not isinstance(node, ast.Call):
            return literal(node)
        if isinstance(node.func, ast.Call):  # Function('f')(x): apply an undefined function
            f = build(node.func, depth + 1)
            if not isinstance(f, sympy.core.function.UndefinedFunction):
                raise DecodeError("only undefined functions may be applied")
            if node.keywords:
                raise DecodeError("keywords not allowed here")
            return f(*[build(a, depth + 1) for a in node.args])
        if not isinstance(node.func, ast.Name) or node.func.id not in ns:
            what = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise DecodeError(f"call to {what[:40]!r} not allowed in sympy text")
        name = node.func.id
        args = [build(a, depth + 1) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise DecodeError("** not allowed in sympy text")
            value = literal(kw.value)
            if name in ("Symbol", "Dummy") and kw.arg in ASSUMPTIONS and type(value) is bool:
                kwargs[kw.arg] = value
            elif name == "Dummy" and kw.arg == "dummy_index" and type(value) is int:
                kwargs[kw.arg] = value
            elif (name == "Float" and kw.arg == "precision" and type(value) is int
                  and 1 <= value <= 1000):
                kwargs[kw.arg] = value
            else:
                raise DecodeError(f"keyword {kw.arg[:40]!r} not allowed for {name}")
        if name in ("Symbol", "Dummy", "Function"):
            if len(args) != 1 or type(args[0]) is not str:
                raise DecodeError(f"{name} takes one name string")
        elif name in ("Integer", "Rational"):
            if not args or not all(type(a) is int for a in args) or len(args) > 2:
                raise DecodeError(f"{name} takes integer literals")
        elif name == "Float":
            if len(args) != 1 or type(args[0]) not in (str, int, float):
                raise DecodeError("Float takes one literal")
            if type(args[0]) is str and len(args[0]) > 400:
                raise DecodeError("Float literal too long")
        elif any(type(a) is str for a in args):
            raise DecodeError(f"{name} does not take strings")
        if name == "Pow" and len(args) == 2:
            e = args[1]
            if getattr(e, "is_Integer", False) and abs(int(e)) > MAX_SYMPY_EXPONENT:
                raise DecodeError("exponent too large")
        try:
            return ns[name](*args, **kwargs)
        except DecodeError:
            raise
        except Exception as exc:  # noqa: BLE001 -- SymPy rejects malformed args many ways
            raise DecodeError(
                f"{name}(...) failed: {type(exc).__name__}: {str(exc)[:200]}") from None

    result = build(tree.body)
    if not isinstance(result, (sympy.Basic, sympy.MatrixBase)):
        raise DecodeError("sympy text did not give a SymPy object")
    return result
