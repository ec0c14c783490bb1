"""Alembic's environment for Nimbus. Normally run by data.migrate.migrate(), which hands over an open
connection in `config.attributes["connection"]`; `python -m data.migrate` runs it against a URL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import data.models  # noqa: F401  (registers every table on SQLModel.metadata)
from data.types import UTCDateTime

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render our column types as code that does not depend on SQLModel internals."""
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from data.types import UTCDateTime")
        return "UTCDateTime()"
    if isinstance(obj, AutoString):  # SQLModel's str type is a plain VARCHAR underneath
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def configure_options() -> dict[str, Any]:
    """Options shared by migrations, autogenerate and the schema-vs-models test."""
    return {
        "target_metadata": target_metadata,
        "compare_type": True,
        "compare_server_default": False,  # defaults live in Python (SQLModel), not in the schema
        # Batch mode lets future ALTERs work on SQLite (copy-and-move); on PostgreSQL it is plain ALTER.
        "render_as_batch": True,
        "render_item": render_item,
    }


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`python -m data.migrate sql URL`), for review or a DBA."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **configure_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, **configure_options())
    with context.begin_transaction():
        context.run_migrations()


async def run_on_url(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # data.migrate.migrate(): already inside the caller's transaction
        run_on(connection)
        return
    asyncio.run(run_on_url(config.get_main_option("sqlalchemy.url") or ""))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
