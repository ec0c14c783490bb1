"""The Functions section through NiceGUI's user simulation over a real platform: the list, the template
gallery, and the detail page's Code, Configuration and Test tabs. Assertions look at what the page shows
and, for writes, at what the services then hold."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing.user import User

from data.models import Function
from engine.events import InvocationFinished
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from tests.ui.conftest import log_in

BROKEN = "def handler(event, context)\n    return 1\n"


async def make(
    platform: Platform, name: str, template: str = "python-hello-world", **fields: Any
) -> Function:
    """A function from a template, with the template's sample saved as test event "sample"."""
    chosen = platform.templates.get(template)
    fn = await platform.functions.create(SYSTEM, chosen.request(name, **fields))
    await platform.test_events.save(SYSTEM, fn.id, "sample", chosen.sample_event)
    return fn


def element(user: User, marker: str) -> Any:
    found = user.find(marker=marker).elements
    assert len(found) == 1, f"{len(found)} elements marked {marker!r}"
    return next(iter(found))


def set_value(user: User, marker: str, value: Any) -> None:
    """What a user's typing or picking ends with: the element's value (its handlers run as they would)."""
    with user:
        element(user, marker).value = value


async def eventually(check: Callable[[], Any], retries: int = 50) -> None:
    """Wait (0.1 s steps, like should_see) until `check()` is truthy; fail with its last value."""
    value = None
    for _ in range(retries):
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still {value!r} after {retries} tries")


async def names(platform: Platform) -> list[str]:
    return sorted(f.name for f in (await platform.functions.list(SYSTEM)).items)


def listed(user: User) -> list[str]:
    """The function names the list shows, in the order shown."""
    table = element(user, "fn-list")
    return [e.text for e in table.descendants() if isinstance(e, ui.link)]


# --- the list -----------------------------------------------------------------------------------------------


async def test_an_empty_list_invites_to_create_a_function(console: User) -> None:
    await log_in(console, then="/functions")
    await console.should_see("No functions yet")
    console.find(marker="fn-empty-create").click()
    await console.should_see(marker="template-python-hello-world", retries=50)


async def test_the_list_shows_the_services_functions_and_filters_them(
    console: User, platform: Platform
) -> None:
    await make(platform, "alpha", memory_mb=512)
    await make(platform, "beta", tags=["billing"])
    await make(platform, "gamma")
    await platform.functions.set_status(SYSTEM, "gamma", online=False)
    await log_in(console, then="/functions")
    await console.should_see(marker="fn-link-alpha", retries=50)
    assert listed(console) == ["gamma", "beta", "alpha"]  # newest first, as the service pages them
    await console.should_see("512 MB")
    await console.should_see("billing")

    console.find(marker="fn-search").type("alp")
    await eventually(lambda: listed(console) == ["alpha"])
    set_value(console, "fn-search", "")
    set_value(console, "fn-filter-tag", "billing")
    await eventually(lambda: listed(console) == ["beta"])
    set_value(console, "fn-filter-tag", "")
    set_value(console, "fn-filter-enabled", "offline")
    await eventually(lambda: listed(console) == ["gamma"])
    set_value(console, "fn-search", "zzz")
    await console.should_see(marker="fn-no-match", retries=50)


async def test_sorting_by_name_orders_every_page(console: User, platform: Platform) -> None:
    for i in (3, 1, 2):
        await make(platform, f"zz-{i}")
    for i in range(19):
        await make(platform, f"aa-{i:02d}")
    await log_in(console, then="/functions")
    set_value(console, "fn-sort", "name")
    await eventually(lambda: listed(console)[:2] == ["aa-00", "aa-01"])
    console.find(marker="fn-next").click()
    await eventually(lambda: listed(console) == ["zz-2", "zz-3"])  # the sort spans pages


async def test_sorting_by_name_orders_the_page(console: User, platform: Platform) -> None:
    for name in ("bravo", "alpha", "charlie"):
        await make(platform, name)
    await log_in(console, then="/functions")
    await eventually(lambda: listed(console) == ["charlie", "alpha", "bravo"])
    set_value(console, "fn-sort", "name")
    await eventually(lambda: listed(console) == ["alpha", "bravo", "charlie"])


