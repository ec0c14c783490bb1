"""One function: a header (status, version, enable, publish, delete) and tabs for its code, configuration,
test runs, invocations, metrics and, for Go/Rust, its builds. Thin: every read and write goes through a
platform service; the tabs' panels are components (code_panel, config_panel, test_panel, build_log), typed
against this page as `FunctionPage`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import app, ui

from components.build_log import BuildHistory
from components.code_panel import CodePanel
from components.config_panel import ConfigPanel
from components.confirm import confirm
from components.feedback import Failed, attempt
from components.form_errors import build
from components.frame import PageContext, console_page
from components.invocation_table import InvocationFilters, InvocationTable
from components.metrics_panel import MetricsPanel
from components.test_panel import TestPanel
from data.models import Function
from engine.services.function_schemas import FunctionUpdate

TABS = ("code", "config", "test", "invocations", "metrics", "builds")
STATUS_COLOURS = {"active": "positive", "offline": "grey", "building": "warning", "failed": "negative"}

# Ctrl/Cmd+S anywhere on the page saves (the editor's own keymap handles it while it has the focus), and
# leaving the page with unsaved code asks first. Both are page-wide, so they are installed once per page.
_PAGE_SCRIPT = """
<script>
window.nimbusDirty = false;
document.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 's' && !e.defaultPrevented) {
    e.preventDefault();
    emitEvent('nimbus-save');
  }
});
window.addEventListener('beforeunload', (e) => {
  if (window.nimbusDirty) { e.preventDefault(); e.returnValue = ''; }
});
</script>
"""
_CSS = (
    ".nimbus-error-line { background: rgba(239, 68, 68, 0.25) !important; box-shadow: inset 3px 0 #dc2626; }"
)


# --- the page ------------------------------------------------------------------------------------------


@console_page("/functions/{ref}", "Function")
async def function_page(ctx: PageContext, ref: str, tab: str = "code") -> None:
    fn = await attempt(ctx.platform.functions.get(ctx.principal, ref), notify=False)
    if isinstance(fn, Failed):
        ui.label(fn.message).classes("text-lg").mark("fn-not-found")
        ui.link("Back to functions", "/functions")
        return
    ui.add_body_html(_PAGE_SCRIPT)
    ui.add_css(_CSS)
    page = FunctionDetail(ctx, fn)
    await page.build(tab if tab in TABS else "code", ctx.request.query_params.get("from"))


class FunctionDetail:
    def __init__(self, ctx: PageContext, fn: Function) -> None:
        self.ctx = ctx
        self.fn = fn
        self.can_write = ctx.principal.can("developer")
        self.theme = "vscodeDark" if app.storage.user.get("dark") else "basicLight"

    async def build(self, tab: str, from_invocation: str | None) -> None:
        self.header = ui.row().classes("w-full items-center gap-3")
        self.render_header()
        with ui.tabs().classes("w-full").props("align=left") as self.tabs:
            ui.tab("code", "Code", icon="code").mark("tab-code")
            ui.tab("config", "Configuration", icon="tune").mark("tab-config")
            ui.tab("test", "Test", icon="play_arrow").mark("tab-test")
            ui.tab("invocations", "Invocations", icon="receipt_long").mark("tab-invocations")
            ui.tab("metrics", "Metrics", icon="insights").mark("tab-metrics")
            compiled = self.fn.runtime in self.ctx.platform.builds.toolchains  # go, rust: built on save
            if compiled:
                ui.tab("builds", "Builds", icon="construction").mark("tab-builds")
        if tab == "builds" and not compiled:
            tab = "code"
        with ui.tab_panels(self.tabs, value=tab).classes("w-full"):
            with ui.tab_panel("code"):
                self.code = CodePanel(self)
            with ui.tab_panel("config"):
                self.config = ConfigPanel(
                    self, await self.ctx.platform.functions.secret_names(self.ctx.principal, self.fn.id)
                )
                await self.config.layers.load()
                await self.config.load_executors()
            with ui.tab_panel("test"):
                events = await self.ctx.platform.test_events.list(self.ctx.principal, self.fn.id)
                self.test = TestPanel(self, events, await self._invocation_input(from_invocation))
                await self.test.load_environments()
            with ui.tab_panel("invocations"):
                await _invocations_tab(self.ctx, self.fn)
            with ui.tab_panel("metrics"):
                await _metrics_tab(self.ctx, self.fn)
            if compiled:
                with ui.tab_panel("builds"):
                    await BuildHistory(self.ctx, self.fn.id).load()
        ui.on("nimbus-save", self._save_shortcut)

    def render_header(self) -> None:
        fn = self.fn
        self.header.clear()
        with self.header:
            ui.link("Functions", "/functions").classes("text-sm")
            ui.label("/").classes("text-gray-400")
            ui.label(fn.name).classes("text-2xl font-semibold").mark("fn-title")
            ui.badge(fn.runtime, color="blue-grey").mark("fn-runtime")
            ui.badge(fn.status, color=STATUS_COLOURS.get(fn.status, "grey")).mark("fn-status")
            published = f" · published v{fn.latest_published}" if fn.latest_published else ""
            ui.label(f"$LATEST revision {fn.version}{published}").classes("text-sm text-gray-500").mark(
                "fn-version"
            )
            ui.space()
            switch = ui.switch("Enabled", value=fn.status == "active", on_change=self._toggle).mark(
                "fn-enabled"
            )
            switch.set_enabled(self.can_write and fn.status in ("active", "offline"))
            publish = ui.button("Publish version", icon="bookmark_add", on_click=self._publish).props("flat")
            publish.mark("fn-publish").set_enabled(self.can_write)
            delete = ui.button("Delete", icon="delete", on_click=self._delete).props("flat color=negative")
            delete.mark("fn-delete").set_enabled(self.can_write)

    def changed(self, fn: Function) -> None:
        """The function was saved: remember the new state and show it."""
        self.fn = fn
        self.render_header()

    async def update(self, make: Callable[[], FunctionUpdate]) -> Function | Failed:
        """Validate the request `make` builds and apply it: the saved function, or a Failed naming the
        field (not notified: the panel shows it where it belongs)."""
        request = build(make)
        if isinstance(request, Failed):
            return request
        return await attempt(
            self.ctx.platform.functions.update(self.ctx.principal, self.fn.id, request), notify=False
        )

    async def _toggle(self, e: Any) -> None:
        if bool(e.value) == (self.fn.status == "active"):
            return  # the switch only caught up with the real state
        fn = await attempt(
            self.ctx.platform.functions.set_status(self.ctx.principal, self.fn.id, online=bool(e.value)),
            success="Enabled" if e.value else "Disabled",
        )
        self.changed(fn if isinstance(fn, Function) else self.fn)

    async def _publish(self) -> None:
        version = await attempt(self.ctx.platform.functions.publish(self.ctx.principal, self.fn.id))
        if not isinstance(version, Failed):
            ui.notify(f"Published version {version.version}", type="positive")
            fn = await attempt(self.ctx.platform.functions.get(self.ctx.principal, self.fn.id))
            if isinstance(fn, Function):
                self.changed(fn)

    async def _delete(self) -> None:
        message = "Its code, versions and saved test events are deleted; invocation records are kept."
        if not await confirm(f"Delete function {self.fn.name}?", message):
            return
        done = await attempt(self.ctx.platform.functions.delete(self.ctx.principal, self.fn.id))
        if not isinstance(done, Failed):
            ui.run_javascript("window.nimbusDirty = false")
            ui.notify(f"Deleted {self.fn.name}", type="positive")
            ui.navigate.to("/functions")

    async def _save_shortcut(self) -> None:
        if self.tabs.value == "code":
            await self.code.save()
        elif self.tabs.value == "config":
            await self.config.save()

    async def _invocation_input(self, invocation_id: str | None) -> tuple[str, Any] | None:
        if not invocation_id:
            return None
        detail = await attempt(self.ctx.platform.invocations.get(self.ctx.principal, invocation_id))
        return None if isinstance(detail, Failed) else (invocation_id, detail.input)


# --- Invocations and Metrics (placeholders until the shared components land) ---------------------------


async def _invocations_tab(ctx: PageContext, fn: Function) -> None:
    """This function's invocations: the global table's component, fixed to one function, live."""
    table = InvocationTable(ctx, function_id=fn.id, page_size=20)
    await table.apply(InvocationFilters())


async def _metrics_tab(ctx: PageContext, fn: Function) -> None:
    """This function's cards and charts, from the per-minute rollups, kept live."""
    panel = MetricsPanel(ctx.platform, ctx.principal, fn.id)
    panel.element.mark("fn-metrics")
    await panel.refresh()
    panel.follow(ctx.client)
