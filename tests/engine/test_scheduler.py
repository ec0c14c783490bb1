"""The scheduler on a real platform: a schedule fires (each tick an invocation with source cron), pauses
and resumes, applies its misfire policy after downtime, and never runs a tick twice, across a restart or
with two nodes on one database. Fast ticks come from the optional seconds field; downtime is made by
writing a schedule's `settled_until` back in time while no platform runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select, update

from data.db import Database
from data.models import Invocation, Schedule, ScheduleRun
from data.types import utcnow
from engine.cron import parse
from engine.errors import Forbidden, Invalid
from engine.events import ScheduleFired
from engine.platform import Platform
from engine.principal import SYSTEM, Principal
from engine.schedule_targets import TargetKind
from engine.services.function_schemas import FunctionCreate
from engine.services.schedule_schemas import ScheduleCreate, ScheduleUpdate
from tests.api.conftest import make_settings

CODE = "def handler(event, context):\n    return {'got': event, 'source': context.source}\n"
EVERY_SECOND = "* * * * * *"


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        await running.functions.create(SYSTEM, FunctionCreate(name="tick", runtime="python", code=CODE))
        yield running


async def _create(platform: Platform, name: str = "every-second", **fields: Any) -> Schedule:
    values: dict[str, Any] = {"name": name, "target_id": "tick", "cron": EVERY_SECOND} | fields
    return await platform.schedules.create(SYSTEM, ScheduleCreate(**values))


async def _fired(
    platform: Platform, schedule_id: str, count: int, timeout: float = 30
) -> list[ScheduleFired]:
    """The next `count` ScheduleFired events of a schedule (subscribe before the ticks are due)."""
    events: list[ScheduleFired] = []
    with platform.bus.subscribe(ScheduleFired) as sub:
        while len(events) < count:
            event = await sub.wait_for(
                lambda e: getattr(e, "schedule_id", "") == schedule_id, timeout=timeout
            )
            assert isinstance(event, ScheduleFired)
            events.append(event)
    return events


async def _runs(db: Database, schedule_id: str) -> list[ScheduleRun]:
    async with db.session() as session:
        stmt = (
            select(ScheduleRun)
            .where(ScheduleRun.schedule_id == schedule_id)
            .order_by(ScheduleRun.scheduled_at)
        )
        return list((await session.execute(stmt)).scalars())


async def _cron_invocations(db: Database) -> list[Invocation]:
    async with db.session() as session:
        stmt = select(Invocation).where(Invocation.source == "cron").order_by(Invocation.id)
        return list((await session.execute(stmt)).scalars())


async def _settled_invocations(db: Database, ids: set[str], timeout: float = 30) -> list[Invocation]:
    deadline = time.monotonic() + timeout
    while True:
        async with db.session() as session:
            rows = list((await session.execute(select(Invocation).where(Invocation.id.in_(ids)))).scalars())  # type: ignore[attr-defined]
        if len(rows) == len(ids) and all(r.status not in ("pending", "running") for r in rows):
            return rows
        assert time.monotonic() < deadline, [(r.id, r.status) for r in rows]
        await asyncio.sleep(0.1)


async def _move_settled_back(url: str, schedule_id: str, to: datetime) -> None:
    """Pretend the platform was down since `to`: the ticks after it are unsettled."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(update(Schedule).where(Schedule.id == schedule_id).values(settled_until=to))
    finally:
        await db.close()


# --- cron expressions -----------------------------------------------------------------------------


def test_day_of_week_is_crontab_numbering_and_both_day_fields_match_either() -> None:
    start = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # a Sunday
    sundays = [parse(f"0 0 * * {d}").next_after(start) for d in ("0", "7", "sun", "SUN")]
    assert {s.isoweekday() for s in sundays if s} == {7} and len(set(sundays)) == 1
    either = parse("0 0 13 * fri").next_times(4, after=start)  # every Friday, and every 13th
    assert [t.date().isoformat() for t in either] == ["2026-12-04", "2026-12-11", "2026-12-13", "2026-12-18"]
    assert parse("@daily").next_times(1, after=start) == parse("0 0 * * *").next_times(1, after=start)
    seconds = parse("*/20 * * * * *").next_times(3, after=start)
    assert [t.second for t in seconds] == [20, 40, 0]


