"""The write-behind batcher: many writers, one transaction per batch, callbacks only after commit, and
one bad row never costs the others their write."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from data.batcher import Batcher, Insert, Update, Upsert
from data.db import Database
from data.models import Function, FunctionVersion, SettingRow
from data.types import new_id, utcnow

DEADLINE = 5.0  # seconds; every wait in these tests is bounded by it


@pytest.fixture
async def batcher(db: Database) -> AsyncIterator[Batcher]:
    running = Batcher(db, max_rows=500, max_delay_ms=5)
    await running.start()
    yield running
    await running.stop()


@contextlib.contextmanager
def watch_commits(batcher: Batcher) -> Iterator[list[str]]:
    """Every COMMIT the batcher's write engine performs, in order (a list that tests read)."""
    seen: list[str] = []

    def on_commit(_conn: Any) -> None:
        seen.append("commit")

    engine = batcher.write_engine
    event.listen(engine, "commit", on_commit)
    yield seen
    event.remove(engine, "commit", on_commit)


@pytest.fixture
def commits(batcher: Batcher) -> Iterator[list[str]]:
    with watch_commits(batcher) as seen:
        yield seen


def setting(key: str, value: Any = 1) -> Insert:
    return Insert(SettingRow, [{"key": key, "value": value}])


async def settings_in(db: Database) -> dict[str, Any]:
    async with db.session() as session:
        rows = await session.execute(select(SettingRow.key, SettingRow.value))
        return {key: value for key, value in rows}


async def test_concurrent_commits_share_one_transaction(
    db: Database, batcher: Batcher, commits: list[str]
) -> None:
    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(*(batcher.commit(setting(f"key-{i}")) for i in range(200)))

    assert len(await settings_in(db)) == 200
    assert len(commits) <= 5  # 200 acknowledged writes, a handful of commits (group commit)
    assert batcher.stats.transactions == len(commits)


async def test_a_burst_is_cut_into_batches_of_max_rows(db: Database) -> None:
    batcher = Batcher(db, max_rows=10, max_delay_ms=1000)
    await batcher.start()
    with watch_commits(batcher) as commits:
        for i in range(35):
            batcher.submit(setting(f"key-{i}"))
        async with asyncio.timeout(DEADLINE):
            await batcher.flush()
    await batcher.stop()

    assert len(await settings_in(db)) == 35
    assert len(commits) == 4  # 10 + 10 + 10 + 5


async def test_a_lone_write_is_committed_after_the_delay_without_a_flush(db: Database) -> None:
    batcher = Batcher(db, max_rows=500, max_delay_ms=20)
    await batcher.start()
    written = asyncio.Event()

    batcher.submit(setting("alone"), on_commit=written.set)

    async with asyncio.timeout(DEADLINE):
        await written.wait()
    assert await settings_in(db) == {"alone": 1}
    await batcher.stop()


async def test_callbacks_run_only_after_the_commit(
    db: Database, batcher: Batcher, commits: list[str]
) -> None:
    async def write(session: AsyncSession) -> None:
        await session.execute(insert(SettingRow), [{"key": "k", "value": 1, "updated_at": utcnow()}])
        commits.append("write")

    async with asyncio.timeout(DEADLINE):
        await batcher.commit(write, on_commit=lambda: commits.append("callback"))

    assert commits == ["write", "commit", "callback"]


async def test_a_failed_write_raises_to_its_waiter_and_fires_no_callback(
    db: Database, batcher: Batcher
) -> None:
    fired: list[str] = []

    async def broken(session: AsyncSession) -> None:
        raise RuntimeError("boom")

    good = batcher.commit(setting("good"), on_commit=lambda: fired.append("good"))
    bad = batcher.commit(broken, on_commit=lambda: fired.append("bad"))
    async with asyncio.timeout(DEADLINE):
        results = await asyncio.gather(good, bad, return_exceptions=True)

    assert results[0] is None
    assert isinstance(results[1], RuntimeError)
    assert fired == ["good"]
    assert await settings_in(db) == {"good": 1}


async def test_a_bad_row_does_not_lose_the_rest_of_its_batch(db: Database, batcher: Batcher) -> None:
    async with asyncio.timeout(DEADLINE):
        await batcher.commit(setting("taken"))
    for i in range(5):
        batcher.submit(setting(f"fine-{i}"))
    duplicate = asyncio.ensure_future(batcher.commit(setting("taken", 2)))  # primary key already exists
    batcher.submit(setting("fine-last"))

    async with asyncio.timeout(DEADLINE):
        await batcher.flush()
        with pytest.raises(IntegrityError):
            await duplicate

    assert set(await settings_in(db)) == {
        "taken",
        "fine-0",
        "fine-1",
        "fine-2",
        "fine-3",
        "fine-4",
        "fine-last",
    }
    assert (await settings_in(db))["taken"] == 1
    assert (batcher.stats.failed_batches, batcher.stats.failed_ops) == (1, 1)  # one batch, retried alone


async def test_ops_submitted_together_commit_together(db: Database, batcher: Batcher) -> None:
    async with asyncio.timeout(DEADLINE):
        await batcher.commit(setting("taken"))
        with pytest.raises(IntegrityError):
            await batcher.commit([setting("fresh"), setting("taken")])

    assert set(await settings_in(db)) == {"taken"}


async def test_updates_and_upserts(db: Database, batcher: Batcher) -> None:
    async with asyncio.timeout(DEADLINE):
        await batcher.commit([setting("a", 1), setting("b", 1)])
        await batcher.commit([Update(SettingRow, "a", {"value": 2}), Update(SettingRow, "b", {"value": 3})])
        await batcher.commit(Upsert(SettingRow, [{"key": "b", "value": 4}, {"key": "c", "value": 5}]))

    assert await settings_in(db) == {"a": 2, "b": 4, "c": 5}


async def test_inserts_into_related_tables_keep_foreign_key_order(db: Database, batcher: Batcher) -> None:
    def function_and_version(name: str) -> list[Insert]:
        fn_id = new_id()
        return [
            Insert(Function, [{"id": fn_id, "name": name, "runtime": "python", "handler": "main.handler"}]),
            Insert(
                FunctionVersion, [{"function_id": fn_id, "version": 1, "runtime": "python", "handler": "h"}]
            ),
        ]

    async with asyncio.timeout(DEADLINE):
        # One batch: the writer merges both tables' rows, and must insert functions before versions.
        await asyncio.gather(*(batcher.commit(function_and_version(f"fn-{i}")) for i in range(20)))

    async with db.session() as session:
        versions = (await session.execute(select(func.count()).select_from(FunctionVersion))).scalar_one()
    assert versions == 20
    assert batcher.stats.failed_batches == 0


async def test_stop_writes_what_is_pending_then_refuses_more(db: Database) -> None:
    batcher = Batcher(db, max_rows=500, max_delay_ms=10_000)
    await batcher.start()
    batcher.submit(setting("pending"))

    async with asyncio.timeout(DEADLINE):
        await batcher.stop()

    assert await settings_in(db) == {"pending": 1}
    with pytest.raises(RuntimeError):
        batcher.submit(setting("late"))
