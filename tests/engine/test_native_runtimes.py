"""Go and Rust functions, end to end through the real platform: the code is compiled on deploy (in the
build jail), the program runs as a warm sandboxed worker and speaks the worker protocol itself. Each
template runs; errors and panics come back typed with their stack; timeouts, endless loops and memory
hogs are contained and named; logs are captured and capped; the sandbox holds; builds are cached and a
compile error names its line and keeps its log. Skipped (with the reason) where a toolchain is missing."""

from __future__ import annotations

import asyncio
import io
import shutil
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from data.models import Function
from engine.builds.diagnostics import HINTS, first_error, location
from engine.builds.service import BuildFailed, BuildRequest
from engine.builds.sources import check, rust_handler_path, rust_modules
from engine.builds.toolchains import find_go, find_rust
from engine.errors import Invalid
from engine.events import BuildFinished, BuildLog, BuildStarted
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.runtimes.base import ExecResult
from engine.services.function_schemas import FunctionCreate, FunctionUpdate
from engine.services.layer_schemas import LayerCreate, LayerRef
from engine.services.templates_go import TEMPLATES as GO_TEMPLATES
from engine.services.templates_rust import TEMPLATES as RUST_TEMPLATES
from tests.api.conftest import make_settings
from tests.engine.runtime_fixtures import needs_root

needs_go = pytest.mark.skipif(not find_go().available, reason=f"Go: {find_go().detail}")
needs_rust = pytest.mark.skipif(not find_rust().available, reason=f"Rust: {find_rust().detail}")
LANGUAGES = [pytest.param("go", marks=needs_go), pytest.param("rust", marks=needs_rust)]

GO_PROBE = """\
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

type ProbeError struct{ What string }

func (e *ProbeError) Error() string { return "probe failed: " + e.What }

var calls int
var hoard [][]byte

func explode(items []int) int { return items[7] }

func Handler(ctx context.Context, event json.RawMessage) (any, error) {
	var in struct {
		Do    string   `json:"do"`
		Paths []string `json:"paths"`
		Lines int      `json:"lines"`
	}
	if err := json.Unmarshal(event, &in); err != nil {
		return nil, err
	}
	calls++
	switch in.Do {
	case "error":
		return nil, &ProbeError{What: "on purpose"}
	case "panic":
		return explode([]int{1, 2}), nil
	case "sleep":
		time.Sleep(30 * time.Second)
	case "spin":
		for {
		}
	case "hog":
		for {
			chunk := make([]byte, 16<<20)
			for i := range chunk {
				chunk[i] = 1
			}
			hoard = append(hoard, chunk)
		}
	case "print":
		for i := 0; i < in.Lines; i++ {
			fmt.Println(i, strings.Repeat("x", 1000))
		}
	case "connect": // syscall rather than net: the net package would be compiled afresh (cgo off)
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err == nil {
			err = syscall.Connect(fd, &syscall.SockaddrInet4{Port: 80, Addr: [4]byte{1, 1, 1, 1}})
		}
		if err != nil {
			return map[string]any{"connected": false, "error": err.Error()}, nil
		}
		return map[string]any{"connected": true}, nil
	case "read":
		out := map[string]string{}
		for _, path := range in.Paths {
			if _, err := os.ReadFile(path); err != nil {
				out[path] = "error: " + err.Error()
			} else {
				out[path] = "read"
			}
		}
		return out, nil
	case "layer":
		dirs := strings.Split(os.Getenv("NIMBUS_LAYERS"), ":")
		text, err := os.ReadFile(dirs[0] + "/greeting.txt")
		if err != nil {
			return nil, err
		}
		return map[string]any{"greeting": strings.TrimSpace(string(text))}, nil
	}
	fmt.Println("probe called", calls)
	return map[string]any{"calls": calls, "request_id": NimbusContextFrom(ctx).RequestID}, nil
}
"""

