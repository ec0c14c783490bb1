"""The `nimbus` command: `serve` runs the platform; every other command talks to a Nimbus server's REST
API over HTTP (this machine's or a remote one), so nothing here touches the database directly."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from app import cli_commands, cli_environments, cli_functions
from app.cli_client import CliState, Output, fail

app = typer.Typer(
    name="nimbus",
    help="Nimbus, a self-hosted serverless platform: `nimbus serve` runs it; the other commands use its API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_functions.app, name="functions")
app.command("invoke")(cli_commands.invoke)
app.command("logs")(cli_commands.logs)
app.add_typer(cli_commands.invocations_app, name="invocations")
app.add_typer(cli_commands.keys_app, name="keys")
app.add_typer(cli_commands.config_app, name="config")
app.add_typer(cli_environments.app, name="env")


@app.callback()
def global_options(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="NIMBUS_URL",
            show_default=False,
            help="Server URL (default: the config file's url, else http://localhost:8080).",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="NIMBUS_API_KEY",
            show_default=False,
            help="API key, sent as Authorization: Bearer (default: the config file's api_key).",
        ),
    ] = None,
    output: Annotated[
        Output,
        typer.Option(
            "--output", "-o", case_sensitive=False, help="table for people, json for the raw API response."
        ),
    ] = Output.table,
) -> None:
    ctx.obj = CliState(url=url, api_key=api_key, output=output)


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(envvar="NIMBUS_HOST", show_default="127.0.0.1", help="Interface to listen on."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(envvar="NIMBUS_PORT", show_default="8080", min=1, max=65535, help="TCP port."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="NIMBUS_DATA_DIR", show_default="var", help="Database, compiled artifacts and logs."
        ),
    ] = None,
) -> None:
    """Run Nimbus: the REST API (and console) on one port, with the engine in the same process."""
    # Imported here: the platform pulls in the whole engine, which the HTTP commands never need.
    from pydantic import ValidationError

    from engine.config import Settings

    overrides: dict[str, Any] = {"host": host, "port": port, "data_dir": data_dir}
    try:
        # Only the values given: anything left out still comes from NIMBUS_* or nimbus.toml.
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        fail(f"invalid configuration: {exc}", code=2)
    with _absent("requests", "aiohttp", "websocket"):
        from app.main import serve as run

    run(settings)


@contextlib.contextmanager
def _absent(*modules: str) -> Iterator[None]:
    """Import with these modules unavailable, then make them importable again. NiceGUI's Socket.IO
    package imports its optional client transports (requests, aiohttp, websocket-client) for the client
    side, which a server never uses: 13 MB of an idle server's 150. Code that does use them (the
    Docker SDK uses requests) imports them later as usual."""
    blocked = [name for name in modules if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
