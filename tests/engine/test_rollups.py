"""Per-minute rollups: the histogram's bucket math and percentiles (pure), the live aggregator writing
through the real batcher, and the rebuild from raw rows, on SQLite and (when available) PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, select

from data.batcher import Batcher
from data.db import Database
from data.models import Invocation, MetricLatency, MetricMinute
from data.types import new_id, utcnow
from engine.bus import LocalBus
from engine.events import InvocationFinished, MetricsUpdated
from engine.histogram import BOUNDS, BUCKETS, bucket_bounds, bucket_of, merge_counts, percentile
from engine.rollups import Rollups, minute_of

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# --- bucket math ----------------------------------------------------------------------------------


def test_every_duration_falls_in_the_bucket_whose_bounds_hold_it() -> None:
    for i in range(BUCKETS):
        low, high = bucket_bounds(i)
        assert bucket_of(low) == i
        if not math.isinf(high):
            assert bucket_of(math.nextafter(high, 0)) == i
            assert bucket_of(high) == i + 1


def test_buckets_grow_by_half_octaves_from_a_quarter_millisecond() -> None:
    assert bucket_bounds(0) == (0.0, 0.25)
    assert bucket_of(0.0) == 0 and bucket_of(0.2) == 0
    assert bucket_of(0.25) == 1 and bucket_of(0.5) == 3 and bucket_of(1.0) == 5
    for i in range(1, BUCKETS - 1):
        low, high = bucket_bounds(i)
        assert high / low == pytest.approx(math.sqrt(2))
    assert bucket_bounds(BUCKETS - 1)[1] == math.inf
    assert bucket_of(300_000) == BUCKETS - 1  # the longest timeout lands in the open bucket
    assert bucket_of(100_000) < BUCKETS - 1
    with pytest.raises(ValueError):
        bucket_bounds(BUCKETS)


def test_percentile_of_an_empty_histogram_is_none() -> None:
    assert percentile({}, 0.5) is None
    assert percentile({3: 0}, 0.5) is None


def test_percentile_interpolates_geometrically_inside_a_bucket() -> None:
    i = bucket_of(10.0)
    low, high = bucket_bounds(i)
    counts = {i: 100}
    assert percentile(counts, 0.0) == pytest.approx(low)
    assert percentile(counts, 0.5) == pytest.approx(math.sqrt(low * high))
    assert percentile(counts, 1.0) == pytest.approx(high)


def test_percentile_is_capped_by_the_largest_duration_seen() -> None:
    counts = {bucket_of(10.0): 10}
    assert percentile(counts, 0.99, max_ms=10.0) == 10.0
    assert percentile({BUCKETS - 1: 5}, 0.5) == BOUNDS[-1]  # open bucket: its lower bound
    assert percentile({BUCKETS - 1: 5}, 0.5, max_ms=300_000) == 300_000


def test_estimated_percentiles_stay_within_a_bucket_of_the_exact_ones() -> None:
    rng = random.Random(7)
    durations = [rng.lognormvariate(3, 1.2) for _ in range(20_000)]
    counts: dict[int, int] = {}
    for ms in durations:
        counts[bucket_of(ms)] = counts.get(bucket_of(ms), 0) + 1
    ordered = sorted(durations)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        estimate = percentile(counts, q, max_ms=ordered[-1])
        assert estimate is not None
        assert exact / math.sqrt(2) < estimate < exact * math.sqrt(2), (q, exact, estimate)


def test_histograms_of_several_minutes_merge_by_adding() -> None:
    assert merge_counts([{1: 2, 3: 1}, {3: 4}, {}]) == {1: 2, 3: 5}


def test_the_minute_of_a_time_is_its_utc_minute() -> None:
    local = datetime(2026, 3, 1, 13, 5, 59, 999, tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))
    assert minute_of(local) == datetime(2026, 3, 1, 13, 5, tzinfo=UTC)
    assert minute_of(datetime(2026, 3, 1, 13, 5, 7)) == datetime(2026, 3, 1, 13, 5, tzinfo=UTC)


# --- the aggregator over a real database ----------------------------------------------------------


@pytest.fixture
async def batcher(db: Database) -> AsyncIterator[Batcher]:
    writer = Batcher(db, max_delay_ms=2.0)
    await writer.start()
    yield writer
    await writer.stop()


@pytest.fixture
async def rollups(db: Database, batcher: Batcher, bus: LocalBus) -> AsyncIterator[Rollups]:
    aggregator = Rollups(db, batcher, bus, interval_sec=0.05, recover_minutes=0, tick=False)
    await aggregator.start()
    yield aggregator
    await aggregator.stop()


@pytest.fixture
def bus() -> LocalBus:
    return LocalBus()


def finished(
    at: datetime,
    function_id: str = "fn-a",
    status: str = "success",
    duration_ms: float | None = 10.0,
    cold: bool = False,
    final: bool = True,
    invocation_id: str | None = None,
) -> InvocationFinished:
    return InvocationFinished(
        at=at,
        invocation_id=invocation_id or new_id(),
        function_id=function_id,
        function_name=function_id.upper(),
        source="api",
        status=status,
        duration_ms=duration_ms,
        cold=cold,
        final=final,
    )


async def rollup_rows(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with db.session() as session:
        minutes = (
            await session.execute(
                select(
                    MetricMinute.minute,
                    MetricMinute.function_id,
                    MetricMinute.invocations,
                    MetricMinute.errors,
                    MetricMinute.timeouts,
                    MetricMinute.cold_starts,
                    MetricMinute.duration_sum_ms,
                    MetricMinute.duration_max_ms,
                ).order_by(MetricMinute.minute, MetricMinute.function_id)
            )
        ).all()
        latency = (
            await session.execute(
                select(
                    MetricLatency.minute, MetricLatency.function_id, MetricLatency.bucket, MetricLatency.count
                ).order_by(MetricLatency.minute, MetricLatency.function_id, MetricLatency.bucket)
            )
        ).all()
    rounded = [(*row[:6], round(row[6], 6), round(row[7], 6)) for row in minutes]
    return rounded, [tuple(row) for row in latency]


async def test_a_flush_adds_to_the_rows_already_there(db: Database, rollups: Rollups, bus: LocalBus) -> None:
    at = T0 + timedelta(seconds=5)
    for event in (
        finished(at, duration_ms=10.0, cold=True),
        finished(at, status="failed", duration_ms=30.0),
        finished(at, status="success", final=False),  # a retry follows: not an outcome yet
    ):
        bus.publish(event)
    await rollups.flush()
    bus.publish(finished(at + timedelta(seconds=40), status="timeout", duration_ms=20.0))
    bus.publish(finished(at, duration_ms=None))  # a run that never reported a duration
    await rollups.flush()

    minutes, latency = await rollup_rows(db)
    # invocations, errors, timeouts, cold starts, duration sum, duration max
    assert minutes == [(T0, "fn-a", 4, 2, 1, 1, 60.0, 30.0)]
    assert latency == [
        (T0, "fn-a", bucket_of(10.0), 1),
        (T0, "fn-a", bucket_of(20.0), 1),
        (T0, "fn-a", bucket_of(30.0), 1),
    ]


async def test_rows_are_kept_per_minute_and_function(db: Database, rollups: Rollups, bus: LocalBus) -> None:
    bus.publish(finished(T0, "fn-a"))
    bus.publish(finished(T0 + timedelta(seconds=59.9), "fn-b"))
    bus.publish(finished(T0 + timedelta(seconds=60), "fn-a"))
    await rollups.flush()
    minutes, _ = await rollup_rows(db)
    assert [(m, f, n) for m, f, n, *_ in minutes] == [
        (T0, "fn-a", 1),
        (T0, "fn-b", 1),
        (T0 + timedelta(minutes=1), "fn-a", 1),
    ]


async def test_metrics_updated_is_published_after_the_rows_commit(
    db: Database, rollups: Rollups, bus: LocalBus
) -> None:
    with bus.subscribe(MetricsUpdated) as updates:
        bus.publish(finished(T0, "fn-a"))
        bus.publish(finished(T0, "fn-b"))
        event = await updates.wait_for(lambda e: True, timeout=5)
        assert isinstance(event, MetricsUpdated)
        assert event.function_ids == ("fn-a", "fn-b") and event.invocations == 2
        minutes, _ = await rollup_rows(db)  # already committed when the event arrived
        assert sum(row[2] for row in minutes) == 2


async def test_a_burst_is_written_in_few_flushes(rollups: Rollups, bus: LocalBus) -> None:
    for i in range(2000):
        bus.publish(finished(T0 + timedelta(milliseconds=i), f"fn-{i % 7}"))
    await rollups.flush()
    assert rollups.flushes <= 3
    assert rollups.pending == 0


async def test_stop_writes_what_is_pending(db: Database, batcher: Batcher, bus: LocalBus) -> None:
    aggregator = Rollups(db, batcher, bus, interval_sec=60, recover_minutes=0, tick=False)
    await aggregator.start()
    bus.publish(finished(T0))  # the first event after a quiet spell flushes at once ...
    await asyncio.sleep(0.1)
    bus.publish(finished(T0))  # ... the next waits for the interval (a minute here)
    await aggregator.stop()
    minutes, _ = await rollup_rows(db)
    assert minutes[0][2] == 2


# --- rebuilding from raw rows ---------------------------------------------------------------------


def raw_row(event: InvocationFinished) -> dict[str, Any]:
    ended = event.at
    return {
        "id": event.invocation_id,
        "function_id": event.function_id,
        "function_name": event.function_name,
        "status": event.status if event.final else "pending",
        "cold": event.cold,
        "duration_ms": event.duration_ms,
        "created_at": ended - timedelta(seconds=2),
        "started_at": ended - timedelta(milliseconds=event.duration_ms or 0),
        "ended_at": ended,
    }


def workload(start: datetime, count: int, seed: int = 3) -> list[InvocationFinished]:
    rng = random.Random(seed)
    events = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.uniform(0, 600))
        status = rng.choices(["success", "failed", "timeout"], [90, 8, 2])[0]
        duration = None if rng.random() < 0.02 else round(rng.lognormvariate(2.5, 1.5), 3)
        events.append(
            finished(
                at,
                f"fn-{rng.randrange(4)}",
                status=status,
                duration_ms=duration,
                cold=rng.random() < 0.1,
                final=rng.random() > 0.05,
            )
        )
    return events


async def insert_raw(db: Database, events: list[InvocationFinished]) -> None:
    async with db.transaction() as session:
        await session.execute(insert(Invocation), [raw_row(e) for e in events])


async def test_rebuild_from_raw_rows_equals_live_aggregation(
    db: Database, rollups: Rollups, bus: LocalBus
) -> None:
    events = workload(T0, 600)
    await insert_raw(db, events)
    for event in events:
        bus.publish(event)
    await rollups.flush()
    live = await rollup_rows(db)
    assert sum(row[2] for row in live[0]) == sum(e.final for e in events)

    result = await rollups.rebuild(T0, T0 + timedelta(minutes=11))
    assert await rollup_rows(db) == live
    assert result.invocations == sum(e.final for e in events)
    assert result.minutes == len(live[0])


async def test_rebuild_replaces_and_chunking_does_not_change_the_result(
    db: Database, rollups: Rollups
) -> None:
    events = workload(T0, 300, seed=11)
    await insert_raw(db, events)
    await rollups.rebuild(T0, T0 + timedelta(minutes=11))
    whole = await rollup_rows(db)
    await rollups.rebuild(T0, T0 + timedelta(minutes=11), chunk=timedelta(minutes=3))
    assert await rollup_rows(db) == whole  # recomputed, not added twice


async def test_rebuild_leaves_minutes_outside_its_range_alone(db: Database, rollups: Rollups) -> None:
    early, late = workload(T0 - timedelta(hours=1), 50, seed=1), workload(T0, 50, seed=2)
    await insert_raw(db, early + late)
    await rollups.rebuild(T0 - timedelta(hours=1), T0 + timedelta(minutes=11))
    before = await rollup_rows(db)
    async with db.transaction() as session:  # the late rows vanish from the raw table ...
        await session.execute(Invocation.__table__.delete().where(Invocation.ended_at >= T0))  # type: ignore[attr-defined]
    await rollups.rebuild(T0, T0 + timedelta(minutes=11))  # ... and from the rebuilt range only
    after = await rollup_rows(db)
    assert after[0] == [row for row in before[0] if row[0] < T0]
    assert after[0]


async def test_start_recovers_the_minutes_a_previous_process_did_not_flush(
    db: Database, batcher: Batcher, bus: LocalBus
) -> None:
    now = utcnow()
    lost = [finished(now - timedelta(seconds=s), final=True) for s in (5, 70, 130)]
    await insert_raw(db, lost)
    aggregator = Rollups(db, batcher, bus, recover_minutes=15, tick=False)
    await aggregator.start()
    try:
        minutes, _ = await rollup_rows(db)
        assert sum(row[2] for row in minutes) == 3
    finally:
        await aggregator.stop()
