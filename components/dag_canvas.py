"""The DAG canvas: a NiceGUI element over Cytoscape.js (served from components/vendor/cytoscape, no CDN).

Why Cytoscape.js: it is the most used graph library on npm, has no framework dependency (it embeds in
NiceGUI's Vue as one small component), draws thousands of elements on a canvas, and its own extensions
cover what the editor needs: cytoscape-edgehandles (connect by dragging, from a handle or in draw mode)
and cytoscape-dagre (automatic layered layout for definitions that carry no positions). React Flow
would drag React into a Vue page; Drawflow has no automatic layout.

The element draws `graph` (from components.workflow_graph.to_graph) and colours nodes by `statuses`
({state: status}); it never changes the model itself, it reports the gesture and Python answers with a
new graph."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nicegui import ui
from nicegui.events import GenericEventArguments

Handler = Callable[[dict[str, Any]], Any]

_VENDOR = "vendor/cytoscape"


class DagCanvas(
    ui.element,
    component="dag_canvas.js",
    dependencies=[
        f"{_VENDOR}/cytoscape.esm.min.mjs",
        f"{_VENDOR}/cytoscape-dagre.min.mjs",
        f"{_VENDOR}/cytoscape-edgehandles.esm.min.mjs",
    ],
):
    def __init__(
        self,
        graph: Mapping[str, Any] | None = None,
        *,
        editable: bool = False,
        on_select: Handler | None = None,
        on_move: Handler | None = None,
        on_connect: Handler | None = None,
        on_drop: Handler | None = None,
        on_delete: Handler | None = None,
    ) -> None:
        super().__init__()
        self._props["graph"] = dict(graph or {"nodes": [], "edges": []})
        self._props["statuses"] = {}
        self._props["selected"] = ""
        self._props["editable"] = editable
        self._props["draw_mode"] = False
        self.classes("nimbus-dag-canvas w-full border rounded bg-white")
        for event, handler in (
            ("select", on_select),
            ("moved", on_move),
            ("connect", on_connect),
            ("drop", on_drop),
            ("delete", on_delete),
        ):
            if handler is not None:
                self.on(event, self._forward(handler))

    @staticmethod
    def _forward(handler: Handler) -> Callable[[GenericEventArguments], Any]:
        def call(event: GenericEventArguments) -> Any:
            return handler(event.args if isinstance(event.args, dict) else {})

        return call

    @property
    def graph(self) -> dict[str, Any]:
        return dict(self._props["graph"])

    @property
    def statuses(self) -> dict[str, str]:
        return dict(self._props["statuses"])

    @property
    def selected(self) -> str:
        return str(self._props["selected"])

    def set_graph(self, graph: Mapping[str, Any]) -> None:
        self._props["graph"] = dict(graph)
        self.update()

    def set_statuses(self, statuses: Mapping[str, str]) -> None:
        if dict(statuses) != self._props["statuses"]:
            self._props["statuses"] = dict(statuses)
            self.update()

    def select(self, element_id: str) -> None:
        if element_id != self._props["selected"]:
            self._props["selected"] = element_id
            self.update()

    def set_editable(self, editable: bool) -> None:
        self._props["editable"] = editable
        self.update()

    def set_draw_mode(self, on: bool) -> None:
        self._props["draw_mode"] = on
        self.update()

    def fit(self) -> None:
        self.run_method("fit")

    def auto_layout(self) -> None:
        """Lay every state out again (dagre); the canvas reports the new positions as a move."""
        self.run_method("auto_layout")
