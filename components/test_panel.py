"""A function's Test tab: a JSON payload (typed, picked from saved test events, or an invocation's input),
saving and deleting test events, invoking from the console and showing the result, its logs and timing."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui

from components.code_panel import FunctionPage
from components.confirm import confirm
from components.feedback import Failed, attempt
from data.models import TestEvent
from engine.invoke.invoker import Outcome

RESULT_COLOURS = {"success": "positive", "failed": "negative", "timeout": "warning"}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _mono(text: str) -> ui.label:
    return ui.label(text).classes(
        "w-full font-mono text-sm whitespace-pre-wrap break-all rounded bg-gray-100 dark:bg-slate-800 p-2"
    )


class TestPanel:
    __test__ = False  # not a pytest class

    def __init__(self, page: FunctionPage, events: list[TestEvent], prefill: tuple[str, Any] | None) -> None:
        self.page = page
        self.events = {e.name: e.payload for e in events}
        chosen = "sample" if "sample" in self.events else next(iter(self.events), None)
        payload: Any = self.events[chosen] if chosen is not None else {}
        if prefill is not None:
            chosen, payload = None, prefill[1]
        with ui.row().classes("w-full items-start gap-2"):
            self.select = ui.select(
                sorted(self.events), value=chosen, label="Saved events", on_change=self._pick
            )
            self.select.classes("min-w-[220px]").mark("test-event-select")
            self.name = ui.input("Event name", value=chosen or "").mark("test-event-name")
            writer = page.can_write
            ui.button("Save event", icon="save", on_click=self._save_event).props("flat").mark(
                "test-event-save"
            ).set_enabled(writer)
            ui.button("Delete event", icon="delete", on_click=self._delete_event).props(
                "flat color=negative"
            ).mark("test-event-delete").set_enabled(writer)
        if prefill is not None:
            link = ui.link(f"Payload of invocation {prefill[0]}", f"/invocations?id={prefill[0]}")
            link.classes("text-sm").mark("test-from")
        self.payload = (
            ui.codemirror(_pretty(payload), language="JSON", theme=page.theme, on_change=self._check)
            .classes("w-full h-[30vh] border rounded")
            .mark("test-payload")
        )
        self.payload_error = ui.label("").classes("text-red-600 text-sm").mark("test-payload-error")
        self.payload_error.set_visibility(False)
        with ui.row().classes("items-center gap-3"):
            # Options arrive from load_environments() (this constructor cannot await the service).
            self.environment = ui.select({}, label="Environment").classes("min-w-[180px]")
            self.environment.mark("test-environment").set_visibility(False)
            self.invoke_button = ui.button("Invoke", icon="play_arrow", on_click=self.invoke).mark(
                "test-invoke"
            )
            self.invoke_button.set_enabled(writer)
            self.spinner = ui.spinner(size="md").mark("test-spinner")
            self.spinner.set_visibility(False)
        self.result = ui.column().classes("w-full gap-2").mark("test-result")

    async def load_environments(self) -> None:
        """The environments a test invocation may target; the default one is chosen (as for the API)."""
        ctx = self.page.ctx
        environments = await attempt(ctx.platform.environments.list(ctx.principal), notify=False)
        if isinstance(environments, Failed) or not environments:
            return
        options = {e.name: f"{e.name} (default)" if e.is_default else e.name for e in environments}
        default = next((e.name for e in environments if e.is_default), None)
        self.environment.set_options(options, value=default)
        self.environment.set_visibility(True)

    def _parsed(self) -> Any | Failed:
        try:
            return json.loads(self.payload.value or "")
        except json.JSONDecodeError as exc:
            return Failed(f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", "payload")

    def _check(self, *_: Any) -> bool:
        parsed = self._parsed()
        bad = isinstance(parsed, Failed)
        self.payload_error.set_text(parsed.message if isinstance(parsed, Failed) else "")
        self.payload_error.set_visibility(bad)
        return not bad

    def _pick(self, e: Any) -> None:
        if e.value in self.events:
            self.payload.set_value(_pretty(self.events[e.value]))
            self.name.set_value(e.value)

    async def _save_event(self) -> None:
        self.name.error = None
        payload = self._parsed()
        if not self._check() or isinstance(payload, Failed):
            return
        platform, principal = self.page.ctx.platform, self.page.ctx.principal
        saved = await attempt(
            platform.test_events.save(principal, self.page.fn.id, self.name.value or "", payload),
            notify=False,
        )
        if isinstance(saved, Failed):
            if saved.field == "payload":
                self.payload_error.set_text(saved.message)
                self.payload_error.set_visibility(True)
            else:
                self.name.error = saved.message
            return
        self.events[saved.name] = saved.payload
        self.select.set_options(sorted(self.events), value=saved.name)
        ui.notify(f"Saved test event {saved.name}", type="positive")

    async def _delete_event(self) -> None:
        name = self.select.value
        if not name:
            ui.notify("Choose a saved event to delete")
            return
        if not await confirm(f"Delete test event {name}?"):
            return
        platform, principal = self.page.ctx.platform, self.page.ctx.principal
        if not isinstance(
            await attempt(platform.test_events.delete(principal, self.page.fn.id, name)), Failed
        ):
            self.events.pop(name, None)
            self.select.set_options(sorted(self.events), value=None)
            self.name.set_value("")
            ui.notify(f"Deleted test event {name}", type="positive")

    async def invoke(self) -> None:
        event = self._parsed()
        if not self._check() or isinstance(event, Failed):
            return
        self.invoke_button.disable()
        self.spinner.set_visibility(True)
        try:
            platform = self.page.ctx.platform
            outcome = await attempt(
                platform.invoker.invoke(
                    self.page.ctx.principal,
                    self.page.fn.id,
                    event,
                    source="console",
                    environment=self.environment.value or None,
                )
            )
        finally:
            self.invoke_button.enable()
            self.spinner.set_visibility(False)
        if isinstance(outcome, Outcome):
            self._show(outcome)

    def _show(self, outcome: Outcome) -> None:
        result, response = outcome.result, outcome.response()
        self.result.clear()
        with self.result:
            with ui.row().classes("items-center gap-3"):
                status = f"{result.status} · {response['status_code']}"
                ui.badge(status, color=RESULT_COLOURS.get(result.status, "grey")).mark("test-status")
                ui.badge(
                    "cold start" if result.cold else "warm", color="blue" if result.cold else "teal"
                ).mark("test-cold")
                if outcome.environment:
                    ui.badge(f"{outcome.environment} · {outcome.version}", color="indigo").mark("test-ran-in")
                ui.label(f"duration {result.duration_ms:.1f} ms").mark("test-duration")
                if result.init_ms is not None:
                    ui.label(f"init {result.init_ms:.1f} ms").mark("test-init")
                ui.label(f"billed {response['billed_time_ms']} ms").mark("test-billed")
                if result.peak_memory_kb is not None:
                    ui.label(f"peak memory {result.peak_memory_kb / 1024:.1f} MB").mark("test-memory")
                ui.link(f"request {outcome.request_id}", f"/invocations?id={outcome.request_id}").mark(
                    "test-request-id"
                )
            if result.ok:
                ui.label("Output").classes("font-semibold")
                _mono(_pretty(result.result)).mark("test-output")
            elif result.error is not None:
                ui.label(f"{result.error.type}: {result.error.message}").classes("text-red-600").mark(
                    "test-error"
                )
                if result.error.stack:
                    _mono(result.error.stack).mark("test-stack")
            ui.label("Logs" + (" (truncated)" if result.logs_truncated else "")).classes("font-semibold")
            _mono(result.logs or "(no output)").mark("test-logs")
