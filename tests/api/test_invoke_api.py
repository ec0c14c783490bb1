"""Invoking over the API: sync results and errors, async acceptance, idempotency, records, replay."""

from __future__ import annotations

import httpx

from engine.events import InvocationFinished
from engine.platform import Platform
from tests.api.conftest import create_function

FAILING = """
def handler(event, context):
    print("about to fail")
    return helper(event)

def helper(event):
    raise ValueError("bad order: " + str(event.get("id")))
"""


async def test_sync_invoke_returns_the_result_and_the_original_fields(client: httpx.AsyncClient) -> None:
    await create_function(client)
    response = await client.post("/api/v1/functions/hello/invoke", json={"name": "Ada"})
    assert response.status_code == 200
    body = response.json()
    assert body["body"] == {"hello": "Ada"} and body["status_code"] == 200 and body["error"] is None
    assert body["version"] == "$LATEST" and body["billed_time_ms"] >= 100
    assert isinstance(body["cold_start"], bool) and body["duration_ms"] >= 0
    assert response.headers["X-Nimbus-Request-Id"] == body["request_id"]


async def test_first_invoke_is_cold_and_the_next_is_warm(client: httpx.AsyncClient) -> None:
    await create_function(client)
    first = (await client.post("/api/v1/functions/hello/invoke", json={})).json()
    second = (await client.post("/api/v1/functions/hello/invoke", json={})).json()
    assert first["cold_start"] is True and first["init_ms"] > 0
    assert second["cold_start"] is False


async def test_function_error_is_structured_with_the_user_stack_and_logs(client: httpx.AsyncClient) -> None:
    await create_function(client, name="orders", code=FAILING)
    response = await client.post("/api/v1/functions/orders/invoke", json={"id": 7})
    assert response.status_code == 200 and response.headers["X-Nimbus-Function-Error"] == "Unhandled"
    body = response.json()
    assert body["status_code"] == 500 and body["body"] is None
    assert body["error"]["type"] == "ValueError" and body["error"]["message"] == "bad order: 7"
    assert "helper" in body["error"]["stack"] and "main.py" in body["error"]["stack"]
    assert "shim" not in body["error"]["stack"] and "engine/" not in body["error"]["stack"]
    assert "about to fail" in body["logs"]


async def test_timeout_is_504_and_the_platform_keeps_serving(client: httpx.AsyncClient) -> None:
    await create_function(
        client, name="spin", timeout_sec=1, code="def handler(e, c):\n    while True: pass\n"
    )
    response = (await client.post("/api/v1/functions/spin/invoke", json={})).json()
    assert response["status_code"] == 504 and response["error"]["type"] == "Timeout"
    await create_function(client)
    assert (await client.post("/api/v1/functions/hello/invoke", json={})).json()["body"] == {"hello": "world"}


async def test_async_invoke_is_accepted_then_recorded(client: httpx.AsyncClient, platform: Platform) -> None:
    await create_function(client)
    with platform.bus.subscribe(InvocationFinished) as finished:
        response = await client.post("/api/v1/functions/hello/async", json={"name": "later"})
        assert response.status_code == 202 and response.json()["status"] == "accepted"
        request_id = response.json()["request_id"]
        await finished.wait_for(lambda e: e.invocation_id == request_id and e.final, timeout=10)
    detail = (await client.get(f"/api/v1/invocations/{request_id}")).json()
    assert detail["status"] == "success" and detail["output"] == {"hello": "later"}
    assert detail["mode"] == "async" and detail["input"] == {"name": "later"} and len(detail["attempts"]) == 1


async def test_accepted_async_invocation_is_visible_at_once(client: httpx.AsyncClient) -> None:
    await create_function(client)
    request_id = (await client.post("/api/v1/functions/hello/async", json={})).json()["request_id"]
    response = await client.get(f"/api/v1/invocations/{request_id}")
    assert response.status_code == 200 and response.json()["function_name"] == "hello"


