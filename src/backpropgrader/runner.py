"""The program that runs *inside* the sandbox and executes the student's code.

It imports only the standard library, NumPy, IPython and the codec (copied next to it), never
the rest of backpropbook. Everything here is untrusted once student code has run: the grader
treats its answers as plain data and checks nothing else about it.

Usage (by :mod:`backpropgrader.sandbox`)::

    python runner.py --in-fd N --out-fd M [--functions MODULE:ATTR] [--seed DIR]
                     [--max-output BYTES] [--max-response BYTES]

Protocol: two private pipes, requests on ``--in-fd``, responses on ``--out-fd``. Each frame
is an 8-byte big-endian length followed by that many bytes of UTF-8 JSON. Student code
writing to stdout/stderr cannot reach them. After start-up the runner sends
``{"ok": true, "ready": true}`` (or ``{"ok": false, "error": ...}``), then one response per
request:

- ``{"op": "ping"}`` -> ``{"ok": true}``
- ``{"op": "run_cell", "source": str}`` -> ``{"ok": true, "stdout": str, "stderr": str,
  "truncated": bool, "error": null | {"ename", "evalue", "traceback"}}``; the cell runs
  through ``InteractiveShell.instance().run_cell`` so magics work.
- ``{"op": "call", "name": str, "args": codec, "kwargs": codec}`` -> ``{"ok": true, "value":
  codec, "stdout", "stderr", "truncated"}`` or ``{"ok": false, "kind": "student", "type": str,
  "message": str, "traceback": str}``. ``name`` may be dotted (``obj.method``); arguments
  ``{"__function__": name}`` resolve from the ``--functions`` registry. A call that changed
  its positional arguments in place adds ``"args_after"``: their codec text after the call
  (null if they no longer encode), so that the grader can see the change.
- ``{"op": "get", "name": str}`` -> ``{"ok": true, "value": codec}`` (or an error as above)

Other failures answer ``{"ok": false, "kind": "codec"|"limit"|"protocol", "message": str}``.
"""

import argparse
import io
import json
import os
import re
import shutil
import struct
import sys
import traceback
import warnings

try:  # imported as part of the package (tests), or as a script next to codec.py (sandbox)
    from backpropbook import codec
except ImportError:
    import codec

HEADER = struct.Struct(">Q")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TRUNCATED = "\n[output truncated]\n"


