"""The Logs page: entries with filters, the empty state, a live tail that Pause holds back and Follow
brings in, "Load older", downloads of the filtered set, and bad input explained inline."""

from __future__ import annotations

import json

import pytest
from nicegui.testing.user import User

from components import log_viewer
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from tests.ui.conftest import log_in

SAYS = 'def handler(event, context):\n    print("says " + event["word"])\n    return 1\n'
FAILS = 'def handler(event, context):\n    print("trouble " + event["word"])\n    raise ValueError("no")\n'


@pytest.fixture
async def functions(platform: Platform) -> None:
    for name, code in (("talker", SAYS), ("failer", FAILS)):
        await platform.functions.create(SYSTEM, FunctionCreate(name=name, runtime="python", code=code))


async def say(platform: Platform, function: str, *words: str) -> list[str]:
    ids = [(await platform.invoker.invoke(SYSTEM, function, {"word": w})).request_id for w in words]
    await platform.batcher.flush()
    return ids


def entry_count(user: User) -> int:
    return len(user.find(marker="log-entry").elements)


async def test_entries_show_with_function_level_and_invocation_link(
    console: User, platform: Platform, functions: None
) -> None:
    [request_id] = await say(platform, "failer", "ahead")
    await log_in(console, then="/logs")
    await console.should_see("trouble ahead")
    [entry] = console.find(marker="log-entry").elements
    assert f'href="/invocations?id={request_id}"' in entry.content  # type: ignore[attr-defined]
    assert "<b>failer</b>" in entry.content and "ERROR" in entry.content  # type: ignore[attr-defined]


async def test_filters_by_function_level_and_text(console: User, platform: Platform, functions: None) -> None:
    await say(platform, "talker", "Apple", "banana")
    await say(platform, "failer", "cherry")
    await log_in(console, then="/logs?level=error")
    await console.should_see("trouble cherry")
    await console.should_not_see("says Apple")
    console.find(marker="filter-level").elements.pop().set_value("")
    await console.should_see("says Apple")
    console.find(marker="filter-text").type("APPLE")
    console.find(marker="apply-filters").click()
    await console.should_not_see("says banana")
    await console.should_see("says Apple")
    await console.should_see("Searched the newest 3 entries.")
    console.find(marker="filter-text").clear()
    console.find(marker="filter-function").type("failer")
    console.find(marker="apply-filters").click()
    await console.should_not_see("says Apple")
    await console.should_see("trouble cherry")


async def test_bad_input_is_explained_inline(console: User, platform: Platform, functions: None) -> None:
    await log_in(console, then="/logs")
    console.find(marker="filter-function").type("ghost")
    console.find(marker="apply-filters").click()
    await console.should_see("no function named 'ghost'")
    console.find(marker="filter-function").clear()
    console.find(marker="filter-range").elements.pop().set_value("custom")
    console.find(marker="filter-from").type("2026-03-01")
    console.find(marker="filter-to").type("2026-02-01")
    console.find(marker="apply-filters").click()
    await console.should_see("The end of the time range is before its start.")


async def test_an_empty_view_says_so(console: User, platform: Platform, functions: None) -> None:
    await log_in(console, then="/logs")
    await console.should_see("No log entries yet")
    await console.open("/logs?q=nothing-like-this")
    await console.should_see("No log entries match these filters.")


async def test_live_tail_shows_new_entries_and_pause_holds_them_back(
    console: User, platform: Platform, functions: None
) -> None:
    await log_in(console, then="/logs")
    await console.should_see("No log entries yet")
    await say(platform, "talker", "live-one")
    await console.should_see("says live-one", retries=50)
    console.find(marker="log-follow").click()  # pause
    await console.should_see("Follow")
    await say(platform, "talker", "held-back")
    await console.should_see("1 new", retries=50)
    await console.should_not_see("says held-back")
    console.find(marker="log-follow").click()  # follow again: what was held back is read in
    await console.should_see("says held-back", retries=50)
    await console.should_not_see(marker="log-new-count")
    assert entry_count(console) == 2


async def test_live_entries_respect_the_filters(console: User, platform: Platform, functions: None) -> None:
    await log_in(console, then="/logs?function=failer")
    await console.should_see("No log entries match these filters.")
    await say(platform, "talker", "ignored")
    await say(platform, "failer", "noticed")
    await console.should_see("trouble noticed", retries=50)
    await console.should_not_see("says ignored")


async def test_load_older_pages_back(
    console: User, platform: Platform, functions: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    await say(platform, "talker", *"abcde")
    original = log_viewer.LogViewer.__init__

    def small_pages(self: log_viewer.LogViewer, ctx: object, **kw: object) -> None:
        original(self, ctx, page_size=2)  # type: ignore[arg-type]

    monkeypatch.setattr(log_viewer.LogViewer, "__init__", small_pages)
    await log_in(console, then="/logs")
    await console.should_see("says e")
    assert entry_count(console) == 2
    console.find(marker="log-load-older").click()
    await console.should_see("says c")
    console.find(marker="log-load-older").click()
    await console.should_see("says a")
    assert entry_count(console) == 5
    await console.should_not_see(marker="log-load-older")


async def test_download_streams_the_filtered_set(console: User, platform: Platform, functions: None) -> None:
    await say(platform, "talker", "kept")
    await say(platform, "failer", "dropped")
    await log_in(console, then="/logs?function=talker")
    await console.should_see("says kept")
    console.find(marker="log-download-jsonl").click()
    response = await console.download.next(timeout=10)
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [(e["function_name"], e["message"].strip()) for e in lines] == [("talker", "says kept")]
    console.find(marker="log-download-txt").click()
    text = (await console.download.next(timeout=10)).text
    assert "INFO  talker" in text and "says kept" in text and "dropped" not in text
