"""The sandbox host of every process runtime: one pre-imported Python zygote
(engine/runtimes/zygote_client.py, python_worker/) forks each sandboxed worker. Owns: starting (and
restarting) the zygote, writing a function's code directory once per pool key, giving each function its
own uid, and the limits a worker gets.

A Python worker runs the user's module in the forked interpreter (engine/runtimes/python.py). Node.js, Go
and Rust workers are forked the same way and then exec their program inside the same sandbox
(python_worker/shim.py, `exec` frame): one sandbox, one protocol, one proxy (python_proxy.py)."""

from __future__ import annotations

import asyncio
import compileall
import hashlib
import math
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.errors import Unavailable
from engine.runtimes.base import ErrorInfo, FunctionSpec, InitError, Isolation, LayerMount
from engine.runtimes.python_proxy import PythonWorker
from engine.runtimes.zygote_client import ZygoteClient, ZygoteDied
from engine.sandbox import functions_dir, isolation_from_report, sandbox_root, zygote_python

__all__ = ["ProcessHost", "PythonWorker"]

INIT_TIMEOUT_SEC = 10.0  # import of the user's module (Lambda's init phase limit)
NOFILE = 256
FSIZE_MB = 64  # largest file a function may write (also bounds its captured output)
TMP_MB = 64  # its private /tmp
UID_SPAN = 1 << 20  # function uids: sandbox_uid_base + 1 ... + 2^20
PREFORK = 2  # blank workers the zygote keeps forked and half-sandboxed, ready for any function


def init_frame(spec: FunctionSpec, paths: list[str]) -> dict[str, Any]:
    """The protocol's first frame to a new worker (in a sandboxed process or a container): what to load
    and the limits it runs under; `paths` are the module paths of the function's layers."""
    return {
        "t": "init",
        "handler": spec.handler,
        "env": dict(spec.env),
        "function_name": spec.name,
        "function_version": spec.version,
        "memory_mb": spec.memory_mb,
        "timeout_sec": spec.timeout_sec,
        "paths": paths,
    }


class ProcessHost:
    """Owns the zygote shared by the process runtimes; `spawn_worker` starts one sandboxed worker."""

    def __init__(self, settings: Settings, *, zygote_user: int | None = None) -> None:
        self.settings = settings
        self.output_cap = settings.output_cap_bytes
        self.init_timeout_sec = INIT_TIMEOUT_SEC
        self.prefork = PREFORK
        self.functions_dir = settings.data_dir / "functions"
        self._zygote_user = zygote_user  # run the zygote as another user (exercises the unprivileged path)
        self._zygote: ZygoteClient | None = None
        self._isolation = Isolation(level="degraded", rlimits=False, warnings=("python runtime not started",))
        self._lock = asyncio.Lock()
        self._code_locks: dict[str, asyncio.Lock] = {}
        self._uids: dict[str, int] = {}
        # Where attached layers come from: unpacks a layer version once and returns its tree (set by the
        # platform to the layer store; None = layers are not available, and a spec with layers fails).
        self.layer_source: Callable[[LayerMount], Awaitable[Path]] | None = None

    async def start(self) -> None:
        async with self._lock:
            await self._ensure_zygote()

    async def stop(self) -> None:
        async with self._lock:
            if self._zygote is not None:
                await self._zygote.stop()
                self._zygote = None

    def isolation(self) -> Isolation:
        return self._isolation

    @property
    def zygote_pid(self) -> int:
        return self._zygote.pid if self._zygote is not None and self._zygote.alive else 0

    def zygote_kill(self, spawn_id: int) -> None:
        if self._zygote is not None:
            self._zygote.kill(spawn_id)

    def uid_for(self, function_id: str) -> int | None:
        """One uid per function, so workers of different functions can never signal or trace each other
        nor share RLIMIT_NPROC. Derived from the function id (base + 1 + hash mod 2^20; the base itself is
        the probe's) rather than counted, so it is stable across restarts and two Nimbus instances on one
        machine do not hand out the same uids; a collision within this runtime takes the next free one.
        None when the zygote cannot drop uids."""
        if not self._isolation.uid_drop:
            return None
        uid = self._uids.get(function_id)
        if uid is None:
            digest = int.from_bytes(hashlib.sha256(function_id.encode()).digest()[:8], "big")
            taken = set(self._uids.values())
            offset = digest % UID_SPAN
            while (uid := self.settings.sandbox_uid_base + 1 + offset) in taken:
                offset = (offset + 1) % UID_SPAN
            self._uids[function_id] = uid
        return uid

    async def spawn_worker(
        self,
        spec: FunctionSpec,
        code_dir: Path,
        *,
        started: float,
        exec_frame: dict[str, Any] | None = None,
        address_space_mb: int | None = None,
        init_timeout_sec: float | None = None,
        paths: list[str] | None = None,
    ) -> PythonWorker:
        """Fork a sandboxed worker on `code_dir` (a directory under functions/), send `exec_frame` first
        when the runtime runs its own program, then the init frame; returns when the worker is ready.
        `address_space_mb` overrides the RLIMIT_AS (default: the function's memory)."""
        init_timeout = init_timeout_sec or self.init_timeout_sec
        async with self._lock:
            zygote = await self._ensure_zygote()
        cfg = {
            "code": code_dir.name,
            "uid": self.uid_for(spec.function_id),
            "memory_mb": address_space_mb or spec.memory_mb,
            "cpu_sec": math.ceil(init_timeout) + 1,
            "nofile": NOFILE,
            "fsize_mb": FSIZE_MB,
            "network": spec.network,
        }
        try:
            spawn_id, sock, exit_fut = await zygote.spawn(cfg)
        except ZygoteDied as exc:
            raise Unavailable(f"sandbox unavailable: {exc}") from exc
        worker = PythonWorker(
            spec, spawn_id, sock, exit_fut, output_cap=self.output_cap, zygote_kill=self.zygote_kill
        )
        try:
            await worker.start(init_frame(spec, paths or []), started, init_timeout, pre=exec_frame)
        except BaseException:
            await worker.close()
            raise
        return worker

    async def layer_trees(self, spec: FunctionSpec) -> list[Path]:
        """The unpacked trees of the spec's layers, in mount order."""
        if not spec.layers:
            return []
        if self.layer_source is None:
            raise InitError(ErrorInfo("LayerUnavailable", "layers are not available on this node"))
        trees = []
        for mount in spec.layers:
            try:
                trees.append(await self.layer_source(mount))
            except InitError:
                raise
            except Exception as exc:
                raise InitError(
                    ErrorInfo("LayerUnavailable", f"layer {mount.name} v{mount.version}: {exc}")
                ) from exc
        return trees

    async def _ensure_zygote(self) -> ZygoteClient:
        if self._zygote is not None and self._zygote.alive:
            return self._zygote
        if self._zygote is not None:
            await self._zygote.stop()  # reap the dead one before replacing it
        root = sandbox_root(self.settings)
        if self._zygote_user is not None:  # its mount point must be reachable by the zygote's own user
            for path in (root.parent, root):
                os.chown(path, self._zygote_user, -1)
        zygote = ZygoteClient(
            zygote_python(self.settings),
            root,
            functions_dir(self.settings),
            self.settings.sandbox_uid_base,
            tmp_mb=TMP_MB,
            prefork=self.prefork,
            user=self._zygote_user,
        )
        try:
            report = await zygote.start()
        except (ZygoteDied, OSError) as exc:
            raise Unavailable(f"sandbox unavailable: {exc}") from exc
        self._isolation = isolation_from_report(report)
        self._zygote = zygote
        return zygote

    async def ensure_code(
        self, spec: FunctionSpec, prepare: Callable[[Path], None] | None = None, *, key: str = ""
    ) -> Path:
        """Write the function's files under functions/<pool_key><key>/ once, atomically (build aside,
        rename). `prepare(dir)` adds what the runtime needs beside them (a shim, a built binary, layers);
        it runs in a thread before the directory is made read-only for the worker."""
        target = self.functions_dir / (spec.pool_key + key)
        if target.is_dir():
            return target
        lock = self._code_locks.setdefault(target.name, asyncio.Lock())
        async with lock:
            if not target.is_dir():
                await asyncio.to_thread(
                    write_code, self.functions_dir, target, dict(spec.files), prepare, spec.runtime
                )
        self._code_locks.pop(target.name, None)
        return target


