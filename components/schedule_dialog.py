"""The create/edit dialog of a cron schedule: target, expression and timezone with a live preview of the
next five runs (or the reason the expression is invalid, on its field), misfire policy, payload (JSON).
Saving calls the schedules service; an error that names a field is shown on that field."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import available_timezones

from nicegui import ui
from pydantic import ValidationError

from components.feedback import Failed, attempt
from components.frame import PageContext
from data.models import Schedule
from engine.cron import ALIASES
from engine.services.schedule_schemas import ScheduleCreate, ScheduleUpdate
from engine.services.schedules import Preview

MISFIRE_OPTIONS = {
    "skip": "Skip missed runs",
    "run_once": "Run once after downtime",
}
EXAMPLES = {
    "*/5 * * * *": "every 5 minutes",
    "0 9 * * 1-5": "09:00 on weekdays",
    **dict.fromkeys(ALIASES, ""),
}
_TIMEZONES = sorted(available_timezones())

Saved = Callable[[Schedule], Awaitable[None]]


def fmt_preview(preview: Preview) -> list[str]:
    return [t.strftime("%a %Y-%m-%d %H:%M:%S %Z") for t in preview.next_runs]


class ScheduleDialog:
    """One dialog per page; `open(None)` creates, `open(schedule)` edits. `on_saved` runs after a save."""

    def __init__(self, ctx: PageContext, on_saved: Saved) -> None:
        self.ctx = ctx
        self.on_saved = on_saved
        self.editing: Schedule | None = None
        with ui.dialog() as self.dialog, ui.card().classes("w-[560px] gap-2").mark("schedule-dialog"):
            self.title = ui.label("").classes("text-lg font-semibold")
            self.fields: dict[str, Any] = {
                "name": ui.input("Name").classes("w-full").mark("schedule-name"),
                "description": ui.input("Description").classes("w-full").mark("schedule-description"),
            }
            with ui.row().classes("w-full gap-2 no-wrap"):
                kinds = ctx.platform.schedule_targets.names()
                self.fields["target_type"] = (
                    ui.select(kinds, value="function", label="Target type")
                    .classes("w-40")
                    .mark("schedule-target-type")
                )
                self.fields["target_id"] = (
                    ui.input("Target (name or id)").classes("flex-1").mark("schedule-target")
                )
            with ui.row().classes("w-full gap-2 no-wrap"):
                self.fields["cron"] = (
                    ui.input(
                        "Cron expression",
                        autocomplete=list(EXAMPLES),
                        on_change=self.update_preview,
                    )
                    .props("hint='minute hour day month weekday, @daily ... (optional leading seconds)'")
                    .classes("flex-1 font-mono")
                    .mark("schedule-cron")
                    .without_auto_validation()  # the preview sets (and clears) its error
                )
                self.fields["timezone"] = (
                    ui.input("Timezone", value="UTC", autocomplete=_TIMEZONES, on_change=self.update_preview)
                    .classes("w-52")
                    .mark("schedule-timezone")
                    .without_auto_validation()
                )
            with ui.column().classes("w-full gap-0 pt-2").mark("schedule-preview"):
                ui.label("Next runs").classes("text-sm text-gray-500")
                self.preview_list = ui.column().classes("gap-0 font-mono text-sm")
            self.fields["misfire_policy"] = (
                ui.select(MISFIRE_OPTIONS, value="skip", label="After downtime")
                .classes("w-full")
                .mark("schedule-misfire")
            )
            self.fields["payload"] = (
                ui.textarea("Payload (JSON)", value="{}")
                .props("autogrow")
                .classes("w-full font-mono")
                .mark("schedule-payload")
            )
            self.paused = ui.switch("Start paused").mark("schedule-paused")
            self.error = ui.label("").classes("text-red-600 text-sm").mark("schedule-dialog-error")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat").mark("schedule-cancel")
                ui.button("Save", icon="save", on_click=self.save).mark("schedule-save")

    async def open(self, schedule: Schedule | None) -> None:
        self.editing = schedule
        self.title.set_text(f"Edit {schedule.name}" if schedule else "New schedule")
        f = self.fields
        f["name"].set_value(schedule.name if schedule else "")
        f["description"].set_value(schedule.description if schedule else "")
        f["target_type"].set_value(schedule.target_type if schedule else "function")
        f["target_id"].set_value(schedule.target_name or schedule.target_id if schedule else "")
        f["cron"].set_value(schedule.cron if schedule else "")
        f["timezone"].set_value(schedule.timezone if schedule else "UTC")
        f["misfire_policy"].set_value(schedule.misfire_policy if schedule else "skip")
        f["payload"].set_value(json.dumps(schedule.payload if schedule else {}, indent=2))
        self.paused.set_value(False)
        self.paused.set_visibility(schedule is None)
        self._clear_errors()
        self.update_preview()
        self.dialog.open()
        functions = await attempt(
            self.ctx.platform.functions.list(self.ctx.principal, limit=100), notify=False
        )
        if not isinstance(functions, Failed):  # suggestions for the target box
            f["target_id"].set_autocomplete([fn.name for fn in functions.items])

    def update_preview(self) -> Preview:
        """Re-compute the next runs of what is typed now; an invalid expression shows why, on its field."""
        cron = (self.fields["cron"].value or "").strip()
        timezone = (self.fields["timezone"].value or "").strip()
        self.fields["cron"].error = None
        self.fields["timezone"].error = None
        self.preview_list.clear()
        preview = self.ctx.platform.schedules.preview(cron, timezone)
        with self.preview_list:
            if not cron:
                ui.label("Type an expression to see its next runs.").classes("text-gray-500").mark(
                    "preview-empty"
                )
            elif preview.valid:
                for text in fmt_preview(preview):
                    ui.label(text).mark("preview-run")
            else:
                self.fields[preview.field or "cron"].error = preview.error
                ui.label(preview.error or "invalid").classes("text-red-600").mark("preview-error")
        return preview

    def _clear_errors(self) -> None:
        for element in self.fields.values():
            element.error = None
        self.error.set_text("")

    def _show(self, failed: Failed) -> None:
        target = self.fields.get(failed.field or "")
        if target is not None:
            target.error = failed.message
        else:
            self.error.set_text(failed.message)

    def _values(self) -> dict[str, Any] | Failed:
        f = self.fields
        try:
            payload = json.loads(f["payload"].value or "null")
        except json.JSONDecodeError as exc:
            return Failed(f"Payload is not valid JSON: {exc.msg} (line {exc.lineno})", "payload")
        return {
            "name": (f["name"].value or "").strip(),
            "description": f["description"].value or "",
            "target_type": f["target_type"].value or "function",
            "target_id": (f["target_id"].value or "").strip(),
            "cron": (f["cron"].value or "").strip(),
            "timezone": (f["timezone"].value or "").strip(),
            "misfire_policy": f["misfire_policy"].value,
            "payload": payload,
        }

    async def save(self) -> None:
        self._clear_errors()
        values = self._values()
        if isinstance(values, Failed):
            self._show(values)
            return
        preview = self.update_preview()
        if values["cron"] and not preview.valid:
            return  # the reason is on its field already
        service, principal = self.ctx.platform.schedules, self.ctx.principal
        try:
            if self.editing is None:
                request: ScheduleCreate | ScheduleUpdate = ScheduleCreate(
                    **values, paused=bool(self.paused.value)
                )
            else:
                request = ScheduleUpdate(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error.get("loc") else None
            message = str(error.get("msg", "invalid input")).removeprefix("Value error, ")
            if error.get("type") == "missing" or (field and not values.get(field)):
                message = f"{(field or 'input').replace('_', ' ').capitalize()} is required"
            self._show(Failed(message, field))
            return
        if isinstance(request, ScheduleCreate):
            call = service.create(principal, request)
        else:
            assert self.editing is not None
            call = service.update(principal, self.editing.id, request)
        saved = await attempt(call, notify=False)
        if isinstance(saved, Failed):
            self._show(saved)
            return
        self.dialog.close()
        ui.notify(f"Saved schedule {saved.name}", type="positive")
        await self.on_saved(saved)
