"""The wall display: no chrome, boards that rotate or stay pinned, figures pushed live from the shared
snapshot (top functions, errors, DLQ), and a page that updates in place instead of growing."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing.user import User

from engine.events import DlqChanged
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from tests.ui.conftest import log_in
from tests.ui.test_dashboard import FAIL, HELLO, eventually, in_order, text_of


def visible_board(user: User) -> str:
    boards = [m for m in ("overview", "functions", "errors", "dlq") if sees(user, f"board-{m}")]
    assert len(boards) == 1, boards
    return boards[0]


def sees(user: User, marker: str) -> bool:
    try:
        return bool(user.find(marker=marker).elements)
    except AssertionError:
        return False


async def test_the_wall_has_no_chrome_and_starts_on_the_overview(console: User) -> None:
    await log_in(console, then="/wall?rotate=0", expect="Overview")
    await console.should_see(marker="wall-invocations")
    await console.should_see(marker="wall-chart")
    await console.should_not_see(marker="nav-Dashboard")  # no sidebar
    await console.should_not_see(marker="logout")  # no header
    assert visible_board(console) == "overview"
    assert text_of(console, "wall-invocations") == "0"


async def test_boards_rotate(console: User) -> None:
    await log_in(console, then="/wall?rotate=0.2&clock=0", expect="Overview")
    seen: set[str] = set()

    def all_seen() -> bool:
        seen.add(visible_board(console))
        return len(seen) == 4

    await eventually(all_seen, "every board in turn", timeout=10)
    await console.should_see("Dead-letter queue")


async def test_a_pinned_board_stays(console: User) -> None:
    await log_in(console, then="/wall?board=errors&rotate=0.1", expect="Latest errors")
    assert visible_board(console) == "errors"
    ticks: set[str] = set()

    def clock_ticked_twice() -> bool:  # the clock ticks each second; rotation would come every 0.1 s
        ticks.add(text_of(console, "wall-clock"))
        return len(ticks) >= 3

    await eventually(clock_ticked_twice, "two clock ticks", timeout=10)
    assert visible_board(console) == "errors"


async def test_figures_arrive_live_on_every_board(console: User, platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="greeter", runtime="python", code=HELLO))
    await platform.functions.create(
        SYSTEM, FunctionCreate(name="breaker", runtime="python", code=FAIL, retry_attempts=1)
    )
    await log_in(console, then="/wall?board=overview&rotate=0", expect="Overview")
    for _ in range(3):
        await platform.invoker.invoke(SYSTEM, "greeter", {})
    with platform.bus.subscribe(DlqChanged) as dlq:
        await platform.invoker.submit(SYSTEM, "breaker", {"x": 1})  # fails its only attempt: DLQ
        await dlq.wait_for(lambda e: True, timeout=15)

    await eventually(lambda: text_of(console, "wall-invocations") == "4", "4 invocations on the wall")
    await eventually(lambda: text_of(console, "wall-dlq") == "1", "1 DLQ message on the overview")
    assert text_of(console, "wall-error-rate") == "25.0 %"

    await console.open("/wall?board=functions&rotate=0")
    await eventually(
        lambda: in_order(console, "wall-top-function") == ["greeter", "breaker"], "top functions"
    )

    await console.open("/wall?board=errors&rotate=0")
    await console.should_see("ValueError")
    assert in_order(console, "wall-error-function") == ["breaker"]
    await console.should_not_see(marker="wall-no-errors")

    await console.open("/wall?board=dlq&rotate=0")
    assert text_of(console, "wall-dlq-pending") == "1"
    assert in_order(console, "wall-dlq-function") == ["breaker"]


async def test_updates_change_elements_in_place(console: User, platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="greeter", runtime="python", code=HELLO))
    await log_in(console, then="/wall?rotate=0&clock=0", expect="Overview")
    count_before = len(list(console.current_layout.descendants()))
    for n in range(1, 4):
        await platform.invoker.invoke(SYSTEM, "greeter", {})
        await eventually(lambda n=n: text_of(console, "wall-invocations") == str(n), f"{n} invocations")
    assert len(list(console.current_layout.descendants())) == count_before
    (chart,) = console.find(kind=ui.plotly).elements
    assert len(chart.figure["data"]) == 2 and len(chart.figure["data"][0]["x"]) == 60
