"""One compile: the function's sources laid out in a fresh directory, the toolchain run in the build jail
(launcher.py) with a deadline, rlimits and a clean environment, its output streamed line by line, the
first error picked out, and the program put in the artifact cache. A Rust function with a Cargo.toml is
built by `cargo build --offline` instead of rustc, with its layers' vendored crates mounted read-only
into the workspace (engine/builds/crates.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.builds import crates
from engine.builds.cache import ArtifactCache
from engine.builds.diagnostics import first_error
from engine.builds.runner import Ran, run_in_jail
from engine.builds.sources import write_sources
from engine.builds.toolchains import BUILD, CARGO_MISSING, SOURCES, Toolchain
from engine.config import Settings
from engine.errors import Invalid
from engine.sandbox import zygote_python

BUILD_TIMEOUT_SEC = 120.0
BUILD_MEMORY_MB = 4096  # address space per compiler process: Go's own runtime reserves ~0.7 GB at start
BUILD_FSIZE_MB = 512
BUILD_NOFILE = 1024
BUILD_NPROC = 512
LOG_CAP_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Compiled:
    ok: bool
    log: str
    error: str  # the first compiler error ("main.go:7:2: undefined: x"), or why the build failed
    seconds: float


class LogLines:
    """A build's output, capped (with a marker); each kept line also goes to `on_line` as it comes."""

    def __init__(self, cap: int, on_line: Callable[[str], None]) -> None:
        self.cap = cap
        self.on_line = on_line
        self.lines: list[str] = []
        self.size = 0
        self.cut = False

    def add(self, line: str, *, always: bool = False) -> None:
        size = len(line.encode()) + 1
        if not always and (self.cut or self.size + size > self.cap):
            if not self.cut:
                self.cut = True
                self._keep(f"... [build log truncated at {self.cap} bytes]")
            return
        self._keep(line)
        self.size += size

    def _keep(self, line: str) -> None:
        self.lines.append(line)
        self.on_line(line)

    def text(self) -> str:
        return "\n".join(self.lines)


class Compiler:
    def __init__(self, settings: Settings, cache: ArtifactCache, *, timeout_sec: float = BUILD_TIMEOUT_SEC):
        self.cache = cache
        self.timeout_sec = timeout_sec
        self.python = zygote_python(settings)
        # Compilers run as the sandbox's base uid (never a function's: those are base + 1 + ...).
        self.uid: int | None = settings.sandbox_uid_base if os.geteuid() == 0 else None
        builds = settings.data_dir / "builds"
        self.work_root = builds / "tmp"
        self.cache_dir = builds / "cache"
        self.jail_root = settings.data_dir / "run" / "build-root"

    async def compile(
        self,
        toolchain: Toolchain,
        handler: str,
        files: Mapping[str, str],
        key: str,
        on_line: Callable[[str], None],
        trees: Sequence[Path] = (),
    ) -> Compiled:
        """Build `files` into the cache under `key`; `trees` are the unpacked layers (in mount order)
        whose vendored crates a cargo build may use. Raises Invalid for files that can never build."""
        log = LogLines(LOG_CAP_BYTES, on_line)
        cargo = toolchain.language == "rust" and crates.uses_cargo(files)
        if cargo and not toolchain.cargo:
            raise Invalid("files", f"{CARGO_MISSING}: a Rust function with a Cargo.toml cannot build here")
        vendored = crates.vendored(trees) if cargo else []
        work = await asyncio.to_thread(self._prepare, toolchain, handler, dict(files), vendored)
        try:
            argv = toolchain.cargo_command() if cargo else toolchain.command()
            shown = [os.path.basename(argv[0]), *argv[1:]]
            log.add("$ " + " ".join(shown).replace(BUILD, "/build"), always=True)
            if cargo:
                names = ", ".join(name for name, _ in vendored) or "none"
                log.add(f"vendored crates from the function's layers: {names}", always=True)
            config = self._config(toolchain, work, cargo, vendored)
            ran = await run_in_jail(self.python, config, log.add, timeout=self.timeout_sec)
            built = work / ("target/release/handler" if cargo else "out/handler")
            ok = ran.returncode == 0 and built.is_file()
            if ok:
                await asyncio.to_thread(self.cache.store, built, toolchain.language, key)
                used = f"{toolchain.version}, {toolchain.cargo_version}" if cargo else toolchain.version
                log.add(f"build succeeded in {ran.seconds:.2f} s ({used})", always=True)
                error = ""
            else:
                error = self._why(toolchain, ran, log.lines)
                log.add(f"build failed: {error}", always=True)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        return Compiled(ok, log.text(), error, ran.seconds)

    def _why(self, toolchain: Toolchain, ran: Ran, lines: list[str]) -> str:
        if ran.timed_out:
            return f"build timed out after {self.timeout_sec:g} s"
        found = first_error(toolchain.language, lines[1:])
        if found:
            return found
        code = ran.returncode or 0
        if code > 128:
            return f"the compiler was killed by signal {code - 128} (a memory or CPU limit of the build?)"
        last = next((line for line in reversed(lines[1:]) if line.strip()), "")
        return last or f"the compiler exited with status {code}"

    def _prepare(
        self, toolchain: Toolchain, handler: str, files: dict[str, str], vendored: list[tuple[str, Path]]
    ) -> Path:
        for path in (self.work_root, self.cache_dir, self.jail_root):
            path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work_root, 0o700)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=self.work_root))
        try:
            os.chmod(work, 0o755)
            (work / "src").mkdir(mode=0o755)
            (work / "out").mkdir(mode=0o755)
            write_sources(toolchain, handler, files, work / "src")
            if toolchain.language == "rust" and crates.uses_cargo(files):
                crates.write_workspace(work, files, (name for name, _ in vendored))
            if self.uid is not None:  # the build uid owns its workspace and the compiler cache
                os.chown(self.cache_dir, self.uid, self.uid)
                for root, dirs, names in os.walk(work):
                    for name in (root, *(os.path.join(root, n) for n in (*dirs, *names))):
                        os.chown(name, self.uid, self.uid)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return work

    def _config(
        self, toolchain: Toolchain, work: Path, cargo: bool, vendored: list[tuple[str, Path]]
    ) -> dict[str, Any]:
        return {
            "root": str(self.jail_root),
            "build": str(work),
            "cache": str(self.cache_dir),
            "toolchain": toolchain.home,
            "uid": self.uid,
            "argv": toolchain.cargo_command() if cargo else toolchain.command(),
            "env": toolchain.cargo_environment() if cargo else toolchain.environment(),
            "cwd": SOURCES,
            # read-only into the workspace: layer directories stay the layer store's
            "binds": [[str(path), f"{crates.VENDOR}/{name}"] for name, path in vendored],
            "limits": {
                "memory_mb": BUILD_MEMORY_MB,
                "cpu_sec": int(self.timeout_sec) + 1,
                "fsize_mb": BUILD_FSIZE_MB,
                "nofile": BUILD_NOFILE,
                "nproc": BUILD_NPROC,
            },
        }
