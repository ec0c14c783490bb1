"""Workflow executions: the list (filters, cursor pagination, live) and one execution's trace: the graph
with each state coloured by status, updating live from ExecutionChanged/StateRunChanged; a Gantt timeline
of the state runs; click a state (on the graph or in the table) for its input, output, error, the logs of
the invocation it made and a link to it; the debugger when paused (edit the paused input, Step, Continue,
Abort), this execution's breakpoints, Cancel while it runs and Redrive when it failed."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui

from components import workflow_graph as graph
from components.dag_canvas import DagCanvas
from components.execution_table import EXECUTION_COLOURS, ExecutionTable, duration_text, status_badge
from components.feedback import Failed, attempt
from components.frame import PageContext, console_page
from components.gantt import STATUS_COLOURS, gantt_figure
from components.invocation_drawer import _json, _pre, _section, fmt_time
from components.live import live
from components.state_run_detail import RUN_COLOURS, StateRunDetail, run_duration
from data.models import WorkflowExecution, WorkflowStateRun
from engine.events import Event, ExecutionChanged, StateRunChanged
from engine.services.workflow_executions import REDRIVABLE
from engine.services.workflow_schemas import EXECUTION_STATUSES

ACTIVE = ("pending", "running", "paused")


def state_statuses(execution: WorkflowExecution, runs: list[WorkflowStateRun]) -> dict[str, str]:
    """The status of each top-level state: its latest run's (a paused execution's state is paused)."""
    statuses: dict[str, str] = {}
    for run in sorted(runs, key=lambda r: r.seq):
        if not run.parent_id:
            statuses[run.state_name] = run.status
    if execution.status == "paused" and execution.paused_at_state:
        statuses[execution.paused_at_state] = "paused"
    return statuses


class ExecutionView:
    def __init__(self, ctx: PageContext, execution: WorkflowExecution) -> None:
        self.ctx = ctx
        self.execution = execution
        self.runs: list[WorkflowStateRun] = []
        self.writer = ctx.principal.can("developer")
        self.selected_state = ""
        self.shown_pause: tuple[str, Any] | None = None
        self.reloads = 0

    # --- building ---------------------------------------------------------------------------------

    def build(self) -> None:
        e = self.execution
        with ui.row().classes("w-full items-center gap-3").mark("execution-header"):
            ui.link("Executions", "/executions").classes("text-sm")
            ui.icon("chevron_right").classes("text-gray-400")
            ui.link(e.workflow_name, f"/workflows/{e.workflow_id}").classes("text-lg font-semibold").mark(
                "execution-workflow"
            )
            ui.label(f"v{e.version}").classes("text-sm text-gray-500")
            ui.label(e.name or e.id).classes("font-mono text-sm").mark("execution-id")
            self.status = status_badge(e.status, "execution-status")
            ui.space()
            if self.writer:
                self.cancel_button = ui.button("Cancel", icon="stop", on_click=self.cancel)
                self.cancel_button.props("outline color=negative dense").mark("execution-cancel")
                self.redrive_button = ui.button(
                    "Redrive from the failed state", icon="replay", on_click=self.redrive
                )
                self.redrive_button.props("dense").mark("execution-redrive")
        self.facts = ui.label("").classes("text-sm text-gray-500").mark("execution-facts")
        self.error = ui.label("").classes("text-negative font-mono text-sm").mark("execution-error")
        self.debugger = ui.card().classes("w-full border-purple-400").props("flat bordered").mark("debugger")
        self.breakpoints = ui.row().classes("w-full items-center gap-2").mark("execution-breakpoints")
        with ui.row().classes("w-full gap-3 no-wrap items-start"):
            with ui.column().classes("grow min-w-0 gap-1"):
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label("Graph").classes("text-sm font-semibold")
                    ui.space()
                    for status in ("running", "succeeded", "failed", "caught", "paused"):
                        with ui.row().classes("items-center gap-1"):
                            ui.element("div").classes("w-3 h-3 rounded").style(
                                f"background: {STATUS_COLOURS[status]}"
                            )
                            ui.label(status).classes("text-xs text-gray-500")
                definition = e.definition if isinstance(e.definition, dict) else {}
                self.canvas = DagCanvas(
                    graph.to_graph(definition, breakpoints=e.breakpoints), on_select=self._on_select
                ).classes("h-[440px]")
                self.canvas.mark("execution-graph")
            with ui.column().classes("w-[440px] shrink-0 gap-1").mark("state-detail"):
                self.detail = StateRunDetail(self.ctx, on_close=self._close_detail)
        ui.label("Timeline").classes("text-sm font-semibold")
        self.gantt = ui.plotly(gantt_figure([])).classes("w-full").mark("execution-gantt")
        ui.label("State runs").classes("text-sm font-semibold")
        with ui.element("q-markup-table").props("flat bordered dense").classes("w-full"):
            with ui.element("thead"), ui.element("tr"):
                for header in (
                    "#",
                    "State",
                    "Type",
                    "Status",
                    "Attempt",
                    "Started (UTC)",
                    "Duration",
                    "Invocation",
                ):
                    with ui.element("th").classes("text-left"):
                        ui.label(header)
            self.table = ui.element("tbody")
        with ui.row().classes("w-full gap-3 no-wrap"):
            with ui.column().classes("w-1/2 gap-1"):
                _section("Execution input")
                self.input_box = _pre("", "execution-input")
            with ui.column().classes("w-1/2 gap-1"):
                _section("Execution output")
                self.output_box = _pre("", "execution-output")

    # --- loading ----------------------------------------------------------------------------------

    async def reload(self) -> None:
        service, principal = self.ctx.platform.workflows, self.ctx.principal
        execution = await attempt(service.execution(principal, self.execution.id), notify=False)
        runs = await attempt(service.state_runs(principal, self.execution.id), notify=False)
        if isinstance(execution, Failed) or isinstance(runs, Failed):
            return
        self.execution, self.runs = execution, runs
        self.reloads += 1
        self.render()

    def render(self) -> None:
        e = self.execution
        self.status.set_text(e.status)
        self.status.props(f"color={_badge_colour(e.status)}")
        facts = [
            f"source {e.source}",
            f"started {fmt_time(e.started_at or e.created_at)}",
            f"duration {duration_text(e)}",
        ]
        if e.finished_at:
            facts.append(f"ended {fmt_time(e.finished_at)}")
        if e.redrive_count:
            facts.append(f"redriven {e.redrive_count}×")
        if e.status in ("pending", "running") and e.current_state:
            facts.append(f"at {e.current_state}")
        self.facts.set_text(" · ".join(facts))
        self.error.set_text(f"{e.error}: {e.cause}" if e.error else "")
        self.error.set_visibility(bool(e.error))
        if self.writer:
            self.cancel_button.set_visibility(e.status in ACTIVE)
            self.redrive_button.set_visibility(e.status in REDRIVABLE)
        self.canvas.set_statuses(state_statuses(e, self.runs))
        self.gantt.update_figure(gantt_figure(self.runs))
        self._render_table()
        self._render_debugger()
        self._render_breakpoints()
        self.input_box.set_text(_json(e.input))
        ended = e.status not in ACTIVE
        self.output_box.set_text(
            _json(e.output) if e.output is not None else "(none)" if ended else "(none yet)"
        )
        if self.selected_state:
            self.detail.show(self.selected_state, self.runs)

    def _render_table(self) -> None:
        self.table.clear()
        with self.table:
            for run in self.runs:
                indent = "↳ " if run.parent_id else ""
                where = f" [branch {run.branch}]" if run.branch is not None else ""
                where = f" [item {run.item}]" if run.item is not None else where
                with (
                    ui.element("tr")
                    .classes("cursor-pointer")
                    .mark("state-run-row", f"state-run-{run.seq}") as row
                ):
                    with ui.element("td"):
                        ui.label(str(run.seq)).classes("text-sm")
                    with ui.element("td"):
                        ui.label(f"{indent}{run.state_name}{where}").classes("text-sm")
                    with ui.element("td"):
                        ui.label(graph.TYPE_LABELS.get(run.state_type, run.state_type)).classes("text-sm")
                    with ui.element("td"):
                        ui.badge(run.status, color=RUN_COLOURS.get(run.status, "grey")).mark(
                            f"state-run-status-{run.seq}"
                        )
                    with ui.element("td"):
                        ui.label(str(run.attempt)).classes("text-sm")
                    with ui.element("td"):
                        ui.label(fmt_time(run.started_at)).classes("text-sm")
                    with ui.element("td"):
                        ui.label(run_duration(run)).classes("text-sm")
                    with ui.element("td"):
                        if run.invocation_id:
                            ui.link("open", f"/invocations?id={run.invocation_id}").classes("text-sm")
                row.on("click", lambda name=run.state_name: self.select_state(name))

    def _render_breakpoints(self) -> None:
        e = self.execution
        self.breakpoints.clear()
        if e.status not in ACTIVE:
            self.breakpoints.set_visibility(bool(e.breakpoints))
        with self.breakpoints:
            ui.label("Breakpoints of this execution:").classes("text-sm")
            if not e.breakpoints:
                ui.label("none").classes("text-sm text-gray-500")
            for state in e.breakpoints:
                chip = ui.chip(state, icon="pause_circle", removable=self.writer and e.status in ACTIVE)
                chip.props("dense color=red-1").mark(f"execution-breakpoint-{state}")
                chip.on("remove", lambda s=state: self.remove_breakpoint(s))
            states = graph.states_of(e.definition if isinstance(e.definition, dict) else {})
            free = [s for s in states if s not in e.breakpoints]
            if self.writer and e.status in ACTIVE and free:
                add = ui.select({s: s for s in free}, label="Add a breakpoint before").props("dense")
                add.classes("w-56").mark("execution-add-breakpoint")
                add.on_value_change(lambda ev: self.add_breakpoint(str(ev.value)) if ev.value else None)

    def _render_debugger(self) -> None:
        e = self.execution
        paused = e.status == "paused"
        key = (e.paused_at_state, e.paused_at) if paused else None
        self.debugger.set_visibility(paused)
        if key == self.shown_pause:
            return
        self.shown_pause = key
        self.debugger.clear()
        if not paused:
            return
        with self.debugger:
            with ui.row().classes("w-full items-center gap-2"):
                ui.icon("pause_circle").classes("text-purple-600 text-2xl")
                ui.label(f"Paused before {e.paused_at_state}").classes("font-semibold").mark("debugger-state")
                ui.label(f"since {fmt_time(e.paused_at)}").classes("text-sm text-gray-500")
            ui.label("The input this state will run with (edit it, then Step or Continue):").classes(
                "text-sm"
            )
            self.paused_input = (
                ui.codemirror(
                    json.dumps(e.paused_input, indent=2), language="JSON", on_change=self._check_paused
                )
                .classes("w-full h-[22vh] border rounded")
                .mark("debugger-input")
            )
            self.paused_error = ui.label("").classes("text-negative text-sm").mark("debugger-error")
            self.paused_error.set_visibility(False)
            with ui.row().classes("gap-2"):
                self.step_button = ui.button("Step", icon="redo", on_click=lambda: self.debug("step"))
                self.step_button.mark("debug-step").tooltip("Run this state, pause before the next")
                self.continue_button = ui.button(
                    "Continue", icon="play_arrow", on_click=lambda: self.debug("continue")
                )
                self.continue_button.props("color=positive").mark("debug-continue")
                ui.button("Abort", icon="stop", on_click=lambda: self.debug("abort")).props(
                    "outline color=negative"
                ).mark("debug-abort")
                for button in (self.step_button, self.continue_button):
                    button.set_enabled(self.writer)

    def _paused_value(self) -> tuple[bool, Any]:
        try:
            return True, json.loads(str(self.paused_input.value or "").strip() or "null")
        except json.JSONDecodeError as exc:
            return False, f"Not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"

    def _check_paused(self) -> None:
        ok, value = self._paused_value()
        self.paused_error.set_text("" if ok else str(value))
        self.paused_error.set_visibility(not ok)
        for button in (self.step_button, self.continue_button):
            button.set_enabled(ok and self.writer)

    # --- the selected state -----------------------------------------------------------------------

    def _on_select(self, args: dict[str, Any]) -> None:
        if args.get("kind") == "node":
            self.select_state(str(args.get("id", "")))

    def select_state(self, name: str) -> None:
        self.selected_state = name
        self.canvas.select(name)
        self.detail.show(name, self.runs)

    def _close_detail(self) -> None:
        self.selected_state = ""
        self.canvas.select("")
        self.detail.clear()

    # --- actions ----------------------------------------------------------------------------------

    async def cancel(self) -> None:
        done = await attempt(
            self.ctx.platform.workflows.cancel(self.ctx.principal, self.execution.id), success="Cancelled"
        )
        if not isinstance(done, Failed):
            await self.reload()

    async def redrive(self) -> None:
        done = await attempt(
            self.ctx.platform.workflows.redrive(self.ctx.principal, self.execution.id),
            success="Redriven: it runs again from the state that failed",
        )
        if not isinstance(done, Failed):
            await self.reload()

    async def debug(self, action: str) -> None:
        kwargs: dict[str, Any] = {}
        if action != "abort":
            ok, value = self._paused_value()
            if not ok:
                self._check_paused()
                return
            if value != self.execution.paused_input:
                kwargs["input"] = value
        words = {"step": "Stepped", "continue": "Continued", "abort": "Aborted"}
        done = await attempt(
            self.ctx.platform.workflows.debug(self.ctx.principal, self.execution.id, action, **kwargs),
            success=words[action],
        )
        if not isinstance(done, Failed):
            await self.reload()

    async def add_breakpoint(self, state: str) -> None:
        done = await attempt(
            self.ctx.platform.workflows.add_breakpoint(self.ctx.principal, self.execution.id, state)
        )
        if not isinstance(done, Failed):
            await self.reload()

    async def remove_breakpoint(self, state: str) -> None:
        done = await attempt(
            self.ctx.platform.workflows.remove_breakpoint(self.ctx.principal, self.execution.id, state)
        )
        if not isinstance(done, Failed):
            await self.reload()

    async def on_events(self, events: list[Event]) -> None:
        await self.reload()


def _badge_colour(status: str) -> str:
    return EXECUTION_COLOURS.get(status, "grey")


@console_page("/executions", "Workflow executions")
async def executions_page(ctx: PageContext, workflow: str = "", status: str = "") -> None:
    table = ExecutionTable(ctx, status=status if status in EXECUTION_STATUSES else "")
    if workflow:
        table.workflow_box.set_value(workflow)
    await table.apply()


@console_page("/executions/{execution_id}", "Workflow execution")
async def execution_page(ctx: PageContext, execution_id: str) -> None:
    execution = await attempt(ctx.platform.workflows.execution(ctx.principal, execution_id), notify=False)
    if isinstance(execution, Failed):
        ui.label(f"Execution {execution_id} cannot be shown: {execution.message}").classes(
            "text-negative"
        ).mark("execution-missing")
        ui.link("Back to the executions", "/executions")
        return
    view = ExecutionView(ctx, execution)
    view.build()
    live(
        ctx.client,
        ctx.platform.bus,
        ExecutionChanged,
        StateRunChanged,
        handler=view.on_events,
        accept=lambda e: getattr(e, "execution_id", None) == execution_id,
    )
    await view.reload()
