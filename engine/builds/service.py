"""Builds of Go and Rust functions: the Build records (status building → succeeded | failed, log, first
error, duration), their events (BuildStarted, one BuildLog per line, BuildFinished) and audit, the cache
check, and one compile per artifact however many ask for it at once (singleflight).

Two callers: FunctionService builds new code before committing it (`build_for_deploy`: a failed build
refuses the change with BuildFailed, a 422 naming the compiler's message and line), and the native
runtime asks for an artifact when it starts a worker (`artifact`: built on demand when this node's cache
lacks it, e.g. on another node or after a toolchain upgrade). A third: changing the layers of a Rust
function with a Cargo.toml (engine/services/layer_attach.py) builds it with them first: its crates come
from them. The layers of a build are the spec's, the caller's, or else the function's attached ones;
their trees come from the layer store (`layer_source`, set by the platform)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import defer

from data.db import Database
from data.models import Build
from data.repos.pagination import Page, paginate
from data.types import utcnow
from engine.builds import crates
from engine.builds.cache import ArtifactCache
from engine.builds.compiler import BUILD_TIMEOUT_SEC, Compiled, Compiler
from engine.builds.sources import cache_key, check, files_hash
from engine.builds.toolchains import CARGO_MISSING, Toolchain
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import Invalid, NimbusError, NotFound, Unavailable
from engine.events import BuildFinished, BuildLog, BuildStarted
from engine.principal import SYSTEM, Principal
from engine.runtimes.base import ErrorInfo, FunctionSpec, InitError, LayerMount
from engine.services.audit import AuditService
from engine.services.layer_attach import attached_mounts

MAX_PARALLEL = 2  # compiles at once on this node (the box has 2 cores)
INIT_LOG_TAIL = 8192  # of a failed build's log, shown as the logs of the invocation that needed it


class BuildFailed(Invalid):
    """New code did not compile: 422 on `code`, saying the compiler's first error with its line; the
    response also names the Build that keeps the whole log."""

    def __init__(self, build: Build) -> None:
        super().__init__("code", f"build failed: {build.error or 'see the build log'}")
        self.build_id = build.id
        self.error = build.error

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        inner = body["error"]
        assert isinstance(inner, dict)
        inner["build_id"] = self.build_id
        return body


@dataclass(frozen=True, slots=True)
class BuildRequest:
    function_id: str
    function_name: str
    runtime: str
    handler: str
    files: Mapping[str, str] = field(repr=False)
    layers: tuple[LayerMount, ...] = ()  # in mount order; a Rust build's key has their content hashes


class BuildService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        toolchains: Mapping[str, Toolchain],
        *,
        timeout_sec: float = BUILD_TIMEOUT_SEC,
        max_parallel: int = MAX_PARALLEL,
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self.toolchains = dict(toolchains)
        self.cache = ArtifactCache(settings.data_dir / "builds")
        self.compiler = Compiler(settings, self.cache, timeout_sec=timeout_sec)
        self._slots = asyncio.Semaphore(max_parallel)
        self._flights: dict[str, asyncio.Future[Compiled]] = {}
        self.layer_source: Callable[[LayerMount], Awaitable[Path]] | None = None  # the layer store's

    # --- what other services call ----------------------------------------------------------------------

    def builds(self, runtime: str) -> bool:
        """Whether `runtime` is compiled here (go/rust with its toolchain present)."""
        toolchain = self.toolchains.get(runtime)
        return toolchain is not None and toolchain.available

    async def build_for_deploy(
        self,
        principal: Principal,
        *,
        function_id: str,
        function_name: str,
        runtime: str,
        handler: str,
        files: Mapping[str, str],
        layers: Sequence[LayerMount] | None = None,
    ) -> Build | None:
        """Compile code about to be saved; raises BuildFailed (nothing may be saved) when it does not
        build. None for runtimes that are not compiled on this node. `layers` None: the function's
        attached layers (none for a function not yet created)."""
        if not self.builds(runtime):
            return None
        if layers is None:
            layers = await attached_mounts(self._db, function_id) if self.uses_layers(runtime, files) else ()
        request = BuildRequest(function_id, function_name, runtime, handler, files, tuple(layers))
        build = await self.build(principal, request)
        if build.status != "succeeded":
            raise BuildFailed(build)
        return build

    async def artifact(self, spec: FunctionSpec) -> Path:
        """The compiled program of `spec` (built now if this node's cache lacks it); InitError when it
        does not build."""
        toolchain = self._toolchain(spec.runtime)
        try:
            key = self._key(toolchain, spec.handler, spec.files, spec.layers)
            if self.cache.has(spec.runtime, key):
                return self.cache.path(spec.runtime, key)
            request = BuildRequest(
                spec.function_id, spec.name, spec.runtime, spec.handler, spec.files, spec.layers
            )
            build = await self.build(SYSTEM, request)
        except Invalid as exc:
            raise InitError(ErrorInfo("BuildFailed", exc.message)) from None
        if build.status != "succeeded" or not self.cache.has(spec.runtime, key):
            info = ErrorInfo("BuildFailed", f"build failed: {build.error or 'see the build log'}")
            raise InitError(info, logs=build.log[-INIT_LOG_TAIL:])
        return self.cache.path(spec.runtime, key)

    async def build(self, principal: Principal, request: BuildRequest) -> Build:
        """Compile `request` unless its artifact is cached; record the Build either way."""
        toolchain = self._toolchain(request.runtime)
        check(request.runtime, request.handler, request.files)
        if request.runtime == "rust" and crates.uses_cargo(request.files) and not toolchain.cargo:
            raise Invalid(
                "files", f"{CARGO_MISSING}: a Rust function with a Cargo.toml (crates) cannot build here"
            )
        key = self._key(toolchain, request.handler, request.files, request.layers)
        row = Build(
            function_id=request.function_id,
            function_name=request.function_name,
            runtime=request.runtime,
            code_hash=files_hash(request.files),
            created_by=principal.actor,
        )
        if self.cache.has(request.runtime, key):
            row.log = f"nothing to compile: artifact {key[:16]} is in the build cache ({toolchain.version})"
            return await self._save(principal, row, "succeeded", cached=True, duration_ms=0.0)
        await self._start(row)
        started = time.perf_counter()
        try:
            compiled, shared = await self._flight(key, toolchain, request, row)
        except asyncio.CancelledError:
            row.log, duration = "build interrupted", (time.perf_counter() - started) * 1000
            ending = self._save(principal, row, "failed", error="interrupted", duration_ms=duration)
            await asyncio.shield(ending)
            raise
        except (NimbusError, OSError) as exc:
            why = exc.message if isinstance(exc, NimbusError) else f"the build could not run: {exc}"
            row.log, duration = why, (time.perf_counter() - started) * 1000
            return await self._save(principal, row, "failed", error=why, duration_ms=duration)
        row.log = compiled.log
        if shared:
            row.log = f"(compiled once for several requests at the same time)\n{compiled.log}"
        status = "succeeded" if compiled.ok else "failed"
        duration = (time.perf_counter() - started) * 1000
        return await self._save(
            principal, row, status, error=compiled.error, cached=shared and compiled.ok, duration_ms=duration
        )

    # --- reads -----------------------------------------------------------------------------------------

    async def list(
        self, principal: Principal, function_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Build]:
        """A function's builds, newest first, without their logs (`get` has the log)."""
        stmt = select(Build).where(Build.function_id == function_id).options(defer(Build.log))  # type: ignore[arg-type]
        async with self._db.session() as session:
            return await paginate(session, stmt, Build.id, cursor=cursor, limit=limit)

    async def get(self, principal: Principal, build_id: str) -> Build:
        async with self._db.session() as session:
            build = await session.get(Build, build_id)
        if build is None:
            raise NotFound(f"build not found: {build_id}")
        return build

    # --- helpers ---------------------------------------------------------------------------------------

    def uses_layers(self, runtime: str, files: Mapping[str, str]) -> bool:
        """Whether the function's layers are part of its build (a Rust function with a Cargo.toml: its
        crates come from them), so that changing them must build it again."""
        return self.builds(runtime) and runtime == "rust" and crates.uses_cargo(files)

    @staticmethod
    def _key(
        toolchain: Toolchain, handler: str, files: Mapping[str, str], layers: Sequence[LayerMount]
    ) -> str:
        return cache_key(toolchain, handler, files, [layer.content_hash for layer in layers])

    async def _trees(self, request: BuildRequest) -> list[Path]:
        """The unpacked trees of a cargo build's layers; Invalid on `layers` when one is unavailable."""
        if request.runtime != "rust" or not request.layers or not crates.uses_cargo(request.files):
            return []
        if self.layer_source is None:
            raise Invalid("layers", "layers are not available to builds on this node")
        trees = []
        for mount in request.layers:
            try:
                trees.append(await self.layer_source(mount))
            except InitError as exc:
                raise Invalid("layers", exc.info.message) from None
        return trees

    def _toolchain(self, runtime: str) -> Toolchain:
        toolchain = self.toolchains.get(runtime)
        if toolchain is None:
            raise Invalid("runtime", f"runtime {runtime!r} is not built by Nimbus")
        if not toolchain.available:
            raise Unavailable(f"cannot build {runtime} on this node: {toolchain.detail}")
        return toolchain

    async def _flight(
        self, key: str, toolchain: Toolchain, request: BuildRequest, row: Build
    ) -> tuple[Compiled, bool]:
        """Compile once per key: a request for an artifact being compiled waits for that compile's
        outcome (True: it compiled nothing itself). When that compile was cancelled, it tries again."""
        while (running := self._flights.get(key)) is not None:
            try:
                return await asyncio.shield(running), True
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not running.cancelled() or (task is not None and task.cancelling()):
                    raise  # we were cancelled ourselves
        future: asyncio.Future[Compiled] = asyncio.get_running_loop().create_future()
        self._flights[key] = future

        def line(text: str) -> None:
            self._bus.publish(
                BuildLog(
                    build_id=row.id, function_id=row.function_id, function_name=row.function_name, line=text
                )
            )

        try:
            trees = await self._trees(request)
            async with self._slots:
                compiled = await self.compiler.compile(
                    toolchain, request.handler, request.files, key, line, trees
                )
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody may be waiting
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(compiled)
            return compiled, False
        finally:
            self._flights.pop(key, None)

    async def _start(self, row: Build) -> None:
        event = BuildStarted(
            build_id=row.id, function_id=row.function_id, function_name=row.function_name, runtime=row.runtime
        )
        async with self._db.transaction() as session:
            session.add(row)
            session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))

    async def _save(
        self,
        principal: Principal,
        row: Build,
        status: str,
        *,
        error: str = "",
        cached: bool = False,
        duration_ms: float | None = None,
    ) -> Build:
        """Record how the build ended (inserting the row when it was never started), audited."""
        row.status, row.error, row.cached = status, error, cached
        row.duration_ms = round(duration_ms, 3) if duration_ms is not None else None
        row.finished_at = utcnow()
        event = BuildFinished(
            build_id=row.id,
            function_id=row.function_id,
            function_name=row.function_name,
            runtime=row.runtime,
            status=status,
            error=error,
            cached=cached,
            duration_ms=row.duration_ms,
        )
        details: dict[str, Any] = {"build_id": row.id, "status": status, "cached": cached}
        if error:
            details["error"] = error
        async with self._db.transaction() as session:
            saved = await session.merge(row)
            self._audit.record(
                session,
                principal,
                "function.build",
                resource_type="function",
                resource_id=row.function_id,
                resource_name=row.function_name,
                details=details,
            )
            session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))
        return saved
