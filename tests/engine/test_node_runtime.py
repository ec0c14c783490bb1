"""The Node.js runtime: real `node` workers in the shared sandbox. Handlers in CommonJS, ESM and callback
style; errors with the user's stack; stray errors; limits (time, memory) contained and named; output
captured and capped; the sandbox holds (no network, no platform files, own uid)."""

from __future__ import annotations

import asyncio
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from engine.config import Settings
from engine.runtimes.base import ExecResult, FunctionSpec, InitError
from engine.runtimes.node import NodeRuntime, find_node
from engine.runtimes.python import PythonRuntime
from tests.engine.runtime_fixtures import *  # noqa: F403
from tests.engine.runtime_fixtures import ctx, make_settings, needs_root

pytestmark = pytest.mark.skipif(find_node() is None, reason="no `node` under /usr on this machine")


def node_spec(
    code: str, *, handler: str = "index.handler", file: str = "index.js", **fields: Any
) -> FunctionSpec:
    values: dict[str, Any] = {
        "function_id": uuid.uuid4().hex,
        "name": "fn",
        "version": "$LATEST",
        "runtime": "nodejs",
        "handler": handler,
        "files": {file: textwrap.dedent(code)} | fields.pop("files", {}),
        "code_hash": uuid.uuid4().hex,
        "memory_mb": 128,
        "timeout_sec": 5,
    }
    values.update(fields)
    return FunctionSpec(**values)


@pytest.fixture
async def node(settings: Settings) -> AsyncIterator[NodeRuntime]:
    rt = NodeRuntime(PythonRuntime(settings))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def run(rt: NodeRuntime, code: str, event: Any = None, timeout: float = 5, **fields: Any) -> ExecResult:
    worker = await rt.spawn(node_spec(code, **fields))
    try:
        return await worker.invoke(event, ctx(timeout))
    finally:
        await worker.close()


async def test_async_handler_gets_event_context_and_env(node: NodeRuntime) -> None:
    worker = await node.spawn(
        node_spec(
            """
            let calls = 0;
            exports.handler = async (event, context) => {
              calls += 1;
              console.log('hi', event.name);
              console.error('warn');
              return {
                greeting: `Hello, ${event.name}!`, calls, env: process.env.GREETING,
                fn: context.functionName, mem: context.memoryLimitInMB, id: context.requestId,
                left: context.getRemainingTimeInMillis() > 0, keys: Object.keys(process.env).sort(),
              };
            };
            """,
            env={"GREETING": "hey"},
        )
    )
    try:
        assert worker.init_ms > 0
        first = await worker.invoke({"name": "Ada"}, ctx(request_id="req-1"))
        second = await worker.invoke({"name": "Bob"}, ctx())
    finally:
        await worker.close()
    assert first.status == "success", first.error
    assert first.result["greeting"] == "Hello, Ada!" and first.result["env"] == "hey"
    assert first.result["fn"] == "fn" and first.result["mem"] == 128 and first.result["id"] == "req-1"
    assert first.result["left"] is True
    assert first.logs == "hi Ada\nwarn\n"
    assert second.result["calls"] == 2 and second.logs == "hi Bob\nwarn\n"  # warm: module state kept
    # A clean environment: the function's own variables and the runtime's few, nothing of the app's.
    assert set(first.result["keys"]) <= {
        "GREETING",
        "PATH",
        "HOME",
        "LANG",
        "NIMBUS_FD",
        "UV_THREADPOOL_SIZE",
        "NODE_ENV",
    }
    assert first.peak_memory_kb and first.peak_memory_kb > 1000


async def test_esm_module_and_callback_handlers(node: NodeRuntime) -> None:
    esm = await run(node, "export const handler = async (e) => ({ esm: e });\n", 1, file="index.mjs")
    assert esm.status == "success" and esm.result == {"esm": 1}, esm.error
    # ESM syntax in a .js file without "type": "module": node 20.19+ loads it (require of an ES module);
    # older nodes refuse it, and the init error says how to fix it.
    version = tuple(int(x) for x in node.version.lstrip("v").split(".")[:2])
    if version >= (20, 19):
        plain = await run(node, "export const handler = async (e) => ({ plain: e });\n", 3)
        assert plain.status == "success" and plain.result == {"plain": 3}, plain.error
    else:
        with pytest.raises(InitError, match=r"name the file \.mjs"):
            await node.spawn(node_spec("export const handler = async (e) => ({ plain: e });\n"))
    typed = await run(
        node,
        "export default async function (e) { return { def: e }; }\n",
        2,
        files={"package.json": '{"type": "module"}'},
    )
    assert typed.status == "success" and typed.result == {"def": 2}, typed.error
    callback = await run(
        node, "exports.handler = (e, c, cb) => { setTimeout(() => cb(null, e * 2), 5); };\n", 21
    )
    assert callback.status == "success" and callback.result == 42


async def test_thrown_error_carries_type_message_and_the_users_stack(node: NodeRuntime) -> None:
    res = await run(
        node,
        """
        class OrderError extends Error { constructor(m) { super(m); this.name = 'OrderError'; } }
        function check(order) { throw new OrderError(`order ${order} has no items`); }
        exports.handler = async (event) => check(event.order);
        """,
        {"order": 7},
    )
    assert res.status == "failed" and res.error is not None
    assert res.error.type == "OrderError" and res.error.message == "order 7 has no items"
    assert "at check (" in res.error.stack and "index.js:3" in res.error.stack
    assert "shim.cjs" not in res.error.stack and "node:internal" not in res.error.stack


