"""The per-worker half of the sandbox, stdlib only, run in the zygote's fork children.

Split in two so most of it can happen before anyone asks for a worker:
- generic (any function): own session, unshare mount/ipc/uts (+ net), private /tmp, /proc of its own pid
  namespace, hostname, parent-death signal. A pre-forked "blank" worker stops here and waits for an
  assignment: a JSON config plus the worker's socket (SCM_RIGHTS) on its own socketpair with the zygote.
- specific (one function): bind its code read-only at /var/task, cover /.functions, rlimits, drop to its
  uid (clears all capabilities), parent-death signal again, no_new_privs, seccomp.
A cold start then costs only the specific half plus the import of the user's module."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from typing import TYPE_CHECKING, Any, NoReturn

import jail
import shim

if TYPE_CHECKING:
    from confine import Sandbox

SANDBOX_ERROR_EXIT = 70


def fork_worker(sb: Sandbox, cfg: dict[str, Any], sock_fd: int) -> int:
    """Fork a worker for `cfg` from scratch (no blank available); returns its pid in the zygote."""
    pid = sb.fork(try_pidns="pid" in sb.namespaces)
    if pid == 0:
        try:
            _reset_child({sock_fd})
            generic(sb, own_net=_wants_net(sb, cfg))
            worker = shim.Worker(_shim_info(sb))
            code_root = specific(sb, cfg)
        except BaseException as exc:
            report_error(sock_fd, f"sandbox: {exc}")
            os._exit(SANDBOX_ERROR_EXIT)
        _serve(worker, sock_fd, code_root)
    return pid


def fork_blank(sb: Sandbox) -> tuple[int, socket.socket]:
    """Fork a blank worker; returns its pid and the zygote's end of its assignment channel."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = sb.fork(try_pidns="pid" in sb.namespaces)
    if pid == 0:
        sock_fd = -1
        try:
            net_fd = sb.host_net_fd
            _reset_child({theirs.fileno()} | ({net_fd} if net_fd is not None else set()))
            # Without a way back to the host's network (unprivileged) the netns is made at assignment.
            own_net = net_fd is not None and "net" in sb.namespaces
            generic(sb, own_net=own_net)
            worker = shim.Worker(_shim_info(sb))
            data, fds = jail.recv_fds(theirs, 1 << 16, 1, 0)
            if not data or len(fds) != 1:
                os._exit(0)  # the zygote went away, or shut us down
            sock_fd = fds[0]
            cfg = json.loads(data)
            if own_net and not _wants_net(sb, cfg):
                jail.setns(net_fd, jail.CLONE_NEWNET)  # type: ignore[arg-type]
            elif _wants_net(sb, cfg) and not own_net:
                jail.unshare(jail.CLONE_NEWNET)
            if net_fd is not None:
                os.close(net_fd)
            os.close(theirs.detach())
            code_root = specific(sb, cfg)
        except BaseException as exc:
            if sock_fd >= 0:
                report_error(sock_fd, f"sandbox: {exc}")
            os._exit(SANDBOX_ERROR_EXIT)
        _serve(worker, sock_fd, code_root)
    theirs.close()
    return pid, mine


def _wants_net(sb: Sandbox, cfg: dict[str, Any]) -> bool:
    """Whether this worker gets its own (empty) network namespace."""
    return "net" in sb.namespaces and not cfg.get("network")


def _reset_child(keep: set[int]) -> None:
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    jail.close_fds(keep)


def _shim_info(sb: Sandbox) -> dict[str, Any]:
    return {"python_path": sb.python_path, "executable": os.path.join(sb.prefix, "bin", "python3")}


def _serve(worker: shim.Worker, sock_fd: int, code_root: str) -> NoReturn:
    try:
        worker.serve(sock_fd, code_root)
    finally:
        os._exit(0)


def generic(sb: Sandbox, *, own_net: bool) -> None:
    os.setsid()
    flags = jail.CLONE_NEWNET if own_net else 0
    for name in ("mount", "ipc", "uts"):
        if name in sb.namespaces:
            flags |= jail.NAMESPACES[name]
    if flags:
        jail.unshare(flags)
    if sb.private_root:
        mount_tmp(sb.tmp_mb)
        if sb.proc and os.getpid() == 1:
            jail.mount("proc", "/proc", "proc", jail.MS_NOSUID | jail.MS_NODEV | jail.MS_NOEXEC)
    if "uts" in sb.namespaces:
        jail.sethostname("nimbus")
    jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)  # a waiting blank dies with the zygote


def specific(sb: Sandbox, cfg: dict[str, Any]) -> str:
    """Lock the worker down for one function; returns where its code is."""
    code = str(cfg["code"])
    if not code or "/" in code or code.startswith("."):
        raise ValueError(f"bad code directory name {code!r}")
    if sb.private_root:
        bind_code(f"/.functions/{code}")
        code_root = "/var/task"
    else:
        code_root = os.path.join(sb.functions, code)
    os.chdir(code_root)
    jail.set_rlimits(
        memory_mb=cfg["memory_mb"],
        cpu_sec=cfg["cpu_sec"],
        nofile=cfg["nofile"],
        nproc=sb.nproc if (sb.uid_drop or sb.user_ns) else None,
        fsize_mb=cfg["fsize_mb"],
    )
    drop_identity(sb, cfg.get("uid") if sb.uid_drop else None)
    # Again: the uid drop cleared it. When the zygote dies, so does this worker.
    jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)
    jail.prctl(jail.PR_SET_NO_NEW_PRIVS, 1)
    bpf = sb.seccomp.get(bool(cfg.get("network")))
    if bpf:
        jail.load_seccomp(bpf)
    return code_root


def mount_tmp(size_mb: int) -> None:
    jail.mount(
        "tmpfs", "/tmp", "tmpfs", jail.MS_NOSUID | jail.MS_NODEV, f"mode=1777,size={size_mb}m,nr_inodes=16384"
    )


def bind_code(source: str) -> None:
    jail.bind(source, "/var/task")
    # Other functions' code stays under an empty read-only cover (cheaper than an unmount, which waits for an
    # RCU grace period); with capabilities dropped and umount denied it cannot be lifted.
    jail.mount(
        "tmpfs",
        "/.functions",
        "tmpfs",
        jail.MS_RDONLY | jail.MS_NOSUID | jail.MS_NODEV | jail.MS_NOEXEC,
        "size=4k,mode=0",
    )


def drop_identity(sb: Sandbox, uid: int | None) -> None:
    if sb.is_root and uid is not None:
        jail.drop_bounding_set()
        jail.drop_to(uid, uid)
    elif sb.user_ns:
        jail.drop_bounding_set()
        jail.drop_capabilities()


def report_error(sock_fd: int, message: str) -> None:
    body = json.dumps({"t": "sandbox_error", "message": message}).encode()
    with contextlib.suppress(OSError):
        os.write(sock_fd, len(body).to_bytes(4, "big") + body)
