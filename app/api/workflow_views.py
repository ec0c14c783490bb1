"""The JSON shapes of workflows, versions, executions and state runs (the original Nimbus's field names,
plus ours)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from data.models import Workflow, WorkflowExecution, WorkflowStateRun, WorkflowVersion


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def workflow_view(w: Workflow) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "description": w.description,
        "definition": w.definition,
        "version": w.version,
        "status": w.status,
        "timeout_sec": w.timeout_sec,
        "tags": w.tags,
        "breakpoints": w.breakpoints,
        "created_by": w.created_by,
        "created_at": _ts(w.created_at),
        "updated_at": _ts(w.updated_at),
    }


def version_view(v: WorkflowVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "workflow_id": v.workflow_id,
        "version": v.version,
        "definition": v.definition,
        "timeout_sec": v.timeout_sec,
        "description": v.description,
        "created_by": v.created_by,
        "created_at": _ts(v.created_at),
    }


def execution_view(e: WorkflowExecution, *, definition: bool = False) -> dict[str, Any]:
    """The execution; `error` is the error name (AWS's), `cause` its message; the original's
    `error_code`, `workflow_version` and `completed_at` are given too."""
    view = {
        "id": e.id,
        "workflow_id": e.workflow_id,
        "workflow_name": e.workflow_name,
        "version": e.version,
        "workflow_version": e.version,
        "name": e.name,
        "status": e.status,
        "source": e.source,
        "input": e.input,
        "output": e.output,
        "error": e.error,
        "error_code": e.error,
        "cause": e.cause,
        "current_state": e.current_state,
        "breakpoints": e.breakpoints,
        "paused_at_state": e.paused_at_state or None,
        "paused_input": e.paused_input,
        "paused_at": _ts(e.paused_at),
        "step_mode": e.step_mode,
        "redrive_count": e.redrive_count,
        "node_id": e.node_id,
        "timeout_at": _ts(e.timeout_at),
        "created_by": e.created_by,
        "created_at": _ts(e.created_at),
        "started_at": _ts(e.started_at),
        "finished_at": _ts(e.finished_at),
        "completed_at": _ts(e.finished_at),
    }
    if definition:
        view["workflow_definition"] = e.definition
    return view


def state_run_view(r: WorkflowStateRun) -> dict[str, Any]:
    duration = (r.finished_at - r.started_at).total_seconds() * 1000 if r.finished_at else None
    return {
        "id": r.id,
        "execution_id": r.execution_id,
        "parent_id": r.parent_id or None,
        "branch": r.branch,
        "item": r.item,
        "seq": r.seq,
        "state_name": r.state_name,
        "state_type": r.state_type,
        "status": r.status,
        "attempt": r.attempt,
        "retry_count": r.attempt - 1,
        "input": r.input,
        "output": r.output,
        "error": r.error,
        "error_code": r.error,
        "cause": r.cause,
        "next_state": r.next_state or None,
        "invocation_id": r.invocation_id or None,
        "started_at": _ts(r.started_at),
        "finished_at": _ts(r.finished_at),
        "completed_at": _ts(r.finished_at),
        "duration_ms": round(duration, 3) if duration is not None else None,
    }


def breakpoint_view(execution_id: str, state: str) -> dict[str, Any]:
    return {"execution_id": execution_id, "before_state": state, "enabled": True}
