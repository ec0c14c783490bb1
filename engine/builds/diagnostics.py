"""Reading a compiler's output: the first error as "file:line:col: message" (what a failed deploy says
and the console highlights), and where such a message points. Pure. cargo's own errors (a crate no
layer vendors) read like rustc's; a place inside a vendored crate is shown as vendor/<crate>/..."""

from __future__ import annotations

import re
from collections.abc import Sequence

from engine.builds.sources import generated_files

_GO_ERROR = re.compile(r"^(?:\./)?(?P<file>[\w./+-]+\.go):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<msg>.+)$")
_RUST_ERROR = re.compile(r"^error(?:\[(?P<code>E\d+)\])?: (?P<msg>.+)$")
_RUST_AT = re.compile(r"^\s*--> (?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+)$")
_MISSING_CRATE = "no matching package named"
_IN_JAIL = "/build/"  # where the jail shows a build's directory (engine/builds/launcher.py)
_LOCATION = re.compile(r"^(?P<file>[\w./+-]+\.(?:go|rs)):(?P<line>\d+)")
HINTS = {
    "go": "func Handler(ctx context.Context, event json.RawMessage) (any, error)",
    "rust": "pub fn handler(event: &str, ctx: &Context) -> Result<String, String>",
}


def first_error(language: str, lines: Sequence[str]) -> str:
    """The compiler's first error with its place, e.g. "main.go:7:2: undefined: x"; "" if none found."""
    found = _first_go(lines) if language == "go" else _first_rust(lines)
    if found and found.split(":", 1)[0] in generated_files(language):
        found += f" (in the wrapper Nimbus generates: is the handler declared as {HINTS[language]}?)"
    return found


def _first_go(lines: Sequence[str]) -> str:
    for line in lines:
        m = _GO_ERROR.match(line)
        if m:
            place = f"{m['file']}:{m['line']}" + (f":{m['col']}" if m["col"] else "")
            return f"{place}: {m['msg']}"
    return next((line for line in lines if line.startswith("go: ")), "")


def _first_rust(lines: Sequence[str]) -> str:
    for i, line in enumerate(lines):
        m = _RUST_ERROR.match(line)
        if not m or m["msg"].startswith(("aborting due to", "could not compile")):
            continue
        message = m["msg"] + (f" [{m['code']}]" if m["code"] else "")
        for follow in lines[i + 1 : i + 4]:
            at = _RUST_AT.match(follow)
            if at:
                return f"{at['file'].removeprefix(_IN_JAIL)}:{at['line']}:{at['col']}: {message}"
        if message.startswith(_MISSING_CRATE):
            message += " (no layer of the function vendors it: attach one whose vendor/ holds the crate)"
        return message
    return ""


def location(error: str) -> tuple[str, int] | None:
    """(file, line) that an error message from `first_error` points at."""
    m = _LOCATION.match(error)
    return (m["file"], int(m["line"])) if m else None
