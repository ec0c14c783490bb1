"""How resources look over the API: explicit public fields, so internal columns (secrets, hashes,
spill paths) never leak."""

from __future__ import annotations

from typing import Any

from data.models import (
    Build,
    DeadLetter,
    Function,
    FunctionVersion,
    Invocation,
    InvocationAttempt,
    InvocationLog,
    Layer,
    LayerVersion,
)
from engine.services.invocations import InvocationDetail


def _ts(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def function_view(fn: Function, *, code: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": fn.id,
        "name": fn.name,
        "description": fn.description,
        "tags": fn.tags,
        "runtime": fn.runtime,
        "handler": fn.handler,
        "code_hash": fn.code_hash,
        "memory_mb": fn.memory_mb,
        "timeout_sec": fn.timeout_sec,
        "max_concurrency": fn.max_concurrency,
        "min_warm": fn.min_warm,
        "retry_attempts": fn.retry_attempts,
        "retry_backoff_ms": fn.retry_backoff_ms,
        "retry_backoff_max_ms": fn.retry_backoff_max_ms,
        "network": fn.network,
        "executor": fn.executor,
        "image": fn.image,
        "env_vars": fn.env_vars,
        "secrets": "<encrypted>" if fn.secrets else None,
        "status": fn.status,
        "status_message": fn.status_message,
        "enabled": fn.status == "active",
        "version": fn.version,
        "latest_published_version": fn.latest_published or None,
        "code_size": sum(len(t.encode()) for t in fn.files.values()),
        "created_by": fn.created_by,
        "created_at": _ts(fn.created_at),
        "updated_at": _ts(fn.updated_at),
        "last_deployed_at": _ts(fn.last_deployed_at),
    }
    if code:
        data["code"] = fn.code
        data["files"] = fn.files
    return data


def version_view(v: FunctionVersion, *, code: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": v.id,
        "function_id": v.function_id,
        "version": v.version,
        "description": v.description,
        "runtime": v.runtime,
        "handler": v.handler,
        "code_hash": v.code_hash,
        "memory_mb": v.memory_mb,
        "timeout_sec": v.timeout_sec,
        "env_vars": v.env_vars,
        "layers": v.layers,
        "created_by": v.created_by,
        "created_at": _ts(v.created_at),
    }
    if code:
        data["code"] = v.code
        data["files"] = v.files
    return data


def invocation_view(inv: Invocation) -> dict[str, Any]:
    return {
        "id": inv.id,
        "request_id": inv.id,
        "function_id": inv.function_id,
        "function_name": inv.function_name,
        "version": inv.version,
        "environment": inv.environment,
        "source": inv.source,
        "trigger_type": inv.source,
        "mode": inv.mode,
        "status": inv.status,
        "status_code": inv.status_code,
        "input_size": inv.input_size,
        "output_size": inv.output_size,
        "error_type": inv.error_type,
        "error_message": inv.error_message,
        "error": inv.error_message,
        "cold": inv.cold,
        "cold_start": inv.cold,
        "init_ms": inv.init_ms,
        "duration_ms": inv.duration_ms,
        "peak_memory_kb": inv.peak_memory_kb,
        "billed_ms": inv.billed_ms,
        "billed_time_ms": inv.billed_ms,
        "billed_gb_s": inv.billed_gb_s,
        "attempt": inv.attempt,
        "max_attempts": inv.max_attempts,
        "replay_of": inv.replay_of,
        "trace_id": inv.trace_id,
        "idempotency_key": inv.idempotency_key,
        "node": inv.node,
        "actor": inv.actor,
        "created_at": _ts(inv.created_at),
        "started_at": _ts(inv.started_at),
        "ended_at": _ts(inv.ended_at),
    }


def attempt_view(a: InvocationAttempt) -> dict[str, Any]:
    return {
        "attempt": a.attempt,
        "status": a.status,
        "error_type": a.error_type,
        "error_message": a.error_message,
        "cold": a.cold,
        "duration_ms": a.duration_ms,
        "started_at": _ts(a.started_at),
        "ended_at": _ts(a.ended_at),
    }


def invocation_detail_view(detail: InvocationDetail) -> dict[str, Any]:
    return {
        **invocation_view(detail.invocation),
        "input": detail.input,
        "output": detail.output,
        "error_stack": detail.invocation.error_stack,
        "logs": detail.logs,
        "attempts": [attempt_view(a) for a in detail.attempts],
    }


def log_view(row: InvocationLog) -> dict[str, Any]:
    return {
        "id": row.id,
        "invocation_id": row.invocation_id,
        "function_id": row.function_id,
        "attempt": row.attempt,
        "level": row.level,
        "message": row.message,
        "truncated": row.truncated,
        "created_at": _ts(row.created_at),
    }


def dlq_view(msg: DeadLetter) -> dict[str, Any]:
    return {
        "id": msg.id,
        "function_id": msg.function_id,
        "function_name": msg.function_name,
        "original_request_id": msg.original_request_id,
        "payload": msg.payload,
        "error": msg.error,
        "attempts": msg.attempts,
        "retry_count": msg.retry_count,
        "status": msg.status,
        "source": msg.source,
        "created_at": _ts(msg.created_at),
        "last_retry_at": _ts(msg.last_retry_at),
        "resolved_at": _ts(msg.resolved_at),
    }


def layer_view(layer: Layer) -> dict[str, Any]:
    return {
        "id": layer.id,
        "name": layer.name,
        "description": layer.description,
        "compatible_runtimes": layer.compatible_runtimes,
        "latest_version": layer.latest_version,
        "created_by": layer.created_by,
        "created_at": _ts(layer.created_at),
        "updated_at": _ts(layer.updated_at),
    }


def layer_version_view(v: LayerVersion, *, detail: bool = False) -> dict[str, Any]:
    """A layer version without its content; `detail` adds the manifest and the build log."""
    data: dict[str, Any] = {
        "id": v.id,
        "layer_id": v.layer_id,
        "version": v.version,
        "source": v.source,
        "status": v.status,
        "error": v.error or None,
        "content_hash": v.content_hash or None,
        "size_bytes": v.size_bytes,
        "file_count": v.file_count,
        "created_by": v.created_by,
        "created_at": _ts(v.created_at),
        "finished_at": _ts(v.finished_at),
    }
    if detail:
        data["manifest"] = v.manifest
        data["build_log"] = v.build_log
    return data


def build_view(b: Build, *, log: bool = False) -> dict[str, Any]:
    """A Go/Rust build; `log` adds the compiler output (lists leave it out: it can be long)."""
    data: dict[str, Any] = {
        "id": b.id,
        "function_id": b.function_id,
        "function_name": b.function_name,
        "runtime": b.runtime,
        "code_hash": b.code_hash,
        "status": b.status,
        "error": b.error or None,
        "cached": b.cached,
        "duration_ms": b.duration_ms,
        "created_by": b.created_by,
        "created_at": _ts(b.created_at),
        "finished_at": _ts(b.finished_at),
    }
    if log:
        data["log"] = b.log
    return data
