"""Writing many rows in one statement: multi-row UPSERT and UPDATE for the hot batched writes.

Why not executemany: on SQLite the driver runs an executemany one row at a time, and gives up the GIL
around every row's step. The single writer thread shares the GIL with a busy event loop, which holds it
for up to the switch interval (5 ms) before handing it back, so a 400-row executemany could take
seconds (measured: 3.9 ms per row behind a busy thread, against 51 us per row for the same rows as one
multi-row statement). One statement steps once. Plain INSERTs get the same from SQLAlchemy's
"insertmanyvalues" (the writer's engine turns it on); UPSERTs and UPDATEs by key are rendered here.
Other backends (asyncpg pipelines its executemany) use SQLAlchemy's executemany."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

# SQLite allows 32,766 variables in a statement (3.32+); stay well under it.
MAX_VARIABLES = 30_000


async def upsert_many(
    session: Any,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: tuple[str, ...],
    overwrite: tuple[str, ...] = (),
) -> None:
    """INSERT `rows` (all with the same columns); a row whose `key` exists already gets its `overwrite`
    columns from the new row (none: it is kept as it is)."""
    if not rows:
        return
    columns = tuple(rows[0])
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":  # PostgreSQL, the other backend
        stmt = postgresql.insert(table)
        if overwrite:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(key), set_={c: stmt.excluded[c] for c in overwrite}
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
        await session.execute(stmt, list(rows))
        return
    conflict = (
        f"DO UPDATE SET {', '.join(f'{_q(c)} = excluded.{_q(c)}' for c in overwrite)}"
        if overwrite
        else "DO NOTHING"
    )
    for chunk in _chunks(rows, len(columns)):
        sql = _upsert_sql(table.name, columns, len(chunk), key, conflict)
        await _driver_sql(session, sql, _flat(table, dialect, columns, chunk))


async def update_many(session: Any, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE the row whose `key` column equals each row's `key` value, setting the row's other values
    (all rows with the same columns)."""
    if not rows:
        return
    columns = tuple(rows[0])
    values = tuple(c for c in columns if c != key)
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        stmt = (
            update(table)
            .where(table.c[key] == bindparam("_k"))
            .values({c: bindparam(f"_v_{c}") for c in values})
        )
        await session.execute(stmt, [{"_k": r[key], **{f"_v_{c}": r[c] for c in values}} for r in rows])
        return
    ordered = (key, *values)
    for chunk in _chunks(rows, len(ordered)):
        sql = _update_sql(table.name, key, values, len(chunk))
        await _driver_sql(session, sql, _flat(table, dialect, ordered, chunk))


# --- SQLite rendering -----------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _row_marks(width: int, count: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)


@lru_cache(maxsize=256)
def _upsert_sql(table: str, columns: tuple[str, ...], count: int, key: tuple[str, ...], conflict: str) -> str:
    return (
        f"INSERT INTO {_q(table)} ({', '.join(map(_q, columns))}) VALUES {_row_marks(len(columns), count)} "
        f"ON CONFLICT ({', '.join(map(_q, key))}) {conflict}"
    )


@lru_cache(maxsize=256)
def _update_sql(table: str, key: str, values: tuple[str, ...], count: int) -> str:
    # A VALUES table's columns are column1, column2, ...: column1 is the key, then `values` in order.
    sets = ", ".join(f"{_q(c)} = v.column{i}" for i, c in enumerate(values, start=2))
    return (
        f"UPDATE {_q(table)} SET {sets} FROM (VALUES {_row_marks(len(values) + 1, count)}) AS v "
        f"WHERE {_q(table)}.{_q(key)} = v.column1"
    )


def _chunks(rows: Sequence[dict[str, Any]], width: int) -> list[Sequence[dict[str, Any]]]:
    size = max(1, MAX_VARIABLES // max(1, width))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _flat(
    table: Table, dialect: Dialect, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]
) -> list[Any]:
    """The rows' values in statement order, through each column type's bind processor (the conversion
    SQLAlchemy would make: datetimes to text, JSON to text, booleans to integers)."""
    processors = _processors(table, dialect, columns)
    flat: list[Any] = []
    for row in rows:
        for column, process in zip(columns, processors, strict=True):
            value = row[column]
            flat.append(process(value) if process is not None else value)
    return flat


@lru_cache(maxsize=256)
def _processors(
    table: Table, dialect: Dialect, columns: tuple[str, ...]
) -> tuple[Callable[[Any], Any] | None, ...]:
    return tuple(table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns)


async def _driver_sql(session: Any, sql: str, params: list[Any]) -> None:
    driver = getattr(session, "exec_driver_sql", None)
    if driver is not None:  # the writer thread's synchronous session
        driver(sql, tuple(params))
        return
    connection = await session.connection()
    await connection.exec_driver_sql(sql, tuple(params))
