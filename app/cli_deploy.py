"""Deploy planning for `nimbus functions deploy`: from a file or directory to the function to create or
update (runtime from the extension, the entry file, the default handler). Pure, so tested without a server."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

RUNTIME_BY_EXT = {
    ".py": "python",
    ".js": "nodejs",
    ".mjs": "nodejs",
    ".cjs": "nodejs",
    ".go": "go",
    ".rs": "rust",
    ".wat": "wasm",
    ".wasm": "wasm",
}
# Conventional entry files, most likely first; the server's own defaults (main.go, lib.rs, module.wat)
# lead for the runtimes whose handler names no module, so the server finds the same entry we chose.
PREFERRED_ENTRIES = {
    "python": ("main.py", "handler.py", "index.py", "app.py", "lambda_function.py"),
    "nodejs": ("index.js", "index.mjs", "index.cjs", "handler.js", "main.js", "app.js"),
    "go": ("main.go", "handler.go"),
    "rust": ("lib.rs", "main.rs", "handler.rs"),
    "wasm": ("module.wat", "main.wat", "handler.wat"),
}
_SKIP_DIRS = ("__pycache__",)


class DeployError(ValueError):
    """The path cannot be turned into a function (unknown extension, no entry file, binary code ...)."""


@dataclass(frozen=True)
class DeployPlan:
    name: str
    runtime: str
    handler: str
    handler_explicit: bool
    entry: str  # relative path of the file that holds the handler
    files: dict[str, str]
    skipped: list[str] = field(default_factory=list)  # files left out because they are not UTF-8 text
    binary: str | None = None  # a binary WASM module, base64 (sent as the API's `binary`)

    @property
    def code(self) -> str:
        return self.files[self.entry]


def canonical_runtime(value: str) -> str:
    from engine.services.function_schemas import normalize_runtime

    try:
        return normalize_runtime(value)
    except ValueError as exc:
        raise DeployError(str(exc)) from None


def infer_runtime(filename: str) -> str | None:
    return RUNTIME_BY_EXT.get(PurePosixPath(filename).suffix.lower())


def default_handler(runtime: str, entry: str) -> str:
    """`<module>.handler` for Python and Node.js (module = the entry path without extension), else the
    function name each compiled runtime's wrapper calls."""
    if runtime in ("python", "nodejs"):
        module = str(PurePosixPath(entry).with_suffix("")).replace("/", ".")
        return f"{module}.handler"
    return {"go": "Handler", "wasm": "_start"}.get(runtime, "handler")


def plan_deploy(
    path: Path, *, name: str | None = None, runtime: str | None = None, handler: str | None = None
) -> DeployPlan:
    """What deploying `path` (a file or a directory) sends: name, runtime, handler and files."""
    if path.is_dir():
        files, skipped = _read_dir(path)
        chosen = canonical_runtime(runtime) if runtime else _dir_runtime(files, path)
        entry = _dir_entry(files, chosen, handler, path)
        default_name = path.resolve().name
    elif path.is_file():
        chosen = canonical_runtime(runtime) if runtime else _file_runtime(path)
        if path.suffix.lower() == ".wasm":
            data = path.read_bytes()
            if not data.startswith(b"\0asm"):
                raise DeployError(f"{path} is not a WebAssembly module (no \\0asm header)")
            return DeployPlan(
                name=name or path.stem,
                runtime=chosen,
                handler=handler or default_handler(chosen, path.name),
                handler_explicit=handler is not None,
                entry=path.name,
                files={},
                binary=base64.b64encode(data).decode("ascii"),
            )
        try:
            files, skipped = {path.name: path.read_text(encoding="utf-8")}, []
        except UnicodeDecodeError:
            raise DeployError(f"{path} is not UTF-8 text") from None
        entry, default_name = path.name, path.stem
    else:
        raise DeployError(f"{path} does not exist")
    return DeployPlan(
        name=name or default_name,
        runtime=chosen,
        handler=handler or default_handler(chosen, entry),
        handler_explicit=handler is not None,
        entry=entry,
        files=files,
        skipped=skipped,
    )


def deploy_body(plan: DeployPlan, existing: dict[str, Any] | None) -> dict[str, Any]:
    """The POST (existing is None) or PUT body. An update keeps the function's handler when it already
    points at the deployed entry file (it may name another function than `handler`), and sends `code`
    only where the server will store it at the entry itself, never as a duplicate file."""
    from engine.services.function_schemas import entry_file

    handler = plan.handler
    if plan.binary is not None:
        body: dict[str, Any] = {"handler": handler, "binary": plan.binary}
        return body if existing is not None else {"name": plan.name, "runtime": plan.runtime, **body}
    if existing is not None and not plan.handler_explicit:
        fits = entry_file(existing["runtime"], existing["handler"], plan.files) == plan.entry
        handler = existing["handler"] if fits else handler
    body = {"handler": handler, "files": plan.files}
    if entry_file(plan.runtime, handler, plan.files) == plan.entry:
        body["code"] = plan.code
    if existing is None:
        body = {"name": plan.name, "runtime": plan.runtime, **body}
    return body


def _file_runtime(path: Path) -> str:
    runtime = infer_runtime(path.name)
    if runtime is None:
        known = ", ".join(sorted(RUNTIME_BY_EXT))
        raise DeployError(
            f"cannot infer the runtime of {path.name} (known extensions: {known}); pass --runtime"
        )
    return runtime


def _read_dir(root: Path) -> tuple[dict[str, str], list[str]]:
    files: dict[str, str] = {}
    skipped: list[str] = []
    for item in sorted(root.rglob("*")):
        rel = item.relative_to(root)
        # Hidden entries (.git, .venv, .env) and bytecode caches are never part of a function.
        if any(part.startswith(".") or part in _SKIP_DIRS for part in rel.parts) or not item.is_file():
            continue
        try:
            files[rel.as_posix()] = item.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            skipped.append(rel.as_posix())
    if not files:
        raise DeployError(f"{root} holds no text files to deploy")
    return files, skipped


def _dir_runtime(files: dict[str, str], root: Path) -> str:
    top = {rt for f in files if "/" not in f and (rt := infer_runtime(f))}
    found = top or {rt for f in files if (rt := infer_runtime(f))}
    if len(found) == 1:
        return found.pop()
    if not found:
        raise DeployError(f"no source file ({', '.join(sorted(RUNTIME_BY_EXT))}) in {root}; pass --runtime")
    raise DeployError(f"{root} holds files of several runtimes ({', '.join(sorted(found))}); pass --runtime")


def _dir_entry(files: dict[str, str], runtime: str, handler: str | None, root: Path) -> str:
    candidates = [f for f in files if infer_runtime(f) == runtime]
    if handler and "." in handler and runtime in ("python", "nodejs"):
        module = handler.rsplit(".", 1)[0].replace(".", "/")
        for candidate in candidates:
            if str(PurePosixPath(candidate).with_suffix("")) == module:
                return candidate
        raise DeployError(
            f"handler {handler!r} names module {module!r}, but {root} has no such {runtime} file"
        )
    for preferred in PREFERRED_ENTRIES[runtime]:
        if preferred in files:
            return preferred
    top = [c for c in candidates if "/" not in c]
    if len(candidates) == 1 or len(top) == 1:
        return candidates[0] if len(candidates) == 1 else top[0]
    if not candidates:
        raise DeployError(f"{root} has no {runtime} source file")
    raise DeployError(
        f"cannot tell the entry file among {', '.join(sorted(candidates))}; "
        f"name it {PREFERRED_ENTRIES[runtime][0]} or pass --handler module.function"
    )
