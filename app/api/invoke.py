"""Invoking functions (sync and async) and reading invocations and logs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from app.api.deps import CurrentPrincipal, PlatformDep
from app.api.views import invocation_detail_view, invocation_view, log_view
from engine.errors import BadRequest, TooLarge

router = APIRouter(prefix="/api/v1", tags=["invocations"])

MAX_EVENT_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit


async def _event(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_EVENT_BYTES:
        raise TooLarge(f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}", field="body")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON body: {exc}", field="body") from None


def _source(value: str | None) -> str:
    return value if value in ("console", "cli") else "api"


@router.post("/functions/{ref}/invoke")
async def invoke(
    ref: str,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    version: str | None = Query(default=None, max_length=16),
    environment: str | None = Query(default=None, max_length=64, description="default: the default one"),
    idempotency_key: str | None = Header(default=None, max_length=128),
    x_nimbus_source: str | None = Header(default=None),
) -> JSONResponse:
    event = await _event(request)
    outcome = await platform.invoker.invoke(
        principal,
        ref,
        event,
        source=_source(x_nimbus_source),
        version=version,
        environment=environment,
        idempotency_key=idempotency_key,
    )
    headers = {"X-Nimbus-Request-Id": outcome.request_id}
    if not outcome.result.ok:
        headers["X-Nimbus-Function-Error"] = "Timeout" if outcome.result.status == "timeout" else "Unhandled"
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(outcome.response(), headers=headers)


@router.post("/functions/{ref}/async", status_code=202)
async def invoke_async(
    ref: str,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    environment: str | None = Query(default=None, max_length=64, description="default: the default one"),
    idempotency_key: str | None = Header(default=None, max_length=128),
    x_nimbus_source: str | None = Header(default=None),
) -> JSONResponse:
    event = await _event(request)
    request_id, fresh = await platform.invoker.submit(
        principal,
        ref,
        event,
        source=_source(x_nimbus_source),
        environment=environment,
        idempotency_key=idempotency_key,
    )
    headers = {"X-Nimbus-Request-Id": request_id} | ({} if fresh else {"Idempotent-Replayed": "true"})
    return JSONResponse({"request_id": request_id, "status": "accepted"}, status_code=202, headers=headers)


async def _list(platform: Any, principal: Any, **filters: Any) -> dict[str, Any]:
    page = await platform.invocations.list(principal, **filters)
    return {"invocations": [invocation_view(i) for i in page.items], "next_cursor": page.next_cursor}


@router.get("/invocations")
async def list_invocations(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    function: str | None = Query(default=None, max_length=64),
    function_id: str | None = Query(default=None, max_length=64),
    status: str | None = None,
    source: str | None = None,
    environment: str | None = Query(default=None, max_length=64),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    return await _list(
        platform,
        principal,
        function=function or function_id,
        status=status,
        source=source,
        environment=environment,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


@router.get("/functions/{ref}/invocations")
async def function_invocations(
    ref: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    status: str | None = None,
    source: str | None = None,
    environment: str | None = Query(default=None, max_length=64),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    await platform.functions.get(principal, ref)  # 404 for an unknown function
    return await _list(
        platform,
        principal,
        function=ref,
        status=status,
        source=source,
        environment=environment,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


@router.get("/invocations/{invocation_id}")
async def get_invocation(
    invocation_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return invocation_detail_view(await platform.invocations.get(principal, invocation_id))


@router.post("/invocations/{invocation_id}/replay")
async def replay(
    invocation_id: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    x_nimbus_source: str | None = Header(default=None),
) -> dict[str, Any]:
    outcome = await platform.invocations.replay(principal, invocation_id, source=_source(x_nimbus_source))
    return {**outcome.response(), "original_invocation": invocation_id}


@router.get("/functions/{ref}/logs")
async def function_logs(
    ref: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
    after: str | None = Query(default=None, max_length=36),
    wait: float = Query(default=0, ge=0, le=30),
) -> dict[str, Any]:
    await platform.functions.get(principal, ref)
    page = await platform.invocations.logs(
        principal, ref, limit=limit, cursor=cursor, after=after, wait_sec=wait
    )
    return {"logs": [log_view(row) for row in page.items], "next_cursor": page.next_cursor}
