"""The grading sandbox: real bubblewrap sandboxes, each test a few seconds at most.

These tests never skip: without bubblewrap/setpriv (``make debian-deps``) they fail and say so.
"""

import errno
import json
import math
import os
import pickle
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from backpropbook import codec
from backpropbook.scalar import chain_gradient
from backpropgrader import (
    FunctionRef,
    OutputLimit,
    ProtocolError,
    Sandbox,
    SandboxDied,
    SandboxUnavailable,
    StudentError,
    StudentTimeout,
    Unsupported,
    check_available,
)
from backpropgrader import kit as kit_module
from backpropgrader import sandbox as sandbox_module

pytestmark = pytest.mark.grading
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _tools():
    try:
        check_available()
    except SandboxUnavailable as exc:
        pytest.fail(f"{exc}", pytrace=False)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    path = kit_module.build(tmp_path_factory.mktemp("kit"))
    (path / "gradefuncs.py").write_text(
        "def cubic(x):\n    return x ** 3\n\nFUNCTIONS = {'cubic': cubic, 'neg': lambda x: -x}\n")
    os.chmod(path / "gradefuncs.py", 0o644)
    return path


@pytest.fixture
def sb(kit):
    with Sandbox(kit_dir=kit, cell_timeout=10, total_time=60, nproc=32) as box:
        yield box


def ok(box, source, **kw):
    res = box.run_cell(source, **kw)
    assert res.error is None, res.error
    return res.stdout


def test_cell_runs_and_output_is_captured(sb):
    res = sb.run_cell("import sys\nprint('hello')\nprint('warn', file=sys.stderr)\nx = 21\nx * 2")
    assert res.ok and res.stdout == "hello\nOut[1]: 42\n" and res.stderr == "warn\n"
    res = sb.run_cell("x / 0")
    assert res.error.ename == "ZeroDivisionError" and "x / 0" in res.error.traceback
    assert ok(sb, "%time y = x + 1\nprint(y)").endswith("22\n")  # magics work
    assert sb.run_cell("def f(:").error.ename == "SyntaxError"


def test_environment_inside(sb, monkeypatch):
    monkeypatch.setenv("NBGRADER_SECRET", "x")
    sb.restart()  # started after the variable was set
    env = json.loads(ok(sb, "import os, json; print(json.dumps(dict(os.environ)))"))
    assert not [k for k in env if k.startswith("NBGRADER")]
    assert env["HOME"] == "/home/student" and env["MPLBACKEND"] == "Agg"
    assert env["OMP_NUM_THREADS"] == "1" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["MPLCONFIGDIR"].startswith("/tmp/") and env["IPYTHONDIR"].startswith("/tmp/")
    where = ok(sb, "import os; print(os.getcwd(), os.getuid())").split()
    assert where == ["/home/student", str(sb.uid)]


def test_course_files_are_invisible(sb):
    paths = [REPO, REPO / "solutions", REPO / "src", REPO / "gradebook.db",
             REPO / "src/backpropbook/scalar.py",
             Path("/work/main/solutions"), Path("/work/main/src"), Path("/work/main/gradebook.db"),
             Path("/work"), Path("/root/.ssh"), Path("/farm"), Path("/mnt")]
    names = [str(p) for p in paths]
    seen = json.loads(ok(sb, f"import os, json\n"
                             f"print(json.dumps([os.path.lexists(p) for p in {names!r}]))"))
    assert not any(seen), [str(p) for p, s in zip(paths, seen) if s]
    listing = ok(sb, "import os; print(sorted(os.listdir('/opt')))").strip()
    assert listing == "['grader', 'kit', 'submission', 'venv']"


def test_writes_outside_home_and_tmp_fail(sb):
    out = ok(sb, """
import os
bad = []
for p in ['/x', '/etc/x', '/usr/x', '/opt/x', '/opt/kit/x', '/opt/venv/x', '/opt/grader/runner.py',
          '/opt/submission/x', '/home/x', '/root/x', '/dev/shm/x', '/proc/x']:
    try:
        open(p, 'a').close()
        bad.append(p)
    except OSError:
        pass
open('/home/student/ok.txt', 'w').write('fine')
open('/tmp/ok.txt', 'w').write('fine')
print(bad)
""")
    assert out.strip() == "[]"


