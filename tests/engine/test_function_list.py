"""Listing functions: filters and sorts happen in SQL on every backend, so pages stay full and ordered."""

from __future__ import annotations

from pathlib import Path

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from tests.api.conftest import make_settings

CODE = "def handler(event, context):\n    return 1\n"


async def test_the_tag_filter_keeps_pages_full_and_sorted(db_url: str, tmp_path: Path) -> None:
    async with Platform(make_settings(tmp_path, database_url=db_url)) as platform:
        for i in range(7):
            tags = ["billing", "eu"] if i % 2 == 0 else ["search"]
            await platform.functions.create(
                SYSTEM, FunctionCreate(name=f"fn-{i}", runtime="python", code=CODE, tags=tags)
            )
        first = await platform.functions.list(SYSTEM, tag="billing", sort="name", limit=2)
        assert [f.name for f in first.items] == ["fn-0", "fn-2"]
        second = await platform.functions.list(
            SYSTEM, tag="billing", sort="name", limit=2, cursor=first.next_cursor
        )
        assert [f.name for f in second.items] == ["fn-4", "fn-6"]
        assert second.next_cursor is None
        assert (await platform.functions.list(SYSTEM, tag="bill")).items == []  # whole tags only
