"""The webhook service and gateway on each backend (SQLite, and PostgreSQL when available): secrets
encrypted at rest and shown once, changes reaching the hot path at once, a burst holding the rate limit
exactly with a complete history, history filters, and keeping webhooks in step with their function."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from data.db import Database
from data.models import Webhook, WebhookCall
from engine.errors import Forbidden, Invalid, NotFound
from engine.events import WebhookChanged
from engine.platform import Platform
from engine.principal import SYSTEM, Principal
from engine.services.function_schemas import FunctionCreate
from engine.services.webhook_http import IncomingRequest
from engine.services.webhook_schemas import WebhookUpdate
from engine.services.webhook_signatures import sign_github
from tests.api.conftest import make_settings

VIEWER = Principal(actor="viv", actor_type="user", role="viewer")
ECHO = "def handler(event, context):\n    return {'got': event['body']}\n"


@pytest.fixture
async def platform(db: Database, db_url: str, tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path, database_url=db_url)) as running:
        await running.functions.create(SYSTEM, FunctionCreate(name="target", runtime="python", code=ECHO))
        yield running


def request(key: str, body: bytes = b"{}", ip: str = "127.0.0.1", **headers: str) -> IncomingRequest:
    return IncomingRequest(
        key=key,
        method="POST",
        path="/",
        query=[],
        headers=[("content-type", "application/json"), *((k.lower(), v) for k, v in headers.items())],
        body=body,
        source_ip=ip,
    )


async def count_calls(platform: Platform, webhook_id: str) -> int:
    await platform.batcher.flush()
    async with platform.db.session() as session:
        query = select(func.count()).select_from(WebhookCall).where(WebhookCall.webhook_id == webhook_id)
        return int((await session.execute(query)).scalar_one())


async def test_the_secret_is_encrypted_at_rest_and_returned_only_once(platform: Platform) -> None:
    changed = await platform.webhooks.update(
        SYSTEM, "function", "target", WebhookUpdate(signature_scheme="github")
    )
    assert changed.secret and changed.secret.startswith("whsec_")
    async with platform.db.session() as session:
        stored = (await session.execute(text("SELECT secret FROM webhooks"))).scalar_one()
    assert changed.secret not in stored and stored.startswith("gAAAA")  # a Fernet token
    again = await platform.webhooks.update(SYSTEM, "function", "target", WebhookUpdate(rate_limit_per_min=5))
    assert again.secret is None  # a later change never shows it again
    assert platform.webhooks.secret_info(again.webhook)["has_secret"] is True
    audit = await platform.audit.list(SYSTEM, resource_type="webhook")
    assert changed.secret not in json.dumps([e.after for e in audit.items])


async def test_only_developers_change_webhooks_and_unknown_targets_are_404(platform: Platform) -> None:
    with pytest.raises(Forbidden):
        await platform.webhooks.enable(VIEWER, "function", "target")
    with pytest.raises(NotFound):
        await platform.webhooks.enable(SYSTEM, "function", "missing")
    with pytest.raises(NotFound):
        await platform.webhooks.enable(SYSTEM, "spaceship", "target")
    with pytest.raises(Invalid):
        await platform.webhooks.rotate_secret(SYSTEM, "function", "target", grace_sec=-1)


async def test_two_first_enables_at_once_make_one_webhook(platform: Platform) -> None:
    first, second = await asyncio.gather(
        platform.webhooks.enable(SYSTEM, "function", "target"),
        platform.webhooks.enable(SYSTEM, "function", "target"),
    )
    assert first.webhook.key == second.webhook.key
    async with platform.db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Webhook))).scalar_one() == 1


async def test_a_change_reaches_the_hot_path_at_once(platform: Platform) -> None:
    hook = (await platform.webhooks.enable(SYSTEM, "function", "target")).webhook
    assert (await platform.webhooks.handle(request(hook.key, b'"a"'))).status == 200
    with platform.bus.subscribe(WebhookChanged) as changes:
        await platform.webhooks.disable(SYSTEM, "function", "target")
        await changes.wait_for(lambda e: e.action == "disabled", timeout=5)
    assert (await platform.webhooks.handle(request(hook.key))).status == 404  # not the cached copy
    await platform.webhooks.enable(SYSTEM, "function", "target")
    await platform.webhooks.update(SYSTEM, "function", "target", WebhookUpdate(allowed_ips=["10.0.0.0/8"]))
    assert (await platform.webhooks.handle(request(hook.key))).status == 403
    assert (await platform.webhooks.handle(request(hook.key, ip="10.9.8.7"))).status == 200


async def test_a_burst_of_signed_requests_holds_the_limit_exactly_and_every_call_is_recorded(
    platform: Platform,
) -> None:
    update = WebhookUpdate(mode="async", signature_scheme="github", rate_limit_per_min=100)
    changed = await platform.webhooks.update(SYSTEM, "function", "target", update)
    await platform.webhooks.enable(SYSTEM, "function", "target")
    hook, secret = changed.webhook, changed.secret or ""

    async def send(n: int) -> int:
        body = json.dumps({"n": n}).encode()
        answer = await platform.webhooks.handle(
            request(hook.key, body, **{"X-Hub-Signature-256": sign_github(secret, body)})
        )
        return answer.status

    statuses = Counter(await asyncio.gather(*(send(n) for n in range(500))))
    assert set(statuses) <= {202, 429}
    assert await count_calls(platform, hook.id) == 500
    async with platform.db.session() as session:
        rows = (await session.execute(select(WebhookCall.created_at, WebhookCall.outcome))).tuples().all()
    windows: dict[int, Counter[str]] = {}
    for created, outcome in rows:
        windows.setdefault(int(created.timestamp() // 60), Counter())[outcome] += 1
    for counts in windows.values():
        assert counts["accepted"] == min(100, counts["accepted"] + counts["rejected"])
    assert statuses[202] == sum(c["accepted"] for c in windows.values())


async def test_history_filters_and_pages_newest_first(platform: Platform) -> None:
    changed = await platform.webhooks.update(
        SYSTEM, "function", "target", WebhookUpdate(signature_scheme="github")
    )
    await platform.webhooks.enable(SYSTEM, "function", "target")
    hook, secret = changed.webhook, changed.secret or ""
    before = time.time()
    for n in range(5):
        body = json.dumps(n).encode()
        signature = sign_github(secret if n % 2 == 0 else "wrong", body)
        await platform.webhooks.handle(request(hook.key, body, **{"X-Hub-Signature-256": signature}))
    await platform.batcher.flush()
    calls = platform.webhooks.history.calls
    everything = await calls(SYSTEM, hook.id, limit=2)
    assert len(everything.items) == 2 and everything.next_cursor
    rest = await calls(SYSTEM, hook.id, limit=10, cursor=everything.next_cursor)
    ordered = [c.id for c in everything.items + rest.items]
    assert len(ordered) == 5 and ordered == sorted(ordered, reverse=True)
    rejected = await calls(SYSTEM, hook.id, outcome="rejected")
    assert [c.reason for c in rejected.items] == ["signature_invalid"] * 2
    assert len((await calls(SYSTEM, hook.id, status=200)).items) == 3
    assert len((await calls(SYSTEM, hook.id, reason="signature_invalid")).items) == 2
    since = datetime.fromtimestamp(before - 1, UTC)
    assert len((await calls(SYSTEM, hook.id, since=since)).items) == 5
    assert (await calls(SYSTEM, hook.id, until=since)).items == []
    with pytest.raises(Invalid):
        await calls(SYSTEM, hook.id, outcome="maybe")
    with pytest.raises(Invalid):
        await calls(SYSTEM, hook.id, since=since, until=since - timedelta(seconds=1))
    stats = await platform.webhooks.history.stats(SYSTEM, hook.id)
    assert (stats["total"], stats["accepted"], stats["rejected"]) == (5, 3, 2)
    last = await platform.webhooks.history.last_calls(SYSTEM, [hook.id, "no-such-webhook"])
    assert list(last) == [hook.id] and last[hook.id].id == ordered[0]


async def test_webhooks_follow_their_target_renamed_and_deleted(platform: Platform) -> None:
    hook = (await platform.webhooks.enable(SYSTEM, "function", "target")).webhook
    await platform.webhooks.target_renamed("function", hook.target_id, "renamed")
    assert (await platform.webhooks.get(SYSTEM, hook.id)).target_name == "renamed"
    with platform.bus.subscribe(WebhookChanged) as changes:
        await platform.functions.delete(SYSTEM, "target")
        await changes.wait_for(lambda e: e.action == "deleted" and e.webhook_id == hook.id, timeout=10)
    with pytest.raises(NotFound):
        await platform.webhooks.get(SYSTEM, hook.id)
    assert (await platform.webhooks.handle(request(hook.key))).status == 404


async def test_the_list_filters_by_kind_state_and_name(platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="other_1x", runtime="python", code=ECHO))
    on = (await platform.webhooks.enable(SYSTEM, "function", "target")).webhook
    off = (await platform.webhooks.disable(SYSTEM, "function", "other_1x")).webhook
    listed = platform.webhooks.list
    assert [h.id for h in (await listed(VIEWER)).items] == [off.id, on.id]  # newest first
    assert [h.id for h in (await listed(VIEWER, enabled=True)).items] == [on.id]
    assert [h.id for h in (await listed(VIEWER, enabled=False)).items] == [off.id]
    assert [h.id for h in (await listed(VIEWER, search="r_1")).items] == [off.id]
    assert (await listed(VIEWER, search="%")).items == []  # a literal %, not a wildcard
    assert (await listed(VIEWER, search="t_r")).items == []  # a literal _, not a wildcard
    assert (await listed(VIEWER, kind="workflow")).items == []
    page = await listed(VIEWER, limit=1)
    assert len(page.items) == 1 and page.next_cursor
    rest = await listed(VIEWER, limit=1, cursor=page.next_cursor)
    assert [h.id for h in rest.items] == [on.id] and rest.next_cursor is None