RUST_PROBE = """\
use crate::json::{self, Json};
use crate::Context;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static CALLS: AtomicU64 = AtomicU64::new(0);

fn explode(items: &[i32]) -> i32 {
    items[7]
}

pub fn handler(event: &str, ctx: &Context) -> Result<String, String> {
    let event = json::parse(event)?;
    let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    match event.get("do").and_then(Json::as_str).unwrap_or("") {
        "error" => return Err("probe failed: on purpose".to_string()),
        "panic" => return Ok(explode(&[1, 2]).to_string()),
        "sleep" => std::thread::sleep(Duration::from_secs(30)),
        "spin" => loop {
            std::hint::spin_loop();
        },
        "hog" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
            }
        }
        "print" => {
            let lines = event.get("lines").and_then(Json::as_i64).unwrap_or(0);
            for i in 0..lines {
                println!("{} {}", i, "x".repeat(1000));
            }
        }
        "connect" => {
            let address = "1.1.1.1:80".parse().unwrap();
            return Ok(match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
                Ok(_) => "{\\"connected\\":true}".to_string(),
                Err(e) => {
                    let error = Json::text(&e.to_string());
                    Json::obj(vec![("connected", Json::Bool(false)), ("error", error)]).to_string()
                }
            });
        }
        "read" => {
            let mut out = Vec::new();
            for path in event.get("paths").and_then(Json::as_array).unwrap_or(&[]) {
                let path = path.as_str().unwrap_or("");
                let what = match std::fs::read(path) {
                    Ok(_) => "read".to_string(),
                    Err(e) => format!("error: {}", e),
                };
                out.push((path, Json::text(&what)));
            }
            return Ok(Json::obj(out).to_string());
        }
        "layer" => {
            let dirs = std::env::var("NIMBUS_LAYERS").unwrap_or_default();
            let first = dirs.split(':').next().unwrap_or("");
            let text = std::fs::read_to_string(format!("{}/greeting.txt", first)).map_err(|e| e.to_string())?;
            return Ok(Json::obj(vec![("greeting", Json::text(text.trim()))]).to_string());
        }
        _ => {}
    }
    println!("probe called {}", calls);
    let answer = vec![("calls", Json::int(calls as i64)), ("request_id", Json::text(&ctx.request_id))];
    Ok(Json::obj(answer).to_string())
}
"""

PROBES = {"go": ("main.go", GO_PROBE), "rust": ("lib.rs", RUST_PROBE)}


def line_of(code: str, text: str) -> int:
    return next(i for i, line in enumerate(code.splitlines(), 1) if text in line)


def broken(language: str) -> tuple[str, str, str]:
    """The probe with an undefined name in it: (entry file, code, "file:line" of the mistake)."""
    entry, code = PROBES[language]
    if language == "go":
        code = code.replace("calls++", "calls++\n\tmissing := undefinedThing + 1")
        return entry, code, f"main.go:{line_of(code, 'undefinedThing')}:"
    code = code.replace("let calls =", "let oops = undefined_thing;\n    let calls =")
    return entry, code, f"lib.rs:{line_of(code, 'undefined_thing')}:"


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        yield running


async def deploy(platform: Platform, language: str, **fields: Any) -> Function:
    entry, code = PROBES[language]
    values: dict[str, Any] = {"memory_mb": 128, "timeout_sec": 5} | fields
    request = FunctionCreate(
        name=f"probe-{uuid.uuid4().hex[:8]}", runtime=language, files={entry: code}, **values
    )
    return await platform.functions.create(SYSTEM, request)


async def call(platform: Platform, fn: Function, event: Any) -> ExecResult:
    return (await platform.invoker.invoke(SYSTEM, fn.id, event, source="console")).result


# --- the templates ------------------------------------------------------------------------------------


def test_each_compiled_runtime_offers_the_four_starters() -> None:
    for prefix, templates in (("go", GO_TEMPLATES), ("rust", RUST_TEMPLATES)):
        assert [t.id for t in templates] == [
            f"{prefix}-hello-world",
            f"{prefix}-json-transform",
            f"{prefix}-http-handler",
            f"{prefix}-error-example",
        ]


