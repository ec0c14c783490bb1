"""The durable record of one execution as it runs: state-run rows and the execution row, written through
the write-behind batcher (one writer, group commit), with events published only after their commit.

Cost per state (the 40-state benchmark lives on it): the end of one state and the start of the next go
to the single writer as one item (`finish` only buffers; the buffer leaves with the next start, or on its
own at the end of the loop iteration), and the state runs while the writer commits it, in order, within
batch_max_delay_ms: about one small transaction per state, none waited for. Durability holds where it
matters: a Wait's start and a pause are committed before the runner goes on (`commit`), so a Wait resumes
with the time it had left and a pause survives a restart; the end of an execution is committed before
anyone hears of it. A node that dies loses at most the last few milliseconds of progress, and whoever
resumes the execution runs again from the last committed state (Tasks are at-least-once anyway).

Every write to the execution row is conditional on the execution still being active (pending/running), so
a runner never overwrites what a user did meanwhile (cancel, abort) or what another node did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Executable, Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from data.batcher import Batcher, Insert, Op, Update
from data.models import WorkflowExecution, WorkflowStateRun
from data.types import new_id, utcnow
from engine.bus import LocalBus
from engine.events import Event, ExecutionChanged, StateRunChanged

ACTIVE = ("pending", "running")
OPEN_RUN_STATUSES = ("running", "retrying", "paused")

_EXECUTIONS: Table = WorkflowExecution.__table__  # type: ignore[attr-defined]
_RUNS: Table = WorkflowStateRun.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class RunRecord:
    """One state run as this node knows it (the row's id and what it was given)."""

    id: str
    seq: int
    state_name: str
    state_type: str
    input: Any
    started_at: datetime
    parent_id: str = ""
    branch: int | None = None
    item: int | None = None
    attempt: int = 1
    status: str = "running"
    invocation_id: str = ""


@lru_cache(maxsize=64)
def _execution_update(columns: tuple[str, ...], statuses: tuple[str, ...]) -> Executable:
    """UPDATE workflow_executions SET columns WHERE id = :_pk AND status IN statuses, built once per
    shape (building and keying a statement costs more than running it)."""
    table = _EXECUTIONS
    return (
        update(table)
        .where(table.c.id == bindparam("_pk"), table.c.status.in_(statuses))
        .values({c: bindparam(f"_v_{c}") for c in columns})
    )


@dataclass(slots=True)
class _ExecutionWrite:
    execution_id: str
    values: dict[str, Any]
    statuses: tuple[str, ...]
    applied: list[int] = field(default_factory=list)

    async def __call__(self, session: AsyncSession) -> None:
        stmt = _execution_update(tuple(self.values), self.statuses)
        params = {"_pk": self.execution_id, **{f"_v_{k}": v for k, v in self.values.items()}}
        result = await session.execute(stmt, params)
        self.applied.append(result.rowcount)  # may run twice (batch, then alone): the last one counts


@dataclass(slots=True)
class _CloseOpenRuns:
    """Mark every still-open run of the execution cancelled (its own and any a dead node left)."""

    execution_id: str
    at: datetime
    keep: str = ""  # a run that goes on (resumed in place)

    async def __call__(self, session: AsyncSession) -> None:
        await session.execute(
            update(_RUNS)
            .where(
                _RUNS.c.execution_id == self.execution_id,
                _RUNS.c.status.in_(OPEN_RUN_STATUSES),
                _RUNS.c.id != self.keep,
            )
            .values(status="cancelled", finished_at=self.at)
        )


class Journal:
    def __init__(
        self, batcher: Batcher, bus: LocalBus, execution_id: str, workflow_id: str, *, next_seq: int = 0
    ) -> None:
        self._batcher = batcher
        self._bus = bus
        self.execution_id = execution_id
        self.workflow_id = workflow_id
        self._seq = next_seq
        self._ops: list[Op] = []
        self._events: list[Event | Callable[[], Event | None]] = []
        self._send_scheduled = False
        self.open_runs: dict[str, RunRecord] = {}
        self.suspended = False  # abandoned (a simulated crash / shutdown): write nothing more

    # --- state runs ---------------------------------------------------------------------------------

    def begin(
        self,
        state_name: str,
        state_type: str,
        raw_input: Any,
        *,
        parent_id: str = "",
        branch: int | None = None,
        item: int | None = None,
        status: str = "running",
        invocation_id: str = "",
    ) -> RunRecord:
        """A new state run row (buffered: `commit` writes it)."""
        run = RunRecord(
            id=new_id(),
            seq=self._next_seq(),
            state_name=state_name,
            state_type=state_type,
            input=raw_input,
            started_at=utcnow(),
            parent_id=parent_id,
            branch=branch,
            item=item,
            status=status,
            invocation_id=invocation_id,
        )
        row = {
            "id": run.id,
            "execution_id": self.execution_id,
            "parent_id": parent_id,
            "branch": branch,
            "item": item,
            "seq": run.seq,
            "state_name": state_name,
            "state_type": state_type,
            "status": status,
            "attempt": 1,
            "input": raw_input,
            "invocation_id": invocation_id,
            "started_at": run.started_at,
        }
        self._buffer(Insert(WorkflowStateRun, [row]), self._run_event(run))
        self.open_runs[run.id] = run
        return run

    def resume(self, run: RunRecord, *, raw_input: Any, restart_clock: bool, invocation_id: str = "") -> None:
        """Run an existing row again (after a restart, or a paused state going on): status running,
        the same row. A Wait keeps its start time (it resumes with the time it had left)."""
        run.status, run.input = "running", raw_input
        values: dict[str, Any] = {"status": "running", "input": raw_input, "finished_at": None}
        if restart_clock:
            run.started_at = utcnow()
            values["started_at"] = run.started_at
        if invocation_id:
            run.invocation_id = values["invocation_id"] = invocation_id
        self._buffer(Update(WorkflowStateRun, run.id, values), self._run_event(run))
        self.open_runs[run.id] = run

    def update(self, run: RunRecord, **values: Any) -> None:
        """Change a running row (retrying, a new attempt's invocation id ...)."""
        if "status" in values:
            run.status = values["status"]
        if "attempt" in values:
            run.attempt = values["attempt"]
        if "invocation_id" in values:
            run.invocation_id = values["invocation_id"]
        self._buffer(Update(WorkflowStateRun, run.id, values), self._run_event(run))

    def finish(
        self,
        run: RunRecord,
        status: str,
        *,
        output: Any = None,
        error: str = "",
        cause: str = "",
        next_state: str = "",
    ) -> None:
        run.status = status
        self.open_runs.pop(run.id, None)
        values = {
            "status": status,
            "output": output,
            "error": error[:256],
            "cause": cause,
            "next_state": next_state,
            "finished_at": utcnow(),
        }
        self._buffer(Update(WorkflowStateRun, run.id, values), self._run_event(run))

    # --- the execution row ----------------------------------------------------------------------------

    def execution(self, values: dict[str, Any], *, statuses: tuple[str, ...] = ACTIVE) -> _ExecutionWrite:
        """Update the execution row if its status is one of `statuses`; ExecutionChanged follows the
        commit only when the row was updated. Returns the write (its `applied` says whether it was)."""
        write = _ExecutionWrite(self.execution_id, values, statuses)
        status = values.get("status")
        current = values.get("current_state", "")

        def event() -> Event | None:
            if not write.applied or not write.applied[-1]:
                return None
            return ExecutionChanged(
                execution_id=self.execution_id,
                workflow_id=self.workflow_id,
                status=status or "running",
                current_state=current,
            )

        self._buffer(write, event)
        return write

    def close_open_runs(self) -> None:
        """Every open run of the execution ends as cancelled (an end, a timeout, a cancel)."""
        now = utcnow()
        for run in list(self.open_runs.values()):
            run.status = "cancelled"
            self._events.append(self._run_event(run))
        self.open_runs.clear()
        self._ops.append(_CloseOpenRuns(self.execution_id, now))

    def close_stale_runs(self, keep: str = "") -> None:
        """Runs an earlier driver left open (a dead node's, or a Parallel's branches that will run
        again as a whole) end as cancelled, but `keep`, which goes on in place."""
        self._buffer(_CloseOpenRuns(self.execution_id, utcnow(), keep), None)

    # --- writing ------------------------------------------------------------------------------------

    async def commit(self) -> None:
        """Write everything buffered now (one transaction) and return once it is committed."""
        if self.suspended:
            raise asyncio.CancelledError()
        ops, callback = self._take()
        if not ops:
            return
        committing = asyncio.ensure_future(self._batcher.commit(ops, on_commit=callback))
        await asyncio.sleep(0)  # let it queue, then ask the writer not to wait for more
        await self._batcher.flush()
        await committing

    def send(self) -> None:
        """Hand what is buffered to the writer without waiting for the commit."""
        self._send_scheduled = False
        if self.suspended:
            self._ops.clear()
            self._events.clear()
            return
        ops, callback = self._take()
        if ops:
            self._batcher.submit(ops, on_commit=callback)

    def _take(self) -> tuple[list[Op], Callable[[], None]]:
        ops, events = self._ops, self._events
        self._ops, self._events = [], []
        bus = self._bus

        def publish() -> None:
            for item in events:
                event = item() if callable(item) else item
                if event is not None:
                    bus.publish(event)

        return ops, publish

    def _buffer(self, op: Op, event: Event | Callable[[], Event | None] | None) -> None:
        if self.suspended:
            return
        self._ops.append(op)
        if event is not None:
            self._events.append(event)
        if not self._send_scheduled:
            self._send_scheduled = True
            asyncio.get_running_loop().call_soon(self._send_if_pending)

    def _send_if_pending(self) -> None:
        if self._send_scheduled:
            self.send()

    def _run_event(self, run: RunRecord) -> StateRunChanged:
        return StateRunChanged(
            execution_id=self.execution_id,
            state_run_id=run.id,
            state_name=run.state_name,
            status=run.status,
            parent_id=run.parent_id,
        )

    @property
    def runs(self) -> int:
        """State runs recorded so far (all of them, this node's and earlier ones)."""
        return self._seq

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq
