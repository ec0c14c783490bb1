"""The layer store on this node: each layer version's zip (kept in the database, so every node can get
it) unpacked once into data_dir/layers/<content_hash>/, read-only, and handed to the runtimes as the
tree they mount (ProcessHost.layer_source)."""

from __future__ import annotations

import asyncio
import compileall
import os
import secrets
import shutil
from pathlib import Path

from sqlalchemy import select

from data.db import Database
from data.models import LayerVersion
from engine.config import Settings
from engine.runtimes.base import ErrorInfo, InitError, LayerMount
from engine.runtimes.process_host import publish_tree
from engine.services.layer_archive import extract_zip


class LayerStore:
    def __init__(self, settings: Settings, db: Database) -> None:
        self._db = db
        self.root = settings.data_dir / "layers"
        self._locks: dict[str, asyncio.Lock] = {}
        self.unpacked = 0  # versions this store has unpacked since start (each at most once)

    async def materialize(self, mount: LayerMount) -> Path:
        """The unpacked tree of `mount`; unpacks it first when this node has not yet. InitError
        (LayerUnavailable) when the version is gone or not ready."""
        if not mount.content_hash:
            raise _unavailable(mount, "the layer version no longer exists")
        target = self.root / mount.content_hash
        if target.is_dir():
            return target
        lock = self._locks.setdefault(mount.content_hash, asyncio.Lock())
        async with lock:
            if not target.is_dir():
                data = await self._content(mount)
                await asyncio.to_thread(_unpack, self.root, target, data)
                self.unpacked += 1
        self._locks.pop(mount.content_hash, None)
        return target

    async def _content(self, mount: LayerMount) -> bytes:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(LayerVersion.content, LayerVersion.content_hash, LayerVersion.status).where(
                        LayerVersion.layer_id == mount.layer_id, LayerVersion.version == mount.version
                    )
                )
            ).first()
        if row is None:
            raise _unavailable(mount, "the layer version no longer exists")
        content, content_hash, status = row
        if status != "ready" or content is None:
            raise _unavailable(mount, f"the layer version is {status}, not ready")
        if content_hash != mount.content_hash:
            raise _unavailable(mount, "the layer version's content changed; retry the invocation")
        return bytes(content)


def _unavailable(mount: LayerMount, why: str) -> InitError:
    return InitError(ErrorInfo("LayerUnavailable", f"layer {mount.name} v{mount.version}: {why}"))


def _unpack(root: Path, target: Path, data: bytes) -> None:
    """Unpack beside the target and rename it into place, so a tree is either whole or absent."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)  # workers see layers through their code directory, never here
    tmp = root / f".tmp-{target.name}-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o755)
    try:
        extract_zip(data, tmp)
        # Byte-code made once here: hard links of these files end up in each function's read-only code
        # directory, where the workers could never write their own.
        compileall.compile_dir(str(tmp), quiet=2, workers=1)
        publish_tree(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