async def test_unhandled_rejection_and_uncaught_exception_fail_the_invocation(node: NodeRuntime) -> None:
    rejection = await run(
        node,
        """
        exports.handler = async () => {
          Promise.reject(new TypeError('nobody awaited me'));
          await new Promise((r) => setTimeout(r, 50));
          return 'unreachable';
        };
        """,
    )
    assert rejection.status == "failed" and rejection.error is not None
    assert rejection.error.type == "TypeError"
    assert rejection.error.message == "unhandled promise rejection: nobody awaited me"
    uncaught = await run(
        node,
        """
        exports.handler = () => new Promise(() => {
          setTimeout(() => { throw new RangeError('from a timer'); }, 5);
        });
        """,
    )
    assert uncaught.status == "failed" and uncaught.error is not None
    assert (uncaught.error.type, uncaught.error.message) == ("RangeError", "from a timer")
    assert "index.js" in uncaught.error.stack


async def test_load_errors_are_init_errors(node: NodeRuntime) -> None:
    with pytest.raises(InitError) as syntax:
        await node.spawn(node_spec("exports.handler = async (e) => {\n  return e +;\n};\n"))
    assert syntax.value.info.type == "SyntaxError" and "index.js:2" in syntax.value.info.stack
    with pytest.raises(InitError) as missing:
        await node.spawn(node_spec("exports.other = () => 1;\n"))
    assert missing.value.info.type == "HandlerNotFound"
    assert missing.value.info.message == 'handler "handler" is not exported by index.js'
    with pytest.raises(InitError) as exits:
        await node.spawn(node_spec("console.log('bye');\nprocess.exit(3);\n"))
    assert exits.value.info.message == "worker exited with code 3" and exits.value.logs == "bye\n"
    with pytest.raises(InitError) as throws:
        await node.spawn(node_spec("throw new Error('no config');\n"))
    assert (throws.value.info.type, throws.value.info.message) == ("Error", "no config")


async def test_endless_loop_is_a_timeout_and_the_output_so_far_is_kept(node: NodeRuntime) -> None:
    started = time.monotonic()
    res = await run(node, "exports.handler = () => { console.log('spinning'); for (;;) {} };\n", timeout=0.5)
    assert res.status == "timeout" and res.error is not None and res.error.type == "Timeout"
    assert res.logs == "spinning\n"
    assert time.monotonic() - started < 3


async def test_an_await_past_the_deadline_is_a_timeout(node: NodeRuntime) -> None:
    res = await run(node, "exports.handler = () => new Promise((r) => setTimeout(r, 10000));\n", timeout=0.3)
    assert res.status == "timeout" and res.error is not None
    assert res.error.message == "function timed out after 0.3s"


async def test_memory_hog_is_contained_and_named(node: NodeRuntime) -> None:
    res = await run(
        node,
        """
        exports.handler = async () => {
          const hog = [];
          for (;;) hog.push(new Array(1e6).fill(hog.length));
        };
        """,
        timeout=20,
    )
    assert res.status == "failed" and res.error is not None
    assert res.error.type == "MemoryLimitExceeded", (res.error, res.logs[-500:])


async def test_output_is_capped_with_a_marker(tmp_path: Any) -> None:
    rt = NodeRuntime(PythonRuntime(make_settings(tmp_path, output_cap_bytes=1000)))
    await rt.start()
    try:
        res = await run(rt, "exports.handler = async () => { console.log('x'.repeat(5000)); return 1; };\n")
    finally:
        await rt.stop()
    assert res.status == "success" and res.logs_truncated
    assert res.logs.endswith("[output truncated: 4001 bytes dropped]")


@needs_root
async def test_sandbox_holds_for_node(node: NodeRuntime, settings: Settings) -> None:
    (settings.data_dir / "nimbus.db").write_text("secret rows")
    res = await run(
        node,
        f"""
        const fs = require('fs'); const net = require('net');
        exports.handler = async () => {{
          const out = {{ uid: process.getuid() }};
          try {{ fs.readFileSync({str(settings.data_dir / "nimbus.db")!r}); out.db = 'read'; }}
          catch (e) {{ out.db = e.code; }}
          try {{ fs.writeFileSync('/var/task/x', 'y'); out.write = 'ok'; }}
          catch (e) {{ out.write = e.code; }}
          out.net = await new Promise((resolve) => {{
            const s = net.connect({{ host: '1.1.1.1', port: 80 }});
            s.on('connect', () => {{ s.destroy(); resolve('connected'); }});
            s.on('error', (e) => resolve(e.code));
          }});
          return out;
        }};
        """,
    )
    assert res.status == "success", res.error
    assert res.result["uid"] != 0 and res.result["db"] == "ENOENT"
    assert res.result["write"] in ("EROFS", "EACCES")
    assert res.result["net"] in ("ENETUNREACH", "EPERM", "EACCES")


async def test_warm_workers_of_one_function_run_in_parallel(node: NodeRuntime) -> None:
    spec = node_spec(
        "exports.handler = async (e) => { await new Promise(r => setTimeout(r, 200)); return e; };\n"
    )
    workers = await asyncio.gather(*(node.spawn(spec) for _ in range(3)))
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(w.invoke(i, ctx()) for i, w in enumerate(workers)))
        assert [r.result for r in results] == [0, 1, 2]
        assert time.monotonic() - started < 0.6
    finally:
        for w in workers:
            await w.close()
