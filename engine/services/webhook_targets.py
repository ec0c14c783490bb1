"""What a webhook can start: a registry of target kinds. Each kind says how to find a target by id or name
(for the management API) and how to start it with a request's event, now (sync: wait for the result) or
later (async: accepted and queued). Functions are built in; another kind (workflows) registers itself
with `WebhookService.register_target(WebhookTarget(kind="workflow", ...))`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from engine.invoke.invoker import Invoker
from engine.principal import Principal
from engine.services.functions import FunctionService

TargetStatus = Literal["success", "failed", "timeout", "accepted"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The webhook's retry policy for async deliveries; None fields: the target's own."""

    attempts: int | None = None
    backoff_ms: int | None = None
    backoff_max_ms: int | None = None


@dataclass(frozen=True, slots=True)
class StartOptions:
    request_id: str  # the webhook call's id: a sync function invocation takes it as its request id
    retry: RetryPolicy = RetryPolicy()
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class TargetResult:
    """What starting a target gave: a finished run (sync) or an accepted request (async)."""

    request_id: str
    status: TargetStatus
    result: Any = None
    error_type: str = ""
    error_message: str = ""


class Starter(Protocol):
    def __call__(
        self, principal: Principal, target_id: str, event: Any, sync: bool, *, options: StartOptions
    ) -> Awaitable[TargetResult]: ...


Resolver = Callable[[Principal, str], Awaitable[tuple[str, str]]]
"""(principal, id or name) -> (id, name); raises NotFound."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    kind: str
    resolve: Resolver
    start: Starter


def function_target(functions: FunctionService, invoker: Invoker) -> WebhookTarget:
    """Functions: sync runs through the invoker (source "webhook"); async commits to the durable queue
    with the webhook's retry policy laid over the function's."""

    async def resolve(principal: Principal, ref: str) -> tuple[str, str]:
        fn = await functions.get(principal, ref)
        return fn.id, fn.name

    async def start(
        principal: Principal, target_id: str, event: Any, sync: bool, *, options: StartOptions
    ) -> TargetResult:
        if not sync:
            retry = options.retry
            backoff = None
            if retry.backoff_ms is not None or retry.backoff_max_ms is not None:
                base = retry.backoff_ms if retry.backoff_ms is not None else 1000
                backoff = (base, retry.backoff_max_ms if retry.backoff_max_ms is not None else 60_000)
            request_id, _ = await invoker.submit(
                principal,
                target_id,
                event,
                source="webhook",
                idempotency_key=options.idempotency_key,
                max_attempts=retry.attempts,
                backoff_ms=backoff,
            )
            return TargetResult(request_id, "accepted")
        outcome = await invoker.invoke(
            principal,
            target_id,
            event,
            source="webhook",
            request_id=options.request_id,
            idempotency_key=options.idempotency_key,
        )
        run = outcome.result
        if run.ok:
            return TargetResult(outcome.request_id, "success", run.result)
        error = run.error
        return TargetResult(
            outcome.request_id,
            "timeout" if run.status == "timeout" else "failed",
            error_type=error.type if error else "Error",
            error_message=error.message if error else "the function failed",
        )

    return WebhookTarget("function", resolve, start)
