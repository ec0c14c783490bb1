"""Running one command in the build jail (launcher.py) from the event loop: a plain subprocess of a small
interpreter (no fork of the app, no preexec_fn), its output streamed line by line, and its whole process
group killed at the deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.sandbox import ZYGOTE_ENV

LAUNCHER = Path(__file__).resolve().parent / "launcher.py"
LINE_MAX = 4096  # longer output lines are split: one log event stays small
_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class Ran:
    returncode: int | None  # None when it was killed at the deadline
    timed_out: bool
    seconds: float


async def run_in_jail(
    python: str, config: dict[str, Any], on_line: Callable[[str], None], *, timeout: float
) -> Ran:
    """Run the launcher with `config`; every line of its merged stdout/stderr goes to `on_line`."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        python,
        "-I",
        str(LAUNCHER),
        json.dumps(config),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        env=ZYGOTE_ENV,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            await _pump(proc.stdout, on_line)
            returncode = await proc.wait()
    except TimeoutError:
        _kill(proc.pid)
        await proc.wait()
        return Ran(None, True, time.perf_counter() - started)
    except BaseException:
        _kill(proc.pid)
        with contextlib.suppress(BaseException):
            await asyncio.shield(proc.wait())
        raise
    return Ran(returncode, False, time.perf_counter() - started)


def _kill(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _pump(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    pending = b""
    while chunk := await stream.read(_CHUNK):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            _emit(raw, on_line)
        while len(pending) > LINE_MAX:
            _emit(pending[:LINE_MAX], on_line)
            pending = pending[LINE_MAX:]
    if pending:
        _emit(pending, on_line)


def _emit(raw: bytes, on_line: Callable[[str], None]) -> None:
    text = raw.decode("utf-8", "replace").rstrip("\r")
    for start in range(0, max(len(text), 1), LINE_MAX):
        on_line(text[start : start + LINE_MAX])
