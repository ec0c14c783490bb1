"""The workflow runner through the service, on a real platform (real sandboxed functions, a real
database): every state type, the data flow, Retry with backoff, Catch routing, Map concurrency,
timeouts, cancel, the debugger, redrive and versions. Waits are on events, with generous deadlines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from data.models import AuditEvent, Invocation
from engine.errors import BadRequest
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionUpdate
from engine.services.workflow_schemas import InvalidDefinition
from engine.workflows import machine
from tests.api.conftest import make_settings
from tests.engine.wf_fixtures import (
    ADD,
    BROKEN,
    ECHO,
    FLAKY,
    SLEEPY,
    add_function,
    by_name,
    run_definition,
    runs,
    state_is,
    task,
)

DEADLINE = 60.0


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        await add_function(running, "add", ADD)
        yield running


# --- states and data flow -----------------------------------------------------------------------------


async def test_a_task_sequence_passes_data_along_and_records_every_state(platform: Platform) -> None:
    definition = {
        "start_at": "First",
        "states": {
            "First": task("add", next="Second"),
            "Second": task("add", result_path="$.second", next="Done"),
            "Done": {"type": "succeed"},
        },
    }
    execution = await run_definition(platform, "seq", definition, {"n": 1})
    assert execution.status == "succeeded", execution.cause
    assert execution.output == {"n": 2, "second": {"n": 3}}
    rows = await runs(platform, execution.id)
    assert [(r.state_name, r.status, r.seq) for r in rows] == [
        ("First", "succeeded", 1),
        ("Second", "succeeded", 2),
        ("Done", "succeeded", 3),
    ]
    assert rows[0].input == {"n": 1} and rows[0].output == {"n": 2} and rows[0].next_state == "Second"
    async with platform.db.session() as session:
        invocation = await session.get(Invocation, rows[0].invocation_id)
    assert invocation is not None and invocation.source == "workflow"


async def test_every_state_type_runs_in_one_workflow(platform: Platform) -> None:
    await add_function(platform, "echo", ECHO)
    definition = {
        "start_at": "Seed",
        "states": {
            "Seed": {"type": "pass", "result": {"kind": "big", "items": [1, 2, 3]}, "next": "Route"},
            "Route": {
                "type": "choice",
                "choices": [{"variable": "$.kind", "string_equals": "big", "next": "Pause"}],
                "default": "Nope",
            },
            "Nope": {"type": "fail", "error": "Wrong", "cause": "took the default"},
            "Pause": {"type": "wait", "seconds": 0, "next": "Both"},
            "Both": {
                "type": "parallel",
                "branches": [
                    {"start_at": "L", "states": {"L": task("echo", end=True)}},
                    {"start_at": "R", "states": {"R": {"type": "pass", "result": "right", "end": True}}},
                ],
                "result_path": "$.both",
                "next": "Each",
            },
            "Each": {
                "type": "map",
                "items_path": "$.items",
                "max_concurrency": 2,
                "iterator": {
                    "start_at": "Inc",
                    "states": {"Inc": task("add", parameters={"n.$": "$"}, end=True)},
                },
                "result_selector": {"ns.$": "$[*].n"},
                "result_path": "$.mapped",
                "next": "End",
            },
            "End": {"type": "succeed", "output_path": "$.mapped"},
        },
    }
    execution = await run_definition(platform, "all-types", definition, {})
    assert execution.status == "succeeded", execution.cause
    assert execution.output == {"ns": [2, 3, 4]}
    rows = by_name(await runs(platform, execution.id))
    both = rows["Both"][0]
    assert both.output["both"] == [{"kind": "big", "items": [1, 2, 3]}, "right"]
    assert {r.branch for r in rows["L"] + rows["R"]} == {0, 1}
    assert all(r.parent_id == both.id for r in rows["L"] + rows["R"])
    assert sorted(r.item for r in rows["Inc"]) == [0, 1, 2]
    assert "Nope" not in rows


@pytest.mark.parametrize(
    ("order", "route"),
    [
        ({"total": 150, "country": "DE", "vip": False}, "Big"),
        ({"total": 20, "country": "DE", "vip": True}, "Vip"),
        ({"total": 20, "country": "FR", "vip": False}, "Foreign"),
        ({"total": 20, "country": "DE", "vip": False}, "Normal"),
    ],
)
async def test_choice_rules_pick_the_first_matching_rule_or_the_default(
    platform: Platform, order: dict[str, object], route: str
) -> None:
    end = {"type": "pass", "result": "x", "end": True}
    definition = {
        "start_at": "Route",
        "states": {
            "Route": {
                "type": "choice",
                "choices": [
                    {"variable": "$.total", "numeric_greater_than": 100, "next": "Big"},
                    {
                        "and": [
                            {"variable": "$.vip", "boolean_equals": True},
                            {"variable": "$.country", "string_matches": "D*"},
                        ],
                        "next": "Vip",
                    },
                    {"not": {"variable": "$.country", "string_equals": "DE"}, "next": "Foreign"},
                ],
                "default": "Normal",
            },
            "Big": end,
            "Vip": end,
            "Foreign": end,
            "Normal": end,
        },
    }
    execution = await run_definition(platform, f"choice-{route.lower()}", definition, order)
    assert execution.status == "succeeded"
    assert [r.state_name for r in await runs(platform, execution.id)] == ["Route", route]


# --- errors: Retry, Catch, Fail -----------------------------------------------------------------------


async def test_retry_backs_off_and_counts_attempts_until_the_task_succeeds(platform: Platform) -> None:
    await add_function(platform, "flaky", FLAKY)
    definition = {
        "start_at": "Call",
        "states": {
            "Call": task(
                "flaky",
                parameters={"retry.$": "$$.State.RetryCount"},
                retry=[{"error_equals": ["ConnectionError"], "interval_seconds": 0.2, "backoff_rate": 2}],
                end=True,
            )
        },
    }
    with platform.bus.subscribe() as events:
        execution = await run_definition(platform, "flaky-wf", definition, {})
        statuses = []
        while not events.queue.empty():
            event = events.queue.get_nowait()
            if getattr(event, "state_name", None) == "Call":
                statuses.append(event.status)  # type: ignore[attr-defined]
    assert execution.status == "succeeded", execution.cause
    assert execution.output == {"ok": True, "retry": 2}
    (row,) = await runs(platform, execution.id)
    assert row.attempt == 3 and row.status == "succeeded"
    assert statuses.count("retrying") == 2
    assert row.finished_at is not None
    # backoff: 0.2 s, then 0.4 s before the third attempt (a lower bound, not a timing assertion)
    assert (row.finished_at - row.started_at).total_seconds() >= 0.6


async def test_catch_routes_the_error_into_the_raw_input_at_its_result_path(platform: Platform) -> None:
    await add_function(platform, "broken", BROKEN)
    definition = {
        "start_at": "Call",
        "states": {
            "Call": task(
                "broken",
                retry={"error_equals": ["States.ALL"], "max_attempts": 1, "interval_seconds": 0.1},
                catch=[
                    {"error_equals": ["States.Timeout"], "next": "Wrong"},
                    {"error_equals": ["ValueError"], "result_path": "$.error", "next": "Handle"},
                ],
                end=True,
            ),
            "Wrong": {"type": "fail"},
            "Handle": {"type": "pass", "end": True},
        },
    }
    execution = await run_definition(platform, "catching", definition, {"n": 7})
    assert execution.status == "succeeded", execution.cause
    assert execution.output["n"] == 7
    assert execution.output["error"]["Error"] == "ValueError"
    assert "bad input: 7" in execution.output["error"]["Cause"]
    rows = by_name(await runs(platform, execution.id))
    call = rows["Call"][0]
    assert (call.status, call.attempt, call.next_state, call.error) == ("caught", 2, "Handle", "ValueError")


async def test_a_catcher_whose_result_path_does_not_fit_fails_the_state_not_cancels_it(
    platform: Platform,
) -> None:
    await add_function(platform, "broken", BROKEN)
    definition = {
        "start_at": "Call",
        "states": {
            # the raw input's "n" is a number: the error output cannot be placed under it
            "Call": task(
                "broken",
                catch=[{"error_equals": ["States.ALL"], "result_path": "$.n.e", "next": "H"}],
                end=True,
            ),
            "H": {"type": "pass", "end": True},
        },
    }
    execution = await run_definition(platform, "bad-catch", definition, {"n": 3})
    assert (execution.status, execution.error) == ("failed", "States.ResultPathMatchFailure"), execution.cause
    (row,) = await runs(platform, execution.id)
    assert (row.status, row.error) == ("failed", "States.ResultPathMatchFailure")


async def test_an_uncaught_task_error_fails_the_execution_with_its_error_and_cause(
    platform: Platform,
) -> None:
    await add_function(platform, "broken", BROKEN)
    definition = {"start_at": "Call", "states": {"Call": task("broken", end=True)}}
    execution = await run_definition(platform, "failing", definition, {"n": 1})
    assert (execution.status, execution.error) == ("failed", "ValueError")
    assert "bad input: 1" in execution.cause
    (row,) = await runs(platform, execution.id)
    assert row.status == "failed" and row.finished_at is not None


async def test_a_fail_state_ends_the_execution_with_its_error(platform: Platform) -> None:
    definition = {
        "start_at": "Stop",
        "states": {"Stop": {"type": "fail", "error": "OrderRejected", "cause": "too big"}},
    }
    execution = await run_definition(platform, "fail-state", definition, {})
    assert (execution.status, execution.error, execution.cause) == ("failed", "OrderRejected", "too big")


# --- concurrency and cancellation of branches ---------------------------------------------------------


async def test_map_runs_items_concurrently_within_max_concurrency_and_keeps_their_order(
    platform: Platform,
) -> None:
    definition = {
        "start_at": "Each",
        "states": {
            "Each": {
                "type": "map",
                "max_concurrency": 2,
                "iterator": {
                    "start_at": "Nap",
                    "states": {
                        "Nap": {"type": "wait", "seconds": 0.3, "next": "Out"},
                        "Out": {"type": "pass", "end": True},
                    },
                },
                "end": True,
            }
        },
    }
    execution = await run_definition(platform, "mapping", definition, ["a", "b", "c", "d", "e"])
    assert execution.status == "succeeded", execution.cause
    assert execution.output == ["a", "b", "c", "d", "e"]
    naps = by_name(await runs(platform, execution.id))["Nap"]
    spans = [(r.started_at, r.finished_at) for r in naps]
    overlap = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert overlap == 2  # two at a time: never more, and really concurrent


async def test_a_failing_branch_cancels_the_others_and_the_parallel_can_catch_it(platform: Platform) -> None:
    definition = {
        "start_at": "Both",
        "states": {
            "Both": {
                "type": "parallel",
                "branches": [
                    {"start_at": "Slow", "states": {"Slow": {"type": "wait", "seconds": 120, "end": True}}},
                    {"start_at": "Boom", "states": {"Boom": {"type": "fail", "error": "Boom", "cause": "b"}}},
                ],
                "catch": [{"error_equals": ["Boom"], "next": "Recover"}],
                "end": True,
            },
            "Recover": {"type": "pass", "end": True},
        },
    }
    execution = await run_definition(platform, "parallel-fail", definition, {})
    assert execution.status == "succeeded", execution.cause
    assert execution.output == {"Error": "Boom", "Cause": "b"}
    rows = by_name(await runs(platform, execution.id))
    assert rows["Slow"][0].status == "cancelled"
    assert rows["Both"][0].status == "caught"


# --- timeouts and cancel ---------------------------------------------------------------------------------


async def test_a_state_timeout_fails_the_task_with_states_timeout(platform: Platform) -> None:
    await add_function(platform, "sleepy", SLEEPY)
    definition = {"start_at": "Nap", "states": {"Nap": task("sleepy", timeout_sec=1, end=True)}}
    execution = await run_definition(platform, "state-timeout", definition, {"sleep": 20})
    assert (execution.status, execution.error) == ("failed", "States.Timeout")


async def test_the_execution_timeout_ends_it_and_cancels_what_runs(platform: Platform) -> None:
    definition = {
        "start_at": "Long",
        "timeout_sec": 1,
        "states": {"Long": {"type": "wait", "seconds": 120, "end": True}},
    }
    execution = await run_definition(platform, "exec-timeout", definition, {})
    assert (execution.status, execution.error) == ("timeout", "States.Timeout")
    (row,) = await runs(platform, execution.id)
    assert row.status == "cancelled"


async def test_cancel_stops_a_running_task_at_once(platform: Platform) -> None:
    await add_function(platform, "sleepy", SLEEPY)
    definition = {"start_at": "Nap", "states": {"Nap": task("sleepy", end=True)}}
    await platform.workflows.create(SYSTEM, {"name": "cancel-me", "definition": definition})
    with platform.bus.subscribe() as events:
        execution = await platform.workflows.start(SYSTEM, "cancel-me", {"sleep": 120})
        assert execution.status == "pending"
        await events.wait_for(state_is("Nap", "running", execution.id), DEADLINE)
    cancelled = await platform.workflows.cancel(SYSTEM, execution.id)
    assert (cancelled.status, cancelled.error) == ("cancelled", "States.Cancelled")
    done = await platform.workflows.wait(SYSTEM, execution.id, 5)
    assert done.status == "cancelled"
    (row,) = await runs(platform, execution.id)
    assert row.status == "cancelled"
    assert not platform.workflow_runner.is_running(execution.id)
    with pytest.raises(BadRequest):
        await platform.workflows.cancel(SYSTEM, execution.id)


# --- the debugger ---------------------------------------------------------------------------------------


def _three_steps() -> dict[str, object]:
    return {
        "start_at": "A",
        "states": {"A": task("add", next="B"), "B": task("add", next="C"), "C": task("add", end=True)},
    }


async def test_pause_edit_step_and_continue_at_a_breakpoint(platform: Platform) -> None:
    await platform.workflows.create(
        SYSTEM, {"name": "debug-me", "definition": _three_steps(), "breakpoints": ["B"]}
    )
    execution = await platform.workflows.run(SYSTEM, "debug-me", {"n": 0}, wait_sec=DEADLINE)
    assert (execution.status, execution.paused_at_state, execution.paused_input) == ("paused", "B", {"n": 1})

    edited = await platform.workflows.edit_input(SYSTEM, execution.id, {"n": 10})
    assert edited.paused_input == {"n": 10}
    stepped = await platform.workflows.debug(SYSTEM, execution.id, "step")
    assert stepped.status == "running"
    paused = await platform.workflows.wait(SYSTEM, execution.id, DEADLINE)
    assert (paused.status, paused.paused_at_state, paused.paused_input) == ("paused", "C", {"n": 11})

    await platform.workflows.add_breakpoint(SYSTEM, execution.id, "C")  # Continue must not stop here again
    await platform.workflows.debug(SYSTEM, execution.id, "continue", {"n": 100})
    done = await platform.workflows.wait(SYSTEM, execution.id, DEADLINE)
    assert (done.status, done.output) == ("succeeded", {"n": 101})
    rows = await runs(platform, execution.id)
    assert [(r.state_name, r.status, r.input) for r in rows] == [
        ("A", "succeeded", {"n": 0}),
        ("B", "succeeded", {"n": 10}),
        ("C", "succeeded", {"n": 100}),
    ]
    async with platform.db.session() as session:
        actions = (
            (await session.execute(select(AuditEvent.action).where(AuditEvent.resource_id == execution.id)))
            .scalars()
            .all()
        )
    assert {"execution.edit_input", "execution.step", "execution.continue", "execution.breakpoints"} <= set(
        actions
    )


async def test_abort_ends_a_paused_execution(platform: Platform) -> None:
    await platform.workflows.create(SYSTEM, {"name": "abort-me", "definition": _three_steps()})
    execution = await platform.workflows.run(
        SYSTEM, "abort-me", {"n": 0}, breakpoints=["A"], wait_sec=DEADLINE
    )
    assert execution.status == "paused" and execution.paused_at_state == "A"
    aborted = await platform.workflows.debug(SYSTEM, execution.id, "abort")
    assert (aborted.status, aborted.error) == ("cancelled", "States.Aborted")
    (row,) = await runs(platform, execution.id)
    assert (row.state_name, row.status) == ("A", "cancelled")
    with pytest.raises(BadRequest):
        await platform.workflows.debug(SYSTEM, execution.id, "continue")


async def test_an_execution_runs_the_version_it_started_with(platform: Platform) -> None:
    await platform.workflows.create(SYSTEM, {"name": "versioned", "definition": _three_steps()})
    execution = await platform.workflows.run(
        SYSTEM, "versioned", {"n": 0}, breakpoints=["B"], wait_sec=DEADLINE
    )
    assert execution.status == "paused"
    changed = {"start_at": "A", "states": {"A": {"type": "pass", "result": "v2", "end": True}}}
    workflow = await platform.workflows.update(SYSTEM, "versioned", {"definition": changed})
    assert workflow.version == 2
    await platform.workflows.debug(SYSTEM, execution.id, "continue")
    done = await platform.workflows.wait(SYSTEM, execution.id, DEADLINE)
    assert (done.status, done.output, done.version) == ("succeeded", {"n": 3}, 1)
    fresh = await platform.workflows.run(SYSTEM, "versioned", {}, wait_sec=DEADLINE)
    assert (fresh.output, fresh.version) == ("v2", 2)


# --- redrive --------------------------------------------------------------------------------------------


async def test_redrive_restarts_at_the_failed_state_keeping_what_succeeded(platform: Platform) -> None:
    await add_function(platform, "shaky", BROKEN)
    definition = {
        "start_at": "Prepare",
        "states": {
            "Prepare": task("add", next="Risky"),
            "Risky": task("shaky", next="Finish"),
            "Finish": task("add", end=True),
        },
    }
    execution = await run_definition(platform, "redrive-me", definition, {"n": 0})
    assert (execution.status, execution.error) == ("failed", "ValueError")
    with pytest.raises(BadRequest):
        await platform.workflows.debug(SYSTEM, execution.id, "continue")

    await platform.functions.update(SYSTEM, "shaky", FunctionUpdate(code=ADD))  # the fix
    redriven = await platform.workflows.redrive(SYSTEM, execution.id)
    assert (redriven.id, redriven.status, redriven.redrive_count) == (execution.id, "running", 1)
    done = await platform.workflows.wait(SYSTEM, execution.id, DEADLINE)
    assert (done.status, done.output, done.error) == ("succeeded", {"n": 3}, "")
    rows = await runs(platform, execution.id)
    assert [(r.state_name, r.status) for r in rows] == [
        ("Prepare", "succeeded"),
        ("Risky", "failed"),
        ("Risky", "succeeded"),
        ("Finish", "succeeded"),
    ]
    assert rows[2].input == {"n": 1}  # the recorded output of Prepare, not a re-run
    with pytest.raises(BadRequest):
        await platform.workflows.redrive(SYSTEM, execution.id)


# --- definitions -------------------------------------------------------------------------------------------


async def test_an_invalid_definition_is_refused_with_every_problem(platform: Platform) -> None:
    definition = {
        "start_at": "A",
        "states": {
            "A": task("no-such-function", next="Missing"),
            "B": {"type": "pass", "input_path": "$..[", "end": True},
            "C": {"type": "pass"},
        },
    }
    with pytest.raises(InvalidDefinition) as caught:
        await platform.workflows.create(SYSTEM, {"name": "bad", "definition": definition})
    paths = {p.path for p in caught.value.problems}
    assert {"states.A.function_id", "states.A.next", "states.C.next"} <= paths
    assert any(p.startswith("states.B") for p in paths)
    assert len(caught.value.problems) >= 5  # unreachable B and C are named too
    assert await platform.workflows.list(SYSTEM) is not None
    assert (await platform.workflows.list(SYSTEM)).items == []


async def test_the_settings_cap_the_states_and_give_the_default_timeout(platform: Platform) -> None:
    await platform.system_settings.update(SYSTEM, "workflow_max_states", 2)
    await platform.system_settings.update(SYSTEM, "workflow_default_timeout", 120)
    with pytest.raises(InvalidDefinition) as caught:
        await platform.workflows.create(SYSTEM, {"name": "too-big", "definition": _three_steps()})
    assert [p.path for p in caught.value.problems] == ["states"]
    small = {"start_at": "A", "states": {"A": task("add", next="B"), "B": task("add", end=True)}}
    workflow = await platform.workflows.create(SYSTEM, {"name": "small", "definition": small})
    assert workflow.timeout_sec == 120


async def test_an_endless_loop_is_stopped_at_the_state_run_limit(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machine, "MAX_STATE_RUNS", 30)
    definition = {
        "start_at": "Loop",
        "states": {
            "Loop": {"type": "pass", "next": "Check"},
            "Check": {
                "type": "choice",
                "choices": [{"variable": "$.stop", "boolean_equals": True, "next": "Done"}],
                "default": "Loop",
            },
            "Done": {"type": "succeed"},
        },
    }
    execution = await run_definition(platform, "endless", definition, {"stop": False})
    assert (execution.status, execution.error) == ("failed", "States.Runtime")
    assert "30 states" in execution.cause
    assert len(await runs(platform, execution.id)) == 30
