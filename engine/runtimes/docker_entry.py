"""The Docker executor's entry point INSIDE a function's container (stdlib only). Nimbus mounts this file
and the worker shim (python_worker/shim.py) read-only at /opt/nimbus and runs `python3 -I entry.py` as the
container's PID 1. It connects to the protocol socket Nimbus listens on (a directory bind-mounted at
/run/nimbus) and hands over to the shim, which speaks the same worker protocol as a forked process worker:
hello (with its output memfd and a pidfd of itself), init, invoke ... The function's code is at /var/task.

Anything printed before the shim takes fds 1 and 2 over goes to the container's log, which Nimbus reads
when a container ends before its worker said hello."""

from __future__ import annotations

import socket
import sys

HERE = "/opt/nimbus"
SOCKET = "/run/nimbus/sock"
CODE_ROOT = "/var/task"


def main() -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - the image's Python, not ours
        print(
            f"the worker needs Python >= 3.10 in the image; it has {sys.version.split()[0]}", file=sys.stderr
        )
        return 3
    sys.path.insert(0, HERE)
    try:
        import shim  # type: ignore[import-not-found]  # python_worker/shim.py, mounted beside this file
    finally:
        sys.path.remove(HERE)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(SOCKET)
    # The image's own interpreter paths (its stdlib and site-packages): what a function may import besides
    # its code and layers.
    python_path = [p for p in sys.path if p and p != HERE]
    worker = shim.Worker({"python_path": python_path, "executable": sys.executable})
    worker.serve(sock.detach(), CODE_ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
