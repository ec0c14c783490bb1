"""The Webhooks page through NiceGUI's user simulation over a real platform: enabling a function's webhook,
its URL and settings, a secret generated and shown once, a new URL, the call history arriving live with
the reason a refused call was refused, and a viewer who sees no key and changes nothing. Requests reach
the webhook through the same gateway the public /webhook/{key} route calls."""

from __future__ import annotations

from typing import Any

from nicegui.testing.user import User

from data.models import Webhook
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from engine.services.webhook_http import IncomingRequest
from engine.services.webhook_schemas import WebhookUpdate
from engine.services.webhook_signatures import sign_github
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value

ECHO = "def handler(event, context):\n    return event['body']\n"


async def function(platform: Platform, name: str = "orders") -> str:
    fn = await platform.functions.create(SYSTEM, FunctionCreate(name=name, runtime="python", code=ECHO))
    return fn.id


async def webhook(platform: Platform, name: str = "orders") -> Webhook:
    await function(platform, name)
    return (await platform.webhooks.enable(SYSTEM, "function", name)).webhook


async def call(platform: Platform, key: str, body: bytes = b'{"n": 1}', **headers: str) -> int:
    request = IncomingRequest(
        key=key,
        method="POST",
        path="/",
        query=[],
        headers=[("content-type", "application/json"), *((k.lower(), v) for k, v in headers.items())],
        body=body,
        source_ip="203.0.113.9",
    )
    return (await platform.webhooks.handle(request)).status


def rows(user: User, marker: str) -> int:
    try:
        return len(user.find(marker=marker).elements)
    except AssertionError:
        return 0


def text_of(user: User, marker: str) -> str:
    """The text (or value, or content) of the one element with `marker`; "" while there is none."""
    if not rows(user, marker):
        return ""
    value: Any = element(user, marker)
    for attribute in ("text", "value", "content"):
        if getattr(value, attribute, None):
            return str(getattr(value, attribute))
    return ""


async def current(platform: Platform, webhook_id: str) -> Webhook:
    return await platform.webhooks.get(SYSTEM, webhook_id)


async def test_enabling_a_webhook_shows_its_url_and_an_empty_history(
    console: User, platform: Platform
) -> None:
    await function(platform)
    await log_in(console, then="/webhooks")
    await console.should_see("No webhooks yet", retries=50)
    set_value(console, "webhook-add-function", "function:orders")
    console.find(marker="webhook-add").click()
    await console.should_see(marker="webhook-row-orders", retries=50)
    hook = (await platform.webhooks.list(SYSTEM)).items[0]
    assert hook.enabled
    await eventually(lambda: text_of(console, "webhook-url-orders") == f"http://test/webhook/{hook.key}")
    await eventually(lambda: text_of(console, "webhook-detail-url") == f"http://test/webhook/{hook.key}")
    await console.should_see("No calls yet")
    assert text_of(console, "webhook-total-value") == "0"
    await console.should_see(marker="nav-Webhooks")


async def test_calls_appear_live_with_the_reason_a_refused_one_was_refused(
    console: User, platform: Platform
) -> None:
    hook = await webhook(platform)
    await platform.webhooks.update(SYSTEM, "function", "orders", WebhookUpdate(rate_limit_per_min=1))
    await log_in(console, then="/webhooks?function=orders")
    await console.should_see("No calls yet", retries=50)
    assert await call(platform, hook.key) == 200
    await eventually(lambda: rows(console, "webhook-call-row") == 1)
    statuses = [await call(platform, hook.key)]
    if statuses[-1] != 429:  # the minute turned between the two calls: the next one is over the limit
        statuses.append(await call(platform, hook.key))
    assert statuses[-1] == 429
    await eventually(lambda: rows(console, "webhook-call-row") == 1 + len(statuses))
    await console.should_see("rate_limited")
    await eventually(lambda: text_of(console, "webhook-rejected-value") == "1")
    assert text_of(console, "webhook-accepted-value") == str(len(statuses))
    await console.should_see("last: 429 rate_limited")

    set_value(console, "webhook-filter-outcome", "accepted")
    await eventually(lambda: rows(console, "webhook-call-row") == len(statuses))
    set_value(console, "webhook-filter-outcome", "")
    set_value(console, "webhook-filter-reason", "signature_invalid")
    await console.should_see("No calls match these filters.")


async def test_a_call_opens_with_redacted_headers_and_its_body(console: User, platform: Platform) -> None:
    hook = await webhook(platform)
    await call(platform, hook.key, b'{"order": 42}', Authorization="Bearer s3cret-token")
    await log_in(console, then=f"/webhooks?id={hook.id}")
    await eventually(lambda: rows(console, "webhook-call-row") == 1)
    await platform.batcher.flush()
    [row] = (await platform.webhooks.history.calls(SYSTEM, hook.id)).items
    console.find(marker=f"webhook-call-open-{row.id}").click()
    await console.should_see(marker="webhook-call-dialog")
    headers = text_of(console, "webhook-call-headers")
    assert "[redacted]" in headers and "s3cret-token" not in headers
    assert '"order": 42' in text_of(console, "webhook-call-request-body")


