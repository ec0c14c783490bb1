"""Each Node.js template, created through the real platform and invoked with its sample event, does what
its card says."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.runtimes.base import ExecResult
from engine.runtimes.node import find_node
from engine.services.templates_nodejs import TEMPLATES
from tests.api.conftest import make_settings

pytestmark = pytest.mark.skipif(find_node() is None, reason="no `node` under /usr on this machine")


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        yield running


async def run(platform: Platform, template_id: str, event: object = None) -> ExecResult:
    template = platform.templates.get(template_id)
    if event is None:
        await platform.functions.create(SYSTEM, template.request(template_id))
    outcome = await platform.invoker.invoke(
        SYSTEM, template_id, template.sample_event if event is None else event, source="console"
    )
    return outcome.result


def test_the_node_gallery_has_the_four_starters() -> None:
    assert [t.id for t in TEMPLATES] == [
        "nodejs-hello-world",
        "nodejs-json-transform",
        "nodejs-http-handler",
        "nodejs-error-example",
    ]


async def test_hello_world(platform: Platform) -> None:
    result = await run(platform, "nodejs-hello-world")
    assert result.ok, result.error
    assert result.result["message"] == "Hello, Nimbus!"
    assert result.result["function"] == "nodejs-hello-world"
    assert "saying hello to Nimbus" in result.logs
    assert "nodejs-hello-world" in [t.id for t in platform.templates.list("nodejs")]


async def test_json_transform(platform: Platform) -> None:
    result = await run(platform, "nodejs-json-transform")
    assert result.ok, result.error
    assert result.result["customer"] == "ada@example.com"
    assert result.result["items"][0] == {"sku": "AB-1", "name": "Blue Mug", "quantity": 2, "line_total": 15}
    assert (result.result["item_count"], result.result["total"]) == (3, 39)
    assert "transformed 2 items" in result.logs


async def test_http_handler(platform: Platform) -> None:
    result = await run(platform, "nodejs-http-handler")
    assert result.ok, result.error
    assert result.result["statusCode"] == 200
    assert json.loads(result.result["body"]) == {"message": "Hello, Nimbus!"}
    missing = await run(platform, "nodejs-http-handler", {"httpMethod": "DELETE", "path": "/x"})
    assert missing.result["statusCode"] == 404
    bad = await run(platform, "nodejs-http-handler", {"httpMethod": "POST", "path": "/echo", "body": "{no"})
    assert bad.result["statusCode"] == 400


async def test_error_example(platform: Platform) -> None:
    result = await run(platform, "nodejs-error-example")
    assert result.status == "failed" and result.error is not None
    assert (result.error.type, result.error.message) == ("OrderRejected", "order 42 has no items")
    assert "at check (" in result.error.stack and "index.js" in result.error.stack
    assert "validating order 42" in result.logs
