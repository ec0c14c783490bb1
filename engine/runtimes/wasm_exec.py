"""One WASM invocation, run on a worker thread: a fresh Store with the function's limits, a fresh instance
of the pre-linked module, `_start`, then the outcome as an ExecResult. Owns the limits (memory through the
store limiter, CPU through fuel, wall time through the epoch deadline) and naming how a run ended: each
trap by name, a non-zero exit with its code, stdout that is not JSON, and the memory limit.

wasmtime cannot say that a `memory.grow` was refused (the guest just gets -1 and usually traps soon
after), so a failed run counts as MemoryLimitExceeded when its memory could not grow by one more page
under the limit, or when the guest's allocator said so on stderr (Rust: "memory allocation of N bytes
failed", Go and C runtimes: "out of memory"). The original trap stays in the message."""

from __future__ import annotations

import ctypes
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

from engine.runtimes.base import ErrorInfo, ExecResult
from engine.runtimes.wasm_binary import ENTRY
from engine.runtimes.wasm_wasi import GuestArgs, GuestIO, Stream, bind, set_stdin

PAGE = 65536
# Tables live outside linear memory, so memory_mb does not bound them: without this cap one table.grow
# could take gigabytes of the host's memory. Compilers' function tables hold thousands of entries.
TABLE_ELEMENTS = 1_000_000
MAX_STACK_FRAMES = 64
_OOM = re.compile(r"memory allocation of \d+ bytes failed|out of memory", re.IGNORECASE)
_FRAME_NO = re.compile(r"^\d+:\s*")


@dataclass(frozen=True, slots=True)
class Limits:
    memory_bytes: int
    fuel: int
    stdout_cap: int  # the result (JSON on stdout)
    log_cap: int  # stderr
    tick_sec: float  # the epoch ticker's period


def run(
    engine: wasmtime.Engine,
    pre: wasmtime.InstancePre,
    args: GuestArgs,
    *,
    payload: bytes,
    deadline: float,
    timeout_sec: float,
    limits: Limits,
    keep: list[Any] | None = None,
) -> ExecResult:
    """Run the module's `_start` once with `payload` on stdin; never raises for anything the guest does.
    The Store goes into `keep` when given, for the caller to free later (that takes ~40 µs)."""
    started = time.perf_counter()
    remaining = deadline - time.monotonic()
    if remaining <= 0:  # waited for a thread past its whole deadline
        return _timeout(timeout_sec, "", False, 0.0)
    io = GuestIO(Stream(limits.stdout_cap), Stream(limits.log_cap), deadline)
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=limits.memory_bytes, table_elements=TABLE_ELEMENTS)
    store.set_fuel(limits.fuel)
    store.set_epoch_deadline(math.ceil(remaining / limits.tick_sec) + 1)
    if keep is not None:
        keep.append(store)
    wasi = wasmtime.WasiConfig()
    args.apply(wasi)
    set_stdin(wasi, payload)
    store.set_wasi(wasi)
    instance: wasmtime.Instance | None = None
    failure: BaseException | None = None
    bind(io)
    try:
        instance = pre.instantiate(store)
        call_start(store, instance)
    except wasmtime.ExitTrap as exc:
        failure = exc if exc.code != 0 else None  # proc_exit(0) is a normal end
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        failure = exc
    finally:
        bind(None)
    duration_ms = (time.perf_counter() - started) * 1000
    used = _memory_size(store, instance)
    logs, cut = _text(io.stderr)
    peak_kb = used // 1024 if used is not None else None
    common: dict[str, Any] = {
        "logs": logs,
        "logs_truncated": cut,
        "duration_ms": duration_ms,
        "peak_memory_kb": peak_kb,
    }
    if failure is not None:
        interrupted = isinstance(failure, wasmtime.Trap) and failure.trap_code == wasmtime.TrapCode.INTERRUPT
        if interrupted or io.timed_out:
            return _timeout(timeout_sec, logs, cut, duration_ms, peak_kb)
        error = _failure(failure, logs, limits, instantiated=instance is not None)
        named = error.type in ("OutOfFuel", "MemoryLimitExceeded")
        if not named and _memory_limit_hit(used, logs, limits.memory_bytes):
            in_use = f" ({used / (1 << 20):.1f} MB in use)" if used is not None else ""
            error = ErrorInfo(
                "MemoryLimitExceeded",
                f"memory limit of {limits.memory_bytes >> 20} MB reached{in_use}; then: {error.message}",
                error.stack,
            )
        return ExecResult("failed", error=error, **common)
    out = io.stdout
    if out.dropped:
        total = len(out.data) + out.dropped
        message = f"stdout holds {total} bytes; a result may have at most {out.cap}"
        return ExecResult("failed", error=ErrorInfo("OutputTooLarge", message), **common)
    if not out.data.strip():
        return ExecResult("success", result=None, **common)  # nothing written: a null result
    try:
        result = json.loads(out.data)
    except ValueError as exc:
        head = bytes(out.data[:80]).decode("utf-8", "replace")
        message = f"stdout is not JSON ({exc}); it starts with {head!r}"
        return ExecResult("failed", error=ErrorInfo("InvalidOutput", message), **common)
    return ExecResult("success", result=result, **common)


