"""/api/v1/settings over a real platform: the grouped list, reading and changing one setting, bad input
refused with nothing changed, reset to default, admins only, each change audited with before/after, and
the live settings taking effect (default timeout and memory of new functions, max code size, API key
expiry, CORS origins, max concurrency) while a restart setting waits for the next start."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_api
from engine.platform import Platform
from engine.principal import SYSTEM
from tests.api.conftest import create_function, make_settings


async def audit_events(client: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/audit", params={"action": "settings.update", "resource_id": key, "limit": 100}
    )
    assert response.status_code == 200, response.text
    return response.json()["logs"]


async def test_the_list_is_grouped_and_typed(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/settings")
    assert response.status_code == 200
    body = response.json()
    groups = [g["id"] for g in body["groups"]]
    assert groups[:4] == ["general", "functions", "workflows", "security"]
    by_group = {g["id"]: [s["key"] for s in g["settings"]] for g in body["groups"]}
    assert {"api_address", "default_timeout"} <= set(by_group["general"])
    assert {"default_memory", "max_code_size", "max_concurrency"} <= set(by_group["functions"])
    assert {"workflow_default_timeout", "workflow_max_states"} <= set(by_group["workflows"])
    assert {"api_key_expiry_days", "cors_allowed_origins"} <= set(by_group["security"])
    keys = [s["key"] for s in body["settings"]]  # the original API's flat list, ordered by key
    assert keys == sorted(keys)
    timeout = next(s for s in body["settings"] if s["key"] == "default_timeout")
    assert timeout | {"updated_at": None} == timeout | {
        "value": 30,
        "default": 30,
        "type": "int",
        "min": 1,
        "max": 300,
        "unit": "s",
        "apply": "live",
        "sensitive": False,
        "is_default": True,
        "restart_pending": False,
        "updated_at": None,
    }
    assert next(s for s in body["settings"] if s["key"] == "cors_allowed_origins")["sensitive"] is True
    assert next(s for s in body["settings"] if s["key"] == "queue_workers")["apply"] == "restart"


async def test_a_change_is_stored_shown_and_audited(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/settings/default_timeout", json={"value": 45})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["value"], body["is_default"], body["updated_by"]) == (45, False, "key:bootstrap")
    assert (await client.get("/api/v1/settings/default_timeout")).json()["value"] == 45
    [event] = await audit_events(client, "default_timeout")
    assert (event["before"], event["after"]) == ({"value": 30}, {"value": 45})
    assert event["actor"] == "key:bootstrap" and event["resource_type"] == "setting"
    # The same value again changes nothing and audits nothing.
    assert (await client.put("/api/v1/settings/default_timeout", json={"value": "45"})).status_code == 200
    assert len(await audit_events(client, "default_timeout")) == 1


@pytest.mark.parametrize(
    ("key", "value", "status", "words"),
    [
        ("no_such_setting", 1, 404, "setting not found"),
        ("default_timeout", "thirty", 422, "whole number"),
        ("default_timeout", True, 422, "whole number"),
        ("default_timeout", 2.5, 422, "whole number"),
        ("default_timeout", None, 422, "whole number"),
        ("default_timeout", [30], 422, "whole number"),
        ("default_timeout", 0, 422, "between 1 and 300"),
        ("default_timeout", 301, 422, "between 1 and 300"),
        ("default_memory", 64, 422, "between 128 and 3072"),
        ("api_key_expiry_days", -1, 422, "between 0 and 3650"),
        ("api_address", "ftp://x", 422, "http(s) URL"),
        ("api_address", 42, 422, "must be text"),
        ("cors_allowed_origins", ["https://ok.example", "not an origin"], 422, "is not an origin"),
        ("cors_allowed_origins", {"a": 1}, 422, "list"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, key: str, value: Any, status: int, words: str
) -> None:
    before = (await client.get("/api/v1/settings")).json()["settings"]
    response = await client.put(f"/api/v1/settings/{key}", json={"value": value})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"]
    if status == 422:
        assert error["field"] == "value"
    assert (await client.get("/api/v1/settings")).json()["settings"] == before
    assert (await client.get("/api/v1/audit", params={"action": "settings.update"})).json()["logs"] == []


async def test_a_body_without_a_value_or_with_extra_fields_is_refused(client: httpx.AsyncClient) -> None:
    assert (await client.put("/api/v1/settings/default_timeout", json={})).status_code == 422
    extra = await client.put("/api/v1/settings/default_timeout", json={"value": 5, "other": 1})
    assert extra.status_code == 422
    malformed = await client.put(
        "/api/v1/settings/default_timeout", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert (await client.get("/api/v1/settings/default_timeout")).json()["value"] == 30


async def test_an_unknown_key_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/settings/no_such_setting")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert (await client.post("/api/v1/settings/no_such_setting/reset")).status_code == 404


async def test_reset_goes_back_to_the_default_and_is_audited(client: httpx.AsyncClient) -> None:
    await client.put("/api/v1/settings/cors_allowed_origins", json={"value": "https://a.example, *"})
    assert (await client.get("/api/v1/settings/cors_allowed_origins")).json()["value"] == [
        "https://a.example",
        "*",
    ]
    response = await client.post("/api/v1/settings/cors_allowed_origins/reset")
    assert response.status_code == 200
    assert (response.json()["value"], response.json()["is_default"]) == ([], True)
    reset, update = await audit_events(client, "cors_allowed_origins")
    assert (reset["before"], reset["after"], reset["details"]["reset"]) == (
        {"value": ["https://a.example", "*"]},
        {"value": []},
        True,
    )
    assert update["after"] == {"value": ["https://a.example", "*"]}
    # Resetting a setting at its default changes nothing.
    assert (await client.post("/api/v1/settings/cors_allowed_origins/reset")).status_code == 200
    assert len(await audit_events(client, "cors_allowed_origins")) == 2


async def test_only_admins_change_settings(client: httpx.AsyncClient, platform: Platform) -> None:
    await client.post(
        "/api/v1/users", json={"username": "dev", "password": "developer password 1", "role": "developer"}
    )
    login = await client.post(
        "/api/v1/auth/login", json={"username": "dev", "password": "developer password 1"}
    )
    token = login.json()["token"]
    dev = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/settings", headers=dev)).status_code == 200
    refused = await client.put("/api/v1/settings/default_timeout", json={"value": 10}, headers=dev)
    assert refused.status_code == 403
    assert (await client.post("/api/v1/settings/default_timeout/reset", headers=dev)).status_code == 403
    assert platform.system_settings.get("default_timeout") == 30
    client.cookies.clear()  # the log-in above also set a session cookie
    assert (await client.get("/api/v1/settings", headers={"Authorization": ""})).status_code == 401


async def test_default_timeout_and_memory_apply_to_the_next_function(client: httpx.AsyncClient) -> None:
    before = await create_function(client, "before")
    assert (before["timeout_sec"], before["memory_mb"]) == (30, 256)
    await client.put("/api/v1/settings/default_timeout", json={"value": 12})
    await client.put("/api/v1/settings/default_memory", json={"value": 512})
    after = await create_function(client, "after")
    assert (after["timeout_sec"], after["memory_mb"]) == (12, 512)
    explicit = await create_function(client, "explicit", timeout_sec=7, memory_mb=128)
    assert (explicit["timeout_sec"], explicit["memory_mb"]) == (7, 128)
    unchanged = (await client.get("/api/v1/functions/before")).json()
    assert (unchanged["timeout_sec"], unchanged["memory_mb"]) == (30, 256)


async def test_max_code_size_applies_to_the_next_save(client: httpx.AsyncClient) -> None:
    code = "def handler(event, context):\n    return 1\n" + "# padding\n" * 300  # ~3.1 KiB
    await create_function(client, "sized", code)
    await client.put("/api/v1/settings/max_code_size", json={"value": 2})
    response = await client.put("/api/v1/functions/sized", json={"code": code + "# more\n"})
    assert response.status_code == 413
    assert "limit is 2048 bytes" in response.json()["error"]["message"]
    await client.put("/api/v1/settings/max_code_size", json={"value": 8})
    assert (await client.put("/api/v1/functions/sized", json={"code": code + "# more\n"})).status_code == 200


async def test_api_key_expiry_is_the_default_of_new_keys(client: httpx.AsyncClient) -> None:
    never = (await client.post("/api/v1/api-keys", json={"name": "forever"})).json()
    assert never["expires_at"] is None
    await client.put("/api/v1/settings/api_key_expiry_days", json={"value": 7})
    key = (await client.post("/api/v1/api-keys", json={"name": "weekly"})).json()
    assert key["expires_at"] is not None
    assert 6.99 < lifetime_days(key) < 7.01
    own = (await client.post("/api/v1/api-keys", json={"name": "own", "expires_in_days": 30})).json()
    assert 29.99 < lifetime_days(own) < 30.01


def lifetime_days(key: dict[str, Any]) -> float:
    lifetime = datetime.fromisoformat(key["expires_at"]) - datetime.fromisoformat(key["created_at"])
    return lifetime.total_seconds() / 86400


async def test_cors_origins_apply_to_the_next_request(client: httpx.AsyncClient) -> None:
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    before = await client.options("/api/v1/functions", headers=preflight)
    assert "access-control-allow-origin" not in before.headers
    await client.put("/api/v1/settings/cors_allowed_origins", json={"value": ["https://app.example.com"]})
    allowed = await client.options("/api/v1/functions", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    got = await client.get("/api/v1/functions", headers={"Origin": "https://app.example.com"})
    assert got.headers["access-control-allow-origin"] == "https://app.example.com"
    other = await client.get("/api/v1/functions", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    await client.post("/api/v1/settings/cors_allowed_origins/reset")
    after = await client.get("/api/v1/functions", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in after.headers


async def test_max_concurrency_resizes_the_pool_live(client: httpx.AsyncClient, platform: Platform) -> None:
    assert platform.pool.max_concurrency == 32
    await client.put("/api/v1/settings/max_concurrency", json={"value": 3})
    assert platform.pool.max_concurrency == 3
    await client.post("/api/v1/settings/max_concurrency/reset")
    assert platform.pool.max_concurrency == 32


async def test_a_restart_setting_applies_at_the_next_start(tmp_path: Path) -> None:
    async with Platform(make_settings(tmp_path, queue_workers=4)) as first:
        api = create_api(first)
        headers = {"Authorization": f"Bearer {first.bootstrap.api_key}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://t", headers=headers
        ) as http:
            body = (await http.put("/api/v1/settings/queue_workers", json={"value": 6})).json()
            assert (body["value"], body["in_effect"], body["restart_pending"]) == (6, 4, True)
        assert first.system_settings.get("queue_workers") == 4
        assert first.settings.queue_workers == 4
    async with Platform(make_settings(tmp_path, queue_workers=4)) as second:
        assert second.settings.queue_workers == 6  # the consumer started with the stored value
        assert second.system_settings.get("queue_workers") == 6
        assert not second.system_settings.describe(SYSTEM, "queue_workers").restart_pending
