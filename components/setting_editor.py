"""One runtime setting on the Settings page: its label, badges (applies live / needs restart, restart
pending, sensitive), description and default, an input for its type, and Save / Reset. Saving a
sensitive setting asks first; a refused value is shown on the input and nothing is stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from components.confirm import confirm
from components.feedback import Failed, attempt
from components.frame import PageContext
from engine.services.settings import SettingValue

Saved = Callable[[SettingValue], Awaitable[None] | None]


def shown_value(value: Any, unit: str = "") -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if value == "":
        return "empty"
    return f"{value} {unit}".strip()


class SettingEditor:
    def __init__(self, ctx: PageContext, setting: SettingValue) -> None:
        self._ctx = ctx
        self.setting = setting
        self.key = setting.spec.key
        self._writer = ctx.principal.can("admin")
        spec = setting.spec
        with ui.column().classes("w-full gap-1 py-2").mark(f"setting-{self.key}"):
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(spec.label).classes("font-medium")
                if spec.apply == "live":
                    ui.badge("applies live", color="positive").props("outline").mark(
                        f"setting-live-{self.key}"
                    )
                else:
                    ui.badge("needs restart", color="warning").mark(f"setting-restart-{self.key}")
                self.pending = ui.badge("restart pending", color="negative").mark(
                    f"setting-pending-{self.key}"
                )
                if spec.sensitive:
                    ui.icon("lock").classes("text-gray-500").tooltip(
                        "Security setting: changes are confirmed"
                    )
                ui.space()
                ui.label(spec.key).classes("font-mono text-xs text-gray-400")
            ui.label(spec.description).classes("text-sm text-gray-600 dark:text-gray-300")
            with ui.row().classes("w-full items-start gap-2"):
                self.input = self._build_input()
                self.input.mark(f"setting-input-{self.key}")
                self.input.set_enabled(self._writer)
                if self._writer:
                    ui.button("Save", icon="save", on_click=self.save).props("dense unelevated").classes(
                        "mt-2"
                    ).mark(f"setting-save-{self.key}")
                    self.reset_button = (
                        ui.button("Reset", icon="restart_alt", on_click=self.reset)
                        .props("dense flat")
                        .classes("mt-2")
                        .mark(f"setting-reset-{self.key}")
                    )
            self.status = ui.label("").classes("text-xs text-gray-500").mark(f"setting-status-{self.key}")
        self.show(setting)

    def _build_input(self) -> Any:
        spec = self.setting.spec
        label = f"{spec.label} ({spec.unit})" if spec.unit else spec.label
        if spec.type in ("int", "float"):
            bounds = f"{_n(spec.minimum)}–{_n(spec.maximum)}" if spec.minimum is not None else ""
            return ui.number(label, placeholder=bounds).classes("w-60")
        if spec.type == "bool":
            return ui.switch(spec.label)
        if spec.choices and spec.type == "string":
            return ui.select(list(spec.choices), label=label).classes("w-60")
        hint = "comma-separated" if spec.type == "string_list" else ""
        return ui.input(label, placeholder=hint).classes("w-[28rem] max-w-full")

    def show(self, setting: SettingValue) -> None:
        """Show `setting` as stored now (after a save, a reset, or a change made elsewhere)."""
        self.setting = setting
        spec = setting.spec
        value = setting.value
        self.input.value = ", ".join(value) if spec.type == "string_list" else value
        self.input.error = None
        self.pending.set_visibility(setting.restart_pending)
        parts = [f"default {shown_value(setting.default, spec.unit)}"]
        if setting.restart_pending:
            parts.append(f"in effect until a restart: {shown_value(setting.in_effect, spec.unit)}")
        if not setting.is_default and setting.updated_at is not None:
            parts.append(f"changed by {setting.updated_by} at {setting.updated_at:%Y-%m-%d %H:%M} UTC")
        self.status.set_text(" · ".join(parts))
        if self._writer:
            self.reset_button.set_enabled(not setting.is_default)

    async def save(self) -> None:
        spec = self.setting.spec
        value = self.input.value
        if spec.type in ("int", "float") and value is None:
            self.input.error = f"{spec.label} is required."
            return
        if spec.sensitive and not await confirm(
            f"Change {spec.label}?",
            f"{spec.label} is a security setting. {spec.description} "
            f"New value: {shown_value(value, spec.unit)}.",
            action="Change",
        ):
            return
        result = await attempt(
            self._ctx.platform.system_settings.update(self._ctx.principal, self.key, value), notify=False
        )
        if isinstance(result, Failed):
            self.input.error = result.message.removeprefix(f"{self.key}: ")
            ui.notify(f"{spec.label} was not saved: {self.input.error}", type="negative")
            return
        self.show(result)
        after = " It applies after a restart." if spec.apply == "restart" else ""
        ui.notify(f"Saved {spec.label}.{after}", type="positive")

    async def reset(self) -> None:
        spec = self.setting.spec
        if spec.sensitive and not await confirm(
            f"Reset {spec.label}?",
            f"{spec.label} goes back to its default: {shown_value(self.setting.default, spec.unit)}.",
            action="Reset",
        ):
            return
        result = await attempt(self._ctx.platform.system_settings.reset(self._ctx.principal, self.key))
        if not isinstance(result, Failed):
            self.show(result)
            ui.notify(f"{spec.label} is back to its default.", type="positive")


def _n(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)
