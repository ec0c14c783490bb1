"""The Schedules pages through NiceGUI's user simulation over a real platform: the empty state, the
create dialog's live preview of the next runs and its validation messages, pause/resume and delete (with
confirmation) from the list, the list following changes made elsewhere, and a schedule's page with its
next run and a run history that shows a run's outcome as it finishes."""

from __future__ import annotations

from nicegui.testing.user import User

from data.models import Schedule
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate
from engine.services.schedule_schemas import ScheduleCreate
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value

ECHO = "def handler(event, context):\n    return event\n"


async def _function(platform: Platform, name: str = "echo") -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name=name, runtime="python", code=ECHO))


async def _schedule(platform: Platform, name: str = "nightly", **fields: object) -> Schedule:
    values: dict[str, object] = {"name": name, "target_id": "echo", "cron": "0 3 * * *"} | fields
    return await platform.schedules.create(SYSTEM, ScheduleCreate(**values))  # type: ignore[arg-type]


def count(user: User, marker: str) -> int:
    try:
        return len(user.find(marker=marker).elements)
    except AssertionError:
        return 0


async def _open_new(console: User) -> None:
    await console.should_see(marker="schedule-new", retries=50)
    console.find(marker="schedule-new").click()
    await console.should_see("Type an expression to see its next runs.")


async def test_the_empty_list_says_how_to_start(console: User, platform: Platform) -> None:
    await log_in(console, then="/schedules")
    await console.should_see("No schedules yet", retries=50)
    await console.should_see(marker="nav-Schedules")


async def test_the_dialog_previews_the_next_runs_and_explains_an_invalid_expression(
    console: User, platform: Platform
) -> None:
    await _function(platform)
    await log_in(console, then="/schedules")
    await _open_new(console)

    set_value(console, "schedule-cron", "*/5 * * * *")
    await eventually(lambda: count(console, "preview-run") == 5)
    set_value(console, "schedule-cron", "61 * * * *")
    await console.should_see("the minute field's value 61 is out of range (0-59)")
    assert count(console, "preview-run") == 0
    assert element(console, "schedule-cron").error == "the minute field's value 61 is out of range (0-59)"
    set_value(console, "schedule-cron", "@hourly")
    set_value(console, "schedule-timezone", "Mars/Olympus")
    await console.should_see("unknown timezone 'Mars/Olympus'")
    assert "unknown timezone" in str(element(console, "schedule-timezone").error)

    set_value(console, "schedule-timezone", "Asia/Tokyo")
    await eventually(lambda: count(console, "preview-run") == 5)
    await console.should_see("JST")
    set_value(console, "schedule-name", "hourly-echo")
    set_value(console, "schedule-target", "echo")
    set_value(console, "schedule-payload", '{"from": "console"')
    console.find(marker="schedule-save").click()
    await eventually(lambda: "not valid JSON" in str(element(console, "schedule-payload").error))
    set_value(console, "schedule-payload", '{"from": "console"}')
    set_value(console, "schedule-misfire", "run_once")
    console.find(marker="schedule-save").click()

    await console.should_see(marker="schedule-row-hourly-echo", retries=50)
    saved = await platform.schedules.get(SYSTEM, "hourly-echo")
    assert (saved.cron, saved.timezone, saved.misfire_policy) == ("@hourly", "Asia/Tokyo", "run_once")
    assert saved.payload == {"from": "console"} and saved.target_name == "echo"


async def test_saving_shows_the_services_refusal_on_its_field(console: User, platform: Platform) -> None:
    await _function(platform)
    await _schedule(platform)
    await log_in(console, then="/schedules")
    await _open_new(console)
    set_value(console, "schedule-name", "nightly")
    set_value(console, "schedule-target", "nope")
    set_value(console, "schedule-cron", "@daily")
    console.find(marker="schedule-save").click()
    await eventually(lambda: element(console, "schedule-dialog-error").text == "function not found: nope")
    set_value(console, "schedule-target", "echo")
    console.find(marker="schedule-save").click()
    await eventually(lambda: element(console, "schedule-name").error == "schedule already exists: nightly")
    assert len((await platform.schedules.list(SYSTEM)).items) == 1


async def test_pause_resume_and_delete_from_the_list(console: User, platform: Platform) -> None:
    await _function(platform)
    schedule = await _schedule(platform)
    await log_in(console, then="/schedules")
    await console.should_see(marker="schedule-row-nightly", retries=50)
    assert element(console, "schedule-status-nightly").text == "active"

    console.find(marker="schedule-pause-nightly").click()
    await eventually(lambda: element(console, "schedule-status-nightly").text == "paused")
    assert (await platform.schedules.get(SYSTEM, schedule.id)).paused
    assert element(console, "schedule-next-nightly").text == "—"
    console.find(marker="schedule-resume-nightly").click()
    await eventually(lambda: element(console, "schedule-status-nightly").text == "active")
    assert "03:00:00" in element(console, "schedule-next-nightly").text

    console.find(marker="schedule-delete-nightly").click()
    await console.should_see("Delete schedule nightly?", retries=50)
    console.find(marker="confirm-cancel").click()
    await console.should_see(marker="schedule-row-nightly")
    console.find(marker="schedule-delete-nightly").click()
    await console.should_see(marker="confirm-ok", retries=50)
    console.find(marker="confirm-ok").click()
    await console.should_see("No schedules yet", retries=50)
    assert (await platform.schedules.list(SYSTEM)).items == []


async def test_the_list_follows_changes_made_elsewhere(console: User, platform: Platform) -> None:
    await _function(platform)
    await log_in(console, then="/schedules")
    await console.should_see("No schedules yet", retries=50)

    schedule = await _schedule(platform, name="from-api")
    await console.should_see(marker="schedule-row-from-api", retries=50)
    await platform.schedules.set_paused(SYSTEM, schedule.id, True)
    await eventually(lambda: element(console, "schedule-status-from-api").text == "paused")
    await platform.schedules.trigger(SYSTEM, schedule.id)
    await eventually(lambda: element(console, "schedule-last-from-api").text == "success", retries=200)


async def test_a_schedules_page_shows_next_run_and_the_run_history_live(
    console: User, platform: Platform
) -> None:
    await _function(platform)
    schedule = await _schedule(platform, payload={"n": 1}, timezone="Europe/Berlin")
    await log_in(console, then=f"/schedules/{schedule.id}")
    await console.should_see(marker="schedule-title", retries=50)
    assert "03:00:00 CE" in element(console, "schedule-next-run").text  # CET or CEST
    await console.should_see("No runs yet.")
    await console.should_see("never ran")

    console.find(marker="schedule-run-nightly").click()
    await console.should_see(marker="run-row", retries=50)
    await eventually(lambda: element(console, "schedule-last-result").text == "success", retries=200)
    (run,) = (await platform.schedules.runs(SYSTEM, schedule.id)).items
    assert element(console, f"run-status-{run.run.id}").text == "success"
    await console.should_see("run now")

    await platform.schedules.delete(SYSTEM, schedule.id)
    await console.should_see(marker="schedule-gone", retries=50)


async def test_an_unknown_schedule_says_so(console: User, platform: Platform) -> None:
    await log_in(console, then="/schedules/nope")
    await console.should_see(marker="schedule-gone", retries=50)
