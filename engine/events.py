"""Events the engine publishes after the data they describe is committed (the UI never shows a row
that rolled back). Frozen dataclasses; the bus (engine/bus.py) delivers them to subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from data.types import utcnow


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvocationStarted(Event):
    invocation_id: str
    function_id: str
    function_name: str
    source: str
    attempt: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class InvocationFinished(Event):
    invocation_id: str
    function_id: str
    function_name: str
    source: str
    status: str  # success | failed | timeout
    duration_ms: float | None
    cold: bool
    attempt: int = 1
    final: bool = True  # False when an async attempt failed and a retry is scheduled


@dataclass(frozen=True, slots=True, kw_only=True)
class InvocationLogged(Event):
    invocation_id: str
    function_id: str
    function_name: str
    level: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionChanged(Event):
    function_id: str
    function_name: str
    action: str  # created | updated | deleted | published | offline | online | deployed | undeployed


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentChanged(Event):
    """An environment was created, changed (variables, secrets, default, order) or deleted: every spec
    resolved for an environment may be stale."""

    environment_id: str
    name: str
    action: str  # created | updated | deleted


@dataclass(frozen=True, slots=True, kw_only=True)
class DlqChanged(Event):
    message_id: str
    function_id: str
    status: str  # pending | retrying | resolved | discarded | deleted


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecorded(Event):
    action: str
    actor: str
    resource_type: str
    resource_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsUpdated(Event):
    """Metric rollups changed (after their commit), or the minute turned and time windows moved on."""

    function_ids: tuple[str, ...] = ()  # functions whose rollups changed; empty when only the clock did
    invocations: int = 0  # finished invocations this update added


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerChanged(Event):
    """A layer or one of its versions changed (after commit): created, deleted, version_added (a zip
    upload, ready at once), building, ready, failed."""

    layer_id: str
    layer_name: str
    action: str
    version: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerBuildLog(Event):
    """New output of a running layer build (pip or npm), in the order it was printed."""

    layer_id: str
    version: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildStarted(Event):
    """A Go or Rust build began compiling (its Build row, status building, is committed)."""

    build_id: str
    function_id: str
    function_name: str
    runtime: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildLog(Event):
    """One line of a running build's compiler output, live (the Build row keeps the whole log)."""

    build_id: str
    function_id: str
    function_name: str
    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildFinished(Event):
    """A build ended (after its Build row is committed): succeeded, or failed with the first error."""

    build_id: str
    function_id: str
    function_name: str
    runtime: str
    status: str  # succeeded | failed
    error: str = ""
    cached: bool = False
    duration_ms: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaChanged(Event):
    """Quota limits or the warning threshold changed, or a usage snapshot was taken (after commit)."""

    reason: str  # limits | snapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionProgress(Event):
    """A retention cleanup moved on: started, deleted a batch, or finished (its run row is committed)."""

    run_id: str
    status: str  # running | succeeded | failed
    target: str = ""  # the kind of data being deleted now (invocations, logs, dlq ...)
    deleted: int = 0  # rows deleted so far, all kinds together
    expected: int = 0  # rows expired when the run started (the preview's total)
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingChanged(Event):
    """A runtime setting was changed or reset to its default (after commit; this node's cache has it)."""

    key: str
    action: str  # updated | reset


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleChanged(Event):
    """A cron schedule was created, changed, paused, resumed or deleted (after commit)."""

    schedule_id: str
    name: str
    action: str  # created | updated | paused | resumed | deleted


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleFired(Event):
    """A schedule's tick was handled (its schedule_runs row is committed): started a run, failed to
    start one, or was skipped by the misfire policy."""

    schedule_id: str
    name: str
    run_id: str  # the schedule_runs row
    scheduled_at: datetime
    kind: str  # cron | catch_up | manual | skipped
    status: str  # started | failed | skipped
    target_run_id: str | None = None  # the invocation (or execution) it started


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookChanged(Event):
    """A webhook was enabled, disabled, given a new key or secret, reconfigured or deleted (after commit):
    every node's cached copy of it is stale."""

    webhook_id: str
    target_kind: str
    target_id: str
    action: str  # enabled | disabled | regenerated | updated | secret_rotated | deleted


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookCalled(Event):
    """A request to a webhook was answered and its history row committed (accepted or not)."""

    webhook_id: str
    call_id: str
    status: int  # the HTTP status answered
    outcome: str  # accepted | rejected | failed
    reason: str = ""  # why it was rejected or failed


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowChanged(Event):
    """A workflow was created, changed (a new version, breakpoints, status) or deleted (after commit)."""

    workflow_id: str
    action: str  # created | updated | deleted | breakpoints


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionChanged(Event):
    """A workflow execution changed status or moved to another state (its row is committed)."""

    execution_id: str
    workflow_id: str
    status: str  # pending | running | paused | succeeded | failed | cancelled | timeout
    current_state: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StateRunChanged(Event):
    """One state run of an execution started, retried or ended (its row is committed)."""

    execution_id: str
    state_run_id: str
    state_name: str
    status: str  # running | retrying | succeeded | failed | caught | cancelled | paused
    parent_id: str = ""  # the Parallel/Map run it belongs to ("" at the top level)


ALL_EVENT_TYPES: tuple[type[Event], ...] = (
    InvocationStarted,
    InvocationFinished,
    InvocationLogged,
    FunctionChanged,
    EnvironmentChanged,
    DlqChanged,
    AuditRecorded,
    MetricsUpdated,
    LayerChanged,
    LayerBuildLog,
    BuildStarted,
    BuildLog,
    BuildFinished,
    QuotaChanged,
    RetentionProgress,
    SettingChanged,
    ScheduleChanged,
    ScheduleFired,
    WebhookChanged,
    WebhookCalled,
    WorkflowChanged,
    ExecutionChanged,
    StateRunChanged,
)
