"""Go/Rust builds in the console, through NiceGUI's user simulation over a real platform: saving code
streams the build's log below the editor, a compile error keeps the log with the error lines highlighted
and marks the line in the editor (nothing is saved), and the Builds tab lists past builds with the log of
the selected one. Skipped (with the reason) where a toolchain is missing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nicegui.testing.user import User

from components.build_log import build_problem, is_error_line
from data.models import Function
from engine.builds.toolchains import find_go, find_rust
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionUpdate
from tests.ui.conftest import log_in

needs_go = pytest.mark.skipif(not find_go().available, reason=f"Go: {find_go().detail}")
needs_rust = pytest.mark.skipif(not find_rust().available, reason=f"Rust: {find_rust().detail}")


def element(user: User, marker: str) -> Any:
    found = user.find(marker=marker).elements
    assert len(found) == 1, f"{len(found)} elements marked {marker!r}"
    return next(iter(found))


async def status_becomes(user: User, status: str, panel: str = "build") -> None:
    """Wait (0.1 s steps, like should_see) until the panel's status badge says `status`."""
    for _ in range(100):
        try:
            if element(user, f"{panel}-status").text == status:
                return
        except AssertionError:  # not shown yet
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"the {panel} status never became {status!r}")


def log_lines(user: User, panel: str = "build") -> list[str]:
    return [child.text for child in element(user, f"{panel}-log").default_slot.children]


def error_lines(user: User) -> list[str]:
    """The log lines shown highlighted as errors."""
    children = element(user, "build-log").default_slot.children
    return [child.text for child in children if "text-red-700" in child.classes]


async def from_template(platform: Platform, template: str, name: str) -> Function:
    return await platform.functions.create(SYSTEM, platform.templates.get(template).request(name))


