"""Settings: the runtime settings by group (General, Functions, Workflows, Security, and those other
modules register), each editable by admins with validation, a success notice, a confirmation for
security settings, and a mark on those that need a restart. Changes made elsewhere (another tab, the
API) show up live."""

from __future__ import annotations

from nicegui import ui

from components.frame import PageContext, console_page
from components.live import live
from components.setting_editor import SettingEditor
from engine.events import Event, SettingChanged

_GROUP_ICONS = {"general": "tune", "functions": "functions", "workflows": "account_tree", "security": "lock"}


@console_page("/settings", "Settings")
async def settings_page(ctx: PageContext) -> None:
    service = ctx.platform.system_settings
    editors: dict[str, SettingEditor] = {}
    if not ctx.principal.can("admin"):
        ui.label("Only admins can change settings; you can see them.").classes("text-sm text-gray-500").mark(
            "settings-read-only"
        )
    with ui.row().classes("items-center gap-4 text-sm text-gray-500"):
        ui.badge("applies live", color="positive").props("outline")
        ui.label("takes effect at once (e.g. on the next invocation or the next save)")
        ui.badge("needs restart", color="warning")
        ui.label("stored now, in effect after Nimbus restarts")
    for group, label, values in service.groups(ctx.principal):
        with ui.card().classes("w-full gap-0 p-4").mark(f"settings-group-{group}"):
            with ui.row().classes("items-center gap-2"):
                ui.icon(_GROUP_ICONS.get(group, "settings")).classes("text-xl text-primary")
                ui.label(label).classes("text-lg font-semibold")
            for value in values:
                ui.separator()
                editors[value.spec.key] = SettingEditor(ctx, value)

    def on_events(events: list[Event]) -> None:
        for key in {e.key for e in events if isinstance(e, SettingChanged)}:
            editor = editors.get(key)
            if editor is not None:
                editor.show(service.describe(ctx.principal, key))

    live(ctx.client, ctx.platform.bus, SettingChanged, handler=on_events, max_rate=4.0)
