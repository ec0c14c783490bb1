"""Webhooks over real HTTP handling (httpx's ASGI transport on the real platform): managing them through
the original API's paths, the public /webhook/{key} endpoint (no login) in sync and async mode, signature
verification, allowlist, rate limit, and a call history that records every request with its reason."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.main import create_api
from engine.events import InvocationFinished, WebhookChanged
from engine.platform import Platform
from engine.services.webhook_signatures import sign_github, sign_timestamped
from tests.api.conftest import create_function

ECHO = "def handler(event, context):\n    return event\n"
LAMBDA = """
import base64
def handler(event, context):
    kind = event["query"].get("kind", ["text"])[0]
    if kind == "binary":
        return {"statusCode": 201, "headers": {"Content-Type": "image/png", "X-Made-By": "fn"},
                "body": base64.b64encode(b"\\x89PNG\\x00\\xff").decode(), "isBase64Encoded": True}
    if kind == "json":
        return {"statusCode": 418, "body": {"teapot": True}}
    if kind == "bad":
        return {"statusCode": 99}
    return {"statusCode": 202, "headers": {"X-Trace": "abc", "Content-Length": "999"}, "body": "queued"}
"""
SIZES = 'def handler(event, context):\n    return {"size": len(event["body"]), "pad": "y" * 20000}\n'
FAILS = 'def handler(event, context):\n    raise ValueError("bad order " + str(event["body"]))\n'


@pytest.fixture
async def public(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A caller with no credentials at all, from 127.0.0.1."""
    transport = httpx.ASGITransport(app=create_api(platform), client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://nimbus.test", timeout=30) as http:
        yield http


async def _enabled(client: httpx.AsyncClient, name: str, code: str = ECHO, **settings: Any) -> dict[str, Any]:
    await create_function(client, name=name, code=code)
    hook = (await client.post(f"/api/v1/functions/{name}/webhook/enable")).json()
    if settings:
        response = await client.put(f"/api/v1/functions/{name}/webhook", json=settings)
        assert response.status_code == 200, response.text
        hook = response.json()
    return hook


async def _history(
    platform: Platform, client: httpx.AsyncClient, webhook_id: str, **filters: Any
) -> list[Any]:
    await platform.batcher.flush()
    calls: list[Any] = []
    cursor = None
    while True:
        params = {"limit": 100, **filters} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"/api/v1/webhooks/{webhook_id}/calls", params=params)).json()
        calls += page["calls"]
        cursor = page["next_cursor"]
        if not cursor:
            return calls


# --- management -------------------------------------------------------------------------------------


async def test_enable_gives_the_original_shape_and_an_unguessable_key(client: httpx.AsyncClient) -> None:
    fn = await create_function(client, name="hooked", code=ECHO)
    before = (await client.get("/api/v1/functions/hooked/webhook")).json()
    assert before["id"] == fn["id"] and before["webhook_enabled"] is False and before["webhook_key"] is None

    enabled = (await client.post(f"/api/v1/functions/{fn['id']}/webhook/enable")).json()
    assert enabled["id"] == fn["id"] and enabled["webhook_enabled"] is True
    assert (
        len(enabled["webhook_key"]) == 32 and enabled["webhook_url"] == f"/webhook/{enabled['webhook_key']}"
    )
    again = (await client.post("/api/v1/functions/hooked/webhook/enable")).json()
    assert again["webhook_key"] == enabled["webhook_key"]  # enabling twice keeps the URL

    disabled = (await client.post("/api/v1/functions/hooked/webhook/disable")).json()
    assert disabled["id"] == fn["id"] and disabled["webhook_enabled"] is False
    assert disabled["webhook_key"] == enabled["webhook_key"]  # the key is kept

    listed = (await client.get("/api/v1/webhooks")).json()
    assert [(w["target_name"], w["webhook_enabled"]) for w in listed["webhooks"]] == [("hooked", False)]
    assert listed["webhooks"][0]["id"] == enabled["webhook_id"] and listed["next_cursor"] is None

    actions = [e["action"] for e in (await client.get("/api/v1/audit", params={"limit": 100})).json()["logs"]]
    assert {"webhook.enable", "webhook.disable"} <= set(actions)


