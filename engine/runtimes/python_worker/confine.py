"""The zygote's half of the sandbox, stdlib only: one-time preparation and the probe that finds out which
steps this kernel allows (the per-worker sequence is in spawn.py).

Preparation: a private mount namespace (plus a user namespace when not root) holding a read-only tmpfs
template root - /usr, /lib*, the interpreter's prefix, a few /etc files, /dev nodes and the functions
directory at /.functions - and the zygote pivots into it, so no worker ever holds the host's tree.
Workers are forked as PID 1 of a fresh pid namespace: the zygote unshares one, forks, and steps back with
setns (the unprivileged zygote first makes itself PID 1 of its own namespace so that setns is allowed).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any

import jail
import spawn

HOST_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_ENTRIES = (
    "hosts",
    "resolv.conf",
    "nsswitch.conf",
    "localtime",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "mime.types",
    "protocols",
    "services",
    "gai.conf",
    "host.conf",
)
DEVICES = ("null", "zero", "full", "random", "urandom")
PASSWD = (
    "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
GROUP = "root:x:0:\nnogroup:x:65534:\n"


class Sandbox:
    """The features this zygote enforces (validated by the probe) plus the compiled seccomp filters."""

    def __init__(self, root: str, functions: str, probe_uid: int, *, tmp_mb: int = 64) -> None:
        self.root = root
        self.functions = functions
        self.probe_uid = probe_uid
        self.tmp_mb = tmp_mb
        self.is_root = os.geteuid() == 0
        self.user_ns = self.mount_ns = self.pivoted = False
        self.private_root = self.proc = self.uid_drop = self.rlimits = False
        self.stdlib_closed: list[str] = []
        self.namespaces: list[str] = []
        self.pidns_fd: int | None = None
        self.host_net_fd: int | None = None  # lets a pre-forked worker give up its netns (network granted)
        self.seccomp: dict[bool, bytes] = {}
        self.nproc: int | None = 128 if self.is_root else None
        self.warnings: list[str] = []
        self.errors: dict[str, str] = {}
        # The worker sees the stdlib of the interpreter it was forked from, never the venv's packages.
        self.prefix = os.path.realpath(sys.base_prefix)
        self.python_path = [
            p
            for p in sys.path
            if p.startswith(self.prefix) and not p.endswith(("site-packages", "dist-packages"))
        ]

    # -- one-time preparation, in the zygote -----------------------------------------------------------

    def prepare(self) -> None:
        # Compiled before the pivot: pyseccomp lives in site-packages, which the template root leaves out.
        for network in (False, True):
            try:
                bpf = jail.build_seccomp(network)
            except Exception as exc:
                self.errors["seccomp_build"] = str(exc)
                bpf = None
            if bpf:
                self.seccomp[network] = bpf
        try:
            if self.is_root:
                jail.unshare(jail.CLONE_NEWNS)
            else:
                self._enter_user_namespace()
            self.mount_ns = True
            # Nothing we mount may propagate back to the host, and pivot_root refuses shared mounts.
            jail.mount(None, "/", None, jail.MS_REC | jail.MS_PRIVATE)
        except OSError as exc:
            self.errors["prepare"] = str(exc)
        with contextlib.suppress(OSError):
            self.pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        if self.is_root:  # entering the host's netns again needs privilege over it
            with contextlib.suppress(OSError):
                self.host_net_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if self.mount_ns:
            try:
                self._build_template()
                os.chdir(self.root)
                jail.pivot_root(".", ".")
                jail.umount2(".", jail.MNT_DETACH)
                os.chdir("/")
                self.pivoted = True
            except OSError as exc:
                self.errors["template"] = str(exc)
        self._probe()

    def _enter_user_namespace(self) -> None:
        """Unprivileged: a user namespace gives us mount (and maybe pid) namespaces. With a pid namespace
        the zygote forks once to become its PID 1, so it may later setns() back into it after each spawn.
        Tried first in a throwaway child: a half-made user namespace (unshared, not mapped) cannot be left."""
        self.nproc = jail.count_processes(os.getuid()) + 256
        flags = next(
            (
                f
                for f in (
                    jail.CLONE_NEWUSER | jail.CLONE_NEWNS | jail.CLONE_NEWPID,
                    jail.CLONE_NEWUSER | jail.CLONE_NEWNS,
                )
                if _works_in_child(f)
            ),
            None,
        )
        if flags is None:
            raise OSError(errno.EPERM, "unprivileged user namespaces are not available")
        jail.unshare(flags)
        jail.map_own_ids()
        self.user_ns = True
        if flags & jail.CLONE_NEWPID:
            pid = os.fork()
            if pid != 0:
                # The process the app started stays outside as a shell around the zygote, exiting as it does.
                _, status = os.waitpid(pid, 0)
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
            jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)

    def _build_template(self) -> None:
        r = self.root
        jail.mount("tmpfs", r, "tmpfs", jail.MS_NOSUID | jail.MS_NODEV, "mode=0755,size=1m,nr_inodes=4096")
        for name in HOST_DIRS:
            self._mirror(f"/{name}", f"{r}/{name}")
        os.mkdir(f"{r}/etc", 0o755)
        for name in ETC_ENTRIES:
            self._mirror(f"/etc/{name}", f"{r}/etc/{name}")
        for name, text in (("passwd", PASSWD), ("group", GROUP)):
            with open(f"{r}/etc/{name}", "w") as fh:
                fh.write(text)
        if not any(self.prefix == f"/{d}" or self.prefix.startswith(f"/{d}/") for d in HOST_DIRS):
            # The interpreter may live under /root (mode 0700): parents are created here with 0755, so only
            # the prefix itself becomes reachable by the function's uid.
            os.makedirs(r + self.prefix, 0o755, exist_ok=True)
            jail.bind(self.prefix, r + self.prefix)
        os.mkdir(f"{r}/dev", 0o755)
        for name in DEVICES:
            open(f"{r}/dev/{name}", "w").close()
            jail.bind(f"/dev/{name}", f"{r}/dev/{name}", readonly=False)
        for link, target in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("shm", "/tmp"),
        ):
            os.symlink(target, f"{r}/dev/{link}")
        for name in ("tmp", "proc", "var", "var/task", ".functions"):
            os.mkdir(f"{r}/{name}", 0o755)
        jail.bind(self.functions, f"{r}/.functions")
        jail.mount(None, r, None, jail.MS_REMOUNT | jail.MS_RDONLY | jail.MS_NOSUID | jail.MS_NODEV)

    @staticmethod
    def _mirror(src: str, dst: str) -> None:
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isdir(src):
            os.mkdir(dst, 0o755)
            jail.bind(src, dst)
        elif os.path.isfile(src):
            open(dst, "w").close()
            jail.bind(src, dst)

    # -- probe ---------------------------------------------------------------------------------------------

    def _probe(self) -> None:
        """Run the worker sequence once, leniently, in a throwaway child; enforce exactly what worked."""
        rfd, wfd = os.pipe()
        pid = self.fork(try_pidns=self.pidns_fd is not None)
        if pid == 0:
            os.close(rfd)
            try:
                os.write(wfd, json.dumps(self._probe_worker()).encode())
            finally:
                os._exit(0)
        os.close(wfd)
        chunks, deadline = [], time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(rfd, 65536) if ready else b""
            if not chunk:
                break
            chunks.append(chunk)
        os.close(rfd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        try:
            found: dict[str, Any] = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            found = {}
        self.errors.update(found.get("errors", {}))
        self.namespaces = [n for n in found.get("namespaces", []) if n in jail.NAMESPACES]
        self.private_root = bool(found.get("private_root"))
        self.proc = bool(found.get("proc"))
        self.uid_drop = bool(found.get("uid_drop"))
        self.rlimits = bool(found.get("rlimits"))
        self.stdlib_closed = list(found.get("stdlib_closed", []))
        if not found.get("seccomp"):
            self.seccomp.clear()
        self._warn()

    def fork(self, *, try_pidns: bool) -> int:
        """fork(), the child landing as PID 1 of a new pid namespace when asked and possible."""
        if not try_pidns or self.pidns_fd is None:
            return os.fork()
        try:
            jail.unshare(jail.CLONE_NEWPID)
        except OSError as exc:
            self.errors["ns_pid"] = str(exc)
            return os.fork()
        try:
            pid = os.fork()
        except BaseException:
            self._step_back(None)
            raise
        if pid != 0:
            self._step_back(pid)
        return pid

    def _step_back(self, child: int | None) -> None:
        assert self.pidns_fd is not None
        try:
            jail.setns(self.pidns_fd, jail.CLONE_NEWPID)
        except OSError as exc:
            # Every later child would share the new namespace: better to die and be restarted.
            if child:
                os.kill(child, signal.SIGKILL)
            raise SystemExit(f"cannot step back into the zygote's pid namespace: {exc}") from exc

    def _probe_worker(self) -> dict[str, Any]:
        report: dict[str, Any] = {"namespaces": ["pid"] if os.getpid() == 1 else [], "errors": {}}
        errors = report["errors"]
        for name in ("mount", "net", "ipc", "uts"):
            if name == "mount" and not self.mount_ns:
                continue
            try:
                jail.unshare(jail.NAMESPACES[name])
                report["namespaces"].append(name)
            except OSError as exc:
                errors[f"ns_{name}"] = str(exc)
        pidns = "pid" in report["namespaces"]
        if self.pivoted and "mount" in report["namespaces"]:
            try:
                spawn.mount_tmp(1)
                spawn.bind_code("/etc")
                report["private_root"] = not os.path.exists(self.functions) and not os.listdir("/.functions")
            except OSError as exc:
                errors["private_root"] = str(exc)
        if pidns and report.get("private_root"):
            try:
                jail.mount("proc", "/proc", "proc", jail.MS_NOSUID | jail.MS_NODEV | jail.MS_NOEXEC)
                report["proc"] = True
            except OSError as exc:
                errors["proc"] = str(exc)
        if "net" in report["namespaces"]:
            try:
                with socket.create_connection(("127.0.0.1", 9), timeout=0.5):
                    errors["net"] = "loopback reachable in the network namespace"
            except OSError:
                report["net_blocked"] = True
        try:
            jail.set_rlimits(memory_mb=4096, cpu_sec=60, nofile=256, nproc=self.nproc, fsize_mb=64)
            report["rlimits"] = True
        except (OSError, ValueError) as exc:
            errors["rlimits"] = str(exc)
        try:
            spawn.drop_identity(self, self.probe_uid)
            report["uid_drop"] = self.is_root
            with contextlib.suppress(OSError):  # EPERM; EINVAL in a user namespace (0 is unmapped)
                os.setuid(0)
                report["uid_drop"] = False
                errors["uid_drop"] = "could regain uid 0"
        except OSError as exc:
            errors["identity"] = str(exc)
        # Workers import lazily from the stdlib after the drop: its directories must be open to any uid.
        closed = [p for p in self.python_path if os.path.isdir(p) and not os.access(p, os.R_OK | os.X_OK)]
        if closed:
            report["stdlib_closed"] = closed
        if False in self.seccomp:
            try:
                jail.load_seccomp(self.seccomp[False])
                try:
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
                    errors["seccomp"] = "filter loaded but inet socket still allowed"
                except OSError:
                    for end in socket.socketpair():  # AF_UNIX must keep working
                        end.close()
                    report["seccomp"] = True
            except OSError as exc:
                errors["seccomp"] = str(exc)
        return report

    def _warn(self) -> None:
        w = self.warnings
        if not self.is_root:
            w.append("not running as root: all functions share the platform's uid (no per-function uid)")
            if not self.user_ns:
                w.append("unprivileged user namespaces are unavailable")
        for name in ("mount", "pid", "net"):
            if name not in self.namespaces:
                w.append(
                    f"no {name} namespace" + (": functions can reach the network" if name == "net" else "")
                )
        if not self.private_root:
            w.append("no private root: functions can read any file their uid can read")
        if self.stdlib_closed:
            w.append(
                "the interpreter's stdlib is not readable by function uids"
                f" ({', '.join(self.stdlib_closed)}): imports will fail; set NIMBUS_PYTHON_EXECUTABLE"
                " to an interpreter outside /root"
            )
        if self.is_root and not self.uid_drop:
            w.append("uid drop failed: functions would run as root")
        if not self.seccomp:
            w.append("seccomp filter unavailable (install pyseccomp / libseccomp)")
        if not self.rlimits:
            w.append("rlimits could not be applied")

    def report(self) -> dict[str, Any]:
        return {
            "mode": "root" if self.is_root else ("userns" if self.user_ns else "none"),
            "namespaces": (["user"] if self.user_ns else []) + self.namespaces,
            "private_root": self.private_root,
            "proc": self.proc,
            "uid_drop": self.uid_drop,
            "seccomp": bool(self.seccomp),
            "rlimits": self.rlimits,
            "warnings": self.warnings,
            "errors": self.errors,
            "python": sys.version.split()[0],
            "prefix": self.prefix,
        }


def _works_in_child(flags: int) -> bool:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            jail.unshare(flags)
            jail.map_own_ids()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0
