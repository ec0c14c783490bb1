"""Environments over the API (on SQLite: tests/engine/test_environments.py runs the service on both
backends): the acceptance (one function deployed to dev and prod sees
each environment's own variables), invoking where a function is not deployed, async invocations that run
in their environment, deploy/undeploy/promote, secrets that are never read back, the deployment matrix,
every bad input as a 4xx naming its field, and the CLI (`invoke --env`, `env ls`) against a real server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli import app as cli
from engine.events import InvocationFinished
from engine.platform import Platform
from tests.api.conftest import create_function, make_settings
from tests.server import Server

SHOW_ENV = """
import os

def handler(event, context):
    return {
        "greeting": os.environ.get("GREETING"),
        "token": os.environ.get("TOKEN"),
        "environment": os.environ.get("NIMBUS_ENVIRONMENT"),
        "version": context.function_version,
        "memory": context.memory_limit_in_mb,
    }
"""


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        yield running


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def invoke(client: httpx.AsyncClient, name: str, environment: str | None = None) -> httpx.Response:
    params = {"environment": environment} if environment else {}
    return await client.post(f"/api/v1/functions/{name}/invoke", json={}, params=params)


async def set_greetings(client: httpx.AsyncClient) -> None:
    for env in ("dev", "prod"):
        body = {"env_vars": {"GREETING": f"hello from {env}"}}
        await ok(await client.put(f"/api/v1/environments/{env}/variables", json=body))


# --- the acceptance ---------------------------------------------------------------------------------


async def test_the_same_function_deployed_to_dev_and_prod_sees_each_environments_own_values(
    client: httpx.AsyncClient,
) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    await set_greetings(client)
    await ok(await client.post("/api/v1/functions/greeter/versions"), 201)
    await ok(await client.put("/api/v1/functions/greeter/environments/dev", json={"version": None}))
    await ok(await client.put("/api/v1/functions/greeter/environments/prod", json={"version": 1}))

    dev = await ok(await invoke(client, "greeter", "dev"))
    prod = await ok(await invoke(client, "greeter", "prod"))

    assert dev["body"]["greeting"] == "hello from dev" and dev["body"]["environment"] == "dev"
    assert dev["version"] == "$LATEST" and dev["environment"] == "dev"
    assert prod["body"]["greeting"] == "hello from prod" and prod["body"]["environment"] == "prod"
    assert prod["version"] == "1" and prod["body"]["version"] == "1" and prod["environment"] == "prod"


async def test_an_invoke_naming_no_environment_runs_latest_in_the_default_one(
    client: httpx.AsyncClient,
) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    await set_greetings(client)
    body = await ok(await invoke(client, "greeter"))
    assert body["version"] == "$LATEST" and body["environment"] == "dev"
    assert body["body"]["greeting"] == "hello from dev"


async def test_invoking_where_the_function_is_not_deployed_is_409(client: httpx.AsyncClient) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    error = error_of(await invoke(client, "greeter", "prod"), 409)
    assert error["message"] == "function greeter is not deployed to prod" and error["field"] == "environment"
    assert error_of(await invoke(client, "greeter", "qa"), 404)["field"] == "environment"


async def test_an_async_invoke_runs_in_the_environment_it_was_submitted_for(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    await set_greetings(client)
    await ok(await client.put("/api/v1/functions/greeter/environments/prod", json={"memory_mb": 512}))
    with platform.bus.subscribe(InvocationFinished) as finished:
        accepted = await ok(
            await client.post("/api/v1/functions/greeter/async", json={}, params={"environment": "prod"}), 202
        )
        request_id = accepted["request_id"]
        await finished.wait_for(lambda e: e.invocation_id == request_id and e.final, timeout=15)
    record = await ok(await client.get(f"/api/v1/invocations/{request_id}"))
    assert record["status"] == "success" and record["environment"] == "prod"
    assert record["output"]["greeting"] == "hello from prod" and record["output"]["memory"] == 512


async def test_an_async_invoke_where_not_deployed_is_refused_before_it_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    response = await client.post(
        "/api/v1/functions/greeter/async", json={}, params={"environment": "staging"}
    )
    assert error_of(response, 409)["message"] == "function greeter is not deployed to staging"
    page = await ok(await client.get("/api/v1/invocations"))
    assert page["invocations"] == []


async def test_invocations_show_and_filter_by_environment(client: httpx.AsyncClient) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    await ok(await client.put("/api/v1/functions/greeter/environments/prod", json={}))
    await ok(await invoke(client, "greeter", "prod"))
    await ok(await invoke(client, "greeter"))
    prod = await ok(await client.get("/api/v1/invocations", params={"environment": "prod"}))
    assert [i["environment"] for i in prod["invocations"]] == ["prod"]
    dev = await ok(await client.get("/api/v1/functions/greeter/invocations", params={"environment": "dev"}))
    assert [i["environment"] for i in dev["invocations"]] == ["dev"]


# --- environments -----------------------------------------------------------------------------------


async def test_the_seeded_environments_are_listed_in_promotion_order(client: httpx.AsyncClient) -> None:
    page = await ok(await client.get("/api/v1/environments"))
    assert [e["name"] for e in page["environments"]] == ["dev", "staging", "prod"] and page["total"] == 3
    assert [e["is_default"] for e in page["environments"]] == [True, False, False]


async def test_an_environment_is_created_renamed_and_deleted(client: httpx.AsyncClient) -> None:
    created = await ok(
        await client.post(
            "/api/v1/environments", json={"name": "qa", "description": "Testers", "position": 1}
        ),
        201,
    )
    assert created["position"] == 1 and created["is_default"] is False and created["secrets"] == []
    renamed = await ok(await client.put("/api/v1/environments/qa", json={"name": "uat"}))
    assert renamed["id"] == created["id"] and renamed["name"] == "uat"
    assert (await ok(await client.get(f"/api/v1/environments/{created['id']}")))["name"] == "uat"
    await ok(await client.delete("/api/v1/environments/uat"), 204)
    assert error_of(await client.get("/api/v1/environments/uat"), 404)["field"] == "environment"


async def test_a_new_default_takes_over_from_the_old_one(client: httpx.AsyncClient) -> None:
    await ok(await client.post("/api/v1/environments", json={"name": "sandbox", "is_default": True}), 201)
    page = await ok(await client.get("/api/v1/environments"))
    assert [e["name"] for e in page["environments"] if e["is_default"]] == ["sandbox"]
    error = error_of(await client.put("/api/v1/environments/sandbox", json={"is_default": False}), 400)
    assert error["field"] == "is_default"


async def test_deleting_an_environment_with_deployments_needs_force(client: httpx.AsyncClient) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    await ok(await client.put("/api/v1/functions/greeter/environments/staging", json={}))
    error = error_of(await client.delete("/api/v1/environments/staging"), 409)
    assert error["field"] == "force" and "1 function(s) are deployed to staging" in error["message"]
    await ok(await client.delete("/api/v1/environments/staging", params={"force": "true"}), 204)
    configs = await ok(await client.get("/api/v1/functions/greeter/environments"))
    assert configs == {"configs": [], "total": 0}


async def test_secrets_are_set_and_removed_by_name_and_never_read_back(client: httpx.AsyncClient) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    body = {"secrets": {"TOKEN": "s3cr3t-prod-token", "OTHER": "x"}}
    changed = await client.put("/api/v1/environments/dev/secrets", json=body)
    assert await ok(changed) == {"secrets": ["OTHER", "TOKEN"], "total": 2}
    removed = await client.put("/api/v1/environments/dev/secrets", json={"secrets": {"OTHER": None}})
    assert (await ok(removed))["secrets"] == ["TOKEN"]
    shown = [
        await client.get("/api/v1/environments/dev"),
        await client.get("/api/v1/environments/dev/secrets"),
        await client.get("/api/v1/environments"),
        await client.get("/api/v1/audit", params={"resource_type": "environment"}),
    ]
    assert all(r.status_code == 200 and "s3cr3t" not in r.text for r in shown)
    assert (await ok(shown[0]))["secrets"] == ["TOKEN"]
    assert (await ok(await invoke(client, "greeter")))["body"]["token"] == "s3cr3t-prod-token"


# --- deployments --------------------------------------------------------------------------------------


async def test_a_function_lists_its_deployments_in_the_originals_shape(client: httpx.AsyncClient) -> None:
    fn = await create_function(client, name="greeter", code=SHOW_ENV)
    body = {"env_vars": {"GREETING": "override"}, "memory_mb": 512, "timeout_sec": 10}
    config = await ok(await client.put("/api/v1/functions/greeter/environments/prod", json=body))
    assert config["environment_name"] == "prod" and config["version"] is None and config["memory_mb"] == 512
    page = await ok(await client.get(f"/api/v1/functions/{fn['id']}/environments"))
    assert page["total"] == 1
    (listed,) = page["configs"]
    assert {k: listed[k] for k in ("function_id", "environment_name", "env_vars", "timeout_sec")} == {
        "function_id": fn["id"],
        "environment_name": "prod",
        "env_vars": {"GREETING": "override"},
        "timeout_sec": 10,
    }
    result = await ok(await invoke(client, "greeter", "prod"))
    assert result["body"]["greeting"] == "override" and result["body"]["memory"] == 512


async def test_a_redeploy_keeps_the_fields_it_does_not_send(client: httpx.AsyncClient) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    await ok(await client.post("/api/v1/functions/greeter/versions"), 201)
    await ok(await client.put("/api/v1/functions/greeter/environments/prod", json={"memory_mb": 512}))
    config = await ok(await client.put("/api/v1/functions/greeter/environments/prod", json={"version": 1}))
    assert config["version"] == 1 and config["memory_mb"] == 512


async def test_undeploy_removes_the_deployment(client: httpx.AsyncClient) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    await ok(await client.put("/api/v1/functions/greeter/environments/prod", json={}))
    await ok(await invoke(client, "greeter", "prod"))
    await ok(await client.delete("/api/v1/functions/greeter/environments/prod"), 204)
    assert error_of(await invoke(client, "greeter", "prod"), 409)["field"] == "environment"
    assert error_of(await client.delete("/api/v1/functions/greeter/environments/prod"), 404)


async def test_promoting_latest_publishes_it_first_and_says_so(client: httpx.AsyncClient) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    first = await ok(await client.post("/api/v1/functions/greeter/environments/dev/promote"))
    assert first["from"] == "dev" and first["to"] == "staging" and first["version"] == 1
    assert first["published"] is True and "published it as version 1" in first["message"]
    second = await ok(await client.post("/api/v1/functions/greeter/environments/staging/promote"))
    assert second["to"] == "prod" and second["version"] == 1 and second["published"] is False
    versions = await ok(await client.get("/api/v1/functions/greeter/versions"))
    assert versions["total"] == 1
    assert (await ok(await invoke(client, "greeter", "prod")))["version"] == "1"
    error = error_of(await client.post("/api/v1/functions/greeter/environments/prod/promote"), 400)
    assert error["field"] == "environment" and "last environment" in error["message"]


async def test_the_matrix_shows_what_is_deployed_where(client: httpx.AsyncClient) -> None:
    await create_function(client, name="alpha", code=SHOW_ENV)
    await create_function(client, name="beta", code=SHOW_ENV)
    await ok(await client.post("/api/v1/functions/beta/versions"), 201)
    await ok(await client.put("/api/v1/functions/beta/environments/prod", json={"version": 1}))
    matrix = await ok(await client.get("/api/v1/deployments"))
    assert [e["name"] for e in matrix["environments"]] == ["dev", "staging", "prod"]
    cells = {fn["name"]: fn["environments"] for fn in matrix["functions"]}
    assert cells["alpha"] == {
        "dev": {"version": None, "label": "$LATEST", "implicit": True},
        "staging": None,
        "prod": None,
    }
    assert cells["beta"]["prod"] == {"version": 1, "label": "v1", "implicit": False}
    page = await ok(await client.get("/api/v1/deployments", params={"limit": 1}))
    assert [fn["name"] for fn in page["functions"]] == ["alpha"] and page["next_cursor"]


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/api/v1/environments", {"name": "Prod!"}, 422, "name"),
        ("POST", "/api/v1/environments", {"name": "dev"}, 409, "name"),
        ("POST", "/api/v1/environments", {}, 422, "name"),
        ("POST", "/api/v1/environments", {"name": "qa", "position": -1}, 422, "position"),
        ("POST", "/api/v1/environments", {"name": "qa", "colour": "red"}, 422, "colour"),
        ("PUT", "/api/v1/environments/nowhere", {"description": "x"}, 404, "environment"),
        ("PUT", "/api/v1/environments/staging", {"name": "prod"}, 409, "name"),
        ("PUT", "/api/v1/environments/staging", {"position": None}, 422, "position"),
        ("DELETE", "/api/v1/environments/dev", None, 400, "environment"),
        ("DELETE", "/api/v1/environments/nowhere", None, 404, "environment"),
        ("PUT", "/api/v1/environments/dev/variables", {"env_vars": {"1BAD": "x"}}, 422, "env_vars"),
        ("PUT", "/api/v1/environments/dev/variables", {"env_vars": {"NIMBUS_X": "x"}}, 422, "env_vars"),
        ("PUT", "/api/v1/environments/dev/variables", {"env_vars": {"A": 1}}, 422, "env_vars.A"),
        ("PUT", "/api/v1/environments/dev/secrets", {"secrets": {"PATH": "x"}}, 422, "secrets"),
        ("PUT", "/api/v1/environments/nowhere/secrets", {"secrets": {"A": "x"}}, 404, "environment"),
        ("PUT", "/api/v1/functions/greeter/environments/prod", {"version": 7}, 404, "version"),
        ("PUT", "/api/v1/functions/greeter/environments/prod", {"version": 0}, 422, "version"),
        ("PUT", "/api/v1/functions/greeter/environments/prod", {"memory_mb": 64}, 422, "memory_mb"),
        ("PUT", "/api/v1/functions/greeter/environments/prod", {"timeout_sec": 301}, 422, "timeout_sec"),
        ("PUT", "/api/v1/functions/greeter/environments/prod", {"env_vars": {"HOME": "/"}}, 422, "env_vars"),
        ("PUT", "/api/v1/functions/greeter/environments/prod", {"active_alias": "x"}, 422, "active_alias"),
        ("PUT", "/api/v1/functions/greeter/environments/nowhere", {}, 404, "environment"),
        ("PUT", "/api/v1/functions/nobody/environments/prod", {}, 404, None),
        ("POST", "/api/v1/functions/greeter/environments/staging/promote", None, 409, "environment"),
        ("POST", "/api/v1/functions/greeter/environments/nowhere/promote", None, 404, "environment"),
        ("GET", "/api/v1/deployments?limit=0", None, 422, "limit"),
        ("GET", "/api/v1/deployments?cursor=garbage", None, 422, "cursor"),
    ],
)
async def test_bad_input_is_a_4xx_naming_the_field(
    client: httpx.AsyncClient, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    await create_function(client, name="greeter", code=SHOW_ENV)
    response = await client.request(method, path, json=body)
    error = error_of(response, status)
    assert error.get("field") == field, error
    assert "Traceback" not in response.text


async def test_a_malformed_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/api/v1/environments/dev/variables", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert error_of(response, 400)["code"] == "bad_request"


# --- the CLI against a real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("environments-cli")
    server = Server(root, NIMBUS_DATABASE_URL=f"sqlite+aiosqlite:///{root / 'nimbus.db'}")
    server.start()
    try:
        with server.api() as api:
            created = api.post(
                "/api/v1/functions", json={"name": "greeter", "runtime": "python", "code": SHOW_ENV}
            )
            assert created.status_code == 201, created.text
            variables = {"env_vars": {"GREETING": "hello from prod"}}
            assert api.put("/api/v1/environments/prod/variables", json=variables).status_code == 200
            assert api.put("/api/v1/functions/greeter/environments/prod", json={}).status_code == 200
        yield server
    finally:
        server.stop()


def nimbus(server: Server, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--url", server.url, "--api-key", server.api_key, *args])


def test_cli_invoke_runs_in_the_environment_named_with_env(cli_server: Server) -> None:
    result = nimbus(cli_server, "invoke", "greeter", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["greeting"] == "hello from prod"
    refused = nimbus(cli_server, "invoke", "greeter", "--env", "staging")
    assert refused.exit_code == 1 and "function greeter is not deployed to staging" in refused.stderr


def test_cli_env_ls_lists_environments_with_the_default_marked(cli_server: Server) -> None:
    result = nimbus(cli_server, "env", "ls")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "DEFAULT", "POSITION"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == ["dev", "staging", "prod"]
    assert rows["dev"].split()[1] == "*" and "GREETING" in rows["prod"]


def test_cli_env_deployments_shows_the_matrix(cli_server: Server) -> None:
    result = nimbus(cli_server, "env", "deployments")
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == ["FUNCTION", "DEV", "STAGING", "PROD"]
    assert row.split() == ["greeter", "$LATEST", "-", "$LATEST"]
