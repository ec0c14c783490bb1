"""A WASM function's module as bytes, and what can be known about it without compiling it. Owns: which of
the function's files is the module (WAT text, or a binary stored as base64 text), turning it into bytes,
and the checks made on save and on load: a valid core module whose imports are WASI preview1 functions and
which exports `_start` (a WASI command). Validation is wasmtime's; imports and exports are read from the
binary's sections here, because compiling a large module takes most of a second and saving should not."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import wasmtime

WAT_FILE = "module.wat"
BINARY_FILE = "module.wasm"  # base64 text: a function's files are text
PREVIEW1 = "wasi_snapshot_preview1"
ENTRY = "_start"

# Every function of WASI preview1 (wasmtime's define_wasi provides them all).
_PREVIEW1_NAMES = """
    args_get args_sizes_get environ_get environ_sizes_get clock_res_get clock_time_get fd_advise
    fd_allocate fd_close fd_datasync fd_fdstat_get fd_fdstat_set_flags fd_fdstat_set_rights
    fd_filestat_get fd_filestat_set_size fd_filestat_set_times fd_pread fd_prestat_get fd_prestat_dir_name
    fd_pwrite fd_read fd_readdir fd_renumber fd_seek fd_sync fd_tell fd_write path_create_directory
    path_filestat_get path_filestat_set_times path_link path_open path_readlink path_remove_directory
    path_rename path_symlink path_unlink_file poll_oneoff proc_exit proc_raise sched_yield random_get
    sock_accept sock_recv sock_send sock_shutdown"""
WASI_FUNCTIONS = frozenset(_PREVIEW1_NAMES.split())

_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
_WAT_AT = re.compile(r"-->\s*<anon>:(\d+):(\d+)")
_CORE_VERSION = b"\x01\x00\x00\x00"


class ModuleError(Exception):
    """The function's module cannot be used; `message` is for the user, `file`/`line` say where."""

    def __init__(self, message: str, file: str = "", line: int = 1, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class Interface:
    imports: tuple[tuple[str, str, str], ...]  # (module, name, kind)
    exports: Mapping[str, str]  # name -> kind


@functools.cache
def _validator() -> wasmtime.Engine:
    return wasmtime.Engine()


def module_file(files: Mapping[str, str]) -> str:
    """Which file is the module: module.wasm (an uploaded binary) before module.wat, else the only
    .wasm or .wat file there is."""
    for name in (BINARY_FILE, WAT_FILE):
        if name in files:
            return name
    candidates = sorted(f for f in files if f.endswith((".wasm", ".wat")))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ModuleError(f"no module: send WAT text as code ({WAT_FILE}) or a compiled module as binary")
    raise ModuleError(f"several modules ({', '.join(candidates)}): name the one to run {WAT_FILE}")


def module_bytes(path: str, text: str) -> bytes:
    """The binary module a file holds: base64 for .wasm files, WAT text otherwise."""
    if path.endswith(".wasm"):
        return decode_binary(text, path)
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        message = str(exc)
        where = _WAT_AT.search(message)
        first = message.splitlines()[0] if message else "invalid WAT"
        if where is None:
            raise ModuleError(first, path) from None
        raise ModuleError(first, path, int(where.group(1)), int(where.group(2))) from None


def decode_binary(text: str, path: str = BINARY_FILE) -> bytes:
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModuleError(f"binary is not valid base64: {exc}", path) from None
    if not data.startswith(b"\0asm"):
        raise ModuleError("binary is not a WebAssembly module (it does not start with \\0asm)", path)
    return data


def check_module(wasm: bytes, path: str = BINARY_FILE) -> Interface:
    """Raise ModuleError unless `wasm` is a valid WASI preview1 command module; returns its interface."""
    if len(wasm) >= 8 and wasm[4:8] != _CORE_VERSION:
        raise ModuleError(
            "this is a WebAssembly component or an unknown version; Nimbus runs WASI preview1 core "
            "modules (e.g. Rust's wasm32-wasip1 target, Go's GOOS=wasip1)",
            path,
        )
    try:
        wasmtime.Module.validate(_validator(), wasm)
    except wasmtime.WasmtimeError as exc:
        raise ModuleError(f"module does not compile: {str(exc).splitlines()[0]}", path) from None
    interface = read_interface(wasm)
    for module, name, kind in interface.imports:
        if module != PREVIEW1 or kind != "func" or name not in WASI_FUNCTIONS:
            raise ModuleError(
                f"module imports {kind} {module}.{name}; a WASM function may import only "
                f"{PREVIEW1} functions",
                path,
            )
    if interface.exports.get(ENTRY) != "func":
        raise ModuleError(f"module does not export a `{ENTRY}` function: it must be a WASI command", path)
    return interface


def check_file(path: str, text: str) -> ModuleError | None:
    """The save-time check of one module file (engine/services/code_check.py)."""
    try:
        check_module(module_bytes(path, text), path)
    except ModuleError as exc:
        exc.file = exc.file or path
        return exc
    return None


# -- reading sections --------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ModuleError("module ends inside a section")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    def name(self) -> str:
        size = self.uleb()
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode("utf-8", "replace")

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 0x01:
            self.uleb()
        if flags & 0x08:  # custom page size
            self.uleb()

    def valtype(self) -> None:
        if self.byte() in (0x63, 0x64):  # (ref null? <heaptype>): the heap type is a signed LEB
            self.uleb()


def read_interface(wasm: bytes) -> Interface:
    """Imports and exports of a (validated) core module, read from its sections."""
    imports: list[tuple[str, str, str]] = []
    exports: dict[str, str] = {}
    pos = 8
    while pos < len(wasm):
        head = _Reader(wasm, pos, len(wasm))
        section, size = head.byte(), head.uleb()
        body = _Reader(wasm, head.pos, head.pos + size)
        if section == 2:
            for _ in range(body.uleb()):
                module, name, kind = body.name(), body.name(), body.byte()
                if kind in (0, 4):
                    if kind == 4:
                        body.byte()
                    body.uleb()
                elif kind == 1:
                    body.valtype()
                    body.limits()
                elif kind == 2:
                    body.limits()
                elif kind == 3:
                    body.valtype()
                    body.byte()
                else:
                    raise ModuleError(f"module has an import of unknown kind {kind}")
                imports.append((module, name, _KINDS[kind]))
        elif section == 7:
            for _ in range(body.uleb()):
                name, kind = body.name(), body.byte()
                body.uleb()
                exports[name] = _KINDS.get(kind, "unknown")
        pos = head.pos + size
    return Interface(tuple(imports), exports)