async def test_pages_follow_the_cursor(console: User, platform: Platform) -> None:
    for i in range(21):
        await make(platform, f"fn-{i:02d}")
    await log_in(console, then="/functions")
    await eventually(lambda: len(listed(console)) == 20)
    assert listed(console)[0] == "fn-20"
    console.find(marker="fn-next").click()
    await eventually(lambda: listed(console) == ["fn-00"])
    await console.should_see("Page 2")
    console.find(marker="fn-prev").click()
    await eventually(lambda: len(listed(console)) == 20)


async def test_a_function_is_disabled_and_enabled_from_the_list(console: User, platform: Platform) -> None:
    await make(platform, "hello")
    await log_in(console, then="/functions")
    await console.should_see(marker="fn-toggle-hello", retries=50)
    console.find(marker="fn-toggle-hello").click()
    await eventually(lambda: _status(platform, "hello", "offline"))
    await eventually(lambda: element(console, "fn-status-hello").text == "offline")
    console.find(marker="fn-toggle-hello").click()
    await eventually(lambda: _status(platform, "hello", "active"))


async def _status(platform: Platform, name: str, status: str) -> bool:
    return (await platform.functions.get(SYSTEM, name)).status == status


async def test_delete_asks_first_and_cancel_keeps_the_function(console: User, platform: Platform) -> None:
    await make(platform, "keep")
    await make(platform, "doomed")
    await log_in(console, then="/functions")
    await console.should_see(marker="fn-delete-doomed", retries=50)
    console.find(marker="fn-delete-doomed").click()
    await console.should_see("Delete function doomed?")
    console.find(marker="confirm-cancel").click()
    await console.should_not_see(marker="confirm-dialog")
    assert await names(platform) == ["doomed", "keep"]
    console.find(marker="fn-delete-doomed").click()
    await console.should_see(marker="confirm-ok")
    console.find(marker="confirm-ok").click()
    await eventually(lambda: listed(console) == ["keep"])
    assert await names(platform) == ["keep"]


async def test_selected_functions_are_deleted_together(console: User, platform: Platform) -> None:
    for name in ("one", "two", "three"):
        await make(platform, name)
    await log_in(console, then="/functions")
    await console.should_see(marker="fn-select-one", retries=50)
    console.find(marker="fn-select-one").click()
    console.find(marker="fn-select-three").click()
    await console.should_see("Delete selected (2)")
    console.find(marker="fn-bulk-delete").click()
    await console.should_see(marker="confirm-ok")
    console.find(marker="confirm-ok").click()
    await eventually(lambda: listed(console) == ["two"])
    assert await names(platform) == ["two"]


# --- create from a template ---------------------------------------------------------------------------------


async def test_creating_from_a_template_opens_the_new_function(console: User, platform: Platform) -> None:
    await log_in(console, then="/functions/new")
    await console.should_see(marker="template-python-http-handler", retries=50)
    console.find(marker="template-python-http-handler").click()
    assert "statusCode" in element(console, "template-preview").value
    console.find(marker="fn-name").type("api")
    console.find(marker="fn-create").click()
    await console.should_see(marker="code-editor", retries=100)
    await console.should_see(marker="fn-title")
    fn = await platform.functions.get(SYSTEM, "api")
    assert fn.code == platform.templates.get("python-http-handler").files["main.py"]
    assert element(console, "code-editor").value == fn.code
    events = await platform.test_events.list(SYSTEM, "api")
    assert [(e.name, e.payload["path"]) for e in events] == [("sample", "/hello")]


@pytest.mark.parametrize(
    ("name", "memory", "marker", "message"),
    [
        ("", 128, "fn-name", "Enter a name for the function."),
        ("   ", 128, "fn-name", "Enter a name for the function."),
        ("taken", 128, "fn-name", "a function named 'taken' already exists"),
        ("9lives", 128, "fn-name", "name must start with a letter"),
        ("roomy", 64, "fn-memory", "Memory (MB) must be between 128 and 3072."),
        ("roomy", 4096, "fn-memory", "Memory (MB) must be between 128 and 3072."),
        ("roomy", None, "fn-memory", "Memory (MB) is required."),
    ],
)
async def test_bad_input_on_create_is_shown_on_its_field_and_saves_nothing(
    console: User, platform: Platform, name: str, memory: int | None, marker: str, message: str
) -> None:
    await make(platform, "taken")
    await log_in(console, then="/functions/new")
    await console.should_see(marker="fn-create", retries=50)
    console.find(marker="fn-name").type(name)
    set_value(console, "fn-memory", memory)
    console.find(marker="fn-create").click()
    await eventually(lambda: message in (element(console, marker).error or ""))
    assert await names(platform) == ["taken"]
    await console.should_not_see(marker="code-editor")


