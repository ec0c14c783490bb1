"""The `nimbus` CLI. Pure tests (help, local validation, the config file, deploy inference) need no
server; the rest drive the CLI against a real `nimbus serve` subprocess over HTTP, as a user would."""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from app.cli_client import format_api_error, render_table
from app.cli_deploy import DeployError, deploy_body, plan_deploy

REPO = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "cli tests admin password"
HELLO = 'def handler(event, context):\n    return {"hello": event.get("name")}\n'
START_DEADLINE_SEC = 60.0

runner = CliRunner()


def _server_ready() -> bool:
    return importlib.util.find_spec("app.main") is not None


# Only the server tests depend on app.main; the pure tests below run regardless.
needs_server = pytest.mark.skipif(not _server_ready(), reason="app.main not built yet")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the developer's ~/.config/nimbus or NIMBUS_URL/NIMBUS_API_KEY."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "NIMBUS_URL", "NIMBUS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return home


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dead_url() -> str:
    """A local URL where nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{_free_port()}"


# --- pure: no server -------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "functions", "invoke", "logs", "invocations", "keys", "config"):
        assert command in result.stdout


def test_functions_help_lists_its_subcommands() -> None:
    result = runner.invoke(app, ["functions", "--help"])
    assert result.exit_code == 0
    for command in ("ls", "create", "deploy", "get", "rm", "publish", "versions"):
        assert command in result.stdout


def test_invoke_with_malformed_json_exits_2_before_any_request() -> None:
    # The URL is dead: had the CLI tried HTTP, it would have exited 1 with a connection error instead.
    result = runner.invoke(app, ["--url", _dead_url(), "invoke", "hello", "--data", '{"name": '])
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr
    assert "cannot connect" not in result.stderr


def test_invoke_with_malformed_json_file_names_the_file(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text("{oops}")
    result = runner.invoke(app, ["--url", _dead_url(), "invoke", "hello", "--file", str(event)])
    assert result.exit_code == 2
    assert str(event) in result.stderr


def test_invoke_with_malformed_json_on_stdin_exits_2() -> None:
    result = runner.invoke(app, ["--url", _dead_url(), "invoke", "hello", "--data", "-"], input="[1, 2")
    assert result.exit_code == 2
    assert "stdin" in result.stderr


def test_unreachable_server_gives_a_clear_error_naming_the_url() -> None:
    url = _dead_url()
    result = runner.invoke(app, ["--url", url, "functions", "ls"])
    assert result.exit_code == 1
    assert f"cannot connect to Nimbus at {url}" in result.stderr
    assert "Traceback" not in result.output


def test_config_set_then_show_round_trips(_isolated_home: Path) -> None:
    assert runner.invoke(app, ["config", "set", "url", "http://nimbus.example:9000/"]).exit_code == 0
    assert runner.invoke(app, ["config", "set", "api_key", "nmb_0123456789abcdefghij"]).exit_code == 0

    path = _isolated_home / ".config" / "nimbus" / "config.toml"
    assert tomllib.loads(path.read_text()) == {
        "url": "http://nimbus.example:9000",
        "api_key": "nmb_0123456789abcdefghij",
    }
    assert path.stat().st_mode & 0o777 == 0o600  # it holds a key

    shown = runner.invoke(app, ["-o", "json", "config", "show"])
    assert shown.exit_code == 0
    view = json.loads(shown.stdout)
    assert view["url"] == "http://nimbus.example:9000" and view["url_source"] == "config file"
    assert view["api_key_source"] == "config file"
    assert "0123456789abcdefghij" not in shown.stdout  # shown masked, never whole


def test_url_flag_beats_the_config_file() -> None:
    runner.invoke(app, ["config", "set", "url", "http://from-file:1"])
    shown = runner.invoke(app, ["--url", "http://from-flag:2", "-o", "json", "config", "show"])
    assert json.loads(shown.stdout)["url"] == "http://from-flag:2"


def test_default_url_is_localhost_8080() -> None:
    shown = runner.invoke(app, ["-o", "json", "config", "show"])
    assert json.loads(shown.stdout)["url"] == "http://localhost:8080"


def test_config_set_rejects_an_unknown_key() -> None:
    result = runner.invoke(app, ["config", "set", "colour", "blue"])
    assert result.exit_code == 2
    assert "unknown config key" in result.stderr


def test_api_errors_render_message_and_field() -> None:
    body = {"error": {"code": "invalid", "message": "memory_mb: too large", "field": "memory_mb"}}
    assert format_api_error(422, body) == "memory_mb: too large (memory_mb)"
    assert format_api_error(404, {"error": {"code": "not_found", "message": "no such function"}}) == (
        "no such function"
    )
    assert format_api_error(502, None, "<html>Bad Gateway</html>") == "HTTP 502: <html>Bad Gateway</html>"


def test_tables_align_columns_and_show_missing_values_as_dash() -> None:
    table = render_table(("NAME", "MEMORY"), [("a", 128), ("longer", None)])
    assert table.splitlines() == ["NAME    MEMORY", "a       128", "longer  -"]


# --- pure: deploy inference ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "runtime", "handler"),
    [
        ("hello.py", "python", "hello.handler"),
        ("index.js", "nodejs", "index.handler"),
        ("worker.mjs", "nodejs", "worker.handler"),
        ("main.go", "go", "Handler"),
        ("lib.rs", "rust", "handler"),
        ("module.wat", "wasm", "_start"),
    ],
)
def test_deploy_infers_runtime_and_handler_from_the_extension(
    tmp_path: Path, filename: str, runtime: str, handler: str
) -> None:
    source = tmp_path / filename
    source.write_text("// code\n")
    plan = plan_deploy(source)
    assert (plan.runtime, plan.handler, plan.entry) == (runtime, handler, filename)
    assert plan.name == source.stem
    assert plan.files == {filename: "// code\n"}


def test_deploy_flags_override_inference_and_accept_runtime_aliases(tmp_path: Path) -> None:
    source = tmp_path / "script.txt"
    source.write_text(HELLO)
    plan = plan_deploy(source, name="greeter", runtime="python3.11", handler="script.handler")
    assert (plan.name, plan.runtime, plan.handler) == ("greeter", "python", "script.handler")


def test_deploy_refuses_an_unknown_extension_without_runtime(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("hi")
    with pytest.raises(DeployError, match="--runtime"):
        plan_deploy(source)


def test_deploy_sends_a_binary_wasm_module_as_base64(tmp_path: Path) -> None:
    source = tmp_path / "echo.wasm"
    source.write_bytes(b"\0asm\1\0\0\0")
    plan = plan_deploy(source)
    assert (plan.name, plan.runtime, plan.binary) == ("echo", "wasm", "AGFzbQEAAAA=")
    assert deploy_body(plan, None) == {
        "name": "echo",
        "runtime": "wasm",
        "handler": plan.handler,
        "binary": "AGFzbQEAAAA=",
    }
    assert deploy_body(plan, {"runtime": "wasm", "handler": "_start"}) == {
        "handler": plan.handler,
        "binary": "AGFzbQEAAAA=",
    }
    (tmp_path / "fake.wasm").write_bytes(b"MZ not wasm")
    with pytest.raises(DeployError, match="not a WebAssembly module"):
        plan_deploy(tmp_path / "fake.wasm")


def test_deploy_of_a_missing_path_says_so(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="does not exist"):
        plan_deploy(tmp_path / "nope.py")


def test_deploy_of_a_directory_sends_every_file_and_picks_main_py(tmp_path: Path) -> None:
    root = tmp_path / "orders"
    (root / "__pycache__").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "main.py").write_text(HELLO)
    (root / "util.py").write_text("X = 1\n")
    (root / "data.json").write_text("{}")
    (root / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00\xff")
    (root / ".git" / "HEAD").write_text("ref")
    plan = plan_deploy(root)
    assert (plan.name, plan.runtime, plan.entry, plan.handler) == (
        "orders",
        "python",
        "main.py",
        "main.handler",
    )
    assert sorted(plan.files) == ["data.json", "main.py", "util.py"]


def test_deploy_of_a_directory_follows_a_handler_into_a_subpackage(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(HELLO)
    (tmp_path / "src" / "db.py").write_text("")
    plan = plan_deploy(tmp_path, handler="src.app.handler")
    assert plan.entry == "src/app.py"


def test_deploy_of_a_node_directory_picks_index_js(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "index.js").write_text("exports.handler = async () => 1;\n")
    (tmp_path / "lib" / "helper.js").write_text("")
    plan = plan_deploy(tmp_path)
    assert (plan.runtime, plan.entry, plan.handler) == ("nodejs", "index.js", "index.handler")


def test_deploy_of_a_mixed_directory_asks_for_the_runtime(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(HELLO)
    (tmp_path / "index.js").write_text("")
    with pytest.raises(DeployError, match="--runtime"):
        plan_deploy(tmp_path)
    assert plan_deploy(tmp_path, runtime="nodejs").entry == "index.js"


def test_deploy_of_an_ambiguous_directory_asks_for_the_handler(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("")
    (tmp_path / "b.py").write_text("")
    with pytest.raises(DeployError, match="--handler"):
        plan_deploy(tmp_path)


def test_deploy_create_body_carries_name_runtime_code_and_files(tmp_path: Path) -> None:
    source = tmp_path / "hello.py"
    source.write_text(HELLO)
    body = deploy_body(plan_deploy(source), existing=None)
    assert body == {
        "name": "hello",
        "runtime": "python",
        "handler": "hello.handler",
        "code": HELLO,
        "files": {"hello.py": HELLO},
    }


def test_deploy_update_keeps_a_custom_handler_that_still_fits(tmp_path: Path) -> None:
    source = tmp_path / "hello.py"
    source.write_text(HELLO)
    existing = {"runtime": "python", "handler": "hello.greet"}
    body = deploy_body(plan_deploy(source), existing)
    assert body["handler"] == "hello.greet" and "name" not in body and "runtime" not in body


def test_deploy_update_switches_the_handler_when_the_entry_file_changed(tmp_path: Path) -> None:
    source = tmp_path / "fresh.py"
    source.write_text(HELLO)
    body = deploy_body(plan_deploy(source), {"runtime": "python", "handler": "main.handler"})
    assert body["handler"] == "fresh.handler"


def test_deploy_sends_no_duplicate_code_when_the_server_would_store_it_elsewhere(tmp_path: Path) -> None:
    # With several Go files the server keeps `code` in main.go; the entry here is handler.go, so `code`
    # must stay out of the body or the function would hold the handler twice.
    (tmp_path / "handler.go").write_text("package main\n")
    (tmp_path / "util.go").write_text("package main\n")
    plan = plan_deploy(tmp_path)
    assert plan.entry == "handler.go"
    assert "code" not in deploy_body(plan, None)


# --- against a real server -------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    api_key: str
    log: Path


def _serve_command() -> list[str]:
    """The installed `nimbus` script next to this interpreter, else the same entry point via -m."""
    script = shutil.which("nimbus", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "app.cli"]


def _wait_until_live(proc: subprocess.Popen[bytes], url: str, key_file: Path, log: Path) -> str:
    deadline = time.monotonic() + START_DEADLINE_SEC
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"nimbus serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health/live", timeout=1.0).status_code == 200 and key_file.exists():
                return key_file.read_text().strip()
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"nimbus serve not live within {START_DEADLINE_SEC} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not _server_ready():
        pytest.skip("app.main not built yet")
    root = tmp_path_factory.mktemp("cli-server")
    port, key_file, log = _free_port(), root / "bootstrap.key", root / "server.log"
    # A clean NIMBUS_* environment: a developer's NIMBUS_DATABASE_URL must not point the test server at it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIMBUS_")}
    env.update(
        NIMBUS_ADMIN_PASSWORD=ADMIN_PASSWORD,
        NIMBUS_BOOTSTRAP_KEY_FILE=str(key_file),
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
    )
    command = [
        *_serve_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(root / "data"),
    ]
    with log.open("wb") as out:
        # Its own session, so teardown can stop the server and its sandbox helpers as one group.
        proc = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        yield Server(url=url, api_key=_wait_until_live(proc, url, key_file, log), log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def nimbus(server: Server, *args: str, input: str | None = None, api_key: str | None = None) -> Result:
    env = {"NIMBUS_URL": server.url, "NIMBUS_API_KEY": api_key or server.api_key}
    return runner.invoke(app, list(args), env=env, input=input)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def deploy_hello(server: Server, tmp_path: Path, name: str, code: str = HELLO) -> Result:
    source = tmp_path / "hello.py"
    source.write_text(code)
    result = nimbus(server, "functions", "deploy", str(source), "--name", name)
    assert result.exit_code == 0, result.output
    return result


@needs_server
def test_deploy_then_invoke_prints_the_handler_result(server: Server, tmp_path: Path) -> None:
    name = unique("hello")
    deployed = deploy_hello(server, tmp_path, name)
    assert deployed.stdout.startswith(f"Created {name}")

    result = nimbus(server, "invoke", name, "--data", '{"name": "nimbus"}')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"hello": "nimbus"}


@needs_server
def test_deploy_again_updates_the_code(server: Server, tmp_path: Path) -> None:
    name = unique("hello")
    deploy_hello(server, tmp_path, name)
    again = deploy_hello(server, tmp_path, name, code='def handler(event, context):\n    return "v2"\n')
    assert again.stdout.startswith(f"Updated {name}")
    assert json.loads(nimbus(server, "invoke", name).stdout) == "v2"


@needs_server
def test_deploy_of_a_directory_runs_with_its_helper_module(server: Server, tmp_path: Path) -> None:
    root = tmp_path / unique("pkg")
    root.mkdir()
    (root / "main.py").write_text(
        "from helper import shout\n\ndef handler(event, context):\n    return shout(event['word'])\n"
    )
    (root / "helper.py").write_text("def shout(word):\n    return word.upper() + '!'\n")
    assert nimbus(server, "functions", "deploy", str(root)).exit_code == 0
    result = nimbus(server, "invoke", root.name, "--data", '{"word": "hi"}')
    assert json.loads(result.stdout) == "HI!"


@needs_server
def test_invoke_reads_the_event_from_stdin(server: Server, tmp_path: Path) -> None:
    name = unique("hello")
    deploy_hello(server, tmp_path, name)
    result = nimbus(server, "invoke", name, "--data", "-", input='{"name": "stdin"}')
    assert json.loads(result.stdout) == {"hello": "stdin"}


@needs_server
def test_invoke_with_malformed_json_exits_2_against_a_live_server(server: Server, tmp_path: Path) -> None:
    name = unique("hello")
    deploy_hello(server, tmp_path, name)
    result = nimbus(server, "invoke", name, "--data", "{not json")
    assert result.exit_code == 2
    assert "not valid JSON" in result.stderr
    listed = nimbus(server, "-o", "json", "invocations", "ls", "--function", name)
    assert json.loads(listed.stdout)["invocations"] == []  # nothing reached the function


@needs_server
def test_a_function_error_goes_to_stderr_with_exit_1(server: Server, tmp_path: Path) -> None:
    name = unique("broken")
    deploy_hello(server, tmp_path, name, code='def handler(event, context):\n    raise ValueError("boom")\n')
    result = nimbus(server, "invoke", name)
    assert result.exit_code == 1
    assert "ValueError: boom" in result.stderr
    assert 'raise ValueError("boom")' in result.stderr  # the user's stack
    assert result.stdout == ""


@needs_server
def test_verbose_invoke_shows_timing_and_logs(server: Server, tmp_path: Path) -> None:
    name = unique("chatty")
    deploy_hello(
        server, tmp_path, name, code='def handler(event, context):\n    print("said hi")\n    return 1\n'
    )
    result = nimbus(server, "invoke", name, "--verbose")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == 1
    assert "request " in result.stderr and "said hi" in result.stderr


@needs_server
def test_async_invoke_prints_the_id_that_invocations_get_waits_for(server: Server, tmp_path: Path) -> None:
    name = unique("hello")
    deploy_hello(server, tmp_path, name)
    accepted = nimbus(server, "invoke", name, "--async", "--data", '{"name": "later"}')
    assert accepted.exit_code == 0
    request_id = accepted.stdout.strip()
    assert f"nimbus invocations get {request_id}" in accepted.stderr

    shown = nimbus(server, "-o", "json", "invocations", "get", request_id, "--wait", "--timeout", "30")
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.stdout)
    assert detail["status"] == "success" and detail["output"] == {"hello": "later"}


@needs_server
def test_invocations_ls_shows_recent_invocations(server: Server, tmp_path: Path) -> None:
    name = unique("hello")
    deploy_hello(server, tmp_path, name)
    nimbus(server, "invoke", name)
    listed = nimbus(server, "invocations", "ls", "--function", name)
    assert listed.exit_code == 0
    header, row = listed.stdout.splitlines()[:2]
    assert header.split()[:4] == ["ID", "FUNCTION", "STATUS", "SOURCE"]
    assert name in row and "success" in row and "cli" in row


@needs_server
def test_functions_ls_shows_the_deployed_function(server: Server, tmp_path: Path) -> None:
    name = unique("listed")
    deploy_hello(server, tmp_path, name)
    result = nimbus(server, "functions", "ls", "--search", name)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split() == [
        "NAME",
        "RUNTIME",
        "STATUS",
        "MEMORY",
        "TIMEOUT",
        "VERSION",
        "UPDATED",
    ]
    row = next(line for line in result.stdout.splitlines() if line.startswith(name))
    assert "python" in row and "active" in row


@needs_server
def test_json_output_prints_the_raw_api_response(server: Server, tmp_path: Path) -> None:
    name = unique("hello")
    deploy_hello(server, tmp_path, name)
    result = nimbus(server, "-o", "json", "functions", "get", name)
    assert json.loads(result.stdout)["name"] == name


@needs_server
def test_rm_force_removes_the_function(server: Server, tmp_path: Path) -> None:
    name = unique("doomed")
    deploy_hello(server, tmp_path, name)
    assert nimbus(server, "functions", "rm", name, "--force").exit_code == 0
    gone = nimbus(server, "functions", "get", name)
    assert gone.exit_code == 1
    assert gone.stderr.startswith("error: ") and "not found" in gone.stderr


@needs_server
def test_rm_without_force_keeps_the_function_when_not_confirmed(server: Server, tmp_path: Path) -> None:
    name = unique("kept")
    deploy_hello(server, tmp_path, name)
    assert nimbus(server, "functions", "rm", name, input="n\n").exit_code == 1
    assert nimbus(server, "functions", "get", name).exit_code == 0


@needs_server
def test_api_validation_errors_print_message_and_field(server: Server) -> None:
    result = nimbus(
        server,
        "functions",
        "create",
        unique("big"),
        "--runtime",
        "python",
        "--code",
        HELLO,
        "--memory",
        "99999",
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "(memory_mb)" in result.stderr


@needs_server
def test_publish_makes_a_version_that_versions_lists(server: Server, tmp_path: Path) -> None:
    name = unique("versioned")
    deploy_hello(server, tmp_path, name)
    assert "version 1" in nimbus(server, "functions", "publish", name, "-d", "first").stdout
    listed = nimbus(server, "functions", "versions", name)
    assert "first" in listed.stdout


@needs_server
def test_a_created_key_works_until_it_is_revoked(server: Server) -> None:
    created = nimbus(server, "-o", "json", "keys", "create", unique("ci"), "--expires-days", "1")
    assert created.exit_code == 0
    key = json.loads(created.stdout)
    assert nimbus(server, "functions", "ls", api_key=key["key"]).exit_code == 0
    assert key["id"] in nimbus(server, "keys", "ls").stdout

    assert nimbus(server, "keys", "rm", key["id"]).exit_code == 0
    refused = nimbus(server, "functions", "ls", api_key=key["key"])
    assert refused.exit_code == 1 and refused.stderr.startswith("error: ")


@needs_server
def test_logs_follow_prints_new_entries_until_interrupted(server: Server, tmp_path: Path) -> None:
    name = unique("logged")
    deploy_hello(server, tmp_path, name, code='def handler(event, context):\n    print("seen", event["n"])\n')
    env = {**os.environ, "NIMBUS_URL": server.url, "NIMBUS_API_KEY": server.api_key, "PYTHONPATH": str(REPO)}
    follow = subprocess.Popen(
        [*_serve_command(), "logs", name, "--follow"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout or ()], daemon=True)
    reader.start()
    try:
        nimbus(server, "invoke", name, "--data", '{"n": 1}')
        nimbus(server, "invoke", name, "--data", '{"n": 2}')
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while not any("seen 2" in line for line in seen):
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        assert [line.split("  ")[-1].strip() for line in seen] == ["seen 1", "seen 2"]  # oldest first
    finally:
        follow.send_signal(signal.SIGINT)
        _, err = follow.communicate(timeout=15)
    assert follow.returncode == 0, err
    assert "Traceback" not in err


@needs_server
def test_logs_prints_recent_entries_oldest_first(server: Server, tmp_path: Path) -> None:
    name = unique("logged")
    deploy_hello(server, tmp_path, name, code='def handler(event, context):\n    print("line", event["n"])\n')
    for n in (1, 2, 3):
        nimbus(server, "invoke", name, "--data", json.dumps({"n": n}))
    result = nimbus(server, "logs", name, "--limit", "2")
    assert result.exit_code == 0
    assert [line.split("  ")[-1] for line in result.stdout.splitlines()] == ["line 2", "line 3"]
