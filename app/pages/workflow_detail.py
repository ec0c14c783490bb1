"""One workflow: the visual editor (canvas, palette, side panel, JSON tab; validate; save makes a new
version; breakpoints toggled on states), its versions (view, load into the editor, export), its executions,
and a Start tab (input JSON, sync or async). `?tab=` opens a tab: editor, versions, executions, start."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui

from components.confirm import confirm
from components.execution_table import ExecutionTable, status_badge
from components.feedback import Failed, attempt
from components.frame import PageContext, console_page
from components.invocation_drawer import _json, _pre, fmt_time
from components.live import live
from components.workflow_editor import WorkflowEditor, pretty
from data.models import Workflow
from engine.errors import NimbusError
from engine.events import Event, WorkflowChanged
from engine.services.workflow_schemas import InvalidDefinition
from engine.workflows.model import MAX_TIMEOUT_SEC

TABS = ("editor", "versions", "executions", "start")
SYNC_WAIT_SEC = 60.0


class WorkflowDetail:
    def __init__(self, ctx: PageContext, workflow: Workflow, functions: list[tuple[str, str]]) -> None:
        self.ctx = ctx
        self.workflow = workflow
        self.functions = functions
        self.writer = ctx.principal.can("developer")

    # --- header -----------------------------------------------------------------------------------

    def build_header(self) -> None:
        with ui.row().classes("w-full items-center gap-3").mark("workflow-header"):
            ui.link("Workflows", "/workflows").classes("text-sm")
            ui.icon("chevron_right").classes("text-gray-400")
            ui.label(self.workflow.name).classes("text-xl font-semibold").mark("workflow-name")
            self.version_badge = ui.badge(f"v{self.workflow.version}").mark("workflow-version")
            self.status_badge = ui.badge(
                self.workflow.status, color="positive" if self.workflow.status == "active" else "grey"
            ).mark("workflow-status")
            ui.space()
            ui.button("Export ASL", icon="download", on_click=lambda: self.export("asl")).props(
                "flat dense"
            ).mark("export-asl")
            ui.button("Export JSON", icon="download", on_click=lambda: self.export("nimbus")).props(
                "flat dense"
            ).mark("export-json")
            if self.writer:
                ui.button(icon="delete", on_click=self.delete).props(
                    "flat dense round color=negative"
                ).tooltip("Delete this workflow").mark("workflow-delete")
        self.description = ui.label(self.workflow.description).classes("text-sm text-gray-500")

    def _refresh_header(self) -> None:
        self.version_badge.set_text(f"v{self.workflow.version}")
        self.status_badge.set_text(self.workflow.status)
        self.status_badge.props(f"color={'positive' if self.workflow.status == 'active' else 'grey'}")
        self.description.set_text(self.workflow.description)

    async def export(self, fmt: str, version: int | None = None) -> None:
        data = await attempt(
            self.ctx.platform.workflows.export(self.ctx.principal, self.workflow.id, version, fmt)
        )
        if isinstance(data, Failed):
            return
        suffix = ".asl.json" if fmt == "asl" else ".json"
        label = f"-v{version}" if version else ""
        ui.download.content(pretty(data), f"{self.workflow.name}{label}{suffix}", "application/json")

    async def delete(self) -> None:
        if not await confirm(
            f"Delete workflow {self.workflow.name}?",
            "Its versions and every execution are deleted too; running executions are stopped.",
            typed=self.workflow.name,
        ):
            return
        done = await attempt(
            self.ctx.platform.workflows.delete(self.ctx.principal, self.workflow.id),
            success=f"Deleted {self.workflow.name}",
        )
        if not isinstance(done, Failed):
            ui.navigate.to("/workflows")

    # --- tabs -------------------------------------------------------------------------------------

    def build_tabs(self, tab: str) -> None:
        with ui.tabs().classes("w-full").props("align=left dense no-caps") as tabs:
            ui.tab("editor", "Editor", icon="account_tree").mark("tab-editor")
            ui.tab("versions", "Versions", icon="history").mark("tab-versions")
            ui.tab("executions", "Executions", icon="play_circle").mark("tab-executions")
            ui.tab("start", "Start", icon="play_arrow").mark("tab-start")
        self.tabs = tabs
        with ui.tab_panels(tabs, value=tab if tab in TABS else "editor").classes("w-full"):
            with ui.tab_panel("editor").classes("p-0 gap-2"):
                self.build_editor()
            with ui.tab_panel("versions").classes("p-0 gap-2"):
                self.versions_box = ui.column().classes("w-full gap-1").mark("versions")
            with ui.tab_panel("executions").classes("p-0 gap-2"):
                self.executions = ExecutionTable(self.ctx, workflow=self.workflow.id)
            with ui.tab_panel("start").classes("p-0 gap-2"):
                self.build_start()

    # --- editor -----------------------------------------------------------------------------------

    def build_editor(self) -> None:
        with ui.row().classes("w-full items-end gap-3").mark("editor-actions"):
            self.description_box = ui.input("Description", value=self.workflow.description).classes("w-80")
            self.description_box.mark("workflow-description")
            self.timeout_box = ui.number(
                "Timeout (s)", value=self.workflow.timeout_sec, min=1, max=MAX_TIMEOUT_SEC, precision=0
            ).classes("w-32")
            self.timeout_box.mark("workflow-timeout")
            self.active_box = ui.switch("Active", value=self.workflow.status == "active").mark(
                "workflow-active"
            )
            ui.space()
            ui.button("Validate", icon="rule", on_click=self.validate).props("outline").mark(
                "editor-validate"
            )
            if self.writer:
                ui.button("Save", icon="save", on_click=self.save).mark("editor-save")
        self.editor = WorkflowEditor(
            self.workflow.definition,
            functions=self.functions,
            breakpoints=self.workflow.breakpoints,
            on_breakpoints=self.set_breakpoints if self.writer else None,
        )

    async def validate(self) -> None:
        problems = await attempt(
            self.ctx.platform.workflows.validate(self.ctx.principal, self.editor.definition)
        )
        if isinstance(problems, Failed):
            return
        self.editor.show_problems(problems, ok_text="The definition is valid.")

    async def save(self) -> None:
        body: dict[str, Any] = {}
        if self.editor.dirty:  # positions the canvas chose by itself alone do not make a new version
            body["definition"] = self.editor.definition
        description = str(self.description_box.value or "")
        if description != self.workflow.description:
            body["description"] = description
        timeout = self.timeout_box.value
        if timeout is not None and int(timeout) != self.workflow.timeout_sec:
            body["timeout_sec"] = int(timeout)
        status = "active" if self.active_box.value else "inactive"
        if status != self.workflow.status:
            body["status"] = status
        before = self.workflow.version
        try:
            workflow = await self.ctx.platform.workflows.update(self.ctx.principal, self.workflow.id, body)
        except InvalidDefinition as exc:
            self.editor.show_problems(exc.problems)
            n = len(exc.problems)
            ui.notify(f"Not saved: {n} problem{'s' if n != 1 else ''} in the definition", type="negative")
            return
        except NimbusError as exc:
            ui.notify(exc.message, type="negative", multi_line=True)
            return
        self.workflow = workflow
        self.editor.mark_saved()
        self._refresh_header()
        text = (
            f"Saved version {workflow.version}"
            if workflow.version != before
            else "Saved (the definition is unchanged)"
        )
        self.editor.show_problems([], ok_text=text)
        ui.notify(text, type="positive")
        await self.load_versions()

    async def set_breakpoints(self, states: list[str]) -> bool:
        workflow = await attempt(
            self.ctx.platform.workflows.set_breakpoints(self.ctx.principal, self.workflow.id, states)
        )
        if isinstance(workflow, Failed):
            return False
        self.workflow = workflow
        return True

    # --- versions ---------------------------------------------------------------------------------

    async def load_versions(self) -> None:
        versions = await attempt(self.ctx.platform.workflows.versions(self.ctx.principal, self.workflow.id))
        if isinstance(versions, Failed):
            return
        self.versions_box.clear()
        with self.versions_box:
            for v in versions:
                states = v.definition.get("states", {}) if isinstance(v.definition, dict) else {}
                with ui.row().classes("w-full items-center gap-3 border-b py-1").mark(f"version-{v.version}"):
                    ui.badge(
                        f"v{v.version}", color="primary" if v.version == self.workflow.version else "grey"
                    )
                    ui.label(fmt_time(v.created_at)).classes("text-sm")
                    ui.label(v.created_by or "").classes("text-sm text-gray-500")
                    ui.label(f"{len(states)} states").classes("text-sm text-gray-500")
                    if v.version == self.workflow.version:
                        ui.label("current").classes("text-xs text-positive")
                    ui.space()
                    ui.button(
                        "View",
                        icon="visibility",
                        on_click=lambda d=v.definition, n=v.version: self.view(n, d),
                    ).props("flat dense").mark(f"version-view-{v.version}")
                    if self.writer:
                        ui.button(
                            "Load into editor",
                            icon="edit",
                            on_click=lambda d=v.definition, n=v.version: self.load_into_editor(n, d),
                        ).props("flat dense").mark(f"version-load-{v.version}")
                    ui.button(
                        "ASL", icon="download", on_click=lambda n=v.version: self.export("asl", n)
                    ).props("flat dense").mark(f"version-export-{v.version}")

    def view(self, number: int, definition: Any) -> None:
        with ui.dialog() as dialog, ui.card().classes("w-[760px] max-w-full").mark("version-dialog"):
            ui.label(f"{self.workflow.name} v{number}").classes("text-lg font-semibold")
            ui.codemirror(pretty(definition), language="JSON").classes("w-full h-[60vh]").disable()
            with ui.row().classes("w-full justify-end"):
                ui.button("Close", on_click=dialog.close).props("flat")
        dialog.on("hide", dialog.delete)
        dialog.open()

    def load_into_editor(self, number: int, definition: Any) -> None:
        self.editor.apply(definition, source="load")
        self.tabs.set_value("editor")
        ui.notify(f"Version {number} is in the editor: save to make it the newest version", type="info")

    # --- start ------------------------------------------------------------------------------------

    def build_start(self) -> None:
        ui.label("Start an execution of the saved version with this input.").classes("text-sm text-gray-500")
        self.start_input = (
            ui.codemirror("{}", language="JSON", on_change=self._check_input)
            .classes("w-full h-[24vh] border rounded")
            .mark("start-input")
        )
        self.start_error = ui.label("").classes("text-negative text-sm").mark("start-error")
        self.start_error.set_visibility(False)
        with ui.row().classes("w-full items-center gap-3"):
            self.start_name = ui.input("Execution name (optional)").classes("w-64").mark("start-name")
            self.start_mode = ui.toggle(
                {"async": "Async: open it and watch", "sync": "Sync: wait for the result"}, value="async"
            ).mark("start-mode")
            ui.space()
            self.start_button = ui.button("Start", icon="play_arrow", on_click=self.start).mark(
                "start-submit"
            )
            self.start_button.set_enabled(self.writer)
        self.start_result = ui.column().classes("w-full gap-1").mark("start-result")

    def _parsed_input(self) -> tuple[bool, Any]:
        text = str(self.start_input.value or "").strip() or "null"
        try:
            return True, json.loads(text)
        except json.JSONDecodeError as exc:
            return False, f"The input is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"

    def _check_input(self) -> None:
        ok, value = self._parsed_input()
        self.start_error.set_text("" if ok else str(value))
        self.start_error.set_visibility(not ok)
        self.start_button.set_enabled(ok and self.writer)

    async def start(self) -> None:
        ok, value = self._parsed_input()
        if not ok:
            self._check_input()
            return
        if self.editor.dirty:
            ui.notify(f"Unsaved changes in the editor: version {self.workflow.version} runs", type="warning")
        service, principal = self.ctx.platform.workflows, self.ctx.principal
        name = str(self.start_name.value or "").strip()
        if self.start_mode.value == "async":
            execution = await attempt(
                service.start(principal, self.workflow.id, value, name=name, source="console")
            )
            if not isinstance(execution, Failed):
                ui.navigate.to(f"/executions/{execution.id}")
            return
        self.start_button.props("loading")
        try:
            execution = await attempt(
                service.run(
                    principal, self.workflow.id, value, wait_sec=SYNC_WAIT_SEC, name=name, source="console"
                )
            )
        finally:
            self.start_button.props(remove="loading")
        if isinstance(execution, Failed):
            return
        self.start_result.clear()
        with self.start_result:
            with ui.row().classes("items-center gap-2"):
                status_badge(execution.status, "start-result-status")
                ui.link("Open the execution", f"/executions/{execution.id}").mark("start-result-link")
            if execution.error:
                ui.label(f"{execution.error}: {execution.cause}").classes(
                    "text-negative font-mono text-sm"
                ).mark("start-result-error")
            if execution.status == "succeeded":
                _pre(_json(execution.output), "start-result-output")

    # --- live -------------------------------------------------------------------------------------

    async def on_events(self, events: list[Event]) -> None:
        mine = [e for e in events if isinstance(e, WorkflowChanged) and e.workflow_id == self.workflow.id]
        if not mine:
            return
        if any(e.action == "deleted" for e in mine):
            ui.notify("This workflow was deleted", type="warning")
            return
        fresh = await attempt(
            self.ctx.platform.workflows.get(self.ctx.principal, self.workflow.id), notify=False
        )
        if isinstance(fresh, Failed):
            return
        changed_version = fresh.version != self.workflow.version
        self.workflow = fresh
        self._refresh_header()
        if changed_version:
            if self.editor.dirty:
                ui.notify(
                    f"Version {fresh.version} was saved elsewhere: saving your changes would replace it",
                    type="warning",
                    multi_line=True,
                )
            else:
                self.editor.load(fresh.definition, breakpoints=fresh.breakpoints)
            await self.load_versions()


@console_page("/workflows/{ref}", "Workflow")
async def workflow_page(ctx: PageContext, ref: str, tab: str = "editor") -> None:
    workflow = await attempt(ctx.platform.workflows.get(ctx.principal, ref), notify=False)
    if isinstance(workflow, Failed):
        ui.label(f"Workflow {ref} cannot be shown: {workflow.message}").classes("text-negative").mark(
            "workflow-missing"
        )
        ui.link("Back to the workflows", "/workflows")
        return
    functions = await ctx.platform.functions.list(ctx.principal, limit=100)
    page = WorkflowDetail(ctx, workflow, [(f.id, f.name) for f in functions.items])
    page.build_header()
    page.build_tabs(tab)
    live(ctx.client, ctx.platform.bus, WorkflowChanged, handler=page.on_events, max_rate=2.0)
    await page.load_versions()
    await page.executions.load()
