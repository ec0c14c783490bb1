"""A webhook's settings form (mode, signature scheme, tolerance, rate limit, retry policy, allowlist) with
its errors shown on the field they concern, and the two secret dialogs: how long an old secret stays valid
when rotating, and the new secret, shown once with a copy button."""

from __future__ import annotations

import re
from typing import Any

from nicegui import ui

from data.models import Webhook
from engine.errors import Invalid
from engine.services.environment_schemas import validated
from engine.services.webhook_schemas import WebhookUpdate

MODES = {"sync": "Sync: the result is the response", "async": "Async: 202 now, run in the background"}
SCHEMES = {
    "none": "No signature",
    "github": "GitHub (X-Hub-Signature-256)",
    "timestamp": "Timestamped (X-Nimbus-Signature)",
}
SIGNING_HELP = {
    "none": "Anyone who knows the URL can call it. Choose a signature scheme to require signed requests.",
    "github": "Send X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the secret> "
    "(what GitHub sends when you give it the secret).",
    "timestamp": 'Send X-Nimbus-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + raw body>; '
    "requests older (or newer) than the tolerance are refused as replays.",
}
GRACE = {
    0: "Stop accepting the old secret now",
    3600: "Accept the old one for 1 more hour",
    86400: "… for 24 hours",
}
_NUMBERS = (
    "tolerance_sec",
    "rate_limit_per_min",
    "retry_attempts",
    "retry_backoff_ms",
    "retry_backoff_max_ms",
)


class WebhookSettingsForm:
    def __init__(self, hook: Webhook, *, editable: bool) -> None:
        with ui.grid(columns=4).classes("w-full gap-3"):
            mode = ui.select(MODES, value=hook.mode, label="Mode").mark("webhook-mode")
            scheme = ui.select(SCHEMES, value=hook.signature_scheme, label="Signature").mark(
                "webhook-signature"
            )
            numbers = (
                ("tolerance_sec", "Timestamp tolerance (s)", hook.tolerance_sec, "webhook-tolerance"),
                (
                    "rate_limit_per_min",
                    "Rate limit (requests/min, 0 = none)",
                    hook.rate_limit_per_min,
                    "webhook-rate-limit",
                ),
                (
                    "retry_attempts",
                    "Async attempts (empty: the target's own)",
                    hook.retry_attempts,
                    "webhook-retry-attempts",
                ),
                (
                    "retry_backoff_ms",
                    "First retry delay (ms)",
                    hook.retry_backoff_ms,
                    "webhook-retry-backoff",
                ),
                (
                    "retry_backoff_max_ms",
                    "Longest retry delay (ms)",
                    hook.retry_backoff_max_ms,
                    "webhook-retry-backoff-max",
                ),
            )
            self.fields: dict[str, Any] = {"mode": mode, "signature_scheme": scheme}
            for name, label, value, mark in numbers:
                self.fields[name] = ui.number(label, value=value, precision=0).mark(mark)
        allowlist = ui.textarea(
            "Allowed addresses (CIDR, one per line; empty: any)", value="\n".join(hook.allowed_ips or [])
        )
        self.fields["allowed_ips"] = allowlist.classes("w-full").props("autogrow").mark("webhook-allowed-ips")
        help_label = ui.label(SIGNING_HELP[hook.signature_scheme]).classes("text-sm text-gray-500")
        help_label.mark("webhook-signing-help")
        scheme.on_value_change(lambda e: help_label.set_text(SIGNING_HELP.get(e.value, "")))
        self.error = ui.label("").classes("text-negative text-sm").mark("webhook-form-error")
        self.error.set_visibility(False)
        if not editable:
            for element in self.fields.values():
                element.disable()

    def request(self) -> WebhookUpdate | None:
        """The settings as a request, or None with the problem shown on its field."""
        self.clear()
        values: dict[str, Any] = {name: _whole(self.fields[name].value) for name in _NUMBERS}
        values["mode"] = self.fields["mode"].value
        values["signature_scheme"] = self.fields["signature_scheme"].value
        values["allowed_ips"] = [v for v in re.split(r"[\s,]+", self.fields["allowed_ips"].value or "") if v]
        try:
            return validated(WebhookUpdate, **values)
        except Invalid as exc:
            self.show_error(exc.field, exc.message)
            return None

    def clear(self) -> None:
        for element in self.fields.values():
            element.error = None
        self.error.set_visibility(False)

    def show_error(self, field: str | None, message: str) -> None:
        target = self.fields.get((field or "").split(".")[0])
        if target is not None:
            target.error = message.removeprefix(f"{field}: ")
        else:
            self.error.set_text(message)
            self.error.set_visibility(True)


def _whole(value: Any) -> Any:
    """A number input's value as an int when it is a whole number (validation explains anything else)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


async def ask_grace() -> int | None:
    """How long the old secret stays valid after a rotation (seconds), or None when cancelled."""
    with ui.dialog() as dialog, ui.card().classes("min-w-[420px]").mark("webhook-grace-dialog"):
        ui.label("Rotate the signing secret?").classes("text-lg font-semibold")
        ui.label("Requests signed with the old secret are refused once it expires.").classes("text-sm")
        choice = ui.select(GRACE, value=0, label="The old secret").classes("w-full").mark("webhook-grace")
        with ui.row().classes("w-full justify-end gap-2"):
            ui.button("Cancel", on_click=lambda: dialog.submit(None)).props("flat")
            ui.button("Rotate", on_click=lambda: dialog.submit(choice.value)).mark("webhook-grace-ok")
    result = await dialog
    dialog.delete()
    return None if result is None else int(result)


def show_secret(secret: str) -> None:
    """The plain secret, this once: only its encrypted form is kept."""
    with ui.dialog() as dialog, ui.card().classes("min-w-[520px] gap-3").mark("webhook-secret-dialog"):
        ui.label("Your signing secret").classes("text-lg font-semibold")
        ui.label("Copy it now and give it to the sender: it is not shown again.").classes("text-sm")
        with ui.row().classes("w-full items-center no-wrap gap-2"):
            ui.input(value=secret).props("readonly").classes("flex-1 font-mono").mark("webhook-secret-value")

            def copy() -> None:
                ui.clipboard.write(secret)
                ui.notify("Secret copied", type="positive")

            ui.button(icon="content_copy", on_click=copy).props("flat round").mark("webhook-secret-copy")
        with ui.row().classes("w-full justify-end"):
            ui.button("Done", on_click=dialog.close).mark("webhook-secret-done")
    dialog.on("hide", dialog.delete)
    dialog.open()
