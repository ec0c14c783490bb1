"""The durable async-invocation queue: jobs live in the `queue_jobs` table and are claimed under a lease.

Every operation takes the caller's AsyncSession, so enqueueing commits with the invocation row (in the
batcher's group commit) and settling a job commits with its records and DLQ row. Only `claim` differs by
backend (engine/queue_sqlite.py, engine/queue_postgres.py); the rest is shared SQL here. A job whose
node died is claimed again once its lease expires: an accepted invocation is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Select, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from data.db import Database
from data.models import QueueJob
from data.types import utcnow

_jobs = QueueJob.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class ClaimedJob:
    """A queue_jobs row as a claim returned it: plain values, no session or ORM state behind them."""

    id: str
    invocation_id: str
    function_id: str
    payload: Any
    source: str
    attempt: int
    max_attempts: int
    status: str
    run_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    errors: list[dict[str, Any]]
    created_at: datetime


_CLAIMED_COLUMNS = [_jobs.c[f.name] for f in fields(ClaimedJob)]
# Built once with an expanding IN: building the clause per call coerced every id (a twentieth of the
# writer's time when successes are settled in batches).
_OURS = and_(
    _jobs.c.id.in_(bindparam("ids", expanding=True)),
    _jobs.c.lease_owner == bindparam("owner"),
    _jobs.c.status == "running",
)
_COMPLETE_MANY = delete(_jobs).where(_OURS)
_EXTEND_MANY = update(_jobs).where(_OURS).values(lease_expires_at=bindparam("until"))


@runtime_checkable
class Notifier(Protocol):
    """Wakes consumers when work arrives. Local: an asyncio.Event (this node only). The seam for
    PostgreSQL LISTEN/NOTIFY: `notify()` sends NOTIFY after commit, a listener connection sets the
    local event on every node."""

    def notify(self) -> None: ...

    async def wait(self, timeout: float) -> bool: ...


class LocalNotifier:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when notified (or notified since the last wait), False after `timeout` seconds."""
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
            return self._event.is_set()
        finally:
            # Cleared as the waiter leaves, before it claims: a notify during the claim is kept for
            # the next wait, so no wakeup is lost.
            self._event.clear()


@runtime_checkable
class JobQueue(Protocol):
    async def enqueue(self, session: AsyncSession, job: QueueJob) -> None: ...

    async def claim(
        self, session: AsyncSession, owner: str, limit: int, lease_sec: float
    ) -> list[ClaimedJob]: ...

    async def extend(self, session: AsyncSession, job_id: str, owner: str, lease_sec: float) -> bool: ...

    async def extend_many(
        self, session: AsyncSession, job_ids: list[str], owner: str, lease_sec: float
    ) -> int: ...

    async def complete(self, session: AsyncSession, job_id: str, owner: str) -> bool: ...

    async def complete_many(self, session: AsyncSession, job_ids: list[str], owner: str) -> int: ...

    async def retry_later(
        self, session: AsyncSession, job_id: str, owner: str, run_at: datetime, error: dict[str, Any]
    ) -> bool: ...

    async def bury(self, session: AsyncSession, job_id: str, owner: str) -> QueueJob | None: ...

    async def depth(self, session: AsyncSession) -> dict[str, int]: ...

    def notify(self) -> None: ...

    async def wait(self, timeout: float) -> bool: ...


