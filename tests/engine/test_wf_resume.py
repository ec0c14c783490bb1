"""Executions survive their node: a platform killed mid-execution leaves it to the next one, which
claims it once the lease has expired and goes on from the last completed state (on SQLite and on
PostgreSQL); a clean stop hands executions over at once; paused executions stay paused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from data.db import Database
from data.models import Invocation
from data.types import utcnow
from engine.platform import Platform
from engine.principal import SYSTEM
from tests.api.conftest import make_settings
from tests.engine.wf_fixtures import ADD, add_function, by_name, runs, state_is, task

DEADLINE = 60.0
WAIT_SEC = 6


def _definition() -> dict[str, Any]:
    return {
        "start_at": "First",
        "states": {
            "First": task("add", next="Second"),
            "Second": task("add", next="Nap"),
            "Nap": {"type": "wait", "seconds": WAIT_SEC, "next": "Last"},
            "Last": task("add", end=True),
        },
    }


async def _invocations(platform: Platform) -> int:
    async with platform.db.session() as session:
        return (await session.execute(select(func.count()).select_from(Invocation))).scalar_one()


async def test_a_killed_platforms_execution_is_resumed_by_the_next_from_its_last_state(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url=db_url, lease_sec=1.0)
    first = Platform(settings)
    await first.start()
    try:
        await add_function(first, "add", ADD)
        await first.workflows.create(SYSTEM, {"name": "durable", "definition": _definition()})
        with first.bus.subscribe() as events:
            execution = await first.workflows.start(SYSTEM, "durable", {"n": 0})
            await events.wait_for(state_is("Nap", "running", execution.id), DEADLINE)
        await first.workflow_runner.abandon()  # as if the process had been killed
    finally:
        await first.stop()

    restarted_at = utcnow()
    async with Platform(make_settings(tmp_path, database_url=db_url, lease_sec=1.0)) as second:
        done = await second.workflows.wait(SYSTEM, execution.id, DEADLINE)
        assert (done.status, done.output) == ("succeeded", {"n": 3}), done.cause
        assert done.node_id == second.workflow_runner.node_id != first.workflow_runner.node_id
        rows = by_name(await runs(second, execution.id))
        assert {name: [r.status for r in rs] for name, rs in rows.items()} == {
            "First": ["succeeded"],
            "Second": ["succeeded"],
            "Nap": ["succeeded"],
            "Last": ["succeeded"],
        }
        assert await _invocations(second) == 3  # the first two Tasks were not run again
        nap = rows["Nap"][0]
        assert nap.finished_at is not None
        # The Wait went on with the time it had left: it ended WAIT_SEC after it first began, not
        # WAIT_SEC after the new platform took it over.
        assert nap.finished_at - nap.started_at >= timedelta(seconds=WAIT_SEC)
        assert nap.finished_at < restarted_at + timedelta(seconds=WAIT_SEC)


async def test_a_clean_stop_hands_running_executions_to_the_next_start_at_once(tmp_path: Path) -> None:
    async with Platform(make_settings(tmp_path, lease_sec=600.0)) as first:
        await add_function(first, "add", ADD)
        await first.workflows.create(SYSTEM, {"name": "handover", "definition": _definition()})
        with first.bus.subscribe() as events:
            execution = await first.workflows.start(SYSTEM, "handover", {"n": 0})
            await events.wait_for(state_is("Nap", "running", execution.id), DEADLINE)
    # A 600 s lease: only the released lease lets the new platform take over within the deadline.
    async with Platform(make_settings(tmp_path, lease_sec=600.0)) as second:
        done = await second.workflows.wait(SYSTEM, execution.id, DEADLINE)
        assert (done.status, done.output) == ("succeeded", {"n": 3}), done.cause
        assert [r.state_name for r in await runs(second, execution.id)] == ["First", "Second", "Nap", "Last"]


async def test_a_paused_execution_stays_paused_across_a_restart(tmp_path: Path) -> None:
    async with Platform(make_settings(tmp_path, lease_sec=1.0)) as first:
        await add_function(first, "add", ADD)
        await first.workflows.create(SYSTEM, {"name": "paused", "definition": _definition()})
        execution = await first.workflows.run(
            SYSTEM, "paused", {"n": 0}, breakpoints=["Second"], wait_sec=DEADLINE
        )
        assert execution.status == "paused"

    async with Platform(make_settings(tmp_path, lease_sec=1.0)) as second:
        claimed = await second.workflow_runner.tend()  # claims run at start; once more, explicitly
        assert execution.id not in claimed
        still = await second.workflows.execution(SYSTEM, execution.id)
        assert (still.status, still.paused_at_state, still.paused_input) == ("paused", "Second", {"n": 1})
        await second.workflows.debug(SYSTEM, execution.id, "continue")
        done = await second.workflows.wait(SYSTEM, execution.id, DEADLINE)
        assert (done.status, done.output) == ("succeeded", {"n": 3})


async def test_the_debugger_cancel_and_lists_work_on_every_backend(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    async with Platform(make_settings(tmp_path, database_url=db_url)) as platform:
        await add_function(platform, "add", ADD)
        short = {"start_at": "A", "states": {"A": task("add", next="B"), "B": task("add", end=True)}}
        await platform.workflows.create(SYSTEM, {"name": "on-backend", "definition": short})
        before = utcnow()
        paused = await platform.workflows.run(
            SYSTEM, "on-backend", {"n": 0}, breakpoints=["B"], wait_sec=DEADLINE
        )
        assert (paused.status, paused.paused_input) == ("paused", {"n": 1})
        await platform.workflows.edit_input(SYSTEM, paused.id, {"n": 5})
        await platform.workflows.debug(SYSTEM, paused.id, "continue")
        done = await platform.workflows.wait(SYSTEM, paused.id, DEADLINE)
        assert (done.status, done.output) == ("succeeded", {"n": 6})

        other = await platform.workflows.run(
            SYSTEM, "on-backend", {"n": 0}, breakpoints=["A"], wait_sec=DEADLINE
        )
        cancelled = await platform.workflows.cancel(SYSTEM, other.id)
        assert cancelled.status == "cancelled"
        assert [r.status for r in await runs(platform, other.id)] == ["cancelled"]

        page = await platform.workflows.executions(SYSTEM, workflow="on-backend", since=before, limit=1)
        assert [e.id for e in page.items] == [other.id] and page.next_cursor
        rest = await platform.workflows.executions(SYSTEM, workflow="on-backend", cursor=page.next_cursor)
        assert [e.id for e in rest.items] == [paused.id]
        assert (await platform.workflows.executions(SYSTEM, status="succeeded")).items[0].id == paused.id
        assert (await platform.workflows.executions(SYSTEM, until=before)).items == []


async def test_a_parallel_cut_off_by_a_dead_node_runs_again_as_a_whole(tmp_path: Path) -> None:
    branch = {"start_at": "Nap", "states": {"Nap": {"type": "wait", "seconds": 2, "end": True}}}
    definition = {
        "start_at": "Fan",
        "states": {"Fan": {"type": "parallel", "branches": [branch, branch], "end": True}},
    }
    first = Platform(make_settings(tmp_path, lease_sec=1.0))
    await first.start()
    try:
        await first.workflows.create(SYSTEM, {"name": "fan", "definition": definition})
        with first.bus.subscribe() as events:
            execution = await first.workflows.start(SYSTEM, "fan", {"x": 1})
            await events.wait_for(state_is("Nap", "running", execution.id), DEADLINE)
        await first.workflow_runner.abandon()
    finally:
        await first.stop()

    async with Platform(make_settings(tmp_path, lease_sec=1.0)) as second:
        done = await second.workflows.wait(SYSTEM, execution.id, DEADLINE)
        assert (done.status, done.output) == ("succeeded", [{"x": 1}, {"x": 1}])
        rows = by_name(await runs(second, execution.id))
        assert [r.status for r in rows["Fan"]] == ["succeeded"]  # the same row, run again
        naps = sorted((r.status, r.parent_id) for r in rows["Nap"])
        fan = rows["Fan"][0].id
        assert naps.count(("succeeded", fan)) == 2
        assert {status for status, _ in naps} <= {"succeeded", "cancelled"}
        assert len(naps) >= 3  # at least one branch of the first run was cut off and ended as cancelled
