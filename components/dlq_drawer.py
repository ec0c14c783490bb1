"""The DLQ message drawer: the original input, the error of every attempt (and of every retry), when it
failed, how many attempts it took, and Retry / Discard buttons for a pending message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from components.feedback import Failed, attempt
from components.frame import PageContext
from components.invocation_drawer import _json, _pre, _section, fmt_time
from data.models import DeadLetter

DLQ_STATUS_COLOURS = {"pending": "negative", "retrying": "info", "resolved": "positive", "discarded": "grey"}

Action = Callable[[str], Awaitable[Any]]


def last_error_type(msg: DeadLetter) -> str:
    return str(msg.attempts[-1].get("type") or "") if msg.attempts else ""


class DlqDrawer:
    """A right-hand drawer built on open; `retry`/`discard` are the page's actions (they notify)."""

    def __init__(self, ctx: PageContext, *, retry: Action, discard: Action) -> None:
        self._ctx = ctx
        self._retry = retry
        self._discard = discard
        self.message_id: str | None = None
        with ctx.client.content:  # a drawer must be a top-level layout element
            self._drawer = (
                ui.right_drawer(value=False, bordered=True)
                .props("width=620 overlay elevated")
                .mark("dlq-drawer")
            )
        with self._drawer:
            self._body = ui.column().classes("w-full gap-1 p-2")

    async def open(self, message_id: str) -> bool:
        msg = await attempt(self._ctx.platform.dlq.get(self._ctx.principal, message_id), notify=False)
        self._body.clear()
        self.message_id = message_id
        with self._body:
            with ui.row().classes("w-full items-center"):
                ui.label("Dead-letter message").classes("text-lg font-semibold")
                ui.space()
                ui.button(icon="close", on_click=self.close).props("flat round dense").mark(
                    "dlq-drawer-close"
                )
            if isinstance(msg, Failed):
                ui.label(f"Message {message_id} cannot be shown: {msg.message}").classes(
                    "text-negative"
                ).mark("dlq-drawer-error")
            else:
                self._render(msg)
        self._drawer.show()
        return not isinstance(msg, Failed)

    async def refresh(self) -> None:
        if self.message_id is not None:
            await self.open(self.message_id)

    def close(self) -> None:
        self._drawer.hide()
        self._body.clear()
        self.message_id = None

    def _render(self, msg: DeadLetter) -> None:
        with ui.row().classes("w-full items-center gap-2"):
            ui.link(msg.function_name, f"/functions/{msg.function_id}").classes("font-semibold").mark(
                "dlq-drawer-function"
            )
            ui.badge(msg.status, color=DLQ_STATUS_COLOURS.get(msg.status, "grey")).mark("dlq-drawer-status")
            ui.label(f"source {msg.source}").classes("text-sm text-gray-500")
        ui.label(msg.id).classes("font-mono text-xs text-gray-500").mark("dlq-drawer-id")
        ui.link(
            f"original invocation {msg.original_request_id}", f"/invocations?id={msg.original_request_id}"
        ).classes("text-xs")
        facts = [
            ("Failed at (UTC)", fmt_time(msg.created_at)),
            ("Attempts", str(sum(1 for a in msg.attempts if isinstance(a.get("attempt"), int)))),
            ("Retries from the DLQ", str(msg.retry_count)),
            ("Last retry (UTC)", fmt_time(msg.last_retry_at)),
            ("Resolved (UTC)", fmt_time(msg.resolved_at)),
        ]
        with ui.grid(columns=2).classes("gap-x-4 gap-y-0 text-sm").mark("dlq-drawer-facts"):
            for label, value in facts:
                ui.label(label).classes("text-gray-500")
                ui.label(value)
        if self._ctx.principal.can("developer") and msg.status in ("pending", "retrying"):
            with ui.row().classes("gap-2 mt-1"):
                if msg.status == "pending":
                    ui.button("Retry", icon="replay", on_click=lambda: self._retry(msg.id)).props(
                        "dense outline"
                    ).mark("dlq-drawer-retry")
                ui.button("Discard", icon="delete_sweep", on_click=lambda: self._discard(msg.id)).props(
                    "dense outline color=negative"
                ).mark("dlq-drawer-discard")
        _section("Last error")
        ui.label(msg.error or "—").classes("text-negative font-mono text-sm").mark("dlq-drawer-last-error")
        _section(f"Errors per attempt ({len(msg.attempts)})")
        with ui.column().classes("w-full gap-1").mark("dlq-drawer-attempts"):
            for entry in msg.attempts:
                self._attempt(entry)
        _section("Original input")
        _pre(_json(msg.payload), "dlq-drawer-input")

    def _attempt(self, entry: dict[str, Any]) -> None:
        number = entry.get("attempt")
        title = f"Attempt {number}" if isinstance(number, int) else str(number or "attempt").capitalize()
        when = str(entry.get("ended_at") or entry.get("started_at") or "")[:19].replace("T", " ")
        with ui.card().classes("w-full p-2 gap-0").mark("dlq-attempt"):
            with ui.row().classes("w-full items-center gap-2 text-sm"):
                ui.label(title).classes("font-semibold")
                ui.label(when).classes("text-xs text-gray-500")
            ui.label(f"{entry.get('type') or 'Error'}: {entry.get('message') or ''}").classes(
                "font-mono text-xs text-negative whitespace-pre-wrap break-all"
            ).mark("dlq-attempt-error")
            if entry.get("stack"):
                _pre(str(entry["stack"])[-4000:], "dlq-attempt-stack")
