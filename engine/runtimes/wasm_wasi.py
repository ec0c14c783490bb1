"""The guest's WASI stdio and clock waits, served in memory. Owns: the event bytes on stdin, capturing
stdout (the result) and stderr (the log) with caps, and `poll_oneoff` bounded by the invocation's deadline.

Why not wasmtime's own: its file and custom streams go through its async runtime (tokio) per call, which
measured 150-450 µs more per invocation than these host functions, and custom streams made tokio worker
threads call back into Python (a panic at interpreter exit). Its `poll_oneoff` sleeps in Rust where the
epoch deadline cannot reach, so one guest sleeping an hour would hold a thread an hour; here a sleep ends
at the deadline and the epoch check traps the guest right after. Everything else (args, environ, clocks,
random, the absent file system) stays wasmtime's. The invocation's state is thread-local: one invocation
runs on one thread from start to end."""

from __future__ import annotations

import ctypes
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi  # the C API: stdin from bytes and raw host functions (not wrapped)

from engine.runtimes.wasm_binary import PREVIEW1

ESUCCESS, EBADF, EFAULT, EINVAL, EIO = 0, 8, 21, 28, 29
IOV_MAX = 1024  # as POSIX: the most buffers one fd_write may name
MAX_SUBSCRIPTIONS = 4096  # the most one poll_oneoff may wait for
_SUBSCRIPTION = 48  # bytes of a preview1 subscription
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, error, type, fd_readwrite.nbytes, fd_readwrite.flags
_CLOCK = struct.Struct("<I4xQQH")  # id, timeout, precision, flags
_ABSTIME = 1
_REALTIME = 0


@dataclass(slots=True)
class Stream:
    """Captured output: the first `cap` bytes, and how many more were dropped."""

    cap: int
    data: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def write(self, address: int, length: int) -> None:
        """Take `length` bytes at `address` (in the guest's memory); past the cap only count them."""
        take = min(length, max(0, self.cap - len(self.data)))
        if take:
            self.data += ctypes.string_at(address, take)
        self.dropped += length - take


@dataclass(slots=True)
class GuestIO:
    """One invocation's stdout, stderr and deadline (time.monotonic())."""

    stdout: Stream
    stderr: Stream
    deadline: float
    timed_out: bool = False  # a wait reached the deadline: the guest was stopped there


_local = threading.local()


def bind(io: GuestIO | None) -> None:
    _local.io = io


class GuestArgs:
    """A function's argv and environment as the C arrays WASI takes: built once per warm worker (wasmtime
    copies them into each WasiConfig), which saves wasmtime-py rebuilding them per invocation."""

    def __init__(self, argv: list[str], env: Mapping[str, str]) -> None:
        self._argc, self._argv = len(argv), _strings(argv)
        self._envc, self._names, self._values = len(env), _strings(list(env)), _strings(list(env.values()))

    def apply(self, wasi: wasmtime.WasiConfig) -> None:
        if not ffi.wasi_config_set_argv(wasi.ptr(), self._argc, self._argv):
            raise wasmtime.WasmtimeError("failed to configure argv")
        if not ffi.wasi_config_set_env(wasi.ptr(), self._envc, self._names, self._values):
            raise wasmtime.WasmtimeError("failed to configure the environment")


def _strings(values: list[str]) -> Any:
    array = (ctypes.c_char_p * len(values))(*(v.encode() for v in values))  # keeps the bytes alive
    return ctypes.cast(array, ctypes.POINTER(ctypes.POINTER(ctypes.c_char)))


def set_stdin(wasi: wasmtime.WasiConfig, data: bytes) -> None:
    """Give the guest `data` as its whole stdin (wasmtime takes ownership of the vector's copy)."""
    vec = ffi.wasm_byte_vec_t()
    ffi.wasm_byte_vec_new_uninitialized(ctypes.byref(vec), len(data))
    if data:
        ctypes.memmove(vec.data, data, len(data))
    ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))


def define_stdio(linker: wasmtime.Linker) -> None:
    """WASI on `linker`, with fd_write and poll_oneoff served here."""
    linker.define_wasi()
    linker.allow_shadowing = True
    for name, callback in (("fd_write", _FD_WRITE), ("poll_oneoff", _POLL_ONEOFF)):
        # A fresh type per linker: wasmtime binds a function type to the first engine it is used with,
        # and using it with another engine aborts the process.
        i32 = wasmtime.ValType.i32()
        ty = wasmtime.FuncType([i32, i32, i32, i32], [i32])
        error = ffi.wasmtime_linker_define_func_unchecked(
            linker.ptr(),
            _PREVIEW1,
            len(_PREVIEW1),
            name.encode(),
            len(name),
            ty.ptr(),
            callback,
            None,
            _NO_FINALIZER,
        )
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    linker.allow_shadowing = False


# -- host functions ----------------------------------------------------------------------------------------
# Defined "unchecked": wasmtime passes the raw arguments and takes the result in the first slot, which
# saves wasmtime-py's per-call value conversion (about 35 µs a call here). The callbacks never raise:
# an exception cannot cross back into wasmtime, so anything unexpected becomes EIO for the guest.

