"""Cron schedules: create, change, pause, resume, delete (each audited), run now, list, run history,
and the preview of an expression's next run times. Firing lives in engine/scheduler.py; this service
tells the scheduler after each committed change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from data.db import Database
from data.models import Schedule, ScheduleRun
from data.repos.pagination import Page, paginate
from data.types import utcnow
from engine.bus import LocalBus
from engine.cron import parse
from engine.errors import Conflict, Forbidden, Invalid, NotFound
from engine.events import ScheduleChanged
from engine.principal import Principal
from engine.schedule_targets import RunState, TargetRegistry
from engine.scheduler import Scheduler
from engine.services.audit import AuditService
from engine.services.schedule_schemas import PREVIEW_COUNT, ScheduleCreate, ScheduleUpdate

MAX_SCHEDULES = 1000
INTERRUPTED_AFTER = timedelta(minutes=5)  # a claim that never started its run by then was cut off
_ACTIONS = {
    "schedule.create": "created",
    "schedule.update": "updated",
    "schedule.delete": "deleted",
    "schedule.pause": "paused",
    "schedule.resume": "resumed",
}


@dataclass(frozen=True, slots=True)
class Preview:
    """An expression's next run times (in its timezone), or why it is invalid."""

    valid: bool
    next_runs: list[datetime] = field(default_factory=list)
    error: str | None = None
    field: str | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One tick of a schedule and the outcome of the run it started (when the target kind reports it)."""

    run: ScheduleRun
    result: RunState | None = None

    @property
    def status(self) -> str:
        """started -> the run's own status; a claim cut off before it started -> interrupted."""
        if self.run.status == "started" and self.result is not None:
            return self.result.status
        if self.run.status == "claimed" and utcnow() - self.run.started_at > INTERRUPTED_AFTER:
            return "interrupted"
        return self.run.status


def snapshot(schedule: Schedule) -> dict[str, Any]:
    """The audited fields of a schedule."""
    return {
        "name": schedule.name,
        "description": schedule.description,
        "target_type": schedule.target_type,
        "target_id": schedule.target_id,
        "target_name": schedule.target_name,
        "payload": schedule.payload,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "misfire_policy": schedule.misfire_policy,
        "paused": schedule.paused,
    }


