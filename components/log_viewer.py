"""The log viewer: entries oldest at the top and newest at the bottom, a live tail from the event bus
(InvocationLogged, coalesced) with Follow / Pause, "Load older" by cursor, and downloads of the filtered
set. At most `max_entries` entries stay on screen; each shows time, function, level, a link to its
invocation and the message (cut at `MAX_MESSAGE_CHARS` on screen; the download has it whole)."""

from __future__ import annotations

import html
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from nicegui import ui

from components.feedback import Failed, attempt
from components.frame import PageContext
from components.invocation_drawer import fmt_time
from components.live import live
from data.repos.pagination import encode_cursor
from data.types import id_floor
from engine.events import Event, InvocationLogged
from engine.services.logs import LogEntry, LogFilters, LogPage

MAX_MESSAGE_CHARS = 4_000
DOWNLOAD_PATH = "/logs/download"  # app/pages/logs.py streams LogService.export there
_LEVEL_CLASSES = {"error": "text-negative font-semibold", "info": "text-primary"}


@dataclass(slots=True)
class _Shown:
    id: str | None  # None for entries that arrived live (events carry no row id)
    at: datetime
    element: ui.html


def entry_html(at: datetime, function: str, level: str, invocation_id: str, message: str) -> str:
    """One entry as HTML; everything user-made is escaped, so the element needs no sanitizer."""
    if len(message) > MAX_MESSAGE_CHARS:
        rest = len(message) - MAX_MESSAGE_CHARS
        message = f"{message[:MAX_MESSAGE_CHARS]}\n… {rest:,} more characters (open the invocation)"
    e = html.escape
    return (
        f'<span class="text-gray-500">{e(fmt_time(at))}</span> '
        f"<b>{e(function)}</b> "
        f'<span class="{_LEVEL_CLASSES.get(level, "")}">{e(level.upper())}</span> '
        f'<a class="text-primary underline" href="/invocations?id={e(invocation_id, quote=True)}">'
        f"{e(invocation_id[-12:])}</a>"
        f'<div class="whitespace-pre-wrap break-all">{e(message.rstrip())}</div>'
    )


