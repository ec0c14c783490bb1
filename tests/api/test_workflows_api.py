"""/api/v1/workflows and /api/v1/executions over HTTP: the original's paths and shapes, its bugs fixed
(404 not 500, one error shape, ids or names), validation with every problem, ASL import/export, sync
and async starts, history, stop, breakpoints, the debugger and redrive."""

from __future__ import annotations

from typing import Any

import httpx

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from engine.services.webhook_targets import StartOptions
from engine.services.workflow_targets import workflow_target
from tests.api.conftest import create_function

ADD = "def handler(event, context):\n    return {**event, 'n': event.get('n', 0) + 1}\n"
BROKEN = "def handler(event, context):\n    raise ValueError('nope')\n"


def _steps(function: str = "add") -> dict[str, Any]:
    return {
        "start_at": "A",
        "states": {
            "A": {"type": "task", "function_id": function, "next": "B"},
            "B": {"type": "task", "function_id": function, "next": "C"},
            "C": {"type": "task", "function_id": function, "end": True},
        },
    }


async def _workflow(client: httpx.AsyncClient, name: str = "steps", **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/workflows", json={"name": name, "definition": _steps(), **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def _sync(client: httpx.AsyncClient, ref: str, body: Any = None, **params: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/workflows/{ref}/executions", params={"sync": "true", "wait_sec": 60, **params}, json=body
    )


