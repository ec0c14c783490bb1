"""How much a table holds, measured cheaply (shared by quotas and retention).

PostgreSQL reports a table's real size (`pg_total_relation_size`: rows, TOAST and indexes). SQLite's
`dbstat` is not always compiled in and walks every page when it is, so there a table's size is estimated:
its row count times the mean size of its newest rows (their variable-size columns, plus a fixed
per-row allowance for the other columns and the index entries). Each figure says how it was made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from data.models import DeadLetter, Invocation, InvocationAttempt, InvocationLog

SAMPLE_ROWS = 200


@dataclass(frozen=True, slots=True)
class SizedTable:
    """A table whose size is measured: its model, the variable-size columns a row's size mostly comes
    from, and the bytes each row costs besides them (fixed columns, index entries)."""

    model: Any
    payload: tuple[str, ...]
    overhead: int

    @property
    def name(self) -> str:
        return str(self.model.__tablename__)


@dataclass(frozen=True, slots=True)
class TableSize:
    rows: int
    bytes: int
    method: str  # how `bytes` was made, in words

    def __add__(self, other: TableSize) -> TableSize:
        methods = [m for m in (self.method, other.method) if m]
        method = "; ".join(dict.fromkeys(methods))  # each way of measuring named once
        return TableSize(self.rows + other.rows, self.bytes + other.bytes, method)


EMPTY = TableSize(0, 0, "")

# The tables invocations fill, with what their rows' size mostly comes from.
INVOCATION_LOGS = SizedTable(InvocationLog, ("message",), overhead=120)
INVOCATIONS = SizedTable(
    Invocation, ("input", "output", "error_message", "error_stack", "error_type"), overhead=420
)
ATTEMPTS = SizedTable(InvocationAttempt, ("error_message", "error_type"), overhead=160)
DEAD_LETTERS = SizedTable(DeadLetter, ("payload", "error", "attempts"), overhead=220)


async def measure(session: AsyncSession, table: SizedTable) -> TableSize:
    """Rows and bytes of `table` (exact count; size as the module docstring says)."""
    model = table.model
    rows = int((await session.execute(select(func.count()).select_from(model))).scalar_one())
    if session.get_bind().dialect.name == "postgresql":
        size = await session.execute(
            text("SELECT pg_total_relation_size(CAST(:name AS regclass))"), {"name": table.name}
        )
        return TableSize(rows, int(size.scalar_one() or 0), "PostgreSQL relation size (with indexes)")
    if rows == 0:
        return TableSize(0, 0, f"SQLite estimate: rows × mean size of the newest {SAMPLE_ROWS}")
    newest = (
        select(*(getattr(model, c) for c in table.payload))
        .order_by(model.id.desc())
        .limit(SAMPLE_ROWS)
        .subquery()
    )
    lengths = [func.coalesce(func.length(cast(newest.c[c], Text)), 0) for c in table.payload]
    total: Any = lengths[0]
    for length in lengths[1:]:
        total = total + length
    mean = (await session.execute(select(func.avg(total)))).scalar_one() or 0
    per_row = float(mean) + table.overhead
    return TableSize(
        rows, int(rows * per_row), f"SQLite estimate: rows × mean size of the newest {SAMPLE_ROWS}"
    )


async def oldest(session: AsyncSession, model: Any, column: str = "created_at") -> datetime | None:
    """The `column` of the table's first row by primary key (UUIDv7 ids: its oldest row)."""
    row = await session.execute(select(getattr(model, column)).order_by(model.id).limit(1))
    value = row.scalar_one_or_none()
    return value if isinstance(value, datetime) else None
