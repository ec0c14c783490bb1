"""Saved test events: upsert by name per function, validated, audited, readable by viewers only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.errors import Forbidden, Invalid, NotFound, TooLarge
from engine.platform import Platform
from engine.principal import SYSTEM, Principal
from engine.services.function_schemas import FunctionCreate
from engine.services.test_events import MAX_PAYLOAD_BYTES
from tests.api.conftest import HELLO, make_settings

DEV = Principal(actor="dev", actor_type="user", role="developer")
VIEWER = Principal(actor="vera", actor_type="user", role="viewer")


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        await running.functions.create(SYSTEM, FunctionCreate(name="hello", runtime="python", code=HELLO))
        yield running


async def test_saving_under_an_existing_name_replaces_it(platform: Platform) -> None:
    await platform.test_events.save(DEV, "hello", "ada", {"name": "Ada"})
    await platform.test_events.save(DEV, "hello", "bob", {"name": "Bob"})
    await platform.test_events.save(DEV, "hello", " ada ", {"name": "Ada L."})
    events = await platform.test_events.list(VIEWER, "hello")
    assert [(e.name, e.payload) for e in events] == [("ada", {"name": "Ada L."}), ("bob", {"name": "Bob"})]


async def test_events_belong_to_their_function(platform: Platform) -> None:
    other = await platform.functions.create(
        SYSTEM, FunctionCreate(name="other", runtime="python", code=HELLO)
    )
    await platform.test_events.save(DEV, "hello", "one", [1])
    assert await platform.test_events.list(DEV, other.id) == []
    with pytest.raises(NotFound, match="function not found: ghost"):
        await platform.test_events.list(DEV, "ghost")


async def test_delete_removes_one_event_and_is_audited(platform: Platform) -> None:
    await platform.test_events.save(DEV, "hello", "one", 1)
    await platform.test_events.save(DEV, "hello", "two", 2)
    await platform.test_events.delete(DEV, "hello", "one")
    assert [e.name for e in await platform.test_events.list(DEV, "hello")] == ["two"]
    with pytest.raises(NotFound):
        await platform.test_events.delete(DEV, "hello", "one")
    page = await platform.audit.list(SYSTEM, resource_type="test_event")
    assert [(a.action, a.resource_name, a.actor) for a in page.items] == [
        ("test_event.delete", "hello/one", "dev"),
        ("test_event.save", "hello/two", "dev"),
        ("test_event.save", "hello/one", "dev"),
    ]


@pytest.mark.parametrize(
    ("name", "payload", "error", "field"),
    [
        ("", {}, Invalid, "name"),
        ("   ", {}, Invalid, "name"),
        ("x" * 65, {}, Invalid, "name"),
        ("nan", float("nan"), Invalid, "payload"),
        ("set", {1, 2}, Invalid, "payload"),
        ("big", "x" * MAX_PAYLOAD_BYTES, TooLarge, "payload"),
    ],
)
async def test_bad_name_or_payload_is_refused_and_saves_nothing(
    platform: Platform, name: str, payload: object, error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as caught:
        await platform.test_events.save(DEV, "hello", name, payload)
    assert getattr(caught.value, "field", None) == field
    assert await platform.test_events.list(DEV, "hello") == []


async def test_viewers_read_but_do_not_write(platform: Platform) -> None:
    await platform.test_events.save(DEV, "hello", "one", 1)
    assert len(await platform.test_events.list(VIEWER, "hello")) == 1
    with pytest.raises(Forbidden):
        await platform.test_events.save(VIEWER, "hello", "two", 2)
    with pytest.raises(Forbidden):
        await platform.test_events.delete(VIEWER, "hello", "one")


async def test_deleting_the_function_deletes_its_events(platform: Platform) -> None:
    await platform.test_events.save(DEV, "hello", "one", 1)
    fn = await platform.functions.get(SYSTEM, "hello")
    await platform.functions.delete(SYSTEM, "hello")
    await platform.functions.create(SYSTEM, FunctionCreate(name="hello", runtime="python", code=HELLO))
    assert await platform.test_events.list(DEV, "hello") == []
    with pytest.raises(NotFound):
        await platform.test_events.list(DEV, fn.id)
