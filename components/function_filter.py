"""The "Function" filter box of list pages: a name-or-id input that suggests the functions' names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from components.frame import PageContext


async def function_filter(ctx: PageContext, value: str, on_enter: Callable[..., Any]) -> ui.input:
    """Build the input (Enter applies); read it with `selected_function(box)`."""
    page = await ctx.platform.functions.list(ctx.principal, limit=100)
    return (
        ui.input("Function", value=value, autocomplete=[f.name for f in page.items], placeholder="name or id")
        .classes("w-48")
        .mark("filter-function")
        .on("keydown.enter", on_enter)
    )


def selected_function(box: ui.input) -> str | None:
    return (box.value or "").strip() or None