def _timeout(
    timeout_sec: float, logs: str, cut: bool, duration_ms: float, peak_kb: int | None = None
) -> ExecResult:
    return ExecResult(
        "timeout",
        error=ErrorInfo("Timeout", f"function timed out after {timeout_sec:g}s"),
        logs=logs,
        logs_truncated=cut,
        duration_ms=duration_ms,
        peak_memory_kb=peak_kb,
    )


def _failure(exc: BaseException, logs: str, limits: Limits, *, instantiated: bool) -> ErrorInfo:
    message, stack = split_report(str(exc))
    if isinstance(exc, wasmtime.ExitTrap):
        last = next((line.strip() for line in reversed(logs.splitlines()) if line.strip()), "")
        detail = f": {last[:200]}" if last else ""
        return ErrorInfo("NonZeroExit", f"the module exited with code {exc.code}{detail}", stack)
    if isinstance(exc, wasmtime.Trap):
        code = exc.trap_code
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            budget = f"its CPU budget of {limits.fuel:,} fuel units"
            return ErrorInfo("OutOfFuel", f"the function used {budget} ({message})", stack)
        return ErrorInfo(trap_name(code), message, stack)
    if "exceeds memory limits" in message:
        return ErrorInfo("MemoryLimitExceeded", message, stack)
    if instantiated:  # a WASI function refused its arguments
        return ErrorInfo("WasiError", message, stack)
    return ErrorInfo("InstantiationError", message, stack)


def trap_name(code: wasmtime.TrapCode | None) -> str:
    """TrapCode.INTEGER_DIVISION_BY_ZERO -> "IntegerDivisionByZero"; None (a host trap) -> "Trap"."""
    if code is None:
        return "Trap"
    return "".join(part.capitalize() for part in code.name.split("_"))


def split_report(text: str) -> tuple[str, str]:
    """wasmtime's error text -> (the cause, the wasm backtrace one frame a line)."""
    head, sep, cause = text.partition("\n\nCaused by:\n")
    if not sep:
        return text.strip(), ""
    causes = [_FRAME_NO.sub("", line.strip()) for line in cause.splitlines() if line.strip()]
    causes = [c.removeprefix("wasm trap: ") for c in causes]
    message = causes[-1] if causes else "wasm trap"
    if len(causes) > 1:
        message += f" ({'; '.join(causes[:-1])})"
    frames = [
        " ".join(line.split()).replace("<unknown>!", "")
        for line in head.splitlines()[1:]
        if line.strip() and not line.strip().startswith("note:")
    ]
    if len(frames) > MAX_STACK_FRAMES:
        frames = [*frames[:MAX_STACK_FRAMES], f"... {len(frames) - MAX_STACK_FRAMES} more frames"]
    return message, "\n".join(frames)


# Straight through the C API: wasmtime-py's `exports()` lists every export and `Func.__call__` asks for the
# function's type on each call, together ~40 µs of a ~300 µs invocation.

_ENTRY = ENTRY.encode()
_MEMORY = b"memory"


def _export(store: wasmtime.Store, instance: wasmtime.Instance, name: bytes) -> Any:
    item = ffi.wasmtime_extern_t()
    found = ffi.wasmtime_instance_export_get(
        store._context(), ctypes.byref(instance._instance), name, len(name), ctypes.byref(item)
    )
    return item if found else None


def call_start(store: wasmtime.Store, instance: wasmtime.Instance) -> None:
    """Call the instance's `_start`; raises wasmtime's Trap, ExitTrap or WasmtimeError like Func does."""
    item = _export(store, instance, _ENTRY)
    if item is None or item.kind != ffi.WASMTIME_EXTERN_FUNC.value:
        raise wasmtime.WasmtimeError(f"module does not export a `{ENTRY}` function")
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    error = ffi.wasmtime_func_call(
        store._context(), ctypes.byref(item.of.func), None, 0, None, 0, ctypes.byref(trap)
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        raise wasmtime.Trap._from_ptr(trap)


def _memory_size(store: wasmtime.Store, instance: wasmtime.Instance | None) -> int | None:
    item = _export(store, instance, _MEMORY) if instance is not None else None
    if item is None or item.kind != ffi.WASMTIME_EXTERN_MEMORY.value:
        return None
    return int(ffi.wasmtime_memory_data_size(store._context(), ctypes.byref(item.of.memory)))


def _memory_limit_hit(used: int | None, logs: str, limit: int) -> bool:
    if used is not None and used + PAGE > limit:
        return True
    return bool(_OOM.search(logs[-4096:]))


def _text(stream: Stream) -> tuple[str, bool]:
    text = stream.data.decode("utf-8", "replace")
    if stream.dropped:
        return text + f"\n... [output truncated: {stream.dropped} bytes dropped]", True
    return text, False
