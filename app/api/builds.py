"""Go/Rust builds: a function's builds (newest first, cursor pages) and one build with its compiler log.
Builds happen on deploy (POST/PUT /api/v1/functions); these routes only read them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from app.api.deps import CurrentPrincipal, PlatformDep
from app.api.views import build_view

router = APIRouter(prefix="/api/v1", tags=["builds"])


@router.get("/functions/{ref}/builds")
async def list_builds(
    ref: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    fn = await platform.functions.get(principal, ref)
    page = await platform.builds.list(principal, fn.id, limit=limit, cursor=cursor)
    return {"builds": [build_view(b) for b in page.items], "next_cursor": page.next_cursor}


@router.get("/builds/{build_id}")
async def get_build(build_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return build_view(await platform.builds.get(principal, build_id), log=True)
