"""What environment and deployment requests may contain, validated once where data enters (the API uses
these as request bodies; the console and CLI reach the same service, so the same rules hold)."""

from __future__ import annotations

import re
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.errors import Invalid
from engine.services.function_schemas import ENV_KEY_RE, RESERVED_ENV

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_VARIABLES = 100
MAX_VALUE_CHARS = 8192

M = TypeVar("M", bound=BaseModel)


def check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(
            "name must start with a lowercase letter and hold 1-32 lowercase letters, digits, '-' or '_'"
        )
    return value


def check_variables(values: dict[str, str] | None, what: str) -> dict[str, str] | None:
    """Names a process can see (and the platform does not reserve), a bounded count, bounded values."""
    if values is None:
        return None
    if len(values) > MAX_VARIABLES:
        raise ValueError(f"at most {MAX_VARIABLES} {what}s")
    for key, value in values.items():
        if not ENV_KEY_RE.match(key):
            raise ValueError(f"{what} name {key!r} is not a valid identifier")
        if key.startswith(RESERVED_ENV):
            raise ValueError(f"{what} name {key!r} is reserved by the platform")
        if value is not None and len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"{what} {key!r} is longer than {MAX_VALUE_CHARS} characters")
    return values


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvironmentCreate(_Request):
    name: str = Field(max_length=32)
    description: str = Field(default="", max_length=1000)
    position: int | None = Field(default=None, ge=0, le=10_000)  # default: after the last one
    is_default: bool = False
    env_vars: dict[str, str] | None = None
    secrets: dict[str, str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("env_vars")
    @classmethod
    def _env(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return check_variables(v, "environment variable")

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return check_variables(v, "secret")


class EnvironmentUpdate(_Request):
    name: str | None = Field(default=None, max_length=32)
    description: str | None = Field(default=None, max_length=1000)
    position: int | None = Field(default=None, ge=0, le=10_000)
    is_default: bool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v)


class VariablesUpdate(_Request):
    """PUT /environments/{env}/variables: the whole set of variables (names not sent are removed)."""

    env_vars: dict[str, str]

    @field_validator("env_vars")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        return check_variables(v, "environment variable") or {}


class SecretsChange(_Request):
    """PUT /environments/{env}/secrets: set (a value) or remove (null) single secrets; the rest stay, so
    a caller never needs the other secrets' plaintext to change one."""

    secrets: dict[str, str | None]

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        check_variables({k: x or "" for k, x in v.items()}, "secret")
        return v


class DeployRequest(_Request):
    """PUT /functions/{id}/environments/{env}: an upsert. A field left out keeps its deployed value (a new
    deployment starts at $LATEST with no overrides); `version: null` deploys $LATEST; a null override
    falls back to the function's own value."""

    version: int | None = Field(default=None, ge=1)
    env_vars: dict[str, str] | None = None
    memory_mb: int | None = Field(default=None, ge=128, le=3072)
    timeout_sec: int | None = Field(default=None, ge=1, le=300)

    @field_validator("env_vars")
    @classmethod
    def _env(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return check_variables(v, "environment variable")


def validated(model: type[M], **values: object) -> M:
    """`model(**values)`, or Invalid naming the first offending field (for callers that are not the API,
    whose request bodies FastAPI validates itself)."""
    try:
        return model(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error.get("loc", ())) or None
        message = str(error.get("msg", "invalid input")).removeprefix("Value error, ")
        raise Invalid(field, f"{field}: {message}" if field else message) from None
