"""Layers over the API, as a user scripts them: build a layer from requirements.txt (offline: the package is
a wheel this test makes), attach it, invoke a function that imports from it, detach it and see the
import fail; upload a zip; the rules of attaching; bad uploads; deletes; an npm build."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.events import LayerChanged
from engine.platform import Platform
from engine.runtimes.base import LayerMount
from tests.api.conftest import create_function

USES_PROBE = """
import nimbus_probe

def handler(event, context):
    return {"answer": nimbus_probe.ANSWER, "from": nimbus_probe.__file__.split("/.layers/")[0] != ""}
"""


def make_wheel(folder: Path, name: str = "nimbus_probe", version: str = "1.0", answer: int = 42) -> Path:
    """A pure-Python wheel (a zip with a .dist-info), so pip installs it with no index at all."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"ANSWER = {answer}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def zip_of(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return buffer.getvalue()


@pytest.fixture
def wheels() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="nimbus-wheels-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def create_layer(
    client: httpx.AsyncClient, name: str = "probe", runtimes: tuple[str, ...] = ("python",)
) -> dict:
    response = await client.post("/api/v1/layers", json={"name": name, "compatible_runtimes": list(runtimes)})
    assert response.status_code == 201, response.text
    return response.json()


async def build(client: httpx.AsyncClient, platform: Platform, layer: str, body: dict) -> dict:
    """POST a build and wait (on the bus, with a deadline) until it is ready or failed."""
    with platform.bus.subscribe(LayerChanged) as changes:
        response = await client.post(f"/api/v1/layers/{layer}/versions", json=body)
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["status"] == "building"
        await changes.wait_for(
            lambda e: e.version == accepted["version"] and e.action in ("ready", "failed"), timeout=120
        )
    return (await client.get(f"/api/v1/layers/{layer}/versions/{accepted['version']}")).json()


async def upload(client: httpx.AsyncClient, layer: str, data: bytes) -> httpx.Response:
    return await client.post(
        f"/api/v1/layers/{layer}/versions", files={"content": ("layer.zip", data, "application/zip")}
    )


