"""Built artifacts on disk: data_dir/builds/<runtime>/<key>/handler, one per cache key
(engine/builds/sources.py: code, handler, toolchain version, wrapper). Written once, atomically; never
changed afterwards, so a reader needs no lock."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path


class ArtifactCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, runtime: str, key: str) -> Path:
        return self.root / runtime / key / "handler"

    def has(self, runtime: str, key: str) -> bool:
        return self.path(runtime, key).is_file()

    def store(self, built: Path, runtime: str, key: str) -> Path:
        """Copy a freshly built program in (owned by us, mode 0755, whoever built it); blocking."""
        target = self.path(runtime, key)
        if target.is_file():
            return target
        target.parent.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent.with_name(f".tmp-{key}-{secrets.token_hex(4)}")
        tmp.mkdir()
        try:
            shutil.copyfile(built, tmp / "handler")
            os.chmod(tmp / "handler", 0o755)
            try:
                os.rename(tmp, target.parent)
            except OSError:
                if not target.is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target
