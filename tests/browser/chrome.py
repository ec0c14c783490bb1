"""Driving Debian's Chromium headless through Selenium: the driver factory and a small page helper
that finds elements by their visible text, as a user would. Shared by the browser tests and by
`make screenshots`."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_paths() -> tuple[str, str] | None:
    """(browser, driver) when both are installed (Debian: apt-get install chromium chromium-driver)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def new_driver(width: int = 1440, height: int = 900) -> webdriver.Chrome:
    paths = chromium_paths()
    if paths is None:
        raise RuntimeError("chromium and chromedriver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='nimbus-chromium-')}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.set_page_load_timeout(30)
    return driver


def _literal(text: str) -> str:
    """An XPath string literal for any text (XPath 1.0 has no escapes)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ', "\'", '.join(f"'{part}'" for part in text.split("'")) + ")"


class Page:
    """A browser tab on one Nimbus server."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.wait(lambda: self.driver.execute_script("return document.readyState") == "complete")

    def wait(self, condition: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while True:
            try:
                value = condition()
                if value:
                    return value
            except WebDriverException as exc:
                last = exc
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}") from last
            time.sleep(0.05)

    def find_text(self, text: str, timeout: float = 10.0) -> WebElement:
        """The innermost visible element whose text contains `text`."""
        needle = _literal(text)
        # The innermost elements whose text holds `text` (Vue splits text nodes, so text() misses some).
        query = f"//body//*[not(self::script)][contains(., {needle}) and not(*[contains(., {needle})])]"

        def visible() -> WebElement | None:
            return next((e for e in self.driver.find_elements(By.XPATH, query) if e.is_displayed()), None)

        return self.wait(visible, timeout, f"text {text!r}")

    def find_css(self, selector: str, timeout: float = 10.0) -> WebElement:
        def visible() -> WebElement | None:
            found = self.driver.find_elements(By.CSS_SELECTOR, selector)
            return next((e for e in found if e.is_displayed()), None)

        return self.wait(visible, timeout, f"css {selector!r}")

    def input(self, label: str, timeout: float = 10.0) -> WebElement:
        """The input of a Quasar field by its label (NiceGUI renders it as aria-label)."""
        return self.find_css(f"input[aria-label={_literal(label)}]", timeout)

    def click_text(self, text: str, timeout: float = 10.0) -> None:
        element = self.find_text(text, timeout)
        self.wait(lambda: _click(element), timeout, f"clickable {text!r}")

    def click_button(self, text: str, timeout: float = 10.0) -> None:
        query = f"//button[contains(., {_literal(text)})]"

        def clicked() -> bool:
            buttons = [e for e in self.driver.find_elements(By.XPATH, query) if e.is_displayed()]
            return bool(buttons) and _click(buttons[0])

        self.wait(clicked, timeout, f"button {text!r}")

    def has_text(self, text: str) -> bool:
        return text in self.driver.find_element(By.TAG_NAME, "body").text

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))

    def log_in(self, username: str, password: str, then: str = "") -> None:
        self.open(f"/login?next={then}" if then else "/login")
        self.input("Username").send_keys(username)
        self.input("Password").send_keys(password)
        self.click_button("Log in")
        self.wait(lambda: "/login" not in self.driver.current_url, 15, "the log-in to finish")


def _click(element: WebElement) -> bool:
    element.click()
    return True
