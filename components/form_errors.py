"""A function form's invalid input as a sentence on the field it names: request-model validation errors,
whole-number checks, and putting those messages on (or clearing them from) the form's inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from nicegui import ui
from pydantic import BaseModel, ValidationError

from components.feedback import Failed
from engine.services.function_schemas import FunctionUpdate

M = TypeVar("M", bound=BaseModel)

LABELS = {
    "name": "Name",
    "description": "Description",
    "tags": "Tags",
    "handler": "Handler",
    "memory_mb": "Memory (MB)",
    "timeout_sec": "Timeout (s)",
    "max_concurrency": "Max concurrency",
    "min_warm": "Keep warm",
    "retry_attempts": "Retry attempts",
    "retry_backoff_ms": "First backoff (ms)",
    "retry_backoff_max_ms": "Max backoff (ms)",
    "env_vars": "Environment variables",
    "secrets": "Secrets",
    "executor": "Executor",
    "image": "Image",
}

# What a field checked by a pattern must look like, for its error message.
FORMATS = {"image": "a lowercase image reference like python:3.11-slim"}


def field_message(exc: ValidationError, model: type[BaseModel] = FunctionUpdate) -> tuple[str | None, str]:
    """(field, a sentence naming it) for the first error of a create/update request."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error.get("loc") else None
    label = LABELS.get(field or "", field or "Input")
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind in ("greater_than_equal", "less_than_equal") and field in model.model_fields:
        low, high = _bounds(model, field)
        return field, f"{label} must be between {low} and {high}."
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return field, f"{label} must be a whole number."
    if kind == "string_too_long":
        return field, f"{label} must be at most {ctx.get('max_length')} characters."
    if kind == "missing":
        return field, f"{label} is required."
    if kind == "string_pattern_mismatch" and field in FORMATS:
        return field, f"{label} must be {FORMATS[field]}."
    return field, str(error.get("msg", "invalid input")).removeprefix("Value error, ")


def build(make: Callable[[], M]) -> M | Failed:
    """A request model, or a Failed naming the field when the input does not validate."""
    try:
        return make()
    except ValidationError as exc:
        field, message = field_message(exc)
        return Failed(message, field)


def whole(value: float | int | None, field: str) -> int | Failed:
    """A number input's value as an int, or a Failed explaining why it is not one."""
    if value is None:
        return Failed(f"{LABELS.get(field, field)} is required.", field)
    if float(value) != int(value):
        return Failed(f"{LABELS.get(field, field)} must be a whole number.", field)
    return int(value)


def show_error(failed: Failed, fields: Mapping[str, Any], fallback: ui.label) -> None:
    """Put a failure's message on the input of the field it names, else in `fallback`."""
    target = fields.get(failed.field or "")
    if target is not None:
        target.error = failed.message
    else:
        fallback.set_text(failed.message)
        fallback.set_visibility(True)


def clear_errors(fields: Mapping[str, Any], fallback: ui.label) -> None:
    for element in fields.values():
        element.error = None
    fallback.set_text("")
    fallback.set_visibility(False)


def _bounds(model: type[BaseModel], field: str) -> tuple[Any, Any]:
    metadata = model.model_fields[field].metadata
    low = next((m.ge for m in metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in metadata if hasattr(m, "le")), None)
    return low, high
