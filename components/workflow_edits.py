"""The editor's edits, each a pure function from a definition to a new one (the input is never changed):
add a state, connect two, remove a transition, delete, rename (every reference follows), set the start,
replace a state's body, keep the canvas's positions. The editor holds one dict; the canvas and the JSON
tab both render from it, so an edit made in either shows in the other."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from components.workflow_graph import (
    TYPE_LABELS,
    Definition,
    Edge,
    Position,
    layout_of,
    state_type,
    states_of,
)
from engine.workflows.model import STATE_TYPES, TERMINAL_TYPES

NEW_STATE_GAP = 110  # vertical distance between a new state and the lowest one


class EditError(ValueError):
    """An edit the definition cannot take (the canvas shows the message; the definition is unchanged)."""


def default_state(kind: str) -> dict[str, Any]:
    """A new state of `kind` with the fields it needs to be valid (a Task still needs its function)."""
    if kind not in STATE_TYPES:
        raise EditError(f"unknown state type {kind!r}")
    body: dict[str, Any] = {"type": kind}
    if kind == "task":
        body["function_id"] = ""
    elif kind == "wait":
        body["seconds"] = 1
    elif kind == "parallel":
        body["branches"] = [{"start_at": "Branch", "states": {"Branch": {"type": "pass", "end": True}}}]
    elif kind == "map":
        body["items_path"] = "$"
        body["max_concurrency"] = 0
        body["iterator"] = {"start_at": "Item", "states": {"Item": {"type": "pass", "end": True}}}
    elif kind == "choice":
        body["choices"] = []
    elif kind == "fail":
        body["error"] = "Failed"
        body["cause"] = ""
    if kind not in ("choice", "succeed", "fail"):
        body["end"] = True
    return body


def unique_name(definition: Mapping[str, Any], base: str) -> str:
    states = states_of(definition)
    base = base.strip() or "State"
    if base not in states:
        return base
    stem = re.sub(r"\s*\d+$", "", base) or base
    n = 2
    while f"{stem}{n}" in states:
        n += 1
    return f"{stem}{n}"


def add_state(
    definition: Mapping[str, Any], kind: str, *, name: str = "", at: Position | None = None
) -> tuple[Definition, str]:
    """Add a new `kind` state (named after its type unless `name`), placed at `at` or below the others.
    The first state of an empty definition becomes its start."""
    body = default_state(kind)
    out = copy.deepcopy(dict(definition))
    states = states_of(out)
    new = unique_name(out, name or TYPE_LABELS[kind])
    states[new] = body
    out["states"] = states
    if not out.get("start_at") or out.get("start_at") not in states:
        out["start_at"] = new
    layout = layout_of(out)
    if at is None:
        at = _free_spot(layout)
    layout[new] = (round(at[0]), round(at[1]))
    out["layout"] = _layout_json(layout, states)
    return out, new


def _layout_json(layout: Mapping[str, Position], states: Mapping[str, Any]) -> dict[str, list[int]]:
    return {k: [round(v[0]), round(v[1])] for k, v in layout.items() if k in states}


def _free_spot(layout: Mapping[str, Position]) -> Position:
    if not layout:
        return (0.0, 0.0)
    lowest = max(layout.values(), key=lambda p: p[1])
    return (lowest[0], lowest[1] + NEW_STATE_GAP)


def connect(definition: Mapping[str, Any], source: str, target: str) -> Definition:
    """Draw a transition source -> target: `next` for states that have one (replacing `end`), a new rule
    for a Choice (its condition edited in the rule builder afterwards)."""
    states = states_of(definition)
    if source not in states or target not in states:
        raise EditError("both ends of a transition must be states of this workflow")
    if source == target:
        raise EditError("a state cannot go to itself")
    body = states[source]
    kind = state_type(body)
    if not isinstance(body, Mapping):
        raise EditError(f"state {source!r} is not an object: fix it in the JSON tab")
    if kind in TERMINAL_TYPES:
        raise EditError(f"a {TYPE_LABELS[kind]} state ends the execution: it has no next state")
    out = copy.deepcopy(dict(definition))
    new_body = dict(out["states"][source])
    if kind == "choice":
        rules = list(new_body.get("choices") or []) if isinstance(new_body.get("choices"), list) else []
        rules.append({"variable": "$", "is_present": True, "next": target})
        new_body["choices"] = rules
    else:
        new_body["next"] = target
        new_body.pop("end", None)
    out["states"][source] = new_body
    return out


def disconnect(definition: Mapping[str, Any], edge: Edge) -> Definition:
    """Remove one transition; a state that loses its `next` becomes an end state."""
    out = copy.deepcopy(dict(definition))
    states = states_of(out)
    body = states.get(edge.source)
    if not isinstance(body, dict):
        return out
    body = dict(body)
    if edge.kind == "next" and body.get("next") == edge.target:
        body.pop("next", None)
        body["end"] = True
    elif edge.kind == "default" and body.get("default") == edge.target:
        body.pop("default", None)
    elif edge.kind == "choice" and isinstance(body.get("choices"), list):
        rules = list(body["choices"])
        if edge.index < len(rules):
            del rules[edge.index]
        body["choices"] = rules
    elif edge.kind == "catch":
        catch = body.get("catch")
        catchers = list(catch) if isinstance(catch, list) else [catch] if catch else []
        if edge.index < len(catchers):
            del catchers[edge.index]
        if catchers:
            body["catch"] = catchers
        else:
            body.pop("catch", None)
    states[edge.source] = body
    out["states"] = states
    return out


def delete_state(definition: Mapping[str, Any], name: str) -> Definition:
    """Remove a state and every transition into it (a state left without `next` becomes an end)."""
    out = copy.deepcopy(dict(definition))
    states = states_of(out)
    if name not in states:
        return out
    del states[name]
    for other, body in list(states.items()):
        if isinstance(body, Mapping):
            states[other] = _without_target(dict(body), name)
    out["states"] = states
    if out.get("start_at") == name:
        out["start_at"] = next(iter(states), "")
    if "layout" in out:
        out["layout"] = _layout_json(layout_of(out), states)
    return out


def _without_target(body: dict[str, Any], target: str) -> dict[str, Any]:
    if body.get("next") == target:
        body.pop("next")
        if state_type(body) not in ("choice", "succeed", "fail"):
            body["end"] = True
    if body.get("default") == target:
        body.pop("default")
    if isinstance(body.get("choices"), list):
        body["choices"] = [
            r for r in body["choices"] if not (isinstance(r, Mapping) and r.get("next") == target)
        ]
    catch = body.get("catch")
    if isinstance(catch, list):
        kept = [c for c in catch if not (isinstance(c, Mapping) and c.get("next") == target)]
        if kept:
            body["catch"] = kept
        else:
            body.pop("catch")
    elif isinstance(catch, Mapping) and catch.get("next") == target:
        body.pop("catch")
    return body


def rename_state(definition: Mapping[str, Any], old: str, new: str) -> Definition:
    """Rename a state and every reference to it (start_at, next, default, rules, catchers, layout)."""
    new = new.strip()
    states = states_of(definition)
    if old not in states:
        raise EditError(f"no state named {old!r}")
    if not new or len(new) > 128:
        raise EditError("a state name is 1 to 128 characters")
    if new == old:
        return copy.deepcopy(dict(definition))
    if new in states:
        raise EditError(f"there is already a state named {new!r}")
    out = copy.deepcopy(dict(definition))
    renamed: dict[str, Any] = {}
    for name, body in states_of(out).items():
        key = new if name == old else name
        renamed[key] = _retarget(body, old, new) if isinstance(body, Mapping) else body
    out["states"] = renamed
    if out.get("start_at") == old:
        out["start_at"] = new
    if "layout" in out:
        layout = layout_of(out)
        if old in layout:
            layout[new] = layout.pop(old)
        out["layout"] = _layout_json(layout, out["states"])
    return out


def _retarget(body: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
    out = dict(body)
    for key in ("next", "default"):
        if out.get(key) == old:
            out[key] = new
    if isinstance(out.get("choices"), list):
        out["choices"] = [
            {**r, "next": new} if isinstance(r, Mapping) and r.get("next") == old else r
            for r in out["choices"]
        ]
    catch = out.get("catch")
    if isinstance(catch, list):
        out["catch"] = [
            {**c, "next": new} if isinstance(c, Mapping) and c.get("next") == old else c for c in catch
        ]
    elif isinstance(catch, Mapping) and catch.get("next") == old:
        out["catch"] = {**catch, "next": new}
    return out


def set_start(definition: Mapping[str, Any], name: str) -> Definition:
    if name not in states_of(definition):
        raise EditError(f"no state named {name!r}")
    out = copy.deepcopy(dict(definition))
    out["start_at"] = name
    return out


def set_state(definition: Mapping[str, Any], name: str, body: Mapping[str, Any]) -> Definition:
    """Replace one state's body (the side panel's edits)."""
    out = copy.deepcopy(dict(definition))
    states = states_of(out)
    if name not in states:
        raise EditError(f"no state named {name!r}")
    states[name] = copy.deepcopy(dict(body))
    out["states"] = states
    return out


def with_positions(definition: Mapping[str, Any], positions: Mapping[str, Any]) -> Definition:
    """The definition with `layout` updated from the canvas (only states that exist; rounded)."""
    out = copy.deepcopy(dict(definition))
    states = states_of(out)
    layout = layout_of(out)
    for name, value in positions.items():
        if name in states and isinstance(value, list | tuple) and len(value) == 2:
            layout[str(name)] = (round(float(value[0])), round(float(value[1])))
    out["layout"] = _layout_json(layout, states)
    return out
