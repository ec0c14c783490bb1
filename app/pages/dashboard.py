"""The dashboard: live platform figures (cards and charts from the metric rollups) and a stream of the
latest invocations. Everything arrives over the event bus: rollup flushes refresh the cards and charts
from the shared snapshot; finished invocations enter the stream straight from their events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from nicegui import ui

from components.frame import PageContext, console_page
from components.live import live
from components.metrics_panel import MetricsPanel, format_ms
from engine.events import Event, InvocationFinished
from engine.services.metrics import RecentInvocation

STREAM_ROWS = 15


COLUMNS = [
    {"name": "time", "label": "Time", "field": "time", "align": "left"},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
    {"name": "function", "label": "Function", "field": "function", "align": "left"},
    {"name": "source", "label": "Source", "field": "source", "align": "left"},
    {"name": "duration", "label": "Duration", "field": "duration", "align": "right"},
    {"name": "cold", "label": "Cold", "field": "cold", "align": "center"},
]
FUNCTION_CELL = r"""
<q-td :props="props">
  <a :href="'/invocations?id=' + props.row.id" class="font-medium text-primary no-underline">
    {{ props.value }}
  </a>
</q-td>
"""
STATUS_CELL = r"""
<q-td :props="props">
  <q-badge :color="{success: 'positive', failed: 'negative', timeout: 'warning'}[props.value] || 'grey'"
           :label="props.value" />
</q-td>
"""


class InvocationStream:
    """The latest invocations, newest first: one table whose rows are replaced in place, so a burst of
    thousands of events costs one small update and the page never grows. Each row links to
    /invocations?id=<id> (the invocations page opens that invocation's details)."""

    def __init__(self, rows: int = STREAM_ROWS) -> None:
        self.items: list[RecentInvocation] = []
        self._size = rows
        with ui.card().classes("w-full p-0 gap-0"):
            with ui.row().classes("w-full items-center px-4 pt-3"):
                ui.label("Latest invocations").classes("font-medium")
                ui.space()
                ui.link("All invocations", "/invocations").classes("text-sm")
            self.table = (
                ui.table(columns=COLUMNS, rows=[], row_key="id")
                .props("flat dense")
                .classes("w-full")
                .mark("stream")
            )
        self.table.add_slot("body-cell-function", FUNCTION_CELL)
        self.table.add_slot("body-cell-status", STATUS_CELL)

    def show(self, items: Sequence[RecentInvocation]) -> None:
        self.items = list(items)[: self._size]
        self.table.rows = [_row(item) for item in self.items]

    def add(self, events: Sequence[Event]) -> None:
        """Put finished invocations (newest last in `events`) at the top."""
        fresh = [_from_event(e) for e in reversed(events) if isinstance(e, InvocationFinished) and e.final]
        if fresh:
            seen = {item.id for item in fresh}
            self.show(fresh + [item for item in self.items if item.id not in seen])


def _row(item: RecentInvocation) -> dict[str, str]:
    return {
        "id": item.id,
        "time": _clock(item.at),
        "status": item.status,
        "function": item.function_name,
        "source": item.source,
        "duration": format_ms(item.duration_ms),
        "cold": "❄" if item.cold else "",
    }


def _from_event(event: InvocationFinished) -> RecentInvocation:
    return RecentInvocation(
        id=event.invocation_id,
        function_id=event.function_id,
        function_name=event.function_name,
        status=event.status,
        source=event.source,
        duration_ms=event.duration_ms,
        cold=event.cold,
        at=event.at,
    )


def _clock(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")


@console_page("/", "Dashboard")
async def dashboard(ctx: PageContext) -> None:
    metrics = ctx.platform.metrics
    snapshot = await metrics.feed.current(ctx.principal)
    with ui.column().classes("w-full items-center gap-3 py-16").mark("empty-state") as empty:
        ui.icon("rocket_launch", size="xl").classes("text-gray-400")
        ui.label("No invocations yet — create a function").classes("text-lg")
        ui.link("Go to Functions", "/functions").mark("empty-create")
    with ui.column().classes("w-full gap-4") as content:
        panel = MetricsPanel(ctx.platform, ctx.principal)
        stream = InvocationStream()
    panel.show(snapshot.summary, snapshot.series)
    stream.show(snapshot.recent)

    def show_content(has_invocations: bool) -> None:
        empty.set_visibility(not has_invocations)
        content.set_visibility(has_invocations)

    show_content(bool(snapshot.recent))

    def on_finished(events: list[Event]) -> None:
        stream.add(events)
        if stream.items:
            show_content(True)

    panel.follow(ctx.client)
    live(ctx.client, ctx.platform.bus, InvocationFinished, handler=on_finished, max_rate=10)
