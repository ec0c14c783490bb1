"""Kernel primitives of the sandbox, stdlib only: libc unshare/mount/pivot_root/prctl/capset through ctypes,
rlimits, and a seccomp filter compiled once (with pyseccomp, when importable) and loaded as raw BPF.

Python 3.11 has no os.unshare, and this module must run inside the zygote's `python -I` interpreter, so it
cannot import the engine; engine/sandbox.py imports it for detection instead of duplicating it."""

from __future__ import annotations

import array
import ctypes
import errno
import os
import platform
import resource
import socket
from collections.abc import Iterable

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACES = {
    "mount": CLONE_NEWNS,
    "pid": CLONE_NEWPID,
    "net": CLONE_NEWNET,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
}

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 1 << 14, 1 << 18, 1 << 21
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
SECCOMP_MODE_FILTER = 2

# glibc has no pivot_root wrapper; the syscall number depends on the architecture.
_PIVOT_ROOT_NR = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), f"setns({nstype:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    nr = _PIVOT_ROOT_NR.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, "pivot_root: unknown architecture")
    _check(_libc.syscall(ctypes.c_long(nr), _b(new_root), _b(put_old)), "pivot_root")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> None:
    _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def set_subreaper() -> None:
    """Processes orphaned outside a worker's pid namespace are reparented to the zygote, which reaps them."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def _locked_flags(path: str) -> int:
    """Flags the source mount already has. A remount must repeat them: in a user namespace dropping an
    inherited nosuid/nodev/noexec is refused (EPERM), and elsewhere we never want to loosen them."""
    f = os.statvfs(path).f_flag
    out = 0
    for st, ms in (
        (os.ST_NOSUID, MS_NOSUID),
        (os.ST_NODEV, MS_NODEV),
        (os.ST_NOEXEC, MS_NOEXEC),
        (os.ST_NOATIME, MS_NOATIME),
        (os.ST_NODIRATIME, MS_NODIRATIME),
        (os.ST_RELATIME, MS_RELATIME),
    ):
        if f & st:
            out |= ms
    return out


def bind(source: str, target: str, *, readonly: bool = True) -> None:
    """Bind `source` onto the existing `target`. Not recursive on purpose: a submount of the source (none
    on a normal /usr) would otherwise stay writable, since a read-only remount only covers the top mount."""
    mount(source, target, None, MS_BIND)
    if readonly:
        mount(
            None,
            target,
            None,
            MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | _locked_flags(target),
        )


# -- identity ---------------------------------------------------------------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_bounding_set() -> None:
    """Shrink the capability bounding set (needs CAP_SETPCAP, so before the uid drop); stops at EINVAL."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == errno.EINVAL:
                return
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")


def drop_capabilities() -> None:
    """Clear effective/permitted/inheritable/ambient capabilities without changing uid: used in a user
    namespace, where the process keeps the uid of the app but must not keep namespace-root powers."""
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


def drop_to(uid: int, gid: int) -> None:
    """Real, effective and saved ids all change, so the kernel clears every capability of the process."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(errno.EPERM, "uid drop did not take effect")
    # The uid change made the process non-dumpable, which hands its /proc/self files to root: the function
    # could not read its own /proc/self/environ or fd list. Its peers of the same uid live in other pid
    # namespaces and ptrace is denied by seccomp, so dumpable costs nothing.
    prctl(PR_SET_DUMPABLE, 1)


def map_own_ids() -> None:
    """After unshare(CLONE_NEWUSER): map our own uid/gid into the namespace (the only mapping an
    unprivileged process may write)."""
    uid, gid = os.getuid(), os.getgid()

    def write(path: str, text: str) -> None:
        with open(path, "w") as fh:
            fh.write(text)

    write("/proc/self/setgroups", "deny")
    write("/proc/self/uid_map", f"{uid} {uid} 1")
    write("/proc/self/gid_map", f"{gid} {gid} 1")


# -- rlimits ----------------------------------------------------------------------------------------------


def set_rlimits(*, memory_mb: int, cpu_sec: int, nofile: int, nproc: int | None, fsize_mb: int) -> None:
    """Soft == hard everywhere except CPU: the shim moves the CPU soft limit before every invocation (the
    limit is cumulative over a warm worker's life); the app's wall-clock deadline is the real bound."""
    mib = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_mb * mib, fsize_mb * mib))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_sec, hard))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * mib, memory_mb * mib))


def count_processes(uid: int) -> int:
    """Processes of `uid` visible in /proc: RLIMIT_NPROC counts all of them, so an unprivileged setup must
    leave room above what the user already runs."""
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


# -- seccomp ----------------------------------------------------------------------------------------------

DENIED_SYSCALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "quotactl",
    "open_by_handle_at",
    "name_to_handle_at",
    "iopl",
    "ioperm",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "kcmp",
    "lookup_dcookie",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
)
_ENOSYS_SYSCALLS = ("clone3", "io_uring_setup", "io_uring_enter", "io_uring_register")
_NS_BITS = (
    CLONE_NEWNS,
    CLONE_NEWCGROUP,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
)
_ALWAYS_ALLOWED_FAMILIES = (socket.AF_UNIX,)
_NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK)


def build_seccomp(network: bool) -> bytes | None:
    """Compile the worker's filter to BPF (None when pyseccomp/libseccomp is missing). Compiled once in the
    zygote; a worker only has to hand the bytes to the kernel, which costs one prctl."""
    try:
        import pyseccomp as sc
    except Exception:
        try:
            import seccomp as sc  # Debian's python3-seccomp: the same API
        except Exception:
            return None
    filt = sc.SyscallFilter(sc.ALLOW)

    def rule(action: int, name: str, *args: object) -> None:
        try:
            filt.add_rule(action, name, *args)
        except (OSError, ValueError, RuntimeError):
            pass  # syscall unknown on this architecture: nothing to deny

    for name in DENIED_SYSCALLS:
        rule(sc.ERRNO(errno.EPERM), name)
    # clone3 passes its flags in memory, where seccomp cannot look: ENOSYS makes glibc fall back to clone.
    for name in _ENOSYS_SYSCALLS:
        rule(sc.ERRNO(errno.ENOSYS), name)
    for bit in _NS_BITS:
        rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, bit, bit))
    allowed = set(_ALWAYS_ALLOWED_FAMILIES) | (set(_NETWORK_FAMILIES) if network else set())
    for family in range(64):
        if family in allowed:
            continue
        # Inet sockets fail as "Network is unreachable": the most telling message for a function's author.
        err = errno.ENETUNREACH if family in (socket.AF_INET, socket.AF_INET6) else errno.EAFNOSUPPORT
        rule(sc.ERRNO(err), "socket", sc.Arg(0, sc.EQ, family))
    fd = os.memfd_create("nimbus-seccomp")
    try:
        with os.fdopen(os.dup(fd), "wb") as fh:
            filt.export_bpf(fh)
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_seccomp(bpf: bytes) -> None:
    """Install a compiled filter for this process and its future children (after NO_NEW_PRIVS)."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.addressof(buf))
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))


def recv_fds(sock: socket.socket, bufsize: int, maxfds: int, flags: int) -> tuple[bytes, list[int]]:
    """socket.recv_fds of 3.11 drops its `flags` argument, so MSG_DONTWAIT would be ignored."""
    fds = array.array("i")
    data, ancdata, _, _ = sock.recvmsg(bufsize, socket.CMSG_LEN(maxfds * fds.itemsize), flags)
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def close_fds(keep: Iterable[int]) -> None:
    """Close every descriptor above stderr except `keep` (close_range under the hood)."""
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)
