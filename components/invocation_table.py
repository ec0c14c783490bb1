"""The invocations table: newest first, cursor pagination (older / newer), a detail drawer on click, and
new invocations arriving live from the event bus (InvocationFinished, coalesced; no DB read per event).
Self-contained, so the function page can embed it filtered to one function. Also the time-range input
the list pages share (presets, or a custom from/to checked before any query runs)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from nicegui import ui
from nicegui.elements.mixins.text_element import TextElement

from components.cursor_pager import CursorPager
from components.feedback import Failed, attempt
from components.frame import PageContext
from components.invocation_drawer import STATUS_COLOURS, InvocationDrawer, fmt_ms, fmt_time
from components.live import live
from data.models import Invocation
from data.repos.pagination import encode_cursor
from engine.errors import Invalid
from engine.events import Event, InvocationFinished

PRESETS: dict[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "all": None,
}
PRESET_LABELS = {
    "15m": "Last 15 min",
    "1h": "Last hour",
    "24h": "Last 24 h",
    "7d": "Last 7 days",
    "all": "All time",
    "custom": "Custom…",
}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_ROWS = 100  # live arrivals push the oldest rows of the first page out beyond this


def parse_moment(text: str, field: str, label: str) -> datetime | None:
    """A user's date/time (ISO, `YYYY-MM-DD HH:MM` or a date; UTC unless it has an offset)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(
            field, f"{label}: {text!r} is not a date and time; use YYYY-MM-DD HH:MM (UTC)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def resolve_range(
    preset: str, start: str = "", end: str = "", now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """(since, until) of a preset or a custom range; `Invalid` naming the bad end."""
    now = now or datetime.now(UTC)
    if preset != "custom":
        if preset not in PRESETS:
            raise Invalid("range", f"unknown time range {preset!r}")
        span = PRESETS[preset]
        return (now - span if span else None), None
    since = parse_moment(start, "since", "From")
    until = parse_moment(end, "until", "To")
    if since and until and until <= since:
        raise Invalid("until", "The end of the time range is before its start.")
    return since, until


class TimeRangeInput:
    """A preset select, plus From/To inputs shown for a custom range."""

    def __init__(self, preset: str = "all", on_change: Callable[[], Any] | None = None) -> None:
        self.preset = (
            ui.select(PRESET_LABELS, value=preset, label="Time range", on_change=on_change)
            .classes("w-36")
            .mark("filter-range")
        )
        self.start = (
            ui.input("From (UTC)", placeholder="2026-01-31 14:00").classes("w-44").mark("filter-from")
        )
        self.end = ui.input("To (UTC)", placeholder="empty: now").classes("w-44").mark("filter-to")
        for box in (self.start, self.end):
            box.bind_visibility_from(self.preset, "value", value="custom")
            if on_change is not None:
                box.on("keydown.enter", on_change)

    def resolve(self) -> tuple[datetime | None, datetime | None]:
        return resolve_range(str(self.preset.value), self.start.value or "", self.end.value or "")


@dataclass(frozen=True, slots=True)
class InvocationFilters:
    function: str | None = None  # name or id
    status: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def any(self) -> bool:
        return any((self.function, self.status, self.source, self.since, self.until))


@dataclass(slots=True)
class _RowData:
    id: str
    function_id: str
    function_name: str
    status: str
    source: str
    duration_ms: float | None
    cold: bool
    attempt: int
    at: datetime

    @classmethod
    def of(cls, inv: Invocation) -> _RowData:
        return cls(
            inv.id,
            inv.function_id,
            inv.function_name,
            inv.status,
            inv.source,
            inv.duration_ms,
            inv.cold,
            inv.attempt,
            inv.created_at,
        )

    @classmethod
    def from_event(cls, e: InvocationFinished) -> _RowData:
        status = e.status if e.final else "pending"
        return cls(
            e.invocation_id,
            e.function_id,
            e.function_name,
            status,
            e.source,
            e.duration_ms,
            e.cold,
            e.attempt,
            e.at,
        )


