"""The `nimbus` commands besides functions: invoke, logs, invocations, keys and config."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from app.cli_client import (
    CONFIG_KEYS,
    Output,
    config_path,
    fail,
    fmt_ms,
    fmt_time,
    load_config,
    path_part,
    print_fields,
    print_json,
    print_table,
    save_config,
    state,
)

invocations_app = typer.Typer(help="List and inspect invocations.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
config_app = typer.Typer(help="The CLI's config file (server URL and API key).", no_args_is_help=True)

_UNFINISHED = ("pending", "running")
_POLL_SEC = 0.5  # `invocations get --wait`: the original CLI's interval
_FOLLOW_WAIT_SEC = 25  # the server holds a follow request this long when no new log arrives


def read_event(data: str | None, file: Path | None, stdin: IO[str]) -> Any:
    """The event from --data JSON, --data - (stdin) or --file, validated here so malformed JSON never
    reaches the server; no input means the empty event `{}`."""
    if data is not None and file is not None:
        fail("give the event with --data or --file, not both", code=2)
    if file is not None:
        try:
            text, source = file.read_text(encoding="utf-8"), str(file)
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {file}: {exc}", code=2)
    elif data == "-":
        text, source = stdin.read(), "stdin"
    elif data is not None:
        text, source = data, "--data"
    else:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"the event from {source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code=2,
        )


def invoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Function name or id.")],
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Event as JSON, or - to read stdin.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the event from a JSON file.")
    ] = None,
    async_: Annotated[bool, typer.Option("--async", "-a", help="Queue it and print the request id.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show timing and logs.")] = False,
    env: Annotated[
        str | None,
        typer.Option("--env", "-e", help="Environment to run in (default: the server's default one)."),
    ] = None,
) -> None:
    """Invoke a function and print its result."""
    event = read_event(data, file, typer.get_text_stream("stdin"))
    st = state(ctx)
    ref = path_part(name)
    params = {"environment": env} if env else {}
    if async_:
        accepted = st.client.post(f"/api/v1/functions/{ref}/async", json=event, params=params)
        if st.output is Output.json:
            print_json(accepted)
        else:
            typer.echo(accepted["request_id"])
            typer.echo(f"Accepted. Follow it with: nimbus invocations get {accepted['request_id']}", err=True)
        return
    result = st.client.post(f"/api/v1/functions/{ref}/invoke", json=event, params=params)
    error = result.get("error")
    if st.output is Output.json:
        print_json(result)
    elif error is None:
        print_json(result.get("body"))
    if verbose and st.output is Output.table:
        cold = f"cold (init {fmt_ms(result.get('init_ms'))})" if result.get("cold_start") else "warm"
        typer.echo(
            f"request {result.get('request_id')}  env {result.get('environment') or '-'}  "
            f"version {result.get('version')}  "
            f"{fmt_ms(result.get('duration_ms'))}  {cold}  billed {result.get('billed_time_ms')} ms",
            err=True,
        )
        if result.get("logs"):
            typer.echo(f"--- logs\n{result['logs'].rstrip()}", err=True)
    if error is not None:
        if st.output is Output.table:
            typer.echo(f"error: {error.get('type')}: {error.get('message')}", err=True)
            if error.get("stack"):
                typer.echo(str(error["stack"]).rstrip(), err=True)
        raise typer.Exit(1)


def _log_line(entry: dict[str, Any]) -> str:
    return (
        f"{fmt_time(entry.get('created_at'))}  {str(entry.get('level', '')).upper():<5}  "
        # Invocation ids are UUIDv7: the head is a timestamp shared by neighbours, the tail tells them apart.
        f"{str(entry.get('invocation_id', ''))[-8:]}  {str(entry.get('message', '')).rstrip()}"
    )


def logs(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Function name or id.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100, help="Recent entries to show.")] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries (Ctrl-C stops).")
    ] = False,
) -> None:
    """Print a function's recent log entries, oldest first (-o json: the API's page; with --follow, one
    JSON object per line)."""
    st = state(ctx)
    path = f"/api/v1/functions/{path_part(name)}/logs"
    as_json = st.output is Output.json

    def emit(entry: dict[str, Any]) -> None:
        typer.echo(json.dumps(entry) if as_json else _log_line(entry))

    page = st.client.get(path, params={"limit": limit})
    if as_json and not follow:
        print_json(page)
        return
    try:  # following, Ctrl-C is how one stops, at any moment (even while the first page prints)
        recent = list(reversed(page["logs"]))  # the API gives newest first
        for entry in recent:
            emit(entry)
        if not follow:
            return
        # An empty `after` asks for everything newer than nothing: following starts even with no logs yet.
        last = recent[-1]["id"] if recent else ""
        while True:
            for entry in st.client.get(path, params={"after": last, "wait": _FOLLOW_WAIT_SEC})["logs"]:
                emit(entry)
                last = entry["id"]
    except KeyboardInterrupt:
        if not follow:
            raise


@invocations_app.command("ls")
def list_invocations(
    ctx: typer.Context,
    function: Annotated[str | None, typer.Option("--function", help="Function name or id.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", "-s", help="pending, running, success, failed...")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="api, cli, console, cron, webhook...")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100)] = 20,
) -> None:
    """List recent invocations, newest first."""
    st = state(ctx)
    params = {"function": function, "status": status, "source": source, "limit": limit}
    page = st.client.get("/api/v1/invocations", params={k: v for k, v in params.items() if v is not None})
    if st.output is Output.json:
        print_json(page)
        return
    rows = [
        (
            i["id"],
            i.get("function_name"),
            i["status"],
            i.get("source"),
            fmt_ms(i.get("duration_ms")),
            "cold" if i.get("cold") else "",
            fmt_time(i.get("started_at") or i.get("created_at")),
        )
        for i in page["invocations"]
    ]
    print_table(
        ("ID", "FUNCTION", "STATUS", "SOURCE", "DURATION", "COLD", "STARTED"), rows, "No invocations."
    )


def _show_invocation(inv: dict[str, Any]) -> None:
    cold = f"yes (init {fmt_ms(inv.get('init_ms'))})" if inv.get("cold") else "no"
    print_fields(
        [
            ("ID", inv["id"]),
            ("FUNCTION", f"{inv.get('function_name')} (version {inv.get('version')})"),
            (
                "STATUS",
                f"{inv['status']} ({inv.get('status_code')})" if inv.get("status_code") else inv["status"],
            ),
            ("SOURCE", inv.get("source")),
            ("COLD", cold),
            ("DURATION", fmt_ms(inv.get("duration_ms"))),
            ("BILLED", f"{inv.get('billed_ms')} ms" if inv.get("billed_ms") is not None else None),
            ("PEAK MEMORY", f"{inv.get('peak_memory_kb')} KB" if inv.get("peak_memory_kb") else None),
            ("ATTEMPT", f"{inv.get('attempt')}/{inv.get('max_attempts')}"),
            ("CREATED", fmt_time(inv.get("created_at"))),
            ("STARTED", fmt_time(inv.get("started_at"))),
            ("ENDED", fmt_time(inv.get("ended_at"))),
            ("INPUT", json.dumps(inv.get("input"))),
            ("OUTPUT", json.dumps(inv.get("output"))),
        ]
    )
    if inv.get("error_type") or inv.get("error_message"):
        typer.echo(f"\nERROR {inv.get('error_type')}: {inv.get('error_message')}")
        if inv.get("error_stack"):
            typer.echo(str(inv["error_stack"]).rstrip())
    attempts = inv.get("attempts") or []
    if len(attempts) > 1 or any(a.get("error_type") for a in attempts):
        typer.echo("")
        rows = [
            (
                a["attempt"],
                a["status"],
                fmt_ms(a.get("duration_ms")),
                f"{a.get('error_type')}: {a.get('error_message')}" if a.get("error_type") else "",
                fmt_time(a.get("started_at")),
            )
            for a in attempts
        ]
        print_table(("ATTEMPT", "STATUS", "DURATION", "ERROR", "STARTED"), rows, "")
    if inv.get("logs"):
        typer.echo(f"\n--- logs\n{str(inv['logs']).rstrip()}")


@invocations_app.command("get")
def get_invocation(
    ctx: typer.Context,
    invocation_id: Annotated[str, typer.Argument(help="Invocation (request) id.")],
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Wait until it is no longer pending/running.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to --wait.")] = 60.0,
) -> None:
    """Show one invocation with its logs and attempts."""
    st = state(ctx)
    path = f"/api/v1/invocations/{path_part(invocation_id)}"
    inv = st.client.get(path)
    deadline = time.monotonic() + timeout
    while wait and inv["status"] in _UNFINISHED and time.monotonic() < deadline:
        time.sleep(_POLL_SEC)
        inv = st.client.get(path)
    if st.output is Output.json:
        print_json(inv)
    else:
        _show_invocation(inv)
    if wait and inv["status"] in _UNFINISHED:
        fail(f"invocation {invocation_id} is still {inv['status']} after {timeout:g} s")


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A label for the key.")],
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, help="Expire after N days.")
    ] = None,
) -> None:
    """Create an API key and print it (it is shown only this once)."""
    st = state(ctx)
    body: dict[str, Any] = {"name": name}
    if expires_days is not None:
        body["expires_in_days"] = expires_days
    key = st.client.post("/api/v1/api-keys", json=body)
    if st.output is Output.json:
        print_json(key)
        return
    typer.echo(key["key"])
    expiry = f", expires {fmt_time(key.get('expires_at'))}" if key.get("expires_at") else ""
    typer.echo(
        f"Created API key {key['name']} (id {key['id']}{expiry}). Store it now: it is not shown again.",
        err=True,
    )


@keys_app.command("ls")
def list_keys(ctx: typer.Context) -> None:
    """List API keys (prefixes only; the keys themselves are never shown again)."""
    st = state(ctx)
    keys: list[dict[str, Any]] = []
    for page in st.client.pages("/api/v1/api-keys", {"limit": 100}, follow=True):
        keys += page["api_keys"]
    if st.output is Output.json:
        print_json({"api_keys": keys, "next_cursor": None})
        return
    rows = [
        (
            k["id"],
            k["name"],
            k.get("prefix"),
            k.get("role"),
            fmt_time(k.get("created_at")),
            fmt_time(k.get("expires_at")),
            fmt_time(k.get("last_used_at")),
            "revoked" if k.get("revoked_at") else "active",
        )
        for k in keys
    ]
    print_table(
        ("ID", "NAME", "PREFIX", "ROLE", "CREATED", "EXPIRES", "LAST USED", "STATE"), rows, "No API keys."
    )


@keys_app.command("rm")
def remove_key(ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke an API key."""
    state(ctx).client.delete(f"/api/v1/api-keys/{path_part(key_id)}")
    typer.echo(f"Revoked {key_id}")


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="url or api_key.")],
    value: Annotated[str, typer.Argument(help="The value to store.")],
) -> None:
    """Store the server URL or the API key in the config file."""
    if key not in CONFIG_KEYS:
        fail(f"unknown config key {key!r}; use one of {', '.join(CONFIG_KEYS)}", code=2)
    values = load_config()
    values[key] = value.rstrip("/") if key == "url" else value
    path = save_config(values)
    typer.echo(f"Saved {key} to {path}")


def mask(key: str | None) -> str | None:
    """Enough of a key to recognise it, not enough to use it."""
    if not key:
        return None
    return key[:12] + "…" if len(key) > 16 else "…"


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Show the URL and key the CLI will use, and where each comes from."""
    st = state(ctx)
    conn = st.connection()
    view = {
        "config_file": str(config_path()),
        "url": conn.url,
        "url_source": conn.url_source,
        "api_key": mask(conn.api_key),
        "api_key_source": conn.key_source,
    }
    if st.output is Output.json:
        print_json(view)
        return
    print_fields(
        [
            ("CONFIG FILE", view["config_file"]),
            ("URL", f"{conn.url}  ({conn.url_source})"),
            ("API KEY", f"{view['api_key'] or '-'}  ({conn.key_source})"),
        ]
    )
