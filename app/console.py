"""Mounting the NiceGUI console on the API's FastAPI app (or, in tests, on NiceGUI's own app)."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI
from nicegui import app as nicegui_app
from nicegui import ui

from app.pages import register_pages
from engine.platform import Platform


def storage_secret(platform: Platform) -> str:
    """The secret signing the console's storage cookie: NIMBUS_STORAGE_SECRET, else derived from the
    platform's secret key (stable across restarts, distinct from the key itself)."""
    if platform.settings.storage_secret:
        return platform.settings.storage_secret
    return hashlib.sha256(b"nimbus-console-storage:" + platform.secret_key).hexdigest()


def mount_console(platform: Platform, api: FastAPI | None = None) -> None:
    """Register every page for `platform`; with `api`, mount them on it (`nimbus serve`), else leave
    them on NiceGUI's app for the user-simulation test harness, which serves that app itself."""
    nicegui_app.state.platform = platform
    register_pages()
    if api is not None:
        ui.run_with(
            api,
            title="Nimbus",
            favicon="☁️",
            storage_secret=storage_secret(platform),
            show_welcome_message=False,
            reconnect_timeout=10.0,
        )
    else:
        ui.run(storage_secret=storage_secret(platform))
