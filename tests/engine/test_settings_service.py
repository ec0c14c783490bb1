"""The settings registry and service over a real database (SQLite, and PostgreSQL when configured):
typed validation, defaults from the start-up configuration, reads served from the cache without a
query, changes audited with before/after, watchers told after commit, restart settings applied at the
next start, and other modules registering settings of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from data.db import Database
from data.models import AuditEvent, SettingRow
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import Forbidden, Invalid, NotFound
from engine.events import SettingChanged
from engine.principal import SYSTEM, Principal
from engine.services import setting_specs
from engine.services.audit import AuditService
from engine.services.setting_specs import (
    SettingSpec,
    lookup,
    register,
    register_group,
    registered,
)
from engine.services.settings import SettingsService

VIEWER = Principal(actor="vic", actor_type="user", role="viewer")


def config(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def service(db: Database, tmp_path: Path) -> AsyncIterator[SettingsService]:
    bus = LocalBus()
    svc = SettingsService(db, bus, AuditService(db, bus), config(tmp_path))
    await svc.start()
    yield svc
    await svc.stop()


def spec(key: str) -> SettingSpec:
    found = lookup(key)
    assert found is not None
    return found


# --- validation (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("default_timeout", 45, 45),
        ("default_timeout", "45", 45),  # the original API sent values as text
        ("default_timeout", 45.0, 45),
        ("api_address", " https://nimbus.example.com ", "https://nimbus.example.com"),
        ("api_address", "", ""),
        (
            "cors_allowed_origins",
            "https://a.example, http://b.example:8080",
            ["https://a.example", "http://b.example:8080"],
        ),
        ("cors_allowed_origins", ["*", "*"], ["*"]),
        ("cors_allowed_origins", [], []),
    ],
)
def test_values_are_coerced_to_the_settings_type(key: str, value: Any, expected: Any) -> None:
    assert spec(key).coerce(value) == expected


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("default_timeout", "abc", "must be a whole number"),
        ("default_timeout", True, "not true/false"),
        ("default_timeout", 1.5, "must be a whole number"),
        ("default_timeout", 0, "must be between 1 and 300 s"),
        ("default_memory", 4096, "must be between 128 and 3072 MB"),
        ("api_address", "nimbus.example.com", "http(s) URL"),
        ("api_address", "x" * 300, "at most 256 characters"),
        ("cors_allowed_origins", ["https://a.example/path"], "is not an origin"),
        ("cors_allowed_origins", ["https://a.example", " "], "must not be empty"),
        ("cors_allowed_origins", [f"https://h{i}.example" for i in range(51)], "at most 50 items"),
    ],
)
def test_bad_values_are_refused_naming_the_value_field(key: str, value: Any, words: str) -> None:
    with pytest.raises(Invalid) as caught:
        spec(key).coerce(value)
    assert caught.value.field == "value"
    assert words in caught.value.message


def test_every_setting_has_a_group_description_and_a_valid_default() -> None:
    for s in registered():
        assert s.label and s.description, s.key
        assert s.coerce(s.default) == s.default, s.key


@pytest.fixture
def testing_group() -> Iterator[None]:
    register_group("testing", "Testing")
    yield
    for key in ("testing_threshold", "orphan", "bad_default"):
        setting_specs._REGISTRY.pop(key, None)
    setting_specs.GROUPS.pop("testing", None)


@pytest.mark.usefixtures("testing_group")
def test_another_module_registers_its_own_settings() -> None:
    mine = SettingSpec("testing_threshold", "float", 0.8, "testing", "Threshold", "A test's.", 0, 1)
    register(mine)
    register(mine)  # importing the module again is fine
    assert lookup("testing_threshold") is mine
    assert registered()[-1].key == "testing_threshold"  # its group comes after the platform's
    assert mine.coerce("0.25") == 0.25
    with pytest.raises(ValueError, match="already registered differently"):
        register(SettingSpec("testing_threshold", "int", 1, "testing", "Threshold", "Another."))
    with pytest.raises(ValueError, match="unknown group"):
        register(SettingSpec("orphan", "int", 1, "no_such_group", "Orphan", "No group."))
    with pytest.raises(Invalid):
        register(SettingSpec("bad_default", "int", 0, "testing", "Bad", "Breaks its bounds.", 1, 5))


# --- the service over a database ------------------------------------------------------------------


async def test_defaults_come_from_the_start_up_configuration(db: Database, tmp_path: Path) -> None:
    bus = LocalBus()
    svc = SettingsService(
        db, bus, AuditService(db, bus), config(tmp_path, max_concurrency=7, max_code_bytes=100 * 1024)
    )
    await svc.start()
    assert (svc.get("max_concurrency"), svc.get("max_code_size"), svc.get("default_timeout")) == (7, 100, 30)
    assert svc.describe(SYSTEM, "max_concurrency").default == 7


async def test_reads_come_from_the_cache_without_a_query(service: SettingsService, db: Database) -> None:
    queries: list[str] = []

    def count(*args: Any) -> None:
        queries.append(str(args[2]))

    await service.update(SYSTEM, "default_timeout", 40)
    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(1000):
            assert service.get("default_timeout") == 40
            assert service.get("default_memory") == 256
        assert [v.spec.key for v in service.list(SYSTEM)]
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert queries == []


async def test_a_change_is_stored_audited_and_published(db: Database, tmp_path: Path) -> None:
    bus = LocalBus()
    bus_events: list[Any] = []
    bus.on(SettingChanged, callback=bus_events.append)
    service = SettingsService(db, bus, AuditService(db, bus), config(tmp_path))
    await service.start()
    changed = await service.update(SYSTEM, "default_memory", "1024")
    assert (changed.value, changed.is_default, changed.updated_by) == (1024, False, "system")
    async with db.session() as session:
        row = await session.get(SettingRow, "default_memory")
        audit = (await session.execute(select(AuditEvent))).scalars().all()
    assert row is not None and row.value == 1024
    assert [(a.action, a.resource_id, a.before, a.after) for a in audit] == [
        ("settings.update", "default_memory", {"value": 256}, {"value": 1024})
    ]
    assert [(e.key, e.action) for e in bus_events] == [("default_memory", "updated")]


async def test_refused_changes_store_and_audit_nothing(service: SettingsService, db: Database) -> None:
    with pytest.raises(Invalid):
        await service.update(SYSTEM, "default_memory", 1)
    with pytest.raises(NotFound):
        await service.update(SYSTEM, "nope", 1)
    with pytest.raises(Forbidden):
        await service.update(VIEWER, "default_memory", 512)
    async with db.session() as session:
        assert (await session.execute(select(SettingRow))).scalars().all() == []
        assert (await session.execute(select(AuditEvent))).scalars().all() == []
    assert service.get("default_memory") == 256


async def test_watchers_hear_live_changes_after_commit(service: SettingsService) -> None:
    seen: list[Any] = []
    stop = service.watch("max_concurrency", seen.append)
    assert seen == [32]  # told the current value at once
    await service.update(SYSTEM, "max_concurrency", 4)
    await service.update(SYSTEM, "max_concurrency", 4)  # unchanged: no call
    await service.reset(SYSTEM, "max_concurrency")
    assert seen == [32, 4, 32]
    stop()
    await service.update(SYSTEM, "max_concurrency", 5)
    assert seen == [32, 4, 32]


async def test_a_restart_setting_keeps_its_start_value_until_the_next_start(
    db: Database, tmp_path: Path
) -> None:
    bus = LocalBus()
    first_config = config(tmp_path, queue_workers=3)
    first = SettingsService(db, bus, AuditService(db, bus), first_config)
    await first.start()
    shown = await first.update(SYSTEM, "queue_workers", 9)
    assert (shown.value, shown.in_effect, shown.restart_pending) == (9, 3, True)
    assert first.get("queue_workers") == 3 and first_config.queue_workers == 3
    second_config = config(tmp_path, queue_workers=3)
    second = SettingsService(db, bus, AuditService(db, bus), second_config)
    await second.start()
    assert second.get("queue_workers") == 9 and second_config.queue_workers == 9
    assert not second.describe(SYSTEM, "queue_workers").restart_pending


async def test_refresh_picks_up_another_nodes_change(db: Database, tmp_path: Path) -> None:
    bus = LocalBus()
    node_a = SettingsService(db, bus, AuditService(db, bus), config(tmp_path))
    node_b = SettingsService(db, LocalBus(), AuditService(db, bus), config(tmp_path))
    await node_a.start()
    await node_b.start()
    seen: list[Any] = []
    node_b.watch("default_timeout", seen.append)
    await node_a.update(SYSTEM, "default_timeout", 99)
    assert node_b.get("default_timeout") == 30  # its cache, until it re-reads
    await node_b.refresh()
    assert node_b.get("default_timeout") == 99
    assert seen == [30, 99]


async def test_a_stored_value_that_no_longer_validates_falls_back_to_the_default(
    db: Database, tmp_path: Path
) -> None:
    async with db.transaction() as session:
        session.add(SettingRow(key="default_timeout", value="not a number"))
    bus = LocalBus()
    svc = SettingsService(db, bus, AuditService(db, bus), config(tmp_path))
    await svc.start()
    assert svc.get("default_timeout") == 30
    assert svc.describe(SYSTEM, "default_timeout").is_default
