"""Bring the database schema to the newest Alembic revision, programmatically (no alembic.ini).

The app calls `await migrate(db)` on every start: a database already at head costs one small query, and
does not import Alembic at all (about 10 MB that a running server would otherwise keep): the head is read
from the revision files, the current revision from the alembic_version table. `nimbus serve` runs an
upgrade that is needed in a child process (`upgrade_in_subprocess`), so the server never loads Alembic.
For developers: `python -m data.migrate revision "add a column"` autogenerates the next revision
from `data.models` (against a scratch SQLite database at head), then review it by hand.
"""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from data.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Several nodes may start at once against one PostgreSQL database: one migrates, the others wait on
# this transaction-scoped advisory lock and then find the schema at head. (Any constant works; this is
# "nimbus" in ASCII.)
_PG_MIGRATE_LOCK = 0x6E696D627573


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolation
    return config


@lru_cache(maxsize=1)
def head_revisions() -> tuple[str, ...]:
    """The head revision(s) shipped with this code: revisions no other revision names as its parent,
    read from the revision files' `revision` and `down_revision` (tests/data/test_migrations.py checks
    this against Alembic's own reading)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = _revision_ids(path)
        if found is not None:
            revisions.add(found[0])
            parents.update(found[1])
    return tuple(sorted(revisions - parents))


def _revision_ids(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """(revision, its parents) of a revision file; None for a file that is not one (e.g. __init__.py)."""
    values: dict[str, Any] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            values[target.id] = ast.literal_eval(value)
    if "revision" not in values:
        return None
    down = values.get("down_revision")
    parents = tuple(down) if isinstance(down, list | tuple) else ((down,) if down else ())
    return str(values["revision"]), parents


def _current(connection: Connection) -> tuple[str, ...]:
    if not inspect(connection).has_table("alembic_version"):
        return ()
    return tuple(sorted(connection.execute(text("SELECT version_num FROM alembic_version")).scalars()))


async def needs_upgrade(db: Database) -> bool:
    async with db.engine.connect() as connection:
        return await connection.run_sync(_current) != head_revisions()


async def upgrade_in_subprocess(url: str) -> None:
    """Upgrade the database at `url` in a child process (`python -m data.migrate upgrade URL`), so this
    process never imports Alembic; raises RuntimeError with the child's error output if it fails."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "data.migrate",
        "upgrade",
        url,
        cwd=MIGRATIONS_DIR.parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"migrating the database failed: {err.decode(errors='replace').strip()[-2000:]}")


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
        return await connection.run_sync(_current)


def _upgrade(connection: Connection) -> None:
    # Checking the version first skips Alembic, env.py and the revision modules on every start.
    if _current(connection) == head_revisions():
        return
    from alembic import command

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
        from alembic import command

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
        from alembic import command

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
