"""The invocation pipeline's front: sync invoke (run now, answer with the result) and async submit
(commit to the durable queue, answer 202). Records go through the write-behind batcher; events reach
the bus after their rows commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from data.batcher import Batcher, Insert
from data.db import Database
from data.models import Invocation, InvocationLog, QueueJob
from data.types import new_id, utcnow
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import BadRequest, Forbidden, Invalid
from engine.events import InvocationFinished, InvocationLogged, InvocationStarted
from engine.invoke.catalog import Catalog, Resolved
from engine.invoke.records import invocation_values, invoke_response, load_body, log_rows, store_body
from engine.pool import WorkerPool
from engine.principal import Principal
from engine.queue import JobQueue
from engine.runtimes.base import ErrorInfo, ExecResult, InvokeContext

SOURCES = ("api", "console", "cron", "webhook", "workflow", "retry", "cli")


@dataclass(frozen=True, slots=True)
class Outcome:
    request_id: str
    version: str
    result: ExecResult
    replayed: bool = False  # an idempotent repeat answered from the first invocation
    environment: str = ""  # where it ran ("" when there are no environments)

    def response(self) -> dict[str, Any]:
        response = invoke_response(self.request_id, self.version, self.result)
        return response | {"environment": self.environment or None}


class Invoker:
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
        self._spill = settings.data_dir / "bodies"
        self._inflight: dict[tuple[str, str], asyncio.Future[Outcome]] = {}
        # Quotas (engine/services/quotas.py): counts an invocation, or raises QuotaExceeded (429) over
        # the day's or month's limit. In memory: the hot path queries nothing for it.
        self.admission: Callable[[], None] | None = None

    # --- sync -------------------------------------------------------------------------------------

    async def invoke(
        self,
        principal: Principal,
        ref: str,
        event: Any,
        *,
        source: str = "api",
        version: str | None = None,
        environment: str | None = None,
        idempotency_key: str | None = None,
        replay_of: str | None = None,
        request_id: str | None = None,
    ) -> Outcome:
        """Run now. `environment` None: the default environment; `version` None: what is deployed there."""
        self._check_caller(principal, source)
        resolved = await self._runnable(ref, version, environment)
        fn, spec = resolved.function, resolved.spec
        if idempotency_key:
            key = (fn.id, idempotency_key)
            if key in self._inflight:  # the same key, still running: share its outcome
                return await asyncio.shield(self._inflight[key])
            previous = await self._previous(fn.id, idempotency_key)
            if previous is not None:
                return previous
            future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            self._inflight[key] = future
        request_id = request_id or new_id()
        started = utcnow()
        self._bus.publish(
            InvocationStarted(
                invocation_id=request_id, function_id=fn.id, function_name=fn.name, source=source
            )
        )
        try:
            ctx = InvokeContext(
                request_id=request_id, source=source, timeout_sec=spec.timeout_sec, trace_id=request_id
            )
            result = await self._pool.invoke(spec, event, ctx)
            ended = utcnow()
            row = {
                "id": request_id,
                "function_id": fn.id,
                "function_name": fn.name,
                "version": spec.version,
                "environment": spec.environment or None,
                "source": source,
                "mode": "sync",
                "idempotency_key": idempotency_key,
                "replay_of": replay_of,
                "trace_id": request_id,
                "node": self._settings.node_id,
                "actor": principal.actor,
                "created_at": started,
                **self._input_fields(request_id, event),
                **invocation_values(
                    result=result,
                    memory_mb=spec.memory_mb,
                    started_at=started,
                    ended_at=ended,
                    output=self._output(request_id, result),
                ),
            }
            logs = log_rows(request_id, fn.id, 1, result, ended)
            events = self._finished_events(row, logs, final=True)

            ops: list[Insert] = [Insert(Invocation, [row])]
            if logs:
                ops.append(Insert(InvocationLog, logs))
            publish = lambda: [self._bus.publish(e) for e in events]  # noqa: E731
            if idempotency_key:  # a repeat must find this record, so wait for the commit
                await self._batcher.commit(ops, on_commit=publish)
            else:
                self._batcher.submit(ops, on_commit=publish)
            outcome = Outcome(request_id, spec.version, result, environment=spec.environment)
            if idempotency_key:
                future.set_result(outcome)
            return outcome
        except BaseException as exc:
            if idempotency_key and not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            if idempotency_key:
                self._inflight.pop((fn.id, idempotency_key), None)

    # --- async ------------------------------------------------------------------------------------

    async def submit(
        self,
        principal: Principal,
        ref: str,
        event: Any,
        *,
        source: str = "api",
        environment: str | None = None,
        idempotency_key: str | None = None,
        delay_sec: float = 0.0,
        max_attempts: int | None = None,
        backoff_ms: tuple[int, int] | None = None,
    ) -> tuple[str, bool]:
        """Commit the request to the durable queue; returns (request_id, accepted_now). A repeated
        idempotency key returns the first request's id with accepted_now=False.

        The job runs in the environment resolved now (None: the default), at the version deployed there
        now: both ride in the job's payload, so a later promotion does not change what an accepted
        request runs, and its retries all run the same code. `max_attempts` and `backoff_ms` (first delay,
        cap) override the function's retry policy for this one request (a webhook's own policy)."""
        self._check_caller(principal, source)
        resolved = await self._runnable(ref, None, environment)
        fn, spec = resolved.function, resolved.spec
        if idempotency_key:
            existing = await self._existing_id(fn.id, idempotency_key)
            if existing:
                return existing, False
        request_id = new_id()
        now = utcnow()
        inv = {
            "id": request_id,
            "function_id": fn.id,
            "function_name": fn.name,
            "version": spec.version,
            "environment": spec.environment or None,
            "source": source,
            "mode": "async",
            "status": "pending",
            "idempotency_key": idempotency_key,
            "trace_id": request_id,
            "node": self._settings.node_id,
            "actor": principal.actor,
            "max_attempts": max_attempts or fn.retry_attempts,
            "attempt": 0,
            "created_at": now,
            **self._input_fields(request_id, event),
        }
        job = {
            "id": new_id(),
            "invocation_id": request_id,
            "function_id": fn.id,
            "payload": {"event": event}
            | ({"environment": spec.environment, "version": spec.version} if spec.environment else {})
            | ({"backoff_ms": list(backoff_ms)} if backoff_ms else {}),
            "source": source,
            "max_attempts": max_attempts or fn.retry_attempts,
            "run_at": now + timedelta(seconds=delay_sec),
            "created_at": now,
        }
        try:
            await self._batcher.commit(
                [Insert(Invocation, [inv]), Insert(QueueJob, [job])], on_commit=self._queue.notify
            )
        except Exception as exc:
            if idempotency_key and (existing := await self._existing_id(fn.id, idempotency_key)):
                return existing, False  # a concurrent request with the same key won
            raise exc
        return request_id, True

    # --- helpers ----------------------------------------------------------------------------------

    async def _runnable(self, ref: str, version: str | None, environment: str | None) -> Resolved:
        resolved = await self._catalog.resolve(ref, version, environment)
        if resolved.function.status != "active":
            raise BadRequest(f"function is not active, current status: {resolved.function.status}")
        if self.admission is not None:
            self.admission()
        return resolved

    def _check_caller(self, principal: Principal, source: str) -> None:
        if source not in SOURCES:
            raise Invalid("source", f"unknown source {source!r}")
        if not principal.can("developer"):
            raise Forbidden("invoking functions needs the developer or admin role")

    def _input_fields(self, request_id: str, event: Any) -> dict[str, Any]:
        body = store_body(
            event, limit=self._settings.inline_body_bytes, spill_dir=self._spill, name=f"{request_id}.input"
        )
        return {"input": body.value, "input_size": body.size, "input_ref": body.ref}

    def _output(self, request_id: str, result: ExecResult) -> Any:
        return store_body(
            result.result if result.ok else None,
            limit=self._settings.inline_body_bytes,
            spill_dir=self._spill,
            name=f"{request_id}.output",
        )

    def _finished_events(self, row: dict[str, Any], logs: list[dict[str, Any]], *, final: bool) -> list[Any]:
        events: list[Any] = [
            InvocationLogged(
                invocation_id=row["id"],
                function_id=row["function_id"],
                function_name=row["function_name"],
                level=log["level"],
                message=log["message"],
            )
            for log in logs
        ]
        events.append(
            InvocationFinished(
                invocation_id=row["id"],
                function_id=row["function_id"],
                function_name=row["function_name"],
                source=row["source"],
                status=row["status"],
                duration_ms=row["duration_ms"],
                cold=row["cold"],
                attempt=row.get("attempt", 1),
                final=final,
            )
        )
        return events

    async def _existing_id(self, function_id: str, key: str) -> str | None:
        async with self._db.session() as session:
            row = await session.execute(
                select(Invocation.id).where(
                    Invocation.function_id == function_id, Invocation.idempotency_key == key
                )
            )
            return row.scalars().first()

    async def _previous(self, function_id: str, key: str) -> Outcome | None:
        async with self._db.session() as session:
            row = await session.execute(
                select(Invocation).where(
                    Invocation.function_id == function_id, Invocation.idempotency_key == key
                )
            )
            inv = row.scalars().first()
        if inv is None or inv.status in ("pending", "running"):
            return None
        error = (
            ErrorInfo(inv.error_type or "", inv.error_message or "", inv.error_stack or "")
            if inv.error_type
            else None
        )
        result = ExecResult(
            status=inv.status,  # type: ignore[arg-type]
            result=load_body(inv.output, inv.output_ref),
            error=error,
            duration_ms=inv.duration_ms or 0.0,
            peak_memory_kb=inv.peak_memory_kb,
            cold=inv.cold,
            init_ms=inv.init_ms,
        )
        return Outcome(inv.id, inv.version, result, replayed=True, environment=inv.environment or "")
