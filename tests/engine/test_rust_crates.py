"""Rust functions with crates, end to end through the real platform: a layer vendors two small crates the way
`cargo vendor` lays them out (one depends on the other), a Rust function declares one in its Cargo.toml,
is built by the real cargo (offline, in the build jail) and its handler's answer comes from the crate.
A crate no layer vendors, an error inside a vendored crate and detaching the crates are refused with the
compiler's message; changing layers rebuilds; the cache key follows the layers. Skipped (with the reason)
where rustc or cargo is missing; the pure pieces always run."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import stat
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from data.models import Function
from engine.builds import crates
from engine.builds.diagnostics import first_error
from engine.builds.service import BuildFailed, BuildService
from engine.builds.sources import cache_key, check
from engine.builds.toolchains import CARGO_MISSING, Toolchain, find_rust
from engine.errors import Invalid
from engine.events import BuildLog
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.runtimes.base import LayerMount
from engine.services.function_schemas import FunctionCreate, FunctionUpdate
from engine.services.layer_schemas import LayerCreate, LayerRef
from tests.api.conftest import make_settings

RUST = find_rust()
needs_cargo = pytest.mark.skipif(
    not (RUST.available and RUST.cargo),
    reason=f"Rust with cargo: {RUST.detail if not RUST.available else RUST.cargo_version}",
)

PLAIN = """\
pub fn handler(_event: &str, _ctx: &crate::Context) -> Result<String, String> {
    Ok("\\"std only\\"".to_string())
}
"""
USES_GREET = """\
use crate::json::{self, Json};
use crate::Context;

