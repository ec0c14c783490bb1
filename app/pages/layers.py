"""The Layers section: every layer with its runtimes, newest version, size and how many functions use it;
creating a layer; one layer's versions, the functions that mount it, adding a version (zip upload, or a
build from a pasted requirements.txt / package.json) with the build log streaming live and kept on
failure; deleting a layer behind a confirmation."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from pydantic import ValidationError

from components.confirm import confirm
from components.feedback import Failed, attempt
from components.frame import PageContext, console_page
from components.live import live
from data.models import LayerVersion
from engine.events import Event, LayerBuildLog, LayerChanged
from engine.services.function_schemas import RUNTIMES
from engine.services.layer_schemas import LayerCreate
from engine.services.layers import LayerDetail, LayerSummary

STATUS_COLOURS = {"ready": "positive", "building": "warning", "failed": "negative"}
PAGE_SIZE = 50
LOG_LINES = 2000


@console_page("/layers", "Layers")
async def layers_page(ctx: PageContext, layer: str = "") -> None:
    page = LayersPage(ctx)
    await page.load()
    if layer:
        await page.select(layer)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class LayersPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.can_write = ctx.principal.can("developer")
        self.items: list[LayerSummary] = []
        self.detail: LayerDetail | None = None
        self.log_key: tuple[str, int] | None = None  # (layer id, version) whose log is shown
        self.log_tail = ""  # a line the build has not finished printing yet
        with ui.row().classes("w-full items-center gap-3"):
            self.search = ui.input("Search by name", on_change=self.load).props("clearable debounce=300")
            self.search.mark("layer-search")
            ui.space()
            new = ui.button("New layer", icon="add", on_click=self._open_create).mark("layer-new")
            new.set_enabled(self.can_write)
        self._create_form()
        self.table = ui.column().classes("w-full gap-0").mark("layer-list")
        self.detail_box = ui.column().classes("w-full gap-3").mark("layer-detail")
        live(ctx.client, ctx.platform.bus, LayerChanged, LayerBuildLog, handler=self._events, max_rate=5.0)

    # --- the list ---------------------------------------------------------------------------------

    async def load(self, *_: Any) -> None:
        page = await attempt(
            self.ctx.platform.layers.list(
                self.ctx.principal, search=(self.search.value or "").strip() or None, limit=PAGE_SIZE
            )
        )
        if isinstance(page, Failed):
            return
        self.items = page.items
        self.table.clear()
        with self.table:
            if not self.items:
                self._empty()
                return
            columns = "minmax(140px,2fr) minmax(120px,1fr) auto auto auto auto auto"
            with ui.grid(columns=columns).classes("w-full items-center gap-x-4 gap-y-1"):
                for title in ("Name", "Runtimes", "Latest", "Status", "Size", "Used by", ""):
                    ui.label(title).classes("text-xs uppercase text-gray-500")
                for item in self.items:
                    self._row(item)

    def _empty(self) -> None:
        with ui.column().classes("w-full items-center gap-2 py-10"):
            if self.search.value:
                ui.label("No layers match this search.").mark("layer-no-match")
                return
            ui.icon("layers").classes("text-5xl text-gray-400")
            ui.label("No layers yet").classes("text-lg").mark("layer-empty")
            ui.label(
                "A layer bundles dependencies (a zip, or built from requirements.txt or package.json) "
                "that functions mount beside their code."
            ).classes("text-sm text-gray-500")

    def _row(self, item: LayerSummary) -> None:
        layer, latest = item.layer, item.latest
        ui.link(layer.name, f"/layers?layer={layer.name}").classes("font-medium").mark(
            f"layer-link-{layer.name}"
        )
        with ui.row().classes("gap-1"):
            for runtime in layer.compatible_runtimes:
                ui.badge(runtime, color="blue-grey")
        ui.label(f"v{latest.version}" if latest else "—").mark(f"layer-latest-{layer.name}")
        if latest is not None:
            ui.badge(latest.status, color=STATUS_COLOURS.get(latest.status, "grey"))
        else:
            ui.label("no versions").classes("text-sm text-gray-500")
        ui.label(human_size(latest.size_bytes) if latest and latest.size_bytes else "—").mark(
            f"layer-size-{layer.name}"
        )
        ui.label(f"{item.used_by} function{'s' if item.used_by != 1 else ''}").mark(
            f"layer-used-{layer.name}"
        )
        delete = ui.button(icon="delete", on_click=lambda n=layer.name: self._delete(n))
        delete.props("flat dense color=negative").mark(f"layer-delete-{layer.name}").set_enabled(
            self.can_write
        )

    # --- create -----------------------------------------------------------------------------------

    def _create_form(self) -> None:
        with ui.dialog() as self.create_dialog, ui.card().classes("w-[420px] gap-2"):
            ui.label("New layer").classes("text-lg font-semibold")
            self.new_name = ui.input("Name").props("autofocus").classes("w-full").mark("layer-name")
            self.new_description = ui.input("Description").classes("w-full").mark("layer-description")
            self.new_runtimes = (
                ui.select(list(RUNTIMES), value=["python"], multiple=True, label="Compatible runtimes")
                .classes("w-full")
                .mark("layer-runtimes")
            )
            self.create_error = ui.label("").classes("text-red-600 text-sm").mark("layer-create-error")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=self.create_dialog.close).props("flat")
                ui.button("Create layer", icon="add", on_click=self._create).mark("layer-create")

    def _open_create(self) -> None:
        self.new_name.set_value("")
        self.new_description.set_value("")
        self.create_error.set_text("")
        self.create_dialog.open()

    async def _create(self) -> None:
        self.new_name.error = None
        self.create_error.set_text("")
        try:
            request = LayerCreate(
                name=(self.new_name.value or "").strip(),
                description=self.new_description.value or "",
                compatible_runtimes=list(self.new_runtimes.value or []),
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error.get("loc", ())) or "input"
            self.create_error.set_text(f"{where}: {error['msg']}".replace("Value error, ", ""))
            return
        layer = await attempt(self.ctx.platform.layers.create(self.ctx.principal, request), notify=False)
        if isinstance(layer, Failed):
            if layer.field == "name":
                self.new_name.error = layer.message
            else:
                self.create_error.set_text(layer.message)
            return
        self.create_dialog.close()
        ui.notify(f"Created layer {layer.name}", type="positive")
        await self.load()
        await self.select(layer.name)

    async def _delete(self, name: str) -> None:
        item = next((i for i in self.items if i.layer.name == name), None)
        used = item.used_by if item is not None else 0
        message = "All its versions are deleted."
        if used:
            message = f"It is attached to {used} function(s); deleting detaches it from them. " + message
        if not await confirm(f"Delete layer {name}?", message, typed=name if used else None):
            return
        done = await attempt(
            self.ctx.platform.layers.delete(self.ctx.principal, name, force=bool(used)),
            success=f"Deleted layer {name}",
        )
        if not isinstance(done, Failed) and self.detail is not None and self.detail.layer.name == name:
            self.detail = None
            self.detail_box.clear()
        await self.load()

    # --- one layer --------------------------------------------------------------------------------

    async def select(self, ref: str) -> None:
        detail = await attempt(self.ctx.platform.layers.get(self.ctx.principal, ref))
        if isinstance(detail, Failed):
            return
        self.detail = detail
        self._render_detail()
        self._fill()
        building = next((v for v in detail.versions if v.status == "building"), None)
        shown = building or (detail.versions[0] if detail.versions else None)
        if shown is not None:
            await self.show_log(shown.version)

    def _render_detail(self) -> None:
        detail = self.detail
        assert detail is not None
        layer = detail.layer
        self.detail_box.clear()
        with self.detail_box, ui.card().classes("w-full gap-3"):
            with ui.row().classes("w-full items-center gap-3"):
                ui.label(layer.name).classes("text-xl font-semibold").mark("layer-title")
                for runtime in layer.compatible_runtimes:
                    ui.badge(runtime, color="blue-grey")
                ui.label(layer.description).classes("text-sm text-gray-500")
            with ui.row().classes("w-full items-start gap-6"):
                with ui.column().classes("flex-1 min-w-[320px] gap-1"):
                    ui.label("Versions").classes("font-semibold")
                    self.versions_box = ui.column().classes("w-full gap-1").mark("layer-versions")
                with ui.column().classes("min-w-[200px] gap-1"):
                    ui.label("Used by").classes("font-semibold")
                    self.used_box = ui.column().classes("gap-1").mark("layer-used-by")
            self._add_version_form()
            with ui.row().classes("w-full items-center gap-2"):
                self.log_title = ui.label("Build log").classes("font-semibold").mark("layer-log-title")
                self.log_error = ui.label("").classes("text-sm text-red-600").mark("layer-log-error")
            self.log = ui.log(max_lines=LOG_LINES).classes("w-full h-64 font-mono text-xs").mark("layer-log")

    def _fill(self) -> None:
        """The parts of the shown layer that change: its versions and the functions using it."""
        assert self.detail is not None
        self.versions_box.clear()
        with self.versions_box:
            self._versions(self.detail.versions)
        self.used_box.clear()
        with self.used_box:
            if not self.detail.used_by:
                ui.label("No function uses this layer").classes("text-sm text-gray-500")
            for user in self.detail.used_by:
                ui.link(f"{user.function_name} (v{user.layer_version})", f"/functions/{user.function_id}")

    def _versions(self, versions: list[LayerVersion]) -> None:
        if not versions:
            ui.label("No versions yet: upload a zip or build one below.").classes("text-sm text-gray-500")
            return
        with ui.grid(columns="auto auto auto auto auto auto auto").classes("items-center gap-x-4 gap-y-1"):
            for title in ("Version", "Source", "Status", "Size", "Files", "Created", ""):
                ui.label(title).classes("text-xs uppercase text-gray-500")
            for v in versions:
                ui.label(f"v{v.version}").mark(f"layer-version-{v.version}")
                ui.label(v.source)
                ui.badge(v.status, color=STATUS_COLOURS.get(v.status, "grey")).mark(
                    f"layer-status-{v.version}"
                )
                ui.label(human_size(v.size_bytes) if v.size_bytes else "—")
                ui.label(str(v.file_count) if v.file_count else "—")
                ui.label(v.created_at.strftime("%Y-%m-%d %H:%M"))
                ui.button("Log", on_click=lambda n=v.version: self.show_log(n)).props("flat dense").mark(
                    f"layer-show-log-{v.version}"
                )

    def _add_version_form(self) -> None:
        ui.label("Add a version").classes("font-semibold")
        with ui.tabs().props("align=left dense") as tabs:
            ui.tab("zip", "Upload zip", icon="upload_file").mark("layer-tab-zip")
            ui.tab("pip", "requirements.txt", icon="code").mark("layer-tab-pip")
            ui.tab("npm", "package.json", icon="javascript").mark("layer-tab-npm")
        with ui.tab_panels(tabs, value="zip").classes("w-full"):
            with ui.tab_panel("zip"):
                ui.label(
                    "Python packages go in python/ (or at the top), Node.js modules in nodejs/node_modules/."
                ).classes("text-sm text-gray-500")
                limit = self.ctx.platform.settings.max_layer_bytes
                upload = ui.upload(
                    label="Layer zip", auto_upload=True, max_file_size=limit, on_upload=self._upload
                )
                upload.props("accept=.zip").mark("layer-upload").set_enabled(self.can_write)
            with ui.tab_panel("pip"):
                self.requirements = (
                    ui.textarea("requirements.txt", placeholder="requests==2.32.3")
                    .classes("w-full font-mono")
                    .mark("layer-requirements")
                )
                build = ui.button("Build with pip", icon="build", on_click=lambda: self._build("pip"))
                build.mark("layer-build-pip").set_enabled(self.can_write)
            with ui.tab_panel("npm"):
                self.package_json = (
                    ui.textarea("package.json", placeholder='{"dependencies": {"left-pad": "1.3.0"}}')
                    .classes("w-full font-mono")
                    .mark("layer-package-json")
                )
                build = ui.button("Build with npm", icon="build", on_click=lambda: self._build("npm"))
                build.mark("layer-build-npm").set_enabled(self.can_write)

    async def _upload(self, e: Any) -> None:
        if self.detail is None:
            return
        data = await e.file.read()
        version = await attempt(
            self.ctx.platform.layers.add_zip(self.ctx.principal, self.detail.layer.id, data),
            success=f"Uploaded {e.file.name}",
        )
        e.sender.reset()
        if not isinstance(version, Failed):
            await self._refresh()
            await self.show_log(version.version)

    async def _build(self, source: str) -> None:
        if self.detail is None:
            return
        box = self.requirements if source == "pip" else self.package_json
        box.error = None
        version = await attempt(
            self.ctx.platform.layers.add_build(
                self.ctx.principal, self.detail.layer.id, source, box.value or ""
            ),
            notify=False,
        )
        if isinstance(version, Failed):
            box.error = version.message
            return
        ui.notify(f"Building version {version.version}…")
        await self._refresh()
        await self.show_log(version.version)

    async def show_log(self, number: int) -> None:
        """Show a version's build log: what is kept, then (while it builds) what streams in."""
        if self.detail is None:
            return
        layer = self.detail.layer
        version = await attempt(self.ctx.platform.layers.version(self.ctx.principal, layer.id, number))
        if isinstance(version, Failed):
            return
        self.log_key = (layer.id, number)
        self.log.clear()
        self.log_tail = ""
        what = {"zip": "uploaded zip, nothing was built"}.get(version.source, version.status)
        self.log_title.set_text(f"Build log · v{number} · {what}")
        self.log_error.set_text(version.error)
        if version.build_log:
            self._push(version.build_log)

    def _push(self, text: str) -> None:
        """Append build output; a line the build has not finished yet waits for its end."""
        lines, newline, self.log_tail = (self.log_tail + text).rpartition("\n")
        if newline:
            self.log.push(lines)

    # --- live -------------------------------------------------------------------------------------

    async def _events(self, events: list[Event]) -> None:
        changed = False
        for event in events:
            if isinstance(event, LayerBuildLog):
                if self.log_key == (event.layer_id, event.version):
                    self._push(event.text)
            elif isinstance(event, LayerChanged):
                changed = True
        if changed:
            await self._refresh(events)

    async def _refresh(self, events: list[Event] | None = None) -> None:
        await self.load()
        if self.detail is None:
            return
        mine = [e for e in events or [] if isinstance(e, LayerChanged) and e.layer_id == self.detail.layer.id]
        if events is not None and not mine:
            return
        if any(e.action == "deleted" for e in mine):
            self.detail = None
            self.detail_box.clear()
            return
        key = self.log_key
        detail = await attempt(self.ctx.platform.layers.get(self.ctx.principal, self.detail.layer.id))
        if isinstance(detail, Failed):
            return
        self.detail = detail
        self._fill()
        if key is not None and any(e.version == key[1] and e.action in ("ready", "failed") for e in mine):
            await self.show_log(key[1])  # the build ended: show the log as kept, with its verdict
