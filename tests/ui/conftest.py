"""UI tests: NiceGUI's user simulation over the real console pages and a real platform (SQLite in a
temp dir, real sandboxed workers). `console` is a logged-out browser; `admin` is logged in."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from nicegui import core, ui
from nicegui.functions.download import download
from nicegui.functions.navigate import Navigate
from nicegui.functions.notify import notify
from nicegui.testing.general import nicegui_reset_globals, prepare_simulation
from nicegui.testing.user import User

from app.console import mount_console
from engine.platform import Platform
from tests.api.conftest import ADMIN_PASSWORD, make_settings


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        yield running


@pytest.fixture
async def console(platform: Platform, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    """A browser on the console, not logged in. Fails the test on any ERROR log, like NiceGUI's own."""
    with nicegui_reset_globals():
        os.environ["NICEGUI_USER_SIMULATION"] = "true"
        try:
            prepare_simulation()
            mount_console(platform)
            async with (
                core.app.router.lifespan_context(core.app),
                httpx.AsyncClient(transport=httpx.ASGITransport(core.app), base_url="http://test") as client,
            ):
                yield User(client)
        finally:
            os.environ.pop("NICEGUI_USER_SIMULATION", None)
            ui.navigate = Navigate()
            ui.notify = notify
            ui.download = download
    errors = [r for r in caplog.get_records("call") if r.levelname == "ERROR"]
    if errors:
        pytest.fail(f"unexpected ERROR logs: {[r.getMessage() for r in errors]}", pytrace=False)


async def log_in(
    user: User,
    username: str = "admin",
    password: str = ADMIN_PASSWORD,
    *,
    open_form: bool = True,
    then: str = "",
    expect: str | None = None,
) -> None:
    """Log in through the form: opened at /login (going on to `then`), or the one already shown
    (`open_form=False`). Waits until `expect` shows (default: the header's user label)."""
    if open_form:
        await user.open(f"/login?next={quote(then, safe='')}" if then else "/login")
    user.find(marker="username").type(username)
    user.find(marker="password").type(password)
    user.find(marker="login").click()
    if expect is None:
        await user.should_see(marker="user", retries=100)
    elif expect:
        await user.should_see(expect, retries=100)


@pytest.fixture
async def admin(console: User) -> User:
    """The console, logged in as the first-start admin."""
    await log_in(console)
    return console
