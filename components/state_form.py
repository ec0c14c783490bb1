"""The editor's side panel: the fields of the selected state, by type (function picker for a Task, the rule
builder for a Choice, the wait mode, the data-flow paths, JSON templates, retry and catch), plus rename,
set as start, breakpoint and delete. Every edit hands the state's new body to `on_change`; the panel never
touches the definition itself."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nicegui import ui

from components.choice_builder import ChoiceBuilder
from components.workflow_graph import TYPE_LABELS, state_type
from engine.workflows.jsonpath import check_path

Body = dict[str, Any]

PATH_FIELDS: dict[str, tuple[str, ...]] = {
    "task": ("input_path", "result_path", "output_path"),
    "parallel": ("input_path", "result_path", "output_path"),
    "map": ("input_path", "items_path", "result_path", "output_path"),
    "pass": ("input_path", "result_path", "output_path"),
    "wait": ("input_path", "output_path"),
    "choice": ("input_path", "output_path"),
    "succeed": ("input_path", "output_path"),
    "fail": (),
}
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "task": ("parameters", "result_selector"),
    "parallel": ("parameters", "result_selector"),
    "map": ("parameters", "item_selector", "result_selector"),
    "pass": ("parameters", "result"),
}
LABELS = {
    "input_path": "InputPath",
    "items_path": "ItemsPath",
    "result_path": "ResultPath",
    "output_path": "OutputPath",
    "parameters": "Parameters (keys ending in .$ take a path)",
    "result_selector": "ResultSelector",
    "item_selector": "ItemSelector (per item)",
    "result": "Result",
    "retry": "Retry (a list of rules)",
    "catch": "Catch (a list of catchers)",
    "branches": "Branches (a list of definitions)",
    "iterator": "Iterator (the definition run for each item)",
}
RETRY_EXAMPLE = (
    '[{"error_equals": ["States.ALL"], "max_attempts": 2, "interval_seconds": 1, "backoff_rate": 2}]'
)
CATCH_EXAMPLE = '[{"error_equals": ["States.ALL"], "next": "Handle error", "result_path": "$.error"}]'
WAIT_MODES = {
    "seconds": "Seconds",
    "timestamp": "Until a timestamp",
    "seconds_path": "Seconds from a path",
    "timestamp_path": "Timestamp from a path",
}
END = "__end__"


@dataclass(slots=True)
class StateActions:
    """What the panel asks of the editor. `rename` returns an error message, or None when done."""

    change: Callable[[str, Body], None]
    rename: Callable[[str, str], str | None]
    delete: Callable[[str], Awaitable[None] | None]
    set_start: Callable[[str], None]
    breakpoint: Callable[[str, bool], Awaitable[None] | None] | None = None


class StateForm:
    def __init__(self, actions: StateActions) -> None:
        self.actions = actions
        self.name = ""
        self.body: Body = {}
        self.functions: list[str] = []
        with ui.column().classes("w-full gap-2").mark("state-form") as self.container:
            self._empty()

    def _empty(self) -> None:
        ui.label("Select a state on the canvas to edit it, or add one from the palette.").classes(
            "text-sm text-gray-500"
        ).mark("state-form-empty")

    def clear(self) -> None:
        self.name, self.body = "", {}
        self.container.clear()
        with self.container:
            self._empty()

    def show(
        self,
        name: str,
        body: Any,
        *,
        states: Sequence[str],
        start: bool,
        breakpoint: bool,
        functions: Sequence[str],
    ) -> None:
        self.name = name
        self.body = dict(body) if isinstance(body, Mapping) else {}
        self.functions = list(functions)
        self.container.clear()
        with self.container:
            self._build(states=[s for s in states if s != name], start=start, breakpoint=breakpoint)

    # --- building ---------------------------------------------------------------------------------

    def _build(self, *, states: list[str], start: bool, breakpoint: bool) -> None:
        kind = state_type(self.body)
        with ui.row().classes("w-full items-center gap-2"):
            ui.badge(TYPE_LABELS.get(kind, kind or "?")).mark("state-form-type")
            if start:
                ui.badge("start", color="positive").mark("state-form-start")
            ui.space()
            ui.button(icon="delete", on_click=lambda: self.actions.delete(self.name)).props(
                "flat dense round color=negative"
            ).tooltip("Delete this state").mark("state-delete")
        name_box = ui.input("Name", value=self.name).props("dense").classes("w-full").mark("state-name")

        def rename() -> None:
            new = str(name_box.value or "").strip()
            if new == self.name:
                name_box.error = None
                return
            error = self.actions.rename(self.name, new)
            name_box.error = error
            if error is None:
                self.name = new

        name_box.on("keydown.enter", rename).on("blur", rename)
        with ui.row().classes("w-full items-center gap-2"):
            if not start:
                ui.button(
                    "Set as start", icon="flag", on_click=lambda: self.actions.set_start(self.name)
                ).props("flat dense").mark("state-set-start")
            if self.actions.breakpoint is not None:
                switch = ui.switch("Breakpoint (pause before it runs)", value=breakpoint).props("dense")
                switch.mark("state-breakpoint")
                switch.on_value_change(lambda e: self.actions.breakpoint(self.name, bool(e.value)))  # type: ignore[misc]
        self._text("Comment", "comment")

        if kind == "task":
            self._function()
            self._text("Environment (optional)", "environment")
            self._number("Function version (optional)", "version", whole=True)
        elif kind == "choice":
            ui.label("Rules (the first that matches decides)").classes("text-sm font-semibold")
            ChoiceBuilder(self.body.get("choices") or [], states, self._set_choices)
            self._target("Default (when no rule matches)", "default", states, allow_none=True)
        elif kind == "wait":
            self._wait()
        elif kind == "fail":
            self._text("Error", "error")
            self._text("Cause", "cause")
        elif kind == "parallel":
            self._json("branches", mark="state-branches")
        elif kind == "map":
            self._number("Max concurrency (0 = no limit)", "max_concurrency", whole=True)
            self._json("iterator", mark="state-iterator")

        if kind not in ("choice", "succeed", "fail"):
            self._next(states)
        if kind in ("task", "parallel", "map"):
            self._number("Timeout (s)", "timeout_sec", whole=False)

        paths = PATH_FIELDS.get(kind, ())
        templates = TEMPLATE_FIELDS.get(kind, ())
        if paths or templates:
            with ui.expansion("Input and output", icon="data_object").classes("w-full").props("dense"):
                for key in paths:
                    self._path(key)
                for key in templates:
                    self._json(key, mark=f"state-{key}")
        if kind in ("task", "parallel", "map"):
            with (
                ui.expansion("Errors: retry and catch", icon="error_outline").classes("w-full").props("dense")
            ):
                self._json("retry", mark="state-retry", placeholder=RETRY_EXAMPLE, as_list=True)
                self._json("catch", mark="state-catch", placeholder=CATCH_EXAMPLE, as_list=True)

    # --- fields -----------------------------------------------------------------------------------

    def _put(self, key: str, value: Any, *, remove: bool = False) -> None:
        body = dict(self.body)
        if remove:
            body.pop(key, None)
        else:
            body[key] = value
        self.body = body
        self.actions.change(self.name, body)

    def _text(self, label: str, key: str) -> None:
        box = ui.input(label, value=str(self.body.get(key) or "")).props("dense").classes("w-full")
        box.mark(f"state-{key}")
        box.on_value_change(lambda e: self._put(key, e.value, remove=not e.value))

    def _number(self, label: str, key: str, *, whole: bool) -> None:
        value = self.body.get(key)

        def check(v: Any) -> str | None:
            return "a whole number" if whole and v not in (None, "") and not float(v).is_integer() else None

        box = ui.number(label, value=value if isinstance(value, int | float) else None, validation=check)
        box.props("dense").classes("w-full").mark(f"state-{key}")

        def changed(e: Any) -> None:
            if e.value is None or e.value == "":
                self._put(key, None, remove=True)
            elif check(e.value) is None:
                number = float(e.value)
                self._put(key, int(number) if whole or number.is_integer() else number)

        box.on_value_change(changed)

    def _function(self) -> None:
        current = str(self.body.get("function_id") or self.body.get("function") or "")
        options = {f: f for f in self.functions}
        if current and current not in options:
            options[current] = current
        picker = ui.select(
            options, value=current or None, label="Function", with_input=True, new_value_mode="add-unique"
        )
        picker.props("dense").classes("w-full").mark("state-function")

        def changed(e: Any) -> None:
            body = dict(self.body)
            body.pop("function", None)
            body["function_id"] = str(e.value or "")
            self.body = body
            self.actions.change(self.name, body)

        picker.on_value_change(changed)

    def _next(self, states: list[str]) -> None:
        current = self.body.get("next")
        options = {END: "(end: the execution stops here)", **{s: s for s in states}}
        if isinstance(current, str) and current and current not in options:
            options[current] = f"{current} (missing)"
        value = current if isinstance(current, str) and current else END
        select = ui.select(options, value=value, label="Next").props("dense").classes("w-full")
        select.mark("state-next")

        def changed(e: Any) -> None:
            body = dict(self.body)
            if e.value in (END, None, ""):
                body.pop("next", None)
                body["end"] = True
            else:
                body.pop("end", None)
                body["next"] = e.value
            self.body = body
            self.actions.change(self.name, body)

        select.on_value_change(changed)

    def _target(self, label: str, key: str, states: list[str], *, allow_none: bool) -> None:
        current = self.body.get(key)
        options = ({"": "(none)"} if allow_none else {}) | {s: s for s in states}
        if isinstance(current, str) and current and current not in options:
            options[current] = f"{current} (missing)"
        select = ui.select(options, value=current if isinstance(current, str) else "", label=label)
        select.props("dense").classes("w-full").mark(f"state-{key}")
        select.on_value_change(lambda e: self._put(key, e.value, remove=not e.value))

    def _set_choices(self, choices: list[dict[str, Any]]) -> None:
        self._put("choices", choices)

    def _wait(self) -> None:
        mode = next((k for k in WAIT_MODES if k in self.body), "seconds")
        select = ui.select(WAIT_MODES, value=mode, label="Wait").props("dense").classes("w-full")
        select.mark("state-wait-mode")
        raw = self.body.get(mode)

        def parse(text: str) -> tuple[Any, str | None]:
            key, text = str(select.value), text.strip()
            if key == "seconds":
                try:
                    number = float(text)
                except ValueError:
                    return None, "a number of seconds"
                return (int(number) if number.is_integer() else number), None
            if key.endswith("_path"):
                return text, check_path(text)
            return text, None if text else "a timestamp, e.g. 2026-12-31T23:59:00Z"

        box = ui.input(
            "Value", value="" if raw is None else str(raw), validation=lambda v: parse(str(v or ""))[1]
        )
        box.props("dense").classes("w-full").mark("state-wait-value")

        def changed() -> None:
            box.validate(return_result=False)
            value, error = parse(str(box.value or ""))
            if error is not None:
                return
            body = {k: v for k, v in self.body.items() if k not in WAIT_MODES}
            body[str(select.value)] = value
            self.body = body
            self.actions.change(self.name, body)

        select.on_value_change(changed)
        box.on_value_change(changed)

    def _path(self, key: str) -> None:
        raw = self.body.get(key, "")
        text = "null" if raw is None else str(raw)

        def check(v: Any) -> str | None:
            value = str(v or "").strip()
            if value in ("", "null"):
                return None
            return check_path(value, reference=key == "result_path")

        box = ui.input(LABELS[key], value=text, placeholder="$ (default); null discards", validation=check)
        box.props("dense").classes("w-full font-mono").mark(f"state-{key}")

        def changed(e: Any) -> None:
            value = str(e.value or "").strip()
            if not value:
                self._put(key, None, remove=True)
            elif value == "null":
                self._put(key, None)
            elif check(value) is None:
                self._put(key, value)

        box.on_value_change(changed)

    def _json(self, key: str, *, mark: str, placeholder: str = "", as_list: bool = False) -> None:
        present = key in self.body
        text = json.dumps(self.body[key], indent=2) if present else ""

        def parse(v: Any) -> tuple[Any, str | None]:
            value = str(v or "").strip()
            if not value:
                return None, None
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                return None, f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            if as_list and not isinstance(parsed, list | dict):
                return None, "a list of objects (a single object is accepted)"
            return parsed, None

        box = ui.textarea(
            LABELS.get(key, key), value=text, placeholder=placeholder, validation=lambda v: parse(v)[1]
        )
        box.props("dense outlined autogrow").classes("w-full font-mono text-xs").mark(mark)

        def changed(e: Any) -> None:
            parsed, error = parse(e.value)
            if error is not None:
                return
            if not str(e.value or "").strip():
                self._put(key, None, remove=True)
            else:
                self._put(key, parsed)

        box.on_value_change(changed)
