"""The WebAssembly runtime: WASI preview1 command modules run by wasmtime inside the Nimbus process, on a
small dedicated thread pool (never on the event loop). Owns: the engine and its epoch ticker, loading a
function's module (memory cache, then the on-disk cache of compiled modules, then compiling), and the
worker the pool keeps warm: it holds the pre-linked module; every invocation gets a fresh Store and
instance (engine/runtimes/wasm_exec.py).

Limits per invocation:
- memory: the store's limiter caps linear memory at the function's memory_mb;
- CPU: fuel, FUEL_PER_SECOND units per second of the function's timeout. A unit is about one wasm
  instruction; on the 2-core reference machine dense code burns 5-5.7 G units a second and a bare
  branch loop 0.34 G, so the budget is about one second of full-speed computing per second of timeout.
  Fuel caps the work an invocation may do whatever the machine's load (the same code gets the same
  budget everywhere), and it is a second, independent stop should the wall clock ever fail. A runaway
  loop ends as Timeout or, for dense code, as OutOfFuel, near its timeout either way;
- wall time: the epoch deadline; a ticker thread advances the engine's epoch every TICK_SEC while any
  invocation runs, so a guest is interrupted within one tick (plus its next loop or call) of its deadline.

No ambient authority: no preopened directories, no inherited environment (only the function's own
variables), argv is the function's name, no sockets. A cold start is the first load of a module in this
process: a compiled module is cached at <data_dir>/wasm-cache/<hash>.cwasm and deserialised after that."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import wasmtime

from engine.config import Settings
from engine.runtimes.base import (
    ErrorInfo,
    ExecResult,
    FunctionSpec,
    InitError,
    InvokeContext,
    Isolation,
    RuntimeInfo,
)
from engine.runtimes.wasm_binary import ModuleError, check_module, module_bytes, module_file
from engine.runtimes.wasm_exec import Limits, run
from engine.runtimes.wasm_threads import InvocationThreads, Job, Ticker
from engine.runtimes.wasm_wasi import GuestArgs, define_stdio

__all__ = ["WasmRuntime", "WasmWorker"]

log = logging.getLogger(__name__)

FUEL_PER_SECOND = 5_000_000_000
TICK_SEC = 0.01
MAX_RESULT_BYTES = 6 * 1024 * 1024  # as the process runtimes' result frame
GRACE_SEC = 1.0  # a thread that has not come back this long after the deadline is given up on
MEMORY_CACHE = 64  # modules kept loaded (workers keep their own)
WASMTIME_VERSION = version("wasmtime")


@dataclass(frozen=True, slots=True)
class LoadedModule:
    key: str  # content hash of the binary (and of the engine that compiled it)
    pre: wasmtime.InstancePre
    origin: str  # "compiled" | "disk" | "memory": where this load found it


class WasmRuntime:
    """Runtime protocol for `wasm` functions. `threads` invocations run at once (four per CPU, at least 2, at
    most the platform's concurrency cap); more wait for a thread, their deadline running."""

    name = "wasm"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.output_cap = settings.output_cap_bytes
        self.fuel_per_second = FUEL_PER_SECOND
        self.cache_dir = settings.data_dir / "wasm-cache"
        self.threads = max(2, min(settings.max_concurrency, 4 * (os.cpu_count() or 1)))
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self._linker = wasmtime.Linker(self.engine)
        define_stdio(self._linker)
        self._threads = InvocationThreads(self.threads, Ticker(self.engine, TICK_SEC))
        self._modules: OrderedDict[str, LoadedModule] = OrderedDict()  # key -> module, least recent first
        self._keys: dict[str, str] = {}  # function code hash -> module key
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    async def start(self) -> None:
        """Nothing yet: the invocation threads start with the first WASM worker, so a node that runs no
        WASM keeps no threads for it."""

    async def stop(self) -> None:
        self._threads.stop()

    def isolation(self) -> Isolation:
        # The guest sees no file system, no network, no environment beyond its own variables.
        return Isolation(level="strong", rlimits=False, private_root=True)

    def info(self) -> RuntimeInfo:
        return RuntimeInfo("wasm", True, f"wasmtime {WASMTIME_VERSION}", "in-process")

    async def spawn(self, spec: FunctionSpec) -> WasmWorker:
        started = time.perf_counter()
        self._ensure_started()
        if spec.layers:
            raise InitError(
                ErrorInfo("LayersUnsupported", "a WASM function has no file system, so it cannot use layers"),
                init_ms=(time.perf_counter() - started) * 1000,
            )
        try:
            loaded = await asyncio.to_thread(self.load, spec)
        except ModuleError as exc:
            where = f"{exc.file} line {exc.line}: " if exc.file and exc.column else ""
            raise InitError(
                ErrorInfo("InvalidModule", where + exc.message),
                init_ms=(time.perf_counter() - started) * 1000,
            ) from None
        except wasmtime.WasmtimeError as exc:
            raise InitError(
                ErrorInfo("LinkError", str(exc).splitlines()[0]),
                init_ms=(time.perf_counter() - started) * 1000,
            ) from None
        return WasmWorker(self, spec, loaded, (time.perf_counter() - started) * 1000)

    # -- modules --------------------------------------------------------------------------------------------

    def load(self, spec: FunctionSpec) -> LoadedModule:
        """The function's module, pre-linked: from memory, else from the disk cache, else compiled (and
        then written to the disk cache). Blocking: call it in a thread."""
        with self._lock:
            key = self._keys.get(spec.code_hash)
            if key is not None and key in self._modules:
                self._modules.move_to_end(key)
                return _with_origin(self._modules[key], "memory")
        path = module_file(spec.files)
        wasm = module_bytes(path, spec.files[path])
        check_module(wasm, path)
        key = self.cache_key(wasm)
        with self._lock:
            lock = self._loading.setdefault(key, threading.Lock())
        try:
            with lock:  # one thread compiles a module; the others wait for it
                with self._lock:
                    self._keys[spec.code_hash] = key
                    if key in self._modules:
                        self._modules.move_to_end(key)
                        return _with_origin(self._modules[key], "memory")
                module, origin = self._compiled(key, wasm)
                loaded = LoadedModule(key, self._linker.instantiate_pre(module), origin)
                with self._lock:
                    self._modules[key] = loaded
                    while len(self._modules) > MEMORY_CACHE:
                        evicted, _ = self._modules.popitem(last=False)
                        self._keys = {h: k for h, k in self._keys.items() if k != evicted}
        finally:
            with self._lock:
                self._loading.pop(key, None)
        return loaded

    def cache_key(self, wasm: bytes) -> str:
        # The engine's version and settings are part of the key: a compiled module only loads into an
        # engine of the same version and configuration.
        salt = f"wasmtime {WASMTIME_VERSION}; fuel; epoch\n".encode()
        return hashlib.sha256(salt + wasm).hexdigest()

    def cache_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.cwasm"

    def _compiled(self, key: str, wasm: bytes) -> tuple[wasmtime.Module, str]:
        path = self.cache_path(key)
        if path.is_file():
            try:
                return wasmtime.Module.deserialize_file(self.engine, str(path)), "disk"
            except wasmtime.WasmtimeError as exc:  # truncated or from another engine: compile again
                log.warning("discarding wasm cache entry %s: %s", path.name, exc)
        module = wasmtime.Module(self.engine, wasm)
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{key}.{secrets.token_hex(4)}.tmp")
        try:
            tmp.write_bytes(module.serialize())
            os.replace(tmp, path)
        except OSError as exc:  # a full or read-only disk costs the next cold start, nothing more
            log.warning("could not write wasm cache entry %s: %s", path.name, exc)
            tmp.unlink(missing_ok=True)
        return module, "compiled"

    # -- execution ------------------------------------------------------------------------------------------

    def limits(self, spec: FunctionSpec, timeout_sec: float) -> Limits:
        return Limits(
            memory_bytes=spec.memory_mb << 20,
            fuel=max(1, int(timeout_sec * self.fuel_per_second)),
            stdout_cap=MAX_RESULT_BYTES,
            log_cap=self.output_cap,
            tick_sec=TICK_SEC,
        )

    def submit(self, job: Job[ExecResult]) -> asyncio.Future[ExecResult]:
        return self._threads.submit(job)

    def _ensure_started(self) -> None:
        self._threads.start()


def _with_origin(loaded: LoadedModule, origin: str) -> LoadedModule:
    return LoadedModule(loaded.key, loaded.pre, origin)


class WasmWorker:
    """A warm WASM function: its pre-linked module. Each invocation runs in a fresh instance."""

    def __init__(
        self, runtime: WasmRuntime, spec: FunctionSpec, loaded: LoadedModule, init_ms: float
    ) -> None:
        self.spec = spec
        self.init_ms = init_ms
        self.module = loaded
        self._args = GuestArgs([spec.name], spec.env)
        self._runtime = runtime
        self._closed = False

    @property
    def alive(self) -> bool:
        return not self._closed

    async def invoke(self, event: Any, ctx: InvokeContext) -> ExecResult:
        if self._closed:
            return ExecResult("failed", error=ErrorInfo("WorkerCrashed", "worker is not alive"))
        try:
            payload = json.dumps(event, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            return ExecResult("failed", error=ErrorInfo("SerializationError", f"event is not JSON: {exc}"))
        runtime = self._runtime
        deadline = time.monotonic() + ctx.timeout_sec
        limits = runtime.limits(self.spec, ctx.timeout_sec)

        def job() -> tuple[ExecResult, list[Any]]:
            spent: list[Any] = []  # the Store, freed after the result is handed over
            result = run(
                runtime.engine,
                self.module.pre,
                self._args,
                payload=payload,
                deadline=deadline,
                timeout_sec=ctx.timeout_sec,
                limits=limits,
                keep=spent,
            )
            return result, spent

        future = runtime.submit(job)
        try:
            async with asyncio.timeout(ctx.timeout_sec + GRACE_SEC):
                return await future  # cancelling it cannot stop the thread; the deadline will
        except TimeoutError:
            # Every thread was busy until past the deadline (the job will end at once when it gets one),
            # or a host call never returned. Either way the invocation ends as a timeout, and the pool
            # replaces this worker.
            log.warning("wasm invocation of %s found no free thread or overran its deadline", self.spec.name)
            self._closed = True
            message = f"function timed out after {ctx.timeout_sec:g}s"
            return ExecResult(
                "timeout", error=ErrorInfo("Timeout", message), duration_ms=ctx.timeout_sec * 1000
            )

    async def close(self) -> None:
        self._closed = True
