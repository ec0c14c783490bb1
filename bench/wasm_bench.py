"""WASM invoke figures, for bench/invoke.py: warm invoke through the worker pool (a trivial echo module: the
event in on stdin, out on stdout), cold start from the on-disk module cache, the first compile, and the
same-run baselines of raw wasmtime (a new Store + instantiate + call of an empty function, and the same
for a WASI `_start`). Prints nothing; `await measure_wasm()` returns the figures (units in the key names)."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config import Settings  # noqa: E402
from engine.pool import WorkerPool  # noqa: E402
from engine.runtimes.base import FunctionSpec, InvokeContext  # noqa: E402
from engine.runtimes.wasm import WasmRuntime  # noqa: E402
from engine.runtimes.wasm_exec import run  # noqa: E402
from engine.runtimes.wasm_wasi import GuestArgs  # noqa: E402

ECHO = """(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 65000))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""
EMPTY = '(module (func (export "f")))'
EVENT = {"name": "bench", "n": 1}


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": statistics.median(ordered) * 1000, "p95": at(0.95), "p99": at(0.99)}


def _spec() -> FunctionSpec:
    return FunctionSpec(
        function_id=uuid.uuid4().hex,
        name="echo-wasm",
        version="$LATEST",
        runtime="wasm",
        handler="_start",
        files={"module.wat": ECHO},
        code_hash="bench-echo",
        memory_mb=128,
        timeout_sec=30,
    )


def _baseline_call(n: int) -> list[float]:
    """Raw wasmtime: a new Store (with fuel and an epoch deadline) + instantiate + call, per sample."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, EMPTY)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        store = wasmtime.Store(engine)
        store.set_fuel(10**9)
        store.set_epoch_deadline(1000)
        instance = wasmtime.Instance(store, module, [])
        instance.exports(store)["f"](store)  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return samples


def _baseline_wasi(n: int) -> list[float]:
    """Raw wasmtime WASI: WasiConfig + Store + pre-linked instantiate + `_start` of the echo module (empty
    stdin, output discarded)."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    pre = linker.instantiate_pre(wasmtime.Module(engine, ECHO))
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        store = wasmtime.Store(engine)
        store.set_fuel(10**9)
        store.set_epoch_deadline(1000)
        store.set_wasi(wasmtime.WasiConfig())
        instance = pre.instantiate(store)
        instance.exports(store)["_start"](store)  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return samples


async def measure_wasm(data_dir: Path | None = None, *, n: int = 2000, cold_n: int = 30) -> dict[str, Any]:
    """Warm p50/p95/p99 of pool.invoke (in-process, the thread hop included), the same run inline on the
    calling thread, cold p50 (a new runtime that finds the module in the disk cache), the first compile,
    and the raw wasmtime baselines with the ratio of warm p50 to them."""
    with tempfile.TemporaryDirectory(prefix="nimbus-wasm-bench-") as scratch:
        settings = Settings(data_dir=data_dir or Path(scratch))
        spec = _spec()
        ctx = InvokeContext(request_id="bench", timeout_sec=30)

        runtime = WasmRuntime(settings)
        pool = WorkerPool(settings, {"wasm": runtime})
        await pool.start()
        try:
            first = await pool.invoke(spec, EVENT, ctx)  # compiles, fills the disk cache
            if not first.ok or first.result != EVENT:
                raise RuntimeError(f"echo module failed: {first.error}")
            compile_ms = first.init_ms or 0.0
            for _ in range(min(200, n)):
                await pool.invoke(spec, EVENT, ctx)
            warm = []
            for _ in range(n):
                started = time.perf_counter()
                await pool.invoke(spec, EVENT, ctx)
                warm.append(time.perf_counter() - started)
            loaded = runtime.load(spec)
            limits = runtime.limits(spec, 30)
            args = GuestArgs([spec.name], {})
            inline = []
            for _ in range(n):
                started = time.perf_counter()
                run(runtime.engine, loaded.pre, args, payload=b'{"name":"bench","n":1}',
                    deadline=time.monotonic() + 30, timeout_sec=30, limits=limits)  # fmt: skip
                inline.append(time.perf_counter() - started)
        finally:
            await pool.stop()

        cold, cold_init = [], []
        for _ in range(cold_n):
            fresh = WasmRuntime(settings)
            fresh_pool = WorkerPool(settings, {"wasm": fresh})
            await fresh_pool.start()
            try:
                started = time.perf_counter()
                result = await fresh_pool.invoke(spec, EVENT, ctx)
                cold.append(time.perf_counter() - started)
                cold_init.append((result.init_ms or 0.0) / 1000)
            finally:
                await fresh_pool.stop()

    raw_call, raw_wasi = _ms(_baseline_call(n)), _ms(_baseline_wasi(n))
    warm_ms, inline_ms, cold_ms = _ms(warm), _ms(inline), _ms(cold)
    return {
        "wasm_warm_p50_ms": warm_ms["p50"],
        "wasm_warm_p95_ms": warm_ms["p95"],
        "wasm_warm_p99_ms": warm_ms["p99"],
        "wasm_inline_run_p50_ms": inline_ms["p50"],
        "wasm_cold_p50_ms": cold_ms["p50"],
        "wasm_cold_init_p50_ms": _ms(cold_init)["p50"],
        "wasm_first_compile_ms": compile_ms,
        "wasmtime_raw_call_p50_ms": raw_call["p50"],
        "wasmtime_raw_wasi_run_p50_ms": raw_wasi["p50"],
        "wasm_warm_vs_raw_call_ratio": warm_ms["p50"] / raw_call["p50"],
        "wasm_warm_vs_raw_wasi_ratio": warm_ms["p50"] / raw_wasi["p50"],
        "wasm_n": n,
        "wasm_cold_n": cold_n,
    }
