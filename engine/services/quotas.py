"""Quotas: the limit and the usage of each quota (functions, configured memory, invocations per UTC day
and month, concurrent executions, code / layer / log / record storage, and whatever a provider adds,
e.g. workflows), enforcement, and periodic usage snapshots for the trend charts.

Enforcement: a function create over the functions, memory or code-storage limit is refused
(QuotaExceeded) inside the create's transaction; an invocation over the day or month limit is refused
(QuotaExceeded, 429) by `admit()` on the invoke hot path, which queries nothing: an in-memory counter,
seeded at start from the per-minute rollups (metric_minutes) and advanced on each admitted invocation.
Concurrent executions are capped by the worker pool itself (engine/pool.py); here they are shown.

Adding a quota (the lead's "workflows", for instance): register a setting for its limit, then
`platform.quotas.register(Quota("workflows", "Workflows", "count", "quota.max_workflows",
count_rows(db, Workflow), enforced="workflow create"))` and call `check_room(session, "workflows")` in
the create's transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import (
    Function,
    FunctionVersion,
    LayerVersion,
    MetricMinute,
    QuotaSnapshot,
    Workflow,
)
from data.types import id_floor, utcnow
from engine.bus import LocalBus
from engine.errors import Forbidden, Invalid, QuotaExceeded
from engine.events import QuotaChanged
from engine.principal import SYSTEM, Principal
from engine.services.audit import AuditService
from engine.services.ops_settings import SettingValues
from engine.services.quota_limits import KB, MB, WARNING_THRESHOLD, InvocationCounter
from engine.services.setting_specs import MAX_CONCURRENCY
from engine.services.settings import SettingsService
from engine.services.storage_usage import (
    ATTEMPTS,
    DEAD_LETTERS,
    EMPTY,
    INVOCATION_LOGS,
    INVOCATIONS,
    TableSize,
    measure,
)

if TYPE_CHECKING:
    from engine.pool import WorkerPool

log = logging.getLogger("nimbus.quotas")

STORAGE_TTL_SEC = 60.0  # log and record storage count big tables: measured at most this often
SNAPSHOT_KEEP = timedelta(days=400)
HISTORY_MAX_HOURS = 24 * 400
HISTORY_MAX_POINTS = 5000


# --- quotas and their usage -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measure:
    used: float
    method: str = "exact"  # how `used` was measured


Measurer = Callable[[], Awaitable[Measure]]


@dataclass(frozen=True, slots=True)
class Quota:
    name: str
    label: str
    unit: str  # count | MB | bytes
    limit_key: str  # the setting holding the limit
    measure: Measurer
    enforced: str = ""  # where the limit is enforced, in words ("" = shown only)
    limit_scale: int = 1  # `unit`s per unit of the limit setting (bytes per KiB ...)
    editable: bool = True  # changed through PUT /quota (else on the Settings page)

    @property
    def field(self) -> str:
        """The limit's name in the API (the setting key without its group)."""
        return self.limit_key.removeprefix("quota.")


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    name: str
    label: str
    unit: str
    used: float
    limit: float
    percent: float
    level: str  # ok | warning | danger
    enforced: str
    method: str
    limit_field: str
    editable: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "unit": self.unit,
            "used": self.used,
            "limit": self.limit,
            "percent": self.percent,
            "level": self.level,
            "enforced": self.enforced,
            "method": self.method,
            "limit_field": self.limit_field,
            "editable": self.editable,
        }


@dataclass(frozen=True, slots=True)
class QuotaReport:
    quotas: list[QuotaUsage]
    warning_threshold: int
    measured_at: datetime

    def get(self, name: str) -> QuotaUsage | None:
        return next((q for q in self.quotas if q.name == name), None)


def level_of(percent: float, threshold: float) -> str:
    if percent >= 100:
        return "danger"
    return "warning" if percent >= threshold else "ok"


def count_rows(db: Database, model: Any) -> Measurer:
    """A measurer counting `model`'s rows (for count quotas such as workflows)."""

    async def counted() -> Measure:
        async with db.session() as session:
            n = (await session.execute(select(func.count()).select_from(model))).scalar_one()
        return Measure(float(n))

    return counted


# --- the service ----------------------------------------------------------------------------------