async def invoke(client: httpx.AsyncClient, name: str, version: str | None = None) -> dict:
    params = {"version": version} if version else None
    response = await client.post(f"/api/v1/functions/{name}/invoke", json={}, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def attach(client: httpx.AsyncClient, function: str, layers: list[dict]) -> httpx.Response:
    return await client.put(f"/api/v1/functions/{function}/layers", json=layers)


# --- the acceptance ------------------------------------------------------------------------------------


async def test_pip_built_layer_is_importable_and_detaching_it_breaks_the_import(
    client: httpx.AsyncClient, platform: Platform, wheels: Path
) -> None:
    wheel = make_wheel(wheels)
    await create_layer(client)
    version = await build(client, platform, "probe", {"requirements": f"{wheel}\n"})
    assert version["status"] == "ready", version["build_log"]
    assert "Successfully installed nimbus-probe-1.0" in version["build_log"]
    assert version["file_count"] > 0 and version["size_bytes"] > 0 and len(version["content_hash"]) == 64

    await create_function(client, name="answers", code=USES_PROBE)
    attached = await attach(client, "answers", [{"layer_id": "probe", "layer_version": 1}])
    assert attached.status_code == 200, attached.text
    assert (
        attached.json()["layers"][0] | {"layer_name": "probe", "layer_version": 1, "order": 0}
        == (attached.json()["layers"][0])
    )
    result = await invoke(client, "answers")
    assert result["error"] is None and result["body"]["answer"] == 42

    assert (await attach(client, "answers", [])).json() == {"layers": [], "total": 0}
    failed = await invoke(client, "answers")
    assert failed["status_code"] == 500 and failed["body"] is None
    assert failed["error"]["type"] == "ModuleNotFoundError"
    assert "nimbus_probe" in failed["error"]["message"]


async def test_zip_uploaded_layer_is_mounted_from_python_or_its_top(client: httpx.AsyncClient) -> None:
    await create_layer(client, "helpers")
    first = await upload(client, "helpers", zip_of({"python/greeting.py": "WORD = 'hello'\n"}))
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "ready" and first.json()["source"] == "zip"
    second = await upload(client, "helpers", zip_of({"greeting.py": "WORD = 'top'\n"}))
    assert second.json()["version"] == 2
    code = "import greeting\n\ndef handler(event, context):\n    return greeting.WORD\n"
    await create_function(client, name="greeter", code=code)

    await attach(client, "greeter", [{"layer_id": "helpers", "layer_version": 1}])
    assert (await invoke(client, "greeter"))["body"] == "hello"
    await attach(client, "greeter", [{"layer_id": "helpers", "layer_version": 2}])
    assert (await invoke(client, "greeter"))["body"] == "top"


async def test_earlier_layers_win_on_the_module_path(client: httpx.AsyncClient) -> None:
    for name, word in (("first", "one"), ("second", "two")):
        await create_layer(client, name)
        await upload(client, name, zip_of({"python/which.py": f"WORD = {word!r}\n"}))
    await create_function(
        client, name="which", code="import which\n\ndef handler(e, c):\n    return which.WORD\n"
    )
    await attach(
        client,
        "which",
        [{"layer_id": "second", "layer_version": 1}, {"layer_id": "first", "layer_version": 1}],
    )
    assert (await invoke(client, "which"))["body"] == "two"
    listed = (await client.get("/api/v1/functions/which/layers")).json()
    assert [(x["layer_name"], x["order"]) for x in listed["layers"]] == [("second", 0), ("first", 1)]


async def test_a_failed_build_keeps_its_log_and_says_why(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await create_layer(client, "broken")
    version = await build(client, platform, "broken", {"requirements": "nimbus_probe ==== 1\n"})
    assert version["status"] == "failed"
    assert "pip exited with status" in version["error"] and "Invalid requirement" in version["error"]
    assert "Invalid requirement" in version["build_log"] and "[nimbus] build failed" in version["build_log"]
    listed = (await client.get("/api/v1/layers")).json()["layers"][0]
    assert listed["latest"]["status"] == "failed"


# --- attaching ---------------------------------------------------------------------------------------


async def test_attaching_names_what_is_wrong(client: httpx.AsyncClient, platform: Platform) -> None:
    await create_function(client, name="fn")
    await create_layer(client, "py")
    await upload(client, "py", zip_of({"python/m.py": "X = 1\n"}))
    await create_layer(client, "js", ("nodejs",))
    await upload(client, "js", zip_of({"nodejs/node_modules/m/index.js": "module.exports = 1\n"}))

    too_many = await attach(client, "fn", [{"layer_id": "py", "layer_version": 1}] * 6)
    assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "layers"
    twice = await attach(client, "fn", [{"layer_id": "py", "layer_version": 1}] * 2)
    assert twice.status_code == 422 and twice.json()["error"]["field"] == "layers[1].layer_id"
    wrong_runtime = await attach(client, "fn", [{"layer_id": "js", "layer_version": 1}])
    assert wrong_runtime.status_code == 422 and wrong_runtime.json()["error"]["field"] == "layers[0].layer_id"
    unknown = await attach(client, "fn", [{"layer_id": "nope", "layer_version": 1}])
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "layers[0].layer_id"
    no_version = await attach(client, "fn", [{"layer_id": "py", "layer_version": 9}])
    assert no_version.status_code == 404 and no_version.json()["error"]["field"] == "layers[0].layer_version"
    bad_shape = await attach(client, "fn", [{"layer_id": "py", "layer_version": 0}])
    assert bad_shape.status_code == 422 and bad_shape.json()["error"]["field"] == "layers[0].layer_version"
    not_a_list = await client.put("/api/v1/functions/fn/layers", json={"layer_id": "py"})
    assert not_a_list.status_code == 422 and not_a_list.json()["error"]["field"] == "layers"

    failed = await build(client, platform, "py", {"requirements": "bad ==== 1\n"})
    assert failed["status"] == "failed"
    not_ready = await attach(client, "fn", [{"layer_id": "py", "layer_version": 2}])
    assert not_ready.status_code == 409 and not_ready.json()["error"]["field"] == "layers[0].layer_version"
    assert (await client.get("/api/v1/functions/fn/layers")).json()["total"] == 0


async def test_attaching_is_audited_and_makes_a_revision(client: httpx.AsyncClient) -> None:
    fn = await create_function(client, name="fn")
    await create_layer(client, "py")
    await upload(client, "py", zip_of({"python/m.py": "X = 1\n"}))
    await attach(client, "fn", [{"layer_id": "py", "layer_version": 1}])
    assert (await client.get("/api/v1/functions/fn")).json()["version"] == fn["version"] + 1
    audit = (await client.get("/api/v1/audit", params={"limit": 20})).json()
    actions = [row["action"] for row in audit["logs"]]
    assert {"layer.create", "layer.publish", "function.layers"} <= set(actions)


# --- uploads -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"../evil.py": "x"}, "zip slip"),
        ({"/etc/evil.py": "x"}, "absolute path"),
        ({}, "no files"),
    ],
)
async def test_unsafe_zip_is_refused_naming_content(
    client: httpx.AsyncClient, files: dict, message: str
) -> None:
    await create_layer(client, "unsafe")
    response = await upload(client, "unsafe", zip_of(files))
    assert response.status_code == 422 and response.json()["error"]["field"] == "content"
    assert message in response.json()["error"]["message"]
    assert (await client.get("/api/v1/layers/unsafe")).json()["versions"] == []


