"""In-process event bus: asyncio pub/sub. Subscribers get an async iterator over a bounded queue;
a slow subscriber loses its oldest events (counted) rather than slowing publishers down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from engine.events import Event


class EventBus(Protocol):
    def publish(self, event: Event) -> None: ...
    def subscribe(self, *types: type[Event], maxsize: int = 1000) -> Subscription: ...


class Subscription:
    def __init__(self, bus: LocalBus, types: tuple[type[Event], ...], maxsize: int) -> None:
        self._bus = bus
        self.types = types
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def matches(self, event: Event) -> bool:
        return not self.types or isinstance(event, self.types)

    def offer(self, event: Event) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> Event:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float) -> Event:
        """Next event matching `predicate`, or TimeoutError. Tests wait on events with this."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.queue.get()
                if predicate(event):
                    return event

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()


class LocalBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._callbacks: list[tuple[tuple[type[Event], ...], Callable[[Event], None]]] = []
        # The callbacks each event type reaches, worked out on its first publish: a busy node publishes
        # a few events per invocation, and most callbacks want none of them.
        self._routes: dict[type[Event], list[Callable[[Event], None]]] = {}

    def publish(self, event: Event) -> None:
        for sub in self._subs:
            if sub.matches(event):
                sub.offer(event)
        route = self._routes.get(type(event))
        if route is None:
            route = self._routes[type(event)] = [
                callback for types, callback in self._callbacks if not types or isinstance(event, types)
            ]
        for callback in route:
            callback(event)

    def subscribe(self, *types: type[Event], maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, types, maxsize)
        self._subs.append(sub)
        return sub

    def on(self, *types: type[Event], callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback` synchronously for each matching event; returns the unsubscribe function."""
        entry = (types, callback)
        self._callbacks.append(entry)
        self._routes.clear()

        def unsubscribe() -> None:
            if entry in self._callbacks:
                self._callbacks.remove(entry)
                self._routes.clear()

        return unsubscribe

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs) + len(self._callbacks)
