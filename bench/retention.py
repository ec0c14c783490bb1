"""Retention cleanup benchmark: delete N expired invocations (default 1,000,000, with a log line for every
fifth) from a real `nimbus serve` over SQLite while a probe hammers a console API endpoint.

A temp database is migrated, filled with executemany (rows stamped 60 days ago, plus recent rows that must
survive), then the real server starts (tests/server.py). The probe (GET /api/v1/invocations?limit=20,
what the console's invocation list calls) runs sequentially for a few seconds before the cleanup (the
baseline) and all through it. The cleanup runs through the API (POST /api/v1/retention/cleanup, waiting).

    .venv/bin/python bench/retention.py [--rows 1000000] [--log-every 5]

Prints the figures, then one JSON line. Targets (issue 7): cleanup < 30 s, probe p99 < 100 ms."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data.db import Database  # noqa: E402
from data.migrate import migrate  # noqa: E402
from tests.server import Server  # noqa: E402

PROBE = "/api/v1/invocations?limit=20"
BASELINE_SEC = 5.0
RECENT_ROWS = 10_000


def ids_at(at: datetime, n: int) -> list[str]:
    """`n` increasing UUIDv7 ids in the millisecond of `at` onwards (one ms per 4096 ids)."""
    base = int(at.timestamp() * 1000)
    out = []
    for i in range(n):
        ms, seq = base + i // 4096, i % 4096
        value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | int.from_bytes(os.urandom(8)) >> 2
        out.append(str(uuid.UUID(int=value)))
    return out


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # how UTCDateTime stores it on SQLite


def fill(path: Path, rows: int, log_every: int, age: timedelta) -> dict[str, float]:
    """Expired invocations (and logs) plus recent ones, by executemany in a few big transactions."""
    now = datetime.now(UTC)
    columns = (
        "id, function_id, function_name, version, environment, source, mode, status, status_code, input, "
        "output, input_size, output_size, cold, duration_ms, attempt, max_attempts, trace_id, node, actor, "
        "created_at, started_at, ended_at"
    )
    sql = f"INSERT INTO invocations ({columns}) VALUES ({', '.join('?' * 23)})"
    log_sql = (
        "INSERT INTO invocation_logs (id, invocation_id, function_id, attempt, level, message, truncated, "
        "created_at) VALUES (?, ?, ?, 1, 'info', ?, 0, ?)"
    )

    def rows_of(ids: list[str], at: datetime) -> list[tuple[Any, ...]]:
        stamp = _stamp(at)
        fixed = (
            "f-bench",
            "bench",
            "$LATEST",
            None,
            "api",
            "sync",
            "success",
            200,
            '{"n": 1}',
            '{"ok": true}',
        )
        counts = (8, 11, 0, 1.5, 1, 1)
        return [(i, *fixed, *counts, i, "bench", "bench", stamp, stamp, stamp) for i in ids]

    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    old_at = now - age
    chunk = 100_000
    for offset in range(0, rows, chunk):
        n = min(chunk, rows - offset)
        at = old_at + timedelta(milliseconds=offset // 4096 + 1)
        ids = ids_at(at, n)
        with conn:
            conn.executemany(sql, rows_of(ids, at))
            if log_every:
                stamp = _stamp(at)
                conn.executemany(
                    log_sql,
                    [
                        (f"{j[:-4]}{k:04x}", j, "f-bench", "bench line", stamp)
                        for k, j in enumerate(ids[::log_every])
                    ],
                )
    with conn:
        recent = ids_at(now - timedelta(hours=1), RECENT_ROWS)
        conn.executemany(sql, rows_of(recent, now - timedelta(hours=1)))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"fill_s": time.perf_counter() - started}


class Probe(threading.Thread):
    """GET `PROBE` back to back, recording each latency, until stopped."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.latencies: list[float] = []
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with self.server.api() as api:
            while not self._halt.is_set():
                started = time.perf_counter()
                response = api.get(PROBE)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code == 200:
                    self.latencies.append(elapsed)
                else:
                    self.errors += 1

    def stop(self) -> list[float]:
        self._halt.set()
        self.join(30)
        return self.latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--log-every", type=int, default=5, help="one log line per this many (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nimbus-bench-retention-") as tmp:
        data = Path(tmp)
        db_path = data / "nimbus.db"
        database = Database(f"sqlite+aiosqlite:///{db_path}")
        asyncio.run(_migrate(database))
        figures: dict[str, Any] = {
            "rows": args.rows,
            "logs": args.rows // args.log_every if args.log_every else 0,
        }
        figures |= fill(db_path, args.rows, args.log_every, timedelta(days=60))
        server = Server(data, password="bench-retention-password")
        server.start()
        try:
            baseline = Probe(server)
            baseline.start()
            time.sleep(BASELINE_SEC)
            before = baseline.stop()

            probe = Probe(server)
            probe.start()
            started = time.perf_counter()
            response = httpx.post(
                server.url + "/api/v1/retention/cleanup",
                headers={"Authorization": f"Bearer {server.api_key}"},
                timeout=600,
            )
            wall = time.perf_counter() - started
            during = probe.stop()
            response.raise_for_status()
            run = response.json()
        finally:
            server.stop()
        remaining = count(db_path, "SELECT count(*) FROM invocations")
        figures |= {
            "cleanup_wall_s": wall,
            "cleanup_server_s": (run["duration_ms"] or 0) / 1000,
            "deleted_invocations": run["deleted"].get("invocations", 0),
            "deleted_logs": run["deleted"].get("logs", 0),
            "remaining_invocations": remaining,
            "recent_kept": remaining == RECENT_ROWS,
            "deleted_per_s": run["deleted"].get("invocations", 0) / wall if wall else 0.0,
            "probe_baseline_n": len(before),
            "probe_baseline_p50_ms": statistics.median(before) if before else float("nan"),
            "probe_baseline_p99_ms": pct(before, 0.99),
            "probe_during_n": len(during),
            "probe_during_p50_ms": statistics.median(during) if during else float("nan"),
            "probe_during_p99_ms": pct(during, 0.99),
            "probe_during_max_ms": max(during) if during else float("nan"),
            "probe_errors": probe.errors + baseline.errors,
        }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


async def _migrate(database: Database) -> None:
    try:
        await migrate(database)
    finally:
        await database.close()


if __name__ == "__main__":
    main()
