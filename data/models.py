"""The tables. Persistence only: no behaviour lives here.

Ids are UUIDv7 strings (time-ordered), so `ORDER BY id DESC` is newest first and a cursor is just an id.
All datetimes are timezone-aware UTC (see data.types.UTCDateTime).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime, new_id, utcnow


def _json(**kw: Any) -> Any:
    return Field(default=None, sa_column=Column(JSON, **kw))


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


# --- people and keys ------------------------------------------------------------------------------


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str
    role: str = Field(default="viewer", max_length=16)  # admin | developer | viewer
    tenant: str = Field(default="default", max_length=64)
    disabled: bool = False
    created_at: datetime = _created()
    last_login_at: datetime | None = _ts()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=64)
    prefix: str = Field(max_length=16, index=True)  # first characters, shown in lists
    key_hash: str = Field(max_length=64, unique=True)  # sha256 hex of the whole key
    user_id: str = Field(foreign_key="users.id", ondelete="CASCADE", index=True, max_length=36)
    role: str = Field(default="developer", max_length=16)
    created_at: datetime = _created()
    expires_at: datetime | None = _ts()
    last_used_at: datetime | None = _ts()
    revoked_at: datetime | None = _ts()


# --- functions ------------------------------------------------------------------------------------


class Function(SQLModel, table=True):
    __tablename__ = "functions"
    __table_args__ = (Index("ix_functions_updated_at_id", "updated_at", "id"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=64, unique=True, index=True)
    description: str = ""
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    runtime: str = Field(max_length=16)  # python | nodejs | go | rust | wasm
    handler: str = Field(max_length=256)
    # files: {"main.py": "..."}; `code` is the entry file's text (the original API's single-file field).
    code: str = Field(default="", sa_column=Column(Text, nullable=False))
    files: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    code_hash: str = Field(default="", max_length=64)
    memory_mb: int = 256
    timeout_sec: int = 30
    max_concurrency: int = 0  # 0 = only the platform's cap
    min_warm: int = 0  # instances kept warm (prewarm)
    retry_attempts: int = 3  # total attempts for async invocations
    retry_backoff_ms: int = 1000  # first delay; doubles each attempt
    retry_backoff_max_ms: int = 60_000
    network: bool = False  # granted network access
    executor: str = Field(default="process", max_length=16)  # process | docker
    image: str = Field(default="", max_length=256)  # the container image when executor is docker
    env_vars: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secrets: str = Field(default="", sa_column=Column(Text, nullable=False))  # Fernet token of a JSON dict
    status: str = Field(default="active", max_length=16)  # active | offline | building | failed
    status_message: str = ""
    version: int = 1  # bumps on every update of $LATEST
    latest_published: int = 0  # highest published version number
    created_by: str = ""
    created_at: datetime = _created()
    updated_at: datetime = _created()
    last_deployed_at: datetime | None = _ts()


class FunctionVersion(SQLModel, table=True):
    """An immutable published snapshot of a function's code and configuration."""

    __tablename__ = "function_versions"
    __table_args__ = (UniqueConstraint("function_id", "version"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    function_id: str = Field(foreign_key="functions.id", ondelete="CASCADE", index=True, max_length=36)
    version: int
    description: str = ""
    runtime: str = Field(max_length=16)
    handler: str = Field(max_length=256)
    code: str = Field(default="", sa_column=Column(Text, nullable=False))
    files: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    code_hash: str = Field(default="", max_length=64)
    memory_mb: int = 256
    timeout_sec: int = 30
    env_vars: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The layers attached when the version was published: [{"layer_id", "layer_version"}] in mount order.
    layers: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = ""
    created_at: datetime = _created()


# --- invocations ----------------------------------------------------------------------------------


class Invocation(SQLModel, table=True):
    __tablename__ = "invocations"
    __table_args__ = (
        Index("ix_invocations_function_id_id", "function_id", "id"),
        Index("ix_invocations_status_id", "status", "id"),
        Index("ix_invocations_source_id", "source", "id"),
        Index("ix_invocations_environment_id", "environment", "id"),
        Index("ix_invocations_started_at", "started_at"),
        Index("ux_invocations_idempotency", "function_id", "idempotency_key", unique=True),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)  # = request_id
    function_id: str = Field(max_length=36)  # no FK: records outlive a deleted function
    function_name: str = Field(max_length=64)
    version: str = Field(default="$LATEST", max_length=16)
    environment: str | None = Field(default=None, max_length=32)  # the environment it ran in
    source: str = Field(default="api", max_length=16)  # api|console|cron|webhook|workflow|retry|cli
    mode: str = Field(default="sync", max_length=8)  # sync | async
    status: str = Field(default="pending", max_length=16)  # pending|running|success|failed|timeout
    status_code: int | None = None
    input: Any = _json()
    output: Any = _json()
    input_size: int = 0
    output_size: int = 0
    input_ref: str | None = None  # file path when the body was spilled
    output_ref: str | None = None
    error_type: str | None = Field(default=None, max_length=128)
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    error_stack: str | None = Field(default=None, sa_column=Column(Text))
    cold: bool = False
    init_ms: float | None = None
    duration_ms: float | None = None
    peak_memory_kb: int | None = None
    billed_ms: int | None = None
    billed_gb_s: float | None = None
    attempt: int = 1
    max_attempts: int = 1
    idempotency_key: str | None = Field(default=None, max_length=128)
    replay_of: str | None = Field(default=None, max_length=36)
    trace_id: str = Field(default="", max_length=64)
    node: str = Field(default="", max_length=64)
    actor: str = Field(default="", max_length=128)
    created_at: datetime = _created()
    started_at: datetime | None = _ts()
    ended_at: datetime | None = _ts()


class InvocationAttempt(SQLModel, table=True):
    """One run of an invocation; async invocations with retries have several."""

    __tablename__ = "invocation_attempts"
    __table_args__ = (UniqueConstraint("invocation_id", "attempt"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    invocation_id: str = Field(max_length=36, index=True)
    attempt: int
    status: str = Field(max_length=16)
    error_type: str | None = Field(default=None, max_length=128)
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    cold: bool = False
    duration_ms: float | None = None
    started_at: datetime | None = _ts()
    ended_at: datetime | None = _ts()


class InvocationLog(SQLModel, table=True):
    """Captured output of one invocation attempt (user stdout/stderr and context.logger lines)."""

    __tablename__ = "invocation_logs"
    __table_args__ = (Index("ix_invocation_logs_function_id_id", "function_id", "id"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    invocation_id: str = Field(max_length=36, index=True)
    function_id: str = Field(max_length=36)
    attempt: int = 1
    level: str = Field(default="info", max_length=8)  # info | error
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    truncated: bool = False
    created_at: datetime = _created()


# --- the durable async queue and the DLQ ----------------------------------------------------------


class QueueJob(SQLModel, table=True):
    """An accepted async invocation waiting to run (or running under a lease). Deleted when settled."""

    __tablename__ = "queue_jobs"
    __table_args__ = (Index("ix_queue_jobs_ready", "status", "run_at"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    invocation_id: str = Field(max_length=36, unique=True)
    function_id: str = Field(max_length=36, index=True)
    payload: Any = _json()
    source: str = Field(default="api", max_length=16)
    attempt: int = 0  # attempts started so far
    max_attempts: int = 3
    status: str = Field(default="queued", max_length=16)  # queued | running
    run_at: datetime = _created()
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = _ts()
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _created()


class DeadLetter(SQLModel, table=True):
    __tablename__ = "dead_letter_queue"
    __table_args__ = (
        Index("ix_dlq_function_id_id", "function_id", "id"),
        Index("ix_dlq_status_id", "status", "id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    function_id: str = Field(max_length=36)
    function_name: str = Field(max_length=64)
    original_request_id: str = Field(max_length=36, index=True)
    payload: Any = _json()
    error: str = Field(default="", sa_column=Column(Text, nullable=False))  # the last attempt's error
    attempts: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    retry_count: int = 0
    status: str = Field(default="pending", max_length=16)  # pending | retrying | resolved | discarded
    source: str = Field(default="api", max_length=16)
    created_at: datetime = _created()
    last_retry_at: datetime | None = _ts()
    resolved_at: datetime | None = _ts()


# --- audit and settings ---------------------------------------------------------------------------


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_action_id", "action", "id"),
        Index("ix_audit_resource", "resource_type", "resource_id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    action: str = Field(max_length=64)  # function.create, dlq.retry, user.login ...
    resource_type: str = Field(default="", max_length=32)
    resource_id: str = Field(default="", max_length=64)
    resource_name: str = Field(default="", max_length=128)
    actor: str = Field(default="", max_length=128)  # username, "key:<name>" or "system"
    actor_type: str = Field(default="user", max_length=16)  # user | api_key | system
    actor_ip: str = Field(default="", max_length=64)
    before: Any = _json()
    after: Any = _json()
    details: Any = _json()
    created_at: datetime = _created()


class SettingRow(SQLModel, table=True):
    __tablename__ = "system_settings"
    key: str = Field(primary_key=True, max_length=64)
    value: Any = _json()
    updated_by: str = ""
    updated_at: datetime = _created()


# --- metrics rollups ------------------------------------------------------------------------------


class MetricMinute(SQLModel, table=True):
    """Per function and UTC minute: what dashboards read instead of scanning invocations. Counts are
    added to (never overwritten), so several nodes can roll up into one row."""

    __tablename__ = "metric_minutes"
    __table_args__ = (Index("ix_metric_minutes_function_minute", "function_id", "minute"),)
    minute: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    function_id: str = Field(primary_key=True, max_length=36)
    invocations: int = 0  # finished invocations (final outcome; retried attempts count once)
    errors: int = 0  # failed + timeout
    timeouts: int = 0
    cold_starts: int = 0
    duration_sum_ms: float = 0.0
    duration_max_ms: float = 0.0


class MetricLatency(SQLModel, table=True):
    """A sparse, fixed log-scale latency histogram per function and minute (engine/rollups.py defines
    the buckets): percentiles over days add up a few rows per minute, never raw invocations."""

    __tablename__ = "metric_latency"
    __table_args__ = (Index("ix_metric_latency_function_minute", "function_id", "minute"),)
    minute: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    function_id: str = Field(primary_key=True, max_length=36)
    bucket: int = Field(primary_key=True)
    count: int = 0


# --- console --------------------------------------------------------------------------------------


class TestEvent(SQLModel, table=True):
    """A saved, named test payload of a function (the console's Test tab)."""

    __test__ = False  # not a pytest class
    __tablename__ = "test_events"
    __table_args__ = (UniqueConstraint("function_id", "name", name="uq_test_events_function_name"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    function_id: str = Field(foreign_key="functions.id", ondelete="CASCADE", max_length=36)
    name: str = Field(max_length=64)
    payload: Any = _json()
    created_at: datetime = _created()
    updated_at: datetime = _created()


# --- environments ---------------------------------------------------------------------------------


class Environment(SQLModel, table=True):
    """dev, staging, prod (seeded) and any added: variables and secrets of their own, and an order that
    promotion follows (`position`)."""

    __tablename__ = "environments"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=32, unique=True)
    description: str = ""
    position: int = 0  # promotion goes from a lower position to the next higher one
    is_default: bool = False  # where an invocation runs when it names no environment
    env_vars: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secrets: str = Field(default="", sa_column=Column(Text, nullable=False))  # Fernet token of a JSON dict
    created_at: datetime = _created()
    updated_at: datetime = _created()


class FunctionEnvironment(SQLModel, table=True):
    """What of a function is deployed to an environment: a published version (None = $LATEST) and
    per-environment overrides (the original's function_environment_configs)."""

    __tablename__ = "function_environments"
    __table_args__ = (UniqueConstraint("function_id", "environment_id", name="uq_function_environment"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    function_id: str = Field(foreign_key="functions.id", ondelete="CASCADE", index=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", ondelete="CASCADE", index=True, max_length=36)
    version: int | None = None  # None: the working copy ($LATEST)
    env_vars: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    memory_mb: int | None = None
    timeout_sec: int | None = None
    deployed_by: str = ""
    created_at: datetime = _created()
    updated_at: datetime = _created()


# --- layers ---------------------------------------------------------------------------------------


class Layer(SQLModel, table=True):
    __tablename__ = "layers"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=128, unique=True)
    description: str = ""
    compatible_runtimes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    latest_version: int = 0
    created_by: str = ""
    created_at: datetime = _created()
    updated_at: datetime = _created()


class LayerVersion(SQLModel, table=True):
    """One immutable version of a layer: an uploaded zip, or a tree built from requirements.txt (pip) or
    package.json (npm). `content` is the built tree as a zip, so every node can unpack it."""

    __tablename__ = "layer_versions"
    __table_args__ = (UniqueConstraint("layer_id", "version", name="uq_layer_version"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    layer_id: str = Field(foreign_key="layers.id", ondelete="CASCADE", index=True, max_length=36)
    version: int
    source: str = Field(default="zip", max_length=16)  # zip | pip | npm
    manifest: str = Field(default="", sa_column=Column(Text, nullable=False))  # requirements / package.json
    status: str = Field(default="building", max_length=16)  # building | ready | failed
    build_log: str = Field(default="", sa_column=Column(Text, nullable=False))
    error: str = Field(default="", sa_column=Column(Text, nullable=False))
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    content_hash: str = Field(default="", max_length=64)
    size_bytes: int = 0
    file_count: int = 0
    created_by: str = ""
    created_at: datetime = _created()
    finished_at: datetime | None = _ts()


class FunctionLayer(SQLModel, table=True):
    """A layer version attached to a function's working copy, in mount order (at most 5)."""

    __tablename__ = "function_layers"
    function_id: str = Field(foreign_key="functions.id", ondelete="CASCADE", primary_key=True, max_length=36)
    layer_id: str = Field(foreign_key="layers.id", ondelete="CASCADE", primary_key=True, max_length=36)
    layer_version: int
    position: int = 0


# --- builds ---------------------------------------------------------------------------------------


class Build(SQLModel, table=True):
    """One compile of a Go or Rust function's code, with its log; kept on failure too. Artifacts are
    cached on disk by code hash (engine/builds)."""

    __tablename__ = "builds"
    __table_args__ = (Index("ix_builds_function_id_id", "function_id", "id"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    function_id: str = Field(default="", max_length=36)  # no FK: a failed first build has no function
    function_name: str = Field(default="", max_length=64)
    runtime: str = Field(max_length=16)
    code_hash: str = Field(default="", max_length=64)
    status: str = Field(default="building", max_length=16)  # building | succeeded | failed
    log: str = Field(default="", sa_column=Column(Text, nullable=False))
    error: str = Field(default="", sa_column=Column(Text, nullable=False))  # the first compiler message
    cached: bool = False  # served from the artifact cache, nothing compiled
    duration_ms: float | None = None
    created_by: str = ""
    created_at: datetime = _created()
    finished_at: datetime | None = _ts()
