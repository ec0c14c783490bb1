"""What of each function is deployed to each environment: deploy (a published version or $LATEST, with
per-environment overrides), undeploy, promote along the environments' order, the functions × environments
matrix, and the placement an invocation resolves: the version, variables and limits a function runs with
in one environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import Environment, Function, FunctionEnvironment, FunctionVersion
from data.types import utcnow
from engine.bus import LocalBus
from engine.errors import BadRequest, Conflict, NotFound
from engine.events import FunctionChanged
from engine.principal import Principal
from engine.runtimes.base import FunctionSpec
from engine.secrets import SecretBox
from engine.services.audit import AuditService
from engine.services.environment_schemas import DeployRequest
from engine.services.environments import (
    after_commit,
    all_environments,
    find_environment,
    load_environment,
    load_function,
    ordered,
    require,
)
from engine.services.functions import FunctionService

ENVIRONMENT_VARIABLE = "NIMBUS_ENVIRONMENT"  # every function sees the name of the environment it runs in


class NotDeployed(Conflict):
    """The function has no deployment in the (non-default) environment an invocation named."""


@dataclass(frozen=True, slots=True)
class Placement:
    """How a function runs in one environment: the deployed version (None: $LATEST) and what the
    environment and the deployment lay over the function's own variables and limits."""

    environment: str  # "": there are no environments at all, so nothing is laid over
    version: int | None = None
    env: Mapping[str, str] | None = None  # the environment's vars + secrets, then the deployment's vars
    memory_mb: int | None = None
    timeout_sec: int | None = None

    def apply(self, spec: FunctionSpec) -> FunctionSpec:
        """`spec` with this placement laid over it; for variables later wins: function vars and secrets,
        then the environment's vars and secrets, then the deployment's vars."""
        if not self.environment:
            return spec
        return replace(
            spec,
            env={**spec.env, **(self.env or {}), ENVIRONMENT_VARIABLE: self.environment},
            memory_mb=self.memory_mb or spec.memory_mb,
            timeout_sec=self.timeout_sec or spec.timeout_sec,
            environment=self.environment,
        )


@dataclass(frozen=True, slots=True)
class Promotion:
    function: Function
    source: Environment
    target: Environment
    deployment: FunctionEnvironment
    published: bool  # the source ran $LATEST, so $LATEST was first published as this new version

    @property
    def message(self) -> str:
        version, fn = self.deployment.version, self.function.name
        if self.published:
            return (
                f"{self.source.name} runs $LATEST of {fn}: published it as version {version} and "
                f"deployed that to {self.target.name}"
            )
        return f"deployed version {version} of {fn} from {self.source.name} to {self.target.name}"


@dataclass(frozen=True, slots=True)
class Cell:
    """What one function runs in one environment."""

    version: int | None  # None: $LATEST
    implicit: bool = False  # the default environment running $LATEST with no deployment of its own

    @property
    def label(self) -> str:
        return "$LATEST" if self.version is None else f"v{self.version}"


@dataclass(frozen=True, slots=True)
class MatrixRow:
    function: Function
    deployments: dict[str, FunctionEnvironment]  # environment id -> its deployment (absent: none)

    def cell(self, env: Environment) -> Cell | None:
        """What the function runs in `env`; None: it is not deployed there (invoking it there is a 409)."""
        row = self.deployments.get(env.id)
        if row is not None:
            return Cell(row.version)
        return Cell(None, implicit=True) if env.is_default else None


@dataclass(frozen=True, slots=True)
class Matrix:
    environments: list[Environment]  # in promotion order
    rows: list[MatrixRow]
    next_cursor: str | None


