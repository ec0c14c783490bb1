"""APScheduler wiring: one AsyncIOScheduler on Nimbus's event loop runs the cron schedules and the
platform's system jobs (retention cleanup, quota snapshots, alert evaluation, rollups ...).

Where state lives. The `schedules` table is the source of truth; APScheduler keeps its jobs in its
in-memory job store, which this module fills from the table on start, after every change made through
the service, and again every `resync_sec` (changes made on other nodes). APScheduler's SQLAlchemyJobStore
was not used: it is synchronous (blocking database I/O on the event loop), needs a sync PostgreSQL
driver Nimbus does not ship, and pickles jobs (a persisted callable breaks on every refactor). What must
survive a restart is not the job but two facts per schedule, both in our tables: which ticks are settled
(`schedules.settled_until`) and which ticks ran (`schedule_runs`).

Exactly once per tick. Before a tick runs it is claimed: one `schedule_runs` row, unique on
(schedule_id, scheduled_at), inserted in the same transaction that moves `settled_until` to the tick. A
second claimer (a restarted node, another node sharing PostgreSQL, a stale job) fails on the unique
constraint or finds the tick settled, and does nothing. A node that dies between the claim and the
start leaves the tick claimed and not run (at most once, never twice); the run history shows it.

Misfires. A tick noticed more than `misfire_grace_sec` late, or found unsettled on start (the platform
was down), is a misfire: policy `skip` records one skipped row standing for every missed tick;
`run_once` runs the latest missed tick once (kind `catch_up`), however many were missed. Ticks while a
schedule is paused are not misfires: resuming settles everything up to the moment of resuming.

System jobs. `add_system_job(job_id, func, trigger)` registers an async callable on any APScheduler 3
trigger (IntervalTrigger, CronTrigger ...); jobs added before `start()` are kept and added on start.
They run coalesced, one instance at a time, on the same loop; an exception is logged, the job keeps its
schedule. Several nodes over one PostgreSQL each run their system jobs: a job must be safe to run on
every node (claim its work in the database), as the cron ticks are."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from data.db import Database
from data.models import Schedule, ScheduleRun
from data.types import utcnow
from engine.bus import LocalBus
from engine.cron import parse
from engine.errors import Invalid, NimbusError
from engine.events import ScheduleFired
from engine.principal import Principal
from engine.schedule_targets import TargetRegistry

log = logging.getLogger("nimbus.scheduler")

SCHEDULE_JOB_PREFIX = "schedule:"
RESYNC_JOB_ID = "nimbus:schedules-resync"
SystemJob = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _SystemJobSpec:
    func: SystemJob
    trigger: BaseTrigger


class _TickExecutor(AsyncIOExecutor):
    """APScheduler's asyncio executor, except that a schedule's job gets the time it was scheduled
    for (APScheduler's own executors do not pass it on): that tick is what the run claims."""

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        if not job.id.startswith(SCHEDULE_JOB_PREFIX):
            super()._do_submit_job(job, run_times)
            return
        try:
            job.func(*job.args, run_times[-1])  # coalesced: the latest due tick
        except BaseException:
            self._eventloop.call_soon(self._run_job_error, job.id, *sys.exc_info()[1:])
        else:  # after submit_job has counted this instance
            self._eventloop.call_soon(self._run_job_success, job.id, [])


def schedule_principal(schedule: Schedule) -> Principal:
    """Who a tick acts as: the schedule itself (audit and invocation records name it)."""
    return Principal(actor=f"schedule:{schedule.name}", actor_type="system", role="admin")


class Scheduler:
    def __init__(
        self,
        db: Database,
        bus: LocalBus,
        targets: TargetRegistry,
        *,
        node_id: str = "",
        resync_sec: float = 15.0,
        misfire_grace_sec: float = 60.0,
    ) -> None:
        self._db = db
        self._bus = bus
        self._targets = targets
        self._node = node_id
        self.resync_sec = resync_sec
        self.misfire_grace_sec = misfire_grace_sec
        self._aps: AsyncIOScheduler | None = None
        self._system: dict[str, _SystemJobSpec] = {}
        self._signatures: dict[str, tuple[Any, ...]] = {}  # job id -> what the job was built from
        self._fires: set[asyncio.Task[Any]] = set()
        self._reload_lock = asyncio.Lock()
        self.running = False

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start APScheduler on the running loop, load the schedules, and handle the ticks missed while
        no scheduler ran (each schedule's misfire policy)."""
        aps = AsyncIOScheduler(
            timezone=UTC,
            executors={"default": _TickExecutor()},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        aps.start()
        self._aps, self.running = aps, True
        for job_id, spec in self._system.items():
            self._add_system(job_id, spec)
        self.add_system_job(RESYNC_JOB_ID, self._resync, IntervalTrigger(seconds=self.resync_sec))
        await self.reload(catch_up_until=utcnow())

    async def stop(self) -> None:
        """Stop firing; let ticks being handled finish (a claimed tick should start its run)."""
        if not self.running:
            return
        self.running = False
        aps, self._aps = self._aps, None
        if aps is not None:
            aps.shutdown(wait=False)
        self._signatures.clear()
        if self._fires:
            _, pending = await asyncio.wait(set(self._fires), timeout=10)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(BaseException):
                    await task

    async def settled(self) -> None:
        """Wait until the ticks being handled now are done (their runs started or failed)."""
        while self._fires:
            await asyncio.wait(set(self._fires))

    # --- system jobs ------------------------------------------------------------------------------

    def add_system_job(self, job_id: str, func: SystemJob, trigger: BaseTrigger) -> None:
        """Run `await func()` on `trigger` (any APScheduler 3 trigger), replacing a job of the same id.
        Safe before `start()` (the job starts with the scheduler). Ids starting with "schedule:" are
        reserved for cron schedules."""
        if job_id.startswith(SCHEDULE_JOB_PREFIX):
            raise ValueError(f"job ids starting with {SCHEDULE_JOB_PREFIX!r} are reserved")
        spec = _SystemJobSpec(func, trigger)
        self._system[job_id] = spec
        if self._aps is not None:
            self._add_system(job_id, spec)

    def remove_system_job(self, job_id: str) -> None:
        self._system.pop(job_id, None)
        if self._aps is not None:
            with contextlib.suppress(Exception):
                self._aps.remove_job(job_id)

    def system_jobs(self) -> dict[str, datetime | None]:
        """Each system job's next run time (None while stopped)."""
        jobs = {job.id: job.next_run_time for job in self._aps.get_jobs()} if self._aps else {}
        return {job_id: jobs.get(job_id) for job_id in self._system}

    def _add_system(self, job_id: str, spec: _SystemJobSpec) -> None:
        assert self._aps is not None
        self._aps.add_job(
            self._run_system,
            trigger=spec.trigger,
            args=(job_id, spec.func),
            id=job_id,
            name=job_id,
            replace_existing=True,
        )

    async def _run_system(self, job_id: str, func: SystemJob) -> None:
        try:
            await func()
        except Exception:
            log.exception("system job %s failed", job_id)

    # --- keeping the jobs in step with the table --------------------------------------------------

    def next_run(self, schedule: Schedule, after: datetime | None = None) -> datetime | None:
        """When `schedule` runs next (None when paused or its expression no longer parses)."""
        if schedule.paused:
            return None
        try:
            return parse(schedule.cron, schedule.timezone).next_after(after or utcnow())
        except Invalid:
            return None

    def job_next_run(self, schedule_id: str) -> datetime | None:
        """When this node's APScheduler will fire the schedule next (None: no job here)."""
        if self._aps is None:
            return None
        job = self._aps.get_job(SCHEDULE_JOB_PREFIX + schedule_id)
        return job.next_run_time if job is not None else None

    async def refresh(self, schedule_id: str) -> None:
        """Bring one schedule's job in step with its row (after the service committed a change)."""
        if not self.running:
            return
        async with self._db.session() as session:
            schedule = await session.get(Schedule, schedule_id)
        async with self._reload_lock:
            self._apply(schedule_id, schedule)

    async def reload(self, *, catch_up_until: datetime | None = None) -> None:
        """Bring every job in step with the table; with `catch_up_until`, apply the misfire policy to
        ticks before it that are still unsettled."""
        if not self.running:
            return
        async with self._db.session() as session:
            schedules = list((await session.execute(select(Schedule))).scalars())
        async with self._reload_lock:
            seen = {s.id for s in schedules}
            for job_id in list(self._signatures):
                if job_id.removeprefix(SCHEDULE_JOB_PREFIX) not in seen:
                    self._drop(job_id)
            for schedule in schedules:
                self._apply(schedule.id, schedule)
        if catch_up_until is not None:
            for schedule in schedules:
                if not schedule.paused and self.running:
                    await self._catch_up(schedule, catch_up_until)

    async def _resync(self) -> None:
        """Pick up other nodes' changes, and ticks nobody claimed in time (a node died mid-tick)."""
        await self.reload(catch_up_until=utcnow() - timedelta(seconds=self.misfire_grace_sec))

    def _apply(self, schedule_id: str, schedule: Schedule | None) -> None:
        job_id = SCHEDULE_JOB_PREFIX + schedule_id
        if schedule is None or schedule.paused or self._aps is None:
            self._drop(job_id)
            return
        signature = (schedule.cron, schedule.timezone, schedule.updated_at)
        if self._signatures.get(job_id) == signature:
            return
        try:
            cron = parse(schedule.cron, schedule.timezone)
        except Invalid as exc:
            log.warning("schedule %s has an invalid expression and does not run: %s", schedule.name, exc)
            self._drop(job_id)
            return
        self._aps.add_job(
            self._on_tick,
            trigger=cron.trigger,
            args=(schedule_id,),
            id=job_id,
            name=schedule.name,
            replace_existing=True,
        )
        self._signatures[job_id] = signature

    def _drop(self, job_id: str) -> None:
        self._signatures.pop(job_id, None)
        if self._aps is not None:
            with contextlib.suppress(Exception):
                self._aps.remove_job(job_id)

    # --- firing -----------------------------------------------------------------------------------

    def _on_tick(self, schedule_id: str, tick: datetime | None = None) -> None:
        """APScheduler's call at a tick (on the loop, through _TickExecutor, which passes the tick):
        handle it in a task of our own."""
        if not self.running or tick is None:
            return
        task = asyncio.get_running_loop().create_task(self._tick(schedule_id, tick.astimezone(UTC)))
        self._fires.add(task)
        task.add_done_callback(self._fires.discard)

    async def _tick(self, schedule_id: str, tick: datetime) -> None:
        try:
            late = (utcnow() - tick).total_seconds() > self.misfire_grace_sec
            if not late:
                await self.run(schedule_id, tick, kind="cron")
                return
            async with self._db.session() as session:
                schedule = await session.get(Schedule, schedule_id)
            if schedule is not None:
                await self._misfire(schedule, tick, 1)
        except Exception:
            log.exception("handling a tick of schedule %s failed", schedule_id)

    async def _catch_up(self, schedule: Schedule, until: datetime) -> None:
        try:
            cron = parse(schedule.cron, schedule.timezone)
        except Invalid:
            return
        missed, last = cron.ticks_between(schedule.settled_until, until)
        if missed and last is not None:
            await self._misfire(schedule, last.astimezone(UTC), missed)

    async def _misfire(self, schedule: Schedule, tick: datetime, missed: int) -> None:
        if schedule.misfire_policy == "run_once":
            await self.run(schedule.id, tick, kind="catch_up", missed=missed)
            return
        more = "+" if missed >= 100 else ""
        reason = (
            f"{missed}{more} run{'s' if missed != 1 else ''} missed while no scheduler was running; "
            "skipped by the misfire policy"
        )
        await self._claim(schedule.id, tick, kind="skipped", missed=missed, error=reason)

    async def run(
        self, schedule_id: str, tick: datetime, *, kind: str = "cron", missed: int = 0
    ) -> ScheduleRun | None:
        """Claim `tick` of the schedule and start its run; None when the tick is not ours to run
        (claimed already, settled, paused, deleted, or no longer a tick of the expression). `kind`
        "manual" runs whatever the state (its tick is the moment of asking)."""
        claimed = await self._claim(schedule_id, tick, kind=kind, missed=missed)
        if claimed is None:
            return None
        schedule, row = claimed
        status, error, target_run = "started", "", None
        try:
            target = self._targets.get(schedule.target_type)
            target_run = await target.start(
                schedule_principal(schedule), schedule.target_id, schedule.payload, source="cron"
            )
        except NimbusError as exc:
            status, error = "failed", exc.message
        except Exception:
            log.exception("starting a run of schedule %s failed", schedule.name)
            status, error = "failed", "internal error; see the server log"
        async with self._db.transaction() as session:
            stored = await session.get(ScheduleRun, row.id)
            if stored is not None:  # gone when the schedule was deleted meanwhile
                stored.status, stored.error, stored.run_id = status, error, target_run
                session.add(stored)
                self._fired(session, schedule, stored)
            row.status, row.error, row.run_id = status, error, target_run
        return row

    async def _claim(
        self, schedule_id: str, tick: datetime, *, kind: str, missed: int = 0, error: str = ""
    ) -> tuple[Schedule, ScheduleRun] | None:
        skipped = kind == "skipped"
        try:
            async with self._db.transaction() as session:
                schedule = await session.get(Schedule, schedule_id)
                if schedule is None:
                    return None
                if kind != "manual":
                    if schedule.paused or tick <= schedule.settled_until:
                        return None
                    if kind == "cron" and not self._is_tick(schedule, tick):
                        return None  # a stale job: the expression changed on another node
                    schedule.settled_until = tick
                row = ScheduleRun(
                    schedule_id=schedule.id,
                    scheduled_at=tick,
                    kind=kind,
                    status="skipped" if skipped else "claimed",
                    target_type=schedule.target_type,
                    target_id=schedule.target_id,
                    missed=missed,
                    error=error,
                    node=self._node,
                )
                schedule.last_run_at, schedule.last_run_id = tick, row.id
                session.add(schedule)
                session.add(row)
                await session.flush()  # a second claimer of this tick fails here (or at commit)
                if skipped:
                    self._fired(session, schedule, row)
        except IntegrityError:
            return None
        return schedule, row

    def _is_tick(self, schedule: Schedule, tick: datetime) -> bool:
        try:
            cron = parse(schedule.cron, schedule.timezone)
        except Invalid:
            return False
        return cron.next_after(tick - timedelta(microseconds=1)) == tick

    def _fired(self, session: Any, schedule: Schedule, row: ScheduleRun) -> None:
        event = ScheduleFired(
            schedule_id=schedule.id,
            name=schedule.name,
            run_id=row.id,
            scheduled_at=row.scheduled_at,
            kind=row.kind,
            status=row.status,
            target_run_id=row.run_id,
        )
        session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))
