"""Real-browser tests of the Settings and Audit pages on a real `nimbus serve`: editing a setting (it
takes effect for the next function), and filtering the audit log then exporting the filtered set as CSV
(the file the browser downloads)."""

from __future__ import annotations

import csv
import io
import time
import uuid
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.chrome import Page
from tests.server import Server

HELLO = 'def handler(event, context):\n    return {"ok": True}\n'


def _save_button_of(page: Page, label: str) -> None:
    xpath = (
        f"//input[@aria-label='{label}']/ancestor::label[contains(@class, 'q-field')]"
        "/following-sibling::button[contains(., 'Save')]"
    )
    page.wait(lambda: page.driver.find_element(By.XPATH, xpath).click() or True, 10, f"Save of {label}")


def test_edit_a_setting_and_it_applies_to_the_next_function(logged_in: Page, server: Server) -> None:
    api = server.api()
    try:
        logged_in.open("/settings")
        box = logged_in.input("Default memory (MB)")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("384")
        _save_button_of(logged_in, "Default memory (MB)")
        logged_in.find_text("Saved Default memory.")
        assert api.get("/api/v1/settings/default_memory").json()["value"] == 384
        name = f"mem-{uuid.uuid4().hex[:8]}"
        created = api.post("/api/v1/functions", json={"name": name, "runtime": "python", "code": HELLO})
        assert created.json()["memory_mb"] == 384
        # A refused value shows on the field and is not stored.
        box = logged_in.input("Default memory (MB)")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("64")
        _save_button_of(logged_in, "Default memory (MB)")
        logged_in.find_text("must be between 128 and 3072 MB")
        assert api.get("/api/v1/settings/default_memory").json()["value"] == 384
        api.delete(f"/api/v1/functions/{name}")
    finally:
        api.post("/api/v1/settings/default_memory/reset")  # the server is shared with other tests


def test_filter_the_audit_log_and_export_it(logged_in: Page, server: Server, tmp_path: Path) -> None:
    api = server.api()
    name = f"aud-{uuid.uuid4().hex[:8]}"
    api.post("/api/v1/functions", json={"name": name, "runtime": "python", "code": HELLO})
    api.put(f"/api/v1/functions/{name}", json={"memory_mb": 512})
    api.post("/api/v1/functions", json={"name": f"{name}-other", "runtime": "python", "code": HELLO})
    logged_in.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    logged_in.open("/audit")
    target = logged_in.input("Target")
    target.send_keys(name, Keys.ENTER)
    logged_in.wait(lambda: not logged_in.has_text(f"function {name}-other"), 10, "the filter to apply")
    logged_in.find_text("Update function")
    logged_in.click_button("Export CSV")
    files = logged_in.wait(lambda: [p for p in tmp_path.glob("nimbus-audit*.csv")], 20, "the download")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not files[0].read_text().count("\n") >= 3:
        time.sleep(0.1)  # the browser may still be writing it
    rows = list(csv.DictReader(io.StringIO(files[0].read_text())))
    assert [r["action"] for r in rows] == ["function.update", "function.create"]
    assert {r["resource_name"] for r in rows} == {name}
    assert rows[0]["actor"] == "key:bootstrap"
    for fn in (name, f"{name}-other"):
        api.delete(f"/api/v1/functions/{fn}")
