"""Per-minute metric rollups: what dashboards read instead of scanning invocations (DESIGN §8).

`Rollups` counts every final InvocationFinished into in-memory deltas keyed by (UTC minute, function),
and adds them to `metric_minutes` / `metric_latency` through the batcher at most every ~0.5 s (counts
are added, never overwritten, so several nodes can roll up into one row). `rebuild()` recomputes a
time range from raw invocation rows. The latency histogram's buckets are engine/histogram.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Executable,
    Integer,
    Table,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from data.batcher import Batcher
from data.db import Database
from data.models import Invocation, MetricLatency, MetricMinute
from data.types import UTCDateTime, utcnow
from engine.bus import LocalBus
from engine.events import Event, InvocationFinished, MetricsUpdated
from engine.histogram import BOUNDS

log = logging.getLogger("nimbus.rollups")

ERROR_STATUSES = ("failed", "timeout")
FINAL_STATUSES = ("success", "failed", "timeout")


def minute_of(at: datetime) -> datetime:
    """The UTC minute holding `at` (naive datetimes are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    elif at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.replace(second=0, microsecond=0)


# --- in-memory deltas -----------------------------------------------------------------------------


@dataclass(slots=True)
class Delta:
    """What one (minute, function) gained since the last flush."""

    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    duration_sum_ms: float = 0.0
    duration_max_ms: float = 0.0
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, status: str, duration_ms: float | None, cold: bool) -> None:
        self.invocations += 1
        if status == "failed":
            self.errors += 1
        elif status == "timeout":
            self.errors += 1
            self.timeouts += 1
        if cold:
            self.cold_starts += 1
        if duration_ms is not None:
            self.duration_sum_ms += duration_ms
            if duration_ms > self.duration_max_ms:
                self.duration_max_ms = duration_ms
            bucket = bisect_right(BOUNDS, duration_ms)
            self.buckets[bucket] = self.buckets.get(bucket, 0) + 1

    def merge(self, other: Delta) -> None:
        self.invocations += other.invocations
        self.errors += other.errors
        self.timeouts += other.timeouts
        self.cold_starts += other.cold_starts
        self.duration_sum_ms += other.duration_sum_ms
        self.duration_max_ms = max(self.duration_max_ms, other.duration_max_ms)
        for bucket, count in other.buckets.items():
            self.buckets[bucket] = self.buckets.get(bucket, 0) + count


Key = tuple[datetime, str]  # (UTC minute, function id)


