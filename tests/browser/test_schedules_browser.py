"""The Schedules page in a real browser: create a schedule in the dialog while its preview follows the
typing (the reason for an invalid expression, then the next five runs), save it, and pause it."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.browser.chrome import Page
from tests.server import Server

CODE = "def handler(event, context):\n    return event\n"


def test_create_a_schedule_with_its_preview_and_pause_it(logged_in: Page, server: Server) -> None:
    page = logged_in
    with server.api() as api:
        created = api.post(
            "/api/v1/functions", json={"name": "browser-scheduled", "runtime": "python", "code": CODE}
        )
        assert created.status_code == 201, created.text

    page.open("/schedules")
    page.click_button("New schedule")
    page.find_text("Type an expression to see its next runs.")
    page.input("Name").send_keys("browser-nightly")
    page.input("Target (name or id)").send_keys("browser-scheduled")
    cron = page.input("Cron expression")
    cron.send_keys("61 * * * *")
    page.find_text("the minute field's value 61 is out of range (0-59)")

    cron.send_keys("\b" * 20, "30 4 * * *")
    timezone = page.input("Timezone")
    timezone.send_keys("\b" * 10, "Europe/Paris")
    page.wait(lambda: len(_preview_runs(page)) == 5, 10, "five previewed runs")
    assert all("04:30:00 CE" in text for text in _preview_runs(page))  # CET or CEST
    page.click_button("Save")

    row = "//tr[contains(., 'browser-nightly')]"
    page.wait(lambda: page.driver.find_elements(By.XPATH, row), 10, "the new row")
    with server.api() as api:
        saved = api.get("/api/v1/schedules/browser-nightly").json()
    assert (saved["cron"], saved["timezone"], saved["target_name"]) == (
        "30 4 * * *",
        "Europe/Paris",
        "browser-scheduled",
    )
    assert saved["paused"] is False

    pause = f"{row}//button[.//i[normalize-space()='pause']]"
    page.wait(lambda: page.driver.find_element(By.XPATH, pause).click() or True, 10, "the pause button")
    page.wait(
        lambda: page.driver.find_elements(By.XPATH, f"{row}//*[normalize-space()='paused']"), 10, "paused"
    )
    with server.api() as api:
        paused = api.get("/api/v1/schedules/browser-nightly").json()
    assert paused["paused"] is True and paused["next_run_at"] is None


def _preview_runs(page: Page) -> list[str]:
    """The previewed run times shown in the open dialog (one line each, `Mon 2026-11-30 04:30:00 CET`)."""
    lines = page.driver.find_elements(
        By.XPATH, "//div[contains(@class, 'q-dialog')]//div[contains(@class, 'font-mono')]/div"
    )
    return [
        e.text
        for e in lines
        if e.is_displayed() and e.text[:3] in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    ]
