"""Real-browser tests: one real `nimbus serve` and one headless Chromium for the session. They skip
when Chromium is not installed (CI installs it: .ci/run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver

from tests.browser.chrome import Page, chromium_paths, new_driver
from tests.server import Server

PASSWORD = "browser-test-password"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if chromium_paths() is None:
        skip = pytest.mark.skip(
            reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
        for item in items:
            if "tests/browser/" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("nimbus-browser"), PASSWORD, NIMBUS_WALL_ROTATE_SEC="0")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def driver() -> Iterator[webdriver.Chrome]:
    chrome = new_driver()
    yield chrome
    chrome.quit()


@pytest.fixture
def page(driver: webdriver.Chrome, server: Server) -> Page:
    driver.delete_all_cookies()
    return Page(driver, server.url)


@pytest.fixture
def logged_in(page: Page) -> Page:
    page.log_in("admin", PASSWORD)
    return page
