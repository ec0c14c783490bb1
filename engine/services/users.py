"""Users: passwords (argon2id), and the admin's create/list/update/delete, each audited with before/after
(never a password hash). The platform always keeps at least one enabled admin."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from data.db import Database
from data.models import User
from data.repos.pagination import Page, paginate
from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.principal import Principal, Role
from engine.services.api_keys import ROLES
from engine.services.audit import AuditService

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes any length, but an unbounded input is a cheap way to burn CPU

_hasher = PasswordHasher()  # argon2id at the library's recommended cost, until configure_hashing


def configure_hashing(time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Hash new passwords at this argon2id cost (Settings.password_*). One per process: a node has one
    configuration."""
    global _hasher
    if (_hasher.time_cost, _hasher.memory_cost, _hasher.parallelism) != (time_cost, memory_kib, parallelism):
        _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


async def hash_password(password: str) -> str:
    # Costly by design (about 0.25 s of CPU at the default cost): off the event loop, so a login does
    # not stall every other request.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def user_snapshot(user: User) -> dict[str, Any]:
    """What the audit trail keeps of a user."""
    return {"username": user.username, "role": user.role, "tenant": user.tenant, "disabled": user.disabled}


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid("password", f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise Invalid("role", f"role must be one of {', '.join(ROLES)}")


class UserService:
    def __init__(
        self, db: Database, audit: AuditService, *, on_change: Callable[[str], None] | None = None
    ) -> None:
        self._db = db
        self._audit = audit
        self._on_change = on_change  # user id -> drop cached principals (the API-key cache)

    async def get(self, principal: Principal, user_id: str) -> User:
        """A user: an admin may read anyone, others only themselves."""
        if user_id != principal.user_id:
            _require_admin(principal)
        async with self._db.session() as session:
            user = await session.get(User, user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    async def list(
        self, principal: Principal, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[User]:
        _require_admin(principal)
        async with self._db.session() as session:
            return await paginate(session, select(User), User.id, cursor=cursor, limit=limit)

    async def create(
        self,
        principal: Principal,
        username: str,
        password: str,
        *,
        role: Role = "viewer",
        tenant: str = "default",
    ) -> User:
        _require_admin(principal)
        if not USERNAME.match(username):
            raise Invalid(
                "username",
                "username must be 1 to 64 letters, digits or . _ @ - and start with a letter or digit",
            )
        _check_role(role)
        check_password(password)
        user = User(username=username, password_hash=await hash_password(password), role=role, tenant=tenant)
        try:
            async with self._db.transaction() as session:
                if await _username_taken(session, username):
                    raise Conflict(f"user {username!r} already exists", field="username")
                session.add(user)
                await session.flush()
                self._audit.record(
                    session,
                    principal,
                    "user.create",
                    resource_type="user",
                    resource_id=user.id,
                    resource_name=username,
                    after=user_snapshot(user),
                )
        except IntegrityError as exc:  # created concurrently by another request
            raise Conflict(f"user {username!r} already exists", field="username") from exc
        return user

    async def update(
        self,
        principal: Principal,
        user_id: str,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> User:
        _require_admin(principal)
        if role is not None:
            _check_role(role)
        if password is not None:
            check_password(password)
        new_hash = await hash_password(password) if password is not None else None
        async with self._db.transaction() as session:
            user = await _load(session, user_id)
            before = user_snapshot(user)
            if disabled and user.id == principal.user_id:
                raise Conflict("you cannot disable your own account")
            loses_admin = (
                user.role == "admin"
                and not user.disabled
                and ((role is not None and role != "admin") or bool(disabled))
            )
            if loses_admin and await _other_admins(session, user.id) == 0:
                raise Conflict("the last enabled admin cannot be demoted or disabled")
            if role is not None:
                user.role = role
            if disabled is not None:
                user.disabled = disabled
            if new_hash is not None:
                user.password_hash = new_hash
            self._audit.record(
                session,
                principal,
                "user.update",
                resource_type="user",
                resource_id=user.id,
                resource_name=user.username,
                before=before,
                after=user_snapshot(user),
                details={"password_changed": True} if new_hash else None,
            )
        self._changed(user.id)
        return user

    async def delete(self, principal: Principal, user_id: str) -> None:
        """Delete a user and (by cascade) their API keys. Not yourself, not the last enabled admin."""
        _require_admin(principal)
        async with self._db.transaction() as session:
            user = await _load(session, user_id)
            if user.id == principal.user_id:
                raise Conflict("you cannot delete your own account")
            if user.role == "admin" and not user.disabled and await _other_admins(session, user.id) == 0:
                raise Conflict("the last enabled admin cannot be deleted")
            self._audit.record(
                session,
                principal,
                "user.delete",
                resource_type="user",
                resource_id=user.id,
                resource_name=user.username,
                before=user_snapshot(user),
            )
            await session.delete(user)
        self._changed(user_id)

    def _changed(self, user_id: str) -> None:
        if self._on_change is not None:
            self._on_change(user_id)


def _require_admin(principal: Principal) -> None:
    if not principal.can("admin"):
        raise Forbidden("managing users needs the admin role")


async def _load(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


async def _username_taken(session: AsyncSession, username: str) -> bool:
    return (await session.execute(select(User.id).where(col(User.username) == username))).first() is not None


async def _other_admins(session: AsyncSession, user_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(User)
        .where(col(User.role) == "admin", col(User.disabled).is_(False), col(User.id) != user_id)
    )
    return int((await session.execute(stmt)).scalar_one())
