"""/api/v1/users: the admin's user management. Thin: parse, call the auth service, render."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import AdminPrincipal, PlatformDep
from data.models import User
from engine.services.users import MAX_PASSWORD, MIN_PASSWORD

router = APIRouter(prefix="/api/v1/users", tags=["users"])

RoleName = Literal["admin", "developer", "viewer"]


def user_view(user: User) -> dict[str, Any]:
    """A user as the API shows it: never the password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "tenant": user.tenant,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)
    role: RoleName = "viewer"
    tenant: str = Field(default="default", min_length=1, max_length=64)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: RoleName | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


@router.get("")
async def list_users(
    platform: PlatformDep,
    principal: AdminPrincipal,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.auth.list_users(principal, limit=limit, cursor=cursor)
    return {"users": [user_view(u) for u in page.items], "next_cursor": page.next_cursor}


@router.post("", status_code=201)
async def create_user(body: UserCreate, platform: PlatformDep, principal: AdminPrincipal) -> dict[str, Any]:
    user = await platform.auth.create_user(
        principal, body.username, body.password, role=body.role, tenant=body.tenant
    )
    return user_view(user)


@router.get("/{user_id}")
async def get_user(user_id: str, platform: PlatformDep, principal: AdminPrincipal) -> dict[str, Any]:
    return user_view(await platform.auth.get_user(principal, user_id))


@router.put("/{user_id}")
async def update_user(
    user_id: str, body: UserUpdate, platform: PlatformDep, principal: AdminPrincipal
) -> dict[str, Any]:
    user = await platform.auth.update_user(
        principal, user_id, role=body.role, disabled=body.disabled, password=body.password
    )
    return user_view(user)


@router.delete("/{user_id}", status_code=204)
async def delete_user(user_id: str, platform: PlatformDep, principal: AdminPrincipal) -> Response:
    await platform.auth.delete_user(principal, user_id)
    return Response(status_code=204)
