"""The worker pool reuses warm workers, reports cold starts, enforces the concurrency caps with a bounded
wait, reaps idle workers after keep-alive, keeps prewarmed ones, and retires a function's workers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from engine.errors import QuotaExceeded, Unavailable
from engine.pool import WorkerPool
from engine.runtimes.python import PythonRuntime
from tests.engine.runtime_fixtures import *  # noqa: F403
from tests.engine.runtime_fixtures import ctx, make_settings, spec

ECHO = "def handler(event, context):\n    return event\n"
SLEEPY = "import time\ndef handler(event, context):\n    time.sleep(event)\n    return event\n"


async def started_pool(tmp_path: Path, **overrides: object) -> WorkerPool:
    s = make_settings(tmp_path, **overrides)
    wp = WorkerPool(s, {"python": PythonRuntime(s)})
    await wp.start()
    return wp


async def test_second_invocation_reuses_the_warm_worker(pool: WorkerPool) -> None:
    fn = spec(ECHO)
    first = await pool.invoke(fn, 1, ctx())
    second = await pool.invoke(fn, 2, ctx())
    assert first.cold and first.init_ms is not None and first.init_ms > 0
    assert not second.cold and second.init_ms is None and second.result == 2
    stats = pool.stats()[fn.pool_key]
    assert (stats["idle"], stats["busy"], stats["spawned"], stats["cold_starts"]) == (1, 0, 1, 1)


async def test_init_error_is_a_failed_cold_result(pool: WorkerPool) -> None:
    res = await pool.invoke(spec("def handler(:\n"), None, ctx())
    assert res.status == "failed" and res.cold and res.init_ms is not None
    assert res.error is not None and res.error.type == "SyntaxError"


async def test_dead_worker_is_replaced_by_a_cold_one(pool: WorkerPool) -> None:
    fn = spec(
        "import os\ndef handler(event, context):\n    if event:\n        os._exit(1)\n    return 'ok'\n"
    )
    crashed = await pool.invoke(fn, True, ctx())
    after = await pool.invoke(fn, False, ctx())
    assert crashed.status == "failed" and after.result == "ok" and after.cold
    assert pool.stats()[fn.pool_key]["spawned"] == 2


async def test_function_cap_rejects_excess_when_nobody_may_wait(tmp_path: Path) -> None:
    wp = await started_pool(tmp_path, max_waiting=0)
    fn = spec(SLEEPY, name="capped", max_concurrency=1)
    try:
        running = asyncio.create_task(wp.invoke(fn, 0.5, ctx()))
        await asyncio.sleep(0.1)
        with pytest.raises(QuotaExceeded, match="too many concurrent invocations of capped"):
            await wp.invoke(fn, 0, ctx())
        assert (await running).result == 0.5
    finally:
        await wp.stop()


async def test_waiting_invocation_gives_up_after_the_wait_timeout(tmp_path: Path) -> None:
    wp = await started_pool(tmp_path, max_waiting=5, wait_timeout_sec=0.2)
    fn = spec(SLEEPY, name="slow", max_concurrency=1)
    try:
        running = asyncio.create_task(wp.invoke(fn, 1.0, ctx()))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(QuotaExceeded):
            await wp.invoke(fn, 0, ctx())
        assert 0.15 < time.monotonic() - started < 0.5
        await running
    finally:
        await wp.stop()


async def test_global_cap_queues_invocations_and_runs_them_in_turn(tmp_path: Path) -> None:
    wp = await started_pool(tmp_path, max_concurrency=1, max_waiting=5, wait_timeout_sec=5)
    fn = spec(SLEEPY)
    try:
        await wp.prewarm(fn, 1)
        started = time.monotonic()
        results = await asyncio.gather(*(wp.invoke(fn, 0.2, ctx()) for _ in range(3)))
        elapsed = time.monotonic() - started
    finally:
        await wp.stop()
    assert [r.result for r in results] == [0.2, 0.2, 0.2]
    assert elapsed >= 0.6  # one at a time
    assert sum(r.cold for r in results) == 0  # the single warm worker served all three


async def test_idle_workers_are_reaped_after_keep_alive(tmp_path: Path) -> None:
    wp = await started_pool(tmp_path, keep_alive_sec=0.2)
    fn = spec(ECHO)
    try:
        assert (await wp.invoke(fn, 1, ctx())).cold
        await asyncio.sleep(0.6)
        assert fn.pool_key not in wp.stats()  # its worker was closed, then the empty pool forgotten
        assert (await wp.invoke(fn, 2, ctx())).cold
    finally:
        await wp.stop()


async def test_prewarmed_workers_survive_keep_alive_and_serve_warm(tmp_path: Path) -> None:
    wp = await started_pool(tmp_path, keep_alive_sec=0.2)
    fn = spec(ECHO, min_warm=2)
    try:
        assert await wp.prewarm(fn, fn.min_warm) == 2
        assert wp.stats()[fn.pool_key]["idle"] == 2
        await asyncio.sleep(0.6)
        assert wp.stats()[fn.pool_key]["idle"] == 2
        res = await wp.invoke(fn, 1, ctx())
        assert not res.cold and wp.stats()[fn.pool_key]["cold_starts"] == 0
    finally:
        await wp.stop()


async def test_retire_closes_a_functions_workers(pool: WorkerPool) -> None:
    fn, other = spec(ECHO), spec(ECHO)
    await pool.invoke(fn, 1, ctx())
    await pool.invoke(other, 1, ctx())
    assert await pool.retire(fn.function_id) == 1
    assert fn.pool_key not in pool.stats() and pool.stats()[other.pool_key]["idle"] == 1
    assert (await pool.invoke(fn, 1, ctx())).cold


async def test_worker_busy_during_retire_is_not_returned_to_the_pool(pool: WorkerPool) -> None:
    fn = spec(SLEEPY)
    running = asyncio.create_task(pool.invoke(fn, 0.3, ctx()))
    await asyncio.sleep(0.15)
    await pool.retire(fn.function_id)
    assert (await running).result == 0.3
    assert fn.pool_key not in pool.stats()
    assert (await pool.invoke(fn, 0, ctx())).cold


async def test_cancelled_invocation_kills_its_worker(pool: WorkerPool) -> None:
    fn = spec(SLEEPY)
    task = asyncio.create_task(pool.invoke(fn, 5, ctx()))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = pool.stats()[fn.pool_key]
    assert stats["idle"] == 0 and stats["busy"] == 0
    assert (await pool.invoke(fn, 0, ctx())).cold


async def test_unknown_runtime_is_unavailable(pool: WorkerPool) -> None:
    with pytest.raises(Unavailable):
        await pool.invoke(spec(ECHO, runtime="cobol"), None, ctx())
