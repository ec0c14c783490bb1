"""Go/Rust builds in the console: `BuildLogPanel` streams a running build's compiler output live (it
follows one function's builds, or a name about to be created) and keeps the log after a failure with the
compiler's error lines highlighted; `BuildHistory` is the Builds tab: past builds with status and
duration, and the log of the selected one. `build_problem` turns a refused save into the editor's
error line."""

from __future__ import annotations

import re
from typing import Any

from nicegui import ui

from components.feedback import Failed, attempt
from components.frame import PageContext
from components.live import live
from data.models import Build
from engine.builds.diagnostics import location
from engine.events import BuildFinished, BuildLog, BuildStarted, Event
from engine.services.code_check import SyntaxProblem

STATUS_COLOURS = {"building": "warning", "succeeded": "positive", "failed": "negative"}
ERROR_CLASSES = "text-red-700 font-bold bg-red-50"
_ERROR_LINE = re.compile(r"^(error(\[E\d+\])?: |(\./)?[\w./+-]+\.go:\d+(:\d+)?: |build failed)")
_BUILD_FAILED = "build failed: "
HISTORY_PAGE = 20


def is_error_line(line: str, place: str = "") -> bool:
    """A compiler error line (or a line pointing at `place`, "main.go:9:"): shown highlighted."""
    return bool(_ERROR_LINE.match(line)) or bool(place and place in line)


def build_problem(message: str, files: dict[str, str]) -> SyntaxProblem | None:
    """The file and line a refused save's "build failed: lib.rs:3:5: ..." points at, when it is one of
    the function's files."""
    if not message.startswith(_BUILD_FAILED):
        return None
    error = message.removeprefix(_BUILD_FAILED)
    found = location(error)
    if found is None or found[0] not in files:
        return None
    return SyntaxProblem(found[0], found[1], 0, error.split(": ", 1)[-1])


def _describe(build: Build) -> str:
    when = build.created_at.strftime("%Y-%m-%d %H:%M:%S")
    took = f" in {build.duration_ms / 1000:.2f} s" if build.duration_ms else ""
    cached = " · from the cache" if build.cached else ""
    return f"Build {build.id[-8:]} · {build.status}{took}{cached} · {when} by {build.created_by}"


class BuildLogPanel:
    """One build's log: live while it runs, the stored log once it ended (or when `show`n)."""

    def __init__(
        self, ctx: PageContext, *, function_id: str = "", function_name: str = "", mark: str = "build"
    ) -> None:
        """`mark` prefixes its markers (`build-log`, `build-status` ...): a page may hold two panels."""
        self.ctx = ctx
        self.mark = mark
        self.function_id = function_id
        self.function_name = function_name
        self.build_id: str | None = None
        with ui.card().classes("w-full gap-1").mark(f"{mark}-panel") as self.card:
            with ui.row().classes("w-full items-center gap-2"):
                ui.icon("construction").classes("text-gray-500")
                self.title = ui.label("Build log").classes("font-semibold").mark(f"{mark}-title")
                self.status = ui.badge("", color="grey").mark(f"{mark}-status")
            self.error = ui.label("").classes("text-red-700 font-mono text-sm").mark(f"{mark}-error")
            self.error.set_visibility(False)
            self.log = ui.log(max_lines=5000).classes("w-full h-72 font-mono text-xs").mark(f"{mark}-log")
        self.card.set_visibility(False)
        live(
            ctx.client,
            ctx.platform.bus,
            BuildStarted,
            BuildLog,
            BuildFinished,
            handler=self._events,
            accept=self._mine,
        )

    def follow(self, *, function_id: str = "", function_name: str = "") -> None:
        """Show the next build of this function (a name: a function about to be created)."""
        self.function_id, self.function_name = function_id, function_name

    def show(self, build: Build) -> None:
        """Render a build as stored: status, the first error, the whole log with error lines marked."""
        self.build_id = build.id
        self.card.set_visibility(True)
        self.title.set_text(_describe(build))
        self._status(build.status)
        self.error.set_text(build.error)
        self.error.set_visibility(bool(build.error))
        found = location(build.error) if build.error else None
        place = f"{found[0]}:{found[1]}:" if found else ""
        self.log.clear()
        for line in build.log.splitlines():
            self._push(line, place)

    def _status(self, status: str) -> None:
        self.status.set_text(status)
        self.status.props(f"color={STATUS_COLOURS.get(status, 'grey')}")

    def _push(self, line: str, place: str = "") -> None:
        if is_error_line(line, place):
            self.log.push(line, classes=ERROR_CLASSES)
            self.log.default_slot.children[-1].mark(f"{self.mark}-error-line")
        else:
            self.log.push(line)

    def _mine(self, event: Event) -> bool:
        if self.function_id:
            return getattr(event, "function_id", None) == self.function_id
        return bool(self.function_name) and getattr(event, "function_name", None) == self.function_name

    async def _events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, BuildStarted):
                self.build_id = event.build_id
                self.card.set_visibility(True)
                self.title.set_text(f"Building {event.function_name} ({event.runtime})…")
                self._status("building")
                self.error.set_visibility(False)
                self.log.clear()
            elif isinstance(event, BuildLog) and event.build_id == self.build_id:
                self._push(event.line)
            elif isinstance(event, BuildFinished):
                # The stored log is the whole truth (a burst of live lines may have been coalesced away);
                # a cached build has no live part at all.
                build = await attempt(self.ctx.platform.builds.get(self.ctx.principal, event.build_id))
                if isinstance(build, Build):
                    self.show(build)