async def test_choosing_a_signature_generates_a_secret_shown_once(console: User, platform: Platform) -> None:
    hook = await webhook(platform)
    await log_in(console, then="/webhooks")
    await console.should_see(marker="webhook-save", retries=50)
    set_value(console, "webhook-signature", "github")
    await console.should_see("X-Hub-Signature-256: sha256=")
    console.find(marker="webhook-save").click()
    await console.should_see(marker="webhook-secret-dialog", retries=50)
    secret = text_of(console, "webhook-secret-value")
    assert secret.startswith("whsec_")
    saved = await current(platform, hook.id)
    assert saved.signature_scheme == "github" and secret not in saved.secret
    body = b'{"signed": true}'
    assert await call(platform, hook.key, body, **{"X-Hub-Signature-256": sign_github(secret, body)}) == 200
    assert await call(platform, hook.key, body, **{"X-Hub-Signature-256": sign_github("guess", body)}) == 401
    await console.should_see("signature_invalid", retries=50)


async def test_bad_settings_are_shown_on_their_field(console: User, platform: Platform) -> None:
    hook = await webhook(platform)
    await log_in(console, then="/webhooks")
    await console.should_see(marker="webhook-save", retries=50)
    set_value(console, "webhook-allowed-ips", "10.0.0.0/8\n300.1.1.1")
    console.find(marker="webhook-save").click()
    await eventually(lambda: element(console, "webhook-allowed-ips").error)
    assert "300.1.1.1" in element(console, "webhook-allowed-ips").error
    assert (await current(platform, hook.id)).allowed_ips == []
    set_value(console, "webhook-allowed-ips", "10.0.0.0/8, 2001:db8::/32")
    set_value(console, "webhook-rate-limit", 30)
    console.find(marker="webhook-save").click()
    await console.should_see("Settings saved")
    saved = await current(platform, hook.id)
    assert saved.allowed_ips == ["10.0.0.0/8", "2001:db8::/32"] and saved.rate_limit_per_min == 30
    assert await call(platform, hook.key) == 403  # 203.0.113.9 is not allowed


async def test_disable_new_url_and_rotating_the_secret(console: User, platform: Platform) -> None:
    hook = await webhook(platform)
    await platform.webhooks.rotate_secret(SYSTEM, "function", "orders")
    await log_in(console, then="/webhooks")
    await console.should_see(marker="webhook-toggle", retries=50)
    console.find(marker="webhook-toggle").click()
    await eventually(lambda: text_of(console, "webhook-state") == "disabled")
    assert not (await current(platform, hook.id)).enabled
    assert await call(platform, hook.key) == 404

    console.find(marker="webhook-regenerate").click()
    await console.should_see("Give this webhook a new URL?", retries=50)
    console.find(marker="confirm-ok").click()
    await eventually(
        lambda: text_of(console, "webhook-detail-url") not in ("", f"http://test/webhook/{hook.key}")
    )
    fresh = await current(platform, hook.id)
    assert fresh.key != hook.key and text_of(console, "webhook-detail-url").endswith(fresh.key)

    console.find(marker="webhook-secret").click()
    await console.should_see(marker="webhook-grace-dialog")
    set_value(console, "webhook-grace", 3600)
    console.find(marker="webhook-grace-ok").click()
    await console.should_see(marker="webhook-secret-dialog", retries=50)
    assert text_of(console, "webhook-secret-value").startswith("whsec_")
    info = platform.webhooks.secret_info(await current(platform, hook.id))
    assert info["previous_secret_valid_until"] is not None


async def test_a_viewer_sees_no_key_and_changes_nothing(console: User, platform: Platform) -> None:
    hook = await webhook(platform)
    await platform.auth.create_user(SYSTEM, "vera", "viewer password 123", role="viewer")
    await log_in(console, "vera", "viewer password 123", then="/webhooks")
    await console.should_see(marker="webhook-row-orders", retries=50)
    assert hook.key not in text_of(console, "webhook-url-orders")
    assert text_of(console, "webhook-url-orders").endswith(hook.key[:6] + "…")
    assert rows(console, "webhook-save") == 0 and rows(console, "webhook-toggle") == 0
    assert not element(console, "webhook-mode").enabled


async def test_clicking_a_row_selects_that_webhook(console: User, platform: Platform) -> None:
    await webhook(platform, "first")
    await webhook(platform, "second")
    await log_in(console, then="/webhooks?function=first")
    await eventually(lambda: text_of(console, "webhook-title") == "Webhook of first")
    console.find(marker="webhook-row-second").click()
    await eventually(lambda: text_of(console, "webhook-title") == "Webhook of second")


async def test_a_workflow_gets_a_webhook_from_the_page_too(console: User, platform: Platform) -> None:
    definition = {"start_at": "P", "states": {"P": {"type": "pass", "end": True}}}
    await platform.workflows.create(SYSTEM, {"name": "flow", "definition": definition})
    await log_in(console, then="/webhooks?workflow=flow")
    await console.should_see(marker="webhook-add", retries=50)
    assert element(console, "webhook-add-function").value == "workflow:flow"
    console.find(marker="webhook-add").click()
    await eventually(lambda: text_of(console, "webhook-title") == "Webhook of flow")
    [hook] = (await platform.webhooks.list(SYSTEM, kind="workflow")).items
    assert hook.enabled and hook.target_name == "flow"
    assert await call(platform, hook.key) == 200
    await eventually(lambda: rows(console, "webhook-call-row") == 1)


async def test_urls_use_the_api_address_setting_when_it_is_set(console: User, platform: Platform) -> None:
    hook = await webhook(platform)
    await platform.system_settings.update(SYSTEM, "api_address", "https://fn.example.com")
    await log_in(console, then="/webhooks?function=orders")
    expected = f"https://fn.example.com/webhook/{hook.key}"
    await eventually(lambda: text_of(console, "webhook-detail-url") == expected)
