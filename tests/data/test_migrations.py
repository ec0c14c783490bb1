"""Migrations: the app migrates on every start, so the first start builds exactly the schema of
data.models and every later start changes nothing."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from data.db import Database
from data.migrate import current_revisions, head_revisions, migrate
from data.models import SettingRow
from data.types import utcnow


def _schema_diffs(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def schema_diffs(db: Database) -> list[Any]:
    async with db.engine.connect() as connection:
        return await connection.run_sync(_schema_diffs)


async def test_first_start_builds_exactly_the_schema_of_the_models(empty_db: Database) -> None:
    await migrate(empty_db)

    assert await current_revisions(empty_db) == head_revisions()
    assert await schema_diffs(empty_db) == []


async def test_the_schema_comparison_notices_drift(empty_db: Database) -> None:
    await migrate(empty_db)
    async with empty_db.engine.begin() as connection:
        await connection.execute(text("DROP INDEX ix_invocations_status_id"))

    diffs = await schema_diffs(empty_db)

    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_invocations_status_id")]


async def test_a_second_start_changes_nothing_and_keeps_the_data(empty_db: Database) -> None:
    await migrate(empty_db)
    async with empty_db.transaction() as session:
        await session.execute(insert(SettingRow), [{"key": "theme", "value": "dark", "updated_at": utcnow()}])
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, ...)
    event.listen(empty_db.engine.sync_engine, "before_cursor_execute", listener)

    await migrate(empty_db)

    event.remove(empty_db.engine.sync_engine, "before_cursor_execute", listener)
    assert not [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
    async with empty_db.session() as session:
        assert (await session.execute(select(func.count()).select_from(SettingRow))).scalar_one() == 1
