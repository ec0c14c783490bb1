"""Schedules: the cron schedules with their status, next run and last result (filters, cursor pages),
create/edit in a dialog that previews the next five runs as the expression is typed, pause/resume, run
now, delete behind a confirmation; and one schedule's page with its settings, next run and run history.
Both update live (a change from another tab or the API, a tick, a run finishing)."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui

from components.confirm import confirm
from components.cursor_pager import CursorPager
from components.feedback import Failed, attempt
from components.frame import PageContext, console_page
from components.invocation_drawer import fmt_ms, fmt_time
from components.live import live
from components.schedule_dialog import MISFIRE_OPTIONS, ScheduleDialog
from data.models import Schedule
from engine.events import Event, InvocationFinished, ScheduleChanged, ScheduleFired
from engine.services.schedules import RunInfo

PAGE_SIZE = 25
STATUS_OPTIONS = {"": "Any status", "active": "Active", "paused": "Paused"}
RUN_COLOURS = {
    "success": "positive",
    "started": "info",
    "running": "info",
    "pending": "grey",
    "claimed": "grey",
    "failed": "negative",
    "timeout": "negative",
    "skipped": "warning",
    "interrupted": "warning",
}
KIND_LABELS = {"cron": "on schedule", "catch_up": "catch-up", "manual": "run now", "skipped": "missed"}


def _accept(event: Event) -> bool:
    return not isinstance(event, InvocationFinished) or event.source == "cron"


def _live_types() -> tuple[type[Event], ...]:
    return (ScheduleChanged, ScheduleFired, InvocationFinished)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "—"


def status_badge(info: RunInfo | None, mark: str) -> None:
    if info is None:
        ui.label("never ran").classes("text-sm text-gray-500").mark(mark)
        return
    ui.badge(info.status, color=RUN_COLOURS.get(info.status, "grey")).mark(mark)


class ScheduleActions:
    """Pause/resume, run now, edit, delete: shared by the list and the detail page."""

    def __init__(self, ctx: PageContext, changed: Any, deleted: Any = None) -> None:
        self.ctx = ctx
        self.writer = ctx.principal.can("developer")
        self.changed = changed
        self.deleted = deleted or changed
        self.dialog = ScheduleDialog(ctx, on_saved=lambda _: changed())

    def buttons(self, schedule: Schedule) -> None:
        sid = schedule.id
        with ui.row().classes("gap-1 no-wrap"):
            if schedule.paused:
                toggle = ui.button(icon="play_arrow", on_click=lambda: self.set_paused(sid, False))
                toggle.tooltip("Resume").mark(f"schedule-resume-{schedule.name}")
            else:
                toggle = ui.button(icon="pause", on_click=lambda: self.set_paused(sid, True))
                toggle.tooltip("Pause").mark(f"schedule-pause-{schedule.name}")
            run = ui.button(icon="bolt", on_click=lambda: self.run_now(sid))
            run.tooltip("Run now").mark(f"schedule-run-{schedule.name}")
            edit = ui.button(icon="edit", on_click=lambda: self.edit(sid))
            edit.tooltip("Edit").mark(f"schedule-edit-{schedule.name}")
            delete = ui.button(icon="delete", on_click=lambda: self.delete(sid, schedule.name))
            delete.tooltip("Delete").mark(f"schedule-delete-{schedule.name}")
            for button in (toggle, run, edit):
                button.props("flat dense round").set_enabled(self.writer)
            delete.props("flat dense round color=negative").set_enabled(self.writer)

    async def set_paused(self, schedule_id: str, paused: bool) -> None:
        result = await attempt(
            self.ctx.platform.schedules.set_paused(self.ctx.principal, schedule_id, paused)
        )
        if not isinstance(result, Failed):
            ui.notify(f"{'Paused' if paused else 'Resumed'} {result.name}", type="positive")
            await self.changed()

    async def run_now(self, schedule_id: str) -> None:
        info = await attempt(self.ctx.platform.schedules.trigger(self.ctx.principal, schedule_id))
        if isinstance(info, Failed):
            return
        if info.run.status == "failed":
            ui.notify(f"The run could not start: {info.run.error}", type="negative", multi_line=True)
        else:
            ui.notify("Started a run", type="positive")
        await self.changed()

    async def edit(self, schedule_id: str) -> None:
        schedule = await attempt(self.ctx.platform.schedules.get(self.ctx.principal, schedule_id))
        if not isinstance(schedule, Failed):
            await self.dialog.open(schedule)

    async def delete(self, schedule_id: str, name: str) -> None:
        with self.ctx.client.content:  # not inside a table row that a live update may rebuild
            sure = await confirm(f"Delete schedule {name}?", "Its run history is deleted with it.")
        if not sure:
            return
        done = await attempt(self.ctx.platform.schedules.delete(self.ctx.principal, schedule_id))
        if not isinstance(done, Failed):
            ui.notify(f"Deleted {name}", type="positive")
            await self.deleted()


# --- the list ---------------------------------------------------------------------------------------


class SchedulesPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.pager = CursorPager(self.load)
        self.actions = ScheduleActions(ctx, self.load)
        with ui.row().classes("w-full items-end gap-3").mark("schedule-filters"):
            self.status = ui.select(STATUS_OPTIONS, value="", label="Status", on_change=self.apply)
            self.status.classes("w-36").mark("filter-status")
            self.search = ui.input("Name contains").classes("w-48").mark("filter-search")
            self.search.on("keydown.enter", self.apply)
            ui.button("Apply", icon="filter_alt", on_click=self.apply).props("outline").mark("apply-filters")
            ui.space()
            add = ui.button("New schedule", icon="add", on_click=lambda: self.actions.dialog.open(None))
            add.mark("schedule-new").set_enabled(self.actions.writer)
        self.message = ui.label("").classes("text-negative").mark("schedules-message")
        self.message.set_visibility(False)
        with ui.element("q-markup-table").props("flat bordered dense").classes("w-full") as self.table:
            with ui.element("thead"), ui.element("tr"):
                for header in ("Name", "Target", "Expression", "Status", "Next run", "Last result", ""):
                    with ui.element("th").classes("text-left"):
                        ui.label(header)
            self.body = ui.element("tbody")
        self.empty = ui.label("").classes("text-gray-500 p-4").mark("schedules-empty")
        self.pager.controls(newer_mark="schedules-newer", older_mark="schedules-older")
        live(ctx.client, ctx.platform.bus, *_live_types(), handler=self.on_events, max_rate=2, accept=_accept)

    async def apply(self) -> None:
        self.pager.reset()
        await self.load()

    async def load(self) -> None:
        status = self.status.value or ""
        page = await attempt(
            self.ctx.platform.schedules.list(
                self.ctx.principal,
                paused={"active": False, "paused": True}.get(status),
                search=(self.search.value or "").strip() or None,
                limit=PAGE_SIZE,
                cursor=self.pager.current,
            ),
            notify=False,
        )
        if isinstance(page, Failed):
            self.message.set_text(page.message)
            self.message.set_visibility(True)
            return
        self.message.set_visibility(False)
        last = await self.ctx.platform.schedules.last_runs(page.items)
        self.body.clear()
        with self.body:
            for schedule in page.items:
                self._row(schedule, last.get(schedule.id))
        empty = not page.items
        self.table.set_visibility(not empty)
        self.empty.set_visibility(empty)
        filtered = bool(status or (self.search.value or "").strip())
        self.empty.set_text(
            "No schedules match these filters."
            if filtered
            else "No schedules yet: create one to run a function on a cron expression."
        )
        self.pager.loaded(page.next_cursor)

    def _row(self, schedule: Schedule, last: RunInfo | None) -> None:
        service = self.ctx.platform.schedules
        with ui.element("tr").mark("schedule-row", f"schedule-row-{schedule.name}"):
            with ui.element("td"):
                ui.link(schedule.name, f"/schedules/{schedule.id}").classes("font-semibold")
            with ui.element("td"):
                _target_link(self.ctx, schedule)
            with ui.element("td"):
                ui.label(schedule.cron).classes("font-mono text-sm")
                ui.label(schedule.timezone).classes("text-xs text-gray-500")
            with ui.element("td"):
                ui.badge(
                    "paused" if schedule.paused else "active", color="grey" if schedule.paused else "positive"
                ).mark(f"schedule-status-{schedule.name}")
            with ui.element("td"):
                ui.label(_when(service.next_run(schedule))).classes("text-sm").mark(
                    f"schedule-next-{schedule.name}"
                )
            with ui.element("td"):
                with ui.row().classes("items-center gap-2 no-wrap"):
                    status_badge(last, f"schedule-last-{schedule.name}")
                    if last is not None:
                        ui.label(fmt_time(last.run.scheduled_at)).classes("text-xs text-gray-500")
            with ui.element("td"):
                self.actions.buttons(schedule)

    async def on_events(self, events: list[Event]) -> None:
        await self.load()


@console_page("/schedules", "Schedules")
async def schedules_page(ctx: PageContext, new: str = "") -> None:
    page = SchedulesPage(ctx)
    await page.load()
    if new and page.actions.writer:
        await page.actions.dialog.open(None)


# --- one schedule -----------------------------------------------------------------------------------


def _target_link(ctx: PageContext, schedule: Schedule) -> None:
    kind = ctx.platform.schedule_targets.find(schedule.target_type)
    label = f"{schedule.target_type} {schedule.target_name or schedule.target_id}"
    if kind is not None and kind.target_path is not None:
        ui.link(label, kind.target_path(schedule.target_id)).classes("text-sm").mark(
            f"schedule-target-{schedule.name}"
        )
    else:
        ui.label(label).classes("text-sm").mark(f"schedule-target-{schedule.name}")


class ScheduleDetail:
    def __init__(self, ctx: PageContext, schedule_id: str) -> None:
        self.ctx = ctx
        self.schedule_id = schedule_id
        self.pager = CursorPager(self.load_runs)
        self.actions = ScheduleActions(ctx, self.load, deleted=self._gone)
        self.header = ui.row().classes("w-full items-center gap-3").mark("schedule-header")
        self.info = ui.card().classes("w-full gap-1").mark("schedule-info")
        ui.label("Run history").classes("text-lg font-semibold mt-2")
        with ui.element("q-markup-table").props("flat bordered dense").classes("w-full") as self.table:
            with ui.element("thead"), ui.element("tr"):
                for header in ("Scheduled for (UTC)", "Kind", "Status", "Run", "Duration", "Error"):
                    with ui.element("th").classes("text-left"):
                        ui.label(header)
            self.body = ui.element("tbody")
        self.empty = ui.label("No runs yet.").classes("text-gray-500 p-4").mark("runs-empty")
        self.pager.controls(older_mark="runs-older")
        live(
            ctx.client,
            ctx.platform.bus,
            *_live_types(),
            handler=self.on_events,
            max_rate=2,
            accept=self._mine,
        )

    def _mine(self, event: Event) -> bool:
        if isinstance(event, ScheduleChanged | ScheduleFired):
            return event.schedule_id == self.schedule_id
        return _accept(event)

    async def load(self) -> None:
        platform, principal = self.ctx.platform, self.ctx.principal
        schedule = await attempt(platform.schedules.get(principal, self.schedule_id), notify=False)
        if isinstance(schedule, Failed):
            await self._gone()
            return
        self.schedule_id = schedule.id
        last = (await platform.schedules.last_runs([schedule])).get(schedule.id)
        self.header.clear()
        with self.header:
            ui.link("Schedules", "/schedules").classes("text-sm")
            ui.label(schedule.name).classes("text-xl font-semibold").mark("schedule-title")
            ui.badge(
                "paused" if schedule.paused else "active", color="grey" if schedule.paused else "positive"
            ).mark("schedule-status")
            ui.space()
            self.actions.buttons(schedule)
        self.info.clear()
        with self.info:
            if schedule.description:
                ui.label(schedule.description).classes("text-sm text-gray-500")
            self._fact("Target", lambda: _target_link(self.ctx, schedule))
            self._fact(
                "Expression", lambda: ui.label(f"{schedule.cron}  ({schedule.timezone})").classes("font-mono")
            )
            self._fact("After downtime", lambda: ui.label(MISFIRE_OPTIONS.get(schedule.misfire_policy, "")))
            next_run = platform.schedules.next_run(schedule)
            self._fact(
                "Next run",
                lambda: ui.label(_when(next_run) if next_run else "paused").mark("schedule-next-run"),
            )
            self._fact("Last result", lambda: status_badge(last, "schedule-last-result"))
            self._fact(
                "Payload",
                lambda: ui.label(json.dumps(schedule.payload)).classes("font-mono text-sm break-all"),
            )
        await self.load_runs()

    def _fact(self, label: str, render: Any) -> None:
        with ui.row().classes("items-center gap-3"):
            ui.label(label).classes("w-32 text-sm text-gray-500")
            render()

    async def load_runs(self) -> None:
        page = await attempt(
            self.ctx.platform.schedules.runs(
                self.ctx.principal, self.schedule_id, limit=PAGE_SIZE, cursor=self.pager.current
            ),
            notify=False,
        )
        if isinstance(page, Failed):
            return
        self.body.clear()
        with self.body:
            for info in page.items:
                self._run_row(info)
        self.table.set_visibility(bool(page.items))
        self.empty.set_visibility(not page.items)
        self.pager.loaded(page.next_cursor)

    def _run_row(self, info: RunInfo) -> None:
        run = info.run
        with ui.element("tr").mark("run-row"):
            with ui.element("td"):
                ui.label(fmt_time(run.scheduled_at)).classes("text-sm")
            with ui.element("td"):
                kind = KIND_LABELS.get(run.kind, run.kind)
                ui.label(f"{kind} ({run.missed} missed)" if run.missed else kind).classes("text-sm")
            with ui.element("td"):
                ui.badge(info.status, color=RUN_COLOURS.get(info.status, "grey")).mark(f"run-status-{run.id}")
            with ui.element("td"):
                target = self.ctx.platform.schedule_targets.find(run.target_type)
                if run.run_id and target is not None and target.run_path is not None:
                    ui.link(run.run_id[-12:], target.run_path(run.run_id)).classes("font-mono text-xs")
                elif run.run_id:
                    ui.label(run.run_id).classes("font-mono text-xs")
            with ui.element("td"):
                ui.label(fmt_ms(info.result.duration_ms) if info.result else "").classes("text-sm")
            with ui.element("td").classes("max-w-[360px]"):
                error = run.error or (info.result.error if info.result else None) or ""
                ui.label(error).classes("text-sm truncate")

    async def on_events(self, events: list[Event]) -> None:
        if any(isinstance(e, ScheduleChanged) and e.action == "deleted" for e in events):
            await self._gone()
            return
        await self.load()

    async def _gone(self) -> None:
        self.header.clear()
        self.info.clear()
        with self.info:
            ui.label("This schedule does not exist (any more).").classes("text-negative").mark(
                "schedule-gone"
            )
            ui.link("All schedules", "/schedules")
        self.table.set_visibility(False)
        self.empty.set_visibility(False)


@console_page("/schedules/{schedule_id}", "Schedule")
async def schedule_page(ctx: PageContext, schedule_id: str) -> None:
    page = ScheduleDetail(ctx, schedule_id)
    await page.load()