def break_code(language: str, code: str) -> tuple[str, int]:
    """The template's code with an undefined name in its handler, and that line's number."""
    if language == "go":
        broken = code.replace(
            '\tfmt.Println("saying hello to"', '\tundefinedCall()\n\tfmt.Println("saying hello to"'
        )
        needle = "undefinedCall"
    else:
        broken = code.replace("    println!(", "    let oops = undefined_thing;\n    println!(")
        needle = "undefined_thing"
    return broken, next(i for i, line in enumerate(broken.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("language", "entry"),
    [pytest.param("go", "main.go", marks=needs_go), pytest.param("rust", "lib.rs", marks=needs_rust)],
)
async def test_a_compile_error_on_save_keeps_the_log_and_marks_the_line(
    console: User, platform: Platform, language: str, entry: str
) -> None:
    fn = await from_template(platform, f"{language}-hello-world", "greeter")
    await log_in(console, then=f"/functions/{fn.id}")
    await console.should_see(marker="code-editor", retries=50)
    await console.should_not_see(marker="build-panel")  # nothing built on this page yet
    broken, line = break_code(language, fn.files[entry])
    with console:
        element(console, "code-editor").value = broken
    console.find(marker="fn-save").click()
    await status_becomes(console, "failed")
    place = f"{entry}:{line}:"
    assert element(console, "build-error").text.startswith(place)
    assert any(place in text for text in error_lines(console)), error_lines(console)
    assert log_lines(console)[0].startswith("$ ")  # the compiler's command, then its output
    assert element(console, "code-error").text.startswith(f"build failed: {place}")
    editor = element(console, "code-editor")
    assert editor.decorations == [{"kind": "line", "line": line, "class": "nimbus-error-line"}]
    after = await platform.functions.get(SYSTEM, fn.id)
    assert (after.version, after.files) == (fn.version, fn.files)  # nothing was saved
    await console.should_see(marker="fn-dirty")


@needs_go
async def test_a_good_save_streams_a_succeeded_build(console: User, platform: Platform) -> None:
    fn = await from_template(platform, "go-hello-world", "greeter")
    await log_in(console, then=f"/functions/{fn.id}")
    await console.should_see(marker="code-editor", retries=50)
    with console:
        element(console, "code-editor").value = fn.files["main.go"].replace("Hello, %s!", "Hi, %s!")
    console.find(marker="fn-save").click()
    await console.should_see("Saved revision 2", retries=100)
    await status_becomes(console, "succeeded")
    assert any(text.startswith("build succeeded in") for text in log_lines(console))
    assert error_lines(console) == []


@needs_go
async def test_the_builds_tab_lists_builds_and_shows_the_selected_log(
    console: User, platform: Platform
) -> None:
    fn = await from_template(platform, "go-hello-world", "greeter")
    code = fn.files["main.go"]
    await platform.functions.update(
        SYSTEM, fn.id, FunctionUpdate(files={"main.go": code.replace("Hello", "Hi")})
    )
    newest, first = (await platform.builds.list(SYSTEM, fn.id)).items
    await log_in(console, then=f"/functions/{fn.id}?tab=builds")
    await console.should_see(marker=f"build-{first.id}", retries=50)
    await console.should_see(marker=f"build-{newest.id}")
    assert newest.id[-8:] in element(console, "history-title").text  # the newest is selected
    console.find(marker=f"build-{first.id}").click()
    await console.should_see(first.id[-8:], retries=50)
    assert "succeeded" in element(console, "history-title").text
    assert log_lines(console, "history")[0].startswith("$ go build")


@needs_go
async def test_the_builds_tab_follows_a_build_started_elsewhere(console: User, platform: Platform) -> None:
    fn = await from_template(platform, "go-hello-world", "greeter")
    await log_in(console, then=f"/functions/{fn.id}?tab=builds")
    await console.should_see(
        marker=f"build-{(await platform.builds.list(SYSTEM, fn.id)).items[0].id}", retries=50
    )
    code = fn.files["main.go"].replace("Hello", "Hey")
    await platform.functions.update(
        SYSTEM, fn.id, FunctionUpdate(files={"main.go": code})
    )  # e.g. over the API
    newest = (await platform.builds.list(SYSTEM, fn.id)).items[0]
    await console.should_see(marker=f"build-{newest.id}", retries=50)


@needs_go
async def test_a_python_function_has_no_builds_tab(console: User, platform: Platform) -> None:
    fn = await from_template(platform, "python-hello-world", "plain")
    await log_in(console, then=f"/functions/{fn.id}?tab=builds")
    await console.should_see(marker="code-editor", retries=50)
    await console.should_not_see(marker="tab-builds")
    await console.should_not_see(marker="build-panel")


@needs_go
async def test_creating_from_a_go_template_builds_it(console: User, platform: Platform) -> None:
    await log_in(console, then="/functions/new?template=go-hello-world")
    await console.should_see(marker="template-go-hello-world", retries=50)
    console.find(marker="fn-name").type("gopher")
    console.find(marker="fn-create").click()
    await console.should_see(marker="tab-builds", retries=100)
    fn = await platform.functions.get(SYSTEM, "gopher")
    [build] = (await platform.builds.list(SYSTEM, fn.id)).items
    assert build.status == "succeeded" and build.created_by == "admin"
    console.find(marker="tab-builds").click()
    await console.should_see(marker=f"build-{build.id}", retries=50)


def test_the_build_log_marks_compiler_error_lines() -> None:
    assert is_error_line("./main.go:9:2: undefined: x")
    assert is_error_line("error[E0425]: cannot find value `x` in this scope")
    assert is_error_line(" --> lib.rs:3:13", "lib.rs:3:")
    assert not is_error_line(" --> lib.rs:1:5", "lib.rs:3:")
    assert not is_error_line("warning: unused import: `Json`")
    problem = build_problem("build failed: lib.rs:3:13: cannot find value `x`", {"lib.rs": ""})
    assert problem is not None and (problem.file, problem.line, problem.message) == (
        "lib.rs",
        3,
        "cannot find value `x`",
    )
    assert build_problem("build failed: nimbus_main.rs:4:5: mismatched types", {"lib.rs": ""}) is None
