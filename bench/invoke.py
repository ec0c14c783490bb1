"""Invocation benchmark: warm invoke in-process and over HTTP, sandboxed cold start, async throughput
with durable records, and same-run baselines (raw fork+exit, raw JSON round trip over a pipe). Python is
measured in full; every other runtime available on this node gets warm (in-process and over HTTP) and
cold figures for a trivial echo function (keys prefixed with the runtime, e.g. `nodejs_warm_http_p50_ms`).

    .venv/bin/python bench/invoke.py [--n 2000] [--async-n 5000]

Prints a table, then one JSON line of the figures (units in the key names)."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import Settings  # noqa: E402
from engine.events import InvocationFinished  # noqa: E402
from engine.platform import Platform  # noqa: E402
from engine.principal import SYSTEM  # noqa: E402
from engine.services.function_schemas import FunctionCreate  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import wasm_bench  # noqa: E402

TRIVIAL = "def handler(event, context):\n    return event\n"
# A trivial echo function per runtime: (handler, files).
ECHO: dict[str, tuple[str, dict[str, str]]] = {
    "python": ("main.handler", {"main.py": TRIVIAL}),
    "nodejs": ("index.handler", {"index.js": "exports.handler = async (event) => event;\n"}),
    "go": (
        "Handler",
        {
            "main.go": 'package main\n\nimport (\n\t"context"\n\t"encoding/json"\n)\n\n'
            "func Handler(ctx context.Context, event json.RawMessage) (any, error) {\n"
            "\treturn event, nil\n}\n"
        },
    ),
    "rust": (
        "handler",
        {
            "lib.rs": "use crate::Context;\n\n"
            "pub fn handler(event: &str, _ctx: &Context) -> Result<String, String> {\n"
            "    Ok(event.to_string())\n}\n"
        },
    ),
    "wasm": ("_start", {"module.wat": wasm_bench.ECHO}),
}
OTHER_N = 500  # warm invocations per other runtime
OTHER_COLD_N = 30


def echo_request(runtime: str) -> dict[str, Any]:
    handler, files = ECHO[runtime]
    return {"name": f"echo-{runtime}", "runtime": runtime, "handler": handler, "files": files}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "p95": pct(values, 0.95), "p99": pct(values, 0.99)}


# --- baselines ------------------------------------------------------------------------------------

FORK_PROBE = textwrap.dedent("""
    import os, sys, time
    n = int(sys.argv[1]); out = []
    for _ in range(n):
        t = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        out.append((time.perf_counter() - t) * 1000)
    print(",".join(f"{x:.4f}" for x in out))
""")

ECHO_WORKER = textwrap.dedent("""
    import json, struct, sys
    r, w = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = r.read(4)
        if not head:
            break
        body = json.loads(r.read(struct.unpack(">I", head)[0]))
        data = json.dumps({"ok": True, "result": body}).encode()
        w.write(struct.pack(">I", len(data)) + data); w.flush()
