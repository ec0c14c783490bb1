"""/api/v1/layers (list, create, read, delete, add and read versions) and /api/v1/functions/{id}/layers
(the layers a function mounts). Thin: parse, call the layer services, render."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from app.api.deps import CurrentPrincipal, PlatformDep
from app.api.views import layer_version_view, layer_view
from engine.errors import BadRequest, Invalid, TooLarge
from engine.services.layer_attach import AttachedLayer
from engine.services.layer_schemas import LayerCreate, LayerRef

router = APIRouter(prefix="/api/v1", tags=["layers"])

_FORM_OVERHEAD = 1024 * 1024  # multipart headers and boundaries around the zip


@router.get("/layers")
async def list_layers(
    platform: PlatformDep,
    principal: CurrentPrincipal,
    search: str | None = Query(default=None, max_length=128),
    runtime: str | None = Query(default=None, max_length=16),
    limit: int = Query(default=20, ge=1, le=100),
    offset: int = Query(default=0, ge=0),
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await platform.layers.list(
        principal, search=search, runtime=runtime, limit=limit, offset=offset, cursor=cursor
    )
    layers = []
    for item in page.items:
        latest = item.latest
        layers.append(
            {
                **layer_view(item.layer),
                "latest": layer_version_view(latest) if latest is not None else None,
                "size_bytes": latest.size_bytes if latest is not None else 0,
                "used_by": item.used_by,
            }
        )
    return {
        "layers": layers,
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
        "next_cursor": page.next_cursor,
    }


@router.post("/layers", status_code=201)
async def create_layer(
    body: LayerCreate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return layer_view(await platform.layers.create(principal, body))


@router.get("/layers/{ref}")
async def get_layer(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    detail = await platform.layers.get(principal, ref)
    return {
        "layer": layer_view(detail.layer),
        "versions": [layer_version_view(v) for v in detail.versions],
        "used_by": [
            {"function_id": u.function_id, "function_name": u.function_name, "layer_version": u.layer_version}
            for u in detail.used_by
        ],
    }


@router.delete("/layers/{ref}", status_code=204)
async def delete_layer(
    ref: str,
    platform: PlatformDep,
    principal: CurrentPrincipal,
    force: bool = Query(default=False, description="also detach it from the functions that use it"),
) -> Response:
    await platform.layers.delete(principal, ref, force=force)
    return Response(status_code=204)


@router.post("/layers/{ref}/versions")
async def add_version(
    ref: str, request: Request, platform: PlatformDep, principal: CurrentPrincipal
) -> JSONResponse:
    """A zip as the multipart file field `content` (201, ready), or JSON {"requirements": "..."} or
    {"package_json": "..."} to build one (202, building; poll the version or follow LayerChanged)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        data = await _uploaded_zip(request, platform.settings.max_layer_bytes)
        version = await platform.layers.add_zip(principal, ref, data)
        return JSONResponse(layer_version_view(version), status_code=201)
    if kind == "application/json":
        source, manifest = _build_request(await request.json())
        version = await platform.layers.add_build(principal, ref, source, manifest)
        return JSONResponse(layer_version_view(version, detail=True), status_code=202)
    raise BadRequest(
        "send a zip as multipart/form-data in the file field 'content', "
        "or JSON with 'requirements' (requirements.txt) or 'package_json' (package.json)",
        field="content",
    )


@router.get("/layers/{ref}/versions/{number}")
async def get_version(
    ref: str, number: int, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return layer_version_view(await platform.layers.version(principal, ref, number), detail=True)


@router.get("/functions/{ref}/layers")
async def function_layers(ref: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return _attached_view(await platform.function_layers.list(principal, ref))


@router.put("/functions/{ref}/layers")
async def set_function_layers(
    ref: str, request: Request, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Body: a bare JSON array of {layer_id (id or name), layer_version}, in mount order; [] detaches all."""
    refs = _layer_refs(await request.json())
    return _attached_view(await platform.function_layers.set(principal, ref, refs))


# --- parsing ----------------------------------------------------------------------------------------


async def _uploaded_zip(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
        raise TooLarge(f"the upload is {declared} bytes; a layer zip may be {limit} bytes", field="content")
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("content")
        if not isinstance(upload, UploadFile):
            raise BadRequest("send the layer zip in the multipart file field 'content'", field="content")
        data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the layer zip is larger than the limit of {limit} bytes", field="content")
    return data


def _build_request(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise Invalid("requirements", "send an object with 'requirements' or 'package_json'")
    unknown = sorted(set(body) - {"requirements", "package_json"})
    if unknown:
        raise Invalid(unknown[0], f"unknown field {unknown[0]!r}; send 'requirements' or 'package_json'")
    given = [(key, value) for key, value in body.items() if value is not None]
    if len(given) != 1:
        raise Invalid("requirements", "send exactly one of 'requirements' and 'package_json'")
    key, value = given[0]
    if isinstance(value, dict) and key == "package_json":
        value = json.dumps(value, indent=2)
    if not isinstance(value, str):
        raise Invalid(key, f"{key} must be the file's text")
    return ("pip" if key == "requirements" else "npm"), value


def _layer_refs(body: Any) -> list[LayerRef]:
    if not isinstance(body, list):
        raise Invalid("layers", "send a JSON array of {layer_id, layer_version}")
    refs = []
    for i, item in enumerate(body):
        try:
            refs.append(LayerRef.model_validate(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = ".".join(str(p) for p in error.get("loc", ()))
            field = f"layers[{i}]" + (f".{loc}" if loc else "")
            raise Invalid(field, f"{field}: {error.get('msg', 'invalid')}") from None
    return refs


def _attached_view(layers: list[AttachedLayer]) -> dict[str, Any]:
    return {
        "layers": [
            {
                "layer_id": a.layer_id,
                "layer_name": a.layer_name,
                "layer_version": a.layer_version,
                "order": a.order,
                "status": a.status,
                "size_bytes": a.size_bytes,
            }
            for a in layers
        ],
        "total": len(layers),
    }
