"""The console's shared layout and page decorator.

`@console_page(path, title)` registers a NiceGUI page that requires a logged-in user (else it
redirects to /login), draws the header and the sidebar, and calls the page function with a
`PageContext`. The sidebar lists every section of the product, but only those whose page is
registered: a section whose issue has not landed is not shown."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui
from nicegui.client import Client

from engine.errors import NimbusError
from engine.principal import Principal

if TYPE_CHECKING:
    from engine.platform import Platform


@dataclass(frozen=True, slots=True)
class Section:
    label: str
    icon: str
    path: str


SECTIONS: tuple[Section, ...] = (
    Section("Dashboard", "dashboard", "/"),
    Section("Functions", "functions", "/functions"),
    Section("Workflows", "account_tree", "/workflows"),
    Section("Invocations", "receipt_long", "/invocations"),
    Section("Logs", "article", "/logs"),
    Section("Schedules", "schedule", "/schedules"),
    Section("Webhooks", "webhook", "/webhooks"),
    Section("Layers", "layers", "/layers"),
    Section("Environments", "dns", "/environments"),
    Section("DLQ", "report", "/dlq"),
    Section("Audit", "policy", "/audit"),
    Section("Quota", "data_usage", "/quota"),
    Section("Retention", "auto_delete", "/retention"),
    Section("Performance", "speed", "/performance"),
    Section("Alerts", "notifications", "/alerts"),
    Section("Settings", "settings", "/settings"),
    Section("System", "memory", "/system"),
)

SESSION_KEY = "session"  # app.storage.user key holding the signed session token


@dataclass(frozen=True, slots=True)
class PageContext:
    """What a page function gets: the engine, who is looking, and the page's client."""

    platform: Platform
    principal: Principal
    client: Client
    request: Request


def platform() -> Platform:
    return app.state.platform  # type: ignore[no-any-return]


def registered_paths() -> set[str]:
    return set(Client.page_routes.values())


def visible_sections() -> list[Section]:
    paths = registered_paths()
    return [s for s in SECTIONS if s.path in paths]


async def session_principal(request: Request) -> Principal | None:
    """The logged-in user of this browser, or None (no session, expired, user disabled)."""
    token = app.storage.user.get(SESSION_KEY)
    if not token:
        return None
    ip = request.client.host if request.client else ""
    try:
        return await platform().auth.session_principal(token, ip)
    except NimbusError:
        app.storage.user.pop(SESSION_KEY, None)
        return None


PageFunction = Callable[..., Awaitable[None]]


def console_page(path: str, title: str, *, chrome: bool = True) -> Callable[[PageFunction], PageFunction]:
    """Register `fn(ctx, **path_and_query_params)` as a logged-in console page at `path`.
    `chrome=False` draws no header or sidebar (the wall display)."""

    def decorate(fn: PageFunction) -> PageFunction:
        own = [p for name, p in inspect.signature(fn).parameters.items() if name != "ctx"]
        extra = [
            inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
            inspect.Parameter("client", inspect.Parameter.KEYWORD_ONLY, annotation=Client),
        ]

        async def page(**kwargs: Any) -> RedirectResponse | None:
            request: Request = kwargs.pop("request")
            client: Client = kwargs.pop("client")
            principal = await session_principal(request)
            if principal is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}")
            ctx = PageContext(platform(), principal, client, request)
            if chrome:
                _chrome(ctx, title, path)
                with ui.column().classes("w-full p-4 gap-4 nimbus-page"):
                    await fn(ctx, **kwargs)
            else:
                _dark_mode()
                await fn(ctx, **kwargs)
            return None

        page.__name__ = fn.__name__
        page.__qualname__ = fn.__qualname__
        page.__module__ = fn.__module__
        page.__doc__ = fn.__doc__
        page.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
        ui.page(path, title=f"{title} · Nimbus")(page)
        return fn

    return decorate


def _dark_mode() -> ui.dark_mode:
    return ui.dark_mode().bind_value(app.storage.user, "dark")


def _chrome(ctx: PageContext, title: str, path: str) -> None:
    """Header (title, isolation level, user, dark mode, log out) and the sidebar."""
    dark = _dark_mode()
    ui.colors(primary="#2563eb")
    isolation = ctx.platform.isolation()
    with ui.header(elevated=False).classes("items-center gap-3 px-4 py-2 bg-slate-900 text-white"):
        ui.button(icon="menu", on_click=lambda: drawer.toggle()).props("flat round dense color=white")
        ui.link("Nimbus", "/").classes("text-lg font-semibold text-white no-underline")
        ui.label(title).classes("text-slate-300").mark("page-title")
        ui.space()
        colour = {"strong": "positive", "partial": "warning"}.get(isolation.level, "negative")
        badge = ui.badge(f"isolation: {isolation.level}", color=colour).mark("isolation")
        if isolation.warnings:
            badge.tooltip("; ".join(isolation.warnings))
        ui.button(icon="dark_mode", on_click=dark.toggle).props("flat round dense color=white").tooltip(
            "Dark / light"
        )
        ui.label(f"{ctx.principal.actor} ({ctx.principal.role})").classes("text-sm").mark("user")
        ui.button(icon="logout", on_click=lambda: ui.navigate.to("/logout")).props(
            "flat round dense color=white"
        ).tooltip("Log out").mark("logout")
    with ui.left_drawer(value=True, bordered=True).classes("p-0") as drawer:
        with ui.list().props("dense").classes("w-full"):
            for section in visible_sections():
                active = section.path == path or (section.path != "/" and path.startswith(section.path))
                with (
                    ui.item(on_click=lambda s=section: ui.navigate.to(s.path))
                    .classes("rounded" + (" bg-blue-100 dark:bg-slate-700" if active else ""))
                    .mark(f"nav-{section.label}")
                ):
                    with ui.item_section().props("avatar"):
                        ui.icon(section.icon)
                    with ui.item_section():
                        ui.item_label(section.label)


def current_path(request: Request) -> str:
    return request.url.path
