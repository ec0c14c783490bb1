"""`nimbus env ...`: the environments (variables by name, secrets never) and what is deployed where."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from app.cli_client import Output, print_json, print_table, state

app = typer.Typer(help="List environments and what is deployed to each.", no_args_is_help=True)


@app.command("ls")
def list_environments(ctx: typer.Context) -> None:
    """List environments in promotion order; * marks the default one (where an invoke without --env runs)."""
    st = state(ctx)
    page = st.client.get("/api/v1/environments")
    if st.output is Output.json:
        print_json(page)
        return
    rows = [
        (
            e["name"],
            "*" if e.get("is_default") else "",
            e.get("position"),
            ", ".join(sorted(e.get("env_vars") or {})) or "-",
            ", ".join(e.get("secrets") or []) or "-",
            e.get("description") or "",
        )
        for e in page["environments"]
    ]
    print_table(
        ("NAME", "DEFAULT", "POSITION", "VARIABLES", "SECRETS", "DESCRIPTION"), rows, "No environments."
    )


@app.command("deployments")
def deployments(
    ctx: typer.Context,
    search: Annotated[str | None, typer.Option("--search", "-s", help="Part of the function name.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100)] = 50,
) -> None:
    """What is deployed where: one row per function, one column per environment ("-": not deployed)."""
    st = state(ctx)
    params: dict[str, Any] = {"limit": limit} | ({"search": search} if search else {})
    matrix = st.client.get("/api/v1/deployments", params=params)
    if st.output is Output.json:
        print_json(matrix)
        return
    names = [e["name"] for e in matrix["environments"]]
    rows = [
        (fn["name"], *((fn["environments"].get(n) or {}).get("label", "-") for n in names))
        for fn in matrix["functions"]
    ]
    print_table(("FUNCTION", *(n.upper() for n in names)), rows, "No functions.")
