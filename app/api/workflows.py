"""/api/v1/workflows and /api/v1/executions: the original Nimbus's paths (§1.14), with its bugs fixed
(404 for what does not exist, errors in our one shape, ids or names for workflows), plus versions,
validate, ASL import/export, sync start, the debugger (step/continue/abort/edit input) and redrive.
Thin: parse, call platform.workflows, render."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import CurrentPrincipal, PlatformDep
from app.api.workflow_views import (
    breakpoint_view,
    execution_view,
    state_run_view,
    version_view,
    workflow_view,
)
from engine.errors import BadRequest, TooLarge
from engine.services.workflow_schemas import (
    MAX_WAIT_SEC,
    BreakpointsBody,
    ExecutionBreakpoint,
    InputBody,
    StartBody,
    WorkflowCreate,
    WorkflowUpdate,
)
from engine.workflows.model import MISSING
from engine.workflows.runner import TERMINAL

router = APIRouter(prefix="/api/v1", tags=["workflows"])

MAX_BODY_BYTES = 1024 * 1024


async def _json_body(request: Request, *, empty: Any = None) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}", field="body")
    if not raw.strip():
        return empty
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON body: {exc}", field="body") from None


def _given_input(body: InputBody | None) -> Any:
    return body.input if body is not None and "input" in body.model_fields_set else MISSING


# --- workflows -------------------------------------------------------------------------------------------


@router.post("/workflows", status_code=201)
async def create_workflow(
    body: WorkflowCreate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return workflow_view(await platform.workflows.create(principal, body))


@router.get("/workflows")
async def list_workflows(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    q: str | None = Query(default=None, max_length=64),
    status: str | None = Query(default=None, max_length=16),
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.workflows.list(principal, q=q, status=status, limit=limit, cursor=cursor)
    return {"workflows": [workflow_view(w) for w in page.items], "next_cursor": page.next_cursor}


@router.post("/workflows/validate")
async def validate_workflow(
    request: Request, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Body: a definition (Nimbus JSON or ASL), or `{"definition": ...}`."""
    body = await _json_body(request)
    if isinstance(body, dict) and "definition" in body and not {"states", "States"} & set(body):
        body = body["definition"]
    problems = await platform.workflows.validate(principal, body)
    return {"valid": not problems, "problems": [p.to_dict() for p in problems]}


@router.post("/workflows/import", status_code=201)
async def import_workflow(
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    name: str | None = Query(default=None, max_length=64, description="when the body is a bare definition"),
) -> dict[str, Any]:
    """Body: a create body whose definition may be ASL, or a bare definition (ASL or Nimbus JSON)
    with `?name=`."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", field="body")
    if "definition" not in body:
        body = {"name": name or body.get("Comment", ""), "definition": body}
    elif name:
        body = {**body, "name": name}
    return workflow_view(await platform.workflows.create(principal, body))


@router.get("/workflows/{ref}")
async def get_workflow(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return workflow_view(await platform.workflows.get(principal, ref))


@router.put("/workflows/{ref}")
async def update_workflow(
    ref: str, body: WorkflowUpdate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return workflow_view(await platform.workflows.update(principal, ref, body))


@router.delete("/workflows/{ref}", status_code=204)
async def delete_workflow(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> Response:
    await platform.workflows.delete(principal, ref)
    return Response(status_code=204)


@router.get("/workflows/{ref}/versions")
async def list_versions(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return {"versions": [version_view(v) for v in await platform.workflows.versions(principal, ref)]}


@router.get("/workflows/{ref}/versions/{number}")
async def get_version(
    ref: str, number: int, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return version_view(await platform.workflows.version(principal, ref, number))


@router.get("/workflows/{ref}/export")
async def export_workflow(
    ref: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    format: Literal["nimbus", "asl"] = "nimbus",
    version: int | None = Query(default=None, ge=1),
) -> dict[str, Any]:
    return await platform.workflows.export(principal, ref, version, format)


@router.put("/workflows/{ref}/breakpoints")
async def set_workflow_breakpoints(
    ref: str, body: BreakpointsBody, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return workflow_view(await platform.workflows.set_breakpoints(principal, ref, body.breakpoints))


# --- starting and listing executions ---------------------------------------------------------------------


@router.post("/workflows/{ref}/executions", status_code=202)
async def start_execution(
    ref: str,
    request: Request,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    sync: bool = False,
    wait_sec: float = Query(default=60, ge=0, le=MAX_WAIT_SEC),
) -> JSONResponse:
    """Body `{input?, name?, version?, breakpoints?}` (empty: input {}). 202 with the execution; with
    `?sync=true` wait for the end (at most wait_sec): 200 when it ended, 202 while it still runs."""
    raw = await _json_body(request, empty={})
    if not isinstance(raw, dict):
        raise BadRequest("the body must be a JSON object: {input, name, version, breakpoints}", field="body")
    body = StartBody.model_validate(raw)
    options = {"name": body.name, "version": body.version, "breakpoints": body.breakpoints}
    if sync:
        execution = await platform.workflows.run(principal, ref, body.input, wait_sec=wait_sec, **options)
    else:
        execution = await platform.workflows.start(principal, ref, body.input, **options)
    code = 200 if execution.status in TERMINAL else 202
    return JSONResponse(execution_view(execution), status_code=code)


def _executions_page(page: Any) -> dict[str, Any]:
    return {"executions": [execution_view(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/workflows/{ref}/executions")
async def list_workflow_executions(
    ref: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    status: str | None = Query(default=None, max_length=16),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.workflows.executions(
        principal, workflow=ref, status=status, since=since, until=until, limit=limit, cursor=cursor
    )
    return _executions_page(page)


@router.get("/executions")
async def list_executions(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    workflow: str | None = Query(default=None, max_length=64, description="a workflow id or name"),
    workflow_id: str | None = Query(default=None, max_length=64),
    status: str | None = Query(default=None, max_length=16),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.workflows.executions(
        principal,
        workflow=workflow or workflow_id,
        status=status,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return _executions_page(page)


# --- one execution ----------------------------------------------------------------------------------------


@router.get("/executions/{execution_id}")
async def get_execution(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return execution_view(await platform.workflows.execution(principal, execution_id), definition=True)


@router.get("/executions/{execution_id}/history")
async def execution_history(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The execution's fields, flattened, plus `history`: every state run in the order they began."""
    execution = await platform.workflows.execution(principal, execution_id)
    runs = await platform.workflows.state_runs(principal, execution_id)
    return execution_view(execution, definition=True) | {"history": [state_run_view(r) for r in runs]}


