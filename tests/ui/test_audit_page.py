"""The Audit page through NiceGUI's user simulation over a real platform with real mutations: the list,
filters (action, actor, target, time range), cursor pages, the detail drawer with its before/after diff,
live arrival of new events, and admins only."""

from __future__ import annotations

from nicegui.testing.user import User

from components.json_diff import changes
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate, FunctionUpdate
from tests.api.conftest import HELLO
from tests.api.test_audit_api import insert_events
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value


def shown_rows(user: User) -> int:
    try:
        return len(user.find(marker="audit-row").elements)
    except AssertionError:
        return 0


async def open_audit(console: User, then: str = "/audit") -> None:
    await log_in(console, then=then)
    await console.should_see(marker="audit-filters", retries=50)


async def test_the_list_shows_every_mutation(console: User, platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="listed", runtime="python", code=HELLO))
    await open_audit(console)  # logging in is audited too
    await console.should_see("Create function")
    await console.should_see("Log in")
    rows = [r for r in console.find(marker="audit-row").elements]
    assert len(rows) == 4  # user.create and apikey.create at first start, then ours
    await console.should_see(marker="nav-Audit")


async def test_filters_by_action_actor_target_and_time(console: User, platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="alpha", runtime="python", code=HELLO))
    await platform.functions.create(SYSTEM, FunctionCreate(name="beta", runtime="python", code=HELLO))
    await platform.functions.update(SYSTEM, "alpha", FunctionUpdate(memory_mb=512))
    await open_audit(console)
    set_value(console, "filter-action", "function.update")
    await eventually(lambda: shown_rows(console) == 1)
    set_value(console, "filter-action", "")
    set_value(console, "filter-target", "beta")
    console.find(marker="apply-filters").click()
    await eventually(
        lambda: [e.text for e in console.find(marker="audit-target").elements] == ["function beta"]
    )
    set_value(console, "filter-target", "")
    set_value(console, "filter-actor", "admin")
    console.find(marker="apply-filters").click()
    await eventually(lambda: [e.text for e in console.find(marker="audit-actor").elements] == ["admin"])
    set_value(console, "filter-actor", "")
    set_value(console, "filter-range", "custom")
    set_value(console, "filter-from", "2001-01-01")
    set_value(console, "filter-to", "2001-01-02")
    console.find(marker="apply-filters").click()
    await console.should_see("No events match these filters.", retries=50)


async def test_pages_follow_the_cursor(console: User, platform: Platform) -> None:
    await insert_events(platform, 30, actor="pager")
    await open_audit(console, "/audit?actor=pager")
    await eventually(lambda: shown_rows(console) == 25)
    assert not element(console, "audit-newer").enabled
    console.find(marker="audit-older").click()
    await eventually(lambda: shown_rows(console) == 5)
    await console.should_see("Page 2")
    assert not element(console, "audit-older").enabled
    console.find(marker="audit-newer").click()
    await eventually(lambda: shown_rows(console) == 25)


async def test_the_detail_shows_a_before_after_diff(console: User, platform: Platform) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name="diffed", runtime="python", code=HELLO))
    await platform.functions.update(SYSTEM, "diffed", FunctionUpdate(memory_mb=1024, tags=["new"]))
    [event] = (await platform.audit.list(SYSTEM, action="function.update")).items
    await open_audit(console, f"/audit?id={event.id}")
    await console.should_see(marker="audit-diff", retries=50)
    paths = [e.text for e in console.find(marker="audit-diff-path").elements]
    assert {"memory_mb", "tags[0]", "version"} <= set(paths)
    await console.should_see("1024")
    assert element(console, "audit-drawer-id").text == event.id


def test_the_diff_lists_added_removed_and_changed_paths() -> None:
    found = changes({"a": 1, "b": [1, 2], "c": {"x": 1}}, {"a": 2, "b": [1], "c": {"x": 1, "y": 3}})
    assert [(c.path, c.kind, c.before, c.after) for c in found] == [
        ("a", "changed", 1, 2),
        ("b[1]", "removed", 2, None),
        ("c.y", "added", None, 3),
    ]
    assert [c.kind for c in changes(None, {"name": "new"})] == ["added"]
    assert [c.kind for c in changes({"name": "old"}, None)] == ["removed"]
    assert changes({"same": 1}, {"same": 1}) == []
    assert [c.kind for c in changes({"n": 1}, {"n": True})] == ["changed"]


async def test_new_events_arrive_live(console: User, platform: Platform) -> None:
    await open_audit(console)
    before = shown_rows(console)
    await platform.functions.create(SYSTEM, FunctionCreate(name="arrives", runtime="python", code=HELLO))
    await eventually(lambda: shown_rows(console) == before + 1)
    await console.should_see("function arrives")


async def test_the_audit_log_is_for_admins(console: User, platform: Platform) -> None:
    await platform.auth.create_user(SYSTEM, "dev", "developer password 1", role="developer")
    await log_in(console, "dev", "developer password 1", then="/audit")
    await console.should_see(marker="audit-forbidden", retries=50)
    await console.should_not_see(marker="audit-row")
