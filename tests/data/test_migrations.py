"""Migrations: the app migrates on every start, so the first start builds exactly the schema of
data.models and every later start changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from data.db import Database
from data.migrate import current_revisions, head_revisions, migrate, needs_upgrade, upgrade_in_subprocess
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


def test_the_head_read_from_the_revision_files_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    from data.migrate import alembic_config

    assert head_revisions() == tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


async def test_an_upgrade_in_a_child_process_builds_the_schema(empty_db: Database) -> None:
    assert await needs_upgrade(empty_db)
    await upgrade_in_subprocess(empty_db.url)
    assert not await needs_upgrade(empty_db)
    assert await current_revisions(empty_db) == head_revisions()
    assert await schema_diffs(empty_db) == []


async def test_a_failed_upgrade_in_a_child_process_says_why() -> None:
    with pytest.raises(RuntimeError, match="migrating the database failed"):
        await upgrade_in_subprocess("postgresql+asyncpg://nobody@127.0.0.1:1/none")


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


async def test_nodes_starting_together_migrate_once(empty_db: Database) -> None:
    others = [Database(empty_db.url) for _ in range(3)]
    try:
        await asyncio.gather(migrate(empty_db), *(migrate(db) for db in others))
    finally:
        for db in others:
            await db.close()

    assert await current_revisions(empty_db) == head_revisions()
    assert await schema_diffs(empty_db) == []


async def test_a_failed_upgrade_leaves_nothing_behind(
    empty_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create_index = Operations.create_index
    calls = 0

    def failing_create_index(self: Operations, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 5:  # part-way through the initial revision
            raise RuntimeError("disk full")
        return real_create_index(self, *args, **kwargs)

    monkeypatch.setattr(Operations, "create_index", failing_create_index)
    with pytest.raises(RuntimeError, match="disk full"):
        await migrate(empty_db)
    monkeypatch.undo()

    async with empty_db.engine.connect() as connection:
        tables = await connection.run_sync(lambda conn: inspect(conn).get_table_names())
    assert tables == []
    await migrate(empty_db)  # and the next start succeeds
    assert await schema_diffs(empty_db) == []
