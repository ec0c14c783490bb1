"""Keeping functions warm: each function's `min_warm` workers are started when Nimbus starts and again
whenever the function changes (an update retires the old workers); the pool's reaper keeps the floor
afterwards. Failures are logged, never fatal: a function that cannot load cannot be kept warm."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engine.bus import LocalBus
from engine.errors import NimbusError
from engine.events import Event, FunctionChanged
from engine.invoke.catalog import Catalog
from engine.pool import WorkerPool
from engine.services.functions import FunctionService

log = logging.getLogger("nimbus.prewarm")


class Prewarmer:
    def __init__(self, functions: FunctionService, catalog: Catalog, pool: WorkerPool, bus: LocalBus) -> None:
        self._functions = functions
        self._catalog = catalog
        self._pool = pool
        self._bus = bus
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: Any = None

    async def start(self) -> None:
        self._unsubscribe = self._bus.on(FunctionChanged, callback=self._changed)
        for function_id in await self._functions.kept_warm():
            self._schedule(function_id)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def settled(self) -> None:
        """Wait for the prewarms started so far (tests, benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _changed(self, event: Event) -> None:
        assert isinstance(event, FunctionChanged)
        if event.action in ("created", "updated", "online", "rolled_back"):
            self._schedule(event.function_id)

    def _schedule(self, function_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._warm(function_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _warm(self, function_id: str) -> None:
        try:
            resolved = await self._catalog.resolve(function_id)
            fn = resolved.function
            if fn.min_warm > 0 and fn.status == "active":
                started = await self._pool.prewarm(resolved.spec, fn.min_warm)
                log.info("kept %s warm: %d worker(s) started", fn.name, started)
        except NimbusError as exc:
            log.warning("could not keep function %s warm: %s", function_id, exc.message)
        except Exception as exc:  # an InitError or a spawn failure: say why, keep serving
            log.warning("could not keep function %s warm: %s", function_id, exc)
