"""The catalog resolves a function without a database read on the hot path, and concurrent misses
share one read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from engine.invoke import catalog as catalog_module
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate, FunctionUpdate
from tests.api.conftest import make_settings

CODE = "def handler(event, context):\n    return 1\n"


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        await running.functions.create(SYSTEM, FunctionCreate(name="f", runtime="python", code=CODE))
        await running.prewarmer.settled()  # it resolves new functions too (by id)
        yield running


def count_function_reads(platform: Platform) -> list[str]:
    reads: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM functions" in statement:
            reads.append(statement)

    event.listen(platform.db.engine.sync_engine, "before_cursor_execute", before)
    return reads


async def test_concurrent_misses_share_one_read(platform: Platform) -> None:
    reads = count_function_reads(platform)
    resolved = await asyncio.gather(*[platform.catalog.resolve("f") for _ in range(200)])
    assert {r.function.name for r in resolved} == {"f"}
    assert len(reads) == 1


async def test_an_expired_entry_is_reloaded_once(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    await platform.catalog.resolve("f")
    reads = count_function_reads(platform)
    assert (await platform.catalog.resolve("f")).function.name == "f"
    assert reads == []  # a hit
    monkeypatch.setattr(catalog_module, "TTL_SEC", 0.0)  # everything is expired now
    await asyncio.gather(*[platform.catalog.resolve("f") for _ in range(50)])
    assert len(reads) == 1


async def test_a_change_is_seen_at_once_even_while_a_load_is_in_flight(platform: Platform) -> None:
    before = await platform.catalog.resolve("f")
    loading = asyncio.ensure_future(platform.catalog.resolve(before.function.id))  # a miss: loads
    await platform.functions.update(SYSTEM, "f", FunctionUpdate(memory_mb=512))
    await loading
    after = await platform.catalog.resolve(before.function.id)
    assert after.spec.memory_mb == 512
    assert (await platform.catalog.resolve("f")).spec.memory_mb == 512


async def test_a_failed_load_fails_every_waiter_and_is_not_cached(platform: Platform) -> None:
    results = await asyncio.gather(
        *[platform.catalog.resolve("missing") for _ in range(5)], return_exceptions=True
    )
    assert all(type(r).__name__ == "NotFound" for r in results)
    await platform.functions.create(SYSTEM, FunctionCreate(name="missing", runtime="python", code=CODE))
    assert (await platform.catalog.resolve("missing")).function.name == "missing"
