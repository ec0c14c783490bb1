"""Functions: create, read, update, delete, offline/online, publish versions. Authorizes, validates,
audits (in the same transaction), then tells the bus and the pool after commit."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, or_, select, text
from sqlalchemy import func as sqlfunc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import Function, FunctionVersion
from data.repos.pagination import Page, paginate
from data.types import utcnow
from engine.bus import LocalBus
from engine.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, TooLarge
from engine.events import FunctionChanged
from engine.principal import Principal
from engine.runtimes.base import FunctionSpec
from engine.runtimes.docker_executor import RUNTIMES as DOCKER_RUNTIMES
from engine.runtimes.docker_executor import detect_docker, image_problem
from engine.secrets import SecretBox
from engine.services.audit import AuditService
from engine.services.code_check import check_syntax, describe
from engine.services.function_schemas import (
    WASM_BINARY_FILE,
    FunctionCreate,
    FunctionUpdate,
    assemble_files,
    default_handler,
    entry_file,
)
from engine.services.layer_attach import attached_mounts, layer_snapshot, restore_layers

if TYPE_CHECKING:
    from engine.builds.service import BuildService

# Fields shown in audit before/after (never code bodies or secrets: they can be large or sensitive).
_AUDITED = (
    "name",
    "runtime",
    "handler",
    "code_hash",
    "memory_mb",
    "timeout_sec",
    "max_concurrency",
    "min_warm",
    "retry_attempts",
    "network",
    "executor",
    "image",
    "status",
    "tags",
    "description",
    "version",
)


def code_hash(files: dict[str, str]) -> str:
    blob = json.dumps(sorted(files.items()), separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def snapshot(fn: Function) -> dict[str, Any]:
    data = {k: getattr(fn, k) for k in _AUDITED}
    data["env_vars"] = sorted(fn.env_vars)
    return data


SORTS: dict[str, tuple[Any, bool]] = {  # sort name -> (column, ascending); None: by id (newest)
    "newest": (None, False),
    "name": (Function.name, True),
    "updated": (Function.updated_at, False),
}


class FunctionService:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        secrets: SecretBox,
        *,
        available_runtimes: Callable[[], set[str]],
        max_code_bytes: Callable[[], int],
        on_retire: Callable[[str], Any] | None = None,
        defaults: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._db = db
        self._defaults = defaults  # the platform's default_memory / default_timeout settings, read on create
        self._bus = bus
        self._audit = audit
        self._secrets = secrets
        self._available = available_runtimes
        self._max_code_bytes = max_code_bytes
        self._on_retire = on_retire  # pool.retire(function_id): warm workers of the old code must go
        # Compiles go/rust code before it is saved (engine/builds, set by the platform): a failed build
        # raises BuildFailed (422, the compiler's message with its line), so the old code keeps serving.
        self.builder: BuildService | None = None
        # Quotas (engine/services/quotas.py, set by the platform): refuses a new function over the
        # functions, memory or code-storage limit, inside the create's transaction.
        self.quota_check: Callable[[AsyncSession, Function], Awaitable[None]] | None = None

    # --- reads ------------------------------------------------------------------------------------

    async def get(self, principal: Principal, ref: str) -> Function:
        async with self._db.session() as session:
            return await self._load(session, ref)

    async def list(
        self,
        principal: Principal,
        *,
        search: str | None = None,
        runtime: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        sort: str = "newest",
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Function]:
        """`sort`: newest (created), name (A-Z) or updated (most recent first); each an index scan."""
        if sort not in SORTS:
            raise Invalid("sort", f"sort must be one of {', '.join(SORTS)}")
        stmt = select(Function)
        if search:
            stmt = stmt.where(sqlfunc.lower(Function.name).contains(search.lower(), autoescape=True))
        if runtime:
            stmt = stmt.where(Function.runtime == runtime)
        if status:
            stmt = stmt.where(Function.status == status)
        if tag:
            stmt = stmt.where(self._has_tag(tag))
        async with self._db.session() as session:
            column, ascending = SORTS[sort]
            page = await paginate(
                session,
                stmt,
                Function.id,
                cursor=cursor,
                limit=limit,
                sort_column=column,
                ascending=ascending,
            )
        return page

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        """`tag` is in the function's JSON tag list (in SQL, so pages stay full)."""
        if self._db.is_sqlite:
            clause = "EXISTS (SELECT 1 FROM json_each(functions.tags) WHERE json_each.value = :tag)"
            return text(clause).bindparams(tag=tag)  # type: ignore[return-value]
        return text("CAST(functions.tags AS jsonb) @> CAST(:tags AS jsonb)").bindparams(  # type: ignore[return-value]
            tags=json.dumps([tag])
        )

    async def secret_names(self, principal: Principal, ref: str) -> list[str]:
        """The names of a function's secrets; their values never leave the engine."""
        fn = await self.get(principal, ref)
        return sorted(self._secrets.decrypt(fn.secrets))

    async def kept_warm(self) -> list[str]:
        """Ids of the active functions with a prewarm floor (engine/prewarm.py, at start)."""
        async with self._db.session() as session:
            rows = await session.execute(
                select(Function.id).where(Function.min_warm > 0, Function.status == "active")
            )
            return list(rows.scalars())

    async def count(self) -> int:
        async with self._db.session() as session:
            return int((await session.execute(select(sqlfunc.count()).select_from(Function))).scalar_one())

    async def versions(self, principal: Principal, ref: str) -> list[FunctionVersion]:
        async with self._db.session() as session:
            fn = await self._load(session, ref)
            rows = await session.execute(
                select(FunctionVersion)
                .where(FunctionVersion.function_id == fn.id)
                .order_by(FunctionVersion.version.desc())
                .limit(1000)
            )
            return list(rows.scalars())

    async def version(self, principal: Principal, ref: str, number: int) -> FunctionVersion:
        async with self._db.session() as session:
            fn = await self._load(session, ref)
            return await self._load_version(session, fn, number)

    async def spec(self, fn: Function, version: FunctionVersion | None = None) -> FunctionSpec:
        """What the pool needs to run `fn` ($LATEST, or a published version). Secrets are the
        function's current ones either way; code, handler, limits and env vars come from the snapshot."""
        source: Function | FunctionVersion = version if version is not None else fn
        return FunctionSpec(
            function_id=fn.id,
            name=fn.name,
            version=str(version.version) if version is not None else "$LATEST",
            runtime=source.runtime,
            handler=source.handler,
            files=source.files,
            code_hash=source.code_hash,
            memory_mb=source.memory_mb,
            timeout_sec=source.timeout_sec,
            env={**source.env_vars, **self._secrets.decrypt(fn.secrets)},
            network=fn.network,
            max_concurrency=fn.max_concurrency,
            min_warm=fn.min_warm,
            executor=fn.executor,
            image=fn.image,
            layers=await attached_mounts(self._db, fn.id, version),  # one query; none if published without
        )

    # --- writes -----------------------------------------------------------------------------------

    async def create(self, principal: Principal, data: FunctionCreate) -> Function:
        self._require_writer(principal)
        if data.runtime not in self._available():
            raise Invalid("runtime", f"runtime {data.runtime!r} is not available on this node yet")
        await self._check_executor(data.executor, data.image, data.runtime)
        handler = data.handler or default_handler(data.runtime)
        self._check_binary(data.runtime, data.code, data.binary)
        files = assemble_files(data.runtime, handler, data.code, data.files, data.binary)
        self._check_size(files)
        self._check_syntax(data.runtime, files)
        fields = data.model_dump(
            exclude_unset=True, exclude={"code", "files", "binary", "secrets", "handler"}
        )
        for field, value in (self._defaults() if self._defaults else {}).items():
            if fields.get(field) is None:
                fields[field] = value
        fn = Function(**fields, handler=handler, files=files, created_by=principal.actor)
        fn.code = files.get(entry_file(data.runtime, handler, files), "")
        fn.code_hash = code_hash(files)
        fn.secrets = self._secrets.encrypt(data.secrets or {})
        fn.last_deployed_at = utcnow()
        await self._build_new(principal, fn)
        try:
            async with self._db.transaction() as session:
                if await self._find(session, data.name) is not None:
                    raise Conflict(f"a function named {data.name!r} already exists", field="name")
                if self.quota_check is not None:
                    await self.quota_check(session, fn)
                session.add(fn)
                await session.flush()
                self._audit.record(
                    session,
                    principal,
                    "function.create",
                    resource_type="function",
                    resource_id=fn.id,
                    resource_name=fn.name,
                    after=snapshot(fn),
                )
                self._after_commit(session, fn, "created")
        except IntegrityError as exc:  # a concurrent create won the unique index
            raise Conflict(f"a function named {data.name!r} already exists", field="name") from exc
        return fn

    async def update(self, principal: Principal, ref: str, data: FunctionUpdate) -> Function:
        self._require_writer(principal)
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            raise BadRequest("nothing to update: send at least one field")
        await self._build_changed(principal, ref, changes)
        async with self._db.transaction() as session:
            fn = await self._load(session, ref)
            before = snapshot(fn)
            handler = changes.pop("handler", None) or fn.handler
            code, files = changes.pop("code", None), changes.pop("files", None)
            binary = changes.pop("binary", None)
            if code is not None or files is not None or binary is not None or handler != fn.handler:
                self._check_binary(fn.runtime, code, binary)
                new_files = self._next_files(fn, handler, code, files, binary)
                self._check_size(new_files)
                self._check_syntax(fn.runtime, new_files)
                fn.files, fn.handler = new_files, handler
                fn.code = new_files.get(entry_file(fn.runtime, handler, new_files), "")
                fn.code_hash = code_hash(new_files)
                fn.last_deployed_at = utcnow()
            if "executor" in changes or "image" in changes:
                await self._check_executor(
                    changes.get("executor", fn.executor), changes.get("image", fn.image), fn.runtime
                )
            if "secrets" in changes:
                fn.secrets = self._secrets.encrypt(changes.pop("secrets") or {})
            for key, value in changes.items():
                setattr(fn, key, value)
            self._save_revision(session, principal, fn, "function.update", before)
        return fn

    async def change_secrets(
        self, principal: Principal, ref: str, changes: dict[str, str | None]
    ) -> Function:
        """Set (a value) or remove (None) single secrets and keep the rest, so a caller never needs the
        other secrets' plaintext to change one."""
        self._require_writer(principal)
        current = self._secrets.decrypt((await self.get(principal, ref)).secrets)
        for name, value in changes.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        try:
            data = FunctionUpdate(secrets=current)
        except ValidationError as exc:
            raise Invalid("secrets", str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None
        return await self.update(principal, ref, data)

    async def delete(self, principal: Principal, ref: str) -> None:
        self._require_writer(principal)
        async with self._db.transaction() as session:
            fn = await self._load(session, ref)
            self._audit.record(
                session,
                principal,
                "function.delete",
                resource_type="function",
                resource_id=fn.id,
                resource_name=fn.name,
                before=snapshot(fn),
            )
            await session.delete(fn)
            self._after_commit(session, fn, "deleted", retire=True)

    async def set_status(self, principal: Principal, ref: str, online: bool) -> Function:
        self._require_writer(principal)
        action = "online" if online else "offline"
        async with self._db.transaction() as session:
            fn = await self._load(session, ref)
            if online and fn.status != "offline":
                raise BadRequest(f"function {fn.name!r} is {fn.status}, not offline")
            if not online and fn.status != "active":
                raise BadRequest(f"function {fn.name!r} is {fn.status}, not active")
            before = snapshot(fn)
            fn.status = "active" if online else "offline"
            fn.updated_at = utcnow()
            session.add(fn)
            self._audit.record(
                session,
                principal,
                f"function.{action}",
                resource_type="function",
                resource_id=fn.id,
                resource_name=fn.name,
                before=before,
                after=snapshot(fn),
            )
            self._after_commit(session, fn, action, retire=not online)
        return fn

    async def publish(self, principal: Principal, ref: str, description: str = "") -> FunctionVersion:
        self._require_writer(principal)
        async with self._db.transaction() as session:
            fn = await self._load(session, ref, for_update=True)
            fn.latest_published += 1
            version = FunctionVersion(
                function_id=fn.id,
                version=fn.latest_published,
                description=description,
                runtime=fn.runtime,
                handler=fn.handler,
                code=fn.code,
                files=fn.files,
                code_hash=fn.code_hash,
                memory_mb=fn.memory_mb,
                timeout_sec=fn.timeout_sec,
                env_vars=fn.env_vars,
                layers=await layer_snapshot(session, fn.id),
                created_by=principal.actor,
            )
            session.add_all([fn, version])
            self._audit.record(
                session,
                principal,
                "function.publish",
                resource_type="function",
                resource_id=fn.id,
                resource_name=fn.name,
                after={"version": version.version, "code_hash": fn.code_hash},
            )
            self._after_commit(session, fn, "published")
        return version

    async def rollback(self, principal: Principal, ref: str, number: int) -> Function:
        self._require_writer(principal)
        async with self._db.transaction() as session:
            fn = await self._load(session, ref)
            target = await self._load_version(session, fn, number)
            before = snapshot(fn)
            fn.handler, fn.files, fn.code, fn.code_hash = (
                target.handler,
                target.files,
                target.code,
                target.code_hash,
            )
            fn.memory_mb, fn.timeout_sec, fn.env_vars = target.memory_mb, target.timeout_sec, target.env_vars
            await restore_layers(session, fn.id, target.layers)
            self._save_revision(session, principal, fn, "function.rollback", before, {"to_version": number})
        return fn

    # --- helpers ----------------------------------------------------------------------------------

    def _save_revision(
        self,
        session: AsyncSession,
        principal: Principal,
        fn: Function,
        action: str,
        before: dict[str, Any],
        details: dict[str, Any] | None = None,
    ) -> None:
        """$LATEST changed: bump its version, audit before/after, and retire warm workers after commit."""
        fn.version += 1
        fn.updated_at = utcnow()
        session.add(fn)
        self._audit.record(
            session,
            principal,
            action,
            resource_type="function",
            resource_id=fn.id,
            resource_name=fn.name,
            before=before,
            after=snapshot(fn),
            details=details,
        )
        self._after_commit(session, fn, "updated", retire=True)

    def _next_files(
        self,
        fn: Function,
        handler: str,
        code: str | None,
        files: dict[str, str] | None,
        binary: str | None = None,
    ) -> dict[str, str]:
        """The files an update leaves: new `files` or the old ones, with `code` as the entry file."""
        base = dict(files) if files is not None else dict(fn.files)
        if code is not None and files is None and handler != fn.handler:
            base.pop(entry_file(fn.runtime, fn.handler, fn.files), None)
        return assemble_files(fn.runtime, handler, code, base, binary)

    async def _build_new(self, principal: Principal, fn: Function) -> None:
        """A compiled function is built before its create commits (its Build rows take its id)."""
        if self.builder is None or not self.builder.builds(fn.runtime):
            return
        async with self._db.session() as session:  # no compile for a name that is taken
            if await self._find(session, fn.name) is not None:
                raise Conflict(f"a function named {fn.name!r} already exists", field="name")
        await self.builder.build_for_deploy(
            principal,
            function_id=fn.id,
            function_name=fn.name,
            runtime=fn.runtime,
            handler=fn.handler,
            files=fn.files,
        )

    async def _build_changed(self, principal: Principal, ref: str, changes: dict[str, Any]) -> None:
        """New code of a compiled function is built before the transaction that saves it: a compile
        takes seconds, and no transaction may stay open that long."""
        if self.builder is None or not changes.keys() & {"code", "files", "handler"}:
            return
        fn = await self.get(principal, ref)
        if not self.builder.builds(fn.runtime):
            return
        handler = changes.get("handler") or fn.handler
        files = self._next_files(fn, handler, changes.get("code"), changes.get("files"))
        if handler == fn.handler and files == fn.files:
            return
        self._check_size(files)
        await self.builder.build_for_deploy(
            principal,
            function_id=fn.id,
            function_name=fn.name,
            runtime=fn.runtime,
            handler=handler,
            files=files,
        )

    def _require_writer(self, principal: Principal) -> None:
        if not principal.can("developer"):
            raise Forbidden("changing functions needs the developer or admin role")

    def _check_size(self, files: dict[str, str]) -> None:
        size = sum(len(text.encode()) for text in files.values())
        limit = self._max_code_bytes()
        if size > limit:
            raise TooLarge(f"code is {size} bytes; the limit is {limit} bytes", field="code")

    async def _check_executor(self, executor: str | None, image: str | None, runtime: str) -> None:
        """`process` (the default) always works; `docker` needs an image, an engine this node reaches, a
        runtime it runs and the image on that engine (Nimbus does not pull). Engine calls run off the loop."""
        if executor != "docker":
            return
        if not image:
            raise Invalid("image", "the Docker executor needs an image, e.g. python:3.11-slim")
        info = await asyncio.to_thread(detect_docker)
        if not info.available:
            raise Invalid("executor", f"the Docker executor is unavailable on this node: {info.detail}")
        if runtime not in DOCKER_RUNTIMES:
            raise Invalid("executor", f"the Docker executor runs python functions, not {runtime}")
        problem = await asyncio.to_thread(image_problem, image)
        if problem:
            raise Invalid("image", problem)

    def _check_syntax(self, runtime: str, files: dict[str, str]) -> None:
        problems = check_syntax(runtime, files)
        if problems:
            binary = any(p.file == WASM_BINARY_FILE for p in problems)  # an uploaded wasm module
            raise Invalid("binary" if binary else "code", describe(problems))

    def _check_binary(self, runtime: str, code: str | None, binary: str | None) -> None:
        if binary is None:
            return
        if runtime != "wasm":
            raise Invalid("binary", "binary (a compiled module) is only for the wasm runtime")
        if code is not None:
            raise Invalid("binary", "send either code (WAT text) or binary (a compiled module), not both")

    def _after_commit(self, session: AsyncSession, fn: Function, action: str, retire: bool = False) -> None:
        event = FunctionChanged(function_id=fn.id, function_name=fn.name, action=action)
        callbacks = session.info.setdefault("after_commit", [])
        callbacks.append(lambda: self._bus.publish(event))
        if retire and self._on_retire is not None:
            fid = fn.id
            callbacks.append(lambda: self._on_retire(fid) if self._on_retire else None)

    async def _find(self, session: AsyncSession, ref: str) -> Function | None:
        row = await session.execute(select(Function).where(or_(Function.id == ref, Function.name == ref)))
        return row.scalars().first()

    async def _load(self, session: AsyncSession, ref: str, for_update: bool = False) -> Function:
        stmt = select(Function).where(or_(Function.id == ref, Function.name == ref))
        if for_update and not self._db.is_sqlite:
            stmt = stmt.with_for_update()
        fn = (await session.execute(stmt)).scalars().first()
        if fn is None:
            raise NotFound(f"function not found: {ref}")
        return fn

    async def _load_version(self, session: AsyncSession, fn: Function, number: int) -> FunctionVersion:
        row = await session.execute(
            select(FunctionVersion).where(
                FunctionVersion.function_id == fn.id, FunctionVersion.version == number
            )
        )
        version = row.scalars().first()
        if version is None:
            raise NotFound(f"version {number} of {fn.name!r} not found")
        return version