_PREVIEW1 = PREVIEW1.encode()
_MEMORY = b"memory"
_EXTERN_MEMORY = ffi.WASMTIME_EXTERN_MEMORY.value
_NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
_Args = Any  # ctypes pointer to wasmtime_val_raw_t


def _memory(caller: Any) -> tuple[int, int] | None:
    """(address, size) of the calling instance's exported linear memory."""
    item = ffi.wasmtime_extern_t()
    if not ffi.wasmtime_caller_export_get(caller, _MEMORY, len(_MEMORY), ctypes.byref(item)):
        return None
    if item.kind != _EXTERN_MEMORY:
        return None
    context = ffi.wasmtime_caller_context(caller)
    memory = ctypes.byref(item.of.memory)
    base = ctypes.cast(ffi.wasmtime_memory_data(context, memory), ctypes.c_void_p).value or 0
    return base, ffi.wasmtime_memory_data_size(context, memory)


def _unsigned(args: _Args) -> tuple[int, int, int, int]:
    return tuple(args[i].i32 & 0xFFFFFFFF for i in range(4))  # type: ignore[return-value]


class _DeadlineReached(Exception):
    pass


_DEADLINE = b"deadline reached while waiting in poll_oneoff"


def _host(function: Any) -> Any:
    def callback(_env: Any, caller: Any, args: _Args, _count: int) -> int:
        try:
            args[0].i32 = function(caller, *_unsigned(args))
        except _DeadlineReached:  # stop the guest now: it must not carry on as if it had slept enough
            trap = ffi.wasmtime_trap_new(_DEADLINE, len(_DEADLINE))
            return ctypes.cast(trap, ctypes.c_void_p).value or 0  # wasmtime takes the trap over
        except Exception:
            args[0].i32 = EIO
        return 0  # no trap

    return ffi.wasmtime_func_unchecked_callback_t(callback)


def _fd_write(caller: Any, fd: int, iovs: int, count: int, written: int) -> int:
    io: GuestIO | None = getattr(_local, "io", None)
    if io is None or fd not in (1, 2):
        return EBADF
    mem = _memory(caller)
    if mem is None:
        return EFAULT
    base, size = mem
    if count > IOV_MAX:
        return EINVAL
    if iovs + 8 * count > size or written + 4 > size:
        return EFAULT
    stream = io.stdout if fd == 1 else io.stderr
    total = 0
    for ptr, length in struct.iter_unpack("<II", ctypes.string_at(base + iovs, 8 * count)):
        if ptr + length > size:
            return EFAULT
        stream.write(base + ptr, length)
        total += length
    ctypes.memmove(base + written, struct.pack("<I", total & 0xFFFFFFFF), 4)
    return ESUCCESS


def _poll_oneoff(caller: Any, subs: int, events: int, count: int, nevents: int) -> int:
    """Clock subscriptions sleep (relative, or absolute on the realtime clock), at most until the
    deadline; stdio subscriptions are ready at once, like regular files. An absolute time on another
    clock (wasmtime's monotonic clock starts at zero per guest, unknown here) counts as due."""
    io: GuestIO | None = getattr(_local, "io", None)
    mem = _memory(caller)
    if io is None or mem is None:
        return EFAULT
    base, size = mem
    if count == 0 or count > MAX_SUBSCRIPTIONS:
        return EINVAL
    if subs + _SUBSCRIPTION * count > size or events + _EVENT.size * count > size or nevents + 4 > size:
        return EFAULT
    raw = ctypes.string_at(base + subs, _SUBSCRIPTION * count)
    ready: list[bytes] = []
    clocks: list[tuple[int, int]] = []  # (nanoseconds from now, userdata)
    for i in range(count):
        userdata, tag = struct.unpack_from("<QB", raw, i * _SUBSCRIPTION)
        if tag == 0:
            clock, timeout, _, flags = _CLOCK.unpack_from(raw, i * _SUBSCRIPTION + 16)
            if flags & _ABSTIME:
                timeout = timeout - time.time_ns() if clock == _REALTIME else 0
            clocks.append((max(0, timeout), userdata))
        elif tag in (1, 2):
            (fd,) = struct.unpack_from("<I", raw, i * _SUBSCRIPTION + 16)
            ready.append(_EVENT.pack(userdata, ESUCCESS if fd <= 2 else EBADF, tag, 0, 0))
        else:
            return EINVAL
    due = 0
    if not ready and clocks:
        due = min(ns for ns, _ in clocks)
        left = io.deadline - time.monotonic()
        if due / 1e9 >= left:
            time.sleep(max(0.0, left))
            io.timed_out = True
            raise _DeadlineReached
        time.sleep(due / 1e9)  # the GIL is released; the memory cannot move while the guest waits here
    ready += [_EVENT.pack(userdata, ESUCCESS, 0, 0, 0) for ns, userdata in clocks if ns <= due]
    out = b"".join(ready)
    ctypes.memmove(base + events, out, len(out))
    ctypes.memmove(base + nevents, struct.pack("<I", len(ready)), 4)
    return ESUCCESS


# Module-level: wasmtime keeps calling these for as long as any linker lives.
_FD_WRITE = _host(_fd_write)
_POLL_ONEOFF = _host(_poll_oneoff)