def test_run_times_follow_the_timezone_across_daylight_saving() -> None:
    berlin = parse("30 2 * * *", "Europe/Berlin")  # 02:30 does not exist on 2027-03-28
    times = berlin.next_times(3, after=datetime(2027, 3, 26, 12, 0, tzinfo=UTC))
    assert times[0].astimezone(UTC).isoformat() == "2027-03-27T01:30:00+00:00"
    assert all(t.hour in (2, 3) for t in times) and len({t.date() for t in times}) == 3


def test_invalid_expressions_name_the_field_and_the_reason() -> None:
    for expression, reason in [
        ("", "the cron expression is empty"),
        ("* * * * 8", "day-of-week field's value 8 is out of range (0-7)"),
        ("* * * foo *", "month field's 'foo' is not a number or a name"),
        ("1,,2 * * * *", "empty list item"),
    ]:
        with pytest.raises(Invalid) as caught:
            parse(expression)
        assert caught.value.field == "cron" and reason in caught.value.message, caught.value.message
    with pytest.raises(Invalid) as caught:
        parse("* * * * *", "../etc/passwd")
    assert caught.value.field == "timezone"


# --- firing ---------------------------------------------------------------------------------------


async def test_a_schedule_fires_each_tick_as_an_invocation_with_source_cron(platform: Platform) -> None:
    schedule = await _create(platform, payload={"hello": "cron"})
    events = await _fired(platform, schedule.id, 3)

    ticks = [e.scheduled_at for e in events]
    assert all(e.kind == "cron" and e.status == "started" and e.target_run_id for e in events)
    assert ticks == sorted(ticks) and len(set(ticks)) == 3 and all(t.microsecond == 0 for t in ticks)
    invocations = await _settled_invocations(
        platform.db, {e.target_run_id for e in events if e.target_run_id}
    )
    assert all(i.source == "cron" and i.status == "success" for i in invocations)
    assert all(i.output == {"got": {"hello": "cron"}, "source": "cron"} for i in invocations)
    assert {i.actor for i in invocations} == {"schedule:every-second"}
    page = await platform.schedules.runs(SYSTEM, schedule.id)
    assert {info.status for info in page.items if info.run.run_id in {i.id for i in invocations}} == {
        "success"
    }


async def test_pause_stops_the_ticks_and_resume_starts_them_without_the_paused_ones(
    platform: Platform,
) -> None:
    schedule = await _create(platform)
    await _fired(platform, schedule.id, 1)

    await platform.schedules.set_paused(SYSTEM, schedule.id, True)
    assert platform.scheduler.job_next_run(schedule.id) is None
    await platform.scheduler.settled()  # a tick claimed just before the pause may still be starting
    count_at_pause = len(await _runs(platform.db, schedule.id))
    with pytest.raises(TimeoutError):  # three ticks pass while paused
        await _fired(platform, schedule.id, 1, timeout=3)
    assert len(await _runs(platform.db, schedule.id)) == count_at_pause

    resumed_at = utcnow()
    await platform.schedules.set_paused(SYSTEM, schedule.id, False)
    after = await _fired(platform, schedule.id, 2)
    assert all(e.kind == "cron" and e.scheduled_at > resumed_at for e in after)
    runs = await _runs(platform.db, schedule.id)
    assert {r.kind for r in runs} == {"cron"}  # nothing skipped or caught up for the paused ticks


async def test_a_tick_is_claimed_once(platform: Platform) -> None:
    schedule = await _create(platform, cron="0 0 1 1 *")  # yearly: no tick of its own during the test
    tick = parse("0 0 1 1 *").next_after(utcnow())
    assert tick is not None
    await _move_settled_back(platform.settings.database_url, schedule.id, tick - timedelta(days=1))

    first, second = await asyncio.gather(
        platform.scheduler.run(schedule.id, tick), platform.scheduler.run(schedule.id, tick)
    )

    assert [r is not None for r in (first, second)].count(True) == 1
    assert await platform.scheduler.run(schedule.id, tick) is None  # settled now
    not_a_tick = tick + timedelta(minutes=1)
    assert await platform.scheduler.run(schedule.id, not_a_tick) is None
    assert len(await _runs(platform.db, schedule.id)) == 1


