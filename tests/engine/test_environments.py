"""Environments and deployments in the engine, on each backend: how the spec an invocation runs is resolved
(function, then environment, then deployment; the default environment runs $LATEST), promotion (publishing
$LATEST first), secrets encrypted at rest, the audit trail, the catalog forgetting on change, who may
change what, and async jobs that keep the environment and version they were accepted for."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from data.db import Database
from engine.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from engine.events import EnvironmentChanged, FunctionChanged, InvocationFinished
from engine.platform import Platform
from engine.principal import SYSTEM, Principal
from engine.services.deployments import NotDeployed
from engine.services.environment_schemas import DeployRequest, EnvironmentCreate, EnvironmentUpdate
from engine.services.function_schemas import FunctionCreate, FunctionUpdate
from tests.api.conftest import make_settings

DEVELOPER = Principal(actor="dev-user", actor_type="user", role="developer")
VIEWER = Principal(actor="viewer", actor_type="user", role="viewer")
SHOW_ENV = """
import os

def handler(event, context):
    names = ("ONLY_FN", "SHARED", "TOKEN", "ONLY_ENV", "NIMBUS_ENVIRONMENT")
    return {"env": {n: os.environ.get(n) for n in names}, "version": context.function_version, "tag": TAG}

TAG = "one"
"""


@pytest.fixture
async def platform(db: Database, db_url: str, tmp_path: Path) -> AsyncIterator[Platform]:
    """A running platform on each backend (`db` empties the PostgreSQL database first)."""
    async with Platform(make_settings(tmp_path, database_url=db_url)) as running:
        fn = FunctionCreate(
            name="show",
            runtime="python",
            code=SHOW_ENV,
            env_vars={"ONLY_FN": "fn", "SHARED": "from function"},
            secrets={"TOKEN": "function-token"},
        )
        await running.functions.create(SYSTEM, fn)
        yield running


async def retag(platform: Platform, tag: str) -> None:
    """Change $LATEST's code so versions can be told apart by what they return."""
    await platform.functions.update(
        SYSTEM, "show", FunctionUpdate(code=SHOW_ENV.replace('"one"', f'"{tag}"'))
    )


# --- resolution -------------------------------------------------------------------------------------


async def test_later_layers_win_function_then_environment_then_deployment(platform: Platform) -> None:
    await platform.environments.set_variables(SYSTEM, "prod", {"SHARED": "from prod", "ONLY_ENV": "env"})
    await platform.environments.change_secrets(SYSTEM, "prod", {"TOKEN": "prod-token"})
    deploy = DeployRequest(env_vars={"SHARED": "from deployment"}, memory_mb=512, timeout_sec=7)
    await platform.deployments.deploy(SYSTEM, "show", "prod", deploy)

    outcome = await platform.invoker.invoke(SYSTEM, "show", {}, environment="prod")

    assert outcome.result.result["env"] == {
        "ONLY_FN": "fn",
        "SHARED": "from deployment",
        "TOKEN": "prod-token",
        "ONLY_ENV": "env",
        "NIMBUS_ENVIRONMENT": "prod",
    }
    spec = (await platform.catalog.resolve("show", environment="prod")).spec
    assert (spec.memory_mb, spec.timeout_sec, spec.environment) == (512, 7, "prod")


async def test_the_default_environment_without_a_deployment_runs_latest(platform: Platform) -> None:
    await platform.environments.set_variables(SYSTEM, "dev", {"ONLY_ENV": "dev value"})
    outcome = await platform.invoker.invoke(SYSTEM, "show", {})
    assert outcome.version == "$LATEST" and outcome.environment == "dev"
    env = outcome.result.result["env"]
    assert env["SHARED"] == "from function" and env["TOKEN"] == "function-token"
    assert env["ONLY_ENV"] == "dev value" and env["NIMBUS_ENVIRONMENT"] == "dev"


async def test_a_non_default_environment_without_a_deployment_is_not_deployed(platform: Platform) -> None:
    with pytest.raises(NotDeployed) as raised:
        await platform.catalog.resolve("show", environment="staging")
    assert raised.value.message == "function show is not deployed to staging" and raised.value.status == 409
    with pytest.raises(NotFound):
        await platform.catalog.resolve("show", environment="nowhere")


async def test_the_deployed_version_runs_and_an_explicit_version_wins(platform: Platform) -> None:
    await platform.functions.publish(SYSTEM, "show")
    await retag(platform, "two")
    await platform.deployments.deploy(SYSTEM, "show", "prod", DeployRequest(version=1))

    prod = await platform.invoker.invoke(SYSTEM, "show", {}, environment="prod")
    latest = await platform.invoker.invoke(SYSTEM, "show", {}, environment="prod", version="$LATEST")
    dev = await platform.invoker.invoke(SYSTEM, "show", {})

    assert (prod.version, prod.result.result["tag"]) == ("1", "one")
    assert (latest.version, latest.result.result["tag"]) == ("$LATEST", "two")
    assert (dev.version, dev.result.result["tag"]) == ("$LATEST", "two")


