"""Subscribe one page (one browser tab) to engine events, coalesced.

Events are buffered and handed to the page's callback at most `max_rate` times per second, inside the
page's client context (so UI updates reach that tab). A burst of thousands of invocations becomes a
few updates. The subscription ends when the client is deleted (tab closed, not a short reconnect)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import background_tasks
from nicegui.client import Client

from engine.bus import LocalBus
from engine.events import Event

log = logging.getLogger("nimbus.console")

Handler = Callable[[list[Event]], Awaitable[None] | None]


class LiveFeed:
    def __init__(
        self,
        client: Client,
        bus: LocalBus,
        types: tuple[type[Event], ...],
        handler: Handler,
        *,
        max_rate: float = 10.0,
        keep: int = 500,
        accept: Callable[[Event], bool] | None = None,
    ) -> None:
        self._client = client
        self._handler = handler
        self._interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self._accept = accept
        self._pending: deque[Event] = deque(maxlen=keep)  # a burst keeps only its newest `keep`
        self._scheduled: asyncio.TimerHandle | None = None
        self._running = False
        self._last = 0.0
        self.paused = False
        self.deliveries = 0
        self._unsubscribe = bus.on(*types, callback=self._on_event)
        client.on_delete(self.close)

    def close(self) -> None:
        self._unsubscribe()
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        self._pending.clear()

    def _on_event(self, event: Event) -> None:
        if self.paused or (self._accept is not None and not self._accept(event)):
            return
        self._pending.append(event)
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled is not None or self._running:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last + self._interval - loop.time())
        self._scheduled = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._scheduled = None
        if not self._pending or self._client.id not in Client.instances:
            return
        events = list(self._pending)
        self._pending.clear()
        self._running = True
        self._last = asyncio.get_running_loop().time()
        background_tasks.create(self._deliver(events), name="nimbus live update")

    async def _deliver(self, events: list[Event]) -> None:
        try:
            with self._client:
                result: Any = self._handler(events)
                if asyncio.iscoroutine(result):
                    await result
            self.deliveries += 1
        except Exception:
            log.exception("a live update failed")
        finally:
            self._running = False
            if self._pending:
                with contextlib.suppress(RuntimeError):
                    self._schedule()


def live(
    client: Client,
    bus: LocalBus,
    *types: type[Event],
    handler: Handler,
    max_rate: float = 10.0,
    accept: Callable[[Event], bool] | None = None,
) -> LiveFeed:
    """Call `handler(events)` for `types` of events on `bus`, coalesced to `max_rate` calls per second."""
    return LiveFeed(client, bus, types, handler, max_rate=max_rate, accept=accept)
