"""A before/after diff of two JSON values (an audit event's states): `changes()` lists what was added,
removed or changed, by path (`memory_mb`, `tags[1]`, `env.KEY`); `json_diff()` shows that as a table,
with the whole before and after JSON behind an expansion."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from nicegui import ui

Kind = Literal["added", "removed", "changed"]
_MISSING: Any = object()
_COLOURS = {"added": "text-positive", "removed": "text-negative", "changed": "text-warning"}
_MAX_CELL = 400  # characters of one value shown in the table


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: Kind
    before: Any = None
    after: Any = None


def changes(before: Any, after: Any) -> list[Change]:
    """What differs between `before` and `after`, depth first, in key order (None counts as absent at
    the top: a create has no before, a delete no after)."""
    out: list[Change] = []
    _walk(_MISSING if before is None else before, _MISSING if after is None else after, "", out)
    return out


def _walk(before: Any, after: Any, path: str, out: list[Change]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            _walk(before.get(key, _MISSING), after.get(key, _MISSING), _join(path, str(key)), out)
    elif isinstance(before, list) and isinstance(after, list):
        for i in range(max(len(before), len(after))):
            b = before[i] if i < len(before) else _MISSING
            a = after[i] if i < len(after) else _MISSING
            _walk(b, a, f"{path}[{i}]", out)
    elif before is _MISSING and after is _MISSING:
        return
    elif before is _MISSING:
        out.append(Change(path or "(value)", "added", None, after))
    elif after is _MISSING:
        out.append(Change(path or "(value)", "removed", before, None))
    elif before != after or type(before) is not type(after):
        out.append(Change(path or "(value)", "changed", before, after))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_CELL else text[:_MAX_CELL] + "…"


def json_diff(before: Any, after: Any, *, mark: str = "json-diff") -> None:
    """The changes as a table (path, before, after), or a line saying there are none."""
    found = changes(before, after)
    with ui.column().classes("w-full gap-1").mark(mark):
        if not found:
            ui.label("No before/after change recorded.").classes("text-sm text-gray-500").mark(f"{mark}-none")
        else:
            with ui.element("q-markup-table").props("flat bordered dense").classes("w-full"):
                with ui.element("thead"), ui.element("tr"):
                    for header in ("Field", "Before", "After"):
                        with ui.element("th").classes("text-left"):
                            ui.label(header)
                with ui.element("tbody"):
                    for change in found:
                        _row(change, mark)
        with ui.expansion("Full before / after JSON").classes("w-full text-sm").mark(f"{mark}-full"):
            with ui.row().classes("w-full no-wrap gap-2"):
                for title, value in (("Before", before), ("After", after)):
                    with ui.column().classes("w-1/2 gap-0"):
                        ui.label(title).classes("text-xs text-gray-500")
                        ui.label(json.dumps(value, indent=2, ensure_ascii=False, default=str)).classes(
                            "w-full whitespace-pre-wrap break-all font-mono text-xs p-2 rounded "
                            "bg-gray-100 dark:bg-slate-800"
                        ).mark(f"{mark}-{title.lower()}")


def _row(change: Change, mark: str) -> None:
    with ui.element("tr").mark(f"{mark}-row"):
        with ui.element("td"):
            ui.label(change.path).classes(f"font-mono text-xs {_COLOURS[change.kind]}").mark(
                f"{mark}-path"
            ).tooltip(change.kind)
        with ui.element("td"):
            text = "" if change.kind == "added" else shown(change.before)
            ui.label(text).classes("font-mono text-xs break-all line-through text-gray-500")
        with ui.element("td"):
            text = "" if change.kind == "removed" else shown(change.after)
            ui.label(text).classes("font-mono text-xs break-all")
