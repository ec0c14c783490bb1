"""The Quota page through NiceGUI's user simulation over a real platform: a card per quota with its
figures, a card turning to warning when a limit is lowered (and to danger at the limit), bad limits
shown on their field with nothing saved, cards following new functions live, the trend chart drawn from
the snapshots, and a viewer who sees everything but changes nothing."""

from __future__ import annotations

from nicegui.testing.user import User

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value

CODE = "def handler(event, context):\n    return event\n"


async def make(platform: Platform, name: str) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name=name, runtime="python", code=CODE))


def text(user: User, marker: str) -> str:
    return str(element(user, marker).text)


def level(user: User, name: str) -> str:
    return text(user, f"quota-{name}-level")


async def test_every_quota_has_a_card_with_its_figures(console: User, platform: Platform) -> None:
    await make(platform, "one")
    await log_in(console, then="/quota")
    await console.should_see(marker="quota-functions", retries=50)
    for name in ("functions", "memory", "invocations_day", "invocations_month", "concurrency"):
        await console.should_see(marker=f"quota-{name}")
    for name in ("storage_code", "storage_layers", "storage_logs", "storage_records"):
        await console.should_see(marker=f"quota-{name}")
    assert text(console, "quota-functions-value") == "1 of 100"
    assert text(console, "quota-functions-percent") == "1.0%"
    assert level(console, "functions") == "OK"
    assert text(console, "quota-memory-value") == "256 MB of 10,240 MB"
    await console.should_see("Warning from 80% of a limit")
    await console.should_see(marker="nav-Quota")


async def test_lowering_a_limit_turns_its_card_to_warning_then_danger(
    console: User, platform: Platform
) -> None:
    for name in ("a", "b", "c", "d"):
        await make(platform, name)
    await log_in(console, then="/quota")
    await console.should_see(marker="quota-edit", retries=50)

    console.find(marker="quota-edit").click()
    await console.should_see(marker="quota-dialog", retries=50)
    set_value(console, "limit-max_functions", 5)
    console.find(marker="quota-save").click()
    await console.should_see("Quota limits saved", retries=50)

    await eventually(lambda: level(console, "functions") == "Warning")
    assert text(console, "quota-functions-value") == "4 of 5"
    assert platform.quotas.limits()["max_functions"] == 5
    await make(platform, "e")  # live: the new function reaches the card without a reload
    await eventually(lambda: level(console, "functions") == "Limit reached", retries=200)
    assert text(console, "quota-functions-percent") == "100.0%"
    await console.should_see("1 at the limit")


async def test_a_bad_limit_is_shown_on_its_field_and_nothing_is_saved(
    console: User, platform: Platform
) -> None:
    await log_in(console, then="/quota")
    await console.should_see(marker="quota-edit", retries=50)
    console.find(marker="quota-edit").click()
    await console.should_see(marker="quota-dialog", retries=50)

    set_value(console, "limit-warning_threshold", 150)
    console.find(marker="quota-save").click()

    await eventually(lambda: element(console, "limit-warning_threshold").error)
    assert "between 1 and 100" in element(console, "limit-warning_threshold").error
    set_value(console, "limit-warning_threshold", 80)
    set_value(console, "limit-max_functions", 2.5)
    console.find(marker="quota-save").click()
    await eventually(lambda: element(console, "limit-max_functions").error)
    assert platform.quotas.limits()["max_functions"] == 100
    assert platform.quotas.limits()["warning_threshold"] == 80
    assert (await platform.audit.list(SYSTEM, action="quota.update")).items == []


async def test_the_trend_chart_draws_the_snapshots(console: User, platform: Platform) -> None:
    await make(platform, "one")
    await platform.quotas.snapshot()
    await log_in(console, then="/quota")
    await console.should_see(marker="quota-chart", retries=50)
    figure = element(console, "quota-chart").figure
    functions = next(trace for trace in figure["data"] if trace["name"] == "Functions")
    assert functions["y"] == [0.0, 1.0]  # the start-up snapshot, then ours: 1 of 100
    assert text(console, "quota-chart-empty") == ""
    set_value(console, "quota-range", 24)
    await eventually(lambda: len(element(console, "quota-chart").figure["data"][0]["x"]) == 2)


async def test_a_viewer_sees_the_quotas_but_cannot_edit_them(console: User, platform: Platform) -> None:
    await platform.auth.create_user(SYSTEM, "vera", "viewer password 123", role="viewer")
    await log_in(console, "vera", "viewer password 123", then="/quota")
    await console.should_see(marker="quota-functions", retries=50)
    await console.should_not_see(marker="quota-edit")
