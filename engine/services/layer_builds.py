"""Building a layer version in the background: `pip install --target <tree>/python -r requirements.txt`
with the interpreter the workers run, or `npm install` into <tree>/nodejs. The output streams live as
LayerBuildLog events and is kept (also on failure); a build over the time limit is killed with its
whole process group. A finished tree is zipped into the version (content, hash, size, file count), so any
node can unpack it; the version becomes ready or failed and LayerChanged says so after the commit.

Builds run pip and npm with the rights of the Nimbus process. Unless `layer_source_builds` is set, they
install only what needs no package code to run: wheels (pip --only-binary) and npm packages without
install scripts (--ignore-scripts)."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from data.db import Database
from data.models import LayerVersion
from data.types import utcnow
from engine.bus import LocalBus
from engine.config import Settings
from engine.events import LayerBuildLog, LayerChanged
from engine.services.layer_archive import UNPACKED_FACTOR, zip_tree

log = logging.getLogger("nimbus.layers")

MAX_LOG_CHARS = 256 * 1024  # the build log keeps its last 256 KiB (errors come last)
FLUSH_SEC = 2.0  # a running build's log reaches the database this often (other nodes read it there)
CONCURRENT_BUILDS = 2
RECOVER_GRACE_SEC = 30.0


@dataclass(frozen=True, slots=True)
class BuildJob:
    version_id: str
    layer_id: str
    layer_name: str
    version: int
    source: str  # pip | npm
    manifest: str


class BuildFailed(Exception):
    """The build did not produce a usable tree; the message is the user-facing reason."""


def npm_path() -> str | None:
    return shutil.which("npm")


class LayerBuilder:
    def __init__(self, settings: Settings, db: Database, bus: LocalBus) -> None:
        self._settings = settings
        self._db = db
        self._bus = bus
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._logs: dict[str, str] = {}  # version id -> output so far, while it builds here
        self._slots = asyncio.Semaphore(CONCURRENT_BUILDS)
        self.work_dir = settings.data_dir / "layer-builds"
        self._recheck: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Fail what an earlier run left building, now and once more when those builds' time is up; and
        remove its half-built trees (no build runs here yet)."""
        await asyncio.to_thread(shutil.rmtree, self.work_dir, True)
        await self.recover()
        delay = self._settings.layer_build_timeout_sec + RECOVER_GRACE_SEC + 1
        self._recheck = asyncio.get_running_loop().create_task(self._recover_later(delay))

    async def _recover_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(Exception):
            await self.recover()

    def submit(self, job: BuildJob) -> None:
        """Run `job` in the background (the version row is committed as `building`)."""
        self._logs[job.version_id] = ""
        task = asyncio.get_running_loop().create_task(self._run(job), name=f"layer build {job.version_id}")
        self._tasks[job.version_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.version_id, None))

    def live_log(self, version_id: str) -> str | None:
        """The output of a build running on this node, or None."""
        return self._logs.get(version_id)

    async def wait(self, version_id: str) -> None:
        """Until the build of `version_id` on this node has finished (returns at once if none runs)."""
        task = self._tasks.get(version_id)
        if task is not None:
            await asyncio.shield(task)

    async def stop(self) -> None:
        """Cancel running builds; their versions are marked failed."""
        tasks = list(self._tasks.values()) + ([self._recheck] if self._recheck is not None else [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def recover(self) -> int:
        """Fail versions left `building` by a node that stopped mid-build: any still building after the
        time limit can no longer be running anywhere. Returns how many were failed."""
        cutoff = utcnow() - timedelta(seconds=self._settings.layer_build_timeout_sec + RECOVER_GRACE_SEC)
        async with self._db.transaction() as session:
            result = await session.execute(
                update(LayerVersion)
                .where(LayerVersion.status == "building")
                .where(LayerVersion.created_at < cutoff)
                .values(
                    status="failed",
                    error="the build was interrupted (the node stopped)",
                    finished_at=utcnow(),
                )
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- one build --------------------------------------------------------------------------------

    async def _run(self, job: BuildJob) -> None:
        started = time.monotonic()
        work = self.work_dir / job.version_id
        try:
            async with self._slots:
                self._append(job, f"$ {' '.join(self._command(job, Path('tree')))}\n")
                tree = await self._build(job, work)
                content, files, unpacked = await asyncio.to_thread(self._archive, tree)
            await self._finish(job, content=content, files=files, unpacked=unpacked, started=started)
        except BuildFailed as exc:
            await self._fail(job, str(exc))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._fail(job, "the build was cancelled (the node is stopping)"))
            raise
        except Exception as exc:  # a bug or an OS error: the version must not stay `building`
            log.exception("layer build %s failed unexpectedly", job.version_id)
            await self._fail(job, f"the build failed: {exc}")
        finally:
            self._logs.pop(job.version_id, None)
            await asyncio.to_thread(shutil.rmtree, work, True)

    def _command(self, job: BuildJob, tree: Path) -> list[str]:
        source_builds = self._settings.layer_source_builds
        if job.source == "pip":
            python = self._settings.python_executable or sys.executable
            cmd = [python, "-m", "pip", "install", "--target", str(tree / "python"), "--no-input"]
            cmd += ["--disable-pip-version-check", "--no-warn-script-location"]
            if not source_builds:
                cmd += ["--only-binary=:all:"]
            return [*cmd, "-r", "requirements.txt"]
        cmd = [npm_path() or "npm", "install", "--omit=dev", "--no-audit", "--no-fund", "--install-links"]
        if not source_builds:
            cmd += ["--ignore-scripts"]
        return cmd

    async def _build(self, job: BuildJob, work: Path) -> Path:
        await asyncio.to_thread(shutil.rmtree, work, True)
        tree = work / "tree"
        if job.source == "pip":
            cwd = work
            (tree / "python").mkdir(parents=True)
            (work / "requirements.txt").write_text(job.manifest, encoding="utf-8")
        else:
            cwd = tree / "nodejs"
            cwd.mkdir(parents=True)
            (cwd / "package.json").write_text(job.manifest, encoding="utf-8")
        env = {**os.environ, "PIP_NO_INPUT": "1", "npm_config_update_notifier": "false"}
        proc = await asyncio.create_subprocess_exec(
            *self._command(job, tree.resolve()),
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills pip/npm and their children
        )
        try:
            async with asyncio.timeout(self._settings.layer_build_timeout_sec):
                await self._pump(job, proc)
                code = await proc.wait()
        except TimeoutError:
            _kill_group(proc)
            await proc.wait()
            limit = self._settings.layer_build_timeout_sec
            self._append(job, f"\n[nimbus] killed: the build ran longer than {limit:g} s\n")
            raise BuildFailed(f"the build timed out after {limit:g} s") from None
        except BaseException:
            _kill_group(proc)
            with contextlib.suppress(Exception):
                await proc.wait()
            raise
        if code != 0:
            raise BuildFailed(_reason(self._logs.get(job.version_id, ""), job.source, code))
        return tree

    async def _pump(self, job: BuildJob, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        flushed = time.monotonic()
        while chunk := await proc.stdout.read(65536):
            self._append(job, decoder.decode(chunk))
            if time.monotonic() - flushed > FLUSH_SEC:
                flushed = time.monotonic()
                await self._save_log(job)
        self._append(job, decoder.decode(b"", final=True))

    def _append(self, job: BuildJob, text: str) -> None:
        if not text:
            return
        current = self._logs.get(job.version_id, "") + text
        if len(current) > MAX_LOG_CHARS:
            current = "[nimbus] earlier output cut\n" + current[-MAX_LOG_CHARS:]
        self._logs[job.version_id] = current
        self._bus.publish(LayerBuildLog(layer_id=job.layer_id, version=job.version, text=text))

    def _archive(self, tree: Path) -> tuple[bytes, int, int]:
        content, info = zip_tree(tree)
        limit = self._settings.max_layer_bytes
        if info.file_count == 0:
            raise BuildFailed("the build installed nothing")
        if len(content) > limit:
            raise BuildFailed(f"the built layer is {len(content)} bytes zipped; the limit is {limit} bytes")
        if info.unpacked_bytes > limit * UNPACKED_FACTOR:
            raise BuildFailed(
                f"the built layer is {info.unpacked_bytes} bytes unpacked; "
                f"the limit is {limit * UNPACKED_FACTOR} bytes"
            )
        return content, info.file_count, info.unpacked_bytes

    async def _save_log(self, job: BuildJob) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                update(LayerVersion)
                .where(LayerVersion.id == job.version_id, LayerVersion.status == "building")
                .values(build_log=self._logs.get(job.version_id, ""))
            )

    async def _finish(
        self, job: BuildJob, *, content: bytes, files: int, unpacked: int, started: float
    ) -> None:
        took = time.monotonic() - started
        self._append(
            job, f"\n[nimbus] built {files} files, {unpacked} bytes ({len(content)} zipped) in {took:.1f} s\n"
        )
        await self._settle(
            job,
            status="ready",
            content=content,
            content_hash=hashlib.sha256(content).hexdigest(),
            size_bytes=len(content),
            file_count=files,
        )

    async def _fail(self, job: BuildJob, reason: str) -> None:
        self._append(job, f"\n[nimbus] build failed: {reason}\n")
        await self._settle(job, status="failed", error=reason)

    async def _settle(self, job: BuildJob, *, status: str, **values: object) -> None:
        async with self._db.transaction() as session:
            result = await session.execute(
                update(LayerVersion)
                .where(LayerVersion.id == job.version_id, LayerVersion.status == "building")
                .values(
                    status=status,
                    build_log=self._logs.get(job.version_id, ""),
                    finished_at=utcnow(),
                    **values,
                )
            )
            if result.rowcount:  # type: ignore[attr-defined]
                event = LayerChanged(
                    layer_id=job.layer_id, layer_name=job.layer_name, action=status, version=job.version
                )
                session.info.setdefault("after_commit", []).append(lambda: self._bus.publish(event))


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _reason(output: str, source: str, code: int) -> str:
    """The line of the build's output that says why it failed (pip's ERROR:, npm's `npm error`)."""
    marker = "ERROR:" if source == "pip" else "npm error"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(marker) and "[nimbus]" not in line:
            return f"{source} exited with status {code}: {line}"
    tail = next((line for line in reversed(lines) if not line.startswith("[nimbus]")), "")
    return f"{source} exited with status {code}" + (f": {tail}" if tail else "")
