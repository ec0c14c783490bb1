"""The app's handle on one sandboxed Python worker process (spawned by engine/runtimes/python.py). Owns the
app side of the worker protocol (python_worker/shim.py): the handshake, invocations with their deadline,
reading captured output, and ending the worker.

Every worker hands over a pidfd of itself: a race-free kill, and as PID 1 of its pid namespace, killing it
kills everything the function started. Its output memfd is shared with the app, so output is read here,
even after a kill. On overrun the worker is SIGKILLed at the deadline (an asyncio timer: a few ms late at
most); a worker that dies mid-invocation is diagnosed from the exit status its zygote reports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from engine.errors import Unavailable
from engine.runtimes.base import ErrorInfo, ExecResult, FunctionSpec, InitError, InvokeContext
from engine.runtimes.python_worker.shim import MAX_FRAME
from engine.runtimes.zygote_client import recv_fds, wait_readable
from engine.sandbox import ExitStatus, describe_death

EXIT_REPORT_WAIT_SEC = 2.0
BIG_FRAME = 256 * 1024


class ProtocolError(Exception):
    pass


class PythonWorker:
    """One warm sandboxed worker process (Python, or a program it exec'd) serving one invocation at a
    time."""

    def __init__(
        self,
        spec: FunctionSpec,
        spawn_id: int,
        sock: socket.socket,
        exit_fut: asyncio.Future[ExitStatus],
        *,
        output_cap: int,
        zygote_kill: Callable[[int], None],
    ) -> None:
        self.spec = spec
        self.init_ms = 0.0
        self.pid = 0
        self.pidns = False
        self.spawn_id = spawn_id
        self._sock = sock
        self._exit = exit_fut
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pidfd: int | None = None
        self._memfd: int | None = None
        self._dead = False
        self._busy = False
        self._killed_at: float | None = None
        self._output_cap = output_cap
        self._zygote_kill = zygote_kill

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

    async def start(
        self, init: dict[str, Any], started: float, timeout: float, *, pre: dict[str, Any] | None = None
    ) -> None:
        """Handshake; `pre` (an exec frame) goes before the init frame."""
        try:
            async with asyncio.timeout(timeout):
                hello = await self._recv_hello()
        except TimeoutError:
            self._kill()
            raise Unavailable("worker did not start (sandbox set-up timed out)") from None
        if hello is None:
            status = await self.wait_exit()
            raise Unavailable(f"worker failed to start: {status.describe() if status else 'no status'}")
        if hello.get("t") == "sandbox_error":
            raise Unavailable(f"sandbox failed: {hello.get('message', '')}")
        self.pid, self.pidns = int(hello["pid"]), bool(hello.get("pidns"))
        self._reader, self._writer = await asyncio.open_unix_connection(sock=self._sock, limit=1 << 20)
        if pre is not None:
            self._send(pre)
        self._send(init)
        try:
            async with asyncio.timeout(timeout):
                frame = await self._read_frame()
        except TimeoutError:
            self._kill()
            raise self._init_error(
                ErrorInfo("InitTimeout", f"initialisation timed out after {timeout:g}s"), started
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError):
            self._dead = True
            status = await self.wait_exit() or ExitStatus(lost="no exit status")
            logs, _ = self._take_logs()
            raise self._init_error(
                describe_death(status, self.spec.memory_mb, logs[-4096:]), started, logs
            ) from None
        self.init_ms = (time.perf_counter() - started) * 1000
        if frame.get("t") == "init_error":
            raise self._init_error(ErrorInfo(**_error_fields(frame.get("error"))), started)
        if frame.get("t") != "ready":
            self._kill()
            raise Unavailable(f"worker sent {frame.get('t')!r} instead of ready")

    def _init_error(self, info: ErrorInfo, started: float, logs: str | None = None) -> InitError:
        self._dead = True
        if logs is None:
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
            self._send(
                {
                    "t": "invoke",
                    "event": event,
                    "ctx": {
                        "request_id": ctx.request_id,
                        "source": ctx.source,
                        "timeout_sec": ctx.timeout_sec,
                        "trace_id": ctx.trace_id,
                        "attempt": ctx.attempt,
                    },
                }
            )
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
            return ExecResult(
                "timeout",
                error=ErrorInfo("Timeout", f"function timed out after {ctx.timeout_sec:g}s"),
                logs=logs,
                logs_truncated=cut,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        except ProtocolError as exc:
            self._kill()
            logs, cut = self._take_logs()
            return ExecResult(
                "failed",
                error=ErrorInfo("ProtocolError", str(exc)),
                logs=logs,
                logs_truncated=cut,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            return await self._died(started)
        except asyncio.CancelledError:
            self._kill()  # its result would arrive later and be taken for the next invocation's
            raise
        finally:
            self._busy = False
        logs, cut = self._take_logs()
        if frame.get("fatal"):
            self._kill()  # e.g. after a MemoryError: the process state cannot be trusted any more
        common: dict[str, Any] = {
            "logs": logs,
            "logs_truncated": cut,
            "duration_ms": float(frame.get("duration_ms") or 0.0),
            "peak_memory_kb": frame.get("peak_memory_kb"),
        }
        if frame.get("ok"):
            return ExecResult("success", result=frame.get("result"), **common)
        return ExecResult("failed", error=ErrorInfo(**_error_fields(frame.get("error"))), **common)

    async def _died(self, started: float) -> ExecResult:
        self._dead = True
        status = await self.wait_exit() or ExitStatus(lost="no exit status from the zygote")
        logs, cut = self._take_logs()
        return ExecResult(
            "failed",
            error=describe_death(status, self.spec.memory_mb, logs[-4096:]),
            logs=logs,
            logs_truncated=cut,
            duration_ms=(time.perf_counter() - started) * 1000,
            peak_memory_kb=status.maxrss_kb or None,
        )

    def _send(self, frame: dict[str, Any]) -> None:
        assert self._writer is not None
        body = json.dumps(frame, separators=(",", ":")).encode()
        self._writer.write(len(body).to_bytes(4, "big") + body)

    async def _read_frame(self) -> dict[str, Any]:
        assert self._reader is not None
        size = int.from_bytes(await self._reader.readexactly(4), "big")
        if size > MAX_FRAME:
            raise ProtocolError(f"worker sent a {size}-byte frame (limit {MAX_FRAME})")
        body = await self._reader.readexactly(size)
        try:
            # Parsing megabytes takes milliseconds: keep that off the event loop.
            frame = json.loads(body) if size < BIG_FRAME else await asyncio.to_thread(json.loads, body)
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
            cap = self._output_cap
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
            self._zygote_kill(self.spawn_id)

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
    return {
        "type": str(raw.get("type") or "Error"),
        "message": str(raw.get("message") or ""),
        "stack": str(raw.get("stack") or ""),
    }