# --- the Code tab -------------------------------------------------------------------------------------------


async def test_edited_code_is_marked_unsaved_then_saved(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}")
    await console.should_see(marker="code-editor", retries=50)
    await console.should_not_see(marker="fn-dirty")
    new = 'def handler(event, context):\n    return "v2"\n'
    set_value(console, "code-editor", new)
    await console.should_see(marker="fn-dirty")
    console.find(marker="fn-save").click()
    await eventually(lambda: _code_is(platform, "hello", new))
    await console.should_not_see(marker="fn-dirty")
    await console.should_see("$LATEST revision 2")


async def test_ctrl_s_in_the_editor_saves(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}")
    await console.should_see(marker="code-editor", retries=50)
    new = 'def handler(event, context):\n    return "v3"\n'
    set_value(console, "code-editor", new)
    console.find(marker="code-editor").trigger("keybinding", {"key": "Mod-s"})
    await eventually(lambda: _code_is(platform, "hello", new))


async def _code_is(platform: Platform, name: str, code: str) -> bool:
    return (await platform.functions.get(SYSTEM, name)).code == code


async def test_a_syntax_error_is_shown_at_its_line_and_nothing_is_saved(
    console: User, platform: Platform
) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}")
    await console.should_see(marker="code-editor", retries=50)
    set_value(console, "code-editor", "import json\n\n" + BROKEN)
    console.find(marker="fn-save").click()
    await console.should_see("main.py line 3: expected ':'", retries=50)
    editor = element(console, "code-editor")
    assert editor.decorations == [{"kind": "line", "line": 3, "class": "nimbus-error-line"}]
    assert editor.line_tooltips == {3: "expected ':'"}
    after = await platform.functions.get(SYSTEM, "hello")
    assert (after.code, after.version) == (fn.code, fn.version)
    await console.should_see(marker="fn-dirty")  # the edit is still there to fix


async def test_a_syntax_error_in_another_file_opens_that_file_at_its_line(
    console: User, platform: Platform
) -> None:
    files = {
        "main.py": "from util import greet\n\ndef handler(event, context):\n    return greet()\n",
        "util.py": "def greet():\n    return 'hi'\n",
    }
    fn = await platform.functions.create(SYSTEM, FunctionCreate(name="multi", runtime="python", files=files))
    await log_in(console, then=f"/functions/{fn.id}")
    await console.should_see(marker="code-file", retries=50)
    assert element(console, "code-editor").value == files["main.py"]
    set_value(console, "code-file", "util.py")
    assert element(console, "code-editor").value == files["util.py"]
    set_value(console, "code-editor", "def greet():\n    return 'hi'\n\ndef oops(\n")
    set_value(console, "code-file", "main.py")
    console.find(marker="fn-save").click()
    await console.should_see("util.py line 4", retries=50)
    assert element(console, "code-file").value == "util.py"
    assert element(console, "code-editor").decorations[0]["line"] == 4
    assert (await platform.functions.get(SYSTEM, "multi")).files == files


# --- the Configuration tab ----------------------------------------------------------------------------------


async def test_configuration_is_saved_through_the_service(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}?tab=config")
    await console.should_see(marker="cfg-save", retries=50)
    set_value(console, "cfg-memory", 512)
    set_value(console, "cfg-retry-attempts", 5)
    console.find(marker="cfg-env-add").click()
    await console.should_see(marker="cfg-env-key")
    set_value(console, "cfg-env-key", "GREETING")
    set_value(console, "cfg-env-value", "hi")
    console.find(marker="cfg-save").click()
    await eventually(lambda: _memory_is(platform, "hello", 512))
    saved = await platform.functions.get(SYSTEM, "hello")
    assert (saved.retry_attempts, saved.env_vars, saved.timeout_sec) == (5, {"GREETING": "hi"}, 30)


