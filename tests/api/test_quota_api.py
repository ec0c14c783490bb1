"""GET/PUT /api/v1/quota and /api/v1/quota/history over the real platform: the original API's fields and
one entry per quota, enforcement (a create over the limit refused with a clear message, invocations over
the day's limit 429, sync and async), bad input (4xx, nothing changed), roles, and the history."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from engine.platform import Platform
from tests.api.conftest import create_function


async def quota(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/quota")
    assert response.status_code == 200, response.text
    return response.json()


def entry(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in body["quotas"] if q["name"] == name)


async def viewer_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await client.post("/api/v1/api-keys", json={"name": "watcher", "role": "viewer"})
    assert response.status_code == 201, response.text
    return httpx.AsyncClient(
        transport=client._transport,
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {response.json()['key']}"},
    )


async def test_quota_keeps_the_original_fields_and_lists_every_quota(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await create_function(client, "one", memory_mb=512)
    await client.post("/api/v1/functions/one/invoke", json={})
    await platform.batcher.flush()  # the invocation's record is written behind

    body = (await client.get("/api/v1/quota", params={"fresh": "true"})).json()

    assert body["function_count"] == 1 and body["max_functions"] == 100
    assert body["total_memory_mb"] == 512 and body["max_memory_mb"] == 10240
    assert body["today_invocations"] == 1 and body["max_invocations_per_day"] == 100_000
    assert body["total_code_size_kb"] > 0 and body["max_code_size_kb"] == 50 * 1024
    assert body["function_usage_percent"] == 1.0 and body["memory_usage_percent"] == 5.0
    assert body["warning_threshold"] == 80
    names = [q["name"] for q in body["quotas"]]
    assert names[:5] == ["functions", "memory", "invocations_day", "invocations_month", "concurrency"]
    assert {"storage_code", "storage_layers", "storage_logs", "storage_records"} <= set(names)
    records = entry(body, "storage_records")
    assert records["unit"] == "bytes" and records["used"] > 0 and "estimate" in records["method"]
    assert all(q["level"] == "ok" for q in body["quotas"])


async def test_a_create_over_the_function_limit_is_refused_with_a_clear_message(
    client: httpx.AsyncClient,
) -> None:
    await create_function(client, "first")
    assert (await client.put("/api/v1/quota", json={"max_functions": 2})).status_code == 200
    await create_function(client, "second")

    refused = await client.post(
        "/api/v1/functions", json={"name": "third", "runtime": "python", "code": "def handler(e, c): pass"}
    )

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["message"].startswith("function quota reached: 2 of 2 functions exist")
    assert (await client.get("/api/v1/functions/third")).status_code == 404
    body = await quota(client)
    assert entry(body, "functions")["level"] == "danger" and body["function_usage_percent"] == 100.0


async def test_invocations_over_the_daily_limit_get_429_sync_and_async(client: httpx.AsyncClient) -> None:
    await create_function(client, "busy")
    used = (await quota(client))["today_invocations"]
    await client.put("/api/v1/quota", json={"max_invocations_per_day": used + 2})

    assert (await client.post("/api/v1/functions/busy/invoke", json={})).status_code == 200
    assert (await client.post("/api/v1/functions/busy/async", json={})).status_code == 202
    refused = await client.post("/api/v1/functions/busy/invoke", json={})
    refused_async = await client.post("/api/v1/functions/busy/async", json={})

    assert refused.status_code == 429 and refused_async.status_code == 429
    assert "daily invocation quota reached" in refused.json()["error"]["message"]
    body = await quota(client)
    assert body["today_invocations"] == used + 2 and entry(body, "invocations_day")["level"] == "danger"
    await client.put("/api/v1/quota", json={"max_invocations_per_day": used + 10})
    assert (await client.post("/api/v1/functions/busy/invoke", json={})).status_code == 200


async def test_limits_and_threshold_change_together_and_are_audited(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/api/v1/quota", json={"max_functions": 4, "max_invocations_per_month": 5000, "warning_threshold": 50}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["max_functions"] == 4 and body["warning_threshold"] == 50
    assert entry(body, "invocations_month")["limit"] == 5000
    limits = (await client.get("/api/v1/quota/limits")).json()["limits"]
    assert limits["max_functions"] == 4 and limits["warning_threshold"] == 50
    setting = (await client.get("/api/v1/settings/quota.max_functions")).json()
    assert setting["value"] == 4  # the same setting the Settings page shows
    audit = (await client.get("/api/v1/audit", params={"action": "quota.update"})).json()["logs"]
    assert len(audit) == 1 and audit[0]["after"]["max_functions"] == 4


async def test_a_function_crosses_into_warning_at_the_threshold(client: httpx.AsyncClient) -> None:
    await client.put("/api/v1/quota", json={"max_functions": 5})
    for i in range(4):
        await create_function(client, f"f{i}")
    functions = entry(await quota(client), "functions")
    assert (functions["percent"], functions["level"]) == (80.0, "warning")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"max_functions": 0}, 422, "max_functions"),
        ({"max_functions": -3}, 422, "max_functions"),
        ({"max_functions": "lots"}, 422, "max_functions"),
        ({"max_functions": 1.5}, 422, "max_functions"),
        ({"max_functions": 10, "warning_threshold": 101}, 422, "warning_threshold"),
        ({"max_functions": 10, "max_unicorns": 1}, 422, "max_unicorns"),
        ({"max_concurrency": 8}, 422, "max_concurrency"),
        ({}, 422, None),
        ([1, 2], 422, None),
    ],
)
async def test_bad_limits_are_refused_and_change_nothing(
    client: httpx.AsyncClient, body: Any, status: int, field: str | None
) -> None:
    before = (await client.get("/api/v1/quota/limits")).json()["limits"]

    response = await client.put("/api/v1/quota", json=body)

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error.get("field") == field
    assert (await client.get("/api/v1/quota/limits")).json()["limits"] == before
    assert (await client.get("/api/v1/audit", params={"action": "quota.update"})).json()["logs"] == []


async def test_a_malformed_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/api/v1/quota", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


async def test_a_viewer_reads_quotas_but_cannot_change_them(client: httpx.AsyncClient) -> None:
    async with await viewer_client(client) as viewer:
        assert (await viewer.get("/api/v1/quota")).status_code == 200
        refused = await viewer.put("/api/v1/quota", json={"max_functions": 1})
    assert refused.status_code == 403
    assert (await quota(client))["max_functions"] == 100


async def test_anonymous_callers_are_refused(platform: Platform, client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as anonymous:
        assert (await anonymous.get("/api/v1/quota")).status_code == 401


async def test_history_returns_the_usage_snapshots(platform: Platform, client: httpx.AsyncClient) -> None:
    first = (await client.get("/api/v1/quota/history", params={"hours": 1})).json()["snapshots"]
    assert len(first) == 1  # taken at start, when the last was older than an hour
    await create_function(client, "snap")
    await platform.quotas.snapshot()

    snapshots = (await client.get("/api/v1/quota/history", params={"hours": 1})).json()["snapshots"]

    assert [s["usage"]["functions"]["used"] for s in snapshots] == [0, 1]
    assert snapshots[1]["usage"]["functions"]["limit"] == 100
    for bad in ("0", "100000", "soon"):
        assert (await client.get("/api/v1/quota/history", params={"hours": bad})).status_code == 422


async def test_a_workflow_create_over_the_workflow_limit_is_refused(client: httpx.AsyncClient) -> None:
    definition = {"start_at": "Done", "states": {"Done": {"type": "succeed"}}}
    first = await client.post("/api/v1/workflows", json={"name": "wf-one", "definition": definition})
    assert first.status_code == 201, first.text
    assert (await client.put("/api/v1/quota", json={"max_workflows": 1})).status_code == 200

    refused = await client.post("/api/v1/workflows", json={"name": "wf-two", "definition": definition})

    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and "workflows quota reached: 1 of 1" in error["message"]
    assert (await client.get("/api/v1/workflows/wf-two")).status_code == 404
    assert entry(await quota(client), "workflows")["level"] == "danger"
