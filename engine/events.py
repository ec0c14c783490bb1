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
    action: str  # created | updated | deleted | published | offline | online


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


ALL_EVENT_TYPES: tuple[type[Event], ...] = (
    InvocationStarted,
    InvocationFinished,
    InvocationLogged,
    FunctionChanged,
    DlqChanged,
    AuditRecorded,
    MetricsUpdated,
)
