"""WASM functions over the API: created from WAT text (`code`) or from a compiled module (`binary`, base64),
invoked like any function; a binary or WAT that cannot run is refused at save with a 422 naming the
field, and nothing is saved."""

from __future__ import annotations

import base64
import textwrap
from importlib.metadata import version

import httpx
import wasmtime

from engine.services.templates_wasm import TEMPLATES

HELLO_WAT = TEMPLATES[0].files["module.wat"]
TRAPS = '(module (func $boom (unreachable)) (func $main (export "_start") (call $boom)))'
SPINS = '(module (func $main (export "_start") (loop $forever (br $forever))))'


def b64(wat: str) -> str:
    return base64.b64encode(wasmtime.wat2wasm(wat)).decode()


async def create(client: httpx.AsyncClient, name: str, **fields: object) -> httpx.Response:
    return await client.post("/api/v1/functions", json={"name": name, "runtime": "wasm", **fields})


async def test_a_function_from_wat_is_created_and_invoked(client: httpx.AsyncClient) -> None:
    response = await create(client, "hello-wat", code=HELLO_WAT)
    assert response.status_code == 201, response.text
    fn = response.json()
    assert (fn["runtime"], fn["handler"], list(fn["files"])) == ("wasm", "_start", ["module.wat"])
    invoked = await client.post("/api/v1/functions/hello-wat/invoke", json={"name": "API"})
    body = invoked.json()
    assert invoked.status_code == 200 and body["status_code"] == 200, body
    assert body["body"] == {"message": "Hello, API!", "function": "hello-wat"}
    assert body["cold_start"] is True and body["init_ms"] > 0
    assert body["logs"] == "saying hello to API\n"
    again = (await client.post("/api/v1/functions/hello-wat/invoke", json={})).json()
    assert again["cold_start"] is False and again["body"]["message"] == "Hello, World!"


async def test_a_function_from_a_base64_binary_is_created_and_invoked(client: httpx.AsyncClient) -> None:
    wrapped = "\n".join(textwrap.wrap(b64(HELLO_WAT), 76))  # as `base64` prints it
    response = await create(client, "hello-bin", binary=wrapped)
    assert response.status_code == 201, response.text
    assert response.json()["files"] == {"module.wasm": b64(HELLO_WAT)}
    body = (await client.post("/api/v1/functions/hello-bin/invoke", json={"name": "bytes"})).json()
    assert body["status_code"] == 200 and body["body"]["message"] == "Hello, bytes!", body


async def test_a_bad_binary_is_a_422_naming_binary_and_saves_nothing(client: httpx.AsyncClient) -> None:
    cases = {
        "not base64 at all!": "not valid base64",
        base64.b64encode(b"MZ\x90\x00 an executable").decode(): "not a WebAssembly module",
        base64.b64encode(b"\0asm\x01\0\0\0\x01\x05").decode(): "module does not compile",
        b64("(module)"): "does not export a `_start` function",
        b64('(module (import "env" "f" (func)) (func (export "_start")))'): "imports func env.f",
    }
    for binary, words in cases.items():
        response = await create(client, "bad", binary=binary)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == "binary" and words in error["message"], error
    assert (await client.get("/api/v1/functions/bad")).status_code == 404


async def test_wat_that_does_not_parse_is_a_422_naming_code_and_line(client: httpx.AsyncClient) -> None:
    response = await create(client, "bad-wat", code='(module\n  (func (export "_start")\n    (i32.nope)))')
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "code" and error["message"].startswith("module.wat line 3: ")


async def test_binary_is_only_for_wasm_and_not_with_code(client: httpx.AsyncClient) -> None:
    python = await client.post(
        "/api/v1/functions", json={"name": "py", "runtime": "python", "binary": b64(HELLO_WAT)}
    )
    assert python.status_code == 422 and python.json()["error"]["field"] == "binary"
    both = await create(client, "both", code=HELLO_WAT, binary=b64(HELLO_WAT))
    assert both.status_code == 422 and "not both" in both.json()["error"]["message"]


async def test_the_last_form_sent_replaces_the_other(client: httpx.AsyncClient) -> None:
    assert (await create(client, "swap", binary=b64(HELLO_WAT))).status_code == 201
    to_wat = await client.put("/api/v1/functions/swap", json={"code": TRAPS})
    assert to_wat.status_code == 200 and list(to_wat.json()["files"]) == ["module.wat"]
    trapped = (await client.post("/api/v1/functions/swap/invoke", json={})).json()
    assert trapped["error"]["type"] == "Unreachable", trapped
    to_binary = await client.put("/api/v1/functions/swap", json={"binary": b64(HELLO_WAT)})
    assert list(to_binary.json()["files"]) == ["module.wasm"]
    greeted = (await client.post("/api/v1/functions/swap/invoke", json={"name": "back"})).json()
    assert greeted["body"]["message"] == "Hello, back!"
    refused = await client.put("/api/v1/functions/swap", json={"binary": b64("(module)")})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "binary"


async def test_a_trap_is_a_500_with_its_name_and_stack(client: httpx.AsyncClient) -> None:
    assert (await create(client, "boom", code=TRAPS)).status_code == 201
    body = (await client.post("/api/v1/functions/boom/invoke", json={})).json()
    assert body["status_code"] == 500 and body["body"] is None
    assert body["error"]["type"] == "Unreachable"
    assert body["error"]["stack"].splitlines()[0].endswith("boom")


async def test_a_spinning_module_is_a_504_timeout(client: httpx.AsyncClient) -> None:
    assert (await create(client, "spin", code=SPINS, timeout_sec=1)).status_code == 201
    body = (await client.post("/api/v1/functions/spin/invoke", json={})).json()
    assert body["status_code"] == 504 and body["error"]["type"] == "Timeout"


async def test_the_system_lists_the_wasm_runtime_with_its_engine(client: httpx.AsyncClient) -> None:
    runtimes = {r["name"]: r for r in (await client.get("/api/v1/system")).json()["runtimes"]}
    wasm = runtimes["wasm"]
    assert wasm["available"] is True and wasm["detail"] == "in-process"
    assert wasm["version"] == f"wasmtime {version('wasmtime')}"
