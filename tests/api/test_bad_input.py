"""Bad input gets a clear 4xx naming the field; nothing is stored half-way; no stack traces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from engine.principal import SYSTEM
from tests.api.conftest import HELLO, create_function


def assert_clean_error(response: httpx.Response, status: int, field: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in response.text
    if field is not None:
        assert error.get("field") == field, error
    return error


async def assert_nothing_stored(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/functions")).json()["functions"] == []


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/functions", content=b'{"name": "x", ', headers={"Content-Type": "application/json"}
    )
    assert_clean_error(response, 400)
    await assert_nothing_stored(client)


async def test_malformed_invoke_event_is_400(client: httpx.AsyncClient) -> None:
    await create_function(client)
    response = await client.post("/api/v1/functions/hello/invoke", content=b"{nope")
    assert_clean_error(response, 400, "body")


async def test_unknown_runtime_is_422_naming_runtime(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/functions", json={"name": "x", "runtime": "cobol", "code": "x"})
    error = assert_clean_error(response, 422, "runtime")
    assert "unknown runtime" in str(error["message"])
    await assert_nothing_stored(client)


async def test_oversized_code_is_413_naming_code(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    big = "# " + "x" * platform.settings.max_code_bytes
    response = await client.post("/api/v1/functions", json={"name": "big", "runtime": "python", "code": big})
    assert_clean_error(response, 413, "code")
    await assert_nothing_stored(client)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_mb", -128),
        ("memory_mb", 64),
        ("timeout_sec", 0),
        ("timeout_sec", 301),
        ("max_concurrency", -1),
    ],
)
async def test_out_of_range_limits_are_422(client: httpx.AsyncClient, field: str, value: int) -> None:
    response = await client.post(
        "/api/v1/functions", json={"name": "x", "runtime": "python", "code": HELLO, field: value}
    )
    assert_clean_error(response, 422, field)
    await assert_nothing_stored(client)


@pytest.mark.parametrize(
    "body",
    [
        {"runtime": "python", "code": HELLO},  # no name
        {"name": "1bad", "runtime": "python", "code": HELLO},
        {"name": "x", "runtime": "python"},  # no code
        {"name": "x", "runtime": "python", "code": HELLO, "surprise": 1},
        {"name": "x", "runtime": "python", "code": HELLO, "handler": "not a handler"},
        {"name": "x", "runtime": "python", "code": HELLO, "env_vars": {"1BAD": "v"}},
        {"name": "x", "runtime": "python", "code": HELLO, "files": {"../escape.py": ""}},
    ],
)
async def test_invalid_create_bodies_are_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    assert_clean_error(await client.post("/api/v1/functions", json=body), 422)
    await assert_nothing_stored(client)


async def test_unknown_function_is_404_everywhere(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/functions/ghost"),
        ("PUT", "/api/v1/functions/ghost"),
        ("DELETE", "/api/v1/functions/ghost"),
        ("POST", "/api/v1/functions/ghost/invoke"),
        ("POST", "/api/v1/functions/ghost/async"),
        ("GET", "/api/v1/invocations/ghost"),
        ("GET", "/api/v1/dlq/ghost"),
    ]:
        body = {"description": "x"} if method == "PUT" else None
        response = await client.request(method, path, json=body)
        assert_clean_error(response, 404)


async def test_expired_api_key_is_401(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    admin = await platform.auth.login("admin", platform.settings.admin_password, "127.0.0.1")
    _, raw = await platform.auth.create_api_key(
        admin, "short-lived", expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    response = await client.get("/api/v1/functions", headers={"Authorization": f"Bearer {raw}"})
    error = assert_clean_error(response, 401)
    assert error["message"] == "API key expired"


async def test_missing_credentials_are_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/functions", headers={"Authorization": ""})
    assert_clean_error(response, 401)


async def test_rejected_requests_write_no_audit_rows(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    await client.post("/api/v1/functions", json={"name": "x", "runtime": "cobol", "code": "x"})
    page = await platform.audit.list(SYSTEM, resource_type="function")
    assert page.items == []


@pytest.mark.parametrize(
    "field", ["image", "executor", "memory_mb", "timeout_sec", "tags", "env_vars", "code"]
)
async def test_null_in_an_update_is_422_and_changes_nothing(client: httpx.AsyncClient, field: str) -> None:
    await create_function(client)
    before = (await client.get("/api/v1/functions/hello")).json()
    response = await client.put("/api/v1/functions/hello", json={field: None, "description": "changed"})
    error = assert_clean_error(response, 422, field)
    assert "cannot be null" in str(error["message"]) and "Value error" not in str(error["message"])
    after = (await client.get("/api/v1/functions/hello")).json()
    assert after["description"] == before["description"] and after.get("version") == before.get("version")
