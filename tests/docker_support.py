"""What the Docker executor's tests share: whether an engine answers (they skip with its absence reason when
none does) and a Python image built locally from this machine's interpreter (no registry is needed; built
once per interpreter and engine, then reused)."""

from __future__ import annotations

import pytest

from engine.runtimes.docker_executor import detect_docker
from engine.runtimes.docker_image import ensure_host_python_image

ENGINE = detect_docker(refresh=True)
needs_docker = pytest.mark.skipif(not ENGINE.available, reason=ENGINE.detail or "no Docker engine")


@pytest.fixture(scope="session")
def docker_image() -> str:
    """The tag of the host-Python image on the engine."""
    import docker

    client = docker.from_env(timeout=300)
    try:
        return ensure_host_python_image(client)
    finally:
        client.close()


def containers_of(function_id: str) -> list[str]:
    """Ids of the containers (any state) the executor started for a function."""
    import docker

    client = docker.from_env(timeout=30)
    try:
        # The low-level list: the high-level one inspects each container, racing with their removal.
        found = client.api.containers(all=True, filters={"label": f"io.nimbus.function={function_id}"})
        return [c["Id"] for c in found]
    finally:
        client.close()
