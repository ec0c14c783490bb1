"""Which layer versions a function mounts, in order (at most 5): reading and replacing a function's list
(only ready versions of layers compatible with its runtime), and the queries FunctionService uses to
put the mounts in a spec, snapshot them into a published version, and restore them on rollback. A Rust
function with crates is built with its new layers before they are saved (they vendor its crates)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import Function, FunctionLayer, FunctionVersion, Layer, LayerVersion
from data.types import utcnow
from engine.bus import LocalBus
from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.events import FunctionChanged
from engine.principal import Principal
from engine.runtimes.base import LayerMount
from engine.services.audit import AuditService
from engine.services.layer_schemas import MAX_LAYERS, LayerRef

if TYPE_CHECKING:
    from engine.builds.service import BuildService


@dataclass(frozen=True, slots=True)
class AttachedLayer:
    layer_id: str
    layer_name: str
    layer_version: int
    order: int
    status: str = "ready"
    size_bytes: int = 0


@dataclass(frozen=True, slots=True)
class LayerChoice:
    """A layer a function of some runtime may attach, with its ready versions (newest first)."""

    layer_id: str
    layer_name: str
    versions: tuple[int, ...]


class FunctionLayerService:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        *,
        on_retire: Callable[[str], Any] | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._on_retire = on_retire
        self.builder: BuildService | None = None  # set by the platform: Rust builds use their layers

    async def list(self, principal: Principal, ref: str) -> list[AttachedLayer]:
        async with self._db.session() as session:
            fn = await _function(session, ref)
            return await _attached(session, fn.id)

    async def choices(self, principal: Principal, runtime: str) -> list[LayerChoice]:
        """Layers compatible with `runtime` that have a ready version (what the console offers)."""
        async with self._db.session() as session:
            rows = await session.execute(
                select(Layer.id, Layer.name, Layer.compatible_runtimes, LayerVersion.version)
                .join(LayerVersion, LayerVersion.layer_id == Layer.id)
                .where(LayerVersion.status == "ready")
                .order_by(Layer.name, LayerVersion.version.desc())
                .limit(5000)
            )
            found: dict[str, tuple[str, list[int]]] = {}
            for layer_id, name, runtimes, number in rows.all():
                if runtime in runtimes:
                    found.setdefault(layer_id, (name, []))[1].append(number)
        return [LayerChoice(lid, name, tuple(numbers)) for lid, (name, numbers) in found.items()]

    async def set(self, principal: Principal, ref: str, refs: list[LayerRef]) -> list[AttachedLayer]:
        """Replace the function's layers with `refs`, mounted in this order. Errors name the entry:
        layers[i].layer_id / layers[i].layer_version."""
        if not principal.can("developer"):
            raise Forbidden("changing a function's layers needs the developer or admin role")
        if len(refs) > MAX_LAYERS:
            raise Invalid("layers", f"a function may use at most {MAX_LAYERS} layers, not {len(refs)}")
        await self._build_with(principal, ref, refs)
        async with self._db.transaction() as session:
            fn = await _function(session, ref)
            chosen = await self._resolve(session, fn, refs)
            before = await _attached(session, fn.id)
            if [(a.layer_id, a.layer_version) for a in before] == [(lid, n) for lid, _, n in chosen]:
                return before
            await session.execute(delete(FunctionLayer).where(FunctionLayer.function_id == fn.id))
            session.add_all(
                FunctionLayer(function_id=fn.id, layer_id=lid, layer_version=n, position=i)
                for i, (lid, _, n) in enumerate(chosen)
            )
            fn.version += 1  # $LATEST changed: a new revision, like any other change of the function
            fn.updated_at = utcnow()
            session.add(fn)
            await session.flush()
            self._audit.record(
                session,
                principal,
                "function.layers",
                resource_type="function",
                resource_id=fn.id,
                resource_name=fn.name,
                before=[f"{a.layer_name}:{a.layer_version}" for a in before],
                after=[f"{name}:{n}" for _, name, n in chosen],
            )
            self._after_commit(session, fn)
            return await _attached(session, fn.id)

    async def _build_with(self, principal: Principal, ref: str, refs: list[LayerRef]) -> None:
        """Build a Rust function with the layers it is about to get, before any transaction (a compile
        takes seconds): a failed build refuses the change with BuildFailed, as a failed code save does."""
        if self.builder is None:
            return
        async with self._db.session() as session:
            fn = await _function(session, ref)
            if not self.builder.uses_layers(fn.runtime, fn.files):
                return
            chosen = await self._resolve(session, fn, refs)
            before = await _attached(session, fn.id)
            if [(a.layer_id, a.layer_version) for a in before] == [(lid, n) for lid, _, n in chosen]:
                return
            hashes = await _content_hashes(session, [(lid, n) for lid, _, n in chosen])
        mounts = [LayerMount(lid, name, n, hashes.get((lid, n), "")) for lid, name, n in chosen]
        await self.builder.build_for_deploy(
            principal,
            function_id=fn.id,
            function_name=fn.name,
            runtime=fn.runtime,
            handler=fn.handler,
            files=fn.files,
            layers=mounts,
        )

    async def _resolve(
        self, session: AsyncSession, fn: Function, refs: list[LayerRef]
    ) -> list[tuple[str, str, int]]:
        """(layer id, name, version) for each ref, checked: it exists, is ready and fits the runtime."""
        if not refs:
            return []
        keys = {r.layer_id for r in refs}
        rows = await session.execute(select(Layer).where(or_(Layer.id.in_(keys), Layer.name.in_(keys))))  # type: ignore[attr-defined]
        layers = list(rows.scalars())
        by_ref = {layer.id: layer for layer in layers} | {layer.name: layer for layer in layers}
        resolved: list[tuple[Layer, int]] = []
        for i, r in enumerate(refs):
            layer = by_ref.get(r.layer_id)
            if layer is None:
                raise NotFound(f"layer not found: {r.layer_id}", field=f"layers[{i}].layer_id")
            if any(layer.id == seen.id for seen, _ in resolved):
                raise Invalid(f"layers[{i}].layer_id", f"layer {layer.name!r} is listed twice")
            if fn.runtime not in layer.compatible_runtimes:
                raise Invalid(
                    f"layers[{i}].layer_id",
                    f"layer {layer.name!r} is for {', '.join(layer.compatible_runtimes)}, "
                    f"not for {fn.name!r}'s runtime {fn.runtime}",
                )
            resolved.append((layer, r.layer_version))
        status = await _statuses(session, [(layer.id, n) for layer, n in resolved])
        for i, (layer, number) in enumerate(resolved):
            state = status.get((layer.id, number))
            if state is None:
                raise NotFound(
                    f"layer {layer.name!r} has no version {number}", field=f"layers[{i}].layer_version"
                )
            if state != "ready":
                raise Conflict(
                    f"version {number} of layer {layer.name!r} is {state}, not ready",
                    field=f"layers[{i}].layer_version",
                )
        return [(layer.id, layer.name, n) for layer, n in resolved]

    def _after_commit(self, session: AsyncSession, fn: Function) -> None:
        """Caches forget the function's spec and its warm workers (old mounts) retire."""
        event = FunctionChanged(function_id=fn.id, function_name=fn.name, action="updated")
        callbacks = session.info.setdefault("after_commit", [])
        callbacks.append(lambda: self._bus.publish(event))
        if self._on_retire is not None:
            retire, fid = self._on_retire, fn.id
            callbacks.append(lambda: retire(fid))


