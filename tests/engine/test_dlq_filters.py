"""The DLQ list's error-type filter reads the last attempt's type out of a JSON column, in a form per
database: both backends find the same messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from data.db import Database
from data.models import DeadLetter
from engine.platform import Platform
from engine.principal import SYSTEM
from tests.api.conftest import make_settings


@pytest.fixture
async def platform(db: Database, db_url: str, tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path, database_url=db_url)) as running:
        yield running


async def test_error_type_is_the_last_attempts(platform: Platform) -> None:
    def message(name: str, *types: str) -> DeadLetter:
        attempts = [{"attempt": i + 1, "type": t, "message": "x"} for i, t in enumerate(types)]
        return DeadLetter(function_id=name, function_name=name, original_request_id=name, attempts=attempts)

    async with platform.db.transaction() as session:
        session.add_all(
            [
                message("a", "KeyError"),
                message("b", "KeyError", "Timeout"),
                message("c", "Timeout", "KeyError"),
                message("d"),
            ]
        )
    found = await platform.dlq.list(SYSTEM, error_type="KeyError")
    assert sorted(m.function_name for m in found.items) == ["a", "c"]
    found = await platform.dlq.list(SYSTEM, error_type="Timeout")
    assert [m.function_name for m in found.items] == ["b"]
    assert sorted(await platform.dlq.error_types(SYSTEM)) == ["KeyError", "Timeout"]
