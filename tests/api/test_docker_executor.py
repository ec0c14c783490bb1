"""The Docker executor's availability: without an engine the option is refused with the reason, and the
System API lists it as unavailable with that reason. (No test here pretends an engine exists.)"""

from __future__ import annotations

import httpx
import pytest

from engine.runtimes.docker_executor import detect_docker

pytestmark = pytest.mark.skipif(
    detect_docker(refresh=True).version != "", reason="a Docker engine answers on this machine"
)


async def test_docker_executor_is_refused_with_the_reason(client: httpx.AsyncClient) -> None:
    body = {"name": "boxed", "runtime": "python", "code": "def handler(e, c):\n    return 1\n"}
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