async def test_regenerate_invalidates_the_old_url_at_once(
    client: httpx.AsyncClient, public: httpx.AsyncClient
) -> None:
    old = await _enabled(client, "regen")
    assert (await public.post(old["webhook_url"], json={})).status_code == 200
    new = (await client.post("/api/v1/functions/regen/webhook/regenerate")).json()
    assert new["webhook_key"] != old["webhook_key"] and new["webhook_enabled"] is True
    assert (await public.post(old["webhook_url"], json={})).status_code == 404
    assert (await public.post(new["webhook_url"], json={})).status_code == 200


async def test_settings_are_validated_and_an_unknown_function_is_404(client: httpx.AsyncClient) -> None:
    await create_function(client, name="strict", code=ECHO)
    bad = [
        ({"mode": "later"}, "mode"),
        ({"allowed_ips": ["10.0.0.0/33"]}, "allowed_ips"),
        ({"rate_limit_per_min": -1}, "rate_limit_per_min"),
        ({"signature_scheme": "md5"}, "signature_scheme"),
        ({"mode": None}, "mode"),
        ({"retry_backoff_ms": 5000, "retry_backoff_max_ms": 10}, "retry_backoff_max_ms"),
    ]
    for body, field in bad:
        response = await client.put("/api/v1/functions/strict/webhook", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"].startswith(field), response.text
    good = await client.put(
        "/api/v1/functions/strict/webhook",
        json={"allowed_ips": ["10.1.2.3", "2001:db8::1/32", "10.1.2.3/32"], "retry_attempts": 2},
    )
    assert good.json()["allowed_ips"] == ["10.1.2.3/32", "2001:db8::/32"]
    assert good.json()["retry_attempts"] == 2 and good.json()["webhook_enabled"] is False
    assert (await client.post("/api/v1/functions/nope/webhook/enable")).status_code == 404


async def test_a_viewer_sees_no_key_and_cannot_change_webhooks(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "guarded")
    user = {"username": "vera", "password": "vera-password-123", "role": "viewer"}
    assert (await client.post("/api/v1/users", json=user)).status_code == 201
    login = {"username": user["username"], "password": user["password"]}
    token = (await client.post("/api/v1/auth/login", json=login)).json()["token"]
    viewer = {"Authorization": f"Bearer {token}"}
    seen = (await client.get("/api/v1/functions/guarded/webhook", headers=viewer)).json()
    assert seen["webhook_enabled"] is True and seen["webhook_url"] is None
    assert seen["webhook_key"] != hook["webhook_key"] and hook["webhook_key"].startswith(
        seen["webhook_key"][:6]
    )
    response = await client.post("/api/v1/functions/guarded/webhook/disable", headers=viewer)
    assert response.status_code == 403


# --- the public endpoint ----------------------------------------------------------------------------


async def test_sync_passes_method_path_headers_query_and_json_body_without_a_login(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "echo")
    response = await public.post(
        hook["webhook_url"] + "/orders/7?x=1&x=2&y=z", json={"order": 7}, headers={"X-Custom": "yes"}
    )
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["source"] == "webhook" and event["method"] == "POST" and event["path"] == "/orders/7"
    assert event["query"] == {"x": ["1", "2"], "y": ["z"]}
    assert event["headers"]["x-custom"] == "yes" and event["body"] == {"order": 7}
    assert event["raw_body"] == '{"order":7}' and event["is_base64_encoded"] is False
    assert event["source_ip"] == "127.0.0.1" and event["webhook_id"] == hook["webhook_id"]
    assert event["webhook_key"] == hook["webhook_key"][:6] + "…"  # invocation inputs are readable by viewers
    assert response.headers["x-nimbus-request-id"] == event["request_id"]
    await platform.batcher.flush()
    detail = (await client.get(f"/api/v1/invocations/{event['request_id']}")).json()
    assert detail["source"] == "webhook" and detail["status"] == "success", detail
    got = await public.get(hook["webhook_url"])
    assert got.status_code == 200 and got.json()["method"] == "GET" and got.json()["body"] is None


async def test_non_json_bodies_arrive_intact_as_text_or_base64(
    client: httpx.AsyncClient, public: httpx.AsyncClient
) -> None:
    hook = await _enabled(client, "raw")
    text = await public.post(
        hook["webhook_url"],
        content=b"a=1&b=two",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert text.json()["body"] == "a=1&b=two" and text.json()["is_base64_encoded"] is False
    broken = await public.post(
        hook["webhook_url"], content=b'{"not json', headers={"Content-Type": "application/json"}
    )
    assert broken.json()["body"] == '{"not json'
    blob = bytes(range(256))
    binary = await public.post(
        hook["webhook_url"], content=blob, headers={"Content-Type": "application/octet-stream"}
    )
    assert binary.json()["is_base64_encoded"] is True
    assert base64.b64decode(binary.json()["body"]) == blob


async def test_a_lambda_style_result_becomes_the_http_response(
    client: httpx.AsyncClient, public: httpx.AsyncClient
) -> None:
    hook = await _enabled(client, "lambda", code=LAMBDA)
    url = hook["webhook_url"]
    text = await public.post(url, json={})
    assert text.status_code == 202 and text.text == "queued" and text.headers["x-trace"] == "abc"
    assert text.headers["content-length"] == "6"  # the function cannot set framing headers
    binary = await public.post(url + "?kind=binary", json={})
    assert binary.status_code == 201 and binary.content == b"\x89PNG\x00\xff"
    assert binary.headers["content-type"] == "image/png" and binary.headers["x-made-by"] == "fn"
    teapot = await public.post(url + "?kind=json", json={})
    assert teapot.status_code == 418 and teapot.json() == {"teapot": True}
    bad = await public.post(url + "?kind=bad", json={})
    assert bad.status_code == 502 and bad.json()["error"]["code"] == "invalid_response"


async def test_a_function_error_is_a_502_with_the_structured_error_and_no_stack(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "broken", code=FAILS)
    response = await public.post(hook["webhook_url"], json=42)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "function_error" and error["type"] == "ValueError"
    assert error["message"] == "bad order 42" and "stack" not in error and "Traceback" not in response.text
    [call] = await _history(platform, client, hook["webhook_id"])
    assert (call["outcome"], call["reason"], call["status"]) == ("failed", "function_error", 502)


async def test_async_mode_answers_202_and_applies_the_webhooks_retry_policy(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(
        client,
        "later",
        code=FAILS,
        mode="async",
        retry_attempts=2,
        retry_backoff_ms=10,
        retry_backoff_max_ms=20,
    )
    with platform.bus.subscribe(InvocationFinished) as finished:
        response = await public.post(hook["webhook_url"], json="x")
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "accepted" and response.headers["x-nimbus-request-id"] == body["request_id"]
        await finished.wait_for(lambda e: e.invocation_id == body["request_id"] and e.final, timeout=20)
    detail = (await client.get(f"/api/v1/invocations/{body['request_id']}")).json()
    assert detail["source"] == "webhook" and detail["status"] == "failed"
    assert len(detail["attempts"]) == 2  # the webhook's policy, not the function's default of 3
    [call] = await _history(platform, client, hook["webhook_id"])
    assert (
        call["status"] == 202
        and call["outcome"] == "accepted"
        and call["invocation_id"] == body["request_id"]
    )


async def test_unknown_keys_disabled_and_offline_targets_are_refused(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    unknown = await public.post("/webhook/" + "x" * 32, json={})
    assert (
        unknown.status_code == 404 and unknown.json()["error"]["message"] == "webhook not found or disabled"
    )
    hook = await _enabled(client, "sleepy")
    assert (await client.post("/api/v1/functions/sleepy/offline")).status_code == 200
    offline = await public.post(hook["webhook_url"], json={})
    assert offline.status_code == 503
    await client.post("/api/v1/functions/sleepy/webhook/disable")
    disabled = await public.post(hook["webhook_url"], json={})
    assert disabled.status_code == 404 and disabled.json() == unknown.json()
    calls = await _history(platform, client, hook["webhook_id"])
    assert [(c["status"], c["reason"]) for c in calls] == [(404, "disabled"), (503, "target_unavailable")]


async def test_deleting_the_function_removes_its_webhook(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "doomed")
    with platform.bus.subscribe() as events:
        assert (await client.delete("/api/v1/functions/doomed")).status_code == 204
        await events.wait_for(
            lambda e: getattr(e, "action", "") == "deleted" and hasattr(e, "webhook_id"), 10
        )
    assert (await client.get("/api/v1/webhooks")).json()["webhooks"] == []
    assert (await public.post(hook["webhook_url"], json={})).status_code == 404


# --- signatures, allowlist, rate limit --------------------------------------------------------------


async def test_github_signatures_accept_the_right_one_and_record_the_wrong_one(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "gh", signature_scheme="github")
    secret = hook.pop("secret")  # generated with the scheme, shown this once
    assert secret.startswith("whsec_") and hook["has_secret"] is True
    assert "secret" not in (await client.get("/api/v1/functions/gh/webhook")).json()
    body = b'{"action":"opened"}'
    url = hook["webhook_url"]
    good = await public.post(url, content=body, headers={"X-Hub-Signature-256": sign_github(secret, body)})
    assert good.status_code == 200 and good.json()["body"] == {"action": "opened"}
    wrong = await public.post(url, content=body, headers={"X-Hub-Signature-256": sign_github("guess", body)})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    tampered = await public.post(
        url, content=body + b" ", headers={"X-Hub-Signature-256": sign_github(secret, body)}
    )
    assert tampered.status_code == 401
    missing = await public.post(url, content=body)
    assert missing.status_code == 401
    calls = await _history(platform, client, hook["webhook_id"])
    assert [(c["outcome"], c["reason"]) for c in reversed(calls)] == [
        ("accepted", ""),
        ("rejected", "signature_invalid"),
        ("rejected", "signature_invalid"),
        ("rejected", "signature_missing"),
    ]
    detail = (await client.get(f"/api/v1/webhooks/{hook['webhook_id']}/calls/{calls[-1]['id']}")).json()
    assert detail["headers"]["x-hub-signature-256"] == "[redacted]"
    assert secret not in json.dumps(detail)


async def test_timestamped_signatures_refuse_stale_requests_as_replays(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "stamped", signature_scheme="timestamp", tolerance_sec=60)
    secret, url, body = hook["secret"], hook["webhook_url"], b'{"id":"evt_1"}'
    now = int(time.time())
    fresh = await public.post(
        url, content=body, headers={"X-Nimbus-Signature": sign_timestamped(secret, body, now)}
    )
    assert fresh.status_code == 200
    old = sign_timestamped(secret, body, now - 600)  # captured ten minutes ago and replayed
    stale = await public.post(url, content=body, headers={"X-Nimbus-Signature": old})
    assert stale.status_code == 401 and "tolerance" in stale.json()["error"]["message"]
    forged = await public.post(url, content=body, headers={"X-Nimbus-Signature": f"t={now},v1={'0' * 64}"})
    assert forged.status_code == 401
    calls = await _history(platform, client, hook["webhook_id"], outcome="rejected")
    assert [c["reason"] for c in reversed(calls)] == ["timestamp_stale", "signature_invalid"]
    only_stale = await _history(platform, client, hook["webhook_id"], reason="timestamp_stale")
    assert len(only_stale) == 1 and "600 s old" in only_stale[0]["message"]


async def test_rotating_the_secret_shows_it_once_and_a_grace_period_keeps_the_old_one(
    client: httpx.AsyncClient, public: httpx.AsyncClient
) -> None:
    hook = await _enabled(client, "rotor", signature_scheme="github")
    first, url, body = hook["secret"], hook["webhook_url"], b"{}"
    second = (await client.post("/api/v1/functions/rotor/webhook/secret")).json()["secret"]
    assert second != first
    sig = {"X-Hub-Signature-256": sign_github(first, body)}
    assert (await public.post(url, content=body, headers=sig)).status_code == 401
    third = await client.post("/api/v1/functions/rotor/webhook/secret", json={"grace_sec": 3600})
    assert third.json()["previous_secret_valid_until"] > time.time()
    for secret in (second, third.json()["secret"]):  # old and new both work during the grace period
        sig = {"X-Hub-Signature-256": sign_github(secret, body)}
        assert (await public.post(url, content=body, headers=sig)).status_code == 200


async def test_the_ip_allowlist_takes_ipv4_and_ipv6_cidrs(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "fenced", allowed_ips=["10.0.0.0/8", "2001:db8::/32"])
    refused = await public.post(hook["webhook_url"], json={})
    assert refused.status_code == 403 and "127.0.0.1" in refused.json()["error"]["message"]
    transport = httpx.ASGITransport(app=create_api(platform), client=("2001:db8::7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://nimbus.test") as v6:
        assert (await v6.post(hook["webhook_url"], json={})).status_code == 200
    await client.put("/api/v1/functions/fenced/webhook", json={"allowed_ips": ["127.0.0.0/8"]})
    assert (await public.post(hook["webhook_url"], json={})).status_code == 200
    calls = await _history(platform, client, hook["webhook_id"])
    assert [(c["source_ip"], c["status"], c["reason"]) for c in reversed(calls)] == [
        ("127.0.0.1", 403, "ip_not_allowed"),
        ("2001:db8::7", 200, ""),
        ("127.0.0.1", 200, ""),
    ]


async def test_over_the_rate_limit_is_429_with_retry_after(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "limited", rate_limit_per_min=2)
    answers = [await public.post(hook["webhook_url"], json={"n": n}) for n in range(3)]
    statuses = [a.status_code for a in answers]
    if statuses != [200, 200, 429]:  # the minute turned between the requests: try once more
        answers = [await public.post(hook["webhook_url"], json={"n": n}) for n in range(3)]
        statuses = [a.status_code for a in answers]
    assert statuses[-1] == 429
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    assert answers[-1].headers["x-ratelimit-remaining"] == "0"
    calls = await _history(platform, client, hook["webhook_id"], reason="rate_limited")
    assert calls and calls[0]["status"] == 429 and "2 requests per minute" in calls[0]["message"]


async def test_300_concurrent_signed_requests_hold_the_limit_exactly_and_all_are_recorded(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    """The small load test (bench/webhook_load.py is the big one): per minute window, exactly
    min(limit, requests in it) are accepted, and every request has its history row."""
    hook = await _enabled(client, "burst", mode="async", signature_scheme="github", rate_limit_per_min=100)
    secret, url = hook["secret"], hook["webhook_url"]

    async def send(n: int) -> int:
        body = json.dumps({"n": n}).encode()
        headers = {"X-Hub-Signature-256": sign_github(secret, body), "Content-Type": "application/json"}
        return (await public.post(url, content=body, headers=headers)).status_code

    statuses = Counter(await asyncio.gather(*(send(n) for n in range(300))))
    assert set(statuses) <= {202, 429} and sum(statuses.values()) == 300
    calls = await _history(platform, client, hook["webhook_id"])
    assert len(calls) == 300 and len({c["id"] for c in calls}) == 300
    per_window: dict[int, Counter[str]] = {}
    for call in calls:
        window = int(_epoch(call["created_at"]) // 60)
        per_window.setdefault(window, Counter())[call["outcome"]] += 1
    for window, counts in per_window.items():
        assert counts["accepted"] == min(100, counts["accepted"] + counts["rejected"]), (window, counts)
    assert statuses[202] == sum(c["accepted"] for c in per_window.values())
    assert {c["reason"] for c in calls if c["outcome"] == "rejected"} <= {"rate_limited"}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def test_history_redacts_secrets_and_caps_large_bodies(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "big", code=SIZES)
    body = "x" * 40_000
    response = await public.post(
        hook["webhook_url"] + "?token=hunter2&page=1",
        content=body,
        headers={"Authorization": "Bearer hunter2", "Cookie": "s=hunter2", "Content-Type": "text/plain"},
    )
    assert response.status_code == 200 and response.json()["size"] == 40_000  # the function got all of it
    [call] = await _history(platform, client, hook["webhook_id"])
    detail = (await client.get(f"/api/v1/webhooks/{hook['webhook_id']}/calls/{call['id']}")).json()
    assert "hunter2" not in json.dumps(detail)
    assert detail["headers"]["authorization"] == "[redacted]" and detail["query"]["page"] == ["1"]
    assert detail["request_size"] == 40_000 and detail["request_truncated"] is True
    assert len(detail["request_body"]) == 16 * 1024 and detail["response_truncated"] is True
    stats = (await client.get(f"/api/v1/webhooks/{hook['webhook_id']}")).json()["stats_24h"]
    assert stats["total"] == 1 and stats["accepted"] == 1


async def test_a_repeated_idempotency_key_starts_the_function_once(
    client: httpx.AsyncClient, public: httpx.AsyncClient
) -> None:
    hook = await _enabled(client, "once", mode="async")
    headers = {"Idempotency-Key": "delivery-1"}
    first = await public.post(hook["webhook_url"], json={"n": 1}, headers=headers)
    again = await public.post(hook["webhook_url"], json={"n": 1}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["request_id"] == again.json()["request_id"]


async def test_an_oversized_body_is_413_and_recorded_without_it(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    hook = await _enabled(client, "small")
    response = await public.post(hook["webhook_url"], content=b"x" * (6 * 1024 * 1024 + 1))
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    [call] = await _history(platform, client, hook["webhook_id"])
    assert (call["reason"], call["request_size"], call["request_truncated"]) == (
        "too_large",
        6 * 1024 * 1024 + 1,
        True,
    )


async def test_a_workflow_webhook_runs_the_workflow_and_goes_when_it_is_deleted(
    client: httpx.AsyncClient, public: httpx.AsyncClient, platform: Platform
) -> None:
    definition = {"start_at": "P", "states": {"P": {"type": "pass", "end": True}}}
    created = await client.post("/api/v1/workflows", json={"name": "flow", "definition": definition})
    assert created.status_code == 201, created.text
    hook = (await client.post("/api/v1/workflows/flow/webhook/enable")).json()
    assert hook["id"] == created.json()["id"] and hook["target_kind"] == "workflow"
    response = await public.post(hook["webhook_url"], json={"order": 3})
    assert response.status_code == 200, response.text
    assert response.json()["body"] == {"order": 3}  # a Pass state hands its input (the event) on
    listed = (await client.get("/api/v1/webhooks", params={"kind": "workflow"})).json()["webhooks"]
    assert [w["target_name"] for w in listed] == ["flow"]
    with platform.bus.subscribe(WebhookChanged) as changes:
        assert (await client.delete("/api/v1/workflows/flow")).status_code == 204
        await changes.wait_for(lambda e: e.action == "deleted", timeout=10)
    assert (await public.post(hook["webhook_url"], json={})).status_code == 404
