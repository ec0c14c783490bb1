"""What workflow and execution requests may contain, validated once where data enters (the API uses these
as request bodies; the console calls the same service with plain dicts, which are validated the same way),
and the error an invalid definition raises: 422 with every problem and its path."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.errors import Invalid
from engine.workflows.model import MAX_TIMEOUT_SEC, Problem

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
MAX_TAGS = 20
MAX_BREAKPOINTS = 100
MAX_INPUT_BYTES = 256 * 1024  # Step Functions' payload limit
MAX_WAIT_SEC = 300  # a synchronous start waits at most this long
EXECUTION_STATUSES = ("pending", "running", "paused", "succeeded", "failed", "cancelled", "timeout")
WORKFLOW_STATUSES = ("active", "inactive")
SOURCES = ("api", "console", "cli", "cron", "webhook", "workflow")


class InvalidDefinition(Invalid):
    """A definition with problems: the error body lists every one of them with its path."""

    def __init__(self, problems: list[Problem], *, field: str = "definition") -> None:
        first = f"{problems[0].path}: {problems[0].message}" if problems else "not a definition"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(field, f"invalid workflow definition: {first}{more}")
        self.problems = problems

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        body["error"]["problems"] = [p.to_dict() for p in self.problems]  # type: ignore[index]
        return body


def check_input(value: Any, field: str = "input") -> Any:
    """A JSON value of at most MAX_INPUT_BYTES, or Invalid."""
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise Invalid(field, f"{field} must be JSON: {exc}") from None
    if size > MAX_INPUT_BYTES:
        raise Invalid(field, f"{field} is {size} bytes; the limit is {MAX_INPUT_BYTES}")
    return value


def check_breakpoints(states: list[str], definition: Any) -> None:
    """Every breakpoint names a top-level state of the definition, or Invalid("breakpoints")."""
    known = (definition or {}).get("states", {}) if isinstance(definition, Mapping) else {}
    for state in states:
        if state not in known:
            raise Invalid("breakpoints", f"the workflow has no top-level state named {state!r}")


def check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError("name must start with a letter and hold 1-64 letters, digits, '-', '_' or '.'")
    return value


def _check_names(values: list[str], what: str, limit: int, length: int) -> list[str]:
    if len(values) > limit:
        raise ValueError(f"at most {limit} {what}s")
    for value in values:
        if not value or len(value) > length:
            raise ValueError(f"a {what} is 1 to {length} characters")
    return list(dict.fromkeys(values))


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkflowCreate(_Request):
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=2000)
    definition: dict[str, Any]  # Nimbus JSON or Amazon States Language
    timeout_sec: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_SEC)  # default: the setting
    tags: list[str] = Field(default_factory=list)
    breakpoints: list[str] = Field(default_factory=list)
    status: Literal["active", "inactive"] = "active"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        return _check_names(v, "tag", MAX_TAGS, 32)

    @field_validator("breakpoints")
    @classmethod
    def _breakpoints(cls, v: list[str]) -> list[str]:
        return _check_names(v, "breakpoint", MAX_BREAKPOINTS, 128)


class WorkflowUpdate(_Request):
    name: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=2000)
    definition: dict[str, Any] | None = None
    timeout_sec: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_SEC)
    tags: list[str] | None = None
    breakpoints: list[str] | None = None
    status: Literal["active", "inactive"] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_names(v, "tag", MAX_TAGS, 32)

    @field_validator("breakpoints")
    @classmethod
    def _breakpoints(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_names(v, "breakpoint", MAX_BREAKPOINTS, 128)


class BreakpointsBody(_Request):
    breakpoints: list[str]

    @field_validator("breakpoints")
    @classmethod
    def _breakpoints(cls, v: list[str]) -> list[str]:
        return _check_names(v, "breakpoint", MAX_BREAKPOINTS, 128)


class ExecutionBreakpoint(_Request):
    before_state: str = Field(min_length=1, max_length=128)


class StartBody(BaseModel):
    """POST /workflows/{id}/executions: `{input?, name?, version?, breakpoints?}` (the original's body;
    unknown fields are ignored as it did)."""

    model_config = ConfigDict(extra="ignore")
    input: Any = None
    name: str = Field(default="", max_length=128)
    version: int | None = Field(default=None, ge=1)
    breakpoints: list[str] | None = None


class InputBody(BaseModel):
    """`{input}` for resume/continue/step and PUT .../input; absent = keep the paused input."""

    model_config = ConfigDict(extra="forbid")
    input: Any = None
