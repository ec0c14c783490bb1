"""`nimbus functions ...`: list, create, deploy a file or directory, show, delete, publish, versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_client import Output, fail, fmt_time, path_part, print_fields, print_json, print_table, state
from app.cli_deploy import DeployError, deploy_body, plan_deploy

app = typer.Typer(help="Create, deploy, list and delete functions.", no_args_is_help=True)


def parse_env(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--env takes KEY=VALUE, got {pair!r}", code=2)
        env[key] = value
    return env


def _show(fn: dict[str, Any], *, code: bool = False) -> None:
    print_fields(
        [
            ("NAME", fn.get("name")),
            ("ID", fn.get("id")),
            ("RUNTIME", fn.get("runtime")),
            ("HANDLER", fn.get("handler")),
            ("STATUS", fn.get("status")),
            ("MEMORY", f"{fn.get('memory_mb')} MB"),
            ("TIMEOUT", f"{fn.get('timeout_sec')} s"),
            ("VERSION", fn.get("version")),
            ("PUBLISHED", fn.get("latest_published_version")),
            ("DESCRIPTION", fn.get("description")),
            ("TAGS", fn.get("tags")),
            ("ENV", ", ".join(sorted(fn.get("env_vars") or {}))),
            ("CODE SIZE", f"{fn.get('code_size')} bytes"),
            ("UPDATED", fmt_time(fn.get("updated_at"))),
        ]
    )
    if code:
        for path, text in sorted((fn.get("files") or {}).items()):
            typer.echo(f"\n--- {path}\n{text.rstrip()}")


@app.command("ls")
def list_functions(
    ctx: typer.Context,
    runtime: Annotated[str | None, typer.Option("--runtime", "-r", help="Only this runtime.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", "-s", help="active, offline, building, failed.")
    ] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Substring of the name.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100, help="Page size.")] = 20,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow next_cursor through every page.")] = False,
) -> None:
    """List functions."""
    st = state(ctx)
    params = {"runtime": runtime, "status": status, "search": search, "limit": limit}
    functions: list[dict[str, Any]] = []
    next_cursor = None
    for page in st.client.pages("/api/v1/functions", params, follow=all_pages):
        functions += page["functions"]
        next_cursor = page.get("next_cursor")
    if st.output is Output.json:
        print_json({"functions": functions, "next_cursor": next_cursor})
        return
    rows = [
        (
            f["name"],
            f["runtime"],
            f["status"],
            f"{f['memory_mb']} MB",
            f"{f['timeout_sec']} s",
            f["version"],
            fmt_time(f.get("updated_at")),
        )
        for f in functions
    ]
    print_table(
        ("NAME", "RUNTIME", "STATUS", "MEMORY", "TIMEOUT", "VERSION", "UPDATED"), rows, "No functions."
    )
    if next_cursor and not all_pages:
        typer.echo("(more: use --all or a larger --limit)", err=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Function name.")],
    runtime: Annotated[str, typer.Option("--runtime", "-r", help="python, nodejs, go, rust or wasm.")],
    handler: Annotated[
        str | None, typer.Option("--handler", "-H", help="module.function or function.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", exists=True, dir_okay=False, help="Code file.")
    ] = None,
    code: Annotated[str | None, typer.Option("--code", "-c", help="Code as text.")] = None,
    memory: Annotated[int | None, typer.Option("--memory", "-m", help="Memory in MB (128-3072).")] = None,
    timeout: Annotated[
        int | None, typer.Option("--timeout", "-t", help="Timeout in seconds (1-300).")
    ] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE, repeatable.")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Repeatable.")] = None,
) -> None:
    """Create a function from --file or --code."""
    if (file is None) == (code is None):
        fail("give the code with exactly one of --file or --code", code=2)
    text = file.read_text(encoding="utf-8") if file is not None else code
    body = {
        "name": name,
        "runtime": runtime,
        "handler": handler,
        "code": text,
        "memory_mb": memory,
        "timeout_sec": timeout,
        "env_vars": parse_env(env),
        "description": description,
        "tags": tag,
    }
    st = state(ctx)
    fn = st.client.post("/api/v1/functions", json={k: v for k, v in body.items() if v is not None})
    if st.output is Output.json:
        print_json(fn)
        return
    typer.echo(f"Created {fn['name']}")
    _show(fn)


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A code file, or a directory whose files are all deployed.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Default: the file's or directory's name.")
    ] = None,
    runtime: Annotated[
        str | None, typer.Option("--runtime", "-r", help="Default: from the extension.")
    ] = None,
    handler: Annotated[str | None, typer.Option("--handler", "-H", help="Default: <entry>.handler.")] = None,
    memory: Annotated[int | None, typer.Option("--memory", "-m", help="Memory in MB.")] = None,
    timeout: Annotated[int | None, typer.Option("--timeout", "-t", help="Timeout in seconds.")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE, repeatable.")] = None,
) -> None:
    """Create the function, or update its code if it exists."""
    try:
        plan = plan_deploy(path, name=name, runtime=runtime, handler=handler)
    except DeployError as exc:
        fail(str(exc), code=2)
    for skipped in plan.skipped:
        typer.echo(f"warning: skipped {skipped} (not UTF-8 text)", err=True)
    st = state(ctx)
    ref = f"/api/v1/functions/{path_part(plan.name)}"
    response = st.client.request("GET", ref, expect=(404,))
    existing = None if response.status_code == 404 else response.json()
    if existing is not None and existing["runtime"] != plan.runtime:
        fail(f"{plan.name} is a {existing['runtime']} function; cannot deploy {plan.runtime} code to it")
    body = deploy_body(plan, existing)
    extras = {"memory_mb": memory, "timeout_sec": timeout, "env_vars": parse_env(env)}
    body.update({k: v for k, v in extras.items() if v is not None})
    if existing is None:
        fn, verb = st.client.post("/api/v1/functions", json=body), "Created"
    else:
        fn, verb = st.client.put(ref, json=body), "Updated"
    if st.output is Output.json:
        print_json(fn)
        return
    typer.echo(f"{verb} {fn['name']}")
    _show(fn)


@app.command("get")
def get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Function name or id.")],
    code: Annotated[bool, typer.Option("--code", help="Also print the code.")] = False,
) -> None:
    """Show one function."""
    st = state(ctx)
    fn = st.client.get(f"/api/v1/functions/{path_part(name)}")
    if st.output is Output.json:
        print_json(fn)
    else:
        _show(fn, code=code)


@app.command("rm")
def remove(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Function names or ids.")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask.")] = False,
) -> None:
    """Delete functions (asks first unless --force)."""
    if not force and not typer.confirm(f"Delete {', '.join(names)}?", default=False):
        typer.echo("Aborted.", err=True)
        raise typer.Exit(1)
    client = state(ctx).client
    for name in names:
        client.delete(f"/api/v1/functions/{path_part(name)}")
        typer.echo(f"Deleted {name}")


@app.command("publish")
def publish(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Function name or id.")],
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
) -> None:
    """Publish $LATEST as a new immutable version."""
    st = state(ctx)
    body = {"description": description} if description else {}
    version = st.client.post(f"/api/v1/functions/{path_part(name)}/versions", json=body)
    if st.output is Output.json:
        print_json(version)
    else:
        typer.echo(f"Published {name} version {version['version']}")


@app.command("versions")
def versions(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Function name or id.")]) -> None:
    """List the published versions of a function."""
    st = state(ctx)
    data = st.client.get(f"/api/v1/functions/{path_part(name)}/versions")
    if st.output is Output.json:
        print_json(data)
        return
    rows = [
        (
            v["version"],
            v.get("description"),
            v.get("handler"),
            (v.get("code_hash") or "")[:12],
            fmt_time(v.get("created_at")),
        )
        for v in data["versions"]
    ]
    print_table(("VERSION", "DESCRIPTION", "HANDLER", "CODE", "CREATED"), rows, "No published versions.")
