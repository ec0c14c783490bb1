"""/api/v1/quota: every quota's usage against its limit (with the original API's flat fields), changing
the limits and the warning threshold, and the usage history the trend charts draw."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query

from app.api.deps import CurrentPrincipal, PlatformDep
from engine.services.quotas import HISTORY_MAX_HOURS, QuotaReport

router = APIRouter(prefix="/api/v1/quota", tags=["quota"])

# The original API's fields: (its name, our quota, what of it).
_ORIGINAL = (
    ("function_count", "functions", "used"),
    ("total_memory_mb", "memory", "used"),
    ("today_invocations", "invocations_day", "used"),
    ("max_functions", "functions", "limit"),
    ("max_memory_mb", "memory", "limit"),
    ("max_invocations_per_day", "invocations_day", "limit"),
    ("function_usage_percent", "functions", "percent"),
    ("memory_usage_percent", "memory", "percent"),
    ("invocation_usage_percent", "invocations_day", "percent"),
    ("code_usage_percent", "storage_code", "percent"),
)


def quota_view(report: QuotaReport) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, quota, what in _ORIGINAL:
        usage = report.get(quota)
        if usage is not None:
            value = getattr(usage, what)
            body[name] = value if what == "percent" else int(value)
    code = report.get("storage_code")
    if code is not None:
        body["total_code_size_kb"] = round(code.used / 1024, 1)
        body["max_code_size_kb"] = int(code.limit // 1024)
    return body | {
        "warning_threshold": report.warning_threshold,
        "measured_at": report.measured_at.isoformat(),
        "quotas": [q.to_dict() for q in report.quotas],
    }


@router.get("")
async def get_quota(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    fresh: bool = Query(default=False, description="measure storage now (else at most a minute old)"),
) -> dict[str, Any]:
    return quota_view(await platform.quotas.report(principal, fresh=fresh))


@router.get("/limits")
async def get_limits(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return {"limits": platform.quotas.limits()}


@router.put("")
async def update_quota(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    changes: dict[str, Any] = Body(
        ..., description="limits by name (max_functions ...) and/or warning_threshold"
    ),
) -> dict[str, Any]:
    return quota_view(await platform.quotas.update(principal, changes))


@router.get("/history")
async def history(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    hours: int = Query(default=24 * 7, ge=1, le=HISTORY_MAX_HOURS),
) -> dict[str, Any]:
    rows = await platform.quotas.history(principal, hours)
    return {
        "hours": hours,
        "snapshots": [{"taken_at": r.taken_at.isoformat(), "usage": r.usage} for r in rows],
    }
