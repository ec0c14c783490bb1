"""Webhooks: a public URL per function (or other registered target kind) that starts it with the HTTP
request as the event. This module manages them (enable, disable, new key, settings, signing secret shown
once); the public path is engine/services/webhook_gateway.py, the call history webhook_calls.py."""

from __future__ import annotations

import asyncio
import logging
import secrets as token
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from data.batcher import Batcher
from data.db import Database
from data.models import Webhook
from data.repos.pagination import Page, paginate
from data.types import utcnow
from engine.bus import LocalBus
from engine.errors import Forbidden, Invalid, NotFound
from engine.events import Event, FunctionChanged, WebhookChanged, WorkflowChanged
from engine.principal import Principal
from engine.secrets import SecretBox
from engine.services.audit import AuditService
from engine.services.webhook_calls import WebhookCalls
from engine.services.webhook_gateway import WebhookGateway
from engine.services.webhook_http import IncomingRequest
from engine.services.webhook_schemas import DEFAULTS, WebhookUpdate
from engine.services.webhook_targets import WebhookTarget

log = logging.getLogger("nimbus.webhooks")

MAX_GRACE_SEC = 7 * 24 * 3600
_ACTIONS = {
    "webhook.enable": "enabled",
    "webhook.disable": "disabled",
    "webhook.regenerate": "regenerated",
    "webhook.update": "updated",
    "webhook.rotate_secret": "secret_rotated",
}


def new_key() -> str:
    """32 url-safe characters (192 random bits): the original's key length, not guessable."""
    return token.token_urlsafe(24)


def new_secret() -> str:
    return "whsec_" + token.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TargetHook:
    """A target and its webhook (None when it never had one)."""

    kind: str
    target_id: str
    target_name: str
    webhook: Webhook | None


@dataclass(frozen=True, slots=True)
class Changed:
    """The result of a change; `secret` is set only by the call that generated it (shown once)."""

    webhook: Webhook
    secret: str | None = None


def snapshot(hook: Webhook | None) -> dict[str, Any] | None:
    """A webhook's settings for the audit trail: never the key or the secret, only that they exist."""
    if hook is None:
        return None
    return {
        "enabled": hook.enabled,
        "key_prefix": hook.key[:6],
        "mode": hook.mode,
        "signature_scheme": hook.signature_scheme,
        "has_secret": bool(hook.secret),
        "tolerance_sec": hook.tolerance_sec,
        "allowed_ips": list(hook.allowed_ips or []),
        "rate_limit_per_min": hook.rate_limit_per_min,
        "retry_attempts": hook.retry_attempts,
        "retry_backoff_ms": hook.retry_backoff_ms,
        "retry_backoff_max_ms": hook.retry_backoff_max_ms,
    }


