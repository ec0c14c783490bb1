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
        Index("ix_audit_actor_id", "actor", "id"),
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


# --- workflows ------------------------------------------------------------------------------------


class Workflow(SQLModel, table=True):
    """A state machine over functions (DESIGN §6). `definition` is the current (snake_case) definition;
    every saved change of it is a new row in workflow_versions and bumps `version`."""

    __tablename__ = "workflows"
    __table_args__ = (Index("ix_workflows_updated_at_id", "updated_at", "id"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=64, unique=True, index=True)
    description: str = ""
    definition: Any = _json(nullable=False)
    version: int = 1
    status: str = Field(default="active", max_length=16)  # active | inactive
    timeout_sec: int = 3600  # the whole execution's limit (1-86400)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    breakpoints: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = ""
    created_at: datetime = _created()
    updated_at: datetime = _created()


class WorkflowVersion(SQLModel, table=True):
    """An immutable snapshot of a workflow's definition; an execution runs the version it started with."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version", name="uq_workflow_version"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workflow_id: str = Field(foreign_key="workflows.id", ondelete="CASCADE", index=True, max_length=36)
    version: int
    definition: Any = _json(nullable=False)
    timeout_sec: int = 3600
    description: str = ""
    created_by: str = ""
    created_at: datetime = _created()


class WorkflowExecution(SQLModel, table=True):
    """One run of a workflow version. `definition` is the snapshot it runs (never the current one);
    a paused execution keeps where and with what input it stopped; `lease_until`/`node_id` say which
    node drives it (another node or a restart takes over an expired lease)."""

    __tablename__ = "workflow_executions"
    __table_args__ = (
        Index("ix_wf_exec_workflow_id", "workflow_id", "id"),
        Index("ix_wf_exec_status_id", "status", "id"),
        Index("ix_wf_exec_created_at", "created_at"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    workflow_id: str = Field(foreign_key="workflows.id", ondelete="CASCADE", max_length=36)
    workflow_name: str = Field(default="", max_length=64)
    version: int = 1
    name: str = Field(default="", max_length=128)  # optional, from the start request
    # pending | running | paused | succeeded | failed | cancelled | timeout
    status: str = Field(default="pending", max_length=16)
    source: str = Field(default="api", max_length=16)  # api | console | cron | webhook | redrive
    definition: Any = _json(nullable=False)
    input: Any = _json()
    output: Any = _json()
    error: str = Field(default="", max_length=256)  # error name, e.g. States.TaskFailed
    cause: str = Field(default="", sa_column=Column(Text, nullable=False))
    current_state: str = Field(default="", max_length=128)
    breakpoints: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    paused_at_state: str = Field(default="", max_length=128)
    paused_input: Any = _json()
    paused_at: datetime | None = _ts()
    skip_breakpoint_once: str = Field(default="", max_length=128)  # Continue/Step: this state runs now
    step_mode: bool = False  # Step: pause again before the next state
    redrive_of: str = Field(default="", max_length=36)  # the failed execution this one re-runs
    redrive_count: int = 0
    node_id: str = Field(default="", max_length=128)
    lease_until: datetime | None = _ts()
    timeout_at: datetime | None = _ts()
    created_by: str = ""
    created_at: datetime = _created()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()


class WorkflowStateRun(SQLModel, table=True):
    """One run of one state in an execution (one row per attempt group; `attempt` counts retries).
    States inside a Parallel branch or a Map iteration point at the Parallel/Map run by `parent_id`
    with their `branch`/`item` index, so the trace can be drawn as a tree."""

    __tablename__ = "workflow_state_runs"
    __table_args__ = (Index("ix_wf_state_runs_execution_seq", "execution_id", "seq"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    execution_id: str = Field(foreign_key="workflow_executions.id", ondelete="CASCADE", max_length=36)
    parent_id: str = Field(default="", max_length=36)
    branch: int | None = None
    item: int | None = None
    seq: int = 0  # order of creation within the execution
    state_name: str = Field(max_length=128)
    state_type: str = Field(max_length=16)
    # running | retrying | succeeded | failed | caught | cancelled | paused
    status: str = Field(default="running", max_length=16)
    attempt: int = 1
    input: Any = _json()
    output: Any = _json()
    error: str = Field(default="", max_length=256)
    cause: str = Field(default="", sa_column=Column(Text, nullable=False))
    next_state: str = Field(default="", max_length=128)
    invocation_id: str = Field(default="", max_length=36)
    started_at: datetime = _created()
    finished_at: datetime | None = _ts()


# --- operations: quota usage snapshots, retention cleanup runs -----------------------------------


class QuotaSnapshot(SQLModel, table=True):
    """Every quota's usage at one moment (the periodic snapshot job): what the quota page's trend charts
    read. `usage` is {quota name: {"used", "limit"}}, so a quota added later needs no schema change."""

    __tablename__ = "quota_snapshots"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)  # UUIDv7: time-ordered
    taken_at: datetime = _created()
    usage: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RetentionRun(SQLModel, table=True):
    """One retention cleanup: when, who (or the schedule), the policy it applied, and the rows it
    deleted per kind of data."""

    __tablename__ = "retention_runs"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    trigger: str = Field(default="manual", max_length=16)  # manual | scheduled
    status: str = Field(default="running", max_length=16)  # running | succeeded | failed
    actor: str = Field(default="", max_length=128)
    node: str = Field(default="", max_length=128)
    policy: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    deleted: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    total_deleted: int = 0
    duration_ms: float | None = None
    error: str = Field(default="", sa_column=Column(Text, nullable=False))
    started_at: datetime = _created()
    finished_at: datetime | None = _ts()


# --- webhooks -------------------------------------------------------------------------------------


class Webhook(SQLModel, table=True):
    """A public endpoint, /webhook/{key}, that starts its target (a function, or another registered kind)
    with the HTTP request as the event: sync (the result is the response) or async (202). The signing
    secret is a Fernet token (engine/secrets.py); retry_* None means the target's own policy."""

    __tablename__ = "webhooks"
    __table_args__ = (UniqueConstraint("target_kind", "target_id", name="uq_webhooks_target"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    key: str = Field(max_length=64, unique=True)  # the unguessable path segment
    target_kind: str = Field(default="function", max_length=16)  # function | workflow ...
    target_id: str = Field(max_length=36)  # no FK: the target may live in any table
    target_name: str = Field(default="", max_length=128)
    enabled: bool = False
    mode: str = Field(default="sync", max_length=8)  # sync | async
    signature_scheme: str = Field(default="none", max_length=16)  # none | github | timestamp
    secret: str = Field(default="", sa_column=Column(Text, nullable=False))  # Fernet token, "" = none
    secret_rotated_at: datetime | None = _ts()
    tolerance_sec: int = 300  # timestamp scheme: how old (or early) a signed request may be
    allowed_ips: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # CIDRs
    rate_limit_per_min: int = 0  # 0: unlimited
    retry_attempts: int | None = None  # async deliveries: total attempts
    retry_backoff_ms: int | None = None
    retry_backoff_max_ms: int | None = None
    created_by: str = ""
    created_at: datetime = _created()
    updated_at: datetime = _created()


class WebhookCall(SQLModel, table=True):
    """One request to a webhook and what it was answered, accepted or not (and why not). Secret-bearing
    headers are redacted and bodies capped (`*_truncated`); written through the batcher."""

    __tablename__ = "webhook_calls"
    __table_args__ = (
        Index("ix_webhook_calls_webhook_id_id", "webhook_id", "id"),
        Index("ix_webhook_calls_webhook_outcome_id", "webhook_id", "outcome", "id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    webhook_id: str = Field(max_length=36)  # no FK: the history outlives its webhook
    method: str = Field(default="POST", max_length=16)
    path: str = Field(default="/", max_length=512)  # below /webhook/{key}
    query: Any = _json()
    source_ip: str = Field(default="", max_length=64)
    headers: Any = _json()
    request_body: str = Field(default="", sa_column=Column(Text, nullable=False))
    request_encoding: str = Field(default="text", max_length=8)  # text | base64
    request_size: int = 0
    request_truncated: bool = False
    status: int = 0  # the HTTP status answered
    outcome: str = Field(default="accepted", max_length=16)  # accepted | rejected | failed
    reason: str = Field(default="", max_length=32)  # why rejected or failed (a code)
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    mode: str = Field(default="sync", max_length=8)
    invocation_id: str | None = Field(default=None, max_length=36)
    latency_ms: float = 0.0
    response_headers: Any = _json()
    response_body: str = Field(default="", sa_column=Column(Text, nullable=False))
    response_encoding: str = Field(default="text", max_length=8)  # text | base64
    response_size: int = 0
    response_truncated: bool = False
    node: str = Field(default="", max_length=64)
    created_at: datetime = _created()


# --- schedules ------------------------------------------------------------------------------------


class Schedule(SQLModel, table=True):
    """A cron schedule: runs a target (a function, a workflow ...) with a payload at every tick of its
    expression in its timezone. The table is the scheduler's source of truth (engine/scheduler.py)."""

    __tablename__ = "schedules"
    __table_args__ = (
        Index("ix_schedules_target", "target_type", "target_id", "id"),
        Index("ix_schedules_paused_id", "paused", "id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=64, unique=True)
    description: str = ""
    target_type: str = Field(max_length=16)  # function | workflow (a registered kind)
    target_id: str = Field(max_length=64)
    target_name: str = Field(default="", max_length=128)  # for display; the id is what runs
    payload: Any = _json()
    cron: str = Field(max_length=128)
    timezone: str = Field(default="UTC", max_length=64)
    misfire_policy: str = Field(default="skip", max_length=16)  # skip | run_once
    paused: bool = False
    # Every tick at or before this instant is settled (run, skipped, or before the schedule existed or
    # was last resumed/changed): what a restart compares with the clock to find missed ticks.
    settled_until: datetime = _created()
    last_run_at: datetime | None = _ts()  # the tick of the last run (or skip)
    last_run_id: str | None = Field(default=None, max_length=36)  # the schedule_runs row
    created_by: str = ""
    created_at: datetime = _created()
    updated_at: datetime = _created()


class ScheduleRun(SQLModel, table=True):
    """One tick of a schedule, claimed before it runs: the unique (schedule_id, scheduled_at) is what
    makes a tick run at most once, across restarts and across nodes."""

    __tablename__ = "schedule_runs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "scheduled_at", name="uq_schedule_runs_tick"),
        Index("ix_schedule_runs_schedule_id_id", "schedule_id", "id"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    schedule_id: str = Field(foreign_key="schedules.id", ondelete="CASCADE", max_length=36)
    scheduled_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))  # the tick
    kind: str = Field(default="cron", max_length=16)  # cron | catch_up | manual | skipped
    status: str = Field(default="claimed", max_length=16)  # claimed | started | failed | skipped
    target_type: str = Field(max_length=16)
    target_id: str = Field(max_length=64)
    run_id: str | None = Field(default=None, max_length=36)  # the invocation (or execution) started
    missed: int = 0  # ticks this catch-up or skip stands for
    error: str = Field(default="", sa_column=Column(Text, nullable=False))
    node: str = Field(default="", max_length=64)
    started_at: datetime = _created()
