"""/api/v1/retention over the real platform: stats (the original's fields and a row per kind of data),
the policy (read, change, bad input refused with nothing changed), the preview, the cleanup (waited for,
or 202 and followed; one at a time), its history, and who may do what."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from data.types import utcnow
from engine.platform import Platform
from tests.api.test_quota_api import viewer_client
from tests.ops_rows import add_dead_letters, add_invocations

DAY = timedelta(days=1)
DEFAULT_POLICY = {
    "invocations_days": 30,
    "logs_days": 14,
    "dlq_days": 7,
    "workflow_executions_days": 30,
    "auto_cleanup": False,
    "cleanup_time": "03:00",
}


async def old_data(platform: Platform) -> dict[str, list[str]]:
    now = utcnow()
    return {
        "expired": await add_invocations(platform.db, now - 40 * DAY, 3, logs=2),
        "kept": await add_invocations(platform.db, now - 2 * DAY, 2, logs=1),
        "dlq_expired": await add_dead_letters(platform.db, now - 10 * DAY, ["resolved", "discarded"]),
        "dlq_kept": await add_dead_letters(platform.db, now - 10 * DAY, ["pending"]),
    }


def by_type(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["type"]: row for row in body["types"]}


async def test_stats_keep_the_original_fields_and_add_a_row_per_kind_of_data(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await old_data(platform)

    body = (await client.get("/api/v1/retention/stats")).json()

    assert (body["total_invocations"], body["old_invocations"]) == (5, 3)
    assert (body["total_dlq_messages"], body["old_dlq_messages"]) == (3, 2)
    assert (body["log_retention_days"], body["dlq_retention_days"]) == (30, 7)
    rows = by_type(body)
    assert list(rows) == ["logs", "invocations", "dlq", "workflow_executions", "webhook_calls"]
    assert rows["logs"]["rows"] == 8 and rows["logs"]["expired"] == 6
    assert rows["invocations"]["size_bytes"] > 0 and rows["invocations"]["size_method"]
    assert rows["invocations"]["oldest_at"] < rows["invocations"]["cutoff"]
    assert rows["workflow_executions"]["rows"] == 0 and rows["workflow_executions"]["oldest_at"] is None
    assert body["policy"] == DEFAULT_POLICY and body["running"] is None and body["last_run"] is None


async def test_the_preview_says_what_a_cleanup_would_delete(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await old_data(platform)
    body = (await client.get("/api/v1/retention/preview")).json()
    rows = by_type(body)
    assert (rows["invocations"]["rows"], rows["logs"]["rows"], rows["dlq"]["rows"]) == (3, 6, 2)
    assert body["total"] == 11


async def test_cleanup_deletes_what_expired_keeps_the_rest_and_leaves_a_history_row(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    data = await old_data(platform)

    response = await client.post("/api/v1/retention/cleanup")

    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "succeeded" and run["trigger"] == "manual" and run["actor"] == "key:bootstrap"
    assert run["deleted"] == {
        "logs": 6,
        "attempts": 3,
        "invocations": 3,
        "dlq": 2,
        "state_runs": 0,
        "workflow_executions": 0,
        "webhook_calls": 0,
    }
    assert (run["invocations_deleted"], run["dlq_deleted"], run["tasks_deleted"]) == (3, 2, 0)
    assert run["log_retention_days"] == 30 and run["duration_ms"] is not None
    for request_id in data["expired"]:
        assert (await client.get(f"/api/v1/invocations/{request_id}")).status_code == 404
    for request_id in data["kept"]:
        assert (await client.get(f"/api/v1/invocations/{request_id}")).status_code == 200
    assert [m["id"] for m in (await client.get("/api/v1/dlq")).json()["messages"]] == data["dlq_kept"]

    history = (await client.get("/api/v1/retention/runs")).json()
    assert [r["id"] for r in history["runs"]] == [run["id"]] and history["next_cursor"] is None
    assert (await client.get(f"/api/v1/retention/runs/{run['id']}")).json()["total_deleted"] == 11
    stats = (await client.get("/api/v1/retention/stats")).json()
    assert stats["old_invocations"] == 0 and stats["last_run"]["id"] == run["id"]
    audit = (await client.get("/api/v1/audit", params={"action": "retention.cleanup"})).json()["logs"]
    assert len(audit) == 1 and audit[0]["after"]["total_deleted"] == 11


async def test_a_cleanup_started_without_waiting_is_followed_and_a_second_is_refused(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await add_invocations(platform.db, utcnow() - 90 * DAY, 12, logs=0)
    platform.retention.batch_rows, platform.retention.batch_pause = 2, 0.3  # about two seconds

    started = await client.post("/api/v1/retention/cleanup", params={"wait": "false"})
    again = await client.post("/api/v1/retention/cleanup")

    assert started.status_code == 202 and started.json()["status"] == "running"
    assert again.status_code == 409 and "already running" in again.json()["error"]["message"]
    run_id = started.json()["id"]
    assert (await client.get("/api/v1/retention/stats")).json()["running"]["id"] == run_id
    for _ in range(300):
        run = (await client.get(f"/api/v1/retention/runs/{run_id}")).json()
        if run["status"] != "running":
            break
        await asyncio.sleep(0.1)
    assert run["status"] == "succeeded" and run["deleted"]["invocations"] == 12


async def test_the_policy_is_read_and_changed_and_the_change_audited(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/retention/policy")).json() == DEFAULT_POLICY

    response = await client.put(
        "/api/v1/retention/policy", json={"logs_days": 3, "auto_cleanup": True, "cleanup_time": "04:30"}
    )

    assert response.status_code == 200
    expected = DEFAULT_POLICY | {"logs_days": 3, "auto_cleanup": True, "cleanup_time": "04:30"}
    assert response.json() == expected
    assert (await client.get("/api/v1/retention/policy")).json() == expected
    assert (await client.get("/api/v1/retention/stats")).json()["policy"] == expected
    audit = (await client.get("/api/v1/audit", params={"action": "retention.policy_update"})).json()["logs"]
    assert audit[0]["before"]["logs_days"] == 14 and audit[0]["after"]["logs_days"] == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"invocations_days": 0}, "invocations_days"),
        ({"dlq_days": 3651}, "dlq_days"),
        ({"logs_days": "two weeks"}, "logs_days"),
        ({"logs_days": 7, "cleanup_time": "3am"}, "cleanup_time"),
        ({"cleanup_time": "24:00"}, "cleanup_time"),
        ({"auto_cleanup": "sometimes"}, "auto_cleanup"),
        ({"logs_days": 7, "forever": True}, "forever"),
        ({}, None),
        (["logs_days", 7], None),
    ],
)
async def test_bad_policy_input_is_422_and_changes_nothing(
    client: httpx.AsyncClient, body: Any, field: str | None
) -> None:
    response = await client.put("/api/v1/retention/policy", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"].get("field") == field
    assert (await client.get("/api/v1/retention/policy")).json() == DEFAULT_POLICY
    assert (await client.get("/api/v1/audit", params={"action": "retention.policy_update"})).json()[
        "logs"
    ] == []


async def test_a_viewer_reads_but_neither_cleans_up_nor_changes_the_policy(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await old_data(platform)
    async with await viewer_client(client) as viewer:
        assert (await viewer.get("/api/v1/retention/stats")).status_code == 200
        assert (await viewer.get("/api/v1/retention/runs")).status_code == 200
        cleanup = await viewer.post("/api/v1/retention/cleanup")
        policy = await viewer.put("/api/v1/retention/policy", json={"logs_days": 1})
    assert cleanup.status_code == 403 and policy.status_code == 403
    stats = (await client.get("/api/v1/retention/stats")).json()
    assert stats["old_invocations"] == 3 and stats["policy"] == DEFAULT_POLICY
    assert (await client.get("/api/v1/retention/runs")).json()["runs"] == []


async def test_runs_bad_input(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/retention/runs/no-such-run")).status_code == 404
    assert (await client.get("/api/v1/retention/runs", params={"limit": 0})).status_code == 422
    assert (await client.get("/api/v1/retention/runs", params={"limit": 101})).status_code == 422
    assert (await client.get("/api/v1/retention/runs", params={"cursor": "garbage!"})).status_code == 422
    assert (await client.post("/api/v1/retention/cleanup", params={"wait": "perhaps"})).status_code == 422
    assert (await client.get("/api/v1/retention/runs")).json()["runs"] == []
