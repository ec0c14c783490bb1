"""The threads the WASM runtime runs on: a small pool that runs invocations off the event loop, and the
epoch ticker that gives them a wall clock. A dedicated pool rather than a ThreadPoolExecutor: a job hands
its result to the loop first and frees its Store after (dropping a Store costs ~40 µs that the caller
need not wait for), and a plain queue hand-off is cheaper than an executor's."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import wasmtime

T = TypeVar("T")
LINGER_SEC = 1.0  # the ticker keeps ticking this long after the last invocation

# A job returns (its result, whatever it wants freed once the result is delivered).
Job = Callable[[], tuple[T, Any]]


class Ticker:
    """Advances the engine's epoch every `period` while invocations run, and for LINGER_SEC after the last
    one (so a busy node does not wake the thread per invocation); sleeps otherwise."""

    def __init__(self, engine: wasmtime.Engine, period: float) -> None:
        self._engine = engine
        self._period = period
        self._cond = threading.Condition()
        self._active = 0
        self._last_exit = 0.0
        self._asleep = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            self._stopping = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="wasm-epoch", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Ends the thread once no invocation runs (a running guest still needs its deadline)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def __enter__(self) -> None:
        with self._cond:
            self._active += 1
            if self._asleep:
                self._cond.notify()

    def __exit__(self, *_: object) -> None:
        with self._cond:
            self._active -= 1
            self._last_exit = time.monotonic()

    def _loop(self) -> None:
        # Ticks follow the clock, not the sleeps: a sleep that overruns (they do, by a few ms under load)
        # is made up with extra ticks, so N ticks are N periods of wall time.
        next_at = time.monotonic() + self._period
        while True:
            with self._cond:
                if self._stopping and not self._active:
                    return
                if not self._active and time.monotonic() - self._last_exit > LINGER_SEC:
                    self._asleep = True
                    while not self._active and not self._stopping:
                        self._cond.wait()
                    self._asleep = False
                    next_at = time.monotonic() + self._period  # a fresh count from now
                    continue
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            while next_at <= now:
                self._engine.increment_epoch()
                next_at += self._period


class InvocationThreads:
    """`size` threads taking jobs from one queue; each job runs inside the ticker's active window."""

    def __init__(self, size: int, ticker: Ticker) -> None:
        self.size = size
        self._ticker = ticker
        self._queue: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Job[Any]] | None]
        self._queue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def start(self) -> None:
        if self._threads:
            return
        self._ticker.start()
        for i in range(self.size):
            thread = threading.Thread(target=self._work, name=f"wasm-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Threads end after the job they run (its deadline bounds it); queued jobs still run first."""
        for _ in self._threads:
            self._queue.put(None)
        self._threads = []
        self._ticker.stop()

    def submit(self, job: Job[T]) -> asyncio.Future[T]:
        self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, job))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            loop, future, job = item
            garbage: Any = None
            error: BaseException | None = None
            result: Any = None
            with self._ticker:
                try:
                    result, garbage = job()
                except BaseException as exc:  # handed to the caller, never lost in this thread
                    error = exc
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(_settle, future, result, error)
            del garbage  # freed now that the caller has its result


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled or timed out)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
