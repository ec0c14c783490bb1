"""The Settings page through NiceGUI's user simulation over a real platform: groups and their settings,
editing with a success notice, a refused value shown on its field with nothing stored, the confirmation
for security settings, the restart mark, reset, read-only for non-admins, and changes made elsewhere
showing up live."""

from __future__ import annotations

from nicegui.testing.user import User

from engine.platform import Platform
from engine.principal import SYSTEM
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value


async def open_settings(console: User) -> None:
    await log_in(console, then="/settings")
    await console.should_see(marker="settings-group-general", retries=50)


async def test_groups_show_their_settings_and_how_they_apply(console: User) -> None:
    await open_settings(console)
    for group in ("general", "functions", "workflows", "security"):
        await console.should_see(marker=f"settings-group-{group}")
    for key in ("api_address", "default_timeout", "default_memory", "max_code_size", "max_concurrency"):
        await console.should_see(marker=f"setting-{key}")
    await console.should_see(marker="setting-live-default_timeout")
    await console.should_see(marker="setting-restart-queue_workers")
    assert element(console, "setting-input-default_timeout").value == 30
    await console.should_see("default 30 s")
    await console.should_see(marker="nav-Settings")


async def test_a_change_is_saved_with_a_notice(console: User, platform: Platform) -> None:
    await open_settings(console)
    set_value(console, "setting-input-default_timeout", 45)
    console.find(marker="setting-save-default_timeout").click()
    await console.should_see("Saved Default timeout.", retries=50)
    assert platform.system_settings.get("default_timeout") == 45
    await console.should_see("changed by admin")
    assert element(console, "setting-reset-default_timeout").enabled


async def test_a_refused_value_is_shown_on_its_field_and_nothing_is_stored(
    console: User, platform: Platform
) -> None:
    await open_settings(console)
    set_value(console, "setting-input-default_memory", 64)
    console.find(marker="setting-save-default_memory").click()
    await eventually(lambda: element(console, "setting-input-default_memory").error)
    assert element(console, "setting-input-default_memory").error == "must be between 128 and 3072 MB"
    set_value(console, "setting-input-default_memory", 300.5)
    console.find(marker="setting-save-default_memory").click()
    await eventually(
        lambda: element(console, "setting-input-default_memory").error == "must be a whole number"
    )
    set_value(console, "setting-input-default_memory", None)
    console.find(marker="setting-save-default_memory").click()
    await eventually(
        lambda: element(console, "setting-input-default_memory").error == "Default memory is required."
    )
    assert platform.system_settings.get("default_memory") == 256
    assert (await platform.audit.list(SYSTEM, action="settings.update")).items == []


async def test_a_security_setting_asks_first(console: User, platform: Platform) -> None:
    await open_settings(console)
    set_value(console, "setting-input-cors_allowed_origins", "https://app.example.com, *")
    console.find(marker="setting-save-cors_allowed_origins").click()
    await console.should_see(marker="confirm-dialog", retries=50)
    await console.should_see("Allowed CORS origins is a security setting.")
    console.find(marker="confirm-cancel").click()
    await console.should_not_see(marker="confirm-dialog", retries=50)
    assert platform.system_settings.get("cors_allowed_origins") == []
    console.find(marker="setting-save-cors_allowed_origins").click()
    await console.should_see(marker="confirm-ok", retries=50)
    console.find(marker="confirm-ok").click()
    await console.should_see("Saved Allowed CORS origins.", retries=50)
    assert platform.system_settings.get("cors_allowed_origins") == ["https://app.example.com", "*"]


async def test_a_restart_setting_is_marked_pending_after_a_change(console: User, platform: Platform) -> None:
    await open_settings(console)
    await console.should_not_see(marker="setting-pending-queue_workers")
    set_value(console, "setting-input-queue_workers", 8)
    console.find(marker="setting-save-queue_workers").click()
    await console.should_see("It applies after a restart.", retries=50)
    await console.should_see(marker="setting-pending-queue_workers")
    await console.should_see("in effect until a restart: 4")
    assert platform.system_settings.get("queue_workers") == 4  # this node keeps its start value


async def test_reset_returns_to_the_default(console: User, platform: Platform) -> None:
    await platform.system_settings.update(SYSTEM, "workflow_max_states", 20)
    await open_settings(console)
    assert element(console, "setting-input-workflow_max_states").value == 20
    console.find(marker="setting-reset-workflow_max_states").click()
    await console.should_see("Max states is back to its default.", retries=50)
    assert element(console, "setting-input-workflow_max_states").value == 100
    assert platform.system_settings.get("workflow_max_states") == 100
    assert not element(console, "setting-reset-workflow_max_states").enabled


async def test_a_change_made_elsewhere_shows_up_live(console: User, platform: Platform) -> None:
    await open_settings(console)
    await platform.system_settings.update(SYSTEM, "api_address", "https://nimbus.example.com")
    await eventually(
        lambda: element(console, "setting-input-api_address").value == "https://nimbus.example.com"
    )
    await console.should_see("changed by system")


async def test_non_admins_see_settings_read_only(console: User, platform: Platform) -> None:
    await platform.auth.create_user(SYSTEM, "dev", "developer password 1", role="developer")
    await log_in(console, "dev", "developer password 1", then="/settings")
    await console.should_see(marker="settings-read-only", retries=50)
    assert not element(console, "setting-input-default_timeout").enabled
    await console.should_not_see(marker="setting-save-default_timeout")
