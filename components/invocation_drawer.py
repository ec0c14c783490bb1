"""The invocation detail drawer: input, output, error, logs, timings and, for async invocations, every
attempt; a link to re-invoke with the same input (the function's Test tab) and a "Replay now" button."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

from nicegui import ui

from components.confirm import confirm
from components.feedback import Failed, attempt
from components.frame import PageContext
from engine.events import InvocationFinished
from engine.services.invocations import InvocationDetail

STATUS_COLOURS = {
    "success": "positive",
    "failed": "negative",
    "timeout": "warning",
    "running": "info",
    "pending": "grey",
    "abandoned": "grey",
}
MAX_SHOWN_CHARS = 64 * 1024  # bodies and logs longer than this are cut on screen
REPLAY_WAIT_SEC = 10.0


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _shown(text: str) -> str:
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return f"{text[:MAX_SHOWN_CHARS]}\n… {len(text) - MAX_SHOWN_CHARS:,} more characters not shown"


def _json(value: Any) -> str:
    return _shown(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _pre(text: str, marker: str) -> ui.label:
    return (
        ui.label(text)
        .classes(
            "w-full whitespace-pre-wrap break-all font-mono text-xs p-2 rounded bg-gray-100 dark:bg-slate-800"
        )
        .mark(marker)
    )


def _section(title: str) -> None:
    ui.label(title).classes("text-sm font-semibold mt-2")


class InvocationDrawer:
    """A right-hand drawer; its contents are built on open and dropped on close."""

    def __init__(self, ctx: PageContext) -> None:
        self._ctx = ctx
        self.invocation_id: str | None = None
        with ctx.client.content:  # a drawer must be a top-level layout element, wherever we are built
            self._drawer = (
                ui.right_drawer(value=False, bordered=True)
                .props("width=620 overlay elevated")
                .mark("invocation-drawer")
            )
        with self._drawer:
            self._body = ui.column().classes("w-full gap-1 p-2")

    async def open(self, invocation_id: str) -> bool:
        """Show `invocation_id`; when it cannot be read, say why inside the drawer. True if shown."""
        detail = await attempt(
            self._ctx.platform.invocations.get(self._ctx.principal, invocation_id), notify=False
        )
        self._body.clear()
        self.invocation_id = invocation_id
        with self._body:
            self._header("Invocation")
            if isinstance(detail, Failed):
                ui.label(f"Invocation {invocation_id} cannot be shown: {detail.message}").classes(
                    "text-negative"
                ).mark("drawer-error")
            else:
                self._render(detail)
        self._drawer.show()
        return not isinstance(detail, Failed)

    def close(self) -> None:
        self._drawer.hide()
        self._body.clear()
        self.invocation_id = None

    # --- rendering --------------------------------------------------------------------------------

    def _header(self, title: str) -> None:
        with ui.row().classes("w-full items-center"):
            ui.label(title).classes("text-lg font-semibold")
            ui.space()
            ui.button(icon="close", on_click=self.close).props("flat round dense").mark("drawer-close")

    def _render(self, detail: InvocationDetail) -> None:
        inv = detail.invocation
        with ui.row().classes("w-full items-center gap-2"):
            ui.label(inv.function_name).classes("font-semibold").mark("drawer-function")
            ui.badge(inv.status, color=STATUS_COLOURS.get(inv.status, "grey")).mark("drawer-status")
            where = f" · {inv.environment}" if inv.environment else ""
            where_label = ui.label(f"{inv.mode} · {inv.source} · {inv.version}{where}")
            where_label.classes("text-sm text-gray-500").mark("drawer-where")
        ui.label(inv.id).classes("font-mono text-xs text-gray-500").mark("drawer-id")
        if inv.replay_of:
            ui.link(f"replay of {inv.replay_of}", f"/invocations?id={inv.replay_of}").classes("text-xs")
        with ui.row().classes("gap-2 items-center"):
            ui.link("Re-invoke with this input", f"/functions/{inv.function_id}?tab=test&from={inv.id}").mark(
                "reinvoke-link"
            )
            if self._ctx.principal.can("developer"):
                ui.button("Replay now", icon="replay", on_click=lambda: self._replay(inv.id)).props(
                    "dense outline"
                ).mark("replay-now")
        if inv.error_type or inv.error_message:
            _section("Error")
            ui.label(f"{inv.error_type or 'Error'}: {inv.error_message or ''}").classes(
                "text-negative font-mono text-sm"
            ).mark("drawer-error-message")
            if inv.error_stack:
                _pre(_shown(inv.error_stack), "drawer-stack")
        _section("Input")
        _pre(_json(detail.input), "drawer-input")
        _section("Output")
        _pre(_json(detail.output) if detail.output is not None else "(none)", "drawer-output")
        _section("Logs")
        _pre(_shown(detail.logs) if detail.logs else "(no log output)", "drawer-logs")
        _section("Timings")
        self._timings(detail)
        if inv.mode == "async" or len(detail.attempts) > 1:
            _section(f"Attempts ({len(detail.attempts)} of at most {inv.max_attempts})")
            self._attempts(detail)

    def _timings(self, detail: InvocationDetail) -> None:
        inv = detail.invocation
        memory = f"{inv.peak_memory_kb / 1024:.1f} MB" if inv.peak_memory_kb else "—"
        facts = [
            ("Created", fmt_time(inv.created_at)),
            ("Started", fmt_time(inv.started_at)),
            ("Ended", fmt_time(inv.ended_at)),
            ("Duration", fmt_ms(inv.duration_ms) or "—"),
            ("Start", ("cold" if inv.cold else "warm") if inv.started_at else "—"),
            ("Init", fmt_ms(inv.init_ms) or "—"),
            ("Billed", f"{inv.billed_ms} ms" if inv.billed_ms is not None else "—"),
            ("Billed GB-s", f"{inv.billed_gb_s:g}" if inv.billed_gb_s is not None else "—"),
            ("Peak memory", memory),
            ("Node", inv.node or "—"),
        ]
        with ui.grid(columns=2).classes("w-full gap-x-4 gap-y-0 text-sm").mark("drawer-timings"):
            for name, value in facts:
                ui.label(name).classes("text-gray-500")
                ui.label(value)

    def _attempts(self, detail: InvocationDetail) -> None:
        with ui.column().classes("w-full gap-1").mark("drawer-attempts"):
            if not detail.attempts:
                ui.label("Not run yet.").classes("text-sm text-gray-500")
            for a in detail.attempts:
                with ui.row().classes("w-full items-center gap-2 text-sm").mark("drawer-attempt"):
                    ui.label(f"#{a.attempt}").classes("font-mono")
                    ui.badge(a.status, color=STATUS_COLOURS.get(a.status, "grey"))
                    ui.label(fmt_ms(a.duration_ms))
                    ui.label(fmt_time(a.started_at)).classes("text-gray-500")
                    if a.error_type or a.error_message:
                        ui.label(f"{a.error_type or 'Error'}: {a.error_message or ''}").classes(
                            "text-negative"
                        )

    # --- actions ----------------------------------------------------------------------------------

    async def _replay(self, invocation_id: str) -> None:
        ok = await confirm(
            "Replay this invocation?",
            "The function runs again now with the same input; the original stays as it is.",
            action="Replay",
            danger=False,
        )
        if not ok:
            return
        platform = self._ctx.platform
        # The new record is written behind; open it once its InvocationFinished says it is committed.
        with platform.bus.subscribe(InvocationFinished) as finished:
            outcome = await attempt(
                platform.invocations.replay(self._ctx.principal, invocation_id, source="console")
            )
            if isinstance(outcome, Failed):
                return
            with contextlib.suppress(TimeoutError):
                await finished.wait_for(
                    lambda e: isinstance(e, InvocationFinished) and e.invocation_id == outcome.request_id,
                    timeout=REPLAY_WAIT_SEC,
                )
        ui.notify(f"Replayed as {outcome.request_id}", type="positive")
        await self.open(outcome.request_id)
