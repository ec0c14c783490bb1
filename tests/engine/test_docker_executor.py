"""The Docker executor runs a function in a container of its image with the process runtimes' worker
protocol: results and logs, warm reuse with cold start and init time recorded, the user's error with its
stack, limits (memory, pids, read-only root, non-root uid, no network unless granted), a timeout and an
out-of-memory contained and named, the container gone afterwards. Real engine, real containers; skipped
with the engine's absence reason where none answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from ipaddress import ip_network
from typing import Any

import pytest

from engine.config import Settings
from engine.pool import WorkerPool
from engine.runtimes.base import InitError
from engine.runtimes.docker_executor import DockerRuntime
from engine.runtimes.python import PythonRuntime
from engine.runtimes.python_worker.shim import BASE_ENV
from tests.docker_support import containers_of, docker_image, needs_docker
from tests.engine.runtime_fixtures import ctx, make_settings, spec

pytestmark = needs_docker
__all__ = ["docker_image"]

PROBE = """
import os, socket, sys, uuid
TOKEN = uuid.uuid4().hex  # one per container: the same value means the same warm worker

def _read(*paths):
    for path in paths:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            pass
    return ""

def _writable(path):
    try:
        with open(os.path.join(path, "probe"), "w") as f:
            f.write("x")
        return True
    except OSError:
        return False

