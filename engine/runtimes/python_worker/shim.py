"""The worker side of the Python runtime protocol, stdlib only (pre-imported by the zygote, run in each
sandboxed worker after `confine` has locked it down).

Protocol on the worker's socket: frames of a 4-byte big-endian length plus UTF-8 JSON.
  worker -> app  hello {pid, pidns} carrying the output memfd and a pidfd of the worker (SCM_RIGHTS): the
                 app reads captured output straight from the memfd, so output survives a killed worker.
  app -> worker  init {handler, env, function_name, function_version, memory_mb, paths}
                 (paths: layer directories, "{code}/..." relative to the code root, searched after it)
  worker -> app  ready {init_ms} | init_error {error, init_ms}
  (or, for the other process runtimes: app -> worker  exec {argv, env}: the worker replaces itself with
   argv - {code} in it is the code root - keeping its sandbox, its output memfd on fds 1 and 2 and this
   socket as fd 3; the program then reads the init frame the app sent next and speaks the rest itself)
  app -> worker  invoke {event, ctx}
  worker -> app  result {ok, result | error, duration_ms, peak_memory_kb, fatal}
  app -> worker  exit (or EOF)
Output: fds 1 and 2 point at one memfd (so C code and subprocesses are captured too); the app truncates it
after reading each invocation's share. Errors carry the user's traceback only: platform frames are cut."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import io
import json
import logging
import math
import os
import resource
import socket
import struct
import sys
import time
import traceback
from typing import Any

MAX_FRAME = 6 * 1024 * 1024
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
_HEADER = struct.Struct(">I")
_IMPORT_MODULES = (
    "_frozen_importlib",
    "_frozen_importlib_external",
    "importlib._bootstrap",
    "importlib._bootstrap_external",
    "zipimport",
)


def _dumps(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":"), allow_nan=False).encode()


class Conn:
    """Blocking framed JSON over the worker's socket."""

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)

    def send(self, body: bytes, fds: list[int] | None = None) -> None:
        data = _HEADER.pack(len(body)) + body
        if fds:
            sent = socket.send_fds(self.sock, [data], fds)
            data = data[sent:]
        if data:
            self.sock.sendall(data)

    def recv(self) -> dict[str, Any] | None:
        head = self._exact(4)
        if head is None:
            return None
        body = self._exact(_HEADER.unpack(head)[0])
        return None if body is None else json.loads(body)

    def _exact(self, n: int) -> bytearray | None:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                return None
            got += k
        return buf


class Context:
    """The `context` argument of a handler."""

    def __init__(
        self,
        ctx: dict[str, Any],
        *,
        function_name: str,
        function_version: str,
        memory_mb: int,
        logger: logging.Logger,
    ) -> None:
        timeout = float(ctx.get("timeout_sec", 30))
        self.request_id: str = ctx.get("request_id", "")
        self.aws_request_id = self.request_id
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = memory_mb
        self.source: str = ctx.get("source", "api")
        self.trace_id: str = ctx.get("trace_id", "")
        self.attempt: int = int(ctx.get("attempt", 1))
        self.logger = logger
        self.deadline = time.time() + timeout  # epoch seconds
        self._deadline_mono = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline_mono - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"<Context request_id={self.request_id!r} function={self.function_name!r}>"


def user_stack(exc: BaseException, roots: tuple[str, ...]) -> str:
    """The traceback from the first frame of the user's code on (stdlib frames it called are kept),
    without the shim's or importlib's frames; chained exceptions are trimmed the same way."""
    try:
        te = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
        _trim(te, roots, set())
        return "".join(te.format())
    except Exception:
        return ""


def _trim(te: traceback.TracebackException, roots: tuple[str, ...], seen: set[int]) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    frames = list(te.stack)
    start = next((i for i, f in enumerate(frames) if f.filename.startswith(roots)), len(frames))
    kept = [f for f in frames[start:] if not f.filename.startswith("<frozen importlib")]
    te.stack = traceback.StackSummary.from_list(kept)
    for sub in (te.__cause__, te.__context__, *(getattr(te, "exceptions", None) or ())):
        if sub is not None:
            _trim(sub, roots, seen)


def _error(exc: BaseException, roots: tuple[str, ...]) -> dict[str, str]:
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {type(exc).__name__}>"
    return {"type": type(exc).__name__, "message": message, "stack": user_stack(exc, roots)}


