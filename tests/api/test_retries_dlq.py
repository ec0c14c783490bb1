"""Async retries with backoff, the DLQ, and acting on DLQ messages."""

from __future__ import annotations

import httpx

from engine.events import DlqChanged, InvocationFinished
from engine.platform import Platform
from tests.api.conftest import create_function

FLAKY = """
def handler(event, context):
    if context.attempt < 3:
        raise ConnectionError(f"upstream down (attempt {context.attempt})")
    return {"ok": True, "attempt": context.attempt}
"""
ALWAYS_FAILS = 'def handler(event, context):\n    raise RuntimeError("nope " + str(context.attempt))\n'
FAST_RETRIES = {"retry_attempts": 3, "retry_backoff_ms": 10, "retry_backoff_max_ms": 50}


async def _settled(platform: Platform, client: httpx.AsyncClient, fn: str, event: object) -> str:
    with platform.bus.subscribe(InvocationFinished) as finished:
        request_id = (await client.post(f"/api/v1/functions/{fn}/async", json=event)).json()["request_id"]
        await finished.wait_for(lambda e: e.invocation_id == request_id and e.final, timeout=15)
    return request_id


async def test_failing_twice_then_succeeding_ends_succeeded_with_three_attempts(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_function(client, name="flaky", code=FLAKY, **FAST_RETRIES)
    request_id = await _settled(platform, client, "flaky", {})
    detail = (await client.get(f"/api/v1/invocations/{request_id}")).json()
    assert detail["status"] == "success" and detail["output"] == {"ok": True, "attempt": 3}
    assert [(a["attempt"], a["status"]) for a in detail["attempts"]] == [
        (1, "failed"),
        (2, "failed"),
        (3, "success"),
    ]
    assert detail["attempts"][0]["error_message"] == "upstream down (attempt 1)"
    assert (await client.get("/api/v1/dlq")).json()["messages"] == []


async def test_always_failing_lands_in_the_dlq_with_every_error(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_function(client, name="doomed", code=ALWAYS_FAILS, **FAST_RETRIES)
    with platform.bus.subscribe(DlqChanged) as dlq_events:
        request_id = await _settled(platform, client, "doomed", {"order": 1})
        await dlq_events.wait_for(lambda e: e.status == "pending", timeout=5)
    detail = (await client.get(f"/api/v1/invocations/{request_id}")).json()
    assert detail["status"] == "failed" and len(detail["attempts"]) == 3
    messages = (await client.get("/api/v1/dlq")).json()["messages"]
    assert len(messages) == 1
    msg = messages[0]
    assert msg["original_request_id"] == request_id and msg["payload"] == {"order": 1}
    assert [a["message"] for a in msg["attempts"]] == ["nope 1", "nope 2", "nope 3"]
    assert all(a["started_at"] and a["ended_at"] for a in msg["attempts"])
    stats = (await client.get("/api/v1/dlq/stats")).json()
    assert stats["total"] == 1 and stats["pending"] == 1


async def test_retry_from_the_dlq_runs_it_again(client: httpx.AsyncClient, platform: Platform) -> None:
    await create_function(client, name="doomed", code=ALWAYS_FAILS, **FAST_RETRIES)
    with platform.bus.subscribe(DlqChanged) as dlq_events:
        await _settled(platform, client, "doomed", {"order": 1})
        await dlq_events.wait_for(lambda e: e.status == "pending", timeout=5)
    msg_id = (await client.get("/api/v1/dlq")).json()["messages"][0]["id"]
    still_failing = (await client.post(f"/api/v1/dlq/{msg_id}/retry")).json()
    assert still_failing["success"] is False and still_failing["dlq"]["status"] == "pending"
    assert still_failing["dlq"]["retry_count"] == 1
    await client.put("/api/v1/functions/doomed", json={"code": "def handler(e, c):\n    return e\n"})
    fixed = (await client.post(f"/api/v1/dlq/{msg_id}/retry")).json()
    assert fixed["success"] is True and fixed["response"]["body"] == {"order": 1}
    assert fixed["dlq"]["status"] == "resolved"
    again = await client.post(f"/api/v1/dlq/{msg_id}/retry")
    assert again.status_code == 400


async def test_discard_and_purge(client: httpx.AsyncClient, platform: Platform) -> None:
    await create_function(client, name="doomed", code=ALWAYS_FAILS, retry_attempts=1)
    with platform.bus.subscribe(DlqChanged) as dlq_events:
        for n in range(2):
            await _settled(platform, client, "doomed", {"n": n})
        await dlq_events.wait_for(lambda e: e.status == "pending", timeout=5)
    await platform.batcher.flush()
    messages = (await client.get("/api/v1/dlq")).json()["messages"]
    assert len(messages) == 2
    discarded = (await client.post(f"/api/v1/dlq/{messages[0]['id']}/discard")).json()
    assert discarded["dlq"]["status"] == "discarded"
    assert (await client.get("/api/v1/dlq", params={"status": "pending"})).json()["messages"][0][
        "id"
    ] == messages[1]["id"]
    assert (await client.delete("/api/v1/dlq")).json() == {"deleted": 2}
    assert (await client.get("/api/v1/dlq/stats")).json()["total"] == 0


async def test_retry_from_the_dlq_runs_in_the_original_environment(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    code = (
        "import os\n"
        "def handler(e, c):\n"
        "    if os.environ.get('FAIL'):\n"
        "        raise RuntimeError('down')\n"
        "    return os.environ['NIMBUS_ENVIRONMENT']\n"
    )
    await create_function(client, name="picky", code=code, retry_attempts=1)
    assert (await client.put("/api/v1/functions/picky/environments/prod", json={})).status_code == 200
    await client.put("/api/v1/environments/prod/variables", json={"env_vars": {"FAIL": "1"}})
    with platform.bus.subscribe(DlqChanged) as dlq_events, platform.bus.subscribe(InvocationFinished) as done:
        accepted = await client.post("/api/v1/functions/picky/async", params={"environment": "prod"}, json={})
        request_id = accepted.json()["request_id"]
        await done.wait_for(lambda e: e.invocation_id == request_id and e.final, timeout=15)
        await dlq_events.wait_for(lambda e: e.status == "pending", timeout=5)
    await platform.batcher.flush()
    msg_id = (await client.get("/api/v1/dlq")).json()["messages"][0]["id"]
    await client.put("/api/v1/environments/prod/variables", json={"env_vars": {}})
    retried = (await client.post(f"/api/v1/dlq/{msg_id}/retry")).json()
    assert retried["success"] is True and retried["response"]["body"] == "prod"  # not the default (dev)


async def test_the_dlq_list_filters_by_error_type_and_time(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_function(client, name="doomed", code=ALWAYS_FAILS, retry_attempts=1)
    await create_function(
        client, name="typed", code="def handler(e, c):\n    raise KeyError('k')\n", retry_attempts=1
    )
    with platform.bus.subscribe(DlqChanged) as dlq_events:
        for fn in ("doomed", "typed"):
            await _settled(platform, client, fn, {})
        await dlq_events.wait_for(lambda e: e.status == "pending", timeout=5)
    await platform.batcher.flush()

    async def listed(**params: str) -> list[str]:
        response = await client.get("/api/v1/dlq", params=params)
        assert response.status_code == 200, response.text
        return [m["function_name"] for m in response.json()["messages"]]

    assert sorted(await listed()) == ["doomed", "typed"]
    assert await listed(error_type="KeyError") == ["typed"]
    assert await listed(error_type="RuntimeError") == ["doomed"]
    assert await listed(since="2999-01-01T00:00:00Z") == []
    reversed_range = await client.get(
        "/api/v1/dlq", params={"since": "2030-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"}
    )
    assert reversed_range.status_code == 422 and reversed_range.json()["error"]["field"] == "until"
