"""What a function create/update request may contain, validated once where data enters (the API uses
these as request bodies; the CLI and console go through the same service, so the same rules hold)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# Runtime ids, with the original Nimbus ids accepted as aliases (DESIGN §13).
RUNTIMES = ("python", "nodejs", "go", "rust", "wasm")
RUNTIME_ALIASES = {
    "python3.11": "python",
    "python3": "python",
    "nodejs20": "nodejs",
    "node": "nodejs",
    "go1.24": "go",
    "rust1.75": "rust",
}
ENTRY_FILES = {
    "python": "main.py",
    "nodejs": "index.js",
    "go": "main.go",
    "rust": "lib.rs",
    "wasm": "module.wat",
}
WASM_WAT_FILE, WASM_BINARY_FILE = "module.wat", "module.wasm"  # the binary as base64 text
EXTENSIONS = {"python": ".py", "nodejs": ".js", "go": ".go", "rust": ".rs", "wasm": ".wat"}

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
HANDLER_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\.)?[A-Za-z_][A-Za-z0-9_]*$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FILE_RE = re.compile(r"^(?!/)(?!.*\.\.)[A-Za-z0-9_./-]{1,200}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_.:/=-]{1,64}$")
RESERVED_ENV = ("NIMBUS_", "PATH", "HOME", "LD_", "PYTHON")


def normalize_runtime(value: str) -> str:
    runtime = RUNTIME_ALIASES.get(value, value)
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {value!r}; use one of {', '.join(RUNTIMES)}")
    return runtime


def _check_env(values: dict[str, str] | None, what: str) -> dict[str, str] | None:
    if values is None:
        return None
    for key in values:
        if not ENV_KEY_RE.match(key):
            raise ValueError(f"{what} name {key!r} is not a valid identifier")
        if key.startswith(RESERVED_ENV):
            raise ValueError(f"{what} name {key!r} is reserved by the platform")
    return values


class _Config(BaseModel):
    """Fields shared by create and update; all optional here, defaults applied on create."""

    model_config = ConfigDict(extra="forbid")  # no whitespace stripping: code is data

    description: str | None = Field(default=None, max_length=1000)
    tags: list[str] | None = Field(default=None, max_length=32)
    handler: str | None = Field(default=None, max_length=256)
    code: str | None = None
    files: dict[str, str] | None = None
    binary: str | None = None  # wasm: a compiled module as base64 (stored as the text file module.wasm)
    memory_mb: int | None = Field(default=None, ge=128, le=3072)
    timeout_sec: int | None = Field(default=None, ge=1, le=300)
    max_concurrency: int | None = Field(default=None, ge=0, le=1000)
    min_warm: int | None = Field(default=None, ge=0, le=16)
    retry_attempts: int | None = Field(default=None, ge=1, le=10)
    retry_backoff_ms: int | None = Field(default=None, ge=0, le=3_600_000)
    retry_backoff_max_ms: int | None = Field(default=None, ge=0, le=86_400_000)
    network: bool | None = None
    executor: Literal["process", "docker"] | None = None
    # "" = no image (the docker executor then refuses: it needs one)
    image: str | None = Field(default=None, max_length=256, pattern=r"^([a-z0-9][a-z0-9._/:@-]*)?$")
    env_vars: dict[str, str] | None = None
    secrets: dict[str, str] | None = None

    @field_validator("handler")
    @classmethod
    def _handler(cls, v: str | None) -> str | None:
        if v is not None and not HANDLER_RE.match(v):
            raise ValueError("handler must look like 'module.function' or 'function'")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        for tag in v:
            if not TAG_RE.match(tag):
                raise ValueError(f"tag {tag!r} must be 1-64 letters, digits or _.:/=-")
        return sorted(set(v))

    @field_validator("files")
    @classmethod
    def _files(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return None
        if len(v) > 200:
            raise ValueError("at most 200 files")
        for path in v:
            if not FILE_RE.match(path):
                raise ValueError(f"file path {path!r} must be relative, without '..'")
        return v

    @field_validator("binary")
    @classmethod
    def _binary(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = "".join(v.split())  # base64 tools wrap lines
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"not valid base64 ({exc})") from None
        if not v:
            raise ValueError("is empty")
        return v

    @field_validator("env_vars")
    @classmethod
    def _env(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return _check_env(v, "environment variable")

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return _check_env(v, "secret")


class FunctionCreate(_Config):
    name: str = Field(max_length=64)
    runtime: str
    handler: str | None = Field(default=None, max_length=256)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("name must start with a letter and hold 1-64 letters, digits, '-' or '_'")
        return v

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, v: str) -> str:
        return normalize_runtime(v)

    @model_validator(mode="after")
    def _needs_code(self) -> FunctionCreate:
        if not self.code and not self.files and not self.binary:
            raise ValueError("code (or files, or a wasm binary) is required")
        return self


class FunctionUpdate(_Config):
    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, v: Any, info: ValidationInfo) -> Any:
        """An update changes what it names: JSON null is no value for a setting (leave the field out)."""
        if v is None:
            raise ValueError(f"{info.field_name} cannot be null: leave it out to keep the current value")
        return v


def entry_file(runtime: str, handler: str, files: dict[str, str]) -> str:
    """The file that holds the handler: `module.func` names the module; plain `func` means the entry."""
    ext = EXTENSIONS[runtime]
    if "." in handler and runtime in ("python", "nodejs"):
        module = handler.rsplit(".", 1)[0].replace(".", "/")
        for candidate in (module + ext, module + ".mjs", module + ".cjs"):
            if candidate in files:
                return candidate
        return module + ext
    if len(files) == 1:
        return next(iter(files))
    return ENTRY_FILES[runtime]


def default_handler(runtime: str) -> str:
    defaults = {"python": "main.handler", "nodejs": "index.handler", "go": "Handler", "wasm": "_start"}
    return defaults.get(runtime, "handler")


def assemble_files(
    runtime: str, handler: str, code: str | None, files: dict[str, str] | None, binary: str | None = None
) -> dict[str, str]:
    """Merge the single-file `code` field and the `files` map into one file set."""
    merged = dict(files or {})
    if runtime == "wasm" and (code is not None or binary is not None):
        # WAT text (code) and a compiled module (binary) are two forms of one module: the one sent
        # replaces the other, so the module that runs is always the one last sent.
        replaced = ".wat" if binary is not None else ".wasm"
        merged = {path: text for path, text in merged.items() if not path.endswith(replaced)}
        if code is not None:
            entry = entry_file(runtime, handler, merged)
            merged[entry if entry.endswith(".wat") else WASM_WAT_FILE] = code
        if binary is not None:
            merged[WASM_BINARY_FILE] = binary
        return merged
    if code is not None:
        merged[entry_file(runtime, handler, merged)] = code
    return merged


def public_fields(data: BaseModel) -> dict[str, Any]:
    return data.model_dump(exclude_unset=True)