async def test_the_catalog_forgets_at_once_when_an_environment_or_deployment_changes(
    platform: Platform,
) -> None:
    before = await platform.catalog.resolve("show")
    await platform.environments.set_variables(SYSTEM, "dev", {"ONLY_ENV": "new"})
    after = await platform.catalog.resolve("show")
    assert "ONLY_ENV" not in before.spec.env and after.spec.env["ONLY_ENV"] == "new"
    await platform.functions.publish(SYSTEM, "show")
    await platform.deployments.deploy(SYSTEM, "show", "dev", DeployRequest(version=1))
    assert (await platform.catalog.resolve("show")).spec.version == "1"


async def test_with_no_environments_at_all_an_invoke_runs_as_before(platform: Platform) -> None:
    async with platform.db.transaction() as session:  # an operator emptied the table behind our back
        await session.execute(text("DELETE FROM environments"))
    platform.bus.publish(EnvironmentChanged(environment_id="", name="", action="deleted"))
    outcome = await platform.invoker.invoke(SYSTEM, "show", {})
    assert outcome.result.ok and outcome.environment == ""
    assert outcome.result.result["env"]["NIMBUS_ENVIRONMENT"] is None
    await platform.environments.ensure_defaults()
    assert [e.name for e in await platform.environments.list(SYSTEM)] == ["dev", "staging", "prod"]


# --- promotion --------------------------------------------------------------------------------------


async def test_promoting_latest_publishes_a_version_and_deploys_that_number(platform: Platform) -> None:
    with platform.bus.subscribe(FunctionChanged) as changes:
        promotion = await platform.deployments.promote(SYSTEM, "show", "dev")
        seen = {(await changes.wait_for(lambda e: True, timeout=2)).action for _ in range(2)}
    assert promotion.published and promotion.deployment.version == 1 and promotion.target.name == "staging"
    assert "published it as version 1" in promotion.message
    assert seen == {"published", "deployed"}
    again = await platform.deployments.promote(SYSTEM, "show", "staging")
    assert not again.published and again.deployment.version == 1 and again.target.name == "prod"
    assert [v.version for v in await platform.functions.versions(SYSTEM, "show")] == [1]


async def test_promotion_follows_position_then_name(platform: Platform) -> None:
    await platform.environments.create(SYSTEM, EnvironmentCreate(name="qa", position=1))
    promotion = await platform.deployments.promote(SYSTEM, "show", "dev")
    assert promotion.target.name == "qa"  # position 1 ties with staging; "qa" sorts first
    with pytest.raises(BadRequest):
        await platform.deployments.promote(SYSTEM, "show", "prod")
    with pytest.raises(NotDeployed):
        await platform.deployments.promote(SYSTEM, "show", "staging")


# --- secrets and audit ------------------------------------------------------------------------------


async def test_environment_secrets_are_encrypted_at_rest(platform: Platform) -> None:
    await platform.environments.change_secrets(SYSTEM, "prod", {"DB_PASSWORD": "hunter2-very-secret"})
    async with platform.db.session() as session:
        stored = (
            await session.execute(text("SELECT secrets FROM environments WHERE name = 'prod'"))
        ).scalar_one()
    assert stored and "hunter2" not in stored and "DB_PASSWORD" not in stored
    assert platform.secrets.decrypt(stored) == {"DB_PASSWORD": "hunter2-very-secret"}
    env = await platform.environments.get(SYSTEM, "prod")
    assert platform.environments.secret_names(env) == ["DB_PASSWORD"]


async def test_every_change_is_audited_with_names_never_secret_values(platform: Platform) -> None:
    envs = platform.environments
    await envs.create(SYSTEM, EnvironmentCreate(name="qa", secrets={"KEY": "qa-secret-value"}))
    await envs.update(SYSTEM, "qa", EnvironmentUpdate(description="for testers"))
    await envs.set_variables(SYSTEM, "qa", {"MODE": "qa"})
    await envs.change_secrets(SYSTEM, "qa", {"OTHER": "another-secret-value"})
    await platform.deployments.deploy(SYSTEM, "show", "qa", DeployRequest(memory_mb=512))
    await platform.deployments.promote(SYSTEM, "show", "dev")
    await platform.deployments.undeploy(SYSTEM, "show", "qa")
    await envs.delete(SYSTEM, "qa")

    page = await platform.audit.list(SYSTEM, limit=100)
    actions = [e.action for e in reversed(page.items) if e.action.startswith("environment.")]
    assert actions == [
        "environment.create",
        "environment.update",
        "environment.update",
        "environment.update",
        "environment.deploy",
        "environment.promote",
        "environment.undeploy",
        "environment.delete",
    ]
    dumped = json.dumps([[e.before, e.after, e.details] for e in page.items])
    assert "secret-value" not in dumped
    by_action = {e.action: e for e in page.items}
    secrets_change = next(e for e in page.items if e.after and e.after.get("secrets") == ["KEY", "OTHER"])
    assert secrets_change.before["secrets"] == ["KEY"]
    deploy = by_action["environment.deploy"]
    assert deploy.resource_type == "function" and deploy.before is None
    assert deploy.after == {
        "environment": "qa",
        "version": "$LATEST",
        "env_vars": [],
        "memory_mb": 512,
        "timeout_sec": None,
    }
    promote = by_action["environment.promote"]
    assert promote.details == {"environment": "staging", "from": "dev", "to": "staging", "published": True}


