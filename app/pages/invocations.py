"""Invocations: every function's invocations with filters (function, status, source, time range), cursor
pagination, a detail drawer and live arrivals. `?function=&status=&source=` preset the filters and
`?id=` opens that invocation (the dashboard links here)."""

from __future__ import annotations

from nicegui import ui

from components.frame import PageContext, console_page
from components.function_filter import function_filter, selected_function
from components.invocation_table import InvocationFilters, InvocationTable, TimeRangeInput
from engine.errors import Invalid
from engine.invoke.invoker import SOURCES
from engine.services.invocations import STATUSES

STATUS_OPTIONS = {"": "Any status", **{s: s for s in STATUSES}}
SOURCE_OPTIONS = {"": "Any source", **{s: s for s in SOURCES}}


@console_page("/invocations", "Invocations")
async def invocations_page(
    ctx: PageContext, function: str = "", status: str = "", source: str = "", id: str = ""
) -> None:
    problems = []
    if status and status not in STATUSES:
        problems.append(f"Unknown status {status!r}: choose one of {', '.join(STATUSES)}.")
        status = ""
    if source and source not in SOURCES:
        problems.append(f"Unknown source {source!r}: choose one of {', '.join(SOURCES)}.")
        source = ""

    async def apply() -> None:
        try:
            since, until = time_range.resolve()
        except Invalid as exc:
            table.show_error(exc.message)
            return
        filters = InvocationFilters(
            function=selected_function(function_box),
            status=status_box.value or None,
            source=source_box.value or None,
            since=since,
            until=until,
        )
        await table.apply(filters)

    with ui.row().classes("w-full items-end gap-3").mark("invocation-filters"):
        function_box = await function_filter(ctx, function, apply)
        status_box = ui.select(STATUS_OPTIONS, value=status, label="Status", on_change=apply)
        status_box.classes("w-36").mark("filter-status")
        source_box = ui.select(SOURCE_OPTIONS, value=source, label="Source", on_change=apply)
        source_box.classes("w-36").mark("filter-source")
        time_range = TimeRangeInput(on_change=apply)
        ui.button("Apply", icon="filter_alt", on_click=apply).props("outline").mark("apply-filters")
    table = InvocationTable(ctx)
    await apply()
    if problems:
        table.show_error(" ".join(problems))
    if id:
        await table.open(id)
