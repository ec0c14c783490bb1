"""Executions of workflows as users see and steer them: list, detail, state runs, cancel, breakpoints,
the debugger (continue / step / abort / edit the paused input) and redrive. Part of WorkflowService
(engine/services/workflows.py), which adds the workflows themselves and starting executions.

Every change is one transaction with its audit row and a conditional UPDATE (`WHERE status IN ...`), so
a user's action and the runner's own progress never overwrite each other; the runner hears of the change
after the commit (a local task is cancelled or launched at once; another node notices at its next lease
renewal).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import Workflow, WorkflowExecution, WorkflowStateRun
from data.repos.pagination import Page, paginate
from data.types import id_floor, utcnow
from engine.bus import LocalBus
from engine.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from engine.events import ExecutionChanged
from engine.principal import Principal, Role
from engine.services.audit import AuditService
from engine.services.workflow_schemas import EXECUTION_STATUSES, check_input
from engine.workflows.journal import OPEN_RUN_STATUSES
from engine.workflows.model import CANCELLED, MISSING
from engine.workflows.runner import Runner

ABORTED = "States.Aborted"
DEBUG_ACTIONS = ("continue", "step", "abort")
REDRIVABLE = ("failed", "timeout")

Values = Callable[[WorkflowExecution], dict[str, Any]]


def require(principal: Principal, role: Role, what: str) -> None:
    if not principal.can(role):
        raise Forbidden(f"{what} needs the {role} role")


class ExecutionOps:
    _db: Database
    _bus: LocalBus
    _audit: AuditService
    runner: Runner

    # --- reading --------------------------------------------------------------------------------------

    async def executions(
        self,
        principal: Principal,
        *,
        workflow: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 20,
        cursor: str | None = None,
    ) -> Page[WorkflowExecution]:
        """Newest first. `workflow` is an id or a name; a time range is an id range too (UUIDv7)."""
        stmt = select(WorkflowExecution)
        if workflow:
            stmt = stmt.where(WorkflowExecution.workflow_id == (await self._workflow_row(workflow)).id)
        if status:
            if status not in EXECUTION_STATUSES:
                raise Invalid("status", f"status must be one of {', '.join(EXECUTION_STATUSES)}")
            stmt = stmt.where(WorkflowExecution.status == status)
        if since and until and until <= since:
            raise Invalid("until", "until must be after since")
        if since:
            stmt = stmt.where(WorkflowExecution.id >= id_floor(since), WorkflowExecution.created_at >= since)
        if until:
            bound = id_floor(until + timedelta(milliseconds=1))
            stmt = stmt.where(WorkflowExecution.id < bound, WorkflowExecution.created_at < until)
        async with self._db.session() as session:
            return await paginate(session, stmt, WorkflowExecution.id, cursor=cursor, limit=limit)

    async def execution(self, principal: Principal, execution_id: str) -> WorkflowExecution:
        async with self._db.session() as session:
            row = await session.get(WorkflowExecution, execution_id)
        if row is None:
            raise NotFound(f"execution not found: {execution_id}")
        return row

    async def executions_by_id(self, execution_ids: list[str]) -> list[WorkflowExecution]:
        """The executions among `execution_ids` that exist (for a schedule's run history: no principal,
        the caller has authorized)."""
        if not execution_ids:
            return []
        async with self._db.session() as session:
            rows = await session.execute(
                select(WorkflowExecution).where(WorkflowExecution.id.in_(execution_ids[:500]))
            )
            return list(rows.scalars().all())

    async def state_runs(self, principal: Principal, execution_id: str) -> list[WorkflowStateRun]:
        """Every state run of the execution, in the order they began (nested ones included)."""
        await self.execution(principal, execution_id)
        async with self._db.session() as session:
            rows = await session.execute(
                select(WorkflowStateRun)
                .where(WorkflowStateRun.execution_id == execution_id)
                .order_by(WorkflowStateRun.seq)
            )
            return list(rows.scalars().all())

    # --- cancel ---------------------------------------------------------------------------------------

    async def cancel(self, principal: Principal, execution_id: str) -> WorkflowExecution:
        """Stop an execution that has not ended (running, pending or paused): status cancelled; the
        invocation in flight, if any, is killed."""
        require(principal, "developer", "cancelling an execution")
        row = await self._transition(
            principal,
            execution_id,
            ("pending", "running", "paused"),
            lambda _: _ended("cancelled", CANCELLED, "execution cancelled by user"),
            "execution.cancel",
            close_runs=True,
        )
        self.runner.cancel(execution_id)
        return row

    # --- breakpoints ----------------------------------------------------------------------------------

    async def add_breakpoint(self, principal: Principal, execution_id: str, state: str) -> WorkflowExecution:
        """Pause this execution before `state` (a top-level state) from now on."""
        require(principal, "developer", "setting breakpoints")
        current = await self.execution(principal, execution_id)
        if state not in (current.definition or {}).get("states", {}):
            raise Invalid("before_state", f"the workflow has no top-level state named {state!r}")
        if state in current.breakpoints:
            raise Conflict(f"there is already a breakpoint before {state!r}", field="before_state")
        return await self._set_breakpoints(principal, current, [*current.breakpoints, state], added=state)

    async def remove_breakpoint(
        self, principal: Principal, execution_id: str, state: str
    ) -> WorkflowExecution:
        require(principal, "developer", "removing breakpoints")
        current = await self.execution(principal, execution_id)
        if state not in current.breakpoints:
            raise NotFound(f"no breakpoint before {state!r}")
        kept = [s for s in current.breakpoints if s != state]
        return await self._set_breakpoints(principal, current, kept, removed=state)

    async def _set_breakpoints(
        self, principal: Principal, current: WorkflowExecution, states: list[str], **details: str
    ) -> WorkflowExecution:
        before = list(current.breakpoints)
        row = await self._transition(
            principal,
            current.id,
            EXECUTION_STATUSES,
            lambda _: {"breakpoints": states},
            "execution.breakpoints",
            before={"breakpoints": before},
            after={"breakpoints": states},
            details=details,
        )
        self.runner.set_breakpoints(current.id, states)
        return row

    # --- the debugger ---------------------------------------------------------------------------------

    async def debug(
        self, principal: Principal, execution_id: str, action: str, input: Any = MISSING
    ) -> WorkflowExecution:
        """On a paused execution: `continue` (run the paused state and go on; it does not pause there
        again), `step` (run the paused state, pause before the next one) or `abort` (end it, cancelled
        with States.Aborted). `input` (continue/step) replaces the paused state's input first."""
        require(principal, "developer", "debugging an execution")
        if action not in DEBUG_ACTIONS:
            raise Invalid("action", f"action must be one of {', '.join(DEBUG_ACTIONS)}")
        if action == "abort":
            return await self._transition(
                principal,
                execution_id,
                ("paused",),
                lambda _: _ended("cancelled", ABORTED, "aborted in the debugger") | _unpaused(),
                "execution.abort",
                close_runs=True,
            )
        if input is not MISSING:
            await self.edit_input(principal, execution_id, input)
        now = utcnow()

        def go_on(row: WorkflowExecution) -> dict[str, Any]:
            values = _unpaused() | {
                "status": "running",
                "skip_breakpoint_once": row.paused_at_state,
                "step_mode": action == "step",
                "node_id": self.runner.node_id,
                "lease_until": now + timedelta(seconds=self.runner.lease_sec),
            }
            if row.timeout_at is not None and row.paused_at is not None:  # paused time does not count
                values["timeout_at"] = row.timeout_at + (now - row.paused_at)
            return values

        row = await self._transition(principal, execution_id, ("paused",), go_on, f"execution.{action}")
        self.runner.launch(execution_id)
        return row

    async def edit_input(self, principal: Principal, execution_id: str, input: Any) -> WorkflowExecution:
        """Replace the input the paused state will run with (a JSON value)."""
        require(principal, "developer", "editing a paused execution")
        check_input(input)
        holder: dict[str, Any] = {}

        def values(row: WorkflowExecution) -> dict[str, Any]:
            holder["before"] = row.paused_input
            return {"paused_input": input}

        async def also(session: AsyncSession, row: WorkflowExecution) -> None:
            await session.execute(
                update(WorkflowStateRun)
                .where(
                    WorkflowStateRun.execution_id == execution_id,
                    WorkflowStateRun.parent_id == "",
                    WorkflowStateRun.status == "paused",
                )
                .values(input=input)
            )

        return await self._transition(
            principal,
            execution_id,
            ("paused",),
            values,
            "execution.edit_input",
            before=lambda: {"input": holder.get("before")},
            after={"input": input},
            also=also,
        )

    # --- redrive --------------------------------------------------------------------------------------

    async def redrive(self, principal: Principal, execution_id: str) -> WorkflowExecution:
        """Run a failed (or timed-out) execution again from the top-level state that failed, keeping the
        results of the states that succeeded (Step Functions' redrive): the same execution, redrive_count
        + 1, new state runs appended."""
        require(principal, "developer", "redriving an execution")
        now = utcnow()

        def again(row: WorkflowExecution) -> dict[str, Any]:
            allowed = (row.timeout_at - row.started_at) if row.timeout_at and row.started_at else None
            return {
                "status": "running",
                "redrive_count": row.redrive_count + 1,
                "error": "",
                "cause": "",
                "output": None,
                "finished_at": None,
                "node_id": self.runner.node_id,
                "lease_until": now + timedelta(seconds=self.runner.lease_sec),
                "timeout_at": now + allowed if allowed is not None else None,
            }

        row = await self._transition(principal, execution_id, REDRIVABLE, again, "execution.redrive")
        self.runner.launch(execution_id)
        return row

    # --- helpers --------------------------------------------------------------------------------------

    async def _transition(
        self,
        principal: Principal,
        execution_id: str,
        allowed: tuple[str, ...],
        values: Values,
        action: str,
        *,
        close_runs: bool = False,
        before: Any = None,
        after: Any = None,
        details: Any = None,
        also: Callable[[AsyncSession, WorkflowExecution], Any] | None = None,
    ) -> WorkflowExecution:
        """Change the execution when its status is one of `allowed` (else 400 naming its status), audit
        it in the same transaction, publish ExecutionChanged after the commit; the updated row."""
        async with self._db.transaction() as session:
            row = await session.get(WorkflowExecution, execution_id)
            if row is None:
                raise NotFound(f"execution not found: {execution_id}")
            if row.status not in allowed:
                raise BadRequest(f"the execution is {row.status}; this needs it {' or '.join(allowed)}")
            changes = values(row)
            result = await session.execute(
                update(WorkflowExecution)
                .where(WorkflowExecution.id == execution_id, WorkflowExecution.status.in_(allowed))
                .values(**changes)
            )
            if result.rowcount != 1:
                raise Conflict("the execution changed meanwhile; look at it again")
            if close_runs:
                await session.execute(
                    update(WorkflowStateRun)
                    .where(
                        WorkflowStateRun.execution_id == execution_id,
                        WorkflowStateRun.status.in_(OPEN_RUN_STATUSES),
                    )
                    .values(status="cancelled", finished_at=utcnow())
                )
            if also is not None:
                await also(session, row)
            self._audit.record(
                session,
                principal,
                action,
                resource_type="execution",
                resource_id=execution_id,
                resource_name=row.workflow_name,
                before=before() if callable(before) else before or {"status": row.status},
                after=after or {"status": changes.get("status", row.status)},
                details=details,
            )
            event = ExecutionChanged(
                execution_id=execution_id,
                workflow_id=row.workflow_id,
                status=changes.get("status", row.status),
                current_state=row.current_state,
            )
            session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))
        return await self.execution(principal, execution_id)

    async def _workflow_row(self, ref: str) -> Workflow:
        async with self._db.session() as session:
            row = await session.get(Workflow, ref)
            if row is None:
                row = (
                    await session.execute(select(Workflow).where(Workflow.name == ref))
                ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"workflow not found: {ref}")
        return row


def _ended(status: str, error: str, cause: str) -> dict[str, Any]:
    return {"status": status, "error": error, "cause": cause, "finished_at": utcnow(), "lease_until": None}


def _unpaused() -> dict[str, Any]:
    return {"paused_at_state": "", "paused_input": None, "paused_at": None}
