"""Rows of a given age for the quota and retention tests: invocations (with attempts and logs), DLQ
messages and workflow executions, inserted in bulk with UUIDv7 ids stamped at that age, as the platform
itself would have stamped them then."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from data.db import Database
from data.models import (
    DeadLetter,
    Invocation,
    InvocationAttempt,
    InvocationLog,
    WebhookCall,
    Workflow,
    WorkflowExecution,
    WorkflowStateRun,
)


def id_at(at: datetime) -> str:
    """A UUIDv7 for the millisecond `at` (random below it), like data.types.new_id at that time."""
    ms = int(at.timestamp() * 1000)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (int.from_bytes(os.urandom(2), "big") & 0xFFF) << 64
    value |= 0b10 << 62 | int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


async def add_invocations(
    db: Database,
    at: datetime,
    n: int = 1,
    *,
    status: str = "success",
    function_id: str = "fn-old",
    logs: int = 1,
    attempts: int = 1,
    log_at: datetime | None = None,
    **fields: Any,
) -> list[str]:
    """`n` invocations created at `at`, each with `attempts` attempts and `logs` log lines (stamped
    `log_at`, default `at`); their ids."""
    rows, attempt_rows, log_rows = [], [], []
    for _ in range(n):
        inv_id = id_at(at)
        rows.append(
            {
                "id": inv_id,
                "function_id": function_id,
                "function_name": "old",
                "status": status,
                "created_at": at,
                "started_at": at,
                "ended_at": at,
                "duration_ms": 1.0,
                "input": {"n": 1},
                **fields,
            }
        )
        for number in range(1, attempts + 1):
            attempt_rows.append(
                {"id": id_at(at), "invocation_id": inv_id, "attempt": number, "status": status}
            )
        stamp = log_at or at
        for line in range(logs):
            log_rows.append(
                {
                    "id": id_at(stamp),
                    "invocation_id": inv_id,
                    "function_id": function_id,
                    "message": f"line {line}",
                    "created_at": stamp,
                }
            )
    async with db.transaction() as session:
        await session.execute(insert(Invocation), rows)
        if attempt_rows:
            await session.execute(insert(InvocationAttempt), attempt_rows)
        if log_rows:
            await session.execute(insert(InvocationLog), log_rows)
    return [r["id"] for r in rows]


async def add_dead_letters(db: Database, at: datetime, statuses: list[str]) -> list[str]:
    rows = [
        {
            "id": id_at(at),
            "function_id": "fn-old",
            "function_name": "old",
            "original_request_id": id_at(at),
            "payload": {"n": i},
            "error": "boom",
            "attempts": [],
            "status": status,
            "created_at": at,
        }
        for i, status in enumerate(statuses)
    ]
    async with db.transaction() as session:
        await session.execute(insert(DeadLetter), rows)
    return [r["id"] for r in rows]


async def add_executions(db: Database, at: datetime, statuses: list[str]) -> list[str]:
    """A workflow (made once) and one execution per status created at `at`, each with two state runs."""
    async with db.transaction() as session:
        workflow = await session.get(Workflow, "wf-old")
        if workflow is None:
            session.add(Workflow(id="wf-old", name="wf-old", definition={"start_at": "A"}))
    executions, state_runs = [], []
    for status in statuses:
        exec_id = id_at(at)
        executions.append(
            {
                "id": exec_id,
                "workflow_id": "wf-old",
                "status": status,
                "definition": {"start_at": "A"},
                "cause": "",
                "breakpoints": [],
                "created_at": at,
            }
        )
        for seq in range(2):
            state_runs.append(
                {
                    "id": id_at(at),
                    "execution_id": exec_id,
                    "seq": seq,
                    "state_name": f"S{seq}",
                    "state_type": "pass",
                    "cause": "",
                    "started_at": at,
                }
            )
    async with db.transaction() as session:
        await session.execute(insert(WorkflowExecution), executions)
        await session.execute(insert(WorkflowStateRun), state_runs)
    return [e["id"] for e in executions]


async def add_webhook_calls(db: Database, at: datetime, n: int) -> list[str]:
    """`n` webhook call history rows created at `at`."""
    rows = [
        {
            "id": id_at(at),
            "webhook_id": "wh-old",
            "status": 200,
            "request_body": "{}",
            "response_body": "",
            "message": "",
            "created_at": at,
        }
        for _ in range(n)
    ]
    async with db.transaction() as session:
        await session.execute(insert(WebhookCall), rows)
    return [r["id"] for r in rows]
