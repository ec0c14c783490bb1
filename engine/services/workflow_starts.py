"""Starting executions of a workflow's current version or an earlier one: async (returns at once) or
sync (waits on the event bus for the end, bounded), and the versions themselves. Part of WorkflowService.

An execution runs the definition snapshot it started with; its timeout is the definition's `timeout_sec`
when it has one, else the workflow's (the version's)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from data.models import WorkflowExecution, WorkflowVersion
from data.types import new_id, utcnow
from engine.errors import BadRequest, Invalid, NotFound
from engine.events import ExecutionChanged
from engine.principal import Principal
from engine.services.workflow_executions import ExecutionOps, require
from engine.services.workflow_schemas import MAX_WAIT_SEC, SOURCES, check_breakpoints, check_input
from engine.workflows.model import parse_definition
from engine.workflows.runner import TERMINAL


class StartOps(ExecutionOps):
    # --- versions -------------------------------------------------------------------------------------

    async def versions(self, principal: Principal, ref: str) -> list[WorkflowVersion]:
        """Every version, newest first."""
        workflow = await self._workflow_row(ref)
        async with self._db.session() as session:
            rows = await session.execute(
                select(WorkflowVersion)
                .where(WorkflowVersion.workflow_id == workflow.id)
                .order_by(WorkflowVersion.version.desc())
            )
            return list(rows.scalars().all())

    async def version(self, principal: Principal, ref: str, number: int) -> WorkflowVersion:
        workflow = await self._workflow_row(ref)
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(WorkflowVersion).where(
                        WorkflowVersion.workflow_id == workflow.id, WorkflowVersion.version == number
                    )
                )
            ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"workflow {workflow.name} has no version {number}")
        return row

    # --- starting executions ------------------------------------------------------------------------

    async def start(
        self,
        principal: Principal,
        ref: str,
        input: Any = None,
        *,
        name: str = "",
        version: int | None = None,
        breakpoints: list[str] | None = None,
        source: str = "api",
        execution_id: str | None = None,
    ) -> WorkflowExecution:
        """Start an execution and return at once (status pending; it runs on this node)."""
        require(principal, "developer", "starting workflows")
        if source not in SOURCES:
            raise Invalid("source", f"source must be one of {', '.join(SOURCES)}")
        if len(name) > 128:
            raise Invalid("name", "an execution name is at most 128 characters")
        event = check_input({} if input is None else input)
        workflow = await self._workflow_row(ref)
        if workflow.status != "active":
            raise BadRequest("workflow is inactive")
        definition, timeout = workflow.definition, workflow.timeout_sec
        if version is not None and version != workflow.version:
            snapshot = await self.version(principal, workflow.id, version)
            definition, timeout = snapshot.definition, snapshot.timeout_sec
        parsed = parse_definition(definition)
        timeout = parsed.timeout_sec or timeout
        stops = list(dict.fromkeys([*workflow.breakpoints, *(breakpoints or ())]))
        check_breakpoints(stops, definition)
        now = utcnow()
        execution = WorkflowExecution(
            id=execution_id or new_id(),
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            version=version or workflow.version,
            name=name,
            status="pending",
            source=source,
            definition=definition,
            input=event,
            current_state=parsed.start_at,
            breakpoints=stops,
            node_id=self.runner.node_id,
            lease_until=now + timedelta(seconds=self.runner.lease_sec),
            timeout_at=now + timedelta(seconds=timeout),
            created_by=principal.actor,
            created_at=now,
            started_at=now,
        )
        async with self._db.transaction() as session:
            session.add(execution)
            self._audit.record(
                session,
                principal,
                "workflow.start",
                resource_type="workflow",
                resource_id=workflow.id,
                resource_name=workflow.name,
                details={"execution_id": execution.id, "version": execution.version, "source": source},
            )
            changed = ExecutionChanged(execution_id=execution.id, workflow_id=workflow.id, status="pending")
            session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(changed))
        self.runner.launch(execution.id)
        return execution

    async def run(
        self,
        principal: Principal,
        ref: str,
        input: Any = None,
        *,
        wait_sec: float = 60,
        name: str = "",
        version: int | None = None,
        breakpoints: list[str] | None = None,
        source: str = "api",
    ) -> WorkflowExecution:
        """Start an execution and wait (at most `wait_sec`, at most 300 s) until it ends or pauses;
        the execution as it is then (still running when the wait ran out)."""
        if not 0 <= wait_sec <= MAX_WAIT_SEC:
            raise Invalid("wait_sec", f"wait_sec is 0 to {MAX_WAIT_SEC}")
        execution_id = new_id()
        ended, stop_watching = self.runner.watch(execution_id)
        try:
            await self.start(
                principal,
                ref,
                input,
                name=name,
                version=version,
                breakpoints=breakpoints,
                source=source,
                execution_id=execution_id,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(ended), wait_sec)
        finally:
            stop_watching()
        return await self.execution(principal, execution_id)

    async def wait(self, principal: Principal, execution_id: str, wait_sec: float = 60) -> WorkflowExecution:
        """The execution once it has ended or paused, or as it is after `wait_sec` (at most 300 s)."""
        wait_sec = max(0.0, min(float(wait_sec), MAX_WAIT_SEC))
        ended, stop_watching = self.runner.watch(execution_id)
        try:
            current = await self.execution(principal, execution_id)
            if current.status in (*TERMINAL, "paused"):
                return current
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(ended), wait_sec)
        finally:
            stop_watching()
        return await self.execution(principal, execution_id)
