"""Bring the database schema to the newest Alembic revision, programmatically (no alembic.ini).

The app calls `await migrate(db)` on every start: a database already at head costs one small query.
For developers: `python -m data.migrate revision "add a column"` autogenerates the next revision
from `data.models` (against a scratch SQLite database at head), then review it by hand.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from data.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Several nodes may start at once against one PostgreSQL database: one migrates, the others wait on
# this transaction-scoped advisory lock and then find the schema at head. (Any constant works; this is
# "nimbus" in ASCII.)
_PG_MIGRATE_LOCK = 0x6E696D627573


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolation
    return config


@lru_cache(maxsize=1)
def head_revisions() -> tuple[str, ...]:
    """The head revision(s) shipped with this code (parsed once per process)."""
    return tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


async def migrate(db: Database) -> None:
    """Upgrade `db` to head in one transaction; a no-op when it is already there. Processes that start
    together take turns: the first migrates, the others then find the schema at head."""
    async with db.engine.begin() as connection:
        if db.is_sqlite:
            # The sqlite3 driver opens transactions only before DML, so DDL would autocommit statement by
            # statement. An explicit BEGIN IMMEDIATE makes the upgrade atomic (SQLite's DDL is
            # transactional) and takes the write lock first, serialising concurrent starts.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATE_LOCK})
        await connection.run_sync(_upgrade)


async def current_revisions(db: Database) -> tuple[str, ...]:
    async with db.engine.connect() as connection:
        heads = await connection.run_sync(lambda conn: MigrationContext.configure(conn).get_current_heads())
    return tuple(sorted(heads))


def _upgrade(connection: Connection) -> None:
    # Checking the version first skips loading env.py and the revision modules on every start.
    if tuple(sorted(MigrationContext.configure(connection).get_current_heads())) == head_revisions():
        return
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


# --- developer commands -----------------------------------------------------------------------------


def _autogenerate(message: str) -> None:
    """Write the next revision: diff data.models against a scratch database migrated to head."""
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"

        async def upgrade_scratch() -> None:
            db = Database(url)
            try:
                await migrate(db)
            finally:
                await db.close()

        asyncio.run(upgrade_scratch())
        revision = f"{len(list((MIGRATIONS_DIR / 'versions').glob('[0-9]*_*.py'))) + 1:04d}"
        command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=revision)


def main(argv: list[str]) -> int:
    usage = (
        "usage: python -m data.migrate upgrade URL | sql URL | revision MESSAGE\n"
        "  upgrade   migrate the database at URL to head\n"
        "  sql       print the SQL of every revision for URL's dialect (offline)\n"
        "  revision  autogenerate the next revision from data.models"
    )
    if len(argv) != 2 or argv[0] not in {"upgrade", "sql", "revision"}:
        print(usage, file=sys.stderr)
        return 2
    action, arg = argv
    if action == "revision":
        _autogenerate(arg)
    elif action == "sql":
        command.upgrade(alembic_config(arg), "head", sql=True)
    else:

        async def upgrade() -> None:
            db = Database(arg)
            try:
                await migrate(db)
            finally:
                await db.close()

        asyncio.run(upgrade())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
