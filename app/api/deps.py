"""The dependencies every router uses: the Platform, and the authenticated principal (an API key from
`Authorization: Bearer` or `X-API-Key`, else the console's `nimbus_session` cookie)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from engine.errors import Forbidden, Unauthorized
from engine.principal import Principal, Role
from engine.services.api_keys import KEY_PREFIX

if TYPE_CHECKING:
    from engine.platform import Platform
else:  # engine.platform imports the whole engine: routers type against it without importing it
    Platform = Any

SESSION_COOKIE = "nimbus_session"
_MAX_CREDENTIAL_CHARS = 4096  # a key is 44 characters and a session token ~100: refuse anything huge unread


async def get_platform(request: Request) -> Platform:
    """Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop per request."""
    return request.app.state.platform


async def current_principal(request: Request) -> Principal:
    """Who is calling, or 401. A Bearer value that is not an API key is taken as a session token, so
    scripts can use the token from POST /auth/login as well as a key."""
    auth = request.app.state.platform.auth
    ip = request.client.host if request.client else ""
    bearer = _bearer(request)
    if bearer:
        _check_size(bearer)
        if bearer.startswith(KEY_PREFIX):
            return await auth.authenticate_key(bearer, ip)
        return await auth.session_principal(bearer, ip)
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        _check_size(api_key)
        return await auth.authenticate_key(api_key, ip)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        _check_size(cookie)
        return await auth.session_principal(cookie, ip)
    raise Unauthorized("authentication required: send an API key (Authorization: Bearer ...) or log in")


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the current principal, or 403 when its role is below `role`."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(role):
            raise Forbidden(f"this needs the {role} role (you are {principal.role})")
        return principal

    return dependency


def _bearer(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _check_size(credential: str) -> None:
    if len(credential) > _MAX_CREDENTIAL_CHARS:
        raise Unauthorized("invalid credentials")


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
PlatformDep = Annotated[Platform, Depends(get_platform)]
AdminPrincipal = Annotated[Principal, Depends(require("admin"))]
