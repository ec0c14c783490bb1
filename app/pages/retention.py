"""Retention: per kind of data its rows, size, oldest record and what has expired; the policy (days to
keep each kind, automatic cleanup and its time); "Clean up now" with a preview of what will be deleted
and a confirmation, then a progress bar while the engine deletes (the user may leave: the cleanup runs
in the engine); and the cleanup history (when, what, how many rows, how long, who)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nicegui import ui

from components.confirm import confirm
from components.feedback import Failed, attempt
from components.form_errors import clear_errors, show_error, whole
from components.frame import PageContext, console_page
from components.invocation_drawer import fmt_time
from components.live import live
from components.quota_card import amount
from data.models import RetentionRun
from engine.events import Event, RetentionProgress
from engine.services.retention import TargetStats

DAY_FIELDS = {
    "invocations_days": "Invocations (days)",
    "logs_days": "Logs (days)",
    "dlq_days": "DLQ messages (days)",
    "workflow_executions_days": "Workflow executions (days)",
}
RUN_COLOURS = {"running": "primary", "succeeded": "positive", "failed": "negative"}
HISTORY_SIZE = 20


def _when(value: datetime | None) -> str:
    return fmt_time(value) if value else "–"


def _duration(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:,.0f} ms" if ms < 10_000 else f"{ms / 1000:,.1f} s"


def _lower(label: str) -> str:
    """ "Invocation logs" -> "invocation logs", but "DLQ messages" stays."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def _deleted(run: RetentionRun) -> str:
    parts = [f"{kind} {n:,}" for kind, n in (run.deleted or {}).items() if n]
    return " · ".join(parts) or "nothing"


class RetentionPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.service = ctx.platform.retention
        self.admin = ctx.principal.can("admin")
        self.run_id: str | None = None

    # --- building ---------------------------------------------------------------------------------

    def build(self) -> None:
        with ui.card().classes("w-full p-4 gap-2"):
            with ui.row().classes("w-full items-center"):
                ui.label("Stored data").classes("text-base font-medium")
                ui.space()
                if self.admin:
                    self.clean_button = (
                        ui.button("Clean up now", icon="auto_delete", on_click=self.clean_up)
                        .props("color=negative")
                        .mark("retention-clean")
                    )
            with ui.element("q-markup-table").props("flat bordered dense").classes("w-full"):
                with ui.element("thead"), ui.element("tr"):
                    for header in ("Data", "Rows", "Size", "Oldest record (UTC)", "Kept for", "Expired now"):
                        with ui.element("th").classes("text-left"):
                            ui.label(header)
                self.stats_body = ui.element("tbody").mark("retention-stats")
            self.size_note = ui.label("").classes("text-xs text-gray-500")
            with ui.column().classes("w-full gap-1").mark("retention-progress") as self.progress_box:
                self.progress_label = ui.label("").classes("text-sm").mark("retention-progress-label")
                self.progress = ui.linear_progress(value=0.0, show_value=False).props("rounded size=12px")
            self.progress_box.set_visibility(False)
        with ui.row().classes("w-full gap-4 items-start max-lg:flex-wrap"):
            self._build_policy()
            self._build_history()

    def _build_policy(self) -> None:
        with ui.card().classes("min-w-[320px] p-4 gap-2").mark("retention-policy"):
            ui.label("Policy").classes("text-base font-medium")
            self.inputs: dict[str, Any] = {}
            for field, label in DAY_FIELDS.items():
                number = ui.number(label, format="%d", min=1, max=3650).classes("w-full")
                self.inputs[field] = number.mark(f"policy-{field}")
            self.inputs["auto_cleanup"] = ui.switch("Automatic cleanup every day").mark("policy-auto_cleanup")
            self.inputs["cleanup_time"] = (
                ui.input("Cleanup time (HH:MM, server time)")
                .props("mask=##:##")
                .classes("w-full")
                .mark("policy-cleanup_time")
            )
            self.policy_error = ui.label("").classes("text-negative text-sm").mark("policy-error")
            self.policy_error.set_visibility(False)
            if self.admin:
                ui.button("Save policy", icon="save", on_click=self.save_policy).mark("policy-save")
            else:
                for element in self.inputs.values():
                    element.disable()

    def _build_history(self) -> None:
        with ui.card().classes("flex-1 min-w-[420px] p-4 gap-2"):
            ui.label("Cleanup history").classes("text-base font-medium")
            with ui.element("q-markup-table").props("flat bordered dense").classes("w-full") as self.history:
                with ui.element("thead"), ui.element("tr"):
                    for header in ("When (UTC)", "Trigger", "By", "Status", "Deleted", "Rows", "Took"):
                        with ui.element("th").classes("text-left"):
                            ui.label(header)
                self.history_body = ui.element("tbody").mark("retention-history")
            self.history_empty = ui.label("No cleanup has run yet.").classes("text-sm text-gray-500")
            self.history_empty.mark("retention-history-empty")

    # --- loading ----------------------------------------------------------------------------------

    async def load_stats(self) -> None:
        stats = await attempt(self.service.stats(self.ctx.principal), notify=False)
        if isinstance(stats, Failed):
            return
        self.stats_body.clear()
        with self.stats_body:
            for row in stats:
                self._stats_row(row)
        methods = sorted({row.size_method for row in stats if row.size_method})
        self.size_note.set_text("Sizes: " + "; ".join(methods) if methods else "")

    def _stats_row(self, row: TargetStats) -> None:
        with ui.element("tr").mark(f"retention-row-{row.target}"):
            cells = (
                row.label,
                f"{row.rows:,}",
                amount(row.size_bytes, "bytes"),
                _when(row.oldest_at),
                f"{row.days} days",
                f"{row.expired:,}",
            )
            for i, text in enumerate(cells):
                with ui.element("td"):
                    label = ui.label(text).classes("text-sm")
                    if i == 0 and row.note:
                        label.tooltip(row.note)
                    if i == 5:
                        label.mark(f"retention-expired-{row.target}")

    async def load_policy(self) -> None:
        policy = await self.service.policy(self.ctx.principal)
        for field, element in self.inputs.items():
            element.value = policy[field]

    async def load_history(self) -> None:
        page = await attempt(self.service.runs(self.ctx.principal, limit=HISTORY_SIZE), notify=False)
        if isinstance(page, Failed):
            return
        current = self.service.current
        self.history_body.clear()
        with self.history_body:
            for run in page.items:
                self._history_row(current if current is not None and current.id == run.id else run)
        self.history.set_visibility(bool(page.items))
        self.history_empty.set_visibility(not page.items)

    def _history_row(self, run: RetentionRun) -> None:
        with ui.element("tr").classes("retention-run-row").mark("retention-run", f"retention-run-{run.id}"):
            with ui.element("td"):
                ui.label(_when(run.started_at)).classes("text-sm")
            with ui.element("td"):
                ui.label(run.trigger).classes("text-sm")
            with ui.element("td"):
                ui.label(run.actor).classes("text-sm")
            with ui.element("td"):
                badge = ui.badge(run.status, color=RUN_COLOURS.get(run.status, "grey"))
                if run.error:
                    badge.tooltip(run.error)
            with ui.element("td").classes("whitespace-normal"):
                ui.label(_deleted(run)).classes("text-sm")
            with ui.element("td"):
                ui.label(f"{run.total_deleted:,}").classes("text-sm").mark(f"retention-run-total-{run.id}")
            with ui.element("td"):
                ui.label(_duration(run.duration_ms)).classes("text-sm")

    # --- actions ----------------------------------------------------------------------------------

    async def save_policy(self) -> None:
        clear_errors(self.inputs, self.policy_error)
        changes: dict[str, Any] = {}
        for field in DAY_FIELDS:
            value = whole(self.inputs[field].value, field)
            if isinstance(value, Failed):
                problem = Failed(f"{DAY_FIELDS[field]}: a whole number of days", field)
                show_error(problem, self.inputs, self.policy_error)
                return
            changes[field] = value
        changes["auto_cleanup"] = bool(self.inputs["auto_cleanup"].value)
        changes["cleanup_time"] = self.inputs["cleanup_time"].value or ""
        result = await attempt(self.service.update_policy(self.ctx.principal, changes), notify=False)
        if isinstance(result, Failed):
            show_error(result, self.inputs, self.policy_error)
            return
        ui.notify("Retention policy saved", type="positive")
        await self.load_stats()

    async def clean_up(self) -> None:
        preview = await attempt(self.service.preview(self.ctx.principal))
        if isinstance(preview, Failed):
            return
        total = sum(e.rows for e in preview)
        if total == 0:
            ui.notify("Nothing has expired: there is nothing to clean up.")
            return
        parts = [f"{e.rows:,} {_lower(e.label)} older than {e.days} days" for e in preview if e.rows]
        if not await confirm(
            f"Delete {total:,} expired rows?",
            "This deletes " + "; ".join(parts) + ". It cannot be undone.",
            action="Delete rows",
        ):
            return
        run = await attempt(self.service.cleanup(self.ctx.principal, wait=False))
        if isinstance(run, Failed):
            return
        self.run_id = run.id
        self.show_progress(0, total, "")
        await self.load_history()

    def show_progress(self, deleted: int, expected: int, target: str) -> None:
        self.progress_box.set_visibility(True)
        self.progress.set_value(min(1.0, deleted / expected) if expected else 0.0)
        doing = f" (now: {target})" if target else ""
        self.progress_label.set_text(f"Cleaning up: {deleted:,} of {expected:,} rows deleted{doing}")
        if self.admin:
            self.clean_button.disable()

    async def on_events(self, events: list[Event]) -> None:
        progress = [e for e in events if isinstance(e, RetentionProgress)]
        if not progress:
            return
        last = progress[-1]
        if last.status == "running":
            self.show_progress(last.deleted, last.expected, last.target)
            if any(e.deleted == 0 for e in progress):  # a run started (here or by someone else)
                await self.load_history()
            return
        self.progress_box.set_visibility(False)
        if self.admin:
            self.clean_button.enable()
        if last.run_id == self.run_id:
            if last.status == "succeeded":
                ui.notify(f"Cleanup finished: {last.deleted:,} rows deleted", type="positive")
            else:
                ui.notify(f"Cleanup failed: {last.error}", type="negative", multi_line=True)
            self.run_id = None
        await self.load_history()
        await self.load_stats()


@console_page("/retention", "Retention")
async def retention_page(ctx: PageContext) -> None:
    page = RetentionPage(ctx)
    page.build()
    await page.load_stats()
    await page.load_policy()
    await page.load_history()
    current = ctx.platform.retention.current
    if current is not None:  # a cleanup is running: show where it is
        page.show_progress(current.total_deleted, ctx.platform.retention.expected, "")
    live(ctx.client, ctx.platform.bus, RetentionProgress, handler=page.on_events, max_rate=4.0)
