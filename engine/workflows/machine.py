"""The state machine interpreter: runs a definition's states one after another (branches and Map
iterations concurrently), applying the data flow, Retry and Catch, and recording every state run through
the execution's Journal. One Machine drives one execution on this node.

Task errors, as Step Functions reports Lambda's: a function that raised fails the state with its own
error type (e.g. "ValueError", or the platform's "MemoryLimitExceeded" / "WorkerCrashed"), which
States.TaskFailed and States.ALL also match; a function (or a state `timeout_sec`) that ran out of time is
States.Timeout; a call the platform refused fails with "Nimbus.<Reason>" (Nimbus.NotFound for a deleted
function, Nimbus.BadRequest for an offline one, Nimbus.QuotaExceeded when no slot was free).
A Task is at-least-once: a node that dies while one runs leaves it to be run again where it resumes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

from data.types import new_id, utcnow
from engine.errors import NimbusError
from engine.invoke.invoker import Invoker
from engine.principal import Principal
from engine.workflows import dataflow
from engine.workflows.choice import choose
from engine.workflows.errors import StateError, find_catcher, retrier_index, retry_delay
from engine.workflows.journal import Journal, RunRecord
from engine.workflows.model import (
    DATA_LIMIT_EXCEEDED,
    RUNTIME,
    TIMEOUT,
    Definition,
    State,
)

MAP_CONCURRENCY_CAP = 40  # a Map with max_concurrency 0 ("no limit") runs at most this many at once
MAX_MAP_ITEMS = 10_000
MAX_STATE_RUNS = 25_000  # per execution, nested ones included (Step Functions' history limit)
MAX_PAYLOAD_BYTES = 256 * 1024  # Step Functions' limit on a state's output


class Paused(Exception):
    """The execution stopped before a state with a breakpoint (or in step mode): its row says where."""


@dataclass(slots=True)
class Debug:
    """The debugger's view of one execution: where to pause, and the one state to let through."""

    breakpoints: set[str] = field(default_factory=set)
    skip_once: str = ""  # Continue/Step: this state runs now without pausing
    step_mode: bool = False  # Step: pause before the next state

    def should_pause(self, state: str) -> bool:
        return (state in self.breakpoints or self.step_mode) and self.skip_once != state


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a state runs: at the top level, or inside a Parallel branch / Map iteration."""

    parent_id: str = ""
    branch: int | None = None
    item: int | None = None

    @property
    def top(self) -> bool:
        return not self.parent_id


@dataclass(frozen=True, slots=True)
class Start:
    """Where the top level begins: a state, its raw input, and the row to run again (resume/continue)."""

    state: str
    input: Any
    reuse: RunRecord | None = None


class Machine:
    def __init__(
        self,
        *,
        journal: Journal,
        invoker: Invoker,
        principal: Principal,
        context: Mapping[str, Any],
        debug: Debug,
    ) -> None:
        self._journal = journal
        self._invoker = invoker
        self._principal = principal
        self._context = context  # Execution and StateMachine parts of the context object
        self.debug = debug

    async def run(self, definition: Definition, start: Start) -> Any:
        """Run the top level from `start` to its end; the last state's output. Raises StateError when
        the execution fails, Paused when it stops at a breakpoint."""
        return await self._run(definition, start.state, start.input, Scope(), start.reuse)

    async def _run(
        self, definition: Definition, name: str, data: Any, scope: Scope, reuse: RunRecord | None = None
    ) -> Any:
        journal = self._journal
        while True:
            state = definition.states.get(name)
            if state is None:
                raise StateError(RUNTIME, f"there is no state named {name!r}")
            if journal.runs >= MAX_STATE_RUNS:
                raise StateError(RUNTIME, f"the execution ran {MAX_STATE_RUNS} states, the most one may run")
            invocation_id = new_id() if state.type == "task" else ""
            if reuse is not None:
                keep_clock = reuse.status in ("running", "retrying") and state.type == "wait"
                run = reuse
                journal.resume(run, raw_input=data, restart_clock=not keep_clock, invocation_id=invocation_id)
                reuse = None
            elif scope.top and self.debug.should_pause(name):
                journal.begin(name, state.type, data, status="paused")
                journal.execution(
                    {
                        "status": "paused",
                        "current_state": name,
                        "paused_at_state": name,
                        "paused_input": data,
                        "paused_at": utcnow(),
                        "skip_breakpoint_once": "",
                    }
                )
                await journal.commit()
                raise Paused(name)
            else:
                run = journal.begin(
                    name,
                    state.type,
                    data,
                    parent_id=scope.parent_id,
                    branch=scope.branch,
                    item=scope.item,
                    invocation_id=invocation_id,
                )
            if scope.top:
                values: dict[str, Any] = {"status": "running", "current_state": name}
                if self.debug.skip_once:
                    values["skip_breakpoint_once"] = self.debug.skip_once = ""
                journal.execution(values)
            if state.type == "wait":
                await journal.commit()  # its start time must survive a restart: it waits only what is left
            else:
                journal.send()  # committed in order by the single writer while the state runs
                await asyncio.sleep(0)  # a loop of Pass/Choice states must not starve the event loop
            next_name, data = await self._state(state, data, run, scope)
            if next_name is None:
                return data
            name = next_name

    # --- one state: attempts, Retry, Catch ------------------------------------------------------------

    async def _state(self, state: State, raw: Any, run: RunRecord, scope: Scope) -> tuple[str | None, Any]:
        journal = self._journal
        retries: dict[int, int] = {}
        try:
            while True:
                try:
                    next_name, output = await self._attempt(state, raw, run, scope, sum(retries.values()))
                    _check_size(state, output)
                except StateError as err:
                    delay = retry_delay(state.retry, err.error, run.attempt, counts=retries)
                    if delay is not None:
                        index = retrier_index(state.retry, err.error)
                        assert index is not None
                        retries[index] = retries.get(index, 0) + 1
                        journal.update(
                            run,
                            status="retrying",
                            attempt=run.attempt + 1,
                            error=err.error[:256],
                            cause=err.cause,
                        )
                        await asyncio.sleep(delay)
                        values: dict[str, Any] = {"status": "running"}
                        if state.type == "task":
                            values["invocation_id"] = new_id()
                        journal.update(run, **values)
                        continue
                    catcher = find_catcher(state.catch, err.error)
                    if catcher is None:
                        journal.finish(run, "failed", error=err.error, cause=err.cause)
                        raise
                    try:
                        output = dataflow.catch_output(catcher, raw, err)
                    except StateError as placing:  # the catcher's result_path does not fit the input
                        journal.finish(run, "failed", error=placing.error, cause=placing.cause)
                        raise
                    journal.finish(
                        run,
                        "caught",
                        output=output,
                        error=err.error,
                        cause=err.cause,
                        next_state=catcher.next,
                    )
                    return catcher.next, output
                journal.finish(run, "succeeded", output=output, next_state=next_name or "")
                return next_name, output
        except asyncio.CancelledError:
            if run.status in ("running", "retrying"):
                journal.finish(run, "cancelled")
            raise

    async def _attempt(
        self, state: State, raw: Any, run: RunRecord, scope: Scope, retry_count: int
    ) -> tuple[str | None, Any]:
        context = {
            **self._context,
            "State": {
                "Name": state.name,
                "EnteredTime": run.started_at.isoformat(),
                "RetryCount": retry_count,
            },
        }
        kind = state.type
        if kind in ("task", "parallel", "map"):
            try:
                async with asyncio.timeout(state.timeout_sec):
                    output = await self._work(state, raw, run, context)
            except TimeoutError:
                raise StateError(
                    TIMEOUT, f"state {state.name!r} timed out after {state.timeout_sec:g} s"
                ) from None
            return _next(state), output
        if kind == "fail":
            error, cause = dataflow.fail_fields(state, raw)
            raise StateError(error, cause)
        effective = dataflow.state_input(state, raw, context)
        if kind == "pass":
            return _next(state), dataflow.state_output(
                state, raw, dataflow.pass_result(state, effective), context
            )
        if kind == "choice":
            target = choose(state, effective)
            return target, dataflow.state_output(state, raw, effective, context)
        if kind == "wait":
            until = dataflow.wait_until(state, effective, run.started_at)
            left = (until - utcnow()).total_seconds()
            if left > 0:
                await asyncio.sleep(left)
        # wait, succeed: only InputPath and OutputPath
        return _next(state), dataflow.state_output(state, raw, effective, context)

    async def _work(self, state: State, raw: Any, run: RunRecord, context: Mapping[str, Any]) -> Any:
        if state.type == "task":
            effective = dataflow.state_input(state, raw, context)
            result = await self._invoke(state, effective, run.invocation_id)
        elif state.type == "parallel":
            effective = dataflow.state_input(state, raw, context)
            result = await _all_or_first_error(
                [
                    self._branch(branch, effective, Scope(run.id, branch=i))
                    for i, branch in enumerate(state.branches)
                ]
            )
        else:
            result = await self._map(state, raw, run, context)
        return dataflow.state_output(state, raw, result, context)

    async def _branch(self, definition: Definition, data: Any, scope: Scope) -> Any:
        return await self._run(definition, definition.start_at, data, scope)

    async def _map(self, state: State, raw: Any, run: RunRecord, context: Mapping[str, Any]) -> list[Any]:
        effective = dataflow.effective_input(state, raw, context)
        items = dataflow.map_items(state, effective, context)
        if len(items) > MAX_MAP_ITEMS:
            raise StateError(
                DATA_LIMIT_EXCEEDED, f"a Map iterates at most {MAX_MAP_ITEMS} items, got {len(items)}"
            )
        iterator = state.iterator
        if iterator is None:
            raise StateError(RUNTIME, f"Map state {state.name!r} has no iterator")
        limit = min(state.max_concurrency or MAP_CONCURRENCY_CAP, MAP_CONCURRENCY_CAP)
        gate = asyncio.Semaphore(limit)

        async def one(index: int, item: Any) -> Any:
            async with gate:
                data = dataflow.item_input(state, item, index, raw, context)
                return await self._run(iterator, iterator.start_at, data, Scope(run.id, item=index))

        return await _all_or_first_error([one(i, item) for i, item in enumerate(items)])

    async def _invoke(self, state: State, event: Any, invocation_id: str) -> Any:
        try:
            outcome = await self._invoker.invoke(
                self._principal,
                state.function_id,
                event,
                source="workflow",
                version=str(state.function_version) if state.function_version else None,
                environment=state.environment or None,
                request_id=invocation_id or None,
            )
        except NimbusError as exc:
            raise StateError(f"Nimbus.{type(exc).__name__}", exc.message) from None
        result = outcome.result
        if result.ok:
            return result.result
        if result.status == "timeout":
            raise StateError(TIMEOUT, result.error.message if result.error else "the function timed out")
        error = result.error
        if error is None:
            raise StateError("States.TaskFailed", "the function failed")
        raise StateError(error.type or "States.TaskFailed", error.message)


def _check_size(state: State, output: Any) -> None:
    """AWS's payload limit: a state's output of more than MAX_PAYLOAD_BYTES fails the execution."""
    try:
        size = len(json.dumps(output, separators=(",", ":"), default=str).encode())
    except (TypeError, ValueError) as exc:
        raise StateError(RUNTIME, f"the output of state {state.name!r} is not JSON: {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise StateError(
            DATA_LIMIT_EXCEEDED,
            f"the output of state {state.name!r} is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}",
        )


def _next(state: State) -> str | None:
    if state.type in ("succeed", "fail") or state.end:
        return None
    return state.next


async def _all_or_first_error(work: list[Awaitable[Any]]) -> list[Any]:
    """Run every awaitable concurrently; their results in order, or the first failure (the others are
    cancelled and have finished when this returns or raises)."""
    if not work:
        return []
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in tasks if t in done and not t.cancelled() and t.exception() is not None]
        if failed:
            exc = failed[0].exception()
            assert exc is not None
            raise exc
        return [t.result() for t in tasks]
    finally:
        pending = [t for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        for task in tasks:  # mark every failure retrieved: only the first one is reported
            if task.done() and not task.cancelled():
                task.exception()
