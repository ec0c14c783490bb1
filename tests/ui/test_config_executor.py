"""The Configuration tab's executor: Docker is offered for python functions when this node reaches an engine,
with an image input; choosing it saves through FunctionService.update, whose save-time checks (an image, one
the engine has, in a valid form) come back on the image input; a function moved to Docker runs in a container
from the Test tab and can move back. Without an engine (DOCKER_HOST pointing at no socket) the option is
disabled with the engine's reason, and a value sent anyway is refused. Other runtimes are not offered it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nicegui import ElementFilter, ui
from nicegui.testing.user import User

from data.models import Function
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.runtimes.base import RuntimeInfo
from engine.runtimes.docker_executor import detect_docker
from tests.docker_support import containers_of, docker_image, needs_docker
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, make, set_value

__all__ = ["docker_image"]


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[RuntimeInfo]:
    """This process sees no Docker engine (a socket nothing listens on); the real one again afterwards."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/nope.sock")
    info = detect_docker(refresh=True)
    assert not info.available, info
    yield info
    monkeypatch.undo()
    detect_docker(refresh=True)


def image_input(console: User) -> ui.input:
    """The image input, shown or hidden (the user's own find sees only what is shown)."""
    with console:
        found = list(ElementFilter(kind=ui.input, marker="cfg-image"))
    assert len(found) == 1, found
    return found[0]


async def open_config(console: User, fn: Function) -> None:
    await log_in(console, then=f"/functions/{fn.id}?tab=config")
    await console.should_see(marker="cfg-docker", retries=50)
    await eventually(lambda: element(console, "cfg-docker").text.startswith("Docker: "))


async def save_fails(console: User, platform: Platform, fn: Function, marker: str, message: str) -> None:
    """Saving shows `message` on the input marked `marker` and changes nothing."""
    console.find(marker="cfg-save").click()
    await eventually(lambda: message in (element(console, marker).error or ""), retries=100)
    saved = await platform.functions.get(SYSTEM, fn.id)
    assert (saved.version, saved.executor, saved.image) == (fn.version, "process", "")


@needs_docker
async def test_docker_needs_an_image_the_engine_has(console: User, platform: Platform) -> None:
    fn = await make(platform, "boxed")
    await open_config(console, fn)
    await console.should_see(f"Docker: available ({detect_docker().version})", marker="cfg-docker")
    assert ":option-disable" not in element(console, "cfg-executor").props
    assert not image_input(console).visible

    set_value(console, "cfg-executor", "docker")
    assert image_input(console).visible
    await save_fails(console, platform, fn, "cfg-image", "the Docker executor needs an image")

    set_value(console, "cfg-image", "Python:3.11")
    await save_fails(console, platform, fn, "cfg-image", "Image must be a lowercase image reference")

    set_value(console, "cfg-image", "nimbus-no-such-image:0")
    await save_fails(console, platform, fn, "cfg-image", "not found on this engine")
    assert element(console, "cfg-executor").error is None


@needs_docker
async def test_a_function_moved_to_docker_runs_in_a_container(
    console: User, platform: Platform, docker_image: str
) -> None:
    fn = await make(platform, "boxed")
    await open_config(console, fn)
    set_value(console, "cfg-executor", "docker")
    set_value(console, "cfg-image", f"  {docker_image} ")
    console.find(marker="cfg-save").click()
    await eventually(lambda: _runs_on(platform, fn.id, "docker", docker_image), retries=200)
    assert element(console, "cfg-image").error is None and element(console, "cfg-executor").error is None

    console.find(marker="tab-test").click()
    await console.should_see(marker="test-invoke", retries=50)
    console.find(marker="test-invoke").click()
    await console.should_see("Hello, Nimbus!", retries=600)  # a cold container start on a loaded machine
    await console.should_see("success · 200")
    assert len(containers_of(fn.id)) == 1  # it ran in a container of its own
    await eventually(lambda: _invoked(platform, fn.id), retries=300)  # and was recorded

    console.find(marker="tab-config").click()
    set_value(console, "cfg-executor", "process")
    assert not image_input(console).visible
    console.find(marker="cfg-save").click()
    await eventually(lambda: _runs_on(platform, fn.id, "process", docker_image), retries=200)


async def _runs_on(platform: Platform, fn_id: str, executor: str, image: str) -> bool:
    saved = await platform.functions.get(SYSTEM, fn_id)
    return (saved.executor, saved.image) == (executor, image)


async def _invoked(platform: Platform, fn_id: str) -> bool:
    return bool((await platform.invocations.list(SYSTEM, function=fn_id)).items)


async def test_without_an_engine_docker_is_disabled_with_the_reason(
    console: User, platform: Platform, no_engine: RuntimeInfo
) -> None:
    fn = await make(platform, "boxed")
    await open_config(console, fn)
    await console.should_see(f"Docker: unavailable ({no_engine.detail})", marker="cfg-docker")
    select = element(console, "cfg-executor")
    assert select.options == {"process": "Sandboxed process", "docker": "Docker container"}
    assert select.props[":option-disable"] == "(option) => option.value === 1"  # the Docker option

    set_value(console, "cfg-executor", "docker")  # what a browser ignoring the disabled option would send
    assert select.value == "process" and not image_input(console).visible
    assert select.error == f"the Docker executor is unavailable on this node: {no_engine.detail}"
    console.find(marker="cfg-save").click()
    await console.should_see("No changes to save", retries=50)
    assert (await platform.functions.get(SYSTEM, fn.id)).version == fn.version


async def test_docker_is_only_offered_for_python_functions(console: User, platform: Platform) -> None:
    fn = await make(platform, "wat", template="wasm-hello-world")
    await open_config(console, fn)
    await console.should_see("Docker: python functions only", marker="cfg-docker")
    select = element(console, "cfg-executor")
    assert select.options == {"process": "Sandboxed process"} and select.value == "process"
