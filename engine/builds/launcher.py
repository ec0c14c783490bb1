"""The build jail, stdlib only: runs one compiler command the way a function runs, walled in. Started by
engine/builds/runner.py as `python -I launcher.py CONFIG_JSON`; uses the sandbox primitives of
engine/runtimes/python_worker/jail.py.

A compiler reads whatever its input names (Rust's `include_str!("/any/file")`, a `#[path]` module), so a
build must not see the host: new mount/pid/net/ipc/uts namespaces (plus a user namespace when not root),
a tmpfs root holding only /usr, /lib*, a few /etc files, /dev nodes, a private /tmp, the toolchain's own
directory and the build's directory at /build (and its cache at /cache), read-only except those two; then
rlimits, the build uid (when root), no_new_privs and the workers' seccomp filter. No network.

Config: {root, build, cache, toolchain, uid, argv, env, limits{memory_mb, cpu_sec, fsize_mb, nofile,
nproc}, binds}; "{build}" and "{cache}" in argv/env stand for wherever those directories are visible.
`binds` ([host directory, path under the build's directory]) are mounted read-only there (a cargo build's
vendored crates; copied instead when there is no jail). Exit status:
the compiler's, 128+N when it died of signal N, 125 when the jail could not be set up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from typing import Any

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtimes", "python_worker")
)

import jail

HOST_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime")
DEVICES = ("null", "zero", "full", "random", "urandom")
NAMESPACES = jail.CLONE_NEWNS | jail.CLONE_NEWPID | jail.CLONE_NEWNET | jail.CLONE_NEWIPC | jail.CLONE_NEWUTS
SETUP_FAILED = 125


def main(argv: list[str]) -> int:
    cfg: dict[str, Any] = json.loads(argv[1])
    bpf = None
    try:
        bpf = jail.build_seccomp(False)  # compiled now: pyseccomp is out of reach once inside
    except Exception as exc:
        note(f"no seccomp filter: {exc}")
    isolated = enter_namespaces()
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(init(cfg, isolated, bpf))
        except BaseException as exc:
            note(f"build jail failed: {exc}")
            os._exit(SETUP_FAILED)
    _, status = os.waitpid(pid, 0)
    return exit_code(status)


def exit_code(status: int) -> int:
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def note(message: str) -> None:
    os.write(2, f"nimbus: {message}\n".encode())


def enter_namespaces() -> bool:
    """True when the build gets its own namespaces (the next fork lands in the new pid namespace)."""
    try:
        if os.geteuid() == 0:
            jail.unshare(NAMESPACES)
        else:
            jail.unshare(jail.CLONE_NEWUSER | NAMESPACES)
            jail.map_own_ids()
        return True
    except OSError as exc:
        note(f"build isolation unavailable ({exc}): compiling without a jail")
        return False


def init(cfg: dict[str, Any], isolated: bool, bpf: bytes | None) -> int:
    """PID 1 of the build: set up its root, run the compiler as a child, reap, return its status."""
    jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)
    places = {"{build}": cfg["build"], "{cache}": cfg["cache"]}
    if isolated:
        jail.mount(None, "/", None, jail.MS_REC | jail.MS_PRIVATE)
        build_root(cfg)
        places = {"{build}": "/build", "{cache}": "/cache"}
    else:
        for source, inside in cfg.get("binds", ()):
            shutil.copytree(source, os.path.join(cfg["build"], inside), dirs_exist_ok=True)
    argv = [fill(a, places) for a in cfg["argv"]]
    env = {k: fill(v, places) for k, v in cfg["env"].items()}
    cwd = fill(cfg.get("cwd", "{build}/src"), places)
    child = os.fork()
    if child == 0:
        try:
            if isolated:
                os.chroot(cfg["root"])
            os.chdir(cwd)
            confine(cfg, isolated, bpf)
            os.execve(argv[0], argv, env)
        except BaseException as exc:
            note(f"cannot run {argv[0]}: {exc}")
            os._exit(SETUP_FAILED)
    while True:  # as PID 1 every orphan of the build is ours to reap
        pid, status = os.wait()
        if pid == child:
            return exit_code(status)


def fill(text: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        text = text.replace(key, value)
    return text


def build_root(cfg: dict[str, Any]) -> None:
    r = cfg["root"]
    jail.mount("tmpfs", r, "tmpfs", jail.MS_NOSUID | jail.MS_NODEV, "mode=0755,size=4m,nr_inodes=4096")
    for name in HOST_DIRS:
        mirror(f"/{name}", f"{r}/{name}")
    os.mkdir(f"{r}/etc", 0o755)
    for name in ETC_ENTRIES:
        mirror(f"/etc/{name}", f"{r}/etc/{name}")
    uid = cfg.get("uid") or 0
    with open(f"{r}/etc/passwd", "w") as fh:
        fh.write(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\nbuild:x:{uid}:{uid}:build:/tmp:/usr/sbin/nologin\n"
        )
    with open(f"{r}/etc/group", "w") as fh:
        fh.write(f"root:x:0:\nbuild:x:{uid}:\n")
    os.mkdir(f"{r}/dev", 0o755)
    for name in DEVICES:
        open(f"{r}/dev/{name}", "w").close()
        jail.bind(f"/dev/{name}", f"{r}/dev/{name}", readonly=False)
    for name in ("tmp", "proc", "build", "cache"):
        os.mkdir(f"{r}/{name}", 0o755)
    jail.mount("tmpfs", f"{r}/tmp", "tmpfs", jail.MS_NOSUID | jail.MS_NODEV, "mode=1777,size=1g")
    try:  # compilers find themselves through /proc/self/exe; they are also told where they live
        jail.mount("proc", f"{r}/proc", "proc", jail.MS_NOSUID | jail.MS_NODEV | jail.MS_NOEXEC)
    except OSError as exc:
        note(f"no /proc in the build jail: {exc}")
    toolchain = os.path.realpath(cfg["toolchain"])
    if not any(toolchain == f"/{d}" or toolchain.startswith(f"/{d}/") for d in HOST_DIRS):
        os.makedirs(r + toolchain, 0o755, exist_ok=True)  # parents 0755: reachable by the build uid
        jail.bind(toolchain, r + toolchain)
    jail.bind(cfg["build"], f"{r}/build", readonly=False)
    for source, inside in cfg.get("binds", ()):
        jail.bind(source, f"{r}/build/{inside}")
    jail.bind(cfg["cache"], f"{r}/cache", readonly=False)
    jail.mount(None, r, None, jail.MS_REMOUNT | jail.MS_RDONLY | jail.MS_NOSUID | jail.MS_NODEV)


def mirror(src: str, dst: str) -> None:
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    elif os.path.isdir(src):
        os.mkdir(dst, 0o755)
        jail.bind(src, dst)
    elif os.path.isfile(src):
        open(dst, "w").close()
        jail.bind(src, dst)


def confine(cfg: dict[str, Any], isolated: bool, bpf: bytes | None) -> None:
    limits = cfg["limits"]
    uid = cfg.get("uid")
    root = os.geteuid() == 0
    jail.set_rlimits(
        memory_mb=limits["memory_mb"],
        cpu_sec=limits["cpu_sec"],
        nofile=limits["nofile"],
        nproc=limits["nproc"] if root and uid is not None else None,
        fsize_mb=limits["fsize_mb"],
    )
    if root and uid is not None:
        jail.drop_bounding_set()
        jail.drop_to(uid, uid)
    elif isolated and not root:
        jail.drop_bounding_set()
        jail.drop_capabilities()
    jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)
    if bpf:
        jail.load_seccomp(bpf)
    else:
        jail.prctl(jail.PR_SET_NO_NEW_PRIVS, 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