class _Cell(TextElement):
    def __init__(self, text: str = "", tag: str = "td") -> None:
        super().__init__(tag=tag, text=text)


class _Row:
    """One table row; live events update its status, duration, start kind and attempt in place."""

    def __init__(self, data: _RowData, show_function: bool, on_click: Callable[[str], Any]) -> None:
        self.data = data
        with ui.element("tr").classes("cursor-pointer").mark("invocation-row") as self.element:
            _Cell(fmt_time(data.at))
            if show_function:
                _Cell(data.function_name)
            with ui.element("td"):
                self.badge = ui.badge(data.status).mark("invocation-status")
            _Cell(data.source)
            self.duration = _Cell()
            self.start = _Cell()
            self.attempt = _Cell()
            _Cell(data.id[-12:]).classes("font-mono text-xs").props(f"title={data.id}")
        self.element.on("click", lambda: on_click(data.id))
        self._show()

    def update(self, fresh: _RowData) -> None:
        d = self.data
        d.status, d.duration_ms, d.cold, d.attempt = (
            fresh.status,
            fresh.duration_ms,
            fresh.cold,
            fresh.attempt,
        )
        self._show()

    def _show(self) -> None:
        d = self.data
        self.badge.set_text(d.status)
        self.badge.props(f"color={STATUS_COLOURS.get(d.status, 'grey')}")
        self.duration.set_text(fmt_ms(d.duration_ms))
        self.start.set_text("" if d.duration_ms is None else ("cold" if d.cold else "warm"))
        self.attempt.set_text(str(d.attempt) if d.attempt else "")


