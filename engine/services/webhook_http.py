"""The HTTP side of a webhook call, as pure functions: the event a target gets from a request (non-JSON
bodies intact, as text or base64), the response a result becomes (a Lambda-style `{statusCode, headers,
body}` maps onto it; anything else is JSON), and what the history keeps (secret-bearing headers and query
parameters redacted, bodies capped)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

HISTORY_BODY_CAP = 16 * 1024  # bytes of a request or response body kept in the history
REDACTED = "[redacted]"
_SECRET_HEADER = re.compile(
    r"authorization|cookie|signature|secret|token|api[-_]?key|password|session|credential", re.I
)
_SECRET_PARAM = re.compile(r"sig|secret|token|key|password|auth|session|credential", re.I)
# Headers a function may not set on the response: the server owns framing and the connection.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}
)


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """One request to /webhook/{key}[/path], as the public router read it."""

    key: str
    method: str
    path: str  # below /webhook/{key}, starting with "/"
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]  # lower-case names, in the order received
    body: bytes
    source_ip: str
    body_size: int = -1  # the declared/observed size when the body was too large to read (body is b"")

    @property
    def size(self) -> int:
        return self.body_size if self.body_size >= 0 else len(self.body)

    def header_map(self) -> dict[str, str]:
        """First value per header (lower-case names), as the original platform passed them."""
        values: dict[str, str] = {}
        for name, value in self.headers:
            values.setdefault(name, value)
        return values


@dataclass(slots=True)
class Answer:
    """The HTTP response to send."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


class BadResult(Exception):
    """A Lambda-style result that cannot become a response (bad statusCode, undecodable base64)."""


# --- the event ------------------------------------------------------------------------------------


def decode_body(body: bytes, content_type: str) -> tuple[Any, str, bool]:
    """(body for the event, raw body as text or base64, is_base64_encoded). JSON is parsed when the
    content type says JSON or says nothing and it parses; other UTF-8 text stays text; anything else
    is base64."""
    if not body:
        return None, "", False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        encoded = base64.b64encode(body).decode("ascii")
        return encoded, encoded, True
    kind = content_type.split(";", 1)[0].strip().lower()
    if "json" in kind or not kind or kind == "text/plain":
        try:
            return json.loads(text), text, False
        except ValueError:
            pass
    return text, text, False


def build_event(
    request: IncomingRequest, *, webhook_id: str, request_id: str, received_at: str
) -> dict[str, Any]:
    """The event the target runs with: the original platform's fields (`source`, `webhook_key`,
    `method`, `headers` with the first value of each, `query` as lists, `body`) plus the path below the
    key, the raw body (for signature checks in user code) and the caller's address."""
    headers = request.header_map()
    body, raw, is_base64 = decode_body(request.body, headers.get("content-type", ""))
    query: dict[str, list[str]] = {}
    for name, value in request.query:
        query.setdefault(name, []).append(value)
    return {
        "source": "webhook",
        "webhook_id": webhook_id,
        "webhook_key": request.key,
        "request_id": request_id,
        "method": request.method,
        "path": request.path,
        "headers": headers,
        "query": query,
        "body": body,
        "raw_body": raw,
        "is_base64_encoded": is_base64,
        "source_ip": request.source_ip,
        "received_at": received_at,
    }


# --- the response ---------------------------------------------------------------------------------


def json_answer(status: int, value: Any, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps(value, separators=(",", ":"), default=str).encode()
    return Answer(status, body, dict(headers or {}))


def error_answer(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    """The platform's error shape: `{"error": {"code", "message"}}`."""
    return json_answer(status, {"error": {"code": code, "message": message}}, headers)


def is_lambda_result(result: Any) -> bool:
    return isinstance(result, dict) and "statusCode" in result


def result_answer(result: Any) -> Answer:
    """A sync run's result as the response: `{statusCode, headers, body, isBase64Encoded}` maps onto
    status, headers and body; any other value is returned as JSON with 200."""
    if not is_lambda_result(result):
        return json_answer(200, result)
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadResult(f"statusCode must be an HTTP status (100-599), not {status!r}")
    headers: dict[str, str] = {}
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise BadResult("headers must be an object of header names to values")
    for name, value in raw_headers.items():
        text = str(value) if not isinstance(value, str) else value
        if name.lower() in _HOP_BY_HOP or _unsafe(str(name)) or _unsafe(text):
            continue  # framing is the server's; CR/LF would split the response
        headers[str(name)] = text
    body = result.get("body")
    media = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    if body is None:
        return Answer(status, b"", headers, media or "text/plain; charset=utf-8")
    if isinstance(body, str):
        if result.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise BadResult("body is not valid base64 although isBase64Encoded is true") from None
            return Answer(status, data, headers, media or "application/octet-stream")
        return Answer(status, body.encode(), headers, media or "text/plain; charset=utf-8")
    data = json.dumps(body, separators=(",", ":"), default=str).encode()
    return Answer(status, data, headers, media or "application/json")


def _unsafe(text: str) -> bool:
    return "\r" in text or "\n" in text or "\0" in text


# --- the history ----------------------------------------------------------------------------------


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers for the history: secret-bearing ones (signatures, Authorization, Cookie, tokens, keys)
    replaced by a marker; repeated headers joined with ", "."""
    kept: dict[str, str] = {}
    for name, value in headers:
        shown = REDACTED if _secret_header(name) else value[:1024]
        kept[name] = f"{kept[name]}, {shown}" if name in kept else shown
    return kept


@lru_cache(maxsize=1024)
def _secret_header(name: str) -> bool:
    return _SECRET_HEADER.search(name) is not None  # a few header names, seen on every request


def redact_query(query: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    kept: dict[str, list[str]] = {}
    for name, value in query:
        kept.setdefault(name[:128], []).append(REDACTED if _SECRET_PARAM.search(name) else value[:1024])
    return kept


def capped(body: bytes, cap: int = HISTORY_BODY_CAP) -> tuple[str, str, bool]:
    """(text or base64 of at most `cap` bytes, "text" | "base64", truncated)."""
    head = body[:cap]
    truncated = len(body) > cap
    try:
        return head.decode("utf-8"), "text", truncated
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(head) - 3:  # the cut split a multi-byte character
            try:
                return head[: exc.start].decode("utf-8"), "text", truncated
            except UnicodeDecodeError:
                pass
        return base64.b64encode(head).decode("ascii"), "base64", truncated