pub fn handler(event: &str, _ctx: &Context) -> Result<String, String> {
    let event = json::parse(event)?;
    let name = event.get("name").and_then(Json::as_str).unwrap_or("nobody");
    Ok(Json::obj(vec![("greeting", Json::text(&greet::greet(name)))]).to_string())
}
"""
CARGO_TOML = '[package]\nname = "ignored"\n\n[dependencies]\ngreet = "0.2"\n'


def crate(name: str, version: str, lib: str, deps: str = "") -> dict[str, str]:
    """One crate as `cargo vendor` leaves it: vendor/<name>/ with Cargo.toml, src/ and its checksum file
    (no file list and no package digest: cargo then checks nothing, which a directory source allows)."""
    manifest = f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n'
    if deps:
        manifest += f"\n[dependencies]\n{deps}\n"
    return {
        f"vendor/{name}/Cargo.toml": manifest,
        f"vendor/{name}/src/lib.rs": lib,
        f"vendor/{name}/.cargo-checksum.json": json.dumps({"files": {}, "package": None}),
    }


def greet_crates(word: str = "hello") -> dict[str, str]:
    """`greet` 0.2.0, which uses `greet-core` 0.1.0 for its word."""
    return {
        **crate("greet-core", "0.1.0", f'pub fn word() -> &\'static str {{ "{word}" }}\n'),
        **crate(
            "greet",
            "0.2.0",
            'pub fn greet(name: &str) -> String { format!("{}, {}!", greet_core::word(), name) }\n',
            deps='greet-core = "0.1"',
        ),
    }


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return buffer.getvalue()


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with Platform(make_settings(tmp_path)) as running:
        yield running


async def vendor_layer(platform: Platform, files: dict[str, str], name: str = "") -> LayerRef:
    """A Rust layer (a new one, or a new version of `name`) holding `files`."""
    if not name:
        layer = await platform.layers.create(
            SYSTEM, LayerCreate(name=f"crates-{uuid.uuid4().hex[:8]}", compatible_runtimes=["rust"])
        )
        name = layer.id
    version = await platform.layers.add_zip(SYSTEM, name, zip_of(files))
    return LayerRef(layer_id=version.layer_id, layer_version=version.version)


async def plain_function(platform: Platform) -> Function:
    request = FunctionCreate(
        name=f"crates-{uuid.uuid4().hex[:8]}", runtime="rust", files={"lib.rs": PLAIN}, timeout_sec=10
    )
    return await platform.functions.create(SYSTEM, request)


async def greeting(platform: Platform, fn: Function, name: str = "Nimbus") -> object:
    outcome = await platform.invoker.invoke(SYSTEM, fn.id, {"name": name}, source="console")
    result = outcome.result
    assert result.ok, (result.error, result.logs)
    assert isinstance(result.result, dict)
    return result.result["greeting"]


async def with_greet(platform: Platform, word: str = "hello") -> tuple[Function, LayerRef]:
    """A function whose handler uses `greet`, vendored in its one layer: create, attach, then add the
    Cargo.toml and the code that uses the crate (the order a user follows)."""
    layer = await vendor_layer(platform, greet_crates(word))
    fn = await plain_function(platform)
    await platform.function_layers.set(SYSTEM, fn.id, [layer])
    files = {"lib.rs": USES_GREET, "Cargo.toml": CARGO_TOML}
    fn = await platform.functions.update(SYSTEM, fn.id, FunctionUpdate(files=files))
    return fn, layer


# --- the acceptance -----------------------------------------------------------------------------------


@needs_cargo
async def test_a_handler_answers_with_a_crate_vendored_in_its_layer(platform: Platform) -> None:
    fn, _ = await with_greet(platform)
    assert await greeting(platform, fn) == "hello, Nimbus!"
    newest = (await platform.builds.list(SYSTEM, fn.id)).items[0]
    log = (await platform.builds.get(SYSTEM, newest.id)).log
    assert log.startswith("$ cargo build --release --offline"), log
    assert "vendored crates from the function's layers: greet, greet-core" in log
    assert "Compiling greet-core v0.1.0" in log and "Compiling greet v0.2.0" in log
    assert RUST.cargo_version in log.splitlines()[-1]


@needs_cargo
async def test_a_crate_no_layer_vendors_is_refused_with_cargos_message(platform: Platform) -> None:
    fn = await plain_function(platform)
    files = {"lib.rs": PLAIN, "Cargo.toml": '[dependencies]\nnope = "1"\n'}
    with pytest.raises(BuildFailed) as failed:
        await platform.functions.update(SYSTEM, fn.id, FunctionUpdate(files=files))
    assert failed.value.status == 422 and failed.value.field == "code"
    assert "no matching package named `nope` found" in failed.value.message
    assert "no layer of the function vendors it" in failed.value.message
    assert (await platform.functions.get(SYSTEM, fn.id)).files == {"lib.rs": PLAIN}  # nothing saved


@needs_cargo
async def test_an_error_in_a_vendored_crate_names_its_place_and_streams_live(platform: Platform) -> None:
    layer = await vendor_layer(platform, crate("broken", "1.0.0", "pub fn f() -> u8 { undefined_x }\n"))
    fn = await plain_function(platform)
    await platform.function_layers.set(SYSTEM, fn.id, [layer])
    files = {"lib.rs": PLAIN, "Cargo.toml": '[dependencies]\nbroken = "1"\n'}
    with platform.bus.subscribe(BuildLog) as lines:
        with pytest.raises(BuildFailed) as failed:
            await platform.functions.update(SYSTEM, fn.id, FunctionUpdate(files=files))
        streamed = [lines.queue.get_nowait().line for _ in range(lines.queue.qsize())]
    place = "vendor/broken/src/lib.rs:1:20: cannot find value `undefined_x` in this scope [E0425]"
    assert failed.value.error == place, failed.value.error
    assert any(line.startswith("error[E0425]") for line in streamed)
    assert streamed == (await platform.builds.get(SYSTEM, failed.value.build_id)).log.splitlines()


@needs_cargo
async def test_changing_layers_rebuilds_and_detaching_the_crates_is_refused(platform: Platform) -> None:
    fn, first = await with_greet(platform)
    assert await greeting(platform, fn) == "hello, Nimbus!"
    second = await vendor_layer(platform, greet_crates("howdy"), name=first.layer_id)
    await platform.function_layers.set(SYSTEM, fn.id, [second])
    assert await greeting(platform, fn) == "howdy, Nimbus!"  # rebuilt with the new crates
    builds = (await platform.builds.list(SYSTEM, fn.id)).items
    assert (builds[0].status, builds[0].cached) == ("succeeded", False)

    with pytest.raises(BuildFailed, match="no matching package named `greet` found"):
        await platform.function_layers.set(SYSTEM, fn.id, [])
    attached = await platform.function_layers.list(SYSTEM, fn.id)
    assert [(a.layer_id, a.layer_version) for a in attached] == [(second.layer_id, second.layer_version)]
    assert await greeting(platform, fn) == "howdy, Nimbus!"  # still served

    await platform.function_layers.set(SYSTEM, fn.id, [first])  # back: its artifact is in the cache
    assert (await platform.builds.list(SYSTEM, fn.id)).items[0].cached
    assert await greeting(platform, fn) == "hello, Nimbus!"


@needs_cargo
async def test_a_node_without_the_artifact_builds_it_with_the_functions_layers(platform: Platform) -> None:
    fn, _ = await with_greet(platform)
    shutil.rmtree(platform.settings.data_dir / "builds" / "rust")  # as on a node that never built it
    assert await greeting(platform, fn, "again") == "hello, again!"


@needs_cargo
async def test_without_cargo_a_function_with_a_cargo_toml_is_refused(platform: Platform) -> None:
    rust = platform.builds.toolchains["rust"]
    platform.builds.toolchains["rust"] = dataclasses.replace(rust, cargo="", cargo_version=CARGO_MISSING)
    fn = await plain_function(platform)  # std only: still rustc's, and its layers build nothing
    await platform.function_layers.set(SYSTEM, fn.id, [await vendor_layer(platform, greet_crates())])
    files = {"lib.rs": PLAIN, "Cargo.toml": "[dependencies]\n"}
    with pytest.raises(Invalid, match="cargo is not installed on this node") as refused:
        await platform.functions.update(SYSTEM, fn.id, FunctionUpdate(files=files))
    assert refused.value.status == 422 and refused.value.field == "files"
    assert [b.status for b in (await platform.builds.list(SYSTEM, fn.id)).items] == ["succeeded"]
    outcome = await platform.invoker.invoke(SYSTEM, fn.id, {}, source="console")
    assert outcome.result.ok and outcome.result.result == "std only"
    info = {i.name: i for i in platform.runtime_list()}["rust"]
    assert info.available and CARGO_MISSING in info.detail


# --- the toolchain probe ----------------------------------------------------------------------------


def stand_in_rustc(root: Path, *, cargo: bool) -> str:
    """A PATH directory whose `rustc` names `root/sysroot` as its sysroot (scripts standing in for a
    toolchain, with a `cc`), with or without a cargo in the sysroot's bin/."""
    sysroot = root / "sysroot"
    (sysroot / "bin").mkdir(parents=True)
    path = root / "path"
    path.mkdir()
    scripts = {
        path / "rustc": f'#!/bin/sh\necho "{sysroot}"\n',
        path / "cc": "#!/bin/sh\nexit 0\n",
        sysroot / "bin" / "rustc": '#!/bin/sh\necho "rustc 1.99.0 (stand-in)"\n',
    }
    if cargo:
        scripts[sysroot / "bin" / "cargo"] = '#!/bin/sh\necho "cargo 1.99.0 (stand-in)"\n'
    for script, text in scripts.items():
        script.write_text(text)
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return os.fspath(path)