def test_tmp_is_private_to_each_sandbox(sb, kit):
    ok(sb, "open('/tmp/marker', 'w').write('first')\n"
           "open('/home/student/marker', 'w').write('first')")
    with Sandbox(kit_dir=kit) as other:
        assert other.uid != sb.uid
        seen = ok(other, "import os\nprint(os.path.exists('/tmp/marker'),"
                         " os.path.exists('/home/student/marker'))")
        assert seen.strip() == "False False"
    sb.restart()
    assert ok(sb, "import os; print(os.path.exists('/tmp/marker'))").strip() == "False"


def test_submission_is_copied_in(kit, tmp_path):
    (tmp_path / "data.txt").write_text("42")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "helper.py").write_text("VALUE = 7\n")
    (tmp_path / "link").symlink_to("/etc/hostname")
    os.chmod(tmp_path, 0o700)
    with Sandbox(tmp_path, kit) as box:
        seen = ok(box, "import os\nprint(open('data.txt').read(), sorted(os.listdir('.')))")
        assert seen.strip() == "42 ['data.txt', 'link', 'sub']"
        ok(box, "open('data.txt', 'w').write('changed')")
    assert (tmp_path / "data.txt").read_text() == "42"  # the sandbox only ever had a copy


def test_no_network(sb):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        out = ok(sb, f"""
import json, socket
codes = []
for addr in [('127.0.0.1', {port}), ('1.1.1.1', 80), ('8.8.8.8', 53)]:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(addr)
        codes.append('connected')
    except OSError as e:
        codes.append(e.errno)
print(json.dumps(codes))
""")
    finally:
        listener.close()
    codes = json.loads(out)
    assert "connected" not in codes and errno.ENETUNREACH in codes


def test_only_the_kit_is_importable(sb):
    # The student package is the kit's copy, whole when nothing is withheld ...
    where = ok(sb, "import backpropbook, backpropbook.scalar as s\n"
                   "print(backpropbook.__file__, s.__file__)")
    assert where.split() == ["/opt/kit/backpropbook/__init__.py", "/opt/kit/backpropbook/scalar.py"]
    assert ok(sb, "import backpropbook.activations as a\nprint(float(a.sigmoid(0.0)))") == "0.5\n"
    out = ok(sb, "from backpropbook.scalar import chain_gradient\n"
                 "print(chain_gradient(1.0, [0.5, -2.0], 1.0).tolist())")
    assert json.loads(out) == chain_gradient(1.0, [0.5, -2.0], 1.0).tolist()
    # ... and the instructor side (grader, engine, task declarations) is not there at all.
    for module in ["backpropgrader", "backpropgrader.tasks", "backpropgrader.engine"]:
        res = sb.run_cell(f"import {module}")
        assert res.error is not None and res.error.ename == "ModuleNotFoundError", module


@pytest.fixture(scope="module")
def withheld_kit(tmp_path_factory):
    return kit_module.build(tmp_path_factory.mktemp("withheld"), ["backpropbook.scalar", "torch"])