""")


def baseline_fork(n: int) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", FORK_PROBE, str(n)], capture_output=True, text=True, check=True
    )
    return [float(x) for x in out.stdout.strip().split(",")]


def baseline_pipe(n: int) -> list[float]:
    import struct

    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", ECHO_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin and proc.stdout
    times = []
    payload = json.dumps({"event": {"n": 1}}).encode()
    for _ in range(n):
        t = time.perf_counter()
        proc.stdin.write(struct.pack(">I", len(payload)) + payload)
        proc.stdin.flush()
        size = struct.unpack(">I", proc.stdout.read(4))[0]
        json.loads(proc.stdout.read(size))
        times.append((time.perf_counter() - t) * 1000)
    proc.stdin.close()
    proc.wait()
    return times


# --- Nimbus in-process ----------------------------------------------------------------------------


async def in_process(data_dir: Path, n: int, async_n: int) -> dict[str, Any]:
    settings = Settings(
        data_dir=data_dir,
        admin_password="bench-password",
        queue_workers=32,
        max_concurrency=64,
        max_waiting=100_000,
        wait_timeout_sec=60,
    )
    async with Platform(settings) as platform:
        await platform.functions.create(
            SYSTEM, FunctionCreate(name="trivial", runtime="python", code=TRIVIAL)
        )
        for _ in range(50):
            await platform.invoker.invoke(SYSTEM, "trivial", {"n": 1})
        warm = []
        for _ in range(n):
            t = time.perf_counter()
            await platform.invoker.invoke(SYSTEM, "trivial", {"n": 1})
            warm.append((time.perf_counter() - t) * 1000)

        resolved = await platform.catalog.resolve("trivial")
        runtime = platform.runtimes["python"]
        cold = []
        for _ in range(min(200, n)):
            t = time.perf_counter()
            worker = await runtime.spawn(resolved.spec)
            cold.append((time.perf_counter() - t) * 1000)
            await worker.close()

        others: dict[str, dict[str, list[float]]] = {}
        for rt in [r for r in ECHO if r != "python" and r in platform.runtimes]:
            others[rt] = await measure_runtime(platform, rt)

        await platform.batcher.flush()
        done = asyncio.Event()
        finished = 0

        def on_finished(event: Any) -> None:
            nonlocal finished
            if event.final:
                finished += 1
                if finished == async_n:
                    done.set()

        unsubscribe = platform.bus.on(InvocationFinished, callback=on_finished)
        t0 = time.perf_counter()
        clients = 256  # many concurrent clients, as over HTTP, each submitting one after another

        async def client(first: int) -> None:
            # (A semaphore over async_n waiting tasks instead cost the loop more than the platform did:
            # Python 3.11's Semaphore scans its waiters on every release.)
            for i in range(first, async_n, clients):
                await platform.invoker.submit(SYSTEM, "trivial", {"n": i})

        await asyncio.gather(*[client(c) for c in range(clients)])
        accepted_s = time.perf_counter() - t0
        await asyncio.wait_for(done.wait(), timeout=300)
        total_s = time.perf_counter() - t0
        unsubscribe()
        return {
            "warm": warm,
            "cold": cold,
            "async_accept_per_s": async_n / accepted_s,
            "async_done_per_s": async_n / total_s,
            "isolation": platform.isolation().level,
            "others": others,
        }


async def measure_runtime(platform: Platform, runtime: str) -> dict[str, list[float]]:
    """Warm in-process invokes and cold spawns of the runtime's echo function."""
    name = f"echo-{runtime}"
    await platform.functions.create(SYSTEM, FunctionCreate(**echo_request(runtime)))
    for _ in range(20):
        outcome = await platform.invoker.invoke(SYSTEM, name, {"n": 1})
        assert outcome.result.ok, outcome.result.error
    warm = []
    for _ in range(OTHER_N):
        t = time.perf_counter()
        await platform.invoker.invoke(SYSTEM, name, {"n": 1})
        warm.append((time.perf_counter() - t) * 1000)
    resolved = await platform.catalog.resolve(name)
    cold = []
    for _ in range(OTHER_COLD_N):
        t = time.perf_counter()
        worker = await platform.runtimes[runtime].spawn(resolved.spec)
        cold.append((time.perf_counter() - t) * 1000)
        await worker.close()
    return {"warm": warm, "cold": cold}


# --- Nimbus over HTTP -----------------------------------------------------------------------------


