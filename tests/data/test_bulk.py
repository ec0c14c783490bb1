"""Many-row UPSERT and UPDATE in one statement (data/bulk.py), on every backend: the values land as
SQLAlchemy's own executemany would write them (datetimes, JSON, booleans, NULLs), through the writer
thread's session and through an AsyncSession, in chunks when there are many."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from data import bulk
from data.batcher import Batcher, Insert
from data.db import Database
from data.models import Invocation, InvocationAttempt
from data.types import new_id, utcnow

_inv = Invocation.__table__  # type: ignore[attr-defined]
_att = InvocationAttempt.__table__  # type: ignore[attr-defined]
KEY = ("invocation_id", "attempt")


def _invocation(**fields: object) -> dict[str, object]:
    return {"id": new_id(), "function_id": "fn", "function_name": "echo", "created_at": utcnow(), **fields}


async def _attempts(db: Database) -> list[tuple[object, ...]]:
    async with db.session() as session:
        rows = await session.execute(
            select(
                _att.c.invocation_id, _att.c.attempt, _att.c.status, _att.c.cold, _att.c.started_at
            ).order_by(_att.c.invocation_id, _att.c.attempt)
        )
        return [tuple(r) for r in rows]


@pytest.mark.parametrize("through", ["writer thread", "async session"])
async def test_upsert_many_inserts_keeps_or_overwrites_by_key(db: Database, through: str) -> None:
    started = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC)
    first = [
        {
            "id": new_id(),
            "invocation_id": f"inv-{n}",
            "attempt": 1,
            "status": "running",
            "cold": True,
            "started_at": started,
        }
        for n in range(3)
    ]
    batcher = Batcher(db, writer_thread=through == "writer thread")
    await batcher.start()
    try:
        await batcher.commit(lambda s: bulk.upsert_many(s, _att, first, key=KEY))
        again = [{**row, "id": new_id(), "status": "success", "cold": False} for row in first[:2]]
        await batcher.commit(lambda s: bulk.upsert_many(s, _att, again, key=KEY))  # kept as they are
        assert [r[2] for r in await _attempts(db)] == ["running"] * 3
        await batcher.commit(lambda s: bulk.upsert_many(s, _att, again, key=KEY, overwrite=("status",)))
    finally:
        await batcher.stop()
    assert await _attempts(db) == [
        ("inv-0", 1, "success", True, started),  # only `status` was overwritten
        ("inv-1", 1, "success", True, started),
        ("inv-2", 1, "running", True, started),
    ]


@pytest.mark.parametrize("through", ["writer thread", "async session"])
async def test_update_many_sets_each_rows_values_by_key(
    db: Database, through: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "MAX_VARIABLES", 40)  # several statements for ten rows
    rows = [_invocation(input={"n": n}) for n in range(10)]
    ended = utcnow() + timedelta(seconds=1)
    changes = [
        {
            "id": row["id"],
            "status": "success",
            "output": {"n": n, "ok": True},
            "cold": n % 2 == 0,
            "duration_ms": n + 0.5,
            "ended_at": ended,
            "error_message": None,
        }
        for n, row in enumerate(rows)
    ]
    batcher = Batcher(db, writer_thread=through == "writer thread")
    await batcher.start()
    try:
        await batcher.commit(lambda s: s.execute(_inv.insert(), rows))
        await batcher.commit(lambda s: bulk.update_many(s, _inv, "id", changes[:9]))  # the last one untouched
    finally:
        await batcher.stop()
    async with db.session() as session:
        found = {
            r.id: r
            for r in await session.execute(
                select(
                    _inv.c.id,
                    _inv.c.status,
                    _inv.c.output,
                    _inv.c.cold,
                    _inv.c.duration_ms,
                    _inv.c.ended_at,
                    _inv.c.input,
                )
            )
        }
    for n, row in enumerate(rows[:9]):
        got = found[row["id"]]
        assert (got.status, got.output, got.cold, got.duration_ms) == (
            "success",
            {"n": n, "ok": True},
            n % 2 == 0,
            n + 0.5,
        )
        assert got.ended_at == ended and got.input == {"n": n}  # columns not named are left alone
    last = found[rows[9]["id"]]
    assert (last.status, last.output, last.ended_at) == ("pending", None, None)


async def test_a_big_insert_through_the_writer_thread_is_split_under_sqlites_variable_limit(
    db: Database,
) -> None:
    # The writer's engine renders many-row INSERTs as multi-row statements ("insertmanyvalues"):
    # 1,500 rows of 34 columns are 51,000 values, more than SQLite takes in one statement.
    rows = [_invocation(input={"n": n}, status="success") for n in range(1500)]
    batcher = Batcher(db, max_rows=5000)
    await batcher.start()
    try:
        await batcher.commit(Insert(Invocation, rows))
    finally:
        await batcher.stop()
    async with db.session() as session:
        found = (await session.execute(select(_inv.c.input).order_by(_inv.c.id))).scalars().all()
    assert found == [{"n": n} for n in range(1500)]
