"""The Go and Rust runtimes: a function's program, compiled by engine/builds (on deploy, or here on demand
when this node's cache lacks it), runs as a warm sandboxed worker. A worker forked by the shared zygote
execs the program with its sandbox kept (python_worker/shim.py, `exec` frame), and the program speaks the
worker protocol itself on fd 3 (the wrappers in engine/builds/wrappers/). The sandbox, code directory,
uids and the app-side proxy are the process host's (engine/runtimes/process_host.py).

Memory: a Rust worker's address space is the function's memory. Go's runtime reserves about 0.7 GB of
address space as it starts (page summaries and the heap arena map: a go1.19 amd64 hello program has a
VmSize of 695 MB and does not start under an RLIMIT_AS of 690 MB), so a Go worker gets GO_RESERVE_MB
more, and GOMEMLIMIT = the function's memory keeps its collector working to stay under it. A heap that
still outgrows the limit fails an allocation ("fatal error: out of memory"; Rust's allocator says "out of
memory" too), and the worker's death is reported as MemoryLimitExceeded.

Layers are linked read-only under the code directory as for the other runtimes, and their directories
are in NIMBUS_LAYERS (colon-separated) for the program to read at run time. A Rust function with a
Cargo.toml also compiles the crates its layers vendor: `builds.artifact(spec)` keys and builds the
program with spec.layers (engine/builds/crates.py)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from engine.builds.service import BuildService
from engine.runtimes.base import FunctionSpec, RuntimeInfo
from engine.runtimes.process_host import LAYERS_DIR, HostedRuntime, ProcessHost, link_layers
from engine.runtimes.python_proxy import PythonWorker

GO_RESERVE_MB = 768
PROGRAM = ".nimbus/handler"


class NativeRuntime(HostedRuntime):
    """Runtime protocol for `go` or `rust` functions, on the shared process host."""

    def __init__(self, host: ProcessHost, builds: BuildService, language: str) -> None:
        if language not in ("go", "rust"):
            raise ValueError(f"no native runtime for {language!r}")
        self.name = language
        self.host = host
        self.builds = builds

    def info(self) -> RuntimeInfo:
        toolchain = self.builds.toolchains.get(self.name)
        if toolchain is None:
            return RuntimeInfo(self.name, False, "", f"no toolchain for {self.name}")
        return toolchain.info()

    async def spawn(self, spec: FunctionSpec) -> PythonWorker:
        started = time.perf_counter()
        artifact = await self.builds.artifact(spec)
        trees = await self.host.layer_trees(spec)

        def prepare(code_dir: Path) -> None:
            (code_dir / ".nimbus").mkdir(mode=0o755)
            shutil.copyfile(artifact, code_dir / PROGRAM)
            os.chmod(code_dir / PROGRAM, 0o755)
            link_layers(code_dir, trees)

        # The artifact's key (toolchain, wrapper, code) names the directory: a rebuilt program gets a new one.
        code_dir = await self.host.ensure_code(spec, prepare, key=f"-{self.name}-{artifact.parent.name[:16]}")
        env = dict(spec.env)
        if trees:
            env["NIMBUS_LAYERS"] = ":".join(f"{{code}}/{LAYERS_DIR}/{i}" for i in range(len(trees)))
        address_space = None
        if self.name == "go":
            env["GOMEMLIMIT"] = f"{spec.memory_mb}MiB"
            address_space = spec.memory_mb + GO_RESERVE_MB
        exec_frame = {"t": "exec", "argv": [f"{{code}}/{PROGRAM}"], "env": env}
        return await self.host.spawn_worker(
            spec, code_dir, started=started, exec_frame=exec_frame, address_space_mb=address_space
        )
