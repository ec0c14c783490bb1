"""Reading invocations and their logs, and replaying one. Lists are keyset-paginated by id
(UUIDv7, so newest first) and every filter is backed by an index."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from data.db import Database
from data.models import Invocation, InvocationAttempt, InvocationLog
from data.repos.pagination import Page, paginate
from data.types import id_floor
from engine.bus import LocalBus
from engine.errors import Invalid, NotFound
from engine.events import InvocationLogged
from engine.invoke.catalog import Catalog
from engine.invoke.invoker import Invoker, Outcome
from engine.invoke.records import load_body
from engine.principal import Principal
from engine.services.audit import AuditService

STATUSES = ("pending", "running", "success", "failed", "timeout")


@dataclass(frozen=True, slots=True)
class InvocationDetail:
    invocation: Invocation
    input: Any
    output: Any
    logs: str
    attempts: list[InvocationAttempt]


class InvocationService:
    def __init__(
        self, db: Database, bus: LocalBus, audit: AuditService, invoker: Invoker, catalog: Catalog
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._invoker = invoker
        self._catalog = catalog

    async def list(
        self,
        principal: Principal,
        *,
        function: str | None = None,
        status: str | None = None,
        source: str | None = None,
        environment: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Invocation]:
        stmt = select(Invocation)
        if environment:  # by name, as recorded: the rows outlive a renamed or deleted environment
            stmt = stmt.where(Invocation.environment == environment)
        if function:
            fn_id = await self._function_id(function)
            stmt = stmt.where(Invocation.function_id == fn_id)
        if status:
            if status not in STATUSES:
                raise Invalid("status", f"status must be one of {', '.join(STATUSES)}")
            stmt = stmt.where(Invocation.status == status)
        if source:
            stmt = stmt.where(Invocation.source == source)
        # A time range is also an id range (UUIDv7): the primary key bounds the scan, the timestamp
        # keeps it exact.
        if since:
            stmt = stmt.where(Invocation.id >= id_floor(since), Invocation.created_at >= since)
        if until:
            bound = id_floor(until + timedelta(milliseconds=1))
            stmt = stmt.where(Invocation.id < bound, Invocation.created_at < until)
        async with self._db.session() as session:
            return await paginate(session, stmt, Invocation.id, cursor=cursor, limit=limit)

    async def get(self, principal: Principal, invocation_id: str) -> InvocationDetail:
        async with self._db.session() as session:
            inv = await session.get(Invocation, invocation_id)
            if inv is None:
                raise NotFound(f"invocation not found: {invocation_id}")
            logs = (
                (
                    await session.execute(
                        select(InvocationLog)
                        .where(InvocationLog.invocation_id == inv.id)
                        .order_by(InvocationLog.id)
                    )
                )
                .scalars()
                .all()
            )
            attempts = (
                (
                    await session.execute(
                        select(InvocationAttempt)
                        .where(InvocationAttempt.invocation_id == inv.id)
                        .order_by(InvocationAttempt.attempt)
                    )
                )
                .scalars()
                .all()
            )
        text = "".join(
            row.message if len(logs) == 1 else f"--- attempt {row.attempt} ---\n{row.message}" for row in logs
        )
        return InvocationDetail(
            inv,
            load_body(inv.input, inv.input_ref),
            load_body(inv.output, inv.output_ref),
            text,
            list(attempts),
        )

    async def replay(self, principal: Principal, invocation_id: str, source: str = "api") -> Outcome:
        detail = await self.get(principal, invocation_id)
        inv = detail.invocation
        outcome = await self._invoker.invoke(  # in the environment it first ran in (None: the default)
            principal,
            inv.function_id,
            detail.input,
            source=source,
            environment=inv.environment,
            replay_of=inv.id,
        )
        async with self._db.transaction() as session:
            self._audit.record(
                session,
                principal,
                "invocation.replay",
                resource_type="invocation",
                resource_id=inv.id,
                resource_name=inv.function_name,
                details={"new_request_id": outcome.request_id},
            )
        return outcome

    async def logs(
        self,
        principal: Principal,
        function: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        after: str | None = None,
        wait_sec: float = 0.0,
    ) -> Page[InvocationLog]:
        """A function's log entries, newest first; with `after`, only newer entries, oldest first, and
        when there are none yet, wait up to `wait_sec` for the bus to announce one (long poll)."""
        fn_id = await self._function_id(function)
        if after is None:
            stmt = select(InvocationLog).where(InvocationLog.function_id == fn_id)
            async with self._db.session() as session:
                return await paginate(session, stmt, InvocationLog.id, cursor=cursor, limit=limit)
        with self._bus.subscribe(InvocationLogged) as sub:
            rows = await self._logs_after(fn_id, after, limit or 100)
            if not rows and wait_sec > 0:
                with contextlib.suppress(TimeoutError):
                    await sub.wait_for(
                        lambda e: isinstance(e, InvocationLogged) and e.function_id == fn_id, timeout=wait_sec
                    )
                    rows = await self._logs_after(fn_id, after, limit or 100)
        return Page(items=rows, next_cursor=None)

    async def _logs_after(self, fn_id: str, after: str, limit: int) -> list[InvocationLog]:
        async with self._db.session() as session:
            rows = await session.execute(
                select(InvocationLog)
                .where(InvocationLog.function_id == fn_id, InvocationLog.id > after)
                .order_by(InvocationLog.id)
                .limit(min(limit, 100))
            )
            return list(rows.scalars())

    async def _function_id(self, ref: str) -> str:
        try:
            return (await self._catalog.resolve(ref)).function.id
        except NotFound:
            return ref  # a deleted function's records are still addressable by its id
