"""Workflows (DESIGN §6): versioned definitions (Nimbus JSON, or Amazon States Language converted on the
way in), validated with every problem listed before anything is saved, exported as either.

`platform.workflows` is one service in three modules: this one (the workflows), workflow_starts.py
(versions, starting executions sync or async) and workflow_executions.py (reading and steering
executions: cancel, breakpoints, the debugger, redrive)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import Function, Workflow, WorkflowExecution, WorkflowVersion
from data.repos.pagination import Page, paginate
from data.types import utcnow
from engine.bus import LocalBus
from engine.errors import Conflict, Invalid, NotFound
from engine.events import WorkflowChanged
from engine.principal import Principal
from engine.services.audit import AuditService
from engine.services.environment_schemas import validated
from engine.services.setting_specs import WORKFLOW_DEFAULT_TIMEOUT, WORKFLOW_MAX_STATES
from engine.services.settings import SettingsService
from engine.services.workflow_executions import require
from engine.services.workflow_schemas import (
    WORKFLOW_STATUSES,
    InvalidDefinition,
    WorkflowCreate,
    WorkflowUpdate,
    check_breakpoints,
)
from engine.services.workflow_starts import StartOps
from engine.workflows.asl import from_asl, is_asl, to_asl
from engine.workflows.model import DEFAULT_TIMEOUT_SEC, Problem
from engine.workflows.runner import Runner
from engine.workflows.validate import validate_definition

M = TypeVar("M", bound=BaseModel)
DEFAULT_MAX_STATES = 100  # without a settings service (the settings' own default)
_MAX_FUNCTIONS = 10_000  # function names loaded to resolve Task references


class WorkflowService(StartOps):
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        runner: Runner,
        *,
        settings: SettingsService | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self.runner = runner
        self._settings = settings  # the runtime settings: max states, the default timeout
        # Quotas (engine/services/quotas.py, set by the platform): refuses a workflow over the count limit,
        # inside the create's transaction.
        self.quota_check: Callable[[AsyncSession], Awaitable[None]] | None = None

    def _max_states(self) -> int:
        return int(self._settings.get(WORKFLOW_MAX_STATES)) if self._settings else DEFAULT_MAX_STATES

    def _default_timeout(self) -> int:
        return int(self._settings.get(WORKFLOW_DEFAULT_TIMEOUT)) if self._settings else DEFAULT_TIMEOUT_SEC

    # --- workflows ------------------------------------------------------------------------------------

    async def list(
        self,
        principal: Principal,
        *,
        q: str | None = None,
        status: str | None = None,
        limit: int | None = 20,
        cursor: str | None = None,
    ) -> Page[Workflow]:
        """Newest first; `q` matches part of the name (any case)."""
        stmt = select(Workflow)
        if q:
            stmt = stmt.where(func.lower(Workflow.name).contains(q.lower()[:64], autoescape=True))
        if status:
            if status not in WORKFLOW_STATUSES:
                raise Invalid("status", f"status must be one of {', '.join(WORKFLOW_STATUSES)}")
            stmt = stmt.where(Workflow.status == status)
        async with self._db.session() as session:
            return await paginate(session, stmt, Workflow.id, cursor=cursor, limit=limit)

    async def get(self, principal: Principal, ref: str) -> Workflow:
        """A workflow by id or name."""
        return await self._workflow_row(ref)

    async def create(self, principal: Principal, body: Mapping[str, Any] | WorkflowCreate) -> Workflow:
        require(principal, "developer", "creating workflows")
        data = _model(WorkflowCreate, body)
        definition = await self._checked_definition(data.definition)
        check_breakpoints(data.breakpoints, definition)
        timeout = data.timeout_sec or int(self._default_timeout())
        workflow = Workflow(
            name=data.name,
            description=data.description,
            definition=definition,
            timeout_sec=timeout,
            tags=data.tags,
            breakpoints=data.breakpoints,
            status=data.status,
            created_by=principal.actor,
        )
        async with self._db.transaction() as session:
            if await self._name_taken(session, data.name):
                raise Conflict(f"workflow already exists: {data.name}", field="name")
            if self.quota_check is not None:
                await self.quota_check(session)
            session.add(workflow)
            session.add(_version_row(workflow, principal))
            self._audit.record(
                session,
                principal,
                "workflow.create",
                resource_type="workflow",
                resource_id=workflow.id,
                resource_name=workflow.name,
                after=_summary(workflow),
            )
            self._changed(session, workflow.id, "created")
        return workflow

    async def update(
        self, principal: Principal, ref: str, body: Mapping[str, Any] | WorkflowUpdate
    ) -> Workflow:
        """Change fields; a changed definition becomes a new version (executions keep theirs)."""
        require(principal, "developer", "changing workflows")
        data = _model(WorkflowUpdate, body)
        current = await self._workflow_row(ref)
        definition = await self._checked_definition(data.definition) if data.definition is not None else None
        async with self._db.transaction() as session:
            workflow = await session.get(Workflow, current.id)
            if workflow is None:
                raise NotFound(f"workflow not found: {ref}")
            before = _summary(workflow)
            if data.name is not None and data.name != workflow.name:
                if await self._name_taken(session, data.name):
                    raise Conflict(f"workflow already exists: {data.name}", field="name")
                workflow.name = data.name
            for field in ("description", "timeout_sec", "tags", "status"):
                value = getattr(data, field)
                if value is not None:
                    setattr(workflow, field, value)
            new_version = definition is not None and _canonical(definition) != _canonical(workflow.definition)
            if new_version:
                workflow.definition = definition
                workflow.version += 1
                states = set(definition["states"])  # type: ignore[index]
                workflow.breakpoints = [s for s in workflow.breakpoints if s in states]
            if data.breakpoints is not None:
                check_breakpoints(data.breakpoints, workflow.definition)
                workflow.breakpoints = data.breakpoints
            workflow.updated_at = utcnow()
            session.add(workflow)
            if new_version:
                session.add(_version_row(workflow, principal))
            self._audit.record(
                session,
                principal,
                "workflow.update",
                resource_type="workflow",
                resource_id=workflow.id,
                resource_name=workflow.name,
                before=before,
                after=_summary(workflow),
            )
            self._changed(session, workflow.id, "updated")
        return workflow

    async def delete(self, principal: Principal, ref: str) -> None:
        """Delete the workflow with its versions and executions (running ones are stopped)."""
        require(principal, "developer", "deleting workflows")
        workflow = await self._workflow_row(ref)
        async with self._db.transaction() as session:
            row = await session.get(Workflow, workflow.id)
            if row is None:
                raise NotFound(f"workflow not found: {ref}")
            active = (
                (
                    await session.execute(
                        select(WorkflowExecution.id).where(
                            WorkflowExecution.workflow_id == workflow.id,
                            WorkflowExecution.status.in_(("pending", "running")),
                        )
                    )
                )
                .scalars()
                .all()
            )
            await session.delete(row)
            self._audit.record(
                session,
                principal,
                "workflow.delete",
                resource_type="workflow",
                resource_id=workflow.id,
                resource_name=workflow.name,
                before=_summary(workflow),
            )
            self._changed(session, workflow.id, "deleted")
        for execution_id in active:
            self.runner.cancel(execution_id)

    async def validate(self, principal: Principal, definition: Any) -> list[Problem]:
        """Every problem of a definition (Nimbus JSON or ASL), each with its path; [] when it is valid."""
        try:
            await self._checked_definition(definition)
        except InvalidDefinition as exc:
            return exc.problems
        return []

    async def export(
        self, principal: Principal, ref: str, version: int | None = None, fmt: str = "nimbus"
    ) -> dict[str, Any]:
        """The definition (current, or `version`) as Nimbus JSON or as ASL (`fmt` "asl")."""
        if fmt not in ("nimbus", "asl"):
            raise Invalid("format", "format must be nimbus or asl")
        if version is None:
            definition = (await self._workflow_row(ref)).definition
        else:
            definition = (await self.version(principal, ref, version)).definition
        if fmt == "nimbus":
            return dict(definition)
        names = await self._function_names()
        return to_asl(definition, function_name=lambda ref: names.get(ref, ref))

    async def export_asl(self, principal: Principal, ref: str, version: int | None = None) -> dict[str, Any]:
        return await self.export(principal, ref, version, "asl")

    async def set_breakpoints(self, principal: Principal, ref: str, states: list[str]) -> Workflow:
        """The states every new execution pauses before (each execution gets a copy when it starts)."""
        require(principal, "developer", "setting breakpoints")
        states = list(dict.fromkeys(states))
        workflow = await self._workflow_row(ref)
        check_breakpoints(states, workflow.definition)
        async with self._db.transaction() as session:
            row = await session.get(Workflow, workflow.id)
            if row is None:
                raise NotFound(f"workflow not found: {ref}")
            before = list(row.breakpoints)
            row.breakpoints = states
            row.updated_at = utcnow()
            session.add(row)
            self._audit.record(
                session,
                principal,
                "workflow.breakpoints",
                resource_type="workflow",
                resource_id=row.id,
                resource_name=row.name,
                before={"breakpoints": before},
                after={"breakpoints": states},
            )
            self._changed(session, row.id, "breakpoints")
        return row

    # --- helpers --------------------------------------------------------------------------------------

    async def _checked_definition(self, raw: Any) -> dict[str, Any]:
        """The Nimbus form of `raw` (converted from ASL when it is ASL), or InvalidDefinition listing
        every problem."""
        names = await self._function_names()
        by_name = {name: name for name in names.values()}
        problems: list[Problem] = []
        if is_asl(raw):
            raw, problems = from_asl(raw, lambda resource: by_name.get(resource))
            if problems:
                raise InvalidDefinition(problems)
        _, problems = validate_definition(
            raw,
            function_exists=lambda ref: ref in names or ref in by_name,
            max_states=int(self._max_states()),
        )
        if problems:
            raise InvalidDefinition(problems)
        return dict(raw)

    async def _function_names(self) -> dict[str, str]:
        """Function id -> name."""
        async with self._db.session() as session:
            rows = await session.execute(select(Function.id, Function.name).limit(_MAX_FUNCTIONS))
            return {fid: name for fid, name in rows.tuples().all()}

    @staticmethod
    async def _name_taken(session: Any, name: str) -> bool:
        found = await session.execute(select(Workflow.id).where(Workflow.name == name))
        return found.first() is not None

    def _changed(self, session: Any, workflow_id: str, action: str) -> None:
        event = WorkflowChanged(workflow_id=workflow_id, action=action)
        session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))


def _model(model: type[M], body: Mapping[str, Any] | M) -> M:
    if isinstance(body, model):
        return body
    if not isinstance(body, Mapping):
        raise Invalid(None, "the request body must be a JSON object")
    return validated(model, **dict(body))


def _canonical(definition: Any) -> str:
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))


def _version_row(workflow: Workflow, principal: Principal) -> WorkflowVersion:
    return WorkflowVersion(
        workflow_id=workflow.id,
        version=workflow.version,
        definition=workflow.definition,
        timeout_sec=workflow.timeout_sec,
        description=workflow.description,
        created_by=principal.actor,
    )


def _summary(workflow: Workflow) -> dict[str, Any]:
    return {
        "name": workflow.name,
        "version": workflow.version,
        "status": workflow.status,
        "timeout_sec": workflow.timeout_sec,
        "states": len((workflow.definition or {}).get("states", {})),
        "breakpoints": list(workflow.breakpoints),
    }