def handler(event, context):
    print("hello from the container")
    if event.get("boom"):
        raise ValueError("boom: " + event["boom"])
    if event.get("sleep"):
        import time
        time.sleep(event["sleep"])
    if event.get("eat_mb"):
        chunks = [bytearray(1024 * 1024) for _ in range(event["eat_mb"])]
        return len(chunks)
    if event.get("connect"):
        host, port = event["connect"]
        try:
            socket.create_connection((host, port), timeout=3).close()
            return {"connected": True}
        except OSError as exc:
            return {"connected": False, "error": str(exc)}
    return {
        "token": TOKEN, "pid": os.getpid(), "uid": os.getuid(), "python": sys.version.split()[0],
        "interfaces": [name for _, name in socket.if_nameindex()],
        "code_writable": _writable("/var/task"), "tmp_writable": _writable("/tmp"),
        "memory_limit": _read("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
        "pids_limit": _read("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
        "env": sorted(os.environ),
        "greeting": os.environ.get("GREETING"),
    }
"""


@pytest.fixture
async def pool(tmp_path: Any) -> AsyncIterator[WorkerPool]:
    settings: Settings = make_settings(tmp_path)
    python = PythonRuntime(settings)
    wp = WorkerPool(settings, {"python": python})
    wp.executors["docker"] = DockerRuntime(python)
    await wp.start()
    try:
        yield wp
    finally:
        await wp.stop()


async def gone(function_id: str, deadline_sec: float = 30.0) -> bool:
    """Whether the function's containers are all removed (polled: removal follows the kill)."""
    deadline = time.monotonic() + deadline_sec
    while time.monotonic() < deadline:
        if not await asyncio.to_thread(containers_of, function_id):
            return True
        await asyncio.sleep(0.2)
    return False


async def test_a_function_runs_in_a_warm_limited_container(pool: WorkerPool, docker_image: str) -> None:
    fn = spec(PROBE, executor="docker", image=docker_image, memory_mb=160, env={"GREETING": "hi"})
    first = await pool.invoke(fn, {}, ctx(timeout=30))
    assert first.status == "success", first.error
    assert first.cold and first.init_ms and first.init_ms > 0
    assert first.logs == "hello from the container\n"
    out = first.result
    assert out["pid"] == 1 and out["uid"] != 0  # the worker is the container's PID 1, not root
    assert out["interfaces"] == ["lo"]  # no network: loopback only
    assert out["code_writable"] is False and out["tmp_writable"] is True  # read-only root, tmpfs /tmp
    assert out["memory_limit"] == str(160 * 1024 * 1024)
    assert out["pids_limit"] == "128"
    assert out["greeting"] == "hi" and set(out["env"]) == {*BASE_ENV, "GREETING"}  # nothing of Nimbus's

    second = await pool.invoke(fn, {}, ctx(timeout=30))
    assert second.status == "success" and not second.cold and second.init_ms is None
    assert second.result["token"] == out["token"]  # the same warm container served it
    assert second.logs == "hello from the container\n"  # each invocation's own output

    failed = await pool.invoke(fn, {"boom": "bad input"}, ctx(timeout=30))
    assert failed.status == "failed" and failed.error is not None
    assert (failed.error.type, failed.error.message) == ("ValueError", "boom: bad input")
    assert 'File "/var/task/main.py"' in failed.error.stack and "shim" not in failed.error.stack
    third = await pool.invoke(fn, {}, ctx(timeout=30))
    assert third.result["token"] == out["token"]  # a user error does not cost the container

    await pool.retire(fn.function_id)
    assert await gone(fn.function_id)


async def test_timeout_and_out_of_memory_are_contained_and_named(pool: WorkerPool, docker_image: str) -> None:
    fn = spec(PROBE, executor="docker", image=docker_image, memory_mb=128)
    slow = await pool.invoke(fn, {"sleep": 60}, ctx(timeout=2))
    assert slow.status == "timeout" and slow.error is not None and slow.error.type == "Timeout"
    assert slow.logs == "hello from the container\n"  # output up to the kill is kept
    assert await gone(fn.function_id)  # the container was killed and removed

    greedy = await pool.invoke(fn, {"eat_mb": 1024}, ctx(timeout=60))
    assert greedy.status == "failed" and greedy.error is not None
    assert greedy.error.type == "MemoryLimitExceeded" and "128 MB" in greedy.error.message
    assert await gone(fn.function_id)
    after = await pool.invoke(fn, {}, ctx(timeout=30))
    assert after.status == "success" and after.cold  # a fresh container replaced it


async def test_network_is_off_unless_granted(pool: WorkerPool, docker_image: str) -> None:
    import docker

    client = docker.from_env(timeout=30)
    try:
        bridges = client.networks.list(names=["bridge"])
        ipam = (bridges[0].attrs["IPAM"]["Config"] or [{}])[0] if bridges else {}
        # The engine's side of its bridge: its Gateway, or by Docker's convention the subnet's first address.
        gateway = ipam.get("Gateway") or (str(ip_network(ipam["Subnet"])[1]) if "Subnet" in ipam else "")
    finally:
        client.close()
    if not gateway:
        pytest.skip("the Docker engine has no default bridge network to grant")
    accepted: list[str] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(str(writer.get_extra_info("peername")))
        writer.close()

    server = await asyncio.start_server(on_connect, "0.0.0.0", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        closed = spec(PROBE, executor="docker", image=docker_image)
        denied = await pool.invoke(closed, {"connect": [gateway, port]}, ctx(timeout=30))
        assert denied.status == "success" and denied.result["connected"] is False, denied.result
        granted = spec(PROBE, executor="docker", image=docker_image, network=True)
        allowed = await pool.invoke(granted, {"connect": [gateway, port]}, ctx(timeout=30))
        assert allowed.status == "success" and allowed.result == {"connected": True}, allowed.result
        # The server's accept callback may run after the result came back: wait for it (bounded).
        for _ in range(100):
            if accepted:
                break
            await asyncio.sleep(0.05)
        assert len(accepted) == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_init_errors_name_the_cause_and_leave_no_container(pool: WorkerPool, docker_image: str) -> None:
    runtime = pool.executors["docker"]
    with pytest.raises(InitError) as caught:
        await runtime.spawn(spec(PROBE, executor="docker", image="nimbus-no-such-image:0"))
    assert caught.value.info.type == "ImageNotFound"
    assert "not found on this engine" in caught.value.info.message

    fn = spec(PROBE, executor="docker", image=docker_image, handler="main.nowhere")
    res = await pool.invoke(fn, {}, ctx(timeout=30))
    assert res.status == "failed" and res.error is not None and res.cold
    assert res.error.type == "HandlerNotFound" and "'nowhere'" in res.error.message
    assert await gone(fn.function_id)
