"""The WebAssembly runtime: real WASI modules (hand-written WAT, compiled by wasmtime) run in-process on the
runtime's threads, through the real pool. Each guest failure comes back named; limits hold; nothing of the
host (files, environment) is visible; compiled modules are cached on disk; the event loop never waits."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from engine.config import Settings
from engine.pool import WorkerPool
from engine.runtimes.base import FunctionSpec, InitError
from engine.runtimes.wasm import MAX_RESULT_BYTES, WasmRuntime
from engine.runtimes.wasm_binary import ModuleError, check_module, read_interface
from engine.services.code_check import check_syntax
from engine.services.templates_wasm import PRELUDE, TEMPLATES
from tests.engine.runtime_fixtures import ctx, make_settings


def module(body: str, imports: str = "") -> str:
    """A WAT module with the templates' prelude (stdin/stdout/stderr helpers, a 2-page memory); `imports`
    go first, as WAT wants them before any definition."""
    return f"(module\n{imports}{PRELUDE}{body})"


POLL = '(import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))'


def spec(wat: str | None = None, *, binary: bytes | None = None, **fields: Any) -> FunctionSpec:
    files = {"module.wat": wat} if binary is None else {"module.wasm": base64.b64encode(binary).decode()}
    values: dict[str, Any] = {
        "function_id": uuid.uuid4().hex,
        "name": "fn",
        "version": "$LATEST",
        "runtime": "wasm",
        "handler": "_start",
        "files": files,
        "code_hash": uuid.uuid4().hex,
        "memory_mb": 128,
        "timeout_sec": 5,
    }
    values.update(fields)
    return FunctionSpec(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, output_cap_bytes=1024)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[WasmRuntime]:
    rt = WasmRuntime(settings)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@pytest.fixture
async def pool(settings: Settings, runtime: WasmRuntime) -> AsyncIterator[WorkerPool]:
    wp = WorkerPool(settings, {"wasm": runtime})
    await wp.start()
    try:
        yield wp
    finally:
        await wp.stop()


HELLO = TEMPLATES[0].files["module.wat"]

EXIT_3 = module("""
  (data (i32.const 16) "cannot parse the order\\n\\00")
  (func $fail (call $logz (i32.const 16)) (call $proc_exit (i32.const 3)))
  (func $main (export "_start") (call $fail))
""")

UNREACHABLE = module("""
  (data (i32.const 16) "about to give up\\n\\00")
  (func $give_up (unreachable))
  (func $main (export "_start") (call $logz (i32.const 16)) (call $give_up))
