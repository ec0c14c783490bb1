"""Retention over a real database (SQLite, and PostgreSQL when available): nothing newer than the policy
is deleted and the counts match, children go with their parent, queued/running and undecided rows are
kept, batches are bounded and reported as progress, the rollups (dashboard totals) are kept, spilled
bodies are removed, the policy is validated and audited, and the daily automatic cleanup runs once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from data.db import Database
from data.models import (
    AuditEvent,
    DeadLetter,
    Invocation,
    InvocationAttempt,
    InvocationLog,
    MetricMinute,
    RetentionRun,
    SettingRow,
    WebhookCall,
    WorkflowExecution,
    WorkflowStateRun,
)
from data.types import utcnow
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import Conflict, Forbidden, Invalid
from engine.events import RetentionProgress
from engine.principal import SYSTEM, Principal
from engine.services.audit import AuditService
from engine.services.retention import RetentionService
from engine.services.settings import SettingsService
from tests.ops_rows import add_dead_letters, add_executions, add_invocations, add_webhook_calls, id_at

VIEWER = Principal(actor="viewer", actor_type="user", role="viewer")
DAY = timedelta(days=1)


@pytest.fixture
async def retention(db: Database, tmp_path: Path) -> AsyncIterator[RetentionService]:
    bus = LocalBus()
    audit = AuditService(db, bus)
    settings = SettingsService(db, bus, audit, Settings(data_dir=tmp_path))  # type: ignore[call-arg]
    await settings.start()
    service = RetentionService(db, bus, audit, settings, node="test", spill_dir=tmp_path / "bodies")
    yield service
    await service.stop()
    await settings.stop()


async def count(db: Database, model: object, *where: object) -> int:
    async with db.session() as session:
        stmt = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int((await session.execute(stmt)).scalar_one())


async def ids(db: Database, model: object) -> set[str]:
    async with db.session() as session:
        return set((await session.execute(select(model.id))).scalars())  # type: ignore[attr-defined]


async def test_nothing_newer_than_the_policy_is_deleted_and_the_counts_match(
    db: Database, retention: RetentionService
) -> None:
    now = utcnow()
    expired = await add_invocations(db, now - 45 * DAY, 7, logs=0)
    expired += await add_invocations(db, now - 30 * DAY - timedelta(minutes=5), 3, logs=0)
    kept = await add_invocations(db, now - 30 * DAY + timedelta(minutes=5), 4, logs=0)
    kept += await add_invocations(db, now - timedelta(minutes=1), 5, logs=0)

    preview = {e.target: e.rows for e in await retention.preview(SYSTEM)}
    run = await retention.cleanup(SYSTEM)

    assert preview["invocations"] == len(expired) == 10
    assert run.status == "succeeded" and run.error == ""
    assert run.deleted["invocations"] == 10 and run.total_deleted == 10
    assert await ids(db, Invocation) == set(kept)
    assert (await retention.cleanup(SYSTEM)).total_deleted == 0  # a second run finds nothing


async def test_attempts_and_logs_go_with_their_invocation_and_old_logs_go_on_their_own(
    db: Database, retention: RetentionService
) -> None:
    now = utcnow()
    old = await add_invocations(db, now - 40 * DAY, 2, logs=3, attempts=2)
    recent = await add_invocations(db, now - 20 * DAY, 1, logs=2, attempts=1)  # kept; its logs are 20 d old
    fresh = await add_invocations(db, now - DAY, 1, logs=2, attempts=1)

    run = await retention.cleanup(SYSTEM)

    assert run.deleted["invocations"] == 2 and run.deleted["attempts"] == 4
    assert run.deleted["logs"] == 2 + 6  # the recent one's (14-day policy), then the old ones'
    assert await ids(db, Invocation) == {*recent, *fresh}
    assert await count(db, InvocationAttempt) == 2
    assert await count(db, InvocationLog, InvocationLog.invocation_id.in_(old + recent)) == 0
    assert await count(db, InvocationLog, InvocationLog.invocation_id == fresh[0]) == 2


async def test_queued_and_running_invocations_and_pending_dlq_messages_are_kept(
    db: Database, retention: RetentionService
) -> None:
    old = utcnow() - 90 * DAY
    await add_invocations(db, old - DAY, 3, status="failed", logs=1, attempts=2)
    waiting = await add_invocations(db, old, 1, status="pending", logs=0, attempts=0)
    waiting += await add_invocations(db, old, 1, status="running", logs=1, log_at=utcnow(), attempts=2)
    await add_invocations(db, old + DAY, 2, status="failed", logs=1, attempts=1)
    retention.batch_rows = 2  # batches end between, and beside, the kept rows
    undecided = await add_dead_letters(db, old, ["pending", "retrying"])
    await add_dead_letters(db, old, ["resolved", "discarded", "resolved"])
    recent_settled = await add_dead_letters(db, utcnow() - 3 * DAY, ["resolved"])

    run = await retention.cleanup(SYSTEM)

    assert run.deleted["invocations"] == 5 and run.deleted["dlq"] == 3
    assert run.deleted["attempts"] == 8 and run.deleted["logs"] == 5
    assert await ids(db, Invocation) == set(waiting)
    assert await count(db, InvocationAttempt, InvocationAttempt.invocation_id == waiting[1]) == 2
    assert await count(db, InvocationLog, InvocationLog.invocation_id == waiting[1]) == 1
    assert await ids(db, DeadLetter) == {*undecided, *recent_settled}


async def test_finished_workflow_executions_go_with_their_state_runs(
    db: Database, retention: RetentionService
) -> None:
    old = utcnow() - 31 * DAY
    await add_executions(db, old, ["succeeded", "failed"])
    live = await add_executions(db, old, ["running", "paused"])
    young = await add_executions(db, utcnow() - 29 * DAY, ["succeeded"])

    run = await retention.cleanup(SYSTEM)

    assert run.deleted["workflow_executions"] == 2 and run.deleted["state_runs"] == 4
    assert await ids(db, WorkflowExecution) == {*live, *young}
    assert await count(db, WorkflowStateRun) == 6


async def test_webhook_calls_are_kept_as_long_as_logs(db: Database, retention: RetentionService) -> None:
    await add_webhook_calls(db, utcnow() - 15 * DAY, 3)
    young = await add_webhook_calls(db, utcnow() - 13 * DAY, 2)

    stats = {s.target: s for s in await retention.stats(SYSTEM)}
    assert (stats["webhook_calls"].rows, stats["webhook_calls"].expired) == (5, 3)
    run = await retention.cleanup(SYSTEM)

    assert run.deleted["webhook_calls"] == 3
    assert await ids(db, WebhookCall) == set(young)


async def test_cleanup_deletes_in_bounded_batches_and_reports_progress(
    db: Database, retention: RetentionService
) -> None:
    await add_invocations(db, utcnow() - 60 * DAY, 23, logs=0)
    retention.batch_rows, retention.batch_pause = 5, 0.0
    progress: list[RetentionProgress] = []
    retention._bus.on(RetentionProgress, callback=progress.append)  # type: ignore[arg-type]

    run = await retention.cleanup(SYSTEM)

    mine = [p for p in progress if p.run_id == run.id]
    assert mine[0].status == "running" and mine[0].expected == 23 and mine[0].deleted == 0
    deleted = [p.deleted for p in mine if p.target == "invocations"]
    assert deleted == [5, 10, 15, 20, 23]  # one event per batch of at most 5 rows
    assert mine[-1].status == "succeeded" and mine[-1].deleted == 23
    assert await count(db, Invocation) == 0


async def test_the_rollups_that_dashboards_read_are_kept(db: Database, retention: RetentionService) -> None:
    old = utcnow() - 60 * DAY
    await add_invocations(db, old, 4, logs=0)
    minute = old.replace(second=0, microsecond=0)
    async with db.transaction() as session:
        await session.execute(
            insert(MetricMinute),
            [{"minute": minute, "function_id": "fn-old", "invocations": 4, "errors": 1}],
        )

    await retention.cleanup(SYSTEM)

    assert await count(db, Invocation) == 0
    async with db.session() as session:
        total = (await session.execute(select(func.sum(MetricMinute.invocations)))).scalar_one()
    assert total == 4


async def test_spilled_bodies_of_deleted_invocations_are_removed(
    db: Database, retention: RetentionService, tmp_path: Path
) -> None:
    spill = tmp_path / "bodies"
    spill.mkdir()
    body, elsewhere = spill / "x.input.json", tmp_path / "not-ours.json"
    body.write_text("{}")
    elsewhere.write_text("{}")
    await add_invocations(db, utcnow() - 60 * DAY, 1, logs=0, input_ref=str(body), output_ref=str(elsewhere))

    await retention.cleanup(SYSTEM)

    assert not body.exists()
    assert elsewhere.exists()  # only files inside the spill directory are ever removed


async def test_a_shorter_policy_deletes_more_and_is_audited(
    db: Database, retention: RetentionService
) -> None:
    await add_invocations(db, utcnow() - 5 * DAY, 2, logs=0)
    before = await retention.policy(SYSTEM)

    after = await retention.update_policy(SYSTEM, {"invocations_days": 3, "auto_cleanup": "on"})
    run = await retention.cleanup(SYSTEM)

    assert after == before | {"invocations_days": 3, "auto_cleanup": True}
    assert await retention.policy(SYSTEM) == after
    assert run.deleted["invocations"] == 2 and run.policy["invocations"] == 3
    async with db.session() as session:
        audits = (await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()
    assert [a.action for a in audits] == ["retention.policy_update", "retention.cleanup"]
    assert audits[0].before["invocations_days"] == 30 and audits[0].after["invocations_days"] == 3
    assert audits[1].after["deleted"]["invocations"] == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"invocations_days": 0}, "invocations_days"),
        ({"logs_days": 4000}, "logs_days"),
        ({"dlq_days": "a week"}, "dlq_days"),
        ({"cleanup_time": "25:00"}, "cleanup_time"),
        ({"auto_cleanup": "maybe"}, "auto_cleanup"),
        ({"invocations_days": 10, "keep_forever": True}, "keep_forever"),
        ({}, None),
    ],
)
async def test_bad_policy_input_changes_nothing(
    db: Database, retention: RetentionService, changes: dict[str, object], field: str | None
) -> None:
    before = await retention.policy(SYSTEM)
    with pytest.raises(Invalid) as caught:
        await retention.update_policy(SYSTEM, changes)
    assert caught.value.field == field
    assert await retention.policy(SYSTEM) == before
    assert await count(db, SettingRow) == 0
    assert await count(db, AuditEvent) == 0


async def test_only_an_admin_cleans_up_or_changes_the_policy(
    db: Database, retention: RetentionService
) -> None:
    await add_invocations(db, utcnow() - 60 * DAY, 1, logs=0)
    with pytest.raises(Forbidden):
        await retention.cleanup(VIEWER)
    with pytest.raises(Forbidden):
        await retention.update_policy(VIEWER, {"logs_days": 2})
    assert await count(db, Invocation) == 1
    assert await retention.stats(VIEWER)  # reading is for everyone


async def test_stats_show_rows_size_oldest_record_and_what_expired(
    db: Database, retention: RetentionService
) -> None:
    oldest = utcnow() - 50 * DAY
    await add_invocations(db, oldest, 2, logs=1)
    await add_invocations(db, utcnow() - DAY, 3, logs=1)

    stats = {s.target: s for s in await retention.stats(SYSTEM)}

    invocations = stats["invocations"]
    assert (invocations.rows, invocations.expired, invocations.days) == (5, 2, 30)
    assert invocations.size_bytes > 0 and invocations.size_method
    assert invocations.oldest_at is not None and abs(invocations.oldest_at - oldest) < timedelta(seconds=1)
    assert (stats["logs"].rows, stats["logs"].expired) == (5, 2)
    assert (stats["dlq"].rows, stats["dlq"].oldest_at) == (0, None)


async def test_a_cleanup_running_elsewhere_is_refused_and_an_abandoned_one_closed(
    db: Database, retention: RetentionService
) -> None:
    async with db.transaction() as session:
        session.add(RetentionRun(id=id_at(utcnow()), status="running", started_at=utcnow(), duration_ms=0))
    with pytest.raises(Conflict):
        await retention.cleanup(SYSTEM)

    async with db.transaction() as session:
        for row in (await session.execute(select(RetentionRun))).scalars():
            row.started_at = utcnow() - timedelta(hours=2)  # no heartbeat since
            session.add(row)
    run = await retention.cleanup(SYSTEM)

    assert run.status == "succeeded"
    async with db.session() as session:
        statuses = sorted((await session.execute(select(RetentionRun.status))).scalars())
    assert statuses == ["failed", "succeeded"]


async def test_history_lists_runs_newest_first(db: Database, retention: RetentionService) -> None:
    first = await retention.cleanup(SYSTEM)
    second = await retention.cleanup(SYSTEM)
    page = await retention.runs(SYSTEM, limit=10)
    assert [r.id for r in page.items] == [second.id, first.id]
    assert (await retention.run(SYSTEM, first.id)).status == "succeeded"


async def test_the_automatic_cleanup_runs_once_a_day_after_its_time(
    db: Database, retention: RetentionService
) -> None:
    await add_invocations(db, utcnow() - 60 * DAY, 1, logs=0)
    local_now = datetime.now().astimezone()
    earlier = (local_now - timedelta(minutes=10)).strftime("%H:%M")
    if local_now.hour == 0 and local_now.minute < 10:  # "10 minutes ago" would be yesterday
        earlier = "00:00"

    assert await retention.run_scheduled_cleanup() is None  # off by default
    await retention.update_policy(SYSTEM, {"auto_cleanup": True, "cleanup_time": "23:59"})
    if local_now.strftime("%H:%M") < "23:59":
        assert await retention.run_scheduled_cleanup() is None  # not yet time today
    await retention.update_policy(SYSTEM, {"cleanup_time": earlier})
    run = await retention.run_scheduled_cleanup()
    assert run is not None and run.trigger == "scheduled" and run.actor == "system"
    assert run.deleted["invocations"] == 1
    assert await retention.run_scheduled_cleanup() is None  # today's has run
    tomorrow = datetime.now(UTC) + DAY
    assert await retention.run_scheduled_cleanup(now=tomorrow) is not None


async def test_a_cleanup_stopped_midway_is_recorded_as_failed_and_the_next_one_finishes(
    db: Database, retention: RetentionService
) -> None:
    await add_invocations(db, utcnow() - 60 * DAY, 10, logs=0)
    retention.batch_rows, retention.batch_pause = 2, 0.5
    with retention._bus.subscribe(RetentionProgress) as progress:
        run = await retention.cleanup(SYSTEM, wait=False)
        await progress.wait_for(lambda e: e.deleted >= 2, timeout=20)
    await retention.stop()  # the server stops

    stopped = await retention.run(SYSTEM, run.id)
    assert stopped.status == "failed" and "interrupted" in stopped.error
    assert 2 <= stopped.total_deleted < 10
    assert retention.current is None
    retention.batch_pause = 0.0
    assert (await retention.cleanup(SYSTEM)).total_deleted == 10 - stopped.total_deleted
    assert await count(db, Invocation) == 0
