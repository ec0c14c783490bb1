"""Keyset (cursor) pagination: newest first by id, never OFFSET, so page N costs what page 1 does.

A cursor is opaque to clients: urlsafe base64 of a small JSON object holding the last item's id and,
for lists sorted by another column, that column's value. Ids are UUIDv7, so id order is creation order.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from engine.errors import Invalid

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAX_CURSOR_CHARS = 512  # a real cursor is < 150; anything far longer is not one of ours

Column = InstrumentedAttribute[Any] | ColumnElement[Any]


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None  # None on the last page


@dataclass(frozen=True, slots=True)
class Cursor:
    id: str
    key: Any = None  # the sort column's value of the last item, when sorted by one


def clamp_limit(limit: int | None) -> int:
    """Page size: default 20, at least 1, at most 100."""
    if limit is None:
        return DEFAULT_LIMIT
    return max(1, min(MAX_LIMIT, int(limit)))


def encode_cursor(last_id: str, key: Any = None) -> str:
    body: dict[str, Any] = {"i": last_id}
    if key is not None:
        body["k"] = {"t": key.isoformat()} if isinstance(key, datetime) else key
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    """The cursor's contents; `Invalid("cursor", ...)` for anything we did not make."""
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
        last_id = body["i"]
        if not isinstance(last_id, str) or not last_id or len(last_id) > 64:
            raise ValueError("bad id")
        key = body.get("k")
        if isinstance(key, dict):
            key = datetime.fromisoformat(key["t"])
        elif key is not None and not isinstance(key, str | int | float):
            raise ValueError("bad key")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise Invalid("cursor", "invalid cursor") from None
    return Cursor(last_id, key)


def keyset(
    stmt: Select[Any],
    id_column: Column,
    *,
    cursor: str | None = None,
    limit: int | None = None,
    sort_column: Column | None = None,
    ascending: bool = False,
) -> Select[Any]:
    """`stmt` narrowed to the page after `cursor`, newest first, fetching one row more than the page so
    the caller knows whether another page follows. With `sort_column` (NOT NULL), order by it, then id
    (descending, or `ascending`)."""
    size = clamp_limit(limit)
    if cursor:
        after = decode_cursor(cursor)
        if sort_column is None:
            stmt = stmt.where(id_column < after.id)
        elif after.key is None:
            raise Invalid("cursor", "invalid cursor")
        else:
            # Row-value comparison: one index range scan on (sort_column, id).
            row, last = tuple_(sort_column, id_column), tuple_(after.key, after.id)
            stmt = stmt.where(row > last if ascending else row < last)
    if sort_column is None:
        order = [id_column.desc()]
    elif ascending:
        order = [sort_column.asc(), id_column.asc()]
    else:
        order = [sort_column.desc(), id_column.desc()]
    return stmt.order_by(None).order_by(*order).limit(size + 1)


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    id_column: Column,
    *,
    cursor: str | None = None,
    limit: int | None = None,
    sort_column: Column | None = None,
    ascending: bool = False,
) -> Page[Any]:
    """Run `stmt` (a select of one model, or of columns) as one page. Items are model instances for a
    select of one model, rows otherwise."""
    size = clamp_limit(limit)
    query = keyset(stmt, id_column, cursor=cursor, limit=size, sort_column=sort_column, ascending=ascending)
    result = await session.execute(query)
    single = len(query.column_descriptions) == 1
    items: list[Any] = list(result.scalars().all() if single else result.all())
    if len(items) <= size:
        return Page(items, None)
    items = items[:size]
    last = items[-1]
    key = getattr(last, _name(sort_column)) if sort_column is not None else None
    return Page(items, encode_cursor(str(getattr(last, _name(id_column))), key))


def _name(column: Column) -> str:
    return str(column.key)
