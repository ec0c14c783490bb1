"""A confirmation dialog for destructive actions; optionally the user must type a word to confirm."""

from __future__ import annotations

from nicegui import ui


async def confirm(
    title: str, message: str = "", *, action: str = "Delete", danger: bool = True, typed: str | None = None
) -> bool:
    """Ask, and return True only when the user confirms (typing `typed` exactly when it is given).

    The dialog is made at the page's root, not in the caller's container: a list that re-renders while
    it is open (live updates, a reload after the previous action) would otherwise delete it with its
    rows, and the question would vanish unanswered."""
    root = ui.context.client.layout
    with root, ui.dialog() as dialog, ui.card().classes("min-w-[360px]").mark("confirm-dialog"):
        ui.label(title).classes("text-lg font-semibold")
        if message:
            ui.label(message).classes("text-sm text-gray-600 dark:text-gray-300")
        box = None
        if typed:
            box = ui.input(f"Type {typed!r} to confirm").props("autofocus").mark("confirm-typed")
        with ui.row().classes("w-full justify-end gap-2"):
            ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat").mark("confirm-cancel")
            ok = (
                ui.button(action, on_click=lambda: dialog.submit(True))
                .props(f"color={'negative' if danger else 'primary'}")
                .mark("confirm-ok")
            )
            if box is not None:
                ok.bind_enabled_from(box, "value", backward=lambda v: v == typed)
    result = await dialog
    if not dialog.is_deleted:
        dialog.delete()
    return bool(result) and (box is None or box.value == typed)
