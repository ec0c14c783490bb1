"""/api/v1/logs: log entries across functions with filters and a cursor, and the streamed export."""

from __future__ import annotations

import json

import httpx

from engine.platform import Platform
from tests.api.conftest import create_function

SAYS = 'def handler(event, context):\n    print("says " + event["word"])\n    return 1\n'


async def _say(client: httpx.AsyncClient, platform: Platform, fn: str, *words: str) -> None:
    for word in words:
        assert (await client.post(f"/api/v1/functions/{fn}/invoke", json={"word": word})).status_code == 200
    await platform.batcher.flush()


async def test_logs_are_listed_across_functions_with_filters_and_a_cursor(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_function(client, name="one", code=SAYS)
    await create_function(client, name="two", code=SAYS)
    await _say(client, platform, "one", "alpha", "beta")
    await _say(client, platform, "two", "gamma")
    first = (await client.get("/api/v1/logs", params={"limit": 2})).json()
    assert [(e["function_name"], e["message"].strip()) for e in first["logs"]] == [
        ("two", "says gamma"),
        ("one", "says beta"),
    ]
    rest = (await client.get("/api/v1/logs", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [e["message"].strip() for e in rest["logs"]] == ["says alpha"] and rest["next_cursor"] is None
    found = (await client.get("/api/v1/logs", params={"q": "BETA", "function": "one"})).json()
    assert [e["message"].strip() for e in found["logs"]] == ["says beta"]
    assert found["scanned"] == 2 and found["capped"] is False and found["scan_limit"] >= 1000


async def test_bad_log_filters_are_422_with_the_field(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/logs", params={"function": "ghost"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "function"
    backwards = await client.get(
        "/api/v1/logs", params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    )
    assert backwards.status_code == 422 and backwards.json()["error"]["field"] == "until"


async def test_export_streams_json_lines(client: httpx.AsyncClient, platform: Platform) -> None:
    await create_function(client, name="one", code=SAYS)
    await _say(client, platform, "one", "alpha", "beta")
    response = await client.get("/api/v1/logs/export", params={"format": "jsonl", "q": "alpha"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    assert "nimbus-logs.jsonl" in response.headers["content-disposition"]
    assert [json.loads(line)["message"].strip() for line in response.text.splitlines()] == ["says alpha"]
    text = await client.get("/api/v1/logs/export", params={"function": "one"})
    assert text.text.count("INFO  one") == 2
    assert (await client.get("/api/v1/logs/export", params={"level": "loud"})).status_code == 422
