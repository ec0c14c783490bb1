"""Functions over the REST API: the original API's paths, fields and status codes."""

from __future__ import annotations

import httpx

from tests.api.conftest import HELLO, create_function


async def test_create_returns_201_with_the_function_active(client: httpx.AsyncClient) -> None:
    fn = await create_function(client, tags=["demo"], memory_mb=128, env_vars={"GREETING": "hi"})
    assert fn["name"] == "hello" and fn["runtime"] == "python" and fn["status"] == "active"
    assert fn["handler"] == "main.handler" and fn["memory_mb"] == 128 and fn["timeout_sec"] == 30
    assert (
        fn["files"] == {"main.py": HELLO} and fn["tags"] == ["demo"] and fn["env_vars"] == {"GREETING": "hi"}
    )


async def test_original_runtime_ids_are_accepted_as_aliases(client: httpx.AsyncClient) -> None:
    fn = await create_function(
        client,
        runtime="python3.11",
        handler="handler.handle",
        code="def handle(event, context):\n    return 1\n",
    )
    assert fn["runtime"] == "python" and fn["files"] == {
        "handler.py": "def handle(event, context):\n    return 1\n"
    }


async def test_a_function_is_addressable_by_id_and_by_name(client: httpx.AsyncClient) -> None:
    fn = await create_function(client)
    by_id = (await client.get(f"/api/v1/functions/{fn['id']}")).json()
    by_name = (await client.get("/api/v1/functions/hello")).json()
    assert by_id == by_name


async def test_duplicate_name_is_409(client: httpx.AsyncClient) -> None:
    await create_function(client)
    response = await client.post(
        "/api/v1/functions", json={"name": "hello", "runtime": "python", "code": HELLO}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


async def test_list_paginates_with_an_opaque_cursor(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await create_function(client, name=f"fn-{i}")
    first = (await client.get("/api/v1/functions", params={"limit": 2})).json()
    second = (
        await client.get("/api/v1/functions", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    third = (
        await client.get("/api/v1/functions", params={"limit": 2, "cursor": second["next_cursor"]})
    ).json()
    names = [f["name"] for page in (first, second, third) for f in page["functions"]]
    assert names == ["fn-4", "fn-3", "fn-2", "fn-1", "fn-0"]
    assert third["next_cursor"] is None


async def test_list_filters_by_name_substring(client: httpx.AsyncClient) -> None:
    await create_function(client, name="orders-api")
    await create_function(client, name="billing")
    page = (await client.get("/api/v1/functions", params={"name": "ORDER"})).json()
    assert [f["name"] for f in page["functions"]] == ["orders-api"]


async def test_update_changes_the_code_that_runs(client: httpx.AsyncClient) -> None:
    await create_function(client)
    assert (await client.post("/api/v1/functions/hello/invoke", json={})).json()["body"] == {"hello": "world"}
    response = await client.put(
        "/api/v1/functions/hello", json={"code": "def handler(event, context):\n    return 'v2'\n"}
    )
    assert response.status_code == 200 and response.json()["version"] == 2
    assert (await client.post("/api/v1/functions/hello/invoke", json={})).json()["body"] == "v2"


async def test_delete_is_204_then_404(client: httpx.AsyncClient) -> None:
    await create_function(client)
    assert (await client.delete("/api/v1/functions/hello")).status_code == 204
    response = await client.get("/api/v1/functions/hello")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "function not found: hello"}}


async def test_offline_function_refuses_invocations_until_online(client: httpx.AsyncClient) -> None:
    await create_function(client)
    assert (await client.post("/api/v1/functions/hello/offline")).json()["status"] == "offline"
    refused = await client.post("/api/v1/functions/hello/invoke", json={})
    assert refused.status_code == 400 and "not active" in refused.json()["error"]["message"]
    assert (await client.post("/api/v1/functions/hello/online")).json()["status"] == "active"
    assert (await client.post("/api/v1/functions/hello/invoke", json={})).status_code == 200


async def test_published_versions_are_immutable_and_invocable(client: httpx.AsyncClient) -> None:
    await create_function(client)
    published = await client.post("/api/v1/functions/hello/versions", json={"description": "first"})
    assert published.status_code == 201 and published.json()["version"] == 1
    await client.put(
        "/api/v1/functions/hello", json={"code": "def handler(event, context):\n    return 'v2'\n"}
    )
    old = await client.post("/api/v1/functions/hello/invoke", params={"version": "1"}, json={"name": "v1"})
    assert old.json()["body"] == {"hello": "v1"} and old.json()["version"] == "1"
    versions = (await client.get("/api/v1/functions/hello/versions")).json()
    assert [v["version"] for v in versions["versions"]] == [1]
    rolled = await client.post("/api/v1/functions/hello/versions/1/rollback")
    assert rolled.status_code == 200
    latest = await client.post("/api/v1/functions/hello/invoke", json={})
    assert latest.json()["body"] == {"hello": "world"}


async def test_every_mutation_is_audited(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    await create_function(client)
    await client.put("/api/v1/functions/hello", json={"memory_mb": 512})
    await client.delete("/api/v1/functions/hello")
    from engine.principal import SYSTEM

    page = await platform.audit.list(SYSTEM, resource_type="function")
    actions = [e.action for e in page.items]
    assert actions == ["function.delete", "function.update", "function.create"]
    update = page.items[1]
    assert update.before["memory_mb"] == 256 and update.after["memory_mb"] == 512
    assert update.actor == "key:bootstrap"


async def test_functions_list_sorted_by_name_and_by_update_across_pages(client: httpx.AsyncClient) -> None:
    for name in ("delta", "alpha", "charlie", "bravo"):
        await create_function(client, name)
    await client.put("/api/v1/functions/alpha", json={"description": "touched"})

    async def names(sort: str) -> list[str]:
        seen, cursor = [], None
        while True:
            params = {"sort": sort, "limit": 3, **({"cursor": cursor} if cursor else {})}
            body = (await client.get("/api/v1/functions", params=params)).json()
            seen += [f["name"] for f in body["functions"]]
            cursor = body["next_cursor"]
            if not cursor:
                return seen

    assert await names("name") == ["alpha", "bravo", "charlie", "delta"]
    assert (await names("updated"))[0] == "alpha"
    assert await names("newest") == ["bravo", "charlie", "alpha", "delta"]
    bad = await client.get("/api/v1/functions", params={"sort": "size"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "sort"
