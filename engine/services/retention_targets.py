"""What retention may delete: one `Target` per kind of data (invocations with their attempts and logs,
logs on their own, settled DLQ messages, finished workflow executions with their state runs, webhook call
history, kept as long as logs), and the
bounded batch statements that find and delete its expired rows.

A row's age is its UUIDv7 primary key (time-ordered, stamped at creation): `id < id_floor(cutoff)` is a
primary-key range scan, and `created_at < cutoff` double-checks it, so nothing newer than the policy is
ever deleted and no extra index is needed. Children go first, in the same transaction as their parent.
Adding a kind of data is `RetentionService.register(Target(...))` with a policy setting for its days."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from data.models import (
    DeadLetter,
    Invocation,
    InvocationAttempt,
    InvocationLog,
    WebhookCall,
    WorkflowExecution,
    WorkflowStateRun,
)
from data.types import id_floor
from engine.services.storage_usage import DEAD_LETTERS, INVOCATION_LOGS, INVOCATIONS, SizedTable


@dataclass(frozen=True, slots=True)
class Child:
    """Rows of another table that belong to a target's row (deleted with it)."""

    name: str  # its key in a run's `deleted` counts
    model: Any
    parent_column: str  # the column holding the parent's id


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # invocations | logs | dlq | workflow_executions | webhook_calls
    label: str
    days_key: str  # the policy setting giving its retention in days
    model: Any  # a table with a UUIDv7 `id` and a `created_at`
    size: SizedTable
    children: tuple[Child, ...] = ()
    # Rows never deleted, however old (still running, awaiting a decision): best an indexed condition.
    kept: Callable[[], ColumnElement[bool]] | None = None
    spills_bodies: bool = False  # invocation inputs/outputs spilled to files (deleted with the row)
    note: str = ""  # what is kept, in words

    def expired(self, cutoff: datetime) -> list[ColumnElement[bool]]:
        m = self.model
        clauses: list[ColumnElement[bool]] = [m.id < id_floor(cutoff), m.created_at < cutoff]
        if self.kept is not None:
            clauses.append(not_(self.kept()))
        return clauses

    async def count_expired(self, session: AsyncSession, cutoff: datetime) -> int:
        stmt = select(func.count()).select_from(self.model).where(*self.expired(cutoff))
        return int((await session.execute(stmt)).scalar_one())

    async def delete_batch(
        self, session: AsyncSession | AsyncConnection, cutoff: datetime, size: int, *, files: bool = False
    ) -> tuple[dict[str, int], list[str]]:
        """Delete up to `size` expired rows (the oldest) and their children in the caller's
        transaction: ({kind: rows deleted}, spilled body files to remove once committed; looked for
        only when `files`). On SQLite the caller takes the write lock first, so what is read here stays
        true until the deletes.

        The batch is "expired, and id <= the size-th expired id": ranges the database walks itself (no
        id list through Python, whose binding would cost the event loop more than the deletes). Earlier
        batches took every expired row below, so a batch's children are those whose parent id is at
        most that bound, except the children of kept rows (few, found on an index)."""
        m = self.model
        clauses = self.expired(cutoff)
        last = select(m.id).where(*clauses).order_by(m.id).offset(size - 1).limit(1)
        bound = (await session.execute(last)).scalar_one_or_none()
        below = m.id <= bound if bound is not None else m.id < id_floor(cutoff)
        if bound is not None:  # else fewer than `size` remain: this batch takes them all
            clauses = [*clauses, below]
        found: list[str] = []
        if files and self.spills_bodies:
            refs = await session.execute(
                select(Invocation.input_ref, Invocation.output_ref).where(
                    *clauses, or_(Invocation.input_ref.is_not(None), Invocation.output_ref.is_not(None))
                )
            )
            found = [ref for pair in refs.tuples() for ref in pair if ref]
        counts = {child.name: 0 for child in self.children}
        if self.children:
            top = bound if bound is not None else id_floor(cutoff)
            keep = select(m.id).where(below, self.kept()) if self.kept is not None else None
            for child in self.children:
                column = getattr(child.model, child.parent_column)
                where = [column <= top] if bound is not None else [column < top]
                if keep is not None:
                    where.append(column.not_in(keep))
                counts[child.name] = _rowcount(await session.execute(delete(child.model).where(*where)))
        counts[self.name] = _rowcount(await session.execute(delete(m).where(*clauses)))
        return counts, found


def _rowcount(result: Any) -> int:
    return max(0, int(getattr(result, "rowcount", 0) or 0))


UNFINISHED_INVOCATION = ("pending", "running")  # never deleted: still queued or running
UNSETTLED_DLQ = ("pending", "retrying")  # messages waiting for a decision: never deleted
UNFINISHED_EXECUTION = ("pending", "running", "paused")


def builtin_targets() -> list[Target]:
    return [
        Target(
            "logs",
            "Invocation logs",
            "retention.logs_days",
            InvocationLog,
            INVOCATION_LOGS,
        ),
        Target(
            "invocations",
            "Invocation records",
            "retention.invocations_days",
            Invocation,
            INVOCATIONS,
            children=(
                Child("logs", InvocationLog, "invocation_id"),
                Child("attempts", InvocationAttempt, "invocation_id"),
            ),
            kept=lambda: Invocation.status.in_(UNFINISHED_INVOCATION),
            spills_bodies=True,
            note="with their attempts, logs and spilled bodies; queued or running ones are kept; "
            "dashboards read the per-minute rollups, which are kept",
        ),
        Target(
            "dlq",
            "DLQ messages",
            "retention.dlq_days",
            DeadLetter,
            DEAD_LETTERS,
            kept=lambda: DeadLetter.status.in_(UNSETTLED_DLQ),
            note="resolved or discarded ones; pending messages wait for a decision",
        ),
        Target(
            "workflow_executions",
            "Workflow executions",
            "retention.workflow_executions_days",
            WorkflowExecution,
            SizedTable(WorkflowExecution, ("definition", "input", "output", "cause"), overhead=300),
            children=(Child("state_runs", WorkflowStateRun, "execution_id"),),
            kept=lambda: WorkflowExecution.status.in_(UNFINISHED_EXECUTION),
            note="finished ones, with their state runs; running or paused ones are kept",
        ),
        Target(
            "webhook_calls",
            "Webhook calls",
            "retention.logs_days",  # a webhook's call history is a log of requests
            WebhookCall,
            SizedTable(WebhookCall, ("headers", "request_body", "response_body", "message"), overhead=300),
            note="every call's history row (accepted or refused), kept as long as logs",
        ),
    ]
