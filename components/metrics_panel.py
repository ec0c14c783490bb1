"""Metric cards and charts for the whole platform (function_id None) or one function: the dashboard's
top half and a function's Metrics tab. Built once; `refresh()` reads the service and updates the cards
and charts in place; `follow(client)` refreshes it live from the bus (coalesced, never by polling).

The whole-platform hour view reads the shared dashboard snapshot (one query set for every open page);
other views ask the metrics service for their own figures when their function's rollups change."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from nicegui import ui
from nicegui.client import Client
from nicegui.events import ValueChangeEventArguments

from components.charts import invocations_figure, latency_figure, update_invocations, update_latency
from components.live import LiveFeed, live
from components.stats_card import StatsCard
from engine.events import DlqChanged, Event, MetricsUpdated
from engine.principal import Principal
from engine.services.metrics import SeriesPoint, Summary

if TYPE_CHECKING:
    from engine.platform import Platform

OWN_READ_INTERVAL = 1.0
"""Seconds between live refreshes of a view that runs its own queries (one function, longer ranges)."""
RANGES: dict[str, tuple[int, int]] = {"1 h": (60, 1), "6 h": (360, 5), "24 h": (1440, 15)}
"""Chart range label: (minutes, step in minutes)."""


def format_count(n: int) -> str:
    return f"{n:,}"


def format_rate(rate: float | None) -> str:
    """A share as a percentage; never "0.0 %" for a few errors or "100.0 %" for all but a few."""
    if rate is None:
        return "–"
    if 0 < rate < 0.001:
        return "< 0.1 %"
    if 0.999 < rate < 1:
        return "> 99.9 %"
    return f"{rate * 100:.1f} %"


def format_ms(ms: float | None) -> str:
    if ms is None:
        return "–"
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def error_tone(rate: float | None) -> str | None:
    if rate is None or rate < 0.01:
        return None
    return "negative" if rate >= 0.05 else "warning"


class MetricsPanel:
    """Cards (invocations, error rate, p95, cold starts, active workers, DLQ) and two charts."""

    def __init__(
        self,
        platform: Platform,
        principal: Principal,
        function_id: str | None = None,
        *,
        range_label: str = "1 h",
        show_range: bool = True,
    ) -> None:
        self._platform = platform
        self._principal = principal
        self.function_id = function_id
        self.range_label = range_label if range_label in RANGES else "1 h"
        self.summary: Summary | None = None
        self.refreshes = 0
        self._last_own_read = -math.inf
        with ui.column().classes("w-full gap-4") as self.element:
            with ui.row().classes("w-full gap-4 items-stretch"):
                self.invocations = StatsCard("Invocations (1 h)", icon="bolt", mark="metric-invocations")
                self.error_rate = StatsCard(
                    "Error rate (1 h)", icon="error_outline", mark="metric-error-rate"
                )
                self.p95 = StatsCard("p95 latency (1 h)", icon="timer", mark="metric-p95")
                self.cold = StatsCard("Cold starts (1 h)", icon="ac_unit", mark="metric-cold-starts")
                self.workers = StatsCard("Active workers", icon="memory", mark="metric-workers")
                self.dlq = StatsCard("DLQ pending", icon="report", mark="metric-dlq")
            with ui.row().classes("w-full items-center gap-2"):
                self._step_caption = ui.label(_step_caption(self.range_label)).classes(
                    "text-sm text-gray-500"
                )
                ui.space()
                if show_range:
                    ui.toggle(list(RANGES), value=self.range_label, on_change=self._range_changed).props(
                        "dense no-caps"
                    ).mark("metric-range")
            with ui.row().classes("w-full gap-4 flex-nowrap max-md:flex-wrap"):
                with ui.card().classes("flex-1 min-w-[320px] p-2"):
                    ui.label("Invocations and errors").classes("text-sm font-medium px-2")
                    self._calls_figure = invocations_figure([])
                    self.calls_chart = (
                        ui.plotly(self._calls_figure).classes("w-full").mark("chart-invocations")
                    )
                with ui.card().classes("flex-1 min-w-[320px] p-2"):
                    ui.label("Latency percentiles").classes("text-sm font-medium px-2")
                    self._latency_figure = latency_figure([])
                    self.latency_chart = (
                        ui.plotly(self._latency_figure).classes("w-full").mark("chart-latency")
                    )

    # --- reading ----------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the figures (the shared snapshot when it fits) and show them."""
        metrics = self._platform.metrics
        minutes, step = RANGES[self.range_label]
        if self._shared:
            snapshot = await metrics.feed.current(self._principal)
            summary, series = snapshot.summary, snapshot.series
        else:
            summary = await metrics.summary(self._principal, self.function_id)
            series = await metrics.series(self._principal, self.function_id, minutes=minutes, step=step)
        self.show(summary, series)

    def show(self, summary: Summary, series: list[SeriesPoint]) -> None:
        """Update every card and chart in place."""
        self.summary = summary
        self.refreshes += 1
        s = summary
        self.invocations.set(format_count(s.invocations_1h), f"24 h: {format_count(s.invocations_24h)}")
        self.error_rate.set(
            format_rate(s.error_rate),
            f"{format_count(s.errors_1h)} errors · 24 h: {format_rate(s.error_rate_24h)}",
            tone=error_tone(s.error_rate),
        )
        self.p95.set(format_ms(s.p95_ms), f"p50 {format_ms(s.p50_ms)} · p99 {format_ms(s.p99_ms)}")
        self.cold.set(format_rate(s.cold_start_rate), f"{format_count(s.cold_starts_1h)} cold starts")
        self.workers.set(format_count(s.active_workers), f"{format_count(s.warm_workers)} warm")
        self.dlq.set(
            format_count(s.dlq_pending), "messages waiting", tone="warning" if s.dlq_pending else None
        )
        update_invocations(self._calls_figure, series)
        update_latency(self._latency_figure, series)
        self.calls_chart.update()
        self.latency_chart.update()

    # --- live -------------------------------------------------------------------------------------

    def follow(self, client: Client, *, max_rate: float = 4.0) -> LiveFeed:
        """Refresh when this panel's rollups change, the DLQ changes or the minute turns."""
        return live(
            client,
            self._platform.bus,
            MetricsUpdated,
            DlqChanged,
            handler=self._on_events,
            max_rate=max_rate,
            accept=self._concerns,
        )

    def _concerns(self, event: Event) -> bool:
        if self.function_id is None:
            return True
        if isinstance(event, MetricsUpdated):
            return not event.function_ids or self.function_id in event.function_ids
        return isinstance(event, DlqChanged) and event.function_id == self.function_id

    async def _on_events(self, events: list[Event]) -> None:
        if not self._shared:  # own queries: pace them (events meanwhile wait in the live feed, coalesced)
            loop = asyncio.get_running_loop()
            wait = self._last_own_read + OWN_READ_INTERVAL - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_own_read = loop.time()
        await self.refresh()

    @property
    def _shared(self) -> bool:
        """Whether this view is the shared whole-platform snapshot (no queries of its own)."""
        return self.function_id is None and self.range_label == "1 h"

    async def _range_changed(self, event: ValueChangeEventArguments) -> None:
        if event.value in RANGES and event.value != self.range_label:
            self.range_label = event.value
            self._step_caption.set_text(_step_caption(self.range_label))
            await self.refresh()


def _step_caption(range_label: str) -> str:
    step = RANGES[range_label][1]
    return f"Last {range_label}, per minute" if step == 1 else f"Last {range_label}, per {step} minutes"
