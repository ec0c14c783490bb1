"""/api/v1/logs: log entries across functions (filters + cursor), and a streamed export. A function's
own log list stays at /api/v1/functions/{id}/logs (app/api/invoke.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from app.api.deps import CurrentPrincipal, PlatformDep
from engine.services.logs import MAX_TEXT_CHARS, LogFilters

router = APIRouter(prefix="/api/v1/logs", tags=["logs"])

_MEDIA = {"txt": "text/plain; charset=utf-8", "jsonl": "application/x-ndjson"}


async def log_filters(
    function: str | None = Query(default=None, max_length=64),
    level: str | None = Query(default=None, max_length=8),
    q: str | None = Query(default=None, max_length=MAX_TEXT_CHARS, description="text in the message"),
    since: datetime | None = None,
    until: datetime | None = None,
) -> LogFilters:
    """The filters both endpoints take, as query parameters (async: a plain `def` would run in a thread)."""
    return LogFilters(function, level, q, since, until)


Filters = Annotated[LogFilters, Depends(log_filters)]


@router.get("")
async def search_logs(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    filters: Filters,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.logs.search(
        principal,
        function=filters.function,
        level=filters.level,
        text=filters.text,
        since=filters.since,
        until=filters.until,
        limit=limit,
        cursor=cursor,
    )
    return {
        "logs": [entry.to_dict() for entry in page.items],
        "next_cursor": page.next_cursor,
        "scanned": page.scanned,
        "scan_limit": page.scan_limit,
        "capped": page.capped,
    }


@router.get("/export")
async def export_logs(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    filters: Filters,
    format: Literal["txt", "jsonl"] = "txt",
) -> StreamingResponse:
    chunks = await platform.logs.export(principal, filters, format)
    return StreamingResponse(
        chunks,
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="nimbus-logs.{format}"'},
    )
