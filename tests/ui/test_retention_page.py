"""The Retention page through NiceGUI's user simulation over a real platform: stats per kind of data,
"Clean up now" with its preview in the confirmation (cancel deletes nothing; confirm deletes, shows the
history row and the new figures), the policy form (saved, and bad values shown on their field with
nothing saved), and a viewer who sees everything but changes nothing."""

from __future__ import annotations

from datetime import timedelta

from nicegui.testing.user import User

from data.types import utcnow
from engine.platform import Platform
from engine.principal import SYSTEM
from tests.ops_rows import add_dead_letters, add_invocations
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value

DAY = timedelta(days=1)


def text(user: User, marker: str) -> str:
    return str(element(user, marker).text)


def history_rows(user: User) -> int:
    try:
        return len(user.find(marker="retention-run").elements)
    except AssertionError:
        return 0


async def expired_data(platform: Platform) -> None:
    await add_invocations(platform.db, utcnow() - 45 * DAY, 4, logs=1)
    await add_invocations(platform.db, utcnow() - DAY, 2, logs=1)
    await add_dead_letters(platform.db, utcnow() - 9 * DAY, ["resolved"])


async def test_stats_show_each_kind_of_data_and_what_expired(console: User, platform: Platform) -> None:
    await expired_data(platform)
    await log_in(console, then="/retention")
    await console.should_see(marker="retention-row-invocations", retries=50)
    assert text(console, "retention-expired-invocations") == "4"
    assert text(console, "retention-expired-logs") == "4"
    assert text(console, "retention-expired-dlq") == "1"
    await console.should_see("Invocation records")
    await console.should_see("No cleanup has run yet.")
    assert element(console, "policy-invocations_days").value == 30
    await console.should_see(marker="nav-Retention")


async def test_clean_up_now_previews_confirms_and_records_the_run(console: User, platform: Platform) -> None:
    await expired_data(platform)
    await log_in(console, then="/retention")
    await console.should_see(marker="retention-clean", retries=50)

    console.find(marker="retention-clean").click()
    await console.should_see("Delete 9 expired rows?", retries=50)
    await console.should_see("4 invocation records older than 30 days", retries=10)
    console.find(marker="confirm-cancel").click()
    await console.should_not_see(marker="confirm-dialog", retries=50)
    assert (await platform.retention.preview(SYSTEM))[1].rows == 4  # nothing deleted

    console.find(marker="retention-clean").click()
    await console.should_see("Delete 9 expired rows?", retries=50)
    console.find(marker="confirm-ok").click()
    await console.should_see("Cleanup finished: 9 rows deleted", retries=100)
    await eventually(lambda: history_rows(console) == 1, retries=200)
    run = (await platform.retention.runs(SYSTEM)).items[0]
    assert text(console, f"retention-run-total-{run.id}") == "9"
    await eventually(lambda: text(console, "retention-expired-invocations") == "0", retries=200)
    assert run.deleted["invocations"] == 4 and run.actor == "admin"


async def test_nothing_expired_says_so(console: User, platform: Platform) -> None:
    await log_in(console, then="/retention")
    await console.should_see(marker="retention-clean", retries=50)
    console.find(marker="retention-clean").click()
    await console.should_see("Nothing has expired", retries=50)
    assert (await platform.retention.runs(SYSTEM)).items == []


async def test_the_policy_is_saved(console: User, platform: Platform) -> None:
    await add_invocations(platform.db, utcnow() - 10 * DAY, 2, logs=0)
    await log_in(console, then="/retention")
    await console.should_see(marker="policy-save", retries=50)

    set_value(console, "policy-invocations_days", 7)
    set_value(console, "policy-auto_cleanup", True)
    set_value(console, "policy-cleanup_time", "04:15")
    console.find(marker="policy-save").click()

    await console.should_see("Retention policy saved", retries=50)
    policy = await platform.retention.policy(SYSTEM)
    assert (policy["invocations_days"], policy["auto_cleanup"], policy["cleanup_time"]) == (7, True, "04:15")
    await eventually(lambda: text(console, "retention-expired-invocations") == "2")


async def test_bad_policy_values_are_shown_on_their_field_and_nothing_is_saved(
    console: User, platform: Platform
) -> None:
    await log_in(console, then="/retention")
    await console.should_see(marker="policy-save", retries=50)

    set_value(console, "policy-cleanup_time", "27:99")
    console.find(marker="policy-save").click()
    await eventually(lambda: element(console, "policy-cleanup_time").error)
    assert "HH:MM" in element(console, "policy-cleanup_time").error

    set_value(console, "policy-cleanup_time", "03:00")
    set_value(console, "policy-logs_days", 0)
    console.find(marker="policy-save").click()
    await eventually(lambda: element(console, "policy-logs_days").error)
    assert (await platform.retention.policy(SYSTEM))["logs_days"] == 14
    assert (await platform.audit.list(SYSTEM, action="retention.policy_update")).items == []


async def test_a_viewer_sees_the_figures_but_changes_nothing(console: User, platform: Platform) -> None:
    await expired_data(platform)
    await platform.auth.create_user(SYSTEM, "vera", "viewer password 123", role="viewer")
    await log_in(console, "vera", "viewer password 123", then="/retention")
    await console.should_see(marker="retention-row-invocations", retries=50)
    await console.should_not_see(marker="retention-clean")
    await console.should_not_see(marker="policy-save")
    assert not element(console, "policy-logs_days").enabled
