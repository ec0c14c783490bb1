"""The cursor stack behind a paged list: which page is shown, where the next older page starts, moving
between pages (undone when the load fails) and the Newer / "Page N" / Older controls that show it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

# Loads the page at `pager.current`; returns an error message when it failed (or None either way when the
# view does not report failures: then a failed move is not undone).
Loader = Callable[[], Awaitable[str | None]]


class CursorPager:
    """`cursors` holds the cursor of each page visited ([None] is the first page, [-1] the one shown);
    `next` is where the page after it starts (None on the last page). Render the controls (`controls`) or
    hand over the view's own (`attach`) before the first `loaded`."""

    newer_button: ui.button
    older_button: ui.button
    page_label: ui.label

    def __init__(self, load: Loader) -> None:
        self.load = load
        self.cursors: list[str | None] = [None]
        self.next: str | None = None

    @property
    def current(self) -> str | None:
        return self.cursors[-1]

    @property
    def page_number(self) -> int:
        return len(self.cursors)

    @property
    def on_first_page(self) -> bool:
        return len(self.cursors) == 1

    def reset(self) -> None:
        """Back to the first page (without loading it)."""
        self.cursors = [None]

    async def restart(self) -> str | None:
        """Load the first page (after the view changed its filters); when that fails the pages visited are
        kept as they were and the error is returned, so the view can put its filters back too."""
        previous, self.cursors = self.cursors, [None]
        error = await self.load()
        if error:
            self.cursors = previous
        return error

    async def older(self) -> None:
        if self.next is not None:
            self.cursors.append(self.next)
            if await self.load():
                self.cursors.pop()

    async def newer(self) -> None:
        if len(self.cursors) > 1:
            left = self.cursors.pop()
            if await self.load():
                self.cursors.append(left)

    def controls(
        self, *, newer_mark: str | None = None, page_mark: str | None = None, older_mark: str | None = None
    ) -> None:
        """A row with Newer, "Page N" and Older; each marked for tests when given a mark."""
        with ui.row().classes("items-center gap-2"):
            newer = ui.button("Newer", icon="chevron_left", on_click=self.newer).props("flat dense")
            label = ui.label("").classes("text-sm text-gray-500")
            older = ui.button("Older", icon="chevron_right", on_click=self.older).props("flat dense")
        for element, mark in ((newer, newer_mark), (label, page_mark), (older, older_mark)):
            if mark:
                element.mark(mark)
        self.attach(newer, label, older)

    def attach(self, newer: ui.button, label: ui.label, older: ui.button) -> None:
        """Use the view's own controls (their clicks call `newer` / `older`)."""
        self.newer_button, self.page_label, self.older_button = newer, label, older

    def loaded(self, next_cursor: str | None) -> None:
        """A page was shown: remember where the next one starts and update the controls."""
        self.next = next_cursor
        self.newer_button.set_enabled(len(self.cursors) > 1)
        self.older_button.set_enabled(self.next is not None)
        self.page_label.set_text(f"Page {len(self.cursors)}")
