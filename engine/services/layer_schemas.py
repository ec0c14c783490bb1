"""What layer requests may contain, validated once where data enters: a new layer, a layer reference to
attach, and the manifests a version is built from (requirements.txt for pip, package.json for npm).
Manifests are checked so a build cannot read files of this server or change how pip and npm are set up."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.errors import Invalid
from engine.services.function_schemas import normalize_runtime

LAYER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
MAX_LAYERS = 5  # per function (Lambda's limit too)
MAX_MANIFEST_CHARS = 64 * 1024

# requirements.txt lines may carry only these options; the rest would change where pip looks
# (-i, -f), read other files (-r, -c) or build from a path (-e).
_PIP_LINE_OPTIONS = ("--hash=", "--hash ", "--pre")
# package.json dependency specs that read this server's file system
_LOCAL_SPEC = re.compile(r"^(file:|link:|portal:|\.|/|~)")
_TARBALL = re.compile(r"\.(tgz|tar\.gz)$")
_DEPENDENCY_SECTIONS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")


class LayerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=128)
    description: str = Field(default="", max_length=1000)
    compatible_runtimes: list[str] = Field(min_length=1, max_length=8)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not LAYER_NAME_RE.match(v):
            raise ValueError("name must start with a letter and hold only letters, digits, '_', '.', '-'")
        return v

    @field_validator("compatible_runtimes")
    @classmethod
    def _runtimes(cls, v: list[str]) -> list[str]:
        return sorted({normalize_runtime(r) for r in v})


class LayerRef(BaseModel):
    """One entry of PUT /functions/{id}/layers: a layer (id or name) at a version."""

    model_config = ConfigDict(extra="forbid")

    layer_id: str = Field(min_length=1, max_length=128)
    layer_version: int = Field(ge=1)


def check_requirements(text: str) -> str:
    """A requirements.txt to build from, or Invalid("requirements", ...) naming the offending line."""
    if len(text) > MAX_MANIFEST_CHARS:
        raise Invalid("requirements", f"requirements.txt is longer than {MAX_MANIFEST_CHARS} characters")
    packages = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            if not line.startswith(_PIP_LINE_OPTIONS):
                raise Invalid("requirements", f"line {number}: pip option {line.split()[0]!r} is not allowed")
            continue
        packages += 1
    if not packages:
        raise Invalid("requirements", "requirements.txt names no package")
    return text if text.endswith("\n") else text + "\n"


def check_package_json(text: str) -> str:
    """A package.json to build from, or Invalid("package_json", ...) saying what is wrong with it."""
    if len(text) > MAX_MANIFEST_CHARS:
        raise Invalid("package_json", f"package.json is longer than {MAX_MANIFEST_CHARS} characters")
    try:
        manifest: Any = json.loads(text)
    except ValueError as exc:
        raise Invalid("package_json", f"package.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise Invalid("package_json", "package.json must be a JSON object")
    if "workspaces" in manifest:
        raise Invalid("package_json", "workspaces are not supported in a layer")
    names = 0
    for section in (*_DEPENDENCY_SECTIONS, "overrides"):
        deps = manifest.get(section, {})
        if not isinstance(deps, dict):
            raise Invalid("package_json", f"{section} must be an object of name: version")
        for name, spec in _flatten(deps):
            if not isinstance(spec, str):
                raise Invalid("package_json", f"{section}.{name} must be a version string")
            if _LOCAL_SPEC.match(spec) and not _TARBALL.search(spec):
                raise Invalid(
                    "package_json",
                    f"{section}.{name}: local folders cannot be installed into a layer (a .tgz can)",
                )
            names += section == "dependencies"
    if not names:
        raise Invalid("package_json", "package.json has no dependencies to install")
    return text


def _flatten(deps: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dependency specs, including npm's nested overrides ({"a": {"b": "1.0"}})."""
    out: list[tuple[str, Any]] = []
    for name, spec in deps.items():
        if isinstance(spec, dict):
            out += _flatten(spec, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", spec))
    return out
