"""Environments (dev, staging, prod and any added): their order, which one is the default, and their own
variables and secrets (encrypted at rest; only names ever leave the engine). What is deployed to each
lives in engine/services/deployments.py, which shares the lookups below."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy import func as sqlfunc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import Environment, Function, FunctionEnvironment
from data.types import utcnow
from engine.bus import LocalBus
from engine.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from engine.events import EnvironmentChanged, Event, FunctionChanged
from engine.principal import Principal, Role
from engine.secrets import SecretBox
from engine.services.audit import AuditService
from engine.services.environment_schemas import (
    EnvironmentCreate,
    EnvironmentUpdate,
    SecretsChange,
    VariablesUpdate,
    validated,
)

MAX_ENVIRONMENTS = 50
SEEDED = (  # what migration 0004 seeds; put back by `ensure_defaults` when the table is empty
    ("dev", "Development: runs the working copy unless a version is deployed"),
    ("staging", "Pre-production"),
    ("prod", "Production"),
)
_CHANGE = {"environment.create": "created", "environment.update": "updated", "environment.delete": "deleted"}


# --- lookups shared with the deployments service ------------------------------------------------------


def ordered(environments: list[Environment]) -> list[Environment]:
    """Promotion order: by position, ties broken by name."""
    return sorted(environments, key=lambda e: (e.position, e.name))


async def all_environments(session: AsyncSession) -> list[Environment]:
    rows = await session.execute(select(Environment).order_by(Environment.position, Environment.name))
    return list(rows.scalars())


async def load_environment(session: AsyncSession, ref: str) -> Environment:
    """An environment by id or name, or NotFound."""
    row = await session.execute(
        select(Environment).where(or_(Environment.id == ref, Environment.name == ref))
    )
    env = row.scalars().first()
    if env is None:
        raise NotFound(f"environment not found: {ref}", field="environment")
    return env


def find_environment(environments: list[Environment], ref: str) -> Environment:
    env = next((e for e in environments if ref in (e.id, e.name)), None)
    if env is None:
        raise NotFound(f"environment not found: {ref}", field="environment")
    return env


async def load_function(session: AsyncSession, ref: str) -> Function:
    row = await session.execute(select(Function).where(or_(Function.id == ref, Function.name == ref)))
    fn = row.scalars().first()
    if fn is None:
        raise NotFound(f"function not found: {ref}")
    return fn


def after_commit(session: AsyncSession, bus: LocalBus, event: Event) -> None:
    session.info.setdefault("after_commit", []).append(lambda: bus.publish(event))


def require(principal: Principal, role: Role, what: str) -> None:
    if not principal.can(role):
        raise Forbidden(f"{what} needs the {role} role")


# --- the service ----------------------------------------------------------------------------------


class EnvironmentService:
    def __init__(self, db: Database, bus: LocalBus, audit: AuditService, secrets: SecretBox) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._secrets = secrets

    async def list(self, principal: Principal) -> list[Environment]:
        """Every environment in promotion order."""
        async with self._db.session() as session:
            return await all_environments(session)

    async def get(self, principal: Principal, ref: str) -> Environment:
        async with self._db.session() as session:
            return await load_environment(session, ref)

    def secret_names(self, env: Environment) -> list[str]:
        """The names of an environment's secrets; their values never leave the engine."""
        return sorted(self._secrets.decrypt(env.secrets))

    async def ensure_defaults(self) -> None:
        """Seed dev (default), staging and prod when there are no environments at all (a database emptied
        after its migration); a concurrent node doing the same wins harmlessly."""
        async with self._db.session() as session:
            count = (await session.execute(select(sqlfunc.count()).select_from(Environment))).scalar_one()
        if count:
            return
        try:
            async with self._db.transaction() as session:
                for position, (name, description) in enumerate(SEEDED):
                    env = Environment(name=name, description=description, position=position)
                    env.is_default = position == 0
                    session.add(env)
        except IntegrityError:
            pass

    # --- writes -------------------------------------------------------------------------------------

    async def create(self, principal: Principal, data: EnvironmentCreate) -> Environment:
        require(principal, "admin", "changing environments")
        try:
            async with self._db.transaction() as session:
                existing = await all_environments(session)
                if any(e.name == data.name for e in existing):
                    raise Conflict(f"an environment named {data.name!r} already exists", field="name")
                if len(existing) >= MAX_ENVIRONMENTS:
                    raise BadRequest(f"at most {MAX_ENVIRONMENTS} environments")
                position = data.position
                if position is None:
                    position = max((e.position for e in existing), default=-1) + 1
                env = Environment(
                    name=data.name,
                    description=data.description,
                    position=position,
                    is_default=data.is_default,
                    env_vars=dict(data.env_vars or {}),
                    secrets=self._secrets.encrypt(data.secrets or {}),
                )
                if data.is_default:
                    self._take_default(existing, env)
                session.add(env)
                await session.flush()
                self._record(session, principal, "environment.create", env, after=self.snapshot(env))
        except IntegrityError as exc:  # a concurrent create won the unique index
            raise Conflict(f"an environment named {data.name!r} already exists", field="name") from exc
        return env

    async def update(self, principal: Principal, ref: str, data: EnvironmentUpdate) -> Environment:
        """Rename, describe, reorder, or make the default (the previous default stops being one)."""
        require(principal, "admin", "changing environments")
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            raise BadRequest("nothing to update: send at least one field")
        nulls = [key for key, value in changes.items() if value is None]
        if nulls:
            raise Invalid(nulls[0], f"{nulls[0]} cannot be null")
        try:
            async with self._db.transaction() as session:
                existing = await all_environments(session)
                env = find_environment(existing, ref)
                before = self.snapshot(env)
                name = changes.get("name", env.name)
                if name != env.name and any(e.name == name for e in existing):
                    raise Conflict(f"an environment named {name!r} already exists", field="name")
                if changes.get("is_default") is False and env.is_default:
                    raise BadRequest(
                        f"{env.name} is the default environment: make another one the default instead",
                        field="is_default",
                    )
                if changes.get("is_default"):
                    self._take_default(existing, env)
                for key, value in changes.items():
                    setattr(env, key, value)
                self._touch(session, env)
                self._record(session, principal, "environment.update", env, before, self.snapshot(env))
        except IntegrityError as exc:
            raise Conflict(
                f"an environment named {changes.get('name')!r} already exists", field="name"
            ) from exc
        return env

    async def set_variables(self, principal: Principal, ref: str, env_vars: dict[str, str]) -> Environment:
        """Replace the environment's variables with `env_vars`."""
        require(principal, "admin", "changing environments")
        values = validated(VariablesUpdate, env_vars=env_vars).env_vars
        async with self._db.transaction() as session:
            env = await load_environment(session, ref)
            before = self.snapshot(env)
            env.env_vars = dict(values)
            self._touch(session, env)
            self._record(session, principal, "environment.update", env, before, self.snapshot(env))
        return env

    async def change_secrets(
        self, principal: Principal, ref: str, changes: dict[str, str | None]
    ) -> Environment:
        """Set (a value) or remove (None) single secrets and keep the rest."""
        require(principal, "admin", "changing environments")
        changes = validated(SecretsChange, secrets=changes).secrets
        async with self._db.transaction() as session:
            env = await load_environment(session, ref)
            before = self.snapshot(env)
            current = self._secrets.decrypt(env.secrets)
            for name, value in changes.items():
                if value is None:
                    current.pop(name, None)
                else:
                    current[name] = value
            env.secrets = self._secrets.encrypt(current)
            self._touch(session, env)
            self._record(session, principal, "environment.update", env, before, self.snapshot(env))
        return env

    async def delete(self, principal: Principal, ref: str, *, force: bool = False) -> None:
        """Delete an environment; one that functions are deployed to only with `force` (the deployments go
        with it). The default environment stays."""
        require(principal, "admin", "changing environments")
        async with self._db.transaction() as session:
            env = await load_environment(session, ref)
            if env.is_default:
                raise BadRequest(f"cannot delete the default environment {env.name}", field="environment")
            rows = (
                await session.execute(
                    select(FunctionEnvironment, Function)
                    .join(Function, Function.id == FunctionEnvironment.function_id)
                    .where(FunctionEnvironment.environment_id == env.id)
                )
            ).all()
            if rows and not force:
                raise Conflict(
                    f"{len(rows)} function(s) are deployed to {env.name}: undeploy them first, or delete "
                    "with force=true to remove the environment and its deployments",
                    field="force",
                )
            await session.execute(
                delete(FunctionEnvironment).where(FunctionEnvironment.environment_id == env.id)
            )
            for _, fn in rows:
                event = FunctionChanged(function_id=fn.id, function_name=fn.name, action="undeployed")
                after_commit(session, self._bus, event)
            before = self.snapshot(env) | {"deployments": sorted(fn.name for _, fn in rows)}
            self._record(session, principal, "environment.delete", env, before=before)
            await session.delete(env)

    # --- helpers ----------------------------------------------------------------------------------

    def snapshot(self, env: Environment) -> dict[str, Any]:
        """What audit keeps of an environment: variable and secret names only, never values."""
        return {
            "name": env.name,
            "description": env.description,
            "position": env.position,
            "is_default": env.is_default,
            "env_vars": sorted(env.env_vars),
            "secrets": self.secret_names(env),
        }

    def _take_default(self, existing: list[Environment], env: Environment) -> None:
        """`env` becomes the only default (the original let two environments both claim it)."""
        for other in existing:
            if other is not env and other.is_default:
                other.is_default = False
                other.updated_at = utcnow()

    @staticmethod
    def _touch(session: AsyncSession, env: Environment) -> None:
        env.updated_at = utcnow()
        session.add(env)

    def _record(
        self,
        session: AsyncSession,
        principal: Principal,
        action: str,
        env: Environment,
        before: Any = None,
        after: Any = None,
    ) -> None:
        """Audit the change and, after commit, tell the bus (the catalog forgets what it resolved)."""
        self._audit.record(
            session,
            principal,
            action,
            resource_type="environment",
            resource_id=env.id,
            resource_name=env.name,
            before=before,
            after=after,
        )
        kind = _CHANGE[action]
        after_commit(
            session, self._bus, EnvironmentChanged(environment_id=env.id, name=env.name, action=kind)
        )
