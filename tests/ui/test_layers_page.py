"""The Layers page and the function's Layers section through NiceGUI's user simulation over a real
platform: creating a layer, building one from a pasted requirements.txt with the log streaming in,
uploading a zip, deleting behind a confirmation, and attaching, reordering and detaching on a function."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from nicegui import ui
from nicegui.testing.user import User

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from engine.services.layer_schemas import LayerCreate, LayerRef
from tests.api.test_layers_api import make_wheel, zip_of
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value

CODE = "def handler(event, context):\n    return 1\n"


@pytest.fixture
def wheels() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="nimbus-wheels-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def zip_layer(platform: Platform, name: str, files: dict[str, str] | None = None) -> None:
    await platform.layers.create(SYSTEM, LayerCreate(name=name, compatible_runtimes=["python"]))
    await platform.layers.add_zip(SYSTEM, name, zip_of(files or {f"python/{name}.py": "X = 1\n"}))


def log_text(user: User) -> str:
    return "\n".join(e.text for e in element(user, "layer-log").descendants() if isinstance(e, ui.label))


async def test_an_empty_page_creates_a_layer(console: User, platform: Platform) -> None:
    await log_in(console, then="/layers")
    await console.should_see("No layers yet", retries=50)
    console.find(marker="layer-new").click()
    await console.should_see(marker="layer-name")
    console.find(marker="layer-name").type("bad name!")
    console.find(marker="layer-create").click()
    await console.should_see(marker="layer-create-error")
    await eventually(lambda: "name" in element(console, "layer-create-error").text)
    set_value(console, "layer-name", "requests")
    set_value(console, "layer-runtimes", ["python", "nodejs"])
    console.find(marker="layer-create").click()
    await console.should_see(marker="layer-title", retries=50)
    await console.should_see(marker="layer-link-requests")
    layer = (await platform.layers.get(SYSTEM, "requests")).layer
    assert layer.compatible_runtimes == ["nodejs", "python"]


async def test_the_list_shows_versions_size_and_users(console: User, platform: Platform) -> None:
    await zip_layer(platform, "utils")
    await platform.functions.create(SYSTEM, FunctionCreate(name="f", runtime="python", code=CODE))
    await platform.function_layers.set(SYSTEM, "f", [LayerRef(layer_id="utils", layer_version=1)])
    await log_in(console, then="/layers?layer=utils")
    await console.should_see(marker="layer-link-utils", retries=50)
    assert element(console, "layer-latest-utils").text == "v1"
    assert element(console, "layer-size-utils").text.endswith("B")
    assert element(console, "layer-used-utils").text == "1 function"
    await console.should_see("f (v1)")  # the detail's "used by", linking to the function
    await console.should_see("uploaded zip, nothing was built")


async def test_a_requirements_build_streams_its_log_and_becomes_ready(
    console: User, platform: Platform, wheels: Path
) -> None:
    wheel = make_wheel(wheels)
    await platform.layers.create(SYSTEM, LayerCreate(name="probe", compatible_runtimes=["python"]))
    await log_in(console, then="/layers?layer=probe")
    await console.should_see(marker="layer-requirements", retries=50)
    console.find(marker="layer-tab-pip").click()
    set_value(console, "layer-requirements", f"{wheel}\n")
    console.find(marker="layer-build-pip").click()
    await eventually(lambda: "Successfully installed nimbus-probe-1.0" in log_text(console), retries=300)
    await console.should_see(marker="layer-status-1", retries=50)
    await eventually(lambda: element(console, "layer-status-1").text == "ready", retries=100)
    assert "-m pip install --target" in log_text(console)


async def test_a_failed_build_keeps_its_log_and_its_reason(console: User, platform: Platform) -> None:
    await platform.layers.create(SYSTEM, LayerCreate(name="broken", compatible_runtimes=["python"]))
    await log_in(console, then="/layers?layer=broken")
    await console.should_see(marker="layer-requirements", retries=50)
    set_value(console, "layer-requirements", "nimbus_probe ==== 1\n")
    console.find(marker="layer-build-pip").click()
    await console.should_see(marker="layer-status-1", retries=50)
    await eventually(lambda: element(console, "layer-status-1").text == "failed", retries=300)
    await eventually(lambda: "Invalid requirement" in element(console, "layer-log-error").text, retries=100)
    assert "[nimbus] build failed" in log_text(console)


async def test_a_bad_manifest_is_shown_on_its_box(console: User, platform: Platform) -> None:
    await platform.layers.create(SYSTEM, LayerCreate(name="strict", compatible_runtimes=["python"]))
    await log_in(console, then="/layers?layer=strict")
    await console.should_see(marker="layer-requirements", retries=50)
    set_value(console, "layer-requirements", "-e /srv/app\n")
    console.find(marker="layer-build-pip").click()
    await eventually(lambda: "not allowed" in (element(console, "layer-requirements").error or ""))
    assert (await platform.layers.get(SYSTEM, "strict")).versions == []


async def test_uploading_a_zip_adds_a_ready_version(console: User, platform: Platform) -> None:
    await platform.layers.create(SYSTEM, LayerCreate(name="zipped", compatible_runtimes=["python"]))
    await log_in(console, then="/layers?layer=zipped")
    await console.should_see(marker="layer-upload", retries=50)
    upload = element(console, "layer-upload")
    data = zip_of({"python/zipped.py": "X = 1\n"})
    with console:
        await upload.handle_uploads([ui.upload.SmallFileUpload("layer.zip", "application/zip", data)])
    await console.should_see(marker="layer-status-1", retries=50)
    assert element(console, "layer-status-1").text == "ready"
    with console:
        await upload.handle_uploads([ui.upload.SmallFileUpload("bad.zip", "application/zip", b"nope")])
    await console.should_see("not a zip archive", retries=50)
    assert len((await platform.layers.get(SYSTEM, "zipped")).versions) == 1


async def test_deleting_a_used_layer_needs_its_name_typed(console: User, platform: Platform) -> None:
    await zip_layer(platform, "doomed")
    await platform.functions.create(SYSTEM, FunctionCreate(name="f", runtime="python", code=CODE))
    await platform.function_layers.set(SYSTEM, "f", [LayerRef(layer_id="doomed", layer_version=1)])
    await log_in(console, then="/layers")
    await console.should_see(marker="layer-delete-doomed", retries=50)
    console.find(marker="layer-delete-doomed").click()
    await console.should_see("Delete layer doomed?")
    await console.should_see(marker="confirm-typed")
    console.find(marker="confirm-typed").type("doomed")
    console.find(marker="confirm-ok").click()
    await console.should_see("No layers yet", retries=50)
    assert await platform.function_layers.list(SYSTEM, "f") == []


async def test_the_function_config_tab_attaches_reorders_and_detaches(
    console: User, platform: Platform
) -> None:
    await zip_layer(platform, "alpha")
    await zip_layer(platform, "beta")
    await platform.layers.create(SYSTEM, LayerCreate(name="jsonly", compatible_runtimes=["nodejs"]))
    fn = await platform.functions.create(SYSTEM, FunctionCreate(name="f", runtime="python", code=CODE))
    await log_in(console, then=f"/functions/{fn.id}?tab=config")
    await console.should_see(marker="cfg-layers-none", retries=50)
    choices = element(console, "cfg-layer-choice")
    assert sorted(choices.options.values()) == ["alpha", "beta"]  # no nodejs layer for a python function

    async def attach(name: str) -> None:
        layer_id = next(k for k, v in element(console, "cfg-layer-choice").options.items() if v == name)
        set_value(console, "cfg-layer-choice", layer_id)
        assert element(console, "cfg-layer-version").value == 1
        console.find(marker="cfg-layer-attach").click()
        await console.should_see(marker=f"cfg-layer-{name}", retries=50)

    await attach("alpha")
    await attach("beta")
    attached = await platform.function_layers.list(SYSTEM, "f")
    assert [a.layer_name for a in attached] == ["alpha", "beta"]
    console.find(marker="cfg-layer-up-beta").click()
    await eventually(lambda: _names(platform, ["beta", "alpha"]))
    console.find(marker="cfg-layer-detach-alpha").click()
    await eventually(lambda: _names(platform, ["beta"]))
    await console.should_not_see(marker="cfg-layer-alpha")
    assert (await platform.functions.get(SYSTEM, "f")).version == fn.version + 4


async def _names(platform: Platform, expected: list[str]) -> bool:
    return [a.layer_name for a in await platform.function_layers.list(SYSTEM, "f")] == expected