async def run_template(platform: Platform, template_id: str) -> ExecResult:
    template = platform.templates.get(template_id)
    await platform.functions.create(SYSTEM, template.request(template_id))
    return await call_ref(platform, template_id, template.sample_event)


async def call_ref(platform: Platform, ref: str, event: Any) -> ExecResult:
    return (await platform.invoker.invoke(SYSTEM, ref, event, source="console")).result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_hello_world_template_greets_and_logs(platform: Platform, language: str) -> None:
    result = await run_template(platform, f"{language}-hello-world")
    assert result.ok, result.error
    assert result.result["message"] == "Hello, Nimbus!"
    assert result.result["function"] == f"{language}-hello-world"
    assert len(result.result["request_id"]) == 36
    assert "saying hello to Nimbus" in result.logs
    assert result.cold and result.init_ms is not None


@pytest.mark.parametrize("language", LANGUAGES)
async def test_json_transform_template_reshapes_the_order(platform: Platform, language: str) -> None:
    result = await run_template(platform, f"{language}-json-transform")
    assert result.ok, result.error
    assert result.result["order_id"] == 1001
    assert result.result["customer"] == "ada@example.com"
    assert result.result["items"][0] == {"sku": "AB-1", "name": "Blue Mug", "quantity": 2, "line_total": 15}
    assert (result.result["item_count"], result.result["total"]) == (3, 39)
    assert "transformed 2 items" in result.logs


@pytest.mark.parametrize("language", LANGUAGES)
async def test_http_template_routes_requests(platform: Platform, language: str) -> None:
    result = await run_template(platform, f"{language}-http-handler")
    assert result.ok, result.error
    assert result.result["statusCode"] == 200
    assert result.result["headers"] == {"Content-Type": "application/json"}
    assert result.result["body"] == '{"message":"Hello, Nimbus!"}'
    echo = {"httpMethod": "POST", "path": "/echo", "body": '{"n": 1}'}
    posted = await call_ref(platform, f"{language}-http-handler", echo)
    assert posted.result["statusCode"] == 200 and '"received":{"n":1}' in posted.result["body"]
    missing = await call_ref(platform, f"{language}-http-handler", {"httpMethod": "GET", "path": "/nope"})
    assert missing.result["statusCode"] == 404


@pytest.mark.parametrize("language", LANGUAGES)
async def test_error_template_fails_with_its_error_and_logs(platform: Platform, language: str) -> None:
    result = await run_template(platform, f"{language}-error-example")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.type == ("OrderRejected" if language == "go" else "Error")
    assert result.error.message == "order 42 has no items"
    assert "validating order 42" in result.logs


# --- errors, limits and logs --------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_returned_error_comes_back_typed(platform: Platform, language: str) -> None:
    fn = await deploy(platform, language)
    result = await call(platform, fn, {"do": "error"})
    assert result.status == "failed" and result.error is not None
    assert result.error.type == ("ProbeError" if language == "go" else "Error")
    assert result.error.message == "probe failed: on purpose"
    assert (await call(platform, fn, {})).ok  # the worker is fine afterwards


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_panic_comes_back_with_message_and_stack(platform: Platform, language: str) -> None:
    fn = await deploy(platform, language)
    result = await call(platform, fn, {"do": "panic"})
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "panic"
    assert "index out of" in result.error.message
    if language == "go":
        assert "main.explode" in result.error.stack and "main.go:" in result.error.stack
        assert "nimbusWorker" not in result.error.stack  # the wrapper's frames are cut
    else:
        assert result.error.stack.startswith(f"panicked at lib.rs:{line_of(RUST_PROBE, 'items[7]')}:")
    warm = await call(platform, fn, {})
    assert warm.ok and not warm.cold  # recovered: the same worker serves on


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("what", ["sleep", "spin"])
async def test_timeouts_and_endless_loops_are_killed_and_named(
    platform: Platform, language: str, what: str
) -> None:
    fn = await deploy(platform, language, timeout_sec=1)
    result = await call(platform, fn, {"do": what})
    assert result.status == "timeout"
    assert result.error is not None and result.error.type == "Timeout"
    assert 900 <= result.duration_ms < 3000
    after = await call(platform, fn, {})
    assert after.ok and after.cold  # a new worker replaced the killed one


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_memory_hog_is_killed_and_named(platform: Platform, language: str) -> None:
    fn = await deploy(platform, language, memory_mb=128)
    result = await call(platform, fn, {"do": "hog"})
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "MemoryLimitExceeded", (result.error, result.logs[-500:])
    assert "128 MB" in result.error.message
    assert "out of memory" in result.logs
    assert (await call(platform, fn, {})).ok


