"""What a schedule can run: a registry of target kinds, each with an async starter.

A kind is registered once per platform: `platform.schedule_targets.register(TargetKind(...))`. The
platform registers "function" (an async invocation through the durable queue, source "cron"); other
parts register theirs (e.g. "workflow": start an execution). A schedule naming a kind that is not
registered is refused when it is created or changed, and a tick of one fails with the reason.

    start(principal, target_id, payload, source="cron") -> run id   (required: begins one run)
    resolve(principal, ref) -> Target                                (optional: id-or-name -> id, name)
    statuses(run_ids) -> {run_id: RunState}                          (optional: how those runs went)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from data.db import Database
from data.models import Invocation
from engine.errors import Invalid
from engine.principal import Principal


@dataclass(frozen=True, slots=True)
class Target:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class RunState:
    """The outcome of a run a schedule started, in its kind's words (pending, running, success ...)."""

    status: str
    error: str | None = None
    duration_ms: float | None = None


class Starter(Protocol):
    async def __call__(
        self, principal: Principal, target_id: str, payload: Any, *, source: str = "cron"
    ) -> str: ...


Resolver = Callable[[Principal, str], Awaitable[Target]]
StatusReader = Callable[[Sequence[str]], Awaitable[dict[str, RunState]]]


@dataclass(frozen=True, slots=True)
class TargetKind:
    name: str
    start: Starter
    resolve: Resolver | None = None  # None: the target id is taken as given
    statuses: StatusReader | None = None  # None: run history shows only whether the run started
    target_path: Callable[[str], str] | None = None  # the console page of a target (by id)
    run_path: Callable[[str], str] | None = None  # the console page of one run (by run id)


class TargetRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, TargetKind] = {}

    def register(self, kind: TargetKind) -> None:
        """Add (or replace) a kind."""
        self._kinds[kind.name] = kind

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def find(self, name: str) -> TargetKind | None:
        return self._kinds.get(name)

    def get(self, name: str) -> TargetKind:
        """The kind, or Invalid naming `target_type` when no such kind is registered here."""
        kind = self._kinds.get(name)
        if kind is None:
            known = ", ".join(self.names()) or "none"
            raise Invalid(
                "target_type", f"schedules cannot target {name!r} here: the target types are {known}"
            )
        return kind

    async def resolve(self, principal: Principal, name: str, ref: str) -> Target:
        kind = self.get(name)
        if kind.resolve is None:
            return Target(ref, ref)
        return await kind.resolve(principal, ref)

    async def statuses(self, name: str, run_ids: Sequence[str]) -> dict[str, RunState]:
        kind = self._kinds.get(name)
        if kind is None or kind.statuses is None or not run_ids:
            return {}
        return await kind.statuses(run_ids)


# --- the function kind ----------------------------------------------------------------------------


class _Submitter(Protocol):
    async def submit(
        self, principal: Principal, ref: str, event: Any, *, source: str = "api"
    ) -> tuple[str, bool]: ...


class _Functions(Protocol):
    async def get(self, principal: Principal, ref: str) -> Any: ...


def function_kind(db: Database, invoker: _Submitter, functions: _Functions) -> TargetKind:
    """Functions: each tick is an async invocation (committed to the durable queue, so it survives a
    restart and is retried per the function's policy) with source "cron"; the run id is its request id."""

    async def start(principal: Principal, target_id: str, payload: Any, *, source: str = "cron") -> str:
        request_id, _ = await invoker.submit(principal, target_id, payload, source=source)
        return request_id

    async def resolve(principal: Principal, ref: str) -> Target:
        fn = await functions.get(principal, ref)
        return Target(fn.id, fn.name)

    async def statuses(run_ids: Sequence[str]) -> dict[str, RunState]:
        stmt = select(
            Invocation.id, Invocation.status, Invocation.error_message, Invocation.duration_ms
        ).where(Invocation.id.in_(list(run_ids)))  # type: ignore[attr-defined]
        async with db.session() as session:
            rows = (await session.execute(stmt)).all()
        return {row[0]: RunState(row[1], row[2], row[3]) for row in rows}

    return TargetKind(
        "function",
        start,
        resolve,
        statuses,
        target_path=lambda target_id: f"/functions/{target_id}",
        run_path=lambda run_id: f"/invocations?id={run_id}",
    )
