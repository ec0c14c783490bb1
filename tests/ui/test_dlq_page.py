"""The DLQ page through NiceGUI's user simulation over a real platform, with messages made for real (a
function that always fails, retry_attempts=1, invoked async): the list and the stats cards, filters, the
detail drawer with every attempt's error, retry after fixing the function, discarding a selection, purge
behind a typed confirmation, and the stats updating live when a message lands."""

from __future__ import annotations

from typing import Any

from nicegui.testing.user import User

from engine.events import DlqChanged
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate, FunctionUpdate
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value

ALWAYS_FAILS = 'def handler(event, context):\n    raise RuntimeError("nope " + str(event.get("n")))\n'
KEY_ERROR = 'def handler(event, context):\n    return event["missing"]\n'
ECHO = "def handler(event, context):\n    return event\n"


async def failing(platform: Platform, name: str = "doomed", code: str = ALWAYS_FAILS) -> str:
    fn = await platform.functions.create(
        SYSTEM, FunctionCreate(name=name, runtime="python", code=code, retry_attempts=1)
    )
    return fn.id


async def dead_letters(platform: Platform, name: str, events: list[dict[str, Any]]) -> list[str]:
    """Submit `events` async to `name` and wait until each lands in the DLQ; their message ids."""
    with platform.bus.subscribe(DlqChanged) as dlq:
        request_ids = [(await platform.invoker.submit(SYSTEM, name, e))[0] for e in events]
        for _ in request_ids:
            await dlq.wait_for(lambda e: e.status == "pending", timeout=20)
    await platform.batcher.flush()
    page = await platform.dlq.list(SYSTEM, limit=100)
    by_request = {m.original_request_id: m.id for m in page.items}
    return [by_request[r] for r in request_ids]


def stat(user: User, name: str) -> str:
    return str(element(user, f"dlq-{name}-value").text)


def shown_rows(user: User) -> int:
    try:
        return len(user.find(marker="dlq-row").elements)
    except AssertionError:  # none on the page
        return 0


async def test_the_list_and_stats_show_failed_invocations(console: User, platform: Platform) -> None:
    await failing(platform)
    await dead_letters(platform, "doomed", [{"n": 1}, {"n": 2}])
    await log_in(console, then="/dlq")
    await console.should_see(marker="dlq-row", retries=50)
    assert shown_rows(console) == 2
    assert (stat(console, "total"), stat(console, "pending"), stat(console, "retried")) == ("2", "2", "0")
    await console.should_see("RuntimeError: nope 1")
    await console.should_see(marker="nav-DLQ")


async def test_the_empty_queue_says_so(console: User, platform: Platform) -> None:
    await log_in(console, then="/dlq")
    await console.should_see("the dead-letter queue is empty", retries=50)
    assert stat(console, "total") == "0"
    assert not element(console, "dlq-retry-selected").enabled


async def test_filters_by_error_type_function_and_time(console: User, platform: Platform) -> None:
    await failing(platform)
    await failing(platform, "broken", KEY_ERROR)
    await dead_letters(platform, "doomed", [{"n": 1}])
    await dead_letters(platform, "broken", [{}])
    await log_in(console, then="/dlq")
    await eventually(lambda: shown_rows(console) == 2)
    set_value(console, "filter-error-type", "KeyError")
    await eventually(lambda: shown_rows(console) == 1)
    await console.should_see("KeyError: 'missing'")
    await console.should_not_see("RuntimeError: nope 1")
    set_value(console, "filter-error-type", "")
    set_value(console, "filter-function", "doomed")
    console.find(marker="apply-filters").click()
    await eventually(lambda: shown_rows(console) == 1)
    await console.should_see("RuntimeError: nope 1")
    set_value(console, "filter-range", "custom")
    set_value(console, "filter-from", "2001-01-01")
    set_value(console, "filter-to", "2001-01-02")
    console.find(marker="apply-filters").click()
    await console.should_see("No messages match these filters.", retries=50)
    set_value(console, "filter-to", "2000-12-31")  # before its start: refused, named
    console.find(marker="apply-filters").click()
    await console.should_see("The end of the time range is before its start.", retries=50)


async def test_the_detail_shows_input_and_each_attempts_error(console: User, platform: Platform) -> None:
    await platform.functions.create(
        SYSTEM,
        FunctionCreate(
            name="thrice",
            runtime="python",
            code=ALWAYS_FAILS,
            retry_attempts=3,
            retry_backoff_ms=10,
            retry_backoff_max_ms=20,
        ),
    )
    [msg_id] = await dead_letters(platform, "thrice", [{"n": 7}])
    await log_in(console, then="/dlq")
    await console.should_see(marker=f"dlq-open-{msg_id}", retries=50)
    console.find(marker=f"dlq-open-{msg_id}").click()
    await console.should_see(marker="dlq-drawer-attempts", retries=50)
    errors = [e.text for e in console.find(marker="dlq-attempt-error").elements]
    assert errors == ["RuntimeError: nope 7"] * 3
    assert '"n": 7' in element(console, "dlq-drawer-input").text
    await console.should_see("Attempt 3")
    await console.should_see("Errors per attempt (3)")