@pytest.mark.parametrize("language", LANGUAGES)
async def test_logs_are_captured_and_capped(platform: Platform, language: str) -> None:
    fn = await deploy(platform, language)
    small = await call(platform, fn, {"do": "print", "lines": 3})
    assert small.ok and small.logs.count("x" * 1000) == 3 and not small.logs_truncated
    cap = platform.settings.output_cap_bytes
    big = await call(platform, fn, {"do": "print", "lines": cap // 1000 + 50})
    assert big.ok and big.logs_truncated
    assert "[output truncated:" in big.logs
    assert len(big.logs.encode()) < cap + 200
    assert not (await call(platform, fn, {})).logs_truncated  # the next invocation starts clean


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_warm_worker_keeps_its_state(platform: Platform, language: str) -> None:
    fn = await deploy(platform, language)
    first, second = await call(platform, fn, {}), await call(platform, fn, {})
    assert (first.result["calls"], first.cold) == (1, True)
    assert (second.result["calls"], second.cold) == (2, False)
    assert first.result["request_id"] != second.result["request_id"]
    assert "probe called 2" in second.logs and "probe called 1" not in second.logs
    assert second.peak_memory_kb and second.peak_memory_kb < 64 * 1024


# --- the sandbox holds ----------------------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_function_cannot_open_a_tcp_connection(platform: Platform, language: str) -> None:
    fn = await deploy(platform, language)
    result = await call(platform, fn, {"do": "connect"})
    assert result.ok, result.error
    assert result.result["connected"] is False
    assert "unreachable" in result.result["error"].lower()


@needs_root
@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_function_cannot_read_the_platform_database(platform: Platform, language: str) -> None:
    data = platform.settings.data_dir
    assert (data / "nimbus.db").is_file()
    paths = [str(data / "nimbus.db"), str(data / "secret.key"), "/etc/shadow"]
    fn = await deploy(platform, language)
    result = await call(platform, fn, {"do": "read", "paths": paths})
    assert result.ok, result.error
    assert set(result.result) == set(paths)
    assert all(v.startswith("error:") for v in result.result.values()), result.result


# --- builds -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_same_code_is_compiled_once_then_served_from_the_cache(
    platform: Platform, language: str
) -> None:
    first = await deploy(platform, language)
    second = await deploy(platform, language)
    [built] = (await platform.builds.list(SYSTEM, first.id)).items
    [cached] = (await platform.builds.list(SYSTEM, second.id)).items
    assert (built.status, built.cached) == ("succeeded", False)
    assert built.duration_ms and built.duration_ms > 0
    assert (cached.status, cached.cached) == ("succeeded", True)
    assert "nothing to compile" in (await platform.builds.get(SYSTEM, cached.id)).log
    assert (await call(platform, second, {})).ok


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_compile_error_names_its_line_and_keeps_the_log(platform: Platform, language: str) -> None:
    entry, code, place = broken(language)
    request = FunctionCreate(name="broken", runtime=language, files={entry: code})
    with pytest.raises(BuildFailed) as failed:
        await platform.functions.create(SYSTEM, request)
    assert failed.value.field == "code" and failed.value.status == 422
    assert place in failed.value.message, failed.value.message
    build = await platform.builds.get(SYSTEM, failed.value.build_id)
    assert build.status == "failed" and build.function_name == "broken"
    assert build.error.startswith(place)
    assert place in build.log and "build failed" in build.log
    assert await platform.functions.count() == 0  # nothing was saved


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_failed_update_leaves_the_old_code_serving(platform: Platform, language: str) -> None:
    fn = await deploy(platform, language)
    assert (await call(platform, fn, {})).ok
    entry, code, place = broken(language)
    with pytest.raises(BuildFailed, match=place):
        await platform.functions.update(SYSTEM, fn.id, FunctionUpdate(files={entry: code}))
    assert (await platform.functions.get(SYSTEM, fn.id)).version == fn.version
    result = await call(platform, fn, {})
    assert result.ok and result.result["calls"] == 2  # the same warm worker, old code
    statuses = [b.status for b in (await platform.builds.list(SYSTEM, fn.id)).items]
    assert statuses == ["failed", "succeeded"]  # newest first


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_node_without_the_artifact_builds_it_on_demand(platform: Platform, language: str) -> None:
    fn = await deploy(platform, language)
    shutil.rmtree(platform.settings.data_dir / "builds" / language)  # as on a node that never built it
    result = await call(platform, fn, {})
    assert result.ok, result.error
    rebuilt, deployed = (await platform.builds.list(SYSTEM, fn.id)).items
    assert (rebuilt.status, rebuilt.cached, deployed.status) == ("succeeded", False, "succeeded")
    assert (await call(platform, fn, {})).ok  # warm now: no third build
    assert len((await platform.builds.list(SYSTEM, fn.id)).items) == 2


@pytest.mark.parametrize("language", LANGUAGES)
async def test_attached_layers_are_readable_at_run_time(platform: Platform, language: str) -> None:
    layer = await platform.layers.create(
        SYSTEM, LayerCreate(name="greetings", compatible_runtimes=[language])
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("greeting.txt", "hi from a layer\n")
    version = await platform.layers.add_zip(SYSTEM, layer.id, archive.getvalue())
    fn = await deploy(platform, language)
    await platform.function_layers.set(
        SYSTEM, fn.id, [LayerRef(layer_id=layer.id, layer_version=version.version)]
    )
    result = await call(platform, fn, {"do": "layer"})
    assert result.ok, (result.error, result.logs)
    assert result.result["greeting"] == "hi from a layer"


@needs_go
async def test_concurrent_builds_of_the_same_code_compile_once(platform: Platform) -> None:
    entry, code = PROBES["go"]
    requests = [BuildRequest(f"fn-{i}", f"probe-{i}", "go", "Handler", {entry: code}) for i in range(3)]
    builds = await asyncio.gather(*(platform.builds.build(SYSTEM, r) for r in requests))
    assert [b.status for b in builds] == ["succeeded"] * 3
    assert sorted(b.cached for b in builds) == [False, True, True]
    shared = [b for b in builds if b.cached]
    assert all("compiled once for several requests" in b.log for b in shared)


@needs_go
async def test_a_build_streams_its_lines_live_then_finishes(platform: Platform) -> None:
    entry, code, place = broken("go")
    with platform.bus.subscribe(BuildStarted, BuildLog, BuildFinished) as events:
        build = await platform.builds.build(
            SYSTEM, BuildRequest("fn-1", "probe", "go", "Handler", {entry: code})
        )
        seen = [events.queue.get_nowait() for _ in range(events.queue.qsize())]
    assert isinstance(seen[0], BuildStarted) and seen[0].build_id == build.id
    assert isinstance(seen[-1], BuildFinished) and (seen[-1].status, seen[-1].error) == (
        "failed",
        build.error,
    )
    lines = [e.line for e in seen if isinstance(e, BuildLog)]
    assert lines == build.log.splitlines()
    assert lines[0].startswith("$ go build") and any(place in line for line in lines)


@needs_go
async def test_a_build_that_overruns_its_deadline_is_killed_and_says_so(platform: Platform) -> None:
    platform.builds.compiler.timeout_sec = 0.01
    entry, code = PROBES["go"]
    build = await platform.builds.build(SYSTEM, BuildRequest("fn-1", "probe", "go", "Handler", {entry: code}))
    assert (build.status, build.error) == ("failed", "build timed out after 0.01 s")
    assert not list((platform.settings.data_dir / "builds" / "tmp").iterdir())  # its workspace is gone


async def test_a_runtime_without_its_toolchain_is_unavailable_and_refused(
    platform: Platform, tmp_path: Path
) -> None:
    missing = find_go(path=str(tmp_path))
    assert not missing.available and "no `go` on PATH" in missing.detail
    assert not find_rust(path=str(tmp_path)).available
    platform.runtimes.pop("go", None)  # as on a node without Go
    request = FunctionCreate(name="gopher", runtime="go", files={"main.go": GO_PROBE})
    with pytest.raises(Invalid, match="not available on this node"):
        await platform.functions.create(SYSTEM, request)
    assert {i.name: i.available for i in platform.runtime_list()}["go"] is find_go().available


# --- pure pieces: reading compiler output, refusing what can never build -----------------------------------


def test_the_first_compiler_error_is_read_with_its_place() -> None:
    go_log = ["$ go build", "# function", "./main.go:9:2: undefined: x", "./main.go:12:1: missing return"]
    assert first_error("go", go_log) == "main.go:9:2: undefined: x"
    rust_log = [
        "warning: unused import: `Json`",
        " --> lib.rs:1:25",
        "error[E0425]: cannot find value `x` in this scope",
        " --> lib.rs:3:13",
        "error: aborting due to 1 previous error",
    ]
    assert first_error("rust", rust_log) == "lib.rs:3:13: cannot find value `x` in this scope [E0425]"
    in_wrapper = first_error("go", ["./nimbus_handler.go:10:73: cannot use Handler (value of type func())"])
    assert in_wrapper.endswith("is the handler declared as " + HINTS["go"] + "?)")
    assert first_error("go", ["nothing useful"]) == ""
    assert location("lib.rs:3:13: cannot find value") == ("lib.rs", 3)
    assert location("build timed out after 120 s") is None


@pytest.mark.parametrize(
    ("runtime", "handler", "files", "field", "words"),
    [
        ("go", "Handler", {"main.go": "", "go.mod": ""}, "files", "go.mod is generated by Nimbus"),
        ("go", "Handler", {"lib/util.go": ""}, "files", "at least one .go file at the top level"),
        ("go", "main.init", {"main.go": ""}, "handler", "cannot name a Go function"),
        ("rust", "handler", {"lib.rs": "", "json.rs": ""}, "files", "taken by Nimbus's wrapper"),
        ("rust", "handler", {"lib.rs": "", "my-util.rs": ""}, "files", "not a Rust identifier"),
        ("rust", "util.run", {"lib.rs": ""}, "handler", "there is no util.rs"),
        ("rust", "fn", {"lib.rs": ""}, "handler", "'fn' is not a Rust identifier"),
    ],
)
def test_code_that_could_never_build_is_refused_naming_the_field(
    runtime: str, handler: str, files: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(Invalid, match=words) as refused:
        check(runtime, handler, files)
    assert refused.value.field == field


def test_rust_modules_are_the_top_level_files_and_module_directories() -> None:
    files = {"lib.rs": "", "util.rs": "", "util/helpers.rs": "", "shapes/mod.rs": "", "README.md": ""}
    assert rust_modules(files) == ["lib", "shapes", "util"]
    assert rust_handler_path("handler") == "lib::handler" and rust_handler_path("util.run") == "util::run"
