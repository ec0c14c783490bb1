"""An accepted async invocation is never lost: 200 are accepted, the server is killed with SIGKILL
mid-run and restarted, and every one ends succeeded (or in the DLQ), with every run on record.

Runs the real `nimbus serve` as a subprocess. The function reports each run to a counter server the
test starts on loopback (the function is granted network for that), so a run the platform did not
record would show up as a mismatch."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

REPORTING = """
import time, urllib.request

def handler(event, context):
    urllib.request.urlopen(f"http://127.0.0.1:{event['port']}/ran/{context.request_id}", timeout=5).read()
    time.sleep(0.05)
    return {"n": event["n"]}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def run_counter() -> Iterator[tuple[int, collections.Counter[str]]]:
    runs: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                runs[self.path.rsplit("/", 1)[-1]] += 1
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], runs
    server.shutdown()


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key_file = data_dir / "bootstrap.key"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "NIMBUS_ADMIN_PASSWORD": "durability-test",
            "NIMBUS_PORT": str(self.port),
            "NIMBUS_DATA_DIR": str(self.data_dir),
            "NIMBUS_BOOTSTRAP_KEY_FILE": str(self.key_file),
            "NIMBUS_QUEUE_WORKERS": "8",
            "NIMBUS_LEASE_SEC": "5",
        }
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.data_dir / "server.log").read_text()
            try:
                if httpx.get(self.url + "/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become ready:\n" + (self.data_dir / "server.log").read_text())

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)  # the server, its zygote and every worker
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.mark.timeout(180)
async def test_accepted_async_invocations_survive_sigkill(
    tmp_path: Path, run_counter: tuple[int, collections.Counter[str]]
) -> None:
    counter_port, runs = run_counter
    server = Server(tmp_path)
    server.start()
    try:
        headers = {"Authorization": f"Bearer {server.key_file.read_text().strip()}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
            created = await http.post(
                "/api/v1/functions",
                json={
                    "name": "reporting",
                    "runtime": "python",
                    "code": REPORTING,
                    "network": True,
                    "retry_attempts": 3,
                    "retry_backoff_ms": 10,
                },
            )
            assert created.status_code == 201, created.text
            responses = await asyncio.gather(
                *[
                    http.post("/api/v1/functions/reporting/async", json={"n": n, "port": counter_port})
                    for n in range(200)
                ]
            )
        assert [r.status_code for r in responses] == [202] * 200
        accepted = [r.json()["request_id"] for r in responses]
        deadline = time.monotonic() + 30
        while sum(runs.values()) < 20:  # mid-run: some done, most still queued
            assert time.monotonic() < deadline, "no invocation ran"
            await asyncio.sleep(0.01)
        server.kill()
        runs_at_kill = sum(runs.values())
        assert runs_at_kill < 200, "everything finished before the kill; the test proves nothing"

        server.start()
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
            deadline = time.monotonic() + 120
            while True:
                details = await asyncio.gather(*[http.get(f"/api/v1/invocations/{rid}") for rid in accepted])
                statuses = collections.Counter(d.json()["status"] for d in details)
                if statuses["pending"] + statuses["running"] == 0:
                    break
                assert time.monotonic() < deadline, f"not settled: {statuses}"
                await asyncio.sleep(0.2)
            dlq = {
                m["original_request_id"]
                for m in (await http.get("/api/v1/dlq", params={"limit": 100})).json()["messages"]
            }
    finally:
        server.stop()

    for detail in details:
        inv = detail.json()
        assert inv["status"] == "success" or inv["id"] in dlq, inv
        ran = [a for a in inv["attempts"] if a["status"] != "running"]
        # every run the function made is on record (as an attempt that ended, or was abandoned at the kill);
        # an attempt killed before its first line ran is on record too, so records may exceed runs
        assert runs[inv["id"]] <= len(ran), (inv, runs[inv["id"]])
        assert runs[inv["id"]] >= 1
        assert sum(a["status"] == "success" for a in inv["attempts"]) == (inv["status"] == "success")
    assert statuses["success"] == 200
