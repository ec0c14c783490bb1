"""The Python runtime runs handlers in sandboxed workers and keeps the worker protocol: results, user
errors with the user's traceback, captured and capped output, init errors, crashes and bad frames."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from engine.config import Settings
from engine.runtimes.base import InitError
from engine.runtimes.python import PythonRuntime
from tests.engine.runtime_fixtures import *  # noqa: F403
from tests.engine.runtime_fixtures import ctx, make_settings, spec


async def run_once(rt: PythonRuntime, code: str, event: object = None, timeout: float = 5, **fields: object):
    worker = await rt.spawn(spec(code, **fields))
    try:
        return await worker.invoke(event, ctx(timeout=timeout))
    finally:
        await worker.close()


async def test_handler_result_logs_and_context_reach_the_caller(runtime: PythonRuntime) -> None:
    worker = await runtime.spawn(
        spec(
            """
        import sys
        def handler(event, context):
            print("to stdout")
            print("to stderr", file=sys.stderr)
            context.logger.info("via logger")
            return {"event": event, "request_id": context.request_id, "name": context.function_name,
                    "version": context.function_version, "memory": context.memory_limit_in_mb,
                    "source": context.source, "attempt": context.attempt,
                    "remaining": context.get_remaining_time_in_millis()}
    """,
            name="greeter",
            memory_mb=192,
        )
    )
    res = await worker.invoke({"x": 1}, ctx(timeout=3, request_id="req-1", source="cron", attempt=2))
    await worker.close()
    assert res.status == "success" and res.error is None
    assert res.result["event"] == {"x": 1} and res.result["request_id"] == "req-1"
    assert (res.result["name"], res.result["version"], res.result["memory"]) == ("greeter", "$LATEST", 192)
    assert (res.result["source"], res.result["attempt"]) == ("cron", 2)
    assert 2000 < res.result["remaining"] <= 3000
    assert res.logs == "to stdout\nto stderr\n[INFO] via logger\n"
    assert res.duration_ms > 0 and res.peak_memory_kb and res.peak_memory_kb > 1000


async def test_worker_keeps_module_state_between_invocations(runtime: PythonRuntime) -> None:
    worker = await runtime.spawn(
        spec("COUNT = 0\ndef handler(e, c):\n    global COUNT\n    COUNT += 1\n    return COUNT\n")
    )
    results = [(await worker.invoke(None, ctx())).result for _ in range(3)]
    await worker.close()
    assert results == [1, 2, 3]
    assert worker.init_ms > 0


async def test_async_handler_is_awaited(runtime: PythonRuntime) -> None:
    res = await run_once(
        runtime,
        """
        import asyncio
        async def handler(event, context):
            await asyncio.sleep(0.01)
            return event * 2
    """,
        event=21,
    )
    assert res.result == 42


async def test_user_exception_carries_only_the_users_traceback(runtime: PythonRuntime) -> None:
    res = await run_once(
        runtime,
        """
        import json
        def helper(text):
            return json.loads(text)
        def handler(event, context):
            return helper("{not json")
    """,
    )
    assert res.status == "failed" and res.error is not None
    assert res.error.type == "JSONDecodeError" and "Expecting property name" in res.error.message
    stack = res.error.stack
    assert stack.startswith("Traceback (most recent call last):\n")
    assert 'File "/var/task/main.py", line 6, in handler' in stack and "in helper" in stack
    assert "shim" not in stack and "zygote" not in stack and "confine" not in stack


async def test_output_over_the_cap_is_truncated_with_a_marker(tmp_path) -> None:
    rt = PythonRuntime(make_settings(tmp_path, output_cap_bytes=1000))
    await rt.start()
    try:
        res = await run_once(rt, "def handler(e, c):\n    print('x' * 4999)\n    return 'done'\n")
    finally:
        await rt.stop()
    assert res.result == "done" and res.logs_truncated
    assert res.logs == "x" * 1000 + "\n... [output truncated: 4000 bytes dropped]"


async def test_fd_level_writes_and_subprocess_output_are_captured(runtime: PythonRuntime) -> None:
    res = await run_once(
        runtime,
        """
        import os, subprocess
        def handler(event, context):
            os.write(1, b"raw fd write\\n")
            subprocess.run(["/bin/echo", "from a child"], check=True)
            return None
    """,
    )
    assert res.logs == "raw fd write\nfrom a child\n", res.logs


async def test_each_invocation_gets_only_its_own_output(runtime: PythonRuntime) -> None:
    worker = await runtime.spawn(spec("print('at import')\ndef handler(e, c):\n    print(e)\n"))
    first, second = (await worker.invoke("one", ctx())), (await worker.invoke("two", ctx()))
    await worker.close()
    assert first.logs == "at import\none\n" and second.logs == "two\n"


async def test_syntax_error_is_an_init_error_with_the_users_location(runtime: PythonRuntime) -> None:
    with pytest.raises(InitError) as caught:
        await runtime.spawn(
            spec(
                "print('loading')\nimport broken\n",
                files={"broken.py": "x = 1\ndef handler(event, context)\n    return 1\n"},
            )
        )
    info = caught.value.info
    assert info.type == "SyntaxError" and info.message.startswith("expected ':'")
    assert (
        'File "/var/task/main.py", line 2' in info.stack
        and 'File "/var/task/broken.py", line 2' in info.stack
    )
    assert "shim" not in info.stack and "importlib" not in info.stack
    assert caught.value.logs == "loading\n" and caught.value.init_ms is not None


async def test_missing_handler_is_an_init_error(runtime: PythonRuntime) -> None:
    with pytest.raises(InitError) as caught:
        await runtime.spawn(spec("def other(event, context):\n    return 1\n"))
    assert caught.value.info.type == "HandlerNotFound"
    assert caught.value.info.message == "handler 'handler' not found in module 'main'"


async def test_failing_import_is_an_init_error_with_the_users_traceback(runtime: PythonRuntime) -> None:
    with pytest.raises(InitError) as caught:
        await runtime.spawn(
            spec(
                "import helpers\ndef handler(e, c):\n    return 1\n",
                files={"helpers.py": "import no_such_module\n"},
            )
        )
    info = caught.value.info
    assert info.type == "ModuleNotFoundError" and "no_such_module" in info.message
    assert 'File "/var/task/main.py", line 1' in info.stack and 'File "/var/task/helpers.py"' in info.stack
    assert "importlib" not in info.stack and "shim" not in info.stack


async def test_handler_in_a_named_module_is_found(runtime: PythonRuntime) -> None:
    res = await run_once(
        runtime, "", handler="api.entry", files={"api.py": "def entry(e, c):\n    return 'api'\n"}
    )
    assert res.result == "api"


async def test_result_that_is_not_json_is_a_serialization_error_and_worker_survives(
    runtime: PythonRuntime,
) -> None:
    worker = await runtime.spawn(
        spec("def handler(event, context):\n    return {1, 2} if event else 'fine'\n")
    )
    bad = await worker.invoke(True, ctx())
    good = await worker.invoke(False, ctx())
    await worker.close()
    assert bad.status == "failed" and bad.error is not None and bad.error.type == "SerializationError"
    assert "not JSON serializable" in bad.error.message
    assert good.result == "fine"


async def test_result_over_the_frame_cap_is_rejected(runtime: PythonRuntime) -> None:
    res = await run_once(runtime, "def handler(e, c):\n    return 'x' * (7 * 1024 * 1024)\n", memory_mb=256)
    assert res.error is not None and res.error.type == "ResultTooLarge"


async def test_crashing_worker_reports_the_signal(runtime: PythonRuntime) -> None:
    res = await run_once(runtime, "import ctypes\ndef handler(e, c):\n    ctypes.string_at(0)\n")
    assert res.status == "failed" and res.error is not None
    assert res.error.type == "WorkerCrashed"
    assert res.error.message == f"worker killed by signal {int(signal.SIGSEGV)} (SIGSEGV)"


async def test_exiting_worker_reports_its_exit_code(runtime: PythonRuntime) -> None:
    res = await run_once(runtime, "import os\ndef handler(e, c):\n    print('bye')\n    os._exit(3)\n")
    assert res.error is not None and res.error.message == "worker exited with code 3"
    assert res.logs == "bye\n"


async def test_oversized_frame_from_the_worker_is_a_protocol_error(runtime: PythonRuntime) -> None:
    worker = await runtime.spawn(
        spec("""
        import os, stat
        def handler(event, context):
            for fd in range(3, 64):
                try:
                    if stat.S_ISSOCK(os.fstat(fd).st_mode):
                        os.write(fd, b"\\xff\\xff\\xff\\xff")
                except OSError:
                    pass
            return None
    """)
    )
    res = await worker.invoke(None, ctx())
    assert res.status == "failed" and res.error is not None and res.error.type == "ProtocolError"
    assert not worker.alive
    status = await worker.wait_exit()
    assert status is not None and status.signal == signal.SIGKILL
    await worker.close()


async def test_timeout_keeps_the_output_printed_before_the_kill(runtime: PythonRuntime) -> None:
    res = await run_once(
        runtime,
        """
        import time
        def handler(e, c):
            print("started", flush=True)
            time.sleep(10)
    """,
        timeout=0.3,
    )
    assert res.status == "timeout" and res.logs == "started\n"


async def test_runtime_restarts_a_dead_zygote(runtime: PythonRuntime) -> None:
    worker = await runtime.spawn(spec("def handler(e, c):\n    return 'ok'\n"))
    os.kill(runtime.zygote_pid, signal.SIGKILL)
    status = await worker.wait_exit()  # its workers die with it
    assert status is not None and not worker.alive
    await worker.close()
    fresh = await runtime.spawn(spec("def handler(e, c):\n    return 'again'\n"))
    assert (await fresh.invoke(None, ctx())).result == "again"
    await fresh.close()


async def test_stop_kills_every_worker(settings: Settings) -> None:
    rt = PythonRuntime(settings)
    await rt.start()
    worker = await rt.spawn(spec("def handler(e, c):\n    return 1\n"))
    await rt.stop()
    assert await asyncio.wait_for(worker.wait_exit(), 2) is not None
    await worker.close()


async def test_unusable_environment_variable_is_an_init_error(runtime: PythonRuntime) -> None:
    with pytest.raises(InitError) as caught:
        await runtime.spawn(spec("def handler(e, c):\n    return 1\n", env={"BAD": "nul\0byte"}))
    assert caught.value.info.type == "ValueError"
