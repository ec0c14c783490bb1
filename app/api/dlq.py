"""/api/v1/dlq: the dead-letter queue (the original API's paths)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response

from app.api.deps import CurrentPrincipal, PlatformDep
from app.api.views import dlq_view

router = APIRouter(prefix="/api/v1/dlq", tags=["dlq"])


@router.get("")
async def list_messages(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    function_id: str | None = Query(default=None, max_length=64),
    status: str | None = None,
    error_type: str | None = Query(default=None, max_length=128, description="the last attempt's type"),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.dlq.list(
        principal,
        function_id=function_id,
        status=status,
        error_type=error_type,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return {"messages": [dlq_view(m) for m in page.items], "next_cursor": page.next_cursor}


@router.get("/stats")
async def stats(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    function_id: str | None = Query(default=None, max_length=64),
) -> dict[str, Any]:
    return await platform.dlq.stats(principal, function_id)


@router.delete("")
async def purge(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    function_id: str | None = Query(default=None, max_length=64),
) -> dict[str, Any]:
    return {"deleted": await platform.dlq.purge(principal, function_id)}


@router.get("/{message_id}")
async def get_message(message_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return dlq_view(await platform.dlq.get(principal, message_id))


@router.post("/{message_id}/retry")
async def retry(message_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    result = await platform.dlq.retry(principal, message_id)
    if result.outcome is None:
        return {
            "success": False,
            "message": "retry could not run",
            "retry_error": result.error,
            "dlq": dlq_view(result.message),
        }
    ok = result.outcome.result.ok
    return {
        "success": ok,
        "message": "resolved" if ok else "the function failed again",
        "response": result.outcome.response(),
        "dlq": dlq_view(result.message),
    }


@router.post("/{message_id}/discard")
async def discard(message_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    msg = await platform.dlq.discard(principal, message_id)
    return {"message": "discarded", "dlq": dlq_view(msg)}


@router.delete("/{message_id}", status_code=204)
async def delete_message(message_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> Response:
    await platform.dlq.delete(principal, message_id)
    return Response(status_code=204)
