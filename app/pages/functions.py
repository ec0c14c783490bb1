"""The Functions section: the list (search, filters, sort, cursor pages, enable/disable, delete) and the
template gallery that creates a function. The detail page lives in app/pages/function_detail.py."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from app.pages.function_detail import STATUS_COLOURS, function_page
from components.build_log import BuildLogPanel
from components.code_panel import LANGUAGES
from components.confirm import confirm
from components.cursor_pager import CursorPager
from components.feedback import Failed, attempt
from components.form_errors import build, clear_errors, show_error, whole
from components.frame import PageContext, console_page
from components.live import live
from data.models import Function
from engine.events import Event, FunctionChanged
from engine.services.templates import Template

PAGE_SIZE = 20
SORTS = {"newest": "Newest first", "name": "Name (A–Z)", "updated": "Recently updated"}
ENABLED = {"": "Any status", "active": "Enabled", "offline": "Disabled"}


@console_page("/functions", "Functions")
async def functions_page(ctx: PageContext) -> None:
    await FunctionList(ctx).load()


class FunctionList:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.pager = CursorPager(self.load)
        self.items: list[Function] = []
        self.selected: set[str] = set()
        with ui.row().classes("w-full items-center gap-3"):
            self.search = (
                ui.input("Search by name", on_change=self._filtered)
                .props("clearable debounce=300")
                .mark("fn-search")
            )
            runtimes = {"": "All runtimes", **{r: r for r in sorted(ctx.platform.runtimes)}}
            self.runtime = ui.select(runtimes, value="", label="Runtime", on_change=self._filtered)
            self.runtime.classes("min-w-[140px]").mark("fn-filter-runtime")
            self.tag = (
                ui.input("Tag", on_change=self._filtered)
                .props("clearable debounce=300")
                .mark("fn-filter-tag")
            )
            self.enabled = ui.select(ENABLED, value="", label="Status", on_change=self._filtered)
            self.enabled.classes("min-w-[140px]").mark("fn-filter-enabled")
            self.sort = ui.select(SORTS, value="newest", label="Sort", on_change=self._filtered)
            self.sort.classes("min-w-[170px]").mark("fn-sort")
            ui.space()
            self.bulk = ui.button("Delete selected", icon="delete", on_click=self._delete_selected)
            self.bulk.props("flat color=negative").mark("fn-bulk-delete").set_visibility(False)
            ui.button("New function", icon="add", on_click=lambda: ui.navigate.to("/functions/new")).mark(
                "fn-new"
            )
        self.table = ui.column().classes("w-full gap-0").mark("fn-list")
        with ui.row().classes("w-full items-center justify-end gap-2"):
            page_label = ui.label("").classes("text-sm text-gray-500").mark("fn-page")
            previous = ui.button("Previous", icon="chevron_left", on_click=self.pager.newer).props("flat")
            following = ui.button("Next", icon="chevron_right", on_click=self.pager.older).props("flat")
            self.pager.attach(previous.mark("fn-prev"), page_label, following.mark("fn-next"))
        live(ctx.client, ctx.platform.bus, FunctionChanged, handler=self._changed, max_rate=2.0)

    @property
    def filtering(self) -> bool:
        return bool(self.search.value or self.runtime.value or self.tag.value or self.enabled.value)

    async def load(self) -> None:
        page = await attempt(
            self.ctx.platform.functions.list(
                self.ctx.principal,
                search=(self.search.value or "").strip() or None,
                runtime=self.runtime.value or None,
                status=self.enabled.value or None,
                tag=(self.tag.value or "").strip() or None,
                sort=self.sort.value or "newest",
                limit=PAGE_SIZE,
                cursor=self.pager.current,
            )
        )
        if isinstance(page, Failed):
            return
        self.items = page.items
        self.selected &= {f.id for f in self.items}
        self.pager.loaded(page.next_cursor)
        self._render()

    def _render(self, *_: Any) -> None:
        self.table.clear()
        self.bulk.set_visibility(bool(self.selected))
        with self.table:
            if not self.items:
                self._empty()
                return
            headings = (
                "",
                "Name",
                "Runtime",
                "Enabled",
                "Status",
                "Tags",
                "Memory",
                "Timeout",
                "Updated",
                "",
            )
            columns = "auto minmax(140px,2fr) auto auto auto minmax(80px,1fr) auto auto auto auto"
            with ui.grid(columns=columns).classes("w-full items-center gap-x-4 gap-y-1"):
                for title in headings:
                    ui.label(title).classes("text-xs uppercase text-gray-500")
                for fn in self.items:
                    self._row(fn)

    def _empty(self) -> None:
        with ui.column().classes("w-full items-center gap-2 py-10"):
            if self.filtering or not self.pager.on_first_page:
                ui.label("No functions match these filters on this page.").mark("fn-no-match")
                return
            ui.icon("functions").classes("text-5xl text-gray-400")
            ui.label("No functions yet").classes("text-lg").mark("fn-empty")
            ui.button(
                "Create a function", icon="add", on_click=lambda: ui.navigate.to("/functions/new")
            ).mark("fn-empty-create")

    def _row(self, fn: Function) -> None:
        writer = self.ctx.principal.can("developer")
        ui.checkbox(value=fn.id in self.selected, on_change=lambda e, f=fn: self._select(f, e.value)).mark(
            f"fn-select-{fn.name}"
        )
        ui.link(fn.name, f"/functions/{fn.id}").classes("font-medium").mark(f"fn-link-{fn.name}")
        ui.badge(fn.runtime, color="blue-grey")
        ui.switch(value=fn.status == "active", on_change=lambda e, f=fn: self._toggle(f, e.value)).mark(
            f"fn-toggle-{fn.name}"
        ).set_enabled(writer and fn.status in ("active", "offline"))
        ui.badge(fn.status, color=STATUS_COLOURS.get(fn.status, "grey")).mark(f"fn-status-{fn.name}")
        with ui.row().classes("gap-1"):
            for tag in fn.tags:
                ui.badge(tag, color="grey-4", text_color="black")
        ui.label(f"{fn.memory_mb} MB")
        ui.label(f"{fn.timeout_sec} s")
        ui.label(fn.updated_at.strftime("%Y-%m-%d %H:%M"))
        ui.button(icon="delete", on_click=lambda f=fn: self._delete(f)).props(
            "flat dense color=negative"
        ).mark(f"fn-delete-{fn.name}").set_enabled(writer)

    async def _filtered(self, *_: Any) -> None:
        self.pager.reset()
        self.selected.clear()
        await self.load()

    async def _changed(self, events: list[Event]) -> None:
        await self.load()

    def _select(self, fn: Function, on: bool) -> None:
        if on:
            self.selected.add(fn.id)
        else:
            self.selected.discard(fn.id)
        self.bulk.set_visibility(bool(self.selected))
        self.bulk.set_text(f"Delete selected ({len(self.selected)})")

    async def _toggle(self, fn: Function, on: bool) -> None:
        if on == (fn.status == "active"):
            return
        await attempt(
            self.ctx.platform.functions.set_status(self.ctx.principal, fn.id, online=on),
            success=f"{fn.name} {'enabled' if on else 'disabled'}",
        )
        await self.load()

    async def _delete(self, fn: Function) -> None:
        if not await confirm(
            f"Delete function {fn.name}?", "Its code, versions and test events are deleted."
        ):
            return
        await attempt(
            self.ctx.platform.functions.delete(self.ctx.principal, fn.id), success=f"Deleted {fn.name}"
        )
        await self.load()

    async def _delete_selected(self) -> None:
        chosen = [f for f in self.items if f.id in self.selected]
        if not chosen or not await confirm(
            f"Delete {len(chosen)} functions?", ", ".join(f.name for f in chosen)
        ):
            return
        for fn in chosen:
            await attempt(self.ctx.platform.functions.delete(self.ctx.principal, fn.id))
        ui.notify(f"Deleted {len(chosen)} functions", type="positive")
        self.selected.clear()
        await self.load()


# --- create from a template ------------------------------------------------------------------------------


@console_page("/functions/new", "New function")
async def new_function_page(ctx: PageContext, template: str = "") -> None:
    NewFunction(ctx, template)


class NewFunction:
    def __init__(self, ctx: PageContext, template_id: str) -> None:
        self.ctx = ctx
        gallery = ctx.platform.templates.list()
        self.template: Template | None = next((t for t in gallery if t.id == template_id), None) or next(
            iter(gallery), None
        )
        self.cards: dict[str, ui.card] = {}
        self.suggested = ""  # the description a template filled in
        runtimes = sorted({t.runtime for t in gallery} | set(ctx.platform.runtimes))
        ui.label("Start from a template").classes("text-lg font-semibold")
        with ui.row().classes("w-full items-center gap-3"):
            first = self.template.runtime if self.template else (runtimes[0] if runtimes else None)
            self.runtime = ui.select(runtimes, value=first, label="Runtime", on_change=self._runtime_changed)
            self.runtime.classes("min-w-[160px]").mark("fn-runtime")
        self.gallery = ui.row().classes("w-full gap-3").mark("template-gallery")
        with ui.row().classes("w-full items-start gap-6 flex-nowrap"):
            with ui.card().classes("w-[380px] shrink-0 gap-2"):
                ui.label("New function").classes("text-lg font-semibold")
                self.fields: dict[str, Any] = {
                    "name": ui.input("Name").props("autofocus").classes("w-full").mark("fn-name"),
                    "description": ui.input("Description").classes("w-full").mark("fn-description"),
                    "memory_mb": ui.number("Memory (MB)", precision=0).classes("w-full").mark("fn-memory"),
                    "timeout_sec": ui.number("Timeout (s)", precision=0).classes("w-full").mark("fn-timeout"),
                }
                self.error = ui.label("").classes("text-red-600 text-sm").mark("fn-create-error")
                self.error.set_visibility(False)
                self.create_button = ui.button("Create function", icon="add", on_click=self.create).mark(
                    "fn-create"
                )
                self.create_button.set_enabled(ctx.principal.can("developer"))
            with ui.column().classes("flex-1 min-w-0 gap-1"):
                self.preview_title = ui.label("").classes("font-semibold")
                self.preview = ui.codemirror("", language=None).classes("w-full h-[50vh] border rounded")
                self.preview.mark("template-preview").disable()
        self.build_log = BuildLogPanel(ctx)  # Go and Rust code is compiled on create: its log streams here
        self._render_gallery()
        self._choose(self.template)

    def _render_gallery(self) -> None:
        self.gallery.clear()
        self.cards.clear()
        templates = self.ctx.platform.templates.list(self.runtime.value)
        with self.gallery:
            if not templates:
                ui.label("No templates for this runtime yet.").classes("text-gray-500")
            for t in templates:
                card = ui.card().classes("w-60 cursor-pointer gap-1").mark(f"template-{t.id}")
                card.on("click", lambda _, t=t: self._choose(t))
                with card:
                    ui.label(t.title).classes("font-semibold")
                    ui.label(t.description).classes("text-sm text-gray-500")
                    ui.badge(t.category, color="blue-grey")
                self.cards[t.id] = card

    def _runtime_changed(self) -> None:
        self._render_gallery()
        self._choose(next(iter(self.ctx.platform.templates.list(self.runtime.value)), None))

    def _choose(self, template: Template | None) -> None:
        self.template = template
        for template_id, card in self.cards.items():
            card.classes(remove="ring-2 ring-blue-500")
            if template is not None and template_id == template.id:
                card.classes("ring-2 ring-blue-500")
        if template is None:
            self.preview_title.set_text("")
            self.preview.set_value("")
            return
        self.fields["memory_mb"].set_value(template.memory_mb)
        self.fields["timeout_sec"].set_value(template.timeout_sec)
        description = self.fields["description"]
        if not description.value or description.value == self.suggested:  # not the user's own words
            description.set_value(template.description)
        self.suggested = template.description
        entry = next(iter(template.files))
        self.preview_title.set_text(f"{template.title} · {entry} · handler {template.handler}")
        self.preview.set_language(LANGUAGES.get(template.runtime))
        self.preview.set_value(template.files[entry])

    async def create(self) -> None:
        clear_errors(self.fields, self.error)
        template = self.template
        if template is None:
            show_error(Failed("Choose a template first."), self.fields, self.error)
            return
        name = (self.fields["name"].value or "").strip()
        if not name:
            show_error(Failed("Enter a name for the function.", "name"), self.fields, self.error)
            return
        memory = whole(self.fields["memory_mb"].value, "memory_mb")
        if isinstance(memory, Failed):
            show_error(memory, self.fields, self.error)
            return
        timeout = whole(self.fields["timeout_sec"].value, "timeout_sec")
        if isinstance(timeout, Failed):
            show_error(timeout, self.fields, self.error)
            return
        description = self.fields["description"].value or ""
        request = build(
            lambda: template.request(name, description=description, memory_mb=memory, timeout_sec=timeout)
        )
        platform, principal = self.ctx.platform, self.ctx.principal
        if template.runtime in platform.builds.toolchains:
            self.build_log.follow(function_name=name)
        fn = (
            request
            if isinstance(request, Failed)
            else await attempt(platform.functions.create(principal, request), notify=False)
        )
        if isinstance(fn, Failed):
            show_error(fn, self.fields, self.error)
            return
        # The template's sample event becomes the function's first saved test event.
        await attempt(
            platform.test_events.save(principal, fn.id, "sample", template.sample_event), notify=False
        )
        ui.notify(f"Created {fn.name}", type="positive")
        ui.navigate.to(f"/functions/{fn.id}")


# "/functions/new" must win over "/functions/{ref}": routes match in the order they are registered, and
# the page modules load alphabetically (function_detail first), so register the detail page again last.
console_page("/functions/{ref}", "Function")(function_page)
