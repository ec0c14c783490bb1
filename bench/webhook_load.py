"""Webhook load test, bounded and loopback only: a real `nimbus serve` (started here, on 127.0.0.1, in a
temp data dir), one function behind a webhook that verifies GitHub-style signatures and allows `--limit`
requests per minute, and `--n` signed requests sent by `--concurrency` connections.

Prints throughput, client latency p50/p99 (and the server's own handling latency from the history),
accepted vs 429, and checks two things exactly, failing (exit 1) when either does not hold:
- the rate limit: in every minute window, accepted == min(limit, requests that arrived in it);
- the history: one row per request sent, each with the status the client got.

    .venv/bin/python bench/webhook_load.py [--n 2000] [--limit 500] [--concurrency 32] [--mode sync]

Ends with one JSON line of the figures."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.services.webhook_signatures import sign_github  # noqa: E402
from tests.server import Server  # noqa: E402

CODE = 'def handler(event, context):\n    return {"n": event["body"]["n"]}\n'


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def setup(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    with server.api() as api:
        api.post(
            "/api/v1/functions", json={"name": "load", "runtime": "python", "code": CODE}
        ).raise_for_status()
        api.post("/api/v1/functions/load/webhook/enable").raise_for_status()
        response = api.put(
            "/api/v1/functions/load/webhook",
            json={"mode": args.mode, "signature_scheme": "github", "rate_limit_per_min": args.limit},
        )
        response.raise_for_status()
        hook = response.json()
        api.post("/api/v1/functions/load/invoke", json={"body": {"n": -1}}).raise_for_status()  # warm
    return hook


async def fire(url: str, secret: str, n: int, concurrency: int) -> tuple[Counter[int], list[float], float]:
    """Send n signed requests over `concurrency` keep-alive connections; (statuses, latencies ms, seconds)."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    bodies = [json.dumps({"n": i}).encode() for i in range(n)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    # Idle connections are closed by the client well before the server's keep-alive timeout (5 s), so a
    # request is never sent on a connection the server is closing at that moment.
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=1.0
    )

    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                headers = {
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": sign_github(secret, body),
                }
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.TransportError:  # no HTTP answer: reported, and the run fails its check
                    statuses[0] += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return statuses, latencies, elapsed


def history(server: Server, webhook_id: str, expected: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every call row (paging through the API), once the write-behind batcher has written them all."""
    deadline = time.monotonic() + timeout
    with server.api() as api:
        while True:
            rows: list[dict[str, Any]] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 100} | ({"cursor": cursor} if cursor else {})
                page = api.get(f"/api/v1/webhooks/{webhook_id}/calls", params=params).json()
                rows += page["calls"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)


def check(
    rows: list[dict[str, Any]], statuses: Counter[int], n: int, limit: int
) -> tuple[list[str], dict[int, Counter[str]]]:
    problems: list[str] = []
    if statuses.get(0):
        problems.append(f"{statuses[0]} requests got no HTTP answer (connection errors)")
    if len(rows) != n:
        problems.append(f"history has {len(rows)} rows for {n} requests")
    if len({r["id"] for r in rows}) != len(rows):
        problems.append("duplicate history rows")
    recorded = Counter(r["status"] for r in rows)
    answered = Counter({status: count for status, count in statuses.items() if status})
    if recorded != answered:
        problems.append(f"statuses recorded {dict(recorded)} != statuses received {dict(answered)}")
    windows: dict[int, Counter[str]] = {}
    for row in rows:
        window = int(datetime.fromisoformat(row["created_at"]).timestamp() // 60)
        windows.setdefault(window, Counter())[row["outcome"] + ":" + (row["reason"] or "-")] += 1
    for window, counts in sorted(windows.items()):
        accepted = counts["accepted:-"]
        arrived = sum(counts.values())
        if accepted != min(limit, arrived):
            problems.append(f"window {window}: {accepted} accepted of {arrived}; the limit is {limit}")
        if counts.keys() - {"accepted:-", "rejected:rate_limited"}:
            problems.append(f"window {window}: unexpected outcomes {dict(counts)}")
    return problems, windows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=500, help="requests per minute the webhook allows")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--mode", choices=("sync", "async"), default="sync")
    args = parser.parse_args()
    if not 1 <= args.n <= 20_000 or not 1 <= args.concurrency <= 256:
        parser.error("--n must be 1-20000 and --concurrency 1-256 (a bounded test)")

    data_dir = Path(tempfile.mkdtemp(prefix="nimbus-webhook-bench-"))
    server = Server(data_dir, "bench-password-123", NIMBUS_HOST="127.0.0.1")
    server.start()
    ok = False
    try:
        hook = setup(server, args)
        url = server.url + hook["webhook_url"]
        statuses, latencies, elapsed = asyncio.run(fire(url, hook["secret"], args.n, args.concurrency))
        rows = history(server, hook["webhook_id"], args.n)
        problems, windows = check(rows, statuses, args.n, args.limit)
        server_ms = [r["latency_ms"] for r in rows]
        accepted = sum(c for s, c in statuses.items() if 200 <= s < 300)
        figures = {
            "requests": args.n,
            "mode": args.mode,
            "concurrency": args.concurrency,
            "limit_per_min": args.limit,
            "seconds": round(elapsed, 3),
            "throughput_rps": round(args.n / elapsed, 1),
            "client_p50_ms": round(percentile(latencies, 0.50), 2),
            "client_p99_ms": round(percentile(latencies, 0.99), 2),
            "server_p50_ms": round(percentile(server_ms, 0.50), 3),
            "server_p99_ms": round(percentile(server_ms, 0.99), 3),
            "server_mean_ms": round(statistics.fmean(server_ms), 3) if server_ms else 0,
            "accepted": accepted,
            "rate_limited_429": statuses.get(429, 0),
            "other_statuses": {str(s): c for s, c in statuses.items() if s != 429 and not 200 <= s < 300},
            "history_rows": len(rows),
            "windows": len(windows),
            "checks_passed": not problems,
        }
        print(
            f"webhook load: {args.n} signed requests, {args.mode}, {args.concurrency} connections, "
            f"limit {args.limit}/min"
        )
        print(f"  throughput      {figures['throughput_rps']:>9} req/s   ({figures['seconds']} s)")
        print(f"  client latency  p50 {figures['client_p50_ms']} ms   p99 {figures['client_p99_ms']} ms")
        print(f"  server handling p50 {figures['server_p50_ms']} ms   p99 {figures['server_p99_ms']} ms")
        print(f"  accepted {accepted}   429 {statuses.get(429, 0)}   other {figures['other_statuses']}")
        for window, counts in sorted(windows.items()):
            arrived = sum(counts.values())
            print(
                f"  window {datetime.fromtimestamp(window * 60):%H:%M}: {arrived} arrived, "
                f"{counts['accepted:-']} accepted (limit {args.limit})"
            )
        print(f"  history rows    {len(rows)} of {args.n} sent")
        for problem in problems:
            print(f"  CHECK FAILED: {problem}")
        print("  checks: " + ("rate limit exact per window, history complete" if not problems else "FAILED"))
        print(json.dumps(figures))
        ok = not problems
    finally:
        server.stop()
        if ok:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"server data and log kept in {data_dir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
