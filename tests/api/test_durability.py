"""An accepted async invocation is never lost: 200 are accepted, the server is killed with SIGKILL
mid-run and restarted, and every one ends succeeded (or in the DLQ), with every run on record.

Runs the real `nimbus serve` as a subprocess. The function reports each run to a counter server the
test starts on loopback (the function is granted network for that), so a run the platform did not
record would show up as a mismatch."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.server import Server

REPORTING = """
import time, urllib.request

def handler(event, context):
    urllib.request.urlopen(f"http://127.0.0.1:{event['port']}/ran/{context.request_id}", timeout=5).read()
    time.sleep(0.05)
    return {"n": event["n"]}
"""


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


@pytest.mark.timeout(180)
async def test_accepted_async_invocations_survive_sigkill(
    tmp_path: Path, run_counter: tuple[int, collections.Counter[str]]
) -> None:
    counter_port, runs = run_counter
    server = Server(tmp_path, NIMBUS_QUEUE_WORKERS="8", NIMBUS_LEASE_SEC="5")
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
