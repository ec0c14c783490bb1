"""The Python runtime: sandboxed workers forked by a pre-imported zygote (engine/runtimes/zygote_client.py,
python_worker/). Owns: writing a function's files once per pool key, giving each function its own uid,
the worker handshake, and enforcing the invocation contract from the app side (deadline -> SIGKILL of the
worker's whole pid namespace, frame cap, death diagnosis, output capture cap).

Worker ends: every worker gets a pidfd (race-free kill; as PID 1 of its namespace, killing it kills all the
function started). Its output memfd is shared with the app, so output is read here, even after a kill."""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.errors import Unavailable
from engine.runtimes.base import ErrorInfo, ExecResult, FunctionSpec, InitError, InvokeContext, Isolation
from engine.runtimes.python_worker.shim import MAX_FRAME
from engine.runtimes.zygote_client import ZygoteClient, ZygoteDied, recv_fds, wait_readable
from engine.sandbox import (
    ExitStatus,
    describe_death,
    functions_dir,
    isolation_from_report,
    sandbox_root,
    zygote_python,
)

INIT_TIMEOUT_SEC = 10.0  # import of the user's module (Lambda's init phase limit)
NOFILE = 256
FSIZE_MB = 64  # largest file a function may write (also bounds its captured output)
TMP_MB = 64  # its private /tmp
EXIT_REPORT_WAIT_SEC = 2.0
UID_SPAN = 1 << 20
PREFORK = 2  # blank workers the zygote keeps forked and half-sandboxed, ready for any function  # function uids: sandbox_uid_base + 1 ... + 2^20


class ProtocolError(Exception):
    pass


