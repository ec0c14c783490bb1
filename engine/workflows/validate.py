"""Validate a workflow definition before it is saved: every problem at once, each with its path.

Structure comes from model.parse_with_problems; on top of it this checks transitions to unknown states,
unreachable states, cycles no terminal state can be reached from, JSONPath syntax in every path field and
every `.$` template key (nested too), intrinsic functions, Choice rules, States.ALL placement in Retry and
Catch, Wait timestamps, functions that do not exist (through a callback) and the state count, recursing
into Parallel branches and Map iterators (paths like `states.P.branches[0].states.X.next`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.workflows import intrinsics, jsonpath
from engine.workflows.choice import check_rule
from engine.workflows.dataflow import parse_timestamp
from engine.workflows.model import (
    ALL,
    CatchRule,
    Definition,
    DefinitionError,
    Problem,
    RetryRule,
    State,
    parse_with_problems,
)

FunctionExists = Callable[[str], bool]


def validate_definition(
    raw: Any, *, function_exists: FunctionExists | None = None, max_states: int | None = None
) -> tuple[Definition | None, list[Problem]]:
    """The parsed definition (None when it has problems) and every problem found."""
    definition, problems = parse_with_problems(raw)
    if definition is not None and isinstance(raw, Mapping):
        checker = _Checker(problems, function_exists)
        checker.definition(definition, raw, "")
        if max_states is not None and checker.count > max_states:
            problems.append(
                Problem(
                    "states",
                    f"{checker.count} states (branches and iterators included); the limit is {max_states}",
                )
            )
    unique = list(dict.fromkeys(problems))
    return (definition if not unique else None), unique


def require_valid(
    raw: Any, *, function_exists: FunctionExists | None = None, max_states: int | None = None
) -> Definition:
    """The definition, or DefinitionError listing every problem."""
    definition, problems = validate_definition(raw, function_exists=function_exists, max_states=max_states)
    if problems or definition is None:
        raise DefinitionError(problems or [Problem("$", "not a definition")])
    return definition


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


class _Checker:
    def __init__(self, problems: list[Problem], function_exists: FunctionExists | None) -> None:
        self.problems = problems
        self.function_exists = function_exists
        self.count = 0
        self._known_functions: dict[str, bool] = {}

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    # --- one definition (top level, a Parallel branch or a Map iterator) ---

    def definition(self, definition: Definition, raw: Mapping[str, Any], prefix: str) -> None:
        raw_states = raw.get("states")
        names = set(raw_states) if isinstance(raw_states, Mapping) else set()
        self.count += len(names)
        if definition.start_at and definition.start_at not in names:
            self.add(_join(prefix, "start_at"), f"no state named {definition.start_at!r}")
        for name, state in definition.states.items():
            body = raw_states.get(name) if isinstance(raw_states, Mapping) else None
            self.state(
                state, body if isinstance(body, Mapping) else {}, _join(prefix, f"states.{name}"), names
            )
        self.graph(definition, names, prefix)

    def graph(self, definition: Definition, names: set[str], prefix: str) -> None:
        """Unreachable states, and cycles from which no terminal state can be reached."""
        states = definition.states
        edges = {name: [t for t in s.transitions() if t in names] for name, s in states.items()}
        if definition.start_at not in names:
            return
        reachable: list[str] = []
        seen = {definition.start_at}
        todo = [definition.start_at]
        while todo:
            name = todo.pop()
            reachable.append(name)
            for target in edges.get(name, []):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        for name in states:
            if name not in seen:
                self.add(_join(prefix, f"states.{name}"), "unreachable: no path from start_at leads here")
        # a state can exit when it is terminal, did not parse (already reported) or leads to one that can
        can_exit = {n for n in names if n not in states or states[n].is_terminal}
        reverse: dict[str, list[str]] = {}
        for source, targets in edges.items():
            for target in targets:
                reverse.setdefault(target, []).append(source)
        todo = list(can_exit)
        while todo:
            name = todo.pop()
            for source in reverse.get(name, []):
                if source not in can_exit:
                    can_exit.add(source)
                    todo.append(source)
        trapped = [n for n in states if n in seen and n not in can_exit]
        reported: set[str] = set()
        for name in trapped:
            if name in reported:
                continue
            cycle = _cycle_from(name, edges, set(trapped))
            if cycle and not set(cycle) <= reported:
                reported.update(cycle)
                loop = " -> ".join([*cycle, cycle[0]])
                self.add(
                    _join(prefix, f"states.{cycle[0]}"),
                    f"cycle with no exit: {loop} (no state in it can reach an end)",
                )

    # --- one state ---

    def state(self, state: State, body: Mapping[str, Any], path: str, names: set[str]) -> None:
        def target(key_path: str, name: str | None) -> None:
            if name and name not in names:
                self.add(key_path, f"no state named {name!r}")

        target(_join(path, "next"), state.next)
        target(_join(path, "default"), state.default)
        for i, catcher in enumerate(state.catch):
            target(_join(path, f"catch[{i}].next"), catcher.next)

        for key in ("input_path", "output_path"):
            self.path_field(body, key, path, reference=False)
        for key in ("result_path", "items_path", "seconds_path", "timestamp_path"):
            self.path_field(body, key, path, reference=True)
        for key in ("error_path", "cause_path"):
            self.path_field(body, key, path, reference=False)
        for key in ("parameters", "result_selector", "item_selector"):
            if key in body:
                self.template(body[key], _join(path, key))

        self.error_rules(state.retry, "retry", path)
        self.error_rules(state.catch, "catch", path)
        raw_catch = body.get("catch")
        if isinstance(raw_catch, list):
            for i, item in enumerate(raw_catch):
                if isinstance(item, Mapping) and "result_path" in item:
                    self.path_value(
                        item["result_path"], _join(path, f"catch[{i}].result_path"), reference=True
                    )

        if state.type == "task" and state.function_id and self.function_exists is not None:
            key = "function_id" if "function_id" in body else "function"
            if not self._exists(state.function_id):
                self.add(_join(path, key), f"no function {state.function_id!r}")
        elif state.type == "choice":
            raw_choices = body.get("choices")
            if isinstance(raw_choices, list):
                for i, rule in enumerate(raw_choices):
                    for problem in check_rule(rule, _join(path, f"choices[{i}]")):
                        if not problem.path.endswith(f"choices[{i}].next"):
                            self.problems.append(problem)
                    if isinstance(rule, Mapping) and isinstance(rule.get("next"), str):
                        target(_join(path, f"choices[{i}].next"), rule["next"])
        elif state.type == "wait" and state.timestamp is not None:
            try:
                parse_timestamp(state.timestamp)
            except ValueError as exc:
                self.add(_join(path, "timestamp"), str(exc))
        elif state.type == "parallel":
            raw_branches = body.get("branches")
            for i, branch in enumerate(state.branches):
                raw_branch = (
                    raw_branches[i] if isinstance(raw_branches, list) and i < len(raw_branches) else {}
                )
                if isinstance(raw_branch, Mapping):
                    self.definition(branch, raw_branch, _join(path, f"branches[{i}]"))
        elif state.type == "map" and state.iterator is not None:
            key = "iterator" if "iterator" in body else "item_processor"
            raw_iterator = body.get(key)
            if isinstance(raw_iterator, Mapping):
                self.definition(state.iterator, raw_iterator, _join(path, "iterator"))

    def _exists(self, function: str) -> bool:
        if function not in self._known_functions:
            assert self.function_exists is not None
            self._known_functions[function] = bool(self.function_exists(function))
        return self._known_functions[function]

    def path_field(self, body: Mapping[str, Any], key: str, path: str, *, reference: bool) -> None:
        if key in body and isinstance(body[key], str) and body[key].startswith("$"):
            self.path_value(body[key], _join(path, key), reference=reference)

    def path_value(self, value: Any, path: str, *, reference: bool) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            return  # the model reported the type
        reason = jsonpath.check_path(value, reference=reference)
        if reason:
            self.add(path, f"bad JSONPath {value!r}: {reason}")

    def template(self, template: Any, path: str) -> None:
        """Every `.$` key in a payload template (at any depth) holds a valid path or intrinsic."""
        if isinstance(template, Mapping):
            for key, value in template.items():
                key_path = f"{path}.{key}"
                if isinstance(key, str) and key.endswith(".$"):
                    if not isinstance(value, str):
                        self.add(key_path, "a key ending in .$ takes a JSONPath or an intrinsic function")
                    elif intrinsics.is_intrinsic(value):
                        reason = intrinsics.check(value)
                        if reason:
                            self.add(key_path, f"bad intrinsic function: {reason}")
                    else:
                        reason = jsonpath.check_path(value)
                        if reason:
                            self.add(key_path, f"bad JSONPath {value!r}: {reason}")
                else:
                    self.template(value, key_path)
        elif isinstance(template, list):
            for i, item in enumerate(template):
                self.template(item, f"{path}[{i}]")

    def error_rules(self, rules: tuple[RetryRule, ...] | tuple[CatchRule, ...], key: str, path: str) -> None:
        """AWS: States.ALL must appear alone in its error_equals, and only in the last rule."""
        for i, rule in enumerate(rules):
            if ALL not in rule.error_equals:
                continue
            rule_path = _join(path, f"{key}[{i}].error_equals")
            if len(rule.error_equals) > 1:
                self.add(rule_path, "States.ALL must be alone in its error_equals list")
            if i != len(rules) - 1:
                self.add(rule_path, f"States.ALL must be in the last {key} rule")


def _cycle_from(start: str, edges: Mapping[str, list[str]], trapped: set[str]) -> list[str]:
    """A cycle among trapped states reachable from `start` (as a list of names), or [] if none."""
    path: list[str] = []
    index: dict[str, int] = {}
    node: str | None = start
    while node is not None and node not in index:
        index[node] = len(path)
        path.append(node)
        node = next((t for t in edges.get(node, []) if t in trapped), None)
    if node is None:
        return []
    return path[index[node] :]
