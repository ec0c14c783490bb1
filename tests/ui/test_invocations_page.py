"""The Invocations page: the list and its filters, the empty state, the detail drawer (opened by `?id=`),
attempt history of a retried async invocation, replay, and invocations arriving live."""

from __future__ import annotations

import pytest
from nicegui.testing.user import User

from components import invocation_table
from engine.events import InvocationFinished
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from tests.api.conftest import HELLO
from tests.ui.conftest import log_in

FAILING = (
    "def handler(event, context):\n"
    '    print("failing now")\n'
    '    raise ValueError("bad order " + str(event["id"]))\n'
)
ALWAYS_FAILS = 'def handler(event, context):\n    raise RuntimeError("nope " + str(context.attempt))\n'
RETRIES = {"retry_attempts": 3, "retry_backoff_ms": 10, "retry_backoff_max_ms": 50}


async def make(platform: Platform, name: str, code: str = HELLO, **fields: object) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name=name, runtime="python", code=code, **fields))


async def invoke(platform: Platform, name: str, event: object) -> str:
    outcome = await platform.invoker.invoke(SYSTEM, name, event)
    await platform.batcher.flush()
    return outcome.request_id


def shown_rows(user: User) -> list[str]:
    """The request ids (last 12 characters) of the rows shown, top to bottom."""
    rows = list(user.find(marker="invocation-row").elements)
    rows.sort(key=lambda r: r.parent_slot.children.index(r) if r.parent_slot else 0)  # type: ignore[union-attr]
    return [r.default_slot.children[-1].text for r in rows]  # type: ignore[attr-defined]


async def test_the_list_shows_invocations_newest_first(console: User, platform: Platform) -> None:
    await make(platform, "hello")
    await make(platform, "orders", FAILING)
    first = await invoke(platform, "hello", {"name": "Ada"})
    second = await invoke(platform, "orders", {"id": 7})
    await log_in(console, then="/invocations")
    await console.should_see(second[-12:])
    assert shown_rows(console) == [second[-12:], first[-12:]]
    await console.should_see("failed")
    await console.should_see("success")


async def test_filters_narrow_the_list(console: User, platform: Platform) -> None:
    await make(platform, "hello")
    await make(platform, "orders", FAILING)
    ok = await invoke(platform, "hello", {})
    bad = await invoke(platform, "orders", {"id": 1})
    await log_in(console, then="/invocations?status=failed")
    await console.should_see(bad[-12:])
    await console.should_not_see(ok[-12:])
    console.find(marker="filter-status").elements.pop().set_value("")
    await console.should_see(ok[-12:])
    console.find(marker="filter-function").type("hello")
    console.find(marker="apply-filters").click()
    await console.should_not_see(bad[-12:], retries=50)  # the list reloads from the database
    await console.should_see(ok[-12:])


async def test_an_unknown_function_and_a_backwards_range_are_explained_inline(
    console: User, platform: Platform
) -> None:
    await log_in(console, then="/invocations")
    console.find(marker="filter-function").type("ghost")
    console.find(marker="apply-filters").click()
    await console.should_see("No function named 'ghost'.")
    console.find(marker="filter-function").clear()
    console.find(marker="filter-range").elements.pop().set_value("custom")
    console.find(marker="filter-from").type("2026-02-01 10:00")
    console.find(marker="filter-to").type("2026-01-01 10:00")
    console.find(marker="apply-filters").click()
    await console.should_see("The end of the time range is before its start.")
    console.find(marker="filter-to").clear().type("yesterday")
    console.find(marker="apply-filters").click()
    await console.should_see("To: 'yesterday' is not a date and time")


async def test_an_empty_list_says_so(console: User, platform: Platform) -> None:
    await log_in(console, then="/invocations")
    await console.should_see("No invocations yet")
    await console.open("/invocations?status=timeout")
    await console.should_see("No invocations match these filters.")


async def test_id_opens_the_drawer_with_input_error_logs_and_timings(
    console: User, platform: Platform
) -> None:
    await make(platform, "orders", FAILING)
    request_id = await invoke(platform, "orders", {"id": 42})
    await log_in(console, then=f"/invocations?id={request_id}")
    await console.should_see(marker="drawer-status")
    await console.should_see("ValueError: bad order 42")
    await console.should_see('"id": 42')
    await console.should_see("failing now")
    await console.should_see("Billed")
    await console.should_see("sync · api · $LATEST · dev", marker="drawer-where")  # the default environment
    [link] = console.find(marker="reinvoke-link").elements
    fn = await platform.functions.get(SYSTEM, "orders")
    assert link.props["href"] == f"/functions/{fn.id}?tab=test&from={request_id}"
    console.find(marker="drawer-close").click()
    await console.should_not_see(marker="drawer-status")


