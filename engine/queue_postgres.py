"""Claiming on PostgreSQL, where many nodes claim at once: SELECT ... FOR UPDATE SKIP LOCKED picks jobs
no other transaction holds (so claimers never wait on each other or take the same job), then one
UPDATE ... RETURNING takes them under this node's lease. Lapsed leases are picked first (FOR UPDATE
cannot lock through a UNION, and those jobs are the oldest anyway), then due jobs fill the rest."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from data.models import QueueJob
from data.types import utcnow
from engine.queue import ClaimedJob, SqlJobQueue, due, lapsed, take

_jobs = QueueJob.__table__  # type: ignore[attr-defined]


class PostgresJobQueue(SqlJobQueue):
    async def claim(
        self, session: AsyncSession, owner: str, limit: int, lease_sec: float
    ) -> list[ClaimedJob]:
        """Take up to `limit` due jobs (oldest run_at first) under a lease of `lease_sec` seconds."""
        if limit <= 0:
            return []
        now = utcnow()
        ids: list[str] = []
        for pick in (lapsed, due):
            if len(ids) < limit:
                picked = await session.execute(
                    pick(now, limit - len(ids))
                    .with_only_columns(_jobs.c.id)
                    .with_for_update(skip_locked=True)
                )
                ids += picked.scalars()
        if not ids:
            return []
        # The rows are locked by this transaction until it ends, so the UPDATE cannot lose a race.
        return await take(session, _jobs.c.id.in_(ids), owner, now, lease_sec)
