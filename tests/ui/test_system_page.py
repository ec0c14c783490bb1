"""The System page shows the sandbox actually in force and every runtime with its version or the reason
it is unavailable."""

from __future__ import annotations

import os

from nicegui.testing.user import User

from engine.platform import Platform
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