async def test_symlink_in_zip_is_refused(client: httpx.AsyncClient) -> None:
    await create_layer(client, "links")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("python/passwd")
        link.external_attr = (0o120777) << 16  # a symlink entry, pointing at /etc/passwd
        archive.writestr(link, "/etc/passwd")
    response = await upload(client, "links", buffer.getvalue())
    assert response.status_code == 422 and "symbolic link" in response.json()["error"]["message"]


async def test_not_a_zip_and_oversized_uploads(client: httpx.AsyncClient, platform: Platform) -> None:
    await create_layer(client, "sizes")
    garbage = await upload(client, "sizes", b"this is not a zip")
    assert garbage.status_code == 422 and garbage.json()["error"]["field"] == "content"
    platform.settings.max_layer_bytes = 2048
    big = await upload(client, "sizes", zip_of({"python/big.bin": bytes(range(256)) * 64}))
    assert big.status_code == 413 and big.json()["error"]["field"] == "content"
    missing = await client.post("/api/v1/layers/sizes/versions", files={"other": ("x.zip", b"x")})
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "content"
    neither = await client.post("/api/v1/layers/sizes/versions", json={"wheel": "x"})
    assert neither.status_code == 422 and neither.json()["error"]["field"] == "wheel"
    option = await client.post("/api/v1/layers/sizes/versions", json={"requirements": "-r /etc/passwd\n"})
    assert option.status_code == 422 and option.json()["error"]["field"] == "requirements"


# --- layers themselves ---------------------------------------------------------------------------------


async def test_create_list_and_get_show_versions_size_and_users(client: httpx.AsyncClient) -> None:
    created = await create_layer(client, "shared", ("python3.11", "nodejs"))
    assert created["compatible_runtimes"] == ["nodejs", "python"] and created["latest_version"] == 0
    duplicate = await client.post(
        "/api/v1/layers", json={"name": "shared", "compatible_runtimes": ["python"]}
    )
    assert duplicate.status_code == 409 and duplicate.json()["error"]["field"] == "name"
    no_runtime = await client.post("/api/v1/layers", json={"name": "x", "compatible_runtimes": []})
    assert no_runtime.status_code == 422 and no_runtime.json()["error"]["field"] == "compatible_runtimes"
    await upload(client, "shared", zip_of({"python/s.py": "S = 1\n"}))
    fn = await create_function(client, name="user1")
    await attach(client, "user1", [{"layer_id": created["id"], "layer_version": 1}])

    listed = (await client.get("/api/v1/layers")).json()
    assert listed["total"] == 1 and listed["offset"] == 0 and listed["limit"] == 20
    row = listed["layers"][0]
    assert row["name"] == "shared" and row["latest_version"] == 1 and row["used_by"] == 1
    assert row["size_bytes"] > 0 and row["latest"]["status"] == "ready"
    assert (await client.get("/api/v1/layers", params={"runtime": "go"})).json()["total"] == 0
    assert (await client.get("/api/v1/layers", params={"runtime": "nodejs"})).json()["total"] == 1

    detail = (await client.get("/api/v1/layers/shared")).json()
    assert detail["layer"]["id"] == created["id"] and [v["version"] for v in detail["versions"]] == [1]
    assert detail["used_by"] == [{"function_id": fn["id"], "function_name": "user1", "layer_version": 1}]
    assert "content" not in detail["versions"][0]
    missing = await client.get("/api/v1/layers/nope")
    assert missing.status_code == 404


