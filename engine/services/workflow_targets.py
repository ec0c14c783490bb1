"""Workflows as targets of the platform's other triggers: a cron schedule's tick starts an execution
(source "cron"), and a webhook starts one (source "webhook": async answers 202 at once, sync waits for the
end, bounded). Registered in engine/platform.py next to the function kinds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.principal import Principal
from engine.schedule_targets import RunState, Target, TargetKind
from engine.services.webhook_targets import StartOptions, TargetResult, WebhookTarget

if TYPE_CHECKING:
    from engine.services.workflows import WorkflowService

WEBHOOK_WAIT_SEC = 60  # a sync webhook waits at most this long for the execution to end


def workflow_kind(service: WorkflowService) -> TargetKind:
    """Schedules: each tick starts an execution; the run id is the execution id."""

    async def start(principal: Principal, target_id: str, payload: Any, *, source: str = "cron") -> str:
        execution = await service.start(principal, target_id, payload, source=source)
        return execution.id

    async def resolve(principal: Principal, ref: str) -> Target:
        workflow = await service.get(principal, ref)
        return Target(workflow.id, workflow.name)

    async def statuses(run_ids: Sequence[str]) -> dict[str, RunState]:
        return {
            e.id: RunState(
                e.status,
                e.error or None,
                (e.finished_at - e.started_at).total_seconds() * 1000
                if e.started_at and e.finished_at
                else None,
            )
            for e in await service.executions_by_id(list(run_ids))
        }

    return TargetKind(
        "workflow",
        start,
        resolve,
        statuses,
        target_path=lambda target_id: f"/workflows/{target_id}",
        run_path=lambda run_id: f"/executions/{run_id}",
    )


def workflow_target(service: WorkflowService) -> WebhookTarget:
    """Webhooks: async starts an execution and answers at once; sync waits for it to end (at most
    WEBHOOK_WAIT_SEC) and answers with its output, or its error."""

    async def resolve(principal: Principal, ref: str) -> tuple[str, str]:
        workflow = await service.get(principal, ref)
        return workflow.id, workflow.name

    async def start(
        principal: Principal, target_id: str, event: Any, sync: bool, *, options: StartOptions
    ) -> TargetResult:
        if not sync:
            execution = await service.start(principal, target_id, event, source="webhook")
            return TargetResult(execution.id, "accepted")
        execution = await service.run(
            principal, target_id, event, wait_sec=WEBHOOK_WAIT_SEC, source="webhook"
        )
        if execution.status == "succeeded":
            return TargetResult(execution.id, "success", execution.output)
        if execution.status in ("pending", "running", "paused"):
            return TargetResult(execution.id, "accepted")  # still going: the caller can follow it by id
        status = "timeout" if execution.status == "timeout" else "failed"
        return TargetResult(execution.id, status, None, execution.error, execution.cause)

    return WebhookTarget("workflow", resolve, start)
