"""The Docker executor's availability. A function may ask for `executor: docker` (its code run by the same
worker protocol inside a container of its image); that needs a Docker engine this node can reach
(DOCKER_HOST or the local socket). What is known here is whether one answers, and why not: without one the
option is refused with that reason and shown as unavailable on the System page.

Running functions in containers is not built yet (no engine on the machines this project is developed and
tested on, so it could not be verified): with an engine present the executor still reports itself
unavailable, saying so, rather than accepting functions it cannot run."""

from __future__ import annotations

import time

from engine.runtimes.base import RuntimeInfo

CACHE_SEC = 30.0
_cached: tuple[float, RuntimeInfo] | None = None


def detect_docker(*, refresh: bool = False) -> RuntimeInfo:
    """Ask the Docker engine for its version (2 s timeout); cached for CACHE_SEC."""
    global _cached
    now = time.monotonic()
    if _cached is not None and not refresh and now - _cached[0] < CACHE_SEC:
        return _cached[1]
    info = _probe()
    _cached = (now, info)
    return info


def _probe() -> RuntimeInfo:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:  # pragma: no cover - docker is a locked dependency
        return RuntimeInfo("docker", False, "", "the docker Python package is not installed")
    try:
        client = docker.from_env(timeout=2)
        try:
            version = client.version()
        finally:
            client.close()
    except DockerException as exc:
        reason = str(exc)
        if "FileNotFoundError" in reason or "No such file" in reason:
            reason = "nothing listens on the Docker socket (set DOCKER_HOST to use a remote engine)"
        return RuntimeInfo("docker", False, "", f"Docker engine unreachable: {reason}")
    except Exception as exc:  # a half-configured DOCKER_HOST: bad URL, TLS, refused connection
        return RuntimeInfo("docker", False, "", f"Docker engine unreachable: {exc}")
    engine = f"docker {version.get('Version', '?')}"
    return RuntimeInfo(
        "docker",
        False,
        engine,
        "a Docker engine answers, but running functions in containers is not built yet",
    )
