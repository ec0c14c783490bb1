"""The console's shell: log in, log out, lock-out, the header and the sidebar."""

from __future__ import annotations

import os

import pytest
from nicegui import ui
from nicegui.testing.user import User

from components.frame import PageContext, console_page
from tests.ui.conftest import log_in


@pytest.fixture(autouse=True)
def probe_page(console: User) -> None:
    """A page of the console's kind, so the shell is tested apart from any section."""

    @console_page("/probe", "Probe")
    async def probe(ctx: PageContext, word: str = "") -> None:
        ui.label(f"probe says {word or 'nothing'} to {ctx.principal.actor}")


async def test_a_page_needs_a_login_and_returns_to_it_after(console: User) -> None:
    await console.open("/probe?word=hi")
    await console.should_see(marker="login")
    await log_in(console, open_form=False)
    await console.should_see("probe says hi to admin")


async def test_wrong_password_says_so_and_logs_nobody_in(console: User) -> None:
    await log_in(console, password="nope", expect="invalid username or password")
    await console.should_not_see(marker="user")


async def test_repeated_failures_lock_the_account(console: User) -> None:
    for _ in range(5):
        await log_in(console, password="wrong", expect="invalid username or password")
    await log_in(console, expect="locked")  # even the right password is refused while locked


async def test_header_shows_the_user_and_the_isolation_level(console: User) -> None:
    await log_in(console, then="/probe")
    await console.should_see("admin (admin)")
    await console.should_see("isolation: strong" if os.geteuid() == 0 else "isolation: partial")


async def test_log_out_ends_the_session(console: User) -> None:
    await log_in(console, then="/probe")
    await console.open("/logout")
    await console.should_see(marker="login")
    await console.open("/probe")
    await console.should_see(marker="login")
