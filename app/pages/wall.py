"""The wall display: full screen, dark, huge type, no chrome; boards (overview, top functions, errors,
DLQ) rotate every `?rotate=` seconds (0: never; default NIMBUS_WALL_ROTATE_SEC, 15) or stay pinned
with `?board=`. Every figure comes from the shared dashboard snapshot, pushed over the bus (`?rate=`
caps updates per second). Built once and updated in place, so it runs for days without growing."""

from __future__ import annotations

from datetime import UTC, datetime

from nicegui import ui

from components.charts import invocations_figure, update_invocations
from components.frame import PageContext, console_page, platform
from components.live import live
from components.metrics_panel import error_tone, format_count, format_ms, format_rate
from engine.events import DlqChanged, Event, MetricsUpdated
from engine.services.metrics import Snapshot

BOARDS: dict[str, str] = {
    "overview": "Overview",
    "functions": "Top functions (24 h)",
    "errors": "Latest errors",
    "dlq": "Dead-letter queue",
}
TOP_ROWS = 10
ERROR_ROWS = 8
DLQ_ROWS = 6
TONE_CLASSES: dict[str | None, str] = {"negative": "text-red-400", "warning": "text-amber-400", None: ""}
CHART_TEXT = "#cbd5e1"


def default_rotation() -> float:
    return platform().settings.wall_rotate_sec


def _clock_time(at: datetime, now: datetime) -> str:
    """Local time of day, with the date when it is not today (a wall may be read hours later)."""
    local = at.astimezone()
    return local.strftime("%H:%M:%S" if local.date() == now.astimezone().date() else "%d %b %H:%M")


class _Figure:
    """A big number with a caption."""

    def __init__(self, label: str, mark: str) -> None:
        with ui.column().classes("gap-0 min-w-0"):
            ui.label(label).classes("text-2xl uppercase tracking-widest text-slate-400")
            self.value = ui.label("–").classes("text-8xl font-bold leading-tight tabular-nums").mark(mark)
            self.caption = ui.label("").classes("text-2xl text-slate-400")
        self._tone: str | None = None

    def set(self, value: str, caption: str = "", tone: str | None = None) -> None:
        self.value.set_text(value)
        self.caption.set_text(caption)
        if tone != self._tone:  # touch the classes only on a change: every touch is a message
            self.value.classes(remove=TONE_CLASSES[self._tone]).classes(TONE_CLASSES[tone])
            self._tone = tone


class _Row:
    """A fixed row of text cells; hidden when it has nothing to show."""

    def __init__(self, widths: list[str], classes: str, mark: str, marked: int = 1) -> None:
        with ui.row().classes(f"w-full items-baseline gap-6 flex-nowrap {classes}") as self.element:
            self.cells = [ui.label().classes(f"{w} truncate") for w in widths]
        self.cells[marked].mark(mark)  # the function name, which tests look for
        self.element.set_visibility(False)

    def show(self, values: list[str] | None) -> None:
        if values is None:
            self.element.set_visibility(False)
            return
        for cell, value in zip(self.cells, values, strict=True):
            cell.set_text(value)
        self.element.set_visibility(True)


