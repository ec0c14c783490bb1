"""The Python zygote: a small fork server started once by the app (`python -I zygote.py --fd N --root DIR`),
stdlib only. It prepares the sandbox (see confine.py), pre-imports the shim and common stdlib modules, then
forks one sandboxed worker per spawn request. It is a child subreaper and reports every exit status.

Control channel (SOCK_SEQPACKET, one JSON message per packet, inherited as --fd):
  zygote -> app  hello {pid, isolation}
  app -> zygote  spawn {id, cfg} + the worker's socket end as SCM_RIGHTS; served by a pre-forked "blank"
                 worker when one waits (spawn.py), else by a fresh fork; blanks are refilled between bursts
  zygote -> app  exit {id, pid, code, signal, maxrss_kb} | spawn_error {id, message}
  app -> zygote  kill {id};  EOF = shut down: every worker is killed (each also has a parent-death signal).
The zygote never sees a function's env vars or secrets: those go to the worker over its own socket.

`--probe` prepares, prints the isolation report as JSON and exits (engine/sandbox.py: detect_isolation)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # `-I` leaves the script's dir off sys.path

import confine
import jail
import spawn

# Modules functions commonly import: loaded once here, shared copy-on-write by every worker.
PRELOAD = (
    "base64",
    "collections",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "functools",
    "hashlib",
    "hmac",
    "itertools",
    "math",
    "random",
    "re",
    "string",
    "textwrap",
    "typing",
    "uuid",
    "statistics",
    "urllib.parse",
    "pathlib",
    "tempfile",
    "zlib",
    "struct",
    "copy",
    "operator",
    "concurrent.futures",
    "email.utils",
    "http",
    "html",
    "unicodedata",
    "bisect",
    "heapq",
)


class Zygote:
    def __init__(self, ctl: socket.socket, sandbox: confine.Sandbox, prefork: int) -> None:
        self.ctl = ctl
        self.sandbox = sandbox
        self.prefork = prefork
        self.blanks: list[tuple[int, socket.socket]] = []  # pre-forked workers waiting for a function
        self.pid = os.getpid()
        self.children: dict[int, int] = {}  # worker pid -> spawn id
        self.by_id: dict[int, int] = {}

    def send(self, msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.ctl.send(json.dumps(msg).encode())

    def serve(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd does the work
        sel = selectors.DefaultSelector()
        sel.register(self.ctl, selectors.EVENT_READ, "ctl")
        sel.register(wake_r, selectors.EVENT_READ, "sig")
        self.send({"t": "hello", "pid": self.pid, "isolation": self.sandbox.report()})
        self.replenish()
        try:
            while True:
                for key, _ in sel.select():
                    if key.data == "sig":
                        with contextlib.suppress(BlockingIOError):
                            while os.read(wake_r, 512):
                                pass
                        self.reap()
                    elif not self.on_control():
                        return
        finally:
            self.shutdown()

    def on_control(self) -> bool:
        while True:
            try:
                data, fds = jail.recv_fds(self.ctl, 1 << 16, 4, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                self.replenish()  # between bursts, never while a request waits
                return True
            except OSError:
                return False
            if not data:
                for fd in fds:
                    os.close(fd)
                return False
            try:
                msg = json.loads(data)
            except ValueError:
                msg = {}
            kind = msg.get("t")
            if kind == "spawn" and len(fds) == 1:
                self.spawn(int(msg["id"]), msg["cfg"], fds[0])
            else:
                for fd in fds:
                    os.close(fd)
                if kind == "kill":
                    pid = self.by_id.get(int(msg.get("id", -1)))
                    if pid is not None:  # not reaped yet, so the pid (and its group) cannot be reused
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(pid, signal.SIGKILL)
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)

    def spawn(self, spawn_id: int, cfg: dict[str, Any], fd: int) -> None:
        try:
            pid = self.assign_blank(cfg, fd)
            if pid is None:
                pid = spawn.fork_worker(self.sandbox, cfg, fd)
        except OSError as exc:
            self.send({"t": "spawn_error", "id": spawn_id, "message": f"fork failed: {exc}"})
            return
        finally:
            os.close(fd)  # a forked child never comes back here
        self.children[pid] = spawn_id
        self.by_id[spawn_id] = pid

    def assign_blank(self, cfg: dict[str, Any], fd: int) -> int | None:
        data = json.dumps(cfg).encode()
        while self.blanks:
            pid, chan = self.blanks.pop(0)
            try:
                socket.send_fds(chan, [data], [fd])
                return pid
            except OSError:
                continue  # it died while waiting; the reaper collects it
            finally:
                chan.close()
        return None

    def replenish(self) -> None:
        while len(self.blanks) < self.prefork:
            try:
                self.blanks.append(spawn.fork_blank(self.sandbox))
            except OSError:
                return

    def reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait3(os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            spawn_id = self.children.pop(pid, None)
            for blank in [b for b in self.blanks if b[0] == pid]:
                self.blanks.remove(blank)
                blank[1].close()
            if spawn_id is None:
                continue  # an orphan of some worker, reparented to us as the subreaper
            self.by_id.pop(spawn_id, None)
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            self.send(
                {
                    "t": "exit",
                    "id": spawn_id,
                    "pid": pid,
                    "code": code,
                    "signal": sig,
                    "maxrss_kb": usage.ru_maxrss,
                }
            )

    def shutdown(self) -> None:
        for pid in list(self.children) + [pid for pid, _ in self.blanks]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int)
    parser.add_argument("--root", required=True)
    parser.add_argument("--functions", required=True)
    parser.add_argument("--probe-uid", type=int, default=61000)
    parser.add_argument("--tmp-mb", type=int, default=64)
    parser.add_argument("--prefork", type=int, default=2)
    parser.add_argument("--probe", action="store_true")
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError):
        jail.set_subreaper()
    sandbox = confine.Sandbox(args.root, args.functions, args.probe_uid, tmp_mb=args.tmp_mb)
    sandbox.prepare()
    if args.probe:
        print(json.dumps(sandbox.report()))
        return 0
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    # Everything imported so far is shared by all workers; keep the collector from touching (and so
    # copying) those pages in every child.
    gc.collect()
    gc.freeze()
    ctl = socket.socket(fileno=args.fd)
    ctl.setblocking(True)
    Zygote(ctl, sandbox, max(0, args.prefork)).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
