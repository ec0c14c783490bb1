"""The execution page's side panel for one state: every run of it (latest first) with its status, attempt,
duration, input, output, error, the state it went to, and for a Task the invocation it made (a link) and
that invocation's logs. Re-rendered only when the state's runs change, so a live execution does not
refetch logs on every update."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from nicegui import ui

from components.feedback import Failed, attempt
from components.frame import PageContext
from components.invocation_drawer import _json, _pre, fmt_ms
from data.models import WorkflowStateRun

RUN_COLOURS = {
    "running": "info",
    "retrying": "warning",
    "succeeded": "positive",
    "failed": "negative",
    "caught": "orange",
    "paused": "purple",
    "cancelled": "grey",
}


def run_duration(run: WorkflowStateRun) -> str:
    start = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
    end = run.finished_at or datetime.now(UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return fmt_ms(max((end - start).total_seconds() * 1000, 0.0)) + ("" if run.finished_at else " so far")


class StateRunDetail:
    def __init__(self, ctx: PageContext, on_close: Callable[[], Any]) -> None:
        self.ctx = ctx
        self.on_close = on_close
        self.state = ""
        self._shown: tuple[Any, ...] | None = None
        self.box = ui.column().classes("w-full gap-1")
        self.clear()

    def clear(self) -> None:
        self.state, self._shown = "", None
        self.box.clear()
        with self.box:
            ui.label(
                "Click a state on the graph, or a row below, to see its input, output, error and logs."
            ).classes("text-sm text-gray-500").mark("state-detail-hint")

    def show(self, state: str, runs: Sequence[WorkflowStateRun]) -> None:
        """Show `state`'s runs (those of `runs` with its name); nothing is redrawn when they are unchanged."""
        mine = sorted((r for r in runs if r.state_name == state), key=lambda r: r.seq, reverse=True)
        key = (state, *((r.id, r.status, r.attempt, r.finished_at, r.invocation_id) for r in mine))
        if key == self._shown:
            return
        self.state, self._shown = state, key
        self.box.clear()
        with self.box:
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(state).classes("text-lg font-semibold").mark("state-detail-name")
                ui.space()
                ui.button(icon="close", on_click=self.on_close).props("flat dense round")
            if not mine:
                ui.label("This state has not run in this execution.").classes("text-sm text-gray-500").mark(
                    "state-detail-none"
                )
                return
            if len(mine) > 1:
                ui.label(f"{len(mine)} runs; the latest first").classes("text-xs text-gray-500")
            for run in mine:
                self._run(run)

    def _run(self, run: WorkflowStateRun) -> None:
        with ui.card().classes("w-full p-2 gap-1").props("flat bordered").mark(f"run-detail-{run.seq}"):
            with ui.row().classes("items-center gap-2"):
                ui.badge(run.status, color=RUN_COLOURS.get(run.status, "grey")).mark("state-detail-status")
                ui.label(f"#{run.seq} · attempt {run.attempt} · {run_duration(run)}").classes("text-sm")
                if run.branch is not None or run.item is not None:
                    where = f"branch {run.branch}" if run.branch is not None else f"item {run.item}"
                    ui.label(where).classes("text-xs text-gray-500")
            if run.error:
                ui.label(f"{run.error}: {run.cause}").classes("text-negative font-mono text-sm").mark(
                    "state-detail-error"
                )
            ui.label("Input").classes("text-xs font-semibold")
            _pre(_json(run.input), "state-detail-input")
            ui.label("Output").classes("text-xs font-semibold")
            _pre(_json(run.output) if run.output is not None else "(none)", "state-detail-output")
            if run.next_state:
                ui.label(f"went to {run.next_state}").classes("text-xs text-gray-500")
            if run.invocation_id:
                ui.link(f"invocation {run.invocation_id}", f"/invocations?id={run.invocation_id}").classes(
                    "text-sm font-mono"
                ).mark("state-detail-invocation")
                logs = ui.column().classes("w-full gap-0")
                ui.timer(0.01, lambda: self._logs(run.invocation_id, logs), once=True)

    async def _logs(self, invocation_id: str, box: ui.column) -> None:
        detail = await attempt(
            self.ctx.platform.invocations.get(self.ctx.principal, invocation_id), notify=False
        )
        if box.is_deleted:
            return
        with box:
            ui.label("Logs").classes("text-xs font-semibold")
            if isinstance(detail, Failed):
                ui.label(detail.message).classes("text-sm text-gray-500")
            else:
                _pre(detail.logs or "(no log output)", "state-detail-logs")