@router.get("/executions/{execution_id}/states")
async def execution_state_runs(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    runs = await platform.workflows.state_runs(principal, execution_id)
    return {"state_runs": [state_run_view(r) for r in runs]}


@router.post("/executions/{execution_id}/stop")
async def stop_execution(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return execution_view(await platform.workflows.cancel(principal, execution_id))


@router.post("/executions/{execution_id}/redrive")
async def redrive_execution(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return execution_view(await platform.workflows.redrive(principal, execution_id))


# --- breakpoints and the debugger ---------------------------------------------------------------------------


@router.post("/executions/{execution_id}/breakpoints", status_code=201)
async def add_breakpoint(
    execution_id: str, body: ExecutionBreakpoint, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    await platform.workflows.add_breakpoint(principal, execution_id, body.before_state)
    return breakpoint_view(execution_id, body.before_state)


@router.get("/executions/{execution_id}/breakpoints")
async def list_breakpoints(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> list[dict[str, Any]]:
    execution = await platform.workflows.execution(principal, execution_id)
    return [breakpoint_view(execution_id, state) for state in execution.breakpoints]


@router.delete("/executions/{execution_id}/breakpoints/{state}", status_code=204)
async def remove_breakpoint(
    execution_id: str, state: str, platform: PlatformDep, principal: CurrentPrincipal
) -> Response:
    await platform.workflows.remove_breakpoint(principal, execution_id, state)
    return Response(status_code=204)


async def _debug(
    platform: Any, principal: Any, execution_id: str, action: str, body: InputBody | None
) -> Any:
    execution = await platform.workflows.debug(principal, execution_id, action, _given_input(body))
    return execution_view(execution)


@router.post("/executions/{execution_id}/resume")
async def resume_execution(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal, body: InputBody | None = None
) -> dict[str, Any]:
    """The original's resume: Continue, with an optional new input for the paused state."""
    return await _debug(platform, principal, execution_id, "continue", body)


@router.post("/executions/{execution_id}/continue")
async def continue_execution(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal, body: InputBody | None = None
) -> dict[str, Any]:
    return await _debug(platform, principal, execution_id, "continue", body)


@router.post("/executions/{execution_id}/step")
async def step_execution(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal, body: InputBody | None = None
) -> dict[str, Any]:
    return await _debug(platform, principal, execution_id, "step", body)


@router.post("/executions/{execution_id}/abort")
async def abort_execution(
    execution_id: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return execution_view(await platform.workflows.debug(principal, execution_id, "abort"))


@router.put("/executions/{execution_id}/input")
async def edit_paused_input(
    execution_id: str, body: InputBody, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    if "input" not in body.model_fields_set:
        raise BadRequest('give the new input: {"input": ...}', field="input")
    return execution_view(await platform.workflows.edit_input(principal, execution_id, body.input))