async def test_a_changed_expression_takes_effect_and_a_deleted_schedule_stops(platform: Platform) -> None:
    schedule = await _create(platform, cron="0 0 1 1 *")
    assert platform.scheduler.job_next_run(schedule.id) == parse("0 0 1 1 *").next_after(utcnow())

    await platform.schedules.update(SYSTEM, schedule.id, ScheduleUpdate(cron=EVERY_SECOND))
    await _fired(platform, schedule.id, 1)

    await platform.schedules.delete(SYSTEM, schedule.id)
    assert platform.scheduler.job_next_run(schedule.id) is None
    await platform.scheduler.settled()
    with platform.bus.subscribe(ScheduleFired) as sub:
        with pytest.raises(TimeoutError):
            await sub.wait_for(lambda e: getattr(e, "schedule_id", "") == schedule.id, timeout=2.5)


async def test_other_target_kinds_plug_in_through_the_registry(platform: Platform) -> None:
    started: list[tuple[str, str, Any, str]] = []

    async def start(principal: Principal, target_id: str, payload: Any, *, source: str = "cron") -> str:
        started.append((principal.actor, target_id, payload, source))
        return f"run-{len(started)}"

    with pytest.raises(Invalid) as refused:
        await _create(platform, name="early", target_type="recorder", target_id="anything")
    assert refused.value.field == "target_type" and "cannot target 'recorder'" in refused.value.message

    platform.schedule_targets.register(TargetKind("recorder", start))
    schedule = await _create(platform, name="recorded", target_type="recorder", target_id="wf-1", payload=[1])
    events = await _fired(platform, schedule.id, 2)

    assert [e.target_run_id for e in events] == ["run-1", "run-2"]
    assert started[:2] == [("schedule:recorded", "wf-1", [1], "cron")] * 2


async def test_only_developers_change_schedules(platform: Platform) -> None:
    viewer = Principal(actor="vic", actor_type="user", role="viewer")
    with pytest.raises(Forbidden):
        await platform.schedules.create(viewer, ScheduleCreate(name="x", target_id="tick", cron="@daily"))
    schedule = await _create(platform, cron="@daily")
    for call in (
        platform.schedules.set_paused(viewer, schedule.id, True),
        platform.schedules.delete(viewer, schedule.id),
        platform.schedules.trigger(viewer, schedule.id),
    ):
        with pytest.raises(Forbidden):
            await call
    assert (await platform.schedules.get(viewer, schedule.name)).id == schedule.id


