"""The quota and retention settings seen through the platform's settings service
(engine/services/settings.py: an in-memory cache, so `get` is a dict lookup). Their specs (type, default,
bounds) are registered in engine/services/setting_specs.py, so the Settings page lists them too.

What this adds: changing several of them in the caller's transaction (so the quota or retention audit
record commits with them), then refreshing the settings service's cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from data.models import SettingRow
from data.types import utcnow
from engine.errors import Invalid
from engine.services.setting_specs import SettingSpec, lookup
from engine.services.settings import SettingsService


class SettingValues:
    def __init__(self, settings: SettingsService, keys: Iterable[str]) -> None:
        self._settings = settings
        self._keys: list[str] = []
        self.track(*keys)

    def track(self, *keys: str) -> None:
        """Also handle these (registered) settings."""
        for key in keys:
            if lookup(key) is None:
                raise KeyError(f"setting {key!r} is not registered")
            if key not in self._keys:
                self._keys.append(key)

    def spec(self, key: str) -> SettingSpec:
        spec = lookup(key)
        if spec is None or key not in self._keys:
            raise KeyError(key)
        return spec

    def get(self, key: str) -> Any:
        """The value in effect (the default until one is stored): a dict lookup."""
        return self._settings.get(key)

    def values(self) -> dict[str, Any]:
        return {key: self.get(key) for key in self._keys}

    def watch(self, key: str, callback: Callable[[Any], Any]) -> Callable[[], None]:
        """Call `callback(value)` now-ish (when the settings load) and on every change of `key`."""
        return self._settings.watch(key, callback)

    def validate(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Each value coerced by its spec; Invalid(field=key) for an unknown key or a bad value."""
        valid: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in self._keys:
                raise Invalid(key, f"unknown setting {key!r}; known: {', '.join(self._keys)}")
            try:
                valid[key] = self.spec(key).coerce(value)
            except Invalid as exc:
                raise Invalid(key, exc.message) from None
        return valid

    async def write(self, session: AsyncSession, changes: dict[str, Any], actor: str) -> None:
        """Store validated `changes` in the caller's transaction (then call `applied()` after it)."""
        now = utcnow()
        for key, value in changes.items():
            row = await session.get(SettingRow, key)
            if row is None:
                session.add(SettingRow(key=key, value=value, updated_by=actor, updated_at=now))
            else:
                row.value, row.updated_by, row.updated_at = value, actor, now
                session.add(row)

    async def applied(self) -> None:
        """After `write`'s transaction committed: the settings cache (and its watchers) catch up."""
        await self._settings.refresh()
