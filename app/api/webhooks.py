"""Webhooks over HTTP. Management, on the original API's paths (and the same under /api/v1/workflows/{id}):
/api/v1/functions/{id}/webhook (GET, PUT), .../webhook/enable|disable|regenerate, .../webhook/secret
(generate or rotate, shown once), and the list and call history under /api/v1/webhooks. The public
endpoint /webhook/{key}[/path] takes any method, needs no login and is a hot path: it reads the request
and hands it to the gateway, nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from app.api.deps import CurrentPrincipal, PlatformDep
from data.models import Webhook, WebhookCall
from engine.errors import NotFound
from engine.principal import Principal
from engine.services.webhook_gateway import MAX_BODY_BYTES
from engine.services.webhook_http import IncomingRequest
from engine.services.webhook_schemas import WebhookUpdate
from engine.services.webhooks import Changed, TargetHook

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
public_router = APIRouter(tags=["webhooks"])

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _ts(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class SecretRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_sec: int = Field(default=0, ge=0, le=7 * 24 * 3600)  # how long the old secret stays valid


# --- views ------------------------------------------------------------------------------------------


def webhook_url(key: str) -> str:
    return f"/webhook/{key}"


def settings_view(platform: Any, hook: Webhook | None, principal: Principal) -> dict[str, Any]:
    """A webhook's settings. The key is a capability (whoever has it may call the target), so roles
    that may not invoke see only its prefix."""
    if hook is None:
        return {
            "webhook_id": None,
            "webhook_enabled": False,
            "webhook_key": None,
            "webhook_url": None,
            "mode": "sync",
            "signature_scheme": "none",
            "tolerance_sec": 300,
            "allowed_ips": [],
            "rate_limit_per_min": 0,
            "retry_attempts": None,
            "retry_backoff_ms": None,
            "retry_backoff_max_ms": None,
            "has_secret": False,
            "secret_rotated_at": None,
            "previous_secret_valid_until": None,
        }
    trusted = principal.can("developer")
    secret = platform.webhooks.secret_info(hook)
    return {
        "webhook_id": hook.id,
        "webhook_enabled": hook.enabled,
        "webhook_key": hook.key if trusted else hook.key[:6] + "…",
        "webhook_url": webhook_url(hook.key) if trusted else None,
        "mode": hook.mode,
        "signature_scheme": hook.signature_scheme,
        "tolerance_sec": hook.tolerance_sec,
        "allowed_ips": list(hook.allowed_ips or []),
        "rate_limit_per_min": hook.rate_limit_per_min,
        "retry_attempts": hook.retry_attempts,
        "retry_backoff_ms": hook.retry_backoff_ms,
        "retry_backoff_max_ms": hook.retry_backoff_max_ms,
        "has_secret": secret["has_secret"],
        "secret_rotated_at": _ts(secret["secret_rotated_at"]),
        "previous_secret_valid_until": secret["previous_secret_valid_until"],
        "created_by": hook.created_by,
        "created_at": _ts(hook.created_at),
        "updated_at": _ts(hook.updated_at),
    }


def target_view(platform: Any, found: TargetHook, principal: Principal) -> dict[str, Any]:
    """The per-function shape: the original's `{id (the function's), webhook_enabled, webhook_key,
    webhook_url}` and the settings."""
    return {
        "id": found.target_id,
        "target_kind": found.kind,
        "target_id": found.target_id,
        "target_name": found.target_name,
        **settings_view(platform, found.webhook, principal),
    }


def changed_view(platform: Any, changed: Changed, principal: Principal) -> dict[str, Any]:
    hook = changed.webhook
    found = TargetHook(hook.target_kind, hook.target_id, hook.target_name, hook)
    view = target_view(platform, found, principal)
    if changed.secret is not None:
        view["secret"] = changed.secret  # shown this once; only its encrypted form is kept
    return view


def webhook_view(
    platform: Any, hook: Webhook, principal: Principal, last: WebhookCall | None = None
) -> dict[str, Any]:
    """A webhook in the /api/v1/webhooks list: `id` is the webhook's own id."""
    return {
        "id": hook.id,
        "target_kind": hook.target_kind,
        "target_id": hook.target_id,
        "target_name": hook.target_name,
        **settings_view(platform, hook, principal),
        "last_call": call_view(last) if last is not None else None,
    }


def call_view(call: WebhookCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "webhook_id": call.webhook_id,
        "created_at": _ts(call.created_at),
        "method": call.method,
        "path": call.path,
        "source_ip": call.source_ip,
        "status": call.status,
        "outcome": call.outcome,
        "reason": call.reason,
        "message": call.message,
        "mode": call.mode,
        "invocation_id": call.invocation_id,
        "latency_ms": call.latency_ms,
        "request_size": call.request_size,
        "request_truncated": call.request_truncated,
        "response_size": call.response_size,
        "response_truncated": call.response_truncated,
        "node": call.node,
    }


def call_detail_view(call: WebhookCall) -> dict[str, Any]:
    return call_view(call) | {
        "query": call.query,
        "headers": call.headers,  # secret-bearing ones redacted
        "request_body": call.request_body,
        "request_encoding": call.request_encoding,
        "response_headers": call.response_headers,
        "response_body": call.response_body,
        "response_encoding": call.response_encoding,
    }


# --- per target: the original API's per-function paths ----------------------------------------------


def add_target_routes(api: APIRouter, kind: str, prefix: str) -> None:
    """The management routes of one target kind under `{prefix}/{ref}/webhook`: GET and PUT (settings),
    POST .../enable, .../disable, .../regenerate (a new key) and .../secret (generate or rotate, shown once).
    Functions and workflows get them here; another kind adds its own the same way once its target is
    registered with the webhook service."""
    path = f"{prefix}/{{ref}}/webhook"

    @api.get(path, name=f"get_{kind}_webhook")
    async def get_webhook(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
        return target_view(platform, await platform.webhooks.for_target(principal, kind, ref), principal)

    @api.put(path, name=f"update_{kind}_webhook")
    async def update(
        ref: str, data: WebhookUpdate, platform: PlatformDep, principal: CurrentPrincipal
    ) -> dict[str, Any]:
        return changed_view(platform, await platform.webhooks.update(principal, kind, ref, data), principal)

    @api.post(path + "/enable", name=f"enable_{kind}_webhook")
    async def enable(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
        return changed_view(platform, await platform.webhooks.enable(principal, kind, ref), principal)

    @api.post(path + "/disable", name=f"disable_{kind}_webhook")
    async def disable(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
        return changed_view(platform, await platform.webhooks.disable(principal, kind, ref), principal)

    @api.post(path + "/regenerate", name=f"regenerate_{kind}_webhook")
    async def regenerate(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
        return changed_view(platform, await platform.webhooks.regenerate(principal, kind, ref), principal)

    @api.post(path + "/secret", name=f"rotate_{kind}_webhook_secret")
    async def rotate_secret(
        ref: str,
        platform: PlatformDep,
        principal: CurrentPrincipal,
        data: SecretRequest | None = Body(default=None),
    ) -> dict[str, Any]:
        grace = data.grace_sec if data is not None else 0
        changed = await platform.webhooks.rotate_secret(principal, kind, ref, grace_sec=grace)
        return changed_view(platform, changed, principal)


add_target_routes(router, "function", "/functions")
add_target_routes(router, "workflow", "/workflows")


# --- all webhooks -----------------------------------------------------------------------------------


@router.get("/webhooks")
async def list_webhooks(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    kind: str | None = Query(default=None, max_length=16),
    enabled: bool | None = None,
    search: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.webhooks.list(
        principal, kind=kind, enabled=enabled, search=search, limit=limit, cursor=cursor
    )
    last = await platform.webhooks.history.last_calls(principal, [h.id for h in page.items])
    return {
        "webhooks": [webhook_view(platform, h, principal, last.get(h.id)) for h in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get("/webhooks/{webhook_id}")
async def get_webhook(webhook_id: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    hook = await platform.webhooks.get(principal, webhook_id)
    last = await platform.webhooks.history.last_calls(principal, [hook.id])
    stats = await platform.webhooks.history.stats(principal, hook.id)
    return webhook_view(platform, hook, principal, last.get(hook.id)) | {"stats_24h": stats}


@router.get("/webhooks/{webhook_id}/calls")
async def list_calls(
    webhook_id: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    outcome: str | None = Query(default=None, max_length=16),
    reason: str | None = Query(default=None, max_length=32),
    status: int | None = Query(default=None, ge=100, le=599),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.webhooks.history.calls(
        principal,
        webhook_id,
        outcome=outcome,
        reason=reason,
        status=status,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return {"calls": [call_view(c) for c in page.items], "next_cursor": page.next_cursor}


@router.get("/webhooks/{webhook_id}/calls/{call_id}")
async def get_call(
    webhook_id: str, call_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    call = await platform.webhooks.history.call(principal, call_id)
    if call.webhook_id != webhook_id:
        raise NotFound(f"webhook call not found: {call_id}")
    return call_detail_view(call)


# --- the public endpoint ----------------------------------------------------------------------------


async def _body(request: Request) -> tuple[bytes, int]:
    """The body, or (b"", its size) when it is over the limit (not read further than needed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return b"", int(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"", size
        chunks.append(chunk)
    return b"".join(chunks), -1


async def _public(request: Request, key: str, path: str) -> Response:
    try:
        body, oversize = await _body(request)
    except ClientDisconnect:  # the caller hung up before its body arrived: nothing to answer or record
        return Response(status_code=400)
    incoming = IncomingRequest(
        key=key,
        method=request.method,
        path="/" + path,
        query=request.query_params.multi_items(),
        headers=request.headers.items(),
        body=body,
        source_ip=request.client.host if request.client else "",
        body_size=oversize,
    )
    answer = await request.app.state.platform.webhooks.handle(incoming)
    return Response(answer.body, answer.status, answer.headers, media_type=answer.media_type)


@public_router.api_route("/webhook/{key}", methods=METHODS, include_in_schema=True)
async def webhook(key: str, request: Request) -> Response:
    """Start the webhook's target with this request (no login: the key, the signature and the
    allowlist are the webhook's own protection)."""
    return await _public(request, key, "")


@public_router.api_route("/webhook/{key}/{path:path}", methods=METHODS, include_in_schema=False)
async def webhook_path(key: str, path: str, request: Request) -> Response:
    return await _public(request, key, path)
