"""Durable workflow executions on this node: each active execution is an asyncio task driving a Machine;
leases say which node drives which execution, and a node that dies leaves its executions to whoever
claims them once their leases expire.

- Start: the service commits the execution row (pending, leased to this node) and calls `launch`.
- Resume: on start and every `lease_sec / 3`, this node renews the leases of what it runs and claims
  active executions whose lease expired (one conditional UPDATE per execution, the same on SQLite and
  PostgreSQL), then continues each from its last completed top-level state: the state that was running
  runs again (a Task is at-least-once; a Wait keeps its start time, so it waits only what it had left).
  A Parallel or Map that was running runs again as a whole.
- Paused executions are not driven by anyone; Continue/Step (the service) leases and launches them again.
- Stop: a clean shutdown releases the leases so the next start (or another node) resumes at once;
  `abandon` leaves them as a crash would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from data.batcher import Batcher
from data.db import Database
from data.models import WorkflowExecution, WorkflowStateRun
from data.types import new_id, utcnow
from engine.bus import LocalBus
from engine.events import Event, ExecutionChanged
from engine.invoke.invoker import Invoker
from engine.principal import SYSTEM
from engine.workflows.errors import StateError
from engine.workflows.journal import ACTIVE, Journal, RunRecord
from engine.workflows.machine import Debug, Machine, Paused, Start
from engine.workflows.model import RUNTIME, TIMEOUT, Definition, DefinitionError, parse_definition

log = logging.getLogger("nimbus.workflows")

TERMINAL = ("succeeded", "failed", "cancelled", "timeout")
_CLAIM_BATCH = 50
_IN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Finished:
    """The top level had already ended (its last state succeeded) when the execution was picked up."""

    output: Any


@dataclass(slots=True)
class Resumed(RunRecord):
    """A state run loaded from the database."""

    output: Any = None
    next_state: str = ""


def resume_point(
    definition: Definition, execution: WorkflowExecution, last: Resumed | None
) -> Start | Finished:
    """Where an execution goes on, from its last top-level state run:
    none -> the start state; succeeded/caught -> its next state with its output (or the end);
    running/retrying/paused -> that state again, in the same row; failed/cancelled (a redrive, or a
    timeout) -> that state again, in a new row."""
    if last is None:
        return Start(definition.start_at, execution.input)
    if last.status in ("succeeded", "caught"):
        if not last.next_state:
            return Finished(last.output)
        return Start(last.next_state, last.output)
    if last.status in ("running", "retrying", "paused"):
        return Start(last.state_name, last.input, reuse=last)
    return Start(last.state_name, last.input)


class Runner:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        batcher: Batcher,
        invoker: Invoker,
        *,
        node_id: str,
        lease_sec: float = 30.0,
    ) -> None:
        self._db = db
        self._bus = bus
        self._batcher = batcher
        self._invoker = invoker
        # One id per Platform instance: a restarted process (or a second platform in one process)
        # must wait for the old leases, never mistake them for its own.
        self.node_id = f"{node_id}/{new_id()[-8:]}"[:128]
        self.lease_sec = max(0.5, lease_sec)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._journals: dict[str, Journal] = {}
        self._machines: dict[str, Machine] = {}
        self._reasons: dict[str, str] = {}
        self._again: set[str] = set()  # launch again once the current task has ended
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- life cycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._lease_loop(), name="nimbus-workflow-leases")

    async def stop(self, *, release: bool = True) -> None:
        """Stop driving executions (they stay running in the database). `release`: let the next start
        or another node take them over now instead of after the lease."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        ids = list(self._tasks)
        for execution_id in ids:
            self._interrupt(execution_id, "stop" if release else "abandon")
        tasks = [self._tasks[i] for i in ids if i in self._tasks]
        if tasks:
            await asyncio.wait(tasks)
        if release:
            async with self._db.transaction() as session:
                await session.execute(
                    update(WorkflowExecution)
                    .where(WorkflowExecution.node_id == self.node_id, WorkflowExecution.status.in_(ACTIVE))
                    .values(lease_until=None)
                )

    async def abandon(self) -> None:
        """Stop as a killed process would: nothing more is written, the leases run out on their own."""
        await self.stop(release=False)

    # --- what the service calls -----------------------------------------------------------------------

    def launch(self, execution_id: str) -> None:
        """Drive the execution here (it is leased to this node)."""
        if self._stopping:
            return  # shutting down: the lease (released, or expiring) hands it to the next runner
        if execution_id in self._tasks:
            # Still finishing its previous run (a pause or a failure just committed, then Continue or
            # Redrive came): drive it again once that task is done; `_drive` reads the status first.
            self._again.add(execution_id)
            return
        task = asyncio.create_task(self._drive(execution_id), name=f"nimbus-execution-{execution_id}")
        self._tasks[execution_id] = task
        task.add_done_callback(lambda done: self._forget(execution_id, done))

    def is_running(self, execution_id: str) -> bool:
        return execution_id in self._tasks

    def cancel(self, execution_id: str) -> bool:
        """Stop the local task now (the caller has committed the execution's new status); its open state
        runs end as cancelled and an in-flight invocation is killed. False when not driven here."""
        return self._interrupt(execution_id, "cancel")

    def set_breakpoints(self, execution_id: str, states: Iterable[str]) -> None:
        machine = self._machines.get(execution_id)
        if machine is not None:
            machine.debug.breakpoints = set(states)

    def watch(self, execution_id: str) -> tuple[asyncio.Future[str], Any]:
        """A future set to the execution's status when it ends or pauses (from the bus, so it works for
        any node's events that reach this one), and the function that stops watching."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def heard(event: Event) -> None:
            assert isinstance(event, ExecutionChanged)
            ended = event.status in (*TERMINAL, "paused")
            if event.execution_id == execution_id and ended and not future.done():
                future.set_result(event.status)

        return future, self._bus.on(ExecutionChanged, callback=heard)

    # --- driving one execution ------------------------------------------------------------------------

    async def _drive(self, execution_id: str) -> None:
        async with self._db.session() as session:
            execution = await session.get(WorkflowExecution, execution_id)
            if execution is None or execution.status not in ACTIVE:
                return
            last_row = (
                await session.execute(
                    select(WorkflowStateRun)
                    .where(WorkflowStateRun.execution_id == execution_id, WorkflowStateRun.parent_id == "")
                    .order_by(WorkflowStateRun.seq.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            max_seq = (
                await session.execute(
                    select(func.max(WorkflowStateRun.seq)).where(
                        WorkflowStateRun.execution_id == execution_id
                    )
                )
            ).scalar_one_or_none()
        journal = Journal(
            self._batcher, self._bus, execution_id, execution.workflow_id, next_seq=int(max_seq or 0)
        )
        self._journals[execution_id] = journal
        try:
            definition = parse_definition(execution.definition)
        except DefinitionError as exc:
            await self._finish(journal, "failed", error=RUNTIME, cause=f"invalid definition: {exc}")
            return
        last = _record(last_row) if last_row is not None else None
        point = resume_point(definition, execution, last)
        if max_seq:
            journal.close_stale_runs(keep=point.reuse.id if isinstance(point, Start) and point.reuse else "")
        if isinstance(point, Finished):
            await self._finish(journal, "succeeded", output=point.output)
            return
        machine = Machine(
            journal=journal,
            invoker=self._invoker,
            principal=replace(SYSTEM, actor=f"workflow:{execution.workflow_name}"[:128]),
            context={
                "Execution": {
                    "Id": execution.id,
                    "Input": execution.input,
                    "Name": execution.name or execution.id,
                    "StartTime": (execution.started_at or execution.created_at).isoformat(),
                },
                "StateMachine": {"Id": execution.workflow_id, "Name": execution.workflow_name},
            },
            debug=Debug(
                set(execution.breakpoints or ()), execution.skip_breakpoint_once, execution.step_mode
            ),
        )
        self._machines[execution_id] = machine
        loop = asyncio.get_running_loop()
        deadline = None
        if execution.timeout_at is not None:
            deadline = loop.time() + (execution.timeout_at - utcnow()).total_seconds()
        timer = asyncio.timeout_at(deadline)
        try:
            async with timer:
                output = await machine.run(definition, point)
        except Paused:
            return
        except StateError as err:
            await self._finish(journal, "failed", error=err.error, cause=err.cause)
        except TimeoutError:
            if not timer.expired():
                log.exception("execution %s failed unexpectedly", execution_id)
                await self._finish(journal, "failed", error=RUNTIME, cause="an internal timeout")
                return
            cause = (
                f"the execution ran longer than its timeout ({execution.timeout_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
            await self._finish(journal, "timeout", error=TIMEOUT, cause=cause)
        except asyncio.CancelledError:
            if self._reasons.get(execution_id) != "cancel":
                raise
            journal.close_open_runs()  # the service has ended the execution; its rows follow
            journal.send()
        except Exception as exc:  # a bug must end the execution, not leave it running forever
            log.exception("execution %s failed unexpectedly", execution_id)
            await self._finish(journal, "failed", error=RUNTIME, cause=f"internal error: {exc}")
        else:
            await self._finish(journal, "succeeded", output=output)

    async def _finish(
        self, journal: Journal, status: str, *, output: Any = None, error: str = "", cause: str = ""
    ) -> None:
        journal.close_open_runs()
        journal.execution(
            {
                "status": status,
                "output": output,
                "error": error[:256],
                "cause": cause,
                "finished_at": utcnow(),
                "lease_until": None,
            }
        )
        await journal.commit()

    def _interrupt(self, execution_id: str, reason: str) -> bool:
        task = self._tasks.get(execution_id)
        if task is None:
            return False
        self._reasons[execution_id] = reason
        journal = self._journals.get(execution_id)
        if journal is not None and reason != "cancel":
            if reason == "stop":
                journal.send()  # a clean stop keeps the progress made so far
            journal.suspended = True  # leave the rows as they are, for whoever resumes
        task.cancel()
        return True

    def _forget(self, execution_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(execution_id) is task:
            del self._tasks[execution_id]
        self._journals.pop(execution_id, None)
        self._machines.pop(execution_id, None)
        reason = self._reasons.pop(execution_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("the runner of execution %s crashed", execution_id, exc_info=task.exception())
        if execution_id in self._again:
            self._again.discard(execution_id)
            if reason is None and not self._stopping:
                self.launch(execution_id)

    # --- leases ---------------------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        interval = max(0.2, min(10.0, self.lease_sec / 3))
        while True:
            try:
                await self.tend()
            except Exception:
                log.warning("renewing or claiming workflow executions failed", exc_info=True)
            await asyncio.sleep(interval)

    async def tend(self) -> list[str]:
        """Renew this node's leases, let go of executions it no longer owns, claim expired ones (and
        launch them). Returns the ids claimed."""
        now = utcnow()
        until = now + timedelta(seconds=self.lease_sec)
        local = list(self._tasks)
        for chunk in _chunks(local):
            async with self._db.transaction() as session:
                await session.execute(
                    update(WorkflowExecution)
                    .where(
                        WorkflowExecution.id.in_(chunk),
                        WorkflowExecution.node_id == self.node_id,
                        WorkflowExecution.status.in_(ACTIVE),
                    )
                    .values(lease_until=until)
                )
            async with self._db.session() as session:
                rows = (
                    await session.execute(
                        select(
                            WorkflowExecution.id,
                            WorkflowExecution.status,
                            WorkflowExecution.node_id,
                            WorkflowExecution.breakpoints,
                        ).where(WorkflowExecution.id.in_(chunk))
                    )
                ).all()
            seen = set()
            for execution_id, status, node_id, breakpoints in rows:
                seen.add(execution_id)
                if status not in ACTIVE or node_id != self.node_id:
                    self._interrupt(execution_id, "lost")  # cancelled or taken over elsewhere
                else:
                    self.set_breakpoints(execution_id, breakpoints or ())
            for execution_id in set(chunk) - seen:  # deleted with its workflow
                self._interrupt(execution_id, "lost")
        return await self._claim(now, until)

    async def _claim(self, now: Any, until: Any) -> list[str]:
        expired = or_(WorkflowExecution.lease_until.is_(None), WorkflowExecution.lease_until < now)
        async with self._db.session() as session:
            candidates = (
                (
                    await session.execute(
                        select(WorkflowExecution.id)
                        .where(WorkflowExecution.status.in_(ACTIVE), expired)
                        .order_by(WorkflowExecution.id)
                        .limit(_CLAIM_BATCH)
                    )
                )
                .scalars()
                .all()
            )
        claimed: list[str] = []
        for execution_id in candidates:
            if execution_id in self._tasks:
                continue
            async with self._db.transaction() as session:
                result = await session.execute(
                    update(WorkflowExecution)
                    .where(
                        WorkflowExecution.id == execution_id, WorkflowExecution.status.in_(ACTIVE), expired
                    )
                    .values(node_id=self.node_id, lease_until=until)
                )
            if result.rowcount == 1:
                claimed.append(execution_id)
                log.info("resuming workflow execution %s on %s", execution_id, self.node_id)
                self.launch(execution_id)
        return claimed


def _record(row: WorkflowStateRun) -> Resumed:
    return Resumed(
        id=row.id,
        seq=row.seq,
        state_name=row.state_name,
        state_type=row.state_type,
        input=row.input,
        started_at=row.started_at,
        parent_id=row.parent_id,
        branch=row.branch,
        item=row.item,
        attempt=row.attempt,
        status=row.status,
        invocation_id=row.invocation_id,
        output=row.output,
        next_state=row.next_state,
    )


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), _IN_CHUNK):
        yield ids[i : i + _IN_CHUNK]
