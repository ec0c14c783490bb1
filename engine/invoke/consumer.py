"""Runs accepted async invocations: claims jobs from the durable queue under a lease, runs them,
retries with exponential backoff per the function's policy, and after the last attempt hands the job
to the DLQ with every attempt's error. A job whose lease expired (its node died) is claimed again.

Every attempt is on record: the claim transaction counts it in the job's `attempt`, under this node's
lease. An attempt is written once, when it ends (its attempt row, and the invocation row's outcome),
unless it is still running after RUNNING_MARK_AFTER_SEC: then the invocation row says running and a
running attempt row appears while it runs. Most async work is short, and writing the start of every
attempt was two of the seven row writes an invocation cost. If the node dies mid-run, the next claim
marks the attempt abandoned (inserting its row when it had none), so a job that ran twice shows both
runs. Successes are settled in batches (one transaction for many jobs)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from data.batcher import Batcher
from data.bulk import update_many, upsert_many
from data.db import Database
from data.models import DeadLetter, Invocation, InvocationAttempt, InvocationLog, QueueJob
from data.types import new_id, utcnow
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import NotFound, QuotaExceeded
from engine.events import DlqChanged, Event, InvocationFinished, InvocationLogged, InvocationStarted
from engine.invoke.backoff import backoff_delay
from engine.invoke.catalog import Catalog
from engine.invoke.records import invocation_values, log_rows, store_body
from engine.pool import WorkerPool
from engine.queue import ClaimedJob, JobQueue
from engine.runtimes.base import ErrorInfo, ExecResult, InvokeContext
from engine.services.deployments import NotDeployed

log = logging.getLogger("nimbus.queue")

_inv = Invocation.__table__  # type: ignore[attr-defined]
_att = InvocationAttempt.__table__  # type: ignore[attr-defined]
RUNNING_MARK_AFTER_SEC = 0.1
# The invocation row says running, unless this attempt (or a later one) has already been settled on it.
_MARK_RUNNING = (
    update(_inv)
    .where(_inv.c.id == bindparam("_id"), _inv.c.attempt < bindparam("_attempt"))
    .values(
        status="running",
        attempt=bindparam("_attempt"),
        started_at=bindparam("_started"),
        node=bindparam("_node"),
    )
)
_ATTEMPT_KEY = ("invocation_id", "attempt")  # unique: one row per attempt of an invocation
_ATTEMPT_END = ("status", "error_type", "error_message", "cold", "duration_ms", "started_at", "ended_at")


@dataclass(slots=True)
class _Claimed:
    job: ClaimedJob
    attempt_id: str
    started: datetime


@dataclass(slots=True)
class _Settled:
    """One finished attempt, as rows to write and events to publish after they commit."""

    claimed: _Claimed
    invocation: dict[str, Any]
    attempt: dict[str, Any]
    logs: list[dict[str, Any]]
    events: list[Event]


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
        self._owner = settings.node_id
        self._spill = settings.data_dir / "bodies"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._slot_freed = asyncio.Event()
        self._successes: list[_Settled] = []
        self._ready: collections.deque[_Claimed] = collections.deque()
        self._stopping = False

    async def start(self) -> None:
        if self._db.is_sqlite:
            # A SQLite database has exactly one node: whatever it left running died with it.
            async with self._db.transaction() as session:
                await session.execute(
                    update(QueueJob)
                    .where(QueueJob.status == "running")
                    .values(lease_expires_at=utcnow() - timedelta(seconds=1))
                )
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="nimbus-queue-dispatch"),
            asyncio.create_task(self._heartbeat(), name="nimbus-queue-heartbeat"),
        ]

    async def stop(self, grace_sec: float = 5.0) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._ready:  # claimed but never started: give them back without spending an attempt
            with contextlib.suppress(Exception):
                await self._batcher.commit(_requeue(self._ready.popleft(), self._owner))
        if self._running:
            _, pending = await asyncio.wait(list(self._running.values()), timeout=grace_sec)
            for task in pending:  # their leases expire and the next start picks them up
                task.cancel()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    # --- loops ------------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Keep up to `queue_workers` jobs running, and up to seven times as many claimed and ready, so one
        claim transaction serves many jobs rather than one per freed slot."""
        workers = self._settings.queue_workers
        ready = self._ready
        while not self._stopping:
            room = 8 * workers - len(self._running) - len(ready)
            claimed_now = 0
            if room > 0 and (room >= 2 * workers or not ready):
                try:
                    claimed = await self._claim(room)
                except Exception:
                    log.exception("claiming queued jobs failed; retrying")
                    await asyncio.sleep(1)
                    continue
                ready.extend(claimed)
                claimed_now = len(claimed)
            while ready and len(self._running) < workers:
                self._start(ready.popleft())
            if not ready and not claimed_now:
                await self._queue.wait(self._settings.poll_interval_sec)  # idle: an enqueue wakes us
            else:
                self._slot_freed.clear()
                await self._slot_freed.wait()

    def _start(self, item: _Claimed) -> None:
        task = asyncio.create_task(self._run(item), name=f"nimbus-job-{item.job.id}")
        self._running[item.job.id] = task
        task.add_done_callback(lambda _t, jid=item.job.id: self._finished(jid))

    def _finished(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        self._slot_freed.set()

    async def _claim(self, limit: int) -> list[_Claimed]:
        """Claim jobs and put their attempts on record, in one transaction. It goes through the batcher,
        the single writer: on SQLite a second writer would wait out busy-timeout sleeps."""
        claimed: list[_Claimed] = []

        async def write(session: AsyncSession) -> None:
            claimed.clear()  # the batcher may run a write twice; only the committed run counts
            jobs = await self._queue.claim(session, self._owner, limit, self._settings.lease_sec)
            if not jobs:
                return
            now = utcnow()
            claimed.extend(_Claimed(job, new_id(), now) for job in jobs)
            again = [job for job in jobs if job.attempt > 1]
            if again:
                await _record_lost_attempts(session, again, now)

        await self._batcher.commit(write)
        return claimed

    async def _heartbeat(self) -> None:
        interval = max(0.5, self._settings.lease_sec / 3)
        while True:
            await asyncio.sleep(interval)
            ids = [*self._running, *(c.job.id for c in self._ready)]
            if not ids:
                continue
            try:
                await self._batcher.commit(self._extend_leases(ids))
            except Exception:
                log.exception("extending leases failed")

    def _extend_leases(self, ids: list[str]) -> Any:
        queue, owner, lease = self._queue, self._owner, self._settings.lease_sec

        async def extend(session: AsyncSession) -> None:
            for start in range(0, len(ids), 500):  # bounded IN lists
                await queue.extend_many(session, ids[start : start + 500], owner, lease)

        return extend

    # --- one job ----------------------------------------------------------------------------------

    async def _run(self, claimed: _Claimed) -> None:
        claimed.started = utcnow()
        mark = asyncio.get_running_loop().call_later(RUNNING_MARK_AFTER_SEC, self._mark_running, claimed)
        try:
            await self._run_job(claimed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s failed inside the platform; it runs again after its lease", claimed.job.id)
        finally:
            mark.cancel()

    def _mark_running(self, claimed: _Claimed) -> None:
        """Put a long attempt on record as running. Written behind (not awaited): the settle written
        after it wins, and one written before it (a batched success) makes it a no-op."""
        job, owner = claimed.job, self._owner
        attempt = {
            "id": claimed.attempt_id,
            "invocation_id": job.invocation_id,
            "attempt": job.attempt,
            "status": "running",
            "cold": False,
            "started_at": claimed.started,
        }
        running = {
            "_id": job.invocation_id,
            "_attempt": job.attempt,
            "_started": claimed.started,
            "_node": owner,
        }

        async def write(session: AsyncSession) -> None:
            await session.execute(_MARK_RUNNING, running)
            await upsert_many(session, _att, [attempt], key=_ATTEMPT_KEY)

        self._batcher.submit(write)

    async def _run_job(self, claimed: _Claimed) -> None:
        job = claimed.job
        payload = job.payload or {}
        try:
            # The environment (and the version deployed there) it was accepted for ride in the payload.
            resolved = await self._catalog.resolve(
                job.function_id, payload.get("version"), payload.get("environment")
            )
        except NotDeployed as exc:
            await self._settle(claimed, None, _failure("NotDeployed", exc.message), final=True)
            return
        except NotFound as exc:
            if exc.field == "environment":
                result = _failure("EnvironmentNotFound", exc.message)
            else:
                result = _failure("FunctionNotFound", "the function was deleted before this invocation ran")
            await self._settle(claimed, None, result, final=True)
            return
        fn, spec = resolved.function, resolved.spec
        if job.attempt > job.max_attempts:
            # Its earlier attempts died with their node (a job that kills its node must not loop forever).
            result = _failure("NodeLost", f"gave up: the last of {job.max_attempts} attempts never finished")
            await self._settle(claimed, fn, result, final=True)
            return
        self._bus.publish(
            InvocationStarted(
                invocation_id=job.invocation_id,
                function_id=fn.id,
                function_name=fn.name,
                source=job.source,
                attempt=job.attempt,
            )
        )
        if fn.status != "active":
            result = _failure("FunctionOffline", f"function is not active, current status: {fn.status}")
        else:
            ctx = InvokeContext(
                request_id=job.invocation_id,
                source=job.source,
                timeout_sec=spec.timeout_sec,
                trace_id=job.invocation_id,
                attempt=job.attempt,
            )
            try:
                result = await self._pool.invoke(spec, payload.get("event"), ctx)
            except QuotaExceeded:
                # Throttled, not failed: put it back without spending an attempt.
                await self._batcher.commit(_requeue(claimed, self._owner))
                return
        final = result.ok or job.attempt >= job.max_attempts
        await self._settle(claimed, fn, result, final=final, memory_mb=spec.memory_mb)

    async def _settle(
        self, claimed: _Claimed, fn: Any, result: ExecResult, *, final: bool, memory_mb: int | None = None
    ) -> None:
        job = claimed.job
        ended = utcnow()
        output = store_body(
            result.result if result.ok else None,
            limit=self._settings.inline_body_bytes,
            spill_dir=self._spill,
            name=f"{job.invocation_id}.output",
        )
        values = invocation_values(
            result=result,
            memory_mb=memory_mb or (fn.memory_mb if fn is not None else 128),  # billed as it ran
            started_at=claimed.started,
            ended_at=ended,
            output=output,
        )
        values["attempt"] = job.attempt
        values["node"] = self._owner
        error = result.error.to_dict() if result.error else None
        attempt = {
            "id": claimed.attempt_id,
            "invocation_id": job.invocation_id,
            "attempt": job.attempt,
            "status": result.status,
            "started_at": claimed.started,
            "error_type": error["type"] if error else None,
            "error_message": error["message"] if error else None,
            "cold": result.cold,
            "duration_ms": values["duration_ms"],
            "ended_at": ended,
        }
        logs = log_rows(job.invocation_id, job.function_id, job.attempt, result, ended)
        name = fn.name if fn is not None else ""
        events: list[Event] = [
            InvocationLogged(
                invocation_id=job.invocation_id,
                function_id=job.function_id,
                function_name=name,
                level=row["level"],
                message=row["message"],
            )
            for row in logs
        ]
        if not final:
            values["status"] = "pending"  # another attempt is scheduled
        events.append(
            InvocationFinished(
                invocation_id=job.invocation_id,
                function_id=job.function_id,
                function_name=name,
                source=job.source,
                status=result.status,
                duration_ms=values["duration_ms"],
                cold=result.cold,
                attempt=job.attempt,
                final=final,
            )
        )
        settled = _Settled(claimed, values, attempt, logs, events)
        if result.ok:
            self._settle_success(settled)
        else:
            retry_at = None
            if not final:
                base_ms, max_ms = (job.payload or {}).get("backoff_ms") or (
                    fn.retry_backoff_ms,
                    fn.retry_backoff_max_ms,
                )  # a request's own policy (a webhook's) rides in its payload
                delay = backoff_delay(job.attempt, base_ms, max_ms, jitter=True)
                retry_at = ended + timedelta(seconds=delay)
            record = {
                "attempt": job.attempt,
                **(error or {}),
                "started_at": claimed.started.isoformat(),
                "ended_at": ended.isoformat(),
            }
            await self._batcher.commit(
                self._failure_write(settled, name, retry_at, record, to_dlq=fn is not None),
                on_commit=lambda: self._publish(settled.events),
            )

    def _settle_success(self, settled: _Settled) -> None:
        """Successes share one write: executemany updates and one DELETE for the whole batch."""
        self._successes.append(settled)
        if len(self._successes) > 1:
            return  # a write that will take this one is already queued
        drained: list[_Settled] = []

        async def write(session: AsyncSession) -> None:
            if not drained:  # the batcher may call a write twice (batch, then alone): drain once
                drained.extend(self._successes)
                self._successes.clear()
            await _write_successes(session, self._queue, self._owner, drained)

        self._batcher.submit(write, on_commit=lambda: self._publish([e for s in drained for e in s.events]))

    def _failure_write(
        self, settled: _Settled, name: str, retry_at: datetime | None, record: dict[str, Any], *, to_dlq: bool
    ) -> Any:
        job, queue, owner = settled.claimed.job, self._queue, self._owner
        dlq_id = new_id()  # one id even if the batcher runs this write twice

        async def write(session: AsyncSession) -> None:
            await _write_attempt_rows(session, [settled])
            if retry_at is not None:
                await queue.retry_later(session, job.id, owner, retry_at, record)
                return
            buried = await queue.bury(session, job.id, owner)
            if buried is None or not to_dlq:
                return
            await session.execute(
                insert(DeadLetter),
                [
                    {
                        "id": dlq_id,
                        "function_id": job.function_id,
                        "function_name": name,
                        "original_request_id": job.invocation_id,
                        "payload": (buried.payload or {}).get("event"),
                        "error": record.get("message", ""),
                        "attempts": [*buried.errors, record],
                        "retry_count": 0,
                        "status": "pending",
                        "source": job.source,
                        "created_at": utcnow(),
                    }
                ],
            )
            if not any(isinstance(e, DlqChanged) for e in settled.events):
                settled.events.append(
                    DlqChanged(message_id=dlq_id, function_id=job.function_id, status="pending")
                )

        return write

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            self._bus.publish(event)


async def _write_attempt_rows(session: AsyncSession, settled: list[_Settled]) -> None:
    """The attempt, invocation and log rows of finished attempts (one statement per table). The attempt
    row is inserted, or completed when it was put on record as running."""
    await upsert_many(session, _att, [s.attempt for s in settled], key=_ATTEMPT_KEY, overwrite=_ATTEMPT_END)
    await update_many(
        session, _inv, "id", [{"id": s.claimed.job.invocation_id, **s.invocation} for s in settled]
    )
    logs = [row for s in settled for row in s.logs]
    if logs:
        await session.execute(insert(InvocationLog), logs)


async def _write_successes(
    session: AsyncSession, queue: JobQueue, owner: str, settled: list[_Settled]
) -> None:
    if not settled:
        return
    await _write_attempt_rows(session, settled)
    await queue.complete_many(session, [s.claimed.job.id for s in settled], owner)


async def _record_lost_attempts(session: AsyncSession, jobs: list[ClaimedJob], now: datetime) -> None:
    """Claimed again: every earlier attempt that did not end was lost with its node. One marked running
    becomes abandoned; one that died before it was marked gets an abandoned row (a job that failed
    and was retried already has rows for its earlier attempts, and keeps them)."""
    lost = {"status": "abandoned", "error_type": "NodeLost", "ended_at": now}
    message = "the node running this attempt stopped before it finished"
    await session.execute(
        update(_att)
        .where(_att.c.invocation_id.in_([job.invocation_id for job in jobs]), _att.c.status == "running")
        .values(**lost, error_message=message)
    )
    await upsert_many(
        session,
        _att,
        [
            {"id": new_id(), "invocation_id": job.invocation_id, "attempt": n, "cold": False, **lost}
            | {"error_message": message, "started_at": None, "duration_ms": None}
            for job in jobs
            for n in range(1, job.attempt)
        ],
        key=_ATTEMPT_KEY,
    )


def _failure(kind: str, message: str) -> ExecResult:
    return ExecResult(status="failed", error=ErrorInfo(kind, message))


def _requeue(claimed: _Claimed, owner: str) -> Any:
    job = claimed.job

    async def write(session: AsyncSession) -> None:
        await session.execute(delete(InvocationAttempt).where(InvocationAttempt.id == claimed.attempt_id))
        await session.execute(
            update(QueueJob)
            .where(QueueJob.id == job.id, QueueJob.lease_owner == owner)
            .values(
                status="queued",
                attempt=QueueJob.attempt - 1,
                lease_owner=None,
                lease_expires_at=None,
                run_at=utcnow() + timedelta(seconds=0.5),
            )
        )
        await session.execute(
            update(Invocation)
            .where(Invocation.id == job.invocation_id)
            .values(status="pending", attempt=job.attempt - 1)
        )

    return write
