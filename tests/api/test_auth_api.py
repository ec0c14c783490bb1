"""The auth HTTP layer: log-in and the session cookie, API keys in both headers, 401/403/422 bodies,
and that no response ever carries a key's hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from data.db import Database
from data.models import ApiKey
from engine.principal import Principal
from engine.services.audit import AuditService
from engine.services.auth import AuthService, Bootstrap
from tests.auth_fixtures import *  # noqa: F403
from tests.auth_fixtures import ADMIN_PASSWORD, audit_rows

ME = "/api/v1/auth/me"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "Traceback" not in response.text
    return body["error"]


async def login(
    client: httpx.AsyncClient, username: str = "admin", password: str = ADMIN_PASSWORD
) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"username": username, "password": password})


async def make_user(client: httpx.AsyncClient, admin_key: str, username: str, role: str) -> dict[str, Any]:
    body = {"username": username, "password": f"{username}-password", "role": role}
    response = await client.post("/api/v1/users", headers=bearer(admin_key), json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --- log-in and sessions --------------------------------------------------------------------------


async def test_login_sets_an_httponly_session_cookie_that_authenticates(client: httpx.AsyncClient) -> None:
    response = await login(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["username"] == "admin" and body["user"]["role"] == "admin" and body["token"]
    assert set(body["user"]) == {
        "id",
        "username",
        "role",
        "tenant",
        "disabled",
        "created_at",
        "last_login_at",
    }
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("nimbus_session=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    me = await client.get(ME)  # the client's cookie jar sends the cookie
    assert me.status_code == 200
    assert (me.json()["actor"], me.json()["actor_type"]) == ("admin", "user")


async def test_login_token_also_works_as_a_bearer(client: httpx.AsyncClient) -> None:
    token = (await login(client)).json()["token"]
    client.cookies.clear()
    assert (await client.get(ME, headers=bearer(token))).json()["user"]["username"] == "admin"


async def test_wrong_password_is_401_and_audited(client: httpx.AsyncClient, audit: AuditService) -> None:
    error = error_of(await login(client, password="wrong password"), 401)
    assert error == {"code": "unauthorized", "message": "invalid username or password"}
    assert "nimbus_session" not in client.cookies
    [row] = await audit_rows(audit, "user.login_failed")
    assert row.resource_name == "admin" and row.actor_ip == "127.0.0.1"


async def test_repeated_failures_lock_the_login_with_429(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        error_of(await login(client, password="guess"), 401)
    error = error_of(await login(client), 429)
    assert error["code"] == "quota_exceeded" and "try again in 5 minutes" in error["message"]


async def test_disabled_user_cannot_log_in(client: httpx.AsyncClient, bootstrap: Bootstrap) -> None:
    ana = await make_user(client, bootstrap.api_key, "ana", "developer")
    response = await client.put(
        f"/api/v1/users/{ana['id']}", headers=bearer(bootstrap.api_key), json={"disabled": True}
    )
    assert response.json()["disabled"] is True
    assert error_of(await login(client, "ana", "ana-password"), 401)["message"] == "this account is disabled"


async def test_logout_clears_the_cookie_and_is_audited(
    client: httpx.AsyncClient, audit: AuditService
) -> None:
    await login(client)
    response = await client.post("/api/v1/auth/logout")
    assert response.status_code == 204
    assert 'nimbus_session=""' in response.headers["set-cookie"]
    assert error_of(await client.get(ME), 401)["message"].startswith("authentication required")
    assert [r.actor for r in await audit_rows(audit, "user.logout")] == ["admin"]


# --- API keys -------------------------------------------------------------------------------------


async def test_api_key_works_in_either_header(client: httpx.AsyncClient, bootstrap: Bootstrap) -> None:
    for headers in (bearer(bootstrap.api_key), {"X-API-Key": bootstrap.api_key}):
        response = await client.get(ME, headers=headers)
        assert response.status_code == 200, response.text
        assert (response.json()["actor"], response.json()["role"]) == ("key:bootstrap", "admin")


async def test_no_credentials_is_401_saying_how_to_authenticate(client: httpx.AsyncClient) -> None:
    error = error_of(await client.get(ME), 401)
    assert error["message"] == (
        "authentication required: send an API key (Authorization: Bearer ...) or log in"
    )
    assert error_of(await client.get(ME, headers={"Authorization": ""}), 401)["code"] == "unauthorized"
    unknown = await client.get(ME, headers=bearer("nmb_" + "x" * 40))
    assert error_of(unknown, 401)["message"] == "invalid API key"


async def test_expired_key_is_401_with_a_clear_body(
    client: httpx.AsyncClient, auth: AuthService, admin: Principal
) -> None:
    _, raw = await auth.create_api_key(admin, "old", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = await client.get(ME, headers=bearer(raw))
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "unauthorized", "message": "API key expired"}}


async def test_created_key_is_shown_once_then_works_and_revoking_it_ends_it(
    client: httpx.AsyncClient, bootstrap: Bootstrap, audit: AuditService
) -> None:
    admin = bearer(bootstrap.api_key)
    created = await client.post("/api/v1/api-keys", headers=admin, json={"name": "ci", "expires_in_days": 7})
    assert created.status_code == 201, created.text
    body = created.json()
    assert {"id", "name", "prefix", "role", "created_at", "expires_at", "key"} <= set(body)
    assert body["key"].startswith(body["prefix"]) and body["role"] == "admin"
    assert (await client.get(ME, headers=bearer(body["key"]))).json()["actor"] == "key:ci"  # now cached
    listed = (await client.get("/api/v1/api-keys", headers=admin)).json()["api_keys"]
    assert {k["name"] for k in listed} == {"bootstrap", "ci"} and all("key" not in k for k in listed)
    assert (await client.delete(f"/api/v1/api-keys/{body['id']}", headers=admin)).status_code == 204
    assert error_of(await client.get(ME, headers=bearer(body["key"])), 401)["message"] == "invalid API key"
    assert [r.resource_id for r in await audit_rows(audit, "apikey.revoke")] == [body["id"]]


async def test_a_viewer_cannot_create_or_list_users(client: httpx.AsyncClient, bootstrap: Bootstrap) -> None:
    await make_user(client, bootstrap.api_key, "viv", "viewer")
    token = (await login(client, "viv", "viv-password")).json()["token"]
    client.cookies.clear()
    response = await client.post(
        "/api/v1/users", headers=bearer(token), json={"username": "eve", "password": "eve-password"}
    )
    assert error_of(response, 403)["code"] == "forbidden"
    assert error_of(await client.get("/api/v1/users", headers=bearer(token)), 403)["code"] == "forbidden"


# --- bad input ------------------------------------------------------------------------------------


async def test_bad_input_is_422_naming_the_field(client: httpx.AsyncClient, bootstrap: Bootstrap) -> None:
    admin = bearer(bootstrap.api_key)
    cases = [
        ("/api/v1/auth/login", {"username": "admin"}, "password"),
        ("/api/v1/auth/login", {"username": "admin", "password": "x", "remember": True}, "remember"),
        ("/api/v1/api-keys", {"name": "ci", "expires_in_days": -1}, "expires_in_days"),
        ("/api/v1/api-keys", {"name": "ci", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ("/api/v1/api-keys", {"name": "ci", "role": "root"}, "role"),
        ("/api/v1/users", {"username": "ana", "password": "short"}, "password"),
    ]
    for path, body, field in cases:
        error = error_of(await client.post(path, headers=admin, json=body), 422)
        assert error["field"] == field, (path, body, error)


async def test_rejected_key_requests_store_nothing(
    client: httpx.AsyncClient, db: Database, bootstrap: Bootstrap
) -> None:
    await client.post(
        "/api/v1/api-keys", headers=bearer(bootstrap.api_key), json={"name": "ci", "expires_in_days": 0}
    )
    async with db.session() as session:
        assert [k.name for k in (await session.execute(select(ApiKey))).scalars()] == ["bootstrap"]


# --- users and the audit trail --------------------------------------------------------------------


async def test_user_management_over_http_is_audited_and_never_leaks_hashes(
    client: httpx.AsyncClient, db: Database, audit: AuditService, bootstrap: Bootstrap
) -> None:
    admin = bearer(bootstrap.api_key)
    responses: list[httpx.Response] = [await login(client)]
    ana = await make_user(client, bootstrap.api_key, "ana", "developer")
    responses.append(await client.get("/api/v1/users", headers=admin))
    assert {u["username"] for u in responses[-1].json()["users"]} == {"admin", "ana"}
    responses.append(await client.put(f"/api/v1/users/{ana['id']}", headers=admin, json={"role": "viewer"}))
    assert responses[-1].json()["role"] == "viewer"
    responses.append(
        await client.post("/api/v1/api-keys", headers=admin, json={"name": "ana-key", "user_id": ana["id"]})
    )
    assert responses[-1].json()["role"] == "viewer"
    responses.append(await client.get("/api/v1/api-keys", headers=admin))
    responses.append(await client.get(ME, headers=admin))
    responses.append(await client.post("/api/v1/auth/logout"))
    assert (await client.delete(f"/api/v1/users/{ana['id']}", headers=admin)).status_code == 204
    error = error_of(await client.delete(f"/api/v1/users/{ana['id']}", headers=admin), 404)
    assert error["code"] == "not_found"

    for action in ("user.login", "user.create", "user.update", "apikey.create", "user.logout", "user.delete"):
        assert await audit_rows(audit, action), f"no audit row for {action}"
    async with db.session() as session:
        hashes = [k.key_hash for k in (await session.execute(select(ApiKey))).scalars()]
    text = "".join(r.text for r in responses)
    assert hashes and not any(h in text for h in hashes)
    assert "password" not in text and "argon2" not in text
