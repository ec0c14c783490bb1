"""Saved test events: named JSON payloads per function, for the console's Test tab. Anyone may read them;
developers and admins save (upsert by name) and delete them, audited in the same transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import Function, TestEvent
from data.types import utcnow
from engine.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from engine.principal import Principal
from engine.services.audit import AuditService

MAX_NAME = 64
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_PER_FUNCTION = 100  # keeps every list one small, bounded query


class TestEventService:
    __test__ = False  # not a pytest class

    def __init__(self, db: Database, audit: AuditService) -> None:
        self._db = db
        self._audit = audit

    async def list(self, principal: Principal, function: str) -> list[TestEvent]:
        """A function's saved events, by name."""
        async with self._db.session() as session:
            fn = await self._function(session, function)
            rows = await session.execute(
                select(TestEvent)
                .where(TestEvent.function_id == fn.id)
                .order_by(TestEvent.name)
                .limit(MAX_PER_FUNCTION)
            )
            return list(rows.scalars())

    async def save(self, principal: Principal, function: str, name: str, payload: Any) -> TestEvent:
        """Save `payload` under `name`, replacing an event of that name."""
        self._require_writer(principal)
        name = _check_name(name)
        _check_payload(payload)
        try:
            async with self._db.transaction() as session:
                fn = await self._function(session, function)
                row = await self._find(session, fn.id, name)
                before = None
                if row is None:
                    if await self._count(session, fn.id) >= MAX_PER_FUNCTION:
                        raise Invalid(
                            "name", f"a function keeps at most {MAX_PER_FUNCTION} test events; delete one"
                        )
                    row = TestEvent(function_id=fn.id, name=name, payload=payload)
                else:
                    before = {"payload": row.payload}
                    row.payload, row.updated_at = payload, utcnow()
                session.add(row)
                await session.flush()
                self._audit.record(
                    session,
                    principal,
                    "test_event.save",
                    resource_type="test_event",
                    resource_id=row.id,
                    resource_name=f"{fn.name}/{name}",
                    before=before,
                    after={"payload": payload},
                    details={"function_id": fn.id},
                )
        except IntegrityError as exc:  # a concurrent save of the same new name won
            message = f"test event {name!r} was just saved by someone else; try again"
            raise Conflict(message, field="name") from exc
        return row

    async def delete(self, principal: Principal, function: str, name: str) -> None:
        self._require_writer(principal)
        async with self._db.transaction() as session:
            fn = await self._function(session, function)
            row = await self._find(session, fn.id, name)
            if row is None:
                raise NotFound(f"test event not found: {name}")
            self._audit.record(
                session,
                principal,
                "test_event.delete",
                resource_type="test_event",
                resource_id=row.id,
                resource_name=f"{fn.name}/{name}",
                before={"payload": row.payload},
                details={"function_id": fn.id},
            )
            await session.delete(row)

    # --- helpers ----------------------------------------------------------------------------------

    def _require_writer(self, principal: Principal) -> None:
        if not principal.can("developer"):
            raise Forbidden("saving test events needs the developer or admin role")

    async def _function(self, session: AsyncSession, ref: str) -> Function:
        row = await session.execute(select(Function).where(or_(Function.id == ref, Function.name == ref)))
        fn = row.scalars().first()
        if fn is None:
            raise NotFound(f"function not found: {ref}")
        return fn

    async def _find(self, session: AsyncSession, function_id: str, name: str) -> TestEvent | None:
        row = await session.execute(
            select(TestEvent).where(TestEvent.function_id == function_id, TestEvent.name == name)
        )
        return row.scalars().first()

    async def _count(self, session: AsyncSession, function_id: str) -> int:
        rows = await session.execute(
            select(TestEvent.id).where(TestEvent.function_id == function_id).limit(MAX_PER_FUNCTION)
        )
        return len(rows.all())


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise Invalid("name", f"a test event needs a name of 1-{MAX_NAME} characters")
    return name


def _check_payload(payload: Any) -> None:
    try:
        text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise Invalid("payload", f"the payload must be JSON: {exc}") from None
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        message = f"the payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes"
        raise TooLarge(message, field="payload")
