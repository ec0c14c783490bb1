"""Metrics for the dashboard, the wall and a function's Metrics tab: summary figures, per-minute series,
top functions, latest invocations. Every figure comes from the per-minute rollups (engine/rollups.py) or
from an index-bounded query, so no read grows with the number of invocations stored. Its `feed`
(engine/services/dashboard_feed.py) shares one whole-platform snapshot among every open page."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from data.db import Database
from data.models import DeadLetter, Function, Invocation, MetricLatency, MetricMinute
from data.types import utcnow
from engine.bus import LocalBus
from engine.errors import Invalid
from engine.histogram import percentile
from engine.pool import WorkerPool
from engine.principal import Principal
from engine.rollups import Rollups, epoch_minutes, minute_of
from engine.services.dashboard_feed import DashboardFeed
from engine.services.dlq import DlqService
from engine.services.invocations import InvocationService

MAX_SERIES_POINTS = 1500
MAX_MINUTES = 31 * 24 * 60


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class Summary:
    """Headline figures of the whole platform (function_id None) or of one function."""

    function_id: str | None
    at: datetime
    invocations_1h: int
    invocations_24h: int
    errors_1h: int
    errors_24h: int
    timeouts_1h: int
    cold_starts_1h: int
    avg_ms: float | None  # last hour
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    active_workers: int  # busy warm workers now
    warm_workers: int  # idle + busy
    dlq_pending: int

    @property
    def error_rate(self) -> float | None:
        """Failed or timed-out share of the last hour's invocations."""
        return _rate(self.errors_1h, self.invocations_1h)

    @property
    def error_rate_24h(self) -> float | None:
        return _rate(self.errors_24h, self.invocations_24h)

    @property
    def cold_start_rate(self) -> float | None:
        return _rate(self.cold_starts_1h, self.invocations_1h)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    at: datetime  # start of the step (UTC)
    invocations: int
    errors: int
    cold_starts: int
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class FunctionFigures:
    function_id: str
    function_name: str
    invocations: int
    errors: int
    cold_starts: int
    avg_ms: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return _rate(self.errors, self.invocations)


@dataclass(frozen=True, slots=True)
class RecentInvocation:
    id: str
    function_id: str
    function_name: str
    status: str
    source: str
    duration_ms: float | None
    cold: bool
    at: datetime  # ended_at, else created_at
    error_type: str | None = None
    error_message: str | None = None

    @classmethod
    def of(cls, row: Invocation) -> RecentInvocation:
        return cls(
            id=row.id,
            function_id=row.function_id,
            function_name=row.function_name,
            status=row.status,
            source=row.source,
            duration_ms=row.duration_ms,
            cold=row.cold,
            at=row.ended_at or row.created_at,
            error_type=row.error_type,
            error_message=row.error_message,
        )