class QuotaService:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        pool: WorkerPool,
        settings: SettingsService,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._pool = pool
        self.values = SettingValues(settings, (WARNING_THRESHOLD, MAX_CONCURRENCY))
        self.counter = InvocationCounter(clock)
        self._quotas: dict[str, Quota] = {}
        self._storage: tuple[float, dict[str, TableSize]] | None = None
        self._storage_lock = asyncio.Lock()
        for quota in self._builtin():
            self.register(quota)
        # The hot path reads two ints, kept current by the settings service's watchers.
        self._day_limit = int(self.values.get("quota.max_invocations_per_day"))
        self._month_limit = int(self.values.get("quota.max_invocations_per_month"))
        self.values.watch("quota.max_invocations_per_day", self._set_day_limit)
        self.values.watch("quota.max_invocations_per_month", self._set_month_limit)

    def register(self, quota: Quota) -> None:
        """Add a quota (shown, snapshotted, and checkable with `check_room`)."""
        self.values.track(quota.limit_key)
        self._quotas[quota.name] = quota

    @property
    def quotas(self) -> list[Quota]:
        return list(self._quotas.values())

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Seed the invocation counter from the rollups (run after Rollups.start and the settings), and
        take a first snapshot when the last is older than an hour."""
        await self.resync()
        try:
            await self._snapshot_if_stale(timedelta(hours=1))
        except Exception:  # never keep the platform from starting over a chart
            log.exception("the start-up quota snapshot failed")

    def _set_day_limit(self, value: Any) -> None:
        self._day_limit = int(value)

    def _set_month_limit(self, value: Any) -> None:
        self._month_limit = int(value)

    async def resync(self) -> None:
        """Raise the invocation counter to the rollups' totals for today and this month."""
        day_start, month_start = self.counter.day_start, self.counter.month_start
        total = func.coalesce(func.sum(MetricMinute.invocations), 0)
        async with self._db.session() as session:
            day = (await session.execute(select(total).where(MetricMinute.minute >= day_start))).scalar_one()
            month = (
                await session.execute(select(total).where(MetricMinute.minute >= month_start))
            ).scalar_one()
        self.counter.seed(day_start, int(day), int(month))

    # --- the hot path -----------------------------------------------------------------------------

    def admit(self) -> None:
        """Count one invocation, or QuotaExceeded (429) when today's or this month's limit is reached."""
        self.counter.admit(self._day_limit, self._month_limit)

    # --- checks in a create's transaction ---------------------------------------------------------

    async def check_function_create(self, session: AsyncSession, fn: Function) -> None:
        """Refuse a new function over the functions, memory or code-storage limit."""
        count, memory = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(Function.memory_mb), 0)).select_from(Function)
            )
        ).one()
        max_functions = int(self.values.get("quota.max_functions"))
        if count + 1 > max_functions:
            raise QuotaExceeded(
                f"function quota reached: {count} of {max_functions} functions exist; delete one or "
                "ask an admin to raise max_functions"
            )
        max_memory = int(self.values.get("quota.max_memory_mb"))
        if memory + fn.memory_mb > max_memory:
            raise QuotaExceeded(
                f"memory quota reached: the functions' memory adds up to {memory} MB and this one needs "
                f"{fn.memory_mb} MB more, over the limit of {max_memory} MB",
                field="memory_mb",
            )
        code = await _code_bytes(session)
        new = sum(len(text) for text in fn.files.values())
        max_code = int(self.values.get("quota.max_code_size_kb")) * KB
        if code + new > max_code:
            raise QuotaExceeded(
                f"code storage quota reached: {_human(code)} stored and this function adds "
                f"{_human(new)}, over the limit of {_human(max_code)}",
                field="code",
            )

    async def check_room(self, session: AsyncSession, name: str, adding: float = 1) -> None:
        """Refuse adding `adding` to quota `name` when it would pass its limit (count quotas). Call it
        in the create's transaction, before adding the row; the quota measures what is committed."""
        quota = self._quotas[name]
        used = (await quota.measure()).used
        limit = self._limit(quota)
        if used + adding > limit:
            raise QuotaExceeded(
                f"{quota.label.lower()} quota reached: {_fmt(used)} of {_fmt(limit)}; "
                f"ask an admin to raise {quota.field}"
            )

    # --- reads ------------------------------------------------------------------------------------

    async def report(self, principal: Principal, *, fresh: bool = False) -> QuotaReport:
        """Every quota's usage against its limit. Storage figures are at most a minute old unless
        `fresh`."""
        if fresh:
            self._storage = None
        threshold = int(self.values.get(WARNING_THRESHOLD))
        usages: list[QuotaUsage] = []
        for quota in self._quotas.values():
            measured = await quota.measure()
            limit = self._limit(quota)
            percent = round(100.0 * measured.used / limit, 2) if limit > 0 else 0.0
            usages.append(
                QuotaUsage(
                    name=quota.name,
                    label=quota.label,
                    unit=quota.unit,
                    used=measured.used,
                    limit=limit,
                    percent=percent,
                    level=level_of(percent, threshold),
                    enforced=quota.enforced,
                    method=measured.method,
                    limit_field=quota.field,
                    editable=quota.editable,
                )
            )
        return QuotaReport(usages, threshold, utcnow())

    def limits(self) -> dict[str, int]:
        """The editable limits by API field, and the warning threshold."""
        values = {q.field: int(self.values.get(q.limit_key)) for q in self._quotas.values() if q.editable}
        return values | {"warning_threshold": int(self.values.get(WARNING_THRESHOLD))}

    async def history(self, principal: Principal, hours: int = 24 * 7) -> list[QuotaSnapshot]:
        """The usage snapshots of the last `hours`, oldest first."""
        if not 1 <= hours <= HISTORY_MAX_HOURS:
            raise Invalid("hours", f"hours must be between 1 and {HISTORY_MAX_HOURS}")
        since = id_floor(utcnow() - timedelta(hours=hours))
        stmt = (
            select(QuotaSnapshot)
            .where(QuotaSnapshot.id >= since)
            .order_by(QuotaSnapshot.id.desc())
            .limit(HISTORY_MAX_POINTS)
        )
        async with self._db.session() as session:
            rows = list((await session.execute(stmt)).scalars())
        return rows[::-1]

    # --- writes -----------------------------------------------------------------------------------

    async def update(self, principal: Principal, changes: dict[str, Any]) -> QuotaReport:
        """Change limits (by API field, e.g. max_functions) and/or the warning threshold. All or
        nothing: one bad value changes none."""
        if not principal.can("admin"):
            raise Forbidden("changing quotas needs the admin role")
        if not changes:
            raise Invalid(None, "nothing to change: send at least one limit or warning_threshold")
        keys = {q.field: q.limit_key for q in self._quotas.values() if q.editable}
        keys["warning_threshold"] = WARNING_THRESHOLD
        settings: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in keys:
                fixed = next((q for q in self._quotas.values() if q.field == name), None)
                if fixed is not None:
                    raise Invalid(name, f"{name} is changed on the Settings page ({fixed.limit_key})")
                raise Invalid(name, f"unknown quota limit {name!r}; known: {', '.join(keys)}")
            settings[keys[name]] = value
        try:
            valid = self.values.validate(settings)
        except Invalid as exc:
            field_name = next((n for n, k in keys.items() if k == exc.field), exc.field)
            raise Invalid(field_name, exc.message.replace(str(exc.field), str(field_name))) from None
        before = self.limits()
        async with self._db.transaction() as session:
            await self.values.write(session, valid, principal.actor)
            after = before | {n: valid[k] for n, k in keys.items() if k in valid}
            self._audit.record(
                session,
                principal,
                "quota.update",
                resource_type="quota",
                resource_id="limits",
                before=before,
                after=after,
            )
        await self.values.applied()  # the settings cache first: listeners read the new limits
        self._bus.publish(QuotaChanged(reason="limits"))
        return await self.report(principal)

    async def snapshot(self) -> QuotaSnapshot:
        """Record every quota's usage now (the hourly job), prune snapshots older than ~13 months,
        and re-seed the invocation counter from the rollups (other nodes' invocations)."""
        with contextlib.suppress(Exception):
            await self.resync()
        report = await self.report(SYSTEM, fresh=True)
        row = QuotaSnapshot(
            taken_at=report.measured_at,
            usage={q.name: {"used": q.used, "limit": q.limit} for q in report.quotas},
        )
        async with self._db.transaction() as session:
            session.add(row)
            await session.execute(
                delete(QuotaSnapshot).where(QuotaSnapshot.id < id_floor(utcnow() - SNAPSHOT_KEEP))
            )
            event = QuotaChanged(reason="snapshot")
            session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))
        return row

    async def snapshot_job(self) -> None:
        """The hourly system job, on every node: re-seed this node's invocation counter, and take the
        snapshot unless another node took one in the last 50 minutes."""
        await self.resync()
        await self._snapshot_if_stale(timedelta(minutes=50))

    async def _snapshot_if_stale(self, age: timedelta) -> None:
        async with self._db.session() as session:
            latest = (
                await session.execute(
                    select(QuotaSnapshot.id).where(QuotaSnapshot.id >= id_floor(utcnow() - age)).limit(1)
                )
            ).scalar_one_or_none()
        if latest is None:
            await self.snapshot()

    # --- measuring --------------------------------------------------------------------------------

    def _limit(self, quota: Quota) -> float:
        return float(int(self.values.get(quota.limit_key)) * quota.limit_scale)

    def _builtin(self) -> list[Quota]:
        return [
            Quota(
                "functions",
                "Functions",
                "count",
                "quota.max_functions",
                count_rows(self._db, Function),
                "function create",
            ),
            Quota(
                "memory", "Configured memory", "MB", "quota.max_memory_mb", self._memory, "function create"
            ),
            Quota(
                "invocations_day",
                "Invocations today (UTC)",
                "count",
                "quota.max_invocations_per_day",
                self._today,
                "invoke (429)",
            ),
            Quota(
                "invocations_month",
                "Invocations this month (UTC)",
                "count",
                "quota.max_invocations_per_month",
                self._this_month,
                "invoke (429)",
            ),
            Quota(
                "concurrency",
                "Concurrent executions",
                "count",
                MAX_CONCURRENCY,
                self._running,
                "worker pool (callers wait, then 429)",
                editable=False,
            ),
            Quota(
                "storage_code",
                "Code storage",
                "bytes",
                "quota.max_code_size_kb",
                self._code,
                "function create",
                KB,
            ),
            Quota(
                "storage_layers",
                "Layer storage",
                "bytes",
                "quota.max_layer_storage_mb",
                self._layers,
                limit_scale=MB,
            ),
            Quota(
                "storage_logs",
                "Log storage",
                "bytes",
                "quota.max_log_storage_mb",
                self._logs,
                limit_scale=MB,
            ),
            Quota(
                "storage_records",
                "Record storage",
                "bytes",
                "quota.max_record_storage_mb",
                self._records,
                limit_scale=MB,
            ),
            # Enforced by the workflow create (WorkflowService.quota_check -> check_room).
            Quota("workflows", "Workflows", "count", "quota.max_workflows", count_rows(self._db, Workflow)),
        ]

    async def _memory(self) -> Measure:
        async with self._db.session() as session:
            total = (
                await session.execute(select(func.coalesce(func.sum(Function.memory_mb), 0)))
            ).scalar_one()
        return Measure(float(total), "sum of the functions' memory_mb")

    async def _today(self) -> Measure:
        return Measure(float(self.counter.current()[0]), "admitted since 00:00 UTC (in memory)")

    async def _this_month(self) -> Measure:
        return Measure(float(self.counter.current()[1]), "admitted since the 1st, 00:00 UTC (in memory)")

    async def _running(self) -> Measure:
        stats = self._pool.stats().values()
        return Measure(float(sum(p["busy"] + p["spawning"] for p in stats)), "running now on this node")

    async def _code(self) -> Measure:
        async with self._db.session() as session:
            total = await _code_bytes(session)
        return Measure(float(total), "characters of every function's and published version's files")

    async def _layers(self) -> Measure:
        async with self._db.session() as session:
            total = (
                await session.execute(select(func.coalesce(func.sum(LayerVersion.size_bytes), 0)))
            ).scalar_one()
        return Measure(float(total), "sum of layer_versions.size_bytes")

    async def _logs(self) -> Measure:
        size = (await self._table_sizes())["logs"]
        return Measure(float(size.bytes), f"{size.rows} log rows; {size.method}")

    async def _records(self) -> Measure:
        size = (await self._table_sizes())["records"]
        return Measure(float(size.bytes), f"{size.rows} rows; {size.method}")

    async def _table_sizes(self) -> dict[str, TableSize]:
        async with self._storage_lock:
            now = time.monotonic()
            if self._storage is not None and now - self._storage[0] < STORAGE_TTL_SEC:
                return self._storage[1]
            async with self._db.session() as session:
                logs = await measure(session, INVOCATION_LOGS)
                records = EMPTY
                for table in (INVOCATIONS, ATTEMPTS, DEAD_LETTERS):
                    records = records + await measure(session, table)
            self._storage = (now, {"logs": logs, "records": records})
            return self._storage[1]


async def _code_bytes(session: AsyncSession) -> int:
    working = select(func.coalesce(func.sum(func.length(cast(Function.files, Text))), 0))
    published = select(func.coalesce(func.sum(func.length(cast(FunctionVersion.files, Text))), 0))
    return int((await session.execute(working)).scalar_one()) + int(
        (await session.execute(published)).scalar_one()
    )


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _human(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
