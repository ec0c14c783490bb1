"""The registry of runtime settings: what each key is (type, default, bounds, group, description, whether
it is sensitive, and whether a change applies live or at the next start), and how a submitted value is
checked. Pure: no database. Other modules add their own settings at import with `register(...)`.

A value submitted for a setting is validated by `SettingSpec.coerce`: the right type (whole numbers for
`int`; numeric strings are accepted, as the original API sent every value as a string), inside
min/max, one of `choices`, and for strings within `max_length` and `pattern`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from engine.errors import Invalid

SettingType = Literal["int", "float", "bool", "string", "string_list"]
Apply = Literal["live", "restart"]

# Groups in the order the API and the Settings page show them; `register_group` adds more.
GROUPS: dict[str, str] = {
    "general": "General",
    "functions": "Functions",
    "workflows": "Workflows",
    "security": "Security",
}

_KEY_RE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True, slots=True)
class SettingSpec:
    key: str
    type: SettingType
    default: Any
    group: str
    label: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    sensitive: bool = False  # the console asks for confirmation before changing it
    apply: Apply = "live"  # restart: stored now, in effect from the next start
    max_length: int = 512  # strings, and each item of a string list
    max_items: int = 50  # string lists
    pattern: str = ""  # strings and list items must match it (full match) when given
    pattern_hint: str = ""  # what `pattern` means, for the error message
    # The start-up Settings field (engine/config.py) that gives this setting its default; for a restart
    # setting it also receives the stored value when the platform starts. config value = value * scale.
    config_field: str = ""
    config_scale: int = 1
    check: Callable[[Any], str | None] | None = None  # an extra rule: a message when the value breaks it

    def coerce(self, value: Any) -> Any:
        """The value in this setting's type, or Invalid("value", why not)."""
        try:
            result = _CONVERT[self.type](self, value)
        except _Refused as refused:
            raise Invalid("value", f"{self.key}: {refused}") from None
        if self.check is not None:
            problem = self.check(result)
            if problem:
                raise Invalid("value", f"{self.key}: {problem}")
        return result

    def default_from(self, config: Any) -> Any:
        """The default: the start-up configuration's value when it has one, else `default`."""
        if self.config_field and config is not None and hasattr(config, self.config_field):
            raw = getattr(config, self.config_field)
            if self.type == "int":
                return -(-int(raw) // self.config_scale)  # rounded up: never below the configured limit
            return raw
        return self.default

    def to_config(self, value: Any) -> Any:
        return value * self.config_scale if self.type in ("int", "float") else value


class _Refused(Exception):
    pass


def _bounds(spec: SettingSpec, number: float) -> None:
    low, high = spec.minimum, spec.maximum
    unit = f" {spec.unit}" if spec.unit else ""
    if (low is not None and number < low) or (high is not None and number > high):
        if low is not None and high is not None:
            raise _Refused(f"must be between {_num(low)} and {_num(high)}{unit}")
        if low is not None:
            raise _Refused(f"must be at least {_num(low)}{unit}")
        raise _Refused(f"must be at most {_num(high)}{unit}")  # type: ignore[arg-type]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _to_int(spec: SettingSpec, value: Any) -> int:
    if isinstance(value, bool):
        raise _Refused("must be a whole number, not true/false")
    numeric_text = isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value)
    if numeric_text or (isinstance(value, float) and value.is_integer()):
        value = int(value)
    if not isinstance(value, int):
        raise _Refused("must be a whole number")
    _bounds(spec, value)
    return value


def _to_float(spec: SettingSpec, value: Any) -> float:
    if isinstance(value, bool):
        raise _Refused("must be a number, not true/false")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _Refused("must be a number") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise _Refused("must be a finite number")
    _bounds(spec, float(value))
    return float(value)


