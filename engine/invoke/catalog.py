"""Resolving "function id or name" to a runnable spec without a database round trip on the hot path.
Entries are dropped when this node hears FunctionChanged and expire after a few seconds regardless,
which bounds staleness when another node changed the function."""

from __future__ import annotations

import time
from dataclasses import dataclass

from data.models import Function, FunctionVersion
from engine.bus import LocalBus
from engine.events import Event, FunctionChanged
from engine.principal import SYSTEM
from engine.runtimes.base import FunctionSpec
from engine.services.functions import FunctionService

TTL_SEC = 5.0


@dataclass(frozen=True, slots=True)
class Resolved:
    function: Function
    spec: FunctionSpec


class Catalog:
    def __init__(self, functions: FunctionService, bus: LocalBus) -> None:
        self._functions = functions
        self._entries: dict[tuple[str, str], tuple[float, Resolved]] = {}
        self._unsubscribe = bus.on(FunctionChanged, callback=self._forget)

    async def resolve(self, ref: str, version: str | None = None) -> Resolved:
        key = (ref, version or "$LATEST")
        hit = self._entries.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < TTL_SEC:
            return hit[1]
        fn = await self._functions.get(SYSTEM, ref)
        published: FunctionVersion | None = None
        if version and version != "$LATEST":
            published = await self._functions.version(SYSTEM, fn.id, _version_number(version))
        resolved = Resolved(fn, await self._functions.spec(fn, published))
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (now, resolved)
        return resolved

    def _forget(self, event: Event) -> None:
        assert isinstance(event, FunctionChanged)
        for key in [k for k, (_, r) in self._entries.items() if r.function.id == event.function_id]:
            del self._entries[key]

    def close(self) -> None:
        self._unsubscribe()


def _version_number(text: str) -> int:
    from engine.errors import Invalid

    try:
        number = int(text)
    except ValueError:
        raise Invalid("version", f"version must be a number or $LATEST, not {text!r}") from None
    if number < 1:
        raise Invalid("version", "version numbers start at 1")
    return number
