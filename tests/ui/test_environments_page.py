"""The Environments page through NiceGUI's user simulation over a real platform: the list with the default
marked, adding an environment, setting a variable and a secret (never shown again), deploying, promoting
behind a confirmation (the name typed for the last environment), deleting one that has deployments, live
updates from elsewhere, and the Test tab invoking in a chosen environment."""

from __future__ import annotations

from nicegui.testing.user import User

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.environment_schemas import DeployRequest, EnvironmentCreate
from engine.services.function_schemas import FunctionCreate
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value

SHOW_GREETING = 'import os\n\ndef handler(event, context):\n    return os.environ.get("GREETING")\n'


async def make_function(platform: Platform, name: str = "greeter") -> str:
    fn = await platform.functions.create(
        SYSTEM, FunctionCreate(name=name, runtime="python", code=SHOW_GREETING)
    )
    return fn.id


async def deployed(platform: Platform, function: str, environment: str) -> int | str | None:
    """The version deployed there (None: $LATEST), or "none"."""
    _, pairs = await platform.deployments.of_function(SYSTEM, function)
    return next((row.version for env, row in pairs if env.name == environment), "none")


async def test_the_list_marks_the_default_and_adds_an_environment(console: User, platform: Platform) -> None:
    await log_in(console, then="/environments")
    for name in ("dev", "staging", "prod"):
        await console.should_see(marker=f"env-card-{name}", retries=50)
    await console.should_see(marker="env-default-dev")
    await console.should_not_see(marker="env-default-prod")
    console.find(marker="env-add").click()
    await console.should_see(marker="env-editor")
    console.find(marker="env-name").type("QA!")
    console.find(marker="env-save").click()
    await eventually(lambda: "lowercase" in (element(console, "env-name").error or ""))
    set_value(console, "env-name", "qa")
    set_value(console, "env-description", "For testers")
    set_value(console, "env-position", 3)
    console.find(marker="env-save").click()
    await console.should_see(marker="env-card-qa", retries=50)
    env = await platform.environments.get(SYSTEM, "qa")
    assert (env.description, env.position, env.is_default) == ("For testers", 3, False)


async def test_a_variable_and_a_secret_are_set_and_the_secret_never_shows(
    console: User, platform: Platform
) -> None:
    await log_in(console, then="/environments?env=prod")
    await console.should_see(marker="env-var-add", retries=50)
    await console.should_see("prod: variables")
    console.find(marker="env-var-add").click()
    set_value(console, "env-var-key", "GREETING")
    set_value(console, "env-var-value", "hello from prod")
    console.find(marker="env-vars-save").click()
    await eventually(
        lambda: _variables(platform, "prod", {"GREETING": "hello from prod"}),
    )
    set_value(console, "env-secret-name", "API_TOKEN")
    set_value(console, "env-secret-value", "tok-123-secret")
    console.find(marker="env-secret-set").click()
    await console.should_see(marker="env-secret", retries=50)
    await console.should_see("API_TOKEN")
    assert element(console, "env-secret-value").value == ""
    await console.should_not_see("tok-123-secret")
    env = await platform.environments.get(SYSTEM, "prod")
    assert platform.secrets.decrypt(env.secrets) == {"API_TOKEN": "tok-123-secret"}


async def _variables(platform: Platform, name: str, expected: dict[str, str]) -> bool:
    return (await platform.environments.get(SYSTEM, name)).env_vars == expected


async def test_deploy_then_promote_with_confirmation(console: User, platform: Platform) -> None:
    await make_function(platform)
    await log_in(console, then="/environments")
    await console.should_see(marker="cell-greeter-dev", retries=50)
    assert element(console, "cell-greeter-dev").text == "$LATEST"
    assert element(console, "cell-greeter-staging").text == "—"

    console.find(marker="promote-greeter-dev").click()  # dev runs $LATEST: promoting publishes it first
    await console.should_see("Promote greeter from dev to staging?")
    console.find(marker="confirm-ok").click()
    await eventually(lambda: _has(platform, "greeter", "staging", 1))
    await eventually(lambda: element(console, "cell-greeter-staging").text == "v1")

    console.find(marker="promote-greeter-staging").click()  # prod is the last: its name must be typed
    await console.should_see(marker="confirm-typed")
    console.find(marker="confirm-typed").type("prod")
    console.find(marker="confirm-ok").click()
    await eventually(lambda: _has(platform, "greeter", "prod", 1))
    await eventually(lambda: element(console, "cell-greeter-prod").text == "v1")


