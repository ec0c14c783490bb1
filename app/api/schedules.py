"""/api/v1/schedules: cron schedules (create, change, pause, resume, delete, run now), their run history,
and the preview of an expression's next run times. Thin: parse, call the schedules service, render."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response

from app.api.deps import CurrentPrincipal, PlatformDep
from data.models import Schedule
from engine.services.schedule_schemas import PreviewRequest, ScheduleCreate, ScheduleUpdate
from engine.services.schedules import RunInfo, ScheduleService

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_view(info: RunInfo) -> dict[str, Any]:
    run = info.run
    return {
        "id": run.id,
        "schedule_id": run.schedule_id,
        "scheduled_at": _ts(run.scheduled_at),
        "started_at": _ts(run.started_at),
        "kind": run.kind,  # cron | catch_up | manual | skipped
        "status": info.status,  # the run's outcome when known, else started | failed | skipped ...
        "fire_status": run.status,  # claimed | started | failed | skipped
        "target_type": run.target_type,
        "target_id": run.target_id,
        "run_id": run.run_id,
        "invocation_id": run.run_id if run.target_type == "function" else None,
        "duration_ms": info.result.duration_ms if info.result else None,
        "error": run.error or (info.result.error if info.result else None) or None,
        "missed": run.missed,
        "node": run.node,
    }


def schedule_view(service: ScheduleService, schedule: Schedule, last: RunInfo | None) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "name": schedule.name,
        "description": schedule.description,
        "target_type": schedule.target_type,
        "target_id": schedule.target_id,
        "target_name": schedule.target_name,
        "payload": schedule.payload,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "misfire_policy": schedule.misfire_policy,
        "paused": schedule.paused,
        "status": "paused" if schedule.paused else "active",
        "next_run_at": _ts(service.next_run(schedule)),
        "last_run_at": _ts(schedule.last_run_at),
        "last_run": run_view(last) if last is not None else None,
        "created_by": schedule.created_by,
        "created_at": _ts(schedule.created_at),
        "updated_at": _ts(schedule.updated_at),
    }


async def _view(service: ScheduleService, schedule: Schedule) -> dict[str, Any]:
    last = await service.last_runs([schedule])
    return schedule_view(service, schedule, last.get(schedule.id))


@router.get("")
async def list_schedules(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    target_type: str | None = Query(default=None, max_length=16),
    target_id: str | None = Query(default=None, max_length=64, description="the target's id or name"),
    paused: bool | None = None,
    search: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    service: ScheduleService = platform.schedules
    page = await service.list(
        principal,
        target_type=target_type,
        target_id=target_id,
        paused=paused,
        search=search,
        limit=limit,
        cursor=cursor,
    )
    last = await service.last_runs(page.items)
    return {
        "schedules": [schedule_view(service, s, last.get(s.id)) for s in page.items],
        "next_cursor": page.next_cursor,
    }


@router.post("", status_code=201)
async def create_schedule(
    body: ScheduleCreate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    service: ScheduleService = platform.schedules
    return await _view(service, await service.create(principal, body))


@router.post("/preview")
async def preview(body: PreviewRequest, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """The next run times of an expression in a timezone, or why it is invalid (200 either way)."""
    result = platform.schedules.preview(body.cron, body.timezone, body.count)
    error = None
    if not result.valid:
        error = {"code": "invalid", "message": result.error, "field": result.field}
    return {
        "valid": result.valid,
        "cron": body.cron,
        "timezone": body.timezone,
        "next_runs": [t.isoformat() for t in result.next_runs],
        "error": error,
    }


@router.get("/target-types")
async def target_types(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return {"target_types": platform.schedule_targets.names()}


@router.get("/{schedule_id}")
async def get_schedule(
    schedule_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    service: ScheduleService = platform.schedules
    return await _view(service, await service.get(principal, schedule_id))


@router.put("/{schedule_id}")
async def update_schedule(
    schedule_id: str, body: ScheduleUpdate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    service: ScheduleService = platform.schedules
    return await _view(service, await service.update(principal, schedule_id, body))


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(schedule_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> Response:
    await platform.schedules.delete(principal, schedule_id)
    return Response(status_code=204)


@router.post("/{schedule_id}/pause")
async def pause(schedule_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    service: ScheduleService = platform.schedules
    return await _view(service, await service.set_paused(principal, schedule_id, True))


@router.post("/{schedule_id}/resume")
async def resume(schedule_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    service: ScheduleService = platform.schedules
    return await _view(service, await service.set_paused(principal, schedule_id, False))


@router.post("/{schedule_id}/trigger", status_code=202)
async def trigger(schedule_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Run now, once (also when paused); the run is started, not awaited."""
    return run_view(await platform.schedules.trigger(principal, schedule_id))


@router.get("/{schedule_id}/runs")
async def runs(
    schedule_id: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.schedules.runs(principal, schedule_id, limit=limit, cursor=cursor)
    return {"runs": [run_view(info) for info in page.items], "next_cursor": page.next_cursor}