async def test_an_unknown_id_is_explained_in_the_drawer(console: User, platform: Platform) -> None:
    await log_in(console, then="/invocations?id=no-such-invocation")
    await console.should_see("Invocation no-such-invocation cannot be shown")


async def test_a_retried_async_invocation_shows_every_attempt(console: User, platform: Platform) -> None:
    await make(platform, "doomed", ALWAYS_FAILS, **RETRIES)
    with platform.bus.subscribe(InvocationFinished) as finished:
        request_id, _ = await platform.invoker.submit(SYSTEM, "doomed", {"n": 1})
        await finished.wait_for(lambda e: e.invocation_id == request_id and e.final, timeout=15)
    await platform.batcher.flush()
    await log_in(console, then=f"/invocations?id={request_id}")
    await console.should_see("Attempts (3 of at most 3)")
    assert len(console.find(marker="drawer-attempt").elements) == 3
    for n in (1, 2, 3):
        await console.should_see(f"RuntimeError: nope {n}")


async def test_replay_runs_it_again_and_opens_the_new_invocation(console: User, platform: Platform) -> None:
    await make(platform, "hello")
    original = await invoke(platform, "hello", {"name": "again"})
    await log_in(console, then=f"/invocations?id={original}")
    console.find(marker="replay-now").click()
    await console.should_see(marker="confirm-ok")
    console.find(marker="confirm-ok").click()
    await console.should_see(f"replay of {original}", retries=100)
    await console.should_see('"hello": "again"')


async def test_a_new_invocation_appears_live(console: User, platform: Platform) -> None:
    await make(platform, "hello")
    await make(platform, "orders", FAILING)
    await log_in(console, then="/invocations?function=hello")
    await console.should_see("No invocations match these filters.")
    skipped = await invoke(platform, "orders", {"id": 1})  # filtered out
    fresh = await invoke(platform, "hello", {"name": "live"})
    await console.should_see(fresh[-12:], retries=50)
    await console.should_not_see(skipped[-12:])
    assert shown_rows(console) == [fresh[-12:]]


async def test_live_arrivals_push_the_oldest_rows_to_the_older_page(
    console: User, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(invocation_table, "MAX_ROWS", 2)
    original = invocation_table.InvocationTable.__init__

    def small_pages(self: invocation_table.InvocationTable, ctx: object, **kw: object) -> None:
        original(self, ctx, page_size=2)  # type: ignore[arg-type]

    monkeypatch.setattr(invocation_table.InvocationTable, "__init__", small_pages)
    await make(platform, "hello")
    ids = [await invoke(platform, "hello", {"n": n}) for n in range(2)]
    await log_in(console, then="/invocations")
    await console.should_see(ids[1][-12:])
    assert not console.find(marker="invocations-older").elements.pop().enabled  # one page of two
    ids.append(await invoke(platform, "hello", {"n": 2}))
    await console.should_see(ids[2][-12:], retries=50)
    await console.should_not_see(ids[0][-12:], retries=50)
    assert shown_rows(console) == [ids[2][-12:], ids[1][-12:]]
    console.find(marker="invocations-older").click()  # enabled now: the pushed-out row is one page down
    await console.should_see("Page 2")
    assert shown_rows(console) == [ids[0][-12:]]


async def test_clicking_a_row_opens_its_drawer(console: User, platform: Platform) -> None:
    await make(platform, "hello")
    request_id = await invoke(platform, "hello", {"name": "Row"})
    await log_in(console, then="/invocations")
    await console.should_see(request_id[-12:])
    await console.should_not_see(marker="drawer-status")
    console.find(marker="invocation-row").click()
    await console.should_see('"hello": "Row"')
    await console.should_see(content=request_id, marker="drawer-id")


async def test_older_and_newer_pages(
    console: User, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make(platform, "hello")
    ids = [await invoke(platform, "hello", {"n": n}) for n in range(5)]
    original = invocation_table.InvocationTable.__init__

    def small_pages(self: invocation_table.InvocationTable, ctx: object, **kw: object) -> None:
        original(self, ctx, page_size=2)  # type: ignore[arg-type]

    monkeypatch.setattr(invocation_table.InvocationTable, "__init__", small_pages)
    await log_in(console, then="/invocations")
    await console.should_see("Page 1")
    assert shown_rows(console) == [ids[4][-12:], ids[3][-12:]]
    console.find(marker="invocations-older").click()
    await console.should_see("Page 2")
    assert shown_rows(console) == [ids[2][-12:], ids[1][-12:]]
    console.find(marker="invocations-older").click()
    await console.should_see("Page 3")
    assert shown_rows(console) == [ids[0][-12:]]
    assert not console.find(marker="invocations-older").elements.pop().enabled
    console.find(marker="invocations-newer").click()
    await console.should_see("Page 2")
    assert shown_rows(console) == [ids[2][-12:], ids[1][-12:]]
