"""In a real browser on a real `nimbus serve`: the Quota page shows a quota go to warning when its limit
is lowered (pushed live, no reload), and the Retention page runs a cleanup (preview, confirmation,
progress) and shows its history row."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

from selenium.webdriver.common.by import By

from data.db import Database
from data.types import utcnow
from tests.browser.chrome import Page
from tests.ops_rows import add_invocations
from tests.server import Server


def test_a_quota_goes_to_warning_when_its_limit_is_lowered(logged_in: Page, server: Server) -> None:
    page = logged_in
    with server.api() as api:
        api.post(
            "/api/v1/functions",
            json={"name": "ops-quota-fn", "runtime": "python", "code": "def handler(e, c):\n    return 1\n"},
        ).raise_for_status()
        before = api.get("/api/v1/quota/limits").json()["limits"]
        try:
            page.open("/quota")
            page.find_css(".nimbus-quota-functions.quota-level-ok")
            page.find_text("Usage trend")
            count = api.get("/api/v1/quota").json()["function_count"]
            threshold = math.floor(100 * count / (count + 1))  # one short of the limit: past the threshold
            api.put(
                "/api/v1/quota", json={"max_functions": count + 1, "warning_threshold": threshold}
            ).raise_for_status()

            card = page.find_css(".nimbus-quota-functions.quota-level-warning", timeout=15)
            assert "Warning" in card.text and f"{count} of {count + 1}" in card.text
            assert page.driver.current_url.endswith("/quota")  # pushed live: no reload
        finally:
            api.put(
                "/api/v1/quota",
                json={
                    "max_functions": before["max_functions"],
                    "warning_threshold": before["warning_threshold"],
                },
            ).raise_for_status()
            api.delete("/api/v1/functions/ops-quota-fn")


async def _old_invocations(server: Server) -> list[str]:
    db = Database(f"sqlite+aiosqlite:///{server.data_dir / 'nimbus.db'}")
    try:
        return await add_invocations(db, utcnow() - timedelta(days=400), 3, logs=1, function_id="ops-old")
    finally:
        await db.close()


def test_a_cleanup_runs_and_its_history_row_appears(logged_in: Page, server: Server) -> None:
    page = logged_in
    old = asyncio.run(_old_invocations(server))  # written into the server's database, as its past
    page.open("/retention")
    page.find_text("Cleanup history")
    runs_before = len(page.driver.find_elements(By.CSS_SELECTOR, "tr.retention-run-row"))

    page.click_button("Clean up now")
    page.find_text("3 invocation records older than 30 days")
    page.click_button("Delete rows")

    page.find_text("Cleanup finished", timeout=30)
    page.wait(
        lambda: len(page.driver.find_elements(By.CSS_SELECTOR, "tr.retention-run-row")) == runs_before + 1,
        15,
        "the new history row",
    )
    newest = page.driver.find_elements(By.CSS_SELECTOR, "tr.retention-run-row")[0]
    assert "manual" in newest.text and "admin" in newest.text and "succeeded" in newest.text
    assert "invocations 3" in newest.text
    with server.api() as api:
        for request_id in old:
            assert api.get(f"/api/v1/invocations/{request_id}").status_code == 404
        assert api.get("/api/v1/retention/runs").json()["runs"][0]["deleted"]["invocations"] == 3
