"""The Layers section of a function's Configuration tab: the layer versions it mounts, in order (at most
5), with attach, detach and reorder. Each change is saved at once as a new $LATEST revision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nicegui import ui

from components.feedback import Failed, attempt
from engine.services.layer_attach import AttachedLayer, LayerChoice
from engine.services.layer_schemas import MAX_LAYERS, LayerRef

if TYPE_CHECKING:
    from components.code_panel import FunctionPage


class LayerPanel:
    def __init__(self, page: FunctionPage) -> None:
        self.page = page
        self.attached: list[AttachedLayer] = []
        self.choices: list[LayerChoice] = []
        with ui.card().classes("w-full gap-2").mark("cfg-layers") as self.card:
            with ui.row().classes("w-full items-center"):
                ui.label("Layers").classes("text-lg font-semibold")
                ui.space()
                ui.link("Manage layers", "/layers").classes("text-sm")
            ui.label(
                "Mounted read-only on the module path in this order; earlier layers win "
                f"(at most {MAX_LAYERS}). Publish a version to keep them with it."
            ).classes("text-sm text-gray-500")
            self.list_box = ui.column().classes("w-full gap-1").mark("cfg-layer-list")
            with ui.row().classes("w-full items-center gap-2"):
                self.layer = ui.select({}, label="Layer", on_change=self._layer_chosen).classes(
                    "min-w-[200px]"
                )
                self.layer.mark("cfg-layer-choice")
                self.version = (
                    ui.select({}, label="Version").classes("min-w-[120px]").mark("cfg-layer-version")
                )
                self.add = ui.button("Attach", icon="add", on_click=self._attach).mark("cfg-layer-attach")
            self.error = ui.label("").classes("text-red-600 text-sm").mark("cfg-layer-error")

    async def load(self) -> None:
        platform, principal, fn = self.page.ctx.platform, self.page.ctx.principal, self.page.fn
        attached = await attempt(platform.function_layers.list(principal, fn.id))
        choices = await attempt(platform.function_layers.choices(principal, fn.runtime))
        if isinstance(attached, Failed) or isinstance(choices, Failed):
            return
        self.attached, self.choices = attached, choices
        self._render()

    def _render(self) -> None:
        self.list_box.clear()
        writable = self.page.can_write
        with self.list_box:
            if not self.attached:
                ui.label("No layers attached").classes("text-sm text-gray-500").mark("cfg-layers-none")
            last = len(self.attached) - 1
            for i, layer in enumerate(self.attached):
                with ui.row().classes("w-full items-center gap-2").mark(f"cfg-layer-{layer.layer_name}"):
                    ui.label(f"{i + 1}.").classes("w-6 text-gray-500")
                    ui.link(layer.layer_name, f"/layers?layer={layer.layer_name}").classes("font-medium")
                    ui.badge(f"v{layer.layer_version}", color="blue-grey")
                    ui.space()
                    up = ui.button(icon="arrow_upward", on_click=lambda i=i: self._move(i, -1))
                    up.props("flat dense").mark(f"cfg-layer-up-{layer.layer_name}").set_enabled(
                        writable and i > 0
                    )
                    down = ui.button(icon="arrow_downward", on_click=lambda i=i: self._move(i, 1))
                    down.props("flat dense").mark(f"cfg-layer-down-{layer.layer_name}")
                    down.set_enabled(writable and i < last)
                    remove = ui.button(icon="close", on_click=lambda i=i: self._detach(i))
                    remove.props("flat dense color=negative").mark(f"cfg-layer-detach-{layer.layer_name}")
                    remove.set_enabled(writable)
        taken = {a.layer_id for a in self.attached}
        self.layer.set_options({c.layer_id: c.layer_name for c in self.choices if c.layer_id not in taken})
        self.layer.set_value(None)
        self.version.set_options({})
        full = len(self.attached) >= MAX_LAYERS
        self.add.set_enabled(writable and not full)
        self.add.set_text(f"At most {MAX_LAYERS} layers" if full else "Attach")

    def _layer_chosen(self) -> None:
        choice = next((c for c in self.choices if c.layer_id == self.layer.value), None)
        versions = {n: f"v{n}" for n in choice.versions} if choice else {}
        self.version.set_options(versions, value=next(iter(versions), None))

    async def _attach(self) -> None:
        if not self.layer.value or not self.version.value:
            self.error.set_text("Choose a layer and a version to attach.")
            return
        refs = [
            *self._refs(self.attached),
            LayerRef(layer_id=self.layer.value, layer_version=self.version.value),
        ]
        await self._save(refs, "Layer attached")

    async def _detach(self, index: int) -> None:
        kept = [a for i, a in enumerate(self.attached) if i != index]
        await self._save(self._refs(kept), f"Layer {self.attached[index].layer_name} detached")

    async def _move(self, index: int, step: int) -> None:
        order = list(self.attached)
        order[index], order[index + step] = order[index + step], order[index]
        await self._save(self._refs(order), "Layer order saved")

    @staticmethod
    def _refs(layers: list[AttachedLayer]) -> list[LayerRef]:
        return [LayerRef(layer_id=a.layer_id, layer_version=a.layer_version) for a in layers]

    async def _save(self, refs: list[LayerRef], success: str) -> None:
        # The card's context, not the clicked button's: re-rendering the list deletes that button.
        with self.card:
            self.error.set_text("")
            platform, principal = self.page.ctx.platform, self.page.ctx.principal
            attached = await attempt(
                platform.function_layers.set(principal, self.page.fn.id, refs), notify=False
            )
            if isinstance(attached, Failed):
                self.error.set_text(attached.message)
                return
            self.attached = attached
            self._render()
            fn = await attempt(platform.functions.get(principal, self.page.fn.id))
            if not isinstance(fn, Failed):
                self.page.changed(fn)
            ui.notify(success, type="positive")
