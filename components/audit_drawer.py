"""The audit event drawer: when, who (and from where), what was done to which resource, a before/after
diff, and the event's details."""

from __future__ import annotations

from nicegui import ui

from components.feedback import Failed, attempt
from components.frame import PageContext
from components.invocation_drawer import _json, _pre, _section, fmt_time
from components.json_diff import json_diff
from data.models import AuditEvent
from engine.services.audit import ACTIONS

# Where a resource of a type is shown in the console (its id or name appended).
RESOURCE_LINKS = {
    "function": "/functions/",
    "layer": "/layers?layer=",
    "dlq": "/dlq?id=",
    "invocation": "/invocations?id=",
}


def action_label(action: str) -> str:
    return ACTIONS.get(action, action)


class AuditDrawer:
    """A right-hand drawer, built on open."""

    def __init__(self, ctx: PageContext) -> None:
        self._ctx = ctx
        self.event_id: str | None = None
        with ctx.client.content:  # a drawer must be a top-level layout element
            self._drawer = (
                ui.right_drawer(value=False, bordered=True)
                .props("width=640 overlay elevated")
                .mark("audit-drawer")
            )
        with self._drawer:
            self._body = ui.column().classes("w-full gap-1 p-2")

    async def open(self, event_id: str) -> bool:
        found = await attempt(self._ctx.platform.audit.get(self._ctx.principal, event_id), notify=False)
        self._body.clear()
        self.event_id = event_id
        with self._body:
            with ui.row().classes("w-full items-center"):
                ui.label("Audit event").classes("text-lg font-semibold")
                ui.space()
                ui.button(icon="close", on_click=self.close).props("flat round dense").mark(
                    "audit-drawer-close"
                )
            if isinstance(found, Failed):
                ui.label(f"Event {event_id} cannot be shown: {found.message}").classes("text-negative").mark(
                    "audit-drawer-error"
                )
            else:
                self._render(found)
        self._drawer.show()
        return not isinstance(found, Failed)

    def close(self) -> None:
        self._drawer.hide()
        self._body.clear()
        self.event_id = None

    def _render(self, e: AuditEvent) -> None:
        with ui.row().classes("w-full items-center gap-2"):
            ui.badge(e.action).props("outline").mark("audit-drawer-action")
            ui.label(action_label(e.action)).classes("font-semibold")
        ui.label(e.id).classes("font-mono text-xs text-gray-500").mark("audit-drawer-id")
        target = e.resource_name or e.resource_id
        facts = [
            ("Time (UTC)", fmt_time(e.created_at)),
            ("Actor", f"{e.actor} ({e.actor_type})"),
            ("Source IP", e.actor_ip or "—"),
            ("Resource", f"{e.resource_type or '—'} {target}".strip()),
            ("Resource id", e.resource_id or "—"),
        ]
        with ui.grid(columns=2).classes("gap-x-4 gap-y-0 text-sm").mark("audit-drawer-facts"):
            for label, value in facts:
                ui.label(label).classes("text-gray-500")
                ui.label(value)
        link = RESOURCE_LINKS.get(e.resource_type)
        if link and e.resource_id and e.action not in ("function.delete", "layer.delete", "dlq.delete"):
            ui.link(f"open {e.resource_type}", link + e.resource_id).classes("text-xs")
        _section("Before / after")
        json_diff(e.before, e.after, mark="audit-diff")
        if e.details is not None:
            _section("Details")
            _pre(_json(e.details), "audit-drawer-details")
