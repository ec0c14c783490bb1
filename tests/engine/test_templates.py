"""The template gallery, and the syntax check every saved function passes: each template, created through
the real platform and invoked with its sample event, does what its card says; code that does not parse
is refused at its file and line and nothing is saved."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.errors import Invalid, NotFound
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.runtimes.base import ExecResult
from engine.services.code_check import SyntaxProblem, check_syntax
from engine.services.function_schemas import FunctionCreate, FunctionUpdate
from engine.services.templates import PYTHON, Template, TemplateGallery
from tests.api.conftest import make_settings


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        yield running


async def run_template(platform: Platform, template_id: str) -> ExecResult:
    template = platform.templates.get(template_id)
    fn = await platform.functions.create(SYSTEM, template.request(template_id.replace("python-", "t-")))
    outcome = await platform.invoker.invoke(SYSTEM, fn.id, template.sample_event, source="console")
    return outcome.result


# --- the gallery ----------------------------------------------------------------------------------


def test_the_python_gallery_has_the_five_starters() -> None:
    assert [t.id for t in PYTHON] == [
        "python-hello-world",
        "python-json-transform",
        "python-http-handler",
        "python-scheduled-job",
        "python-error-example",
    ]
    for template in PYTHON:
        assert check_syntax(template.runtime, template.files) == []
        json.dumps(template.sample_event)  # the Test tab must be able to show it


async def test_the_gallery_offers_only_runtimes_this_node_has(platform: Platform) -> None:
    node = Template("zig-hello", "Hello", "", "zig", "handler", {"main.zig": ""}, {})
    gallery = TemplateGallery([*PYTHON, node], available_runtimes=lambda: set(platform.runtimes))
    assert "zig-hello" not in [t.id for t in gallery.list()]
    assert gallery.list("zig") == []
    assert [t.id for t in platform.templates.list("python")] == [t.id for t in PYTHON]
    with pytest.raises(NotFound, match="template not found: nope"):
        platform.templates.get("nope")
    with pytest.raises(ValueError, match="registered twice"):
        gallery.register(node)


async def test_a_template_request_keeps_its_defaults_unless_overridden() -> None:
    template = PYTHON[3]
    assert template.request("job").timeout_sec == 60
    request = template.request("job", memory_mb=512, description="nightly")
    assert (request.memory_mb, request.description, request.files) == (512, "nightly", dict(template.files))


# --- each template runs -----------------------------------------------------------------------------


async def test_hello_world_greets_the_name_in_its_sample(platform: Platform) -> None:
    result = await run_template(platform, "python-hello-world")
    assert result.ok, result.error
    assert result.result["message"] == "Hello, Nimbus!"
    assert result.result["function"] == "t-hello-world"
    assert "saying hello to Nimbus" in result.logs


async def test_json_transform_computes_totals(platform: Platform) -> None:
    result = await run_template(platform, "python-json-transform")
    assert result.ok, result.error
    assert result.result["customer"] == "ada@example.com"
    assert result.result["items"][0] == {"sku": "AB-1", "name": "Blue Mug", "quantity": 2, "line_total": 15.0}
    assert (result.result["item_count"], result.result["total"]) == (3, 39.0)
    assert "transformed 2 items" in result.logs


async def test_http_handler_answers_lambda_style(platform: Platform) -> None:
    result = await run_template(platform, "python-http-handler")
    assert result.ok, result.error
    assert result.result["statusCode"] == 200
    assert result.result["headers"] == {"Content-Type": "application/json"}
    assert json.loads(result.result["body"]) == {"message": "Hello, Nimbus!"}
    missing = await platform.invoker.invoke(SYSTEM, "t-http-handler", {"httpMethod": "DELETE", "path": "/x"})
    assert missing.result.result["statusCode"] == 404
    bad = await platform.invoker.invoke(
        SYSTEM, "t-http-handler", {"httpMethod": "POST", "path": "/echo", "body": "{nope"}
    )
    assert bad.result.result["statusCode"] == 400


async def test_scheduled_job_runs_its_batches(platform: Platform) -> None:
    result = await run_template(platform, "python-scheduled-job")
    assert result.ok, result.error
    assert (result.result["removed"], result.result["triggered_by"]) == (30, "console")
    assert "batch 3: removed 10 records older than 30 days" in result.logs


async def test_error_example_fails_with_a_clear_error_and_stack(platform: Platform) -> None:
    result = await run_template(platform, "python-error-example")
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.type, result.error.message) == ("OrderRejected", "order 42 has no items")
    assert "in check" in result.error.stack and "main.py" in result.error.stack
    assert "validating order 42" in result.logs


# --- syntax check on save ---------------------------------------------------------------------------


def test_check_syntax_names_file_line_and_message() -> None:
    files = {"main.py": "def handler(e, c):\n    return 1\n", "util.py": "x = 1\ndef f(:\n    pass\n"}
    [problem] = check_syntax("python", files)
    assert (problem.file, problem.line) == ("util.py", 2)
    assert problem.describe().startswith("util.py line 2: ")
    assert check_syntax("python", {"README.md": "def (:"}) == []  # only .py files are Python
    assert check_syntax("nodejs", {"index.js": "function (("}) == []  # no checker yet
    assert check_syntax("python", {"main.py": "return 1\n"}) == [
        SyntaxProblem("main.py", 1, 1, "'return' outside function")
    ]


async def test_create_with_a_syntax_error_is_refused_and_saves_nothing(platform: Platform) -> None:
    bad = FunctionCreate(name="broken", runtime="python", code="def handler(event, context)\n    return 1\n")
    with pytest.raises(Invalid) as caught:
        await platform.functions.create(SYSTEM, bad)
    assert caught.value.field == "code"
    assert caught.value.message.startswith("main.py line 1: ")
    assert (await platform.functions.list(SYSTEM)).items == []


async def test_update_with_a_syntax_error_is_refused_and_keeps_the_code(platform: Platform) -> None:
    fn = await platform.functions.create(SYSTEM, PYTHON[0].request("hello"))
    with pytest.raises(Invalid, match=r"^main.py line 3: "):
        await platform.functions.update(SYSTEM, "hello", FunctionUpdate(code="x = 1\n\nif x\n"))
    after = await platform.functions.get(SYSTEM, "hello")
    assert (after.code, after.version) == (fn.code, fn.version)
