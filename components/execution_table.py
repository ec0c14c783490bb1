"""A list of workflow executions with filters (workflow, status, time) and cursor pagination, live on
ExecutionChanged (coalesced). Used by the Executions page and by a workflow's Executions tab (which fixes
the workflow filter)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nicegui import ui

from components.cursor_pager import CursorPager
from components.feedback import Failed, attempt
from components.frame import PageContext
from components.invocation_drawer import fmt_ms, fmt_time
from components.invocation_table import TimeRangeInput
from components.live import live
from data.models import WorkflowExecution
from engine.errors import Invalid
from engine.events import Event, ExecutionChanged
from engine.services.workflow_schemas import EXECUTION_STATUSES

EXECUTION_COLOURS = {
    "pending": "grey",
    "running": "info",
    "paused": "purple",
    "succeeded": "positive",
    "failed": "negative",
    "cancelled": "grey-7",
    "timeout": "warning",
}
STATUS_OPTIONS = {"": "Any status", **{s: s for s in EXECUTION_STATUSES}}
PAGE_SIZE = 25


def duration_text(execution: WorkflowExecution, now: datetime | None = None) -> str:
    start = execution.started_at or execution.created_at
    if start is None:
        return ""
    end = execution.finished_at or (now or datetime.now(UTC))
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return fmt_ms(max((end - start).total_seconds() * 1000, 0.0))


def status_badge(status: str, mark: str) -> ui.badge:
    return ui.badge(status, color=EXECUTION_COLOURS.get(status, "grey")).mark(mark)


@dataclass(frozen=True, slots=True)
class ExecutionFilters:
    workflow: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def any(self) -> bool:
        return any((self.status, self.since, self.until))


class ExecutionTable:
    def __init__(self, ctx: PageContext, *, workflow: str | None = None, status: str = "") -> None:
        """`workflow` (an id) fixes the workflow filter and hides its column."""
        self.ctx = ctx
        self.fixed_workflow = workflow
        self.filters = ExecutionFilters(workflow=workflow, status=status or None)
        self.pager = CursorPager(self.load)
        self.count = 0
        self._build(status)

    def _build(self, status: str) -> None:
        with ui.row().classes("w-full items-end gap-3").mark("execution-filters"):
            if self.fixed_workflow is None:
                self.workflow_box = (
                    ui.input("Workflow", placeholder="name or id").classes("w-48").mark("filter-workflow")
                )
                self.workflow_box.on("keydown.enter", self.apply)
            self.status_box = ui.select(STATUS_OPTIONS, value=status, label="Status", on_change=self.apply)
            self.status_box.classes("w-36").mark("filter-status")
            self.time_range = TimeRangeInput(on_change=self.apply)
            ui.button("Apply", icon="filter_alt", on_click=self.apply).props("outline").mark("apply-filters")
        self.message = ui.label("").classes("text-negative").mark("executions-message")
        self.message.set_visibility(False)
        with ui.element("q-markup-table").props("flat bordered dense").classes("w-full") as self.table:
            with ui.element("thead"), ui.element("tr"):
                headers = ["Execution", "Workflow", "Version", "Status", "State", "Started (UTC)", "Duration"]
                if self.fixed_workflow is not None:
                    headers.remove("Workflow")
                for header in headers:
                    with ui.element("th").classes("text-left"):
                        ui.label(header)
            self.body = ui.element("tbody")
        self.empty = ui.label("").classes("text-gray-500 p-4").mark("executions-empty")
        self.pager.controls(
            newer_mark="executions-newer", page_mark="executions-page", older_mark="executions-older"
        )
        live(self.ctx.client, self.ctx.platform.bus, ExecutionChanged, handler=self._on_events, max_rate=2.0)

    def _row(self, execution: WorkflowExecution) -> None:
        with ui.element("tr").mark("execution-row", f"execution-row-{execution.id}"):
            with ui.element("td"):
                title = execution.name or execution.id[-12:]
                ui.link(title, f"/executions/{execution.id}").classes("font-mono text-sm").mark(
                    f"execution-link-{execution.id}"
                )
            if self.fixed_workflow is None:
                with ui.element("td"):
                    ui.link(execution.workflow_name, f"/workflows/{execution.workflow_id}").classes("text-sm")
            with ui.element("td"):
                ui.label(f"v{execution.version}").classes("text-sm")
            with ui.element("td"):
                status_badge(execution.status, f"execution-status-{execution.id}")
                if execution.redrive_count:
                    ui.badge(f"redriven ×{execution.redrive_count}", color="grey").props("outline")
            with ui.element("td"):
                ui.label(execution.paused_at_state or execution.current_state).classes("text-sm")
            with ui.element("td"):
                ui.label(fmt_time(execution.started_at or execution.created_at)).classes("text-sm")
            with ui.element("td"):
                ui.label(duration_text(execution)).classes("text-sm")

    async def apply(self) -> None:
        try:
            since, until = self.time_range.resolve()
        except Invalid as exc:
            self.show_error(exc.message)
            return
        workflow = self.fixed_workflow
        if self.fixed_workflow is None:
            workflow = str(self.workflow_box.value or "").strip() or None
        previous = self.filters
        self.filters = ExecutionFilters(
            workflow=workflow, status=self.status_box.value or None, since=since, until=until
        )
        if await self.pager.restart():
            self.filters = previous

    async def load(self) -> str | None:
        f = self.filters
        page = await attempt(
            self.ctx.platform.workflows.executions(
                self.ctx.principal,
                workflow=f.workflow,
                status=f.status,
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
        self.count = len(page.items)
        self.body.clear()
        with self.body:
            for execution in page.items:
                self._row(execution)
        empty = not page.items
        self.table.set_visibility(not empty)
        self.empty.set_visibility(empty)
        if f.any or (f.workflow and self.fixed_workflow is None):
            self.empty.set_text("No executions match these filters.")
        elif self.fixed_workflow is not None:
            self.empty.set_text("This workflow has not run yet: start it from the Start tab.")
        else:
            self.empty.set_text("No workflow has run yet: open a workflow and start it.")
        self.pager.loaded(page.next_cursor)
        return None

    def show_error(self, message: str) -> str:
        self.message.set_text(message)
        self.message.set_visibility(True)
        return message

    async def _on_events(self, events: list[Event]) -> None:
        if self.fixed_workflow is not None and not any(
            isinstance(e, ExecutionChanged) and e.workflow_id == self.fixed_workflow for e in events
        ):
            return
        await self.load()