class WebhookService:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        secrets: SecretBox,
        batcher: Batcher,
        *,
        node: str = "",
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._box = secrets
        self.targets: dict[str, WebhookTarget] = {}
        self.gateway = WebhookGateway(db, bus, batcher, secrets, self.targets, node=node)
        self.history = WebhookCalls(db)  # the call history: calls, call, stats, last_calls
        self._unsubscribe = bus.on(FunctionChanged, WorkflowChanged, callback=self._target_changed)
        self._pending: set[Any] = set()

    def register_target(self, target: WebhookTarget) -> None:
        """Let webhooks start `target.kind` (the function kind is registered by the platform)."""
        self.targets[target.kind] = target

    async def handle(self, request: IncomingRequest) -> Any:
        """The public endpoint (/webhook/{key}): see WebhookGateway.handle."""
        return await self.gateway.handle(request)

    async def stop(self) -> None:
        self._unsubscribe()
        self.gateway.close()
        for task in list(self._pending):
            task.cancel()

    # --- reads --------------------------------------------------------------------------------------

    async def get(self, principal: Principal, webhook_id: str) -> Webhook:
        async with self._db.session() as session:
            hook = await session.get(Webhook, webhook_id)
        if hook is None:
            raise NotFound(f"webhook not found: {webhook_id}")
        return hook

    async def for_target(self, principal: Principal, kind: str, ref: str) -> TargetHook:
        """The target (by id or name) and its webhook, if it has one."""
        target_id, name = await self._resolve(principal, kind, ref)
        async with self._db.session() as session:
            hook = await self._find(session, kind, target_id)
        return TargetHook(kind, target_id, name, hook)

    async def list(
        self,
        principal: Principal,
        *,
        kind: str | None = None,
        enabled: bool | None = None,
        search: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Webhook]:
        stmt = select(Webhook)
        if kind:
            stmt = stmt.where(Webhook.target_kind == kind)
        if enabled is not None:
            stmt = stmt.where(Webhook.enabled == enabled)
        if search:
            stmt = stmt.where(Webhook.target_name.contains(search[:64], autoescape=True))
        async with self._db.session() as session:
            return await paginate(session, stmt, Webhook.id, cursor=cursor, limit=limit)

    # --- writes -------------------------------------------------------------------------------------

    async def enable(self, principal: Principal, kind: str, ref: str) -> Changed:
        """Enable the target's webhook, creating it (with a new key) the first time."""
        return await self._change(principal, kind, ref, "webhook.enable", {"enabled": True})

    async def disable(self, principal: Principal, kind: str, ref: str) -> Changed:
        """Disable it (the key is kept: enabling again brings the same URL back)."""
        return await self._change(principal, kind, ref, "webhook.disable", {"enabled": False})

    async def regenerate(self, principal: Principal, kind: str, ref: str) -> Changed:
        """A new key: the old URL stops working at once. Works whether enabled or not."""
        return await self._change(principal, kind, ref, "webhook.regenerate", {"key": new_key()})

    async def update(self, principal: Principal, kind: str, ref: str, data: WebhookUpdate) -> Changed:
        """Change settings; choosing a signature scheme with no secret yet generates one (shown once)."""
        return await self._change(principal, kind, ref, "webhook.update", data.changes())

    async def rotate_secret(
        self, principal: Principal, kind: str, ref: str, *, grace_sec: int = 0
    ) -> Changed:
        """A new signing secret, returned once. With `grace_sec`, the old one stays valid that long, so a
        sender can switch over without refused deliveries."""
        if not 0 <= grace_sec <= MAX_GRACE_SEC:
            raise Invalid("grace_sec", f"grace_sec must be between 0 and {MAX_GRACE_SEC}")
        return await self._change(principal, kind, ref, "webhook.rotate_secret", {}, grace_sec=grace_sec)

    async def _change(
        self,
        principal: Principal,
        kind: str,
        ref: str,
        action: str,
        values: dict[str, Any],
        *,
        grace_sec: int = 0,
    ) -> Changed:
        if not principal.can("developer"):
            raise Forbidden("changing webhooks needs the developer or admin role")
        target_id, name = await self._resolve(principal, kind, ref)
        for attempt in range(2):  # a concurrent first enable of the same target: read it back and go on
            try:
                async with self._db.transaction() as session:
                    hook = await self._find(session, kind, target_id)
                    before = snapshot(hook)
                    if hook is None:
                        hook = Webhook(
                            key=new_key(),
                            target_kind=kind,
                            target_id=target_id,
                            created_by=principal.actor,
                            **{**DEFAULTS, "allowed_ips": []},
                        )
                    hook.target_name = name
                    for column, value in values.items():
                        setattr(hook, column, value)
                    secret = self._new_secret_if_needed(hook, action, grace_sec)
                    self._check(hook)
                    hook.updated_at = utcnow()
                    session.add(hook)
                    self._audit.record(
                        session,
                        principal,
                        action,
                        resource_type="webhook",
                        resource_id=hook.id,
                        resource_name=f"{kind}:{name}",
                        before=before,
                        after=snapshot(hook),
                    )
                    event = WebhookChanged(
                        webhook_id=hook.id, target_kind=kind, target_id=target_id, action=_ACTIONS[action]
                    )
                    self._after_commit(session, event)
                return Changed(hook, secret)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _new_secret_if_needed(self, hook: Webhook, action: str, grace_sec: int) -> str | None:
        needs = action == "webhook.rotate_secret" or (hook.signature_scheme != "none" and not hook.secret)
        if not needs:
            return None
        secret = new_secret()
        values = {"current": secret}
        old = self._box.decrypt(hook.secret).get("current") if hook.secret else None
        if old and grace_sec > 0:
            values |= {"previous": old, "previous_until": str(time.time() + grace_sec)}
        hook.secret = self._box.encrypt(values)
        hook.secret_rotated_at = utcnow()
        return secret

    def _check(self, hook: Webhook) -> None:
        base, cap = hook.retry_backoff_ms, hook.retry_backoff_max_ms
        if base is not None and cap is not None and cap < base:
            raise Invalid("retry_backoff_max_ms", "retry_backoff_max_ms must be at least retry_backoff_ms")

    def secret_info(self, hook: Webhook) -> dict[str, Any]:
        """Whether a secret is set and whether an old one is still accepted (never the values)."""
        values = self._box.decrypt(hook.secret) if hook.secret else {}
        until = float(values.get("previous_until") or 0)
        return {
            "has_secret": bool(values.get("current")),
            "secret_rotated_at": hook.secret_rotated_at,
            "previous_secret_valid_until": until if until > time.time() else None,
        }

    # --- targets ------------------------------------------------------------------------------------

    async def _resolve(self, principal: Principal, kind: str, ref: str) -> tuple[str, str]:
        target = self.targets.get(kind)
        if target is None:
            raise NotFound(f"webhooks cannot target a {kind!r}")
        return await target.resolve(principal, ref)

    async def _find(self, session: AsyncSession, kind: str, target_id: str) -> Webhook | None:
        row = await session.execute(
            select(Webhook).where(Webhook.target_kind == kind, Webhook.target_id == target_id)
        )
        return row.scalars().first()

    async def target_deleted(self, kind: str, target_id: str) -> None:
        """The target is gone: so is its webhook (its history stays until retention removes it)."""
        async with self._db.transaction() as session:
            hook = await self._find(session, kind, target_id)
            if hook is None:
                return
            await session.execute(delete(Webhook).where(Webhook.id == hook.id))
            self._after_commit(
                session,
                WebhookChanged(webhook_id=hook.id, target_kind=kind, target_id=target_id, action="deleted"),
            )
        self.gateway.limiter.forget(hook.id)

    async def target_renamed(self, kind: str, target_id: str, name: str) -> None:
        """Keep the listed name in step with a target that was renamed."""
        async with self._db.transaction() as session:
            await session.execute(
                update(Webhook)
                .where(Webhook.target_kind == kind, Webhook.target_id == target_id)
                .where(Webhook.target_name != name)
                .values(target_name=name)
            )

    def _target_changed(self, event: Event) -> None:
        """A deleted target takes its webhook with it (targets are never renamed today; a kind whose
        targets can be calls target_renamed)."""
        if isinstance(event, FunctionChanged) and event.action == "deleted":
            self._spawn(self.target_deleted("function", event.function_id))
        elif isinstance(event, WorkflowChanged) and event.action == "deleted":
            self._spawn(self.target_deleted("workflow", event.workflow_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._quietly(coro))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _quietly(self, coro: Any) -> None:
        try:
            await coro
        except Exception:
            log.exception("keeping webhooks in step with their target failed")

    def _after_commit(self, session: AsyncSession, event: Event) -> None:
        session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))
