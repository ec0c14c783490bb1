"""The Choice state's rule builder: each rule is a comparison (`$.x` numeric_greater_than 3), or all of /
any of a list of comparisons, or not a comparison, with the state it goes to. A rule nested deeper than
that is edited as JSON in place. Every edit hands the whole new `choices` list to `on_change`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nicegui import ui

from engine.workflows.choice import COMPARATORS

ChoicesHandler = Callable[[list[dict[str, Any]]], Any]

OPERATORS: dict[str, str] = {name: name for name in sorted(COMPARATORS)}
MODES = {"compare": "Compare", "and": "All of", "or": "Any of", "not": "Not"}
_META = ("variable", "next", "comment")


def comparator_of(rule: Mapping[str, Any]) -> str:
    return next((k for k in rule if k in COMPARATORS), "")


def parse_operand(operator: str, text: str) -> Any:
    """The JSON value a comparator takes, from what was typed: numbers for numeric_*, true/false for
    boolean_equals and the type tests, the text itself for strings, timestamps and *_path operands."""
    kind, _ = COMPARATORS.get(operator, ("string", ""))
    text = text.strip() if kind != "string" or operator.endswith("_path") else text
    if operator.endswith("_path"):
        return text
    if kind == "numeric":
        try:
            number = float(text)
        except ValueError as exc:
            raise ValueError(f"{operator} needs a number") from exc
        return int(number) if number.is_integer() else number
    if kind in ("boolean", "type"):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{operator} needs true or false")
        return text.lower() == "true"
    return text


def operand_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def is_simple(condition: Any) -> bool:
    """A comparison the builder's rows can show."""
    return (
        isinstance(condition, Mapping)
        and isinstance(condition.get("variable"), str)
        and sum(1 for k in condition if k in COMPARATORS) == 1
        and all(k in COMPARATORS or k in _META for k in condition)
    )


def mode_of(rule: Mapping[str, Any]) -> str | None:
    """compare / and / or / not when the builder can edit the rule, else None (edited as JSON)."""
    if "and" in rule or "or" in rule:
        key = "and" if "and" in rule else "or"
        parts = rule[key]
        return key if isinstance(parts, list) and all(is_simple(p) for p in parts) else None
    if "not" in rule:
        return "not" if is_simple(rule["not"]) else None
    return "compare" if is_simple(rule) else None


