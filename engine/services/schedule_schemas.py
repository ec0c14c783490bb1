"""What schedule requests may contain, validated once where data enters (the API uses these as request
bodies; the console reaches the same service through `validated`, so the same rules hold). The cron
expression and timezone are checked by engine/cron.py, which gives the reason when one is invalid."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.cron import MAX_EXPRESSION_CHARS

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
MISFIRE_POLICIES = ("skip", "run_once")
MAX_PAYLOAD_BYTES = 64 * 1024
PREVIEW_COUNT = 5

MisfirePolicy = Literal["skip", "run_once"]


def check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError("name must start with a letter and hold 1-64 letters, digits, '-' or '_'")
    return value


def check_payload(value: Any) -> Any:
    if len(json.dumps(value, separators=(",", ":"))) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload is larger than {MAX_PAYLOAD_BYTES // 1024} KiB")
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleCreate(_Request):
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=1000)
    target_type: str = Field(default="function", max_length=16)
    target_id: str = Field(min_length=1, max_length=64, description="the target's id or name")
    payload: Any = Field(default_factory=dict)
    cron: str = Field(max_length=MAX_EXPRESSION_CHARS)
    timezone: str = Field(default="UTC", max_length=64)
    misfire_policy: MisfirePolicy = "skip"
    paused: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("payload")
    @classmethod
    def _payload(cls, v: Any) -> Any:
        return check_payload(v)


class ScheduleUpdate(_Request):
    """PUT /schedules/{id}: the fields sent change, the rest stay."""

    name: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=1000)
    target_type: str | None = Field(default=None, max_length=16)
    target_id: str | None = Field(default=None, min_length=1, max_length=64)
    payload: Any = None
    cron: str | None = Field(default=None, max_length=MAX_EXPRESSION_CHARS)
    timezone: str | None = Field(default=None, max_length=64)
    misfire_policy: MisfirePolicy | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v)

    @field_validator("payload")
    @classmethod
    def _payload(cls, v: Any) -> Any:
        return check_payload(v)


class PreviewRequest(_Request):
    cron: str = Field(max_length=MAX_EXPRESSION_CHARS)
    timezone: str = Field(default="UTC", max_length=64)
    count: int = Field(default=PREVIEW_COUNT, ge=1, le=50)
