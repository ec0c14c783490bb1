"""Authentication: the first-start admin, password log-in with lock-out, signed session tokens, and the
front door to API keys (engine/services/api_keys.py) and user management (engine/services/users.py).

Failed log-ins are audit rows, and the lock-out counts those rows, so it holds across nodes and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from data.db import Database
from data.models import ApiKey, AuditEvent, User
from data.repos.pagination import Page
from data.types import utcnow
from engine.config import Settings
from engine.errors import Forbidden, NotFound, QuotaExceeded, Unauthorized
from engine.principal import SYSTEM, Principal, Role
from engine.secrets import derive
from engine.services.api_keys import ApiKeyService, key_snapshot, new_key
from engine.services.audit import AuditService
from engine.services.users import (
    MAX_PASSWORD,
    UserService,
    configure_hashing,
    hash_password,
    needs_rehash,
    user_snapshot,
    verify_password,
)

log = logging.getLogger("nimbus.auth")

ADMIN_USERNAME = "admin"
SESSION_MAX_AGE_SEC = 12 * 3600
MAX_FAILURES = 5  # failed log-ins for one username ...
FAILURE_WINDOW = timedelta(minutes=15)  # ... within this window ...
LOCK_DURATION = timedelta(minutes=5)  # ... lock it for this long (even the right password is refused)


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """First-start secrets, for the server to print once. `password` is None when it came from settings."""

    username: str
    password: str | None
    api_key: str


class AuthService:
    def __init__(self, db: Database, audit: AuditService, settings: Settings, secret_key: bytes) -> None:
        self._db = db
        self._audit = audit
        self._settings = settings
        configure_hashing(
            settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
        )
        self.keys = ApiKeyService(db, audit)
        self.users = UserService(db, audit, on_change=self.keys.evict_user)
        self._sessions = URLSafeTimedSerializer(derive(secret_key, "session-cookie"), salt="nimbus.session")
        self._dummy_hash: str | None = None  # verified against for unknown users, so timing reveals nothing
        self._login_gates: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    # --- first start ------------------------------------------------------------------------------

    async def ensure_admin(self) -> Bootstrap | None:
        """On a database without users: create `admin` and a "bootstrap" admin API key. Else None."""
        async with self._db.session() as session:
            if (await session.execute(select(User.id).limit(1))).first() is not None:
                return None
        generated = None if self._settings.admin_password else secrets.token_urlsafe(18)
        password = self._settings.admin_password or generated or ""
        admin = User(username=ADMIN_USERNAME, password_hash=await hash_password(password), role="admin")
        try:
            async with self._db.transaction() as session:
                session.add(admin)
                await session.flush()
                key, raw = new_key("bootstrap", admin.id, "admin", None)
                session.add(key)
                await session.flush()
                self._audit.record(
                    session,
                    SYSTEM,
                    "user.create",
                    resource_type="user",
                    resource_id=admin.id,
                    resource_name=admin.username,
                    after=user_snapshot(admin),
                )
                self._audit.record(
                    session,
                    SYSTEM,
                    "apikey.create",
                    resource_type="api_key",
                    resource_id=key.id,
                    resource_name=key.name,
                    after=key_snapshot(key),
                )
        except IntegrityError:  # another node bootstrapped the same database first
            return None
        if self._settings.bootstrap_key_file:
            _write_private(Path(self._settings.bootstrap_key_file), raw + "\n")
        return Bootstrap(username=ADMIN_USERNAME, password=generated, api_key=raw)

    # --- passwords and sessions -------------------------------------------------------------------

    async def login(self, username: str, password: str, ip: str = "") -> Principal:
        """The user's principal, or Unauthorized; a locked-out username gets QuotaExceeded (429).
        Every failure is audited (and committed) as `user.login_failed`."""
        async with self._gate(username):
            locked_for = await self._locked_for(username)
            if locked_for is not None:
                await self._failed(username, ip, "locked")
                minutes = max(1, -(-int(locked_for.total_seconds()) // 60))
                raise QuotaExceeded(
                    f"too many failed log-ins for {username!r}: locked, try again in "
                    f"{minutes} minute{'s' if minutes > 1 else ''}"
                )
            async with self._db.session() as session:
                user = (
                    await session.execute(select(User).where(col(User.username) == username))
                ).scalar_one_or_none()
            ok = len(password) <= MAX_PASSWORD and await verify_password(
                user.password_hash if user else await self._dummy(), password
            )
            if user is None or not ok:
                await self._failed(username, ip, "unknown_user" if user is None else "bad_password")
                raise Unauthorized("invalid username or password")
            if user.disabled:
                await self._failed(username, ip, "disabled")
                raise Unauthorized("this account is disabled")
            rehashed = await hash_password(password) if needs_rehash(user.password_hash) else None
            async with self._db.transaction() as session:
                fresh = await session.get(User, user.id)
                if fresh is None:  # deleted between the check and now
                    raise Unauthorized("invalid username or password")
                fresh.last_login_at = utcnow()
                if rehashed:
                    fresh.password_hash = rehashed
                principal = _user_principal(fresh, ip)
                self._audit.record(
                    session,
                    principal,
                    "user.login",
                    resource_type="user",
                    resource_id=fresh.id,
                    resource_name=fresh.username,
                )
            return principal

    def issue_session(self, principal: Principal) -> str:
        """A signed, timestamped token naming the user (the console cookie; also accepted as a Bearer)."""
        if principal.actor_type != "user" or not principal.user_id:
            raise Forbidden("only users can hold a session")
        return self._sessions.dumps({"u": principal.user_id})

    async def session_principal(self, token: str, ip: str = "") -> Principal:
        """The principal behind a session token. The user is re-read, so disabling or deleting a user
        ends their sessions at once."""
        try:
            data = self._sessions.loads(token, max_age=SESSION_MAX_AGE_SEC)
        except SignatureExpired as exc:
            raise Unauthorized("session expired: log in again") from exc
        except BadData as exc:
            raise Unauthorized("invalid session: log in again") from exc
        user_id = data.get("u") if isinstance(data, dict) else None
        async with self._db.session() as session:
            user = await session.get(User, user_id) if isinstance(user_id, str) else None
        if user is None or user.disabled:
            raise Unauthorized("invalid session: log in again")
        return _user_principal(user, ip)

    async def logout(self, principal: Principal) -> None:
        """Audit the log-out. Session tokens are stateless: the client drops its cookie."""
        async with self._db.transaction() as session:
            self._audit.record(
                session,
                principal,
                "user.logout",
                resource_type="user",
                resource_id=principal.user_id,
                resource_name=principal.actor,
            )

    async def me(self, principal: Principal) -> User:
        """The user behind `principal` (for a key: its owner)."""
        async with self._db.session() as session:
            user = await session.get(User, principal.user_id) if principal.user_id else None
        if user is None:
            raise NotFound("this principal has no user")
        return user

    # --- API keys (engine/services/api_keys.py) ---------------------------------------------------

    async def create_api_key(
        self,
        principal: Principal,
        name: str,
        *,
        expires_at: datetime | None = None,
        expires_in_days: int | None = None,
        role: Role | None = None,
        user_id: str | None = None,
    ) -> tuple[ApiKey, str]:
        return await self.keys.create(
            principal,
            name,
            expires_at=expires_at,
            expires_in_days=expires_in_days,
            role=role,
            user_id=user_id,
        )

    async def list_api_keys(
        self,
        principal: Principal,
        *,
        include_revoked: bool = True,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[ApiKey]:
        return await self.keys.list(principal, include_revoked=include_revoked, limit=limit, cursor=cursor)

    async def revoke_api_key(self, principal: Principal, key_id: str) -> ApiKey:
        return await self.keys.revoke(principal, key_id)

    async def authenticate_key(self, raw: str, ip: str = "") -> Principal:
        return await self.keys.authenticate(raw, ip)

    # --- users (engine/services/users.py) ---------------------------------------------------------

    async def create_user(
        self,
        principal: Principal,
        username: str,
        password: str,
        *,
        role: Role = "viewer",
        tenant: str = "default",
    ) -> User:
        return await self.users.create(principal, username, password, role=role, tenant=tenant)

    async def list_users(
        self, principal: Principal, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[User]:
        return await self.users.list(principal, limit=limit, cursor=cursor)

    async def get_user(self, principal: Principal, user_id: str) -> User:
        return await self.users.get(principal, user_id)

    async def update_user(
        self,
        principal: Principal,
        user_id: str,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> User:
        return await self.users.update(principal, user_id, role=role, disabled=disabled, password=password)

    async def delete_user(self, principal: Principal, user_id: str) -> None:
        await self.users.delete(principal, user_id)

    # --- lock-out ---------------------------------------------------------------------------------

    async def _locked_for(self, username: str) -> timedelta | None:
        """How long `username` stays locked, or None. Locked: MAX_FAILURES counted failures within
        FAILURE_WINDOW, the last of them less than LOCK_DURATION ago. Attempts refused while locked
        are audited but not counted, so hammering a locked account does not extend or reset the lock."""
        now = utcnow()
        since = now - FAILURE_WINDOW - LOCK_DURATION
        stmt = (
            select(AuditEvent.created_at)
            .where(
                col(AuditEvent.action) == "user.login_failed",
                col(AuditEvent.id) >= _first_id_at(since),
                col(AuditEvent.resource_type) == "user",
                col(AuditEvent.resource_name) == username,
                col(AuditEvent.created_at) >= since,
                AuditEvent.details["reason"].as_string() != "locked",
            )  # type: ignore[index]
            .order_by(col(AuditEvent.id).desc())
            .limit(50)  # bounded: while locked nothing is counted, so few rows ever qualify
        )
        async with self._db.session() as session:
            times = sorted((await session.execute(stmt)).scalars())
        until = None
        for i in range(MAX_FAILURES - 1, len(times)):
            if times[i] - times[i - MAX_FAILURES + 1] <= FAILURE_WINDOW:
                until = times[i] + LOCK_DURATION
        return until - now if until is not None and until > now else None

    async def _failed(self, username: str, ip: str, reason: str) -> None:
        # The claimed name is the actor: nobody is authenticated, and this is what an admin searches by.
        claimed = Principal(actor=username[:128], actor_type="user", role="viewer", ip=ip)
        async with self._db.transaction() as session:
            self._audit.record(
                session,
                claimed,
                "user.login_failed",
                resource_type="user",
                resource_name=username[:128],
                details={"reason": reason},
            )

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await hash_password(secrets.token_urlsafe(16))
        return self._dummy_hash

    @contextlib.asynccontextmanager
    async def _gate(self, username: str) -> AsyncIterator[None]:
        """One log-in attempt per username at a time on this node: parallel guesses would otherwise all
        pass the lock-out check before any failure is recorded."""
        lock, users = self._login_gates.setdefault(username, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._login_gates.pop(username, None)


def _user_principal(user: User, ip: str) -> Principal:
    return Principal(
        actor=user.username,
        actor_type="user",
        role=user.role,  # type: ignore[arg-type]
        user_id=user.id,
        tenant=user.tenant,
        ip=ip,
    )


def _first_id_at(moment: datetime) -> str:
    """The smallest UUIDv7 of `moment`: ids are time-ordered, so `id >= this` is an index range scan."""
    ms = int(moment.timestamp() * 1000)
    return str(uuid.UUID(int=(ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | 0b10 << 62))


def _write_private(path: Path, text: str) -> None:
    """Write a 0600 file atomically: readers see the old file or the whole new one, never a partial key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above applies only when the file is new
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