async def test_retry_after_fixing_the_function_resolves_it(console: User, platform: Platform) -> None:
    await failing(platform)
    [msg_id] = await dead_letters(platform, "doomed", [{"n": 1}])
    await log_in(console, then="/dlq")
    await console.should_see(marker=f"dlq-retry-{msg_id}", retries=50)
    console.find(marker=f"dlq-retry-{msg_id}").click()  # still broken: stays pending, the error is shown
    await console.should_see("Retry failed: nope 1", retries=100)
    assert (await platform.dlq.get(SYSTEM, msg_id)).status == "pending"
    await platform.functions.update(SYSTEM, "doomed", FunctionUpdate(code=ECHO))
    console.find(marker=f"dlq-retry-{msg_id}").click()
    await console.should_see("Retried doomed: resolved", retries=100)
    await eventually(lambda: shown_rows(console) == 0)  # gone from the pending list
    await eventually(lambda: stat(console, "retried") == "1" and stat(console, "pending") == "0")
    msg = await platform.dlq.get(SYSTEM, msg_id)
    assert (msg.status, msg.retry_count) == ("resolved", 2)
    audit = await platform.audit.list(SYSTEM, action="dlq.retry")
    assert len(audit.items) == 2


async def test_discard_selected(console: User, platform: Platform) -> None:
    await failing(platform)
    ids = await dead_letters(platform, "doomed", [{"n": n} for n in range(4)])
    await log_in(console, then="/dlq")
    await eventually(lambda: shown_rows(console) == 4)
    for msg_id in ids[:3]:
        set_value(console, f"dlq-select-{msg_id}", True)
    await console.should_see("3 selected")
    console.find(marker="dlq-discard-selected").click()
    await console.should_see("Discard 3 messages?", retries=50)
    console.find(marker="confirm-ok").click()
    await console.should_see("3 discarded", retries=100)
    await eventually(lambda: shown_rows(console) == 1)
    await eventually(lambda: stat(console, "discarded") == "3")
    statuses = [(await platform.dlq.get(SYSTEM, i)).status for i in ids]
    assert statuses == ["discarded"] * 3 + ["pending"]
    assert len((await platform.audit.list(SYSTEM, action="dlq.discard")).items) == 3


async def test_purge_needs_the_typed_word(console: User, platform: Platform) -> None:
    await failing(platform)
    await dead_letters(platform, "doomed", [{"n": 1}, {"n": 2}])
    await log_in(console, then="/dlq")
    await eventually(lambda: shown_rows(console) == 2)
    console.find(marker="dlq-purge").click()
    await console.should_see(marker="confirm-typed", retries=50)
    console.find(marker="confirm-typed").type("doomed")  # the wrong word: the button stays disabled
    assert not element(console, "confirm-ok").enabled
    console.find(marker="confirm-ok").click()
    console.find(marker="confirm-cancel").click()
    await console.should_not_see(marker="confirm-dialog", retries=50)
    assert (await platform.dlq.stats(SYSTEM))["total"] == 2
    console.find(marker="dlq-purge").click()
    await console.should_see(marker="confirm-typed", retries=50)
    console.find(marker="confirm-typed").type("purge")
    console.find(marker="confirm-ok").click()
    await console.should_see("Purged 2 messages", retries=100)
    await console.should_see("the dead-letter queue is empty", retries=50)
    assert stat(console, "total") == "0"
    assert (await platform.dlq.stats(SYSTEM))["total"] == 0
    assert len((await platform.audit.list(SYSTEM, action="dlq.purge")).items) == 1


async def test_a_new_message_shows_up_live(console: User, platform: Platform) -> None:
    await failing(platform)
    await log_in(console, then="/dlq")
    await console.should_see("the dead-letter queue is empty", retries=50)
    await dead_letters(platform, "doomed", [{"n": 5}])
    await eventually(lambda: stat(console, "total") == "1" and stat(console, "pending") == "1")
    await eventually(lambda: shown_rows(console) == 1)
    await console.should_see("RuntimeError: nope 5")


async def test_retry_selected_resolves_each(console: User, platform: Platform) -> None:
    await failing(platform)
    ids = await dead_letters(platform, "doomed", [{"n": 1}, {"n": 2}, {"n": 3}])
    await platform.functions.update(SYSTEM, "doomed", FunctionUpdate(code=ECHO))
    await log_in(console, then="/dlq")
    await eventually(lambda: shown_rows(console) == 3)
    for msg_id in ids[:2]:
        set_value(console, f"dlq-select-{msg_id}", True)
    console.find(marker="dlq-retry-selected").click()
    await console.should_see("2 retried and resolved", retries=100)
    await eventually(lambda: shown_rows(console) == 1)
    assert [(await platform.dlq.get(SYSTEM, i)).status for i in ids] == ["resolved", "resolved", "pending"]
