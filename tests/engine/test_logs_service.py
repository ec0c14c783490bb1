"""The log viewer's service: search across functions with filters and cursors, a bounded text search,
tailing newer entries, and a streamed export. Rows come from really invoking functions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from data.types import id_floor, utcnow
from engine.errors import Invalid
from engine.platform import Platform
from engine.principal import SYSTEM, Principal
from engine.services import logs as logs_module
from engine.services.function_schemas import FunctionCreate
from engine.services.logs import LogFilters
from tests.api.conftest import make_settings

VIEWER = Principal(actor="vera", actor_type="user", role="viewer")
SAYS = 'def handler(event, context):\n    print("says " + event["word"])\n    return event["word"]\n'
FAILS = (
    'def handler(event, context):\n    print("about to fail " + event["word"])\n    raise ValueError("no")\n'
)


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        for name, code in (("talker", SAYS), ("failer", FAILS)):
            await running.functions.create(SYSTEM, FunctionCreate(name=name, runtime="python", code=code))
        yield running


async def say(platform: Platform, function: str, *words: str) -> list[str]:
    ids = [(await platform.invoker.invoke(SYSTEM, function, {"word": w})).request_id for w in words]
    await platform.batcher.flush()
    return ids


async def messages(platform: Platform, **filters: object) -> list[str]:
    page = await platform.logs.search(VIEWER, **filters)  # type: ignore[arg-type]
    return [e.message.strip() for e in page.items]


async def test_search_lists_every_function_newest_first_with_names(platform: Platform) -> None:
    [first] = await say(platform, "talker", "one")
    await say(platform, "failer", "two")
    page = await platform.logs.search(VIEWER)
    assert [(e.function_name, e.level, e.message.strip()) for e in page.items] == [
        ("failer", "error", "about to fail two"),
        ("talker", "info", "says one"),
    ]
    assert page.items[1].invocation_id == first and page.items[1].attempt == 1
    assert page.next_cursor is None and page.scanned == 0 and not page.capped


async def test_filters_by_function_name_or_id_and_level(platform: Platform) -> None:
    await say(platform, "talker", "a", "b")
    await say(platform, "failer", "c")
    talker = await platform.functions.get(SYSTEM, "talker")
    assert await messages(platform, function="talker") == ["says b", "says a"]
    assert await messages(platform, function=talker.id) == ["says b", "says a"]
    assert await messages(platform, level="error") == ["about to fail c"]
    assert await messages(platform, function="talker", level="error") == []


async def test_text_search_is_a_case_insensitive_substring(platform: Platform) -> None:
    await say(platform, "talker", "Apple", "banana", "100%_literal")
    assert await messages(platform, text="APPLE") == ["says Apple"]
    assert await messages(platform, text="%_") == ["says 100%_literal"]  # wildcards are literal
    assert await messages(platform, text="cherry") == []


async def test_time_range_limits_entries(platform: Platform) -> None:
    await say(platform, "talker", "early")
    middle = utcnow()
    await say(platform, "talker", "late")
    assert await messages(platform, since=middle) == ["says late"]
    assert await messages(platform, until=middle) == ["says early"]
    assert await messages(platform, since=middle - timedelta(hours=1), until=middle) == ["says early"]


async def test_cursor_pages_through_older_entries(platform: Platform) -> None:
    await say(platform, "talker", *"abcde")
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = await platform.logs.search(VIEWER, limit=2, cursor=cursor)
        seen += [e.message.strip() for e in page.items]
        cursor = page.next_cursor
    assert seen == ["says e", "says d", "says c", "says b", "says a"] and cursor is None


async def test_text_search_examines_a_bounded_window_and_says_so(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs_module, "SCAN_LIMIT", 3)
    await say(platform, "talker", "needle-1", "x", "y", "z", "w")
    page = await platform.logs.search(VIEWER, text="needle")
    assert page.items == [] and page.capped and page.scanned == 3 and page.scan_limit == 3
    assert page.next_cursor is not None
    older = await platform.logs.search(VIEWER, text="needle", cursor=page.next_cursor)
    assert [e.message.strip() for e in older.items] == ["says needle-1"]
    assert older.scanned == 2 and not older.capped and older.next_cursor is None


async def test_bad_filters_are_refused_with_the_field(platform: Platform) -> None:
    now = utcnow()
    cases = [
        ({"function": "ghost"}, "function", "no function named 'ghost'"),
        ({"level": "debug"}, "level", "level must be one of info, error"),
        ({"since": now, "until": now - timedelta(minutes=1)}, "until", "end of the time range"),
        ({"text": "x" * 201}, "text", "200 characters"),
        ({"cursor": "not-a-cursor"}, "cursor", "invalid cursor"),
    ]
    for filters, field, message in cases:
        with pytest.raises(Invalid, match=message) as caught:
            await platform.logs.search(VIEWER, **filters)  # type: ignore[arg-type]
        assert caught.value.field == field


async def test_a_deleted_functions_entries_stay_searchable_by_id(platform: Platform) -> None:
    talker = await platform.functions.get(SYSTEM, "talker")
    await say(platform, "talker", "remember me")
    await platform.functions.delete(SYSTEM, "talker")
    assert await messages(platform, function=talker.id) == ["says remember me"]


async def test_tail_returns_newer_entries_oldest_first(platform: Platform) -> None:
    await say(platform, "talker", "old")
    newest = (await platform.logs.search(VIEWER, limit=1)).items[0].id
    await say(platform, "talker", "new-1")
    await say(platform, "failer", "new-2")
    tail = await platform.logs.tail(VIEWER, after=newest)
    assert [e.message.strip() for e in tail.items] == ["says new-1", "about to fail new-2"]
    assert (await platform.logs.tail(VIEWER, after=tail.after)).items == []
    errors = await platform.logs.tail(VIEWER, after=newest, level="error")
    assert [e.function_name for e in errors.items] == ["failer"]


async def test_export_streams_the_filtered_set_as_text_or_json_lines(platform: Platform) -> None:
    await say(platform, "talker", "a", "b")
    await say(platform, "failer", "c")
    chunks = await platform.logs.export(VIEWER, LogFilters(function="talker"), "jsonl")
    lines = [json.loads(line) for line in b"".join([c async for c in chunks]).decode().splitlines()]
    assert [(e["function_name"], e["message"].strip()) for e in lines] == [
        ("talker", "says b"),
        ("talker", "says a"),
    ]
    text = b"".join([c async for c in await platform.logs.export(VIEWER, LogFilters(level="error"))]).decode()
    assert "ERROR failer" in text and "    about to fail c" in text and "says" not in text


async def test_export_is_bounded_and_ends_with_a_note_when_cut(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs_module, "EXPORT_MAX_ENTRIES", 2)
    monkeypatch.setattr(logs_module, "_EXPORT_BATCH", 2)
    await say(platform, "talker", *"abcd")
    chunks = await platform.logs.export(VIEWER, LogFilters(), "jsonl")
    lines = [json.loads(line) for line in b"".join([c async for c in chunks]).decode().splitlines()]
    assert [e.get("message", "").strip() for e in lines[:2]] == ["says d", "says c"]
    assert lines[2]["truncated"] is True and lines[2]["exported"] == 2 and len(lines) == 3


async def test_export_refuses_an_unknown_format_before_streaming(platform: Platform) -> None:
    with pytest.raises(Invalid, match="txt or jsonl"):
        await platform.logs.export(VIEWER, LogFilters(), "csv")  # type: ignore[arg-type]


def test_id_floor_orders_with_uuid7_ids() -> None:
    from data.types import new_id

    before = utcnow()
    made = new_id()
    assert id_floor(before - timedelta(milliseconds=1)) < made
    assert id_floor(before + timedelta(seconds=1)) > made