def test_cargo_is_found_beside_the_rustc_of_the_sysroot(tmp_path: Path) -> None:
    with_cargo = find_rust(path=stand_in_rustc(tmp_path / "a", cargo=True))
    assert with_cargo.available and with_cargo.cargo == str(tmp_path / "a/sysroot/bin/cargo")
    assert with_cargo.info().version == "rustc 1.99.0 (stand-in), cargo 1.99.0 (stand-in)"
    without = find_rust(path=stand_in_rustc(tmp_path / "b", cargo=False))
    assert without.available and not without.cargo  # std-only functions still build
    assert without.info().version == "rustc 1.99.0 (stand-in)"
    assert without.info().detail.endswith("cargo is not installed on this node (install cargo)")


# --- pure pieces: the key, the manifest, what is refused -------------------------------------------------


def toolchain(language: str = "rust") -> Toolchain:
    return Toolchain(language, True, f"{language} 1", "x", "/x", "/", "wrapper", "/cargo", "cargo 1")


def test_the_cache_key_of_a_cargo_build_follows_its_layers_in_order() -> None:
    rust, files = toolchain(), {"lib.rs": PLAIN, "Cargo.toml": "[dependencies]\n"}
    keys = {
        cache_key(rust, "handler", files),
        cache_key(rust, "handler", files, ["a"]),
        cache_key(rust, "handler", files, ["b"]),
        cache_key(rust, "handler", files, ["a", "b"]),
        cache_key(rust, "handler", files, ["b", "a"]),  # mount order decides which crate wins
        cache_key(rust, "handler", {"lib.rs": PLAIN}),
        cache_key(dataclasses.replace(rust, cargo_version="cargo 2"), "handler", files),
    }
    assert len(keys) == 7
    mount = LayerMount("l1", "crates", 1, "a")
    assert BuildService._key(rust, "handler", files, [mount]) == cache_key(rust, "handler", files, ["a"])


