"""Start-up configuration: environment variables `NIMBUS_*` and an optional `nimbus.toml`.
Runtime-changeable settings live in the database (engine/services/settings.py)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NIMBUS_", toml_file="nimbus.toml", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("var")
    database_url: str = ""  # default: sqlite under data_dir
    admin_password: str = ""  # first start; generated and printed once when empty
    secret_key: str = ""  # Fernet key for secrets at rest; default: data_dir/secret.key (0600)
    node_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    bootstrap_key_file: str = (
        ""  # first start: also write the admin's API key to this file (tests, automation)
    )
    storage_secret: str = ""  # console session cookies; default derived from the secret key
    # argon2id cost of password hashes: argon2-cffi's defaults, RFC 9106's low-memory profile (about
    # 0.25 s of CPU a hash). Lower it only where passwords need not resist offline guessing (the test
    # suite's throwaway platforms); a hash made at another cost still verifies, and is redone at this
    # one on the user's next login.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=64)
    password_parallelism: int = Field(default=4, ge=1)

    # limits
    max_code_bytes: int = 512 * 1024  # all of one function's files together
    max_layer_bytes: int = 50 * 1024 * 1024  # one layer version's zip (unpacked: at most 5 times this)
    layer_build_timeout_sec: float = 600.0  # a pip / npm layer build is killed after this
    layer_source_builds: bool = False  # let layer builds run package code (pip sdists, npm install scripts)

    # execution
    python_executable: str = ""  # interpreter for the Python zygote; default: this interpreter
    max_concurrency: int = 32  # platform-wide cap on running invocations
    max_waiting: int = 100  # invocations waiting for a free slot before 429
    wait_timeout_sec: float = 10.0  # how long one may wait for a slot
    keep_alive_sec: float = 300.0  # idle warm worker lifetime
    output_cap_bytes: int = 256 * 1024
    inline_body_bytes: int = 64 * 1024  # larger inputs/outputs are spilled to files
    sandbox_uid_base: int = 61000  # each function gets its own uid from here (when root)

    # async queue
    queue_workers: int = 32  # concurrent async invocations per node (bigger claims and settle batches)
    lease_sec: float = 30.0
    poll_interval_sec: float = 0.5  # idle queue poll (new work also wakes workers directly)

    # console
    wall_rotate_sec: float = Field(default=15.0, ge=0)  # the wall display's board rotation (0: never)

    # write-behind batcher
    batch_max_rows: int = 500
    batch_max_delay_ms: float = 5.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @model_validator(mode="after")
    def _argon2_memory_covers_its_lanes(self) -> Settings:
        if self.password_memory_kib < 8 * self.password_parallelism:
            raise ValueError("password_memory_kib must be at least 8 times password_parallelism (argon2)")
        return self

    def model_post_init(self, __context: Any) -> None:
        self.data_dir = self.data_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'nimbus.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
