"""Reading the audit trail: the filters (action, actor, target, time range) as one query, and the export
of a filtered set as CSV or JSON, streamed in keyset-paged chunks so 100k events cost constant memory.

Time ranges become id ranges (ids are UUIDv7, time-ordered), so a range is a primary-key scan."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, Text, cast, or_, select

from data.db import Database
from data.models import AuditEvent
from data.types import id_floor
from engine.errors import Invalid

ExportFormat = Literal["csv", "json"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "json")
EXPORT_BATCH = 1000  # rows per query while exporting
CSV_COLUMNS = (
    "id",
    "created_at",
    "action",
    "actor",
    "actor_type",
    "actor_ip",
    "resource_type",
    "resource_id",
    "resource_name",
    "before",
    "after",
    "details",
)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    action: str | None = None
    actor: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    target: str | None = None  # a resource's id or name
    since: datetime | None = None
    until: datetime | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


def audit_query(filters: AuditFilters) -> Select[Any]:
    """The events matching `filters` (unordered: the pager orders by id)."""
    f = filters
    if f.since and f.until and f.until <= f.since:
        raise Invalid("until", "the end of the time range is before its start")
    stmt = select(AuditEvent)
    if f.action:
        stmt = stmt.where(AuditEvent.action == f.action)
    if f.actor:
        stmt = stmt.where(AuditEvent.actor == f.actor)
    if f.resource_type:
        stmt = stmt.where(AuditEvent.resource_type == f.resource_type)
    if f.resource_id:
        stmt = stmt.where(AuditEvent.resource_id == f.resource_id)
    if f.target:
        stmt = stmt.where(or_(AuditEvent.resource_id == f.target, AuditEvent.resource_name == f.target))
    if f.since:
        stmt = stmt.where(AuditEvent.id >= id_floor(f.since), AuditEvent.created_at >= f.since)
    if f.until:
        end = id_floor(f.until + timedelta(milliseconds=1))  # ids hold milliseconds: the next one's floor
        stmt = stmt.where(AuditEvent.id < end, AuditEvent.created_at < f.until)
    return stmt


def event_dict(e: AuditEvent) -> dict[str, Any]:
    """One event as the API, the JSON export and the console show it."""
    return {
        "id": e.id,
        "action": e.action,
        "resource_type": e.resource_type,
        "resource_id": e.resource_id,
        "resource_name": e.resource_name,
        "actor": e.actor,
        "actor_type": e.actor_type,
        "actor_ip": e.actor_ip,
        "before": e.before,
        "after": e.after,
        "details": e.details,
        "created_at": e.created_at.isoformat(),
    }


# The export reads plain columns, with before/after/details as their stored JSON text: no ORM objects
# and no decode/encode round trip per event.
_EXPORT_COLUMNS = (
    AuditEvent.id,
    AuditEvent.created_at,
    AuditEvent.action,
    AuditEvent.actor,
    AuditEvent.actor_type,
    AuditEvent.actor_ip,
    AuditEvent.resource_type,
    AuditEvent.resource_id,
    AuditEvent.resource_name,
    cast(AuditEvent.before, Text),
    cast(AuditEvent.after, Text),
    cast(AuditEvent.details, Text),
)
_JSON_KEYS = tuple(f'"{name}": ' for name in CSV_COLUMNS)


async def export_events(db: Database, filters: AuditFilters, fmt: ExportFormat) -> AsyncIterator[bytes]:
    """Every matching event, newest first, as CSV (a header row, JSON text in the before/after/details
    cells) or one JSON array; one query and one chunk per `EXPORT_BATCH` events."""
    where = audit_query(filters).whereclause
    base = select(*_EXPORT_COLUMNS)
    if where is not None:
        base = base.where(where)
    yield _csv_lines([CSV_COLUMNS]) if fmt == "csv" else b"["
    last_id: str | None = None
    first = True
    while True:
        stmt = base.order_by(AuditEvent.id.desc()).limit(EXPORT_BATCH)
        if last_id is not None:
            stmt = stmt.where(AuditEvent.id < last_id)
        async with db.session() as session:
            rows = [_cells(row) for row in (await session.execute(stmt)).all()]
        if not rows:
            break
        if fmt == "csv":
            yield _csv_lines(rows)
        else:
            objects = ",\n".join(_json_object(row) for row in rows)
            yield (("\n" if first else ",\n") + objects).encode()
            first = False
        if len(rows) < EXPORT_BATCH:
            break
        last_id = rows[-1][0]
    if fmt == "json":
        yield b"]\n" if first else b"\n]\n"


def _cells(row: Any) -> tuple[str, ...]:
    """A row as text cells: JSON columns as their JSON text ("" when absent)."""
    *plain, before, after, details = row
    plain[1] = plain[1].isoformat()
    return (*(str(v) for v in plain), *(_json_text(v) for v in (before, after, details)))


def _json_text(value: Any) -> str:
    if value is None or value == "null":
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _json_object(cells: tuple[str, ...]) -> str:
    """One event as a JSON object: the plain cells encoded once, the JSON cells spliced in as stored."""
    plain = json.dumps(dict(zip(CSV_COLUMNS[:9], cells[:9], strict=True)), ensure_ascii=False)
    raw = ", ".join(key + (cell or "null") for key, cell in zip(_JSON_KEYS[9:], cells[9:], strict=True))
    return f"{plain[:-1]}, {raw}}}"


def _csv_lines(rows: Iterable[tuple[str, ...]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([_safe(v) for v in row] for row in rows)
    return buffer.getvalue().encode()


def _safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection): a leading = + - @ gets a quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
