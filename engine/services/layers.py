"""Layers: versioned bundles of dependencies that functions mount beside their code. Create, list, read,
delete (refused while functions use one, unless forced), and add versions: an uploaded zip (checked and
ready at once) or a build from requirements.txt / package.json (engine/services/layer_builds.py).
Attaching layers to functions is engine/services/layer_attach.py; unpacking them, layer_store.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_, select, text
from sqlalchemy import func as sqlfunc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from data.db import Database
from data.models import Function, FunctionLayer, Layer, LayerVersion
from data.repos.pagination import clamp_limit, decode_cursor, encode_cursor
from data.types import utcnow
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from engine.events import FunctionChanged, LayerChanged
from engine.principal import Principal
from engine.services.audit import AuditService
from engine.services.layer_archive import check_zip
from engine.services.layer_builds import BuildJob, LayerBuilder, npm_path
from engine.services.layer_schemas import LayerCreate, check_package_json, check_requirements

SOURCES = {"pip": ("requirements", "python"), "npm": ("package_json", "nodejs")}  # -> (field, runtime)


@dataclass(frozen=True, slots=True)
class LayerUser:
    function_id: str
    function_name: str
    layer_version: int


@dataclass(slots=True)
class LayerSummary:
    """A layer as lists show it: its newest version's state and size, and how many functions use it."""

    layer: Layer
    latest: LayerVersion | None
    used_by: int


@dataclass(slots=True)
class LayerPage:
    items: list[LayerSummary]
    total: int
    offset: int
    limit: int
    next_cursor: str | None = None


@dataclass(slots=True)
class LayerDetail:
    layer: Layer
    versions: list[LayerVersion]  # newest first, without their content
    used_by: list[LayerUser] = field(default_factory=list)


