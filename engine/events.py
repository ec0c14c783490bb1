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
)