async def test_idempotency_key_returns_the_first_invocation(client: httpx.AsyncClient) -> None:
    await create_function(client, code="import uuid\ndef handler(e, c):\n    return str(uuid.uuid4())\n")
    headers = {"Idempotency-Key": "order-42"}
    first = (await client.post("/api/v1/functions/hello/invoke", json={}, headers=headers)).json()
    again = await client.post("/api/v1/functions/hello/invoke", json={}, headers=headers)
    assert again.json()["request_id"] == first["request_id"] and again.json()["body"] == first["body"]
    assert again.headers["Idempotent-Replayed"] == "true"
    one = (
        await client.post("/api/v1/functions/hello/async", json={}, headers={"Idempotency-Key": "a"})
    ).json()
    two = (
        await client.post("/api/v1/functions/hello/async", json={}, headers={"Idempotency-Key": "a"})
    ).json()
    assert one["request_id"] == two["request_id"]


async def test_invocations_list_filters_by_function_and_status(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_function(client)
    await create_function(client, name="orders", code=FAILING)
    for _ in range(3):
        await client.post("/api/v1/functions/hello/invoke", json={})
    await client.post("/api/v1/functions/orders/invoke", json={})
    await platform.batcher.flush()
    hello = (await client.get("/api/v1/invocations", params={"function": "hello"})).json()["invocations"]
    failed = (await client.get("/api/v1/invocations", params={"status": "failed"})).json()["invocations"]
    assert len(hello) == 3 and {i["function_name"] for i in hello} == {"hello"}
    assert [i["function_name"] for i in failed] == ["orders"]
    page = (await client.get("/api/v1/functions/hello/invocations", params={"limit": 2})).json()
    assert len(page["invocations"]) == 2 and page["next_cursor"]


async def test_invocation_detail_has_logs_and_replay_runs_it_again(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_function(client, code='def handler(e, c):\n    print("got", e)\n    return e\n')
    first = (await client.post("/api/v1/functions/hello/invoke", json={"n": 1})).json()
    await platform.batcher.flush()
    detail = (await client.get(f"/api/v1/invocations/{first['request_id']}")).json()
    assert "got {'n': 1}" in detail["logs"] and detail["input"] == {"n": 1}
    replayed = (await client.post(f"/api/v1/invocations/{first['request_id']}/replay")).json()
    assert replayed["body"] == {"n": 1} and replayed["request_id"] != first["request_id"]
    await platform.batcher.flush()
    again = (await client.get(f"/api/v1/invocations/{replayed['request_id']}")).json()
    assert again["replay_of"] == first["request_id"]


async def test_function_logs_long_poll_returns_new_entries(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_function(client, code='def handler(e, c):\n    print("line", e["n"])\n    return 1\n')
    await client.post("/api/v1/functions/hello/invoke", json={"n": 1})
    await platform.batcher.flush()
    logs = (await client.get("/api/v1/functions/hello/logs")).json()["logs"]
    assert len(logs) == 1 and "line 1" in logs[0]["message"]
    import asyncio

    poll = asyncio.create_task(
        client.get("/api/v1/functions/hello/logs", params={"after": logs[0]["id"], "wait": 10})
    )
    await asyncio.sleep(0)
    await client.post("/api/v1/functions/hello/invoke", json={"n": 2})
    newer = (await poll).json()["logs"]
    assert [("line 2" in row["message"]) for row in newer] == [True]


async def test_system_reports_version_isolation_and_runtimes(client: httpx.AsyncClient) -> None:
    info = (await client.get("/api/v1/system")).json()
    assert info["version"] and info["uptime_sec"] >= 0 and info["database"] == "sqlite"
    assert info["isolation"]["level"] in ("strong", "partial", "degraded")
    assert "python" in [r["name"] for r in info["runtimes"]]


async def test_health_probes_need_no_key(client: httpx.AsyncClient) -> None:
    bare = {"Authorization": ""}
    assert (await client.get("/health", headers=bare)).json() == {"status": "healthy"}
    assert (await client.get("/health/live", headers=bare)).json() == {"status": "alive"}
    assert (await client.get("/health/ready", headers=bare)).json() == {"status": "ready"}
