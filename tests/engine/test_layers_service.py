"""The layer services over a real database (SQLite, and PostgreSQL when available): uploads are checked
before anything is stored, the store unpacks a version once and read-only, specs carry the attached layers
in order, published versions keep theirs, builds time out and are recovered."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from data.db import Database
from data.models import LayerVersion
from data.types import utcnow
from engine.bus import LocalBus
from engine.config import Settings
from engine.errors import Conflict, Invalid, TooLarge
from engine.events import LayerBuildLog, LayerChanged
from engine.principal import SYSTEM
from engine.runtimes.base import InitError, LayerMount
from engine.secrets import SecretBox, load_or_create_key
from engine.services.audit import AuditService
from engine.services.function_schemas import FunctionCreate
from engine.services.functions import FunctionService
from engine.services.layer_archive import check_zip, zip_tree
from engine.services.layer_attach import FunctionLayerService
from engine.services.layer_builds import LayerBuilder
from engine.services.layer_schemas import LayerCreate, LayerRef
from engine.services.layer_store import LayerStore
from engine.services.layers import LayerService

CODE = "def handler(event, context):\n    return 1\n"


@dataclass
class Services:
    settings: Settings
    bus: LocalBus
    layers: LayerService
    attach: FunctionLayerService
    functions: FunctionService
    store: LayerStore
    builder: LayerBuilder
    retired: list[str]


@pytest.fixture
async def services(db: Database, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(data_dir=tmp_path, database_url=db.url)
    bus = LocalBus()
    audit = AuditService(db, bus)
    retired: list[str] = []
    builder = LayerBuilder(settings, db, bus)
    functions = FunctionService(
        db,
        bus,
        audit,
        SecretBox(load_or_create_key(settings)),
        available_runtimes=lambda: {"python", "nodejs"},
        max_code_bytes=lambda: settings.max_code_bytes,
    )
    yield Services(
        settings,
        bus,
        LayerService(db, bus, audit, settings, builder, on_retire=retired.append),
        FunctionLayerService(db, bus, audit, on_retire=retired.append),
        functions,
        LayerStore(settings, db),
        builder,
        retired,
    )
    await builder.stop()


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return buffer.getvalue()


async def layer_with_version(s: Services, name: str, files: dict[str, str] | None = None) -> LayerVersion:
    await s.layers.create(SYSTEM, LayerCreate(name=name, compatible_runtimes=["python"]))
    return await s.layers.add_zip(SYSTEM, name, zip_of(files or {f"python/{name}.py": "X = 1\n"}))


# --- checking uploads --------------------------------------------------------------------------------


def test_zip_slip_entry_is_refused() -> None:
    with pytest.raises(Invalid) as caught:
        check_zip(zip_of({"python/../../etc/cron.d/x": "boom"}), max_bytes=1 << 20)
    assert caught.value.field == "content" and "zip slip" in caught.value.message


def test_zip_over_the_size_limit_is_too_large() -> None:
    data = zip_of({"python/data.txt": os.urandom(4096).hex()})
    with pytest.raises(TooLarge) as caught:
        check_zip(data, max_bytes=len(data) - 1)
    assert caught.value.field == "content"
    assert check_zip(data, max_bytes=len(data)).file_count == 1


def test_zip_that_unpacks_far_beyond_the_limit_is_refused() -> None:
    bomb = zip_of({"python/zeros.txt": "0" * 2_000_000})  # ~2 KB zipped
    with pytest.raises(TooLarge) as caught:
        check_zip(bomb, max_bytes=100_000)
    assert "unpacks to 2000000 bytes" in caught.value.message


def test_damaged_zip_is_refused() -> None:
    data = bytearray(zip_of({"python/m.py": "VALUE = 'x' * 100\n" * 50}))
    middle = data.index(b"python/m.py") + 40  # inside the first entry's compressed bytes
    data[middle : middle + 8] = b"\xff" * 8
    with pytest.raises(Invalid):
        check_zip(bytes(data), max_bytes=1 << 20)


async def test_refused_upload_stores_no_version(services: Services) -> None:
    await services.layers.create(SYSTEM, LayerCreate(name="l", compatible_runtimes=["python"]))
    with pytest.raises(Invalid):
        await services.layers.add_zip(SYSTEM, "l", zip_of({"../x.py": "x"}))
    detail = await services.layers.get(SYSTEM, "l")
    assert detail.versions == [] and detail.layer.latest_version == 0


def test_built_tree_is_zipped_without_links_leaving_it(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "nodejs" / "node_modules" / "pkg").mkdir(parents=True)
    (tree / "nodejs" / "node_modules" / "pkg" / "cli.js").write_text("#!/usr/bin/env node\n")
    (tree / "nodejs" / "node_modules" / ".bin").mkdir()
    os.symlink("../pkg/cli.js", tree / "nodejs" / "node_modules" / ".bin" / "pkg")
    os.symlink("/etc/passwd", tree / "nodejs" / "passwd")
    data, info = zip_tree(tree)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "nodejs/node_modules/.bin/pkg" in names and "nodejs/passwd" not in names
    assert info.file_count == 2 and check_zip(data, max_bytes=1 << 20).file_count == 2


# --- the store ----------------------------------------------------------------------------------------


async def test_materialize_unpacks_once_and_read_only(services: Services) -> None:
    version = await layer_with_version(
        services, "pkg", {"python/pkg/__init__.py": "X = 1\n", "bin/tool": "#!"}
    )
    mount = LayerMount(version.layer_id, "pkg", 1, version.content_hash)
    trees = await asyncio.gather(*[services.store.materialize(mount) for _ in range(8)])
    assert len(set(trees)) == 1 and services.store.unpacked == 1
    tree = trees[0]
    assert tree == services.settings.data_dir / "layers" / version.content_hash
    assert (tree / "python" / "pkg" / "__init__.py").read_text() == "X = 1\n"
    assert stat.S_IMODE((tree / "python" / "pkg" / "__init__.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((tree / "python" / "pkg").stat().st_mode) == 0o755
    assert list((tree / "python" / "pkg" / "__pycache__").glob("*.pyc")), "byte-code made once, here"
    assert [p.name for p in tree.parent.iterdir()] == [version.content_hash]  # no temp dirs left
    await services.store.materialize(mount)
    assert services.store.unpacked == 1


async def test_materialize_refuses_a_version_that_is_gone(services: Services) -> None:
    with pytest.raises(InitError) as caught:
        await services.store.materialize(LayerMount("nope", "ghost", 3, "ab" * 32))
    assert caught.value.info.type == "LayerUnavailable" and "ghost v3" in caught.value.info.message


# --- attaching and specs ----------------------------------------------------------------------------


async def test_spec_carries_layers_in_order(services: Services) -> None:
    a = await layer_with_version(services, "a")
    b = await layer_with_version(services, "b")
    fn = await services.functions.create(SYSTEM, FunctionCreate(name="f", runtime="python", code=CODE))
    assert (await services.functions.spec(fn)).layers == ()
    with services.bus.subscribe() as events:
        await services.attach.set(
            SYSTEM,
            "f",
            [LayerRef(layer_id="b", layer_version=1), LayerRef(layer_id=a.layer_id, layer_version=1)],
        )
        changed = await events.wait_for(lambda e: getattr(e, "function_id", None) == fn.id, timeout=2)
    assert changed.action == "updated" and services.retired == [fn.id]
    fn = await services.functions.get(SYSTEM, "f")
    spec = await services.functions.spec(fn)
    assert [(m.name, m.version, m.content_hash) for m in spec.layers] == [
        ("b", 1, b.content_hash),
        ("a", 1, a.content_hash),
    ]


async def test_publish_snapshots_layers_and_rollback_restores_them(services: Services) -> None:
    v1 = await layer_with_version(services, "dep")
    fn = await services.functions.create(SYSTEM, FunctionCreate(name="f", runtime="python", code=CODE))
    await services.attach.set(SYSTEM, "f", [LayerRef(layer_id="dep", layer_version=1)])
    published = await services.functions.publish(SYSTEM, "f")
    assert published.layers == [{"layer_id": v1.layer_id, "layer_name": "dep", "layer_version": 1}]

    await services.attach.set(SYSTEM, "f", [])
    fn = await services.functions.get(SYSTEM, "f")
    assert (await services.functions.spec(fn)).layers == ()
    kept = await services.functions.spec(fn, published)
    assert [(m.name, m.content_hash) for m in kept.layers] == [("dep", v1.content_hash)]

    await services.functions.rollback(SYSTEM, "f", 1)
    assert [a.layer_name for a in await services.attach.list(SYSTEM, "f")] == ["dep"]


async def test_a_published_version_whose_layer_was_deleted_fails_clearly(services: Services) -> None:
    await layer_with_version(services, "gone")
    await services.functions.create(SYSTEM, FunctionCreate(name="f", runtime="python", code=CODE))
    await services.attach.set(SYSTEM, "f", [LayerRef(layer_id="gone", layer_version=1)])
    published = await services.functions.publish(SYSTEM, "f")
    with pytest.raises(Conflict):
        await services.layers.delete(SYSTEM, "gone")
    await services.layers.delete(SYSTEM, "gone", force=True)
    fn = await services.functions.get(SYSTEM, "f")
    spec = await services.functions.spec(fn, published)
    assert [(m.name, m.content_hash) for m in spec.layers] == [("gone", "")]
    with pytest.raises(InitError) as caught:
        await services.store.materialize(spec.layers[0])
    assert "gone v1" in caught.value.info.message and "no longer exists" in caught.value.info.message


async def test_only_layers_for_the_functions_runtime_are_offered(services: Services) -> None:
    await layer_with_version(services, "py")
    await services.layers.create(SYSTEM, LayerCreate(name="js", compatible_runtimes=["nodejs"]))
    await services.layers.add_zip(SYSTEM, "js", zip_of({"nodejs/node_modules/m/index.js": "1"}))
    offered = await services.attach.choices(SYSTEM, "python")
    assert [(c.layer_name, c.versions) for c in offered] == [("py", (1,))]


# --- builds ---------------------------------------------------------------------------------------


async def test_a_build_over_its_time_limit_is_killed_and_fails(services: Services, tmp_path: Path) -> None:
    slow = tmp_path / "slow-python"
    slow.write_text(f"#!/bin/sh\necho started; echo $$ > {tmp_path}/pid; exec sleep 60\n")
    slow.chmod(0o755)
    services.settings.python_executable = str(slow)
    services.settings.layer_build_timeout_sec = 1.0
    await services.layers.create(SYSTEM, LayerCreate(name="slow", compatible_runtimes=["python"]))
    with services.bus.subscribe(LayerChanged, LayerBuildLog) as events:
        version = await services.layers.add_build(SYSTEM, "slow", "pip", "six\n")
        assert version.status == "building"
        logged = await events.wait_for(
            lambda e: isinstance(e, LayerBuildLog) and "started" in e.text, timeout=5
        )
        assert logged.version == 1
        done = await events.wait_for(
            lambda e: isinstance(e, LayerChanged) and e.action != "building", timeout=10
        )
    assert done.action == "failed"
    kept = await services.layers.version(SYSTEM, "slow", 1)
    assert kept.status == "failed" and "timed out after 1 s" in kept.error
    assert "started" in kept.build_log and "killed" in kept.build_log
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the whole process group went


async def test_builds_left_running_by_a_stopped_node_are_failed(services: Services, db: Database) -> None:
    await services.layers.create(SYSTEM, LayerCreate(name="stuck", compatible_runtimes=["python"]))
    services.builder.submit = lambda job: None  # type: ignore[method-assign]  # the node "died" at once
    await services.layers.add_build(SYSTEM, "stuck", "pip", "six\n")
    assert await services.builder.recover() == 0  # young: it may still be building somewhere
    long_ago = utcnow() - timedelta(seconds=services.settings.layer_build_timeout_sec + 60)
    async with db.transaction() as session:
        await session.execute(update(LayerVersion).values(created_at=long_ago))
    assert await services.builder.recover() == 1
    version = await services.layers.version(SYSTEM, "stuck", 1)
    assert version.status == "failed" and "interrupted" in version.error


async def test_manifests_that_reach_outside_are_refused(services: Services) -> None:
    await services.layers.create(SYSTEM, LayerCreate(name="m", compatible_runtimes=["python", "nodejs"]))
    for bad in ("-e /srv/app\n", "--index-url http://evil/simple\nsix\n", "# only a comment\n"):
        with pytest.raises(Invalid) as caught:
            await services.layers.add_build(SYSTEM, "m", "pip", bad)
        assert caught.value.field == "requirements"
    for bad in ('{"dependencies": {"x": "link:../x"}}', "[]", '{"dependencies": {}}', "{"):
        with pytest.raises(Invalid) as caught:
            await services.layers.add_build(SYSTEM, "m", "npm", bad)
        assert caught.value.field == "package_json"
    assert (await services.layers.get(SYSTEM, "m")).versions == []
