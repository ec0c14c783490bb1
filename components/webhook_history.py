"""A webhook's call history: outcome and reason filters, a table (time, method, path, caller, status,
outcome, reason, latency) with cursor pagination, and a dialog with one call's redacted headers and
capped bodies. `refresh()` reloads the page shown; the page calls it when WebhookCalled arrives."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui

from components.cursor_pager import CursorPager
from components.feedback import Failed, attempt
from components.frame import PageContext
from components.invocation_drawer import fmt_ms, fmt_time
from data.models import WebhookCall
from engine.services.webhook_calls import OUTCOMES, REASONS

OUTCOME_COLOURS = {"accepted": "positive", "rejected": "warning", "failed": "negative"}
PAGE_SIZE = 20


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if value else "{}"


def _body(text: str, encoding: str, size: int, truncated: bool) -> str:
    if not size:
        return "(empty)"
    if encoding == "text":
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    note = f"\n… truncated: {size} bytes in all, the first 16 KiB kept" if truncated else ""
    kind = " (base64)" if encoding == "base64" else ""
    return f"{text}{kind}{note}"


class WebhookHistory:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.webhook_id: str | None = None
        self.pager = CursorPager(self.refresh)
        with ui.column().classes("w-full gap-2").mark("webhook-history"):
            with ui.row().classes("w-full items-end gap-3"):
                ui.label("Call history").classes("text-lg font-semibold")
                ui.space()
                self.outcome = ui.select(
                    {"": "Any outcome", **{o: o for o in OUTCOMES}},
                    value="",
                    label="Outcome",
                    on_change=self.apply,
                )
                self.outcome.classes("w-36").mark("webhook-filter-outcome")
                self.reason = ui.select(
                    {"": "Any reason", **{r: r for r in REASONS}},
                    value="",
                    label="Reason",
                    on_change=self.apply,
                )
                self.reason.classes("w-48").mark("webhook-filter-reason")
            with ui.element("q-markup-table").props("flat bordered dense").classes("w-full") as self.table:
                with ui.element("thead"), ui.element("tr"):
                    headers = (
                        "Time (UTC)",
                        "Method",
                        "Path",
                        "From",
                        "Status",
                        "Outcome",
                        "Reason",
                        "Latency",
                        "",
                    )
                    for header in headers:
                        with ui.element("th").classes("text-left"):
                            ui.label(header)
                self.body = ui.element("tbody")
            self.empty = ui.label("").classes("text-gray-500 p-2").mark("webhook-history-empty")
            self.pager.controls(newer_mark="webhook-history-newer", older_mark="webhook-history-older")

    @property
    def on_first_page(self) -> bool:
        return self.pager.on_first_page

    async def show(self, webhook_id: str | None) -> None:
        self.webhook_id = webhook_id
        self.pager.reset()
        await self.refresh()

    async def apply(self) -> None:
        self.pager.reset()
        await self.refresh()

    async def refresh(self) -> None:
        self.body.clear()
        if self.webhook_id is None:
            self._show_empty("No webhook selected.")
            return
        page = await attempt(
            self.ctx.platform.webhooks.history.calls(
                self.ctx.principal,
                self.webhook_id,
                outcome=self.outcome.value or None,
                reason=self.reason.value or None,
                limit=PAGE_SIZE,
                cursor=self.pager.current,
            ),
            notify=False,
        )
        if isinstance(page, Failed):
            self._show_empty(page.message)
            return
        with self.body:
            for call in page.items:
                self._row(call)
        if page.items:
            self.table.set_visibility(True)
            self.empty.set_visibility(False)
        elif self.outcome.value or self.reason.value:
            self._show_empty("No calls match these filters.")
        else:
            self._show_empty("No calls yet: requests to the URL above show up here as they arrive.")
        self.pager.loaded(page.next_cursor)

    def _show_empty(self, text: str) -> None:
        self.table.set_visibility(False)
        self.empty.set_text(text)
        self.empty.set_visibility(True)
        self.pager.newer_button.set_enabled(not self.pager.on_first_page)
        self.pager.older_button.set_enabled(False)  # nothing shown (yet): the page label stays as it was

    def _row(self, call: WebhookCall) -> None:
        with ui.element("tr").mark("webhook-call-row", f"webhook-call-{call.id}"):
            cells = (
                fmt_time(call.created_at),
                call.method,
                call.path,
                call.source_ip,
                str(call.status),
            )
            for text in cells:
                with ui.element("td"):
                    ui.label(text).classes("text-sm font-mono" if text == call.path else "text-sm")
            with ui.element("td"):
                ui.badge(call.outcome, color=OUTCOME_COLOURS.get(call.outcome, "grey"))
            with ui.element("td").classes("max-w-[320px]"):
                label = ui.label(call.reason or "").classes("text-sm truncate").mark("webhook-call-reason")
                if call.reason:
                    label.tooltip(call.message or REASONS.get(call.reason, call.reason))
            with ui.element("td"):
                ui.label(fmt_ms(call.latency_ms)).classes("text-sm")
            with ui.element("td"):
                ui.button(icon="visibility", on_click=lambda c=call: self.open(c)).props(
                    "flat dense round"
                ).tooltip("Details").mark(f"webhook-call-open-{call.id}")

    def open(self, call: WebhookCall) -> None:
        """One call in full: what came in (headers redacted) and what went out, bodies capped."""
        with ui.dialog() as dialog, ui.card().classes("min-w-[720px] max-w-[960px] gap-2"):
            dialog.mark("webhook-call-dialog")
            with ui.row().classes("w-full items-center"):
                ui.label(f"{call.method} {call.path} → {call.status}").classes("text-lg font-semibold")
                ui.space()
                ui.badge(call.outcome, color=OUTCOME_COLOURS.get(call.outcome, "grey"))
            ui.label(
                f"{fmt_time(call.created_at)} UTC from {call.source_ip} in {fmt_ms(call.latency_ms)}"
            ).classes("text-sm text-gray-500")
            if call.reason:
                reason = f"{call.reason}: {call.message or REASONS.get(call.reason, '')}"
                ui.label(reason).classes("text-sm text-negative").mark("webhook-call-message")
            if call.invocation_id:
                ui.link("Open the invocation", f"/invocations?id={call.invocation_id}").classes("text-sm")
            with ui.tabs().classes("w-full") as tabs:
                request_tab = ui.tab("Request")
                response_tab = ui.tab("Response")
            with ui.tab_panels(tabs, value=request_tab).classes("w-full"):
                with ui.tab_panel(request_tab):
                    ui.label("Headers (secrets redacted)").classes("text-sm font-semibold")
                    ui.code(_pretty(call.headers), language="json").classes("w-full").mark(
                        "webhook-call-headers"
                    )
                    if call.query:
                        ui.label("Query").classes("text-sm font-semibold")
                        ui.code(_pretty(call.query), language="json").classes("w-full")
                    ui.label(f"Body ({call.request_size} bytes)").classes("text-sm font-semibold")
                    text = _body(
                        call.request_body, call.request_encoding, call.request_size, call.request_truncated
                    )
                    ui.code(text).classes("w-full max-h-80 overflow-auto").mark("webhook-call-request-body")
                with ui.tab_panel(response_tab):
                    ui.code(_pretty(call.response_headers), language="json").classes("w-full")
                    text = _body(
                        call.response_body,
                        call.response_encoding,
                        call.response_size,
                        call.response_truncated,
                    )
                    ui.code(text).classes("w-full max-h-80 overflow-auto").mark("webhook-call-response-body")
            with ui.row().classes("w-full justify-end"):
                ui.button("Close", on_click=dialog.close).props("flat")
        dialog.on("hide", dialog.delete)
        dialog.open()
