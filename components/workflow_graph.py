"""A workflow definition (the Nimbus JSON dict) drawn as a graph: nodes with their saved positions and
labels, and every transition (next, Choice rules, default, catchers) as an edge. The edits the canvas
makes are in workflow_edits.py. Nothing here raises on a half-written definition: states that are not
objects, unknown types and dangling names are drawn as well as they can be, never refused."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.workflows.model import TERMINAL_TYPES

Definition = dict[str, Any]
Position = tuple[float, float]

TYPE_LABELS: dict[str, str] = {
    "task": "Task",
    "choice": "Choice",
    "wait": "Wait",
    "parallel": "Parallel",
    "map": "Map",
    "pass": "Pass",
    "succeed": "Succeed",
    "fail": "Fail",
}
TYPE_HINTS: dict[str, str] = {
    "task": "run a function",
    "choice": "branch on the input",
    "wait": "pause for a time",
    "parallel": "run branches at once",
    "map": "run for each item",
    "pass": "pass or shape data",
    "succeed": "end successfully",
    "fail": "end with an error",
}
TYPE_ICONS: dict[str, str] = {
    "task": "bolt",
    "choice": "call_split",
    "wait": "hourglass_empty",
    "parallel": "view_week",
    "map": "repeat",
    "pass": "arrow_forward",
    "succeed": "check_circle",
    "fail": "cancel",
}


@dataclass(frozen=True, slots=True)
class Edge:
    """One transition: `kind` is next, choice (with the rule's `index`), default or catch (`index`)."""

    id: str
    source: str
    target: str
    kind: str
    index: int = 0
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "target": self.target,
            "kind": self.kind,
            "label": self.label,
        }


def blank_definition() -> Definition:
    return {"start_at": "", "states": {}}


def states_of(definition: Mapping[str, Any]) -> dict[str, Any]:
    states = definition.get("states")
    return dict(states) if isinstance(states, Mapping) else {}


def state_type(body: Any) -> str:
    kind = body.get("type") if isinstance(body, Mapping) else None
    return kind.lower() if isinstance(kind, str) else ""


def layout_of(definition: Mapping[str, Any]) -> dict[str, Position]:
    """The saved node positions ({state: [x, y]}), ignoring malformed entries."""
    raw = definition.get("layout")
    out: dict[str, Position] = {}
    if isinstance(raw, Mapping):
        for name, value in raw.items():
            if (
                isinstance(value, list | tuple)
                and len(value) == 2
                and all(isinstance(c, int | float) and not isinstance(c, bool) for c in value)
            ):
                out[str(name)] = (float(value[0]), float(value[1]))
    return out


def edges_of(definition: Mapping[str, Any]) -> list[Edge]:
    """Every transition between existing states, in a stable order (ids are positional)."""
    states = states_of(definition)
    edges: list[Edge] = []

    def add(source: str, target: Any, kind: str, index: int = 0, label: str = "") -> None:
        if isinstance(target, str) and target in states:
            edges.append(Edge(f"e{len(edges)}", source, target, kind, index, label))

    for name, body in states.items():
        if not isinstance(body, Mapping):
            continue
        add(name, body.get("next"), "next")
        choices = body.get("choices")
        if isinstance(choices, list):
            for i, rule in enumerate(choices):
                if isinstance(rule, Mapping):
                    add(name, rule.get("next"), "choice", i, rule_summary(rule))
        add(name, body.get("default"), "default", 0, "default")
        catch = body.get("catch")
        catchers = catch if isinstance(catch, list) else [catch] if isinstance(catch, Mapping) else []
        for i, catcher in enumerate(catchers):
            if isinstance(catcher, Mapping):
                errors = catcher.get("error_equals")
                text = ", ".join(errors) if isinstance(errors, list) else str(errors or "")
                add(name, catcher.get("next"), "catch", i, f"catch {text}".strip())
    return edges


def rule_summary(rule: Mapping[str, Any], limit: int = 40) -> str:
    """A short text for a Choice rule's condition, e.g. `$.n > 3` or `all of 2`."""
    text = _condition_text(rule)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_OPERATORS = {
    "equals": "==",
    "not_equals": "!=",
    "less_than": "<",
    "greater_than": ">",
    "less_than_equals": "<=",
    "greater_than_equals": ">=",
    "matches": "~",
}


def _condition_text(rule: Mapping[str, Any]) -> str:
    for combinator, word in (("and", "all of"), ("or", "any of")):
        parts = rule.get(combinator)
        if isinstance(parts, list):
            return f"{word} {len(parts)}"
    inner = rule.get("not")
    if isinstance(inner, Mapping):
        return f"not ({_condition_text(inner)})"
    variable = rule.get("variable", "?")
    for key, value in rule.items():
        if key in ("variable", "next", "comment"):
            continue
        if key.startswith("is_"):
            return f"{variable} {key}" if value is True else f"not {variable} {key}"
        for suffix, symbol in _OPERATORS.items():
            base = key.removesuffix("_path")
            if base.endswith("_" + suffix):
                shown = value if key.endswith("_path") or not isinstance(value, str) else f'"{value}"'
                return f"{variable} {symbol} {shown}"
    return str(variable)


def to_graph(
    definition: Mapping[str, Any],
    *,
    breakpoints: Iterable[str] = (),
    function_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the canvas draws: nodes (with saved positions, when any) and edges."""
    states = states_of(definition)
    positions = layout_of(definition)
    start = definition.get("start_at")
    stops = set(breakpoints)
    names = function_names or {}
    nodes = []
    for name, body in states.items():
        kind = state_type(body)
        detail = _detail(kind, body, names)
        label = ("● " if name in stops else "") + name + "\n" + TYPE_LABELS.get(kind, kind or "?")
        if detail:
            label += f" · {detail}"
        node: dict[str, Any] = {
            "id": name,
            "type": kind or "unknown",
            "label": label,
            "start": name == start,
            "end": _is_end(kind, body),
            "breakpoint": name in stops,
        }
        if name in positions:
            node["x"], node["y"] = positions[name]
        nodes.append(node)
    return {"nodes": nodes, "edges": [e.to_dict() for e in edges_of(definition)]}


def _is_end(kind: str, body: Any) -> bool:
    return kind in TERMINAL_TYPES or (isinstance(body, Mapping) and body.get("end") is True)


def _detail(kind: str, body: Any, function_names: Mapping[str, str]) -> str:
    if not isinstance(body, Mapping):
        return ""
    if kind == "task":
        ref = body.get("function_id") or body.get("function") or ""
        return str(function_names.get(str(ref), ref)) if ref else "no function"
    if kind == "wait":
        for key in ("seconds", "timestamp", "seconds_path", "timestamp_path"):
            if key in body:
                return f"{body[key]}s" if key == "seconds" else str(body[key])
    if kind == "parallel" and isinstance(body.get("branches"), list):
        n = len(body["branches"])
        return f"{n} branch{'es' if n != 1 else ''}"
    if kind == "map":
        limit = body.get("max_concurrency")
        return f"≤ {limit} at once" if isinstance(limit, int) and limit > 0 else "each item"
    if kind == "fail" and body.get("error"):
        return str(body["error"])
    return ""
