"""The seam between the engine and the things that run user code. One module per runtime implements
`Runtime`; the pool (engine/pool.py) keeps their `Worker`s warm. Plain data in, plain data out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Status = Literal["success", "failed", "timeout"]


@dataclass(frozen=True, slots=True)
class LayerMount:
    """One attached layer version, in mount order. Its unpacked tree comes from the layer store
    (engine/services/layers.py) by `content_hash`; runtimes mount it read-only beside the code."""

    layer_id: str
    name: str
    version: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """Everything a worker needs to start: one function at one version with its limits."""

    function_id: str
    name: str
    version: str  # "$LATEST" or a published number as text
    runtime: str  # python | nodejs | go | rust | wasm
    handler: str  # "main.handler" or "handler"
    files: Mapping[str, str]  # relative path -> text
    code_hash: str
    memory_mb: int = 256
    timeout_sec: float = 30
    env: Mapping[str, str] = field(default_factory=dict)  # env vars and decrypted secrets
    network: bool = False
    max_concurrency: int = 0  # 0 = only the platform's cap
    min_warm: int = 0
    layers: tuple[LayerMount, ...] = ()
    executor: str = "process"  # process | docker
    image: str = ""  # container image (docker executor)
    environment: str = ""  # the environment this spec was resolved for ("" = none named)

    pool_key: str = field(init=False, repr=False, compare=False, default="")
    """Workers are interchangeable exactly when this matches (code, handler, limits, env). Computed
    once: the pool looks it up twice per invocation."""

    def __post_init__(self) -> None:
        blob = json.dumps(
            [
                self.function_id,
                self.version,
                self.runtime,
                self.handler,
                self.code_hash,
                self.memory_mb,
                sorted(self.env.items()),
                self.network,
                [layer.content_hash for layer in self.layers],
                self.executor,
                self.image,
            ],
            separators=(",", ":"),
        )
        object.__setattr__(self, "pool_key", hashlib.sha256(blob.encode()).hexdigest()[:32])


@dataclass(frozen=True, slots=True)
class InvokeContext:
    request_id: str
    source: str = "api"  # api | console | cron | webhook | workflow | retry | cli
    timeout_sec: float = 30
    trace_id: str = ""
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    type: str  # exception class name, or a platform reason: Timeout, MemoryLimitExceeded, WorkerCrashed ...
    message: str
    stack: str = ""  # the user code's traceback only, never the platform's

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "stack": self.stack}


@dataclass(frozen=True, slots=True)
class ExecResult:
    status: Status
    result: Any = None
    error: ErrorInfo | None = None
    logs: str = ""
    logs_truncated: bool = False
    duration_ms: float = 0.0  # handler time as measured by the worker (or wall time when it died)
    peak_memory_kb: int | None = None
    cold: bool = False
    init_ms: float | None = None  # spawn + import time of a cold worker

    @property
    def ok(self) -> bool:
        return self.status == "success"


@dataclass(frozen=True, slots=True)
class Isolation:
    """What the sandbox actually enforces on this machine (detected at start, shown to users)."""

    level: Literal["strong", "partial", "degraded"]
    namespaces: tuple[str, ...] = ()  # user, pid, net, mount, ipc, uts
    uid_drop: bool = False
    rlimits: bool = True
    seccomp: bool = False
    private_root: bool = False
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "namespaces": list(self.namespaces),
            "uid_drop": self.uid_drop,
            "rlimits": self.rlimits,
            "seccomp": self.seccomp,
            "private_root": self.private_root,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    """Whether a runtime (or an executor) can run functions on this node, with what, and if not, why.
    Shown by /api/v1/system and the System page."""

    name: str  # python | nodejs | go | rust | wasm | docker
    available: bool
    version: str = ""  # the toolchain's or engine's version, e.g. "node v20.20.2"
    detail: str = ""  # where it comes from, or why it is unavailable

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "available": self.available,
            "version": self.version,
            "detail": self.detail,
        }


class InitError(Exception):
    """The function could not start (syntax error, missing handler, bad import). `info` is user-facing."""

    def __init__(self, info: ErrorInfo, logs: str = "", init_ms: float | None = None) -> None:
        super().__init__(info.message)
        self.info = info
        self.logs = logs
        self.init_ms = init_ms


class Worker(Protocol):
    spec: FunctionSpec
    init_ms: float

    @property
    def alive(self) -> bool: ...

    async def invoke(self, event: Any, ctx: InvokeContext) -> ExecResult:
        """Run one event. Enforces ctx.timeout_sec: on overrun the worker's whole process group is
        killed (within 100 ms), the worker is no longer alive, and the result says status=timeout."""
        ...

    async def close(self) -> None: ...


class Runtime(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def spawn(self, spec: FunctionSpec) -> Worker:
        """Start a new (cold) worker for `spec`; raises InitError when the user's code cannot load."""
        ...

    def isolation(self) -> Isolation: ...

    def info(self) -> RuntimeInfo: ...
