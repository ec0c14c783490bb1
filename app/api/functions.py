"""/api/v1/functions: CRUD, offline/online, versions and rollback. Thin: parse, call the service, render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CurrentPrincipal, PlatformDep
from app.api.views import function_view, version_view
from engine.services.function_schemas import FunctionCreate, FunctionUpdate

router = APIRouter(prefix="/api/v1/functions", tags=["functions"])


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field(default="", max_length=1000)


@router.get("")
async def list_functions(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    name: str | None = Query(default=None, max_length=64, description="substring of the name"),
    search: str | None = Query(default=None, max_length=64),
    runtime: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    sort: str = Query(default="newest", max_length=16, description="newest | name | updated"),
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.functions.list(
        principal,
        search=search or name,
        runtime=runtime,
        status=status,
        tag=tag,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    return {"functions": [function_view(f, code=False) for f in page.items], "next_cursor": page.next_cursor}


@router.post("", status_code=201)
async def create_function(
    body: FunctionCreate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return function_view(await platform.functions.create(principal, body))


@router.get("/{ref}")
async def get_function(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return function_view(await platform.functions.get(principal, ref))


@router.put("/{ref}")
async def update_function(
    ref: str, body: FunctionUpdate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return function_view(await platform.functions.update(principal, ref, body))


@router.delete("/{ref}", status_code=204)
async def delete_function(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> Response:
    await platform.functions.delete(principal, ref)
    return Response(status_code=204)


@router.post("/{ref}/offline")
async def take_offline(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return function_view(await platform.functions.set_status(principal, ref, online=False))


@router.post("/{ref}/online")
async def bring_online(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return function_view(await platform.functions.set_status(principal, ref, online=True))


@router.get("/{ref}/versions")
async def list_versions(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    versions = await platform.functions.versions(principal, ref)
    return {"versions": [version_view(v, code=False) for v in versions], "total": len(versions)}


@router.post("/{ref}/versions", status_code=201)
async def publish_version(
    ref: str, platform: PlatformDep, principal: CurrentPrincipal, body: PublishRequest | None = None
) -> dict[str, Any]:
    version = await platform.functions.publish(principal, ref, (body or PublishRequest()).description)
    return version_view(version)


@router.get("/{ref}/versions/{number}")
async def get_version(
    ref: str, number: int, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return version_view(await platform.functions.version(principal, ref, number))


@router.post("/{ref}/versions/{number}/rollback")
async def rollback(
    ref: str, number: int, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return function_view(await platform.functions.rollback(principal, ref, number))
