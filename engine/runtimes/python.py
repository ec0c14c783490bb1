"""The Python runtime: the user's module is imported in a worker forked by the pre-imported zygote
(python_worker/shim.py). Everything else - the zygote, the code directory, uids, limits - is the process
host's (engine/runtimes/process_host.py), shared with the other process runtimes."""

from __future__ import annotations

import sys
import time

from engine.runtimes.base import FunctionSpec, RuntimeInfo
from engine.runtimes.process_host import LAYERS_DIR, ProcessHost, link_layers
from engine.runtimes.python_proxy import PythonWorker

__all__ = ["PythonRuntime", "PythonWorker"]


class PythonRuntime(ProcessHost):
    """Runtime protocol for `python` functions; also the process host the other runtimes share."""

    name = "python"

    async def spawn(self, spec: FunctionSpec) -> PythonWorker:
        started = time.perf_counter()
        trees = await self.layer_trees(spec)
        code_dir = await self.ensure_code(spec, (lambda d: link_layers(d, trees)) if trees else None)
        # A layer's packages sit in python/ (the AWS layout; pip-built layers use it), else at its top.
        paths = [
            f"{{code}}/{LAYERS_DIR}/{i}" + ("/python" if (tree / "python").is_dir() else "")
            for i, tree in enumerate(trees)
        ]
        return await self.spawn_worker(spec, code_dir, started=started, paths=paths)

    def info(self) -> RuntimeInfo:
        interpreter = self.settings.python_executable or sys.executable
        return RuntimeInfo("python", True, f"python {sys.version.split()[0]}", interpreter)
