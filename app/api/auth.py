"""/api/v1/auth: log in (a session token in the body and an HttpOnly cookie), log out, who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import SESSION_COOKIE, CurrentPrincipal, PlatformDep
from app.api.users import user_view
from engine.services.auth import SESSION_MAX_AGE_SEC
from engine.services.users import MAX_PASSWORD

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


@router.post("/login")
async def login(
    body: LoginRequest, request: Request, response: Response, platform: PlatformDep
) -> dict[str, Any]:
    ip = request.client.host if request.client else ""
    principal = await platform.auth.login(body.username, body.password, ip)
    token = platform.auth.issue_session(principal)
    # Lax keeps the cookie off cross-site POSTs (CSRF) while links into the console still work.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_MAX_AGE_SEC,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    user = await platform.auth.me(principal)
    return {"user": user_view(user), "token": token, "expires_in": SESSION_MAX_AGE_SEC}


@router.post("/logout", status_code=204)
async def logout(platform: PlatformDep, principal: CurrentPrincipal) -> Response:
    await platform.auth.logout(principal)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/me")
async def me(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    user = await platform.auth.me(principal)
    return {
        "user": user_view(user),
        "actor": principal.actor,
        "actor_type": principal.actor_type,
        "role": principal.role,
    }
