"""The sandbox contains what a hostile function tries, reports it, and the runtime keeps serving:
platform files, the network, fork bombs, memory, endless loops, the environment, identity."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from engine.config import Settings
from engine.pool import WorkerPool
from engine.runtimes.python import PythonRuntime
from engine.sandbox import detect_isolation
from tests.engine.runtime_fixtures import *  # noqa: F403
from tests.engine.runtime_fixtures import ctx, make_settings, needs_root, spec

NORMAL = spec("def handler(event, context):\n    return {'ok': event}\n", name="normal")


async def assert_still_serves(p: WorkerPool) -> None:
    res = await p.invoke(NORMAL, 42, ctx())
    assert res.status == "success" and res.result == {"ok": 42}


def uid_processes(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


@needs_root
def test_detect_isolation_probes_a_strong_sandbox_as_root(settings: Settings) -> None:
    iso = detect_isolation(settings)
    assert iso.level == "strong", iso.warnings
    assert {"mount", "pid", "net", "ipc", "uts"} <= set(iso.namespaces)
    assert iso.uid_drop and iso.private_root and iso.rlimits and iso.seccomp
    assert iso.warnings == ()


@needs_root
async def test_runtime_reports_the_isolation_its_zygote_probed(runtime: PythonRuntime) -> None:
    assert runtime.isolation().level == "strong"
    assert runtime.isolation().uid_drop


@needs_root
async def test_function_cannot_read_platform_database_or_secret_key(
    pool: WorkerPool, settings: Settings
) -> None:
    (settings.data_dir / "nimbus.db").write_text("SQLite format 3")
    (settings.data_dir / "secret.key").write_text("k" * 44)
    probe = spec("""
        def handler(event, context):
            out = {}
            for path in event:
                try:
                    out[path] = open(path).read()
                except OSError as exc:
                    out[path] = type(exc).__name__
            return out
    """)
    paths = [str(settings.data_dir / "nimbus.db"), str(settings.data_dir / "secret.key"), "/etc/shadow"]
    res = await pool.invoke(probe, paths, ctx())
    assert res.status == "success"
    assert set(res.result.values()) <= {"FileNotFoundError", "PermissionError"}, res.result
    await assert_still_serves(pool)


@needs_root
async def test_function_cannot_read_another_functions_code(pool: WorkerPool, settings: Settings) -> None:
    victim = spec("def handler(e, c):\n    return 1\n", files={"secret.txt": "victim's secret"})
    assert (await pool.invoke(victim, None, ctx())).ok
    thief = spec("""
        import os
        def handler(event, context):
            found = []
            for path in event:
                try:
                    found.append(open(path).read())
                except OSError:
                    pass
            try:
                listing = os.listdir("/.functions")
            except OSError as exc:
                listing = type(exc).__name__
            return {"found": found, "listing": listing}
    """)
    host_copy = settings.data_dir / "functions" / victim.pool_key / "secret.txt"
    res = await pool.invoke(thief, [str(host_copy), f"/.functions/{victim.pool_key}/secret.txt"], ctx())
    assert res.ok, res.error
    assert res.result["found"] == [] and res.result["listing"] in ([], "PermissionError"), res.result


@needs_root
async def test_function_cannot_open_tcp_connection_to_local_listener(pool: WorkerPool) -> None:
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = spec("""
        import socket
        def handler(event, context):
            socket.create_connection(("127.0.0.1", event), timeout=2).close()
            return "connected"
    """)
    async with server:
        res = await pool.invoke(probe, port, ctx())
        await asyncio.sleep(0.05)
    assert res.status == "failed" and res.error is not None
    assert "Network is unreachable" in res.error.message, res.error
    assert accepted == []
    await assert_still_serves(pool)


async def test_function_granted_network_reaches_local_listener(pool: WorkerPool) -> None:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = spec(
        """
        import socket
        def handler(event, context):
            with socket.create_connection(("127.0.0.1", event), timeout=2) as conn:
                return conn.recv(5).decode()
    """,
        network=True,
    )
    async with server:
        res = await pool.invoke(client, port, ctx())
    assert res.result == "hello", res.error


@needs_root
async def test_fork_bomb_is_contained_and_killed_with_its_worker(pool: WorkerPool) -> None:
    bomb = spec("""
        import os, time
        def handler(event, context):
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
    """)
    res = await pool.invoke(bomb, None, ctx(timeout=1))
    assert res.status == "timeout"
    uid = pool.runtimes["python"].uid_for(bomb.function_id)  # type: ignore[attr-defined]
    assert uid is not None
    for _ in range(100):  # the pid namespace dies with its PID 1; give the kernel a moment to reap
        if not uid_processes(uid):
            break
        await asyncio.sleep(0.02)
    assert uid_processes(uid) == []
    await assert_still_serves(pool)


@needs_root
async def test_fork_count_is_capped_by_nproc(pool: WorkerPool) -> None:
    forker = spec("""
        import os, time
        def handler(event, context):
            n = 0
            while n < 1000:
                try:
                    pid = os.fork()
                except OSError as exc:
                    return {"forks": n, "error": type(exc).__name__}
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                n += 1
            return {"forks": n}
    """)
    res = await pool.invoke(forker, None, ctx())
    assert res.result["error"] == "BlockingIOError" and res.result["forks"] < 200, res.result
    await assert_still_serves(pool)


async def test_one_gib_allocation_under_128_mb_is_memory_limit_exceeded(pool: WorkerPool) -> None:
    hog = spec("def handler(event, context):\n    return len(bytearray(1 << 30))\n", memory_mb=128)
    res = await pool.invoke(hog, None, ctx())
    assert res.status == "failed" and res.error is not None
    assert res.error.type == "MemoryLimitExceeded"
    assert res.error.message == "memory limit exceeded (128 MB)"
    assert pool.stats()[hog.pool_key]["idle"] == 0  # the worker was replaced, not kept
    again = spec("def handler(event, context):\n    return len(bytearray(1 << 20))\n", memory_mb=128)
    assert (await pool.invoke(again, None, ctx())).result == 1 << 20


async def test_endless_loop_is_killed_within_100_ms_of_its_deadline(runtime: PythonRuntime) -> None:
    worker = await runtime.spawn(spec("def handler(event, context):\n    while True:\n        pass\n"))
    started = time.monotonic()
    res = await worker.invoke(None, ctx(timeout=1))
    status = await worker.wait_exit()
    dead_after = time.monotonic() - started
    assert res.status == "timeout" and res.error is not None
    assert res.error.type == "Timeout" and res.error.message == "function timed out after 1s"
    assert status is not None and status.signal == 9
    assert dead_after < 1.1, f"worker was dead only {dead_after:.3f}s after the invocation started"
    assert not worker.alive
    fresh = await runtime.spawn(NORMAL)
    assert (await fresh.invoke(1, ctx())).result == {"ok": 1}
    await fresh.close()


async def test_function_sees_only_its_own_environment(pool: WorkerPool) -> None:
    os.environ["NIMBUS_TEST_APP_SECRET"] = "app-only"
    try:
        probe = spec(
            """
            import os
            def handler(event, context):
                return {"env": dict(os.environ), "raw": open("/proc/self/environ", "rb").read().decode()}
        """,
            env={"GREETING": "hi", "API_TOKEN": "s3cret"},
        )
        res = await pool.invoke(probe, None, ctx())
    finally:
        del os.environ["NIMBUS_TEST_APP_SECRET"]
    assert res.result["env"] == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "GREETING": "hi",
        "API_TOKEN": "s3cret",
    }
    assert "NIMBUS" not in res.result["raw"] and "app-only" not in res.result["raw"]


@needs_root
async def test_each_function_runs_as_its_own_uid_without_capabilities(pool: WorkerPool) -> None:
    code = """
        import ctypes, os
        def handler(event, context):
            status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines()
                          if ":\\t" in line)
            libc = ctypes.CDLL(None, use_errno=True)
            return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "pid": os.getpid(),
                    "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
                    "unshare": libc.unshare(0x10000000), "seccomp": status["Seccomp"].strip()}
    """
    one, two = spec(code), spec(code)
    a = (await pool.invoke(one, None, ctx())).result
    b = (await pool.invoke(two, None, ctx())).result
    assert a["uid"] != b["uid"] and a["uid"] > 61000 and a["gid"] == a["uid"] and a["groups"] == []
    assert a["pid"] == 1  # PID 1 of its own namespace
    assert a["cap_eff"] == "0000000000000000" and a["cap_bnd"] == "0000000000000000"
    assert a["unshare"] == -1 and a["seccomp"] == "2"


@needs_root
async def test_private_root_holds_system_dirs_readonly_code_and_private_tmp(pool: WorkerPool) -> None:
    writer = spec("""
        import os
        def handler(event, context):
            open("/tmp/mine", "w").write("x")
            try:
                open("/var/task/new.py", "w")
                code_writable = True
            except OSError:
                code_writable = False
            return {"root": sorted(os.listdir("/")), "tmp": os.listdir("/tmp"),
                    "code_writable": code_writable}
    """)
    reader = spec("import os\ndef handler(event, context):\n    return os.listdir('/tmp')\n")
    res = await pool.invoke(writer, None, ctx())
    assert set(res.result["root"]) <= {
        "bin",
        "dev",
        "etc",
        "lib",
        "lib64",
        "proc",
        "root",
        "sbin",
        "tmp",
        "usr",
        "var",
        ".functions",
        "lib32",
        "libx32",
    }
    assert res.result["tmp"] == ["mine"] and res.result["code_writable"] is False
    assert (await pool.invoke(reader, None, ctx())).result == []


UNPRIVILEGED_PYTHON = "/usr/bin/python3"  # outside /root, so an unprivileged zygote can run it


@needs_root
@pytest.mark.skipif(not os.access(UNPRIVILEGED_PYTHON, os.X_OK), reason=f"needs {UNPRIVILEGED_PYTHON}")
async def test_unprivileged_zygote_uses_a_user_namespace_and_reports_partial() -> None:
    """What `make run` as a normal user gets: namespaces through a user namespace, no per-function uid."""
    data_dir = Path(tempfile.mkdtemp(prefix="nimbus-userns-"))
    os.chmod(data_dir, 0o755)  # pytest's tmp dirs are 0700: the zygote's user could not reach them
    s = make_settings(data_dir, python_executable=UNPRIVILEGED_PYTHON)
    rt = PythonRuntime(s, zygote_user=65534)
    try:
        await rt.start()
        iso = rt.isolation()
        assert iso.level == "partial" and not iso.uid_drop and iso.private_root
        assert {"user", "pid", "mount", "net"} <= set(iso.namespaces)
        assert any("no per-function uid" in w for w in iso.warnings)
        worker = await rt.spawn(
            spec("""
            import ctypes, os, socket
            def handler(event, context):
                try:
                    socket.create_connection(("127.0.0.1", 9), timeout=1)
                    net = "reachable"
                except OSError as exc:
                    net = exc.strerror
                mount = ctypes.CDLL(None).mount(b"none", b"/tmp", b"tmpfs", 0, None)  # needs a capability
                return {"pid": os.getpid(), "net": net, "db": os.path.exists(event), "mount": mount}
        """)
        )
        (data_dir / "nimbus.db").write_text("SQLite format 3")
        res = await worker.invoke(str(data_dir / "nimbus.db"), ctx())
        assert res.result == {"pid": 1, "net": "Network is unreachable", "db": False, "mount": -1}, res
        looping = await rt.spawn(spec("def handler(e, c):\n    while True:\n        pass\n"))
        assert (await looping.invoke(None, ctx(timeout=0.5))).status == "timeout"
        assert (await worker.invoke(str(data_dir), ctx())).ok
        await worker.close()
        await looping.close()
    finally:
        await rt.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
