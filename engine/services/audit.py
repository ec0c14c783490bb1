"""The audit trail: who did what to which resource, with before/after. Every mutation calls `record`
inside the mutation's own transaction, so an action is audited exactly when it is committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import AuditEvent
from data.repos.pagination import Page, paginate
from engine.bus import LocalBus
from engine.errors import Forbidden, Invalid, NotFound
from engine.events import AuditRecorded
from engine.principal import Principal
from engine.services.audit_log import EXPORT_FORMATS, AuditFilters, audit_query, export_events

# The actions this platform emits (GET /api/v1/audit/actions lists them).
ACTIONS: dict[str, str] = {
    "function.create": "Create function",
    "function.update": "Update function",
    "function.delete": "Delete function",
    "function.offline": "Take function offline",
    "function.online": "Bring function online",
    "function.publish": "Publish version",
    "function.rollback": "Roll back to version",
    "function.build": "Build function",
    "invocation.replay": "Replay invocation",
    "test_event.save": "Save test event",
    "test_event.delete": "Delete test event",
    "dlq.retry": "Retry DLQ message",
    "dlq.discard": "Discard DLQ message",
    "dlq.delete": "Delete DLQ message",
    "dlq.purge": "Purge DLQ",
    "settings.update": "Update setting",
    "user.create": "Create user",
    "user.update": "Update user",
    "user.delete": "Delete user",
    "user.login": "Log in",
    "user.login_failed": "Failed log in",
    "user.logout": "Log out",
    "apikey.create": "Create API key",
    "apikey.revoke": "Revoke API key",
    "layer.create": "Create layer",
    "layer.delete": "Delete layer",
    "layer.publish": "Add layer version",
    "function.layers": "Change function layers",
    "environment.create": "Create environment",
    "environment.update": "Update environment",
    "environment.delete": "Delete environment",
    "environment.deploy": "Deploy to environment",
    "environment.undeploy": "Undeploy from environment",
    "environment.promote": "Promote to next environment",
    "webhook.enable": "Enable webhook",
    "webhook.disable": "Disable webhook",
    "webhook.regenerate": "Regenerate webhook URL",
    "webhook.update": "Change webhook settings",
    "webhook.rotate_secret": "Rotate webhook secret",
    "schedule.create": "Create schedule",
    "schedule.update": "Update schedule",
    "schedule.delete": "Delete schedule",
    "schedule.pause": "Pause schedule",
    "schedule.resume": "Resume schedule",
    "schedule.trigger": "Run schedule now",
    "quota.update": "Change quota limits",
    "retention.policy_update": "Change retention policy",
    "retention.cleanup": "Retention cleanup",
    "workflow.create": "Create workflow",
    "workflow.update": "Update workflow",
    "workflow.delete": "Delete workflow",
    "workflow.start": "Start workflow execution",
    "workflow.breakpoints": "Change workflow breakpoints",
    "execution.cancel": "Cancel workflow execution",
    "execution.breakpoints": "Change execution breakpoints",
    "execution.continue": "Continue paused execution",
    "execution.step": "Step paused execution",
    "execution.abort": "Abort paused execution",
    "execution.edit_input": "Edit paused execution input",
    "execution.redrive": "Redrive failed execution",
}


class AuditService:
    def __init__(self, db: Database, bus: LocalBus) -> None:
        self._db = db
        self._bus = bus

    def record(
        self,
        session: AsyncSession,
        principal: Principal,
        action: str,
        *,
        resource_type: str = "",
        resource_id: str = "",
        resource_name: str = "",
        before: Any = None,
        after: Any = None,
        details: Any = None,
    ) -> AuditEvent:
        """Add the audit row to `session` (the caller's transaction); the bus hears of it after commit."""
        row = AuditEvent(
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            resource_name=resource_name,
            actor=principal.actor,
            actor_type=principal.actor_type,
            actor_ip=principal.ip,
            before=before,
            after=after,
            details=details,
        )
        session.add(row)
        event = AuditRecorded(
            action=action, actor=principal.actor, resource_type=resource_type, resource_id=resource_id
        )
        session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))
        return row

    async def list(
        self,
        principal: Principal,
        *,
        action: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """Newest first; `target` matches a resource's id or name (engine/services/audit_log.py)."""
        self._require_admin(principal)
        filters = AuditFilters(action, actor, resource_type, resource_id, target, since, until)
        async with self._db.session() as session:
            return await paginate(session, audit_query(filters), AuditEvent.id, cursor=cursor, limit=limit)

    async def get(self, principal: Principal, event_id: str) -> AuditEvent:
        self._require_admin(principal)
        async with self._db.session() as session:
            row = await session.get(AuditEvent, event_id)
        if row is None:
            raise NotFound(f"audit event not found: {event_id}")
        return row

    async def export(
        self, principal: Principal, filters: AuditFilters, fmt: str = "csv"
    ) -> AsyncIterator[bytes]:
        """The filtered events as CSV or JSON chunks, streamed; validates before the first chunk."""
        self._require_admin(principal)
        if fmt not in EXPORT_FORMATS:
            raise Invalid("format", f"format must be one of {', '.join(EXPORT_FORMATS)}")
        audit_query(filters)  # bad filters fail now, not halfway through a download
        return export_events(self._db, filters, fmt)  # type: ignore[arg-type]

    def _require_admin(self, principal: Principal) -> None:
        if not principal.can("admin"):
            raise Forbidden("the audit log is for admins")