def _to_bool(spec: SettingSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _Refused("must be true or false")


def _text(spec: SettingSpec, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _Refused(f"{what} must be text")
    value = value.strip()
    if len(value) > spec.max_length:
        raise _Refused(f"{what} must be at most {spec.max_length} characters")
    if value and spec.pattern and not re.fullmatch(spec.pattern, value):
        raise _Refused(f"{what} {value!r} is not {spec.pattern_hint or 'in the expected form'}")
    return value


def _to_string(spec: SettingSpec, value: Any) -> str:
    text = _text(spec, value, "the value")
    if spec.choices and text not in spec.choices:
        raise _Refused(f"must be one of {', '.join(spec.choices)}")
    return text


def _to_list(spec: SettingSpec, value: Any) -> list[str]:
    if isinstance(value, str):  # the original console sent lists as comma-separated text
        value = [part for part in value.replace("\n", ",").split(",") if part.strip()]
    if not isinstance(value, list):
        raise _Refused("must be a list of text values")
    if len(value) > spec.max_items:
        raise _Refused(f"must hold at most {spec.max_items} items")
    items = [_text(spec, item, "each item") for item in value]
    if any(not item for item in items):
        raise _Refused("items must not be empty")
    if spec.choices and (bad := [i for i in items if i not in spec.choices]):
        raise _Refused(f"{bad[0]!r} is not one of {', '.join(spec.choices)}")
    return list(dict.fromkeys(items))  # in order, without repeats


_CONVERT: dict[str, Callable[[SettingSpec, Any], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "string": _to_string,
    "string_list": _to_list,
}

# --- the registry -----------------------------------------------------------------------------------

_REGISTRY: dict[str, SettingSpec] = {}


def register_group(group: str, label: str) -> None:
    """Add a group (shown after the ones before it). Registering it again changes nothing."""
    GROUPS.setdefault(group, label)


def register(*specs: SettingSpec) -> None:
    """Add settings. A module may register at import, also when it is imported again (the same spec is
    accepted twice); two different specs under one key are a programming error."""
    for spec in specs:
        if not _KEY_RE.match(spec.key):
            raise ValueError(f"setting key {spec.key!r} must be lowercase letters, digits, '_' or '.'")
        if spec.type not in _CONVERT:
            raise ValueError(f"setting {spec.key!r} has unknown type {spec.type!r}")
        if spec.group not in GROUPS:
            raise ValueError(f"setting {spec.key!r}: unknown group {spec.group!r} (register_group first)")
        known = _REGISTRY.get(spec.key)
        if known is not None and replace(known, check=None) != replace(spec, check=None):
            raise ValueError(f"setting {spec.key!r} is already registered differently")
        spec.coerce(spec.default)  # a default that breaks its own rules is a programming error
        _REGISTRY[spec.key] = spec


def registered() -> list[SettingSpec]:
    """Every setting, by group order then key."""
    order = {group: i for i, group in enumerate(GROUPS)}
    return sorted(_REGISTRY.values(), key=lambda s: (order.get(s.group, len(order)), s.key))


def lookup(key: str) -> SettingSpec | None:
    return _REGISTRY.get(key)


def _url(value: str) -> str | None:
    if not value or re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        return None
    return "must be an http(s) URL like https://nimbus.example.com"


def _origins(values: Iterable[str]) -> str | None:
    for origin in values:
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", origin):
            return f"{origin!r} is not an origin like https://example.com (scheme, host, optional port) or *"
    return None


# --- the platform's own settings ------------------------------------------------------------------

API_ADDRESS = "api_address"
DEFAULT_TIMEOUT = "default_timeout"
DEFAULT_MEMORY = "default_memory"
MAX_CODE_SIZE = "max_code_size"
MAX_CONCURRENCY = "max_concurrency"
QUEUE_WORKERS = "queue_workers"
WORKFLOW_DEFAULT_TIMEOUT = "workflow_default_timeout"
WORKFLOW_MAX_STATES = "workflow_max_states"
API_KEY_EXPIRY_DAYS = "api_key_expiry_days"
CORS_ALLOWED_ORIGINS = "cors_allowed_origins"

register(
    SettingSpec(
        API_ADDRESS,
        "string",
        "",
        "general",
        "API address",
        "The address clients use to reach this platform's API (the webhook URLs the console shows). "
        "Empty: the address the request came in on.",
        max_length=256,
        check=_url,
    ),
    SettingSpec(
        DEFAULT_TIMEOUT,
        "int",
        30,
        "general",
        "Default timeout",
        "The timeout of a function created without one.",
        minimum=1,
        maximum=300,
        unit="s",
    ),
    SettingSpec(
        DEFAULT_MEMORY,
        "int",
        256,
        "functions",
        "Default memory",
        "The memory limit of a function created without one.",
        minimum=128,
        maximum=3072,
        unit="MB",
    ),
    SettingSpec(
        MAX_CODE_SIZE,
        "int",
        512,
        "functions",
        "Max code size",
        "The largest a function's files may be, all together; checked when code is saved.",
        minimum=1,
        maximum=50 * 1024,
        unit="KiB",
        config_field="max_code_bytes",
        config_scale=1024,
    ),
    SettingSpec(
        MAX_CONCURRENCY,
        "int",
        32,
        "functions",
        "Max concurrency",
        "Invocations running at once on this node, over all functions. Callers beyond it wait for a slot.",
        minimum=1,
        maximum=1000,
        config_field="max_concurrency",
    ),
    SettingSpec(
        QUEUE_WORKERS,
        "int",
        32,
        "functions",
        "Async workers",
        "Async invocations each node runs at once from the durable queue.",
        minimum=1,
        maximum=512,
        apply="restart",
        config_field="queue_workers",
    ),
    SettingSpec(
        WORKFLOW_DEFAULT_TIMEOUT,
        "int",
        3600,
        "workflows",
        "Default timeout",
        "The execution time limit of a workflow created without one.",
        minimum=1,
        maximum=86400,
        unit="s",
    ),
    SettingSpec(
        WORKFLOW_MAX_STATES,
        "int",
        100,
        "workflows",
        "Max states",
        "The most states one workflow definition may hold.",
        minimum=1,
        maximum=1000,
    ),
    SettingSpec(
        API_KEY_EXPIRY_DAYS,
        "int",
        0,
        "security",
        "API key expiry",
        "Days until a new API key expires when its creator sets no expiry (0: never).",
        minimum=0,
        maximum=3650,
        unit="days",
        sensitive=True,
    ),
    SettingSpec(
        CORS_ALLOWED_ORIGINS,
        "string_list",
        [],
        "security",
        "Allowed CORS origins",
        "Web origins whose pages may call the API from a browser (e.g. https://app.example.com); "
        "* allows any. Empty: none.",
        max_length=256,
        sensitive=True,
        check=_origins,
    ),
)