def test_withheld_modules_are_stubs(withheld_kit):
    assert (withheld_kit / "backpropbook" / "scalar.py").read_text() != (
        Path(kit_module.PACKAGE) / "scalar.py").read_text()
    assert (withheld_kit / "backpropbook" / "activations.py").read_text() == (
        Path(kit_module.PACKAGE) / "activations.py").read_text()
    with Sandbox(kit_dir=withheld_kit, cell_timeout=20) as box:
        # A student's import line still runs, but using the reference code says why it fails ...
        res = box.run_cell("from backpropbook.scalar import chain_backward\n"
                           "chain_backward([1.0], [0.0], [1.0, 0.5], 0.0)")
        assert res.error is not None and res.error.ename == "RuntimeError"
        assert res.error.evalue == ("backpropbook.scalar.chain_backward is the book's reference "
                                    "implementation and is not available while grading: write "
                                    "the computation yourself")
        # ... its source is nowhere to be read ...
        out = ok(box, "import inspect, backpropbook.scalar as s\nprint(inspect.getsource(s))")
        assert "delta" not in out and "get_activation" not in out
        # ... a module that is not withheld works as in the book ...
        out = ok(box, "from backpropbook.activations import sigmoid\nprint(float(sigmoid(0.0)))")
        assert out == "0.5\n"
        # ... and torch, withheld too, fails on import, saying why.
        res = box.run_cell("import torch")
        assert res.error is not None and res.error.ename == "ImportError"
        assert "NumPy" in res.error.evalue


def test_torch_is_there_unless_withheld(sb):
    assert ok(sb, "import torch\nprint(torch.tensor([2.0]).item())") == "2.0\n"


# Student code that takes the kit off sys.path and imports torch again.
AROUND_THE_STUB = """import sys
sys.path = [p for p in sys.path if not p.startswith("/opt/kit")]
sys.modules.pop("torch", None)
import torch
print(torch.tensor([2.0]).item())"""


def test_withheld_torch_stays_withheld_off_the_kit_path(withheld_kit):
    # The stub first on the path alone leaves the virtualenv's torch within reach ...
    with Sandbox(kit_dir=withheld_kit, cell_timeout=30) as box:
        assert ok(box, AROUND_THE_STUB) == "2.0\n"
    # ... the kit's covers show the stub over torch's own folder: nothing else is left.
    covers = kit_module.covers(withheld_kit, ["backpropbook.scalar", "torch"])
    assert [shown.name for shown in covers.values()] == ["torch"]
    assert kit_module.covers(withheld_kit, ["backpropbook.scalar"]) == {}
    with Sandbox(kit_dir=withheld_kit, cell_timeout=30, covers=covers) as box:
        res = box.run_cell(AROUND_THE_STUB)
        assert res.error is not None and res.error.ename == "ImportError"
        assert "torch is not available while grading" in res.error.evalue
        # the rest of the virtualenv is as it was
        assert ok(box, "import numpy\nprint(numpy.__file__)").startswith("/opt/venv/")


def test_fork_bomb_is_contained_and_cleaned_up(kit):
    box = Sandbox(kit_dir=kit, nproc=24, cell_timeout=10)
    uid = box.uid
    try:
        out = ok(box, """
import os, time
n, err = 0, None
while n < 500:
    try:
        pid = os.fork()
    except OSError as e:
        err = e.errno
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    n += 1
print(n, err)
""")
        n, err = out.split()
        assert int(n) < 24 and int(err) == errno.EAGAIN
        assert 0 < len(sandbox_module._uid_processes(uid)) <= 24
        with pytest.raises(StudentTimeout):
            box.run_cell("import os\nwhile True:\n    try:\n        os.fork()\n"
                         "    except OSError:\n        pass", timeout=1.5)
    finally:
        box.close()
    assert sandbox_module._uid_processes(uid) == []


def test_memory_bomb_gives_memory_error(sb):
    for cell in ["x = bytearray(8 << 30)", "import numpy as np\nx = np.ones(1 << 30)"]:
        res = sb.run_cell(cell)
        assert res.error is not None and res.error.ename == "MemoryError", res
    assert ok(sb, "print('alive')") == "alive\n"


def test_infinite_loop_times_out_and_restart_is_fresh(sb):
    ok(sb, "value = 1")
    t = time.monotonic()
    with pytest.raises(StudentTimeout):
        sb.run_cell("while True:\n    pass", timeout=1)
    assert time.monotonic() - t < 5
    with pytest.raises(SandboxDied):
        sb.run_cell("print(1)")
    sb.restart()
    res = sb.run_cell("value")
    assert res.error is not None and res.error.ename == "NameError"
    assert ok(sb, "print('fresh')") == "fresh\n"


