"""/api/v1/audit: the audit trail, newest first, filtered by action, actor, target (a resource's id or
name, or its type and id) and time range; the action list; and the filtered set exported as CSV or JSON
(streamed). Admins only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.api.deps import CurrentPrincipal, PlatformDep
from data.models import AuditEvent
from engine.services.audit import ACTIONS
from engine.services.audit_log import AuditFilters, event_dict

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def audit_view(e: AuditEvent) -> dict[str, Any]:
    return event_dict(e)


def _filters(
    action: str | None = Query(default=None, max_length=64),
    resource_type: str | None = Query(default=None, max_length=32),
    resource_id: str | None = Query(default=None, max_length=64),
    target: str | None = Query(default=None, max_length=128, description="a resource's id or name"),
    actor: str | None = Query(default=None, max_length=128),
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditFilters:
    return AuditFilters(
        action=action or None,
        actor=actor or None,
        resource_type=resource_type or None,
        resource_id=resource_id or None,
        target=target or None,
        since=_utc(since),
        until=_utc(until),
    )


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@router.get("")
async def list_audit(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    action: str | None = Query(default=None, max_length=64),
    resource_type: str | None = Query(default=None, max_length=32),
    resource_id: str | None = Query(default=None, max_length=64),
    target: str | None = Query(default=None, max_length=128, description="a resource's id or name"),
    actor: str | None = Query(default=None, max_length=128),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    f = _filters(action, resource_type, resource_id, target, actor, since, until)
    page = await platform.audit.list(
        principal,
        action=f.action,
        resource_type=f.resource_type,
        resource_id=f.resource_id,
        target=f.target,
        actor=f.actor,
        since=f.since,
        until=f.until,
        limit=limit,
        cursor=cursor,
    )
    return {"logs": [audit_view(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/actions")
async def audit_actions(principal: CurrentPrincipal) -> dict[str, Any]:
    return {"actions": [{"value": k, "label": v} for k, v in ACTIONS.items()]}


@router.get("/export")
async def export_audit(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    format: str = Query(default="csv", max_length=8, description="csv or json"),
    action: str | None = Query(default=None, max_length=64),
    resource_type: str | None = Query(default=None, max_length=32),
    resource_id: str | None = Query(default=None, max_length=64),
    target: str | None = Query(default=None, max_length=128),
    actor: str | None = Query(default=None, max_length=128),
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    filters = _filters(action, resource_type, resource_id, target, actor, since, until)
    chunks = await platform.audit.export(principal, filters, format)
    return export_response(chunks, format)


def export_response(chunks: Any, fmt: str) -> StreamingResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        chunks,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="nimbus-audit-{stamp}.{fmt}"'},
    )