@dataclass(frozen=True, slots=True)
class DlqMessage:
    id: str
    function_name: str
    error: str
    retry_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DlqFigures:
    pending: int
    retrying: int
    by_function: list[tuple[str, int]]  # (function name, pending + retrying), largest first
    latest: list[DlqMessage]  # newest pending first


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the whole-platform dashboard and the wall show, computed once for every page."""

    at: datetime
    summary: Summary
    series: list[SeriesPoint]  # the last hour, per minute
    top: list[FunctionFigures]  # the last 24 h
    recent: list[RecentInvocation]
    errors: list[RecentInvocation]
    dlq: DlqFigures
    version: int = 0


class MetricsService:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        rollups: Rollups,
        pool: WorkerPool,
        dlq: DlqService,
        invocations: InvocationService,
    ) -> None:
        self._db = db
        self._rollups = rollups
        self._pool = pool
        self._dlq = dlq
        self._invocations = invocations
        self.feed = DashboardFeed(self, bus)

    async def start(self) -> None:
        self.feed.start()

    async def stop(self) -> None:
        self.feed.stop()

    # --- figures ----------------------------------------------------------------------------------

    async def summary(
        self, principal: Principal, function_id: str | None = None, *, now: datetime | None = None
    ) -> Summary:
        current = minute_of(now or utcnow())
        hour = current - timedelta(minutes=59)
        day = current - timedelta(minutes=24 * 60 - 1)
        m = MetricMinute
        recent = m.minute >= hour

        def last_hour(column: Any) -> Any:
            return func.coalesce(func.sum(case((recent, column), else_=0)), 0)

        counts = select(
            func.coalesce(func.sum(m.invocations), 0),
            func.coalesce(func.sum(m.errors), 0),
            last_hour(m.invocations),
            last_hour(m.errors),
            last_hour(m.timeouts),
            last_hour(m.cold_starts),
            last_hour(m.duration_sum_ms),
            func.max(case((recent, m.duration_max_ms), else_=None)),
        ).where(m.minute >= day, m.minute <= current)
        latency = (
            select(MetricLatency.bucket, func.sum(MetricLatency.count))
            .where(MetricLatency.minute >= hour, MetricLatency.minute <= current)
            .group_by(MetricLatency.bucket)
        )
        if function_id:
            counts = counts.where(m.function_id == function_id)
            latency = latency.where(MetricLatency.function_id == function_id)
        pending = select(func.count()).select_from(DeadLetter).where(DeadLetter.status == "pending")
        if function_id:
            pending = pending.where(DeadLetter.function_id == function_id)
        async with self._db.session() as session:
            inv_24h, err_24h, inv_1h, err_1h, timeouts, cold, dur_sum, dur_max = (
                await session.execute(counts)
            ).one()
            histogram = {int(b): int(c) for b, c in (await session.execute(latency)).tuples()}
            dlq_pending = int((await session.execute(pending)).scalar_one())
        top = float(dur_max) if dur_max is not None else None
        busy = warm = 0
        for pool in self._pool.stats().values():
            if function_id is None or pool["function_id"] == function_id:
                busy += int(pool["busy"])
                warm += int(pool["busy"]) + int(pool["idle"])
        return Summary(
            function_id=function_id,
            at=now or utcnow(),
            invocations_1h=int(inv_1h),
            invocations_24h=int(inv_24h),
            errors_1h=int(err_1h),
            errors_24h=int(err_24h),
            timeouts_1h=int(timeouts),
            cold_starts_1h=int(cold),
            avg_ms=float(dur_sum) / int(inv_1h) if inv_1h else None,
            p50_ms=percentile(histogram, 0.50, max_ms=top),
            p95_ms=percentile(histogram, 0.95, max_ms=top),
            p99_ms=percentile(histogram, 0.99, max_ms=top),
            max_ms=top,
            active_workers=busy,
            warm_workers=warm,
            dlq_pending=dlq_pending,
        )

    async def series(
        self,
        principal: Principal,
        function_id: str | None = None,
        *,
        minutes: int = 60,
        step: int = 1,
        now: datetime | None = None,
    ) -> list[SeriesPoint]:
        """Points of `step` minutes covering the last `minutes` (the last point holds the current
        minute), oldest first; steps without invocations are zeros with no latency."""
        if not 1 <= minutes <= MAX_MINUTES:
            raise Invalid("minutes", f"minutes must be between 1 and {MAX_MINUTES}")
        if step < 1:
            raise Invalid("step", "step must be at least 1 minute")
        count = math.ceil(minutes / step)
        if count > MAX_SERIES_POINTS:
            raise Invalid("step", f"at most {MAX_SERIES_POINTS} points: use a larger step")
        current = minute_of(now or utcnow())
        first = current - timedelta(minutes=count * step - 1)
        m, lat = MetricMinute, MetricLatency
        # Steps are grouped in the database: a day in 15-minute steps reads 96 rows, not 1,440 x 42.
        offset = int(first.timestamp()) // 60

        def slot(column: Any) -> Any:
            return ((epoch_minutes(column, self._db.dialect) - offset) // step).label("slot")

        minute_rows = select(
            slot(m.minute), m.invocations, m.errors, m.cold_starts, m.duration_sum_ms, m.duration_max_ms
        ).where(m.minute >= first, m.minute <= current)
        latency_rows = select(slot(lat.minute), lat.bucket, lat.count).where(
            lat.minute >= first, lat.minute <= current
        )
        if function_id:
            minute_rows = minute_rows.where(m.function_id == function_id)
            latency_rows = latency_rows.where(lat.function_id == function_id)
        c, h = minute_rows.subquery().c, latency_rows.subquery().c
        counts = select(
            c.slot,
            func.sum(c.invocations),
            func.sum(c.errors),
            func.sum(c.cold_starts),
            func.sum(c.duration_sum_ms),
            func.max(c.duration_max_ms),
        ).group_by(c.slot)
        latency = select(h.slot, h.bucket, func.sum(h.count)).group_by(h.slot, h.bucket)
        async with self._db.session() as session:
            count_rows = (await session.execute(counts)).tuples().all()
            latency_rows_found = (await session.execute(latency)).tuples().all()

        totals = [[0, 0, 0, 0.0, 0.0] for _ in range(count)]
        for i, inv, err, cold, dur_sum, dur_max in count_rows:
            totals[int(i)] = [int(inv), int(err), int(cold), float(dur_sum), float(dur_max)]
        histograms: list[dict[int, int]] = [{} for _ in range(count)]
        for i, bucket, n in latency_rows_found:
            histograms[int(i)][int(bucket)] = int(n)
        points = []
        for i, (inv, err, cold, dur_sum, dur_max) in enumerate(totals):
            h, top = histograms[i], (dur_max or None)
            points.append(
                SeriesPoint(
                    at=first + timedelta(minutes=i * step),
                    invocations=int(inv),
                    errors=int(err),
                    cold_starts=int(cold),
                    avg_ms=dur_sum / inv if inv else None,
                    p50_ms=percentile(h, 0.50, max_ms=top),
                    p95_ms=percentile(h, 0.95, max_ms=top),
                    p99_ms=percentile(h, 0.99, max_ms=top),
                )
            )
        return points

    async def top_functions(
        self, principal: Principal, *, hours: int = 24, limit: int = 10, now: datetime | None = None
    ) -> list[FunctionFigures]:
        """The busiest functions of the last `hours`, with error rate and p95."""
        current = minute_of(now or utcnow())
        since = current - timedelta(minutes=hours * 60 - 1)
        m, lat = MetricMinute, MetricLatency
        invocations = func.sum(m.invocations)
        busiest = (
            select(
                m.function_id,
                invocations,
                func.sum(m.errors),
                func.sum(m.cold_starts),
                func.sum(m.duration_sum_ms),
                func.max(m.duration_max_ms),
            )
            .where(m.minute >= since, m.minute <= current)
            .group_by(m.function_id)
            .order_by(invocations.desc(), m.function_id)
            .limit(max(1, min(limit, 100)))
        )
        async with self._db.session() as session:
            rows = (await session.execute(busiest)).tuples().all()
            ids = [row[0] for row in rows]
            histograms: dict[str, dict[int, int]] = {fid: {} for fid in ids}
            if ids:
                latency = (
                    select(lat.function_id, lat.bucket, func.sum(lat.count))
                    .where(lat.minute >= since, lat.minute <= current, lat.function_id.in_(ids))
                    .group_by(lat.function_id, lat.bucket)
                )
                for fid, bucket, n in (await session.execute(latency)).tuples():
                    histograms[fid][int(bucket)] = int(n)
            names = await self._names(session, ids)
        return [
            FunctionFigures(
                function_id=fid,
                function_name=names.get(fid, fid[:8]),
                invocations=int(inv),
                errors=int(err),
                cold_starts=int(cold),
                avg_ms=float(dur_sum) / int(inv) if inv else None,
                p95_ms=percentile(histograms[fid], 0.95, max_ms=float(dur_max) or None),
            )
            for fid, inv, err, cold, dur_sum, dur_max in rows
        ]

    async def recent(
        self, principal: Principal, limit: int = 20, *, function_id: str | None = None
    ) -> list[RecentInvocation]:
        """The latest invocations, newest first."""
        page = await self._invocations.list(principal, function=function_id, limit=limit)
        return [RecentInvocation.of(row) for row in page.items]

    async def recent_errors(self, principal: Principal, limit: int = 10) -> list[RecentInvocation]:
        """The latest failed or timed-out invocations, newest first (two index range scans)."""
        found: list[Invocation] = []
        for status in ("failed", "timeout"):
            found += (await self._invocations.list(principal, status=status, limit=limit)).items
        found.sort(key=lambda row: row.id, reverse=True)
        return [RecentInvocation.of(row) for row in found[:limit]]

    async def dlq(self, principal: Principal, limit: int = 8) -> DlqFigures:
        stats = await self._dlq.stats(principal)
        page = await self._dlq.list(principal, status="pending", limit=limit)
        return DlqFigures(
            pending=int(stats["pending"]),
            retrying=int(stats["retrying"]),
            by_function=[(row["function_name"], int(row["count"])) for row in stats["by_function"]],
            latest=[
                DlqMessage(
                    id=msg.id,
                    function_name=msg.function_name,
                    error=msg.error,
                    retry_count=msg.retry_count,
                    created_at=msg.created_at,
                )
                for msg in page.items
            ],
        )

    async def snapshot(self, principal: Principal, *, version: int = 0) -> Snapshot:
        """The whole-platform dashboard: one set of queries, whatever the number of pages."""
        now = utcnow()
        summary = await self.summary(principal, now=now)
        series = await self.series(principal, minutes=60, now=now)
        top = await self.top_functions(principal, now=now)
        recent = await self.recent(principal, 20)
        errors = await self.recent_errors(principal, 10)
        dlq = await self.dlq(principal)
        return Snapshot(now, summary, series, top, recent, errors, dlq, version)

    # --- helpers ----------------------------------------------------------------------------------

    async def _names(self, session: Any, ids: Sequence[str]) -> dict[str, str]:
        """Function names by id: the functions table, else the name this process last saw, else the
        function's latest invocation (one index lookup each; only for deleted functions)."""
        if not ids:
            return {}
        found = (
            await session.execute(select(Function.id, Function.name).where(Function.id.in_(ids)))
        ).tuples()
        names = dict(found.all())
        for fid in ids:
            if fid in names:
                continue
            known = self._rollups.function_name(fid)
            if known is None:
                latest = select(Invocation.function_name).where(Invocation.function_id == fid)
                latest = latest.order_by(Invocation.id.desc()).limit(1)
                known = (await session.execute(latest)).scalar_one_or_none()
            if known:
                names[fid] = known
        return names
