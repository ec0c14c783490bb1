"""Helpers shared by the workflow runner tests: functions to call, a one-call way to run a definition,
and waiting on the bus for a state to reach a status (events, never sleeps)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from data.models import WorkflowExecution, WorkflowStateRun
from engine.events import Event, StateRunChanged
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate

ADD = "def handler(event, context):\n    return {**event, 'n': event.get('n', 0) + 1}\n"
ECHO = "def handler(event, context):\n    return event\n"
SLEEPY = (
    "import time\n"
    "def handler(event, context):\n"
    "    time.sleep(event.get('sleep', 30))\n"
    "    return {'slept': True}\n"
)
FLAKY = (  # fails until the context object says it is the third attempt
    "def handler(event, context):\n"
    "    if event['retry'] < 2:\n"
    "        raise ConnectionError(f\"attempt {event['retry'] + 1} failed\")\n"
    "    return {'ok': True, 'retry': event['retry']}\n"
)
BROKEN = "def handler(event, context):\n    raise ValueError('bad input: ' + str(event.get('n')))\n"


async def add_function(platform: Platform, name: str, code: str, **fields: Any) -> str:
    fn = await platform.functions.create(
        SYSTEM, FunctionCreate(name=name, runtime="python", code=code, **fields)
    )
    return fn.id


def task(function: str, **fields: Any) -> dict[str, Any]:
    return {"type": "task", "function_id": function, **fields}


async def run_definition(
    platform: Platform,
    name: str,
    definition: dict[str, Any],
    input: Any = None,
    wait_sec: float = 60,
    **kw: Any,
) -> WorkflowExecution:
    await platform.workflows.create(SYSTEM, {"name": name, "definition": definition, **kw})
    return await platform.workflows.run(SYSTEM, name, input, wait_sec=wait_sec)


async def runs(platform: Platform, execution_id: str) -> list[WorkflowStateRun]:
    return await platform.workflows.state_runs(SYSTEM, execution_id)


def by_name(rows: list[WorkflowStateRun]) -> dict[str, list[WorkflowStateRun]]:
    out: dict[str, list[WorkflowStateRun]] = {}
    for row in rows:
        out.setdefault(row.state_name, []).append(row)
    return out


def state_is(state: str, status: str, execution_id: str | None = None) -> Callable[[Event], bool]:
    def check(event: Event) -> bool:
        return (
            isinstance(event, StateRunChanged)
            and event.state_name == state
            and event.status == status
            and (execution_id is None or event.execution_id == execution_id)
        )

    return check
