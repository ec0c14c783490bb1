"""The System page shows the sandbox actually in force and every runtime with its version or the reason
it is unavailable; a function's Configuration tab says whether the Docker executor could be chosen."""

from __future__ import annotations

import os

from nicegui.testing.user import User

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.runtimes.docker_executor import detect_docker
from engine.services.function_schemas import FunctionCreate
from tests.ui.conftest import log_in


async def test_system_page_lists_sandbox_and_runtimes(console: User, platform: Platform) -> None:
    await log_in(console, then="/system")
    await console.should_see(marker="isolation")
    level = platform.isolation().level
    assert level == ("strong" if os.geteuid() == 0 else level)
    await console.should_see(level, marker="isolation-level")
    table = console.find(marker="runtime-table").elements.pop()
    rows = {row["name"]: row for row in table.rows}  # type: ignore[attr-defined]
    assert rows["python"]["status"] == "available" and rows["python"]["version"].startswith("python 3.")
    for info in platform.runtime_list():
        assert rows[info.name]["status"] == ("available" if info.available else "unavailable")
        if not info.available:
            assert rows[info.name]["detail"], f"{info.name} is unavailable without a reason"
    await console.should_see("System")


async def test_the_configuration_tab_says_why_docker_is_unavailable(
    console: User, platform: Platform
) -> None:
    fn = await platform.functions.create(
        SYSTEM, FunctionCreate(name="boxed", runtime="python", code="def handler(e, c):\n    return 1\n")
    )
    await log_in(console, then=f"/functions/{fn.id}?tab=config")
    await console.should_see("Sandboxed process", marker="cfg-executor", retries=50)
    docker = detect_docker()
    expected = "Docker: available" if docker.available else f"Docker: unavailable ({docker.detail})"
    await console.should_see(expected, retries=50)