def test_total_time_budget(kit):
    with Sandbox(kit_dir=kit, total_time=1.0) as box:
        ok(box, "import time; time.sleep(0.6)")
        with pytest.raises(StudentTimeout, match="total"):
            box.run_cell("time.sleep(0.6)")
        box.restart()
        with pytest.raises(StudentTimeout, match="total"):
            box.run_cell("print(1)")


def test_exit_code_and_signal_are_reported(sb):
    with pytest.raises(SandboxDied) as info:
        sb.run_cell("import os\nos._exit(3)")
    assert info.value.returncode == 3 and info.value.signal is None
    sb.restart()
    with pytest.raises(SandboxDied) as info:
        sb.run_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert info.value.signal == 9
    sb.restart()
    assert ok(sb, "print('back')") == "back\n"


def test_huge_output_is_truncated(kit):
    with Sandbox(kit_dir=kit, cell_output=1000, total_output=5000, raw_output=4096) as box:
        res = box.run_cell("print('x' * 10_000_000)")
        assert res.truncated and len(res.stdout) < 1100
        assert res.stdout.endswith("[output truncated]\n")
        res = box.run_cell("import os\nfor _ in range(200):\n    os.write(1, b'y' * 500_000)\n"
                           "print('done')")
        assert res.ok and res.stdout == "done\n"
        assert 0 < len(box.raw_output()) <= 2 * 4096
        for _ in range(6):
            box.run_cell("print('z' * 900)")
        assert box.output_used <= 5000 + 100
        ok(box, "def length(v):\n    return len(v)")
        assert box.call("length", [[1, 2, 3]]) == 3


def test_calls_round_trip_plain_data(sb):
    ok(sb, """
import numpy as np, sympy as sp
def echo(*args, **kwargs):
    return args, kwargs
def sigmoid_expr():
    z = sp.Symbol('z', real=True)
    return 1 / (1 + sp.exp(-z))
def forward(x, w):
    return np.tanh(w @ x), float(np.sum(x))
""")
    args = [np.arange(6, dtype=np.float64).reshape(2, 3), np.array([1, 2], dtype=np.int32),
            np.array([True, False]), np.array([1 + 2j]), np.float32(1.5), (1, "two", [3.0, None]),
            {"nested": {"k": (float("inf"), -0.0)}}, float("nan"), 10 ** 30, "naïve ✓"]
    back_args, back_kwargs = sb.call("echo", args, {"kw": np.eye(2)})
    assert isinstance(back_args, tuple) and len(back_args) == len(args)
    for a, b in zip(args[:4], back_args[:4]):
        assert type(b) is np.ndarray and b.dtype == a.dtype and b.shape == a.shape
        assert np.array_equal(a, b)
    assert type(back_args[4]) is np.float32 and back_args[4] == np.float32(1.5)
    assert back_args[5] == (1, "two", [3.0, None])
    assert back_args[6] == {"nested": {"k": (math.inf, -0.0)}}
    assert math.isnan(back_args[7]) and back_args[8] == 10 ** 30 and back_args[9] == "naïve ✓"
    assert np.array_equal(back_kwargs["kw"], np.eye(2))
    assert sb.last_args_after is None  # echo changes nothing
    expr = sb.call("sigmoid_expr")
    z = sp.Symbol("z", real=True)
    assert sp.simplify(expr - 1 / (1 + sp.exp(-z))) == 0
    out, total = sb.call("forward", [np.array([1.0, 2.0]), np.array([[0.5, -0.5], [1.0, 0.0]])])
    np.testing.assert_allclose(out, np.tanh([-0.5, 1.0]))
    assert total == 3.0
    with pytest.raises(StudentError) as info:
        sb.call("forward", ["oops", 1])
    assert info.value.type in ("TypeError", "ValueError")
    with pytest.raises(StudentError) as info:
        sb.call("no_such_function")
    assert info.value.type == "NameError"
    assert sb.get("np.pi") == math.pi


