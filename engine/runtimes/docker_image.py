"""Build a minimal Python image for the Docker executor from this machine's own interpreter, without any
registry: a root filesystem holding the interpreter (at its host path), the shared libraries it and its
extension modules load (found by `ldd`), and its standard library without tests, tkinter, idle, ensurepip
and site-packages; `python3` on PATH points at it. Imported with `docker import` (about 60-80 MB). The
tag names a digest of what went in, so an unchanged interpreter is built once per engine.

Used by the Docker executor's tests; also how an operator without registry access gets a first image."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

BUILDER_VERSION = "1"
REPOSITORY = "nimbus-python-host"
SKIP_STDLIB = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages",
               "dist-packages"}  # fmt: skip
_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")


def host_python_tag() -> str:
    """`nimbus-python-host:<version>-<digest>` for the running interpreter."""
    exe = os.path.realpath(sys.executable)
    st = os.stat(exe)
    digest = hashlib.sha256(
        f"{BUILDER_VERSION}|{exe}|{sys.version}|{st.st_size}|{st.st_mtime_ns}".encode()
    ).hexdigest()[:12]
    return f"{REPOSITORY}:{sys.version_info[0]}.{sys.version_info[1]}-{digest}"


def ensure_host_python_image(client: Any) -> str:
    """The tag of an image running this machine's Python, imported into the engine `client` (a
    docker.DockerClient) unless it is there already. Blocking."""
    from docker.errors import ImageNotFound

    tag = host_python_tag()
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    repository, _, version = tag.partition(":")
    with tempfile.TemporaryDirectory(prefix="nimbus-image-") as tmp:
        archive = Path(tmp) / "rootfs.tar"
        write_rootfs(archive)
        client.api.import_image_from_file(str(archive), repository=repository, tag=version)
    client.images.get(tag)  # raises if the import did not produce it
    return tag


def write_rootfs(archive: Path) -> None:
    """The root filesystem tarball (see the module docstring)."""
    exe = os.path.realpath(sys.executable)
    stdlib = Path(os.path.realpath(sysconfig.get_paths()["stdlib"]))
    files: dict[str, str] = {}  # path in the image -> host file to read
    files[exe] = exe
    for path in _stdlib_files(stdlib):
        files[str(path)] = str(path)
    binaries = [exe, *(p for p in files if p.endswith(".so"))]
    for lib in _shared_libraries(binaries):
        files.setdefault(lib, os.path.realpath(lib))
    with tarfile.open(archive, "w") as tar:
        dirs: set[str] = set()
        for target in sorted(files):
            _add_parents(tar, target, dirs)
            _add_file(tar, target, files[target])
        _add_parents(tar, "/usr/local/bin/python3", dirs)
        _add_parents(tar, "/tmp/.keep", dirs)
        link = tarfile.TarInfo("usr/local/bin/python3")
        link.type, link.linkname, link.mode = tarfile.SYMTYPE, exe, 0o777
        tar.addfile(link)


def _stdlib_files(stdlib: Path) -> Iterator[Path]:
    for root, dirnames, names in os.walk(stdlib):
        if Path(root) == stdlib:
            dirnames[:] = [d for d in dirnames if d not in SKIP_STDLIB and not d.startswith("config-")]
        for name in names:
            if name.endswith((".opt-1.pyc", ".opt-2.pyc", ".a")):
                continue
            path = Path(root) / name
            if path.is_file():
                yield path


def _shared_libraries(binaries: Iterable[str]) -> set[str]:
    """Every library `ldd` resolves for the binaries (the dynamic loader's own path included)."""
    libs: set[str] = set()
    for binary in binaries:
        done = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
        for line in done.stdout.splitlines():
            match = _LDD_LINE.search(line)
            if match and os.path.exists(match.group(1)):
                libs.add(match.group(1))
    return libs


def _add_parents(tar: tarfile.TarFile, target: str, dirs: set[str]) -> None:
    parts = Path(target).parts[1:-1]
    for i in range(1, len(parts) + 1):
        name = "/".join(parts[:i])
        if name not in dirs:
            dirs.add(name)
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)


def _add_file(tar: tarfile.TarFile, target: str, source: str) -> None:
    data = Path(source).read_bytes()
    info = tarfile.TarInfo(target.lstrip("/"))
    info.size = len(data)
    executable = os.stat(source).st_mode & 0o111
    info.mode = 0o755 if executable else 0o644  # readable by the container's unprivileged uid
    tar.addfile(info, io.BytesIO(data))