class DeploymentService:
    def __init__(
        self, db: Database, bus: LocalBus, audit: AuditService, secrets: SecretBox, functions: FunctionService
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._secrets = secrets
        self._functions = functions

    # --- reads ------------------------------------------------------------------------------------

    async def of_function(
        self, principal: Principal, function_ref: str
    ) -> tuple[Function, list[tuple[Environment, FunctionEnvironment]]]:
        """A function and its deployments, in promotion order."""
        async with self._db.session() as session:
            fn = await load_function(session, function_ref)
            rows = (
                await session.execute(
                    select(Environment, FunctionEnvironment)
                    .join(FunctionEnvironment, FunctionEnvironment.environment_id == Environment.id)
                    .where(FunctionEnvironment.function_id == fn.id)
                )
            ).all()
        pairs = sorted(((env, row) for env, row in rows), key=lambda pair: (pair[0].position, pair[0].name))
        return fn, pairs

    async def matrix(
        self,
        principal: Principal,
        *,
        search: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Matrix:
        """What is deployed where: one page of functions (by name) × every environment."""
        page = await self._functions.list(principal, search=search, sort="name", limit=limit, cursor=cursor)
        ids = [fn.id for fn in page.items]
        async with self._db.session() as session:
            environments = ordered(await all_environments(session))
            rows: list[FunctionEnvironment] = []
            if ids:
                found = await session.execute(
                    select(FunctionEnvironment).where(FunctionEnvironment.function_id.in_(ids))
                )
                rows = list(found.scalars())
        cells: dict[str, dict[str, FunctionEnvironment]] = {fid: {} for fid in ids}
        for row in rows:
            cells[row.function_id][row.environment_id] = row
        return Matrix(environments, [MatrixRow(fn, cells[fn.id]) for fn in page.items], page.next_cursor)

    # --- writes -----------------------------------------------------------------------------------

    async def deploy(
        self, principal: Principal, function_ref: str, env_ref: str, data: DeployRequest
    ) -> tuple[Environment, FunctionEnvironment]:
        """Upsert the function's deployment in the environment. A field left out of `data` keeps its
        deployed value; a first deployment starts at $LATEST with no overrides."""
        require(principal, "developer", "deploying functions")
        fields = {key: getattr(data, key) for key in data.model_fields_set}
        async with self._db.transaction() as session:
            fn = await load_function(session, function_ref)
            env = await load_environment(session, env_ref)
            if fields.get("version") is not None:
                await self._check_version(session, fn, fields["version"])
            row = await self._upsert(session, principal, fn, env, fields, "environment.deploy")
        return env, row

    async def undeploy(self, principal: Principal, function_ref: str, env_ref: str) -> None:
        require(principal, "developer", "deploying functions")
        async with self._db.transaction() as session:
            fn = await load_function(session, function_ref)
            env = await load_environment(session, env_ref)
            row = await self._deployment(session, fn, env)
            if row is None:
                raise NotFound(f"function {fn.name} is not deployed to {env.name}", field="environment")
            self._audit.record(
                session,
                principal,
                "environment.undeploy",
                resource_type="function",
                resource_id=fn.id,
                resource_name=fn.name,
                before=_snapshot(env, row),
                details={"environment": env.name},
            )
            await session.delete(row)
            self._changed(session, fn, "undeployed")

    async def promote(self, principal: Principal, function_ref: str, env_ref: str) -> Promotion:
        """Deploy the version running in `env_ref` to the next environment by position. When the source
        runs $LATEST, $LATEST is first published as a new immutable version and that number goes."""
        require(principal, "developer", "deploying functions")
        async with self._db.session() as session:
            fn = await load_function(session, function_ref)
            environments = ordered(await all_environments(session))
            source = find_environment(environments, env_ref)
            at = environments.index(source)
            if at + 1 == len(environments):
                raise BadRequest(
                    f"{source.name} is the last environment: there is nothing to promote to",
                    field="environment",
                )
            target = environments[at + 1]
            row = await self._deployment(session, fn, source)
        if row is None and not source.is_default:
            raise NotDeployed(f"function {fn.name} is not deployed to {source.name}", field="environment")
        version = row.version if row is not None else None
        published = version is None
        if version is None:
            made = await self._functions.publish(
                principal, fn.id, f"promoted from {source.name} to {target.name}"
            )
            version = made.version
        async with self._db.transaction() as session:
            details = {"from": source.name, "to": target.name, "published": published}
            deployment = await self._upsert(
                session, principal, fn, target, {"version": version}, "environment.promote", details
            )
        return Promotion(fn, source, target, deployment, published)

    # --- resolution at invoke ---------------------------------------------------------------------

    async def placement(self, fn: Function, environment: str | None) -> Placement:
        """Where an invocation of `fn` runs. None names the default environment, where a function with no
        deployment runs $LATEST (as before environments existed); any other environment needs a
        deployment, else NotDeployed."""
        which = (
            or_(Environment.id == environment, Environment.name == environment)
            if environment
            else Environment.is_default.is_(True)
        )
        stmt = (  # one round trip: the environment and this function's deployment there, if any
            select(Environment, FunctionEnvironment)
            .outerjoin(
                FunctionEnvironment,
                and_(
                    FunctionEnvironment.environment_id == Environment.id,
                    FunctionEnvironment.function_id == fn.id,
                ),
            )
            .where(which)
        )
        async with self._db.session() as session:
            found = (await session.execute(stmt)).first()
        if found is None:
            if environment:
                raise NotFound(f"environment not found: {environment}", field="environment")
            return Placement(environment="")  # no environments at all: run as if there were none
        env, deployment = found
        if deployment is None and not env.is_default:
            raise NotDeployed(f"function {fn.name} is not deployed to {env.name}", field="environment")
        variables = {**env.env_vars, **self._secrets.decrypt(env.secrets)}
        if deployment is None:
            return Placement(env.name, env=variables)
        return Placement(
            env.name,
            version=deployment.version,
            env={**variables, **deployment.env_vars},
            memory_mb=deployment.memory_mb,
            timeout_sec=deployment.timeout_sec,
        )

    # --- helpers ----------------------------------------------------------------------------------

    async def _upsert(
        self,
        session: AsyncSession,
        principal: Principal,
        fn: Function,
        env: Environment,
        fields: dict[str, Any],
        action: str,
        details: dict[str, Any] | None = None,
    ) -> FunctionEnvironment:
        row = await self._deployment(session, fn, env)
        before = _snapshot(env, row) if row is not None else None
        if row is None:
            row = FunctionEnvironment(function_id=fn.id, environment_id=env.id)
        for key, value in fields.items():
            setattr(row, key, dict(value or {}) if key == "env_vars" else value)
        row.deployed_by = principal.actor
        row.updated_at = utcnow()
        session.add(row)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent first deployment of the same pair won
            raise Conflict(f"{fn.name} was being deployed to {env.name} at the same time; try again") from exc
        self._audit.record(
            session,
            principal,
            action,
            resource_type="function",
            resource_id=fn.id,
            resource_name=fn.name,
            before=before,
            after=_snapshot(env, row),
            details={"environment": env.name, **(details or {})},
        )
        self._changed(session, fn, "deployed")
        return row

    async def _deployment(
        self, session: AsyncSession, fn: Function, env: Environment
    ) -> FunctionEnvironment | None:
        row = await session.execute(
            select(FunctionEnvironment).where(
                FunctionEnvironment.function_id == fn.id, FunctionEnvironment.environment_id == env.id
            )
        )
        return row.scalars().first()

    async def _check_version(self, session: AsyncSession, fn: Function, number: int) -> None:
        row = await session.execute(
            select(FunctionVersion.id).where(
                FunctionVersion.function_id == fn.id, FunctionVersion.version == number
            )
        )
        if row.scalars().first() is None:
            raise NotFound(f"version {number} of {fn.name!r} not found", field="version")

    def _changed(self, session: AsyncSession, fn: Function, action: str) -> None:
        """After commit: the catalog forgets what it resolved for `fn`; pages showing it refresh."""
        after_commit(
            session, self._bus, FunctionChanged(function_id=fn.id, function_name=fn.name, action=action)
        )


def _snapshot(env: Environment, row: FunctionEnvironment) -> dict[str, Any]:
    """What audit keeps of a deployment (variable names only, never values)."""
    return {
        "environment": env.name,
        "version": row.version if row.version is not None else "$LATEST",
        "env_vars": sorted(row.env_vars),
        "memory_mb": row.memory_mb,
        "timeout_sec": row.timeout_sec,
    }
