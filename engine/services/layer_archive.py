"""A layer version's content as a zip: checking an uploaded archive (no path leaves the tree, no
symlinks or device files, sizes within the limit), unpacking a checked one, and zipping a built tree.
Blocking: callers run these in a thread."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.errors import Invalid, TooLarge

UNPACKED_FACTOR = 5  # a version may unpack to 5 times the zip limit (Lambda: 50 MB zipped, 250 MB unzipped)
MAX_FILES = 50_000


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    file_count: int
    unpacked_bytes: int


def check_zip(data: bytes, *, max_bytes: int, field: str = "content") -> ArchiveInfo:
    """Refuse what must never be unpacked (TooLarge / Invalid naming `field`), and verify every entry's
    checksum, so a version that is accepted can always be unpacked."""
    if len(data) > max_bytes:
        raise TooLarge(f"the layer zip is {len(data)} bytes; the limit is {max_bytes} bytes", field=field)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise Invalid(field, "not a zip archive") from None
    with archive:
        entries = archive.infolist()
        files = [e for e in entries if not e.is_dir()]
        if not files:
            raise Invalid(field, "the zip holds no files")
        if len(entries) > MAX_FILES:
            raise Invalid(field, f"the zip holds {len(entries)} entries; at most {MAX_FILES} are allowed")
        for entry in entries:
            _check_entry(entry, field)
        unpacked = sum(e.file_size for e in files)
        limit = max_bytes * UNPACKED_FACTOR
        if unpacked > limit:
            raise TooLarge(f"the layer unpacks to {unpacked} bytes; the limit is {limit} bytes", field=field)
        try:
            broken = archive.testzip()
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
            raise Invalid(field, f"the zip cannot be read: {exc}") from None
        if broken is not None:
            raise Invalid(field, f"the zip is damaged: entry {broken!r} fails its checksum")
    return ArchiveInfo(file_count=len(files), unpacked_bytes=unpacked)


def _check_entry(entry: zipfile.ZipInfo, field: str) -> None:
    name = entry.filename
    if "\0" in name or "\\" in name:
        raise Invalid(field, f"entry {name!r}: the name holds a backslash or NUL")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise Invalid(field, f"entry {name!r} has an absolute path")
    if ".." in path.parts:
        raise Invalid(field, f"entry {name!r} leaves the layer's directory (zip slip)")
    mode = entry.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise Invalid(field, f"entry {name!r} is a symbolic link; layers may hold only files and folders")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise Invalid(field, f"entry {name!r} is not a regular file or folder")
    if entry.flag_bits & 0x1:
        raise Invalid(field, f"entry {name!r} is encrypted")


def extract_zip(data: bytes, target: Path) -> None:
    """Unpack a checked zip into `target` (which must exist): folders 0755, files 0644 (0755 when the
    archive marks them executable), so the tree is read-only for everyone but its owner."""
    root = target.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.infolist():
            _check_entry(entry, "content")  # again: the bytes come from the database, trust nothing
            path = (root / entry.filename).resolve()
            if path != root and not str(path).startswith(str(root) + os.sep):
                raise Invalid("content", f"entry {entry.filename!r} leaves the layer's directory")
            if entry.is_dir():
                path.mkdir(parents=True, exist_ok=True, mode=0o755)
                continue
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            with archive.open(entry) as src, open(path, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            executable = (entry.external_attr >> 16) & 0o100
            path.chmod(0o755 if executable else 0o644)
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    root.chmod(0o755)


def zip_tree(root: Path) -> tuple[bytes, ArchiveInfo]:
    """Zip a built tree. Symlinks (npm's .bin links) are stored as the file they point to when that is
    inside the tree, and left out otherwise: a layer holds only files and folders."""
    buffer = io.BytesIO()
    count = unpacked = 0
    real_root = root.resolve()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            base = Path(dirpath)
            rel_dir = base.relative_to(root).as_posix()
            if rel_dir != "." and not filenames and not dirnames:
                archive.writestr(zipfile.ZipInfo(rel_dir + "/"), b"")
            for name in sorted(filenames):
                path = base / name
                real = path.resolve()
                if not str(real).startswith(str(real_root) + os.sep) or not real.is_file():
                    continue
                info = zipfile.ZipInfo.from_file(real, (path.relative_to(root)).as_posix())
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | (0o755 if os.access(real, os.X_OK) else 0o644)) << 16
                with open(real, "rb") as src, archive.open(info, "w") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                count += 1
                unpacked += info.file_size
    return buffer.getvalue(), ArchiveInfo(file_count=count, unpacked_bytes=unpacked)