class ScheduleService:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        audit: AuditService,
        scheduler: Scheduler,
        targets: TargetRegistry,
    ) -> None:
        self._db = db
        self._bus = bus
        self._audit = audit
        self._scheduler = scheduler
        self.targets = targets

    # --- reading ----------------------------------------------------------------------------------

    async def list(
        self,
        principal: Principal,
        *,
        target_type: str | None = None,
        target_id: str | None = None,
        paused: bool | None = None,
        search: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Schedule]:
        """Newest first. `target_id` takes the target's id or name (with `target_type`, default
        "function")."""
        stmt = select(Schedule)
        if target_id:
            kind = target_type or "function"
            ids = {target_id}
            if self.targets.find(kind) is not None:
                try:
                    ids.add((await self.targets.resolve(principal, kind, target_id)).id)
                except NotFound:
                    pass  # a deleted target's id still finds its schedules
            stmt = stmt.where(Schedule.target_type == kind, Schedule.target_id.in_(ids))  # type: ignore[attr-defined]
        elif target_type:
            stmt = stmt.where(Schedule.target_type == target_type)
        if paused is not None:
            stmt = stmt.where(Schedule.paused == paused)
        if search:
            stmt = stmt.where(Schedule.name.contains(search, autoescape=True))  # type: ignore[attr-defined]
        async with self._db.session() as session:
            return await paginate(session, stmt, Schedule.id, cursor=cursor, limit=limit)

    async def get(self, principal: Principal, ref: str) -> Schedule:
        async with self._db.session() as session:
            return await self._load(session, ref)

    def next_run(self, schedule: Schedule) -> datetime | None:
        """The next tick, in the schedule's timezone (None while paused)."""
        when = self._scheduler.next_run(schedule)
        return when.astimezone(parse(schedule.cron, schedule.timezone).zone) if when else None

    async def last_runs(self, schedules: list[Schedule]) -> dict[str, RunInfo]:
        """Each schedule's last run with its outcome, in one query per target kind."""
        ids = [s.last_run_id for s in schedules if s.last_run_id]
        if not ids:
            return {}
        async with self._db.session() as session:
            rows = (
                await session.execute(select(ScheduleRun).where(ScheduleRun.id.in_(ids)))  # type: ignore[attr-defined]
            ).scalars()
            runs = list(rows)
        infos = await self._with_results(runs)
        return {info.run.schedule_id: info for info in infos}

    async def runs(
        self, principal: Principal, ref: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[RunInfo]:
        """A schedule's run history, newest first, each with its run's outcome."""
        async with self._db.session() as session:
            schedule = await self._load(session, ref)
            stmt = select(ScheduleRun).where(ScheduleRun.schedule_id == schedule.id)
            page = await paginate(session, stmt, ScheduleRun.id, cursor=cursor, limit=limit)
        return Page(await self._with_results(page.items), page.next_cursor)

    async def _with_results(self, runs: list[ScheduleRun]) -> list[RunInfo]:
        by_kind: dict[str, list[str]] = {}
        for run in runs:
            if run.run_id:
                by_kind.setdefault(run.target_type, []).append(run.run_id)
        results: dict[tuple[str, str], RunState] = {}
        for kind, run_ids in by_kind.items():
            for run_id, state in (await self.targets.statuses(kind, run_ids)).items():
                results[(kind, run_id)] = state
        return [
            RunInfo(run, results.get((run.target_type, run.run_id)) if run.run_id else None) for run in runs
        ]

    def preview(self, cron: str, timezone: str = "UTC", count: int = PREVIEW_COUNT) -> Preview:
        """The next `count` run times of an expression in a timezone, or the reason it is invalid."""
        try:
            parsed = parse(cron, timezone)
        except Invalid as exc:
            return Preview(False, error=exc.message, field=exc.field)
        zone = parsed.zone
        return Preview(True, [t.astimezone(zone) for t in parsed.next_times(count)])

    # --- changing ---------------------------------------------------------------------------------

    async def create(self, principal: Principal, data: ScheduleCreate) -> Schedule:
        self._require_writer(principal)
        parse(data.cron, data.timezone)
        target = await self.targets.resolve(principal, data.target_type, data.target_id)
        now = utcnow()
        schedule = Schedule(
            name=data.name,
            description=data.description,
            target_type=data.target_type,
            target_id=target.id,
            target_name=target.name,
            payload=data.payload,
            cron=" ".join(data.cron.split()),
            timezone=data.timezone,
            misfire_policy=data.misfire_policy,
            paused=data.paused,
            settled_until=now,
            created_by=principal.actor,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._db.transaction() as session:
                await self._check_name_free(session, data.name)
                full = await session.scalar(
                    select(Schedule.id).order_by(Schedule.id).offset(MAX_SCHEDULES - 1)
                )
                if full is not None:
                    raise Conflict(f"at most {MAX_SCHEDULES} schedules")
                session.add(schedule)
                self._record(session, principal, "schedule.create", schedule, after=snapshot(schedule))
        except IntegrityError:
            raise Conflict(f"schedule already exists: {data.name}", field="name") from None
        await self._scheduler.refresh(schedule.id)
        return schedule

    async def update(self, principal: Principal, ref: str, data: ScheduleUpdate) -> Schedule:
        self._require_writer(principal)
        changes = data.model_dump(exclude_unset=True)
        async with self._db.session() as session:
            current = await self._load(session, ref)
        cron = changes.get("cron") or current.cron
        timezone = changes.get("timezone") or current.timezone
        parse(cron, timezone)
        target_type = changes.get("target_type") or current.target_type
        target = None
        if "target_type" in changes or "target_id" in changes:
            target = await self.targets.resolve(
                principal, target_type, changes.get("target_id") or current.target_id
            )
        try:
            async with self._db.transaction() as session:
                schedule = await self._load(session, current.id)
                before = snapshot(schedule)
                if changes.get("name") and changes["name"] != schedule.name:
                    await self._check_name_free(session, changes["name"])
                    schedule.name = changes["name"]
                if changes.get("description") is not None:
                    schedule.description = changes["description"]
                if "payload" in changes:
                    schedule.payload = changes["payload"]
                if changes.get("misfire_policy"):
                    schedule.misfire_policy = changes["misfire_policy"]
                if target is not None:
                    schedule.target_type, schedule.target_id, schedule.target_name = (
                        target_type,
                        target.id,
                        target.name,
                    )
                new_cron = " ".join(cron.split())
                now = utcnow()
                if (new_cron, timezone) != (schedule.cron, schedule.timezone):
                    schedule.cron, schedule.timezone = new_cron, timezone
                    schedule.settled_until = max(schedule.settled_until, now)  # no backfill of the old ticks
                schedule.updated_at = now
                session.add(schedule)
                self._record(
                    session, principal, "schedule.update", schedule, before=before, after=snapshot(schedule)
                )
        except IntegrityError:
            raise Conflict(f"schedule already exists: {changes.get('name')}", field="name") from None
        await self._scheduler.refresh(schedule.id)
        return schedule

    async def set_paused(self, principal: Principal, ref: str, paused: bool) -> Schedule:
        """Pause (no ticks run) or resume (ticks from now on run; those while paused do not)."""
        self._require_writer(principal)
        async with self._db.transaction() as session:
            schedule = await self._load(session, ref)
            if schedule.paused != paused:
                now = utcnow()
                schedule.paused = paused
                if not paused:
                    schedule.settled_until = max(schedule.settled_until, now)
                schedule.updated_at = now
                session.add(schedule)
                action = "schedule.pause" if paused else "schedule.resume"
                self._record(
                    session,
                    principal,
                    action,
                    schedule,
                    before={"paused": not paused},
                    after={"paused": paused},
                )
        await self._scheduler.refresh(schedule.id)
        return schedule

    async def delete(self, principal: Principal, ref: str) -> None:
        self._require_writer(principal)
        async with self._db.transaction() as session:
            schedule = await self._load(session, ref)
            await session.delete(schedule)
            self._record(session, principal, "schedule.delete", schedule, before=snapshot(schedule))
        await self._scheduler.refresh(schedule.id)

    async def trigger(self, principal: Principal, ref: str) -> RunInfo:
        """Run now, once, whatever the expression says (and even when paused)."""
        self._require_writer(principal)
        async with self._db.transaction() as session:
            schedule = await self._load(session, ref)
            self._audit.record(
                session,
                principal,
                "schedule.trigger",
                resource_type="schedule",
                resource_id=schedule.id,
                resource_name=schedule.name,
            )
        run = await self._scheduler.run(schedule.id, utcnow(), kind="manual")
        if run is None:
            raise NotFound(f"schedule not found: {ref}")
        return (await self._with_results([run]))[0]

    # --- helpers ----------------------------------------------------------------------------------

    async def _load(self, session: AsyncSession, ref: str) -> Schedule:
        row = await session.execute(select(Schedule).where(or_(Schedule.id == ref, Schedule.name == ref)))
        schedule = row.scalars().first()
        if schedule is None:
            raise NotFound(f"schedule not found: {ref}")
        return schedule

    async def _check_name_free(self, session: AsyncSession, name: str) -> None:
        taken = await session.scalar(select(Schedule.id).where(Schedule.name == name))
        if taken is not None:
            raise Conflict(f"schedule already exists: {name}", field="name")

    def _record(
        self,
        session: AsyncSession,
        principal: Principal,
        action: str,
        schedule: Schedule,
        *,
        before: Any = None,
        after: Any = None,
    ) -> None:
        self._audit.record(
            session,
            principal,
            action,
            resource_type="schedule",
            resource_id=schedule.id,
            resource_name=schedule.name,
            before=before,
            after=after,
        )
        event = ScheduleChanged(schedule_id=schedule.id, name=schedule.name, action=_ACTIONS[action])
        session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))

    def _require_writer(self, principal: Principal) -> None:
        if not principal.can("developer"):
            raise Forbidden("changing schedules needs the developer or admin role")
