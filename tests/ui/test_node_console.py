"""A Node.js function through the console: created from the gallery, then invoked from the Test tab."""

from __future__ import annotations

from typing import Any

import pytest
from nicegui.testing.user import User

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.runtimes.node import find_node
from tests.ui.conftest import log_in

pytestmark = pytest.mark.skipif(find_node() is None, reason="no `node` under /usr on this machine")


def element(user: User, marker: str) -> Any:
    found = user.find(marker=marker).elements
    assert len(found) == 1, f"{len(found)} elements marked {marker!r}"
    return next(iter(found))


async def test_node_function_from_the_gallery_runs_in_the_test_tab(console: User, platform: Platform) -> None:
    await log_in(console, then="/functions/new")
    await console.should_see(marker="fn-runtime", retries=50)
    element(console, "fn-runtime").set_value("nodejs")
    await console.should_see(marker="template-nodejs-hello-world", retries=50)
    console.find(marker="template-nodejs-hello-world").click()
    assert "exports.handler" in element(console, "template-preview").value
    console.find(marker="fn-name").type("greeter")
    console.find(marker="fn-create").click()
    await console.should_see(marker="code-editor", retries=100)
    fn = await platform.functions.get(SYSTEM, "greeter")
    assert (fn.runtime, fn.handler) == ("nodejs", "index.handler")

    await console.open(f"/functions/{fn.id}?tab=test")
    await console.should_see(marker="test-invoke", retries=50)
    console.find(marker="test-invoke").click()
    await console.should_see(marker="test-output", retries=200)
    await console.should_see("Hello, Nimbus!")
    await console.should_see("cold start")
    await console.should_see("saying hello to Nimbus")