async def test_list_pages_by_offset_and_cursor(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await create_layer(client, f"layer{i}")
    first = (await client.get("/api/v1/layers", params={"limit": 2})).json()
    assert [x["name"] for x in first["layers"]] == ["layer4", "layer3"] and first["total"] == 5
    by_offset = (await client.get("/api/v1/layers", params={"limit": 2, "offset": 2})).json()
    by_cursor = (
        await client.get("/api/v1/layers", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert (
        [x["name"] for x in by_offset["layers"]]
        == [x["name"] for x in by_cursor["layers"]]
        == ["layer2", "layer1"]
    )


async def test_delete_is_refused_while_functions_use_the_layer_unless_forced(
    client: httpx.AsyncClient,
) -> None:
    await create_layer(client, "busy")
    await upload(client, "busy", zip_of({"python/b.py": "B = 1\n"}))
    await create_function(client, name="needs", code="import b\n\ndef handler(e, c):\n    return b.B\n")
    await attach(client, "needs", [{"layer_id": "busy", "layer_version": 1}])
    assert (await invoke(client, "needs"))["body"] == 1

    refused = await client.delete("/api/v1/layers/busy")
    assert refused.status_code == 409 and "needs" in refused.json()["error"]["message"]
    assert (await client.delete("/api/v1/layers/busy", params={"force": "true"})).status_code == 204
    assert (await client.get("/api/v1/layers/busy")).status_code == 404
    assert (await client.get("/api/v1/functions/needs/layers")).json()["total"] == 0
    after = await invoke(client, "needs")  # the warm worker with the old mount was retired
    assert after["error"]["type"] == "ModuleNotFoundError"


async def test_a_published_version_keeps_its_layers(client: httpx.AsyncClient) -> None:
    await create_layer(client, "kept")
    await upload(client, "kept", zip_of({"python/k.py": "K = 'kept'\n"}))
    await create_function(client, name="pub", code="import k\n\ndef handler(e, c):\n    return k.K\n")
    await attach(client, "pub", [{"layer_id": "kept", "layer_version": 1}])
    published = (await client.post("/api/v1/functions/pub/versions", json={})).json()
    assert published["layers"] == [
        {"layer_id": published["layers"][0]["layer_id"], "layer_name": "kept", "layer_version": 1}
    ]
    await attach(client, "pub", [])
    assert (await invoke(client, "pub", version="1"))["body"] == "kept"
    assert (await invoke(client, "pub"))["error"]["type"] == "ModuleNotFoundError"


# --- npm ------------------------------------------------------------------------------------------------


def npm_tarball(folder: Path) -> Path:
    """An npm package tarball (package/ inside), installable with no registry."""
    files = {
        "package/package.json": b'{"name": "nimbus-probe", "version": "1.0.0", "main": "index.js"}',
        "package/index.js": b"module.exports = { answer: 42 };\n",
    }
    path = folder / "nimbus-probe-1.0.0.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.skipif(
    shutil.which("npm") is None or shutil.which("node") is None, reason="npm and node are not installed"
)
async def test_npm_built_layer_holds_node_modules_that_node_can_require(
    client: httpx.AsyncClient, platform: Platform, wheels: Path
) -> None:
    tarball = npm_tarball(wheels)
    await create_layer(client, "jsdeps", ("nodejs",))
    manifest = {"name": "deps", "version": "1.0.0", "dependencies": {"nimbus-probe": f"file:{tarball}"}}
    version = await build(client, platform, "jsdeps", {"package_json": manifest})
    assert version["status"] == "ready", version["build_log"]
    assert "added 1 package" in version["build_log"]

    layer = (await client.get("/api/v1/layers/jsdeps")).json()["layer"]
    tree = await platform.layer_store.materialize(
        LayerMount(layer["id"], "jsdeps", 1, version["content_hash"])
    )
    modules = tree / "nodejs" / "node_modules"
    out = await asyncio.to_thread(
        subprocess.run,
        ["node", "-e", "console.log(require('nimbus-probe').answer)"],
        env={"NODE_PATH": str(modules), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout.strip() == "42", out.stderr

    # and a Node.js function mounts it on its module path
    code = "const probe = require('nimbus-probe');\nexports.handler = async () => probe.answer;\n"
    response = await client.post("/api/v1/functions", json={"name": "js", "runtime": "nodejs", "code": code})
    assert response.status_code == 201, response.text
    await attach(client, "js", [{"layer_id": "jsdeps", "layer_version": 1}])
    result = await invoke(client, "js")
    assert result["body"] == 42, result


async def test_npm_manifest_reading_local_folders_is_refused(client: httpx.AsyncClient) -> None:
    await create_layer(client, "jsbad", ("nodejs",))
    body = {"package_json": '{"dependencies": {"secrets": "file:/etc"}}'}
    response = await client.post("/api/v1/layers/jsbad/versions", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] == "package_json"
    wrong_kind = await client.post("/api/v1/layers/jsbad/versions", json={"requirements": "six\n"})
    assert wrong_kind.status_code == 422 and wrong_kind.json()["error"]["field"] == "requirements"
