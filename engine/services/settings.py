"""Runtime settings: values of the registered settings (engine/services/setting_specs.py) stored in
`system_settings`, held in an in-memory cache so hot paths read them without a query (`get(key)` is a
dict lookup). A change is validated, written and audited (`settings.update`, before/after) in one
transaction; after the commit the cache, the watchers of that key and the bus hear of it.

Live settings take effect at once (`get` returns the new value; `watch` callbacks push it into the
pool and the like). Restart settings are stored at once but `get` keeps returning the value this node
started with: at start the stored value is copied into the start-up Settings (engine/config.py) before
the services that read them start, and `restart_pending` says when the two differ."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from data.db import Database
from data.models import SettingRow
from data.types import utcnow
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.events import SettingChanged
from engine.principal import Principal
from engine.services.audit import AuditService
from engine.services.setting_specs import GROUPS, SettingSpec, lookup, registered

log = logging.getLogger("nimbus.settings")

Watcher = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class SettingValue:
    """One setting as the API and the console show it."""

    spec: SettingSpec
    value: Any  # the stored value, else the default
    default: Any
    in_effect: Any  # what this node uses now (differs from `value` only for a restart setting)
    is_default: bool  # nothing stored
    updated_by: str = ""
    updated_at: datetime | None = None

    @property
    def restart_pending(self) -> bool:
        return self.spec.apply == "restart" and self.value != self.in_effect


@dataclass(slots=True)
class _Stored:
    value: Any
    updated_by: str
    updated_at: datetime | None


class SettingsService:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        config: Settings,
        *,
        refresh_sec: float = 10.0,
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._config = config
        self._refresh_sec = refresh_sec  # PostgreSQL (several nodes): re-read what others changed
        self._stored: dict[str, _Stored] = {}
        self._current: dict[str, Any] = {}  # key -> value in effect: what `get` returns
        self._started_with: dict[str, Any] = {}  # restart settings: the value this node started with
        self._watchers: dict[str, list[Watcher]] = {}
        self._loaded = False
        self._task: asyncio.Task[None] | None = None

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the stored values, hand restart settings to the start-up Settings, tell the watchers."""
        await self.refresh()
        for spec in registered():
            if spec.apply == "restart":
                value = self._value(spec)
                self._started_with[spec.key] = value
                if spec.config_field and spec.key in self._stored:
                    setattr(self._config, spec.config_field, spec.to_config(value))
        self._current.clear()
        self._loaded = True
        for key, watchers in self._watchers.items():
            for watcher in watchers:
                self._call(watcher, key, self.get(key))
        if not self._db.is_sqlite and self._refresh_sec > 0:
            self._task = asyncio.create_task(self._refresh_loop(), name="nimbus-settings-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> None:
        """Re-read every stored value (a small table); watchers hear of live values that changed."""
        async with self._db.session() as session:
            rows = (await session.execute(select(SettingRow))).scalars().all()
        stored: dict[str, _Stored] = {}
        for row in rows:
            spec = lookup(row.key)
            if spec is None:
                continue  # a setting of a module this node does not load (or no longer has)
            try:
                value = spec.coerce(row.value)
            except Invalid as exc:
                log.warning("ignoring the stored value of setting %s: %s", row.key, exc.message)
                continue
            stored[row.key] = _Stored(value, row.updated_by, row.updated_at)
        before = {key: self.get(key) for key in self._watchers} if self._loaded else {}
        self._stored = stored
        self._current.clear()
        for key, old in before.items():
            if self.get(key) != old:
                self._notify_watchers(key)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_sec)
            try:
                await self.refresh()
            except Exception:
                log.warning("re-reading settings failed; keeping the cached values", exc_info=True)

    # --- reads (no query) -------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """The value in effect on this node: a dict lookup (the hot path)."""
        try:
            return self._current[key]
        except KeyError:
            pass
        spec = lookup(key)
        if spec is None:
            raise KeyError(f"unknown setting {key!r}")
        if spec.apply == "restart" and key in self._started_with:
            value = self._started_with[key]
        else:
            value = self._value(spec)
        self._current[key] = value
        return value

    def describe(self, principal: Principal, key: str) -> SettingValue:
        spec = lookup(key)
        if spec is None:
            raise NotFound(f"setting not found: {key}")
        stored = self._stored.get(key)
        return SettingValue(
            spec=spec,
            value=self._value(spec),
            default=spec.default_from(self._config),
            in_effect=self.get(key),
            is_default=stored is None,
            updated_by=stored.updated_by if stored else "",
            updated_at=stored.updated_at if stored else None,
        )

    def list(self, principal: Principal) -> list[SettingValue]:
        """Every setting, in group order."""
        return [self.describe(principal, spec.key) for spec in registered()]

    def groups(self, principal: Principal) -> list[tuple[str, str, list[SettingValue]]]:
        """(group id, label, settings) for every group that has settings, in order."""
        values = self.list(principal)
        return [
            (group, label, [v for v in values if v.spec.group == group])
            for group, label in GROUPS.items()
            if any(v.spec.group == group for v in values)
        ]

    def watch(self, key: str, callback: Watcher) -> Callable[[], None]:
        """Call `callback(value)` whenever the value in effect of `key` changes (and once at start, or
        now when already started). Returns the function that stops watching."""
        if lookup(key) is None:
            raise KeyError(f"unknown setting {key!r}")
        self._watchers.setdefault(key, []).append(callback)
        if self._loaded:
            self._call(callback, key, self.get(key))

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._watchers.get(key, []).remove(callback)

        return stop

    # --- writes -----------------------------------------------------------------------------------

    async def update(self, principal: Principal, key: str, value: Any) -> SettingValue:
        """Validate and store `value`; unchanged values write (and audit) nothing."""
        spec = self._writable(principal, key)
        new = spec.coerce(value)
        return await self._write(principal, spec, new, reset=False)

    async def reset(self, principal: Principal, key: str) -> SettingValue:
        """Forget the stored value: the setting goes back to its default."""
        spec = self._writable(principal, key)
        return await self._write(principal, spec, None, reset=True)

    async def _write(self, principal: Principal, spec: SettingSpec, new: Any, *, reset: bool) -> SettingValue:
        default = spec.default_from(self._config)
        try:
            async with self._db.transaction() as session:
                row = await session.get(SettingRow, spec.key)
                old = self._stored_value(spec, row)
                if reset:
                    if row is None:
                        return self.describe(principal, spec.key)
                    new = default
                    await session.delete(row)
                    stored: _Stored | None = None
                else:
                    if row is not None and old == new:
                        return self.describe(principal, spec.key)
                    row = row or SettingRow(key=spec.key)
                    row.value, row.updated_by, row.updated_at = new, principal.actor, utcnow()
                    session.add(row)
                    stored = _Stored(new, principal.actor, row.updated_at)
                self._audit.record(
                    session,
                    principal,
                    "settings.update",
                    resource_type="setting",
                    resource_id=spec.key,
                    resource_name=spec.label,
                    before={"value": old},
                    after={"value": new},
                    details={"apply": spec.apply, **({"reset": True} if reset else {})},
                )
                key = spec.key
                callbacks = session.info.setdefault("after_commit", [])
                callbacks.append(lambda: self._committed(key, stored, "reset" if reset else "updated"))
        except IntegrityError:  # another request stored the first value of this key at the same time
            raise Conflict(f"setting {spec.key} was changed at the same time; try again") from None
        return self.describe(principal, spec.key)

    def _committed(self, key: str, stored: _Stored | None, action: str) -> None:
        before = self.get(key)
        if stored is None:
            self._stored.pop(key, None)
        else:
            self._stored[key] = stored
        self._current.pop(key, None)
        if self.get(key) != before:
            self._notify_watchers(key)
        self._bus.publish(SettingChanged(key=key, action=action))

    # --- helpers ----------------------------------------------------------------------------------

    def _writable(self, principal: Principal, key: str) -> SettingSpec:
        spec = lookup(key)
        if spec is None:
            raise NotFound(f"setting not found: {key}")
        if not principal.can("admin"):
            raise Forbidden("changing settings needs the admin role")
        return spec

    def _value(self, spec: SettingSpec) -> Any:
        stored = self._stored.get(spec.key)
        return stored.value if stored is not None else spec.default_from(self._config)

    def _stored_value(self, spec: SettingSpec, row: SettingRow | None) -> Any:
        if row is None:
            return spec.default_from(self._config)
        try:
            return spec.coerce(row.value)
        except Invalid:
            return row.value

    def _notify_watchers(self, key: str) -> None:
        value = self.get(key)
        for watcher in list(self._watchers.get(key, [])):
            self._call(watcher, key, value)

    @staticmethod
    def _call(watcher: Watcher, key: str, value: Any) -> None:
        try:
            watcher(value)
        except Exception:
            log.exception("applying setting %s failed", key)
