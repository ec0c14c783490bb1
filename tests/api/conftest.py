"""API tests run the real platform (SQLite in a temp dir, real sandboxed workers) behind httpx's
ASGI transport, authenticated with the admin's first-start API key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.main import create_api
from engine.config import Settings
from engine.platform import Platform
from tests.db_fixtures import seed_data_dir

ADMIN_PASSWORD = "correct horse battery staple"


# Every test platform hashes its admin's password and most log in: at argon2's default cost that was
# four minutes of the suite's CPU. tests/engine/test_auth.py keeps the default cost.
LIGHT_PASSWORD_HASHING = {"password_time_cost": 1, "password_memory_kib": 1024, "password_parallelism": 1}


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings of a test platform in `data_dir`, whose SQLite database starts migrated (a copy of one
    migrated file: tests/data/test_migrations.py tests the migrations themselves)."""
    if "database_url" not in overrides:
        seed_data_dir(data_dir)
    values: dict[str, object] = {
        "data_dir": data_dir,
        "admin_password": ADMIN_PASSWORD,
        "queue_workers": 4,
        "poll_interval_sec": 0.2,
        "batch_max_delay_ms": 2.0,
        "keep_alive_sec": 60.0,
        **LIGHT_PASSWORD_HASHING,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        yield running


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    key = platform.bootstrap.api_key
    transport = httpx.ASGITransport(app=create_api(platform))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://nimbus.test",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as http:
        yield http


HELLO = 'def handler(event, context):\n    return {"hello": event.get("name", "world")}\n'


async def create_function(
    client: httpx.AsyncClient, name: str = "hello", code: str = HELLO, **fields: object
) -> dict[str, object]:
    response = await client.post(
        "/api/v1/functions", json={"name": name, "runtime": "python", "code": code, **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()
