"""The audit trail: who did what to which resource, with before/after. Every mutation calls `record`
inside the mutation's own transaction, so an action is audited exactly when it is committed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import AuditEvent
from data.repos.pagination import Page, paginate
from engine.bus import LocalBus
from engine.events import AuditRecorded
from engine.principal import Principal

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
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        stmt = select(AuditEvent)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        if resource_type:
            stmt = stmt.where(AuditEvent.resource_type == resource_type)
        if resource_id:
            stmt = stmt.where(AuditEvent.resource_id == resource_id)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        if since:
            stmt = stmt.where(AuditEvent.created_at >= since)
        if until:
            stmt = stmt.where(AuditEvent.created_at < until)
        async with self._db.session() as session:
            return await paginate(session, stmt, AuditEvent.id, cursor=cursor, limit=limit)