class BuildHistory:
    """The Builds tab: a function's builds, newest first (live), and the selected one's log."""

    def __init__(self, ctx: PageContext, function_id: str) -> None:
        self.ctx = ctx
        self.function_id = function_id
        self.cursor: str | None = None
        self.builds: list[Build] = []
        with ui.row().classes("w-full items-start gap-4 flex-nowrap"):
            with ui.column().classes("w-[460px] shrink-0 gap-1"):
                self.rows = ui.column().classes("w-full gap-1").mark("builds-list")
                self.more = ui.button("Older builds", icon="expand_more", on_click=self._more).props("flat")
                self.more.mark("builds-more").set_visibility(False)
            with ui.column().classes("flex-1 min-w-0"):
                self.viewer = BuildLogPanel(ctx, function_id=function_id, mark="history")
        live(
            ctx.client,
            ctx.platform.bus,
            BuildFinished,
            handler=self._finished,
            max_rate=2.0,
            accept=lambda e: getattr(e, "function_id", None) == function_id,
        )

    async def load(self) -> None:
        """The newest page; the newest build is selected."""
        self.builds, self.cursor = [], None
        await self._fetch()
        if self.builds:
            await self.select(self.builds[0].id)

    async def select(self, build_id: str) -> None:
        build = await attempt(self.ctx.platform.builds.get(self.ctx.principal, build_id))
        if isinstance(build, Build):
            self.viewer.show(build)
            self._render()

    async def _fetch(self) -> None:
        page: Any = await attempt(
            self.ctx.platform.builds.list(
                self.ctx.principal, self.function_id, limit=HISTORY_PAGE, cursor=self.cursor
            )
        )
        if isinstance(page, Failed):
            return
        self.builds += page.items
        self.cursor = page.next_cursor
        self._render()

    async def _more(self) -> None:
        if self.cursor:
            await self._fetch()

    async def _finished(self, events: list[Event]) -> None:
        await self.load()

    def _render(self) -> None:
        self.rows.clear()
        self.more.set_visibility(self.cursor is not None)
        with self.rows:
            if not self.builds:
                ui.label("No builds yet: saving Go or Rust code builds it.").classes("text-gray-500").mark(
                    "builds-empty"
                )
            for build in self.builds:
                self._row(build)

    def _row(self, build: Build) -> None:
        selected = build.id == self.viewer.build_id
        row = ui.row().classes("w-full items-center gap-2 px-2 py-1 rounded cursor-pointer hover:bg-gray-100")
        if selected:
            row.classes("bg-blue-50")
        row.mark(f"build-{build.id}").on("click", lambda _, b=build: self.select(b.id))
        with row:
            ui.badge(build.status, color=STATUS_COLOURS.get(build.status, "grey"))
            ui.label(build.created_at.strftime("%Y-%m-%d %H:%M:%S")).classes("text-sm")
            took = f"{build.duration_ms / 1000:.2f} s" if build.duration_ms else "—"
            ui.label("cached" if build.cached else took).classes("text-sm text-gray-500")
            ui.label(build.created_by).classes("text-sm text-gray-500 truncate")
