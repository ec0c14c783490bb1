"""How the async consumer puts attempts on record (SQLite and PostgreSQL): an attempt is written once,
when it ends; one still running after RUNNING_MARK_AFTER_SEC is shown running while it runs; and an
attempt its node lost (claimed, then the node died) is on record as abandoned when the job is claimed
again, whether or not it had been marked running."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from data.db import Database
from data.models import Invocation, InvocationAttempt, QueueJob
from data.types import utcnow
from engine.events import InvocationFinished, InvocationStarted
from engine.invoke.consumer import RUNNING_MARK_AFTER_SEC
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from tests.api.conftest import make_settings

FLAKY = """
def handler(event, context):
    if context.attempt < 3:
        raise ConnectionError(f"upstream down (attempt {context.attempt})")
    return {"attempt": context.attempt}
"""
SLOW = "import time\n\ndef handler(event, context):\n    time.sleep(event['sec'])\n    return 'done'\n"
ECHO = "def handler(event, context):\n    return event\n"


async def _create(platform: Platform, name: str, code: str, **fields: Any) -> None:
    await platform.functions.create(
        SYSTEM, FunctionCreate(name=name, runtime="python", code=code, retry_backoff_ms=10, **fields)
    )


async def _attempts(platform: Platform, invocation_id: str) -> list[InvocationAttempt]:
    async with platform.db.session() as session:
        rows = await session.execute(
            select(InvocationAttempt)
            .where(InvocationAttempt.invocation_id == invocation_id)
            .order_by(InvocationAttempt.attempt)
        )
        return list(rows.scalars())


async def _invocation(platform: Platform, invocation_id: str) -> Invocation:
    async with platform.db.session() as session:
        found = await session.get(Invocation, invocation_id)
        assert found is not None
        return found


async def _run_async(platform: Platform, name: str, event: Any) -> str:
    with platform.bus.subscribe(InvocationFinished) as finished:
        request_id, _ = await platform.invoker.submit(SYSTEM, name, event)
        await finished.wait_for(lambda e: e.invocation_id == request_id and e.final, timeout=30)
    await platform.batcher.flush()
    return request_id


async def test_each_attempt_is_written_when_it_ends_with_its_outcome(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    async with Platform(make_settings(tmp_path, database_url=db_url)) as platform:
        await _create(platform, "flaky", FLAKY, retry_attempts=3)
        request_id = await _run_async(platform, "flaky", {})
        attempts = await _attempts(platform, request_id)
        assert [(a.attempt, a.status, a.error_message) for a in attempts] == [
            (1, "failed", "upstream down (attempt 1)"),
            (2, "failed", "upstream down (attempt 2)"),
            (3, "success", None),
        ]
        assert all(a.started_at and a.ended_at and a.duration_ms is not None for a in attempts)
        inv = await _invocation(platform, request_id)
        assert (inv.status, inv.attempt, inv.output) == ("success", 3, {"attempt": 3})
        assert inv.node == platform.settings.node_id and inv.started_at == attempts[-1].started_at


async def test_a_long_attempt_is_shown_running_while_it_runs(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    async with Platform(make_settings(tmp_path, database_url=db_url)) as platform:
        await _create(platform, "slow", SLOW, timeout_sec=10)
        await platform.invoker.invoke(SYSTEM, "slow", {"sec": 0})  # a warm worker: the run starts at once
        with platform.bus.subscribe(InvocationStarted, InvocationFinished) as events:
            request_id, _ = await platform.invoker.submit(SYSTEM, "slow", {"sec": 1.5})
            await events.wait_for(lambda e: isinstance(e, InvocationStarted), timeout=10)
            await asyncio.sleep(RUNNING_MARK_AFTER_SEC + 0.3)
            await platform.batcher.flush()
            inv = await _invocation(platform, request_id)
            assert (inv.status, inv.attempt, inv.node) == ("running", 1, platform.settings.node_id)
            assert [(a.attempt, a.status) for a in await _attempts(platform, request_id)] == [(1, "running")]
            await events.wait_for(lambda e: isinstance(e, InvocationFinished), timeout=10)
        await platform.batcher.flush()
        (attempt,) = await _attempts(platform, request_id)  # completed in place, not a second row
        assert attempt.status == "success" and attempt.duration_ms and attempt.duration_ms >= 1400
        assert (await _invocation(platform, request_id)).status == "success"


async def test_a_quick_attempt_is_written_once_and_never_left_running(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    async with Platform(make_settings(tmp_path, database_url=db_url)) as platform:
        await _create(platform, "echo", ECHO)
        ids = [await _run_async(platform, "echo", {"n": n}) for n in range(3)]
        await asyncio.sleep(RUNNING_MARK_AFTER_SEC * 2)  # a stray mark would land by now
        await platform.batcher.flush()
        for request_id in ids:
            assert [(a.attempt, a.status) for a in await _attempts(platform, request_id)] == [(1, "success")]
            assert (await _invocation(platform, request_id)).status == "success"


async def test_attempts_lost_with_their_node_are_recorded_abandoned_when_claimed_again(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    # A node that stops consuming accepts two jobs, then "dies" holding them: one attempt was marked
    # running (it ran a while), the other died before its mark. Their leases lapse.
    settings = make_settings(tmp_path, database_url=db_url, queue_workers=0)
    async with Platform(settings) as first:
        await _create(first, "echo", ECHO, retry_attempts=3)
        marked, unmarked = [(await first.invoker.submit(SYSTEM, "echo", {"n": n}))[0] for n in (1, 2)]
    gone = utcnow() - timedelta(seconds=5)
    async with db.transaction() as session:
        await session.execute(
            update(QueueJob)
            .where(QueueJob.invocation_id.in_([marked, unmarked]))  # type: ignore[attr-defined]
            .values(status="running", attempt=1, lease_owner="node-gone", lease_expires_at=gone)
        )
        await session.execute(
            update(Invocation).where(Invocation.id == marked).values(status="running", attempt=1)
        )
        session.add(InvocationAttempt(invocation_id=marked, attempt=1, status="running", started_at=gone))

    async with Platform(make_settings(tmp_path, database_url=db_url)) as second:
        for request_id in (marked, unmarked):  # they may finish before a subscription could start
            deadline = asyncio.get_running_loop().time() + 30
            while (await _invocation(second, request_id)).status != "success":
                assert asyncio.get_running_loop().time() < deadline, "the lost job never ran again"
                await asyncio.sleep(0.05)
        await second.batcher.flush()
        for request_id in (marked, unmarked):
            attempts = await _attempts(second, request_id)
            assert [(a.attempt, a.status, a.error_type) for a in attempts] == [
                (1, "abandoned", "NodeLost"),
                (2, "success", None),
            ]
            assert attempts[0].ended_at is not None
            assert (await _invocation(second, request_id)).status == "success"
        assert (await _attempts(second, marked))[0].started_at == gone
        assert (await _attempts(second, unmarked))[0].started_at is None  # it never said it started