async def _has(platform: Platform, function: str, environment: str, version: int | None) -> bool:
    return await deployed(platform, function, environment) == version


async def test_a_promotion_to_the_last_environment_is_refused_without_the_typed_name(
    console: User, platform: Platform
) -> None:
    await make_function(platform)
    await platform.deployments.deploy(SYSTEM, "greeter", "staging", DeployRequest())
    await log_in(console, then="/environments")
    await console.should_see(marker="promote-greeter-staging", retries=50)
    console.find(marker="promote-greeter-staging").click()
    await console.should_see(marker="confirm-typed")
    console.find(marker="confirm-typed").type("prd")
    await eventually(lambda: not element(console, "confirm-ok").enabled)
    console.find(marker="confirm-ok").click()  # disabled: nothing happens
    console.find(marker="confirm-cancel").click()
    await console.should_not_see(marker="confirm-dialog", retries=50)
    assert await deployed(platform, "greeter", "prod") == "none"


async def test_the_deploy_dialog_deploys_a_version_with_overrides(console: User, platform: Platform) -> None:
    await make_function(platform)
    await platform.functions.publish(SYSTEM, "greeter")
    await log_in(console, then="/environments")
    await console.should_see(marker="deploy-greeter-prod", retries=50)
    console.find(marker="deploy-greeter-prod").click()
    await console.should_see("Deploy greeter to prod", retries=50)
    assert element(console, "deploy-version").value == "1"  # the newest version is offered first
    set_value(console, "deploy-memory", 64)
    console.find(marker="deploy-confirm").click()
    await eventually(lambda: "memory_mb" in element(console, "deploy-error").text)
    set_value(console, "deploy-memory", 512)
    console.find(marker="deploy-confirm").click()
    await eventually(lambda: element(console, "cell-greeter-prod").text == "v1")
    _, pairs = await platform.deployments.of_function(SYSTEM, "greeter")
    assert [(env.name, row.version, row.memory_mb) for env, row in pairs] == [("prod", 1, 512)]
    console.find(marker="undeploy-greeter-prod").click()
    await console.should_see("Undeploy greeter from prod?")
    console.find(marker="confirm-ok").click()
    await eventually(lambda: element(console, "cell-greeter-prod").text == "—")


async def test_deleting_an_environment_with_deployments_needs_its_name(
    console: User, platform: Platform
) -> None:
    await make_function(platform)
    await platform.deployments.deploy(SYSTEM, "greeter", "staging", DeployRequest())
    await log_in(console, then="/environments")
    await console.should_see(marker="env-delete-staging", retries=50)
    assert not element(console, "env-delete-dev").enabled  # the default cannot go
    console.find(marker="env-delete-staging").click()
    await console.should_see("Delete environment staging?")
    console.find(marker="confirm-ok").click()
    await console.should_see(marker="confirm-typed", retries=50)
    console.find(marker="confirm-typed").type("staging")
    console.find(marker="confirm-ok").click()
    await console.should_not_see(marker="env-card-staging", retries=50)
    assert [e.name for e in await platform.environments.list(SYSTEM)] == ["dev", "prod"]


async def test_changes_made_elsewhere_show_up_live(console: User, platform: Platform) -> None:
    await log_in(console, then="/environments")
    await console.should_see(marker="env-card-prod", retries=50)
    await platform.environments.create(SYSTEM, EnvironmentCreate(name="perf", position=5))
    await console.should_see(marker="env-card-perf", retries=50)
    await make_function(platform, "late")
    await platform.deployments.deploy(SYSTEM, "late", "prod", DeployRequest())
    await console.should_see(marker="cell-late-prod", retries=50)
    await eventually(lambda: element(console, "cell-late-prod").text == "$LATEST")


async def test_the_test_tab_invokes_in_the_chosen_environment(console: User, platform: Platform) -> None:
    fn_id = await make_function(platform)
    await platform.environments.set_variables(SYSTEM, "prod", {"GREETING": "hello from prod"})
    await platform.deployments.deploy(SYSTEM, "greeter", "prod", DeployRequest())
    await log_in(console, then=f"/functions/{fn_id}?tab=test")
    await console.should_see(marker="test-environment", retries=50)
    await eventually(lambda: element(console, "test-environment").value == "dev")
    set_value(console, "test-environment", "prod")
    console.find(marker="test-invoke").click()
    await console.should_see(marker="test-output", retries=200)
    await console.should_see("hello from prod")
    await console.should_see("prod · $LATEST")
