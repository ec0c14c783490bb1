"""Database fixtures for contract tests that run over every backend (STYLE habit 13).

`db` yields a migrated, empty Database: SQLite in a temp file, and PostgreSQL when
NIMBUS_TEST_POSTGRES_URL is set or the local server (.ci/postgres.sh) answers; otherwise the PostgreSQL
case skips with a reason. Each test session gets its own PostgreSQL database, dropped at the end;
tests empty it first. `empty_db` yields a database with no schema at all (for migration tests).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine.url import URL, make_url
from sqlmodel import SQLModel

import data.models  # noqa: F401  (every table on SQLModel.metadata)
from data.db import Database
from data.migrate import migrate

POSTGRES_UNAVAILABLE = "PostgreSQL not available: set NIMBUS_TEST_POSTGRES_URL"
# What .ci/postgres.sh creates; tried when NIMBUS_TEST_POSTGRES_URL is not set.
LOCAL_POSTGRES_URLS = (
    "postgresql+asyncpg://nimbus:nimbus@127.0.0.1:5432/nimbus_test",
    "postgresql+asyncpg://nimbus:nimbus@/nimbus_test?host=/var/run/postgresql",
)
BACKENDS = ["sqlite", "postgresql"]
_DB_PREFIX = "nimbus_t_"  # + pid + random: one database per test session

T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run async setup from a sync fixture in a thread of its own, so it never touches the event loop
    pytest-asyncio runs the tests on."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, make()).result()  # type: ignore[arg-type]


@dataclass(frozen=True)
class PostgresServer:
    url: URL  # a database we may connect to as a role with CREATEDB

    def url_for(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    async def connect(self) -> asyncpg.Connection:
        url = self.url
        host = url.query.get("host") or url.host
        return await asyncpg.connect(
            host=host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=3,
        )

    async def create_database(self) -> str:
        name = f"{_DB_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        conn = await self.connect()
        try:
            await _drop_orphans(conn)
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        """Drop it, ending its sessions. FORCE may not end a backend of another role (an autovacuum
        worker happens to be in the database now and then, more often with several test processes):
        that one finishes within moments, so try again for a while."""
        conn = await self.connect()
        try:
            for attempt in range(50):
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    return
                except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.1)
        finally:
            await conn.close()


async def _drop_orphans(conn: asyncpg.Connection) -> None:
    """Drop test databases left by sessions of this machine that were killed before their teardown."""
    names = await conn.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", _DB_PREFIX)
    for (name,) in names:
        pid = name[len(_DB_PREFIX) :].split("_")[0]
        if pid.isdigit() and not _alive(int(pid)):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _find_postgres() -> tuple[PostgresServer | None, str]:
    configured = os.environ.get("NIMBUS_TEST_POSTGRES_URL")
    candidates = [configured] if configured else list(LOCAL_POSTGRES_URLS)
    problem = ""
    for candidate in candidates:
        server = PostgresServer(make_url(candidate))
        try:
            conn = await server.connect()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            problem = f"{server.url.render_as_string()}: {exc}"
            continue
        await conn.close()
        return server, ""
    return None, problem


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer | None:
    server, problem = run_async(_find_postgres)
    if server is None and os.environ.get("NIMBUS_TEST_POSTGRES_URL"):
        pytest.fail(f"NIMBUS_TEST_POSTGRES_URL is set but PostgreSQL does not answer: {problem}")
    return server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer | None) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    if postgres_server is None:
        pytest.skip(POSTGRES_UNAVAILABLE)
    name = run_async(postgres_server.create_database)
    url = postgres_server.url_for(name)
    try:
        run_async(lambda: _migrate_url(url))
        yield url
    finally:
        run_async(lambda: postgres_server.drop_database(name))


_template: Path | None = None
_template_lock = threading.Lock()


def migrated_sqlite() -> Path:
    """A migrated SQLite file, made once per test process (cheaper to copy than to migrate each time)."""
    global _template
    with _template_lock:
        if _template is None:
            path = Path(tempfile.mkdtemp(prefix="nimbus-sqlite-template-")) / "nimbus.db"
            run_async(lambda: _migrate_url(f"sqlite+aiosqlite:///{path}"))
            atexit.register(shutil.rmtree, path.parent, True)
            _template = path
        return _template


def seed_data_dir(data_dir: Path) -> None:
    """Give a new platform's data dir the migrated database, so its start finds the schema at head (the
    same database the migrations make; a dir that has one already, e.g. across a restart, keeps it)."""
    target = data_dir / "nimbus.db"
    if not target.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_sqlite(), target)


@pytest.fixture(scope="session")
def sqlite_template() -> Path:
    """A migrated SQLite file, copied for each test (cheaper than migrating each time)."""
    return migrated_sqlite()


async def _migrate_url(url: str) -> None:
    db = Database(url)
    try:
        await migrate(db)
        if db.is_sqlite:  # fold the WAL into the file so a plain copy is the whole database
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await db.close()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "nimbus.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated, empty Database (SQLite, then PostgreSQL when available)."""
    database = Database(db_url)
    if not database.is_sqlite:  # the session's database is shared by its tests: start each one empty
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        async with database.transaction() as session:
            await session.execute(text(f"TRUNCATE {tables}"))
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer | None = request.getfixturevalue("postgres_server")
    if server is None:
        pytest.skip(POSTGRES_UNAVAILABLE)
    name = run_async(server.create_database)
    try:
        yield server.url_for(name)
    finally:
        run_async(lambda: server.drop_database(name))


@pytest.fixture
async def empty_db(empty_db_url: str) -> AsyncIterator[Database]:
    database = Database(empty_db_url)
    try:
        yield database
    finally:
        await database.close()
