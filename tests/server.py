"""A real `nimbus serve` in a subprocess (its own session, so a kill takes the zygote and workers with
it), for tests that need the whole program: durability across SIGKILL, the real browser."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.conftest import LIGHT_PASSWORD_HASHING
from tests.db_fixtures import seed_data_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, password: str = "server-test", **env: str) -> None:
        self.data_dir = data_dir
        self.password = password
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key_file = data_dir / "bootstrap.key"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api_key(self) -> str:
        return self.key_file.read_text().strip()

    def start(self) -> None:
        if "NIMBUS_DATABASE_URL" not in self.env:
            seed_data_dir(self.data_dir)  # starts at head: no migration (tests/api/test_cli.py starts fresh)
        env = {
            **os.environ,
            "NIMBUS_ADMIN_PASSWORD": self.password,
            "NIMBUS_PORT": str(self.port),
            "NIMBUS_DATA_DIR": str(self.data_dir),
            "NIMBUS_BOOTSTRAP_KEY_FILE": str(self.key_file),
            **{f"NIMBUS_{k.upper()}": str(v) for k, v in LIGHT_PASSWORD_HASHING.items()},
            **self.env,
        }
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                if httpx.get(self.url + "/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become ready:\n" + self.log())

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)  # the server, its zygote and every worker
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