def test_a_call_that_changes_its_arguments_in_place_says_so(sb):
    ok(sb, """
import numpy as np
def scale_in_place(x, table, n):
    x *= 2.0
    table["seen"] = True
    return n + 1
def untouched(x, table, n):
    return float(x.sum())
def poisoned(x, table, n):
    table["object"] = object()
    return 0
""")
    x, table = np.array([1.0, -2.0]), {"k": [np.zeros(2)]}
    assert sb.call("untouched", [x, table, 3]) == -1.0 and sb.last_args_after is None
    assert sb.call("scale_in_place", [x, table, 3]) == 4
    after_x, after_table, after_n = sb.last_args_after
    assert np.array_equal(after_x, [2.0, -4.0]) and after_n == 3
    assert after_table == {"k": after_table["k"], "seen": True}
    assert np.array_equal(x, [1.0, -2.0])  # the sandbox only reports; the caller decides
    sb.call("poisoned", [x, table, 3])
    assert isinstance(sb.last_args_after[1]["object"], codec.Unsupported)


def test_write_back_leaves_the_callers_arguments_as_an_in_process_call_would():
    from backpropgrader.evaluate import write_back

    x, rows, table = np.array([1.0, 2.0]), [np.zeros(2), 1.0], {"a": np.ones(1), "gone": 1}
    inner = rows[0]
    assert write_back([x, rows, table, 5], [np.array([3.0, 4.0]), [np.array([7.0, 8.0]), 2.0],
                                            {"a": np.array([9.0]), "new": "n"}, 5])
    assert np.array_equal(x, [3.0, 4.0]) and rows[0] is inner and np.array_equal(inner, [7, 8])
    assert rows[1] == 2.0 and table == {"a": table["a"], "new": "n"}
    assert np.array_equal(table["a"], [9.0])
    # the arguments themselves (a tuple): what cannot change in place fails
    assert not write_back((x,), codec.Unsupported("object"))
    assert not write_back((x,), [np.zeros(3)])  # a new shape cannot be written in place
    rows = [x]
    assert write_back(rows, [np.zeros(3)]) and rows[0].shape == (3,)  # a list item is replaced
    y = (np.zeros(1),)
    assert write_back(y, (np.ones(1),)) and y[0][0] == 1.0


def test_student_objects_never_reach_the_trusted_side(sb):
    ok(sb, """
import numpy as np, sympy as sp
class Liar(np.ndarray):
    def __eq__(self, other): return np.ones(np.shape(self), bool)
    def __array_finalize__(self, obj): pass
class AlwaysEqual:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
class Float(float):
    def __eq__(self, other): return True
class EvilSymbol(sp.Symbol):
    def __eq__(self, other): return True
def liar(): return np.zeros(3).view(Liar)
def always(): return AlwaysEqual()
def fake_float(): return Float(0.0)
def evil_symbol(): return EvilSymbol('x')
def obj_array(): return np.array([AlwaysEqual()], dtype=object)
def gen(): return (i for i in range(3))
""")
    arr = sb.call("liar")
    assert type(arr) is np.ndarray and not np.array_equal(arr, np.ones(3))
    assert sb.call("always") == Unsupported("__main__.AlwaysEqual") and sb.call("always") != 0
    assert isinstance(sb.call("fake_float"), Unsupported)
    assert isinstance(sb.call("obj_array"), Unsupported)
    assert isinstance(sb.call("gen"), Unsupported)
    with pytest.raises(ProtocolError, match="EvilSymbol"):
        sb.call("evil_symbol")


def test_monkeypatching_numpy_inside_changes_nothing_outside(sb):
    original = np.allclose
    ok(sb, """
import numpy as np
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.array_equal = lambda *a, **k: True
get_ipython().input_transformers_post.append(lambda lines: lines)
def wrong():
    return np.zeros(3)
""")
    result = sb.call("wrong")
    assert np.allclose is original
    assert not np.allclose(result, np.ones(3))
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(result, np.ones(3))


