"""Run untrusted student code in a bubblewrap sandbox and talk to it in plain data.

A :class:`Sandbox` starts ``runner.py`` (see its docstring for the wire protocol) as::

    bwrap <namespaces, read-only system + Python, tmpfs /tmp and /home/student> \\
        setpriv --reuid=UID ... python /opt/grader/runner.py --in-fd N --out-fd M

Inside, the filesystem holds only: /usr, /etc and the top-level /bin, /lib* links (read-only);
the base Python at its own path and the virtualenv at /opt/venv (read-only); /opt/grader
(runner + codec), /opt/kit (the student kit: the only part of our package the student may
import, on PYTHONPATH) and /opt/submission (a copy of the submission), all read-only; a fresh
size-limited tmpfs at /tmp and at /home/student (the working directory, seeded from
/opt/submission). There is no network, the process runs as an unprivileged uid of its own
(one per live sandbox, claimed with a lock file, so RLIMIT_NPROC is per sandbox) with no
capabilities, and rlimits bound memory, processes, file size, open files and CPU time.

The parent enforces wall-clock limits per cell/call and per submission; on a timeout it kills
the whole sandbox (:meth:`Sandbox.restart` starts a fresh one). Results arrive as codec JSON
and are decoded here with this process's own NumPy/SymPy: the trusted side never holds an
object the student made.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from backpropbook import codec

__all__ = [
    "Sandbox", "CellResult", "CellError", "check_available",
    "SandboxError", "SandboxUnavailable", "StudentError", "StudentTimeout", "SandboxDied",
    "OutputLimit", "ProtocolError",
]

HEADER = struct.Struct(">Q")
HERE = Path(__file__).resolve().parent
UID_BASE, UID_COUNT = 60001, 1000
LOCK_DIR = Path(tempfile.gettempdir()) / "backpropbook-grader-uids"
GiB, MiB = 1 << 30, 1 << 20


class SandboxError(Exception):
    """Base class for everything the sandbox raises."""


class SandboxUnavailable(SandboxError):
    """The machine lacks what the sandbox needs (bwrap, setpriv, root)."""


class StudentError(SandboxError):
    """Student code raised an exception during a call (its type name, message, traceback text)."""

    def __init__(self, type: str, message: str, traceback: str = ""):
        super().__init__(f"{type}: {message}")
        self.type, self.message, self.traceback = type, message, traceback


class StudentTimeout(SandboxError):
    """A cell or call ran past its time limit, or the submission's total time ran out."""


class SandboxDied(SandboxError):
    """The sandbox process ended (``returncode``; ``signal`` if it was killed by one)."""

    def __init__(self, reason: str, returncode: int | None = None, signal: int | None = None):
        super().__init__(reason)
        self.reason, self.returncode, self.signal = reason, returncode, signal


class OutputLimit(SandboxError):
    """A response was larger than the configured limit."""


class ProtocolError(SandboxError):
    """The sandbox answered something malformed (or a value failed to decode)."""


@dataclass
class CellError:
    ename: str
    evalue: str
    traceback: str


@dataclass
class CellResult:
    stdout: str
    stderr: str
    error: CellError | None
    truncated: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