async def test_system_jobs_run_on_their_trigger_and_survive_an_error(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first run fails")

    platform.scheduler.add_system_job("test:flaky", flaky, IntervalTrigger(seconds=0.2))
    deadline = time.monotonic() + 20
    while len(calls) < 3:
        assert time.monotonic() < deadline, calls
        await asyncio.sleep(0.05)
    platform.scheduler.remove_system_job("test:flaky")
    assert "test:flaky" not in platform.scheduler.system_jobs()
    assert any(
        "system job test:flaky failed" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    )
    with pytest.raises(ValueError):
        platform.scheduler.add_system_job("schedule:mine", flaky, IntervalTrigger(seconds=1))


# --- downtime and restarts ------------------------------------------------------------------------


def _hourly_far_from_now() -> tuple[str, datetime]:
    """An hourly expression whose next tick is half an hour away (none falls due during a test), and
    its last tick before now."""
    now = utcnow()
    minute = (now.minute + 30) % 60
    last = now.replace(minute=minute, second=0, microsecond=0)
    if last > now:
        last -= timedelta(hours=1)
    return f"{minute} * * * *", last


async def test_after_downtime_skip_records_the_missed_ticks_and_runs_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    cron, last_tick = _hourly_far_from_now()
    async with Platform(settings) as platform:
        await platform.functions.create(SYSTEM, FunctionCreate(name="tick", runtime="python", code=CODE))
        schedule = await _create(platform, name="hourly", cron=cron, misfire_policy="skip")
    await _move_settled_back(settings.database_url, schedule.id, last_tick - timedelta(hours=10, minutes=1))

    async with Platform(settings) as platform:  # ten hours "down": eleven ticks missed
        runs = await _runs(platform.db, schedule.id)
        assert len(runs) == 1
        skipped = runs[0]
        assert (skipped.kind, skipped.status, skipped.run_id) == ("skipped", "skipped", None)
        assert (skipped.scheduled_at, skipped.missed) == (last_tick, 11)
        assert skipped.error == "11 runs missed while no scheduler was running; skipped by the misfire policy"
        assert await _cron_invocations(platform.db) == []
        page = await platform.schedules.runs(SYSTEM, schedule.id)
        assert page.items[0].status == "skipped"
        assert (await platform.schedules.get(SYSTEM, schedule.id)).settled_until == last_tick

    async with Platform(settings) as platform:  # settled: a further restart finds nothing missed
        assert len(await _runs(platform.db, schedule.id)) == 1
        assert await _cron_invocations(platform.db) == []


async def test_after_downtime_run_once_runs_the_latest_missed_tick_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    cron, last_tick = _hourly_far_from_now()
    async with Platform(settings) as platform:
        await platform.functions.create(SYSTEM, FunctionCreate(name="tick", runtime="python", code=CODE))
        schedule = await _create(
            platform, name="hourly", cron=cron, misfire_policy="run_once", payload={"n": 1}
        )
    await _move_settled_back(settings.database_url, schedule.id, last_tick - timedelta(hours=3, minutes=1))

    async with Platform(settings) as platform:
        (run,) = await _runs(platform.db, schedule.id)
        assert (run.kind, run.status, run.scheduled_at, run.missed) == ("catch_up", "started", last_tick, 4)
        (invocation,) = await _settled_invocations(platform.db, {str(run.run_id)})
        assert invocation.source == "cron" and invocation.status == "success"
        assert invocation.output == {"got": {"n": 1}, "source": "cron"}
        assert [i.id for i in await _cron_invocations(platform.db)] == [run.run_id]

    async with Platform(settings) as platform:  # it ran once: a further restart runs nothing
        assert len(await _runs(platform.db, schedule.id)) == 1
        assert len(await _cron_invocations(platform.db)) == 1


async def test_a_restart_never_runs_a_tick_twice(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with Platform(settings) as platform:
        await platform.functions.create(SYSTEM, FunctionCreate(name="tick", runtime="python", code=CODE))
        schedule = await _create(platform, misfire_policy="run_once")
        before = await _fired(platform, schedule.id, 2)
    async with Platform(settings) as platform:  # the restart missed ticks: run_once catches one up
        after = await _fired(platform, schedule.id, 2)
        runs = await _runs(platform.db, schedule.id)
        invocations = await _cron_invocations(platform.db)

    ticks = [r.scheduled_at for r in runs]
    assert len(ticks) == len(set(ticks))
    assert max(e.scheduled_at for e in before) < min(e.scheduled_at for e in after)
    started = [r for r in runs if r.run_id]
    assert len({r.run_id for r in started}) == len(started) == len(invocations)
    assert {i.id for i in invocations} == {r.run_id for r in started}


async def test_two_nodes_on_one_database_run_each_tick_once(
    tmp_path: Path, db: Database, db_url: str
) -> None:
    """SQLite, and PostgreSQL when configured: both nodes fire every tick, one claim wins."""
    async with Platform(make_settings(tmp_path / "a", database_url=db_url)) as a:
        await a.functions.create(SYSTEM, FunctionCreate(name="tick", runtime="python", code=CODE))
        schedule = await _create(a)
        async with Platform(make_settings(tmp_path / "b", database_url=db_url)) as b:
            assert b.scheduler.job_next_run(schedule.id) is not None  # both nodes fire this schedule
            seen: list[ScheduleFired] = []
            for node in (a, b):
                node.bus.on(ScheduleFired, callback=seen.append)  # type: ignore[arg-type]
            deadline = time.monotonic() + 60
            while len({e.scheduled_at for e in seen}) < 4:
                assert time.monotonic() < deadline, seen
                await asyncio.sleep(0.1)
        await a.scheduler.settled()
        runs = await _runs(a.db, schedule.id)
        async with a.db.session() as session:
            stmt = select(func.count()).select_from(Invocation).where(Invocation.source == "cron")
            count = (await session.execute(stmt)).scalar_one()

    ticks = [e.scheduled_at for e in seen]
    assert len(ticks) == len(set(ticks))  # each tick fired on one node only
    assert len({r.scheduled_at for r in runs}) == len(runs)
    assert count == len([r for r in runs if r.run_id])
