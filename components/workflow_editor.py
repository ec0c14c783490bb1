"""The visual workflow editor: a palette of state types, the DAG canvas (add, connect by dragging, move,
delete, select), the side panel for the selected state, and a JSON tab. The editor holds ONE definition
dict; the canvas and the JSON tab both render from it and write back to it, so an edit in either shows in
the other. Saving and validating are the page's (they call the workflow service); the editor reports
whether there are unsaved changes and shows the problems the page hands it."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from nicegui import app, ui

from components import workflow_edits as edits
from components import workflow_graph as graph
from components.dag_canvas import DagCanvas
from components.state_form import StateActions, StateForm
from engine.workflows.model import STATE_TYPES, Problem

BreakpointHandler = Callable[[list[str]], Awaitable[bool] | bool]


def _semantic(definition: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in definition.items() if k != "layout"}


def pretty(definition: Any) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False)


class WorkflowEditor:
    def __init__(
        self,
        definition: Mapping[str, Any] | None = None,
        *,
        functions: Sequence[tuple[str, str]] = (),
        breakpoints: Iterable[str] = (),
        on_breakpoints: BreakpointHandler | None = None,
        on_change: Callable[[], Any] | None = None,
        height: str = "h-[540px]",
    ) -> None:
        """`functions`: (id, name) pairs for the Task function picker. `on_breakpoints` persists the
        workflow's breakpoints (None: breakpoints are not offered, e.g. before the first save)."""
        self.model: dict[str, Any] = copy.deepcopy(dict(definition or graph.blank_definition()))
        self.baseline: dict[str, Any] = copy.deepcopy(self.model)
        self.moved = False  # positions changed by the user since the last save
        self.breakpoints: set[str] = set(breakpoints)
        self.on_breakpoints = on_breakpoints
        self.on_change = on_change
        self.function_names = {fid: name for fid, name in functions} | {name: name for _, name in functions}
        self.function_choices = sorted({name for _, name in functions})
        self.selected_kind = "none"
        self.selected_id = ""
        self.edges: dict[str, graph.Edge] = {}
        self._json_text = ""
        self._build(height)
        self._render(source="init")

    # --- the model ---------------------------------------------------------------------------------

    @property
    def definition(self) -> dict[str, Any]:
        return copy.deepcopy(self.model)

    @property
    def dirty(self) -> bool:
        return self.moved or _semantic(self.model) != _semantic(self.baseline)

    def load(self, definition: Mapping[str, Any], *, breakpoints: Iterable[str] | None = None) -> None:
        """Replace the definition with a saved one (after a save, or a version opened)."""
        self.model = copy.deepcopy(dict(definition))
        self.baseline = copy.deepcopy(self.model)
        self.moved = False
        if breakpoints is not None:
            self.breakpoints = set(breakpoints)
        self._select("none", "")
        self._render(source="load")

    def mark_saved(self) -> None:
        self.baseline = copy.deepcopy(self.model)
        self.moved = False
        self._changed()

    def apply(self, definition: Mapping[str, Any], *, source: str) -> None:
        """Take a new definition from one view (`source`: canvas, form, json) and show it in the others."""
        self.model = copy.deepcopy(dict(definition))
        states = graph.states_of(self.model)
        if self.selected_kind == "node" and self.selected_id not in states:
            self._select("none", "")
        self._render(source=source)

    def _render(self, *, source: str) -> None:
        g = graph.to_graph(self.model, breakpoints=self.breakpoints, function_names=self.function_names)
        self.edges = {e.id: e for e in graph.edges_of(self.model)}
        self.canvas.set_graph(g)
        if source != "json":
            text = pretty(self.model)
            if text != self._json_text:
                self._json_text = text
                self.json_box.set_value(text)
            self.json_error.set_visibility(False)
        if source not in ("form",):
            self._show_selection()
        self.state_count.set_text(f"{len(g['nodes'])} state{'s' if len(g['nodes']) != 1 else ''}")
        self._changed()

    def _changed(self) -> None:
        self.dirty_label.set_visibility(self.dirty)
        if self.on_change is not None:
            self.on_change()

    # --- building ----------------------------------------------------------------------------------

    def _build(self, height: str) -> None:
        dark = bool(app.storage.user.get("dark")) if _has_user_storage() else False
        with ui.row().classes("w-full gap-3 no-wrap items-start").mark("workflow-editor"):
            with ui.column().classes("w-36 gap-1 shrink-0").mark("palette"):
                ui.label("Add a state").classes("text-sm font-semibold")
                ui.label("Click, or drag onto the canvas").classes("text-xs text-gray-500")
                for kind in STATE_TYPES:
                    self._palette_item(kind)
            with ui.column().classes("grow min-w-0 gap-2"):
                with ui.row().classes("w-full items-center gap-1 no-wrap"):
                    with ui.tabs().props("dense no-caps inline-label") as self.view_tabs:
                        self.graph_tab = ui.tab("graph", "Graph", icon="account_tree").mark(
                            "editor-tab-graph"
                        )
                        self.json_tab = ui.tab("json", "JSON", icon="data_object").mark("editor-tab-json")
                    ui.space()
                    self.state_count = (
                        ui.label("").classes("text-xs text-gray-500").mark("editor-state-count")
                    )
                    self.dirty_label = ui.badge("unsaved changes", color="warning").mark("editor-dirty")
                    self.connect_switch = ui.switch("Connect").props("dense").mark("editor-connect-mode")
                    self.connect_switch.tooltip("Drag from a state to another to connect them")
                    self.connect_switch.on_value_change(lambda e: self.canvas.set_draw_mode(bool(e.value)))
                    ui.button(icon="auto_fix_high", on_click=lambda: self.canvas.auto_layout()).props(
                        "flat dense round"
                    ).tooltip("Lay out automatically").mark("editor-auto-layout")
                    ui.button(icon="fit_screen", on_click=lambda: self.canvas.fit()).props(
                        "flat dense round"
                    ).tooltip("Fit to view").mark("editor-fit")
                    ui.button(icon="delete", on_click=self.delete_selected).props(
                        "flat dense round color=negative"
                    ).tooltip("Delete the selected state or transition").mark("editor-delete")
                with ui.tab_panels(self.view_tabs, value="graph").classes("w-full").props("keep-alive"):
                    with ui.tab_panel("graph").classes("p-0"):
                        self.canvas = DagCanvas(
                            editable=True,
                            on_select=self._on_select,
                            on_move=self._on_move,
                            on_connect=self._on_connect,
                            on_drop=self._on_drop,
                            on_delete=self._on_delete,
                        ).classes(height)
                        self.canvas.on("laid_out", lambda e: self._on_laid_out(e.args))
                        self.canvas.mark("editor-canvas")
                    with ui.tab_panel("json").classes("p-0 gap-1"):
                        self.json_box = (
                            ui.codemirror(
                                "",
                                language="JSON",
                                theme="vscodeDark" if dark else "basicLight",
                                on_change=self._on_json,
                            )
                            .classes(f"w-full {height} border rounded")
                            .mark("editor-json")
                        )
                        self.json_error = (
                            ui.label("").classes("text-negative text-sm").mark("editor-json-error")
                        )
                        self.json_error.set_visibility(False)
                self.problems = ui.column().classes("w-full gap-0").mark("editor-problems")
            with ui.column().classes("w-80 shrink-0 gap-2").mark("side-panel"):
                self.panel_title = ui.label("State").classes("text-sm font-semibold")
                self.edge_panel = ui.column().classes("w-full gap-2")
                self.form = StateForm(
                    StateActions(
                        change=self._on_form_change,
                        rename=self._on_rename,
                        delete=self._delete_state,
                        set_start=self._on_set_start,
                        breakpoint=self._on_breakpoint if self.on_breakpoints is not None else None,
                    )
                )

    def _palette_item(self, kind: str) -> None:
        item = (
            ui.row()
            .classes("w-full items-center gap-2 px-2 py-1 rounded border cursor-grab hover:bg-blue-50")
            .props('draggable="true"')
            .mark(f"palette-{kind}")
        )
        item.on(
            "dragstart",
            js_handler=f"(e) => {{ e.dataTransfer.setData('application/x-nimbus-state', '{kind}'); "
            "e.dataTransfer.effectAllowed = 'copy'; }",
        )
        item.on("click", lambda k=kind: self.add_state(k))
        with item:
            ui.icon(graph.TYPE_ICONS[kind]).classes("text-lg text-blue-700")
            with ui.column().classes("gap-0"):
                ui.label(graph.TYPE_LABELS[kind]).classes("text-sm")
                ui.label(graph.TYPE_HINTS[kind]).classes("text-[10px] text-gray-500 leading-tight")

    # --- canvas events -----------------------------------------------------------------------------

    def add_state(self, kind: str, at: tuple[float, float] | None = None) -> str:
        definition, name = edits.add_state(self.model, kind, at=at)
        self._select("node", name)
        self.apply(definition, source="canvas")
        return name

    def _on_drop(self, args: dict[str, Any]) -> None:
        kind = str(args.get("type", ""))
        if kind in STATE_TYPES:
            self.add_state(kind, (float(args.get("x", 0)), float(args.get("y", 0))))

    def _on_select(self, args: dict[str, Any]) -> None:
        self._select(str(args.get("kind", "none")), str(args.get("id", "")))
        self._show_selection()

    def _on_move(self, args: dict[str, Any]) -> None:
        positions = args.get("positions")
        if isinstance(positions, Mapping):
            self.model = edits.with_positions(self.model, positions)
            self.moved = True
            self._render(source="move")

    def _on_laid_out(self, args: Any) -> None:
        """The canvas placed states that had no position: keep them (not an unsaved change by itself)."""
        positions = args.get("positions") if isinstance(args, Mapping) else None
        if isinstance(positions, Mapping):
            self.model = edits.with_positions(self.model, positions)
            text = pretty(self.model)
            if text != self._json_text:
                self._json_text = text
                self.json_box.set_value(text)

    def _on_connect(self, args: dict[str, Any]) -> None:
        self.connect(str(args.get("source", "")), str(args.get("target", "")))

    def connect(self, source: str, target: str) -> bool:
        try:
            definition = edits.connect(self.model, source, target)
        except edits.EditError as exc:
            ui.notify(str(exc), type="warning")
            return False
        self.apply(definition, source="canvas")
        return True

    async def _on_delete(self, args: dict[str, Any]) -> None:
        self._select(str(args.get("kind", "none")), str(args.get("id", "")))
        await self.delete_selected()

    async def delete_selected(self) -> None:
        if self.selected_kind == "node" and self.selected_id:
            await self._delete_state(self.selected_id)
        elif self.selected_kind == "edge" and self.selected_id in self.edges:
            edge = self.edges[self.selected_id]
            self._select("none", "")
            self.apply(edits.disconnect(self.model, edge), source="canvas")
        else:
            ui.notify("Select a state or a transition first", type="info")

    async def _delete_state(self, name: str) -> None:
        if name not in graph.states_of(self.model):
            return
        self._select("none", "")
        if name in self.breakpoints:
            await self._on_breakpoint(name, False)
        self.apply(edits.delete_state(self.model, name), source="canvas")

    # --- side panel --------------------------------------------------------------------------------

    def _select(self, kind: str, element_id: str) -> None:
        self.selected_kind = kind if element_id else "none"
        self.selected_id = element_id
        self.canvas.select(element_id)

    def _show_selection(self) -> None:
        states = graph.states_of(self.model)
        self.edge_panel.clear()
        if self.selected_kind == "node" and self.selected_id in states:
            self.panel_title.set_text(f"State: {self.selected_id}")
            self.form.show(
                self.selected_id,
                states[self.selected_id],
                states=list(states),
                start=self.model.get("start_at") == self.selected_id,
                breakpoint=self.selected_id in self.breakpoints,
                functions=self.function_choices,
            )
            return
        self.form.clear()
        if self.selected_kind == "edge" and self.selected_id in self.edges:
            edge = self.edges[self.selected_id]
            self.panel_title.set_text("Transition")
            with self.edge_panel:
                words = {
                    "next": "next",
                    "choice": "a Choice rule",
                    "default": "the default",
                    "catch": "a catcher",
                }
                ui.label(f"{edge.source} → {edge.target} ({words.get(edge.kind, edge.kind)})").mark(
                    "edge-summary"
                )
                if edge.label and edge.kind != "default":
                    ui.label(edge.label).classes("text-xs font-mono text-gray-500")
                ui.button("Remove transition", icon="link_off", on_click=self.delete_selected).props(
                    "outline dense color=negative"
                ).mark("edge-remove")
            self.form.container.clear()
        else:
            self.panel_title.set_text("State")

    def _on_form_change(self, name: str, body: dict[str, Any]) -> None:
        try:
            definition = edits.set_state(self.model, name, body)
        except edits.EditError as exc:
            ui.notify(str(exc), type="warning")
            return
        self.apply(definition, source="form")

    def _on_rename(self, old: str, new: str) -> str | None:
        try:
            definition = edits.rename_state(self.model, old, new)
        except edits.EditError as exc:
            return str(exc)
        if old in self.breakpoints:
            self.breakpoints = (self.breakpoints - {old}) | {new}
        self.selected_id = new
        self.canvas.select(new)
        self.apply(definition, source="form")
        self.panel_title.set_text(f"State: {new}")
        return None

    def _on_set_start(self, name: str) -> None:
        self.apply(edits.set_start(self.model, name), source="canvas")

    async def _on_breakpoint(self, name: str, on: bool) -> None:
        wanted = (self.breakpoints | {name}) if on else (self.breakpoints - {name})
        if wanted == self.breakpoints or self.on_breakpoints is None:
            return
        result = self.on_breakpoints(sorted(wanted))
        ok = await result if not isinstance(result, bool) else result
        if ok:
            self.breakpoints = wanted
            self._render(source="form")

    # --- JSON tab ----------------------------------------------------------------------------------

    def _on_json(self, event: Any) -> None:
        text = str(event.value if hasattr(event, "value") else self.json_box.value or "")
        if text == self._json_text:
            return
        self._json_text = text
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            self._json_problem(f"Not valid JSON yet: {exc.msg} (line {exc.lineno}, column {exc.colno})")
            return
        if not isinstance(parsed, dict):
            self._json_problem("A definition is a JSON object with start_at and states.")
            return
        self.json_error.set_visibility(False)
        if parsed != self.model:
            self.apply(parsed, source="json")

    def _json_problem(self, message: str) -> None:
        self.json_error.set_text(message)
        self.json_error.set_visibility(True)

    # --- validation --------------------------------------------------------------------------------

    def show_problems(self, problems: Sequence[Problem | Mapping[str, str]], *, ok_text: str = "") -> None:
        self.problems.clear()
        with self.problems:
            if not problems:
                if ok_text:
                    ui.label(ok_text).classes("text-positive text-sm").mark("editor-valid")
                return
            ui.label(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}:").classes(
                "text-negative text-sm font-semibold"
            ).mark("editor-problem-count")
            for problem in problems:
                path = problem.path if isinstance(problem, Problem) else str(problem.get("path", ""))
                message = problem.message if isinstance(problem, Problem) else str(problem.get("message", ""))
                ui.label(f"{path}: {message}").classes("text-negative text-sm font-mono").mark(
                    "editor-problem"
                )


def _has_user_storage() -> bool:
    try:
        app.storage.user.get("dark")
    except (RuntimeError, KeyError):
        return False
    return True
