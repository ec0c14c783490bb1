"""Process isolation, app side. Owns: detecting what the sandbox enforces on this machine (`detect_isolation`,
`isolation_from_report`), where the sandbox keeps its files, and turning a dead worker's exit status into a
user-facing reason (`describe_death`).

The kernel-facing pieces (ctypes unshare/mount/prctl, rlimits, seccomp) live in
engine/runtimes/python_worker/jail.py, stdlib-only because the zygote runs them in its own `python -I`; they
are re-exported here for other process runtimes. The per-worker sequence is in python_worker/confine.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.runtimes.base import ErrorInfo, Isolation
from engine.runtimes.python_worker.jail import (
    NAMESPACES,
    build_seccomp,
    drop_to,
    load_seccomp,
    mount,
    prctl,
    set_rlimits,
    unshare,
)

__all__ = [
    "NAMESPACES",
    "ZYGOTE_ENV",
    "ZYGOTE_SCRIPT",
    "ExitStatus",
    "build_seccomp",
    "describe_death",
    "detect_isolation",
    "drop_to",
    "functions_dir",
    "isolation_from_report",
    "load_seccomp",
    "mount",
    "prctl",
    "sandbox_root",
    "set_rlimits",
    "unshare",
    "zygote_python",
]

ZYGOTE_SCRIPT = Path(__file__).resolve().parent / "runtimes" / "python_worker" / "zygote.py"
# The zygote's environment ends up in every worker's memory: give it nothing of the app's.
ZYGOTE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_REQUIRED_FOR_STRONG = ("mount", "pid", "net")


def zygote_python(settings: Settings) -> str:
    return settings.python_executable or sys.executable


def sandbox_root(settings: Settings) -> Path:
    """An empty directory the zygote mounts its template root on (inside its own mount namespace only)."""
    path = settings.data_dir / "run" / "sandbox-root"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    return path


def functions_dir(settings: Settings) -> Path:
    """Where the runtimes write functions' code, one directory per pool key. Mode 0711: without a private
    root a worker's uid must reach its own directory by exact path, but may not list the others."""
    path = settings.data_dir / "functions"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o711)
    return path


def detect_isolation(settings: Settings, *, timeout: float = 60.0) -> Isolation:
    """Probe this machine: run the zygote's preparation and worker sequence in a throwaway process
    (`zygote.py --probe`) and report what actually held. Blocking; call at start or from a thread."""
    cmd = [
        zygote_python(settings),
        "-I",
        str(ZYGOTE_SCRIPT),
        "--probe",
        "--root",
        str(sandbox_root(settings)),
        "--functions",
        str(functions_dir(settings)),
        "--probe-uid",
        str(settings.sandbox_uid_base),
    ]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=ZYGOTE_ENV, check=False
        )
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return Isolation(level="degraded", rlimits=False, warnings=(f"sandbox probe failed: {exc}",))
    return isolation_from_report(report)


def isolation_from_report(report: Mapping[str, Any]) -> Isolation:
    """strong: private root + uid drop + mount/pid/net namespaces + rlimits; partial: some namespace
    isolation; degraded: rlimits, process group and a clean environment only."""
    namespaces = tuple(str(n) for n in report.get("namespaces", ()))
    private_root = bool(report.get("private_root"))
    uid_drop = bool(report.get("uid_drop"))
    rlimits = bool(report.get("rlimits"))
    if private_root and uid_drop and rlimits and all(n in namespaces for n in _REQUIRED_FOR_STRONG):
        level = "strong"
    elif private_root or any(n in namespaces for n in _REQUIRED_FOR_STRONG):
        level = "partial"
    else:
        level = "degraded"
    warnings = [str(w) for w in report.get("warnings", ())]
    if level == "degraded" and not any("degraded" in w for w in warnings):
        warnings.insert(0, "sandbox degraded: only rlimits, a process group and a clean environment apply")
    return Isolation(
        level=level,
        namespaces=namespaces,
        uid_drop=uid_drop,
        rlimits=rlimits,
        seccomp=bool(report.get("seccomp")),
        private_root=private_root,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a worker ended, as its zygote saw it (`lost` when nobody could see it: the zygote died)."""

    code: int | None = None
    signal: int | None = None
    maxrss_kb: int = 0
    lost: str = ""

    def describe(self) -> str:
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = "?"
            return f"killed by signal {self.signal} ({name})"
        if self.code is not None:
            return f"exited with code {self.code}"
        return self.lost or "ended for an unknown reason"


_MEMORY_SIGNS = ("MemoryError", "Cannot allocate memory", "out of memory")


def describe_death(status: ExitStatus, memory_mb: int, output_tail: str = "") -> ErrorInfo:
    """Why a worker died mid-invocation, in the user's terms. A death under RLIMIT_AS rarely says so
    itself (CPython aborts, a C extension segfaults), so memory is blamed when the captured output shows a
    failed allocation or the peak RSS came within 10% of the limit."""
    if status.signal == signal.SIGXCPU:
        return ErrorInfo("CPULimitExceeded", "CPU time limit exceeded (killed by SIGXCPU)")
    abnormal = status.signal is not None or (status.code not in (None, 0))
    near_limit = memory_mb > 0 and status.maxrss_kb * 1024 >= 0.9 * memory_mb * 1024 * 1024
    if abnormal and (near_limit or any(s in output_tail for s in _MEMORY_SIGNS)):
        return ErrorInfo(
            "MemoryLimitExceeded", f"memory limit exceeded ({memory_mb} MB); worker {status.describe()}"
        )
    return ErrorInfo("WorkerCrashed", f"worker {status.describe()}")
