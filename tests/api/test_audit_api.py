"""/api/v1/audit over a real platform: filters (action, actor, target, time range), cursor pagination,
bad input, admins only, the action list, and the export of a filtered set as CSV and JSON, streamed in
chunks so a large export (bench/audit_export.py: 100,000 events) runs in constant memory."""

from __future__ import annotations

import csv
import io
import json
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert

from data.models import AuditEvent
from data.types import new_id
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.audit_log import EXPORT_BATCH, AuditFilters
from tests.api.conftest import create_function


async def logs(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return response.json()["logs"]


async def insert_events(platform: Platform, count: int, **fields: Any) -> None:
    """`count` events written straight to the table (as many mutations would have), newest last."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": new_id(),
            "action": fields.get("action", "function.update"),
            "resource_type": "function",
            "resource_id": f"fn-{i % 50}",
            "resource_name": f"bulk-{i % 50}",
            "actor": fields.get("actor", "loader"),
            "actor_type": "user",
            "actor_ip": "10.0.0.1",
            "before": {"memory_mb": 128, "n": i},
            "after": {"memory_mb": 256, "n": i},
            "details": None,
            "created_at": now,
        }
        for i in range(count)
    ]
    async with platform.db.transaction() as session:
        for start in range(0, count, 5000):
            await session.execute(insert(AuditEvent), rows[start : start + 5000])
    del rows


async def test_filters_by_action_actor_and_target(client: httpx.AsyncClient) -> None:
    fn = await create_function(client, "audited")
    await client.put("/api/v1/functions/audited", json={"memory_mb": 512})
    await create_function(client, "other")
    assert [e["action"] for e in await logs(client, target="audited")] == [
        "function.update",
        "function.create",
    ]
    assert [e["resource_name"] for e in await logs(client, target=fn["id"])] == ["audited", "audited"]
    updates = await logs(client, action="function.update")
    assert len(updates) == 1
    assert updates[0]["before"]["memory_mb"] == 256 and updates[0]["after"]["memory_mb"] == 512
    assert updates[0]["actor"] == "key:bootstrap" and updates[0]["actor_type"] == "api_key"
    assert updates[0]["actor_ip"] == "127.0.0.1"
    assert {
        e["resource_name"] for e in await logs(client, actor="key:bootstrap", resource_type="function")
    } == {
        "audited",
        "other",
    }
    assert await logs(client, actor="nobody") == []


async def test_filters_by_time_range(client: httpx.AsyncClient) -> None:
    await create_function(client, "timed")
    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    assert len(await logs(client, target="timed", since=(now - hour).isoformat())) == 1
    assert await logs(client, target="timed", since=(now + hour).isoformat()) == []
    assert await logs(client, target="timed", until=(now - hour).isoformat()) == []
    assert len(await logs(client, target="timed", until=(now + hour).isoformat())) == 1
    naive = (now - hour).replace(tzinfo=None).isoformat()  # taken as UTC
    assert len(await logs(client, target="timed", since=naive)) == 1


async def test_pages_follow_the_cursor_newest_first(client: httpx.AsyncClient, platform: Platform) -> None:
    await insert_events(platform, 45, actor="pager")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"actor": "pager", "limit": 20}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/v1/audit", params=params)).json()
        seen += [e["id"] for e in body["logs"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 45 == len(set(seen))
    assert seen == sorted(seen, reverse=True)


async def test_bad_input_is_refused(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/audit", params={"cursor": "garbage!"})).status_code == 422
    assert (await client.get("/api/v1/audit", params={"limit": 0})).status_code == 422
    assert (await client.get("/api/v1/audit", params={"limit": 101})).status_code == 422
    assert (await client.get("/api/v1/audit", params={"since": "yesterday"})).status_code == 422
    backwards = await client.get(
        "/api/v1/audit", params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"]["field"] == "until"
    assert (await client.get("/api/v1/audit", params={"action": "x" * 65})).status_code == 422
    bad_format = await client.get("/api/v1/audit/export", params={"format": "xml"})
    assert bad_format.status_code == 422
    assert bad_format.json()["error"]["field"] == "format"


async def test_the_audit_log_is_for_admins(client: httpx.AsyncClient) -> None:
    await client.post(
        "/api/v1/users", json={"username": "dev", "password": "developer password 1", "role": "developer"}
    )
    token = (
        await client.post("/api/v1/auth/login", json={"username": "dev", "password": "developer password 1"})
    ).json()["token"]
    dev = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/audit", headers=dev)).status_code == 403
    assert (await client.get("/api/v1/audit/export", headers=dev)).status_code == 403


async def test_the_action_list_names_every_action(client: httpx.AsyncClient) -> None:
    actions = (await client.get("/api/v1/audit/actions")).json()["actions"]
    values = [a["value"] for a in actions]
    assert {"function.create", "settings.update", "dlq.retry", "user.login", "user.logout"} <= set(values)
    assert all(a["label"] for a in actions)


async def test_export_csv_holds_the_filtered_events(client: httpx.AsyncClient) -> None:
    await create_function(client, "exported")
    await client.put("/api/v1/functions/exported", json={"description": "=HYPERLINK(1)"})
    await create_function(client, "not-exported")
    response = await client.get("/api/v1/audit/export", params={"format": "csv", "target": "exported"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["action"] for r in rows] == ["function.update", "function.create"]
    assert json.loads(rows[0]["after"])["description"] == "=HYPERLINK(1)"
    assert {r["resource_name"] for r in rows} == {"exported"}


async def test_export_json_is_one_array_of_events(client: httpx.AsyncClient) -> None:
    await create_function(client, "as-json")
    response = await client.get(
        "/api/v1/audit/export", params={"format": "json", "action": "function.create"}
    )
    assert response.status_code == 200
    events = response.json()
    assert [e["resource_name"] for e in events] == ["as-json"]
    assert events[0]["after"]["name"] == "as-json"
    empty = await client.get("/api/v1/audit/export", params={"format": "json", "actor": "nobody"})
    assert empty.json() == []


async def test_a_large_export_streams_in_chunks_with_constant_memory(platform: Platform) -> None:
    # 24 batches here keep the suite fast; bench/audit_export.py exports 100,000 events the same way.
    total = 24 * EXPORT_BATCH
    await insert_events(platform, total, actor="bulk")
    started = time.perf_counter()
    size = chunks = lines = 0
    async for chunk in await platform.audit.export(SYSTEM, AuditFilters(actor="bulk"), "csv"):
        size, chunks, lines = size + len(chunk), chunks + 1, lines + chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    print(f"\ncsv export: {total} events, {size / 1e6:.1f} MB in {chunks} chunks, {elapsed:.2f} s")
    assert lines == total + 1  # the header and every event once
    assert chunks == 1 + total // EXPORT_BATCH  # the header, then one chunk per batch: it pages
    # Constant memory: while 20 batches stream by, about one is held at a time, never the whole set.
    tracemalloc.start()
    try:
        taken = read = 0
        stream = await platform.audit.export(SYSTEM, AuditFilters(actor="bulk"), "json")
        async for chunk in stream:
            taken, read = taken + len(chunk), read + 1
            if read > 20:
                break
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await stream.aclose()  # type: ignore[attr-defined]
    batch = taken / read
    print(f"json: {read} chunks, {taken / 1e6:.1f} MB read, peak {peak / 1e6:.1f} MB traced")
    assert peak < 12 * batch, (peak, batch)  # holding all 20 would be > 20 batches
