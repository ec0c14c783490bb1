"""Signing and verifying webhook requests with HMAC-SHA256 (pure functions, constant-time compares).

Two formats, both over the raw request body:
- `github`: `X-Hub-Signature-256: sha256=<hex>`, the HMAC of the body (GitHub's format; no timestamp, so
  it cannot tell a replay from the original).
- `timestamp`: `X-Nimbus-Signature: t=<unix seconds>,v1=<hex>`, the HMAC of `f"{t}."` + body (Stripe's
  scheme). A request whose `t` is further than the tolerance from now is refused as stale, which bounds
  the window in which a captured request can be replayed. Several `v1=` entries may be sent (a sender
  signing with an old and a new secret while it rotates); one match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SCHEMES = ("none", "github", "timestamp")
GITHUB_HEADER = "x-hub-signature-256"
TIMESTAMP_HEADER = "x-nimbus-signature"
DEFAULT_TOLERANCE_SEC = 300
_MAX_HEADER_CHARS = 4096  # a real header is < 200 characters; do not parse megabytes of one


class SignatureError(Exception):
    """Why a request's signature was refused: `reason` is a short code kept in the call history."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # signature_missing | signature_malformed | signature_invalid | timestamp_stale
        self.message = message


@dataclass(frozen=True, slots=True)
class Verified:
    scheme: str
    timestamp: int | None = None  # the signed `t` of the timestamp scheme


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: str | bytes, message: bytes) -> str:
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign_github(secret: str | bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value for `body`."""
    return "sha256=" + _mac(secret, body)


def sign_timestamped(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The `X-Nimbus-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, str(timestamp).encode() + b'.' + body)}"


def signature_headers(scheme: str, secret: str | bytes, body: bytes, now: float) -> dict[str, str]:
    """The header a sender adds to sign `body` in `scheme` (for tests, the bench and the console's help)."""
    if scheme == "github":
        return {"X-Hub-Signature-256": sign_github(secret, body)}
    if scheme == "timestamp":
        return {"X-Nimbus-Signature": sign_timestamped(secret, body, int(now))}
    return {}


def _matches(expected_hex: str, candidates: Iterable[str]) -> bool:
    """Constant-time comparison against every candidate (no early exit on the first match either)."""
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(expected_hex.encode(), candidate.strip().lower().encode())
    return found


def verify(
    scheme: str,
    secrets: Iterable[str | bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_sec: int = DEFAULT_TOLERANCE_SEC,
) -> Verified:
    """Check `body`'s signature in `headers` (lower-case names) against any of `secrets`; raise
    SignatureError with the reason when it does not hold. The signature is checked before the timestamp,
    so "stale" always means a genuinely signed but old (or replayed) request."""
    keys = [_key(s) for s in secrets if s]
    if scheme == "none":
        return Verified("none")
    if scheme not in SCHEMES:
        raise SignatureError("signature_invalid", f"unknown signature scheme {scheme!r}")
    if not keys:
        raise SignatureError("signature_invalid", "the webhook has no signing secret")
    if scheme == "github":
        return _verify_github(keys, headers, body)
    return _verify_timestamped(keys, headers, body, now=now, tolerance_sec=tolerance_sec)


def _verify_github(keys: list[bytes], headers: Mapping[str, str], body: bytes) -> Verified:
    value = headers.get(GITHUB_HEADER, "")
    if not value:
        raise SignatureError("signature_missing", "missing X-Hub-Signature-256 header")
    if len(value) > _MAX_HEADER_CHARS:
        raise SignatureError("signature_malformed", "X-Hub-Signature-256 header is too long")
    algorithm, _, digest = value.strip().partition("=")
    if algorithm.lower() != "sha256" or not digest:
        raise SignatureError("signature_malformed", "X-Hub-Signature-256 must be sha256=<hex digest>")
    if not any(_matches(_mac(key, body), [digest]) for key in keys):
        raise SignatureError("signature_invalid", "signature does not match the request body")
    return Verified("github")


def _verify_timestamped(
    keys: list[bytes], headers: Mapping[str, str], body: bytes, *, now: float, tolerance_sec: int
) -> Verified:
    value = headers.get(TIMESTAMP_HEADER, "")
    if not value:
        raise SignatureError("signature_missing", "missing X-Nimbus-Signature header")
    if len(value) > _MAX_HEADER_CHARS:
        raise SignatureError("signature_malformed", "X-Nimbus-Signature header is too long")
    stamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        name, _, item = part.strip().partition("=")
        if name == "t":
            try:
                stamp = int(item)
            except ValueError:
                raise SignatureError("signature_malformed", "t= must be unix seconds") from None
        elif name == "v1" and item:
            signatures.append(item)
    if stamp is None or not signatures:
        raise SignatureError("signature_malformed", "X-Nimbus-Signature must be t=<unix seconds>,v1=<hex>")
    signed = str(stamp).encode() + b"." + body
    if not any(_matches(_mac(key, signed), signatures) for key in keys):
        raise SignatureError("signature_invalid", "signature does not match the request body")
    age = now - stamp
    if abs(age) > tolerance_sec:
        when = f"{int(age)} s old" if age > 0 else f"{int(-age)} s in the future"
        raise SignatureError(
            "timestamp_stale", f"signature timestamp is {when}; the tolerance is {tolerance_sec} s"
        )
    return Verified("timestamp", stamp)
