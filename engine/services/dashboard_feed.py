"""The shared whole-platform dashboard snapshot: recomputed on change and rate-limited, so every open
dashboard and wall page reads one query set (MetricsService.snapshot) instead of its own."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.bus import LocalBus
from engine.events import DlqChanged, Event, FunctionChanged, MetricsUpdated
from engine.principal import SYSTEM, Principal

if TYPE_CHECKING:
    from engine.services.metrics import MetricsService, Snapshot


@dataclass(slots=True)
class _FeedState:
    snapshot: Snapshot | None = None
    wanted: int = 1  # bumped by every change; a snapshot is current when it saw the latest bump
    computed: int = 0
    last: float = -math.inf
    task: asyncio.Task[Snapshot] | None = None
    unsubscribe: Callable[[], None] | None = None
    computations: int = 0


class DashboardFeed:
    """The whole-platform snapshot, shared: recomputed when rollups were flushed, the DLQ or a function
    changed, or the minute turned, and at most once per `min_interval` seconds, however many pages ask
    (20 wall screens cost one query set). Pages call `current()` when their live feed fires."""

    def __init__(self, metrics: MetricsService, bus: LocalBus, *, min_interval: float = 0.5) -> None:
        self._metrics = metrics
        self._bus = bus
        self.min_interval = min_interval
        self._state = _FeedState()

    def start(self) -> None:
        if self._state.unsubscribe is None:
            self._state.unsubscribe = self._bus.on(
                MetricsUpdated, DlqChanged, FunctionChanged, callback=self._changed
            )

    def stop(self) -> None:
        state = self._state
        if state.unsubscribe is not None:
            state.unsubscribe()
            state.unsubscribe = None
        if state.task is not None:
            state.task.cancel()

    @property
    def computations(self) -> int:
        """How many snapshots were computed (the cost of every page together)."""
        return self._state.computations

    def _changed(self, event: Event) -> None:
        self._state.wanted += 1

    async def current(self, principal: Principal) -> Snapshot:
        """A snapshot that reflects every change notified before this call."""
        state = self._state
        wanted = state.wanted
        while state.snapshot is None or state.computed < wanted:
            if state.task is None:
                state.task = asyncio.get_running_loop().create_task(self._compute(), name="nimbus-dashboard")
                state.task.add_done_callback(_retrieve)  # a failure whose caller left is not "unretrieved"
            await asyncio.shield(state.task)
        return state.snapshot

    async def _compute(self) -> Snapshot:
        state = self._state
        loop = asyncio.get_running_loop()
        try:
            wait = state.last + self.min_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            seen = state.wanted
            state.last = loop.time()
            snapshot = await self._metrics.snapshot(SYSTEM, version=seen)
            state.snapshot, state.computed = snapshot, seen
            state.computations += 1
            return snapshot
        finally:
            state.task = None


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
