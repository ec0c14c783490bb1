"""Dashboard benchmark: seed N invocation rows (default 1,000,000, spread over 30 days and 20 functions)
into a fresh SQLite database with the bulk path, build the per-minute rollups with `rollups.rebuild`,
then time each service call the dashboard and the wall make (median / p95 / p99 over --runs runs) and
the first-render cost (one call of each). Also: the rollup aggregator's hot path per event, and raw
queries over the invocations table as the baseline the rollups replace.

    .venv/bin/python bench/dashboard.py [--rows 1000000] [--days 30] [--functions 20] [--runs 30]

Prints a table, then one JSON line of the figures (units in the key names)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from data.models import DeadLetter, Invocation, MetricLatency, MetricMinute  # noqa: E402
from data.types import utcnow  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.events import InvocationFinished  # noqa: E402
from engine.platform import Platform  # noqa: E402
from engine.principal import SYSTEM  # noqa: E402
from engine.rollups import Rollups  # noqa: E402
from engine.services.function_schemas import FunctionCreate  # noqa: E402

CHUNK = 10_000
TRIVIAL = "def handler(event, context):\n    return event\n"
SOURCES = ["api"] * 6 + ["cron", "webhook", "workflow", "console"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "p95": pct(values, 0.95), "p99": pct(values, 0.99)}


def uuid7_at(ms: int, rng: random.Random) -> str:
    """A UUIDv7 for a given creation time, so id order is time order as in real data."""
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62
    return str(uuid.UUID(int=value | rng.getrandbits(62)))


# --- seeding --------------------------------------------------------------------------------------


def invocation_rows(
    count: int, start: datetime, end: datetime, functions: list[tuple[str, str, float]], seed: int
) -> Iterator[list[dict[str, Any]]]:
    """`count` finished invocations with times uniform over [start, end), in chunks, oldest first.
    Function popularity is skewed (Pareto); 95 % succeed, 4 % fail, 1 % time out; 3 % are cold."""
    rng = random.Random(seed)
    span_ms = int((end - start).total_seconds() * 1000)
    base_ms = int(start.timestamp() * 1000)
    offsets = sorted(rng.randrange(span_ms) for _ in range(count))
    rows: list[dict[str, Any]] = []
    for i, offset in enumerate(offsets):
        fid, name, median_ms = functions[min(len(functions) - 1, int(rng.paretovariate(1.2)) - 1)]
        roll = rng.random()
        status = "success" if roll < 0.95 else ("failed" if roll < 0.99 else "timeout")
        duration = 30_000.0 if status == "timeout" else round(rng.lognormvariate(0, 0.8) * median_ms, 3)
        created = datetime.fromtimestamp((base_ms + offset) / 1000, UTC)
        started = created + timedelta(milliseconds=rng.uniform(0.1, 3))
        ended = started + timedelta(milliseconds=duration)
        cold = rng.random() < 0.03
        rows.append(
            {
                "id": uuid7_at(base_ms + offset, rng),
                "function_id": fid,
                "function_name": name,
                "version": "$LATEST",
                "source": rng.choice(SOURCES),
                "mode": "sync" if rng.random() < 0.7 else "async",
                "status": status,
                "status_code": {"success": 200, "failed": 500, "timeout": 504}[status],
                "input": {"n": i},
                "output": {"ok": True} if status == "success" else None,
                "input_size": 10,
                "output_size": 11 if status == "success" else 0,
                "error_type": None
                if status == "success"
                else ("Timeout" if status == "timeout" else "ValueError"),
                "error_message": None if status == "success" else "something went wrong",
                "cold": cold,
                "init_ms": round(rng.uniform(5, 15), 3) if cold else None,
                "duration_ms": duration,
                "billed_ms": max(100, int(duration // 100 + 1) * 100),
                "billed_gb_s": 0.0,
                "attempt": 1,
                "max_attempts": 1,
                "trace_id": "",
                "node": "bench",
                "actor": "bench",
                "created_at": created,
                "started_at": started,
                "ended_at": ended,
            }
        )
        if len(rows) == CHUNK:
            yield rows
            rows = []
    if rows:
        yield rows


async def seed(platform: Platform, rows: int, days: int, function_count: int) -> dict[str, Any]:
    functions = []
    rng = random.Random(1)
    for i in range(function_count):
        fn = await platform.functions.create(
            SYSTEM, FunctionCreate(name=f"fn-{i:02d}", runtime="python", code=TRIVIAL)
        )
        functions.append((fn.id, fn.name, rng.choice([2.0, 5.0, 12.0, 40.0, 150.0])))
    end = utcnow()
    start = end - timedelta(days=days)
    table = Invocation.__table__  # type: ignore[attr-defined]
    insert_s = 0.0  # time in the database only, not making the rows up
    for n, chunk in enumerate(invocation_rows(rows, start, end, functions, seed=2)):
        t = time.perf_counter()
        async with platform.db.transaction() as session:
            await session.execute(insert(table), chunk)
        insert_s += time.perf_counter() - t
        if n % 20 == 19:
            print(f"  seeded {(n + 1) * CHUNK:,} rows", flush=True)
    letters = [
        {
            "id": uuid7_at(int((start + timedelta(seconds=i * 60)).timestamp() * 1000), rng),
            "function_id": functions[i % len(functions)][0],
            "function_name": functions[i % len(functions)][1],
            "original_request_id": str(uuid.uuid4()),
            "payload": {"n": i},
            "error": "ValueError: something went wrong",
            "attempts": [],
            "retry_count": 0,
            "status": "pending" if i % 4 == 0 else "resolved",
            "source": "api",
            "created_at": start + timedelta(seconds=i * 60),
        }
        for i in range(2000)
    ]
    async with platform.db.transaction() as session:
        await session.execute(insert(DeadLetter.__table__), letters)  # type: ignore[attr-defined]
    return {"start": start, "end": end, "insert_s": insert_s, "function_id": functions[0][0]}


# --- timing ---------------------------------------------------------------------------------------


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, list[float]]:
    """(first call ms, every later call's ms)."""
    t = time.perf_counter()
    await call()
    first = (time.perf_counter() - t) * 1000
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        await call()
        times.append((time.perf_counter() - t) * 1000)
    return first, times


async def hot_path_us(platform: Platform, events: int) -> float:
    """Microseconds the aggregator's bus callback costs per finished invocation (a flush is due later,
    as under load; the counted deltas are dropped, never written)."""
    aggregator = Rollups(platform.db, platform.batcher, platform.bus, recover_minutes=0, tick=False)
    now = utcnow()
    made = [
        InvocationFinished(
            at=now + timedelta(milliseconds=i * 3),
            invocation_id=str(i),
            function_id=f"f{i % 20}",
            function_name=f"fn-{i % 20}",
            source="api",
            status="success" if i % 50 else "failed",
            duration_ms=1.0 + (i % 97),
            cold=i % 33 == 0,
        )
        for i in range(events)
    ]
    aggregator._timer = asyncio.get_running_loop().call_later(3600, lambda: None)  # a flush is pending
    callback = aggregator._on_finished
    t = time.perf_counter()
    for event in made:
        callback(event)
    elapsed = time.perf_counter() - t
    aggregator._timer.cancel()
    return elapsed / events * 1e6


async def bench(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir, admin_password="bench-password")
    async with Platform(settings) as platform:
        print(
            f"seeding {args.rows:,} invocations over {args.days} days, {args.functions} functions ...",
            flush=True,
        )
        seeded = await seed(platform, args.rows, args.days, args.functions)
        t = time.perf_counter()
        rebuilt = await platform.rollups.rebuild(
            seeded["start"], seeded["end"] + timedelta(minutes=1), chunk=timedelta(hours=args.chunk_hours)
        )
        rebuild_s = time.perf_counter() - t
        async with platform.db.session() as session:
            minute_rows = (await session.execute(select(func.count()).select_from(MetricMinute))).scalar_one()
            latency_rows = (
                await session.execute(select(func.count()).select_from(MetricLatency))
            ).scalar_one()
        if args.analyze and platform.db.is_sqlite:
            async with platform.db.transaction() as session:
                await session.execute(text("ANALYZE"))
        db_mb = await asyncio.to_thread(_size_mb, data_dir)
        print(f"rebuilt {rebuilt.minutes:,} minute rows from {rebuilt.invocations:,} invocations", flush=True)

        m, fid, runs = platform.metrics, seeded["function_id"], args.runs
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "summary": lambda: m.summary(SYSTEM),
            "series_60m": lambda: m.series(SYSTEM, minutes=60),
            "series_24h": lambda: m.series(SYSTEM, minutes=1440, step=15),
            "top_functions_24h": lambda: m.top_functions(SYSTEM),
            "recent_20": lambda: m.recent(SYSTEM, 20),
            "recent_errors_10": lambda: m.recent_errors(SYSTEM, 10),
            "dlq_stats": lambda: platform.dlq.stats(SYSTEM),
            "dlq_figures": lambda: m.dlq(SYSTEM),
            "function_summary": lambda: m.summary(SYSTEM, fid),
            "function_series_24h": lambda: m.series(SYSTEM, fid, minutes=1440, step=15),
            "snapshot": lambda: m.snapshot(SYSTEM),
        }
        results: dict[str, dict[str, float]] = {}
        for name, call in calls.items():
            first, times = await timed(call, runs)
            results[name] = {"first": first, **summary(times)}
        page = ("summary", "series_60m", "top_functions_24h", "recent_20", "dlq_stats")
        first_render_cold = sum(results[n]["first"] for n in page)
        first_render_p50 = sum(results[n]["p50"] for n in page)

        day_ago = utcnow() - timedelta(days=1)
        baselines: dict[str, Callable[[], Awaitable[Any]]] = {
            "raw_count_all": lambda: _scalar(platform, select(func.count()).select_from(Invocation)),
            "raw_top_functions_24h": lambda: _scalar(
                platform,
                select(Invocation.function_id, func.count())
                .where(Invocation.started_at >= day_ago)
                .group_by(Invocation.function_id),
            ),
        }
        for name, call in baselines.items():
            first, times = await timed(call, max(3, runs // 6))
            results[name] = {"first": first, **summary(times)}
        hot = await hot_path_us(platform, 200_000)
    return {
        "rows": args.rows,
        "insert_s": seeded["insert_s"],
        "rebuild_s": rebuild_s,
        "minute_rows": minute_rows,
        "latency_rows": latency_rows,
        "db_mb": db_mb,
        "calls": results,
        "first_render_cold_ms": first_render_cold,
        "first_render_p50_ms": first_render_p50,
        "hot_path_us": hot,
    }


def _size_mb(data_dir: Path) -> float:
    return sum(p.stat().st_size for p in data_dir.glob("nimbus.db*")) / 1e6


async def _scalar(platform: Platform, stmt: Any) -> Any:
    async with platform.db.session() as session:
        return (await session.execute(stmt)).all()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--functions", type=int, default=20)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--chunk-hours", type=float, default=6.0, help="rebuild transaction size")
    parser.add_argument("--analyze", action="store_true", help="run SQLite ANALYZE before timing")
    parser.add_argument("--keep", action="store_true", help="keep the database (its path is printed)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="nimbus-bench-dashboard-")
    try:
        out = asyncio.run(bench(args, Path(tmp)))
    finally:
        if args.keep:
            print(f"database kept in {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)

    print()
    rate = out["rows"] / out["insert_s"]
    print(f"rows seeded                  {out['rows']:>12,}   ({rate:,.0f} rows/s bulk insert)")
    print(f"database size                {out['db_mb']:>12.1f} MB")
    print(
        f"rollups rebuild              {out['rebuild_s']:>12.2f} s    "
        f"({out['minute_rows']:,} minute rows, {out['latency_rows']:,} histogram rows)"
    )
    print(f"aggregator hot path          {out['hot_path_us']:>12.2f} µs per finished invocation")
    print()
    print(f"{'call':<26} {'first':>9} {'median':>9} {'p95':>9} {'p99':>9}   (ms)")
    for name, r in out["calls"].items():
        print(f"{name:<26} {r['first']:>9.2f} {r['p50']:>9.2f} {r['p95']:>9.2f} {r['p99']:>9.2f}")
    print()
    print("first render (summary + series 60 m + top functions + recent + DLQ stats)")
    print(f"  first calls (cold cache)   {out['first_render_cold_ms']:>9.2f} ms")
    print(f"  medians                    {out['first_render_p50_ms']:>9.2f} ms")
    figures: dict[str, Any] = {
        "rows": out["rows"],
        "insert_rows_per_s": round(out["rows"] / out["insert_s"]),
        "db_mb": round(out["db_mb"], 1),
        "rebuild_s": round(out["rebuild_s"], 3),
        "minute_rows": out["minute_rows"],
        "latency_rows": out["latency_rows"],
        "hot_path_us": round(out["hot_path_us"], 3),
        "first_render_cold_ms": round(out["first_render_cold_ms"], 2),
        "first_render_p50_ms": round(out["first_render_p50_ms"], 2),
    }
    for name, r in out["calls"].items():
        for key in ("p50", "p95", "p99"):
            figures[f"{name}_{key}_ms"] = round(r[key], 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
