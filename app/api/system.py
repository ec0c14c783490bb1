"""Health probes (no auth, for load balancers and orchestrators) and /api/v1/system."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import CurrentPrincipal, PlatformDep
from engine.runtimes.docker_executor import detect_docker

router = APIRouter(tags=["system"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "healthy"}


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/health/ready")
async def ready(platform: PlatformDep) -> JSONResponse:
    if platform.started and await platform.db.ping():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"error": {"code": "unavailable", "message": "database not ready"}}, status_code=503)


@router.get("/api/v1/system")
async def system(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    await asyncio.to_thread(detect_docker)  # the engine probe may take seconds: off the loop, then cached
    return platform.system_info()


@router.get("/api/v1/stats")
async def stats(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return {"functions": await platform.functions.count()}