class Wall:
    def __init__(self) -> None:
        self.board_names = list(BOARDS)
        self.current = "overview"
        self.boards: dict[str, ui.column] = {}
        self.updates = 0
        with ui.column().classes(
            "fixed inset-0 p-10 gap-6 bg-slate-950 text-white overflow-hidden flex-nowrap"
        ):
            with ui.row().classes("w-full items-center gap-6 flex-nowrap"):
                ui.label("Nimbus").classes("text-4xl font-bold text-sky-400")
                self.title = ui.label(BOARDS["overview"]).classes("text-4xl font-semibold").mark("wall-title")
                ui.space()
                self.freshness = ui.label("").classes("text-xl text-slate-500").mark("wall-updated")
                self.clock = ui.label("").classes("text-5xl font-mono tabular-nums").mark("wall-clock")
                ui.button(icon="fullscreen", on_click=lambda: self.fullscreen.toggle()).props(
                    "flat round color=grey-7"
                ).classes("opacity-40").tooltip("Full screen")
            self.fullscreen = ui.fullscreen()
            self._overview()
            self._functions()
            self._errors()
            self._dlq()
        self.show_board("overview")

    # --- boards -----------------------------------------------------------------------------------

    def _board(self, name: str) -> ui.column:
        board = ui.column().classes("w-full grow gap-8 min-h-0 flex-nowrap").mark(f"board-{name}")
        self.boards[name] = board
        return board

    def _overview(self) -> None:
        with self._board("overview"):
            with ui.grid(columns=3).classes("w-full gap-x-16 gap-y-6"):
                self.invocations = _Figure("Invocations (1 h)", "wall-invocations")
                self.error_rate = _Figure("Error rate", "wall-error-rate")
                self.p95 = _Figure("p95 latency", "wall-p95")
                self.cold = _Figure("Cold starts", "wall-cold-starts")
                self.workers = _Figure("Active workers", "wall-workers")
                self.dlq_pending = _Figure("DLQ pending", "wall-dlq")
            self._chart_figure = invocations_figure([], height=None, font_size=18, text_colour=CHART_TEXT)
            self.chart = ui.plotly(self._chart_figure).classes("w-full grow min-h-[200px]").mark("wall-chart")

    def _functions(self) -> None:
        widths = ["w-12 text-slate-500", "grow", "w-56 text-right", "w-64 text-right", "w-56 text-right"]
        with self._board("functions"):
            header = _Row(widths, "text-2xl text-slate-400 uppercase tracking-wider", "wall-top-header")
            header.show(["#", "function", "invocations", "errors", "p95"])
            self.top_rows = [_Row(widths, "text-5xl", "wall-top-function") for _ in range(TOP_ROWS)]
            self.top_empty = ui.label("Nothing ran in the last 24 hours").classes("text-4xl text-slate-500")

    def _errors(self) -> None:
        widths = ["w-44 text-slate-400", "w-96 text-red-300", "w-96 text-amber-300", "grow text-slate-300"]
        with self._board("errors"):
            self.error_rows = [_Row(widths, "text-3xl", "wall-error-function") for _ in range(ERROR_ROWS)]
            self.errors_empty = (
                ui.label("No errors").classes("text-6xl text-emerald-400").mark("wall-no-errors")
            )

    def _dlq(self) -> None:
        with self._board("dlq"):
            with ui.row().classes("w-full gap-24"):
                self.dlq_count = _Figure("Pending", "wall-dlq-pending")
                self.dlq_retrying = _Figure("Retrying", "wall-dlq-retrying")
            ui.label("Latest pending messages").classes("text-2xl uppercase tracking-widest text-slate-400")
            widths = ["w-96 text-amber-300", "grow text-slate-300", "w-56 text-right text-slate-400"]
            self.dlq_rows = [_Row(widths, "text-3xl", "wall-dlq-function", marked=0) for _ in range(DLQ_ROWS)]

    # --- rotation ---------------------------------------------------------------------------------

    def show_board(self, name: str) -> None:
        self.current = name
        for board_name, board in self.boards.items():
            board.set_visibility(board_name == name)
        self.title.set_text(BOARDS[name])

    def next_board(self) -> None:
        i = self.board_names.index(self.current)
        self.show_board(self.board_names[(i + 1) % len(self.board_names)])

    def tick_clock(self) -> None:
        self.clock.set_text(datetime.now().astimezone().strftime("%H:%M:%S"))

    # --- figures ----------------------------------------------------------------------------------

    def show(self, snapshot: Snapshot) -> None:
        """Update every board in place from one snapshot."""
        self.updates += 1
        s, now = snapshot.summary, datetime.now(UTC)
        self.invocations.set(format_count(s.invocations_1h), f"24 h: {format_count(s.invocations_24h)}")
        self.error_rate.set(
            format_rate(s.error_rate), f"{format_count(s.errors_1h)} errors", tone=error_tone(s.error_rate)
        )
        self.p95.set(format_ms(s.p95_ms), f"p50 {format_ms(s.p50_ms)} · p99 {format_ms(s.p99_ms)}")
        self.cold.set(format_rate(s.cold_start_rate), f"{format_count(s.cold_starts_1h)} cold")
        self.workers.set(format_count(s.active_workers), f"{format_count(s.warm_workers)} warm")
        self.dlq_pending.set(format_count(s.dlq_pending), "", tone="warning" if s.dlq_pending else None)
        update_invocations(self._chart_figure, snapshot.series)
        self.chart.update()

        for i, row in enumerate(self.top_rows):
            if i < len(snapshot.top):
                f = snapshot.top[i]
                row.show(
                    [
                        str(i + 1),
                        f.function_name,
                        format_count(f.invocations),
                        format_rate(f.error_rate),
                        format_ms(f.p95_ms),
                    ]
                )
            else:
                row.show(None)
        self.top_empty.set_visibility(not snapshot.top)

        for i, row in enumerate(self.error_rows):
            if i < len(snapshot.errors):
                e = snapshot.errors[i]
                row.show(
                    [
                        _clock_time(e.at, now),
                        e.function_name,
                        e.error_type or e.status,
                        (e.error_message or "")[:200],
                    ]
                )
            else:
                row.show(None)
        self.errors_empty.set_visibility(not snapshot.errors)

        dlq = snapshot.dlq
        self.dlq_count.set(format_count(dlq.pending), "", tone="warning" if dlq.pending else None)
        self.dlq_retrying.set(format_count(dlq.retrying))
        for i, row in enumerate(self.dlq_rows):
            if i < len(dlq.latest):
                m = dlq.latest[i]
                row.show(
                    [
                        m.function_name,
                        m.error.splitlines()[0][:200] if m.error else "",
                        _clock_time(m.created_at, now),
                    ]
                )
            else:
                row.show(None)
        self.freshness.set_text(f"updated {snapshot.at.astimezone().strftime('%H:%M:%S')}")


@console_page("/wall", "Wall", chrome=False)
async def wall(
    ctx: PageContext, board: str = "", rotate: float | None = None, rate: float = 2.0, clock: int = 1
) -> None:
    ui.query("body").classes("bg-slate-950")
    display = Wall()
    pinned = board in BOARDS
    if pinned:
        display.show_board(board)
    feed = ctx.platform.metrics.feed
    display.show(await feed.current(ctx.principal))

    async def refresh(events: list[Event]) -> None:
        display.show(await feed.current(ctx.principal))

    live(ctx.client, ctx.platform.bus, MetricsUpdated, DlqChanged, handler=refresh, max_rate=max(0.1, rate))
    seconds = default_rotation() if rotate is None else max(0.0, rotate)
    if seconds > 0 and not pinned:
        ui.timer(seconds, display.next_board)
    if clock:
        display.tick_clock()
        ui.timer(1.0, display.tick_clock)