class LogViewer:
    """Build it where it should appear, then `await viewer.apply(LogFilters(...))` to show the newest
    entries; from then on it tails live until paused."""

    def __init__(self, ctx: PageContext, *, max_entries: int = 1000, page_size: int = 100) -> None:
        self._ctx = ctx
        self._max = max_entries
        self._page_size = page_size
        self.filters = LogFilters()
        self._function_id: str | None = None
        self._older: str | None = None
        self._shown: deque[_Shown] = deque()
        self.following = True
        self.missed = 0  # entries that arrived while paused
        with ui.column().classes("w-full gap-2") as self.root:
            with ui.row().classes("w-full items-center gap-2"):
                self._follow = ui.button("Pause", icon="pause", on_click=self.toggle_follow).props("dense")
                self._follow.mark("log-follow")
                self._new = ui.badge("", color="warning").mark("log-new-count")
                self._new.set_visibility(False)
                self._note = ui.label("").classes("text-sm text-gray-500").mark("log-scan-note")
                ui.space()
                ui.button("Download .txt", icon="download", on_click=lambda: self.download("txt")).props(
                    "flat dense"
                ).mark("log-download-txt")
                ui.button("Download .jsonl", icon="download", on_click=lambda: self.download("jsonl")).props(
                    "flat dense"
                ).mark("log-download-jsonl")
            self.message = ui.label("").classes("text-negative").mark("logs-message")
            self.message.set_visibility(False)
            self._load_older = (
                ui.button("Load older", icon="expand_less", on_click=self.load_older)
                .props("flat dense")
                .mark("log-load-older")
            )
            self._scroll = ui.scroll_area().classes("w-full h-[65vh] border rounded")
            with self._scroll:
                self._lines = ui.column().classes("w-full gap-0 font-mono text-xs").mark("log-lines")
            self.empty = ui.label("").classes("text-gray-500 p-4").mark("logs-empty")
            self._scroll.set_visibility(False)  # until the first page is read
            self.empty.set_visibility(False)
            self._load_older.set_visibility(False)
        self._feed = live(
            ctx.client, ctx.platform.bus, InvocationLogged, handler=self._on_events, accept=self._accepts
        )

    # --- public -----------------------------------------------------------------------------------

    async def apply(self, filters: LogFilters) -> str | None:
        """Show the newest entries for `filters`; returns the error message (also shown inline), if any."""
        page = await self._search(filters, None)
        if isinstance(page, Failed):
            return self.show_error(page.message)
        self.filters, self._function_id = filters, page.function_id
        self._clear()
        for entry in reversed(page.items):
            self._append(entry.id, entry.created_at, entry, top=False)
        self._after_page(page)
        self.missed = 0
        self._refresh_state()
        self._scroll.scroll_to(percent=1.0)
        return None

    async def load_older(self) -> None:
        if self._older is None:
            return
        page = await self._search(self.filters, self._older)
        if isinstance(page, Failed):
            self.show_error(page.message)
            return
        for entry in page.items:  # newest first, each put on top
            self._append(entry.id, entry.created_at, entry, top=True)
        while len(self._shown) > self._max:  # over the cap: drop the newest, and stop tailing after a gap
            self._shown.pop().element.delete()
            self._pause()
        self._after_page(page)
        self._refresh_state()

    async def toggle_follow(self) -> None:
        if self.following:
            self._pause()
        else:
            self.following = True
            if self.missed:  # what arrived meanwhile: read it again rather than keep it in memory
                await self.apply(self.filters)
        self._refresh_state()

    def download(self, fmt: str) -> None:
        f = self.filters
        params = {
            "function": self._function_id or "",
            "level": f.level or "",
            "q": f.text or "",
            "since": f.since.isoformat() if f.since else "",
            "until": f.until.isoformat() if f.until else "",
            "format": fmt,
        }
        query = urlencode({k: v for k, v in params.items() if v})
        ui.download.from_url(f"{DOWNLOAD_PATH}?{query}", f"nimbus-logs.{fmt}")

    def show_error(self, message: str) -> str:
        self.message.set_text(message)
        self.message.set_visibility(True)
        return message

    def close(self) -> None:
        self._feed.close()

    # --- loading ----------------------------------------------------------------------------------

    async def _search(self, filters: LogFilters, cursor: str | None) -> LogPage | Failed:
        return await attempt(
            self._ctx.platform.logs.search(
                self._ctx.principal,
                function=filters.function,
                level=filters.level,
                text=filters.text,
                since=filters.since,
                until=filters.until,
                limit=self._page_size,
                cursor=cursor,
            ),
            notify=False,
        )

    def _after_page(self, page: LogPage) -> None:
        self._older = page.next_cursor
        self.message.set_visibility(False)
        if page.scanned:
            note = f"Searched the newest {page.scanned:,} entries"
            if page.capped:
                note += " (the most one search examines); Load older to search further back"
            self._note.set_text(note + ".")
        else:
            self._note.set_text("")

    def _clear(self) -> None:
        self._lines.clear()
        self._shown.clear()

    def _append(
        self, entry_id: str | None, at: datetime, entry: LogEntry | InvocationLogged, *, top: bool
    ) -> None:
        content = entry_html(
            at, entry.function_name or entry.function_id, entry.level, entry.invocation_id, entry.message
        )
        with self._lines:
            element = ui.html(content, sanitize=False).classes("w-full border-b py-1").mark("log-entry")
        shown = _Shown(entry_id, at, element)
        if top:
            element.move(target_index=0)
            self._shown.appendleft(shown)
        else:
            self._shown.append(shown)

    def _pause(self) -> None:
        self.following = False
        self.missed = 0

    def _refresh_state(self) -> None:
        self._follow.set_text("Pause" if self.following else "Follow")
        self._follow.props(f"icon={'pause' if self.following else 'play_arrow'}")
        self._new.set_text(f"{self.missed} new")
        self._new.set_visibility(not self.following and self.missed > 0)
        self._load_older.set_visibility(self._older is not None)
        empty = not self._shown
        self.empty.set_visibility(empty)
        self._scroll.set_visibility(not empty)
        f = self.filters
        narrowed = any((f.function, f.level, f.text, f.since, f.until))
        self.empty.set_text(
            "No log entries match these filters."
            if narrowed
            else "No log entries yet. Functions' output shows up here, live."
        )

    # --- live -------------------------------------------------------------------------------------

    def _accepts(self, event: Event) -> bool:
        """Called for every InvocationLogged: keep it cheap (no I/O)."""
        assert isinstance(event, InvocationLogged)
        f = self.filters
        return (
            (not self._function_id or event.function_id == self._function_id)
            and (not f.level or event.level == f.level)
            and (not f.text or f.text.lower() in event.message.lower())
            and (not f.since or event.at >= f.since)
            and (not f.until or event.at < f.until)
        )

    def _on_events(self, events: list[Event]) -> None:
        if not self.following:
            self.missed += len(events)
            self._refresh_state()
            return
        for event in events:
            assert isinstance(event, InvocationLogged)
            self._append(None, event.at, event, top=False)
        while len(self._shown) > self._max:  # drop the oldest; older pages start below what stays
            self._shown.popleft().element.delete()
            first = self._shown[0]
            self._older = encode_cursor(first.id or id_floor(first.at))
        self._refresh_state()
        self._scroll.scroll_to(percent=1.0)
