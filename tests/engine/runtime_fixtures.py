"""Fixtures for the Python runtime, sandbox and pool tests: real zygote, real sandboxed workers, a temp data
dir per test. A test module takes the fixtures with `from tests.engine.runtime_fixtures import *` and the
helpers (spec, ctx, make_settings, needs_root) by name."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from engine.pool import WorkerPool
from engine.runtimes.base import FunctionSpec, InvokeContext
from engine.runtimes.python import PythonRuntime

__all__ = ["pool", "runtime", "settings"]  # the fixtures

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="uid drop and the full sandbox need root")


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": data_dir, "keep_alive_sec": 60.0}
    values.update(overrides)
    return Settings(**values)


def spec(
    code: str, *, handler: str = "main.handler", files: dict[str, str] | None = None, **fields: Any
) -> FunctionSpec:
    """A python FunctionSpec whose main.py is `code` (dedented); each call is a new function id."""
    all_files = {"main.py": textwrap.dedent(code)} | (files or {})
    values: dict[str, Any] = {
        "function_id": uuid.uuid4().hex,
        "name": "fn",
        "version": "$LATEST",
        "runtime": "python",
        "handler": handler,
        "files": all_files,
        "code_hash": uuid.uuid4().hex,
        "memory_mb": 128,
        "timeout_sec": 5,
    }
    values.update(fields)
    return FunctionSpec(**values)


def ctx(timeout: float = 5, **fields: Any) -> InvokeContext:
    return InvokeContext(request_id=fields.pop("request_id", uuid.uuid4().hex), timeout_sec=timeout, **fields)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[PythonRuntime]:
    rt = PythonRuntime(settings)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[WorkerPool]:
    wp = WorkerPool(settings, {"python": PythonRuntime(settings)})
    await wp.start()
    try:
        yield wp
    finally:
        await wp.stop()