# --- used by FunctionService ------------------------------------------------------------------------


async def attached_mounts(
    db: Database, function_id: str, version: FunctionVersion | None = None
) -> tuple[LayerMount, ...]:
    """The mounts of $LATEST (function_layers) or of a published version (its snapshot): one query, none
    for a version published without layers. A layer deleted since gives a mount without content, which
    the store refuses with a message naming it."""
    if version is not None and not version.layers:
        return ()
    async with db.session() as session:
        if version is None:
            rows = await session.execute(
                select(
                    FunctionLayer.layer_id, Layer.name, FunctionLayer.layer_version, LayerVersion.content_hash
                )
                .join(Layer, Layer.id == FunctionLayer.layer_id)
                .join(LayerVersion, _is_attached_version())
                .where(FunctionLayer.function_id == function_id)
                .order_by(FunctionLayer.position)
            )
            return tuple(LayerMount(lid, name, number, digest) for lid, name, number, digest in rows.all())
        wanted = [(str(s["layer_id"]), int(s["layer_version"])) for s in version.layers]
        rows = await session.execute(
            select(LayerVersion.layer_id, Layer.name, LayerVersion.version, LayerVersion.content_hash)
            .join(Layer, Layer.id == LayerVersion.layer_id)
            .where(or_(*[and_(LayerVersion.layer_id == lid, LayerVersion.version == n) for lid, n in wanted]))
        )
        found = {(lid, number): (name, digest) for lid, name, number, digest in rows.all()}
    names = {str(s["layer_id"]): str(s.get("layer_name") or s["layer_id"]) for s in version.layers}
    return tuple(
        LayerMount(lid, found.get((lid, n), (names[lid], ""))[0], n, found.get((lid, n), ("", ""))[1])
        for lid, n in wanted
    )


