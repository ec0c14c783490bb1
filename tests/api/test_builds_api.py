"""Builds over the API: a Go function is compiled on create and update; its builds are listed newest
first with cursor pages, each readable with its compiler log; a failed update answers 422 with the
compiler's message and line, names the kept build, and leaves the old code serving. Skipped (with the
reason) where Go is missing."""

from __future__ import annotations

import httpx
import pytest

from engine.builds.toolchains import find_go

pytestmark = pytest.mark.skipif(not find_go().available, reason=f"Go: {find_go().detail}")

GREETER = """\
package main

import (
	"context"
	"encoding/json"
)

func Handler(ctx context.Context, event json.RawMessage) (any, error) {
	return map[string]string{"greeting": "%s"}, nil
}
"""


def greeter(word: str) -> str:
    return GREETER.replace("%s", word)


async def create_go(client: httpx.AsyncClient, name: str = "greeter", code: str | None = None) -> dict:
    body = {"name": name, "runtime": "go", "code": code or greeter("hello")}
    response = await client.post("/api/v1/functions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def builds_of(client: httpx.AsyncClient, ref: str, **params: object) -> dict:
    response = await client.get(f"/api/v1/functions/{ref}/builds", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_create_builds_the_function_and_lists_the_build(client: httpx.AsyncClient) -> None:
    fn = await create_go(client)
    assert fn["runtime"] == "go" and fn["handler"] == "Handler" and fn["status"] == "active"
    listed = await builds_of(client, "greeter")
    [build] = listed["builds"]
    assert listed["next_cursor"] is None
    assert build["function_id"] == fn["id"] and build["function_name"] == "greeter"
    assert (build["status"], build["cached"], build["error"]) == ("succeeded", False, None)
    assert build["duration_ms"] > 0 and build["finished_at"] and build["created_by"] == "key:bootstrap"
    assert "log" not in build  # lists leave the log out
    detail = (await client.get(f"/api/v1/builds/{build['id']}")).json()
    assert detail["log"].startswith("$ go build") and "build succeeded" in detail["log"]
    invoked = (await client.post("/api/v1/functions/greeter/invoke", json={})).json()
    assert invoked["body"] == {"greeting": "hello"}


async def test_a_failed_update_is_refused_with_the_line_and_the_old_code_serves(
    client: httpx.AsyncClient,
) -> None:
    await create_go(client)
    assert (await client.post("/api/v1/functions/greeter/invoke", json={})).json()["body"] == {
        "greeting": "hello"
    }
    broken = greeter("hi").replace("return map", "undefinedCall()\n\treturn map")
    response = await client.put("/api/v1/functions/greeter", json={"code": broken})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["field"] == "code"
    assert error["message"].startswith("build failed: main.go:9:2: undefined: undefinedCall")
    after = (await client.post("/api/v1/functions/greeter/invoke", json={})).json()
    assert after["body"] == {"greeting": "hello"} and after["cold_start"] is False
    assert "undefinedCall" not in (await client.get("/api/v1/functions/greeter")).json()["code"]
    failed = (await client.get(f"/api/v1/builds/{error['build_id']}")).json()
    assert failed["status"] == "failed" and failed["error"].startswith("main.go:9:2:")
    assert "./main.go:9:2: undefined: undefinedCall" in failed["log"]
    statuses = [b["status"] for b in (await builds_of(client, "greeter"))["builds"]]
    assert statuses == ["failed", "succeeded"]


async def test_a_good_update_is_built_and_served(client: httpx.AsyncClient) -> None:
    await create_go(client)
    await client.post("/api/v1/functions/greeter/invoke", json={})
    response = await client.put("/api/v1/functions/greeter", json={"code": greeter("bonjour")})
    assert response.status_code == 200, response.text
    invoked = (await client.post("/api/v1/functions/greeter/invoke", json={})).json()
    assert invoked["body"] == {"greeting": "bonjour"} and invoked["cold_start"] is True
    assert len((await builds_of(client, "greeter"))["builds"]) == 2


async def test_builds_page_newest_first_with_a_cursor(client: httpx.AsyncClient) -> None:
    await create_go(client)
    for word in ("bonjour", "hello", "bonjour"):  # the repeats come from the cache
        response = await client.put("/api/v1/functions/greeter", json={"code": greeter(word)})
        assert response.status_code == 200, response.text
    first = await builds_of(client, "greeter", limit=3)
    assert [b["cached"] for b in first["builds"]] == [True, True, False]
    assert first["next_cursor"]
    rest = await builds_of(client, "greeter", limit=3, cursor=first["next_cursor"])
    assert [b["cached"] for b in rest["builds"]] == [False] and rest["next_cursor"] is None
    ids = [b["id"] for b in first["builds"] + rest["builds"]]
    assert ids == sorted(ids, reverse=True)


async def test_a_function_that_can_never_build_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    files = {"main.go": greeter("x"), "go.mod": "module evil\n"}
    response = await client.post("/api/v1/functions", json={"name": "g", "runtime": "go", "files": files})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "files" and "go.mod" in response.json()["error"]["message"]
    bad_handler = {"name": "g", "runtime": "go", "code": greeter("x"), "handler": "main.init"}
    response = await client.post("/api/v1/functions", json=bad_handler)
    assert response.status_code == 422 and response.json()["error"]["field"] == "handler"


async def test_unknown_builds_and_functions_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/builds/nope")).status_code == 404
    response = await client.get("/api/v1/functions/nope/builds")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    await create_go(client)
    bad = await client.get("/api/v1/functions/greeter/builds", params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"


async def test_builds_are_audited(client: httpx.AsyncClient) -> None:
    fn = await create_go(client)
    response = await client.get("/api/v1/audit", params={"action": "function.build"})
    assert response.status_code == 200, response.text
    [event] = response.json()["logs"]
    assert event["resource_id"] == fn["id"] and event["details"]["status"] == "succeeded"
    actions = [a["value"] for a in (await client.get("/api/v1/audit/actions")).json()["actions"]]
    assert "function.build" in actions
