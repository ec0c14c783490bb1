"""The durable queue, over every backend: a job is claimed by one worker at a time under a lease, a job
whose worker died is claimed again, retries wait for their time, and the last failure is buried for the
DLQ. Plus the retry backoff and the local wakeup."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

import pytest

from data.db import Database
from data.models import QueueJob
from data.types import new_id, utcnow
from engine.invoke.backoff import backoff_delay
from engine.queue import ClaimedJob, JobQueue, LocalNotifier, make_queue

DEADLINE = 5.0
LEASE = 30.0


@pytest.fixture
def queue(db: Database) -> JobQueue:
    return make_queue(db)


def job(run_at: datetime | None = None, **fields: object) -> QueueJob:
    return QueueJob(
        invocation_id=new_id(),
        function_id="fn-1",
        payload={"event": {"n": 1}},
        run_at=run_at or utcnow(),
        **fields,  # type: ignore[arg-type]
    )


async def enqueue(db: Database, queue: JobQueue, *jobs: QueueJob) -> None:
    async with db.transaction() as session:
        for item in jobs:
            await queue.enqueue(session, item)


async def claim(
    db: Database, queue: JobQueue, owner: str, limit: int = 10, lease: float = LEASE
) -> list[ClaimedJob]:
    async with db.transaction() as session:
        return await queue.claim(session, owner, limit, lease)


async def test_an_enqueued_job_is_claimed_run_and_completed(db: Database, queue: JobQueue) -> None:
    accepted = job()
    await enqueue(db, queue, accepted)

    (claimed,) = await claim(db, queue, "node-a")
    assert claimed.id == accepted.id
    assert claimed.payload == {"event": {"n": 1}}
    assert (claimed.status, claimed.lease_owner, claimed.attempt) == ("running", "node-a", 1)
    assert claimed.lease_expires_at is not None and claimed.lease_expires_at > utcnow()

    async with db.transaction() as session:
        assert await queue.complete(session, claimed.id, "node-a")
        assert await queue.depth(session) == {"queued": 0, "ready": 0, "running": 0, "expired": 0}
    assert await claim(db, queue, "node-a") == []


async def test_jobs_are_claimed_oldest_first_up_to_the_limit(db: Database, queue: JobQueue) -> None:
    now = utcnow()
    jobs = [job(run_at=now - timedelta(seconds=10 - i)) for i in range(5)]
    await enqueue(db, queue, *reversed(jobs))

    first = await claim(db, queue, "node-a", limit=3)
    rest = await claim(db, queue, "node-a", limit=3)

    assert [j.id for j in first] == [j.id for j in jobs[:3]]
    assert [j.id for j in rest] == [j.id for j in jobs[3:]]


async def test_concurrent_claimers_never_share_a_job(db: Database, queue: JobQueue) -> None:
    await enqueue(db, queue, *(job() for _ in range(60)))

    async def drain(owner: str) -> list[str]:
        got: list[str] = []
        while batch := await claim(db, queue, owner, limit=4):
            got += [j.id for j in batch]
        return got

    async with asyncio.timeout(DEADLINE):
        results = await asyncio.gather(*(drain(f"node-{i}") for i in range(4)))

    everything = [job_id for got in results for job_id in got]
    assert len(everything) == 60
    assert len(set(everything)) == 60


async def test_a_claim_in_progress_hides_its_jobs_from_other_claimers(db: Database, queue: JobQueue) -> None:
    await enqueue(db, queue, *(job() for _ in range(4)))

    async with asyncio.timeout(DEADLINE):
        async with db.transaction() as session:
            first = await queue.claim(session, "node-a", 2, LEASE)
            second = asyncio.ensure_future(claim(db, queue, "node-b", limit=4))
            if not db.is_sqlite:
                # PostgreSQL: SKIP LOCKED takes the other jobs without waiting for the first claim.
                assert len(await second) == 2
            # SQLite: one writer at a time, so the second claim runs once the first commits.
        second_jobs = await second

    assert {j.id for j in first}.isdisjoint({j.id for j in second_jobs})
    assert len(first) + len(second_jobs) == 4


async def test_a_job_whose_lease_expired_is_claimed_again(db: Database, queue: JobQueue) -> None:
    await enqueue(db, queue, job())
    (lost,) = await claim(db, queue, "node-dead", lease=0)  # its node dies at once: the lease lapses

    (again,) = await claim(db, queue, "node-b")

    assert again.id == lost.id
    assert (again.lease_owner, again.attempt) == ("node-b", 2)
    async with db.transaction() as session:
        # The dead node's late writes no longer touch it.
        assert not await queue.complete(session, lost.id, "node-dead")
        assert not await queue.extend(session, lost.id, "node-dead", LEASE)
        assert await queue.complete(session, lost.id, "node-b")


async def test_extending_a_lease_keeps_the_job(db: Database, queue: JobQueue) -> None:
    await enqueue(db, queue, job())
    (running,) = await claim(db, queue, "node-a", lease=0)

    async with db.transaction() as session:
        assert await queue.extend(session, running.id, "node-a", LEASE)

    assert await claim(db, queue, "node-b") == []
    async with db.session() as session:
        assert (await queue.depth(session))["running"] == 1


async def test_many_leases_are_extended_and_many_jobs_completed_at_once_only_by_their_owner(
    db: Database, queue: JobQueue
) -> None:
    await enqueue(db, queue, job(), job(), job())
    mine = await claim(db, queue, "node-a", limit=2, lease=0)  # lapsed at once, unless extended
    ids = [j.id for j in mine]
    async with db.transaction() as session:
        assert await queue.extend_many(session, ids, "node-a", LEASE) == 2
    (theirs,) = await claim(db, queue, "node-b")  # only the third: the extended leases hold
    assert theirs.id not in ids
    async with db.transaction() as session:
        assert await queue.extend_many(session, [*ids, theirs.id], "node-a", LEASE) == 2
    async with db.transaction() as session:
        assert await queue.complete_many(session, [*ids, theirs.id], "node-a") == 2
        assert await queue.complete_many(session, ids, "node-a") == 0  # already gone
        assert await queue.depth(session) == {"queued": 0, "ready": 0, "running": 1, "expired": 0}


async def test_a_retry_waits_for_its_time_and_keeps_the_errors(db: Database, queue: JobQueue) -> None:
    await enqueue(db, queue, job())
    (failed,) = await claim(db, queue, "node-a")

    async with db.transaction() as session:
        later = utcnow() + timedelta(hours=1)
        assert await queue.retry_later(session, failed.id, "node-a", later, {"attempt": 1, "message": "boom"})
        assert await queue.depth(session) == {"queued": 1, "ready": 0, "running": 0, "expired": 0}
    assert await claim(db, queue, "node-a") == []  # not due yet

    await _make_due(db, failed.id)  # the hour passes
    (retried,) = await claim(db, queue, "node-a")

    assert retried.id == failed.id
    assert retried.attempt == 2
    assert retried.errors == [{"attempt": 1, "message": "boom"}]


async def _make_due(db: Database, job_id: str) -> None:
    async with db.transaction() as session:
        row = await session.get(QueueJob, job_id)
        assert row is not None
        row.run_at = utcnow() - timedelta(seconds=1)


async def test_the_last_failure_is_buried_with_its_history(db: Database, queue: JobQueue) -> None:
    await enqueue(db, queue, job(max_attempts=1))
    (running,) = await claim(db, queue, "node-a")

    async with db.transaction() as session:
        assert await queue.bury(session, running.id, "node-b") is None  # not the owner
        buried = await queue.bury(session, running.id, "node-a")
        assert await queue.depth(session) == {"queued": 0, "ready": 0, "running": 0, "expired": 0}

    assert buried is not None
    assert (buried.id, buried.invocation_id, buried.payload) == (
        running.id,
        running.invocation_id,
        running.payload,
    )


async def test_depth_counts_each_state(db: Database, queue: JobQueue) -> None:
    await enqueue(db, queue, job(), job(), job(run_at=utcnow() + timedelta(hours=1)))
    await claim(db, queue, "node-a", limit=1)
    await claim(db, queue, "node-dead", limit=1, lease=0)

    async with db.session() as session:
        assert await queue.depth(session) == {"queued": 1, "ready": 0, "running": 2, "expired": 1}


# --- wakeups ---------------------------------------------------------------------------------------


async def test_a_notify_wakes_a_waiting_consumer() -> None:
    notifier = LocalNotifier()
    waiter = asyncio.ensure_future(notifier.wait(timeout=DEADLINE))
    await asyncio.sleep(0)  # let it start waiting (ordering only; the deadline bounds the test)

    notifier.notify()

    assert await asyncio.wait_for(waiter, DEADLINE) is True


async def test_a_notify_before_the_wait_is_not_lost_and_is_used_once() -> None:
    notifier = LocalNotifier()
    notifier.notify()

    assert await notifier.wait(timeout=DEADLINE) is True
    assert await notifier.wait(timeout=0.01) is False


# --- backoff ---------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    delays = [backoff_delay(attempt, 100, 1000, jitter=False) for attempt in range(1, 7)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_with_full_jitter_stays_between_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = backoff_delay(attempt, 100, 1000, jitter=False)
        delays = [backoff_delay(attempt, 100, 1000, jitter=True, rng=rng) for _ in range(50)]
        assert all(0 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_backoff_survives_absurd_attempt_numbers() -> None:
    assert backoff_delay(10_000, 1000, 60_000, jitter=False) == 60.0
    assert backoff_delay(0, 1000, 60_000, jitter=False) == 1.0
    assert backoff_delay(3, 0, 60_000) == 0.0
