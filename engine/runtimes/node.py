"""The Node.js runtime: a sandboxed worker forked by the shared zygote execs the machine's `node` on
node_worker/shim.cjs, which loads the handler once and serves invocations (the protocol of
python_worker/shim.py, spoken on fd 3). The sandbox, the code directory, uids and the app-side proxy are the
process host's (engine/runtimes/process_host.py).

Memory: V8's heap is capped by --max-old-space-size = the function's memory, which is what a function can
actually fill; RLIMIT_AS gets NODE_RESERVE_MB more, because V8 reserves address space it never touches
(a 128 MB code range, thread stacks): under an address-space limit of 512 MB node cannot start at all."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from pathlib import Path

from engine.errors import Unavailable
from engine.runtimes.base import FunctionSpec, RuntimeInfo
from engine.runtimes.process_host import LAYERS_DIR, HostedRuntime, ProcessHost, link_layers
from engine.runtimes.python_proxy import PythonWorker

SHIM = Path(__file__).resolve().parent / "node_worker" / "shim.cjs"
NODE_RESERVE_MB = 1024
# Node's helper threads count against the per-uid process limit of the sandbox: keep them few.
NODE_ENV = {"UV_THREADPOOL_SIZE": "2", "NODE_ENV": "production"}
ALLOWED_PREFIXES = ("/usr/", "/bin/", "/lib")  # what the sandbox's private root shows of the host


def find_node() -> str | None:
    """The `node` a sandboxed worker can exec: it must resolve into /usr (or /bin, /lib), the host
    directories the private root mirrors (a node under /root/.nvm would not exist inside)."""
    found = os.environ.get("NIMBUS_NODE") or shutil.which("node")
    if not found:
        return None
    real = os.path.realpath(found)
    return real if real.startswith(ALLOWED_PREFIXES) else None


@functools.cache
def node_version(node: str) -> str:
    """`node --version` (once per binary and process: every Platform asks)."""
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


class NodeRuntime(HostedRuntime):
    """Runtime protocol for `nodejs` functions, on the shared process host."""

    name = "nodejs"

    def __init__(self, host: ProcessHost, node: str | None = None) -> None:
        self.host = host
        self.node = node or find_node()

    @property
    def version(self) -> str:
        return node_version(self.node) if self.node else ""

    def info(self) -> RuntimeInfo:
        if not self.node:
            found = shutil.which("node")
            why = (
                f"node at {os.path.realpath(found)} is outside /usr, so a sandboxed worker cannot run it;"
                " set NIMBUS_NODE to a node under /usr"
                if found
                else "no `node` on PATH (install Node.js 18+)"
            )
            return RuntimeInfo("nodejs", False, "", why)
        return RuntimeInfo("nodejs", True, f"node {self.version}", self.node)

    async def spawn(self, spec: FunctionSpec) -> PythonWorker:
        started = time.perf_counter()
        if not self.node:
            raise Unavailable(self.info().detail)
        trees = await self.host.layer_trees(spec)

        def prepare(code_dir: Path) -> None:
            (code_dir / ".nimbus").mkdir(mode=0o755)
            shutil.copyfile(SHIM, code_dir / ".nimbus" / "shim.cjs")
            link_layers(code_dir, trees)

        code_dir = await self.host.ensure_code(spec, prepare, key="-node")
        # Layers: <layer>/nodejs/node_modules (the AWS layout; npm-built layers use it), else the layer root.
        node_path = [
            f"{{code}}/{LAYERS_DIR}/{i}" + ("/nodejs/node_modules" if (tree / "nodejs").is_dir() else "")
            for i, tree in enumerate(trees)
        ]
        env = dict(NODE_ENV)
        env.update(spec.env)
        if node_path:
            env["NODE_PATH"] = ":".join(node_path)
        exec_frame = {
            "t": "exec",
            "argv": [
                self.node,
                f"--max-old-space-size={spec.memory_mb}",
                "--v8-pool-size=2",
                "{code}/.nimbus/shim.cjs",
            ],
            "env": env,
        }
        return await self.host.spawn_worker(
            spec,
            code_dir,
            started=started,
            exec_frame=exec_frame,
            address_space_mb=spec.memory_mb + NODE_RESERVE_MB,
        )
