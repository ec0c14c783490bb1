"""The log viewer's reads: search across every function's log entries (newest first, keyset-paginated
by id), tail newer entries, and export a filtered set as a stream.

Cost is bounded by construction. Time ranges become id ranges (ids are UUIDv7, so the primary key is
also a time index). Filters no index serves (level, text) look at most `SCAN_LIMIT` entries per page:
a page that stopped there says so (`capped`), and its cursor continues the search further back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, select

from data.db import Database
from data.models import Invocation, InvocationLog
from data.repos.pagination import clamp_limit, decode_cursor, encode_cursor
from data.types import id_floor
from engine.errors import Invalid, NotFound
from engine.principal import Principal
from engine.services.functions import FunctionService

LEVELS = ("info", "error")
SCAN_LIMIT = 5_000  # entries examined per page when level or text filter what no index serves
MAX_TEXT_CHARS = 200
EXPORT_MAX_ENTRIES = 100_000
EXPORT_MAX_SCAN = 1_000_000  # entries examined by one export, matching or not
EXPORT_MAX_BYTES = 256 * 1024 * 1024
_EXPORT_BATCH = 500

ExportFormat = Literal["txt", "jsonl"]


@dataclass(frozen=True, slots=True)
class LogFilters:
    function: str | None = None  # name or id
    level: str | None = None  # info | error
    text: str | None = None  # case-insensitive substring of the message
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: str
    created_at: datetime
    function_id: str
    function_name: str
    invocation_id: str
    attempt: int
    level: str
    message: str
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "function_id": self.function_id,
            "function_name": self.function_name,
            "invocation_id": self.invocation_id,
            "attempt": self.attempt,
            "level": self.level,
            "message": self.message,
            "truncated": self.truncated,
        }

    def to_text(self) -> str:
        """One entry as text: a header line, then the message indented (it may span many lines)."""
        stamp = self.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        head = f"{stamp} {self.level.upper():<5} {self.function_name or self.function_id} "
        head += f"{self.invocation_id}#{self.attempt}"
        body = "".join(f"    {line}\n" for line in self.message.splitlines())
        return f"{head}\n{body}"


@dataclass(slots=True)
class LogPage:
    items: list[LogEntry] = field(default_factory=list)
    next_cursor: str | None = None  # older entries; None when there are none
    scanned: int = 0  # entries examined for this page (0: an index served every filter)
    scan_limit: int = SCAN_LIMIT
    capped: bool = False  # the page stopped at scan_limit: older matches may follow next_cursor
    function_id: str | None = None  # the function filter, resolved to its id


@dataclass(slots=True)
class LogTail:
    items: list[LogEntry]  # oldest first
    after: str  # pass back as `after` to continue


@dataclass(frozen=True, slots=True)
class _Query:
    function_id: str | None
    level: str | None
    text: str | None
    since: datetime | None
    until: datetime | None

    @property
    def needs_scan(self) -> bool:
        return bool(self.level or self.text)

    def window(self) -> list[ColumnElement[bool]]:
        """Conditions an index serves: function and time range (as an id range)."""
        conds: list[ColumnElement[bool]] = []
        if self.function_id:
            conds.append(InvocationLog.function_id == self.function_id)
        if self.since:
            conds += [InvocationLog.id >= id_floor(self.since), InvocationLog.created_at >= self.since]
        if self.until:
            conds += [
                InvocationLog.id < id_floor(self.until + timedelta(milliseconds=1)),
                InvocationLog.created_at < self.until,
            ]
        return conds

    def filters(self) -> list[ColumnElement[bool]]:
        """Conditions checked row by row, inside a bounded window."""
        conds: list[ColumnElement[bool]] = []
        if self.level:
            conds.append(InvocationLog.level == self.level)
        if self.text:
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(InvocationLog.message.ilike(f"%{escaped}%", escape="\\"))  # type: ignore[attr-defined]
        return conds


class LogService:
    def __init__(self, db: Database, functions: FunctionService) -> None:
        self._db = db
        self._functions = functions

    async def search(
        self,
        principal: Principal,
        *,
        function: str | None = None,
        level: str | None = None,
        text: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> LogPage:
        """Log entries of every function (or one), newest first. With a level or text filter, at most
        `SCAN_LIMIT` entries are examined; a page that stopped there has `capped` set."""
        query = await self._query(principal, LogFilters(function, level, text, since, until))
        before = decode_cursor(cursor).id if cursor else None
        page = await self._page(query, before, clamp_limit(limit), SCAN_LIMIT)
        page.function_id = query.function_id
        return page

    async def tail(
        self,
        principal: Principal,
        *,
        after: str,
        function: str | None = None,
        level: str | None = None,
        text: str | None = None,
        limit: int = 100,
    ) -> LogTail:
        """Entries newer than the entry `after` (an id), oldest first: what a live view missed."""
        query = await self._query(principal, LogFilters(function, level, text))
        size = clamp_limit(limit)
        scan = SCAN_LIMIT if query.needs_scan else size
        window = (
            select(InvocationLog.id)
            .where(*query.window(), InvocationLog.id > after)
            .order_by(InvocationLog.id)
            .limit(scan)
            .subquery()
        )
        async with self._db.session() as session:
            count, last = (
                await session.execute(select(func.count(), func.max(window.c.id)).select_from(window))
            ).one()
            if not count:
                return LogTail([], after)
            stmt = (
                _entries()
                .where(*query.window(), *query.filters(), InvocationLog.id > after, InvocationLog.id <= last)
                .order_by(InvocationLog.id)
                .limit(size)
            )
            items = [_entry(row) for row in (await session.execute(stmt)).all()]
        if len(items) == size:
            last = items[-1].id
        return LogTail(items, str(last))

    async def export(
        self, principal: Principal, filters: LogFilters, fmt: ExportFormat = "txt"
    ) -> AsyncIterator[bytes]:
        """The filtered entries, newest first, as chunks of text or JSON lines: at most
        `EXPORT_MAX_ENTRIES` entries, `EXPORT_MAX_SCAN` examined and `EXPORT_MAX_BYTES` written; a cut
        export ends with a line saying so. Validates before the first chunk."""
        if fmt not in ("txt", "jsonl"):
            raise Invalid("format", "format must be txt or jsonl")
        query = await self._query(principal, filters)
        return self._export(query, fmt)

    async def _export(self, query: _Query, fmt: ExportFormat) -> AsyncIterator[bytes]:
        before: str | None = None
        written = scanned = size = 0
        reason = ""
        while True:
            page = await self._page(query, before, _EXPORT_BATCH, SCAN_LIMIT)
            scanned += page.scanned
            lines = [
                (json.dumps(e.to_dict(), ensure_ascii=False) + "\n") if fmt == "jsonl" else e.to_text()
                for e in page.items[: EXPORT_MAX_ENTRIES - written]
            ]
            chunk = "".join(lines).encode()
            written += len(lines)
            size += len(chunk)
            if chunk:
                yield chunk
            before = decode_cursor(page.next_cursor).id if page.next_cursor else None
            if before is None:
                break
            if written >= EXPORT_MAX_ENTRIES:
                reason = f"stopped at {EXPORT_MAX_ENTRIES:,} entries"
            elif scanned >= EXPORT_MAX_SCAN:
                reason = f"stopped after examining {EXPORT_MAX_SCAN:,} entries"
            elif size >= EXPORT_MAX_BYTES:
                reason = f"stopped at {EXPORT_MAX_BYTES // (1024 * 1024)} MiB"
            if reason:
                break
        if reason:
            note = f"export truncated: {reason}; narrow the filters or the time range for the rest"
            if fmt == "jsonl":
                yield (json.dumps({"truncated": True, "exported": written, "note": note}) + "\n").encode()
            else:
                yield f"# {note}\n".encode()

    # --- helpers ----------------------------------------------------------------------------------

    async def _query(self, principal: Principal, filters: LogFilters) -> _Query:
        if filters.level and filters.level not in LEVELS:
            raise Invalid("level", f"level must be one of {', '.join(LEVELS)}")
        text = filters.text or None
        if text and len(text) > MAX_TEXT_CHARS:
            raise Invalid("text", f"search text is limited to {MAX_TEXT_CHARS} characters")
        if filters.since and filters.until and filters.until <= filters.since:
            raise Invalid("until", "the end of the time range must be after its start")
        function_id = await self.function_id(principal, filters.function) if filters.function else None
        return _Query(function_id, filters.level or None, text, filters.since, filters.until)

    async def function_id(self, principal: Principal, ref: str) -> str:
        """A function's id from its name or id; a deleted function's id still counts while it has
        log entries. `Invalid("function", ...)` for anything else."""
        try:
            return (await self._functions.get(principal, ref)).id
        except NotFound:
            pass
        async with self._db.session() as session:
            found = await session.execute(
                select(InvocationLog.id).where(InvocationLog.function_id == ref).limit(1)
            )
            if found.first() is not None:
                return ref
        raise Invalid("function", f"no function named {ref!r}")

    async def _page(self, query: _Query, before: str | None, size: int, scan_limit: int) -> LogPage:
        window = query.window() + ([InvocationLog.id < before] if before else [])
        async with self._db.session() as session:
            if not query.needs_scan:
                stmt = _entries().where(*window).order_by(InvocationLog.id.desc()).limit(size + 1)
                rows = [_entry(r) for r in (await session.execute(stmt)).all()]
                more = len(rows) > size
                items = rows[:size]
                return LogPage(items, encode_cursor(items[-1].id) if more else None, 0, scan_limit)
            ids = (
                select(InvocationLog.id)
                .where(*window)
                .order_by(InvocationLog.id.desc())
                .limit(scan_limit)
                .subquery()
            )
            scanned, oldest = (
                await session.execute(select(func.count(), func.min(ids.c.id)).select_from(ids))
            ).one()
            if not scanned:
                return LogPage([], None, 0, scan_limit)
            stmt = (
                _entries()
                .where(*window, *query.filters(), InvocationLog.id >= oldest)
                .order_by(InvocationLog.id.desc())
                .limit(size + 1)
            )
            rows = [_entry(r) for r in (await session.execute(stmt)).all()]
        if len(rows) > size:
            items = rows[:size]
            return LogPage(items, encode_cursor(items[-1].id), scanned, scan_limit)
        capped = scanned >= scan_limit
        return LogPage(rows, encode_cursor(oldest) if capped else None, scanned, scan_limit, capped)


def _entries() -> Select[Any]:
    """Log rows with their function's name (kept on the invocation, so it outlives the function)."""
    return select(InvocationLog, Invocation.function_name).outerjoin(
        Invocation, Invocation.id == InvocationLog.invocation_id
    )


def _entry(row: Any) -> LogEntry:
    log, name = row
    return LogEntry(
        id=log.id,
        created_at=log.created_at,
        function_id=log.function_id,
        function_name=name or "",
        invocation_id=log.invocation_id,
        attempt=log.attempt,
        level=log.level,
        message=log.message,
        truncated=log.truncated,
    )
