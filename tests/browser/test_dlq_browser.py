"""The dead-letter queue page in a real browser against a real server: an async invocation that fails
every attempt appears in the open page without a reload; after the function is fixed, retrying it from
its row resolves it and it leaves the pending list; three selected messages are discarded in one batch
behind a confirmation; and the purge asks for the typed word before it deletes anything.

The server is shared with the other browser tests, so every function has a unique name and the
assertions are about this test's own messages only (the purge, which empties the whole queue, comes
last)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.browser.chrome import Page
from tests.server import Server

FAILING = (
    'def handler(event, context):\n    raise RuntimeError("gateway down for order " + str(event["order"]))\n'
)
FIXED = 'def handler(event, context):\n    return {"shipped": event["order"]}\n'
ONE_ATTEMPT = {"retry_attempts": 1, "retry_backoff_ms": 10, "retry_backoff_max_ms": 50}
LIVE = 60.0  # generous: an async run, the DLQ write and the coalesced push on a loaded 2-core machine
DIALOG = "//div[contains(@class, 'q-dialog')]"


def test_dlq_live_retry_batch_discard_and_purge(logged_in: Page, server: Server) -> None:
    page = logged_in
    tag = uuid.uuid4().hex[:8]
    retried, batch = f"browser-dlq-retry-{tag}", f"browser-dlq-batch-{tag}"
    with server.api() as api:
        retried_id = _create(api, retried)
        batch_id = _create(api, batch)

    # --- a failure appears live in the open page ---------------------------------------------------
    page.open("/dlq")
    page.find_text("Purge queue", 15)
    page.driver.execute_script("window.__dlqNoReload = true;")
    assert not _rows(page, retried)
    with server.api() as api:
        api.post(f"/api/v1/functions/{retried}/async", json={"order": 1}).raise_for_status()
    page.wait(lambda: len(_rows(page, retried)) == 1, LIVE, f"the DLQ row of {retried}")
    assert "RuntimeError: gateway down for order 1" in _rows(page, retried)[0].text
    assert page.driver.execute_script("return window.__dlqNoReload === true;"), "the page was reloaded"
    with server.api() as api:
        (message,) = _messages(api, retried_id)
    assert message["status"] == "pending" and message["payload"] == {"order": 1}

    # --- fix the function, retry from the row: resolved, gone from the pending list -----------------
    with server.api() as api:
        api.put(f"/api/v1/functions/{retried}", json={"code": FIXED}).raise_for_status()
    _click_in_row(page, retried, "replay")
    page.find_text(f"Retried {retried}: resolved", 30)
    page.wait(lambda: not _rows(page, retried), 30, "the retried message to leave the pending list")
    with server.api() as api:
        (message,) = _messages(api, retried_id)
    assert message["status"] == "resolved" and message["retry_count"] == 1

    # --- three more failures, selected and discarded in one batch ------------------------------------
    with server.api() as api:
        for order in (2, 3, 4):
            api.post(f"/api/v1/functions/{batch}/async", json={"order": order}).raise_for_status()
        page.wait(
            lambda: len([m for m in _messages(api, batch_id) if m["status"] == "pending"]) == 3,
            LIVE,
            "three pending messages in the DLQ",
        )
    page.wait(lambda: len(_rows(page, batch)) == 3, LIVE, f"three DLQ rows of {batch}")
    assert page.driver.execute_script("return window.__dlqNoReload === true;"), "the page was reloaded"
    for selected in (1, 2, 3):
        _check_row(page, batch, selected - 1)
        page.find_text(f"{selected} selected", 15)
    page.click_button("Discard selected")
    page.find_text("Discard 3 messages?", 15)
    _click_dialog_button(page, "Discard")
    page.find_text("3 discarded", 30)
    page.wait(lambda: not _rows(page, batch), 30, "the discarded messages to leave the pending list")
    with server.api() as api:
        assert sorted(m["status"] for m in _messages(api, batch_id)) == ["discarded"] * 3

    # The "discarded" filter shows them with their status (the messages stay in the queue).
    page.open("/dlq?status=discarded")
    page.wait(lambda: len(_rows(page, batch)) == 3, 30, "three discarded rows")
    assert all("discarded" in row.text for row in _rows(page, batch))

    # --- purge: asks for the typed word; Cancel keeps everything, "purge" + Purge deletes ---------
    page.open("/dlq?status=")  # any status: this test's four messages are listed
    page.wait(lambda: len(_rows(page, retried)) == 1 and len(_rows(page, batch)) == 3, 30, "all four rows")
    page.click_button("Purge queue")
    page.find_text("Purge the dead-letter queue?", 15)
    purge = _dialog_button(page, "Purge")
    assert not purge.is_enabled(), "Purge must wait for the typed confirmation"
    _click_dialog_button(page, "Cancel")
    page.wait(lambda: not _dialog_open(page), 15, "the dialog to close")
    with server.api() as api:
        assert len(_messages(api, retried_id)) == 1 and len(_messages(api, batch_id)) == 3
    assert len(_rows(page, batch)) == 3

    page.click_button("Purge queue")
    page.find_text("Purge the dead-letter queue?", 15)
    typed = page.input("Type 'purge' to confirm")
    typed.send_keys("purg")
    page.wait(lambda: not _dialog_button(page, "Purge").is_enabled(), 5, "Purge still disabled")
    typed.send_keys("e")
    page.wait(lambda: _dialog_button(page, "Purge").is_enabled(), 15, "Purge enabled by the typed word")
    _click_dialog_button(page, "Purge")
    page.find_text("Purged", 30)
    page.wait(lambda: not _rows(page, retried) and not _rows(page, batch), 30, "the purged rows to disappear")
    with server.api() as api:
        assert _messages(api, retried_id) == [] and _messages(api, batch_id) == []


# --- helpers ----------------------------------------------------------------------------------------


def _create(api: httpx.Client, name: str) -> str:
    created = api.post(
        "/api/v1/functions", json={"name": name, "runtime": "python", "code": FAILING, **ONE_ATTEMPT}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _messages(api: httpx.Client, function_id: str) -> list[dict[str, Any]]:
    listed = api.get("/api/v1/dlq", params={"function_id": function_id, "limit": 100})
    listed.raise_for_status()
    return list(listed.json()["messages"])


def _row_xpath(name: str) -> str:
    return f"//tbody/tr[.//*[normalize-space()='{name}']]"


def _rows(page: Page, name: str) -> list[WebElement]:
    """The displayed DLQ table rows of function `name` (exact name, not a prefix)."""
    return [e for e in page.driver.find_elements(By.XPATH, _row_xpath(name)) if e.is_displayed()]


def _click_in_row(page: Page, name: str, icon: str) -> None:
    button = f"{_row_xpath(name)}//button[.//i[normalize-space()='{icon}']]"
    page.wait(lambda: page.driver.find_element(By.XPATH, button).click() or True, 15, f"the {icon} button")


def _check_row(page: Page, name: str, index: int) -> None:
    def click() -> bool:
        box = _rows(page, name)[index].find_element(By.CSS_SELECTOR, ".q-checkbox")
        box.click()
        return True

    page.wait(click, 15, f"the checkbox of row {index} of {name}")


def _dialog_open(page: Page) -> bool:
    return any(e.is_displayed() for e in page.driver.find_elements(By.XPATH, DIALOG))


def _dialog_button(page: Page, text: str) -> WebElement:
    query = f"{DIALOG}//button[normalize-space()='{text}']"

    def visible() -> WebElement | None:
        return next((e for e in page.driver.find_elements(By.XPATH, query) if e.is_displayed()), None)

    return page.wait(visible, 15, f"the dialog's {text!r} button")


def _click_dialog_button(page: Page, text: str) -> None:
    page.wait(lambda: _dialog_button(page, text).click() or True, 15, f"a click on {text!r}")
