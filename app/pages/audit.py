"""Audit: every mutation across the product, newest first. Filters (action, actor, target, time range),
cursor pagination, a detail drawer with a before/after diff, and export of the filtered set as CSV or
JSON. New events appear live on the first page. `?action=&actor=&target=` preset the filters and `?id=`
opens that event.

Exports stream from `GET /audit/download` (below): a console route authenticated by the console's own
session, streaming `AuditService.export` page by page, so 100k events never sit in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from nicegui import app, ui

from app.pages._query import query_moment
from components.audit_drawer import AuditDrawer, action_label
from components.cursor_pager import CursorPager
from components.feedback import Failed, attempt
from components.frame import PageContext, console_page, platform, session_principal
from components.invocation_drawer import fmt_time
from components.invocation_table import TimeRangeInput
from components.live import live
from data.models import AuditEvent
from engine.errors import Invalid, NimbusError
from engine.events import AuditRecorded, Event
from engine.services.audit import ACTIONS
from engine.services.audit_log import AuditFilters

DOWNLOAD_PATH = "/audit/download"
PAGE_SIZE = 25
_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
_ACTOR_ICONS = {"user": "person", "api_key": "key", "system": "settings"}


class AuditPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.filters = AuditFilters()
        self.pager = CursorPager(self.load)
        self.drawer = AuditDrawer(ctx)

    def build(self) -> None:
        with ui.row().classes("w-full items-center gap-2"):
            self.count = ui.label("").classes("text-sm text-gray-500").mark("audit-shown")
            ui.space()
            ui.button("Export CSV", icon="download", on_click=lambda: self.download("csv")).props(
                "outline dense"
            ).mark("audit-export-csv")
            ui.button("Export JSON", icon="download", on_click=lambda: self.download("json")).props(
                "outline dense"
            ).mark("audit-export-json")
        self.message = ui.label("").classes("text-negative").mark("audit-message")
        self.message.set_visibility(False)
        with ui.element("q-markup-table").props("flat bordered dense").classes("w-full") as self.table:
            with ui.element("thead"), ui.element("tr"):
                for header in ("Time (UTC)", "Actor", "Source IP", "Action", "Target", ""):
                    with ui.element("th").classes("text-left"):
                        ui.label(header)
            self.body = ui.element("tbody")
        self.empty = ui.label("").classes("text-gray-500 p-4").mark("audit-empty")
        self.pager.controls(newer_mark="audit-newer", page_mark="audit-page", older_mark="audit-older")

    def _row(self, e: AuditEvent) -> None:
        with ui.element("tr").mark("audit-row", f"audit-row-{e.id}"):
            with ui.element("td"):
                ui.label(fmt_time(e.created_at)).classes("text-sm whitespace-nowrap")
            with ui.element("td"), ui.row().classes("items-center gap-1 no-wrap"):
                ui.icon(_ACTOR_ICONS.get(e.actor_type, "person")).classes("text-gray-500")
                ui.label(e.actor).classes("text-sm").mark("audit-actor")
            with ui.element("td"):
                ui.label(e.actor_ip or "—").classes("text-sm font-mono")
            with ui.element("td"):
                ui.label(action_label(e.action)).classes("text-sm").mark("audit-action")
                ui.label(e.action).classes("text-xs font-mono text-gray-500")
            with ui.element("td").classes("max-w-[320px]"):
                name = e.resource_name or e.resource_id
                ui.label(f"{e.resource_type} {name}".strip() or "—").classes("text-sm truncate").mark(
                    "audit-target"
                )
            with ui.element("td"):
                ui.button(icon="visibility", on_click=lambda eid=e.id: self.drawer.open(eid)).props(
                    "flat dense round"
                ).tooltip("Details").mark(f"audit-open-{e.id}")

    async def apply(self, filters: AuditFilters) -> None:
        previous, self.filters = self.filters, filters
        if await self.pager.restart():
            self.filters = previous

    async def load(self) -> str | None:
        f = self.filters
        page = await attempt(
            self.ctx.platform.audit.list(
                self.ctx.principal,
                action=f.action,
                actor=f.actor,
                target=f.target,
                since=f.since,
                until=f.until,
                limit=PAGE_SIZE,
                cursor=self.pager.current,
            ),
            notify=False,
        )
        if isinstance(page, Failed):
            return self.show_error(page.message)
        self.message.set_visibility(False)
        self.body.clear()
        with self.body:
            for event in page.items:
                self._row(event)
        empty = not page.items
        self.table.set_visibility(not empty)
        self.empty.set_visibility(empty)
        self.empty.set_text("No events match these filters." if f.any else "Nothing has been audited yet.")
        self.count.set_text(f"{len(page.items)} event{'s' if len(page.items) != 1 else ''} shown")
        self.pager.loaded(page.next_cursor)
        return None

    def show_error(self, message: str) -> str:
        self.message.set_text(message)
        self.message.set_visibility(True)
        return message

    async def on_events(self, events: list[Event]) -> None:
        if self.pager.on_first_page:  # only the first page gains new events
            await self.load()

    def download(self, fmt: str) -> None:
        f = self.filters
        params = {
            "format": fmt,
            "action": f.action or "",
            "actor": f.actor or "",
            "target": f.target or "",
            "since": f.since.isoformat() if f.since else "",
            "until": f.until.isoformat() if f.until else "",
        }
        query = urlencode({k: v for k, v in params.items() if v})
        ui.download.from_url(f"{DOWNLOAD_PATH}?{query}", f"nimbus-audit.{fmt}")


@console_page("/audit", "Audit log")
async def audit_page(
    ctx: PageContext, action: str = "", actor: str = "", target: str = "", id: str = ""
) -> None:
    if not ctx.principal.can("admin"):
        ui.label("The audit log is for admins.").classes("text-negative").mark("audit-forbidden")
        return
    problem = ""
    if action and action not in ACTIONS:
        problem, action = f"Unknown action {action!r}.", ""
    page = AuditPage(ctx)

    async def apply() -> None:
        try:
            since, until = time_range.resolve()
        except Invalid as exc:
            page.show_error(exc.message)
            return
        await page.apply(
            AuditFilters(
                action=action_box.value or None,
                actor=(actor_box.value or "").strip() or None,
                target=(target_box.value or "").strip() or None,
                since=since,
                until=until,
            )
        )

    with ui.row().classes("w-full items-end gap-3").mark("audit-filters"):
        options = {"": "Any action", **{k: f"{v} ({k})" for k, v in ACTIONS.items()}}
        action_box = ui.select(options, value=action, label="Action", with_input=True, on_change=apply)
        action_box.classes("w-72").mark("filter-action")
        actor_box = ui.input("Actor", value=actor, placeholder="admin, key:ci, system").props("clearable")
        actor_box.classes("w-44").mark("filter-actor").on("keydown.enter", apply)
        target_box = ui.input("Target", value=target, placeholder="a resource's name or id")
        target_box.props("clearable").classes("w-56").mark("filter-target").on("keydown.enter", apply)
        time_range = TimeRangeInput(on_change=apply)
        ui.button("Apply", icon="filter_alt", on_click=apply).props("outline").mark("apply-filters")
    page.build()
    live(ctx.client, ctx.platform.bus, AuditRecorded, handler=page.on_events, max_rate=1.0)
    await apply()
    if problem:
        page.show_error(problem)
    if id:
        await page.drawer.open(id)


@app.get(DOWNLOAD_PATH, include_in_schema=False)
async def download_audit(
    request: Request,
    format: str = "csv",
    action: str = "",
    actor: str = "",
    target: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    principal = await session_principal(request)
    if principal is None:
        return PlainTextResponse("log in to export the audit log", status_code=401)
    try:
        filters = AuditFilters(
            action=action or None,
            actor=actor or None,
            target=target or None,
            since=query_moment(since, "since"),
            until=query_moment(until, "until"),
        )
        chunks = await platform().audit.export(principal, filters, format)
    except NimbusError as exc:
        return PlainTextResponse(exc.message, status_code=exc.status)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        chunks,
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="nimbus-audit-{stamp}.{format}"'},
    )