def write_code(
    parent: Path,
    target: Path,
    files: dict[str, str],
    prepare: Callable[[Path], None] | None = None,
    runtime: str = "python",
) -> None:
    tmp = parent / f".tmp-{target.name}-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o755)
    try:
        for rel, text in files.items():
            path = (tmp / rel).resolve()
            if not str(path).startswith(str(tmp.resolve()) + os.sep) or "\0" in rel:
                raise InitError(
                    ErrorInfo("InvalidCode", f"file path {rel!r} leaves the function's directory")
                )
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o644)
        if prepare is not None:
            prepare(tmp)
        if runtime == "python":
            # Byte-code made here once: the worker's code dir is read-only, so it could never cache its
            # own (the import system rewrites co_filename to where the source is found, e.g. /var/task).
            compileall.compile_dir(str(tmp), quiet=2, workers=1)
        publish_tree(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish_tree(tmp: Path, target: Path) -> None:
    """Make a tree built aside readable by any uid (dirs 0755, files 0644, executables 0755) and rename it
    into place, so the target is either whole or absent. A concurrent builder that won the rename is fine:
    the caller removes its own copy."""
    for root, dirs, names in os.walk(tmp):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in names:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)
    try:
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():
            raise


class HostedRuntime:
    """A runtime whose workers the shared process host forks (Node.js, Go, Rust): starting, stopping and
    the isolation are the host's."""

    host: ProcessHost

    async def start(self) -> None:
        await self.host.start()

    async def stop(self) -> None:
        await self.host.stop()

    def isolation(self) -> Isolation:
        return self.host.isolation()


LAYERS_DIR = ".layers"


def link_layers(code_dir: Path, trees: list[Path]) -> list[Path]:
    """Put each layer tree under <code>/.layers/<i>/ (hard links when on one file system, else copies), so
    it is inside the read-only code mount the worker sees; returns the new directories in order."""
    out = []
    for i, tree in enumerate(trees):
        target = code_dir / LAYERS_DIR / str(i)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        try:
            shutil.copytree(tree, target, symlinks=True, copy_function=os.link)
        except (OSError, shutil.Error):
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(tree, target, symlinks=True)
        out.append(target)
    return out
