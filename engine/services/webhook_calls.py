"""A webhook's call history, read: one webhook's calls newest first with filters (every filter is an index
range of that webhook, never a scan of the whole history), one call in full, counts of the last hours and
each webhook's newest call. Rows are written by the gateway (engine/services/webhook_gateway.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from data.db import Database
from data.models import Webhook, WebhookCall
from data.repos.pagination import Page, paginate
from data.types import id_floor, utcnow
from engine.errors import Invalid, NotFound
from engine.principal import Principal

OUTCOMES = ("accepted", "rejected", "failed")
# Why a call was rejected or failed: the history's `reason` codes and what they mean.
REASONS: dict[str, str] = {
    "disabled": "the webhook is disabled",
    "too_large": "the body is over the size limit",
    "ip_not_allowed": "the caller's address is not in the allowlist",
    "signature_missing": "no signature header",
    "signature_malformed": "the signature header is not in the expected format",
    "signature_invalid": "the signature does not match",
    "timestamp_stale": "the signed timestamp is outside the tolerance (a replay?)",
    "rate_limited": "over the webhook's rate limit",
    "throttled": "the platform's concurrency cap was reached",
    "target_missing": "the target no longer exists",
    "target_unavailable": "the target is not active",
    "function_error": "the function raised an error",
    "timeout": "the function timed out",
    "invalid_response": "the function's response could not be sent",
    "internal": "an internal error",
}


class WebhookCalls:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _exists(self, webhook_id: str) -> None:
        async with self._db.session() as session:
            if await session.get(Webhook, webhook_id) is None:
                raise NotFound(f"webhook not found: {webhook_id}")

    async def last_calls(self, principal: Principal, webhook_ids: list[str]) -> dict[str, WebhookCall]:
        """The newest call of each webhook (one index lookup each, never a scan of the history)."""
        found: dict[str, WebhookCall] = {}
        async with self._db.session() as session:
            for webhook_id in webhook_ids[:100]:
                row = await session.execute(
                    select(WebhookCall)
                    .where(WebhookCall.webhook_id == webhook_id)
                    .order_by(WebhookCall.id.desc())
                    .limit(1)
                )
                call = row.scalars().first()
                if call is not None:
                    found[webhook_id] = call
        return found

    async def calls(
        self,
        principal: Principal,
        webhook_id: str,
        *,
        outcome: str | None = None,
        reason: str | None = None,
        status: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[WebhookCall]:
        """A webhook's call history, newest first. Times filter on the time-ordered id: an index range."""
        await self._exists(webhook_id)
        stmt = select(WebhookCall).where(WebhookCall.webhook_id == webhook_id)
        if outcome:
            if outcome not in OUTCOMES:
                raise Invalid("outcome", f"outcome must be one of {', '.join(OUTCOMES)}")
            stmt = stmt.where(WebhookCall.outcome == outcome)
        if reason:
            stmt = stmt.where(WebhookCall.reason == reason[:32])
        if status is not None:
            stmt = stmt.where(WebhookCall.status == status)
        if since and until and until <= since:
            raise Invalid("until", "until must be after since")
        if since:
            stmt = stmt.where(WebhookCall.id >= id_floor(since))
        if until:
            stmt = stmt.where(WebhookCall.id < id_floor(until))
        async with self._db.session() as session:
            return await paginate(session, stmt, WebhookCall.id, cursor=cursor, limit=limit)

    async def call(self, principal: Principal, call_id: str) -> WebhookCall:
        async with self._db.session() as session:
            row = await session.get(WebhookCall, call_id)
        if row is None:
            raise NotFound(f"webhook call not found: {call_id}")
        return row

    async def stats(self, principal: Principal, webhook_id: str, hours: int = 24) -> dict[str, Any]:
        """Calls of the last `hours` by outcome and the median/max latency (an id range of one webhook)."""
        await self._exists(webhook_id)
        since = utcnow() - timedelta(hours=hours)
        where = (WebhookCall.webhook_id == webhook_id, WebhookCall.id >= id_floor(since))
        async with self._db.session() as session:
            counts = dict(
                (
                    await session.execute(
                        select(WebhookCall.outcome, func.count()).where(*where).group_by(WebhookCall.outcome)
                    )
                )
                .tuples()
                .all()
            )
            slowest = (await session.execute(select(func.max(WebhookCall.latency_ms)).where(*where))).scalar()
        return {
            "webhook_id": webhook_id,
            "hours": hours,
            "total": sum(counts.values()),
            **{outcome: counts.get(outcome, 0) for outcome in OUTCOMES},
            "max_latency_ms": slowest,
        }