class LayerService:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        settings: Settings,
        builder: LayerBuilder,
        *,
        on_retire: Callable[[str], Any] | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._settings = settings
        self.builder = builder
        self._on_retire = on_retire

    # --- reads ------------------------------------------------------------------------------------

    async def list(
        self,
        principal: Principal,
        *,
        search: str | None = None,
        runtime: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        cursor: str | None = None,
    ) -> LayerPage:
        """Newest first. `offset` is the original API's paging; `cursor` (next_cursor) does not slow
        down as the list grows. Each page is three queries, whatever its size."""
        if offset < 0:
            raise Invalid("offset", "offset must be 0 or more")
        limit = clamp_limit(limit)
        stmt = select(Layer)
        if search:
            stmt = stmt.where(sqlfunc.lower(Layer.name).contains(search.lower(), autoescape=True))
        if runtime:
            stmt = stmt.where(self._for_runtime(runtime))
        async with self._db.session() as session:
            total = int(
                (await session.execute(select(sqlfunc.count()).select_from(stmt.subquery()))).scalar_one()
            )
            if cursor:
                stmt = stmt.where(Layer.id < decode_cursor(cursor).id)
            elif offset:
                stmt = stmt.offset(offset)
            layers = list((await session.execute(stmt.order_by(Layer.id.desc()).limit(limit + 1))).scalars())
            more = len(layers) > limit
            layers = layers[:limit]
            latest = await self._latest_versions(session, layers)
            used = await self._use_counts(session, [layer.id for layer in layers])
        items = [LayerSummary(layer, latest.get(layer.id), used.get(layer.id, 0)) for layer in layers]
        next_cursor = encode_cursor(layers[-1].id) if more and layers else None
        return LayerPage(items, total, offset, limit, next_cursor)

    def _for_runtime(self, runtime: str) -> ColumnElement[bool]:
        """`runtime` is in the layer's JSON list of compatible runtimes (in SQL, so pages stay full)."""
        if self._db.is_sqlite:
            clause = (
                "EXISTS (SELECT 1 FROM json_each(layers.compatible_runtimes) WHERE json_each.value = :rt)"
            )
            return text(clause).bindparams(rt=runtime)  # type: ignore[return-value]
        return text("CAST(layers.compatible_runtimes AS jsonb) @> CAST(:rts AS jsonb)").bindparams(  # type: ignore[return-value]
            rts=json.dumps([runtime])
        )

    async def get(self, principal: Principal, ref: str) -> LayerDetail:
        async with self._db.session() as session:
            layer = await self._load(session, ref)
            rows = await session.execute(
                select(LayerVersion)
                .options(defer(LayerVersion.content), defer(LayerVersion.build_log))
                .where(LayerVersion.layer_id == layer.id)
                .order_by(LayerVersion.version.desc())
                .limit(1000)
            )
            versions = list(rows.scalars())
            users = await self._users(session, layer.id)
        return LayerDetail(layer, versions, users)

    async def version(self, principal: Principal, ref: str, number: int) -> LayerVersion:
        """One version with its build log (live, when it is building on this node); no content."""
        async with self._db.session() as session:
            layer = await self._load(session, ref)
            version = (
                await session.execute(
                    select(LayerVersion)
                    .options(defer(LayerVersion.content))
                    .where(LayerVersion.layer_id == layer.id, LayerVersion.version == number)
                )
            ).scalar_one_or_none()
        if version is None:
            raise NotFound(f"version {number} of layer {layer.name!r} not found", field="version")
        live = self.builder.live_log(version.id) if version.status == "building" else None
        if live is not None:
            version.build_log = live
        return version

    async def count(self) -> int:
        async with self._db.session() as session:
            return int((await session.execute(select(sqlfunc.count()).select_from(Layer))).scalar_one())

    # --- writes -----------------------------------------------------------------------------------

    async def create(self, principal: Principal, data: LayerCreate) -> Layer:
        self._require_writer(principal)
        layer = Layer(
            name=data.name,
            description=data.description,
            compatible_runtimes=data.compatible_runtimes,
            created_by=principal.actor,
        )
        try:
            async with self._db.transaction() as session:
                if await self._find(session, data.name) is not None:
                    raise Conflict(f"a layer named {data.name!r} already exists", field="name")
                session.add(layer)
                await session.flush()
                self._audit.record(
                    session,
                    principal,
                    "layer.create",
                    resource_type="layer",
                    resource_id=layer.id,
                    resource_name=layer.name,
                    after={
                        "compatible_runtimes": layer.compatible_runtimes,
                        "description": layer.description,
                    },
                )
                self._changed(session, layer, "created")
        except IntegrityError as exc:  # a concurrent create won the unique index
            raise Conflict(f"a layer named {data.name!r} already exists", field="name") from exc
        return layer

    async def delete(self, principal: Principal, ref: str, *, force: bool = False) -> None:
        """Delete a layer and all its versions. While functions use it: 409, unless `force`, which
        detaches it from them (their published versions that mount it then fail to start, saying so)."""
        self._require_writer(principal)
        async with self._db.transaction() as session:
            layer = await self._load(session, ref)
            users = await self._users(session, layer.id)
            if users and not force:
                names = ", ".join(sorted(u.function_name for u in users))
                raise Conflict(f"layer {layer.name!r} is attached to {len(users)} function(s): {names}")
            self._audit.record(
                session,
                principal,
                "layer.delete",
                resource_type="layer",
                resource_id=layer.id,
                resource_name=layer.name,
                before={"latest_version": layer.latest_version},
                details={"forced": force, "detached_from": [u.function_name for u in users]}
                if users
                else None,
            )
            await session.delete(layer)  # versions and attachments go with it (ON DELETE CASCADE)
            self._changed(session, layer, "deleted")
            for user in users:
                self._function_changed(session, user.function_id, user.function_name)

    async def add_zip(self, principal: Principal, ref: str, data: bytes) -> LayerVersion:
        """A new version from an uploaded zip: checked (zip slip, symlinks, size) and ready at once."""
        self._require_writer(principal)
        info = await asyncio.to_thread(check_zip, data, max_bytes=self._settings.max_layer_bytes)
        version = LayerVersion(
            layer_id="",
            version=0,
            source="zip",
            status="ready",
            content=data,
            content_hash=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            file_count=info.file_count,
            created_by=principal.actor,
            finished_at=utcnow(),
        )
        await self._add_version(principal, ref, version, "version_added")
        return version

    async def add_build(self, principal: Principal, ref: str, source: str, manifest: str) -> LayerVersion:
        """A new version built from requirements.txt (`pip`) or package.json (`npm`): committed as
        building and built in the background; LayerChanged says when it is ready or failed."""
        self._require_writer(principal)
        if source not in SOURCES:
            raise Invalid("source", f"a layer is built with pip or npm, not {source!r}")
        field_name, runtime = SOURCES[source]
        manifest = check_requirements(manifest) if source == "pip" else check_package_json(manifest)
        if source == "npm" and npm_path() is None:
            raise Unavailable("npm is not installed on this node", field=field_name)
        version = LayerVersion(
            layer_id="",
            version=0,
            source=source,
            manifest=manifest,
            status="building",
            created_by=principal.actor,
        )
        layer = await self._add_version(principal, ref, version, "building", runtime=(runtime, field_name))
        self.builder.submit(
            BuildJob(version.id, layer.id, layer.name, version.version, source, manifest),
        )
        return version

    async def _add_version(
        self,
        principal: Principal,
        ref: str,
        version: LayerVersion,
        action: str,
        runtime: tuple[str, str] | None = None,
    ) -> Layer:
        try:
            return await self._insert_version(principal, ref, version, action, runtime)
        except IntegrityError as exc:  # SQLite: another version of this layer was added at the same time
            raise Conflict("another version of this layer was added at the same moment; try again") from exc

    async def _insert_version(
        self,
        principal: Principal,
        ref: str,
        version: LayerVersion,
        action: str,
        runtime: tuple[str, str] | None,
    ) -> Layer:
        async with self._db.transaction() as session:
            layer = await self._load(session, ref, for_update=True)
            if runtime is not None and runtime[0] not in layer.compatible_runtimes:
                raise Invalid(
                    runtime[1],
                    f"layer {layer.name!r} is for {', '.join(layer.compatible_runtimes)}; "
                    f"a {version.source} build makes a {runtime[0]} layer",
                )
            layer.latest_version += 1
            layer.updated_at = utcnow()
            version.layer_id, version.version = layer.id, layer.latest_version
            session.add_all([layer, version])
            await session.flush()
            self._audit.record(
                session,
                principal,
                "layer.publish",
                resource_type="layer",
                resource_id=layer.id,
                resource_name=layer.name,
                after={
                    "version": version.version,
                    "source": version.source,
                    "status": version.status,
                    "content_hash": version.content_hash,
                    "size_bytes": version.size_bytes,
                },
            )
            self._changed(session, layer, action, version.version)
        return layer

    # --- helpers ----------------------------------------------------------------------------------

    def _require_writer(self, principal: Principal) -> None:
        if not principal.can("developer"):
            raise Forbidden("changing layers needs the developer or admin role")

    def _changed(self, session: AsyncSession, layer: Layer, action: str, version: int = 0) -> None:
        event = LayerChanged(layer_id=layer.id, layer_name=layer.name, action=action, version=version)
        session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))

    def _function_changed(self, session: AsyncSession, function_id: str, name: str) -> None:
        """A function lost a layer: caches forget its spec and its warm workers retire (after commit)."""
        event = FunctionChanged(function_id=function_id, function_name=name, action="updated")
        callbacks = session.info.setdefault("after_commit", [])
        callbacks.append(lambda: self._bus.publish(event))
        if self._on_retire is not None:
            retire = self._on_retire
            callbacks.append(lambda: retire(function_id))

    async def _find(self, session: AsyncSession, ref: str) -> Layer | None:
        row = await session.execute(select(Layer).where(or_(Layer.id == ref, Layer.name == ref)))
        return row.scalars().first()

    async def _load(self, session: AsyncSession, ref: str, for_update: bool = False) -> Layer:
        stmt = select(Layer).where(or_(Layer.id == ref, Layer.name == ref))
        if for_update and not self._db.is_sqlite:
            stmt = stmt.with_for_update()
        layer = (await session.execute(stmt)).scalars().first()
        if layer is None:
            raise NotFound(f"layer not found: {ref}")
        return layer

    async def _users(self, session: AsyncSession, layer_id: str) -> list[LayerUser]:
        rows = await session.execute(
            select(FunctionLayer.function_id, Function.name, FunctionLayer.layer_version)
            .join(Function, Function.id == FunctionLayer.function_id)
            .where(FunctionLayer.layer_id == layer_id)
            .order_by(Function.name)
        )
        return [LayerUser(fid, name, number) for fid, name, number in rows.all()]

    async def _latest_versions(self, session: AsyncSession, layers: list[Layer]) -> dict[str, LayerVersion]:
        pairs = [(layer.id, layer.latest_version) for layer in layers if layer.latest_version]
        if not pairs:
            return {}
        rows = await session.execute(
            select(LayerVersion)
            .options(defer(LayerVersion.content), defer(LayerVersion.build_log))
            .where(or_(*[(LayerVersion.layer_id == lid) & (LayerVersion.version == n) for lid, n in pairs]))
        )
        return {v.layer_id: v for v in rows.scalars()}

    async def _use_counts(self, session: AsyncSession, layer_ids: list[str]) -> dict[str, int]:
        if not layer_ids:
            return {}
        rows = await session.execute(
            select(FunctionLayer.layer_id, sqlfunc.count())
            .where(FunctionLayer.layer_id.in_(layer_ids))  # type: ignore[attr-defined]
            .group_by(FunctionLayer.layer_id)
        )
        return {lid: int(n) for lid, n in rows.all()}
