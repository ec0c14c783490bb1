"""The Docker executor through the API. Without an engine the option is refused with the reason and the
System API lists it as unavailable with that reason; with one, a function saved with `executor: docker` and
a local image runs there (the template function, cold then warm), an image the engine lacks or a runtime
the executor does not run is refused on save, and the System API lists the engine's version. Each half
skips, with its reason, where the other applies. (No test here pretends an engine exists.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from engine.services.templates import PYTHON
from tests.docker_support import ENGINE, containers_of, docker_image, needs_docker

__all__ = ["docker_image"]

no_engine = pytest.mark.skipif(ENGINE.available, reason=f"a Docker engine answers here ({ENGINE.version})")
BODY = {"name": "boxed", "runtime": "python", "code": "def handler(e, c):\n    return 1\n"}


@no_engine
async def test_docker_executor_is_refused_with_the_reason(client: httpx.AsyncClient) -> None:
    body = BODY
    no_image = await client.post("/api/v1/functions", json={**body, "executor": "docker"})
    assert no_image.status_code == 422 and no_image.json()["error"]["field"] == "image"
    refused = await client.post(
        "/api/v1/functions", json={**body, "executor": "docker", "image": "python:3.11-slim"}
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["field"] == "executor"
    assert error["message"].startswith("the Docker executor is unavailable on this node: Docker engine")
    bad = await client.post("/api/v1/functions", json={**body, "executor": "kubernetes"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "executor"
    assert (await client.get("/api/v1/functions/boxed")).status_code == 404  # nothing stored

    created = await client.post("/api/v1/functions", json=body)
    assert created.status_code == 201 and created.json()["executor"] == "process"
    moved = await client.put("/api/v1/functions/boxed", json={"executor": "docker", "image": "alpine"})
    assert moved.status_code == 422 and moved.json()["error"]["field"] == "executor"

    system = (await client.get("/api/v1/system")).json()
    docker = next(r for r in system["runtimes"] if r["name"] == "docker")
    assert docker["available"] is False and docker["detail"].startswith("Docker engine unreachable")


@needs_docker
async def test_saving_checks_the_image_and_the_runtime(client: httpx.AsyncClient, docker_image: str) -> None:
    no_image = await client.post("/api/v1/functions", json={**BODY, "executor": "docker"})
    assert no_image.status_code == 422 and no_image.json()["error"]["field"] == "image"
    missing = await client.post(
        "/api/v1/functions", json={**BODY, "executor": "docker", "image": "nimbus-no-such-image:0"}
    )
    assert missing.status_code == 422, missing.text
    assert missing.json()["error"]["field"] == "image"
    assert "not found on this engine" in missing.json()["error"]["message"]
    node = {"name": "boxed-js", "runtime": "nodejs", "code": "exports.handler = async () => 1;\n"}
    wrong = await client.post("/api/v1/functions", json={**node, "executor": "docker", "image": docker_image})
    if wrong.status_code != 422 or wrong.json()["error"]["field"] != "runtime":  # node may be absent here
        assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "executor", wrong.text
        assert "runs python functions" in wrong.json()["error"]["message"]
    assert (await client.get("/api/v1/functions/boxed")).status_code == 404  # nothing stored

    created = await client.post("/api/v1/functions", json=BODY)
    assert created.status_code == 201
    moved = await client.put("/api/v1/functions/boxed", json={"executor": "docker", "image": "nimbus-nope:1"})
    assert moved.status_code == 422 and moved.json()["error"]["field"] == "image"
    assert (await client.get("/api/v1/functions/boxed")).json()["executor"] == "process"

    system = (await client.get("/api/v1/system")).json()
    docker = next(r for r in system["runtimes"] if r["name"] == "docker")
    assert docker["available"] is True and docker["version"].startswith("docker ")


@needs_docker
async def test_the_template_function_runs_in_a_container(
    client: httpx.AsyncClient, docker_image: str
) -> None:
    template = next(t for t in PYTHON if t.id == "python-hello-world")
    body = {
        "name": "docker-hello",
        "runtime": "python",
        "handler": template.handler,
        "files": dict(template.files),
        "executor": "docker",
        "image": docker_image,
    }
    created = await client.post("/api/v1/functions", json=body)
    assert created.status_code == 201, created.text
    fn = created.json()
    assert (fn["executor"], fn["image"]) == ("docker", docker_image)

    cold = await client.post("/api/v1/functions/docker-hello/invoke", json=template.sample_event)
    assert cold.status_code == 200, cold.text
    assert cold.json()["cold_start"] is True and cold.json()["error"] in (None, "")
    warm = await client.post("/api/v1/functions/docker-hello/invoke", json=template.sample_event)
    assert warm.status_code == 200 and warm.json()["cold_start"] is False
    for response in (cold, warm):
        body = response.json()["body"]
        assert (body["message"], body["function"]) == ("Hello, Nimbus!", "docker-hello")
        assert body["request_id"] == response.json()["request_id"]
    assert len(containers_of(fn["id"])) == 1  # the warm container, reused

    record = await recorded(client, cold.json()["request_id"])
    assert record["cold_start"] is True and record["init_ms"] > 0
    assert "saying hello to Nimbus" in record["logs"]


async def recorded(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    """The invocation's record once the write-behind batcher has stored it (polled, generous deadline)."""
    deadline = time.monotonic() + 30
    while True:
        response = await client.get(f"/api/v1/invocations/{request_id}")
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()
        await asyncio.sleep(0.1)