class ChoiceBuilder:
    def __init__(self, choices: Sequence[Any], targets: Sequence[str], on_change: ChoicesHandler) -> None:
        self.choices: list[Any] = [dict(r) if isinstance(r, Mapping) else r for r in choices]
        self.targets = list(targets)
        self.on_change = on_change
        with ui.column().classes("w-full gap-2").mark("choice-builder") as self.container:
            self.rules = ui.column().classes("w-full gap-2")
            ui.button("Add rule", icon="add", on_click=self.add_rule).props("flat dense").mark(
                "choice-add-rule"
            )
        self.render()

    def render(self) -> None:
        self.rules.clear()
        with self.rules:
            if not self.choices:
                ui.label("No rules yet: add one, or drag from this state to another on the canvas.").classes(
                    "text-sm text-gray-500"
                )
            for i, rule in enumerate(self.choices):
                self._rule(i, rule)

    def _emit(self) -> None:
        self.on_change([dict(r) if isinstance(r, Mapping) else r for r in self.choices])

    def add_rule(self) -> None:
        target = self.targets[0] if self.targets else ""
        self.choices.append({"variable": "$.value", "string_equals": "", "next": target})
        self.render()
        self._emit()

    def remove_rule(self, index: int) -> None:
        del self.choices[index]
        self.render()
        self._emit()

    def _set(self, index: int, rule: dict[str, Any]) -> None:
        self.choices[index] = rule
        self._emit()

    def _rule(self, index: int, rule: Any) -> None:
        with ui.card().classes("w-full p-2 gap-1").props("flat bordered").mark(f"choice-rule-{index}"):
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(f"Rule {index + 1}").classes("text-sm font-semibold")
                ui.space()
                ui.button(icon="delete", on_click=lambda i=index: self.remove_rule(i)).props(
                    "flat dense round size=sm color=negative"
                ).tooltip("Remove this rule").mark(f"choice-remove-{index}")
            mode = mode_of(rule) if isinstance(rule, Mapping) else None
            if mode is None:
                self._json_rule(index, rule)
                return
            select = ui.select(MODES, value=mode, label="Condition").props("dense").classes("w-full")
            select.mark(f"choice-mode-{index}")
            select.on_value_change(lambda e, i=index: self._change_mode(i, str(e.value)))
            conditions = self._conditions(rule, mode)
            for j, condition in enumerate(conditions):
                self._comparison(index, j, condition, mode)
            if mode in ("and", "or"):
                ui.button("Add condition", icon="add", on_click=lambda i=index: self._add_condition(i)).props(
                    "flat dense size=sm"
                ).mark(f"choice-add-condition-{index}")
            target = rule.get("next", "")
            options = {t: t for t in self.targets}
            if target and target not in options:
                options[target] = f"{target} (missing)"
            go = ui.select(options, value=target or None, label="Then go to").props("dense").classes("w-full")
            go.mark(f"choice-next-{index}")
            go.on_value_change(lambda e, i=index: self._set_next(i, e.value))

    @staticmethod
    def _conditions(rule: Mapping[str, Any], mode: str) -> list[dict[str, Any]]:
        if mode in ("and", "or"):
            return [dict(p) for p in rule[mode]]
        if mode == "not":
            return [dict(rule["not"])]
        return [{k: v for k, v in rule.items() if k not in ("next", "comment")}]

    def _rebuild(self, index: int, mode: str, conditions: list[dict[str, Any]]) -> dict[str, Any]:
        old = self.choices[index] if isinstance(self.choices[index], Mapping) else {}
        rule: dict[str, Any]
        if mode in ("and", "or"):
            rule = {mode: conditions}
        elif mode == "not":
            rule = {"not": conditions[0]}
        else:
            rule = dict(conditions[0])
        rule["next"] = old.get("next", "")
        if old.get("comment"):
            rule["comment"] = old["comment"]
        return rule

    def _change_mode(self, index: int, mode: str) -> None:
        rule = self.choices[index]
        current = mode_of(rule) or "compare"
        conditions = self._conditions(rule, current) or [{"variable": "$.value", "string_equals": ""}]
        self._set(index, self._rebuild(index, mode, conditions if mode in ("and", "or") else conditions[:1]))
        self.render()

    def _add_condition(self, index: int) -> None:
        rule = self.choices[index]
        mode = mode_of(rule) or "and"
        conditions = [*self._conditions(rule, mode), {"variable": "$.value", "string_equals": ""}]
        self._set(index, self._rebuild(index, mode, conditions))
        self.render()

    def _remove_condition(self, index: int, position: int) -> None:
        rule = self.choices[index]
        mode = mode_of(rule) or "and"
        conditions = self._conditions(rule, mode)
        if len(conditions) > 1:
            del conditions[position]
            self._set(index, self._rebuild(index, mode, conditions))
            self.render()

    def _set_next(self, index: int, target: Any) -> None:
        rule = self.choices[index]
        if isinstance(rule, Mapping):
            self._set(index, {**rule, "next": target or ""})

    def _comparison(self, index: int, position: int, condition: Mapping[str, Any], mode: str) -> None:
        operator = comparator_of(condition) or "string_equals"
        mark = f"choice-{index}-{position}"
        with ui.row().classes("w-full items-start gap-1 no-wrap"):
            variable = ui.input("Variable", value=str(condition.get("variable", "$"))).props("dense")
            variable.classes("w-28").mark(f"{mark}-variable")
            op = ui.select(OPERATORS, value=operator, label="Test").props("dense options-dense")
            op.classes("w-44").mark(f"{mark}-operator")

            def check(text: Any) -> str | None:
                try:
                    parse_operand(str(op.value), str(text or ""))
                except ValueError as exc:
                    return str(exc)
                return None

            value = ui.input("Value", value=operand_text(condition.get(operator)), validation=check)
            value.props("dense").classes("w-24").mark(f"{mark}-value")
            if mode in ("and", "or"):
                ui.button(
                    icon="close", on_click=lambda i=index, p=position: self._remove_condition(i, p)
                ).props("flat dense round size=sm").mark(f"{mark}-remove")

        def changed() -> None:
            value.validate(return_result=False)
            if check(value.value) is not None:
                return
            operand = parse_operand(str(op.value), str(value.value or ""))
            rule = self.choices[index]
            current = mode_of(rule) or mode
            conditions = self._conditions(rule, current)
            conditions[position] = {
                "variable": str(variable.value or "").strip() or "$",
                str(op.value): operand,
            }
            self._set(index, self._rebuild(index, current, conditions))

        for element in (variable, op, value):
            element.on_value_change(changed)

    def _json_rule(self, index: int, rule: Any) -> None:
        ui.label("This rule nests deeper than the builder shows: edit it as JSON.").classes(
            "text-xs text-gray-500"
        )

        def parse(text: Any) -> tuple[Any, str | None]:
            try:
                parsed = json.loads(str(text or ""))
            except json.JSONDecodeError as exc:
                return None, f"not JSON: {exc.msg} (line {exc.lineno})"
            if not isinstance(parsed, dict):
                return None, "a rule is a JSON object"
            return parsed, None

        box = ui.textarea(value=json.dumps(rule, indent=2), validation=lambda v: parse(v)[1])
        box.props("dense outlined autogrow").classes("w-full font-mono text-xs").mark(f"choice-json-{index}")

        def changed() -> None:
            parsed, error = parse(box.value)
            if error is None:
                self._set(index, parsed)

        box.on_value_change(changed)