def test_a_std_only_build_never_sees_layers_so_its_key_leaves_them_out() -> None:
    rust, files = toolchain(), {"lib.rs": PLAIN}
    bare = cache_key(rust, "handler", files)
    assert cache_key(rust, "handler", files, ["a"]) == bare
    assert cache_key(dataclasses.replace(rust, cargo_version="cargo 2"), "handler", files) == bare
    go = toolchain("go")
    assert cache_key(go, "Handler", {"main.go": ""}, ["a"]) == cache_key(go, "Handler", {"main.go": ""})


def test_the_manifest_is_nimbuss_around_the_functions_dependencies() -> None:
    files = {
        "Cargo.toml": """
[package]
name = "mine"
build = "steal.rs"

[dependencies]
greet = "0.2"
serde = { version = "1", features = ["derive"], default_features = false }
renamed = { package = "greet-core", version = "0.1" }

[dev-dependencies]
anything = { path = "/etc" }
"""
    }
    manifest = crates.manifest(files)
    assert 'name = "handler"' in manifest and 'path = "nimbus_main.rs"' in manifest
    assert "build = false" in manifest and "mine" not in manifest and "steal" not in manifest
    assert manifest.endswith(
        '[dependencies]\ngreet = { version = "0.2" }\n'
        'renamed = { package = "greet-core", version = "0.1" }\n'
        'serde = { version = "1", features = ["derive"], default-features = false }\n'
    )
    assert "anything" not in manifest  # only [dependencies] is read


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ('[dependencies]\nx = { git = "https://example.com/x" }\n', "dependency 'x': git is not supported"),
        ('[dependencies]\nx = { path = "/etc" }\n', "dependency 'x': path is not supported"),
        ('[dependencies]\nx = { version = "1", registry = "r" }\n', "registry is not supported"),
        ("[dependencies]\nx = 1\n", "must be a version"),
        ('[dependencies]\nx = { version = "1", features = "a" }\n', "features must be a list"),
        ('[dependencies]\n"a b" = "1"\n', "is not a crate name"),
        ("dependencies = 3\n", "[dependencies] must be a table"),
        ("[dependencies\n", "Cargo.toml is not valid TOML"),
    ],
)
def test_a_cargo_toml_that_reaches_beyond_the_layers_is_refused(toml: str, says: str) -> None:
    with pytest.raises(Invalid, match=None) as refused:
        check("rust", "handler", {"lib.rs": PLAIN, "Cargo.toml": toml})
    assert refused.value.field == "files" and says in refused.value.message, refused.value.message


def test_cargos_configuration_is_nimbuss_alone() -> None:
    files = {"lib.rs": PLAIN, "Cargo.toml": "", ".cargo/config.toml": "[source]\n"}
    with pytest.raises(Invalid, match=r"\.cargo/config.toml: Nimbus writes cargo's configuration"):
        check("rust", "handler", files)
    check("rust", "handler", {"lib.rs": PLAIN, ".cargo/notes.txt": ""})  # std only: just a file


def test_vendored_crates_come_from_vendor_dirs_and_the_earlier_layer_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    for tree, names in ((first, ("b", "a")), (second, ("a", "c", "not-a-crate"))):
        for name in names:
            (tree / "vendor" / name).mkdir(parents=True)
            if name != "not-a-crate":
                (tree / "vendor" / name / "Cargo.toml").write_text("")
    (tmp_path / "3" / "a").mkdir(parents=True)  # a crate outside vendor/ is not vendored
    (tmp_path / "3" / "a" / "Cargo.toml").write_text("")
    found = crates.vendored([first, second, tmp_path / "3"])
    assert found == [("a", first / "vendor/a"), ("b", first / "vendor/b"), ("c", second / "vendor/c")]


def test_cargos_first_errors_are_read() -> None:
    missing = [
        "error: no matching package named `nope` found",
        "location searched: directory source `/build/vendor` (which is replacing registry `crates-io`)",
    ]
    assert first_error("rust", missing).startswith("no matching package named `nope` found (no layer")
    inside = [
        "   Compiling broken v1.0.0",
        "error[E0425]: cannot find value `undefined_x` in this scope",
        " --> /build/vendor/broken/src/lib.rs:1:20",
    ]
    assert (
        first_error("rust", inside)
        == "vendor/broken/src/lib.rs:1:20: cannot find value `undefined_x` in this scope [E0425]"
    )
