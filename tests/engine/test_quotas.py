"""Quotas over a real database (SQLite, and PostgreSQL when available): the in-memory invocation counter
(limits, UTC day and month roll-over, seeding from the rollups), function-create enforcement, usage
levels against the warning threshold, limit changes (validated, all or nothing, audited), snapshots and
their history, and a quota added by a provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from data.db import Database
from data.models import AuditEvent, Function, MetricMinute, QuotaSnapshot, SettingRow, Workflow
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import Forbidden, Invalid, QuotaExceeded
from engine.events import QuotaChanged
from engine.pool import WorkerPool
from engine.principal import SYSTEM, Principal
from engine.services import setting_specs
from engine.services.audit import AuditService
from engine.services.quota_limits import InvocationCounter
from engine.services.quotas import Quota, QuotaService, count_rows
from engine.services.setting_specs import SettingSpec, register
from engine.services.settings import SettingsService

VIEWER = Principal(actor="viewer", actor_type="user", role="viewer")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta.total_seconds()


@pytest.fixture
async def settings(db: Database, tmp_path: Path) -> AsyncIterator[SettingsService]:
    bus = LocalBus()
    service = SettingsService(db, bus, AuditService(db, bus), Settings(data_dir=tmp_path))  # type: ignore[call-arg]
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def quotas(db: Database, settings: SettingsService, tmp_path: Path) -> QuotaService:
    config = Settings(data_dir=tmp_path)  # type: ignore[call-arg]
    bus = settings._bus  # one bus for the settings, the audit and the quotas
    return QuotaService(db, bus, AuditService(db, bus), WorkerPool(config, {}), settings)


def function(name: str, memory_mb: int = 256, code: str = "x" * 100) -> Function:
    return Function(
        name=name, runtime="python", handler="main.handler", files={"main.py": code}, memory_mb=memory_mb
    )


async def add_functions(db: Database, *fns: Function) -> None:
    async with db.transaction() as session:
        session.add_all(fns)


# --- the counter (pure) ---------------------------------------------------------------------------


def test_the_counter_admits_up_to_the_daily_limit_then_refuses_until_midnight_utc() -> None:
    clock = Clock(datetime(2026, 5, 31, 23, 58, tzinfo=UTC))
    counter = InvocationCounter(clock)
    for _ in range(3):
        counter.admit(day_limit=3, month_limit=100)
    with pytest.raises(QuotaExceeded, match="daily invocation quota reached: 3 of 3"):
        counter.admit(day_limit=3, month_limit=100)
    assert counter.current() == (3, 3)

    clock.advance(timedelta(minutes=3))  # 00:01 on June 1st: a new day and a new month
    counter.admit(day_limit=3, month_limit=100)
    assert counter.current() == (1, 1)


def test_the_monthly_limit_holds_across_days_of_the_month() -> None:
    clock = Clock(datetime(2026, 6, 10, 12, 0, tzinfo=UTC))
    counter = InvocationCounter(clock)
    counter.admit(day_limit=10, month_limit=2)
    clock.advance(timedelta(days=1))
    counter.admit(day_limit=10, month_limit=2)
    with pytest.raises(QuotaExceeded, match="monthly invocation quota reached: 2 of 2"):
        counter.admit(day_limit=10, month_limit=2)
    assert counter.current() == (1, 2)


def test_seeding_only_ever_raises_the_counts() -> None:
    counter = InvocationCounter(Clock(datetime(2026, 6, 10, 12, 0, tzinfo=UTC)))
    counter.admit(day_limit=10, month_limit=10)
    counter.seed(counter.day_start, day=5, month=40)
    assert counter.current() == (5, 40)
    counter.seed(counter.day_start, day=2, month=3)  # the rollups lag what this node admitted
    assert counter.current() == (5, 40)
    counter.seed(counter.day_start - timedelta(days=1), day=99, month=99)  # read before the day turned
    assert counter.current() == (5, 40)


# --- over the database ----------------------------------------------------------------------------


async def test_the_counter_is_seeded_from_the_rollups_of_today_and_this_month(
    db: Database, quotas: QuotaService
) -> None:
    today = quotas.counter.day_start
    rows = [
        {"minute": today + timedelta(minutes=1), "function_id": "a", "invocations": 4},
        {"minute": today + timedelta(minutes=2), "function_id": "b", "invocations": 3},
        {"minute": today - timedelta(minutes=1), "function_id": "a", "invocations": 10},  # yesterday
        {"minute": quotas.counter.month_start - timedelta(days=3), "function_id": "a", "invocations": 500},
    ]
    async with db.transaction() as session:
        await session.execute(insert(MetricMinute), rows)

    await quotas.resync()

    day, month = quotas.counter.current()
    assert day == 7
    assert month == (7 if today == quotas.counter.month_start else 17)


async def test_invocations_over_a_lowered_limit_are_refused(db: Database, quotas: QuotaService) -> None:
    await quotas.update(SYSTEM, {"max_invocations_per_day": 2})
    quotas.admit()
    quotas.admit()
    with pytest.raises(QuotaExceeded) as caught:
        quotas.admit()
    assert caught.value.status == 429
    await quotas.update(SYSTEM, {"max_invocations_per_day": 5})
    quotas.admit()  # raising the limit lets them through again, at once


async def test_a_function_over_the_count_memory_or_code_limit_is_refused(
    db: Database, quotas: QuotaService
) -> None:
    await add_functions(db, function("a"), function("b"))
    await quotas.update(SYSTEM, {"max_functions": 3, "max_memory_mb": 1000, "max_code_size_kb": 2})
    async with db.session() as session:
        await quotas.check_function_create(session, function("c", memory_mb=128))  # room for one more
        with pytest.raises(QuotaExceeded, match="memory quota reached") as memory:
            await quotas.check_function_create(session, function("c", memory_mb=512))
        assert memory.value.field == "memory_mb"
        with pytest.raises(QuotaExceeded, match="code storage quota reached") as code:
            await quotas.check_function_create(session, function("c", code="y" * 2000))
        assert code.value.field == "code"
    await add_functions(db, function("c", memory_mb=128))
    async with db.session() as session:
        with pytest.raises(QuotaExceeded, match="function quota reached: 3 of 3 functions"):
            await quotas.check_function_create(session, function("d", memory_mb=128))


async def test_levels_follow_the_warning_threshold_and_the_limit(db: Database, quotas: QuotaService) -> None:
    await add_functions(db, *(function(f"f{i}") for i in range(4)))
    await quotas.update(SYSTEM, {"max_functions": 5})
    report = await quotas.report(VIEWER)
    functions = report.get("functions")
    assert functions is not None
    assert (functions.used, functions.limit, functions.percent, functions.level) == (4, 5, 80.0, "warning")

    await quotas.update(SYSTEM, {"warning_threshold": 90})
    assert (await quotas.report(VIEWER)).get("functions").level == "ok"  # type: ignore[union-attr]
    await quotas.update(SYSTEM, {"max_functions": 4})
    assert (await quotas.report(VIEWER)).get("functions").level == "danger"  # type: ignore[union-attr]


async def test_every_quota_is_reported_with_how_it_was_measured(db: Database, quotas: QuotaService) -> None:
    await add_functions(db, function("a", memory_mb=512, code="z" * 1000))
    report = await quotas.report(VIEWER)
    by_name = {q.name: q for q in report.quotas}
    assert list(by_name) == [
        "functions",
        "memory",
        "invocations_day",
        "invocations_month",
        "concurrency",
        "storage_code",
        "storage_layers",
        "storage_logs",
        "storage_records",
        "workflows",
    ]
    assert by_name["memory"].used == 512
    assert by_name["storage_code"].used >= 1000 and by_name["storage_code"].limit == 50 * 1024 * 1024
    assert by_name["concurrency"].limit == 32 and not by_name["concurrency"].editable
    assert all(q.method for q in report.quotas)
    assert report.warning_threshold == 80


async def test_limit_changes_are_all_or_nothing_and_audited(
    db: Database, quotas: QuotaService, settings: SettingsService
) -> None:
    before = quotas.limits()
    for bad, field in [
        ({"max_functions": 0}, "max_functions"),
        ({"max_functions": 10, "warning_threshold": 150}, "warning_threshold"),
        ({"max_functions": "many"}, "max_functions"),
        ({"max_gpus": 1}, "max_gpus"),
        ({"max_concurrency": 64}, "max_concurrency"),  # a platform setting: changed on the Settings page
        ({}, None),
    ]:
        with pytest.raises(Invalid) as caught:
            await quotas.update(SYSTEM, bad)
        assert caught.value.field == field, bad
    with pytest.raises(Forbidden):
        await quotas.update(VIEWER, {"max_functions": 10})
    assert quotas.limits() == before
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(SettingRow))).scalar_one() == 0

    changed: list[QuotaChanged] = []
    quotas._bus.on(QuotaChanged, callback=changed.append)  # type: ignore[arg-type]
    await quotas.update(SYSTEM, {"max_functions": 10, "warning_threshold": 75})

    assert quotas.limits() == before | {"max_functions": 10, "warning_threshold": 75}
    assert settings.get("quota.max_functions") == 10  # the settings service (and its page) agree
    assert [e.reason for e in changed] == ["limits"]
    async with db.session() as session:
        audit = (await session.execute(select(AuditEvent))).scalars().one()
    assert audit.action == "quota.update"
    assert audit.before["max_functions"] == 100 and audit.after["max_functions"] == 10


async def test_snapshots_record_usage_and_history_returns_them_oldest_first(
    db: Database, quotas: QuotaService
) -> None:
    await quotas.snapshot()
    await add_functions(db, function("a"))
    await quotas.snapshot()

    history = await quotas.history(VIEWER, hours=1)

    assert [h.usage["functions"]["used"] for h in history] == [0, 1]
    assert history[0].usage["functions"]["limit"] == 100
    with pytest.raises(Invalid):
        await quotas.history(VIEWER, hours=0)


async def test_the_snapshot_job_takes_one_snapshot_an_hour_across_nodes(
    db: Database, quotas: QuotaService
) -> None:
    await quotas.snapshot_job()
    await quotas.snapshot_job()  # another node, or the next tick too soon: nothing more
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(QuotaSnapshot))).scalar_one() == 1


@pytest.fixture
def workflow_limit() -> Iterator[str]:
    """A limit setting for a quota a provider adds, registered for one test only."""
    key = "quota.test_max_workflows"
    register(SettingSpec(key, "int", 2, "quota", "Max workflows (test)", "A test quota.", minimum=1))
    yield key
    setting_specs._REGISTRY.pop(key, None)


async def test_a_provider_adds_a_quota_that_is_reported_and_checked(
    db: Database, quotas: QuotaService, workflow_limit: str
) -> None:
    quotas.register(
        Quota("workflows", "Workflows", "count", workflow_limit, count_rows(db, Workflow), "create")
    )
    async with db.transaction() as session:
        session.add(Workflow(name="one", definition={}))
        await session.flush()
        await quotas.check_room(session, "workflows")  # 1 of 2: room for one more
        session.add(Workflow(name="two", definition={}))
    usage = (await quotas.report(VIEWER)).get("workflows")
    assert usage is not None and (usage.used, usage.limit, usage.level) == (2, 2, "danger")
    async with db.session() as session:
        with pytest.raises(QuotaExceeded, match="workflows quota reached: 2 of 2"):
            await quotas.check_room(session, "workflows")
    assert "test_max_workflows" in quotas.limits()
    assert (await quotas.snapshot()).usage["workflows"] == {"used": 2.0, "limit": 2.0}