class Worker:
    """Built before the worker knows its function (a pre-forked blank builds it while it waits: none of
    this is function-specific, and doing it early keeps its copy-on-write page faults off the cold start);
    `serve` then speaks the protocol for one function."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.reserve: bytearray | None = bytearray(1 << 20)  # freed on MemoryError to report it
        self.loop: asyncio.AbstractEventLoop | None = None
        self.handler: Any = None
        self.memory_mb = 0
        self.name = self.version = ""
        self.logger = logging.getLogger("function")
        self.memfd = self._capture_output()
        # A pidfd of ourselves (pid 1 resolves in our own namespace): the app's race-free handle to kill us.
        self.pidfd = os.pidfd_open(os.getpid())
        self._isolate_imports()

    def serve(self, fd: int, code_root: str) -> None:
        self.conn = Conn(fd)
        self.roots = (code_root.rstrip("/") + "/",)
        sys.path[0] = code_root
        importlib.invalidate_caches()
        hello = {"t": "hello", "pid": os.getpid(), "pidns": os.getpid() == 1}
        self.conn.send(_dumps(hello), [self.memfd, self.pidfd])
        os.close(self.memfd)
        os.close(self.pidfd)
        init = self.conn.recv()
        if init is not None and init.get("t") == "exec":
            self._exec(init, code_root)  # returns only when the exec failed
            return
        if init is None or not self._init(init):
            return
        while (msg := self.conn.recv()) is not None and msg.get("t") == "invoke":
            try:
                body = self._invoke(msg)
            except MemoryError:
                self.reserve = None
                body = self._failure(self._oom(), 0.0, fatal=True)
            self.conn.send(body)
            if os.getpid() == 1:
                self._reap()

    def _capture_output(self) -> int:
        memfd = os.memfd_create("nimbus-output", os.MFD_CLOEXEC)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(memfd, 1)
        os.dup2(memfd, 2)

        def stream(fd: int) -> io.TextIOWrapper:
            raw = io.BufferedWriter(io.FileIO(fd, "w", closefd=False))
            return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=True)

        self.stdout, self.stderr = stream(1), stream(2)
        sys.stdout = sys.__stdout__ = self.stdout
        sys.stderr = sys.__stderr__ = self.stderr
        sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)))
        return memfd

    def _isolate_imports(self) -> None:
        """Only the function's code and the stdlib are importable; the zygote's own modules (this shim,
        pyseccomp, the venv's finders) are forgotten so a user module of the same name wins."""
        prefix = os.path.realpath(sys.base_prefix)
        sys.path[:] = ["/var/task", *self.info["python_path"]]  # [0] becomes the real code root in serve()
        sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__module__", "") in _IMPORT_MODULES]
        sys.path_hooks[:] = [h for h in sys.path_hooks if getattr(h, "__module__", "") in _IMPORT_MODULES]
        sys.path_importer_cache.clear()
        for name, mod in list(sys.modules.items()):
            path = getattr(mod, "__file__", None) or ""
            if name != "__main__" and path and not path.startswith(prefix):
                del sys.modules[name]
        if os.path.exists(self.info["executable"]):
            sys.executable = self.info["executable"]

    def _init(self, msg: dict[str, Any]) -> bool:
        started = time.perf_counter()
        self.name = msg.get("function_name", "")
        self.version = msg.get("function_version", "$LATEST")
        self.memory_mb = int(msg.get("memory_mb", 0))
        handler = logging.StreamHandler(self.stderr)
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
        self.logger.handlers[:] = [handler]
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        module_name, _, func_name = str(msg.get("handler") or "main.handler").rpartition(".")
        error: dict[str, str] | None = None
        try:
            os.environ.clear()
            os.environ.update(BASE_ENV)
            os.environ.update({str(k): str(v) for k, v in (msg.get("env") or {}).items()})
            code_root = sys.path[0]
            sys.path[1:1] = [str(p).replace("{code}", code_root) for p in msg.get("paths") or ()]
            module = importlib.import_module(module_name or "main")
            self.handler = getattr(module, func_name, None)
            if not callable(self.handler):
                error = {
                    "type": "HandlerNotFound",
                    "stack": "",
                    "message": f"handler {func_name!r} not found in module {module_name or 'main'!r}",
                }
        except MemoryError:
            self.reserve = None
            error = self._oom()
        except BaseException as exc:
            error = _error(exc, self.roots)
        init_ms = (time.perf_counter() - started) * 1000
        self._flush()
        if error:
            self.conn.send(_dumps({"t": "init_error", "error": error, "init_ms": init_ms}))
            return False
        self.conn.send(_dumps({"t": "ready", "init_ms": init_ms}))
        return True

    def _exec(self, msg: dict[str, Any], code_root: str) -> None:
        """Become the runtime's program (node with its shim, a compiled Go/Rust worker). Everything the
        sandbox set holds across exec: namespaces, uid, rlimits, no_new_privs and seccomp."""
        argv = [str(a).replace("{code}", code_root) for a in msg.get("argv") or ()]
        env = dict(BASE_ENV)
        env.update({str(k): str(v).replace("{code}", code_root) for k, v in (msg.get("env") or {}).items()})
        env["NIMBUS_FD"] = "3"
        try:
            if not argv:
                raise ValueError("nothing to run")
            # The program's own deadline is the app's wall clock: lift the CPU backstop meant for imports.
            hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
            resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
            fd = self.conn.sock.fileno()
            if fd != 3:
                os.dup2(fd, 3)
            os.set_inheritable(3, True)
            os.execve(argv[0], argv, env)
        except (OSError, ValueError) as exc:
            error = {"type": "RuntimeUnavailable", "message": f"cannot start {argv[:1]}: {exc}", "stack": ""}
            self.conn.send(_dumps({"t": "init_error", "error": error, "init_ms": 0.0}))

    def _invoke(self, msg: dict[str, Any]) -> bytes:
        ctx_in = msg.get("ctx") or {}
        self._cpu_backstop(float(ctx_in.get("timeout_sec", 30)))
        ctx = Context(
            ctx_in,
            function_name=self.name,
            function_version=self.version,
            memory_mb=self.memory_mb,
            logger=self.logger,
        )
        started = time.perf_counter()
        try:
            result = self.handler(msg.get("event"), ctx)
            if inspect.isawaitable(result):
                result = self._event_loop().run_until_complete(result)
        except MemoryError:
            self.reserve = None
            return self._failure(self._oom(), started, fatal=True)
        except SystemExit as exc:
            # The user asked the process to end: honour it by replacing this worker after the reply.
            error = {"type": "SystemExit", "message": f"handler called sys.exit({exc.code!r})", "stack": ""}
            return self._failure(error, started, fatal=True)
        except BaseException as exc:
            return self._failure(_error(exc, self.roots), started)
        duration = (time.perf_counter() - started) * 1000
        self._flush()
        try:
            body = _dumps(
                {
                    "t": "result",
                    "ok": True,
                    "result": result,
                    "duration_ms": duration,
                    "peak_memory_kb": self._peak_kb(),
                    "fatal": False,
                }
            )
        except MemoryError:
            self.reserve = None
            return self._failure(self._oom(), started, fatal=True)
        except Exception as exc:
            error = {
                "type": "SerializationError",
                "message": f"result is not JSON-serialisable: {exc}",
                "stack": "",
            }
            return self._failure(error, started)
        if len(body) > MAX_FRAME:
            error = {
                "type": "ResultTooLarge",
                "stack": "",
                "message": f"result is {len(body)} bytes; the limit is {MAX_FRAME} bytes",
            }
            return self._failure(error, started)
        return body

    def _failure(self, error: dict[str, str], started: float, *, fatal: bool = False) -> bytes:
        duration = (time.perf_counter() - started) * 1000 if started else 0.0
        self._flush()
        return _dumps(
            {
                "t": "result",
                "ok": False,
                "error": error,
                "duration_ms": duration,
                "peak_memory_kb": self._peak_kb(),
                "fatal": fatal,
            }
        )

    def _oom(self) -> dict[str, str]:
        return {
            "type": "MemoryLimitExceeded",
            "message": f"memory limit exceeded ({self.memory_mb} MB)",
            "stack": "",
        }

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        # One loop per worker: asyncio.run() would build and tear down a loop on every invocation.
        if self.loop is None or self.loop.is_closed():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
        return self.loop

    @staticmethod
    def _cpu_backstop(timeout: float) -> None:
        """RLIMIT_CPU counts the worker's whole life: move the soft limit to `timeout` past what is spent."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + timeout) + 1
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    @staticmethod
    def _peak_kb() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def _flush(self) -> None:
        for stream in {id(s): s for s in (self.stdout, self.stderr, sys.stdout, sys.stderr)}.values():
            try:
                stream.flush()
            except Exception:
                pass

    @staticmethod
    def _reap() -> None:
        """As PID 1 of its namespace the worker inherits orphans of the user's processes: collect zombies
        between invocations (never during one, so the user's own waits are not disturbed)."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
