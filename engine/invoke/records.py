"""Turning one run into the row we keep: size-capped bodies (large ones spilled to files), billing,
and the public invoke response. Pure functions apart from the spill write."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from data.types import new_id
from engine.runtimes.base import ErrorInfo, ExecResult

BILLING_GRANULARITY_MS = 100  # the original platform's rule: round up to 100 ms, at least 100 ms

STATUS_CODES = {"success": 200, "failed": 500, "timeout": 504}


def billed(duration_ms: float, memory_mb: int) -> tuple[int, float]:
    """(billed milliseconds, GB-seconds)."""
    ms = max(BILLING_GRANULARITY_MS, math.ceil(duration_ms / BILLING_GRANULARITY_MS) * BILLING_GRANULARITY_MS)
    return ms, round(ms / 1000 * memory_mb / 1024, 6)


@dataclass(frozen=True, slots=True)
class StoredBody:
    value: Any  # inline JSON value, or None when spilled
    size: int
    ref: str | None  # file path of a spilled body


def store_body(value: Any, *, limit: int, spill_dir: Path, name: str) -> StoredBody:
    """Keep small bodies inline; write larger ones to `spill_dir/name.json` and keep only the path."""
    if value is None:
        return StoredBody(None, 0, None)
    text = json.dumps(value, separators=(",", ":"), default=str)
    size = len(text.encode())
    if size <= limit:
        return StoredBody(value, size, None)
    spill_dir.mkdir(parents=True, exist_ok=True)
    path = spill_dir / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return StoredBody(None, size, str(path))


def load_body(value: Any, ref: str | None, limit: int = 4 * 1024 * 1024) -> Any:
    """The stored body, reading a spilled one back (up to `limit` bytes; a marker beyond)."""
    if ref is None:
        return value
    try:
        path = Path(ref)
        if path.stat().st_size > limit:
            return {"_spilled": ref, "_size": path.stat().st_size, "_note": "too large to show inline"}
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"_spilled": ref, "_note": "body file is missing"}


def invocation_values(
    *,
    result: ExecResult,
    memory_mb: int,
    started_at: datetime,
    ended_at: datetime,
    output: StoredBody,
) -> dict[str, Any]:
    """Column values of an Invocation row that describe how the run went."""
    billed_ms, gb_s = billed(result.duration_ms, memory_mb)
    error: ErrorInfo | None = result.error
    return {
        "status": result.status,
        "status_code": STATUS_CODES[result.status],
        "output": output.value,
        "output_size": output.size,
        "output_ref": output.ref,
        "error_type": error.type if error else None,
        "error_message": error.message if error else None,
        "error_stack": error.stack if error else None,
        "cold": result.cold,
        "init_ms": result.init_ms,
        "duration_ms": round(result.duration_ms, 3),
        "peak_memory_kb": result.peak_memory_kb,
        "billed_ms": billed_ms,
        "billed_gb_s": gb_s,
        "started_at": started_at,
        "ended_at": ended_at,
    }


def log_rows(
    invocation_id: str, function_id: str, attempt: int, result: ExecResult, at: datetime
) -> list[dict[str, Any]]:
    """The InvocationLog row of one attempt's captured output (none when it printed nothing)."""
    if not result.logs:
        return []
    return [
        {
            "id": new_id(),
            "invocation_id": invocation_id,
            "function_id": function_id,
            "attempt": attempt,
            "level": "info" if result.ok else "error",
            "message": result.logs,
            "truncated": result.logs_truncated,
            "created_at": at,
        }
    ]


def invoke_response(request_id: str, version: str, result: ExecResult) -> dict[str, Any]:
    """The original API's invoke response, with a structured error and the captured logs."""
    billed_ms, _ = billed(result.duration_ms, 128)
    return {
        "request_id": request_id,
        "status_code": STATUS_CODES[result.status],
        "status": result.status,
        "body": result.result if result.ok else None,
        "error": result.error.to_dict() if result.error else None,
        "duration_ms": round(result.duration_ms, 3),
        "cold_start": result.cold,
        "init_ms": result.init_ms,
        "billed_time_ms": billed_ms,
        "peak_memory_kb": result.peak_memory_kb,
        "version": version,
        "logs": result.logs,
        "logs_truncated": result.logs_truncated,
    }