class BoundedWriter(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and drops the rest."""

    def __init__(self, limit):
        self.limit, self.parts, self.size, self.truncated = limit, [], 0, False

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = self.limit - self.size
        if len(s) > room:
            self.truncated = True
            s = s[:max(room, 0)]
        if s:
            self.parts.append(s)
            self.size += len(s)
        return len(s)

    def getvalue(self):
        return "".join(self.parts) + (TRUNCATED if self.truncated else "")


def read_exact(fd, n):
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def write_frame(fd, obj):
    data = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


class Runner:
    def __init__(self, args):
        self.args = args
        self.functions = None
        if args.functions:
            import importlib

            mod, _, attr = args.functions.partition(":")
            self.functions = dict(getattr(importlib.import_module(mod), attr or "FUNCTIONS"))
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        cfg = Config()
        cfg.HistoryManager.hist_file = ":memory:"
        cfg.InteractiveShell.colors = "nocolor"
        cfg.InteractiveShell.autocall = 0
        self.shell = InteractiveShell.instance(config=cfg)
        self.shell._showtraceback = self._record_traceback
        self.last_error = None

    # -- output capture ---------------------------------------------------------------
    def _record_traceback(self, etype, evalue, stb):
        try:
            text = ANSI.sub("", "\n".join(stb))
        except Exception:  # noqa: BLE001
            text = ""
        self.last_error = {"ename": _safe(lambda: etype.__name__),
                           "evalue": _safe(lambda: str(evalue)),
                           "traceback": text[: self.args.max_output]}

    def _capture(self):
        out, err = BoundedWriter(self.args.max_output), BoundedWriter(self.args.max_output)
        sys.stdout, sys.stderr = out, err
        return out, err

    def _release(self, out, err):
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        return {"stdout": out.getvalue(), "stderr": err.getvalue(),
                "truncated": out.truncated or err.truncated}

    # -- operations -------------------------------------------------------------------
    def op_ping(self, req):
        return {"ok": True}

    def op_run_cell(self, req):
        source = req.get("source")
        if not isinstance(source, str):
            return {"ok": False, "kind": "protocol", "message": "source must be a string"}
        self.last_error = None
        out, err = self._capture()
        try:
            self.shell.run_cell(source, store_history=True)
        finally:
            res = self._release(out, err)
        res.update(ok=True, error=self.last_error)
        return res

    def _lookup(self, name):
        if not isinstance(name, str) or not name:
            raise LookupError("name must be a non-empty string")
        head, *rest = name.split(".")
        if head not in self.shell.user_ns:
            raise NameError(f"name {head!r} is not defined")
        obj = self.shell.user_ns[head]
        for part in rest:
            obj = getattr(obj, part)
        return obj

    def _student_error(self, exc):
        return {"ok": False, "kind": "student", "type": _safe(lambda exc=exc: type(exc).__name__),
                "message": _safe(lambda exc=exc: str(exc))[:10000],
                "traceback":
                    _safe(lambda exc=exc: "".join(traceback.format_exception(exc)))[-20000:]}

    def _value(self, value, extra=None):
        try:
            text = codec.encode(value, functions=self.functions, max_bytes=self.args.max_response)
        except codec.EncodeError as exc:
            return {"ok": False, "kind": "limit", "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 -- student objects can raise anything
            why = _safe(lambda exc=exc: repr(exc))
            return {"ok": False, "kind": "codec", "message": f"cannot encode the value: {why}"}
        res = {"ok": True, "value": text}
        res.update(extra or {})
        return res

    def op_call(self, req):
        try:
            args = codec.decode(req.get("args") or "[]", functions=self.functions)
            kwargs = codec.decode(req.get("kwargs") or '{"__dict__": {}}', functions=self.functions)
        except codec.DecodeError as exc:
            return {"ok": False, "kind": "codec", "message": str(exc)}
        if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
            return {"ok": False, "kind": "protocol",
                    "message": "args must be a list, kwargs a dict"}
        before = self._encoded(args)
        out, err = self._capture()
        # Warnings the call raises travel back, so that a check can treat them as it would
        # in the student's own notebook (an overflow warning is a failed stability test).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fn = self._lookup(req.get("name"))
                value = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 -- SystemExit too is the student's error
                self._release(out, err)
                return self._student_error(exc)
        output = self._release(out, err)
        output["warnings"] = [[_safe(lambda w=w: w.category.__name__),
                               _safe(lambda w=w: str(w.message))[:1000]] for w in caught[:20]]
        after = self._encoded(args)
        if after != before:  # the call changed its arguments in place: say how
            output["args_after"] = after
        return self._value(value, output)

    def _encoded(self, args):
        """The arguments as codec text, or None if they cannot be encoded (any more)."""
        try:
            return codec.encode(list(args), functions=self.functions,
                                max_bytes=self.args.max_response)
        except Exception:  # noqa: BLE001 -- student objects put into them can raise anything
            return None

    def op_get(self, req):
        try:
            value = self._lookup(req.get("name"))
        except BaseException as exc:  # noqa: BLE001
            return self._student_error(exc)
        return self._value(value)

    def serve(self, in_fd, out_fd):
        while True:
            try:
                (n,) = HEADER.unpack(read_exact(in_fd, HEADER.size))
                req = json.loads(read_exact(in_fd, n).decode("utf-8"))
            except EOFError:
                return
            handler = (getattr(self, "op_" + str(req.get("op")), None) if isinstance(req, dict)
                       else None)
            if handler is None:
                res = {"ok": False, "kind": "protocol", "message": "unknown request"}
            else:
                try:
                    res = handler(req)
                except BaseException as exc:  # noqa: BLE001 -- keep serving whatever happens
                    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
                    why = _safe(lambda exc=exc: repr(exc))
                    res = {"ok": False, "kind": "protocol", "message": f"runner failed: {why}"}
            try:
                write_frame(out_fd, res)
            except ValueError:  # e.g. a surrogate in student text: say so rather than die
                write_frame(out_fd, {"ok": False, "kind": "codec",
                                     "message": "response not encodable"})


def _safe(fn):
    try:
        return str(fn())
    except BaseException:  # noqa: BLE001
        return "<unprintable>"


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--in-fd", type=int, required=True)
    p.add_argument("--out-fd", type=int, required=True)
    p.add_argument("--functions", default="")
    p.add_argument("--seed", default="")
    p.add_argument("--max-output", type=int, default=100_000)
    p.add_argument("--max-response", type=int, default=50_000_000)
    args = p.parse_args(argv)
    try:
        if args.seed and os.path.isdir(args.seed):
            for entry in os.scandir(args.seed):  # not copytree on the root: /home/student is root's
                dest = os.path.join(os.getcwd(), entry.name)
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), dest)
                elif entry.is_dir():
                    shutil.copytree(entry.path, dest, symlinks=True)
                else:
                    shutil.copy2(entry.path, dest)
        sys.path.append(os.getcwd())  # like a kernel started in the notebook's folder
        runner = Runner(args)
    except BaseException as exc:  # noqa: BLE001
        write_frame(args.out_fd, {"ok": False, "kind": "startup",
                                  "message": "".join(traceback.format_exception(exc))[-5000:]})
        return 1
    write_frame(args.out_fd, {"ok": True, "ready": True})
    runner.serve(args.in_fd, args.out_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
