"""Audit completeness: every kind of mutation the product has, performed through the API (test events,
which have no API yet, through their service), writes exactly one audit event of its action, and
nothing else. The table `STEPS` lists them in order; a feature that adds actions adds rows, and a test
checks that the table covers every action in ACTIONS.

One platform runs the whole table in order (later steps use what earlier ones made), in one test, so a
failure names the step."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from data.models import AuditEvent
from engine.events import DlqChanged
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.audit import ACTIONS
from tests.api.conftest import ADMIN_PASSWORD, HELLO

# Actions of features not covered by STEPS yet (none: every action in ACTIONS has its row).
PENDING_PREFIXES: tuple[str, ...] = ()

FAILS = 'def handler(event, context):\n    raise RuntimeError("always")\n'
GO_HELLO = (
    'package main\n\nimport (\n\t"context"\n\t"encoding/json"\n)\n\n'
    "func Handler(ctx context.Context, event json.RawMessage) (any, error) {\n"
    '\treturn map[string]any{"ok": true}, nil\n}\n'
)


@dataclass
class Run:
    """What the steps share: the API client, the platform, and ids made along the way."""

    client: httpx.AsyncClient
    platform: Platform
    ids: dict[str, Any] = field(default_factory=dict)

    async def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, path, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response


Action = Callable[[Run], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    what: str
    audits: tuple[str, ...]  # the actions this step must audit, each exactly once, and nothing else
    run: Action


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


async def _dead_letters(r: Run, count: int) -> list[str]:
    """Async invocations of the failing function until `count` messages are in the DLQ; their ids."""
    with r.platform.bus.subscribe(DlqChanged) as dlq:
        for n in range(count):
            await r.call("POST", "/api/v1/functions/doomed/async", 202, json={"n": n})
        for _ in range(count):
            await dlq.wait_for(lambda e: e.status == "pending", timeout=30)
    body = (await r.call("GET", "/api/v1/dlq", params={"status": "pending", "limit": 100})).json()
    return [m["id"] for m in body["messages"]]


async def _replayable(r: Run) -> None:
    body = (await r.call("POST", "/api/v1/functions/audited/invoke", json={"name": "x"})).json()
    r.ids["invocation"] = body["request_id"]


async def _login(r: Run) -> None:
    body = (
        await r.call("POST", "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    ).json()
    r.ids["session"] = body["token"]
    r.client.cookies.clear()  # keep acting with the API key


async def _logout(r: Run) -> None:
    await r.call("POST", "/api/v1/auth/logout", 204, headers={"Authorization": f"Bearer {r.ids['session']}"})
    r.client.cookies.clear()


async def _user(r: Run) -> None:
    body = (
        await r.call(
            "POST", "/api/v1/users", 201, json={"username": "auditee", "password": "auditee password 1"}
        )
    ).json()
    r.ids["user"] = body["id"]


async def _key(r: Run) -> None:
    r.ids["key"] = (await r.call("POST", "/api/v1/api-keys", 201, json={"name": "audited-key"})).json()["id"]


async def _layer(r: Run) -> None:
    await r.call(
        "POST", "/api/v1/layers", 201, json={"name": "audited-layer", "compatible_runtimes": ["python"]}
    )


async def _layer_version(r: Run) -> None:
    data = _zip({"python/helper.py": "VALUE = 1\n"})
    await r.call(
        "POST",
        "/api/v1/layers/audited-layer/versions",
        201,
        files={"content": ("layer.zip", data, "application/zip")},
    )


async def _test_event_save(r: Run) -> None:
    fn = await r.platform.functions.get(SYSTEM, "audited")
    await r.platform.test_events.save(SYSTEM, fn.id, "sample", {"name": "x"})


async def _test_event_delete(r: Run) -> None:
    fn = await r.platform.functions.get(SYSTEM, "audited")
    await r.platform.test_events.delete(SYSTEM, fn.id, "sample")


async def _dlq_messages(r: Run) -> None:
    r.ids["dlq"] = await _dead_letters(r, 3)


# A pass, a task and a pass: new executions pause before the task (the workflow's breakpoint).
FLOW = {
    "start_at": "Prepare",
    "states": {
        "Prepare": {"type": "pass", "next": "Greet"},
        "Greet": {"type": "task", "function_id": "audited", "next": "Done"},
        "Done": {"type": "pass", "end": True},
    },
}
FAILING_FLOW = {"start_at": "Boom", "states": {"Boom": {"type": "fail", "error": "Boom", "cause": "always"}}}


async def _schedule(r: Run) -> None:
    body = {"name": "audited-schedule", "target_id": "audited", "cron": "0 0 1 1 *", "payload": {"name": "x"}}
    r.ids["schedule"] = (await r.call("POST", "/api/v1/schedules", 201, json=body)).json()["id"]


async def _rotate_secret(r: Run) -> None:
    body = (await r.call("POST", "/api/v1/functions/audited/webhook/secret", json={"grace_sec": 60})).json()
    assert body["secret"].startswith("whsec_")


async def _execution_status(r: Run, execution_id: str, *wanted: str) -> dict[str, Any]:
    """Poll the execution over the API until its status is one of `wanted` (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        body = (await r.call("GET", f"/api/v1/executions/{execution_id}")).json()
        if body["status"] in wanted:
            return body
        assert time.monotonic() < deadline, f"execution {execution_id} is {body['status']}, not {wanted}"
        await asyncio.sleep(0.05)


async def _start(r: Run, name: str, workflow: str = "audited-flow", until: str = "paused") -> None:
    """Start an execution of `workflow` and wait until it is `until` (paused before Greet)."""
    response = await r.call(
        "POST", f"/api/v1/workflows/{workflow}/executions", 202, json={"input": {"name": name}}
    )
    r.ids[name] = response.json()["id"]
    body = await _execution_status(r, r.ids[name], until)
    if until == "paused":
        assert body["paused_at_state"] == "Greet", body


async def _step(r: Run) -> None:
    await r.call("POST", f"/api/v1/executions/{r.ids['stepped']}/step")
    body = await _execution_status(r, r.ids["stepped"], "paused")
    assert (body["paused_at_state"], body["paused_input"]) == ("Done", {"hello": "y"}), body


async def _continue(r: Run, execution: str, **kwargs: Any) -> None:
    await r.call("POST", f"/api/v1/executions/{r.ids[execution]}/continue", **kwargs)
    await _execution_status(r, r.ids[execution], "succeeded")


async def _redrive(r: Run) -> None:
    body = (await r.call("POST", f"/api/v1/executions/{r.ids['failed']}/redrive")).json()
    assert body["redrive_count"] == 1, body
    await _execution_status(r, r.ids["failed"], "failed")  # the Fail state fails again


STEPS: tuple[Step, ...] = (
    # functions
    Step(
        "create a function",
        ("function.create",),
        lambda r: r.call(
            "POST", "/api/v1/functions", 201, json={"name": "audited", "runtime": "python", "code": HELLO}
        ),
    ),
    Step(
        "update it",
        ("function.update",),
        lambda r: r.call("PUT", "/api/v1/functions/audited", json={"memory_mb": 512}),
    ),
    Step(
        "take it offline",
        ("function.offline",),
        lambda r: r.call("POST", "/api/v1/functions/audited/offline"),
    ),
    Step(
        "bring it online", ("function.online",), lambda r: r.call("POST", "/api/v1/functions/audited/online")
    ),
    Step(
        "publish a version",
        ("function.publish",),
        lambda r: r.call("POST", "/api/v1/functions/audited/versions", 201, json={"description": "v1"}),
    ),
    Step(
        "roll back to it",
        ("function.rollback",),
        lambda r: r.call("POST", "/api/v1/functions/audited/versions/1/rollback"),
    ),
    Step(
        "create a compiled function (built first)",
        ("function.build", "function.create"),
        lambda r: r.call(
            "POST", "/api/v1/functions", 201, json={"name": "compiled", "runtime": "go", "code": GO_HELLO}
        ),
    ),
    Step("invoke (not audited)", (), _replayable),
    Step(
        "replay an invocation",
        ("invocation.replay",),
        lambda r: r.call("POST", f"/api/v1/invocations/{r.ids['invocation']}/replay"),
    ),
    Step("save a test event", ("test_event.save",), _test_event_save),
    Step("delete a test event", ("test_event.delete",), _test_event_delete),
    # the DLQ
    Step(
        "create a failing function",
        ("function.create",),
        lambda r: r.call(
            "POST",
            "/api/v1/functions",
            201,
            json={"name": "doomed", "runtime": "python", "code": FAILS, "retry_attempts": 1},
        ),
    ),
    Step("fail async invocations into the DLQ (not audited)", (), _dlq_messages),
    Step(
        "retry a DLQ message",
        ("dlq.retry",),
        lambda r: r.call("POST", f"/api/v1/dlq/{r.ids['dlq'][0]}/retry"),
    ),
    Step(
        "discard a DLQ message",
        ("dlq.discard",),
        lambda r: r.call("POST", f"/api/v1/dlq/{r.ids['dlq'][1]}/discard"),
    ),
    Step(
        "delete a DLQ message",
        ("dlq.delete",),
        lambda r: r.call("DELETE", f"/api/v1/dlq/{r.ids['dlq'][2]}", 204),
    ),
    Step("purge the DLQ", ("dlq.purge",), lambda r: r.call("DELETE", "/api/v1/dlq")),
    # settings
    Step(
        "change a setting",
        ("settings.update",),
        lambda r: r.call("PUT", "/api/v1/settings/default_timeout", json={"value": 20}),
    ),
    Step(
        "reset a setting",
        ("settings.update",),
        lambda r: r.call("POST", "/api/v1/settings/default_timeout/reset"),
    ),
    # quotas and retention
    Step(
        "change a quota limit",
        ("quota.update",),
        lambda r: r.call("PUT", "/api/v1/quota", json={"max_functions": 50}),
    ),
    Step(
        "change the retention policy",
        ("retention.policy_update",),
        lambda r: r.call("PUT", "/api/v1/retention/policy", json={"logs_days": 10}),
    ),
    Step(
        "clean up now",
        ("retention.cleanup",),
        lambda r: r.call("POST", "/api/v1/retention/cleanup?wait=true"),
    ),
    # people and keys
    Step("create a user", ("user.create",), _user),
    Step(
        "update a user",
        ("user.update",),
        lambda r: r.call("PUT", f"/api/v1/users/{r.ids['user']}", json={"role": "developer"}),
    ),
    Step(
        "delete a user", ("user.delete",), lambda r: r.call("DELETE", f"/api/v1/users/{r.ids['user']}", 204)
    ),
    Step("log in", ("user.login",), _login),
    Step(
        "fail to log in",
        ("user.login_failed",),
        lambda r: r.call("POST", "/api/v1/auth/login", 401, json={"username": "admin", "password": "wrong"}),
    ),
    Step("log out", ("user.logout",), _logout),
    Step("create an API key", ("apikey.create",), _key),
    Step(
        "revoke an API key",
        ("apikey.revoke",),
        lambda r: r.call("DELETE", f"/api/v1/api-keys/{r.ids['key']}", 204),
    ),
    # layers
    Step("create a layer", ("layer.create",), _layer),
    Step("add a layer version", ("layer.publish",), _layer_version),
    Step(
        "attach it to a function",
        ("function.layers",),
        lambda r: r.call(
            "PUT",
            "/api/v1/functions/audited/layers",
            json=[{"layer_id": "audited-layer", "layer_version": 1}],
        ),
    ),
    Step(
        "detach it",
        ("function.layers",),
        lambda r: r.call("PUT", "/api/v1/functions/audited/layers", json=[]),
    ),
    Step(
        "delete the layer", ("layer.delete",), lambda r: r.call("DELETE", "/api/v1/layers/audited-layer", 204)
    ),
    # environments
    Step(
        "create an environment",
        ("environment.create",),
        lambda r: r.call("POST", "/api/v1/environments", 201, json={"name": "qa", "position": 5}),
    ),
    Step(
        "update it",
        ("environment.update",),
        lambda r: r.call("PUT", "/api/v1/environments/qa", json={"description": "quality"}),
    ),
    Step(
        "set its variables",
        ("environment.update",),
        lambda r: r.call("PUT", "/api/v1/environments/qa/variables", json={"env_vars": {"MODE": "qa"}}),
    ),
    Step(
        "set its secrets",
        ("environment.update",),
        lambda r: r.call("PUT", "/api/v1/environments/qa/secrets", json={"secrets": {"TOKEN": "s3cret"}}),
    ),
    Step(
        "deploy a function to it",
        ("environment.deploy",),
        lambda r: r.call("PUT", "/api/v1/functions/audited/environments/dev", json={"version": 1}),
    ),
    Step(
        "promote it to the next environment",
        ("environment.promote",),
        lambda r: r.call("POST", "/api/v1/functions/audited/environments/dev/promote"),
    ),
    Step(
        "undeploy it",
        ("environment.undeploy",),
        lambda r: r.call("DELETE", "/api/v1/functions/audited/environments/dev", 204),
    ),
    Step(
        "delete the environment",
        ("environment.delete",),
        lambda r: r.call("DELETE", "/api/v1/environments/qa", 204),
    ),
    # schedules (a yearly tick: only "run now" runs it)
    Step("create a schedule", ("schedule.create",), _schedule),
    Step(
        "update it",
        ("schedule.update",),
        lambda r: r.call("PUT", f"/api/v1/schedules/{r.ids['schedule']}", json={"description": "audited"}),
    ),
    Step(
        "pause it",
        ("schedule.pause",),
        lambda r: r.call("POST", f"/api/v1/schedules/{r.ids['schedule']}/pause"),
    ),
    Step(
        "pause it again (no change, not audited)",
        (),
        lambda r: r.call("POST", f"/api/v1/schedules/{r.ids['schedule']}/pause"),
    ),
    Step(
        "resume it",
        ("schedule.resume",),
        lambda r: r.call("POST", f"/api/v1/schedules/{r.ids['schedule']}/resume"),
    ),
    Step(
        "run it now",
        ("schedule.trigger",),
        lambda r: r.call("POST", f"/api/v1/schedules/{r.ids['schedule']}/trigger", 202),
    ),
    Step(
        "delete it",
        ("schedule.delete",),
        lambda r: r.call("DELETE", f"/api/v1/schedules/{r.ids['schedule']}", 204),
    ),
    # a function's webhook
    Step(
        "enable a function's webhook",
        ("webhook.enable",),
        lambda r: r.call("POST", "/api/v1/functions/audited/webhook/enable"),
    ),
    Step(
        "change its settings (a signature scheme: its secret is generated)",
        ("webhook.update",),
        lambda r: r.call(
            "PUT", "/api/v1/functions/audited/webhook", json={"signature_scheme": "github", "mode": "async"}
        ),
    ),
    Step("rotate its secret", ("webhook.rotate_secret",), _rotate_secret),
    Step(
        "regenerate its URL",
        ("webhook.regenerate",),
        lambda r: r.call("POST", "/api/v1/functions/audited/webhook/regenerate"),
    ),
    Step(
        "disable it",
        ("webhook.disable",),
        lambda r: r.call("POST", "/api/v1/functions/audited/webhook/disable"),
    ),
    # workflows
    Step(
        "create a workflow",
        ("workflow.create",),
        lambda r: r.call("POST", "/api/v1/workflows", 201, json={"name": "audited-flow", "definition": FLOW}),
    ),
    Step(
        "update it",
        ("workflow.update",),
        lambda r: r.call("PUT", "/api/v1/workflows/audited-flow", json={"description": "audited"}),
    ),
    Step(
        "set its breakpoints",
        ("workflow.breakpoints",),
        lambda r: r.call(
            "PUT", "/api/v1/workflows/audited-flow/breakpoints", json={"breakpoints": ["Greet"]}
        ),
    ),
    Step(
        "enable its webhook",
        ("webhook.enable",),
        lambda r: r.call("POST", "/api/v1/workflows/audited-flow/webhook/enable"),
    ),
    # executions and the debugger
    Step(
        "start an execution (it pauses at the breakpoint)",
        ("workflow.start",),
        lambda r: _start(r, "stepped"),
    ),
    Step(
        "edit the paused input",
        ("execution.edit_input",),
        lambda r: r.call(
            "PUT", f"/api/v1/executions/{r.ids['stepped']}/input", json={"input": {"name": "y"}}
        ),
    ),
    Step(
        "add an execution breakpoint",
        ("execution.breakpoints",),
        lambda r: r.call(
            "POST",
            f"/api/v1/executions/{r.ids['stepped']}/breakpoints",
            201,
            json={"before_state": "Prepare"},
        ),
    ),
    Step(
        "remove it",
        ("execution.breakpoints",),
        lambda r: r.call("DELETE", f"/api/v1/executions/{r.ids['stepped']}/breakpoints/Prepare", 204),
    ),
    Step("step (it pauses before the next state)", ("execution.step",), _step),
    Step("continue to the end", ("execution.continue",), lambda r: _continue(r, "stepped")),
    Step("start another", ("workflow.start",), lambda r: _start(r, "resumed")),
    Step(
        "continue it with a new input (an edit, then a continue)",
        ("execution.edit_input", "execution.continue"),
        lambda r: _continue(r, "resumed", json={"input": {"name": "z"}}),
    ),
    Step("start one to abort", ("workflow.start",), lambda r: _start(r, "aborted")),
    Step(
        "abort it in the debugger",
        ("execution.abort",),
        lambda r: r.call("POST", f"/api/v1/executions/{r.ids['aborted']}/abort"),
    ),
    Step("start one to stop", ("workflow.start",), lambda r: _start(r, "stopped")),
    Step(
        "stop it",
        ("execution.cancel",),
        lambda r: r.call("POST", f"/api/v1/executions/{r.ids['stopped']}/stop"),
    ),
    Step(
        "create a workflow that fails",
        ("workflow.create",),
        lambda r: r.call(
            "POST", "/api/v1/workflows", 201, json={"name": "audited-failure", "definition": FAILING_FLOW}
        ),
    ),
    Step(
        "start it (it fails)",
        ("workflow.start",),
        lambda r: _start(r, "failed", "audited-failure", until="failed"),
    ),
    Step("redrive it", ("execution.redrive",), _redrive),
    Step(
        "delete a workflow (its webhook goes with it)",
        ("workflow.delete",),
        lambda r: r.call("DELETE", "/api/v1/workflows/audited-flow", 204),
    ),
    # last: deleting a function
    Step(
        "delete a function",
        ("function.delete",),
        lambda r: r.call("DELETE", "/api/v1/functions/compiled", 204),
    ),
)


async def newest_id(platform: Platform) -> str:
    async with platform.db.session() as session:
        found = await session.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
        return found.scalar_one_or_none() or ""


async def actions_after(platform: Platform, marker: str) -> list[str]:
    await platform.batcher.flush()
    async with platform.db.session() as session:
        rows = await session.execute(
            select(AuditEvent.action).where(AuditEvent.id > marker).order_by(AuditEvent.id)
        )
        return list(rows.scalars())


async def test_every_mutation_writes_exactly_one_audit_event(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    run = Run(client, platform)
    for step in STEPS:
        marker = await newest_id(platform)
        await step.run(run)
        got = await actions_after(platform, marker)
        assert sorted(got) == sorted(step.audits), f"{step.what}: audited {got}, expected {list(step.audits)}"


async def test_the_table_covers_every_action() -> None:
    covered = {action for step in STEPS for action in step.audits}
    pending = {a for a in ACTIONS if a.startswith(PENDING_PREFIXES)}
    assert covered <= set(ACTIONS), f"audited but not listed in ACTIONS: {covered - set(ACTIONS)}"
    assert set(ACTIONS) - pending - covered == set(), "actions no step performs"


async def test_every_audited_event_names_its_actor_and_source_ip(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await client.post("/api/v1/functions", json={"name": "traced", "runtime": "python", "code": HELLO})
    [event] = (await client.get("/api/v1/audit", params={"target": "traced"})).json()["logs"]
    assert (event["actor"], event["actor_type"], event["actor_ip"]) == (
        "key:bootstrap",
        "api_key",
        "127.0.0.1",
    )
    assert event["after"]["name"] == "traced" and event["created_at"]