async def test_memory_out_of_range_in_configuration_saves_nothing(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}?tab=config")
    await console.should_see(marker="cfg-save", retries=50)
    set_value(console, "cfg-memory", 5000)
    console.find(marker="cfg-save").click()
    await eventually(
        lambda: element(console, "cfg-memory").error == "Memory (MB) must be between 128 and 3072."
    )
    assert (await platform.functions.get(SYSTEM, "hello")).version == fn.version


async def _memory_is(platform: Platform, name: str, memory: int) -> bool:
    return (await platform.functions.get(SYSTEM, name)).memory_mb == memory


async def test_secrets_are_set_and_shown_only_masked(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}?tab=config")
    await console.should_see(marker="cfg-secret-set", retries=50)
    console.find(marker="cfg-secret-name").type("API_TOKEN")
    console.find(marker="cfg-secret-value").type("s3cr3t-value")
    console.find(marker="cfg-secret-set").click()
    await console.should_see(marker="cfg-secret", retries=50)
    await console.should_see("API_TOKEN")
    await console.should_not_see("s3cr3t-value")
    assert await platform.functions.secret_names(SYSTEM, "hello") == ["API_TOKEN"]
    spec = await platform.functions.spec(await platform.functions.get(SYSTEM, "hello"))
    assert spec.env["API_TOKEN"] == "s3cr3t-value"

    console.find(marker="cfg-secret-remove-API_TOKEN").click()
    await console.should_see(marker="confirm-ok")
    console.find(marker="confirm-ok").click()
    await console.should_see("No secrets", retries=50)
    assert await platform.functions.secret_names(SYSTEM, "hello") == []


# --- the Test tab -------------------------------------------------------------------------------------------


async def test_invoke_shows_the_output_and_a_cold_then_warm_badge(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}?tab=test")
    await console.should_see(marker="test-invoke", retries=50)
    assert json.loads(element(console, "test-payload").value) == {"name": "Nimbus"}  # the saved sample
    console.find(marker="test-invoke").click()
    await console.should_see(marker="test-output", retries=200)
    await console.should_see("Hello, Nimbus!")
    await console.should_see("success · 200")
    await console.should_see("cold start")
    await console.should_see(marker="test-init")
    await console.should_see("saying hello to Nimbus")
    console.find(marker="test-invoke").click()
    await console.should_see("warm", retries=100)


async def test_a_failing_function_shows_its_error_and_stack(console: User, platform: Platform) -> None:
    fn = await make(platform, "orders", template="python-error-example")
    await log_in(console, then=f"/functions/{fn.id}?tab=test")
    await console.should_see(marker="test-invoke", retries=50)
    console.find(marker="test-invoke").click()
    await console.should_see("OrderRejected: order 42 has no items", retries=200)
    await console.should_see("failed · 500")
    assert "in check" in element(console, "test-stack").text


async def test_invalid_json_is_refused_and_nothing_is_invoked(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}?tab=test")
    await console.should_see(marker="test-invoke", retries=50)
    set_value(console, "test-payload", '{"name": ')
    await console.should_see("Invalid JSON: Expecting value (line 1, column 10)")
    console.find(marker="test-invoke").click()
    await console.should_not_see(marker="test-status")
    await asyncio.sleep(0.2)  # give a (wrong) invocation the time to reach the database
    assert (await platform.invocations.list(SYSTEM, function=fn.id)).items == []


async def test_saved_test_events_round_trip(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}?tab=test")
    await console.should_see(marker="test-event-save", retries=50)
    set_value(console, "test-payload", '{"name": "Ada"}')
    set_value(console, "test-event-name", "ada")
    console.find(marker="test-event-save").click()
    await eventually(lambda: _events(platform, fn.id, {"ada": {"name": "Ada"}, "sample": {"name": "Nimbus"}}))

    await console.open(f"/functions/{fn.id}?tab=test")  # a fresh page loads them from the service
    await console.should_see(marker="test-event-select", retries=50)
    set_value(console, "test-event-select", "ada")
    assert json.loads(element(console, "test-payload").value) == {"name": "Ada"}
    console.find(marker="test-event-delete").click()
    await console.should_see(marker="confirm-ok")
    console.find(marker="confirm-ok").click()
    await eventually(lambda: _events(platform, fn.id, {"sample": {"name": "Nimbus"}}))


