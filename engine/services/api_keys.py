"""API keys: create (shown once), list, revoke, and authenticate a raw key on every API request.

Only a key's SHA-256 is stored. Authentication is the hot path, so successful lookups are cached in
memory for `CACHE_TTL_SEC` (revocation on this node evicts at once; other nodes notice within the TTL)
and `last_used_at` is written at most once per `TOUCH_INTERVAL_SEC` per key."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from data.db import Database
from data.models import ApiKey, User
from data.repos.pagination import Page, paginate
from data.types import utcnow
from engine.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from engine.principal import Principal, Role
from engine.services.audit import AuditService

log = logging.getLogger("nimbus.auth")

KEY_PREFIX = "nmb_"
KEY_LENGTH = len(KEY_PREFIX) + 40  # token_urlsafe(30) is exactly 40 characters
DISPLAY_PREFIX_LENGTH = 12
CACHE_TTL_SEC = 30.0
TOUCH_INTERVAL_SEC = 60.0
MAX_EXPIRY_DAYS = 3650
ROLES: tuple[Role, ...] = ("viewer", "developer", "admin")  # lowest first


def rank(role: str) -> int:
    return ROLES.index(role)  # type: ignore[arg-type]


def lower_role(a: Role, b: Role) -> Role:
    return a if rank(a) <= rank(b) else b


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_key(name: str, user_id: str, role: Role, expires_at: datetime | None) -> tuple[ApiKey, str]:
    """A fresh key row and its raw value (the only time the raw value exists)."""
    raw = KEY_PREFIX + secrets.token_urlsafe(30)
    row = ApiKey(
        name=name,
        prefix=raw[:DISPLAY_PREFIX_LENGTH],
        key_hash=hash_key(raw),
        user_id=user_id,
        role=role,
        expires_at=expires_at,
    )
    return row, raw


def key_snapshot(key: ApiKey) -> dict[str, Any]:
    """What the audit trail keeps of a key: never the raw value or its hash."""
    return {
        "name": key.name,
        "prefix": key.prefix,
        "role": key.role,
        "user_id": key.user_id,
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(slots=True)
class _Cached:
    principal: Principal  # without ip: that is per request
    key_id: str
    user_id: str
    expires_at: datetime | None
    cached_at: float


class ApiKeyService:
    def __init__(
        self, db: Database, audit: AuditService, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._audit = audit
        self.clock = clock  # monotonic seconds; tests replace it to step past the TTLs
        # Days until a key created without an expiry expires (0: never); the platform points it at the
        # api_key_expiry_days setting.
        self.default_expiry_days: Callable[[], int] = lambda: 0
        self._cache: dict[str, _Cached] = {}  # key hash -> successful lookup
        self._touched: dict[str, float] = {}  # key id -> when last_used_at was last written
        # Bumped by every eviction: a lookup that started before an eviction must not re-cache what the
        # eviction just removed (the DB read may predate the revocation's commit).
        self._generation = 0

    # --- management -------------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        name: str,
        *,
        expires_at: datetime | None = None,
        expires_in_days: int | None = None,
        role: Role | None = None,
        user_id: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key for `user_id` (default: the caller). Returns the row and the raw key, shown once."""
        if not principal.can("developer"):
            raise Forbidden("creating API keys needs the developer or admin role")
        owner_id = user_id or principal.user_id
        if not owner_id:
            raise Invalid("user_id", "user_id is required: this principal is not a user")
        if owner_id != principal.user_id and not principal.can("admin"):
            raise Forbidden("only an admin can create API keys for another user")
        name = name.strip()
        if not 1 <= len(name) <= 64:
            raise Invalid("name", "name must be 1 to 64 characters")
        if role is not None and role not in ROLES:
            raise Invalid("role", f"role must be one of {', '.join(ROLES)}")
        if role is not None and rank(role) > rank(principal.role):
            raise Forbidden(f"an API key's role cannot exceed its creator's role ({principal.role})")
        if expires_at is None and expires_in_days is None:
            expires_in_days = self.default_expiry_days() or None
        expiry = _expiry(expires_at, expires_in_days)
        async with self._db.transaction() as session:
            owner = await session.get(User, owner_id)
            if owner is None:
                raise NotFound("user not found", field="user_id")
            if owner.disabled:
                raise Invalid("user_id", f"user {owner.username!r} is disabled")
            owner_role: Role = owner.role  # type: ignore[assignment]
            if role is not None and rank(role) > rank(owner_role):
                raise Invalid("role", f"role exceeds the role of user {owner.username!r} ({owner.role})")
            key_role = role or lower_role(principal.role, owner_role)
            clash = await session.execute(
                select(ApiKey.id)
                .where(
                    col(ApiKey.user_id) == owner_id,
                    col(ApiKey.name) == name,
                    col(ApiKey.revoked_at).is_(None),
                )
                .limit(1)
            )
            if clash.first() is not None:
                raise Conflict(f"an active API key named {name!r} already exists", field="name")
            key, raw = new_key(name, owner_id, key_role, expiry)
            session.add(key)
            await session.flush()
            self._audit.record(
                session,
                principal,
                "apikey.create",
                resource_type="api_key",
                resource_id=key.id,
                resource_name=name,
                after=key_snapshot(key),
            )
        return key, raw

    async def list(
        self,
        principal: Principal,
        *,
        include_revoked: bool = True,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[ApiKey]:
        """Newest first; an admin sees every key, anyone else their own."""
        stmt = select(ApiKey)
        if not principal.can("admin"):
            stmt = stmt.where(col(ApiKey.user_id) == principal.user_id)
        if not include_revoked:
            stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
        async with self._db.session() as session:
            return await paginate(session, stmt, ApiKey.id, cursor=cursor, limit=limit)

    async def revoke(self, principal: Principal, key_id: str) -> ApiKey:
        """Revoke a key (an admin: any key; anyone else: their own). Revoking twice changes nothing."""
        async with self._db.transaction() as session:
            key = await session.get(ApiKey, key_id)
            if key is None or (key.user_id != principal.user_id and not principal.can("admin")):
                raise NotFound("API key not found")  # someone else's key: do not reveal it exists
            if key.revoked_at is not None:
                return key
            before = key_snapshot(key)
            key.revoked_at = utcnow()
            self._audit.record(
                session,
                principal,
                "apikey.revoke",
                resource_type="api_key",
                resource_id=key.id,
                resource_name=key.name,
                before=before,
                after=key_snapshot(key),
            )
        self.evict(lambda entry: entry.key_id == key.id)
        return key

    # --- the hot path -----------------------------------------------------------------------------

    async def authenticate(self, raw: str, ip: str = "") -> Principal:
        """The principal a raw key stands for, or Unauthorized (invalid, revoked, expired, user disabled)."""
        if len(raw) != KEY_LENGTH or not raw.startswith(KEY_PREFIX):
            raise Unauthorized("invalid API key")
        digest = hash_key(raw)
        now = self.clock()
        entry = self._cache.get(digest)
        if entry is None or now - entry.cached_at >= CACHE_TTL_SEC:
            generation = self._generation
            entry = await self._lookup(digest, now)
            if generation == self._generation:
                self._remember(digest, entry, now)
        if entry.expires_at is not None and entry.expires_at <= utcnow():
            raise Unauthorized("API key expired")
        await self._touch(entry.key_id, now)
        return replace(entry.principal, ip=ip)

    def evict(self, predicate: Callable[[_Cached], bool] | None = None) -> None:
        """Forget cached lookups (all, or those matching `predicate`) so the next request re-reads the DB."""
        self._generation += 1
        for digest in [d for d, e in self._cache.items() if predicate is None or predicate(e)]:
            del self._cache[digest]

    def evict_user(self, user_id: str) -> None:
        """A user changed (role, disabled, deleted): their keys' cached principals are stale."""
        self.evict(lambda entry: entry.user_id == user_id)

    async def _lookup(self, digest: str, now: float) -> _Cached:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(ApiKey, User)
                    .join(User, col(User.id) == col(ApiKey.user_id))
                    .where(col(ApiKey.key_hash) == digest)
                )
            ).first()
        if row is None:
            raise Unauthorized("invalid API key")
        key, user = row
        if key.revoked_at is not None:
            raise Unauthorized("invalid API key")  # same words as unknown: revoked keys reveal nothing
        if user.disabled:
            raise Unauthorized("the API key's user is disabled")
        # A demoted user's old keys must not keep the old powers: the key acts with the lower role.
        role = lower_role(key.role, user.role)  # type: ignore[arg-type]
        principal = Principal(
            actor=f"key:{key.name}", actor_type="api_key", role=role, user_id=user.id, tenant=user.tenant
        )
        return _Cached(
            principal=principal, key_id=key.id, user_id=user.id, expires_at=key.expires_at, cached_at=now
        )

    def _remember(self, digest: str, entry: _Cached, now: float) -> None:
        if len(self._cache) >= 10_000:  # only valid keys get here, but bound memory anyway
            for stale in [d for d, e in self._cache.items() if now - e.cached_at >= CACHE_TTL_SEC]:
                del self._cache[stale]
        self._cache[digest] = entry

    async def _touch(self, key_id: str, now: float) -> None:
        """Record use at most once a minute per key: a write per request would cost more than the auth."""
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_INTERVAL_SEC:
            return
        self._touched[key_id] = now  # claim the write before awaiting: concurrent requests skip it
        if len(self._touched) > 10_000:
            self._touched = {k: t for k, t in self._touched.items() if now - t < TOUCH_INTERVAL_SEC}
        try:
            async with self._db.transaction() as session:
                await session.execute(
                    update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=utcnow())
                )
        except SQLAlchemyError:  # a busy database must not fail the request that used the key
            log.warning("could not record use of API key %s", key_id, exc_info=True)


def _expiry(expires_at: datetime | None, expires_in_days: int | None) -> datetime | None:
    if expires_at is not None and expires_in_days is not None:
        raise Invalid("expires_at", "give expires_at or expires_in_days, not both")
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise Invalid("expires_in_days", f"expires_in_days must be 1 to {MAX_EXPIRY_DAYS}")
        return utcnow() + timedelta(days=expires_in_days)
    if expires_at is not None and expires_at.tzinfo is None:
        return expires_at.replace(tzinfo=UTC)  # naive times are taken as UTC, as everywhere in Nimbus
    return expires_at
