"""/api/v1/retention: statistics (the original's fields plus a row per kind of data), the policy, a
preview of what a cleanup would delete, the cleanup itself (waiting for it, or 202 and follow it), and
the cleanup history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from app.api.deps import CurrentPrincipal, PlatformDep
from data.models import RetentionRun
from engine.services.retention import Expired, TargetStats

router = APIRouter(prefix="/api/v1/retention", tags=["retention"])


def run_view(run: RetentionRun) -> dict[str, Any]:
    deleted = dict(run.deleted or {})
    return {
        "id": run.id,
        "trigger": run.trigger,
        "status": run.status,
        "actor": run.actor,
        "node": run.node,
        "policy_days": run.policy,
        "deleted": deleted,
        "total_deleted": run.total_deleted,
        "duration_ms": run.duration_ms,
        "error": run.error or None,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        # the original API's fields
        "invocations_deleted": deleted.get("invocations", 0),
        "dlq_deleted": deleted.get("dlq", 0),
        "tasks_deleted": 0,
    }


def stats_view(row: TargetStats) -> dict[str, Any]:
    return {
        "type": row.target,
        "label": row.label,
        "rows": row.rows,
        "size_bytes": row.size_bytes,
        "size_method": row.size_method,
        "oldest_at": row.oldest_at.isoformat() if row.oldest_at else None,
        "retention_days": row.days,
        "cutoff": row.cutoff.isoformat(),
        "expired": row.expired,
        "note": row.note,
    }


def expired_view(row: Expired) -> dict[str, Any]:
    return {
        "type": row.target,
        "label": row.label,
        "retention_days": row.days,
        "cutoff": row.cutoff.isoformat(),
        "rows": row.rows,
        "note": row.note,
    }


@router.get("/stats")
async def stats(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    rows = {r.target: r for r in await platform.retention.stats(principal)}
    policy = await platform.retention.policy(principal)
    current = platform.retention.current

    def figure(target: str, what: str) -> int:
        row = rows.get(target)
        return int(getattr(row, what)) if row is not None else 0

    latest = (await platform.retention.runs(principal, limit=1)).items
    return {
        "total_invocations": figure("invocations", "rows"),
        "old_invocations": figure("invocations", "expired"),
        "total_dlq_messages": figure("dlq", "rows"),
        "old_dlq_messages": figure("dlq", "expired"),
        "total_tasks": 0,
        "old_tasks": 0,
        "log_retention_days": policy["invocations_days"],
        "dlq_retention_days": policy["dlq_days"],
        "types": [stats_view(r) for r in rows.values()],
        "policy": policy,
        "running": run_view(current) if current is not None else None,
        "last_run": run_view(latest[0]) if latest else None,
    }


@router.get("/policy")
async def get_policy(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return await platform.retention.policy(principal)


@router.put("/policy")
async def update_policy(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    changes: dict[str, Any] = Body(..., description="any of the policy's fields"),
) -> dict[str, Any]:
    return await platform.retention.update_policy(principal, changes)


@router.get("/preview")
async def preview(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    rows = await platform.retention.preview(principal)
    return {"types": [expired_view(r) for r in rows], "total": sum(r.rows for r in rows)}


@router.post("/cleanup", response_model=None)
async def cleanup(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    wait: bool = Query(default=True, description="answer when done (else 202 at once)"),
) -> dict[str, Any] | JSONResponse:
    run = await platform.retention.cleanup(principal, wait=wait)
    policy = await platform.retention.policy(principal)
    body = run_view(run) | {
        "log_retention_days": policy["invocations_days"],
        "dlq_retention_days": policy["dlq_days"],
    }
    return body if wait else JSONResponse(body, status_code=202)


@router.get("/runs")
async def runs(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.retention.runs(principal, limit=limit, cursor=cursor)
    current = platform.retention.current
    items = [run_view(current if current is not None and r.id == current.id else r) for r in page.items]
    return {"runs": items, "next_cursor": page.next_cursor}


@router.get("/runs/{run_id}")
async def get_run(run_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    current = platform.retention.current
    if current is not None and current.id == run_id:
        return run_view(current)
    return run_view(await platform.retention.run(principal, run_id))
