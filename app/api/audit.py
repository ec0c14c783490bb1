"""/api/v1/audit: the audit trail, newest first, filtered by action, resource and actor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from app.api.deps import CurrentPrincipal, PlatformDep
from data.models import AuditEvent
from engine.errors import Forbidden
from engine.services.audit import ACTIONS

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def audit_view(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "action": e.action,
        "resource_type": e.resource_type,
        "resource_id": e.resource_id,
        "resource_name": e.resource_name,
        "actor": e.actor,
        "actor_type": e.actor_type,
        "actor_ip": e.actor_ip,
        "before": e.before,
        "after": e.after,
        "details": e.details,
        "created_at": e.created_at.isoformat(),
    }


@router.get("")
async def list_audit(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    action: str | None = Query(default=None, max_length=64),
    resource_type: str | None = Query(default=None, max_length=32),
    resource_id: str | None = Query(default=None, max_length=64),
    actor: str | None = Query(default=None, max_length=128),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    if not principal.can("admin"):
        raise Forbidden("the audit log is for admins")
    page = await platform.audit.list(
        principal,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        actor=actor,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return {"logs": [audit_view(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/actions")
async def audit_actions(principal: CurrentPrincipal) -> dict[str, Any]:
    return {"actions": [{"value": k, "label": v} for k, v in ACTIONS.items()]}
