"""Log in and log out. The session token lives in the browser's server-side user storage."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui

from components.frame import SESSION_KEY, platform, session_principal, visible_sections
from engine.errors import NimbusError


def _safe_next(target: str | None) -> str:
    """Only local paths: an open redirect would let a link send users to another site after log-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    if target == "/":  # the dashboard, or the first section there is
        sections = visible_sections()
        return sections[0].path if sections else "/"
    return target


@ui.page("/login", title="Log in · Nimbus")
async def login_page(request: Request, next: str | None = None) -> RedirectResponse | None:
    target = _safe_next(next)
    if await session_principal(request) is not None:
        return RedirectResponse(target)
    ui.dark_mode().bind_value(app.storage.user, "dark")
    ip = request.client.host if request.client else ""

    async def submit() -> None:
        error.set_text("")
        if not username.value or not password.value:
            error.set_text("Enter your username and password.")
            return
        try:
            principal = await platform().auth.login(username.value.strip(), password.value, ip)
        except NimbusError as exc:
            password.set_value("")
            error.set_text(exc.message)
            return
        app.storage.user[SESSION_KEY] = platform().auth.issue_session(principal)
        ui.navigate.to(target)

    with ui.column().classes("absolute-center items-center gap-4"):
        ui.label("Nimbus").classes("text-3xl font-semibold")
        with ui.card().classes("w-80 gap-3 p-6"):
            ui.label("Log in").classes("text-lg")
            username = ui.input("Username").props("autofocus autocomplete=username").classes("w-full")
            password = (
                ui.input("Password", password=True, password_toggle_button=True)
                .props("autocomplete=current-password")
                .classes("w-full")
                .on("keydown.enter", submit)
            )
            username.mark("username")
            password.mark("password")
            error = ui.label("").classes("text-red-600 text-sm").mark("login-error")
            ui.button("Log in", on_click=submit).classes("w-full").mark("login")
    return None


@ui.page("/logout")
async def logout_page(request: Request) -> RedirectResponse:
    principal = await session_principal(request)
    if principal is not None:
        await platform().auth.logout(principal)
    app.storage.user.pop(SESSION_KEY, None)
    return RedirectResponse("/login")
