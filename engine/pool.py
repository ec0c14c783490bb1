"""Warm worker pools, one per `FunctionSpec.pool_key` (function, version, code, limits, env). Owns: reusing
warm workers (cold start only when none is idle), concurrency caps, keep-alive reaping, prewarming and
retiring a function's workers.

Decisions the callers rely on:
- A cold spawn whose user code cannot load (InitError: syntax error, bad import, missing handler, init
  timeout, crash while importing) is returned as an ExecResult: status="failed", error = the user's
  ErrorInfo (type "SyntaxError", "ModuleNotFoundError", "HandlerNotFound", "InitTimeout", ...), logs = what
  the import printed, cold=True, init_ms set. Nothing is cached: the next invocation tries again.
- A platform failure (no runtime for the language, zygote or sandbox broken) raises engine.errors.Unavailable.
- Caps: the function's own cap (spec.max_concurrency, 0 = none) is taken first, then the platform's
  (settings.max_concurrency). A caller that finds no free slot waits, but at most settings.max_waiting callers
  wait at once, each at most settings.wait_timeout_sec; beyond either, QuotaExceeded("too many concurrent
  invocations of <name>").
- A worker goes back to the idle list only if it is alive and its function was not retired meanwhile; a
  caller cancelled mid-invocation kills its worker (a late result would desynchronise the protocol).
- Idle workers older than settings.keep_alive_sec are closed by the reaper, except the freshest `count` kept
  by prewarm(spec, count), which the reaper also tops up when one dies."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from engine.config import Settings
from engine.errors import QuotaExceeded, Unavailable
from engine.runtimes.base import ExecResult, FunctionSpec, InitError, InvokeContext, Runtime, Worker

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Idle:
    worker: Worker
    since: float


@dataclass(slots=True)
class _Pool:
    spec: FunctionSpec
    idle: list[_Idle] = field(default_factory=list)  # oldest first; taken from the end (warmest)
    busy: int = 0
    spawning: int = 0
    spawned: int = 0
    cold_starts: int = 0
    invocations: int = 0
    min_warm: int = 0
    last_used: float = field(default_factory=time.monotonic)


class WorkerPool:
    def __init__(self, settings: Settings, runtimes: dict[str, Runtime]) -> None:
        self.settings = settings
        self.runtimes = runtimes
        # Runtimes for FunctionSpec.executor other than "process" (the platform adds "docker").
        self.executors: dict[str, Runtime] = {}
        self._pools: dict[str, _Pool] = {}
        self._global = asyncio.Semaphore(settings.max_concurrency)
        self._global_limit = settings.max_concurrency
        self._per_function: dict[str, tuple[int, asyncio.Semaphore]] = {}
        self._waiting = 0
        self._generation: dict[str, int] = {}  # function id -> bumped by retire()
        self._born: dict[int, tuple[str, int]] = {}  # id(worker) -> (function id, generation)
        self._workers: set[Worker] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        for runtime in [*self.runtimes.values(), *self.executors.values()]:
            await runtime.start()
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_loop(), name="worker-pool-reaper")

    async def stop(self) -> None:
        self._stopping = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        workers, self._workers = list(self._workers), set()
        for pool in self._pools.values():
            pool.idle.clear()
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        for runtime in [*self.runtimes.values(), *self.executors.values()]:
            await runtime.stop()

    # -- invocation -----------------------------------------------------------------------------------------

    async def invoke(self, spec: FunctionSpec, event: Any, ctx: InvokeContext) -> ExecResult:
        runtime = self._runtime(spec)
        held = await self._slot(spec)
        try:
            pool = self._pool(spec)
            pool.invocations += 1
            worker = await self._take_idle(pool)
            cold = worker is None
            if worker is None:
                try:
                    worker = await self._spawn(pool, runtime)
                except InitError as exc:
                    return ExecResult("failed", error=exc.info, logs=exc.logs, cold=True, init_ms=exc.init_ms)
                pool.cold_starts += 1
            pool.busy += 1
            try:
                result = await worker.invoke(event, ctx)
            except BaseException:
                await self._discard(worker)
                raise
            finally:
                pool.busy -= 1
            await self._release(pool, worker)
        finally:
            for sem in held:
                sem.release()
        if cold:
            result = dataclasses.replace(result, cold=True, init_ms=worker.init_ms)
        return result

    async def _slot(self, spec: FunctionSpec) -> list[asyncio.Semaphore]:
        """Take the function's and the platform's concurrency slots (waiting, bounded, for a free one);
        returns what to release, innermost first."""
        deadline = time.monotonic() + self.settings.wait_timeout_sec
        held: list[asyncio.Semaphore] = []
        try:
            for sem in (self._function_cap(spec), self._global):
                if sem is None:
                    continue
                if sem.locked():
                    await self._wait(sem, spec, deadline)
                else:
                    await sem.acquire()  # free: returns without suspending
                held.insert(0, sem)
        except BaseException:
            for sem in held:
                sem.release()
            raise
        return held

    async def _wait(self, sem: asyncio.Semaphore, spec: FunctionSpec, deadline: float) -> None:
        if self._waiting >= self.settings.max_waiting:
            raise QuotaExceeded(f"too many concurrent invocations of {spec.name}")
        self._waiting += 1
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await sem.acquire()
        except TimeoutError:
            raise QuotaExceeded(f"too many concurrent invocations of {spec.name}") from None
        finally:
            self._waiting -= 1

    def set_max_concurrency(self, limit: int) -> None:
        """Change the platform-wide cap live (the max_concurrency setting): new callers take slots of a
        semaphore of the new size; invocations already running release into the old one."""
        if limit != self._global_limit:
            self._global, self._global_limit = asyncio.Semaphore(limit), limit

    @property
    def max_concurrency(self) -> int:
        return self._global_limit

    def _function_cap(self, spec: FunctionSpec) -> asyncio.Semaphore | None:
        if spec.max_concurrency <= 0:
            return None
        limit, sem = self._per_function.get(spec.function_id, (0, None))
        if sem is None or limit != spec.max_concurrency:
            # A changed limit takes effect for new callers; holders release into the old semaphore.
            sem = asyncio.Semaphore(spec.max_concurrency)
            self._per_function[spec.function_id] = (spec.max_concurrency, sem)
        return sem

    # -- workers --------------------------------------------------------------------------------------------

    def _runtime(self, spec: FunctionSpec) -> Runtime:
        if spec.executor not in ("", "process"):
            executor = self.executors.get(spec.executor)
            if executor is None:
                raise Unavailable(f"executor {spec.executor!r} is not available on this node")
            return executor
        runtime = self.runtimes.get(spec.runtime)
        if runtime is None:
            raise Unavailable(f"runtime {spec.runtime!r} is not available on this node")
        return runtime

    def _pool(self, spec: FunctionSpec) -> _Pool:
        pool = self._pools.get(spec.pool_key)
        if pool is None:
            pool = self._pools[spec.pool_key] = _Pool(spec)
        return pool

    async def _take_idle(self, pool: _Pool) -> Worker | None:
        while pool.idle:
            worker = pool.idle.pop().worker
            if worker.alive:
                return worker
            await self._discard(worker)  # died while idle (e.g. its zygote restarted)
        return None

    async def _spawn(self, pool: _Pool, runtime: Runtime) -> Worker:
        pool.spawning += 1
        try:
            worker = await runtime.spawn(pool.spec)
        finally:
            pool.spawning -= 1
        pool.spawned += 1
        fid = pool.spec.function_id
        self._born[id(worker)] = (fid, self._generation.get(fid, 0))
        self._workers.add(worker)
        return worker

    async def _release(self, pool: _Pool, worker: Worker) -> None:
        fid, gen = self._born.get(id(worker), ("", -1))
        current = self._generation.get(fid, 0) == gen and self._pools.get(pool.spec.pool_key) is pool
        pool.last_used = time.monotonic()
        if worker.alive and current and not self._stopping:
            pool.idle.append(_Idle(worker, pool.last_used))
        else:
            await self._discard(worker)

    async def _discard(self, worker: Worker) -> None:
        self._forget(worker)
        await worker.close()

    def _forget(self, worker: Worker) -> None:
        self._workers.discard(worker)
        self._born.pop(id(worker), None)

    # -- keep-alive, prewarm, retire ------------------------------------------------------------------------

    async def prewarm(self, spec: FunctionSpec, count: int) -> int:
        """Keep at least `count` idle workers for `spec` (now and, via the reaper, later); returns how many
        were started. InitError propagates: a function that cannot load cannot be kept warm."""
        runtime = self._runtime(spec)
        pool = self._pool(spec)
        pool.min_warm = max(0, count)
        missing = pool.min_warm - sum(1 for i in pool.idle if i.worker.alive) - pool.spawning
        if missing <= 0:
            return 0
        results = await asyncio.gather(
            *(self._spawn(pool, runtime) for _ in range(missing)), return_exceptions=True
        )
        started = 0
        for res in results:
            if isinstance(res, BaseException):
                continue
            await self._release(pool, res)
            started += 1
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            pool.min_warm = 0
            raise errors[0]
        return started

    async def retire(self, function_id: str) -> int:
        """Close every idle worker of a function and forget its pools (it was updated or deleted). Busy
        workers finish their invocation and are closed instead of returning to the idle list."""
        self._generation[function_id] = self._generation.get(function_id, 0) + 1
        self._per_function.pop(function_id, None)
        closing: list[Worker] = []
        for key, pool in list(self._pools.items()):
            if pool.spec.function_id == function_id:
                closing += [i.worker for i in pool.idle]
                pool.idle.clear()
                pool.min_warm = 0
                del self._pools[key]
        for worker in closing:
            await self._discard(worker)
        return len(closing)

    async def reap_idle(self) -> int:
        """Close idle workers past keep-alive (keeping each pool's prewarm floor) and dead ones; forget
        pools left empty for a keep-alive period (old versions, changed env)."""
        now, closing = time.monotonic(), []
        for pool in self._pools.values():
            alive = [i for i in pool.idle if i.worker.alive]
            closing += [i.worker for i in pool.idle if not i.worker.alive]
            spare = max(0, len(alive) - pool.min_warm)
            expired = [i for i in alive if now - i.since >= self.settings.keep_alive_sec][:spare]
            closing += [i.worker for i in expired]
            gone = {id(i) for i in expired}
            pool.idle = [i for i in alive if id(i) not in gone]
        for key, pool in list(self._pools.items()):
            empty = not (pool.idle or pool.busy or pool.spawning or pool.min_warm)
            if empty and now - pool.last_used >= self.settings.keep_alive_sec:
                del self._pools[key]
        for worker in closing:
            await self._discard(worker)
        return len(closing)

    async def _refill(self) -> None:
        for pool in list(self._pools.values()):
            if pool.min_warm and len(pool.idle) + pool.spawning < pool.min_warm:
                try:
                    await self.prewarm(pool.spec, pool.min_warm)
                except Exception as exc:  # the floor is dropped by prewarm; say why once
                    log.warning("could not keep %s warm: %s", pool.spec.name, exc)

    async def _reap_loop(self) -> None:
        interval = min(5.0, max(0.05, self.settings.keep_alive_sec / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap_idle()
                await self._refill()
            except Exception:
                log.exception("worker pool reaper failed")

    # -- observation ----------------------------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        return {
            key: {
                "function_id": p.spec.function_id,
                "name": p.spec.name,
                "version": p.spec.version,
                "runtime": p.spec.runtime,
                "idle": len(p.idle),
                "busy": p.busy,
                "spawning": p.spawning,
                "spawned": p.spawned,
                "cold_starts": p.cold_starts,
                "invocations": p.invocations,
                "min_warm": p.min_warm,
            }
            for key, p in self._pools.items()
        }

    @property
    def waiting(self) -> int:
        return self._waiting
