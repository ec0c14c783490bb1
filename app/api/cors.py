"""CORS for the API, live: the allowed origins are the `cors_allowed_origins` setting as it is now, read
from the settings cache on each request (no query), so a change applies to the next request."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class LiveCORS:
    """Starlette's CORSMiddleware, rebuilt when the origins change; no CORS headers while none is allowed."""

    def __init__(self, app: ASGIApp, origins: Callable[[], Sequence[str]]) -> None:
        self.app = app
        self._origins = origins
        self._inner: ASGIApp = app
        self._built_for: tuple[str, ...] = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origins = tuple(self._origins())
        if not origins:
            await self.app(scope, receive, send)
            return
        if origins != self._built_for:
            # No credentials: the API authenticates with an Authorization header, never a cross-site cookie.
            self._inner = CORSMiddleware(
                self.app,
                allow_origins=list(origins),
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=["Content-Disposition"],
                max_age=600,
            )
            self._built_for = origins
        await self._inner(scope, receive, send)