class SqlJobQueue:
    """Everything but `claim`, in SQL both SQLite (3.35+, RETURNING) and PostgreSQL speak. Writes that
    settle a job check `lease_owner`, so a node whose lease expired cannot touch a job another node
    has claimed since."""

    def __init__(self, notifier: Notifier | None = None) -> None:
        self.notifier: Notifier = notifier or LocalNotifier()

    # --- wakeups ------------------------------------------------------------------------------------

    def notify(self) -> None:
        """Call after the enqueue has committed (e.g. as the batcher's on_commit callback)."""
        self.notifier.notify()

    async def wait(self, timeout: float) -> bool:
        return await self.notifier.wait(timeout)

    # --- operations ---------------------------------------------------------------------------------

    async def enqueue(self, session: AsyncSession, job: QueueJob) -> None:
        row = {column.name: getattr(job, column.name) for column in _jobs.columns}
        await session.execute(insert(_jobs), [row])

    async def claim(
        self, session: AsyncSession, owner: str, limit: int, lease_sec: float
    ) -> list[ClaimedJob]:
        raise NotImplementedError

    async def extend(self, session: AsyncSession, job_id: str, owner: str, lease_sec: float) -> bool:
        """Push the lease forward (heartbeat); False when the job is no longer ours."""
        result = await session.execute(
            update(_jobs)
            .where(_owned(job_id, owner))
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_sec))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def extend_many(
        self, session: AsyncSession, job_ids: list[str], owner: str, lease_sec: float
    ) -> int:
        """`extend` for many jobs in one statement (the heartbeat's); returns how many are still ours."""
        if not job_ids:
            return 0
        result = await session.execute(
            _EXTEND_MANY,
            {"ids": job_ids, "owner": owner, "until": utcnow() + timedelta(seconds=lease_sec)},
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def complete(self, session: AsyncSession, job_id: str, owner: str) -> bool:
        result = await session.execute(delete(_jobs).where(_owned(job_id, owner)))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def complete_many(self, session: AsyncSession, job_ids: list[str], owner: str) -> int:
        """`complete` for many jobs in one statement (the consumer settles successes in batches)."""
        if not job_ids:
            return 0
        result = await session.execute(_COMPLETE_MANY, {"ids": job_ids, "owner": owner})
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def retry_later(
        self, session: AsyncSession, job_id: str, owner: str, run_at: datetime, error: dict[str, Any]
    ) -> bool:
        """Back to queued until `run_at`, with `error` appended to the job's errors."""
        found = await session.execute(select(_jobs.c.errors).where(_owned(job_id, owner)).with_for_update())
        errors = found.scalar_one_or_none()
        if errors is None:
            return False
        result = await session.execute(
            update(_jobs)
            .where(_owned(job_id, owner))
            .values(
                status="queued",
                run_at=run_at,
                lease_owner=None,
                lease_expires_at=None,
                errors=[*errors, error],
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def bury(self, session: AsyncSession, job_id: str, owner: str) -> QueueJob | None:
        """Delete the job and return it, so the caller writes its DLQ row in the same transaction."""
        result = await session.execute(
            delete(QueueJob)
            .where(_owned(job_id, owner))
            .returning(QueueJob)
            .execution_options(synchronize_session=False)
        )
        return result.scalars().first()

    async def depth(self, session: AsyncSession) -> dict[str, int]:
        """Counts: queued (all), ready (queued and due), running, expired (running, lease lapsed)."""
        now = utcnow()
        ready = and_(_jobs.c.status == "queued", _jobs.c.run_at <= now)
        result = await session.execute(
            select(
                func.count().filter(_jobs.c.status == "queued"),
                func.count().filter(ready),
                func.count().filter(_jobs.c.status == "running"),
                func.count().filter(_expired(now)),
            )
        )
        queued, due, running, expired = result.one()
        return {"queued": queued, "ready": due, "running": running, "expired": expired}


# --- shared SQL pieces (used by the claim implementations) ---------------------------------------


# Claims look for two kinds of job with two index-friendly queries rather than one OR: an OR makes the
# database collect and sort every match (the whole backlog), while these stop after `limit` rows.


def due(now: datetime, limit: int) -> Select[Any]:
    """Queued jobs whose time has come, oldest first: an ordered range scan of ix_queue_jobs_ready."""
    ready = and_(_jobs.c.status == "queued", _jobs.c.run_at <= now)
    return select(_jobs.c.id, _jobs.c.run_at).where(ready).order_by(_jobs.c.run_at).limit(limit)


def lapsed(now: datetime, limit: int) -> Select[Any]:
    """Running jobs whose lease expired (their node died or stalled); few, as running jobs are few."""
    return select(_jobs.c.id, _jobs.c.run_at).where(_expired(now)).order_by(_jobs.c.run_at).limit(limit)


async def take(
    session: AsyncSession, which: ColumnElement[bool], owner: str, now: datetime, lease_sec: float
) -> list[ClaimedJob]:
    """Mark the jobs `which` selects as running under `owner`'s lease; return them, oldest run_at first.

    Core RETURNING into slotted dataclasses: building them through the ORM mapper took a sixth of
    the single writer's time under load (SQLModel objects, which validate, were six times slower still)."""
    result = await session.execute(
        update(_jobs)
        .where(which)
        .values(
            status="running",
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_sec),
            attempt=_jobs.c.attempt + 1,
        )
        .returning(*_CLAIMED_COLUMNS)
    )
    jobs = [ClaimedJob(*row) for row in result]
    jobs.sort(key=lambda job: (job.run_at, job.id))
    return jobs


def _owned(job_id: str, owner: str) -> ColumnElement[bool]:
    return and_(_jobs.c.id == job_id, _jobs.c.lease_owner == owner, _jobs.c.status == "running")


def _expired(now: datetime) -> ColumnElement[bool]:
    return and_(_jobs.c.status == "running", _jobs.c.lease_expires_at < now)


def make_queue(db: Database, notifier: Notifier | None = None) -> JobQueue:
    """The queue for `db`'s backend."""
    if db.is_sqlite:
        from engine.queue_sqlite import SqliteJobQueue

        return SqliteJobQueue(notifier)
    from engine.queue_postgres import PostgresJobQueue

    return PostgresJobQueue(notifier)
