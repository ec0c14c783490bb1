"""Workflows: the list (search by name, status filter, cursor pagination, live on WorkflowChanged), create
one (blank, or from pasted Nimbus JSON or Amazon States Language), and delete one behind a confirmation."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui

from components.confirm import confirm
from components.cursor_pager import CursorPager
from components.feedback import Failed, attempt
from components.frame import PageContext, console_page
from components.invocation_drawer import fmt_time
from components.live import live
from data.models import Workflow
from engine.errors import NimbusError
from engine.events import Event, WorkflowChanged
from engine.services.workflow_schemas import WORKFLOW_STATUSES, InvalidDefinition

STATUS_OPTIONS = {"": "Any status", **{s: s for s in WORKFLOW_STATUSES}}
PAGE_SIZE = 25
BLANK_DEFINITION: dict[str, Any] = {
    "start_at": "Start",
    "states": {"Start": {"type": "pass", "end": True}},
    "layout": {"Start": [0, 0]},
}
IMPORT_HINT = (
    '{"start_at": "Hello", "states": {"Hello": {"type": "pass", "end": true}}}\n\n'
    "or Amazon States Language:\n\n"
    '{"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "End": true}}}'
)


class WorkflowList:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.writer = ctx.principal.can("developer")
        self.q = ""
        self.status: str | None = None
        self.pager = CursorPager(self.load)
        self.shown: dict[str, Workflow] = {}

    def build(self, q: str = "", status: str = "") -> None:
        self.q, self.status = q, status or None
        with ui.row().classes("w-full items-end gap-3").mark("workflow-filters"):
            self.search = ui.input("Search", value=q, placeholder="part of a name").classes("w-56")
            self.search.props("clearable debounce=300").mark("filter-search").on_value_change(self.apply)
            self.status_box = ui.select(STATUS_OPTIONS, value=status, label="Status", on_change=self.apply)
            self.status_box.classes("w-36").mark("filter-status")
            ui.space()
            ui.link("All executions", "/executions").classes("text-sm").mark("all-executions")
            if self.writer:
                ui.button("New workflow", icon="add", on_click=self.open_create).mark("new-workflow")
        self.message = ui.label("").classes("text-negative").mark("workflows-message")
        self.message.set_visibility(False)
        with ui.element("q-markup-table").props("flat bordered dense").classes("w-full") as self.table:
            with ui.element("thead"), ui.element("tr"):
                for header in ("Name", "Version", "States", "Status", "Updated (UTC)", "Description", ""):
                    with ui.element("th").classes("text-left"):
                        ui.label(header)
            self.body = ui.element("tbody")
        self.empty = ui.column().classes("w-full items-center p-6 gap-2").mark("workflows-empty")
        self.pager.controls(
            newer_mark="workflows-newer", page_mark="workflows-page", older_mark="workflows-older"
        )

    def _row(self, workflow: Workflow) -> None:
        states = workflow.definition.get("states", {}) if isinstance(workflow.definition, dict) else {}
        with ui.element("tr").mark("workflow-row", f"workflow-row-{workflow.name}"):
            with ui.element("td"):
                ui.link(workflow.name, f"/workflows/{workflow.id}").classes("font-semibold").mark(
                    f"workflow-link-{workflow.name}"
                )
            with ui.element("td"):
                ui.label(f"v{workflow.version}").classes("text-sm")
            with ui.element("td"):
                ui.label(str(len(states))).classes("text-sm")
            with ui.element("td"):
                ui.badge(workflow.status, color="positive" if workflow.status == "active" else "grey")
            with ui.element("td"):
                ui.label(fmt_time(workflow.updated_at)).classes("text-sm")
            with ui.element("td").classes("max-w-[360px]"):
                ui.label(workflow.description).classes("text-sm truncate")
            with ui.element("td"):
                if self.writer:
                    ui.button(icon="delete", on_click=lambda w=workflow: self.delete(w)).props(
                        "flat dense round color=negative"
                    ).tooltip("Delete").mark(f"workflow-delete-{workflow.name}")

    # --- loading ----------------------------------------------------------------------------------

    async def apply(self) -> None:
        self.q = str(self.search.value or "").strip()
        self.status = self.status_box.value or None
        self.pager.reset()  # a failed load keeps the new filters on page 1
        await self.load()

    async def load(self) -> str | None:
        page = await attempt(
            self.ctx.platform.workflows.list(
                self.ctx.principal,
                q=self.q or None,
                status=self.status,
                limit=PAGE_SIZE,
                cursor=self.pager.current,
            ),
            notify=False,
        )
        if isinstance(page, Failed):
            self.message.set_text(page.message)
            self.message.set_visibility(True)
            return page.message
        self.message.set_visibility(False)
        self.shown = {w.id: w for w in page.items}
        self.body.clear()
        with self.body:
            for workflow in page.items:
                self._row(workflow)
        empty = not page.items
        self.table.set_visibility(not empty)
        self.empty.set_visibility(empty)
        self.empty.clear()
        with self.empty:
            if self.q or self.status:
                ui.label("No workflows match these filters.").classes("text-gray-500")
            else:
                ui.icon("account_tree").classes("text-5xl text-gray-400")
                ui.label(
                    "No workflows yet. A workflow runs functions in order, in parallel or by rules."
                ).classes("text-gray-500")
                if self.writer:
                    ui.button("New workflow", icon="add", on_click=self.open_create).props("outline")
        self.pager.loaded(page.next_cursor)
        return None

    async def on_events(self, events: list[Event]) -> None:
        await self.load()

    # --- actions ----------------------------------------------------------------------------------

    async def delete(self, workflow: Workflow) -> None:
        if not await confirm(
            f"Delete workflow {workflow.name}?",
            "Its versions and every execution are deleted too; running executions are stopped.",
            typed=workflow.name,
        ):
            return
        done = await attempt(
            self.ctx.platform.workflows.delete(self.ctx.principal, workflow.id),
            success=f"Deleted {workflow.name}",
        )
        if not isinstance(done, Failed):
            await self.load()

    def open_create(self) -> None:
        CreateDialog(self.ctx).open()


class CreateDialog:
    """Name, description and where the definition comes from: blank (one Pass state to start from) or
    imported (Nimbus JSON or ASL, pasted). Every problem of an imported definition is listed."""

    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        with ui.dialog() as self.dialog, ui.card().classes("w-[640px] max-w-full").mark("create-dialog"):
            ui.label("New workflow").classes("text-lg font-semibold")
            self.name = (
                ui.input("Name", placeholder="e.g. order-processing").classes("w-full").mark("create-name")
            )
            self.description = ui.input("Description").classes("w-full").mark("create-description")
            self.source = ui.toggle(
                {"blank": "Blank", "import": "Import JSON or ASL"},
                value="blank",
                on_change=self._source_changed,
            ).mark("create-source")
            self.definition = ui.textarea("Definition", placeholder=IMPORT_HINT).props("outlined")
            self.definition.classes("w-full font-mono text-xs").mark("create-definition")
            self.definition.set_visibility(False)
            self.problems = ui.column().classes("w-full gap-0").mark("create-problems")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat").mark("create-cancel")
                ui.button("Create workflow", icon="add", on_click=self.create).mark("create-submit")

    def open(self) -> None:
        self.dialog.open()

    def _source_changed(self) -> None:
        self.definition.set_visibility(self.source.value == "import")

    def _problems(self, lines: list[str]) -> None:
        self.problems.clear()
        with self.problems:
            for line in lines:
                ui.label(line).classes("text-negative text-sm font-mono").mark("create-problem")

    async def create(self) -> None:
        self.name.error = None
        self._problems([])
        if self.source.value == "import":
            try:
                definition = json.loads(self.definition.value or "")
            except json.JSONDecodeError as exc:
                self._problems(
                    [f"The definition is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
                )
                return
            if not isinstance(definition, dict):
                self._problems(["The definition must be a JSON object (Nimbus JSON or ASL)."])
                return
        else:
            definition = json.loads(json.dumps(BLANK_DEFINITION))
        body = {
            "name": str(self.name.value or "").strip(),
            "description": str(self.description.value or ""),
            "definition": definition,
        }
        try:
            workflow = await self.ctx.platform.workflows.create(self.ctx.principal, body)
        except InvalidDefinition as exc:
            self._problems([f"{p.path}: {p.message}" for p in exc.problems])
            return
        except NimbusError as exc:
            if exc.field == "name":
                self.name.error = exc.message
            else:
                self._problems([exc.message])
            return
        self.dialog.close()
        ui.notify(f"Created {workflow.name}", type="positive")
        ui.navigate.to(f"/workflows/{workflow.id}")


@console_page("/workflows", "Workflows")
async def workflows_page(ctx: PageContext, q: str = "", status: str = "") -> None:
    page = WorkflowList(ctx)
    page.build(q.strip(), status if status in WORKFLOW_STATUSES else "")
    live(ctx.client, ctx.platform.bus, WorkflowChanged, handler=page.on_events, max_rate=2.0)
    await page.load()
