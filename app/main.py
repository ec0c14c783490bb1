"""The composition root: build the Platform from Settings, mount the API and the console on one
ASGI app, and serve it (`nimbus serve`)."""

from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn
from fastapi import FastAPI

from app.api import (
    audit,
    auth,
    builds,
    dlq,
    environments,
    functions,
    invoke,
    keys,
    layers,
    logs,
    quota,
    retention,
    schedules,
    settings,
    system,
    users,
    webhooks,
    workflows,
)
from app.api.cors import LiveCORS
from app.api.errors import install_error_handlers
from app.console import mount_console
from data.db import Database
from data.migrate import needs_upgrade, upgrade_in_subprocess
from engine.config import Settings
from engine.platform import VERSION, Platform
from engine.services.setting_specs import CORS_ALLOWED_ORIGINS

log = logging.getLogger("nimbus")

# Starlette tries routes in order, with a regex each: the hot path (invoke) goes first.
ROUTERS = (
    invoke.router,
    webhooks.public_router,  # /webhook/{key}: public and hot
    system.router,
    auth.router,
    keys.router,
    users.router,
    functions.router,
    logs.router,
    dlq.router,
    audit.router,
    layers.router,
    environments.router,
    builds.router,
    settings.router,
    webhooks.router,
    schedules.router,
    quota.router,
    retention.router,
    workflows.router,
)


def create_api(platform: Platform) -> FastAPI:
    """The REST API over `platform` (started and stopped by the caller)."""
    app = FastAPI(
        title="Nimbus", version=VERSION, docs_url="/docs", redoc_url=None, openapi_url="/openapi.json"
    )
    app.state.platform = platform
    install_error_handlers(app)
    # CORS origins are a live setting: read from the settings cache on each request.
    app.add_middleware(LiveCORS, origins=lambda: platform.system_settings.get(CORS_ALLOWED_ORIGINS))
    for router in ROUTERS:
        app.include_router(router)
    return app


def _announce(platform: Platform) -> None:
    boot = platform.bootstrap
    if boot is None:
        return
    lines = ["", "=" * 72, "Nimbus first start: an admin account was created.", "  user:     admin"]
    if getattr(boot, "password", None):
        lines.append(f"  password: {boot.password}   (generated; set NIMBUS_ADMIN_PASSWORD to choose one)")
    if getattr(boot, "api_key", None):
        lines.append(f"  API key:  {boot.api_key}   (shown once; export NIMBUS_API_KEY=... for the CLI)")
    lines += ["=" * 72, ""]
    print("\n".join(lines), file=sys.stderr, flush=True)


async def _upgrade_schema(settings: Settings) -> None:
    """Migrate in a child process when the schema is behind, so the server never loads Alembic (the
    platform's own check then finds the schema at head)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    try:
        behind = await needs_upgrade(db)
    finally:
        await db.close()
    if behind:
        log.info("migrating the database schema")
        await upgrade_in_subprocess(settings.database_url)


async def _serve(settings: Settings) -> None:
    await _upgrade_schema(settings)
    platform = Platform(settings)
    await platform.start()
    try:
        _announce(platform)
        isolation = platform.isolation()
        if isolation.level != "strong":
            log.warning("sandbox isolation is %s: %s", isolation.level, "; ".join(isolation.warnings))
        app = create_api(platform)
        mount_console(platform, app)
        # lifespan on: NiceGUI starts its own loops (bindings, client pruning) in the app's lifespan
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level="warning", access_log=False, lifespan="on"
        )
        server = uvicorn.Server(config)
        log.info(
            "Nimbus %s serving on http://%s:%d (data: %s)",
            VERSION,
            settings.host,
            settings.port,
            settings.data_dir,
        )
        await server.serve()
    finally:
        await platform.stop()


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.run(_serve(settings))
    except ImportError:
        asyncio.run(_serve(settings))
