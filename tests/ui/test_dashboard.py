"""The dashboard: an empty state on a fresh platform, then figures and the invocation stream pushed live
as functions run (no reload), all read from the metrics service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nicegui import ElementFilter, ui
from nicegui.testing.user import User

from components.metrics_panel import MetricsPanel, format_count, format_ms, format_rate
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from tests.ui.conftest import log_in

HELLO = 'def handler(event, context):\n    return {"hello": event.get("name", "world")}\n'
FAIL = "def handler(event, context):\n    raise ValueError('nope')\n"


def text_of(user: User, marker: str) -> str:
    """The text of the one visible element marked `marker`."""
    (element,) = user.find(marker=marker).elements
    assert isinstance(element, ui.label)
    return element.text


def stream_rows(user: User) -> list[dict[str, str]]:
    """The rows of the dashboard's latest-invocations table, top first."""
    (table,) = user.find(marker="stream").elements
    assert isinstance(table, ui.table)
    return list(table.rows)


def in_order(user: User, marker: str) -> list[str]:
    """The texts of the visible labels marked `marker`, in page order."""
    with user:
        found = ElementFilter(kind=ui.label, marker=marker, local_scope=False, only_visible=True)
        return [label.text for label in found]


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait until `check()` holds (an AssertionError counts as "not yet"), failing after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            if check():
                return
            problem: AssertionError | None = None
        except AssertionError as exc:
            problem = exc
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from problem
        await asyncio.sleep(0.05)


def test_figures_are_formatted_for_reading() -> None:
    assert [format_count(n) for n in (0, 1234567)] == ["0", "1,234,567"]
    assert [format_rate(r) for r in (None, 0.0, 0.0004, 0.25, 0.9996, 1.0)] == [
        "–",
        "0.0 %",
        "< 0.1 %",
        "25.0 %",
        "> 99.9 %",
        "100.0 %",
    ]
    assert [format_ms(v) for v in (None, 0.4321, 42.4, 1234.0)] == ["–", "0.43 ms", "42 ms", "1.23 s"]


async def test_a_fresh_platform_shows_the_empty_state(console: User) -> None:
    await log_in(console, then="/")
    await console.should_see("No invocations yet — create a function")
    await console.should_see(marker="empty-create")
    await console.should_not_see(marker="metric-invocations")


async def test_cards_and_stream_update_live_as_functions_run(console: User, platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="greeter", runtime="python", code=HELLO))
    await platform.functions.create(SYSTEM, FunctionCreate(name="breaker", runtime="python", code=FAIL))
    await log_in(console, then="/")
    await console.should_see("No invocations yet — create a function")

    for _ in range(3):
        await platform.invoker.invoke(SYSTEM, "greeter", {"name": "wall"})
    await platform.invoker.invoke(SYSTEM, "breaker", {})

    await eventually(lambda: text_of(console, "metric-invocations-value") == "4", "4 invocations on the card")
    await console.should_not_see("No invocations yet — create a function")
    await eventually(lambda: text_of(console, "metric-error-rate-value") == "25.0 %", "a 25 % error rate")
    assert text_of(console, "metric-dlq-value") == "0"
    assert text_of(console, "metric-p95-value") != "–"
    assert [row["function"] for row in stream_rows(console)] == ["breaker", "greeter", "greeter", "greeter"]
    assert [row["status"] for row in stream_rows(console)][:2] == ["failed", "success"]  # newest first


async def test_each_stream_row_links_to_its_invocation(console: User, platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="greeter", runtime="python", code=HELLO))
    outcome = await platform.invoker.invoke(SYSTEM, "greeter", {})
    await platform.batcher.flush()
    await log_in(console, then="/")
    await eventually(lambda: len(stream_rows(console)) == 1, "the invocation in the stream")
    assert stream_rows(console)[0]["id"] == outcome.request_id
    (table,) = console.find(marker="stream").elements
    assert "'/invocations?id=' + props.row.id" in str(table.slots["body-cell-function"].template)


async def test_the_charts_carry_the_per_minute_series(console: User, platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="greeter", runtime="python", code=HELLO))
    await log_in(console, then="/")
    for _ in range(2):
        await platform.invoker.invoke(SYSTEM, "greeter", {})

    def bars() -> list[int]:
        (chart,) = console.find(marker="chart-invocations").elements
        ok, errors = chart.figure["data"]
        return [a + b for a, b in zip(ok["y"], errors["y"], strict=True)]

    await eventually(lambda: sum(bars()) == 2, "two invocations in the chart")
    assert len(bars()) == 60 and bars()[-1] in (0, 2)  # per minute over the last hour


async def test_the_range_toggle_shows_a_day_in_quarter_hours(console: User, platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="greeter", runtime="python", code=HELLO))
    await platform.invoker.invoke(SYSTEM, "greeter", {})
    await platform.batcher.flush()
    await platform.rollups.flush()
    await log_in(console, then="/")
    (toggle,) = console.find(marker="metric-range").elements
    toggle.set_value("24 h")
    await console.should_see("Last 24 h, per 15 minutes")

    def points() -> list[int]:
        (chart,) = console.find(marker="chart-invocations").elements
        ok, errors = chart.figure["data"]
        return [a + b for a, b in zip(ok["y"], errors["y"], strict=True)]

    await eventually(lambda: len(points()) == 96 and sum(points()) == 1, "96 quarter-hour points")


async def test_the_panel_of_one_function_counts_only_that_function(console: User, platform: Platform) -> None:
    greeter = await platform.functions.create(
        SYSTEM, FunctionCreate(name="greeter", runtime="python", code=HELLO)
    )
    await platform.functions.create(SYSTEM, FunctionCreate(name="other", runtime="python", code=HELLO))
    panels: list[MetricsPanel] = []

    @ui.page("/panel-probe")
    async def probe() -> None:
        panel = MetricsPanel(platform, SYSTEM, greeter.id)
        panels.append(panel)
        await panel.refresh()
        panel.follow(ui.context.client)

    await console.open("/panel-probe")
    await eventually(lambda: bool(panels), "the probe page")
    for name in ("other", "greeter", "other", "greeter"):
        await platform.invoker.invoke(SYSTEM, name, {})
    await eventually(lambda: text_of(console, "metric-invocations-value") == "2", "greeter's 2 invocations")
    await platform.invoker.invoke(SYSTEM, "greeter", {})
    await eventually(
        lambda: text_of(console, "metric-invocations-value") == "3", "greeter's third invocation"
    )
    assert panels[0].summary is not None and panels[0].summary.function_id == greeter.id