def check_available() -> tuple[str, str]:
    """Return the paths of bwrap and setpriv, or raise SandboxUnavailable saying what's missing."""
    missing = [f"{tool} (Debian package {pkg})"
               for tool, pkg in (("bwrap", "bubblewrap"), ("setpriv", "util-linux"))
               if shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailable("grading sandbox needs " + " and ".join(missing)
                                 + "; run `make debian-deps` as root")
    if os.geteuid() != 0:
        raise SandboxUnavailable("grading sandbox must run as root "
                                 "(it switches to an unprivileged uid with setpriv)")
    return shutil.which("bwrap"), shutil.which("setpriv")


def _no_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def _uid_processes(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == uid:
                                pids.append(int(entry))
                            break
            except OSError:
                pass
    return pids


def _claim_uid() -> tuple[int, int]:
    """Claim a free sandbox uid (a flock'ed file per uid, so it works across processes)."""
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    for uid in range(UID_BASE, UID_BASE + UID_COUNT):
        fd = os.open(LOCK_DIR / f"{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if _uid_processes(uid):  # leftovers of a crashed grader: leave this uid alone
            os.close(fd)
            continue
        return uid, fd
    raise SandboxUnavailable("no free sandbox uid")


def _inside(path) -> str | None:
    """Where the sandbox shows ``path`` of this process's Python: the virtualenv at /opt/venv,
    the base Python and /usr where they are; None if the sandbox does not show it."""
    real = os.path.realpath(path)
    places = [(sys.base_prefix, sys.base_prefix), ("/usr", "/usr")]
    if sys.prefix != sys.base_prefix:
        places.insert(0, (sys.prefix, "/opt/venv"))
    for prefix, there in places:
        root = os.path.realpath(prefix).rstrip("/")
        if real == root or real.startswith(root + "/"):
            return there.rstrip("/") + real[len(root):]
    return None


def _make_readable(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o644 | (0o111 if os.stat(p).st_mode & 0o100 else 0))


class _Drain(threading.Thread):
    """Reads a pipe to EOF, keeping at most ``cap`` bytes (the rest is discarded)."""

    def __init__(self, stream, cap):
        super().__init__(daemon=True)
        self.stream, self.cap, self.data, self.dropped = stream, cap, bytearray(), 0

    def run(self):
        try:
            while chunk := self.stream.read1(1 << 16):
                room = self.cap - len(self.data)
                self.data += chunk[:max(room, 0)]
                self.dropped += max(len(chunk) - max(room, 0), 0)
        except (OSError, ValueError):
            pass


class Sandbox:
    """One sandboxed student process. Use as a context manager, or call :meth:`close`.

    ``submission_dir`` is copied (symlinks kept as links) to /home/student; ``kit_dir`` (see
    :func:`backpropgrader.kit.build`) is the only code of ours the student can import; ``functions``
    is ``"module:ATTR"``, a name -> function mapping importable from the kit, used to resolve
    ``{"__function__": name}`` arguments in the sandbox (and, if importable here too, to send
    those functions by name). Limits: seconds per cell/call (``cell_timeout``) and per
    submission (``total_time``, across restarts), bytes of address space per process
    (``memory``), processes/threads of the sandbox uid (``nproc``), bytes per file
    (``file_size``), tmpfs bytes for /tmp and for /home/student (``disk``), captured output
    characters per cell (``cell_output``) and in total (``total_output``), response bytes
    (``response_bytes``), bytes kept from the raw stdout/stderr file descriptors (``raw_output``).
    ``covers`` maps a folder of the grader's Python or virtualenv (as this process names it) to
    a folder shown in its place, read-only: the kit's torch stub over the real torch, which
    student code could otherwise import by taking /opt/kit off ``sys.path``.
    """

    def __init__(self, submission_dir=None, kit_dir=None, *, functions: str | None = None,
                 cell_timeout: float = 30.0, total_time: float = 600.0, memory: int = 4 * GiB,
                 nproc: int = 64, file_size: int = 64 * MiB, disk: int = 256 * MiB,
                 cell_output: int = 100_000, total_output: int = 1_000_000,
                 response_bytes: int = 32 * MiB, raw_output: int = 64 * 1024,
                 startup_timeout: float = 60.0, covers: dict | None = None):
        self.bwrap, self.setpriv = check_available()
        self.cell_timeout, self.total_time = cell_timeout, total_time
        self.memory, self.nproc, self.file_size, self.disk = memory, nproc, file_size, disk
        self.cell_output, self.total_output = cell_output, total_output
        self.response_bytes, self._raw_cap, self.startup_timeout = (response_bytes, raw_output,
                                                                    startup_timeout)
        self.functions = functions
        self.covers = {Path(hidden): Path(shown) for hidden, shown in (covers or {}).items()}
        self.time_used = 0.0
        self.last_warnings = []  # (category name, message) of the last call's warnings
        self.last_args_after = None  # the last call's arguments if it changed them in place
        self.output_used = 0
        self.proc = None
        self._registry = None
        if functions:
            try:
                import importlib

                mod, _, attr = functions.partition(":")
                self._registry = dict(getattr(importlib.import_module(mod), attr or "FUNCTIONS"))
            except Exception:  # noqa: BLE001 -- only a convenience for encoding functions by name
                self._registry = None
        self.uid, self._lock_fd = _claim_uid()
        try:
            self._tmp = Path(tempfile.mkdtemp(prefix="bpgrader-"))
            runtime = self._tmp / "runtime"
            runtime.mkdir()
            shutil.copyfile(HERE / "runner.py", runtime / "runner.py")
            shutil.copyfile(codec.__file__, runtime / "codec.py")
            seed = self._tmp / "seed"
            if submission_dir is not None:
                shutil.copytree(submission_dir, seed, symlinks=True)
            else:
                seed.mkdir()
            _make_readable(runtime)
            _make_readable(seed)
            self.kit_dir = Path(kit_dir) if kit_dir is not None else None
            if self.kit_dir is not None:
                os.chmod(self.kit_dir, 0o755)
            self._binds = [(runtime, "/opt/grader"), (seed, "/opt/submission")]
            if self.kit_dir is not None:
                self._binds.append((self.kit_dir, "/opt/kit"))
            self._start()
        except BaseException:
            self.close()
            raise

    # -- process management -----------------------------------------------------------
    def command(self, in_fd: int, out_fd: int) -> list[str]:
        """The full bwrap command line for this sandbox (fds: the runner's request/response
        pipes)."""
        cmd = [self.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
               "--unshare-cgroup-try", "--die-with-parent", "--new-session",
               "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
            if os.path.islink(top):
                cmd += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                cmd += ["--ro-bind", top, top]
        binds = [(Path(sys.base_prefix), sys.base_prefix)]
        python = sys.executable
        # a virtualenv: bound at /opt/venv, the repo stays invisible
        if sys.prefix != sys.base_prefix:
            binds.append((Path(sys.prefix), "/opt/venv"))
            python = "/opt/venv/bin/" + os.path.basename(sys.executable)
        binds += self._binds
        mounted = ["/usr", "/etc"]
        made = set()
        for src, dest in binds:
            if any(dest == m or dest.startswith(m.rstrip("/") + "/") for m in mounted):
                if str(src) == dest:
                    continue  # already visible through a parent bind (e.g. a Python under /usr)
                raise SandboxUnavailable(f"cannot bind {src} at {dest}: inside a read-only bind")
            for parent in reversed(Path(dest).parents[:-1]):
                if str(parent) not in made:
                    made.add(str(parent))
                    cmd += ["--perms", "0755", "--dir", str(parent)]
            cmd += ["--ro-bind", str(src), dest]
            mounted.append(dest)
        for hidden, shown in self.covers.items():
            inside = _inside(hidden)
            if inside is not None:  # a folder the sandbox shows: the cover goes on top of it
                cmd += ["--ro-bind", str(shown), inside]
        real = os.path.realpath(sys.executable)
        if (not any(real.startswith(str(s).rstrip("/") + "/") for s, d in binds[:1])
                and not real.startswith("/usr/")):
            raise SandboxUnavailable(f"the Python binary {real} is outside {sys.base_prefix} "
                                     "and /usr")
        cmd += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "01777", "--size", str(self.disk), "--tmpfs", "/tmp",
                "--perms", "0755", "--dir", "/home",
                "--perms", "01777", "--size", str(self.disk), "--tmpfs", "/home/student",
                "--chdir", "/home/student"]
        setpriv = self.setpriv if self.setpriv.startswith("/usr/") else "setpriv"
        cmd += [setpriv, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                python, "/opt/grader/runner.py", "--in-fd", str(in_fd), "--out-fd", str(out_fd),
                "--seed", "/opt/submission", "--max-output", str(self.cell_output),
                "--max-response", str(self.response_bytes)]
        if self.functions:
            cmd += ["--functions", self.functions]
        return cmd

    def _environment(self) -> dict:
        env = {
            "PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/home/student", "USER": "student", "LANG": "C.UTF-8", "TERM": "dumb",
            "TMPDIR": "/tmp", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
            "IPYTHONDIR": "/tmp/ipython", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
            "PYTHONHASHSEED": "0",
        }
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
            env[var] = "1"
        if self.kit_dir is not None:
            env["PYTHONPATH"] = "/opt/kit"
        return env

    def _set_limits(self):  # runs in the child between fork and exec
        cpu = int(self.total_time + 60)
        for res, value in ((resource.RLIMIT_AS, self.memory), (resource.RLIMIT_NPROC, self.nproc),
                           (resource.RLIMIT_FSIZE, self.file_size), (resource.RLIMIT_CORE, 0),
                           (resource.RLIMIT_NOFILE, 1024), (resource.RLIMIT_CPU, cpu)):
            resource.setrlimit(res, (value, value))

    def _start(self):
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                self.command(req_r, resp_w), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, pass_fds=(req_r, resp_w), env=self._environment(),
                preexec_fn=self._set_limits, start_new_session=True)
        finally:
            os.close(req_r)
            os.close(resp_w)
        self._drains = [_Drain(self.proc.stdout, self._raw_cap),
                        _Drain(self.proc.stderr, self._raw_cap)]
        for d in self._drains:
            d.start()
        try:
            ready = self._receive(time.monotonic() + self.startup_timeout, count_time=False)
        except StudentTimeout:
            self._kill()
            raise SandboxDied(f"sandbox did not start within {self.startup_timeout} s") from None
        if not ready.get("ok"):
            self._kill()
            raise SandboxDied("sandbox runner failed to start:\n"
                              + str(ready.get("message", ""))[-3000:])

    def _kill(self):
        """Kill the sandbox (whole process group, then anything left with its uid) and reap it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 5
        while (pids := _uid_processes(self.uid)) and time.monotonic() < deadline:
            for pid in pids:  # the namespace dies with bwrap; this is the belt to those braces
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        for d in self._drains:
            d.join(timeout=2)
        for fd in (self._req_w, self._resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        proc.stdout.close()
        proc.stderr.close()

    def raw_output(self) -> str:
        """What the sandbox wrote to its real stdout/stderr fds (C-level output), capped."""
        return b"".join(bytes(d.data)
                        for d in getattr(self, "_drains", [])).decode("utf-8", "replace")

    def restart(self):
        """Kill the sandbox and start a fresh one from the submission (time used carries over)."""
        self._kill()
        self._start()

    def close(self):
        """Kill every process of the sandbox and remove its files. Safe to call twice."""
        if getattr(self, "proc", None) is not None:
            self._kill()
        if getattr(self, "_tmp", None) is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if getattr(self, "_lock_fd", None) is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # -- protocol -----------------------------------------------------------------------
    def _died(self, what: str):
        proc = self.proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        self._kill()
        sig = (code - 128 if code is not None and code > 128
               else (-code if code is not None and code < 0 else None))
        detail = f"killed by signal {sig}" if sig else f"exit code {code}"
        raise SandboxDied(f"sandbox died {what} ({detail})", returncode=code, signal=sig)

    def _send(self, obj, deadline):
        data = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
        view = memoryview(HEADER.pack(len(data)) + data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._req_w], [], left)[1]:
                raise StudentTimeout("sandbox did not accept the request in time")
            try:
                view = view[os.write(self._req_w, view[:65536]):]
            except BrokenPipeError:
                self._died("before the request was sent")

    def _read(self, n, deadline):
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._resp_r], [], [], left)[0]:
                raise StudentTimeout("time limit reached")
            chunk = os.read(self._resp_r, min(n - len(buf), 1 << 20))
            if not chunk:
                self._died("while running student code")
            buf += chunk
        return bytes(buf)

    def _receive(self, deadline, count_time=True):
        (n,) = HEADER.unpack(self._read(HEADER.size, deadline))
        limit = self.response_bytes + 6 * self.cell_output + 65536
        if n > limit:
            self._kill()
            raise OutputLimit(f"sandbox response of {n} bytes exceeds the limit of {limit}; "
                              "sandbox killed")
        try:
            res = json.loads(self._read(n, deadline).decode("utf-8"), parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"malformed response from the sandbox: {exc}") from None
        if not isinstance(res, dict):
            raise ProtocolError("malformed response from the sandbox")
        return res

    def _request(self, obj, timeout):
        if self.proc is None:
            raise SandboxDied("sandbox is not running (call restart())")
        left_total = self.total_time - self.time_used
        if left_total <= 0:
            raise StudentTimeout(f"the submission used up its total time of {self.total_time} s")
        wanted = self.cell_timeout if timeout is None else timeout
        limit = min(wanted, left_total)
        start = time.monotonic()
        deadline = start + limit
        try:
            self._send(obj, deadline)
            return self._receive(deadline)
        except StudentTimeout:
            self._kill()
            what = (f"the rest of the submission's total time ({limit:.3g} s)"
                    if left_total < wanted else f"its time limit of {limit:g} s")
            raise StudentTimeout(f"student code ran past {what}; sandbox killed") from None
        finally:
            self.time_used += time.monotonic() - start

    def _output(self, res) -> tuple[str, str, bool]:
        out, err, trunc = res.get("stdout", ""), res.get("stderr", ""), bool(res.get("truncated"))
        if not isinstance(out, str) or not isinstance(err, str):
            raise ProtocolError("malformed output from the sandbox")
        room = max(self.total_output - self.output_used, 0)
        if len(out) + len(err) > room:
            out, err, trunc = out[:room], err[:max(room - len(out), 0)], True
            out += "\n[total output limit reached]\n"
        self.output_used += len(out) + len(err)
        return out, err, trunc

    def _check_error(self, res):
        if res.get("ok"):
            return
        kind, msg = res.get("kind"), str(res.get("message", ""))
        if kind == "student":
            raise StudentError(str(res.get("type", "Exception")), msg,
                               str(res.get("traceback", "")))
        if kind == "limit":
            raise OutputLimit(msg)
        raise ProtocolError(f"sandbox {kind} error: {msg}")

    def ping(self, timeout: float = 10.0) -> bool:
        res = self._request({"op": "ping"}, timeout)
        return bool(res.get("ok"))

    def run_cell(self, source: str, timeout: float | None = None) -> CellResult:
        """Run one code cell (magics allowed). Errors in the cell are in ``result.error``."""
        start = time.monotonic()
        res = self._request({"op": "run_cell", "source": source}, timeout)
        self._check_error(res)
        out, err, trunc = self._output(res)
        error = res.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise ProtocolError("malformed cell error")
            error = CellError(str(error.get("ename", "")), str(error.get("evalue", "")),
                              str(error.get("traceback", "")))
        return CellResult(out, err, error, trunc, time.monotonic() - start)

    def _decode(self, text):
        if not isinstance(text, str):
            raise ProtocolError("malformed value from the sandbox")
        try:
            return codec.decode(text, max_bytes=self.response_bytes)
        except codec.DecodeError as exc:
            raise ProtocolError(f"the sandbox sent an undecodable value: {exc}") from None

    def call(self, name: str, args=(), kwargs=None, timeout: float | None = None):
        """Call the student's ``name`` (dotted allowed) with plain-data arguments; return plain
        data.

        Raises StudentError if it raised, StudentTimeout, SandboxDied, OutputLimit (result too big).
        Values the codec cannot carry come back as :class:`codec.Unsupported`. If the call
        changed its positional arguments in place, ``last_args_after`` holds them as they are
        after it (a list), or a :class:`codec.Unsupported` if they no longer encode; else None.
        """
        try:
            a = codec.encode(list(args), functions=self._registry)
            k = codec.encode(dict(kwargs or {}), functions=self._registry)
        except codec.EncodeError as exc:
            raise ProtocolError(f"cannot send the arguments: {exc}") from None
        self.last_warnings, self.last_args_after = [], None
        res = self._request({"op": "call", "name": name, "args": a, "kwargs": k}, timeout)
        self._check_error(res)
        self._output(res)
        caught = res.get("warnings")
        if isinstance(caught, list):  # [[category name, message], ...] from the student's call
            self.last_warnings = [(str(c), str(m)) for c, m in
                                  (w for w in caught if isinstance(w, list) and len(w) == 2)][:20]
        value = self._decode(res.get("value"))
        if "args_after" in res:  # the call changed its arguments in place
            after = res["args_after"]
            decoded = None if after is None else self._decode(after)
            self.last_args_after = decoded if isinstance(decoded, list) and len(decoded) == len(
                args) else codec.Unsupported("arguments changed into something unencodable")
        return value

    def get(self, name: str, timeout: float | None = None):
        """The plain-data value of the student's variable ``name`` (dotted allowed)."""
        res = self._request({"op": "get", "name": name}, timeout)
        self._check_error(res)
        return self._decode(res.get("value"))
