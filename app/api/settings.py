"""/api/v1/settings: the runtime settings, grouped; read one, change one (`{"value": ...}`, admins), or
reset one to its default. The original API's list shape (`settings` ordered by key, each with key, value,
description, updated_at) is kept, with the typed fields alongside."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from app.api.deps import CurrentPrincipal, PlatformDep
from engine.services.settings import SettingValue

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


class SettingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any  # checked against the setting's type and bounds by the service


def setting_view(s: SettingValue) -> dict[str, Any]:
    spec = s.spec
    return {
        "key": spec.key,
        "value": s.value,
        "default": s.default,
        "in_effect": s.in_effect,
        "is_default": s.is_default,
        "type": spec.type,
        "group": spec.group,
        "label": spec.label,
        "description": spec.description,
        "unit": spec.unit or None,
        "min": spec.minimum,
        "max": spec.maximum,
        "choices": list(spec.choices) or None,
        "sensitive": spec.sensitive,
        "apply": spec.apply,  # live | restart
        "restart_pending": s.restart_pending,
        "updated_by": s.updated_by or None,
        "updated_at": s.updated_at.isoformat() if s.updated_at else None,
    }


@router.get("")
async def list_settings(platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    groups = platform.system_settings.groups(principal)
    flat = sorted((v for _, _, values in groups for v in values), key=lambda v: v.spec.key)
    return {
        "settings": [setting_view(v) for v in flat],
        "groups": [
            {"id": group, "label": label, "settings": [setting_view(v) for v in values]}
            for group, label, values in groups
        ],
    }


@router.get("/{key}")
async def get_setting(key: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return setting_view(platform.system_settings.describe(principal, key))


@router.put("/{key}")
async def update_setting(
    key: str, body: SettingUpdate, platform: PlatformDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return setting_view(await platform.system_settings.update(principal, key, body.value))


@router.post("/{key}/reset")
async def reset_setting(key: str, platform: PlatformDep, principal: CurrentPrincipal) -> dict[str, Any]:
    return setting_view(await platform.system_settings.reset(principal, key))
