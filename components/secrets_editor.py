"""Masked secrets: their names (values are never shown), set or replace one by name, remove one after a
confirmation. Used for a function's secrets (Configuration tab) and an environment's (Environments page);
the owner supplies how a change is applied."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from components.confirm import confirm
from components.feedback import Failed

# Apply {name: value, or None to remove}; the names after the change, or why it failed.
ChangeSecrets = Callable[[dict[str, str | None]], Awaitable["list[str] | Failed"]]


class SecretsEditor:
    def __init__(
        self, names: list[str], change: ChangeSecrets, *, writer: bool, mark: str, removal_note: str
    ) -> None:
        """`mark` prefixes the elements' markers (`<mark>-secrets`, `<mark>-secret-name` ...);
        `removal_note` is what the removal confirmation says happens next."""
        self._change = change
        self._writer = writer
        self._mark = mark
        self._removal_note = removal_note
        ui.label("Encrypted at rest; values are never shown. Set a name again to replace its value.").classes(
            "text-sm text-gray-500"
        )
        self.box = ui.column().classes("w-full gap-1").mark(f"{mark}-secrets")
        with ui.row().classes("w-full items-start gap-2"):
            self.name = ui.input("Secret name").mark(f"{mark}-secret-name")
            self.value = ui.input("Value", password=True, password_toggle_button=True)
            self.value.mark(f"{mark}-secret-value")
            ui.button("Set secret", on_click=self._set).mark(f"{mark}-secret-set").set_enabled(writer)
        self.render(names)

    def render(self, names: list[str]) -> None:
        self.box.clear()
        with self.box:
            if not names:
                ui.label("No secrets").classes("text-sm text-gray-500")
            for name in names:
                with ui.row().classes("items-center gap-3"):
                    ui.label(name).classes("font-mono").mark(f"{self._mark}-secret")
                    ui.label("••••••••").classes("text-gray-500")
                    remove = ui.button(icon="delete", on_click=lambda n=name: self._remove(n))
                    remove.props("flat dense color=negative").mark(f"{self._mark}-secret-remove-{name}")
                    remove.set_enabled(self._writer)

    async def _set(self) -> None:
        self.name.error = None
        name = (self.name.value or "").strip()
        if not name:
            self.name.error = "Enter the secret's name."
            return
        await self._apply({name: self.value.value or ""}, f"Secret {name} set")

    async def _remove(self, name: str) -> None:
        if await confirm(f"Remove secret {name}?", self._removal_note):
            await self._apply({name: None}, f"Secret {name} removed")

    async def _apply(self, changes: dict[str, str | None], success: str) -> None:
        names = await self._change(changes)
        if isinstance(names, Failed):
            self.name.error = names.message
            return
        self.name.set_value("")
        self.value.set_value("")
        self.render(names)
        ui.notify(success, type="positive")
