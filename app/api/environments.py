"""/api/v1/environments (variables, secrets), a function's deployments per environment
(/api/v1/functions/{id}/environments/...: deploy, undeploy, promote) and what is deployed where
(/api/v1/deployments). Thin: parse, call the environments or deployments service, render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from app.api.deps import CurrentPrincipal, PlatformDep
from data.models import Environment, Function, FunctionEnvironment
from engine.services.deployments import Matrix
from engine.services.environment_schemas import (
    DeployRequest,
    EnvironmentCreate,
    EnvironmentUpdate,
    SecretsChange,
    VariablesUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["environments"])


def _ts(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def environment_view(env: Environment, secret_names: list[str]) -> dict[str, Any]:
    return {
        "id": env.id,
        "name": env.name,
        "description": env.description,
        "position": env.position,
        "is_default": env.is_default,
        "env_vars": env.env_vars,
        "secrets": secret_names,  # names only: values never leave the engine
        "created_at": _ts(env.created_at),
        "updated_at": _ts(env.updated_at),
    }


def config_view(fn: Function, env: Environment, row: FunctionEnvironment) -> dict[str, Any]:
    """The original's function_environment_config, plus the deployed `version` (null: $LATEST)."""
    return {
        "function_id": fn.id,
        "function_name": fn.name,
        "environment_id": env.id,
        "environment_name": env.name,
        "version": row.version,
        "env_vars": row.env_vars,
        "memory_mb": row.memory_mb,
        "timeout_sec": row.timeout_sec,
        "deployed_by": row.deployed_by,
        "created_at": _ts(row.created_at),
        "updated_at": _ts(row.updated_at),
    }


def matrix_view(matrix: Matrix) -> dict[str, Any]:
    environments = matrix.environments
    functions = []
    for row in matrix.rows:
        cells: dict[str, Any] = {}
        for env in environments:
            cell = row.cell(env)
            cells[env.name] = (
                None
                if cell is None
                else {"version": cell.version, "label": cell.label, "implicit": cell.implicit}
            )
        fn = row.function
        functions.append(
            {
                "id": fn.id,
                "name": fn.name,
                "runtime": fn.runtime,
                "latest_published_version": fn.latest_published or None,
                "environments": cells,
            }
        )
    return {
        "environments": [
            {"id": e.id, "name": e.name, "position": e.position, "is_default": e.is_default}
            for e in environments
        ],
        "functions": functions,
        "next_cursor": matrix.next_cursor,
    }


# --- environments ------------------------------------------------------------------------------------


@router.get("/environments")
async def list_environments(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    service = platform.environments
    environments = await service.list(principal)
    views = [environment_view(e, service.secret_names(e)) for e in environments]
    return {"environments": views, "total": len(views)}


@router.post("/environments", status_code=201)
async def create_environment(
    body: EnvironmentCreate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    env = await platform.environments.create(principal, body)
    return environment_view(env, platform.environments.secret_names(env))


@router.get("/environments/{ref}")
async def get_environment(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    env = await platform.environments.get(principal, ref)
    return environment_view(env, platform.environments.secret_names(env))


@router.put("/environments/{ref}")
async def update_environment(
    ref: str, body: EnvironmentUpdate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    env = await platform.environments.update(principal, ref, body)
    return environment_view(env, platform.environments.secret_names(env))


@router.delete("/environments/{ref}", status_code=204)
async def delete_environment(
    ref: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    force: bool = Query(default=False, description="also delete the deployments to this environment"),
) -> Response:
    await platform.environments.delete(principal, ref, force=force)
    return Response(status_code=204)


@router.put("/environments/{ref}/variables")
async def set_variables(
    ref: str, body: VariablesUpdate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    env = await platform.environments.set_variables(principal, ref, body.env_vars)
    return environment_view(env, platform.environments.secret_names(env))


@router.get("/environments/{ref}/secrets")
async def list_secrets(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    names = platform.environments.secret_names(await platform.environments.get(principal, ref))
    return {"secrets": names, "total": len(names)}


@router.put("/environments/{ref}/secrets")
async def change_secrets(
    ref: str, body: SecretsChange, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    env = await platform.environments.change_secrets(principal, ref, body.secrets)
    names = platform.environments.secret_names(env)
    return {"secrets": names, "total": len(names)}


# --- deployments ---------------------------------------------------------------------------------------


@router.get("/functions/{ref}/environments")
async def function_environments(
    ref: str, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    fn, pairs = await platform.deployments.of_function(principal, ref)
    configs = [config_view(fn, env, row) for env, row in pairs]
    return {"configs": configs, "total": len(configs)}


@router.put("/functions/{ref}/environments/{env}")
async def deploy(
    ref: str, env: str, platform: PlatformDep, principal: CurrentPrincipal, body: DeployRequest | None = None
) -> dict[str, Any]:
    environment, row = await platform.deployments.deploy(principal, ref, env, body or DeployRequest())
    fn = await platform.functions.get(principal, row.function_id)
    return config_view(fn, environment, row)


@router.delete("/functions/{ref}/environments/{env}", status_code=204)
async def undeploy(ref: str, env: str, platform: PlatformDep, principal: CurrentPrincipal) -> Response:
    await platform.deployments.undeploy(principal, ref, env)
    return Response(status_code=204)


@router.post("/functions/{ref}/environments/{env}/promote")
async def promote(ref: str, env: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    promotion = await platform.deployments.promote(principal, ref, env)
    return {
        "function_id": promotion.function.id,
        "function_name": promotion.function.name,
        "from": promotion.source.name,
        "to": promotion.target.name,
        "version": promotion.deployment.version,
        "published": promotion.published,
        "message": promotion.message,
        "config": config_view(promotion.function, promotion.target, promotion.deployment),
    }


@router.get("/deployments")
async def deployments(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    search: str | None = Query(default=None, max_length=64, description="substring of the function name"),
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = None,
) -> dict[str, Any]:
    matrix = await platform.deployments.matrix(principal, search=search, limit=limit, cursor=cursor)
    return matrix_view(matrix)