class PythonWorker:
    """One warm sandboxed Python process serving one invocation at a time."""

    def __init__(self, runtime: PythonRuntime, spec: FunctionSpec, spawn_id: int, sock: socket.socket,
                 exit_fut: asyncio.Future[ExitStatus]) -> None:
        self.spec = spec
        self.init_ms = 0.0
        self.pid = 0
        self.pidns = False
        self.spawn_id = spawn_id
        self._runtime = runtime
        self._sock = sock
        self._exit = exit_fut
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pidfd: int | None = None
        self._memfd: int | None = None
        self._dead = False
        self._busy = False
        self._killed_at: float | None = None

    @property
    def alive(self) -> bool:
        return not self._dead and not self._exit.done()

    @property
    def exit_status(self) -> ExitStatus | None:
        return self._exit.result() if self._exit.done() else None

    async def wait_exit(self, timeout: float = EXIT_REPORT_WAIT_SEC) -> ExitStatus | None:
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(self._exit), timeout)
        return None

    # -- start-up -------------------------------------------------------------------------------------------

    async def _start(self, init: dict[str, Any], started: float, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                hello = await self._recv_hello()
        except TimeoutError:
            self._kill()
            raise Unavailable("python worker did not start (sandbox set-up timed out)") from None
        if hello is None:
            status = await self.wait_exit()
            raise Unavailable(f"python worker failed to start: {status.describe() if status else 'no status'}")
        if hello.get("t") == "sandbox_error":
            raise Unavailable(f"python sandbox failed: {hello.get('message', '')}")
        self.pid, self.pidns = int(hello["pid"]), bool(hello.get("pidns"))
        self._reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=1 << 20)
        self._send(init)
        try:
            async with asyncio.timeout(timeout):
                frame = await self._read_frame()
        except TimeoutError:
            self._kill()
            raise self._init_error(ErrorInfo("InitTimeout", f"initialisation timed out after {timeout:g}s"),
                                   started) from None
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError):
            self._dead = True
            status = await self.wait_exit() or ExitStatus(lost="no exit status")
            logs, _ = self._take_logs()
            raise self._init_error(describe_death(status, self.spec.memory_mb, logs[-4096:]), started) from None
        self.init_ms = (time.perf_counter() - started) * 1000
        if frame.get("t") == "init_error":
            raise self._init_error(ErrorInfo(**_error_fields(frame.get("error"))), started)
        if frame.get("t") != "ready":
            self._kill()
            raise Unavailable(f"python worker sent {frame.get('t')!r} instead of ready")

    def _init_error(self, info: ErrorInfo, started: float) -> InitError:
        self._dead = True
        logs, _ = self._take_logs()
        return InitError(info, logs=logs, init_ms=(time.perf_counter() - started) * 1000)

    async def _recv_hello(self) -> dict[str, Any] | None:
        """The hello frame carries the output memfd, so it is read with recvmsg before the stream takes
        over. The worker sends nothing else until it has our init frame, so we cannot read past it."""
        buf, fds = b"", []
        try:
            while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                try:
                    data, more = recv_fds(self._sock, 65536, 4)
                except BlockingIOError:
                    await wait_readable(self._sock)
                    continue
                fds += more
                if not data:
                    return None
                buf += data
            if len(fds) >= 2:
                self._memfd, self._pidfd = fds.pop(0), fds.pop(0)
            return json.loads(buf[4:])
        finally:
            for fd in fds:
                os.close(fd)

    # -- invocation -----------------------------------------------------------------------------------------

    async def invoke(self, event: Any, ctx: InvokeContext) -> ExecResult:
        if not self.alive:
            return ExecResult("failed", error=ErrorInfo("WorkerCrashed", "worker is not alive"))
        if self._busy:
            raise RuntimeError("a worker runs one invocation at a time")
        try:
            self._send({"t": "invoke", "event": event,
                        "ctx": {"request_id": ctx.request_id, "source": ctx.source, "timeout_sec": ctx.timeout_sec,
                                "trace_id": ctx.trace_id, "attempt": ctx.attempt}})
        except (TypeError, ValueError) as exc:
            return ExecResult("failed", error=ErrorInfo("SerializationError", f"event is not JSON: {exc}"))
        self._busy = True
        started = time.perf_counter()
        try:
            async with asyncio.timeout(ctx.timeout_sec):
                frame = await self._read_frame()
        except TimeoutError:
            self._kill()
            logs, cut = self._take_logs()
            return ExecResult("timeout", error=ErrorInfo("Timeout", f"function timed out after {ctx.timeout_sec:g}s"),
                              logs=logs, logs_truncated=cut, duration_ms=(time.perf_counter() - started) * 1000)
        except ProtocolError as exc:
            self._kill()
            logs, cut = self._take_logs()
            return ExecResult("failed", error=ErrorInfo("ProtocolError", str(exc)), logs=logs, logs_truncated=cut,
                              duration_ms=(time.perf_counter() - started) * 1000)
        except (asyncio.IncompleteReadError, ConnectionError):
            return await self._died(started)
        finally:
            self._busy = False
        logs, cut = self._take_logs()
        if frame.get("fatal"):
            self._kill()  # e.g. after a MemoryError: the process state cannot be trusted any more
        common: dict[str, Any] = {"logs": logs, "logs_truncated": cut,
                                  "duration_ms": float(frame.get("duration_ms") or 0.0),
                                  "peak_memory_kb": frame.get("peak_memory_kb")}
        if frame.get("ok"):
            return ExecResult("success", result=frame.get("result"), **common)
        return ExecResult("failed", error=ErrorInfo(**_error_fields(frame.get("error"))), **common)

    async def _died(self, started: float) -> ExecResult:
        self._dead = True
        status = await self.wait_exit() or ExitStatus(lost="no exit status from the zygote")
        logs, cut = self._take_logs()
        return ExecResult("failed", error=describe_death(status, self.spec.memory_mb, logs[-4096:]), logs=logs,
                          logs_truncated=cut, duration_ms=(time.perf_counter() - started) * 1000,
                          peak_memory_kb=status.maxrss_kb or None)

    def _send(self, frame: dict[str, Any]) -> None:
        assert self._writer is not None
        body = json.dumps(frame, separators=(",", ":")).encode()
        self._writer.write(len(body).to_bytes(4, "big") + body)

    async def _read_frame(self) -> dict[str, Any]:
        assert self._reader is not None
        size = int.from_bytes(await self._reader.readexactly(4), "big")
        if size > MAX_FRAME:
            raise ProtocolError(f"worker sent a {size}-byte frame (limit {MAX_FRAME})")
        try:
            frame = json.loads(await self._reader.readexactly(size))
        except ValueError as exc:
            raise ProtocolError(f"worker sent a frame that is not JSON: {exc}") from None
        if not isinstance(frame, dict):
            raise ProtocolError("worker sent a frame that is not an object")
        return frame

    def _take_logs(self) -> tuple[str, bool]:
        """Read this invocation's output from the shared memfd, then empty it for the next one (the worker
        shares the file offset, so rewinding here rewinds its stdout/stderr too)."""
        fd = self._memfd
        if fd is None:
            return "", False
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return "", False
            cap = self._runtime.output_cap
            data = os.pread(fd, min(size, cap), 0)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError:
            return "", False
        text = data.decode("utf-8", "replace")
        if size > cap:
            return text + f"\n... [output truncated: {size - cap} bytes dropped]", True
        return text, False

    # -- ending ---------------------------------------------------------------------------------------------

    def _kill(self) -> None:
        self._dead = True
        if self._killed_at is not None:
            return
        self._killed_at = time.monotonic()
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        if self._pidfd is None or not self.pidns:
            # No pid namespace: the process group is the boundary, and the zygote knows the pid to use.
            self._runtime.zygote_kill(self.spawn_id)

    async def close(self) -> None:
        self._kill()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        else:
            self._sock.close()
        for fd in (self._pidfd, self._memfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._pidfd = self._memfd = None


def _error_fields(raw: Any) -> dict[str, str]:
    raw = raw if isinstance(raw, dict) else {}
    return {"type": str(raw.get("type") or "Error"), "message": str(raw.get("message") or ""),
            "stack": str(raw.get("stack") or "")}


class PythonRuntime:
    """Runtime protocol for `python` functions."""

    name = "python"

    def __init__(self, settings: Settings, *, zygote_user: int | None = None) -> None:
        self.settings = settings
        self.output_cap = settings.output_cap_bytes
        self.init_timeout_sec = INIT_TIMEOUT_SEC
        self.prefork = PREFORK
        self.functions_dir = settings.data_dir / "functions"
        self._zygote_user = zygote_user  # run the zygote as another user (exercises the unprivileged path)
        self._zygote: ZygoteClient | None = None
        self._isolation = Isolation(level="degraded", rlimits=False, warnings=("python runtime not started",))
        self._lock = asyncio.Lock()
        self._code_locks: dict[str, asyncio.Lock] = {}
        self._uids: dict[str, int] = {}

    async def start(self) -> None:
        async with self._lock:
            await self._ensure_zygote()

    async def stop(self) -> None:
        async with self._lock:
            if self._zygote is not None:
                await self._zygote.stop()
                self._zygote = None

    def isolation(self) -> Isolation:
        return self._isolation

    @property
    def zygote_pid(self) -> int:
        return self._zygote.pid if self._zygote is not None and self._zygote.alive else 0

    def zygote_kill(self, spawn_id: int) -> None:
        if self._zygote is not None:
            self._zygote.kill(spawn_id)

    def uid_for(self, function_id: str) -> int | None:
        """One uid per function, so workers of different functions can never signal or trace each other
        nor share RLIMIT_NPROC. Derived from the function id (base + 1 + hash mod 2^20; the base itself is
        the probe's) rather than counted, so it is stable across restarts and two Nimbus instances on one
        machine do not hand out the same uids; a collision within this runtime takes the next free one.
        None when the zygote cannot drop uids."""
        if not self._isolation.uid_drop:
            return None
        uid = self._uids.get(function_id)
        if uid is None:
            digest = int.from_bytes(hashlib.sha256(function_id.encode()).digest()[:8], "big")
            taken = set(self._uids.values())
            offset = digest % UID_SPAN
            while (uid := self.settings.sandbox_uid_base + 1 + offset) in taken:
                offset = (offset + 1) % UID_SPAN
            self._uids[function_id] = uid
        return uid

    async def spawn(self, spec: FunctionSpec) -> PythonWorker:
        started = time.perf_counter()
        async with self._lock:
            zygote = await self._ensure_zygote()
        code_dir = await self._ensure_code(spec)
        cfg = {"code": code_dir.name, "uid": self.uid_for(spec.function_id), "memory_mb": spec.memory_mb,
               "cpu_sec": math.ceil(self.init_timeout_sec) + 1, "nofile": NOFILE, "fsize_mb": FSIZE_MB,
               "network": spec.network}
        try:
            spawn_id, sock, exit_fut = await zygote.spawn(cfg)
        except ZygoteDied as exc:
            raise Unavailable(f"python runtime unavailable: {exc}") from exc
        worker = PythonWorker(self, spec, spawn_id, sock, exit_fut)
        init = {"t": "init", "handler": spec.handler, "env": dict(spec.env), "function_name": spec.name,
                "function_version": spec.version, "memory_mb": spec.memory_mb}
        try:
            await worker._start(init, started, self.init_timeout_sec)
        except BaseException:
            await worker.close()
            raise
        return worker

    async def _ensure_zygote(self) -> ZygoteClient:
        if self._zygote is not None and self._zygote.alive:
            return self._zygote
        if self._zygote is not None:
            await self._zygote.stop()  # reap the dead one before replacing it
        zygote = ZygoteClient(zygote_python(self.settings), sandbox_root(self.settings), functions_dir(self.settings),
                              self.settings.sandbox_uid_base, tmp_mb=TMP_MB, prefork=self.prefork,
                              user=self._zygote_user)
        try:
            report = await zygote.start()
        except (ZygoteDied, OSError) as exc:
            raise Unavailable(f"python runtime unavailable: {exc}") from exc
        self._isolation = isolation_from_report(report)
        self._zygote = zygote
        return zygote

    async def _ensure_code(self, spec: FunctionSpec) -> Path:
        """Write the function's files under functions/<pool_key>/ once, atomically (build aside, rename)."""
        target = self.functions_dir / spec.pool_key
        if target.is_dir():
            return target
        lock = self._code_locks.setdefault(spec.pool_key, asyncio.Lock())
        async with lock:
            if not target.is_dir():
                await asyncio.to_thread(_write_code, self.functions_dir, target, dict(spec.files))
        self._code_locks.pop(spec.pool_key, None)
        return target


def _write_code(parent: Path, target: Path, files: dict[str, str]) -> None:
    tmp = parent / f".tmp-{target.name}-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o755)
    try:
        for rel, text in files.items():
            path = (tmp / rel).resolve()
            if not str(path).startswith(str(tmp.resolve()) + os.sep) or "\0" in rel:
                raise InitError(ErrorInfo("InvalidCode", f"file path {rel!r} leaves the function's directory"))
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o644)
        # Byte-code made here once: the worker's code dir is read-only, so it could never cache its own
        # (the import system rewrites co_filename to where the source is found, e.g. /var/task).
        compileall.compile_dir(str(tmp), quiet=2, workers=1)
        for root, dirs, names in os.walk(tmp):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in names:
                os.chmod(os.path.join(root, name), 0o644)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
