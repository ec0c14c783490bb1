"""Claiming on SQLite: one UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING. SQLite serialises
writers, so the statement that picks the jobs also takes them; no other claimer can interleave. One
statement matters here: each costs several thread round trips through aiosqlite."""

from __future__ import annotations

from sqlalchemy import select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from data.models import QueueJob
from data.types import utcnow
from engine.queue import ClaimedJob, SqlJobQueue, due, lapsed, take

_jobs = QueueJob.__table__  # type: ignore[attr-defined]


class SqliteJobQueue(SqlJobQueue):
    async def claim(
        self, session: AsyncSession, owner: str, limit: int, lease_sec: float
    ) -> list[ClaimedJob]:
        """Take up to `limit` due jobs (oldest run_at first) under a lease of `lease_sec` seconds."""
        if limit <= 0:
            return []
        now = utcnow()
        # SQLite allows LIMIT inside a compound SELECT only in subqueries, hence the wrapping.
        candidates = union_all(
            select(due(now, limit).subquery()), select(lapsed(now, limit).subquery())
        ).subquery()
        picked = select(candidates.c.id).order_by(candidates.c.run_at).limit(limit)
        return await take(session, _jobs.c.id.in_(picked.scalar_subquery()), owner, now, lease_sec)
