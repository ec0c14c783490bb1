"""The public hot path: one request to /webhook/{key} checked (enabled, allowlist, signature, rate limit),
handed to its target, answered, and put on record. The order of the checks is deliberate: the cheap
address check first, then the signature, then the rate limit, so unsigned floods never use up a sender's
budget. Every request to a known key gets a history row (through the write-behind batcher: a burst is one
transaction per batch), including the refused ones with the reason.

Webhooks are looked up by key from a small in-memory cache (no database round trip per request);
entries are dropped when this node hears WebhookChanged and expire after a few seconds regardless, which
bounds how long another node's change takes to apply here."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from data.batcher import Batcher, Insert
from data.db import Database
from data.models import Webhook, WebhookCall
from data.types import new_id
from engine.bus import LocalBus
from engine.errors import BadRequest, NimbusError, NotFound, QuotaExceeded
from engine.events import Event, WebhookCalled, WebhookChanged
from engine.principal import Principal
from engine.secrets import SecretBox
from engine.services.webhook_http import (
    Answer,
    BadResult,
    IncomingRequest,
    build_event,
    capped,
    error_answer,
    json_answer,
    redact_headers,
    redact_query,
    result_answer,
)
from engine.services.webhook_ratelimit import FixedWindowLimiter, Limiter
from engine.services.webhook_schemas import Network, parse_network
from engine.services.webhook_signatures import SignatureError, verify
from engine.services.webhook_targets import RetryPolicy, StartOptions, TargetResult, WebhookTarget

log = logging.getLogger("nimbus.webhooks")

TTL_SEC = 5.0
MAX_BODY_BYTES = 6 * 1024 * 1024  # the invoke API's limit (Lambda's synchronous payload limit)
NOT_FOUND = "webhook not found or disabled"


@dataclass(frozen=True, slots=True)
class LiveHook:
    """What the hot path needs of a webhook, secrets decrypted once per cache load."""

    id: str
    key: str
    target_kind: str
    target_id: str
    target_name: str
    enabled: bool
    mode: str
    scheme: str
    secrets: tuple[bytes, ...]
    tolerance_sec: int
    networks: tuple[Network, ...]
    rate_limit: int
    retry: RetryPolicy


@dataclass(slots=True)
class _Verdict:
    answer: Answer
    outcome: str = "accepted"  # accepted | rejected | failed
    reason: str = ""
    message: str = ""
    invocation_id: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


def _refuse(status: int, reason: str, message: str, code: str, **headers: str) -> _Verdict:
    return _Verdict(error_answer(status, code, message, headers), "rejected", reason, message)


def active_secrets(box: SecretBox, token: str, now: float) -> tuple[bytes, ...]:
    """The secrets a signature may be made with: the current one, and the previous one while its grace
    period after a rotation lasts."""
    values = box.decrypt(token)
    found = [values["current"].encode()] if values.get("current") else []
    if values.get("previous") and float(values.get("previous_until") or 0) > now:
        found.append(values["previous"].encode())
    return tuple(found)


class WebhookGateway:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        batcher: Batcher,
        secrets: SecretBox,
        targets: dict[str, WebhookTarget],
        *,
        node: str = "",
        limiter: Limiter | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._batcher = batcher
        self._box = secrets
        self._targets = targets
        self._node = node
        self.limiter: Limiter = limiter or FixedWindowLimiter()
        self._cache: dict[str, tuple[float, LiveHook | None]] = {}
        self._loading: dict[str, asyncio.Future[LiveHook | None]] = {}
        self._generation = 0
        self._unsubscribe = bus.on(WebhookChanged, callback=self._forget)

    def close(self) -> None:
        self._unsubscribe()

    # --- the request --------------------------------------------------------------------------------

    async def handle(self, request: IncomingRequest) -> Answer:
        """Answer one request to /webhook/{key}; every request to a known key is recorded."""
        started = time.perf_counter()
        now = time.time()
        hook = await self.lookup(request.key)
        if hook is None:
            return error_answer(404, "not_found", NOT_FOUND)
        call_id = new_id()
        try:
            verdict = await self._decide(hook, request, call_id, now)
        except Exception:  # a platform bug must not lose the call from the history
            log.exception("webhook %s: handling a request failed", hook.id)
            verdict = _Verdict(
                error_answer(500, "internal", "internal error; see the server log"), "failed", "internal"
            )
        answer = verdict.answer
        answer.headers.update(verdict.extra_headers)
        answer.headers["X-Nimbus-Call-Id"] = call_id
        answer.headers["X-Nimbus-Request-Id"] = verdict.invocation_id or call_id
        self._record(hook, request, call_id, now, time.perf_counter() - started, verdict)
        return answer

    async def _decide(self, hook: LiveHook, request: IncomingRequest, call_id: str, now: float) -> _Verdict:
        if not hook.enabled:
            return _refuse(404, "disabled", NOT_FOUND, "not_found")
        if request.size > MAX_BODY_BYTES:
            message = f"body is {request.size} bytes; the limit is {MAX_BODY_BYTES}"
            return _refuse(413, "too_large", message, "too_large")
        if hook.networks and not _allowed(request.source_ip, hook.networks):
            message = f"address {request.source_ip or 'unknown'} is not in the webhook's allowlist"
            return _refuse(403, "ip_not_allowed", message, "forbidden")
        if hook.scheme != "none":
            try:
                verify(
                    hook.scheme,
                    hook.secrets,
                    request.header_map(),
                    request.body,
                    now=now,
                    tolerance_sec=hook.tolerance_sec,
                )
            except SignatureError as exc:
                return _refuse(401, exc.reason, exc.message, "unauthorized")
        limits: dict[str, str] = {}
        if hook.rate_limit > 0:
            decision = self.limiter.hit(hook.id, hook.rate_limit, now)
            limits = decision.headers(now)
            if not decision.allowed:
                message = f"rate limit of {hook.rate_limit} requests per minute reached"
                return _refuse(429, "rate_limited", message, "rate_limited", **limits)
        verdict = await self._start(hook, request, call_id, now)
        verdict.extra_headers.update(limits)
        return verdict

    async def _start(self, hook: LiveHook, request: IncomingRequest, call_id: str, now: float) -> _Verdict:
        target = self._targets.get(hook.target_kind)
        if target is None:
            message = f"webhooks cannot start a {hook.target_kind} on this node"
            answer = error_answer(503, "unavailable", message)
            return _Verdict(answer, "failed", "target_unavailable", message)
        received = datetime.fromtimestamp(now, UTC).isoformat()
        event = build_event(request, webhook_id=hook.id, request_id=call_id, received_at=received)
        # The key is a capability (whoever has it may call the target): invocation inputs are readable
        # by viewers, so the event carries only its prefix.
        event["webhook_key"] = hook.key[:6] + "…"
        principal = Principal(
            actor=f"webhook:{hook.id}", actor_type="system", role="developer", ip=request.source_ip
        )
        idempotency_key = request.header_map().get("idempotency-key", "")[:128] or None
        options = StartOptions(call_id, hook.retry, idempotency_key)
        sync = hook.mode == "sync"
        try:
            result = await target.start(principal, hook.target_id, event, sync, options=options)
        except NotFound as exc:
            message = f"webhook target not found ({exc.message})"
            return _Verdict(error_answer(404, "not_found", message), "failed", "target_missing", message)
        except BadRequest as exc:  # e.g. the function is offline
            return _Verdict(
                error_answer(503, "unavailable", exc.message), "failed", "target_unavailable", exc.message
            )
        except QuotaExceeded as exc:  # the platform's concurrency cap, not the webhook's rate limit
            answer = error_answer(429, "quota_exceeded", exc.message, {"Retry-After": "1"})
            return _Verdict(answer, "rejected", "throttled", exc.message)
        except NimbusError as exc:
            answer = error_answer(exc.status, exc.code, exc.message)
            return _Verdict(answer, "failed", exc.code[:32], exc.message)
        return self._answer(result, sync)

    def _answer(self, result: TargetResult, sync: bool) -> _Verdict:
        rid = result.request_id
        if not sync or result.status == "accepted":
            answer = json_answer(202, {"request_id": rid, "status": "accepted"})
            return _Verdict(answer, invocation_id=rid)
        if result.status == "success":
            try:
                return _Verdict(result_answer(result.result), invocation_id=rid)
            except BadResult as exc:
                message = f"the function's response is invalid: {exc}"
                answer = error_answer(502, "invalid_response", message)
                return _Verdict(answer, "failed", "invalid_response", message, rid)
        timeout = result.status == "timeout"
        error = {
            "code": "function_timeout" if timeout else "function_error",
            "message": result.error_message,
            "type": result.error_type,
            "request_id": rid,
        }
        reason = "timeout" if timeout else "function_error"
        message = f"{result.error_type}: {result.error_message}"
        answer = json_answer(504 if timeout else 502, {"error": error})
        return _Verdict(answer, "failed", reason, message, rid)

    # --- history ------------------------------------------------------------------------------------

    def _record(
        self,
        hook: LiveHook,
        request: IncomingRequest,
        call_id: str,
        now: float,
        elapsed: float,
        verdict: _Verdict,
    ) -> None:
        answer = verdict.answer
        body, body_encoding, body_truncated = capped(request.body)
        reply, reply_encoding, reply_truncated = capped(answer.body)
        row: dict[str, Any] = {
            "id": call_id,
            "webhook_id": hook.id,
            "method": request.method[:16],
            "path": request.path[:512],
            "query": redact_query(request.query),
            "source_ip": request.source_ip[:64],
            "headers": redact_headers(request.headers),
            "request_body": body,
            "request_encoding": body_encoding,
            "request_size": request.size,
            "request_truncated": body_truncated or request.size > len(request.body),
            "status": answer.status,
            "outcome": verdict.outcome,
            "reason": verdict.reason[:32],
            "message": verdict.message[:2000],
            "mode": hook.mode,
            "invocation_id": verdict.invocation_id,
            "latency_ms": round(elapsed * 1000, 3),
            "response_headers": {"content-type": answer.media_type, **redact_headers(answer.headers.items())},
            "response_body": reply,
            "response_encoding": reply_encoding,
            "response_size": len(answer.body),
            "response_truncated": reply_truncated,
            "node": self._node[:64],
            "created_at": datetime.fromtimestamp(now, UTC),
        }
        event = WebhookCalled(
            webhook_id=hook.id,
            call_id=call_id,
            status=answer.status,
            outcome=verdict.outcome,
            reason=verdict.reason,
        )
        self._batcher.submit(Insert(WebhookCall, [row]), on_commit=lambda: self._publish(event))

    def _publish(self, event: Event) -> None:
        self._bus.publish(event)

    # --- the cache ----------------------------------------------------------------------------------

    async def lookup(self, key: str) -> LiveHook | None:
        """The webhook with this key (enabled or not), or None; one database read per key per TTL, shared
        by concurrent misses."""
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < TTL_SEC:
            return hit[1]
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load(key))
            self._loading[key] = loading
            loading.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(loading)

    def _settled(self, key: str, done: asyncio.Future[LiveHook | None]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()

    async def _load(self, key: str) -> LiveHook | None:
        generation, started = self._generation, time.monotonic()
        hook: LiveHook | None = None
        if 16 <= len(key) <= 64:  # keys we make are 32 characters: do not query for anything else
            async with self._db.session() as session:
                row = (await session.execute(select(Webhook).where(Webhook.key == key))).scalars().first()
            hook = self._live(row) if row is not None else None
        if generation == self._generation:
            if len(self._cache) > 10_000:  # bounded under a flood of made-up keys
                self._cache.clear()
            self._cache[key] = (started, hook)
        return hook

    def _live(self, row: Webhook) -> LiveHook:
        networks: list[Network] = []
        for value in row.allowed_ips or []:
            with contextlib.suppress(ValueError):
                networks.append(parse_network(value))
        return LiveHook(
            id=row.id,
            key=row.key,
            target_kind=row.target_kind,
            target_id=row.target_id,
            target_name=row.target_name,
            enabled=row.enabled,
            mode=row.mode,
            scheme=row.signature_scheme,
            secrets=active_secrets(self._box, row.secret, time.time()),
            tolerance_sec=row.tolerance_sec,
            networks=tuple(networks),
            rate_limit=row.rate_limit_per_min,
            retry=RetryPolicy(row.retry_attempts, row.retry_backoff_ms, row.retry_backoff_max_ms),
        )

    def _forget(self, event: Event) -> None:
        self._generation += 1
        self._cache.clear()


def _allowed(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        mapped = address.ipv4_mapped  # ::ffff:10.0.0.1 from a dual-stack socket is 10.0.0.1
        return any(mapped in n or address in n for n in networks)
    return any(address in n for n in networks)
