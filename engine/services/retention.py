"""Data retention: the policy (days to keep each kind of data, automatic cleanup and its time of day),
statistics (rows, size, oldest record, what has expired), a preview, the cleanup itself, and its history.

A cleanup deletes in bounded batches (BATCH_ROWS per short transaction, a pause between them), so on
SQLite the console's reads never wait and writers wait at most one batch; it publishes RetentionProgress
as it goes and leaves a `retention_runs` row (what, how many rows per kind, how long, who). One cleanup
runs at a time across nodes (a running row with a fresh heartbeat blocks another).

Dashboards read the per-minute rollups (metric_minutes, metric_latency), never raw invocations:
retention keeps the rollups, so deleting raw rows changes no dashboard total. (A rollup rebuild only
ever covers the last minutes, far newer than any retention cutoff.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from data.db import Database
from data.models import RetentionRun
from data.repos.pagination import Page, paginate
from data.types import id_floor, utcnow
from engine.bus import LocalBus
from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.events import RetentionProgress
from engine.principal import SYSTEM, Principal
from engine.services.audit import AuditService
from engine.services.ops_settings import SettingValues
from engine.services.retention_policy import KEYS, POLICY_FIELDS
from engine.services.retention_targets import Target, builtin_targets
from engine.services.settings import SettingsService
from engine.services.storage_usage import measure, oldest

log = logging.getLogger("nimbus.retention")

BATCH_ROWS = 20_000  # measured: 5,000-row batches took twice as long per row (bench/retention.py)
BATCH_PAUSE_SEC = (
    0.1  # between batches: a writer waiting on SQLite's busy handler (it sleeps up to 100 ms) gets in
)
STALE_AFTER = timedelta(minutes=5)  # a running row without a heartbeat for this long was abandoned
RUNS_KEEP = timedelta(days=365)
CLEANUP_CACHE_KIB = 64 * 1024  # SQLite page cache of the cleanup's connection while it runs


@dataclass(frozen=True, slots=True)
class Expired:
    target: str
    label: str
    days: int
    cutoff: datetime
    rows: int
    note: str


@dataclass(frozen=True, slots=True)
class TargetStats:
    target: str
    label: str
    rows: int
    size_bytes: int
    size_method: str
    oldest_at: datetime | None
    days: int
    cutoff: datetime
    expired: int
    note: str


class RetentionService:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        settings: SettingsService,
        *,
        node: str = "",
        spill_dir: Path | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._node = node
        self._spill_dir = spill_dir.resolve() if spill_dir is not None else None
        self.values = SettingValues(settings, KEYS.values())
        self._targets: dict[str, Target] = {}
        self.batch_rows = BATCH_ROWS
        self.batch_pause = BATCH_PAUSE_SEC
        self._task: asyncio.Task[RetentionRun] | None = None
        self._claimed = False
        self.expected = 0  # rows expired when the current cleanup started
        self._current: RetentionRun | None = None
        for target in builtin_targets():
            self.register(target)

    def register(self, target: Target) -> None:
        self.values.track(target.days_key)
        self._targets[target.name] = target

    @property
    def targets(self) -> list[Target]:
        return list(self._targets.values())

    async def stop(self) -> None:
        """Stop a running cleanup (its run is recorded as failed: interrupted)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    # --- policy -----------------------------------------------------------------------------------

    async def policy(self, principal: Principal) -> dict[str, Any]:
        return {name: self.values.get(KEYS[name]) for name in POLICY_FIELDS}

    async def update_policy(self, principal: Principal, changes: dict[str, Any]) -> dict[str, Any]:
        """Change some of the policy's fields; one bad value changes nothing."""
        _require_admin(principal, "changing the retention policy")
        if not changes:
            raise Invalid(None, "nothing to change: send at least one policy field")
        unknown = [name for name in changes if name not in KEYS]
        if unknown:
            raise Invalid(
                unknown[0], f"unknown policy field {unknown[0]!r}; known: {', '.join(POLICY_FIELDS)}"
            )
        try:
            valid = self.values.validate({KEYS[name]: value for name, value in changes.items()})
        except Invalid as exc:
            name = str(exc.field).removeprefix("retention.")
            raise Invalid(name, exc.message.replace(str(exc.field), name)) from None
        before = await self.policy(principal)
        after = before | {name: valid[KEYS[name]] for name in changes}
        async with self._db.transaction() as session:
            await self.values.write(session, valid, principal.actor)
            self._audit.record(
                session,
                principal,
                "retention.policy_update",
                resource_type="retention",
                resource_id="policy",
                before=before,
                after=after,
            )
        await self.values.applied()
        return after

    # --- statistics and preview -------------------------------------------------------------------

    async def stats(self, principal: Principal) -> list[TargetStats]:
        """Per kind of data: rows, size (and how it was measured), oldest record, what has expired."""
        now = utcnow()
        result: list[TargetStats] = []
        async with self._db.session() as session:
            for target in self._targets.values():
                days = int(self.values.get(target.days_key))
                cutoff = now - timedelta(days=days)
                size = await measure(session, target.size)
                result.append(
                    TargetStats(
                        target=target.name,
                        label=target.label,
                        rows=size.rows,
                        size_bytes=size.bytes,
                        size_method=size.method,
                        oldest_at=await oldest(session, target.model) if size.rows else None,
                        days=days,
                        cutoff=cutoff,
                        expired=await target.count_expired(session, cutoff) if size.rows else 0,
                        note=target.note,
                    )
                )
        return result

    async def preview(self, principal: Principal) -> list[Expired]:
        """What a cleanup now would delete, per kind of data (children are deleted with their rows)."""
        return await self._expired(utcnow())

    async def _expired(self, now: datetime) -> list[Expired]:
        found: list[Expired] = []
        async with self._db.session() as session:
            for target in self._targets.values():
                days = int(self.values.get(target.days_key))
                cutoff = now - timedelta(days=days)
                rows = await target.count_expired(session, cutoff)
                found.append(Expired(target.name, target.label, days, cutoff, rows, target.note))
        return found

    # --- history ----------------------------------------------------------------------------------

    async def runs(
        self, principal: Principal, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[RetentionRun]:
        async with self._db.session() as session:
            return await paginate(session, select(RetentionRun), RetentionRun.id, cursor=cursor, limit=limit)

    async def run(self, principal: Principal, run_id: str) -> RetentionRun:
        async with self._db.session() as session:
            row = await session.get(RetentionRun, run_id)
        if row is None:
            raise NotFound(f"cleanup run not found: {run_id}")
        return row

    @property
    def current(self) -> RetentionRun | None:
        """The cleanup this node is running now (its counts kept up to date), if any."""
        return self._current

    # --- cleanup ----------------------------------------------------------------------------------

    async def cleanup(
        self, principal: Principal, *, wait: bool = True, trigger: str = "manual"
    ) -> RetentionRun:
        """Delete everything older than the policy. `wait=False` returns the running run at once
        (follow it with RetentionProgress events or `run()`); Conflict when a cleanup is running."""
        _require_admin(principal, "running a retention cleanup")
        if self._claimed or (self._task is not None and not self._task.done()):
            raise Conflict("a retention cleanup is already running on this node")
        self._claimed = True  # no await between the check and this: one start at a time
        try:
            started = utcnow()
            expired = await self._expired(started)
            async with self._db.transaction() as session:
                await _refuse_if_running_elsewhere(session)
                run = RetentionRun(
                    trigger=trigger,
                    status="running",
                    actor=principal.actor,
                    node=self._node,
                    policy={e.target: e.days for e in expired},
                    deleted={},
                    started_at=started,
                    duration_ms=0.0,
                )
                session.add(run)
        finally:
            self._claimed = False
        self._current = run
        expected = sum(e.rows for e in expired)
        self.expected = expected
        self._publish(run, "", 0, expected)
        self._task = asyncio.create_task(
            self._run(principal, run, expired, expected), name="nimbus-retention"
        )
        if not wait:
            return run
        return await asyncio.shield(self._task)

    async def _run(
        self, principal: Principal, run: RetentionRun, expired: list[Expired], expected: int
    ) -> RetentionRun:
        clock = time.monotonic()
        deleted: dict[str, int] = {}
        total, error, status = 0, "", "succeeded"
        try:
            files = await asyncio.to_thread(self._has_spilled_bodies)
            # One connection for the whole run, so its page cache stays warm from batch to batch.
            async with self._db.engine.connect() as conn, self._cache(conn):
                for item in expired:
                    target = self._targets[item.target]
                    while True:
                        async with conn.begin():
                            # The heartbeat first: on SQLite it takes the write lock before the reads.
                            await self._heartbeat(conn, run, (time.monotonic() - clock) * 1000)
                            counts, found = await target.delete_batch(
                                conn, item.cutoff, self.batch_rows, files=files
                            )
                        for kind, n in counts.items():
                            deleted[kind] = deleted.get(kind, 0) + n
                        total += counts[target.name]
                        if found:
                            await asyncio.to_thread(self._remove_files, found)
                        run.deleted, run.total_deleted = dict(deleted), total
                        self._publish(run, target.name, total, expected)
                        if counts[target.name] < self.batch_rows:
                            break
                        await asyncio.sleep(self.batch_pause)
        except asyncio.CancelledError:
            status, error = "failed", "interrupted: the server stopped during the cleanup"
        except Exception as exc:
            log.exception("retention cleanup %s failed", run.id)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        duration_ms = (time.monotonic() - clock) * 1000
        try:
            await asyncio.shield(self._finish(principal, run, status, deleted, total, duration_ms, error))
        finally:
            self._current = None
        self._publish(run, "", total, expected)
        return run

    async def _finish(
        self,
        principal: Principal,
        run: RetentionRun,
        status: str,
        deleted: dict[str, int],
        total: int,
        duration_ms: float,
        error: str,
    ) -> None:
        async with self._db.transaction() as session:
            row = await session.get(RetentionRun, run.id)
            row = row or run
            row.status, row.deleted, row.total_deleted = status, deleted, total
            row.duration_ms, row.error, row.finished_at = round(duration_ms, 1), error, utcnow()
            session.add(row)
            self._audit.record(
                session,
                principal,
                "retention.cleanup",
                resource_type="retention",
                resource_id=run.id,
                resource_name=run.trigger,
                after={"status": status, "deleted": deleted, "total_deleted": total},
                details={"policy_days": run.policy, "duration_ms": round(duration_ms, 1), "error": error},
            )
            await session.execute(
                delete(RetentionRun).where(
                    RetentionRun.id < id_floor(utcnow() - RUNS_KEEP), RetentionRun.id != run.id
                )
            )
        run.status, run.deleted, run.total_deleted = status, deleted, total
        run.duration_ms, run.error, run.finished_at = row.duration_ms, error, row.finished_at

    @contextlib.asynccontextmanager
    async def _cache(self, conn: AsyncConnection) -> AsyncIterator[None]:
        """On SQLite, a bigger page cache for the cleanup's connection while it runs (the indexes of a
        big table do not fit the default 2 MB), back to the default afterwards."""
        if not self._db.is_sqlite:
            yield
            return
        await conn.exec_driver_sql(f"PRAGMA cache_size=-{CLEANUP_CACHE_KIB}")
        await conn.commit()  # end the statement's implicit transaction: batches begin their own
        try:
            yield
        finally:
            await conn.rollback()  # a batch interrupted mid-way
            await conn.exec_driver_sql("PRAGMA cache_size=-2000")
            await conn.commit()

    async def _heartbeat(self, session: AsyncConnection, run: RetentionRun, elapsed_ms: float) -> None:
        """Progress so far on the run's row; `duration_ms` is its heartbeat (started_at + duration)."""
        await session.execute(
            update(RetentionRun)
            .where(RetentionRun.id == run.id)
            .values(deleted=dict(run.deleted), total_deleted=run.total_deleted, duration_ms=elapsed_ms)
        )

    def _publish(self, run: RetentionRun, target: str, deleted: int, expected: int) -> None:
        self._bus.publish(
            RetentionProgress(
                run_id=run.id,
                status=run.status,
                target=target,
                deleted=deleted,
                expected=expected,
                error=run.error,
            )
        )

    def _has_spilled_bodies(self) -> bool:
        """Whether this node's spill directory holds any file (else no batch looks for them)."""
        if self._spill_dir is None or not self._spill_dir.is_dir():
            return False
        with os.scandir(self._spill_dir) as entries:
            return any(True for _ in entries)

    def _remove_files(self, files: list[str]) -> None:
        """Remove spilled bodies, only ever inside the spill directory."""
        for name in files:
            path = Path(name).resolve()
            if self._spill_dir is None or path.parent != self._spill_dir:
                continue
            with contextlib.suppress(OSError):
                path.unlink()

    # --- the daily job ----------------------------------------------------------------------------

    async def scheduled_cleanup_job(self) -> None:
        """The system job (every few minutes, on every node): `run_scheduled_cleanup`."""
        await self.run_scheduled_cleanup()

    async def run_scheduled_cleanup(self, now: datetime | None = None) -> RetentionRun | None:
        """The automatic cleanup: when it is on and today's cleanup time (server time zone) has passed
        without a scheduled run since, run one. Safe to call as often as wanted (every few minutes)."""
        if not self.values.get("retention.auto_cleanup"):
            return None
        local = (now or utcnow()).astimezone()
        hour, minute = (int(part) for part in str(self.values.get("retention.cleanup_time")).split(":"))
        due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if local < due:
            return None
        async with self._db.session() as session:
            done = await session.execute(
                select(RetentionRun.id)
                .where(RetentionRun.id >= id_floor(due), RetentionRun.trigger == "scheduled")
                .limit(1)
            )
            if done.scalar_one_or_none() is not None:
                return None
        try:
            return await self.cleanup(SYSTEM, trigger="scheduled")
        except Conflict:  # a manual (or another node's) cleanup is running: try at the next call
            return None


async def _refuse_if_running_elsewhere(session: Any) -> None:
    """Conflict when another cleanup is running (its heartbeat is fresh); abandoned ones are closed."""
    rows = await session.execute(select(RetentionRun).where(RetentionRun.status == "running").limit(10))
    now = utcnow()
    for row in rows.scalars():
        beat = row.started_at + timedelta(milliseconds=row.duration_ms or 0)
        if now - beat < STALE_AFTER:
            raise Conflict(f"a retention cleanup is already running (started {row.started_at:%H:%M:%S} UTC)")
        row.status, row.error, row.finished_at = "failed", "abandoned: its node stopped", now
        session.add(row)


def _require_admin(principal: Principal, what: str) -> None:
    if not principal.can("admin"):
        raise Forbidden(f"{what} needs the admin role")
