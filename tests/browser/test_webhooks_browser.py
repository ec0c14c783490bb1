"""What only a real browser and a real server show about webhooks: enabling one on the page, its full URL
with a copy button, and a request sent to that URL over real HTTP appearing in the open page's history
without a reload."""

from __future__ import annotations

import uuid

import httpx
from selenium.webdriver.common.by import By

from tests.browser.chrome import Page
from tests.server import Server


def test_enable_a_webhook_then_a_call_to_its_url_appears_live(logged_in: Page, server: Server) -> None:
    page = logged_in
    name = f"browser-hook-{uuid.uuid4().hex[:8]}"
    with server.api() as api:
        code = 'def handler(event, context):\n    return {"thanks": event["body"]["order"]}\n'
        api.post(
            "/api/v1/functions", json={"name": name, "runtime": "python", "code": code}
        ).raise_for_status()

    page.open(f"/webhooks?function={name}")  # the function is picked in the "Enable webhook" box
    page.click_button("Enable webhook")
    page.find_text(f"Webhook of {name}", 15)
    with server.api() as api:
        hook = api.get(f"/api/v1/functions/{name}/webhook").json()
    assert hook["webhook_enabled"] is True
    url = server.url + hook["webhook_url"]
    shown = page.find_text(url)
    copy = shown.find_elements(By.XPATH, "following-sibling::button[.//i[text()='content_copy']]")
    assert copy and copy[0].is_displayed()
    page.find_text("No calls yet")

    response = httpx.post(url + "/orders", json={"order": 7}, timeout=30)  # no credentials: a webhook
    assert response.status_code == 200 and response.json() == {"thanks": 7}

    page.find_text("/orders", 15)  # the history row, pushed to the open page
    page.find_text("accepted")
    assert not page.has_text("No calls yet")
    assert page.driver.current_url.endswith(f"/webhooks?function={name}")  # no reload, no navigation
