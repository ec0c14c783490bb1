"""The Docker executor: a function with `executor: docker` and an `image` runs in a container of that image,
speaking the same worker protocol as the process runtimes (python_worker/shim.py), so the app side is the
process runtimes' own PythonWorker (python_proxy.py).

How a container is wired:
- the function's code directory (written once per pool key by the process host, layers linked inside) is
  bind-mounted read-only at /var/task; the shim and its entry point (docker_entry.py) read-only at
  /opt/nimbus; the container runs `python3 -I /opt/nimbus/entry.py` as PID 1;
- the protocol runs over a unix socket: Nimbus listens in a fresh directory owned by the container's uid
  (mode 0700, bind-mounted at /run/nimbus) and checks the peer's uid on accept. The shim's hello frame
  hands over its output memfd and a pidfd of itself, as a forked worker does: output is read from the
  memfd (even after a kill), and SIGKILL through the pidfd ends PID 1 and with it the whole container;
- limits: memory = the function's memory (no swap), CPUs in proportion to it, a pids limit, nofile, no core
  dumps, a read-only root with a tmpfs /tmp, no network (`network_mode="none"`) unless the function is
  granted the network (then the engine's default network), a non-root uid per function, no-new-privileges,
  every capability dropped, a private IPC namespace;
- one waiter thread per container (its own engine connection) blocks in `wait`, reads whether the kernel
  OOM-killed it, removes it and resolves the worker's exit status.

The engine must run on this machine (the mounts are host paths). Nimbus never pulls: a function names an
image the engine already has (docker_image.py builds one from this machine's Python); a missing image is
refused on save. Only Python functions run here (the image needs Python >= 3.10 as `python3`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from engine.errors import Unavailable
from engine.runtimes.base import ErrorInfo, FunctionSpec, InitError, Isolation, RuntimeInfo
from engine.runtimes.process_host import (
    LAYERS_DIR,
    NOFILE,
    TMP_MB,
    UID_SPAN,
    ProcessHost,
    init_frame,
    link_layers,
)
from engine.runtimes.python_proxy import PythonWorker
from engine.sandbox import ExitStatus, functions_dir

CACHE_SEC = 30.0
RUNTIMES = ("python",)  # what the executor runs (the shim is Python's)
START_TIMEOUT_SEC = 30.0  # create + start a container and hear from its worker, on a loaded machine
EXIT_WAIT_SEC = 10.0  # for the waiter to report how a dead container ended
PIDS_LIMIT = 128
MB_PER_CPU = 512  # CPUs in proportion to memory: 256 MB gets half a CPU ...
MIN_CPUS = 0.5  # ... and never less (a slower Python start-up is all a smaller share buys)
API_TIMEOUT_SEC = 60
ENTRY = Path(__file__).resolve().parent / "docker_entry.py"
SHIM = Path(__file__).resolve().parent / "python_worker" / "shim.py"
CODE_ROOT = "/var/task"
LABEL_FUNCTION = "io.nimbus.function"
LABEL_OWNER = "io.nimbus.owner"
_PEERCRED = struct.Struct("3i")

_cached: tuple[float, RuntimeInfo] | None = None


# -- availability ---------------------------------------------------------------------------------------


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
            where = client.api.base_url
        finally:
            client.close()
    except DockerException as exc:
        reason = str(exc)
        if "FileNotFoundError" in reason or "No such file" in reason:
            reason = "nothing listens on the Docker socket (set DOCKER_HOST to use a remote engine)"
        return RuntimeInfo("docker", False, "", f"Docker engine unreachable: {reason}")
    except Exception as exc:  # a half-configured DOCKER_HOST: bad URL, TLS, refused connection
        return RuntimeInfo("docker", False, "", f"Docker engine unreachable: {exc}")
    where = "the local socket" if where.startswith("http+docker://local") else where
    return RuntimeInfo(
        "docker",
        True,
        f"docker {version.get('Version', '?')}",
        f"Docker engine at {where} (API {version.get('ApiVersion', '?')}); python functions, local images",
    )


def image_problem(image: str) -> str | None:
    """Why `image` cannot be used on this node's engine (None when it can). Blocking (one engine call)."""
    import docker
    from docker.errors import ImageNotFound

    try:
        client = docker.from_env(timeout=5)
        try:
            client.images.get(image)
        finally:
            client.close()
    except ImageNotFound:
        return (
            f"image {image!r} not found on this engine (Nimbus does not pull images: "
            "build or load it on the Docker host first)"
        )
    except Exception as exc:  # DockerException, or requests' own on a refused connection
        return f"cannot check image {image!r}: {exc}"
    return None