# --- rules --------------------------------------------------------------------------------------------


async def test_only_admins_change_environments_and_developers_deploy(platform: Platform) -> None:
    with pytest.raises(Forbidden):
        await platform.environments.create(DEVELOPER, EnvironmentCreate(name="qa"))
    with pytest.raises(Forbidden):
        await platform.environments.set_variables(DEVELOPER, "dev", {"A": "b"})
    with pytest.raises(Forbidden):
        await platform.deployments.deploy(VIEWER, "show", "prod", DeployRequest())
    await platform.deployments.deploy(DEVELOPER, "show", "prod", DeployRequest())
    assert len(await platform.environments.list(VIEWER)) == 3


async def test_there_is_always_exactly_one_default(platform: Platform) -> None:
    await platform.environments.update(SYSTEM, "staging", EnvironmentUpdate(is_default=True))
    defaults = [e.name for e in await platform.environments.list(SYSTEM) if e.is_default]
    assert defaults == ["staging"]
    with pytest.raises(BadRequest):
        await platform.environments.update(SYSTEM, "staging", EnvironmentUpdate(is_default=False))
    with pytest.raises(BadRequest):
        await platform.environments.delete(SYSTEM, "staging")


async def test_deleting_an_environment_with_deployments_needs_force(platform: Platform) -> None:
    await platform.deployments.deploy(SYSTEM, "show", "prod", DeployRequest())
    with pytest.raises(Conflict) as raised:
        await platform.environments.delete(SYSTEM, "prod")
    assert raised.value.field == "force"
    await platform.environments.delete(SYSTEM, "prod", force=True)
    _, deployments = await platform.deployments.of_function(SYSTEM, "show")
    assert deployments == []


async def test_variables_are_validated_where_they_enter(platform: Platform) -> None:
    with pytest.raises(Invalid) as raised:
        await platform.environments.set_variables(SYSTEM, "dev", {"NIMBUS_ENVIRONMENT": "spoof"})
    assert raised.value.field == "env_vars" and "reserved" in raised.value.message
    with pytest.raises(Invalid):
        await platform.environments.change_secrets(SYSTEM, "dev", {"bad-name": "x"})


# --- async jobs ---------------------------------------------------------------------------------------


async def test_an_accepted_job_keeps_its_environment_and_version(platform: Platform) -> None:
    await platform.functions.publish(SYSTEM, "show")
    await platform.deployments.deploy(SYSTEM, "show", "prod", DeployRequest(version=1))
    with platform.bus.subscribe(InvocationFinished) as finished:
        request_id, _ = await platform.invoker.submit(SYSTEM, "show", {}, environment="prod", delay_sec=0.5)
        await retag(platform, "two")  # a promotion after acceptance does not change what it runs
        await platform.functions.publish(SYSTEM, "show")
        await platform.deployments.deploy(SYSTEM, "show", "prod", DeployRequest(version=2))
        await finished.wait_for(lambda e: e.invocation_id == request_id and e.final, timeout=15)
    detail = await platform.invocations.get(SYSTEM, request_id)
    assert detail.invocation.environment == "prod" and detail.invocation.version == "1"
    assert detail.output["tag"] == "one" and detail.output["env"]["NIMBUS_ENVIRONMENT"] == "prod"


async def test_a_job_whose_environment_was_deleted_fails_saying_so(platform: Platform) -> None:
    await platform.deployments.deploy(SYSTEM, "show", "staging", DeployRequest())
    with platform.bus.subscribe(InvocationFinished) as finished:
        request_id, _ = await platform.invoker.submit(
            SYSTEM, "show", {}, environment="staging", delay_sec=0.5
        )
        await platform.environments.delete(SYSTEM, "staging", force=True)
        await finished.wait_for(lambda e: e.invocation_id == request_id and e.final, timeout=15)
    inv = (await platform.invocations.get(SYSTEM, request_id)).invocation
    assert inv.status == "failed" and inv.error_type == "EnvironmentNotFound"
    assert inv.error_message == "environment not found: staging"
