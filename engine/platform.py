"""The Platform: every service, built from Settings, started and stopped on one AsyncExitStack.
Both faces (API and console) hold one of these and call its services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform as host
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from data.batcher import Batcher
from data.db import Database
from data.migrate import migrate
from engine.builds.service import BuildService
from engine.builds.toolchains import find_toolchains
from engine.bus import LocalBus
from engine.config import Settings
from engine.invoke.catalog import Catalog
from engine.invoke.consumer import QueueConsumer
from engine.invoke.invoker import Invoker
from engine.pool import WorkerPool
from engine.prewarm import Prewarmer
from engine.queue import make_queue
from engine.rollups import Rollups
from engine.runtimes.base import Isolation, Runtime, RuntimeInfo
from engine.runtimes.docker_executor import DockerRuntime, detect_docker
from engine.runtimes.native import NativeRuntime
from engine.runtimes.node import NodeRuntime
from engine.runtimes.python import PythonRuntime
from engine.runtimes.wasm import WasmRuntime
from engine.schedule_targets import TargetRegistry, function_kind
from engine.scheduler import Scheduler
from engine.secrets import SecretBox, load_or_create_key
from engine.services.audit import AuditService
from engine.services.auth import AuthService
from engine.services.deployments import DeploymentService
from engine.services.dlq import DlqService
from engine.services.environments import EnvironmentService
from engine.services.functions import FunctionService
from engine.services.invocations import InvocationService
from engine.services.layer_attach import FunctionLayerService
from engine.services.layer_builds import LayerBuilder
from engine.services.layer_store import LayerStore
from engine.services.layers import LayerService
from engine.services.logs import LogService
from engine.services.metrics import MetricsService
from engine.services.quotas import QuotaService
from engine.services.retention import RetentionService
from engine.services.schedules import ScheduleService
from engine.services.setting_specs import (
    API_KEY_EXPIRY_DAYS,
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    MAX_CODE_SIZE,
    MAX_CONCURRENCY,
)
from engine.services.settings import SettingsService
from engine.services.templates import builtin_gallery
from engine.services.test_events import TestEventService
from engine.services.webhook_targets import function_target
from engine.services.webhooks import WebhookService
from engine.services.workflow_targets import workflow_kind, workflow_target
from engine.services.workflows import WorkflowService
from engine.workflows.runner import Runner

VERSION = "0.1.0"
log = logging.getLogger("nimbus")


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.bus = LocalBus()
        self.secret_key = load_or_create_key(settings)
        self.secrets = SecretBox(self.secret_key)
        self.audit = AuditService(self.db, self.bus)
        # Runtime settings (the Settings page); `self.settings` stays the start-up configuration.
        self.system_settings = SettingsService(self.db, self.bus, self.audit, settings)
        self.auth = AuthService(self.db, self.audit, settings, self.secret_key)
        self.auth.keys.default_expiry_days = lambda: int(self.system_settings.get(API_KEY_EXPIRY_DAYS))
        self.batcher = Batcher(
            self.db, max_rows=settings.batch_max_rows, max_delay_ms=settings.batch_max_delay_ms
        )
        self.queue = make_queue(self.db)
        self.runtimes: dict[str, Runtime] = {"python": PythonRuntime(settings)}
        self.runtime_infos: dict[str, RuntimeInfo] = {}  # every runtime, available here or not (and why)
        self._add_runtime(NodeRuntime(self.runtimes["python"]))  # type: ignore[arg-type]
        self.builds = BuildService(settings, self.db, self.bus, self.audit, find_toolchains())
        for language in ("go", "rust"):
            self._add_runtime(NativeRuntime(self.runtimes["python"], self.builds, language))  # type: ignore[arg-type]
        self._add_runtime(WasmRuntime(settings))  # in-process wasmtime: no sandbox process needed
        self.pool = WorkerPool(settings, self.runtimes)
        self.pool.executors["docker"] = DockerRuntime(self.runtimes["python"])  # type: ignore[arg-type]
        self.system_settings.watch(MAX_CONCURRENCY, self.pool.set_max_concurrency)
        self._background: set[asyncio.Task[Any]] = set()
        self.functions = FunctionService(
            self.db,
            self.bus,
            self.audit,
            self.secrets,
            available_runtimes=lambda: set(self.runtimes),
            max_code_bytes=lambda: int(self.system_settings.get(MAX_CODE_SIZE)) * 1024,
            on_retire=self._retire,
            defaults=lambda: {
                "memory_mb": self.system_settings.get(DEFAULT_MEMORY),
                "timeout_sec": self.system_settings.get(DEFAULT_TIMEOUT),
            },
        )
        self.functions.builder = self.builds  # go/rust code is compiled before it is saved
        self.environments = EnvironmentService(self.db, self.bus, self.audit, self.secrets)
        self.deployments = DeploymentService(self.db, self.bus, self.audit, self.secrets, self.functions)
        self.catalog = Catalog(self.functions, self.bus, self.deployments)
        self.prewarmer = Prewarmer(self.functions, self.catalog, self.pool, self.bus)
        self.invoker = Invoker(settings, self.db, self.bus, self.batcher, self.pool, self.catalog, self.queue)
        self.invocations = InvocationService(self.db, self.bus, self.audit, self.invoker, self.catalog)
        self.logs = LogService(self.db, self.functions)
        self.dlq = DlqService(self.db, self.bus, self.audit, self.invoker)
        self.webhooks = WebhookService(
            self.db, self.bus, self.audit, self.secrets, self.batcher, node=settings.node_id
        )
        self.webhooks.register_target(function_target(self.functions, self.invoker))
        self.templates = builtin_gallery(lambda: set(self.runtimes))
        self.test_events = TestEventService(self.db, self.audit)
        self.layer_store = LayerStore(settings, self.db)
        self.runtimes["python"].layer_source = self.layer_store.materialize  # type: ignore[attr-defined]
        self.layer_builder = LayerBuilder(settings, self.db, self.bus)
        self.layers = LayerService(
            self.db, self.bus, self.audit, settings, self.layer_builder, on_retire=self._retire
        )
        self.function_layers = FunctionLayerService(self.db, self.bus, self.audit, on_retire=self._retire)
        self.function_layers.builder = self.builds  # a Rust function builds with its new layers first
        self.builds.layer_source = self.layer_store.materialize  # the layers a cargo build's crates come from
        self.consumer = QueueConsumer(
            settings, self.db, self.bus, self.batcher, self.pool, self.catalog, self.queue
        )
        self.rollups = Rollups(self.db, self.batcher, self.bus)
        self.metrics = MetricsService(self.db, self.bus, self.rollups, self.pool, self.dlq, self.invocations)
        # Quotas (enforced on function create and, in memory, on every invoke) and data retention.
        self.quotas = QuotaService(self.db, self.bus, self.audit, self.pool, self.system_settings)
        self.functions.quota_check = self.quotas.check_function_create
        self.invoker.admission = self.quotas.admit
        self.retention = RetentionService(
            self.db,
            self.bus,
            self.audit,
            self.system_settings,
            node=settings.node_id,
            spill_dir=settings.data_dir / "bodies",
        )
        # Cron schedules and system jobs (engine/scheduler.py); other target kinds register here too.
        self.schedule_targets = TargetRegistry()
        self.schedule_targets.register(function_kind(self.db, self.invoker, self.functions))
        self.scheduler = Scheduler(self.db, self.bus, self.schedule_targets, node_id=settings.node_id)
        self.schedules = ScheduleService(self.db, self.bus, self.audit, self.scheduler, self.schedule_targets)
        # Workflows: durable executions driven by this node's runner (engine/workflows/runner.py).
        self.workflow_runner = Runner(
            self.db,
            self.bus,
            self.batcher,
            self.invoker,
            node_id=settings.node_id,
            lease_sec=settings.lease_sec,
        )
        self.workflows = WorkflowService(
            self.db, self.bus, self.audit, self.workflow_runner, settings=self.system_settings
        )
        self.workflows.quota_check = lambda session: self.quotas.check_room(session, "workflows")
        self.schedule_targets.register(workflow_kind(self.workflows))  # a tick starts an execution
        self.webhooks.register_target(workflow_target(self.workflows))
        self.started = False
        self.started_at = 0.0
        self.bootstrap: Any = None  # first-start secrets, printed once by the server
        self._stack = AsyncExitStack()

    async def start(self) -> None:
        await migrate(self.db)
        self._stack.push_async_callback(self.db.close)
        await self.system_settings.start()  # before anything reads a setting the database may change
        self._stack.push_async_callback(self.system_settings.stop)
        await self.batcher.start()
        self._stack.push_async_callback(self.batcher.stop)
        await self.rollups.start()  # before anything runs: it first recovers the last minutes
        self._stack.push_async_callback(self.rollups.stop)
        await self.metrics.start()
        self._stack.push_async_callback(self.metrics.stop)
        await self.quotas.start()  # after the rollups: it seeds its invocation counter from them
        self._stack.push_async_callback(self.retention.stop)
        self.bootstrap = await self.auth.ensure_admin()
        await self.environments.ensure_defaults()
        await self.pool.start()
        self._stack.push_async_callback(self.pool.stop)
        await self.consumer.start()
        self._stack.push_async_callback(self.consumer.stop)
        await self.prewarmer.start()  # in the background: start-up does not wait for workers
        self._stack.push_async_callback(self.prewarmer.stop)
        await self.layer_builder.start()  # fails builds an earlier run left unfinished
        self._stack.push_async_callback(self.layer_builder.stop)
        await self.workflow_runner.start()  # resumes executions a stopped or dead node left running
        self._stack.push_async_callback(self.workflow_runner.stop)
        self._stack.push_async_callback(self.webhooks.stop)
        self._stack.callback(self.catalog.close)
        self._stack.push_async_callback(self._cancel_background)
        self.scheduler.add_system_job("quota-snapshot", self.quotas.snapshot_job, IntervalTrigger(hours=1))
        self.scheduler.add_system_job(
            "retention-cleanup", self.retention.scheduled_cleanup_job, IntervalTrigger(minutes=5)
        )
        await self.scheduler.start()  # last: a tick may start runs at once; stopped first
        self._stack.push_async_callback(self.scheduler.stop)
        self.started, self.started_at = True, time.time()

    async def stop(self) -> None:
        self.started = False
        await self._stack.aclose()

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def isolation(self) -> Isolation:
        return self.runtimes["python"].isolation()

    def system_info(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "node": self.settings.node_id,
            "uptime_sec": round(time.time() - self.started_at, 1) if self.started else 0,
            "python": sys.version.split()[0],
            "os": f"{host.system()} {host.release()}",
            "database": self.db.dialect,
            "isolation": self.isolation().to_dict(),
            "runtimes": [info.to_dict() for info in self.runtime_list()],
            "pool": self.pool.stats(),
            "queue": {"in_flight": self.consumer.in_flight},
        }

    def _add_runtime(self, runtime: Runtime) -> None:
        """Register a runtime when it can run here; its info (and why not) is listed either way."""
        info = runtime.info()
        self.runtime_infos[info.name] = info
        if info.available:
            self.runtimes[info.name] = runtime

    def runtime_list(self) -> list[RuntimeInfo]:
        """Every runtime (and executor) in a fixed order, with its availability on this node."""
        infos = {name: rt.info() for name, rt in self.runtimes.items()} | {
            name: info for name, info in self.runtime_infos.items() if name not in self.runtimes
        }
        infos["docker"] = detect_docker()
        order = ("python", "nodejs", "go", "rust", "wasm", "docker")
        return sorted(infos.values(), key=lambda i: order.index(i.name) if i.name in order else len(order))

    def _retire(self, function_id: str) -> None:
        """Warm workers run old code after an update or delete: close them (after the commit)."""
        self._spawn(self.pool.retire(function_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cancel_background(self) -> None:
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
