"""The metrics service over a real platform and real rows: figures from seeded invocations (rolled up
by `rebuild`), live figures after real invocations, the shared dashboard feed, and a guard that no
read scans the invocations table."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from data.batcher import Insert
from data.db import Database
from data.models import DeadLetter, Invocation
from data.types import new_id
from engine.events import InvocationStarted, MetricsUpdated
from engine.histogram import bucket_of
from engine.platform import Platform
from engine.principal import SYSTEM, Principal
from engine.services.function_schemas import FunctionCreate
from tests.api.conftest import make_settings

NOW = datetime(2026, 3, 1, 12, 30, 20, tzinfo=UTC)
VIEWER = Principal(actor="viewer", actor_type="user", role="viewer")
HELLO = 'def handler(event, context):\n    return {"ok": True}\n'
SLOW = "import time\n\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return 1\n"


@pytest.fixture
async def platform(db: Database, db_url: str, tmp_path: Path) -> AsyncIterator[Platform]:
    """A running platform on each backend (`db` empties the PostgreSQL database first)."""
    async with Platform(make_settings(tmp_path, database_url=db_url)) as running:
        yield running


def row(
    function_id: str, name: str, ended: datetime, status: str = "success", **values: Any
) -> dict[str, Any]:
    duration = values.pop("duration_ms", 10.0)
    return {
        "id": new_id(),
        "function_id": function_id,
        "function_name": name,
        "status": status,
        "duration_ms": duration,
        "cold": values.pop("cold", False),
        "error_type": "Boom" if status == "failed" else ("Timeout" if status == "timeout" else None),
        "created_at": ended,
        "started_at": ended - timedelta(milliseconds=duration or 0),
        "ended_at": ended,
        **values,
    }


@pytest.fixture
async def seeded(platform: Platform) -> dict[str, str]:
    """alpha (a live function) and a deleted function "gone", with invocations at known times."""
    alpha = await platform.functions.create(
        SYSTEM, FunctionCreate(name="alpha", runtime="python", code=HELLO)
    )
    gone = new_id()
    ten_min_ago, half_hour_ago = NOW - timedelta(minutes=10), NOW - timedelta(minutes=30)
    rows = [row(alpha.id, "alpha", ten_min_ago, cold=i < 20) for i in range(90)]
    rows += [row(alpha.id, "alpha", ten_min_ago, "failed", duration_ms=100.0) for _ in range(10)]
    rows += [row(alpha.id, "alpha", NOW - timedelta(hours=5)) for _ in range(50)]
    rows += [row(alpha.id, "alpha", NOW - timedelta(days=2)) for _ in range(30)]
    rows += [row(gone, "gone", half_hour_ago, duration_ms=1000.0) for _ in range(15)]
    rows += [row(gone, "gone", half_hour_ago, "timeout", duration_ms=1000.0) for _ in range(5)]
    rows += [row(gone, "gone", half_hour_ago, "pending", ended_at=None, duration_ms=None)]  # not finished
    letters = [
        {"id": new_id(), "function_id": alpha.id, "function_name": "alpha", "status": s}
        for s in ("pending",) * 3
    ]
    letters.append({"id": new_id(), "function_id": gone, "function_name": "gone", "status": "resolved"})
    async with platform.db.transaction() as session:
        await Insert(Invocation, rows)(session)  # the batcher's op fills the models' defaults
        await Insert(
            DeadLetter,
            [{**letter, "original_request_id": new_id(), "error": "boom"} for letter in letters],
        )(session)
    await platform.rollups.rebuild(NOW - timedelta(days=3), NOW + timedelta(minutes=1))
    return {"alpha": alpha.id, "gone": gone}


async def test_summary_counts_the_last_hour_and_day(platform: Platform, seeded: dict[str, str]) -> None:
    s = await platform.metrics.summary(VIEWER, now=NOW)
    assert (s.invocations_1h, s.invocations_24h) == (120, 170)
    assert (s.errors_1h, s.errors_24h, s.timeouts_1h) == (15, 15, 5)
    assert s.error_rate == pytest.approx(15 / 120)
    assert s.cold_start_rate == pytest.approx(20 / 120)
    assert s.avg_ms == pytest.approx((90 * 10 + 10 * 100 + 20 * 1000) / 120)
    assert s.dlq_pending == 3
    assert s.max_ms == 1000.0


async def test_summary_percentiles_come_from_the_histograms(
    platform: Platform, seeded: dict[str, str]
) -> None:
    s = await platform.metrics.summary(VIEWER, now=NOW)
    # last hour: 90 x 10 ms, 10 x 100 ms, 20 x 1000 ms
    assert s.p50_ms is not None and bucket_of(s.p50_ms) == bucket_of(10.0)
    assert s.p95_ms is not None and bucket_of(s.p95_ms) == bucket_of(1000.0) and s.p95_ms <= 1000.0
    assert s.p99_ms is not None and s.p95_ms <= s.p99_ms <= 1000.0


async def test_summary_of_one_function(platform: Platform, seeded: dict[str, str]) -> None:
    s = await platform.metrics.summary(VIEWER, seeded["alpha"], now=NOW)
    assert (s.invocations_1h, s.invocations_24h, s.errors_1h, s.dlq_pending) == (100, 150, 10, 3)
    assert s.p95_ms is not None and bucket_of(s.p95_ms) == bucket_of(100.0)
    gone = await platform.metrics.summary(VIEWER, seeded["gone"], now=NOW)
    assert (gone.invocations_1h, gone.errors_1h, gone.dlq_pending) == (20, 5, 0)


async def test_series_has_a_point_per_minute_with_zeros_between(
    platform: Platform, seeded: dict[str, str]
) -> None:
    points = await platform.metrics.series(VIEWER, minutes=60, now=NOW)
    assert len(points) == 60
    assert points[-1].at == NOW.replace(second=0)
    assert points[0].at == NOW.replace(second=0) - timedelta(minutes=59)
    busy = {p.at: p for p in points if p.invocations}
    assert set(busy) == {
        NOW.replace(second=0) - timedelta(minutes=10),
        NOW.replace(second=0) - timedelta(minutes=30),
    }
    ten = busy[NOW.replace(second=0) - timedelta(minutes=10)]
    assert (ten.invocations, ten.errors, ten.cold_starts) == (100, 10, 20)
    assert ten.p99_ms is not None and bucket_of(ten.p99_ms) == bucket_of(100.0)
    quiet = points[0]
    assert (quiet.invocations, quiet.p50_ms) == (0, None)


async def test_series_over_a_day_in_hourly_steps(platform: Platform, seeded: dict[str, str]) -> None:
    points = await platform.metrics.series(VIEWER, minutes=24 * 60, step=60, now=NOW)
    assert len(points) == 24
    assert sum(p.invocations for p in points) == 170
    assert [p.invocations for p in points if p.invocations] == [50, 120]
    alpha = await platform.metrics.series(VIEWER, seeded["alpha"], minutes=24 * 60, step=60, now=NOW)
    assert sum(p.invocations for p in alpha) == 150


async def test_series_refuses_too_many_points(platform: Platform) -> None:
    from engine.errors import Invalid

    with pytest.raises(Invalid):
        await platform.metrics.series(VIEWER, minutes=30 * 24 * 60, step=1)


async def test_top_functions_by_invocations_with_names_and_error_rates(
    platform: Platform, seeded: dict[str, str]
) -> None:
    top = await platform.metrics.top_functions(VIEWER, hours=24, now=NOW)
    assert [(f.function_name, f.invocations, f.errors) for f in top] == [("alpha", 150, 10), ("gone", 20, 5)]
    assert top[0].error_rate == pytest.approx(10 / 150)
    assert top[1].p95_ms is not None and bucket_of(top[1].p95_ms) == bucket_of(1000.0)
    assert [f.function_name for f in await platform.metrics.top_functions(VIEWER, limit=1, now=NOW)] == [
        "alpha"
    ]


async def test_recent_and_recent_errors_are_newest_first(platform: Platform, seeded: dict[str, str]) -> None:
    recent = await platform.metrics.recent(VIEWER, 5)
    assert len(recent) == 5
    assert [r.id for r in recent] == sorted((r.id for r in recent), reverse=True)
    errors = await platform.metrics.recent_errors(VIEWER, 8)
    assert len(errors) == 8 and {e.status for e in errors} <= {"failed", "timeout"}
    assert [e.id for e in errors] == sorted((e.id for e in errors), reverse=True)
    assert errors[0].function_name == "gone" and errors[0].error_type == "Timeout"


async def test_dlq_figures(platform: Platform, seeded: dict[str, str]) -> None:
    dlq = await platform.metrics.dlq(VIEWER)
    assert (dlq.pending, dlq.retrying, dlq.by_function) == (3, 0, [("alpha", 3)])
    assert [m.function_name for m in dlq.latest] == ["alpha"] * 3


# --- live -----------------------------------------------------------------------------------------


async def test_real_invocations_reach_the_summary(platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="hello", runtime="python", code=HELLO))
    with platform.bus.subscribe(MetricsUpdated) as updates:
        for _ in range(3):
            await platform.invoker.invoke(SYSTEM, "hello", {})
        counted = 0
        while counted < 3:
            update = await updates.wait_for(lambda e: isinstance(e, MetricsUpdated) and e.invocations > 0, 10)
            assert isinstance(update, MetricsUpdated)
            counted += update.invocations
    s = await platform.metrics.summary(VIEWER)
    assert (s.invocations_1h, s.errors_1h, s.cold_starts_1h) == (3, 0, 1)
    assert s.warm_workers >= 1 and s.active_workers == 0
    assert s.p50_ms is not None


async def test_active_workers_counts_the_busy_ones(platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="slow", runtime="python", code=SLOW))
    with platform.bus.subscribe(InvocationStarted) as started:
        running = asyncio.create_task(platform.invoker.invoke(SYSTEM, "slow", {"sleep": 1.5}))
        await started.wait_for(lambda e: True, 10)
    deadline = asyncio.get_running_loop().time() + 5
    while (await platform.metrics.summary(VIEWER)).active_workers != 1:
        assert asyncio.get_running_loop().time() < deadline, "the running invocation was never counted"
        await asyncio.sleep(0.02)
    await running


async def test_the_feed_computes_once_for_many_pages(platform: Platform, seeded: dict[str, str]) -> None:
    feed = platform.metrics.feed
    before = feed.computations
    snapshots = await asyncio.gather(*(feed.current(VIEWER) for _ in range(20)))
    assert feed.computations == before + 1
    assert all(s is snapshots[0] for s in snapshots)
    assert await feed.current(VIEWER) is snapshots[0]  # nothing changed: no new queries
    platform.bus.publish(MetricsUpdated(function_ids=("x",), invocations=1))
    fresh = await feed.current(VIEWER)
    assert fresh is not snapshots[0] and feed.computations == before + 2
    assert fresh.version > snapshots[0].version and fresh.summary.function_id is None


async def test_the_feed_recomputes_at_most_twice_a_second(platform: Platform) -> None:
    feed = platform.metrics.feed
    await feed.current(VIEWER)
    before = feed.computations
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(10):
        platform.bus.publish(MetricsUpdated(function_ids=(str(i),), invocations=1))
        await feed.current(VIEWER)
    elapsed = loop.time() - start
    assert feed.computations - before == 10
    assert elapsed >= 9 * feed.min_interval * 0.9  # each recompute waited for its turn


# --- cost guard -----------------------------------------------------------------------------------


@pytest.fixture
def statements(platform: Platform) -> Iterator[list[tuple[str, Any]]]:
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, params))

    engine = platform.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    yield captured
    event.remove(engine, "before_cursor_execute", capture)


async def test_no_dashboard_read_scans_the_invocations_table(
    platform: Platform, seeded: dict[str, str], statements: list[tuple[str, Any]]
) -> None:
    if not platform.db.is_sqlite:
        pytest.skip("reads query plans in SQLite's EXPLAIN QUERY PLAN format")
    await platform.metrics.snapshot(VIEWER)
    await platform.metrics.summary(VIEWER, seeded["alpha"])
    await platform.metrics.series(VIEWER, seeded["alpha"], minutes=1440, step=15)
    queries = list(statements)
    assert queries
    async with platform.db.engine.connect() as conn:
        for sql, params in queries:
            plan = " | ".join(
                str(r[-1]) for r in (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)).all()
            )
            if re.search(r"(FROM|JOIN)\s+invocations\b", sql):
                assert "LIMIT" in sql.upper(), sql  # latest rows only, through an index
                assert "TEMP B-TREE" not in plan, (sql, plan)
            assert not re.search(r"SCAN (invocations|metric_minutes|metric_latency)\b(?! USING)", plan), plan
            if "metric_" in sql:
                assert "SEARCH metric_" in plan, (sql, plan)


async def test_summary_reads_nothing_but_rollups_and_the_dlq(
    platform: Platform, seeded: dict[str, str], statements: list[tuple[str, Any]]
) -> None:
    await platform.metrics.summary(VIEWER)
    touched = {t for sql, _ in statements for t in re.findall(r"FROM (\w+)", sql)}
    assert touched <= {"metric_minutes", "metric_latency", "dead_letter_queue"}, touched
    async with platform.db.session() as session:  # sanity: the raw table really holds the seeded rows
        assert (await session.execute(text("SELECT count(*) FROM invocations"))).scalar_one() == 201
