"""The dead-letter queue: async invocations that failed every attempt. Users list, inspect, retry
(runs the function again with the original input, source "retry"), discard, delete and purge them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, Integer, String, delete, func, literal, select

from data.db import Database
from data.models import DeadLetter, Invocation
from data.repos.pagination import Page, paginate
from data.types import utcnow
from engine.bus import LocalBus
from engine.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from engine.events import DlqChanged
from engine.invoke.invoker import Invoker, Outcome
from engine.principal import Principal
from engine.services.audit import AuditService

STATUSES = ("pending", "retrying", "resolved", "discarded")


@dataclass(frozen=True, slots=True)
class RetryResult:
    message: DeadLetter
    outcome: Outcome | None
    error: str | None  # why the retry could not run (function gone, offline ...)


class DlqService:
    def __init__(self, db: Database, bus: LocalBus, audit: AuditService, invoker: Invoker) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._invoker = invoker

    async def list(
        self,
        principal: Principal,
        *,
        function_id: str | None = None,
        status: str | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[DeadLetter]:
        stmt = select(DeadLetter)
        if function_id:
            stmt = stmt.where(DeadLetter.function_id == function_id)
        if status:
            if status not in STATUSES:
                raise Invalid("status", f"status must be one of {', '.join(STATUSES)}")
            stmt = stmt.where(DeadLetter.status == status)
        if error_type:
            stmt = stmt.where(self._last_error_type() == error_type)
        if since and until and until <= since:
            raise Invalid("until", "until must be after since")
        if since:
            stmt = stmt.where(DeadLetter.created_at >= since)
        if until:
            stmt = stmt.where(DeadLetter.created_at < until)
        async with self._db.session() as session:
            return await paginate(session, stmt, DeadLetter.id, cursor=cursor, limit=limit)

    async def error_types(self, principal: Principal) -> list[str]:
        """The distinct error types (of each message's last attempt) in the queue, for a filter."""
        kind = self._last_error_type()
        stmt = select(kind).where(kind.is_not(None)).distinct().order_by(kind).limit(200)
        async with self._db.session() as session:
            return [str(t) for t in (await session.execute(stmt)).scalars().all() if t]

    def _last_error_type(self) -> ColumnElement[Any]:
        """The `type` of the last entry of `attempts` (JSON), in this database's dialect."""
        if self._db.is_sqlite:
            return func.json_extract(DeadLetter.attempts, "$[#-1].type")
        # PostgreSQL: json -> -1 is the last element (an expression on the column, so the table stays
        # in the FROM clause); typed literals keep the operators unambiguous.
        last = DeadLetter.attempts.op("->", return_type=JSON)(literal(-1, Integer))  # type: ignore[attr-defined]
        return last.op("->>", return_type=String)(literal("type", String))

    async def get(self, principal: Principal, message_id: str) -> DeadLetter:
        async with self._db.session() as session:
            row = await session.get(DeadLetter, message_id)
        if row is None:
            raise NotFound(f"DLQ message not found: {message_id}")
        return row

    async def stats(self, principal: Principal, function_id: str | None = None) -> dict[str, Any]:
        by_status = select(DeadLetter.status, func.count()).group_by(DeadLetter.status)
        by_function = (
            select(DeadLetter.function_id, DeadLetter.function_name, func.count())
            .where(DeadLetter.status.in_(("pending", "retrying")))
            .group_by(DeadLetter.function_id, DeadLetter.function_name)
            .order_by(func.count().desc())
            .limit(20)
        )
        if function_id:
            by_status = by_status.where(DeadLetter.function_id == function_id)
            by_function = by_function.where(DeadLetter.function_id == function_id)
        async with self._db.session() as session:
            counts = dict((await session.execute(by_status)).tuples().all())
            functions = (await session.execute(by_function)).tuples().all()
        return {
            "total": sum(counts.values()),
            "function_id": function_id,
            **{status: counts.get(status, 0) for status in STATUSES},
            "by_function": [
                {"function_id": fid, "function_name": name, "count": n} for fid, name, n in functions
            ],
        }

    async def retry(self, principal: Principal, message_id: str) -> RetryResult:
        self._require_writer(principal)
        async with self._db.transaction() as session:
            msg = await session.get(DeadLetter, message_id)
            if msg is None:
                raise NotFound(f"DLQ message not found: {message_id}")
            if msg.status in ("resolved", "discarded", "retrying"):
                raise BadRequest(f"message is {msg.status}; only pending messages can be retried")
            msg.status, msg.retry_count, msg.last_retry_at = "retrying", msg.retry_count + 1, utcnow()
            session.add(msg)
            # A retry runs where the original ran: the environment its invocation recorded.
            environment = (
                await session.execute(
                    select(Invocation.environment).where(Invocation.id == msg.original_request_id)
                )
            ).scalar_one_or_none()
            self._audit.record(
                session,
                principal,
                "dlq.retry",
                resource_type="dlq",
                resource_id=msg.id,
                resource_name=msg.function_name,
            )
        outcome: Outcome | None = None
        error: str | None = None
        try:
            outcome = await self._invoker.invoke(
                principal,
                msg.function_id,
                msg.payload,
                source="retry",
                replay_of=msg.original_request_id,
                environment=environment,
            )
        except (NotFound, BadRequest, Conflict) as exc:
            error = exc.message
        async with self._db.transaction() as session:
            row = await session.get(DeadLetter, message_id)
            if row is None:  # deleted meanwhile
                return RetryResult(msg, outcome, error)
            if outcome is not None and outcome.result.ok:
                row.status, row.resolved_at = "resolved", utcnow()
            else:
                row.status = "pending"
                failure = error or (
                    outcome.result.error.message if outcome and outcome.result.error else "failed"
                )
                row.error = failure
                row.attempts = [
                    *row.attempts,
                    {
                        "attempt": f"retry {row.retry_count}",
                        "message": failure,
                        "type": outcome.result.error.type
                        if outcome and outcome.result.error
                        else "RetryFailed",
                        "started_at": utcnow().isoformat(),
                    },
                ]
            session.add(row)
            self._notify(session, row)
        return RetryResult(row, outcome, error)

    async def discard(self, principal: Principal, message_id: str) -> DeadLetter:
        self._require_writer(principal)
        async with self._db.transaction() as session:
            msg = await session.get(DeadLetter, message_id)
            if msg is None:
                raise NotFound(f"DLQ message not found: {message_id}")
            if msg.status in ("resolved", "discarded"):
                raise BadRequest(f"message is already {msg.status}")
            msg.status, msg.resolved_at = "discarded", utcnow()
            session.add(msg)
            self._audit.record(
                session,
                principal,
                "dlq.discard",
                resource_type="dlq",
                resource_id=msg.id,
                resource_name=msg.function_name,
            )
            self._notify(session, msg)
        return msg

    async def delete(self, principal: Principal, message_id: str) -> None:
        self._require_writer(principal)
        async with self._db.transaction() as session:
            msg = await session.get(DeadLetter, message_id)
            if msg is None:
                raise NotFound(f"DLQ message not found: {message_id}")
            await session.delete(msg)
            self._audit.record(
                session,
                principal,
                "dlq.delete",
                resource_type="dlq",
                resource_id=msg.id,
                resource_name=msg.function_name,
            )
            msg.status = "deleted"
            self._notify(session, msg)

    async def purge(self, principal: Principal, function_id: str | None = None) -> int:
        self._require_writer(principal)
        stmt = delete(DeadLetter)
        if function_id:
            stmt = stmt.where(DeadLetter.function_id == function_id)
        async with self._db.transaction() as session:
            deleted = (await session.execute(stmt)).rowcount or 0
            self._audit.record(
                session,
                principal,
                "dlq.purge",
                resource_type="dlq",
                resource_id=function_id or "*",
                details={"deleted": deleted},
            )
            event = DlqChanged(message_id="*", function_id=function_id or "*", status="deleted")
            session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))
        return deleted

    def _notify(self, session: Any, msg: DeadLetter) -> None:
        event = DlqChanged(message_id=msg.id, function_id=msg.function_id, status=msg.status)
        session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))

    def _require_writer(self, principal: Principal) -> None:
        if not principal.can("developer"):
            raise Forbidden("changing the DLQ needs the developer or admin role")
