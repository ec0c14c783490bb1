"""Logs: every function's log entries with filters (function, level, text, time range), a live tail
with Follow / Pause, "Load older", and downloads. `?function=&level=&q=` preset the filters.

Downloads stream from `GET /logs/download` (below): a console route authenticated by the console's own
session, streaming `LogService.export`, so a large export never sits in memory."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from nicegui import app, ui

from app.pages._query import query_moment
from components.frame import PageContext, console_page, platform, session_principal
from components.function_filter import function_filter, selected_function
from components.invocation_table import TimeRangeInput
from components.log_viewer import DOWNLOAD_PATH, LogViewer
from engine.errors import Invalid, NimbusError
from engine.services.logs import LEVELS, MAX_TEXT_CHARS, LogFilters

LEVEL_OPTIONS = {"": "Any level", **{level: level for level in LEVELS}}
_MEDIA = {"txt": "text/plain; charset=utf-8", "jsonl": "application/x-ndjson"}


@console_page("/logs", "Logs")
async def logs_page(ctx: PageContext, function: str = "", level: str = "", q: str = "") -> None:
    problem = ""
    if level and level not in LEVELS:
        problem, level = f"Unknown level {level!r}: choose one of {', '.join(LEVELS)}.", ""

    async def apply() -> None:
        try:
            since, until = time_range.resolve()
        except Invalid as exc:
            viewer.show_error(exc.message)
            return
        await viewer.apply(
            LogFilters(
                function=selected_function(function_box),
                level=level_box.value or None,
                text=text_box.value or None,
                since=since,
                until=until,
            )
        )

    with ui.row().classes("w-full items-end gap-3").mark("log-filters"):
        function_box = await function_filter(ctx, function, apply)
        level_box = ui.select(LEVEL_OPTIONS, value=level, label="Level", on_change=apply)
        level_box.classes("w-32").mark("filter-level")
        text_box = (
            ui.input("Search text", value=q, placeholder="case-insensitive")
            .props(f"maxlength={MAX_TEXT_CHARS} clearable")
            .classes("w-56")
            .mark("filter-text")
            .on("keydown.enter", apply)
        )
        time_range = TimeRangeInput(on_change=apply)
        ui.button("Apply", icon="filter_alt", on_click=apply).props("outline").mark("apply-filters")
    viewer = LogViewer(ctx)
    await apply()
    if problem:
        viewer.show_error(problem)


@app.get(DOWNLOAD_PATH, include_in_schema=False)
async def download_logs(
    request: Request,
    function: str = "",
    level: str = "",
    q: str = "",
    since: str = "",
    until: str = "",
    format: str = "txt",
) -> Response:
    principal = await session_principal(request)
    if principal is None:
        return PlainTextResponse("log in to download logs", status_code=401)
    try:
        filters = LogFilters(
            function=function or None,
            level=level or None,
            text=q or None,
            since=query_moment(since, "since"),
            until=query_moment(until, "until"),
        )
        chunks = await platform().logs.export(principal, filters, format)  # type: ignore[arg-type]
    except NimbusError as exc:
        return PlainTextResponse(exc.message, status_code=exc.status)
    return StreamingResponse(
        chunks,
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="nimbus-logs.{format}"'},
    )