class InvocationTable:
    """Build it where it should appear, then `await table.apply(InvocationFilters(...))` to load the
    first page. With `function_id`, it shows only that function's invocations (the function page)."""

    def __init__(
        self,
        ctx: PageContext,
        *,
        function_id: str | None = None,
        page_size: int = 25,
        live_updates: bool = True,
    ) -> None:
        self._ctx = ctx
        self._page_size = page_size
        self._fixed = function_id
        self.filters = InvocationFilters(function=function_id)
        self._function_id = function_id  # the filter's function, resolved to an id
        self._pager = CursorPager(self._load)
        self._rows: dict[str, _Row] = {}
        self.drawer = InvocationDrawer(ctx)
        headers = ["Time (UTC)", "Function", "Status", "Source", "Duration", "Start", "Attempt", "Request"]
        if function_id:
            headers.remove("Function")
        with ui.column().classes("w-full gap-2") as self.root:
            self.message = ui.label("").classes("text-negative").mark("invocations-message")
            self.message.set_visibility(False)
            with ui.element("q-markup-table").props("flat bordered dense").classes("w-full") as self.table:
                with ui.element("thead"), ui.element("tr"):
                    for header in headers:
                        _Cell(header, tag="th").classes("text-left")
                self._body = ui.element("tbody")
            self.empty = ui.label("").classes("text-gray-500 p-4").mark("invocations-empty")
            self._pager.controls(
                newer_mark="invocations-newer", page_mark="invocations-page", older_mark="invocations-older"
            )
        self.table.set_visibility(False)  # until the first page is read
        self.empty.set_visibility(False)
        self._feed = (
            live(
                ctx.client,
                ctx.platform.bus,
                InvocationFinished,
                handler=self._on_events,
                accept=self._accepts,
            )
            if live_updates
            else None
        )

    # --- public -----------------------------------------------------------------------------------

    async def apply(self, filters: InvocationFilters) -> str | None:
        """Show the first page for `filters`; returns the error message (also shown inline), if any."""
        if self._fixed:
            filters = replace(filters, function=self._fixed)
        function_id: str | None = None
        if filters.function:
            function_id = await self._resolve(filters.function)
            if function_id is None:
                return self.show_error(f"No function named {filters.function!r}.")
        if filters.since and filters.until and filters.until <= filters.since:
            return self.show_error("The end of the time range is before its start.")
        previous = (self.filters, self._function_id)
        self.filters, self._function_id = filters, function_id
        error = await self._pager.restart()  # the pages visited are kept when it fails
        if error:
            self.filters, self._function_id = previous
        return error

    async def open(self, invocation_id: str) -> None:
        await self.drawer.open(invocation_id)

    def close(self) -> None:
        """Stop live updates (the client's end stops them too)."""
        if self._feed is not None:
            self._feed.close()

    @property
    def row_ids(self) -> list[str]:
        return list(self._rows)

    # --- loading ----------------------------------------------------------------------------------

    async def _resolve(self, ref: str) -> str | None:
        found = await attempt(self._ctx.platform.functions.get(self._ctx.principal, ref), notify=False)
        if not isinstance(found, Failed):
            return found.id
        return ref if _UUID.match(ref) else None  # a deleted function's records keep its id

    async def _load(self) -> str | None:
        f = self.filters
        page = await attempt(
            self._ctx.platform.invocations.list(
                self._ctx.principal,
                function=self._function_id,
                status=f.status,
                source=f.source,
                since=f.since,
                until=f.until,
                limit=self._page_size,
                cursor=self._pager.current,
            ),
            notify=False,
        )
        if isinstance(page, Failed):
            return self.show_error(page.message)
        self.message.set_visibility(False)
        self._body.clear()
        self._rows.clear()
        with self._body:
            for inv in page.items:
                self._add(_RowData.of(inv))
        self._refresh_state()
        self._pager.loaded(page.next_cursor)
        return None

    def show_error(self, message: str) -> str:
        """Show `message` above the table (bad filters, a failed read); the next good load hides it."""
        self.message.set_text(message)
        self.message.set_visibility(True)
        return message

    def _add(self, data: _RowData) -> _Row:
        row = _Row(data, show_function=not self._fixed, on_click=self._clicked)
        self._rows[data.id] = row
        return row

    async def _clicked(self, invocation_id: str) -> None:
        await self.open(invocation_id)

    def _refresh_state(self) -> None:
        empty = not self._rows
        self.table.set_visibility(not empty)
        self.empty.set_visibility(empty)
        if self.filters.any and not (self._fixed and self.filters == InvocationFilters(function=self._fixed)):
            self.empty.set_text("No invocations match these filters.")
        else:
            self.empty.set_text("No invocations yet. Invoke a function and it shows up here, live.")

    # --- live -------------------------------------------------------------------------------------

    def _accepts(self, event: Event) -> bool:
        """Called for every InvocationFinished: keep it cheap (no I/O)."""
        assert isinstance(event, InvocationFinished)
        if event.invocation_id in self._rows:
            return True
        if not self._pager.on_first_page:  # only the first page gains rows
            return False
        f = self.filters
        status = event.status if event.final else "pending"
        return (
            (not self._function_id or event.function_id == self._function_id)
            and (not f.status or status == f.status)
            and (not f.source or event.source == f.source)
            and (not f.since or event.at >= f.since)
            and (not f.until or event.at < f.until)
        )

    def _on_events(self, events: list[Event]) -> None:
        latest: dict[str, InvocationFinished] = {}
        for event in events:
            assert isinstance(event, InvocationFinished)
            latest.pop(event.invocation_id, None)
            latest[event.invocation_id] = event  # the last word per invocation, in arrival order
        for event in latest.values():
            data = _RowData.from_event(event)
            row = self._rows.get(event.invocation_id)
            if row is not None:
                row.update(data)
            elif self._pager.on_first_page:
                with self._body:
                    row = self._add(data)
                row.element.move(target_index=0)
                self._rows = {data.id: row, **self._rows}  # display order: newest first
        trimmed = False
        while len(self._rows) > max(MAX_ROWS, self._page_size):
            oldest_id = next(reversed(self._rows))
            self._rows.pop(oldest_id).element.delete()
            trimmed = True
        self._refresh_state()
        if trimmed:  # older pages start below the last row still shown
            self._pager.loaded(encode_cursor(next(reversed(self._rows))))