""")

SPIN = module('(func $main (export "_start") (loop $forever (br $forever)))')

# Grows its memory one page at a time until memory.grow says no, then fails the way programs do.
MEMORY_HOG = module("""
  (func $main (export "_start")
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (unreachable))
""")


# --- the contract: event on stdin, result on stdout, log on stderr ----------------------------------------


async def test_the_hello_template_runs_cold_then_warm(pool: WorkerPool) -> None:
    fn = spec(HELLO, name="greeter")
    first = await pool.invoke(fn, {"name": "Ada"}, ctx())
    assert first.ok, first.error
    assert first.result == {"message": "Hello, Ada!", "function": "greeter"}
    assert first.logs == "saying hello to Ada\n"
    assert first.cold and first.init_ms is not None and first.init_ms > 0
    assert first.peak_memory_kb == 128  # its two pages
    second = await pool.invoke(fn, {}, ctx())
    assert second.ok and not second.cold
    assert second.result["message"] == "Hello, World!"


async def test_a_module_that_writes_nothing_returns_null(pool: WorkerPool) -> None:
    result = await pool.invoke(spec(module('(func $main (export "_start"))')), {"x": 1}, ctx())
    assert result.ok and result.result is None


async def test_stdout_that_is_not_json_is_an_invalid_output_error(pool: WorkerPool) -> None:
    body = """
      (data (i32.const 16) "hello, not json\\00")
      (func $main (export "_start") (call $emitz (i32.const 16)) (call $flush))
    """
    result = await pool.invoke(spec(module(body)), {}, ctx())
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "InvalidOutput"
    assert "stdout is not JSON" in result.error.message and "'hello, not json'" in result.error.message


async def test_proc_exit_zero_is_a_normal_end(pool: WorkerPool) -> None:
    body = """
      (data (i32.const 16) "[1,2]\\00")
      (func $main (export "_start")
        (call $emitz (i32.const 16)) (call $flush) (call $proc_exit (i32.const 0)))
    """
    result = await pool.invoke(spec(module(body)), {}, ctx())
    assert result.ok and result.result == [1, 2]


async def test_an_event_that_is_not_json_is_refused_before_running(pool: WorkerPool) -> None:
    result = await pool.invoke(spec(HELLO), {"bad": float("nan")}, ctx())
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "SerializationError"


# --- guest errors, named ------------------------------------------------------------------------------------


async def test_a_non_zero_exit_names_the_code_and_keeps_stderr_as_logs(pool: WorkerPool) -> None:
    result = await pool.invoke(spec(EXIT_3), {}, ctx())
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "NonZeroExit"
    assert result.error.message == "the module exited with code 3: cannot parse the order"
    assert "fail" in result.error.stack and "main" in result.error.stack
    assert result.logs == "cannot parse the order\n"


async def test_unreachable_is_named_with_the_wasm_backtrace(pool: WorkerPool) -> None:
    result = await pool.invoke(spec(UNREACHABLE), {}, ctx())
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "Unreachable"
    assert result.error.message == "wasm `unreachable` instruction executed"
    frames = result.error.stack.splitlines()
    assert frames[0].endswith("give_up") and frames[1].endswith("main")
    assert result.logs == "about to give up\n"


@pytest.mark.parametrize(
    ("body", "trap", "words"),
    [
        ("(drop (i32.div_s (i32.const 1) (i32.const 0)))", "IntegerDivisionByZero", "integer divide by zero"),
        ("(drop (i32.load (i32.const 0x7ffffff0)))", "MemoryOutOfBounds", "out of bounds memory access"),
        ("(call $main)", "StackOverflow", "call stack exhausted"),
    ],
)
async def test_other_traps_are_named_by_their_trap_code(
    pool: WorkerPool, body: str, trap: str, words: str
) -> None:
    result = await pool.invoke(spec(module(f'(func $main (export "_start") {body})')), {}, ctx())
    assert result.status == "failed" and result.error is not None
    assert result.error.type == trap and words in result.error.message
    assert "main" in result.error.stack
    if trap == "StackOverflow":  # a deep stack is cut, not sent whole
        assert len(result.error.stack.splitlines()) <= 65


async def test_a_failed_module_does_not_break_its_warm_worker(pool: WorkerPool) -> None:
    fn = spec(TEMPLATES[3].files["module.wat"])
    failed = await pool.invoke(fn, {"order_id": 7, "items": []}, ctx())
    assert failed.error is not None and failed.error.type == "NonZeroExit"
    ok = await pool.invoke(fn, {"order_id": 7, "items": [1]}, ctx())
    assert ok.ok and ok.result == {"ok": True, "order_id": 7} and not ok.cold


# --- limits -----------------------------------------------------------------------------------------------


async def started_runtime(pool: WorkerPool) -> None:
    """Run one guest first: the runtime's threads start with its first worker, which a deadline test
    should not time."""
    assert (await pool.invoke(spec(HELLO), {}, ctx())).ok


async def test_an_infinite_loop_times_out_within_100ms_of_the_deadline(
    pool: WorkerPool, runtime: WasmRuntime
) -> None:
    runtime.fuel_per_second = 10**15  # the wall clock, not the CPU budget, must end this one
    fn = spec(SPIN, timeout_sec=1)
    await started_runtime(pool)
    started = time.monotonic()
    result = await pool.invoke(fn, {}, ctx(timeout=0.5))
    elapsed = time.monotonic() - started
    assert result.status == "timeout" and result.error is not None
    assert (result.error.type, result.error.message) == ("Timeout", "function timed out after 0.5s")
    assert 0.5 <= elapsed < 0.6, elapsed
    again = await pool.invoke(spec(HELLO), {}, ctx())  # the thread is free again
    assert again.ok


def sleeper(nanoseconds: int) -> str:
    """Sleeps with poll_oneoff on a relative monotonic clock, then returns "slept"."""
    return module(
        f"""
      (data (i32.const 16) "\\"slept\\"\\00")
      (func $main (export "_start")
        (i64.store (i32.const 32768) (i64.const 7))                ;; userdata
        (i32.store8 (i32.const 32776) (i32.const 0))               ;; tag: clock
        (i32.store (i32.const 32784) (i32.const 1))                ;; clock id: monotonic
        (i64.store (i32.const 32792) (i64.const {nanoseconds}))    ;; relative timeout
        (drop (call $poll (i32.const 32768) (i32.const 40000) (i32.const 1) (i32.const 40100)))
        (call $emitz (i32.const 16))
        (call $flush))
    """,
        POLL,
    )


async def test_more_runaway_guests_than_threads_all_end_by_their_deadline(
    pool: WorkerPool, runtime: WasmRuntime
) -> None:
    runtime.fuel_per_second = 10**15
    fn = spec(SPIN)
    await started_runtime(pool)
    started = time.monotonic()
    runs = [pool.invoke(fn, {}, ctx(timeout=0.3)) for _ in range(runtime.threads + 4)]
    results = await asyncio.gather(*runs)
    assert [r.status for r in results] == ["timeout"] * len(runs)
    assert time.monotonic() - started < 0.6  # the queued ones end when they get a thread, not 0.3 s later


async def test_a_long_sleep_ends_at_the_deadline(pool: WorkerPool) -> None:
    # wasmtime's own poll_oneoff would hold the thread for the whole 10 s
    await started_runtime(pool)
    started = time.monotonic()
    result = await pool.invoke(spec(sleeper(10 * 10**9)), {}, ctx(timeout=0.5))
    assert result.status == "timeout", result.error
    assert time.monotonic() - started < 0.6


async def test_a_short_sleep_just_sleeps(pool: WorkerPool) -> None:
    started = time.monotonic()
    result = await pool.invoke(spec(sleeper(50 * 10**6)), {}, ctx(timeout=2))
    assert result.ok and result.result == "slept", result.error
    assert time.monotonic() - started >= 0.05


async def test_fuel_exhaustion_is_named(pool: WorkerPool, runtime: WasmRuntime) -> None:
    runtime.fuel_per_second = 1_000_000  # 2 s of timeout: a budget of two million units
    result = await pool.invoke(spec(SPIN), {}, ctx(timeout=2))
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "OutOfFuel"
    assert result.error.message.startswith("the function used its CPU budget of 2,000,000 fuel units")
    assert result.duration_ms < 1000


async def test_a_memory_hog_is_named_memory_limit_exceeded(pool: WorkerPool) -> None:
    result = await pool.invoke(spec(MEMORY_HOG, memory_mb=4), {}, ctx())
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "MemoryLimitExceeded"
    assert result.error.message.startswith(
        "memory limit of 4 MB reached (4.0 MB in use); then: wasm `unreachable`"
    )
    assert result.peak_memory_kb == 4096


async def test_an_allocator_that_reports_out_of_memory_is_named_too(pool: WorkerPool) -> None:
    # What a Rust program prints when an allocation fails, before it aborts (a trap).
    body = """
      (data (i32.const 16) "memory allocation of 268435456 bytes failed\\n\\00")
      (func $main (export "_start") (call $logz (i32.const 16)) (unreachable))
    """
    result = await pool.invoke(spec(module(body)), {}, ctx())
    assert result.error is not None and result.error.type == "MemoryLimitExceeded"
    assert "memory limit of 128 MB reached (0.1 MB in use)" in result.error.message


async def test_a_module_needing_more_memory_than_its_limit_is_refused(pool: WorkerPool) -> None:
    wat = module('(func $main (export "_start"))').replace(
        '(memory (export "memory") 2)', '(memory (export "memory") 100)'
    )
    result = await pool.invoke(spec(wat, memory_mb=2), {}, ctx())
    assert result.error is not None and result.error.type == "MemoryLimitExceeded"
    assert "exceeds memory limits" in result.error.message


async def test_tables_cannot_grow_past_their_cap(pool: WorkerPool) -> None:
    # Tables are not linear memory: without a cap this grow would take over a gigabyte of the host.
    body = """
      (table 1 funcref)
      (func $main (export "_start")
        (call $emit_int (table.grow (ref.null func) (i32.const 100000000)))
        (call $flush))
    """
    result = await pool.invoke(spec(module(body)), {}, ctx())
    assert result.ok and result.result == -1, result.error


async def test_logs_are_captured_and_capped(pool: WorkerPool) -> None:
    body = """
      (data (i32.const 16) "0123456789abcdef0123456789abcdef0123456789abcdef012345678901234\\n\\00")
      (func $main (export "_start")
        (local $i i32)
        (loop $line
          (call $logz (i32.const 16))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $line (i32.lt_u (local.get $i) (i32.const 100)))))
    """
    result = await pool.invoke(spec(module(body)), {}, ctx())  # 6400 bytes of log, a cap of 1024
    assert result.ok and result.logs_truncated
    assert result.logs.startswith("0123456789abcdef")
    assert result.logs.endswith("\n... [output truncated: 5376 bytes dropped]")
    assert len(result.logs.split("\n...")[0]) == 1024


async def test_a_result_larger_than_the_limit_is_refused(pool: WorkerPool) -> None:
    body = """
      (func $main (export "_start")
        (local $i i32)
        (i32.store (i32.const 0) (i32.const 65536))
        (i32.store (i32.const 4) (i32.const 65536))
        (loop $chunk
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $chunk (i32.lt_u (local.get $i) (i32.const 100)))))
    """
    result = await pool.invoke(spec(module(body)), {}, ctx())
    assert result.error is not None and result.error.type == "OutputTooLarge"
    assert result.error.message == f"stdout holds 6553600 bytes; a result may have at most {MAX_RESULT_BYTES}"
    # one 100 MB write: only what fits under the cap is copied out of the guest
    one_write = """
      (func $main (export "_start")
        (drop (memory.grow (i32.const 1600)))
        (i32.store (i32.const 0) (i32.const 0))
        (i32.store (i32.const 4) (i32.const 104857600))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
    """
    result = await pool.invoke(spec(module(one_write)), {}, ctx())
    assert result.error is not None and result.error.message.startswith("stdout holds 104857600 bytes")


# --- no ambient authority -----------------------------------------------------------------------------------

# Every variable, NUL-separated, goes to stderr.
ENVIRON = module(
    """
  (func $main (export "_start")
    (drop (call $environ_sizes (i32.const 32768) (i32.const 32772)))
    (drop (call $environ_get (i32.const 33000) (i32.const 36000)))
    (call $log (i32.const 36000) (i32.load (i32.const 32772))))
""",
    """
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
""",
)


async def test_the_environment_is_only_the_functions_own_variables(pool: WorkerPool) -> None:
    fn = spec(ENVIRON, env={"GREETING": "hi", "MODE": "test"})
    result = await pool.invoke(fn, {}, ctx())
    assert result.ok, result.error
    assert result.logs.split("\0")[:-1] == ["GREETING=hi", "MODE=test"]  # no PATH, HOME, NIMBUS_*


async def test_argv_is_the_function_name(pool: WorkerPool) -> None:
    result = await pool.invoke(spec(HELLO, name="named-fn"), {}, ctx())
    assert result.result["function"] == "named-fn"


async def test_there_is_no_file_system(pool: WorkerPool) -> None:
    # fd 3 would be the first preopened directory; path_open on it must fail, as must asking for it.
    imports = """
      (import "wasi_snapshot_preview1" "path_open"
        (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
    """
    body = """
      (data (i32.const 16) "/etc/passwd\\00")
      (data (i32.const 32) "[\\00")
      (data (i32.const 48) ",\\00")
      (data (i32.const 64) "]\\00")
      (func $main (export "_start")
        (call $emitz (i32.const 32))
        (call $emit_int (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 11)
                                         (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0)
                                         (i32.const 32768)))
        (call $emitz (i32.const 48))
        (call $emit_int (call $prestat (i32.const 3) (i32.const 32768)))
        (call $emitz (i32.const 64))
        (call $flush))
    """
    result = await pool.invoke(spec(module(body, imports)), {}, ctx())
    assert result.ok, result.error
    assert result.result == [8, 8]  # EBADF: there is no directory to open anything in
    # rights that do not fit WASI's type are refused by wasmtime itself, as a WasiError
    refused = body.replace("(i64.const 0) (i64.const 0)", "(i64.const -1) (i64.const -1)")
    result = await pool.invoke(spec(module(refused, imports)), {}, ctx())
    assert result.error is not None and result.error.type == "WasiError"
    assert "path_open" in result.error.message and "main" in result.error.stack


def test_only_wasi_preview1_functions_may_be_imported() -> None:
    env_import = '(module (import "env" "host_secret" (func)) (func (export "_start")))'
    with pytest.raises(ModuleError, match=r"imports func env\.host_secret"):
        check_module(wasmtime.wat2wasm(env_import))
    memory_import = '(module (import "wasi_snapshot_preview1" "memory" (memory 1)) (func (export "_start")))'
    with pytest.raises(ModuleError, match="imports memory"):
        check_module(wasmtime.wat2wasm(memory_import))


def test_isolation_is_strong_without_warnings(runtime: WasmRuntime) -> None:
    isolation = runtime.isolation()
    assert isolation.level == "strong" and isolation.warnings == ()
    info = runtime.info()
    assert (info.name, info.available, info.detail) == ("wasm", True, "in-process")
    assert info.version.startswith("wasmtime ")


# --- the module cache ---------------------------------------------------------------------------------------


async def test_a_new_runtime_finds_the_compiled_module_on_disk(settings: Settings) -> None:
    fn = spec(HELLO)
    first = WasmRuntime(settings)
    worker = await first.spawn(fn)
    assert worker.module.origin == "compiled"
    cached = first.cache_path(worker.module.key)
    assert cached.is_file() and cached.parent == settings.data_dir / "wasm-cache"
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # written aside, then renamed
    again = await first.spawn(fn)
    assert again.module.origin == "memory"
    await first.stop()

    second = WasmRuntime(settings)  # a restart: only the disk cache is left
    worker = await second.spawn(fn)
    assert worker.module.origin == "disk"
    result = await worker.invoke({"name": "disk"}, ctx())
    assert result.ok and result.result["message"] == "Hello, disk!"
    await second.stop()


async def test_a_damaged_cache_entry_is_compiled_again(settings: Settings) -> None:
    fn = spec(HELLO)
    runtime = WasmRuntime(settings)
    key = (await runtime.spawn(fn)).module.key
    runtime.cache_path(key).write_bytes(b"not a compiled module")
    fresh = WasmRuntime(settings)
    worker = await fresh.spawn(fn)
    assert worker.module.origin == "compiled"
    assert (await worker.invoke({}, ctx())).ok
    assert runtime.cache_path(key).read_bytes() != b"not a compiled module"
    await runtime.stop()
    await fresh.stop()


async def test_a_binary_module_runs_like_its_wat(pool: WorkerPool) -> None:
    binary = bytes(wasmtime.wat2wasm(HELLO))
    result = await pool.invoke(spec(binary=binary), {"name": "bytes"}, ctx())
    assert result.ok and result.result["message"] == "Hello, bytes!"


async def test_a_module_that_cannot_load_is_an_init_error(runtime: WasmRuntime, pool: WorkerPool) -> None:
    no_start = spec('(module (func (export "main")))')
    with pytest.raises(InitError) as caught:
        await runtime.spawn(no_start)
    assert caught.value.info.type == "InvalidModule"
    assert "does not export a `_start` function" in caught.value.info.message
    result = await pool.invoke(spec("(module (func"), {}, ctx())
    assert result.status == "failed" and result.error is not None and result.cold
    assert result.error.type == "InvalidModule" and result.error.message.startswith("module.wat line 1:")


# --- off the event loop -------------------------------------------------------------------------------------


async def test_the_event_loop_keeps_running_while_a_guest_computes(
    pool: WorkerPool, runtime: WasmRuntime
) -> None:
    runtime.fuel_per_second = 10**15
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    result = await pool.invoke(spec(SPIN), {}, ctx(timeout=0.4))
    ticker.cancel()
    assert result.status == "timeout"
    assert ticks >= 20  # about 40 if nothing blocked the loop


async def test_concurrent_invocations_each_get_their_own_instance(pool: WorkerPool) -> None:
    fn = spec(TEMPLATES[1].files["module.wat"])
    events = [{"numbers": list(range(n))} for n in range(1, 17)]
    results = await asyncio.gather(*(pool.invoke(fn, event, ctx()) for event in events))
    assert [r.result["count"] for r in results] == list(range(1, 17))
    assert [r.result["sum"] for r in results] == [sum(range(n)) for n in range(1, 17)]


# --- the save-time check ------------------------------------------------------------------------------------


def test_the_save_time_check_names_the_file_and_line() -> None:
    [problem] = check_syntax("wasm", {"module.wat": '(module\n  (func (export "_start")\n    (bogus)))'})
    assert (problem.file, problem.line) == ("module.wat", 3)
    assert problem.describe().startswith("module.wat line 3: ")
    [problem] = check_syntax("wasm", {"module.wasm": "bm90IHdhc20="})  # base64 of "not wasm"
    assert (
        problem.describe()
        == "module.wasm: binary is not a WebAssembly module (it does not start with \\0asm)"
    )
    [problem] = check_syntax(
        "wasm", {"module.wasm": base64.b64encode(wasmtime.wat2wasm("(module)")).decode()}
    )
    assert "does not export a `_start` function" in problem.message
    assert check_syntax("wasm", {"module.wat": HELLO, "README.md": "("}) == []


def test_a_component_is_not_a_command_module() -> None:
    component = b"\0asm\x0d\x00\x01\x00"
    with pytest.raises(ModuleError, match="component"):
        check_module(component)


def test_the_interface_is_read_without_compiling() -> None:
    interface = read_interface(bytes(wasmtime.wat2wasm(HELLO)))
    assert interface.exports == {"memory": "memory", "_start": "func"}
    assert [name for _, name, _ in interface.imports] == ["fd_read", "fd_write", "args_get", "proc_exit"]
    assert json.dumps(TEMPLATES[0].sample_event)
