"""Fixtures for the auth tests: a real AuthService and AuditService over the shared migrated `db`
(tests/db_fixtures.py: SQLite, and PostgreSQL when available), and a small FastAPI app serving the
auth, key and user routers behind httpx's ASGI transport. Imported only by the auth tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from app.api import auth as auth_api
from app.api import keys as keys_api
from app.api import users as users_api
from app.api.errors import install_error_handlers
from data.db import Database
from data.models import AuditEvent
from engine.bus import LocalBus
from engine.config import Settings
from engine.principal import SYSTEM, Principal
from engine.secrets import load_or_create_key
from engine.services.audit import AuditService
from engine.services.auth import AuthService, Bootstrap
from tests.api.conftest import LIGHT_PASSWORD_HASHING

__all__ = [
    "ADMIN_PASSWORD",
    "admin",
    "api",
    "audit",
    "audit_rows",
    "auth",
    "bootstrap",
    "client",
    "make_auth",
    "settings",
]

ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, admin_password=ADMIN_PASSWORD, **LIGHT_PASSWORD_HASHING)  # type: ignore[arg-type]


@pytest.fixture
def audit(db: Database) -> AuditService:
    return AuditService(db, LocalBus())


def make_auth(db: Database, audit: AuditService, settings: Settings) -> AuthService:
    """An AuthService as the Platform builds it; call twice for two nodes over one database."""
    return AuthService(db, audit, settings, load_or_create_key(settings))


@pytest.fixture
def auth(db: Database, audit: AuditService, settings: Settings) -> AuthService:
    return make_auth(db, audit, settings)


@pytest.fixture
async def bootstrap(auth: AuthService) -> Bootstrap:
    boot = await auth.ensure_admin()
    assert boot is not None
    return boot


@pytest.fixture
async def admin(auth: AuthService, bootstrap: Bootstrap) -> Principal:
    return await auth.login("admin", ADMIN_PASSWORD, "127.0.0.1")


async def audit_rows(audit: AuditService, action: str) -> list[AuditEvent]:
    page = await audit.list(SYSTEM, action=action, limit=100)
    return page.items


@pytest.fixture
def api(
    db: Database, audit: AuditService, auth: AuthService, settings: Settings, bootstrap: Bootstrap
) -> FastAPI:
    """The auth routers on a bare app; the platform is a namespace of the real services."""
    app = FastAPI()
    install_error_handlers(app)
    for router in (auth_api.router, keys_api.router, users_api.router):
        app.include_router(router)
    app.state.platform = SimpleNamespace(auth=auth, audit=audit, settings=settings, db=db)
    return app


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client: tests add the credentials they are about."""
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://nimbus.test") as http:
        yield http
