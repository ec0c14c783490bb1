"""The WebAssembly templates: each one, created through the real platform and invoked with its sample event,
does what its card says; the gallery offers them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.runtimes.base import ExecResult
from engine.services.code_check import check_syntax
from engine.services.templates_wasm import TEMPLATES
from tests.api.conftest import make_settings


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        yield running


async def run_template(platform: Platform, template_id: str, event: object = None) -> ExecResult:
    template = platform.templates.get(template_id)
    name = template_id.replace("wasm-", "w-")
    fn = await platform.functions.create(SYSTEM, template.request(name))
    sample = template.sample_event if event is None else event
    outcome = await platform.invoker.invoke(SYSTEM, fn.id, sample, source="console")
    return outcome.result


def test_the_wasm_gallery_has_the_four_starters() -> None:
    assert [t.id for t in TEMPLATES] == [
        "wasm-hello-world",
        "wasm-json-transform",
        "wasm-http-handler",
        "wasm-error-example",
    ]
    for template in TEMPLATES:
        assert template.runtime == "wasm" and list(template.files) == ["module.wat"]
        assert check_syntax("wasm", template.files) == []
        json.dumps(template.sample_event)


async def test_the_gallery_offers_them_on_this_node(platform: Platform) -> None:
    assert [t.id for t in platform.templates.list("wasm")] == [t.id for t in TEMPLATES]


async def test_hello_world_greets_the_name_in_its_sample(platform: Platform) -> None:
    result = await run_template(platform, "wasm-hello-world")
    assert result.ok, result.error
    assert result.result == {"message": "Hello, Nimbus!", "function": "w-hello-world"}
    assert result.logs == "saying hello to Nimbus\n"


async def test_json_transform_summarises_the_numbers(platform: Platform) -> None:
    result = await run_template(platform, "wasm-json-transform")
    assert result.ok, result.error
    assert result.result == {
        "count": 8,
        "sum": 31,
        "min": 1,
        "max": 9,
        "doubled": [6, 2, 8, 2, 10, 18, 4, 12],
    }
    assert result.logs == "summarised 8 numbers\n"
    negative = await platform.invoker.invoke(SYSTEM, "w-json-transform", {"numbers": [-5, 10, 0]})
    assert negative.result.result == {"count": 3, "sum": 5, "min": -5, "max": 10, "doubled": [-10, 20, 0]}
    empty = await platform.invoker.invoke(SYSTEM, "w-json-transform", {"numbers": []})
    assert empty.result.result == {"count": 0, "sum": 0, "min": None, "max": None, "doubled": []}
    bad = await platform.invoker.invoke(SYSTEM, "w-json-transform", {"numbers": "many"})
    assert bad.result.error is not None and bad.result.error.type == "NonZeroExit"
    assert 'expected {"numbers": [integers, ...]}' in bad.result.error.message


async def test_http_handler_answers_lambda_style(platform: Platform) -> None:
    result = await run_template(platform, "wasm-http-handler")
    assert result.ok, result.error
    assert result.result["statusCode"] == 200
    assert result.result["headers"] == {"Content-Type": "application/json"}
    assert json.loads(result.result["body"]) == {"message": "Hello, Nimbus!"}
    assert result.logs == "GET /hello\n"
    missing = await platform.invoker.invoke(
        SYSTEM, "w-http-handler", {"httpMethod": "DELETE", "path": '/x"y'}
    )
    assert missing.result.result["statusCode"] == 404
    assert json.loads(missing.result.result["body"]) == {"error": 'no route for DELETE /x"y'}
    quoted = {"httpMethod": "GET", "path": "/hello", "queryStringParameters": {"name": 'a "b" \\ c'}}
    answer = await platform.invoker.invoke(SYSTEM, "w-http-handler", quoted)
    assert json.loads(answer.result.result["body"]) == {"message": 'Hello, a "b" \\ c!'}


async def test_error_example_fails_with_a_clear_error_and_stack(platform: Platform) -> None:
    result = await run_template(platform, "wasm-error-example")
    assert result.status == "failed" and result.error is not None
    assert (result.error.type, result.error.message) == (
        "NonZeroExit",
        "the module exited with code 1: order 42 has no items",
    )
    frames = result.error.stack.splitlines()
    assert [f.rsplit(" ", 1)[-1] for f in frames] == ["reject", "check", "main"]
    assert result.logs == "validating order 42\norder 42 has no items\n"
    fine = await platform.invoker.invoke(SYSTEM, "w-error-example", {"order_id": 43, "items": [{"sku": "a"}]})
    assert fine.result.ok and fine.result.result == {"ok": True, "order_id": 43}