async def _events(platform: Platform, fn_id: str, expected: dict[str, Any]) -> bool:
    return {e.name: e.payload for e in await platform.test_events.list(SYSTEM, fn_id)} == expected


async def test_a_test_event_needs_a_name(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}?tab=test")
    await console.should_see(marker="test-event-save", retries=50)
    set_value(console, "test-event-name", "  ")
    console.find(marker="test-event-save").click()
    await eventually(lambda: "needs a name" in (element(console, "test-event-name").error or ""))
    assert [e.name for e in await platform.test_events.list(SYSTEM, fn.id)] == ["sample"]


async def test_the_payload_of_an_earlier_invocation_is_prefilled(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    with platform.bus.subscribe(InvocationFinished) as finished:
        outcome = await platform.invoker.invoke(SYSTEM, fn.id, {"name": "Zed"})
        await finished.wait_for(lambda e: e.invocation_id == outcome.request_id, timeout=10)  # type: ignore[attr-defined]
    await log_in(console, then=f"/functions/{fn.id}?tab=test&from={outcome.request_id}")
    await console.should_see(marker="test-from", retries=50)
    assert json.loads(element(console, "test-payload").value) == {"name": "Zed"}


async def test_the_invocations_tab_lists_recent_invocations(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    with platform.bus.subscribe(InvocationFinished) as finished:
        outcome = await platform.invoker.invoke(SYSTEM, fn.id, {"name": "Zed"})
        await finished.wait_for(lambda e: e.invocation_id == outcome.request_id, timeout=10)  # type: ignore[attr-defined]
    await log_in(console, then=f"/functions/{fn.id}?tab=invocations")
    await console.should_see(marker="invocation-row", retries=50)
    await console.should_see(outcome.request_id[-12:])
    await console.should_see("cold")
    second = await platform.invoker.invoke(SYSTEM, fn.id, {"name": "Ann"})  # arrives live
    await console.should_see(second.request_id[-12:], retries=50)


async def test_the_metrics_tab_counts_this_functions_invocations(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}?tab=metrics")
    await console.should_see(marker="fn-metrics", retries=50)
    for _ in range(3):
        await platform.invoker.invoke(SYSTEM, fn.id, {"name": "Zed"})
    await eventually(lambda: element(console, "metric-invocations-value").text == "3", retries=100)


# --- the header ---------------------------------------------------------------------------------------------


async def test_the_header_disables_publishes_and_deletes(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await log_in(console, then=f"/functions/{fn.id}")
    await console.should_see(marker="fn-enabled", retries=50)
    console.find(marker="fn-enabled").click()
    await eventually(lambda: _status(platform, "hello", "offline"))
    await eventually(lambda: element(console, "fn-status").text == "offline")
    console.find(marker="fn-publish").click()
    await console.should_see("published v1", retries=50)
    console.find(marker="fn-delete").click()
    await console.should_see(marker="confirm-ok")
    console.find(marker="confirm-ok").click()
    await console.should_see(marker="fn-empty", retries=100)
    assert await names(platform) == []


async def test_an_unknown_function_says_so(console: User) -> None:
    await log_in(console, then="/functions/nope")
    await console.should_see("function not found: nope")


async def test_a_viewer_sees_everything_but_changes_nothing(console: User, platform: Platform) -> None:
    fn = await make(platform, "hello")
    await platform.auth.create_user(SYSTEM, "vera", "viewer password 123", role="viewer")
    await log_in(console, "vera", "viewer password 123", then=f"/functions/{fn.id}")
    await console.should_see(marker="code-editor", retries=50)
    for marker in ("code-editor", "fn-enabled", "fn-delete", "cfg-save", "test-invoke", "test-event-save"):
        assert not element(console, marker).enabled, marker
    await console.open("/functions")
    await console.should_see(marker="fn-toggle-hello", retries=50)
    assert not element(console, "fn-toggle-hello").enabled
    assert not element(console, "fn-delete-hello").enabled
