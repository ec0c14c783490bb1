"""What only a real browser shows: the log-in round trip, the template gallery, the CodeMirror editor
with its Ctrl+S, the Test tab's invoke over the websocket, and pushes reaching an open dashboard."""

from __future__ import annotations

import time

from selenium.webdriver.common.keys import Keys

from tests.browser.chrome import Page
from tests.browser.conftest import PASSWORD
from tests.server import Server

EDITED = 'def handler(event, context): return {"edited": event.get("name")}'


def test_log_in_and_out(page: Page) -> None:
    page.open("/functions")
    page.find_text("Log in")
    assert "/login" in page.driver.current_url
    page.log_in("admin", PASSWORD, then="/functions")
    page.find_text("admin (admin)")
    page.open("/logout")
    page.find_text("Log in")
    assert "/login" in page.driver.current_url


def test_a_wrong_password_is_refused(page: Page) -> None:
    page.open("/login")
    page.input("Username").send_keys("admin")
    page.input("Password").send_keys("not the password")
    page.click_button("Log in")
    page.find_text("invalid username or password")


def test_create_from_a_template_edit_save_and_run_it(logged_in: Page, server: Server) -> None:
    page = logged_in
    page.open("/functions/new")
    page.click_text("Hello world")
    page.input("Name").send_keys("browser-hello")
    page.click_button("Create function")
    page.wait(lambda: "/functions/new" not in page.driver.current_url, 15, "the function page")
    page.find_css(".cm-content")

    # Edit in CodeMirror: select everything, type a one-line handler, save with Ctrl+S.
    editor = page.find_css(".cm-content")
    editor.click()
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(EDITED)
    page.find_text("Unsaved changes")
    editor.send_keys(Keys.CONTROL, "s")
    page.find_text("Saved revision")
    with server.api() as api:
        saved = api.get("/api/v1/functions/browser-hello").json()
    assert saved["code"].strip() == EDITED

    # Run it in the Test tab: the template's sample event goes in, the edited handler's output shows.
    page.click_text("Test")
    page.click_button("Invoke")
    page.find_text('"edited": "Nimbus"', 30)
    page.find_text("cold start")


WATCH_ROWS = """
window.__nimbusSeen = {};
new MutationObserver(() => {
  for (const a of document.querySelectorAll("a[href^='/invocations?id=']")) {
    const id = a.getAttribute("href").split("=")[1];
    if (!(id in window.__nimbusSeen)) window.__nimbusSeen[id] = Date.now();
  }
}).observe(document.body, {childList: true, subtree: true, characterData: true});
"""


def test_an_api_invocation_reaches_the_open_dashboard_within_a_second(
    logged_in: Page, server: Server
) -> None:
    """The browser itself stamps when the row appears (a MutationObserver), so the figure is the push's
    latency, not the test's polling."""
    page = logged_in
    with server.api() as api:
        api.post(
            "/api/v1/functions",
            json={"name": "browser-push", "runtime": "python", "code": "def handler(e, c):\n    return 1\n"},
        ).raise_for_status()
        page.open("/")
        page.find_text("Latest invocations")
        page.driver.execute_script(WATCH_ROWS)
        warm = api.post("/api/v1/functions/browser-push/invoke", json={}).json()["request_id"]
        page.wait(
            lambda: page.driver.execute_script(f"return window.__nimbusSeen['{warm}']"), 10, "warm-up row"
        )
        response = api.post("/api/v1/functions/browser-push/invoke", json={"n": 1})
        answered_ms = time.time() * 1000
    request_id = response.json()["request_id"]
    seen_ms = page.wait(
        lambda: page.driver.execute_script(f"return window.__nimbusSeen['{request_id}']"), 10, "the new row"
    )
    assert seen_ms - answered_ms < 1000, f"shown {seen_ms - answered_ms:.0f} ms after the API answered"
    assert page.driver.current_url.endswith("/")  # no reload, no navigation
