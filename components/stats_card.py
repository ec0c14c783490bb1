"""A figure card: a label, a big value, an optional caption; updated in place with `.set()`."""

from __future__ import annotations

from nicegui import ui


class StatsCard:
    def __init__(self, label: str, *, icon: str | None = None, mark: str | None = None) -> None:
        with ui.card().classes("min-w-[170px] flex-1 gap-1 p-4") as self.card:
            with ui.row().classes("items-center gap-2 text-gray-500 dark:text-gray-400"):
                if icon:
                    ui.icon(icon).classes("text-lg")
                ui.label(label).classes("text-sm uppercase tracking-wide")
            self.value = ui.label("–").classes("text-3xl font-semibold")
            self.caption = ui.label("").classes("text-xs text-gray-500 dark:text-gray-400")
        if mark:
            self.card.mark(mark)
            self.value.mark(f"{mark}-value")

    def set(self, value: str, caption: str | None = None, *, tone: str | None = None) -> None:
        """Show `value`; `tone` is None, 'warning' or 'negative' (colours the value)."""
        self.value.set_text(value)
        self.value.classes(remove="text-orange-500 text-red-600")
        if tone == "warning":
            self.value.classes("text-orange-500")
        elif tone == "negative":
            self.value.classes("text-red-600")
        if caption is not None:
            self.caption.set_text(caption)