async def test_workflow_crud_by_id_or_name_with_versions(client: httpx.AsyncClient) -> None:
    await create_function(client, "add", ADD)
    created = await _workflow(client, description="three adds", tags=["demo"])
    assert (created["version"], created["status"], created["timeout_sec"]) == (1, "active", 3600)
    assert (await client.get(f"/api/v1/workflows/{created['id']}")).json()["name"] == "steps"
    assert (await client.get("/api/v1/workflows/steps")).json()["id"] == created["id"]

    duplicate = await client.post("/api/v1/workflows", json={"name": "steps", "definition": _steps()})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"

    shorter = {"start_at": "A", "states": {"A": {"type": "task", "function_id": "add", "end": True}}}
    updated = await client.put("/api/v1/workflows/steps", json={"definition": shorter, "timeout_sec": 60})
    assert updated.status_code == 200
    assert (updated.json()["version"], updated.json()["timeout_sec"]) == (2, 60)
    same = await client.put("/api/v1/workflows/steps", json={"definition": shorter, "description": "x"})
    assert same.json()["version"] == 2  # the definition did not change

    versions = (await client.get("/api/v1/workflows/steps/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    first = (await client.get("/api/v1/workflows/steps/versions/1")).json()
    assert first["definition"] == _steps()
    assert (await client.get("/api/v1/workflows/steps/versions/9")).status_code == 404

    listed = (await client.get("/api/v1/workflows", params={"q": "STE"})).json()
    assert [w["name"] for w in listed["workflows"]] == ["steps"] and listed["next_cursor"] is None

    assert (await client.delete("/api/v1/workflows/steps")).status_code == 204
    missing = await client.get("/api/v1/workflows/steps")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_an_invalid_definition_is_422_with_every_problem(client: httpx.AsyncClient) -> None:
    bad = {
        "start_at": "A",
        "states": {
            "A": {"type": "task", "function_id": "ghost", "next": "Nowhere"},
            "Lonely": {"type": "pass", "result_path": "$.a[*]", "end": True},
        },
    }
    response = await client.post("/api/v1/workflows", json={"name": "bad", "definition": bad})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["field"] == "definition"
    paths = {p["path"] for p in error["problems"]}
    assert {"states.A.function_id", "states.A.next", "states.Lonely.result_path"} <= paths
    assert any("Lonely" in p["path"] and "reach" in p["message"].lower() for p in error["problems"])

    checked = await client.post("/api/v1/workflows/validate", json=bad)
    assert checked.status_code == 200
    assert checked.json()["valid"] is False and len(checked.json()["problems"]) == len(error["problems"])
    fine = {"start_at": "P", "states": {"P": {"type": "pass", "end": True}}}
    assert (await client.post("/api/v1/workflows/validate", json={"definition": fine})).json() == {
        "valid": True,
        "problems": [],
    }


async def test_asl_is_imported_by_function_name_and_exported_back(client: httpx.AsyncClient) -> None:
    await create_function(client, "add", ADD)
    asl = {
        "Comment": "imported",
        "StartAt": "Add",
        "States": {
            "Add": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:add",
                "ResultPath": "$.added",
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    imported = await client.post("/api/v1/workflows/import", params={"name": "from-aws"}, json=asl)
    assert imported.status_code == 201, imported.text
    definition = imported.json()["definition"]
    assert definition["start_at"] == "Add" and definition["states"]["Add"]["function_id"] == "add"

    run = await _sync(client, "from-aws", {"input": {"n": 1}})
    assert run.status_code == 200 and run.json()["output"] == {"n": 1, "added": {"n": 2}}

    exported = (await client.get("/api/v1/workflows/from-aws/export", params={"format": "asl"})).json()
    assert exported["StartAt"] == "Add" and exported["States"]["Add"]["Type"] == "Task"
    assert exported["States"]["Add"]["Resource"].endswith("add")
    nimbus = (await client.get("/api/v1/workflows/from-aws/export")).json()
    assert nimbus == definition
    unknown = dict(asl, States={**asl["States"], "Add": {**asl["States"]["Add"], "Resource": "ghost"}})
    refused = await client.post("/api/v1/workflows/import", params={"name": "ghosts"}, json=unknown)
    assert refused.status_code == 422 and refused.json()["error"]["problems"]


async def test_sync_and_async_starts_and_the_history(client: httpx.AsyncClient) -> None:
    await create_function(client, "add", ADD)
    await _workflow(client)
    done = await _sync(client, "steps", {"input": {"n": 0}, "name": "first"})
    assert done.status_code == 200
    execution = done.json()
    assert (execution["status"], execution["output"], execution["name"]) == ("succeeded", {"n": 3}, "first")

    history = (await client.get(f"/api/v1/executions/{execution['id']}/history")).json()
    assert history["id"] == execution["id"] and history["workflow_version"] == 1
    assert [(h["state_name"], h["status"], h["retry_count"]) for h in history["history"]] == [
        ("A", "succeeded", 0),
        ("B", "succeeded", 0),
        ("C", "succeeded", 0),
    ]
    assert all(h["invocation_id"] for h in history["history"])

    started = await client.post("/api/v1/workflows/steps/executions", content=b"")
    assert started.status_code == 202
    assert started.json()["status"] in ("pending", "running") and started.json()["input"] == {}
    assert (await client.post("/api/v1/workflows/ghost/executions", json={})).status_code == 404
    assert (await client.get("/api/v1/executions/nope")).status_code == 404
    assert (await client.get("/api/v1/executions/nope/history")).status_code == 404

    off = await client.put("/api/v1/workflows/steps", json={"status": "inactive"})
    assert off.status_code == 200
    refused = await client.post("/api/v1/workflows/steps/executions", json={})
    assert refused.status_code == 400 and "inactive" in refused.json()["error"]["message"]


async def test_executions_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    await create_function(client, "add", ADD)
    await create_function(client, "broken", BROKEN)
    await _workflow(client)
    await client.post(
        "/api/v1/workflows",
        json={
            "name": "fails",
            "definition": {
                "start_at": "X",
                "states": {"X": {"type": "task", "function_id": "broken", "end": True}},
            },
        },
    )
    ok = [(await _sync(client, "steps", {"input": {"n": i}})).json()["id"] for i in range(3)]
    failed = (await _sync(client, "fails", {})).json()
    assert failed["status"] == "failed" and failed["error"] == "ValueError"

    page = (await client.get("/api/v1/executions", params={"limit": 2})).json()
    assert len(page["executions"]) == 2 and page["next_cursor"]
    rest = (await client.get("/api/v1/executions", params={"limit": 2, "cursor": page["next_cursor"]})).json()
    seen = [e["id"] for e in page["executions"] + rest["executions"]]
    assert seen == [failed["id"], *reversed(ok)]

    by_workflow = (await client.get("/api/v1/workflows/steps/executions")).json()["executions"]
    assert {e["id"] for e in by_workflow} == set(ok)
    only_failed = (await client.get("/api/v1/executions", params={"status": "failed"})).json()["executions"]
    assert [e["id"] for e in only_failed] == [failed["id"]]
    named = (await client.get("/api/v1/executions", params={"workflow": "fails"})).json()["executions"]
    assert [e["id"] for e in named] == [failed["id"]]
    bad = await client.get("/api/v1/executions", params={"status": "weird"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"


async def test_breakpoints_and_the_debugger_over_http(client: httpx.AsyncClient, platform: Platform) -> None:
    await create_function(client, "add", ADD)
    await _workflow(client)
    set_ = await client.put("/api/v1/workflows/steps/breakpoints", json={"breakpoints": ["B"]})
    assert set_.status_code == 200 and set_.json()["breakpoints"] == ["B"]
    assert (
        await client.put("/api/v1/workflows/steps/breakpoints", json={"breakpoints": ["Z"]})
    ).status_code == 422

    paused = await _sync(client, "steps", {"input": {"n": 0}})
    assert paused.status_code == 202  # not ended: paused
    execution = paused.json()
    assert (execution["status"], execution["paused_at_state"], execution["paused_input"]) == (
        "paused",
        "B",
        {"n": 1},
    )
    eid = execution["id"]

    added = await client.post(f"/api/v1/executions/{eid}/breakpoints", json={"before_state": "C"})
    assert added.status_code == 201 and added.json() == {
        "execution_id": eid,
        "before_state": "C",
        "enabled": True,
    }
    again = await client.post(f"/api/v1/executions/{eid}/breakpoints", json={"before_state": "C"})
    assert again.status_code == 409
    listed = (await client.get(f"/api/v1/executions/{eid}/breakpoints")).json()
    assert [b["before_state"] for b in listed] == ["B", "C"]

    edited = await client.put(f"/api/v1/executions/{eid}/input", json={"input": {"n": 10}})
    assert edited.status_code == 200 and edited.json()["paused_input"] == {"n": 10}
    stepped = await client.post(f"/api/v1/executions/{eid}/step")
    assert stepped.status_code == 200 and stepped.json()["status"] == "running"
    await platform.workflows.wait(SYSTEM, eid, 60)  # on the event bus, with a deadline
    now = (await client.get(f"/api/v1/executions/{eid}")).json()
    assert (now["status"], now["paused_at_state"], now["paused_input"]) == ("paused", "C", {"n": 11})

    assert (await client.delete(f"/api/v1/executions/{eid}/breakpoints/C")).status_code == 204
    assert (await client.delete(f"/api/v1/executions/{eid}/breakpoints/C")).status_code == 404
    resumed = await client.post(f"/api/v1/executions/{eid}/resume", json={"input": {"n": 100}})
    assert resumed.status_code == 200
    done = await platform.workflows.wait(SYSTEM, eid, 60)
    assert (done.status, done.output) == ("succeeded", {"n": 101})
    assert (await client.post(f"/api/v1/executions/{eid}/resume")).status_code == 400  # no longer paused


async def test_stop_abort_and_redrive_over_http(client: httpx.AsyncClient, platform: Platform) -> None:
    await create_function(client, "add", ADD)
    await create_function(client, "flip", BROKEN)
    await _workflow(client)
    paused = (await _sync(client, "steps", {"input": {"n": 0}, "breakpoints": ["A"]})).json()
    aborted = await client.post(f"/api/v1/executions/{paused['id']}/abort")
    assert aborted.status_code == 200 and (aborted.json()["status"], aborted.json()["error"]) == (
        "cancelled",
        "States.Aborted",
    )
    assert (await client.post(f"/api/v1/executions/{paused['id']}/stop")).status_code == 400

    other = (await _sync(client, "steps", {"input": {"n": 0}, "breakpoints": ["C"]})).json()
    stopped = await client.post(f"/api/v1/executions/{other['id']}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "cancelled"

    await client.post("/api/v1/workflows", json={"name": "flaky", "definition": _steps("flip")})
    failed = (await _sync(client, "flaky", {"input": {"n": 0}})).json()
    assert failed["status"] == "failed"
    fixed = await client.put("/api/v1/functions/flip", json={"code": ADD})
    assert fixed.status_code == 200
    redriven = await client.post(f"/api/v1/executions/{failed['id']}/redrive")
    assert redriven.status_code == 200 and redriven.json()["redrive_count"] == 1
    done = await platform.workflows.wait(SYSTEM, failed["id"], 60)
    assert (done.status, done.output) == ("succeeded", {"n": 3})
    assert (await client.post(f"/api/v1/executions/{failed['id']}/redrive")).status_code == 400


async def test_a_schedule_can_start_a_workflow(client: httpx.AsyncClient, platform: Platform) -> None:
    await create_function(client, "add", ADD)
    await _workflow(client)
    assert "workflow" in (await client.get("/api/v1/schedules/target-types")).json()["target_types"]
    created = await client.post(
        "/api/v1/schedules",
        json={
            "name": "nightly-steps",
            "target_type": "workflow",
            "target_id": "steps",
            "payload": {"n": 5},
            "cron": "0 3 * * *",
        },
    )
    assert created.status_code == 201, created.text
    run = await client.post(f"/api/v1/schedules/{created.json()['id']}/trigger")
    assert run.status_code == 202, run.text
    execution_id = run.json()["run_id"]
    done = await platform.workflows.wait(SYSTEM, execution_id, 60)
    assert (done.status, done.source, done.output) == ("succeeded", "cron", {"n": 8})


async def test_a_webhook_target_runs_a_workflow_sync_or_async(platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="add", runtime="python", code=ADD))
    await platform.workflows.create(SYSTEM, {"name": "hooked", "definition": _steps()})
    target = workflow_target(platform.workflows)
    workflow_id, name = await target.resolve(SYSTEM, "hooked")
    assert name == "hooked"
    result = await target.start(SYSTEM, workflow_id, {"n": 1}, True, options=StartOptions(request_id="r1"))
    assert (result.status, result.result) == ("success", {"n": 4})
    accepted = await target.start(SYSTEM, workflow_id, {"n": 1}, False, options=StartOptions(request_id="r2"))
    assert accepted.status == "accepted"
    later = await platform.workflows.wait(SYSTEM, accepted.request_id, 60)
    assert (later.status, later.source) == ("succeeded", "webhook")
