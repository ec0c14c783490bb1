"""/api/v1/api-keys: create (the raw key is in that response only), list, revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.deps import CurrentPrincipal, PlatformDep
from data.models import ApiKey
from engine.services.api_keys import MAX_EXPIRY_DAYS

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def key_view(key: ApiKey) -> dict[str, Any]:
    """A key as the API shows it: the display prefix, never the hash."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "role": key.role,
        "user_id": key.user_id,
        "created_at": _ts(key.created_at),
        "expires_at": _ts(key.expires_at),
        "last_used_at": _ts(key.last_used_at),
        "revoked_at": _ts(key.revoked_at),
    }


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_EXPIRY_DAYS)
    expires_at: datetime | None = None
    role: Literal["admin", "developer", "viewer"] | None = None
    user_id: str | None = Field(default=None, max_length=36, description="admin only: the key's owner")

    @field_validator("expires_at")
    @classmethod
    def _in_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        if value <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return value


@router.post("", status_code=201)
async def create_api_key(
    body: ApiKeyCreate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    key, raw = await platform.auth.create_api_key(
        principal,
        body.name,
        expires_at=body.expires_at,
        expires_in_days=body.expires_in_days,
        role=body.role,
        user_id=body.user_id,
    )
    return {**key_view(key), "key": raw}


@router.get("")
async def list_api_keys(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    include_revoked: bool = True,
    limit: int = Query(default=100, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.auth.list_api_keys(
        principal, include_revoked=include_revoked, limit=limit, cursor=cursor
    )
    return {"api_keys": [key_view(k) for k in page.items], "next_cursor": page.next_cursor}


@router.delete("/{key_id}", status_code=204)
async def revoke_api_key(key_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> Response:
    await platform.auth.revoke_api_key(principal, key_id)
    return Response(status_code=204)