def _rows(deltas: Mapping[Key, Delta]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """metric_minutes and metric_latency rows of `deltas`, sorted by key (one lock order for every
    node that upserts the same rows on PostgreSQL)."""
    minutes: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    for (minute, function_id), d in sorted(deltas.items()):
        minutes.append(
            {
                "minute": minute,
                "function_id": function_id,
                "invocations": d.invocations,
                "errors": d.errors,
                "timeouts": d.timeouts,
                "cold_starts": d.cold_starts,
                "duration_sum_ms": d.duration_sum_ms,
                "duration_max_ms": d.duration_max_ms,
            }
        )
        latency.extend(
            {"minute": minute, "function_id": function_id, "bucket": b, "count": c}
            for b, c in sorted(d.buckets.items())
        )
    return minutes, latency


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


@lru_cache(maxsize=8)
def _adding_upserts(dialect_name: str) -> tuple[Executable, Executable]:
    """INSERT ... ON CONFLICT DO UPDATE statements that add a delta to an existing row."""
    is_pg = dialect_name == "postgresql"
    dialect: Any = postgresql if is_pg else sqlite
    greatest = func.greatest if is_pg else func.max  # SQLite's two-argument max() is a scalar max
    minutes = _table(MetricMinute)
    stmt = dialect.insert(minutes)
    new = stmt.excluded
    added = {c: minutes.c[c] + new[c] for c in ("invocations", "errors", "timeouts", "cold_starts")}
    added["duration_sum_ms"] = minutes.c.duration_sum_ms + new.duration_sum_ms
    added["duration_max_ms"] = greatest(minutes.c.duration_max_ms, new.duration_max_ms)
    minutes_upsert = stmt.on_conflict_do_update(index_elements=["minute", "function_id"], set_=added)
    latency = _table(MetricLatency)
    stmt = dialect.insert(latency)
    latency_upsert = stmt.on_conflict_do_update(
        index_elements=["minute", "function_id", "bucket"],
        set_={"count": latency.c["count"] + stmt.excluded["count"]},
    )
    return minutes_upsert, latency_upsert


# --- the aggregator -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RebuildResult:
    minutes: int  # metric_minutes rows written
    latency_rows: int
    invocations: int  # finished invocations counted


class Rollups:
    RUN_MARGIN = timedelta(minutes=15)
    """A finished row's started_at is at most this long before its ended_at (the longest timeout is
    300 s): the rebuild's range scan runs on the started_at index instead of the whole table."""

    def __init__(
        self,
        db: Database,
        batcher: Batcher,
        bus: LocalBus,
        *,
        interval_sec: float = 0.5,
        recover_minutes: int = 15,
        tick: bool = True,
    ) -> None:
        self._db = db
        self._batcher = batcher
        self._bus = bus
        self._interval = interval_sec
        self._recover = recover_minutes
        self._tick_enabled = tick
        self._pending: dict[Key, Delta] = {}
        self._names: dict[str, str] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._last_flush = -math.inf
        self.flushes = 0
        self.failed_flushes = 0

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover the last minutes from raw rows (a previous process may have died before flushing
        them), then count live events."""
        if self._unsubscribe is not None:
            return
        if self._recover > 0:
            now = minute_of(utcnow())
            await self.rebuild(now - timedelta(minutes=self._recover), now + timedelta(minutes=1))
        self._unsubscribe = self._bus.on(InvocationFinished, callback=self._on_finished)
        if self._tick_enabled:
            self._tick_task = asyncio.create_task(self._tick(), name="nimbus-rollup-clock")

    async def stop(self) -> None:
        """Count what the batcher still holds, write every delta, stop."""
        if self._unsubscribe is None:
            return
        with contextlib.suppress(RuntimeError):  # the batcher already stopped: nothing more will come
            await self._batcher.flush()  # their InvocationFinished events reach us on commit
        self._unsubscribe()
        self._unsubscribe = None
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
            self._tick_task = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flush_task is not None:
            with contextlib.suppress(Exception):
                await self._flush_task
        await self._flush()

    async def flush(self) -> None:
        """Write the pending deltas now and wait for the commit (tests and shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._flush_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flush_task)
        await self._flush()

    def function_name(self, function_id: str) -> str | None:
        """The name a function had in the latest invocation this process counted."""
        return self._names.get(function_id)

    @property
    def pending(self) -> int:
        """(minute, function) deltas waiting to be written."""
        return len(self._pending)

    # --- the hot path: one dict update per finished invocation ---------------------------------------

    def _on_finished(self, event: Event) -> None:
        assert isinstance(event, InvocationFinished)
        if not event.final:
            return
        key = (minute_of(event.at), event.function_id)
        delta = self._pending.get(key)
        if delta is None:
            delta = self._pending[key] = Delta()
        delta.add(event.status, event.duration_ms, event.cold)
        if event.function_name:
            self._names[event.function_id] = event.function_name
        if self._timer is None and self._flush_task is None:
            self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_flush + self._interval - loop.time())
        self._timer = loop.call_later(delay, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        if self._flush_task is None and self._pending:
            self._flush_task = asyncio.get_running_loop().create_task(
                self._flush(), name="nimbus-rollup-flush"
            )
            self._flush_task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flush_task = None
        if self._pending and self._unsubscribe is not None:
            self._schedule()

    async def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        self._last_flush = asyncio.get_running_loop().time()
        if not pending:
            return
        minutes, latency = _rows(pending)
        function_ids = tuple(sorted({fid for _, fid in pending}))
        count = sum(d.invocations for d in pending.values())

        async def write(session: AsyncSession) -> None:
            minutes_upsert, latency_upsert = _adding_upserts(session.get_bind().dialect.name)
            await session.execute(minutes_upsert, minutes)
            if latency:
                await session.execute(latency_upsert, latency)

        def published() -> None:
            self._bus.publish(MetricsUpdated(function_ids=function_ids, invocations=count))

        try:
            await self._batcher.commit(write, on_commit=published)
        except Exception as exc:  # keep the counts: the next flush tries again
            self.failed_flushes += 1
            log.warning("writing %d metric rollup rows failed (%s); will retry", len(minutes), exc)
            for key, delta in pending.items():
                current = self._pending.get(key)
                if current is None:
                    self._pending[key] = delta
                else:
                    current.merge(delta)
        else:
            self.flushes += 1

    async def _tick(self) -> None:
        """Publish MetricsUpdated (no functions) at each minute boundary: time windows moved on even
        when nothing ran, so live pages recompute "last hour" figures."""
        while True:
            now = utcnow()
            await asyncio.sleep(60 - now.second - now.microsecond / 1e6 + 0.05)
            self._bus.publish(MetricsUpdated())

    # --- rebuild from raw rows --------------------------------------------------------------------

    async def rebuild(
        self, since: datetime, until: datetime, *, chunk: timedelta = timedelta(hours=1)
    ) -> RebuildResult:
        """Recompute the rollups of whole minutes in [since, until) from finished invocation rows,
        one transaction per `chunk` (delete, then INSERT ... SELECT aggregated in the database).
        Rows counted live but not yet flushed would be counted twice: run it before live counting
        starts (platform start) or offline (benchmarks, repairs)."""
        start = minute_of(since)
        end = minute_of(until)
        if end < until:
            end += timedelta(minutes=1)
        minutes = latency_rows = invocations = 0
        while start < end:
            stop = min(start + chunk, end)
            async with self._db.transaction() as session:
                m, lat, n = await _rebuild_range(session, start, stop, self.RUN_MARGIN)
            minutes, latency_rows, invocations = minutes + m, latency_rows + lat, invocations + n
            start = stop
        if invocations:
            self._bus.publish(MetricsUpdated(invocations=invocations))
        return RebuildResult(minutes, latency_rows, invocations)


async def _rebuild_range(
    session: AsyncSession, start: datetime, stop: datetime, margin: timedelta
) -> tuple[int, int, int]:
    statements = _rebuild_statements(session.get_bind().dialect.name)
    params = {"start": start, "stop": stop, "scan_from": start - margin}
    # Deleting first takes SQLite's write lock before reading, so the read cannot go stale.
    await session.execute(statements.delete_minutes, params)
    await session.execute(statements.delete_latency, params)
    written = await session.execute(statements.insert_minutes, params)
    histogram = await session.execute(statements.insert_latency, params)
    total = await session.execute(statements.total, params)
    return _rowcount(written), _rowcount(histogram), int(total.scalar_one())


@dataclass(frozen=True, slots=True)
class _RebuildStatements:
    delete_minutes: Executable
    delete_latency: Executable
    insert_minutes: Executable
    insert_latency: Executable
    total: Executable


@lru_cache(maxsize=4)
def _rebuild_statements(dialect_name: str) -> _RebuildStatements:
    """The rebuild's statements over bound :start, :stop and :scan_from, built once (a 42-branch CASE
    costs more to construct than a chunk of a quiet hour costs to aggregate)."""
    minutes_t, latency_t, inv = _table(MetricMinute), _table(MetricLatency), _table(Invocation)
    start, stop = bindparam("start", type_=UTCDateTime()), bindparam("stop", type_=UTCDateTime())
    scan_from = bindparam("scan_from", type_=UTCDateTime())
    if dialect_name == "postgresql":
        minute: Any = func.date_trunc("minute", inv.c.ended_at)
    else:  # SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text; keep that format
        minute = func.strftime("%Y-%m-%d %H:%M:00.000000", inv.c.ended_at)
    finished = (
        select(minute.label("minute"), inv.c.function_id, inv.c.status, inv.c.cold, inv.c.duration_ms)
        .where(
            inv.c.started_at >= scan_from,
            inv.c.started_at < stop,
            inv.c.ended_at >= start,
            inv.c.ended_at < stop,
            # `|| ''` keeps the planner off the (status, id) index, which would visit every row.
            (inv.c.status + literal("")).in_(FINAL_STATUSES),
        )
        .subquery()
    )
    f = finished.c
    per_minute = select(
        f.minute,
        f.function_id,
        func.count(),
        func.sum(case((f.status.in_(ERROR_STATUSES), 1), else_=0)),
        func.sum(case((f.status == "timeout", 1), else_=0)),
        func.sum(case((f.cold, 1), else_=0)),
        func.coalesce(func.sum(f.duration_ms), 0.0),
        func.coalesce(func.max(f.duration_ms), 0.0),
    ).group_by(f.minute, f.function_id)
    columns = ["minute", "function_id", "invocations", "errors", "timeouts", "cold_starts"]
    columns += ["duration_sum_ms", "duration_max_ms"]
    bucket = case(*((f.duration_ms < bound, i) for i, bound in enumerate(BOUNDS)), else_=len(BOUNDS))
    bucketed = (
        select(f.minute, f.function_id, bucket.label("bucket")).where(f.duration_ms.is_not(None)).subquery()
    )
    b = bucketed.c
    per_bucket = select(b.minute, b.function_id, b.bucket, func.count()).group_by(
        b.minute, b.function_id, b.bucket
    )
    return _RebuildStatements(
        delete_minutes=delete(minutes_t).where(minutes_t.c.minute >= start, minutes_t.c.minute < stop),
        delete_latency=delete(latency_t).where(latency_t.c.minute >= start, latency_t.c.minute < stop),
        insert_minutes=insert(minutes_t).from_select(columns, per_minute),
        insert_latency=insert(latency_t).from_select(
            ["minute", "function_id", "bucket", "count"], per_bucket
        ),
        total=select(func.coalesce(func.sum(minutes_t.c.invocations), 0)).where(
            minutes_t.c.minute >= start, minutes_t.c.minute < stop
        ),
    )


def epoch_minutes(column: Any, dialect_name: str) -> Any:
    """SQL for the whole minutes since 1970 of a UTC datetime column (to group rollups into steps)."""
    if dialect_name == "postgresql":
        return cast(func.extract("epoch", column), BigInteger) // 60
    return cast(func.strftime("%s", column), Integer) // 60


def _rowcount(result: Any) -> int:
    return max(0, int(getattr(result, "rowcount", 0) or 0))
