"""Rust crates over the API, as a user scripts them: upload the `vendor/` of `cargo vendor` as a zip layer
for rust, attach it, add a Cargo.toml naming the crate, invoke and get the crate's answer; a crate no
layer vendors and detaching the crates answer 422 with cargo's message; /api/v1/system names cargo; a
node without cargo refuses a Cargo.toml with 422 saying so. Real builds with the real cargo (skipped, with
the reason, where it is missing)."""

from __future__ import annotations

import dataclasses

import httpx

from engine.builds.toolchains import CARGO_MISSING
from engine.platform import Platform
from tests.engine.test_rust_crates import (
    CARGO_TOML,
    PLAIN,
    RUST,
    USES_GREET,
    greet_crates,
    needs_cargo,
    zip_of,
)


async def rust_function(client: httpx.AsyncClient, name: str, files: dict[str, str]) -> httpx.Response:
    body = {"name": name, "runtime": "rust", "files": files, "timeout_sec": 10}
    return await client.post("/api/v1/functions", json=body)


async def crates_layer(client: httpx.AsyncClient, name: str) -> None:
    created = await client.post("/api/v1/layers", json={"name": name, "compatible_runtimes": ["rust"]})
    assert created.status_code == 201, created.text
    uploaded = await client.post(
        f"/api/v1/layers/{name}/versions",
        files={"content": ("vendor.zip", zip_of(greet_crates()), "application/zip")},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["status"] == "ready"


async def greeter_with_crates(client: httpx.AsyncClient, name: str) -> None:
    """The user's steps: a std-only function, the layer attached, then the Cargo.toml and the code."""
    await crates_layer(client, f"{name}-crates")
    created = await rust_function(client, name, {"lib.rs": PLAIN})
    assert created.status_code == 201, created.text
    layers = [{"layer_id": f"{name}-crates", "layer_version": 1}]
    attached = await client.put(f"/api/v1/functions/{name}/layers", json=layers)
    assert attached.status_code == 200, attached.text
    files = {"lib.rs": USES_GREET, "Cargo.toml": CARGO_TOML}
    updated = await client.put(f"/api/v1/functions/{name}", json={"files": files})
    assert updated.status_code == 200, updated.text


@needs_cargo
async def test_a_rust_function_answers_with_a_crate_from_its_layer(client: httpx.AsyncClient) -> None:
    await greeter_with_crates(client, "greeter")
    invoked = await client.post("/api/v1/functions/greeter/invoke", json={"name": "API"})
    assert invoked.status_code == 200, invoked.text
    assert invoked.json()["body"] == {"greeting": "hello, API!"}, invoked.json()
    builds = (await client.get("/api/v1/functions/greeter/builds")).json()["builds"]
    newest = (await client.get(f"/api/v1/builds/{builds[0]['id']}")).json()
    assert newest["status"] == "succeeded" and newest["log"].startswith("$ cargo build --release --offline")
    assert "Compiling greet v0.2.0" in newest["log"]


@needs_cargo
async def test_missing_crates_answer_422_with_cargos_message(client: httpx.AsyncClient) -> None:
    await greeter_with_crates(client, "needy")
    files = {"lib.rs": USES_GREET, "Cargo.toml": '[dependencies]\ngreet = "0.2"\nnope = "1"\n'}
    missing = await client.put("/api/v1/functions/needy", json={"files": files})
    assert missing.status_code == 422, missing.text
    error = missing.json()["error"]
    assert error["field"] == "code" and error["build_id"]
    assert "no matching package named `nope` found" in error["message"], error

    detached = await client.put("/api/v1/functions/needy/layers", json=[])
    assert detached.status_code == 422, detached.text
    assert "no matching package named `greet` found" in detached.json()["error"]["message"]
    assert (await client.get("/api/v1/functions/needy/layers")).json()["total"] == 1  # kept
    invoked = await client.post("/api/v1/functions/needy/invoke", json={"name": "still"})
    assert invoked.json()["body"] == {"greeting": "hello, still!"}


@needs_cargo
async def test_the_system_names_cargo_beside_rustc(client: httpx.AsyncClient) -> None:
    system = (await client.get("/api/v1/system")).json()
    [rust] = [r for r in system["runtimes"] if r["name"] == "rust"]
    assert rust["available"] and rust["version"] == f"{RUST.version}, {RUST.cargo_version}"
    assert rust["detail"].endswith(RUST.cargo)


@needs_cargo
async def test_a_node_without_cargo_refuses_a_cargo_toml(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    rust = platform.builds.toolchains["rust"]
    platform.builds.toolchains["rust"] = dataclasses.replace(rust, cargo="", cargo_version=CARGO_MISSING)
    refused = await rust_function(client, "crated", {"lib.rs": PLAIN, "Cargo.toml": CARGO_TOML})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["field"] == "files" and error["message"].startswith("cargo is not installed on this node")
    assert (await client.get("/api/v1/functions/crated")).status_code == 404
    system = (await client.get("/api/v1/system")).json()
    [info] = [r for r in system["runtimes"] if r["name"] == "rust"]
    assert info["available"] and CARGO_MISSING in info["detail"]
