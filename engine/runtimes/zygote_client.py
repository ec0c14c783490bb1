"""App side of the Python zygote (engine/runtimes/python_worker/zygote.py): start it as a plain subprocess
(no fork of the app, no preexec_fn), ask it for workers, and learn how each worker ended.

One SOCK_SEQPACKET socketpair is the control channel: every message is one packet, and a spawn request
carries the worker's socket end as SCM_RIGHTS. Everything is non-blocking on the event loop."""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

from engine.sandbox import ZYGOTE_ENV, ZYGOTE_SCRIPT, ExitStatus


class ZygoteDied(RuntimeError):
    """The zygote is gone (crashed or stopped); the runtime starts a new one."""


def recv_fds(sock: socket.socket, bufsize: int, maxfds: int) -> tuple[bytes, list[int]]:
    """socket.recv_fds without its 3.11 bug (it ignores flags); raises BlockingIOError when empty."""
    fds = array.array("i")
    data, ancdata, _, _ = sock.recvmsg(bufsize, socket.CMSG_LEN(maxfds * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


async def wait_readable(sock: socket.socket) -> None:
    await _wait(sock, writable=False)


async def wait_writable(sock: socket.socket) -> None:
    await _wait(sock, writable=True)


async def _wait(sock: socket.socket, *, writable: bool) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    (loop.add_writer if writable else loop.add_reader)(sock.fileno(), ready)
    try:
        await fut
    finally:
        (loop.remove_writer if writable else loop.remove_reader)(sock.fileno())


class ZygoteClient:
    def __init__(
        self,
        python: str,
        root: Path,
        functions: Path,
        probe_uid: int,
        *,
        tmp_mb: int = 64,
        prefork: int = 2,
        user: int | None = None,
    ) -> None:
        self.python = python
        self.root = root
        self.functions = functions
        self.probe_uid = probe_uid
        self.tmp_mb = tmp_mb
        self.prefork = prefork
        self.user = user
        self.report: dict[str, Any] = {}
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._hello: asyncio.Future[dict[str, Any]] | None = None
        self._exits: dict[int, asyncio.Future[ExitStatus]] = {}
        self._ids = itertools.count(1)

    @property
    def alive(self) -> bool:
        return self._sock is not None

    async def start(self, timeout: float = 30.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # A plain exec of a small interpreter: forking the (large, threaded) app is exactly what the
            # zygote exists to avoid. Its own session keeps a terminal's Ctrl-C away from it.
            cmd = [
                self.python,
                "-I",
                str(ZYGOTE_SCRIPT),
                "--fd",
                str(theirs.fileno()),
                "--root",
                str(self.root),
                "--functions",
                str(self.functions),
                "--probe-uid",
                str(self.probe_uid),
                "--tmp-mb",
                str(self.tmp_mb),
                "--prefork",
                str(self.prefork),
            ]
            self._proc = await asyncio.to_thread(
                subprocess.Popen,
                cmd,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=ZYGOTE_ENV,
                start_new_session=True,
                close_fds=True,
                **(
                    {"user": self.user, "group": self.user, "extra_groups": []}
                    if self.user is not None
                    else {}
                ),
            )
        finally:
            theirs.close()
        mine.setblocking(False)
        self._sock = mine
        self._hello = loop.create_future()
        loop.add_reader(mine.fileno(), self._on_readable)
        try:
            hello = await asyncio.wait_for(asyncio.shield(self._hello), timeout)
        except (TimeoutError, ZygoteDied):
            await self.stop()
            raise ZygoteDied(f"the python zygote did not start ({self.python})") from None
        self.pid = int(hello.get("pid", 0))
        self.report = dict(hello.get("isolation") or {})
        return self.report

    async def spawn(self, cfg: dict[str, Any]) -> tuple[int, socket.socket, asyncio.Future[ExitStatus]]:
        """Ask for one worker; returns its id, the app's end of its socket, and a future of its exit."""
        if self._sock is None:
            raise ZygoteDied("the python zygote is not running")
        spawn_id = next(self._ids)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        exit_fut: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._exits[spawn_id] = exit_fut
        try:
            await self._send({"t": "spawn", "id": spawn_id, "cfg": cfg}, [theirs.fileno()])
        except BaseException:
            self._exits.pop(spawn_id, None)
            mine.close()
            raise
        finally:
            theirs.close()
        mine.setblocking(False)
        return spawn_id, mine, exit_fut

    def kill(self, spawn_id: int) -> None:
        """Kill a worker and its process group by the zygote's pid for it (without a pid namespace the
        group is the boundary, and only the zygote knows the pid in its own namespace)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.send(json.dumps({"t": "kill", "id": spawn_id}).encode())

    async def stop(self) -> None:
        """EOF tells the zygote to kill every worker and exit."""
        self._close(ZygoteDied("the python zygote was stopped"))
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for _ in range(100):
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.02)
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)

    async def _send(self, msg: dict[str, Any], fds: list[int]) -> None:
        data = json.dumps(msg).encode()
        while True:
            sock = self._sock
            if sock is None:
                raise ZygoteDied("the python zygote is not running")
            try:
                socket.send_fds(sock, [data], fds)
                return
            except BlockingIOError:
                await wait_writable(sock)
            except OSError as exc:
                self._close(ZygoteDied(f"the python zygote is gone: {exc}"))
                raise ZygoteDied(str(exc)) from exc

    def _on_readable(self) -> None:
        while self._sock is not None:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close(ZygoteDied("the python zygote exited"))
                return
            try:
                msg = json.loads(data)
            except ValueError:
                continue
            kind = msg.get("t")
            if kind == "hello" and self._hello is not None and not self._hello.done():
                self._hello.set_result(msg)
            elif kind in ("exit", "spawn_error"):
                fut = self._exits.pop(int(msg.get("id", -1)), None)
                if fut is not None and not fut.done():
                    fut.set_result(
                        ExitStatus(
                            code=msg.get("code"),
                            signal=msg.get("signal"),
                            maxrss_kb=int(msg.get("maxrss_kb") or 0),
                            lost=str(msg.get("message", "")),
                        )
                    )

    def _close(self, reason: ZygoteDied) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(reason)
        exits, self._exits = self._exits, {}
        for fut in exits.values():
            if not fut.done():
                # Workers die with the zygote (parent-death signal), so these are gone too.
                fut.set_result(ExitStatus(lost=str(reason)))