def test_sabotaging_the_runner_only_breaks_the_sandbox(sb):
    with pytest.raises((SandboxDied, ProtocolError)):  # never a value the grader could accept
        sb.run_cell("import builtins\nbuiltins.isinstance = lambda *a: True\n"
                    "def answer():\n    return 42")
        sb.call("answer")


def test_test_functions_are_resolved_by_name(kit):
    with Sandbox(kit_dir=kit, functions="gradefuncs:FUNCTIONS") as box:
        ok(box, "def apply(f, x):\n    return f(x)")
        assert box.call("apply", [FunctionRef("cubic"), 2.0]) == 8.0
        assert box.call("apply", [FunctionRef("neg"), 2]) == -2
        with pytest.raises(ProtocolError, match="unknown test function"):
            box.call("apply", [FunctionRef("nope"), 2])


def test_response_limit(kit):
    with Sandbox(kit_dir=kit, response_bytes=10_000) as box:
        ok(box, "import numpy as np\ndef big():\n    return np.zeros(100_000)")
        with pytest.raises(OutputLimit):
            box.call("big")
        assert ok(box, "print('still here')") == "still here\n"


def test_missing_bwrap_is_reported(monkeypatch):
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="bwrap.*bubblewrap"):
        check_available()


# ----------------------------------------------------------------------------- codec only


@pytest.mark.parametrize("text", [
    "__import__('os').system('touch /tmp/pwned')",
    "Symbol('x').__class__.__base__",
    "eval('1')",
    "Symbol(__import__('os'))",
    "Add(Symbol('x'), lambda: 1)",
    "Function('f').__call__(Integer(1))",
    "sympify('x')",
    "Symbol('x', evaluate=True)",
    "Symbol('x', real=__import__('os'))",
    "x",
    "Integer(1) + Integer(2)",
    "[c for c in ()]",
    "Pow(Integer(2), Pow(Integer(2), Pow(Integer(2), Integer(4))))",
    "Integer(" + "9" * 200 + ")",
    "Float('1.0', precision=10**9)",
    "Add(" * 500 + ")" * 500,
])
def test_codec_rejects_unsafe_sympy_text(text):
    with pytest.raises(codec.DecodeError):
        codec.decode(json.dumps({"__sympy__": text}))
    assert not os.path.exists("/tmp/pwned")


def test_codec_never_unpickles(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    monkeypatch.setattr(np, "load", boom)
    value = {"a": np.arange(4.0), "b": (np.int64(3), 1.5), "c": sp.Symbol("x") ** 2}
    back = codec.decode(codec.encode(value))
    assert np.array_equal(back["a"], value["a"])
    assert back["b"] == (3, 1.5) and back["c"] == value["c"]
    assert back["a"].flags.writeable and back["a"].flags.owndata
    assert codec.to_plain(np.array([object()], dtype=object)) == {
        "__unsupported__": "numpy.ndarray of dtype object"}
    pickled = pickle.dumps(np.arange(3))
    import base64
    data = base64.b64encode(pickled).decode()
    for bad in [{"__ndarray__": {"dtype": "object", "shape": [1], "data": data}},
                {"__ndarray__": {"dtype": "float64", "shape": [3], "data": data}},
                {"__ndarray__": {"dtype": "float64", "shape": [-1], "data": ""}},
                {"__npscalar__": {"dtype": "O", "data": ""}},
                {"__tuple__": [], "extra": 1},
                {"__class__": "os.system"},
                {"plain": "dict"}]:
        with pytest.raises(codec.DecodeError):
            codec.decode(json.dumps(bad))
    with pytest.raises(codec.DecodeError):
        codec.decode("NaN")
    with pytest.raises(codec.DecodeError):
        codec.decode('{"__function__": "cubic"}', functions={})


def test_codec_size_limits():
    with pytest.raises(codec.EncodeError):
        codec.encode(np.zeros(10_000), max_bytes=1000)
    with pytest.raises(codec.DecodeError):
        codec.decode(codec.encode(np.zeros(1000)), max_bytes=100)
    nested = []
    for _ in range(200):
        nested = [nested]
    with pytest.raises(codec.EncodeError):
        codec.encode(nested)
