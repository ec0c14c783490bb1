"""Runs accepted async invocations: claims jobs from the durable queue under a lease, runs them,
retries with exponential backoff per the function's policy, and after the last attempt hands the job
to the DLQ with every attempt's error. A job whose lease expired (its node died) is claimed again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from data.batcher import Batcher
from data.db import Database
from data.models import DeadLetter, Invocation, InvocationAttempt, InvocationLog, QueueJob
from data.types import new_id, utcnow
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import NotFound, QuotaExceeded
from engine.events import DlqChanged, InvocationFinished, InvocationLogged, InvocationStarted
from engine.invoke.backoff import backoff_delay
from engine.invoke.catalog import Catalog
from engine.invoke.records import invocation_values, store_body
from engine.pool import WorkerPool
from engine.queue import JobQueue
from engine.runtimes.base import ErrorInfo, ExecResult, InvokeContext

log = logging.getLogger("nimbus.queue")


class QueueConsumer:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: LocalBus,
        batcher: Batcher,
        pool: WorkerPool,
        catalog: Catalog,
        queue: JobQueue,
    ) -> None:
        self._settings = settings
        self._db = db
        self._bus = bus
        self._batcher = batcher
        self._pool = pool
        self._catalog = catalog
        self._queue = queue
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        if self._db.is_sqlite:
            # A SQLite database has exactly one node: whatever it left running died with it.
            async with self._db.transaction() as session:
                await session.execute(update(QueueJob).where(QueueJob.status == "running")
                                      .values(status="queued", lease_owner=None, lease_expires_at=None))
        self._tasks = [asyncio.create_task(self._dispatch(), name="nimbus-queue-dispatch"),
                       asyncio.create_task(self._heartbeat(), name="nimbus-queue-heartbeat")]

    async def stop(self, grace_sec: float = 5.0) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._running:
            _, pending = await asyncio.wait(list(self._running.values()), timeout=grace_sec)
            for task in pending:  # their leases expire and another start picks them up
                task.cancel()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    # --- loops ------------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        owner = self._settings.node_id
        while not self._stopping:
            free = self._settings.queue_workers - len(self._running)
            jobs: list[QueueJob] = []
            if free > 0:
                try:
                    async with self._db.transaction() as session:
                        jobs = await self._queue.claim(session, owner, free, self._settings.lease_sec)
                except Exception:
                    log.exception("claiming queued jobs failed; retrying")
                    await asyncio.sleep(1)
                    continue
            for job in jobs:
                task = asyncio.create_task(self._run(job), name=f"nimbus-job-{job.id}")
                self._running[job.id] = task
                task.add_done_callback(lambda _t, jid=job.id: self._running.pop(jid, None))
            if not jobs or free <= len(jobs):
                await self._queue.wait(self._settings.poll_interval_sec)

    async def _heartbeat(self) -> None:
        interval = max(0.5, self._settings.lease_sec / 3)
        while True:
            await asyncio.sleep(interval)
            ids = list(self._running)
            if not ids:
                continue
            try:
                async with self._db.transaction() as session:
                    for job_id in ids:
                        await self._queue.extend(session, job_id, self._settings.node_id, self._settings.lease_sec)
            except Exception:
                log.exception("extending leases failed")

    # --- one job ----------------------------------------------------------------------------------

    async def _run(self, job: QueueJob) -> None:
        try:
            await self._run_job(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s failed inside the platform; it will be retried after its lease", job.id)

    async def _run_job(self, job: QueueJob) -> None:
        owner = self._settings.node_id
        event = (job.payload or {}).get("event")
        try:
            resolved = await self._catalog.resolve(job.function_id)
        except NotFound:
            result = _failure("FunctionNotFound", "the function was deleted before this invocation ran")
            await self._settle(job, None, result, utcnow(), final=True, to_dlq=False)
            return
        fn, spec = resolved.function, resolved.spec
        started = utcnow()
        self._bus.publish(InvocationStarted(invocation_id=job.invocation_id, function_id=fn.id,
                                            function_name=fn.name, source=job.source, attempt=job.attempt))
        # The attempt is on record before it runs: if this node dies mid-run, the next claim marks it
        # abandoned, so a job that ran twice shows both runs.
        await self._batcher.commit(_start_attempt(job, started, self._settings.node_id))
        if fn.status != "active":
            result = _failure("FunctionOffline", f"function is not active, current status: {fn.status}")
        else:
            ctx = InvokeContext(request_id=job.invocation_id, source=job.source, timeout_sec=spec.timeout_sec,
                                trace_id=job.invocation_id, attempt=job.attempt)
            try:
                result = await self._pool.invoke(spec, event, ctx)
            except QuotaExceeded:
                # Throttled, not failed: put it back without spending an attempt.
                await self._batcher.commit(_requeue(job, owner))
                return
        final = result.ok or job.attempt >= job.max_attempts
        await self._settle(job, fn, result, started, final=final, to_dlq=not result.ok)

    async def _settle(self, job: QueueJob, fn: Any, result: ExecResult, started: Any, *, final: bool,
                      to_dlq: bool) -> None:
        owner = self._settings.node_id
        ended = utcnow()
        memory_mb = fn.memory_mb if fn is not None else 128
        output = store_body(result.result if result.ok else None, limit=self._settings.inline_body_bytes,
                            spill_dir=self._settings.data_dir / "bodies", name=f"{job.invocation_id}.output")
        values = invocation_values(result=result, memory_mb=memory_mb, started_at=started, ended_at=ended,
                                   output=output)
        values["attempt"] = job.attempt
        error = result.error.to_dict() if result.error else None
        attempt_values = {
            "status": result.status, "error_type": error["type"] if error else None,
            "error_message": error["message"] if error else None, "cold": result.cold,
            "duration_ms": values["duration_ms"], "ended_at": ended,
        }
        logs = [] if not result.logs else [{
            "id": new_id(), "invocation_id": job.invocation_id, "function_id": job.function_id,
            "attempt": job.attempt, "level": "info" if result.ok else "error", "message": result.logs,
            "truncated": result.logs_truncated, "created_at": ended,
        }]
        name = fn.name if fn is not None else ""
        events: list[Any] = [InvocationLogged(invocation_id=job.invocation_id, function_id=job.function_id,
                                              function_name=name, level=row["level"], message=row["message"])
                             for row in logs]
        retry_at = None
        if not final:
            delay = backoff_delay(job.attempt, fn.retry_backoff_ms, fn.retry_backoff_max_ms, jitter=True)
            retry_at = ended + timedelta(seconds=delay)
            values["status"] = "pending"  # another attempt is scheduled
        attempt_error = {"attempt": job.attempt, **(error or {}), "started_at": started.isoformat(),
                         "ended_at": ended.isoformat()}
        events.append(InvocationFinished(
            invocation_id=job.invocation_id, function_id=job.function_id, function_name=name, source=job.source,
            status=result.status, duration_ms=values["duration_ms"], cold=result.cold, attempt=job.attempt,
            final=final,
        ))
        dlq_id = new_id()
        queue = self._queue

        async def write(session: AsyncSession) -> None:
            await session.execute(update(InvocationAttempt).where(
                InvocationAttempt.invocation_id == job.invocation_id, InvocationAttempt.attempt == job.attempt)
                .values(**attempt_values))
            if logs:
                await session.execute(insert(InvocationLog), logs)
            await session.execute(update(Invocation).where(Invocation.id == job.invocation_id).values(**values))
            if not final:
                await queue.retry_later(session, job.id, owner, retry_at, attempt_error)
                return
            if not result.ok and to_dlq:
                buried = await queue.bury(session, job.id, owner)
                if buried is not None:
                    await session.execute(insert(DeadLetter), [{
                        "id": dlq_id, "function_id": job.function_id, "function_name": name,
                        "original_request_id": job.invocation_id, "payload": (buried.payload or {}).get("event"),
                        "error": (error or {}).get("message", ""), "attempts": [*buried.errors, attempt_error],
                        "retry_count": 0, "status": "pending", "source": job.source, "created_at": ended,
                    }])
                    events.append(DlqChanged(message_id=dlq_id, function_id=job.function_id, status="pending"))
                return
            await queue.complete(session, job.id, owner)

        await self._batcher.commit(write, on_commit=lambda: [self._bus.publish(e) for e in events])


def _failure(kind: str, message: str) -> ExecResult:
    return ExecResult(status="failed", error=ErrorInfo(kind, message))


def _start_attempt(job: QueueJob, started: Any, node: str) -> Any:
    async def write(session: AsyncSession) -> None:
        await session.execute(
            update(InvocationAttempt)
            .where(InvocationAttempt.invocation_id == job.invocation_id, InvocationAttempt.status == "running")
            .values(status="abandoned", error_type="NodeLost",
                    error_message="the node running this attempt stopped before it finished")
        )
        await session.execute(delete(InvocationAttempt).where(
            InvocationAttempt.invocation_id == job.invocation_id, InvocationAttempt.attempt == job.attempt))
        await session.execute(insert(InvocationAttempt), [{
            "id": new_id(), "invocation_id": job.invocation_id, "attempt": job.attempt, "status": "running",
            "started_at": started,
        }])
        await session.execute(update(Invocation).where(Invocation.id == job.invocation_id)
                              .values(status="running", attempt=job.attempt, started_at=started, node=node))
    return write


def _requeue(job: QueueJob, owner: str) -> Any:
    async def write(session: AsyncSession) -> None:
        await session.execute(update(QueueJob).where(QueueJob.id == job.id, QueueJob.lease_owner == owner)
                              .values(status="queued", attempt=QueueJob.attempt - 1, lease_owner=None,
                                      lease_expires_at=None, run_at=utcnow() + timedelta(seconds=0.5)))
    return write