# -- the runtime ----------------------------------------------------------------------------------------


class DockerRuntime:
    """Runtime protocol for functions with `executor: docker`. Code directories, layers and uids are the
    process host's (so a function keeps one uid whichever executor runs it)."""

    name = "docker"

    def __init__(self, host: ProcessHost) -> None:
        self.host = host
        self.settings = host.settings
        self.start_timeout_sec = START_TIMEOUT_SEC
        self.owner = hashlib.sha256(str(self.settings.data_dir).encode()).hexdigest()[:16]
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._containers: dict[str, Container] = {}
        self._seccomp = False

    async def start(self) -> None:
        """Nothing to do: the engine is reached on first use, so a node without one starts as usual."""

    async def stop(self) -> None:
        """Kill and remove every container this runtime started; wait (bounded) for their waiters."""
        containers = list(self._containers.values())
        if containers:
            await asyncio.to_thread(_stop_all, containers)
        if self._client is not None:
            self._client.close()
            self._client = None

    def isolation(self) -> Isolation:
        return Isolation(
            level="strong",
            namespaces=("pid", "net", "mount", "ipc", "uts"),
            uid_drop=True,
            rlimits=True,
            seccomp=self._seccomp,
            private_root=True,
        )

    def info(self) -> RuntimeInfo:
        return detect_docker()

    def uid_for(self, function_id: str) -> int:
        """The process host's uid for the function when it hands them out, else the same derivation.
        Without root (Nimbus in the docker group) the socket can only be handed to Nimbus's own uid."""
        if os.geteuid() != 0:
            return os.getuid()
        uid = self.host.uid_for(function_id)
        if uid is None:
            digest = int.from_bytes(hashlib.sha256(function_id.encode()).digest()[:8], "big")
            uid = self.settings.sandbox_uid_base + 1 + digest % UID_SPAN
        return uid

    async def spawn(self, spec: FunctionSpec) -> DockerWorker:
        started = time.perf_counter()
        if spec.runtime not in RUNTIMES:
            raise InitError(
                ErrorInfo(
                    "RuntimeUnavailable", f"the Docker executor runs python functions, not {spec.runtime}"
                )
            )
        if not spec.image:
            raise InitError(ErrorInfo("ImageNotFound", "the Docker executor needs an image"))
        client = await self._engine()
        trees = await self.host.layer_trees(spec)
        functions_dir(self.settings)
        code_dir = await self.host.ensure_code(spec, (lambda d: link_layers(d, trees)) if trees else None)
        paths = [
            f"{{code}}/{LAYERS_DIR}/{i}" + ("/python" if (tree / "python").is_dir() else "")
            for i, tree in enumerate(trees)
        ]
        uid = self.uid_for(spec.function_id)
        sock_dir, listener = await asyncio.to_thread(_listen, uid)
        container = Container(asyncio.get_running_loop(), spec.memory_mb, self._containers)
        try:
            config = self._config(spec, uid, code_dir, sock_dir)
            await asyncio.to_thread(container.create_and_start, client, config)
            sock = await self._accept(listener, uid, container)
        except BaseException:
            container.kill()
            raise
        finally:
            listener.close()
            shutil.rmtree(sock_dir, ignore_errors=True)
        worker = DockerWorker(spec, sock, container, output_cap=self.host.output_cap)
        try:
            await worker.start(init_frame(spec, paths), started, self.host.init_timeout_sec)
        except BaseException:
            await worker.close()
            raise
        return worker

    async def _engine(self) -> Any:
        async with self._client_lock:
            if self._client is None:
                import docker

                try:
                    client = await asyncio.to_thread(docker.from_env, timeout=API_TIMEOUT_SEC)
                    info = await asyncio.to_thread(client.info)
                except Exception as exc:  # DockerException, or requests' own on a refused connection
                    raise Unavailable(f"Docker engine unreachable: {exc}") from exc
                self._seccomp = any("seccomp" in str(o) for o in info.get("SecurityOptions") or ())
                self._client = client
            return self._client

    def _config(self, spec: FunctionSpec, uid: int, code_dir: Path, sock_dir: str) -> dict[str, Any]:
        from docker.types import Ulimit

        cpus = min(float(os.cpu_count() or 1), max(MIN_CPUS, spec.memory_mb / MB_PER_CPU))
        slug = re.sub(r"[^a-zA-Z0-9_.-]+", "-", spec.name)[:40].strip("-.") or "fn"
        return {
            "image": spec.image,
            "command": ["python3", "-I", "/opt/nimbus/entry.py"],
            "name": f"nimbus-{slug}-{secrets.token_hex(4)}",
            "user": f"{uid}:{uid}",
            "working_dir": CODE_ROOT,
            "environment": {},  # nothing of Nimbus's: the function's env arrives in the init frame
            "labels": {LABEL_FUNCTION: spec.function_id, LABEL_OWNER: self.owner},
            "volumes": {
                str(code_dir): {"bind": CODE_ROOT, "mode": "ro"},
                str(SHIM): {"bind": "/opt/nimbus/shim.py", "mode": "ro"},
                str(ENTRY): {"bind": "/opt/nimbus/entry.py", "mode": "ro"},
                sock_dir: {"bind": "/run/nimbus", "mode": "rw"},
            },
            # Granted: the engine's default network (its bridge); otherwise a loopback-only namespace.
            "network_mode": None if spec.network else "none",
            "mem_limit": f"{spec.memory_mb}m",
            "memswap_limit": f"{spec.memory_mb}m",
            "nano_cpus": int(cpus * 1e9),
            "pids_limit": PIDS_LIMIT,
            "ulimits": [Ulimit(name="nofile", soft=NOFILE, hard=NOFILE), Ulimit(name="core", soft=0, hard=0)],
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMP_MB}m,mode=1777"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "ipc_mode": "private",
            "detach": True,
        }

    async def _accept(self, listener: socket.socket, uid: int, container: Container) -> socket.socket:
        """The worker's connection: the first peer with the container's uid, before the deadline or the
        container's end (whichever comes first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_sec
        while True:
            accept = asyncio.ensure_future(loop.sock_accept(listener))
            remaining = max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait(
                {accept, container.exit}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if accept not in done:
                accept.cancel()
                with contextlib.suppress(BaseException):
                    await accept
                if container.exit.done():
                    status = container.exit.result()
                    tail = container.logs_tail.strip()
                    raise InitError(
                        ErrorInfo(
                            "ContainerExited",
                            f"the container ended before its worker started ({status.describe()})"
                            + (f": {tail}" if tail else ""),
                        )
                    )
                raise Unavailable(
                    f"the container's worker did not connect within {self.start_timeout_sec:g}s"
                )
            conn, _ = accept.result()
            _, peer_uid, _ = _PEERCRED.unpack(
                conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
            if peer_uid == uid:
                return conn
            conn.close()  # not the container's worker


class DockerWorker(PythonWorker):
    """A warm container: the process runtimes' worker protocol, with the container's end as exit status."""

    def __init__(
        self, spec: FunctionSpec, sock: socket.socket, container: Container, *, output_cap: int
    ) -> None:
        super().__init__(
            spec,
            0,
            sock,
            container.exit,
            output_cap=output_cap,
            zygote_kill=lambda _spawn_id: container.kill(),
        )
        self.container = container

    async def wait_exit(self, timeout: float = EXIT_WAIT_SEC) -> ExitStatus | None:
        return await super().wait_exit(timeout)


class Container:
    """One container's engine-side life: created and started (from a thread), then watched by a waiter
    thread that resolves `exit` with how it ended and removes it."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, memory_mb: int, registry: dict[str, Container]
    ) -> None:
        self.id = ""
        self.exit: asyncio.Future[ExitStatus] = loop.create_future()
        self.logs_tail = ""
        self.oom_killed = False
        self._loop = loop
        self._memory_mb = memory_mb
        self._registry = registry
        self._waiter: threading.Thread | None = None
        self._killed = threading.Event()

    def create_and_start(self, client: Any, config: dict[str, Any]) -> None:
        """Blocking. A missing image or one that cannot run the worker is the function's InitError."""
        from docker.errors import APIError, ImageNotFound

        image = config["image"]
        try:
            created = client.containers.create(**config)
        except ImageNotFound:
            raise InitError(
                ErrorInfo("ImageNotFound", f"image {image!r} not found on this engine (Nimbus does not pull)")
            ) from None
        except APIError as exc:
            raise Unavailable(f"Docker engine refused the container: {exc.explanation or exc}") from exc
        self.id = created.id
        self._registry[self.id] = self
        try:
            created.start()
        except APIError as exc:
            self._registry.pop(self.id, None)
            with contextlib.suppress(APIError):
                created.remove(force=True)
            raise InitError(
                ErrorInfo("ImageUnusable", f"image {image!r} cannot run the worker: {exc.explanation or exc}")
            ) from None
        self._waiter = threading.Thread(target=self._wait, name=f"docker-wait-{self.id[:12]}", daemon=True)
        self._waiter.start()

    def kill(self) -> None:
        """Kill (from any thread, without blocking): the waiter then removes the container."""
        if not self.id or self._killed.is_set() or self.exit.done():
            return
        self._killed.set()
        threading.Thread(target=self.kill_now, name="docker-kill", daemon=True).start()

    def kill_now(self) -> None:
        with contextlib.suppress(Exception), _api() as api:  # gone already, or the engine with it
            api.kill(self.id)

    def join(self, timeout: float) -> None:
        if self._waiter is not None:
            self._waiter.join(timeout)

    def _wait(self) -> None:
        from docker.errors import DockerException

        status = ExitStatus(lost="the Docker engine did not say how the container ended")
        try:
            # Its own connection: a wait holds one for the container's whole life.
            with _api() as api:
                api.wait(self.id, timeout=None)
                state = api.inspect_container(self.id).get("State") or {}
                self.oom_killed = bool(state.get("OOMKilled"))
                code = int(state.get("ExitCode") or 0)
                # The kernel OOM-killed it at its memory limit: that was its peak.
                peak_kb = self._memory_mb * 1024 if self.oom_killed else 0
                if code > 128:
                    status = ExitStatus(signal=code - 128, maxrss_kb=peak_kb)
                else:
                    status = ExitStatus(code=code, maxrss_kb=peak_kb)
                with contextlib.suppress(DockerException):
                    raw = api.logs(self.id, stdout=True, stderr=True, tail=20)
                    self.logs_tail = raw.decode("utf-8", "replace")[-2000:]
                api.remove_container(self.id, force=True)
        except Exception as exc:  # the engine went away (DockerException or a connection error)
            status = ExitStatus(lost=f"lost track of the container: {exc}")
        finally:
            self._registry.pop(self.id, None)
            with contextlib.suppress(RuntimeError):  # the loop is gone (the platform stopped)
                self._loop.call_soon_threadsafe(self._resolve, status)

    def _resolve(self, status: ExitStatus) -> None:
        if not self.exit.done():
            self.exit.set_result(status)


def _api() -> Any:
    """A connection of its own to the engine (docker.APIClient; a context manager that closes it)."""
    import docker

    return docker.from_env(timeout=API_TIMEOUT_SEC).api


def _listen(uid: int) -> tuple[str, socket.socket]:
    """A listening socket in a fresh directory only `uid` (and root) may enter: the container's end of it
    is that directory, bind-mounted. Short path (/tmp): unix socket paths are limited to 107 bytes."""
    sock_dir = tempfile.mkdtemp(prefix="nimbus-docker-")
    path = os.path.join(sock_dir, "sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        if os.geteuid() == 0:
            os.chown(path, uid, uid)
            os.chown(sock_dir, uid, uid)
        os.chmod(sock_dir, 0o700)
        listener.listen(4)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
        raise
    return sock_dir, listener


def _stop_all(containers: list[Container]) -> None:
    for container in containers:
        if not container.exit.done():
            container.kill_now()
    deadline = time.monotonic() + EXIT_WAIT_SEC
    for container in containers:
        container.join(max(0.0, deadline - time.monotonic()))