async def layer_snapshot(session: AsyncSession, function_id: str) -> list[dict[str, Any]]:
    """The function's attached layers as a published version keeps them."""
    return [
        {"layer_id": a.layer_id, "layer_name": a.layer_name, "layer_version": a.layer_version}
        for a in await _attached(session, function_id)
    ]


async def restore_layers(session: AsyncSession, function_id: str, snapshot: list[dict[str, Any]]) -> None:
    """Make a version's layers the working copy's again (rollback); layers deleted since are left out."""
    await session.execute(delete(FunctionLayer).where(FunctionLayer.function_id == function_id))
    wanted = [(str(s["layer_id"]), int(s["layer_version"])) for s in snapshot]
    present = await _statuses(session, wanted)
    session.add_all(
        FunctionLayer(function_id=function_id, layer_id=lid, layer_version=n, position=i)
        for i, (lid, n) in enumerate(pair for pair in wanted if pair in present)
    )


# --- queries ----------------------------------------------------------------------------------------


def _is_attached_version() -> Any:
    return and_(
        LayerVersion.layer_id == FunctionLayer.layer_id, LayerVersion.version == FunctionLayer.layer_version
    )


async def _function(session: AsyncSession, ref: str) -> Function:
    fn = (
        (await session.execute(select(Function).where(or_(Function.id == ref, Function.name == ref))))
        .scalars()
        .first()
    )
    if fn is None:
        raise NotFound(f"function not found: {ref}")
    return fn


async def _attached(session: AsyncSession, function_id: str) -> list[AttachedLayer]:
    rows = await session.execute(
        select(
            FunctionLayer.layer_id,
            Layer.name,
            FunctionLayer.layer_version,
            FunctionLayer.position,
            LayerVersion.status,
            LayerVersion.size_bytes,
        )
        .join(Layer, Layer.id == FunctionLayer.layer_id)
        .join(LayerVersion, _is_attached_version())
        .where(FunctionLayer.function_id == function_id)
        .order_by(FunctionLayer.position)
    )
    return [AttachedLayer(lid, name, n, pos, status, size) for lid, name, n, pos, status, size in rows.all()]


async def _content_hashes(session: AsyncSession, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    if not pairs:
        return {}
    rows = await session.execute(
        select(LayerVersion.layer_id, LayerVersion.version, LayerVersion.content_hash).where(
            or_(*[and_(LayerVersion.layer_id == lid, LayerVersion.version == n) for lid, n in pairs])
        )
    )
    return {(lid, n): digest for lid, n, digest in rows.all()}


async def _statuses(session: AsyncSession, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    if not pairs:
        return {}
    rows = await session.execute(
        select(LayerVersion.layer_id, LayerVersion.version, LayerVersion.status).where(
            or_(*[and_(LayerVersion.layer_id == lid, LayerVersion.version == n) for lid, n in pairs])
        )
    )
    return {(lid, n): status for lid, n, status in rows.all()}
