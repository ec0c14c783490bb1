"""What a webhook's configuration may hold, validated once where it enters (the API's request body; the
console builds the same model, so the same rules hold everywhere)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.errors import Invalid
from engine.services.webhook_signatures import DEFAULT_TOLERANCE_SEC

MODES = ("sync", "async")
MAX_ALLOWED_NETWORKS = 100
MAX_RATE_PER_MIN = 1_000_000
# Fields that may be set to null: the target's own retry policy applies.
NULLABLE = frozenset({"retry_attempts", "retry_backoff_ms", "retry_backoff_max_ms"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(value: str) -> Network:
    """A CIDR (or a single address, taken as /32 or /128); host bits are masked off."""
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR range") from None


def normalize_networks(values: list[str]) -> list[str]:
    """Canonical, de-duplicated CIDR strings in the order given (IPv4 and IPv6)."""
    if len(values) > MAX_ALLOWED_NETWORKS:
        raise ValueError(f"at most {MAX_ALLOWED_NETWORKS} entries")
    seen: dict[str, None] = {}
    for value in values:
        if value.strip():
            seen.setdefault(str(parse_network(value)), None)
    return list(seen)


class WebhookUpdate(BaseModel):
    """PUT /functions/{id}/webhook: only the fields sent change. `allowed_ips: []` allows every address;
    `rate_limit_per_min: 0` means unlimited; a retry field set to null falls back to the target's policy."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["sync", "async"] | None = None
    signature_scheme: Literal["none", "github", "timestamp"] | None = None
    tolerance_sec: int | None = Field(default=None, ge=1, le=86_400)
    allowed_ips: list[str] | None = None
    rate_limit_per_min: int | None = Field(default=None, ge=0, le=MAX_RATE_PER_MIN)
    retry_attempts: int | None = Field(default=None, ge=1, le=10)
    retry_backoff_ms: int | None = Field(default=None, ge=0, le=3_600_000)
    retry_backoff_max_ms: int | None = Field(default=None, ge=0, le=86_400_000)

    @field_validator("allowed_ips")
    @classmethod
    def _networks(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else normalize_networks(v)

    def changes(self) -> dict[str, object]:
        """The fields the caller sent, with their values; a null where null means nothing raises."""
        values = {name: getattr(self, name) for name in self.model_fields_set}
        for name, value in values.items():
            if value is None and name not in NULLABLE:
                raise Invalid(name, f"{name} must not be null")
        return values


DEFAULTS = {
    "mode": "sync",
    "signature_scheme": "none",
    "tolerance_sec": DEFAULT_TOLERANCE_SEC,
    "allowed_ips": [],
    "rate_limit_per_min": 0,
}
