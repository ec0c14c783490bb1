"""/api/v1/schedules: create (refused with the reason when the expression, timezone or target is bad),
preview, list with filters and cursor pages, change, pause/resume, delete (each audited), run now and the
run history with each run's invocation outcome."""

from __future__ import annotations

import itertools
from datetime import datetime

import httpx

from engine.events import InvocationFinished
from engine.platform import Platform
from tests.api.conftest import create_function

ECHO = "def handler(event, context):\n    return {'got': event, 'source': context.source}\n"


async def _schedule(client: httpx.AsyncClient, name: str = "nightly", **fields: object) -> dict[str, object]:
    body = {"name": name, "target_id": "echo", "cron": "0 3 * * *", "timezone": "Europe/Berlin", **fields}
    response = await client.post("/api/v1/schedules", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    return response.json()["error"]


async def test_create_returns_the_schedule_with_its_next_run(client: httpx.AsyncClient) -> None:
    fn = await create_function(client, name="echo", code=ECHO)

    body = await _schedule(client, payload={"report": "daily"}, misfire_policy="run_once")

    assert body["target_type"] == "function" and body["target_id"] == fn["id"]
    assert body["target_name"] == "echo" and body["payload"] == {"report": "daily"}
    assert (body["cron"], body["timezone"], body["misfire_policy"]) == (
        "0 3 * * *",
        "Europe/Berlin",
        "run_once",
    )
    assert body["paused"] is False and body["status"] == "active" and body["last_run"] is None
    next_run = datetime.fromisoformat(str(body["next_run_at"]))
    assert (next_run.hour, next_run.minute) == (3, 0)
    assert next_run.utcoffset() is not None and next_run.utcoffset().total_seconds() in (3600, 7200)
    fetched = (await client.get(f"/api/v1/schedules/{body['name']}")).json()  # by name, or by id
    assert fetched["id"] == body["id"] and fetched["next_run_at"] == body["next_run_at"]


async def test_invalid_input_is_refused_with_the_reason_and_the_field(client: httpx.AsyncClient) -> None:
    await create_function(client, name="echo", code=ECHO)
    base = {"name": "bad", "target_id": "echo", "cron": "* * * * *"}

    cases = [
        ({"cron": "61 * * * *"}, 422, "cron", "minute field's value 61 is out of range (0-59)"),
        ({"cron": "* * *"}, 422, "cron", "has 3"),
        ({"cron": "@sometimes"}, 422, "cron", "unknown alias '@sometimes'"),
        ({"cron": "0 0 31 2 *"}, 422, "cron", "never matches a date"),
        ({"timezone": "Mars/Olympus"}, 422, "timezone", "unknown timezone 'Mars/Olympus'"),
        ({"target_type": "spaceship"}, 422, "target_type", "cannot target 'spaceship'"),
        ({"name": "has spaces"}, 422, "name", "name must start with a letter"),
        ({"misfire_policy": "sometimes"}, 422, "misfire_policy", ""),
    ]
    for change, status, field, reason in cases:
        error = _error(await client.post("/api/v1/schedules", json=base | change), status)
        assert error["field"] == field, (change, error)
        assert reason in str(error["message"]), (change, error)
    missing = _error(await client.post("/api/v1/schedules", json=base | {"target_id": "nope"}), 404)
    assert missing["message"] == "function not found: nope"
    assert (await client.get("/api/v1/schedules")).json()["schedules"] == []


async def test_a_duplicate_name_is_409(client: httpx.AsyncClient) -> None:
    await create_function(client, name="echo", code=ECHO)
    await _schedule(client)
    error = _error(
        await client.post(
            "/api/v1/schedules", json={"name": "nightly", "target_id": "echo", "cron": "@daily"}
        ),
        409,
    )
    assert error["message"] == "schedule already exists: nightly"


async def test_preview_gives_the_next_five_runs_in_the_timezone_or_the_reason(
    client: httpx.AsyncClient,
) -> None:
    ok = (
        await client.post("/api/v1/schedules/preview", json={"cron": "@hourly", "timezone": "Asia/Kolkata"})
    ).json()
    assert ok["valid"] is True and ok["error"] is None and len(ok["next_runs"]) == 5
    times = [datetime.fromisoformat(t) for t in ok["next_runs"]]
    assert all(t.utcoffset().total_seconds() == 5.5 * 3600 and t.minute == 0 for t in times)  # type: ignore[union-attr]
    assert all((b - a).total_seconds() == 3600 for a, b in itertools.pairwise(times))
    weekdays = (await client.post("/api/v1/schedules/preview", json={"cron": "30 9 * * 1-5"})).json()
    assert {datetime.fromisoformat(t).isoweekday() for t in weekdays["next_runs"]} <= {1, 2, 3, 4, 5}

    bad = (await client.post("/api/v1/schedules/preview", json={"cron": "*/0 * * * *"})).json()
    assert bad["valid"] is False and bad["next_runs"] == []
    assert bad["error"] == {
        "code": "invalid",
        "message": "the minute field's step '0' must be a positive number",
        "field": "cron",
    }


async def test_list_filters_by_target_and_paused_with_cursor_pages(client: httpx.AsyncClient) -> None:
    await create_function(client, name="echo", code=ECHO)
    other = await create_function(client, name="other", code=ECHO)
    for n in range(5):
        await _schedule(client, name=f"echo-{n}", paused=n % 2 == 0)
    await _schedule(client, name="for-other", target_id="other")

    names: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/schedules", params=params)).json()
        names += [s["name"] for s in page["schedules"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["for-other", "echo-4", "echo-3", "echo-2", "echo-1", "echo-0"]
    paused = (await client.get("/api/v1/schedules", params={"paused": True})).json()["schedules"]
    assert [s["name"] for s in paused] == ["echo-4", "echo-2", "echo-0"]
    assert all(s["next_run_at"] is None and s["status"] == "paused" for s in paused)
    by_name = (await client.get("/api/v1/schedules", params={"target_id": "other"})).json()["schedules"]
    by_id = (await client.get("/api/v1/schedules", params={"target_id": other["id"]})).json()["schedules"]
    assert [s["name"] for s in by_name] == [s["name"] for s in by_id] == ["for-other"]
    active_echo = await client.get("/api/v1/schedules", params={"target_id": "echo", "paused": False})
    assert [s["name"] for s in active_echo.json()["schedules"]] == ["echo-3", "echo-1"]
    assert (
        _error(await client.get("/api/v1/schedules", params={"cursor": "garbage"}), 422)["field"] == "cursor"
    )


async def test_update_pause_resume_delete_are_audited_with_before_and_after(
    client: httpx.AsyncClient,
) -> None:
    await create_function(client, name="echo", code=ECHO)
    await create_function(client, name="other", code=ECHO)
    created = await _schedule(client)
    sid = created["id"]

    updated = await client.put(f"/api/v1/schedules/{sid}", json={"cron": "@weekly", "target_id": "other"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["cron"], updated.json()["target_name"]) == ("@weekly", "other")
    bad = _error(await client.put(f"/api/v1/schedules/{sid}", json={"timezone": "Nowhere/Land"}), 422)
    assert bad["field"] == "timezone"
    paused = (await client.post(f"/api/v1/schedules/{sid}/pause")).json()
    assert paused["paused"] is True and paused["next_run_at"] is None
    resumed = (await client.post(f"/api/v1/schedules/{sid}/resume")).json()
    assert resumed["paused"] is False and resumed["next_run_at"] is not None
    assert (await client.delete(f"/api/v1/schedules/{sid}")).status_code == 204
    assert (await client.get(f"/api/v1/schedules/{sid}")).status_code == 404

    audit = (await client.get("/api/v1/audit", params={"resource_type": "schedule", "limit": 100})).json()
    events = {e["action"]: e for e in audit["logs"]}
    assert set(events) == {
        "schedule.create",
        "schedule.update",
        "schedule.pause",
        "schedule.resume",
        "schedule.delete",
    }
    update = events["schedule.update"]
    assert update["before"]["cron"] == "0 3 * * *" and update["after"]["cron"] == "@weekly"
    assert update["before"]["target_name"] == "echo" and update["after"]["target_name"] == "other"
    assert events["schedule.pause"]["after"] == {"paused": True}
    assert events["schedule.delete"]["before"]["name"] == "nightly"
    assert all(e["resource_id"] == sid and e["actor"] == "key:bootstrap" for e in events.values())


async def test_run_now_is_an_invocation_with_source_cron_shown_in_the_run_history(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_function(client, name="echo", code=ECHO)
    created = await _schedule(client, payload={"n": 7}, paused=True)  # run now works while paused too

    with platform.bus.subscribe(InvocationFinished) as finished:
        response = await client.post(f"/api/v1/schedules/{created['id']}/trigger")
        assert response.status_code == 202, response.text
        run = response.json()
        assert run["kind"] == "manual" and run["fire_status"] == "started" and run["invocation_id"]
        await finished.wait_for(lambda e: e.invocation_id == run["invocation_id"] and e.final, timeout=30)

    invocation = (await client.get(f"/api/v1/invocations/{run['invocation_id']}")).json()
    assert invocation["source"] == "cron" and invocation["status"] == "success"
    assert invocation["output"] == {"got": {"n": 7}, "source": "cron"}
    history = (await client.get(f"/api/v1/schedules/{created['name']}/runs")).json()
    assert [(r["id"], r["status"], r["invocation_id"]) for r in history["runs"]] == [
        (run["id"], "success", run["invocation_id"])
    ]
    assert history["next_cursor"] is None
    detail = (await client.get(f"/api/v1/schedules/{created['id']}")).json()
    assert detail["last_run"]["status"] == "success" and detail["last_run_at"] == run["scheduled_at"]


async def test_a_run_whose_function_is_gone_fails_with_the_reason(client: httpx.AsyncClient) -> None:
    await create_function(client, name="echo", code=ECHO)
    created = await _schedule(client)
    assert (await client.delete("/api/v1/functions/echo")).status_code == 204

    run = (await client.post(f"/api/v1/schedules/{created['id']}/trigger")).json()

    assert run["status"] == "failed" and run["invocation_id"] is None
    assert "not found" in run["error"]


async def test_run_history_pages(client: httpx.AsyncClient) -> None:
    await create_function(client, name="echo", code=ECHO)
    created = await _schedule(client, paused=True)
    triggered = [
        (await client.post(f"/api/v1/schedules/{created['id']}/trigger")).json()["id"] for _ in range(3)
    ]

    first = (await client.get(f"/api/v1/schedules/{created['id']}/runs", params={"limit": 2})).json()
    second = (
        await client.get(
            f"/api/v1/schedules/{created['id']}/runs", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()

    assert [r["id"] for r in first["runs"] + second["runs"]] == triggered[::-1]
    assert second["next_cursor"] is None
    assert (await client.get("/api/v1/schedules/nope/runs")).status_code == 404
    assert "function" in (await client.get("/api/v1/schedules/target-types")).json()["target_types"]
