"""What only a real browser shows: the log-in round trip over the websocket, pushes, the editor."""

from __future__ import annotations

from tests.browser.chrome import Page
from tests.browser.conftest import PASSWORD


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
