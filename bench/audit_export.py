"""Audit export benchmark: 100,000 events exported as CSV and as JSON through the service's streamed export
(the same code `GET /api/v1/audit/export` runs), on a temp platform (SQLite in a temp dir).

Prints, per format: events, bytes, chunks, seconds, events per second, and the peak memory traced while
streaming (tracemalloc), against the size of one chunk: a streamed export holds about one chunk at a time,
never the whole set.

    .venv/bin/python bench/audit_export.py [--events 100000]"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from data.models import AuditEvent  # noqa: E402
from data.types import new_id  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.platform import Platform  # noqa: E402
from engine.principal import SYSTEM  # noqa: E402
from engine.services.audit_log import AuditFilters  # noqa: E402


async def fill(platform: Platform, count: int) -> None:
    now = datetime.now(UTC)
    async with platform.db.transaction() as session:
        for start in range(0, count, 5000):
            rows = [
                {
                    "id": new_id(),
                    "action": "function.update",
                    "resource_type": "function",
                    "resource_id": f"fn-{i % 50}",
                    "resource_name": f"bulk-{i % 50}",
                    "actor": "bulk",
                    "actor_type": "user",
                    "actor_ip": "10.0.0.1",
                    "before": {"memory_mb": 128, "n": i},
                    "after": {"memory_mb": 256, "n": i},
                    "details": None,
                    "created_at": now,
                }
                for i in range(start, min(count, start + 5000))
            ]
            await session.execute(insert(AuditEvent), rows)


async def export(platform: Platform, fmt: str) -> dict[str, float]:
    tracemalloc.start()
    started = time.perf_counter()
    size = chunks = 0
    largest = 0
    try:
        async for chunk in await platform.audit.export(SYSTEM, AuditFilters(actor="bulk"), fmt):
            size, chunks, largest = size + len(chunk), chunks + 1, max(largest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    seconds = time.perf_counter() - started
    return {
        "bytes": size,
        "chunks": chunks,
        "seconds": seconds,
        "peak_mb": peak / 1e6,
        "chunk_mb": largest / 1e6,
    }


async def main(events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), admin_password="bench-password-1")  # type: ignore[call-arg]
        async with Platform(settings) as platform:
            await fill(platform, events)
            figures: dict[str, dict[str, float]] = {}
            head = ("format", "events", "MB", "chunks", "s", "events/s", "peak MB", "chunk MB")
            print("{:<6} {:>8} {:>7} {:>6} {:>6} {:>9} {:>8} {:>8}".format(*head))
            for fmt in ("csv", "json"):
                f = await export(platform, fmt)
                figures[fmt] = f
                rate = events / f["seconds"] if f["seconds"] else 0.0
                print(
                    f"{fmt:<6} {events:>8} {f['bytes'] / 1e6:>7.1f} {f['chunks']:>6.0f} {f['seconds']:>6.2f} "
                    f"{rate:>9.0f} {f['peak_mb']:>8.1f} {f['chunk_mb']:>8.2f}"
                )
            print(json.dumps({"events": events, **figures}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().events))