def over_http(data_dir: Path, n: int, runtimes: list[str]) -> dict[str, list[float]]:
    """Warm sync invokes over HTTP/1.1 keep-alive against a real `nimbus serve`, per runtime."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key_file = data_dir / "key"
    env = {
        **os.environ,
        "NIMBUS_PORT": str(port),
        "NIMBUS_DATA_DIR": str(data_dir),
        "NIMBUS_ADMIN_PASSWORD": "bench-password",
        "NIMBUS_BOOTSTRAP_KEY_FILE": str(key_file),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline = time.time() + 30
        while True:
            try:
                conn.request("GET", "/health/ready")
                if conn.getresponse().read() and key_file.exists():
                    break
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        headers = {
            "Authorization": f"Bearer {key_file.read_text().strip()}",
            "Content-Type": "application/json",
        }
        event = json.dumps({"n": 1})
        out: dict[str, list[float]] = {}
        for runtime in runtimes:
            conn.request("POST", "/api/v1/functions", body=json.dumps(echo_request(runtime)), headers=headers)
            created = conn.getresponse()
            assert created.status == 201, created.read()
            created.read()
            times = []
            count = n if runtime == "python" else OTHER_N
            for i in range(count + 50):
                t = time.perf_counter()
                conn.request("POST", f"/api/v1/functions/echo-{runtime}/invoke", body=event, headers=headers)
                response = conn.getresponse()
                response.read()
                if i >= 50:
                    times.append((time.perf_counter() - t) * 1000)
                assert response.status == 200
            out[runtime] = times
        return out
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def rss_idle_mb(data_dir: Path) -> tuple[float, float]:
    """RSS and PSS of an idle `nimbus serve` (server + zygote + its pre-forked workers), after start-up.
    The RSS sum counts the pages the forked processes share with the zygote once per process; PSS
    splits each shared page among its sharers, so it is what the tree really occupies."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "NIMBUS_PORT": str(port),
        "NIMBUS_DATA_DIR": str(data_dir),
        "NIMBUS_ADMIN_PASSWORD": "bench-password",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(2)
        rss = pss = 0
        for pid in _tree(proc.pid):
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
            except OSError:
                pass
        return rss / 1024, pss / 1024
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def _tree(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    children = [int(x) for x in out.stdout.split()]
    return [pid] + [p for c in children for p in _tree(c)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--async-n", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nimbus-bench-") as tmp:
        base = Path(tmp)
        fork = summary(baseline_fork(500))
        pipe = summary(baseline_pipe(args.n))
        inproc = asyncio.run(in_process(base / "inproc", args.n, args.async_n))
        warm, cold = summary(inproc["warm"]), summary(inproc["cold"])
        https = over_http(base / "http", args.n, ["python", *inproc["others"]])
        http_ = summary(https["python"])
        rss, pss = rss_idle_mb(base / "rss")
        wasm = asyncio.run(wasm_bench.measure_wasm(base / "wasm"))
    figures = {
        "warm_inproc_p50_ms": warm["p50"],
        "warm_inproc_p99_ms": warm["p99"],
        "warm_http_p50_ms": http_["p50"],
        "warm_http_p99_ms": http_["p99"],
        "cold_start_p50_ms": cold["p50"],
        "cold_start_p95_ms": cold["p95"],
        "async_accept_per_s": inproc["async_accept_per_s"],
        "async_done_per_s": inproc["async_done_per_s"],
        "baseline_fork_exit_p50_ms": fork["p50"],
        "baseline_pipe_roundtrip_p50_ms": pipe["p50"],
        "ratio_warm_inproc_to_pipe": warm["p50"] / pipe["p50"],
        "ratio_cold_to_fork": cold["p50"] / fork["p50"],
        "idle_rss_mb": rss,
        "idle_pss_mb": pss,
        "isolation": inproc["isolation"],
    }
    for runtime, measured in inproc["others"].items():
        rt_warm, rt_cold, rt_http = (
            summary(measured["warm"]),
            summary(measured["cold"]),
            summary(https[runtime]),
        )
        figures[f"{runtime}_warm_inproc_p50_ms"] = rt_warm["p50"]
        figures[f"{runtime}_warm_inproc_p99_ms"] = rt_warm["p99"]
        figures[f"{runtime}_warm_http_p50_ms"] = rt_http["p50"]
        figures[f"{runtime}_warm_http_p99_ms"] = rt_http["p99"]
        figures[f"{runtime}_cold_start_p50_ms"] = rt_cold["p50"]
    for key in (
        "wasm_warm_p50_ms",
        "wasm_inline_run_p50_ms",
        "wasm_cold_p50_ms",
        "wasmtime_raw_call_p50_ms",
        "wasmtime_raw_wasi_run_p50_ms",
        "wasm_warm_vs_raw_wasi_ratio",
    ):
        figures[f"pool_{key}" if key == "wasm_warm_p50_ms" else key] = wasm[key]
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
